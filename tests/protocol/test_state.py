"""Tests for the state machine's table (RFC 6455 sections 4.1, 7.1.3, 7.1.4).

How ``ServerConnection`` moves through it, call by call, is walked in
tests/protocol/test_connection.py (``test_state_table``).
"""

from __future__ import annotations

import itertools

import pytest

from wsserver.protocol.state import TRANSITIONS, State

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
