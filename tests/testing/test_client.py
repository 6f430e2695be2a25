"""``TestClient``: each kind of application served in memory, HTTP and WebSocket."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest

from wsserver.client import (
    ClientWebSocket,
    ConnectionClosedError,
    ConnectionClosedOK,
    InvalidStatus,
)
from wsserver.protocol import ProtocolSettings
from wsserver.server import (
    App,
    JSONResponse,
    PlainTextResponse,
    Request,
    Response,
    Route,
    ServerConfig,
    WebSocket,
    WebSocketRoute,
    WebSocketView,
)
from wsserver.server.asgi import ASGIApp
from wsserver.testing import TestClient, TestResponse, as_application
from wsserver.testing.transport import MemoryTransport

# -- applications ---------------------------------------------------------------


async def echo_request(request: Request) -> Response:
    return JSONResponse(
        {
            "method": request.method,
            "path": request.url.path,
            "query": dict(request.query_params),
            "body": request.body.decode("utf-8"),
            "content_type": request.headers.get("content-type"),
            "custom": request.headers.get("x-custom"),
            "host": request.headers.get("host"),
            "client": request.client[0] if request.client else None,
        },
        headers={"X-Answer": "42"},
    )


async def echo(websocket: WebSocket) -> None:
    await websocket.accept(
        subprotocol=websocket.subprotocols[0] if websocket.subprotocols else None
    )
    async for message in websocket.iter_text():
        if message == "headers":
            await websocket.send_text(websocket.headers.get("x-token", "-"))
        elif message == "bye":
            await websocket.close(4001, "bye now")
            return
        else:
            await websocket.send_text(message)


async def plain(request: Request) -> Response:
    return PlainTextResponse("plain text\n")


async def failing_http(request: Request) -> Response:
    raise RuntimeError("the handler broke")


async def failing_websocket(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.receive()
    raise RuntimeError("the socket handler broke")


async def forbidden(websocket: WebSocket) -> Response | None:
    if websocket.headers.get("authorization") != "Bearer ok":
        return PlainTextResponse("no entry\n", status_code=403, headers={"X-Why": "token"})
    return None


METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def native_app(**options: Any) -> App:
    return App(
        [
            Route("/echo", echo_request, methods=[*METHODS, "HEAD"]),
            Route("/fail", failing_http),
            Route("/plain", plain),
            WebSocketRoute("/ws", echo),
            WebSocketRoute("/ws/fail", failing_websocket),
        ],
        **options,
    )


class Upper(WebSocketView):
    encoding = "text"

    async def on_receive(self, websocket: WebSocket, data: Any) -> None:
        await websocket.send_text(str(data).upper())


async def asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            event = await receive()
            if event["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif event["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    elif scope["type"] == "http":
        body = b""
        while True:
            event = await receive()
            body += event.get("body", b"")
            if not event.get("more_body"):
                break
        await send(
            {
                "type": "http.response.start",
                "status": 201,
                "headers": [(b"content-type", b"text/plain")],
            }
        )
        await send(
            {
                "type": "http.response.body",
                "body": b"asgi " + scope["method"].encode(),
                "more_body": True,
            }
        )
        await send({"type": "http.response.body", "body": b" " + body})
    elif scope["type"] == "websocket":
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        event = await receive()
        await send({"type": "websocket.send", "text": f"asgi {event['text']}"})
        await send({"type": "websocket.close", "code": 4100, "reason": "asgi done"})


# -- HTTP ---------------------------------------------------------------------


async def test_get_reads_status_headers_and_json() -> None:
    async with TestClient(native_app()) as client:
        response = await client.get("/echo?a=1", params={"b": "2"}, headers={"X-Custom": "yes"})
    assert isinstance(response, TestResponse)
    assert response.status_code == response.status == 200
    assert response.reason == "OK"
    assert response.headers["x-answer"] == "42"
    assert response.headers["content-type"] == "application/json"
    data = response.json()
    assert data == {
        "method": "GET",
        "path": "/echo",
        "query": {"a": "1", "b": "2"},
        "body": "",
        "content_type": None,
        "custom": "yes",
        "host": "testserver",
        "client": "127.0.0.1",
    }
    assert json.loads(response.text) == data == json.loads(response.body)


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
async def test_every_verb_reaches_the_route_with_its_body(method: str) -> None:
    async with TestClient(native_app()) as client:
        call = getattr(client, method.lower())
        response = await call("/echo", content="payload")
    assert response.status_code == 200
    assert response.json()["method"] == method
    assert response.json()["body"] == "payload"


async def test_head_has_the_headers_and_no_body() -> None:
    async with TestClient(native_app()) as client:
        get = await client.get("/plain")
        head = await client.head("/plain")
    assert head.status_code == 200
    assert head.body == b""
    assert head.headers["content-length"] == get.headers["content-length"] == "11"
    assert get.text == "plain text\n"


async def test_post_json_and_form_bodies() -> None:
    async with TestClient(native_app()) as client:
        as_json = await client.post("/echo", json={"x": [1, 2]})
        as_form = await client.post("/echo", data={"name": "ann smith"})
    assert as_json.json()["content_type"] == "application/json"
    assert json.loads(as_json.json()["body"]) == {"x": [1, 2]}
    assert as_form.json()["content_type"] == "application/x-www-form-urlencoded"
    assert as_form.json()["body"] == "name=ann+smith"


async def test_unknown_path_and_wrong_method_are_the_routers_answers() -> None:
    async with TestClient(native_app()) as client:
        missing = await client.get("/nowhere")
        wrong = await client.post("/fail")
    assert missing.status_code == 404
    assert wrong.status_code == 405
    assert "GET" in wrong.headers["allow"]


async def test_http_handler_exception_is_500_with_its_log_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR, logger="wsserver"):
        async with TestClient(native_app()) as client:
            response = await client.get("/fail")
    assert response.status_code == 500
    lines = [r for r in caplog.records if "error in HTTP handler for /fail" in r.getMessage()]
    assert len(lines) == 1
    assert lines[0].exc_info is not None
    assert "the handler broke" in str(lines[0].exc_info[1])


async def test_text_uses_the_charset_of_the_content_type() -> None:
    async def latin(request: Request) -> Response:
        return Response("café".encode("latin-1"), media_type="text/plain; charset=latin-1")

    async with TestClient(App([Route("/", latin)])) as client:
        response = await client.get("/")
    assert response.text == "café"
    assert repr(response) == "<TestResponse [200]>"


async def test_base_url_sets_host_and_prefix() -> None:
    async with TestClient(native_app(), base_url="http://example.org:8080/") as client:
        response = await client.get("/echo")
    assert response.json()["host"] == "example.org:8080"
    prefixed = App([Route("/api/echo", echo_request)])
    async with TestClient(prefixed, base_url="http://x/api/") as client:
        response = await client.get("/echo")
    assert response.json()["path"] == "/api/echo"
    for wrong in ("ws://x", "https://x", "testserver"):
        with pytest.raises(ValueError, match="base_url"):
            TestClient(native_app(), base_url=wrong)


async def test_client_address_is_what_the_server_sees() -> None:
    async with TestClient(native_app(), client=("10.1.2.3", 4321)) as client:
        response = await client.get("/echo")
    assert response.json()["client"] == "10.1.2.3"


async def test_a_handler_that_never_answers_fails_with_timeout() -> None:
    never = asyncio.Event()

    async def hang(request: Request) -> Response:
        await never.wait()
        return PlainTextResponse("late")

    config = ServerConfig(shutdown_timeout=0.1)
    async with TestClient(App([Route("/", hang)]), config, timeout=0.05) as client:
        with pytest.raises(TimeoutError):
            await client.get("/")


async def test_use_outside_async_with_is_refused() -> None:
    client = TestClient(native_app())
    with pytest.raises(RuntimeError, match="async with"):
        await client.get("/echo")


async def test_the_server_limits_apply() -> None:
    config = ServerConfig(protocol=ProtocolSettings(max_body_size=10))
    async with TestClient(native_app(), config) as client:
        response = await client.post("/echo", content=b"x" * 100)
    assert response.status_code == 413


# -- WebSocket: native app ---------------------------------------------------------


async def test_websocket_send_recv_iterate_close() -> None:
    async with TestClient(native_app()) as client:
        async with client.websocket_connect("/ws", subprotocols=["chat", "x"]) as ws:
            assert isinstance(ws, ClientWebSocket)
            assert ws.subprotocol == "chat"
            assert ws.extensions is not None and "permessage-deflate" in ws.extensions
            await ws.send("hello")
            assert await ws.recv() == "hello"
            await ws.send(["frag", "mented"])  # a fragmented message
            assert await ws.recv() == "fragmented"
            for word in ("a", "b"):
                await ws.send(word)
            received = []
            async for message in ws:
                received.append(message)
                if len(received) == 2:
                    break
            assert received == ["a", "b"]
            assert await ws.ping() >= 0.0
        assert ws.close_code == 1000


async def test_websocket_headers_reach_the_handler() -> None:
    async with TestClient(native_app()) as client:
        ws = await client.websocket_connect("/ws", headers={"X-Token": "t0k"}, compression=None)
        assert ws.extensions is None
        await ws.send("headers")
        assert await ws.recv() == "t0k"
        await ws.close()


async def test_server_close_code_and_reason_reach_the_client() -> None:
    async with TestClient(native_app()) as client, client.websocket_connect("/ws") as ws:
        await ws.send("bye")
        with pytest.raises(ConnectionClosedError) as closed:
            await ws.recv()
    assert closed.value.code == 4001
    assert closed.value.reason == "bye now"
    assert ws.close_code == 4001


async def test_rejected_handshake_status_headers_and_body_are_readable() -> None:
    async with TestClient(native_app(authenticate=forbidden)) as client:
        with pytest.raises(InvalidStatus) as refused:
            await client.websocket_connect("/ws")
        assert refused.value.status == 403
        assert refused.value.body == b"no entry\n"
        assert ("x-why", "token") in refused.value.headers
        ws = await client.websocket_connect("/ws", headers={"Authorization": "Bearer ok"})
        await ws.send("in")
        assert await ws.recv() == "in"
        await ws.close()


async def test_websocket_to_an_unknown_path_is_404() -> None:
    async with TestClient(native_app()) as client:
        with pytest.raises(InvalidStatus) as refused:
            await client.websocket_connect("/nowhere")
    assert refused.value.status == 404


async def test_protocol_error_too_big_message_is_1009() -> None:
    config = ServerConfig(protocol=ProtocolSettings(max_message_size=64))
    client = TestClient(native_app(), config)
    async with client, client.websocket_connect("/ws") as ws:
        await ws.send("x" * 1000)
        with pytest.raises(ConnectionClosedError) as closed:
            await ws.recv()
    assert closed.value.code == 1009


async def test_client_limit_too_big_message_from_the_server_is_1009() -> None:
    client = TestClient(native_app())
    async with client, client.websocket_connect("/ws", max_size=16) as ws:
        await ws.send("y" * 100)  # echoed: more than the client takes
        with pytest.raises(ConnectionClosedError) as closed:
            await ws.recv()
    assert closed.value.sent_code == 1009


async def test_websocket_handler_exception_is_1011_with_its_log_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR, logger="wsserver"):
        client = TestClient(native_app())
        async with client, client.websocket_connect("/ws/fail") as ws:
            await ws.send("boom")
            with pytest.raises(ConnectionClosedError) as closed:
                await ws.recv()
    assert closed.value.code == 1011
    lines = [
        r for r in caplog.records if "error in WebSocket handler for /ws/fail" in r.getMessage()
    ]
    assert len(lines) == 1
    assert "the socket handler broke" in str(lines[0].exc_info[1])  # type: ignore[index]


async def test_two_clients_on_one_app_at_once() -> None:
    room: set[WebSocket] = set()
    joined = asyncio.Event()

    async def chat(websocket: WebSocket) -> None:
        await websocket.accept()
        room.add(websocket)
        if len(room) == 2:
            joined.set()
        try:
            async for message in websocket.iter_text():
                for member in list(room):
                    await member.send_text(message)
        finally:
            room.discard(websocket)

    client = TestClient(App([WebSocketRoute("/chat", chat)]))
    async with (
        client,
        client.websocket_connect("/chat") as ann,
        client.websocket_connect("/chat") as bob,
    ):
        await joined.wait()
        assert len(client.server.websockets) == 2
        await asyncio.gather(ann.send("from ann"), bob.send("from bob"))
        ann_got = {await ann.recv(), await ann.recv()}
        bob_got = {await bob.recv(), await bob.recv()}
    assert ann_got == bob_got == {"from ann", "from bob"}


async def test_leaving_the_client_closes_open_websockets_with_1001() -> None:
    async with TestClient(native_app()) as client:
        ws = await client.websocket_connect("/ws")
        await ws.send("still here")
        assert await ws.recv() == "still here"
        # Back in recv() (else the client holds its answer to the server's
        # Close for close_timeout, its rule for an application still busy).
        reading = asyncio.create_task(ws.recv())
    with pytest.raises(ConnectionClosedOK) as closed:
        await reading
    assert closed.value.code == 1001


async def test_a_handshake_never_answered_fails_with_timeout() -> None:
    never = asyncio.Event()

    async def silent(websocket: WebSocket) -> None:
        await never.wait()

    config = ServerConfig(shutdown_timeout=0.1)
    async with TestClient(App([WebSocketRoute("/", silent)]), config, timeout=0.05) as client:
        with pytest.raises(TimeoutError):
            await client.websocket_connect("/")


def test_websocket_connect_refuses_an_unknown_compression() -> None:
    client = TestClient(native_app())
    with pytest.raises(ValueError, match="compression"):
        client.websocket_connect("/ws", compression="zstd")  # type: ignore[arg-type]


# -- the other kinds of application -------------------------------------------------


async def test_a_view_class_is_mounted_at_path() -> None:
    async with TestClient(Upper, path="/up") as client:
        async with client.websocket_connect("/up") as ws:
            await ws.send("shout")
            assert await ws.recv() == "SHOUT"
        assert (await client.get("/healthz")).status_code == 200


async def test_an_endpoint_function_is_served_at_root() -> None:
    async with TestClient(echo) as client, client.websocket_connect("/") as ws:
        await ws.send("fn")
        assert await ws.recv() == "fn"


async def test_an_asgi_app_http_and_websocket() -> None:
    async with TestClient(asgi_app) as client:
        assert isinstance(client.app, ASGIApp)
        response = await client.post("/", content=b"body")
        assert (response.status_code, response.text) == (201, "asgi POST body")
        async with client.websocket_connect("/") as ws:
            await ws.send("hi")
            assert await ws.recv() == "asgi hi"
            with pytest.raises(ConnectionClosedError) as closed:
                await ws.recv()
    assert (closed.value.code, closed.value.reason) == (4100, "asgi done")


async def test_application_hooks_run_at_entry_and_exit() -> None:
    calls: list[str] = []

    class Hooked(App):
        async def startup(self) -> None:
            calls.append("startup")

        async def shutdown(self) -> None:
            calls.append("shutdown")

    async with TestClient(Hooked()) as client:
        assert calls == ["startup"]
        assert (await client.get("/healthz")).text == "ok\n"
    assert calls == ["startup", "shutdown"]


def test_as_application_kinds() -> None:
    app = native_app()
    assert as_application(app) is app
    wrapped = ASGIApp(asgi_app)
    assert as_application(wrapped) is wrapped
    assert isinstance(as_application(asgi_app), ASGIApp)
    assert isinstance(as_application(Upper), App)
    with pytest.raises(TypeError):
        as_application(42)


async def test_the_transports_are_in_memory() -> None:
    async with TestClient(native_app()) as client, client.websocket_connect("/ws"):
        (connection,) = client.server.connections
        assert isinstance(connection.transport, MemoryTransport)
        assert connection.transport.get_extra_info("ssl_object") is None


def test_the_package_exports_the_test_client() -> None:
    import wsserver.testing
    from wsserver.testing import client, transport

    for module in (client, transport):
        for name in module.__all__:
            if name in wsserver.testing.__all__:
                assert getattr(wsserver.testing, name) is getattr(module, name)
    assert {"TestClient", "TestResponse", "MemoryTransport", "transport_pair"} <= set(
        wsserver.testing.__all__
    )


# -- the HTTP exchange against a misbehaving peer (bytes written by hand) ----------


class ScriptedServer(asyncio.Protocol):
    """Answers the first bytes it gets with ``answer``, then closes or aborts."""

    def __init__(self, answer: bytes, *, end: str = "close") -> None:
        self.answer = answer
        self.end = end
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(self.answer)
        if self.end == "abort":
            self.transport.abort()
        elif self.end == "close":
            self.transport.close()


async def exchange(server: ScriptedServer, *headers: tuple[str, str]) -> TestResponse:
    import h11

    from wsserver.testing.client import _HTTPExchange
    from wsserver.testing.transport import transport_pair

    request: list[h11.Event] = [
        h11.Request(method="GET", target="/", headers=[("Host", "x"), *headers]),
        h11.EndOfMessage(),
    ]
    http = _HTTPExchange(request)
    transport_pair(
        asyncio.get_running_loop(),
        server,
        http,
        client_address=("127.0.0.1", 1),
        server_address=("127.0.0.1", 2),
    )
    return await asyncio.wait_for(http.done, 5)


async def test_a_100_continue_is_followed_by_the_final_response() -> None:
    server = ScriptedServer(
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        end="keep",
    )
    response = await exchange(server, ("Expect", "100-continue"))
    assert (response.status_code, response.body) == (200, b"ok")


async def test_a_response_that_is_not_http_is_h11s_error() -> None:
    import h11

    with pytest.raises(h11.RemoteProtocolError):
        await exchange(ScriptedServer(b"SSH-2.0-OpenSSH\r\n\r\n", end="keep"))


async def test_a_close_before_the_response_ends_is_an_error() -> None:
    import h11

    with pytest.raises(h11.RemoteProtocolError):
        await exchange(ScriptedServer(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort"))


async def test_a_reset_before_the_response_is_connection_reset() -> None:
    with pytest.raises(ConnectionResetError, match="without a response"):
        await exchange(ScriptedServer(b"", end="abort"))


def test_text_ignores_other_content_type_parameters() -> None:
    from wsserver.server import Headers

    response = TestResponse(
        200,
        "OK",
        Headers([("content-type", 'text/plain; format=flowed; charset="latin-1"')]),
        b"\xe9",
    )
    assert response.text == "é"
