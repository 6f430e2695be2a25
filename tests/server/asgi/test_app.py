"""``ASGIApp`` and ``is_asgi_app``, and real applications end to end.

A Starlette, a FastAPI and a Lilya application, each with HTTP routes, a
WebSocket route with a path parameter, JSON messages, a denial response,
lifespan state and a background task, are served by wsserver and driven
over loopback by httpx and the ``websockets`` client.  And a differential
test: one recording application served by uvicorn and by wsserver sees the
same scopes and the same events for the same requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest

# FastAPI reads the endpoints' annotations (``from __future__ import
# annotations`` makes them strings) in this module's namespace.
from fastapi import BackgroundTasks, FastAPI
from fastapi import Request as FastAPIRequest
from fastapi import WebSocket as FastAPIWebSocket
from fastapi import WebSocketDisconnect as FastAPIWebSocketDisconnect
from fastapi.responses import PlainTextResponse as FastAPIPlainText
from websockets.exceptions import InvalidStatus

from wsserver.server import App, Server, ServerConfig, WebSocketView
from wsserver.server.asgi import ASGIApp, LifespanFailed, is_asgi_app
from wsserver.server.startup import ApplicationStartupError

from ..._live import TIMEOUT
from ..helpers import ws_client
from .helpers import serving_asgi

Message = dict[str, Any]

# ---------------------------------------------------------------------------
# Detection
# ---------------------------------------------------------------------------


async def raw_asgi(scope: Message, receive: Any, send: Any) -> None:
    """An ASGI application in its plainest form."""


async def native_endpoint(websocket: Any) -> None:
    """A native ``async def endpoint(websocket)``."""


class CallableApp:
    async def __call__(self, scope: Message, receive: Any, send: Any) -> None:
        """An instance with an async ``__call__``, as Starlette's."""


class View(WebSocketView):
    pass


def test_is_asgi_app_tells_the_two_faces_apart() -> None:
    from starlette.applications import Starlette

    assert is_asgi_app(raw_asgi)
    assert is_asgi_app(CallableApp())
    assert is_asgi_app(Starlette())
    assert not is_asgi_app(native_endpoint)
    assert not is_asgi_app(App())
    assert not is_asgi_app(View)
    assert not is_asgi_app(CallableApp)  # the class, not an instance
    assert not is_asgi_app(42)
    assert not is_asgi_app(iter)  # no signature to read
    assert not is_asgi_app(lambda a, b: None)

    class CallableNative(CallableApp):
        async def handle_http(self, request: Any) -> Any: ...
        async def handle_websocket(self, websocket: Any) -> None: ...

    assert not is_asgi_app(CallableNative())  # native first, even if callable


# ---------------------------------------------------------------------------
# Lifespan through the server
# ---------------------------------------------------------------------------


async def test_a_failing_startup_keeps_the_server_from_listening() -> None:
    async def app(scope: Message, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "no database"})

    server = Server(ASGIApp(app), ServerConfig(port=0))
    with pytest.raises(LifespanFailed, match="no database"):
        await server.start()
    assert server.addresses == []
    with pytest.raises(RuntimeError, match="not listening"):
        _ = server.port


async def test_a_native_startup_hook_that_raises_is_an_application_startup_error() -> None:
    class Hooked(App):
        async def startup(self) -> None:
            raise KeyError("SECRET")

    server = Server(Hooked(), ServerConfig(port=0))
    with pytest.raises(ApplicationStartupError, match="KeyError: 'SECRET'"):
        await server.start()
    assert server.addresses == []


async def test_native_hooks_run_around_serving_and_a_failing_shutdown_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[str] = []

    class Hooked(App):
        async def startup(self) -> None:
            calls.append("startup")

        async def shutdown(self) -> None:
            calls.append("shutdown")
            raise OSError("disk gone")

    server = Server(Hooked(), ServerConfig(port=0))
    with caplog.at_level(logging.ERROR, logger="wsserver"):
        async with server:
            assert calls == ["startup"]
    assert calls == ["startup", "shutdown"]
    assert [r.getMessage() for r in caplog.records] == ["the application's shutdown hook failed"]


async def test_binding_failure_runs_the_shutdown_hook() -> None:
    calls: list[str] = []

    class Hooked(App):
        async def startup(self) -> None:
            calls.append("startup")

        async def shutdown(self) -> None:
            calls.append("shutdown")

    async with Server(App(), ServerConfig(port=0)) as taken:
        with pytest.raises(OSError):
            await Server(Hooked(), ServerConfig(port=taken.port)).start()
    assert calls == ["startup", "shutdown"]


async def test_state_from_startup_reaches_every_scope_as_a_copy() -> None:
    scopes: list[Message] = []

    async def app(scope: Message, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await receive()
            scope["state"]["pool"] = "ready"
            await send({"type": "lifespan.startup.complete"})
            await receive()
            await send({"type": "lifespan.shutdown.complete"})
            return
        scopes.append(scope)
        scope["state"]["mine"] = True  # stays in this scope
        if scope["type"] == "http":
            await send({"type": "http.response.start", "status": 204})
            await send({"type": "http.response.body"})
        else:
            await receive()
            await send({"type": "websocket.close"})

    async with serving_asgi(app) as server:
        async with httpx.AsyncClient(trust_env=False) as client:
            await client.get(f"http://127.0.0.1:{server.port}/")
            await client.get(f"http://127.0.0.1:{server.port}/")
        with pytest.raises(InvalidStatus):
            async with ws_client(server):
                pass
    assert [scope["state"] for scope in scopes] == [{"pool": "ready", "mine": True}] * 3
    assert scopes[0]["state"] is not scopes[1]["state"]


# ---------------------------------------------------------------------------
# Real applications
# ---------------------------------------------------------------------------


class Background:
    """What the applications' background tasks report to the test."""

    def __init__(self) -> None:
        self.ran = asyncio.Event()
        self.release = asyncio.Event()

    async def task(self) -> None:
        # Waits for the test: proves the response did not wait for it.
        await self.release.wait()
        self.ran.set()


def starlette_app(background: Background) -> Any:
    from starlette.applications import Starlette
    from starlette.background import BackgroundTask
    from starlette.requests import Request
    from starlette.responses import JSONResponse, PlainTextResponse, Response
    from starlette.routing import Route, WebSocketRoute
    from starlette.websockets import WebSocket, WebSocketDisconnect

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        yield {"greeting": "hello from starlette"}

    async def hello(request: Request) -> Response:
        return PlainTextResponse(request.state.greeting)

    async def item(request: Request) -> Response:
        return JSONResponse({"id": request.path_params["item_id"], "q": request.query_params["q"]})

    async def echo(request: Request) -> Response:
        return JSONResponse({"got": await request.json()})

    async def job(request: Request) -> Response:
        return JSONResponse({"queued": True}, background=BackgroundTask(background.task))

    async def room(websocket: WebSocket) -> None:
        name = websocket.path_params["room"]
        if name == "private":
            await websocket.send_denial_response(PlainTextResponse("members only", status_code=403))
            return
        await websocket.accept()
        try:
            while True:
                message = await websocket.receive_json()
                await websocket.send_json(
                    {"room": name, "echo": message, "state": websocket.state.greeting}
                )
        except WebSocketDisconnect:
            pass

    return Starlette(
        routes=[
            Route("/hello", hello),
            Route("/items/{item_id:int}", item),
            Route("/echo", echo, methods=["POST"]),
            Route("/job", job),
            WebSocketRoute("/rooms/{room}", room),
        ],
        lifespan=lifespan,
    )


def fastapi_app(background: Background) -> Any:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        yield {"greeting": "hello from fastapi"}

    app = FastAPI(lifespan=lifespan)

    @app.get("/hello", response_class=FastAPIPlainText)
    async def hello(request: FastAPIRequest) -> str:
        greeting: str = request.state.greeting
        return greeting

    @app.get("/items/{item_id}")
    async def item(item_id: int, q: str) -> dict[str, Any]:
        return {"id": item_id, "q": q}

    @app.post("/echo")
    async def echo(body: dict[str, Any]) -> dict[str, Any]:
        return {"got": body}

    @app.get("/job")
    async def job(tasks: BackgroundTasks) -> dict[str, Any]:
        tasks.add_task(background.task)
        return {"queued": True}

    @app.websocket("/rooms/{room}")
    async def room(websocket: FastAPIWebSocket, room: str) -> None:
        if room == "private":
            await websocket.send_denial_response(FastAPIPlainText("members only", status_code=403))
            return
        await websocket.accept()
        try:
            while True:
                message = await websocket.receive_json()
                await websocket.send_json(
                    {"room": room, "echo": message, "state": websocket.state.greeting}
                )
        except FastAPIWebSocketDisconnect:
            pass

    return app


def lilya_app(background: Background) -> Any:
    from lilya.apps import Lilya
    from lilya.background import Task
    from lilya.requests import Request
    from lilya.responses import JSONResponse, Response
    from lilya.routing import Path, WebSocketPath
    from lilya.websockets import WebSocket

    @contextlib.asynccontextmanager
    async def lifespan(app: Lilya) -> AsyncIterator[dict[str, Any]]:
        yield {"greeting": "hello from lilya"}

    async def hello(request: Request) -> Response:
        return Response(request.state.greeting, media_type="text/plain")

    async def item(request: Request) -> Response:
        return JSONResponse({"id": request.path_params["item_id"], "q": request.query_params["q"]})

    async def echo(request: Request) -> Response:
        return JSONResponse({"got": await request.json()})

    async def job(request: Request) -> Response:
        return JSONResponse({"queued": True}, background=Task(background.task))

    async def room(websocket: WebSocket) -> None:
        name = websocket.path_params["room"]
        if name == "private":
            # Lilya's denial: close before accept is 403 (its documentation).
            await websocket.close()
            return
        await websocket.accept()
        async for message in websocket.iter_json():
            await websocket.send_json(
                {"room": name, "echo": message, "state": websocket.state.greeting}
            )

    async def kinds(websocket: WebSocket) -> None:
        # Lilya's WebSocket API as its documentation shows it.
        await websocket.accept()
        text = await websocket.receive_text()
        await websocket.send_text(text.upper())
        data = await websocket.receive_bytes()
        await websocket.send_bytes(data[::-1])
        value = await websocket.receive_json()
        await websocket.send_json({"message": value}, mode="binary")
        async for chunk in websocket.iter_text():
            if chunk == "stop":
                break
            await websocket.send_text(f"iter:{chunk}")
        await websocket.close(code=4000, reason="done")

    # Lilya sets the root logger up (INFO, a stderr handler) when an
    # application is built: the rest of the test session must not inherit
    # that (caplog-based tests count records, memory tests count bytes).
    with root_logging_kept():
        return Lilya(
            routes=[
                Path("/hello", hello),
                Path("/items/{item_id:int}", item),
                Path("/echo", echo, methods=["POST"]),
                Path("/job", job),
                WebSocketPath("/rooms/{room}", room),
                WebSocketPath("/kinds", kinds),
            ],
            lifespan=lifespan,
        )


@contextlib.contextmanager
def root_logging_kept() -> Iterator[None]:
    """Put the root logger's level and handlers back as they were."""
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    try:
        yield
    finally:
        root.setLevel(level)
        root.handlers[:] = handlers


FRAMEWORKS: dict[str, Callable[[Background], Any]] = {
    "starlette": starlette_app,
    "fastapi": fastapi_app,
    "lilya": lilya_app,
}


@pytest.mark.parametrize("framework", sorted(FRAMEWORKS))
async def test_a_real_application_end_to_end(framework: str) -> None:
    import json

    background = Background()
    app = FRAMEWORKS[framework](background)
    async with serving_asgi(app) as server:
        base = f"http://127.0.0.1:{server.port}"
        async with httpx.AsyncClient(base_url=base, timeout=TIMEOUT, trust_env=False) as client:
            hello = await client.get("/hello")
            assert (hello.status_code, hello.text) == (200, f"hello from {framework}")
            item = await client.get("/items/7", params={"q": "é x"})
            assert item.json() == {"id": 7, "q": "é x"}
            echo = await client.post("/echo", json={"a": [1, 2]})
            assert echo.json() == {"got": {"a": [1, 2]}}
            missing = await client.get("/nowhere")
            assert missing.status_code == 404
            # The response comes back while the background task still waits.
            job = await client.get("/job")
            assert job.json() == {"queued": True}
            assert not background.ran.is_set()
            background.release.set()
            await asyncio.wait_for(background.ran.wait(), TIMEOUT)

        async with ws_client(server, "/rooms/lobby") as websocket:
            for message in ({"n": 1}, ["x", None]):
                await websocket.send(json.dumps(message))
                assert json.loads(await websocket.recv()) == {
                    "room": "lobby",
                    "echo": message,
                    "state": f"hello from {framework}",
                }
        assert websocket.close_code == 1000

        with pytest.raises(InvalidStatus) as caught:
            async with ws_client(server, "/rooms/private"):
                pass
        response = caught.value.response
        assert response.status_code == 403
        if framework != "lilya":
            assert response.body == b"members only"


async def test_lilyas_websocket_api_runs_unchanged() -> None:
    import json

    async with serving_asgi(lilya_app(Background())) as server:
        async with ws_client(server, "/kinds") as websocket:
            await websocket.send("text")
            assert await websocket.recv() == "TEXT"
            await websocket.send(b"\x01\x02\x03")
            assert await websocket.recv() == b"\x03\x02\x01"
            await websocket.send(json.dumps({"k": "v"}))
            reply = await websocket.recv()
            assert isinstance(reply, bytes)
            assert json.loads(reply) == {"message": {"k": "v"}}
            for chunk in ("a", "b"):
                await websocket.send(chunk)
                assert await websocket.recv() == f"iter:{chunk}"
            await websocket.send("stop")
            await asyncio.wait_for(websocket.wait_closed(), TIMEOUT)
        assert (websocket.close_code, websocket.close_reason) == (4000, "done")


async def test_a_starlette_startup_failure_is_reported_with_its_message() -> None:
    from starlette.applications import Starlette

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        raise ConnectionRefusedError("database at db:5432 refused")
        yield

    server = Server(ASGIApp(Starlette(lifespan=lifespan)), ServerConfig(port=0))
    with pytest.raises(LifespanFailed, match="database at db:5432 refused"):
        await server.start()


async def test_lifespan_can_be_turned_off() -> None:
    scopes: list[str] = []

    async def app(scope: Message, receive: Any, send: Any) -> None:
        scopes.append(scope["type"])
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": b"no lifespan"})

    server = Server(ASGIApp(app, lifespan="off"), ServerConfig(port=0))
    async with server, httpx.AsyncClient(trust_env=False) as client:
        response = await client.get(f"http://127.0.0.1:{server.port}/")
    assert response.text == "no lifespan"
    assert scopes == ["http"]


@pytest.mark.parametrize("sends_after_cancel", [False, True])
async def test_a_request_cut_short_by_shutdown_cancels_the_application(
    sends_after_cancel: bool,
) -> None:
    started = asyncio.Event()
    outcome: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def app(scope: Message, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            if not sends_after_cancel:
                outcome.set_result("cancelled")
                raise
        try:
            await send({"type": "http.response.start", "status": 200})
        except OSError as error:
            outcome.set_result(type(error).__name__)
            raise  # the server takes it quietly: the client is gone

    server = Server(ASGIApp(app), ServerConfig(port=0, shutdown_timeout=0.1))
    await server.start()
    async with httpx.AsyncClient(trust_env=False, timeout=TIMEOUT) as client:
        request = asyncio.ensure_future(client.get(f"http://127.0.0.1:{server.port}/"))
        await asyncio.wait_for(started.wait(), TIMEOUT)
        await server.shutdown()
        with contextlib.suppress(httpx.HTTPError):
            await request
    expected = "ClientDisconnected" if sends_after_cancel else "cancelled"
    assert await asyncio.wait_for(outcome, TIMEOUT) == expected


# ---------------------------------------------------------------------------
# Against uvicorn: the same application sees the same scopes and events
# ---------------------------------------------------------------------------


class Recorder:
    """Records each connection's scope and the events it receives.

    HTTP: reads the body, answers ``ok``.  WebSocket: accepts with the
    first subprotocol offered and echoes every message until the peer
    leaves.
    """

    def __init__(self) -> None:
        self.seen: list[tuple[Message, list[Message]]] = []

    async def __call__(self, scope: Message, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            raise RuntimeError("no lifespan here")
        events: list[Message] = []
        self.seen.append((dict(scope), events))
        if scope["type"] == "http":
            while True:
                events.append(await receive())
                if not events[-1].get("more_body"):
                    break
            await send({"type": "http.response.start", "status": 200})
            await send({"type": "http.response.body", "body": b"ok"})
            return
        events.append(await receive())
        await send({"type": "websocket.accept", "subprotocol": scope["subprotocols"][0]})
        while True:
            event = await receive()
            events.append(event)
            if event["type"] == "websocket.disconnect":
                return
            data = {key: value for key, value in event.items() if key != "type"}
            await send({"type": "websocket.send", **data})


async def drive(port: int) -> None:
    """The same requests, whoever serves them."""
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", trust_env=False, timeout=TIMEOUT
    ) as client:
        assert (await client.get("/a%20b/c%2Fd?x=1&y=%C3%A9", headers={"X-A": "1"})).text == "ok"
        assert (await client.post("/upload", content=b"hello")).text == "ok"
        assert (await client.head("/")).status_code == 200
        # A chunked upload of several pieces, and one announced with
        # Expect: 100-continue (httpx sends its body without waiting).
        assert (await client.post("/stream", content=pieces())).text == "ok"
        assert (
            await client.put("/continue", content=b"x" * 70_000, headers={"Expect": "100-continue"})
        ).text == "ok"
    async with ws_client_at(port, "/ws/r%C3%A9?q=1", subprotocols=["chat", "x"]) as websocket:
        await websocket.send("hi")
        assert await websocket.recv() == "hi"
        await websocket.send(b"\x00\x01")
        assert await websocket.recv() == b"\x00\x01"
        await websocket.close(4001, "bye")


async def pieces() -> AsyncIterator[bytes]:
    for n in range(5):
        yield bytes([n]) * 50_000


def joined_bodies(events: list[Message]) -> list[Message]:
    """The events with a body's ``http.request`` pieces joined into one.

    How a body is cut into pieces depends on how the bytes arrived, for
    either server; what must be the same is the bytes, their order, and
    ``more_body`` true on every piece but the last.
    """
    joined: list[Message] = []
    for event in events:
        if event["type"] == "http.request" and joined and joined[-1].get("more_body"):
            previous = joined[-1]
            joined[-1] = {**event, "body": previous["body"] + event["body"]}
        else:
            joined.append(dict(event))
    return joined


def ws_client_at(port: int, path: str, **options: Any) -> Any:
    from websockets.asyncio.client import connect

    return connect(f"ws://127.0.0.1:{port}{path}", proxy=None, open_timeout=TIMEOUT, **options)


def comparable(scope: Message, port: int) -> Message:
    """A scope without what differs by nature between two servers and runs.

    The ports (each server has its own), the random handshake key, the
    specification revision each claims, and the extensions wsserver adds
    (checked below to be a superset of uvicorn's).
    """
    scope = dict(scope)
    assert scope.pop("server") == ("127.0.0.1", port)
    host, client_port = scope.pop("client")
    assert host == "127.0.0.1"
    assert isinstance(client_port, int)
    assert scope.pop("asgi")["version"] == "3.0"
    scope.pop("extensions", None)
    scope["headers"] = [
        (name, b"127.0.0.1:PORT" if name == b"host" else value)
        for name, value in scope["headers"]
        if name != b"sec-websocket-key"
    ]
    return scope


async def test_scopes_and_events_are_uvicorns() -> None:
    import socket

    import uvicorn

    uvicorn_app = Recorder()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    uvicorn_port = listener.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(uvicorn_app, lifespan="off", log_level="warning", ws="websockets-sansio")
    )
    serving_task = asyncio.ensure_future(server.serve(sockets=[listener]))
    try:
        while not server.started:
            assert not serving_task.done()
            await asyncio.sleep(0.01)
        await drive(uvicorn_port)
    finally:
        server.should_exit = True
        await asyncio.wait_for(serving_task, TIMEOUT)
        listener.close()

    ours = Recorder()
    async with serving_asgi(ours) as wsserver:
        our_port = wsserver.port
        await drive(our_port)
        await asyncio.wait_for(wait_for_events(ours, 6), TIMEOUT)

    assert len(ours.seen) == len(uvicorn_app.seen) == 6
    for (their_scope, their_events), (our_scope, our_events) in zip(
        uvicorn_app.seen, ours.seen, strict=True
    ):
        assert set(their_scope.get("extensions") or {}) <= set(our_scope["extensions"])
        assert comparable(our_scope, our_port) == comparable(their_scope, uvicorn_port)
        assert joined_bodies(our_events) == joined_bodies(their_events)


async def wait_for_events(recorder: Recorder, count: int) -> None:
    """Until the last connection's disconnect is recorded."""
    while len(recorder.seen) < count or recorder.seen[-1][1][-1]["type"] != "websocket.disconnect":
        await asyncio.sleep(0.01)


async def test_lifespan_on_requires_the_application_to_speak_it() -> None:
    async def http_only(scope: Message, receive: Any, send: Any) -> None:
        assert scope["type"] == "http", "http only"

    server = Server(ASGIApp(http_only, lifespan="on"), ServerConfig(port=0))
    with pytest.raises(LifespanFailed, match="AssertionError: http only"):
        await server.start()
    assert server.addresses == []

    async def returns(scope: Message, receive: Any, send: Any) -> None:
        pass

    with pytest.raises(LifespanFailed, match=r"returned without answering lifespan\.startup"):
        await Server(ASGIApp(returns, lifespan="on"), ServerConfig(port=0)).start()
    with pytest.raises(ValueError, match="lifespan must be one of auto, on, off"):
        ASGIApp(returns, lifespan="yes")


async def test_handle_http_without_an_upload_and_cancelled_cancels_the_application() -> None:
    # A Request from elsewhere than a streaming server (no upload): its
    # whole body is the application's first event.  Cancelling the request
    # (the connection's task) cancels the application.
    from wsserver.server.requests import Request

    received: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
    cancelled = asyncio.Event()

    async def app(scope: Message, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        received.set_result(await receive())
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    asgi = ASGIApp(app, lifespan="off")
    handling = asyncio.ensure_future(
        asgi.handle_http(Request("POST", "/", [("host", "x")], b"whole"))
    )
    event = await asyncio.wait_for(received, TIMEOUT)
    assert event == {"type": "http.request", "body": b"whole", "more_body": False}
    handling.cancel()
    with pytest.raises(asyncio.CancelledError):
        await handling
    await asyncio.wait_for(cancelled.wait(), TIMEOUT)


async def test_starlettes_client_disconnect_after_the_client_left_is_quiet(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from starlette.applications import Starlette
    from starlette.requests import ClientDisconnect
    from starlette.requests import Request as StarletteRequest
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    reading = asyncio.Event()
    raised: asyncio.Future[BaseException] = asyncio.get_running_loop().create_future()

    async def upload(request: StarletteRequest) -> PlainTextResponse:
        reading.set()
        try:
            body = await request.body()
        except BaseException as error:
            raised.set_result(error)
            raise
        return PlainTextResponse(str(len(body)))

    app = Starlette(routes=[Route("/", upload, methods=["POST"])])
    with caplog.at_level(logging.INFO, logger="wsserver"):
        async with serving_asgi(app) as server:
            _, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\npart")
            await asyncio.wait_for(reading.wait(), TIMEOUT)
            writer.close()
            assert isinstance(await asyncio.wait_for(raised, TIMEOUT), ClientDisconnect)
    # Starlette's error middleware then tries a 500, whose send fails with
    # ClientDisconnected: taken quietly, the client is gone.
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_an_exception_after_the_client_left_is_one_info_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ended = asyncio.Event()

    async def app(scope: Message, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        try:
            while (await receive())["type"] != "http.disconnect":
                pass
            raise LookupError("the upload is gone")
        finally:
            ended.set()

    with caplog.at_level(logging.INFO, logger="wsserver"):
        async with serving_asgi(app) as server:
            _, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\npart")
            writer.close()
            await asyncio.wait_for(ended.wait(), TIMEOUT)
            await asyncio.wait_for(until_logged(caplog, "after its client left"), TIMEOUT)
    [line] = [r for r in caplog.records if "after its client left" in r.getMessage()]
    assert line.levelno == logging.INFO
    assert "POST /up" in line.getMessage()
    assert "LookupError" in line.getMessage()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def until_logged(caplog: pytest.LogCaptureFixture, text: str) -> None:
    while not any(text in record.getMessage() for record in caplog.records):
        await asyncio.sleep(0.005)
