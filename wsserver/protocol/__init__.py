"""The sans-I/O WebSocket engine: RFC 6455 and RFC 7692, bytes in, events out.

Nothing in this package performs I/O, reads a clock or starts a thread; the
asyncio server in ``wsserver.server`` drives it, and so can anything else.
See docs/protocol.md for the drive loop.
"""

from __future__ import annotations

from .codes import CloseCode, Opcode, is_valid_received_close_code
from .connection import ServerConnection
from .events import (
    BinaryMessage,
    CloseReceived,
    ConnectionFailed,
    ConnectionLost,
    Event,
    Headers,
    HTTPRequest,
    Ping,
    Pong,
    RequestBody,
    RequestRejected,
    TextMessage,
    WebSocketRequest,
)
from .exceptions import (
    FrameError,
    HandshakeError,
    LocalProtocolError,
    RemoteProtocolError,
    WebSocketProtocolError,
)
from .extensions.permessage_deflate import DeflateSettings
from .headers import ExtensionOffer
from .settings import ProtocolSettings
from .state import State

__all__ = [
    "BinaryMessage",
    "CloseCode",
    "CloseReceived",
    "ConnectionFailed",
    "ConnectionLost",
    "DeflateSettings",
    "Event",
    "ExtensionOffer",
    "FrameError",
    "HTTPRequest",
    "HandshakeError",
    "Headers",
    "LocalProtocolError",
    "Opcode",
    "Ping",
    "Pong",
    "ProtocolSettings",
    "RemoteProtocolError",
    "RequestBody",
    "RequestRejected",
    "ServerConnection",
    "State",
    "TextMessage",
    "WebSocketProtocolError",
    "WebSocketRequest",
    "is_valid_received_close_code",
]
