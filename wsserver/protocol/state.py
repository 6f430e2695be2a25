"""The connection's four states, and the table that decides every move.

RFC 6455 section 4.1 names CONNECTING and OPEN, section 7.1.3 "The WebSocket
Closing Handshake is Started" (CLOSING) and section 7.1.4 "The WebSocket
Connection is Closed" (CLOSED).

``TRANSITION_TABLE`` is the whole state machine, in the shape of h11's
``EVENT_TRIGGERED_TRANSITIONS``: ``TRANSITION_TABLE[state][trigger]`` is the
state a ``Trigger`` leads to, and a trigger missing from a state's row is not
allowed there.  ``ServerConnection`` asks the table before every application
call that sends or closes, and changes state only through ``transition``;
moves that leave the state as it is (sending a message while OPEN, ``fail()``
once CLOSED) are in the table too, so that the table also says what is
allowed.

A move the table refuses raises the error of whoever asked for it, as h11
does: ``LocalProtocolError`` for the application's calls (the caller's bug),
``RemoteProtocolError`` for what the peer did.  ``ServerConnection`` only
reads from the peer in states whose rows hold every peer trigger, so the
remote case never escapes it; it exists so that the table alone answers.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

from .exceptions import LocalProtocolError, RemoteProtocolError, WebSocketProtocolError

__all__ = ["TRANSITIONS", "TRANSITION_TABLE", "State", "Trigger", "refusal", "transition"]


class State(enum.Enum):
    """Where a connection is in its life."""

    #: Reading HTTP requests: plain requests (kept alive) or one upgrade.
    CONNECTING = "CONNECTING"
    #: The 101 was sent: messages flow both ways.
    OPEN = "OPEN"
    #: A Close frame was sent, or the connection was failed; waiting for the
    #: peer's Close (or the transport's end).
    CLOSING = "CLOSING"
    #: Nothing more can be sent or received; the transport must be closed.
    CLOSED = "CLOSED"


class Trigger(enum.StrEnum):
    """What may move a connection: an application call, or the peer's doing.

    The value completes "cannot ... in state X" in the error for a refused
    move.  A ``StrEnum`` hashes as its string, in C: the connection looks
    its triggers up in the table on every send.
    """

    # The application's calls (local).
    #: ``accept()``: the 101 response (RFC 6455 section 4.2.2).
    ACCEPT = "accept the handshake"
    #: ``reject()``: any other HTTP response to the upgrade request.
    REJECT = "reject the handshake"
    #: ``send_text``, ``send_bytes``, ``send_prepared``.
    SEND_MESSAGE = "send a message"
    #: ``send_fragment`` (section 5.4).
    SEND_FRAGMENT = "send a fragment"
    #: ``send_ping`` (section 5.5.2).
    SEND_PING = "send a ping"
    #: ``send_pong``, and the automatic answer to a ping (section 5.5.3).
    SEND_PONG = "send a pong"
    #: ``send_close``, and the echo of the peer's Close (section 5.5.1).
    SEND_CLOSE = "close"
    #: ``fail()``: _Fail the WebSocket Connection_ from our side (7.1.7).
    FAIL = "fail the connection"

    # The peer's doing (remote), as the connection reads it.
    #: A client read a 101 response that passes every check of RFC 6455
    #: section 4.1 (the client's side of ``ACCEPT``).
    HANDSHAKE_COMPLETED = "complete the handshake"
    #: The HTTP phase ended without an upgrade: an invalid request was
    #: answered, a response closed the connection, or the peer hung up (for
    #: a client: any response that fails the handshake).
    HTTP_CLOSED = "end the connection in the HTTP phase"
    #: A Close frame arrived (section 5.5.1).
    CLOSE_RECEIVED = "send a Close frame"
    #: The peer broke the protocol: _Fail the WebSocket Connection_ (7.1.7).
    PROTOCOL_ERROR = "break the protocol"
    #: The transport reached end of file (section 7.1.5: 1006).
    EOF = "end the transport"

    @property
    def by_peer(self) -> bool:
        """Whether the peer, not the application, causes this move."""
        return self in _PEER_TRIGGERS


_PEER_TRIGGERS = frozenset(
    {
        Trigger.HANDSHAKE_COMPLETED,
        Trigger.HTTP_CLOSED,
        Trigger.CLOSE_RECEIVED,
        Trigger.PROTOCOL_ERROR,
        Trigger.EOF,
    }
)

_CONNECTING, _OPEN, _CLOSING, _CLOSED = State.CONNECTING, State.OPEN, State.CLOSING, State.CLOSED

#: state -> trigger -> the state it leads to.  A trigger not in a state's
#: row is refused in that state.
TRANSITION_TABLE: Mapping[State, Mapping[Trigger, State]] = {
    _CONNECTING: {
        Trigger.ACCEPT: _OPEN,
        Trigger.HANDSHAKE_COMPLETED: _OPEN,
        Trigger.REJECT: _CLOSED,
        Trigger.HTTP_CLOSED: _CLOSED,
    },
    _OPEN: {
        Trigger.SEND_MESSAGE: _OPEN,
        Trigger.SEND_FRAGMENT: _OPEN,
        Trigger.SEND_PING: _OPEN,
        Trigger.SEND_PONG: _OPEN,
        # Section 7.1.2: "the endpoint ... MUST send a Close control frame";
        # section 7.1.3: the closing handshake is started.
        Trigger.SEND_CLOSE: _CLOSING,
        Trigger.FAIL: _CLOSED,
        # Section 5.5.1: the peer's Close is echoed, then "the underlying TCP
        # connection" is closed.
        Trigger.CLOSE_RECEIVED: _CLOSED,
        Trigger.PROTOCOL_ERROR: _CLOSED,
        Trigger.EOF: _CLOSED,
    },
    # Section 5.5.1: "after sending a Close frame, the endpoint MUST NOT send
    # any more data frames"; messages still arrive until the peer's Close.
    _CLOSING: {
        Trigger.FAIL: _CLOSED,
        Trigger.CLOSE_RECEIVED: _CLOSED,
        Trigger.PROTOCOL_ERROR: _CLOSED,
        Trigger.EOF: _CLOSED,
    },
    _CLOSED: {
        # Failing a connection that is over already does nothing.
        Trigger.FAIL: _CLOSED,
    },
}

#: state -> the other states it may move to, derived from the table.
TRANSITIONS: dict[State, frozenset[State]] = {
    state: frozenset(after for after in row.values() if after is not state)
    for state, row in TRANSITION_TABLE.items()
}

# Refusals that deserve a hint at what to call instead.
_ADVICE: dict[tuple[State, Trigger], str] = {
    (_CONNECTING, Trigger.FAIL): "before the handshake, use reject()",
}


def refusal(state: State, trigger: Trigger) -> WebSocketProtocolError:
    """The error for ``trigger`` in ``state``, a move the table does not allow.

    ``RemoteProtocolError`` when the peer caused it, else
    ``LocalProtocolError``, whose message names the call and the state.
    """
    if trigger.by_peer:
        return RemoteProtocolError(f"the peer cannot {trigger.value} in state {state.name}")
    message = f"cannot {trigger.value} in state {state.name}"
    advice = _ADVICE.get((state, trigger))
    return LocalProtocolError(f"{message}: {advice}" if advice else message)


def transition(state: State, trigger: Trigger) -> State:
    """The state ``trigger`` moves a connection in ``state`` to.

    Raises:
        LocalProtocolError: the application asked for a move the table does
            not allow in ``state``.
        RemoteProtocolError: the peer did.
    """
    try:
        return TRANSITION_TABLE[state][trigger]
    except KeyError:
        raise refusal(state, trigger) from None
