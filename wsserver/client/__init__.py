"""The WebSocket client: ``connect(uri)``, on asyncio and the same sans-I/O engine.

A layer beside the server: it imports ``wsserver.protocol`` and the standard
library, nothing else of wsserver.  See docs/client.md.
"""

from __future__ import annotations

from wsserver.protocol import ClientDeflateSettings

from .connect import connect
from .connection import ClientWebSocket, Data
from .exceptions import (
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    HandshakeTimeout,
    InvalidAccept,
    InvalidExtension,
    InvalidHandshake,
    InvalidMessage,
    InvalidStatus,
    InvalidSubprotocol,
    InvalidUpgrade,
    InvalidURI,
    NegotiationError,
    TooManyRedirects,
)
from .uri import WebSocketURI, parse_uri

__all__ = [
    "ClientDeflateSettings",
    "ClientWebSocket",
    "ConnectionClosed",
    "ConnectionClosedError",
    "ConnectionClosedOK",
    "Data",
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
    "WebSocketURI",
    "connect",
    "parse_uri",
]
