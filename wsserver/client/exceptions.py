"""The client's exceptions: one class per way a handshake fails, and the end.

Named as websockets names them where it has a name (``InvalidHandshake``,
``InvalidStatus``, ``InvalidMessage``, ``InvalidUpgrade``,
``NegotiationError``, ``InvalidURI``, ``ConnectionClosed``,
``ConnectionClosedOK``, ``ConnectionClosedError``), so that a user moving
from websockets finds them::

    InvalidURI (ValueError)             not a ws:// or wss:// URI
    InvalidHandshake                    the opening handshake failed
    ├── InvalidMessage                  not an HTTP/1.1 response, or cut short
    ├── InvalidStatus                   a status other than 101 (.status, .headers, .body)
    ├── InvalidUpgrade                  no Upgrade: websocket / Connection: Upgrade
    ├── InvalidAccept                   Sec-WebSocket-Accept is not our key's digest
    ├── NegotiationError                the server chose what we did not offer
    │   ├── InvalidSubprotocol
    │   └── InvalidExtension
    ├── HandshakeTimeout (TimeoutError) open_timeout passed
    └── TooManyRedirects                more than max_redirects redirects
    ConnectionClosed                    the connection is over (.code, .reason)
    ├── ConnectionClosedOK              ... after a closing handshake with 1000/1001/1005
    └── ConnectionClosedError           ... otherwise
"""

from __future__ import annotations

from wsserver.protocol import HandshakeFailed, HandshakeFailure, Headers

__all__ = [
    "ConnectionClosed",
    "ConnectionClosedError",
    "ConnectionClosedOK",
    "HandshakeTimeout",
    "InvalidAccept",
    "InvalidExtension",
    "InvalidHandshake",
    "InvalidMessage",
    "InvalidStatus",
    "InvalidSubprotocol",
    "InvalidURI",
    "InvalidUpgrade",
    "NegotiationError",
    "TooManyRedirects",
    "handshake_error",
]


class InvalidURI(ValueError):
    """The URI is not a ``ws://`` or ``wss://`` URI we can connect to."""


class InvalidHandshake(Exception):
    """The opening handshake failed (RFC 6455 section 4.1)."""


class InvalidMessage(InvalidHandshake):
    """The server's answer is not a valid HTTP/1.1 response, or was cut short."""


class InvalidStatus(InvalidHandshake):
    """The server answered with a status other than 101.

    Attributes:
        status: the status code.
        headers: the response headers, ``(name, value)`` with lowercase names.
        body: the start of the body (at most ``max_body_size`` bytes).
    """

    def __init__(self, status: int, headers: Headers = (), body: bytes = b"") -> None:
        super().__init__(f"server rejected WebSocket connection: HTTP {status}")
        self.status = status
        self.headers = headers
        self.body = body


class InvalidUpgrade(InvalidHandshake):
    """The 101 lacks ``Upgrade: websocket`` or ``Connection: Upgrade``."""


class InvalidAccept(InvalidHandshake):
    """``Sec-WebSocket-Accept`` is missing or is not the digest of our key."""


class NegotiationError(InvalidHandshake):
    """The server chose a subprotocol or an extension we did not offer."""


class InvalidSubprotocol(NegotiationError):
    """The server chose a subprotocol we did not offer."""


class InvalidExtension(NegotiationError):
    """The server accepted an extension, or parameters, we did not offer."""


class HandshakeTimeout(InvalidHandshake, TimeoutError):
    """The handshake (with its redirects) took longer than ``open_timeout``."""


class TooManyRedirects(InvalidHandshake):
    """The server redirected more than ``max_redirects`` times."""


class ConnectionClosed(Exception):
    """The connection is closed: nothing more can be sent or received.

    Attributes:
        code: the close code received (1005: a Close without one; 1006: no
            Close frame at all).
        reason: the reason received.
        sent_code: the close code we sent, ``None`` if we sent none.
    """

    def __init__(self, code: int, reason: str, sent_code: int | None) -> None:
        super().__init__(f"connection closed: {code} {reason}".rstrip())
        self.code = code
        self.reason = reason
        self.sent_code = sent_code


class ConnectionClosedOK(ConnectionClosed):
    """The closing handshake completed with 1000, 1001 or no status."""


class ConnectionClosedError(ConnectionClosed):
    """The connection ended otherwise: an error code, a failure, no Close."""


_FAILURES: dict[HandshakeFailure, type[InvalidHandshake]] = {
    HandshakeFailure.INVALID_MESSAGE: InvalidMessage,
    HandshakeFailure.INVALID_UPGRADE: InvalidUpgrade,
    HandshakeFailure.INVALID_ACCEPT: InvalidAccept,
    HandshakeFailure.INVALID_EXTENSION: InvalidExtension,
    HandshakeFailure.INVALID_SUBPROTOCOL: InvalidSubprotocol,
}


def handshake_error(event: HandshakeFailed) -> InvalidHandshake:
    """The exception for a failed opening handshake (redirects are not followed here).

    ``connect()`` follows a 3xx with a ``Location`` before it gets here; the
    in-memory test client (``wsserver.testing``) raises this as it is.
    """
    if event.failure is HandshakeFailure.INVALID_STATUS:
        assert event.status is not None
        return InvalidStatus(event.status, event.headers, event.body)
    return _FAILURES[event.failure](event.reason)
