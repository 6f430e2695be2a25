"""The asyncio server around the protocol core: connections, the WebSocket
API, views, routing, the HTTP side and graceful shutdown."""

from __future__ import annotations

from .app import App, Application, Authenticator, as_app
from .broadcast import broadcast
from .config import ServerConfig
from .datastructures import URL, Address, Headers, MutableHeaders, QueryParams, State
from .decoding import MessageDecoder, MessageRefused
from .requests import Request
from .responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from .routing import Mount, Route, Router, WebSocketRoute
from .security import OriginPolicy, secrets_equal
from .server import Server, serve
from .static import StaticFiles, choose_encoding, etag_matches
from .views import WebSocketView
from .websocket import (
    Disconnect,
    Message,
    MessageStream,
    WebSocket,
    WebSocketDisconnect,
    WebSocketState,
)

__all__ = [
    "URL",
    "Address",
    "App",
    "Application",
    "Authenticator",
    "Disconnect",
    "HTMLResponse",
    "Headers",
    "JSONResponse",
    "Message",
    "MessageDecoder",
    "MessageRefused",
    "MessageStream",
    "Mount",
    "MutableHeaders",
    "OriginPolicy",
    "PlainTextResponse",
    "QueryParams",
    "RedirectResponse",
    "Request",
    "Response",
    "Route",
    "Router",
    "Server",
    "ServerConfig",
    "State",
    "StaticFiles",
    "StreamingResponse",
    "WebSocket",
    "WebSocketDisconnect",
    "WebSocketRoute",
    "WebSocketState",
    "WebSocketView",
    "as_app",
    "broadcast",
    "choose_encoding",
    "etag_matches",
    "secrets_equal",
    "serve",
]
