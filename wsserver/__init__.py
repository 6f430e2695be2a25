"""wsserver: a full-protocol WebSocket server for Python, on asyncio.

The public API is re-exported here; the protocol core is
``wsserver.protocol`` and the asyncio server ``wsserver.server``.
"""

from __future__ import annotations

__version__ = "0.1.0"

from .protocol import CloseCode, DeflateSettings, ProtocolSettings
from .server import (
    App,
    Disconnect,
    HTMLResponse,
    JSONResponse,
    OriginPolicy,
    PlainTextResponse,
    RedirectResponse,
    Request,
    Response,
    Route,
    Server,
    ServerConfig,
    StaticFiles,
    StreamingResponse,
    WebSocket,
    WebSocketDisconnect,
    WebSocketRoute,
    WebSocketState,
    WebSocketView,
    broadcast,
    secrets_equal,
    serve,
)

__all__ = [
    "App",
    "CloseCode",
    "DeflateSettings",
    "Disconnect",
    "HTMLResponse",
    "JSONResponse",
    "OriginPolicy",
    "PlainTextResponse",
    "ProtocolSettings",
    "RedirectResponse",
    "Request",
    "Response",
    "Route",
    "Server",
    "ServerConfig",
    "StaticFiles",
    "StreamingResponse",
    "WebSocket",
    "WebSocketDisconnect",
    "WebSocketRoute",
    "WebSocketState",
    "WebSocketView",
    "__version__",
    "broadcast",
    "secrets_equal",
    "serve",
]
