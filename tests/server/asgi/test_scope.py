"""The ASGI scopes built from a ``Request`` and from a live ``WebSocket``."""

from __future__ import annotations

import asyncio
from typing import Any

from wsserver.server import Server, ServerConfig
from wsserver.server.asgi import ASGIApp
from wsserver.server.asgi.scope import (
    ASGI_VERSION,
    COMPRESS_KEY,
    http_scope,
    lifespan_scope,
)
from wsserver.server.datastructures import Address
from wsserver.server.requests import Request

from ..helpers import TIMEOUT, ws_client


def test_http_scope_from_a_request() -> None:
    request = Request(
        "POST",
        "/caf%C3%A9/a%2Fb?x=1&y=%20",
        [("host", "example.com:8080"), ("x-raw", "\xe9t\xe9")],
        b"body",
        scheme="https",
        client=Address("10.0.0.1", 5000),
        server=Address("10.0.0.2", 8080),
        http_version="1.0",
        root_path="/api",
    )
    state = {"db": object()}
    scope = http_scope(request, state)
    assert scope == {
        "type": "http",
        "asgi": ASGI_VERSION,
        "http_version": "1.0",
        "method": "POST",
        "scheme": "https",
        "path": "/api/café/a/b",
        "raw_path": b"/api/caf%C3%A9/a%2Fb",
        "query_string": b"x=1&y=%20",
        "root_path": "/api",
        "headers": [(b"host", b"example.com:8080"), (b"x-raw", b"\xe9t\xe9")],
        "client": ("10.0.0.1", 5000),
        "server": ("10.0.0.2", 8080),
        "state": state,
        "extensions": {},
    }
    # A shallow copy: what the application adds stays in its own request.
    assert scope["state"] is not state
    assert scope["state"]["db"] is state["db"]
    assert scope["asgi"] is not ASGI_VERSION


def test_http_scope_without_addresses() -> None:
    scope = http_scope(Request("GET", "/", [("host", "h")]), {})
    assert scope["client"] is None
    assert scope["server"] is None
    assert scope["scheme"] == "http"
    assert scope["http_version"] == "1.1"


def test_lifespan_scope_shares_its_state() -> None:
    state: dict[str, Any] = {}
    scope = lifespan_scope(state)
    assert scope == {"type": "lifespan", "asgi": ASGI_VERSION, "state": state}
    assert scope["state"] is state


async def test_websocket_scope_of_a_live_handshake() -> None:
    seen: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
    scopes: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "websocket":
            raise AssertionError(scope["type"])
        scopes.append(scope)
        if not seen.done():
            seen.set_result(scope)
        await receive()
        await send({"type": "websocket.accept", "subprotocol": "chat"})
        await send({"type": "websocket.close"})

    server = Server(ASGIApp(app), ServerConfig(port=0, ping_interval=None, root_path="/api"))
    await server.start()
    try:
        for _ in range(2):
            async with ws_client(
                server, "/r%C3%A9/1?q=%C3%A9", subprotocols=["chat", "other"]
            ) as client:
                await asyncio.wait_for(client.wait_closed(), TIMEOUT)
    finally:
        await server.shutdown()
    # Each scope has dictionaries of its own: what one application changes,
    # the next does not see.
    first, second = scopes
    for key in ("asgi", "state", "extensions"):
        assert first[key] == second[key]
        assert first[key] is not second[key]
    for name in first["extensions"]:
        assert first["extensions"][name] is not second["extensions"][name]
    assert first["headers"] is not second["headers"]
    scope = seen.result()
    headers = dict(scope.pop("headers"))
    assert headers[b"sec-websocket-protocol"] == b"chat, other"
    assert headers[b"host"] == f"127.0.0.1:{server_port(scope)}".encode()
    client_address = scope.pop("client")
    assert client_address[0] == "127.0.0.1"
    assert isinstance(client_address[1], int)
    assert scope == {
        "type": "websocket",
        "asgi": ASGI_VERSION,
        "http_version": "1.1",
        "scheme": "ws",
        "path": "/api/ré/1",
        "raw_path": b"/api/r%C3%A9/1",
        "query_string": b"q=%C3%A9",
        "root_path": "/api",
        "server": ("127.0.0.1", server_port(scope)),
        "subprotocols": ["chat", "other"],
        "state": {},
        "extensions": {"websocket.http.response": {}, COMPRESS_KEY: {}},
    }


def server_port(scope: dict[str, Any]) -> int:
    port: int = scope["server"][1]
    return port
