"""Tools for testing applications and WebSocket servers, wsserver's own and others.

- ``client``: ``TestClient``, an application served in memory (no socket)
  by the real server, with an HTTP client and ``wsserver.client``'s
  WebSocket on the other side (docs/testing.md);
- ``transport``: the in-memory transport pair under it;
- ``plugins``: helpers for the browser plugins' wire messages (a component
  event and its patches, ``send_and_wait``, ``execute_js``); imported by
  name, since it imports the plugins;
- ``wire``: a client's bytes (frames, Close bodies, opening handshakes)
  written from RFC 6455 with the standard library alone, independent of
  ``wsserver.protocol``, so that it can serve as the reference the server is
  checked against.

Nothing in wsserver imports this package.
"""

from __future__ import annotations

from .client import TestClient, TestResponse, WebSocketConnect, as_application
from .transport import MemoryTransport, transport_pair
from .wire import (
    GUID,
    OP_BINARY,
    OP_CLOSE,
    OP_CONTINUATION,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    FrameHeader,
    accept_for,
    apply_mask,
    client_frame,
    client_handshake,
    close_frame,
    close_payload,
    frame_header_size,
    handshake_fields,
    http_request,
    minimal_length_bits,
    random_key,
    random_mask,
    read_frame_header,
)

__all__ = [
    "GUID",
    "OP_BINARY",
    "OP_CLOSE",
    "OP_CONTINUATION",
    "OP_PING",
    "OP_PONG",
    "OP_TEXT",
    "FrameHeader",
    "MemoryTransport",
    "TestClient",
    "TestResponse",
    "WebSocketConnect",
    "accept_for",
    "apply_mask",
    "as_application",
    "client_frame",
    "client_handshake",
    "close_frame",
    "close_payload",
    "frame_header_size",
    "handshake_fields",
    "http_request",
    "minimal_length_bits",
    "random_key",
    "random_mask",
    "read_frame_header",
    "transport_pair",
]
