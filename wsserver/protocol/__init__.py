"""The sans-I/O WebSocket engine, server and client: RFC 6455 and RFC 7692.

Nothing in this package performs I/O, reads a clock or starts a thread; the
asyncio server in ``wsserver.server`` drives it, and so can anything else.
See docs/protocol.md for the drive loop.
"""

from __future__ import annotations

# First, before any module that may be compiled: importing build_info
# refuses compiled copies older than their source (an in-place build that a
# later edit made stale).
from . import build_info as build_info
from .client import ClientConnection
from .codes import CloseCode, HandshakeFailure, Opcode, is_valid_received_close_code
from .connection import ServerConnection
from .events import (
    BinaryMessage,
    CloseReceived,
    ConnectionFailed,
    ConnectionLost,
    Event,
    HandshakeAccepted,
    HandshakeFailed,
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
    InvalidResponse,
    LocalProtocolError,
    RemoteProtocolError,
    WebSocketProtocolError,
)
from .extensions.permessage_deflate import ClientDeflateSettings, DeflateSettings
from .headers import ExtensionOffer
from .settings import ProtocolSettings
from .state import State

__all__ = [
    "BinaryMessage",
    "ClientConnection",
    "ClientDeflateSettings",
    "CloseCode",
    "CloseReceived",
    "ConnectionFailed",
    "ConnectionLost",
    "DeflateSettings",
    "Event",
    "ExtensionOffer",
    "FrameError",
    "HTTPRequest",
    "HandshakeAccepted",
    "HandshakeError",
    "HandshakeFailed",
    "HandshakeFailure",
    "Headers",
    "InvalidResponse",
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
