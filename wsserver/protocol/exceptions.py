"""The two families of errors, as h11 has them.

::

    WebSocketProtocolError
    ├── LocalProtocolError      the application misused the API (a bug in the caller)
    └── RemoteProtocolError     the peer broke the protocol
        ├── FrameError          ... after the handshake: carries the close code
        ├── HandshakeError      ... in the HTTP request: carries the HTTP status
        └── InvalidResponse     ... in the server's HTTP response (client role):
                                    carries the ``HandshakeFailure``

A peer's error never escapes ``receive_data``: the connection turns it into a
close frame or an HTTP response and a terminal event.  The remote family exists
so that each rule can be raised where it is checked and mapped in one place.
``LocalProtocolError`` is raised to the caller: it means the caller's code is
wrong, and the message names the mistake.
"""

from __future__ import annotations

from .codes import CloseCode, HandshakeFailure

__all__ = [
    "FrameError",
    "HandshakeError",
    "InvalidResponse",
    "LocalProtocolError",
    "RemoteProtocolError",
    "WebSocketProtocolError",
]


class WebSocketProtocolError(Exception):
    """Base class of every error the protocol core raises."""


class LocalProtocolError(WebSocketProtocolError):
    """The application asked for something the protocol does not allow now.

    For example sending a message before the handshake completed, or a close
    code that may not be sent.  This is a bug in the caller, never the peer's
    doing.
    """


class RemoteProtocolError(WebSocketProtocolError):
    """The peer sent something the RFCs forbid."""


class FrameError(RemoteProtocolError):
    """The peer broke a framing, message or extension rule.

    Attributes:
        code: the close code to fail the connection with.
        reason: a short explanation, sent as the close reason (at most 123
            bytes of UTF-8, the room a control frame leaves).
    """

    def __init__(self, code: CloseCode, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class HandshakeError(RemoteProtocolError):
    """The peer's HTTP request cannot be accepted.

    Attributes:
        status: the HTTP status code of the answer.
        reason: a short plain-text explanation, used as the response body.
        headers: extra response headers the status calls for (``Allow`` for
            405, ``Sec-WebSocket-Version`` for 426).
    """

    def __init__(
        self,
        status: int,
        reason: str,
        headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        super().__init__(f"{status}: {reason}")
        self.status = status
        self.reason = reason
        self.headers = headers


class InvalidResponse(RemoteProtocolError):
    """The server's answer to our opening handshake fails it (client role).

    Attributes:
        failure: which rule it broke.
        reason: a short explanation.
    """

    def __init__(self, failure: HandshakeFailure, reason: str) -> None:
        super().__init__(reason)
        self.failure = failure
        self.reason = reason
