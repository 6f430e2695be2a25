"""Tools for testing WebSocket servers, wsserver's own and others.

``wire``: a client's bytes (frames, Close bodies, opening handshakes) written
from RFC 6455 with the standard library alone, independent of
``wsserver.protocol``, so that it can serve as the reference the server is
checked against.  Nothing in wsserver imports this package.
"""

from __future__ import annotations

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
    "accept_for",
    "apply_mask",
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
]
