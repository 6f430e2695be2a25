"""Tests for the state machine's table (RFC 6455 sections 4.1, 7.1.3, 7.1.4).

Every (state, trigger) pair: the allowed moves lead where the table says,
the others raise the error of whoever asked.  How ``ServerConnection`` moves
through the table, call by call, is walked in tests/protocol/test_connection.py
(``test_state_table``, ``test_every_state_change_goes_through_the_table``).
"""

from __future__ import annotations

import itertools

import pytest

from wsserver.protocol.exceptions import LocalProtocolError, RemoteProtocolError
from wsserver.protocol.state import (
    TRANSITION_TABLE,
    TRANSITIONS,
    State,
    Trigger,
    refusal,
    transition,
)

CONNECTING, OPEN, CLOSING, CLOSED = State.CONNECTING, State.OPEN, State.CLOSING, State.CLOSED

#: Every move the protocol allows, spelled out once more by hand.
LEGAL = {
    (CONNECTING, OPEN),
    (CONNECTING, CLOSED),
    (OPEN, CLOSING),
    (OPEN, CLOSED),
    (CLOSING, CLOSED),
}


def test_the_four_states() -> None:
    assert [state.name for state in State] == ["CONNECTING", "OPEN", "CLOSING", "CLOSED"]
    for state in State:
        assert state.value == state.name


def test_transitions_cover_every_state() -> None:
    assert set(TRANSITIONS) == set(State)
    for targets in TRANSITIONS.values():
        assert isinstance(targets, frozenset)
        assert targets <= set(State)


@pytest.mark.parametrize(
    ("before", "after"), list(itertools.product(State, State)), ids=lambda s: s.name
)
def test_every_pair(before: State, after: State) -> None:
    assert (after in TRANSITIONS[before]) is ((before, after) in LEGAL)


def test_closed_is_terminal() -> None:
    assert TRANSITIONS[State.CLOSED] == frozenset()


def test_no_state_moves_to_itself_or_back() -> None:
    order = list(State)
    for before, targets in TRANSITIONS.items():
        for after in targets:
            assert order.index(after) > order.index(before)


def test_every_state_is_reachable_and_every_state_can_end() -> None:
    reachable = {State.CONNECTING}
    frontier = [State.CONNECTING]
    while frontier:
        for after in TRANSITIONS[frontier.pop()]:
            if after not in reachable:
                reachable.add(after)
                frontier.append(after)
    assert reachable == set(State)
    for state in State:
        if state is not State.CLOSED:
            assert State.CLOSED in TRANSITIONS[state]


# --------------------------------------------------------------------------
# The transition table: (state, trigger) -> next state
# --------------------------------------------------------------------------

A = Trigger
#: Every move of the table, spelled out once more by hand: RFC 6455 sections
#: 4.2.2 (the 101; 4.1 for the client reading it), 5.5.1 (Close), 7.1.2-7.1.4
#: (closing), 7.1.7 (failing).
MOVES = {
    (CONNECTING, A.ACCEPT): OPEN,
    (CONNECTING, A.HANDSHAKE_COMPLETED): OPEN,
    (CONNECTING, A.REJECT): CLOSED,
    (CONNECTING, A.HTTP_CLOSED): CLOSED,
    (OPEN, A.SEND_MESSAGE): OPEN,
    (OPEN, A.SEND_FRAGMENT): OPEN,
    (OPEN, A.SEND_PING): OPEN,
    (OPEN, A.SEND_PONG): OPEN,
    (OPEN, A.SEND_CLOSE): CLOSING,
    (OPEN, A.FAIL): CLOSED,
    (OPEN, A.CLOSE_RECEIVED): CLOSED,
    (OPEN, A.PROTOCOL_ERROR): CLOSED,
    (OPEN, A.EOF): CLOSED,
    (CLOSING, A.FAIL): CLOSED,
    (CLOSING, A.CLOSE_RECEIVED): CLOSED,
    (CLOSING, A.PROTOCOL_ERROR): CLOSED,
    (CLOSING, A.EOF): CLOSED,
    (CLOSED, A.FAIL): CLOSED,
}

PEER = {A.HANDSHAKE_COMPLETED, A.HTTP_CLOSED, A.CLOSE_RECEIVED, A.PROTOCOL_ERROR, A.EOF}


def test_the_table_is_the_moves() -> None:
    assert set(TRANSITION_TABLE) == set(State)
    table = {
        (state, trigger): after
        for state, row in TRANSITION_TABLE.items()
        for trigger, after in row.items()
    }
    assert table == MOVES


@pytest.mark.parametrize(("move", "after"), list(MOVES.items()), ids=str)
def test_every_allowed_move(move: tuple[State, Trigger], after: State) -> None:
    before, trigger = move
    assert transition(before, trigger) is after


REFUSED = [move for move in itertools.product(State, Trigger) if move not in MOVES]


@pytest.mark.parametrize(("before", "trigger"), REFUSED, ids=str)
def test_every_other_move_is_refused(before: State, trigger: Trigger) -> None:
    expected = RemoteProtocolError if trigger in PEER else LocalProtocolError
    with pytest.raises(expected) as caught:
        transition(before, trigger)
    assert type(caught.value) is expected
    # The message names what was asked and where.
    assert trigger.value in str(caught.value)
    assert f"in state {before.name}" in str(caught.value)
    assert type(refusal(before, trigger)) is expected


def test_a_refused_local_move_names_the_call() -> None:
    with pytest.raises(LocalProtocolError, match=r"^cannot send a message in state CLOSING$"):
        transition(CLOSING, Trigger.SEND_MESSAGE)
    with pytest.raises(
        RemoteProtocolError, match=r"^the peer cannot end the transport in state CLOSED$"
    ):
        transition(CLOSED, Trigger.EOF)


def test_failing_before_the_handshake_says_what_to_call() -> None:
    with pytest.raises(LocalProtocolError, match=r"fail the connection .* use reject\(\)"):
        transition(CONNECTING, Trigger.FAIL)


def test_triggers_are_the_applications_or_the_peers() -> None:
    assert {trigger for trigger in Trigger if trigger.by_peer} == PEER
    # The peer's moves all end the connection, but one: a server's 101,
    # which opens a client's (the application opens a server's).
    for (before, trigger), after in MOVES.items():
        if trigger in PEER and trigger is not A.HANDSHAKE_COMPLETED:
            assert after is CLOSED, (before, trigger)
    assert MOVES[CONNECTING, A.HANDSHAKE_COMPLETED] is OPEN


def test_transitions_is_the_table_without_its_loops() -> None:
    for state in State:
        assert TRANSITIONS[state] == {
            after for (before, _), after in MOVES.items() if before is state and after is not state
        }


def test_moves_that_keep_the_state() -> None:
    # Sending while OPEN, and fail() once CLOSED (a no-op), are in the table
    # so that it also says what is allowed; nothing else stays put.
    loops = {move for move, after in MOVES.items() if after is move[0]}
    assert loops == {
        (OPEN, A.SEND_MESSAGE),
        (OPEN, A.SEND_FRAGMENT),
        (OPEN, A.SEND_PING),
        (OPEN, A.SEND_PONG),
        (CLOSED, A.FAIL),
    }


def test_trigger_hashes_as_its_string() -> None:
    # The connection looks triggers up on every send; a StrEnum member
    # hashes in C, a plain Enum member through a Python method.
    for trigger in Trigger:
        assert isinstance(trigger, str)
        assert hash(trigger) == hash(trigger.value)
