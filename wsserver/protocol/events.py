"""What the protocol core tells its caller: small frozen dataclasses.

The caller drains them with ``ServerConnection.events()`` after each
``receive_data`` / ``receive_eof``.  Headers are ``(name, value)`` pairs of
``str``: names lowercased, both decoded as ISO-8859-1 so that every byte
survives (RFC 9110 section 5.5: field values are octets).
"""

from __future__ import annotations

from dataclasses import dataclass

from .codes import HandshakeFailure
from .headers import ExtensionOffer

__all__ = [
    "BinaryMessage",
    "CloseReceived",
    "ConnectionFailed",
    "ConnectionLost",
    "Event",
    "HTTPRequest",
    "HandshakeAccepted",
    "HandshakeFailed",
    "Headers",
    "Ping",
    "Pong",
    "RequestBody",
    "RequestRejected",
    "TextMessage",
    "WebSocketRequest",
]

Headers = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class WebSocketRequest:
    """A valid opening handshake (RFC 6455 section 4.2.1) awaiting an answer.

    Answer it with ``accept()`` or ``reject()``.

    Attributes:
        target: the request-target, path and query, as sent.
        headers: all request headers, in order.
        subprotocols: the ``Sec-WebSocket-Protocol`` offers, in the client's
            order of preference.
        extensions: the ``Sec-WebSocket-Extensions`` offers, in order.
    """

    target: str
    headers: Headers
    subprotocols: tuple[str, ...]
    extensions: tuple[ExtensionOffer, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class HTTPRequest:
    """A plain HTTP request (no upgrade), with its whole body.

    Answer it with ``send_response()``; the connection then waits for the
    next request if both sides keep it alive.

    Attributes:
        streamed: the body was not read with the head: it comes as
            ``RequestBody`` events, one per ``next_event()`` call, as the
            caller asks for it (a connection made with ``stream_bodies``).
            ``body`` is then empty.
    """

    method: str
    target: str
    headers: Headers
    http_version: str
    body: bytes
    streamed: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestBody:
    """The next piece of a streamed request body (``HTTPRequest.streamed``).

    Attributes:
        data: the bytes that arrived since the last piece (may be empty
            for the last one).
        more: whether more of the body is to come; ``False`` on the last.
    """

    data: bytes
    more: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestRejected:
    """The core answered an invalid request with an HTTP error by itself.

    The response is already queued in ``data_to_send()``; the connection is
    closed after it.  This is the HTTP-phase counterpart of
    ``ConnectionFailed``.
    """

    status: int
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class TextMessage:
    """A complete text message, validated as UTF-8."""

    data: str


@dataclass(frozen=True, slots=True, kw_only=True)
class BinaryMessage:
    """A complete binary message."""

    data: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class Ping:
    """The peer sent a ping; the core has already queued the pong."""

    payload: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class Pong:
    """The peer sent a pong.

    Attributes:
        payload: the pong's application data.
        acknowledged: payloads of pings this connection sent that the pong
            answers: the matching one and every earlier one still waiting,
            oldest first (a pong may answer only the latest ping, RFC 6455
            section 5.5.3).  Empty for an unsolicited pong.
    """

    payload: bytes
    acknowledged: tuple[bytes, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class CloseReceived:
    """The peer sent a Close frame.

    If the peer started the closing handshake, the core has already queued
    the answering Close (section 5.5.1).  ``code`` is 1005
    (``NO_STATUS_RECEIVED``) for a Close frame without a body.
    """

    code: int
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionFailed:
    """The peer broke the protocol; the core failed the connection.

    RFC 6455 section 7.1.7: the Close frame carrying ``code`` and ``reason``
    is queued in ``data_to_send()``.  No further message event follows.
    """

    code: int
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionLost:
    """The transport reached end of file before the closing handshake ended.

    RFC 6455 section 7.1.5: the close code is then 1006
    (``ABNORMAL_CLOSURE``), unless a Close frame had been received.
    """

    code: int
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class HandshakeAccepted:
    """A client's handshake succeeded: the server's 101 passed every check.

    RFC 6455 section 4.1: the connection is now OPEN.

    Attributes:
        headers: the response headers, in order.
        subprotocol: the subprotocol the server chose among ours, or ``None``.
        extensions: the ``Sec-WebSocket-Extensions`` value agreed, or ``None``.
    """

    headers: Headers
    subprotocol: str | None
    extensions: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class HandshakeFailed:
    """A client's handshake failed: the connection is CLOSED.

    Attributes:
        failure: which rule of RFC 6455 section 4.1 (or RFC 7692 section 7)
            the response broke; ``INVALID_STATUS`` for any status but 101,
            a redirect among them (the caller may follow its ``Location``).
        reason: a short explanation.
        status: the response's status code, ``None`` if none was read.
        headers: its headers (``()`` if none were read).
        body: its body, cut at ``ProtocolSettings.max_body_size``.
    """

    failure: HandshakeFailure
    reason: str
    status: int | None
    headers: Headers
    body: bytes


Event = (
    WebSocketRequest
    | HTTPRequest
    | RequestBody
    | RequestRejected
    | HandshakeAccepted
    | HandshakeFailed
    | TextMessage
    | BinaryMessage
    | Ping
    | Pong
    | CloseReceived
    | ConnectionFailed
    | ConnectionLost
)
