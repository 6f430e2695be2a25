"""The connection's four states, and the only moves between them.

RFC 6455 section 4.1 names CONNECTING and OPEN, section 7.1.3 "The WebSocket
Closing Handshake is Started" (CLOSING) and section 7.1.4 "The WebSocket
Connection is Closed" (CLOSED).  ``ServerConnection`` changes state only
through ``TRANSITIONS``, so this table is the whole state machine; the tests
walk every pair.
"""

from __future__ import annotations

import enum

__all__ = ["TRANSITIONS", "State"]


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


#: state -> the states it may move to.
TRANSITIONS: dict[State, frozenset[State]] = {
    # 101 sent; or a rejection / a connection-closing HTTP response / EOF.
    State.CONNECTING: frozenset({State.OPEN, State.CLOSED}),
    # We sent Close or failed (CLOSING); the peer's Close was answered, or
    # the transport ended (CLOSED).
    State.OPEN: frozenset({State.CLOSING, State.CLOSED}),
    # The peer's Close arrived, or the transport ended.
    State.CLOSING: frozenset({State.CLOSED}),
    State.CLOSED: frozenset(),
}
