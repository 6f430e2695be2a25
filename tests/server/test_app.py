"""Tests for wsserver.server.app: routing HTTP and WebSocket side by side."""

from __future__ import annotations

import asyncio
import logging
import re
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from wsserver.client import InvalidStatus as ClientInvalidStatus
from wsserver.server import (
    App,
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    Request,
    Response,
    Route,
    Server,
    StaticFiles,
    WebSocket,
    WebSocketRoute,
    WebSocketView,
    as_app,
    secrets_equal,
)
from wsserver.server.app import run_websocket_endpoint

from .._live import TIMEOUT, HTTPClient, http_get, in_memory, serving, ws_url


def make_app() -> App:
    app = App()

    @app.route("/")
    async def home(request: Request) -> Response:
        return HTMLResponse("<h1>home</h1>")

    @app.route("/items/{item_id:int}/{slug}")
    async def item(request: Request) -> Response:
        params = request.path_params
        return JSONResponse({"id": params["item_id"], "slug": params["slug"]})

    @app.route("/echo", methods=["POST"])
    async def echo(request: Request) -> Response:
        return Response(request.body, media_type="application/octet-stream")

    @app.route("/boom")
    async def boom(request: Request) -> Response:
        raise RuntimeError("handler bug")

    # The same path serves a page to browsers and a WebSocket to scripts.
    @app.route("/chat")
    async def chat_page(request: Request) -> Response:
        return HTMLResponse("<script>new WebSocket(...)</script>")

    @app.websocket("/chat")
    async def chat(ws: WebSocket) -> None:
        await ws.accept()
        await ws.send_text("chat socket")

    @app.websocket("/rooms/{room}/{seat:int}")
    async def room(ws: WebSocket) -> None:
        await ws.accept()
        params = ws.path_params
        await ws.send_json({"room": params["room"], "seat": params["seat"]})

    return app


# ---------------------------------------------------------------------------
# HTTP and WebSocket routes together
# ---------------------------------------------------------------------------


async def test_http_and_websocket_routes_side_by_side() -> None:
    async with in_memory(make_app()) as served:
        page = await http_get(served, "/chat")
        assert page.status == 200
        assert page.body == b"<script>new WebSocket(...)</script>"
        assert page.header("content-type") == "text/html; charset=utf-8"
        async with served.websocket_connect("/chat") as client:
            assert await asyncio.wait_for(client.recv(), TIMEOUT) == "chat socket"
        home = await http_get(served, "/")
        assert (home.status, home.body) == (200, b"<h1>home</h1>")


async def test_path_params_str_and_int() -> None:
    async with in_memory(make_app()) as served:
        item = await http_get(served, "/items/42/blue%20hat")
        assert item.status == 200
        assert item.body == b'{"id":42,"slug":"blue hat"}'
        # An int parameter that is not a number matches nothing.
        assert (await http_get(served, "/items/x/blue")).status == 404
        async with served.websocket_connect("/rooms/lobby/7") as client:
            assert await asyncio.wait_for(client.recv(), TIMEOUT) == '{"room":"lobby","seat":7}'


async def test_post_route_echoes_the_request_body() -> None:
    async with serving(make_app()) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        try:
            writer.write(
                b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                b"Connection: close\r\n\r\nhello"
            )
            answer = await asyncio.wait_for(reader.read(), TIMEOUT)
        finally:
            writer.close()
            await writer.wait_closed()
        assert answer.startswith(b"HTTP/1.1 200 ")
        assert answer.endswith(b"\r\n\r\nhello")


# ---------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------


async def test_unknown_http_path_is_404() -> None:
    async with in_memory(make_app()) as served:
        result = await http_get(served, "/nowhere")
        assert result.status == 404
        assert result.body == b"Not Found"


async def test_unknown_websocket_path_refuses_the_handshake_with_404() -> None:
    async with in_memory(make_app()) as served:
        with pytest.raises(ClientInvalidStatus) as caught:
            await served.websocket_connect("/nowhere")
        assert caught.value.status == 404
        assert caught.value.body == b"Not Found\n"


async def test_wrong_method_is_405_with_allow() -> None:
    async with in_memory(make_app()) as served:
        result = await http_get(served, "/", method="DELETE")
        assert result.status == 405
        assert result.header("allow") == "GET, HEAD"
        post_only = await http_get(served, "/echo")
        assert post_only.status == 405
        assert post_only.header("allow") == "POST"


async def test_plain_get_to_a_websocket_only_route_is_426() -> None:
    async with in_memory(make_app()) as served:
        result = await http_get(served, "/rooms/lobby/1")
        assert result.status == 426
        assert result.header("upgrade") == "websocket"
        assert "upgrade" in [
            token.strip().lower() for token in ",".join(result.headers["connection"]).split(",")
        ]


async def test_http_handler_exception_is_500_and_the_server_keeps_serving(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with serving(make_app()) as server:
        client = await HTTPClient.open(server.port)
        try:
            with caplog.at_level(logging.ERROR, logger="wsserver"):
                failed = await client.request("GET", "/boom")
            assert failed.status == 500
            assert b"handler bug" not in failed.body
            assert any("handler bug" in (r.exc_text or "") for r in caplog.records)
            # The same connection, then a new one, are still served.
            assert (await client.request("GET", "/")).status == 200
        finally:
            await client.close()
        assert (await http_get(server.port, "/")).status == 200


# ---------------------------------------------------------------------------
# application mistakes: a clear status and one log line, never a hang
# ---------------------------------------------------------------------------


def error_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "wsserver" and r.levelno >= logging.ERROR]


def name_of(function: Any) -> str:
    return f"{function.__module__}.{function.__qualname__}"


async def refusal_status(server: Server, path: str = "/") -> int:
    """The status the server refuses a handshake with, within TIMEOUT."""

    async def handshake() -> int:
        with pytest.raises(InvalidStatus) as caught:
            async with connect(ws_url(server, path), open_timeout=TIMEOUT):
                pass
        return caught.value.response.status_code

    return await asyncio.wait_for(handshake(), TIMEOUT)


async def close_code_after_sending(server: Server, path: str, message: str) -> int | None:
    """Open, send ``message``, and return the server's close code, within TIMEOUT."""

    async def exchange() -> int | None:
        async with connect(ws_url(server, path), open_timeout=TIMEOUT) as client:
            await client.send(message)
            with pytest.raises(ConnectionClosed):
                while True:
                    await client.recv()
        return client.close_code

    return await asyncio.wait_for(exchange(), TIMEOUT)


@pytest.mark.parametrize(
    ("returned", "described"),
    [("text", "str 'text'"), (None, "NoneType None"), ({"ok": True}, "dict {'ok': True}")],
)
async def test_http_handler_returning_a_non_response_is_500_with_one_log_line(
    returned: object, described: str, caplog: pytest.LogCaptureFixture
) -> None:
    app = App()

    @app.route("/mistake")
    async def mistake(request: Request) -> Any:
        return returned

    async with serving(app) as server:
        with caplog.at_level(logging.INFO, logger="wsserver"):
            result = await asyncio.wait_for(http_get(server.port, "/mistake?x=1"), TIMEOUT)
        assert result.status == 500
        assert result.body == b"Internal Server Error\n"
        (record,) = error_records(caplog)
        assert record.getMessage().endswith(
            f": GET /mistake?x=1: HTTP handler {name_of(mistake)} returned {described}, "
            "expected a Response; answered 500"
        )
        assert record.exc_info is None  # only the server's frames: no traceback
        # The server keeps serving.
        assert (await http_get(server.port, "/healthz")).status == 200


async def test_http_handler_declared_without_async_is_500_with_one_log_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def plain(request: Request) -> Response:
        return PlainTextResponse("never sent")

    app = App()
    app.add_route("/plain", plain)  # type: ignore[arg-type]
    async with serving(app) as server:
        with caplog.at_level(logging.ERROR, logger="wsserver"):
            result = await asyncio.wait_for(http_get(server.port, "/plain"), TIMEOUT)
        assert result.status == 500
        (record,) = error_records(caplog)
        message = record.getMessage()
        assert f"HTTP handler {name_of(plain)} returned " in message
        assert (
            "PlainTextResponse(status_code=200, body=<10 bytes>), expected an awaitable" in message
        )
        assert "declare it with async def" in message


@pytest.mark.parametrize(
    ("returned", "described"),
    [(True, "bool True"), ("no", "str 'no'"), (401, "int 401")],
)
async def test_authenticate_returning_neither_none_nor_a_response_is_500(
    returned: object, described: str, caplog: pytest.LogCaptureFixture
) -> None:
    reached: list[str] = []

    async def authenticate(ws: WebSocket) -> Any:
        return returned

    app = App(authenticate=authenticate)

    @app.websocket("/private")
    async def private(ws: WebSocket) -> None:
        reached.append("endpoint")
        await ws.accept()

    async with serving(app) as server:
        with caplog.at_level(logging.ERROR, logger="wsserver"):
            assert await refusal_status(server, "/private") == 500
        (record,) = error_records(caplog)
        assert record.getMessage().endswith(
            f": /private: authenticate hook {name_of(authenticate)} returned {described}, "
            "expected None or a Response; answered 500"
        )
        assert record.exc_info is None
    assert reached == []  # a mistaken hook lets nobody through


async def test_authenticate_raising_is_500_with_the_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def authenticate(ws: WebSocket) -> Response | None:
        raise LookupError("user store down")

    app = App(authenticate=authenticate)

    @app.websocket("/private")
    async def private(ws: WebSocket) -> None:
        await ws.accept()

    async with serving(app) as server:
        with caplog.at_level(logging.ERROR, logger="wsserver"):
            assert await refusal_status(server, "/private") == 500
        (record,) = error_records(caplog)
        assert re.fullmatch(
            r"conn \d+: error in WebSocket handler for /private", record.getMessage()
        )
        assert record.exc_info is not None
        assert "user store down" in (record.exc_text or "")


async def test_function_endpoint_returning_a_value_before_accept_is_500(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = App()

    @app.websocket("/refuse")
    async def refuse(ws: WebSocket) -> Any:
        return PlainTextResponse("go away", status_code=403)

    async with serving(app) as server:
        with caplog.at_level(logging.ERROR, logger="wsserver"):
            assert await refusal_status(server, "/refuse") == 500
        (record,) = error_records(caplog)
        message = record.getMessage()
        assert f": /refuse: WebSocket endpoint {name_of(refuse)} returned " in message
        assert "expected None (refuse a handshake with websocket.send_denial_response())" in message
        assert message.endswith("; answered 500")
        assert record.exc_info is None


async def test_function_endpoint_returning_a_value_after_accept_closes_with_1011(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = App()

    @app.websocket("/answer")
    async def answer(ws: WebSocket) -> Any:
        await ws.accept()
        return await ws.receive_text()  # meant to be sent back

    async with serving(app) as server:
        with caplog.at_level(logging.ERROR, logger="wsserver"):
            assert await close_code_after_sending(server, "/answer", "hello") == 1011
        (record,) = error_records(caplog)
        assert record.getMessage().endswith(
            f": /answer: WebSocket endpoint {name_of(answer)} returned str 'hello', "
            "expected None; closed with 1011"
        )
        assert record.exc_info is None


# ---------------------------------------------------------------------------
# health, static files, keep-alive
# ---------------------------------------------------------------------------


async def test_health_endpoint() -> None:
    async with in_memory(make_app()) as served:
        result = await http_get(served, "/healthz")
        assert (result.status, result.body) == (200, b"ok\n")
        assert result.header("content-type") == "text/plain; charset=utf-8"


async def test_health_path_can_be_moved_or_turned_off() -> None:
    async with in_memory(App(health_path="/-/ready")) as served:
        assert (await http_get(served, "/-/ready")).status == 200
        assert (await http_get(served, "/healthz")).status == 404
    async with in_memory(App(health_path=None)) as served:
        assert (await http_get(served, "/healthz")).status == 404


async def test_health_path_comes_before_routes() -> None:
    app = App()

    @app.route("/healthz")
    async def shadowed(request: Request) -> Response:
        return PlainTextResponse("route")

    async with in_memory(app) as served:
        assert (await http_get(served, "/healthz")).body == b"ok\n"


async def test_static_files(tmp_path: Path) -> None:
    (tmp_path / "style.css").write_text("body { color: red }")
    (tmp_path / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    app = make_app()
    app.mount("/static", StaticFiles(tmp_path))
    async with in_memory(app) as served:
        css = await http_get(served, "/static/style.css")
        assert css.status == 200
        assert css.body == b"body { color: red }"
        assert css.header("content-type") == "text/css; charset=utf-8"
        assert css.header("content-length") == str(len(css.body))
        etag = css.header("etag")
        assert etag.startswith('"') and etag.endswith('"')

        png = await http_get(served, "/static/logo.png")
        assert png.header("content-type") == "image/png"
        assert png.body == b"\x89PNG\r\n\x1a\n"

        cached = await http_get(served, "/static/style.css", [("if-none-match", etag)])
        assert cached.status == 304
        assert cached.body == b""
        assert cached.header("etag") == etag

        stale = await http_get(served, "/static/style.css", [("if-none-match", '"other"')])
        assert stale.status == 200

        head = await http_get(served, "/static/style.css", method="HEAD")
        assert head.status == 200
        assert head.body == b""
        assert head.header("content-length") == str(len(css.body))

        assert (await http_get(served, "/static/missing.css")).status == 404
        assert (await http_get(served, "/static/../test_app.py")).status == 404
        # Routes outside the mount are unaffected.
        assert (await http_get(served, "/")).status == 200


async def test_keep_alive_answers_several_requests_on_one_connection() -> None:
    async with serving(make_app()) as server:
        client = await HTTPClient.open(server.port)
        try:
            first = await client.request("GET", "/")
            second = await client.request("GET", "/items/1/a")
            third = await client.request("GET", "/healthz")
        finally:
            await client.close()
        assert [first.status, second.status, third.status] == [200, 200, 200]
        assert second.body == b'{"id":1,"slug":"a"}'


async def test_pipelined_requests_are_answered_in_order() -> None:
    async with serving(make_app()) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        try:
            writer.write(
                b"GET /items/1/a HTTP/1.1\r\nHost: x\r\n\r\n"
                b"GET /items/2/b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            )
            answer = await asyncio.wait_for(reader.read(), TIMEOUT)
        finally:
            writer.close()
            await writer.wait_closed()
        assert answer.count(b"HTTP/1.1 200 ") == 2
        assert answer.index(b'"id":1') < answer.index(b'"id":2')


# ---------------------------------------------------------------------------
# building an App
# ---------------------------------------------------------------------------


async def test_routes_given_to_the_constructor_and_add_methods() -> None:
    async def hello(request: Request) -> Response:
        return PlainTextResponse("hello")

    async def socket(ws: WebSocket) -> None:
        await ws.accept()
        await ws.send_text("socket")

    async def added(request: Request) -> Response:
        return PlainTextResponse(request.method)

    app = App([Route("/hello", hello), WebSocketRoute("/socket", socket)])
    app.add_route("/added", added, methods=["PUT"])
    app.add_websocket_route("/view", WebSocketView)
    assert app.state is not None
    async with in_memory(app) as served:
        assert (await http_get(served, "/hello")).body == b"hello"
        assert (await http_get(served, "/added", method="PUT")).body == b"PUT"
        async with served.websocket_connect("/socket") as client:
            assert await asyncio.wait_for(client.recv(), TIMEOUT) == "socket"
        async with served.websocket_connect("/view") as client:
            await client.send("ignored")
            await client.close()
            assert client.close_code == 1000


async def test_run_websocket_endpoint_accepts_plain_callables_and_refuses_others() -> None:
    calls: list[str] = []

    def sync_endpoint(ws: object) -> None:
        calls.append("sync")

    await run_websocket_endpoint(sync_endpoint, object())  # type: ignore[arg-type]
    assert calls == ["sync"]
    with pytest.raises(TypeError, match="not a WebSocket endpoint"):
        await run_websocket_endpoint(42, object())  # type: ignore[arg-type]


# ---------------------------------------------------------------------------
# as_app
# ---------------------------------------------------------------------------


async def test_as_app_with_a_view_class_mounts_it_at_the_path() -> None:
    class Echo(WebSocketView):
        async def on_receive(self, websocket: WebSocket, data: str | bytes) -> None:
            assert isinstance(data, str)
            await websocket.send_text(data)

    app = as_app(Echo, path="/echo")
    assert isinstance(app, App)
    async with in_memory(app) as served:
        async with served.websocket_connect("/echo") as client:
            await client.send("hi")
            assert await asyncio.wait_for(client.recv(), TIMEOUT) == "hi"
        with pytest.raises(ClientInvalidStatus) as caught:
            await served.websocket_connect("/")
        assert caught.value.status == 404
        # The health endpoint comes with it.
        assert (await http_get(served, "/healthz")).status == 200


async def test_as_app_with_an_async_function() -> None:
    async def hello(ws: WebSocket) -> None:
        await ws.accept()
        await ws.send_text("hello")

    app = as_app(hello)
    assert isinstance(app, App)
    async with in_memory(app) as served, served.websocket_connect("/") as client:
        assert await asyncio.wait_for(client.recv(), TIMEOUT) == "hello"


def test_as_app_with_an_app_returns_it() -> None:
    app = App()
    assert as_app(app) is app
    assert as_app(app, path="/ignored") is app


def test_as_app_with_any_application_object_returns_it() -> None:
    class Custom:
        async def handle_http(self, request: Request) -> Response:
            return PlainTextResponse("custom")

        async def handle_websocket(self, websocket: WebSocket) -> None:
            await websocket.close()

    custom = Custom()
    assert as_app(custom) is custom


@pytest.mark.parametrize(
    "target",
    [
        42,
        "examples.echo:EchoView",
        len,  # callable, but not async
        lambda ws: None,
        object,
        App,  # the class, not an instance
        WebSocketView(object()),  # type: ignore[arg-type]  # an instance, not the class
    ],
    ids=["int", "str", "builtin", "sync-lambda", "object", "App-class", "view-instance"],
)
def test_as_app_with_a_wrong_object_raises_type_error(target: object) -> None:
    with pytest.raises(TypeError, match="is not a WebSocketView subclass, an App"):
        as_app(target)


def test_as_app_with_an_app_class_says_to_pass_an_instance() -> None:
    class MyApp(App):
        pass

    with pytest.raises(TypeError, match=r"\(a class: pass an instance\)"):
        as_app(MyApp)


# ---------------------------------------------------------------------------
# Authentication before accept
# ---------------------------------------------------------------------------

TOKEN = "s3cret-token"


def guarded_app(seen: list[str]) -> App:
    async def authenticate(ws: WebSocket) -> Response | None:
        # Header, cookie or query token, compared in constant time.
        given = (
            ws.headers.get("x-token")
            or ws.cookies.get("token")
            or ws.query_params.get("token")
            or ""
        )
        if not given:
            return PlainTextResponse("token required\n", status_code=401)
        if not secrets_equal(given, TOKEN):
            return PlainTextResponse("bad token\n", status_code=403)
        ws.state.user = "alice"
        return None

    app = App(authenticate=authenticate)

    @app.websocket("/private/{room}")
    async def private(ws: WebSocket) -> None:
        seen.append(ws.path_params["room"])
        await ws.accept()
        await ws.send_text(f"hello {ws.state.user}")

    return app


@pytest.mark.parametrize(
    ("path", "headers", "status"),
    [
        ("/private/a", {}, 401),
        ("/private/a", {"X-Token": "wrong"}, 403),
        ("/private/a?token=wrong", {}, 403),
        ("/private/a", {"Cookie": "token=wrong"}, 403),
    ],
)
async def test_authenticate_refuses_before_the_endpoint_runs(
    path: str, headers: dict[str, str], status: int
) -> None:
    seen: list[str] = []
    async with serving(guarded_app(seen)) as server:
        with pytest.raises(InvalidStatus) as caught:
            async with connect(ws_url(server, path), additional_headers=headers):
                pass
        assert caught.value.response.status_code == status
        assert seen == []


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/private/a", {"X-Token": TOKEN}),
        ("/private/a?token=" + TOKEN, {}),
        ("/private/a", {"Cookie": "token=" + TOKEN}),
    ],
)
async def test_authenticate_lets_valid_credentials_through(
    path: str, headers: dict[str, str]
) -> None:
    seen: list[str] = []
    async with (
        serving(guarded_app(seen)) as server,
        connect(ws_url(server, path), additional_headers=headers) as client,
    ):
        assert await asyncio.wait_for(client.recv(), TIMEOUT) == "hello alice"
        assert seen == ["a"]


async def test_authenticate_is_not_called_for_unknown_paths() -> None:
    calls: list[str] = []

    async def authenticate(ws: WebSocket) -> Response | None:
        calls.append(ws.url.path)
        return None

    async with in_memory(App(authenticate=authenticate)) as served:
        with pytest.raises(ClientInvalidStatus) as caught:
            await served.websocket_connect("/nowhere")
        assert caught.value.status == 404
        assert calls == []
