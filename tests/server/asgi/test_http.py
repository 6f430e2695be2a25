"""The HTTP cycle: its state machine alone, then over loopback with httpx."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from wsserver.protocol import ProtocolSettings
from wsserver.server import Server, ServerConfig
from wsserver.server.asgi import ASGIApp, ClientDisconnected
from wsserver.server.asgi.http import HTTPCycle, decode_headers
from wsserver.server.responses import StreamingResponse
from wsserver.server.server import RECEIVE_BUFFER_SIZE
from wsserver.server.uploads import Upload

from ..helpers import TIMEOUT
from .helpers import serving_asgi

Message = dict[str, Any]

# ---------------------------------------------------------------------------
# The cycle alone
# ---------------------------------------------------------------------------


def whole(body: bytes) -> Upload:
    """A body read whole already, as a server that does not stream gives it."""
    return Upload(asyncio.get_running_loop(), body=body)


async def test_receive_gives_the_body_then_disconnect_once_answered() -> None:
    cycle = HTTPCycle(whole(b"hello"))
    assert await cycle.receive() == {"type": "http.request", "body": b"hello", "more_body": False}
    waiting = asyncio.ensure_future(cycle.receive())
    await asyncio.sleep(0)
    assert not waiting.done()  # nothing more arrives before the response
    await cycle.send({"type": "http.response.start", "status": 201, "headers": [(b"a", b"b")]})
    assert cycle.started
    await cycle.send({"type": "http.response.body", "body": bytearray(b"xy")})
    assert cycle.complete
    assert not cycle.streaming
    assert await asyncio.wait_for(waiting, TIMEOUT) == {"type": "http.disconnect"}
    response = cycle.response.result()
    assert not isinstance(response, StreamingResponse)
    assert (response.status_code, response.body) == (201, b"xy")
    assert response.header_pairs() == [("a", "b")]
    assert await cycle.receive() == {"type": "http.disconnect"}


async def test_a_body_in_several_events_is_streamed_one_piece_at_a_time() -> None:
    cycle = HTTPCycle(whole(b""))
    await cycle.send({"type": "http.response.start", "status": 200})
    await cycle.send({"type": "http.response.body", "body": b"one", "more_body": True})
    assert cycle.streaming
    response = cycle.response.result()
    assert isinstance(response, StreamingResponse)
    # One piece in hand: the next send waits for the connection to take it.
    second = asyncio.ensure_future(
        cycle.send({"type": "http.response.body", "body": b"two", "more_body": True})
    )
    await asyncio.sleep(0)
    assert not second.done()
    pieces = aiter(response.content)
    assert await anext(pieces) == b"one"
    await asyncio.wait_for(second, TIMEOUT)
    await cycle.receive()  # the request body
    disconnect = asyncio.ensure_future(cycle.receive())
    ended = asyncio.ensure_future(cycle.send({"type": "http.response.body", "more_body": False}))
    assert await anext(pieces) == b"two"
    await asyncio.wait_for(ended, TIMEOUT)
    assert not disconnect.done()  # the connection has not taken the end yet
    with pytest.raises(StopAsyncIteration):
        await anext(pieces)
    assert cycle.complete
    assert await asyncio.wait_for(disconnect, TIMEOUT) == {"type": "http.disconnect"}
    # Once the body has ended, a send is out of order, not a disconnect.
    with pytest.raises(RuntimeError, match=r"after the last http\.response\.body"):
        await cycle.send({"type": "http.response.body"})


async def test_a_client_that_leaves_mid_stream_is_client_disconnected() -> None:
    cycle = HTTPCycle(whole(b""))
    await cycle.send({"type": "http.response.start", "status": 200})
    await cycle.send({"type": "http.response.body", "body": b"one", "more_body": True})
    response = cycle.response.result()
    assert isinstance(response, StreamingResponse)
    pieces = aiter(response.content)
    assert await anext(pieces) == b"one"
    blocked = asyncio.ensure_future(
        cycle.send({"type": "http.response.body", "body": b"two", "more_body": True})
    )
    await asyncio.sleep(0)
    third = asyncio.ensure_future(
        cycle.send({"type": "http.response.body", "body": b"three", "more_body": True})
    )
    await asyncio.sleep(0)
    await pieces.aclose()  # type: ignore[attr-defined]  # the connection gives up
    await asyncio.wait_for(blocked, TIMEOUT)
    with pytest.raises(ClientDisconnected):
        await asyncio.wait_for(third, TIMEOUT)
    await cycle.receive()
    assert await cycle.receive() == {"type": "http.disconnect"}


@pytest.mark.parametrize("full", [False, True])
async def test_a_failure_mid_stream_reaches_the_connection(full: bool) -> None:
    cycle = HTTPCycle(whole(b""))
    await cycle.send({"type": "http.response.start", "status": 200})
    await cycle.send({"type": "http.response.body", "body": b"one", "more_body": True})
    response = cycle.response.result()
    assert isinstance(response, StreamingResponse)
    pieces = aiter(response.content)
    if not full:
        assert await anext(pieces) == b"one"
    cycle.fail(KeyError("boom"))
    if full:
        assert await anext(pieces) == b"one"
    with pytest.raises(KeyError, match="boom"):
        await anext(pieces)


async def test_a_cancelled_receive_leaves_the_response_alone() -> None:
    cycle = HTTPCycle(whole(b""))
    await cycle.receive()
    waiting = asyncio.ensure_future(cycle.receive())
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert not cycle.response.done()


@pytest.mark.parametrize(
    ("events", "error"),
    [
        ([{"type": "http.response.body", "body": b""}], "'http.response.body' before http."),
        (
            [{"type": "http.response.start", "status": 200}] * 2,
            "'http.response.start' after http.response.start",
        ),
        (
            [
                {"type": "http.response.start", "status": 200},
                {"type": "http.response.body"},
                {"type": "http.response.body"},
            ],
            "'http.response.body' after the last http.response.body",
        ),
        ([{"type": "websocket.accept"}], "unexpected ASGI message 'websocket.accept' before"),
        (
            [{"type": "http.response.start", "status": 200, "trailers": True}],
            "trailers are not supported",
        ),
    ],
)
async def test_events_out_of_order_name_the_event_and_the_state(
    events: list[Message], error: str
) -> None:
    cycle = HTTPCycle(whole(b""))
    with pytest.raises(RuntimeError, match=error):
        for event in events:
            await cycle.send(event)


@pytest.mark.parametrize(
    ("event", "error"),
    [
        ({"type": "http.response.start", "status": "200"}, "status must be an int"),
        ({"type": "http.response.start", "status": True}, "status must be an int"),
        ({"type": "http.response.start", "status": 200, "headers": [(b"a",)]}, "pair"),
        ({"type": "http.response.start", "status": 200, "headers": [("a", "b")]}, "bytes"),
    ],
)
async def test_malformed_start_events_are_type_errors(event: Message, error: str) -> None:
    with pytest.raises(TypeError, match=error):
        await HTTPCycle(whole(b"")).send(event)


async def test_a_body_that_is_not_bytes_is_a_type_error() -> None:
    cycle = HTTPCycle(whole(b""))
    await cycle.send({"type": "http.response.start", "status": 200})
    with pytest.raises(TypeError, match="body must be bytes"):
        await cycle.send({"type": "http.response.body", "body": "text"})


async def test_sending_after_the_request_was_abandoned_is_client_disconnected() -> None:
    cycle = HTTPCycle(whole(b""))
    cycle.abandon()
    # The request is over: the body is not given any more (as uvicorn).
    assert await cycle.receive() == {"type": "http.disconnect"}
    with pytest.raises(ClientDisconnected):
        await cycle.send({"type": "http.response.start", "status": 200})
    assert issubclass(ClientDisconnected, OSError)


def test_decode_headers_lowercases_names_and_keeps_every_byte() -> None:
    assert decode_headers([(b"X-A", b"\xff v"), [bytearray(b"b"), b""]], "e") == [
        ("x-a", "\xff v"),
        ("b", ""),
    ]


# ---------------------------------------------------------------------------
# Over loopback
# ---------------------------------------------------------------------------


@asynccontextmanager
async def serving(app: Any, **options: Any) -> AsyncIterator[httpx.AsyncClient]:
    server = Server(
        ASGIApp(app, **options), ServerConfig(port=0, ping_interval=None, shutdown_timeout=2.0)
    )
    await server.start()
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{server.port}", timeout=TIMEOUT, trust_env=False
        ) as client:
            yield client
    finally:
        await server.shutdown()


async def test_body_chunks_headers_and_status_reach_the_client() -> None:
    async def app(scope: Message, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        request = await receive()
        await send(
            {
                "type": "http.response.start",
                "status": 202,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", b"999")],
            }
        )
        for part in (b"got ", request["body"], b"!"):
            await send({"type": "http.response.body", "body": part, "more_body": True})
        await send({"type": "http.response.body"})

    async with serving(app) as client:
        response = await client.post("/echo", content=b"payload")
        head = await client.head("/echo")
    assert response.status_code == 202
    assert response.text == "got payload!"
    # Several pieces are streamed: chunked, whatever length the app said.
    assert response.headers["transfer-encoding"] == "chunked"
    assert "content-length" not in response.headers
    assert head.status_code == 202
    assert head.content == b""


async def test_a_body_in_one_event_gets_its_length() -> None:
    async def app(scope: Message, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"whole"})

    async with serving(app) as client:
        response = await client.get("/")
    assert response.text == "whole"
    assert response.headers["content-length"] == "5"
    assert "transfer-encoding" not in response.headers


async def test_streamed_pieces_reach_the_client_as_they_are_sent() -> None:
    next_piece = asyncio.Event()

    async def app(scope: Message, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200})
        for n in range(3):
            await send({"type": "http.response.body", "body": b"event %d\n" % n, "more_body": True})
            await next_piece.wait()
            next_piece.clear()
        await send({"type": "http.response.body"})

    async with serving(app) as client, client.stream("GET", "/events") as response:
        lines = aiter(response.aiter_lines())
        for n in range(3):
            # Each piece arrives while the application still waits.
            assert await asyncio.wait_for(anext(lines), TIMEOUT) == f"event {n}"
            next_piece.set()
        with pytest.raises(StopAsyncIteration):
            await asyncio.wait_for(anext(lines), TIMEOUT)


async def test_a_client_leaving_mid_stream_stops_the_application() -> None:
    outcome: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    first_sent = asyncio.Event()

    async def app(scope: Message, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200})
        try:
            while True:
                await send({"type": "http.response.body", "body": b"x" * 1024, "more_body": True})
                first_sent.set()
        except ClientDisconnected:
            outcome.set_result((await receive())["type"] + " then " + (await receive())["type"])

    async with serving(app) as client:
        async with client.stream("GET", "/endless") as response:
            await anext(aiter(response.aiter_bytes()))
        # The client closed the connection after the first bytes: the
        # request is over, its (empty) body is not given any more.
        assert await asyncio.wait_for(outcome, TIMEOUT) == "http.disconnect then http.disconnect"
    assert first_sent.is_set()


@pytest.mark.parametrize("ending", ["raise KeyError('mid-stream')", "return"])
async def test_a_failure_mid_stream_drops_the_connection(
    ending: str, caplog: pytest.LogCaptureFixture
) -> None:
    namespace: dict[str, Any] = {}
    exec(  # the application, ending mid-body as the case says
        "async def app(scope, receive, send):\n"
        "    if scope['type'] != 'http':\n"
        "        return\n"
        "    await send({'type': 'http.response.start', 'status': 200})\n"
        "    await send({'type': 'http.response.body', 'body': b'half', 'more_body': True})\n"
        f"    {ending}\n",
        namespace,
    )
    with caplog.at_level(logging.ERROR, logger="wsserver"):
        async with serving(namespace["app"]) as client:
            # Not a complete response: the client must not take it for one.
            with pytest.raises(httpx.RemoteProtocolError):
                await client.get("/")
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert "connection dropped" in errors[0].getMessage()
    assert ("mid-stream" if "raise" in ending else "without completing") in caplog.text


async def test_starlettes_streaming_response_is_streamed() -> None:
    from starlette.responses import StreamingResponse as StarletteStreaming

    release = asyncio.Event()

    async def numbers() -> AsyncIterator[str]:
        yield "first\n"
        await release.wait()
        yield "second\n"

    async def app(scope: Message, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            await StarletteStreaming(numbers(), media_type="text/plain")(scope, receive, send)

    async with serving(app) as client, client.stream("GET", "/") as response:
        lines = aiter(response.aiter_lines())
        assert await asyncio.wait_for(anext(lines), TIMEOUT) == "first"
        release.set()
        assert await asyncio.wait_for(anext(lines), TIMEOUT) == "second"


async def test_the_response_goes_out_before_the_application_returns() -> None:
    finished = asyncio.Event()
    release = asyncio.Event()

    async def app(scope: Message, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": b"early"})
        # A background task after the response, as Starlette runs them.
        await release.wait()
        # The request is over (ASGI: receive after the response is sent),
        # as uvicorn says.
        assert await receive() == {"type": "http.disconnect"}
        finished.set()

    async with serving(app) as client:
        response = await client.get("/")
        assert response.text == "early"
        assert not finished.is_set()
        release.set()
        await asyncio.wait_for(finished.wait(), TIMEOUT)


@pytest.mark.parametrize(
    ("app_body", "logged"),
    [
        ("raise KeyError('boom')", "KeyError: 'boom'"),
        (
            "await send({'type': 'http.response.start', 'status': 200}); raise KeyError('boom')",
            "KeyError: 'boom'",
        ),
        ("await send({'type': 'http.response.body'})", "unexpected ASGI message"),
        ("return", "returned without sending its response"),
        (
            "await send({'type': 'http.response.start', 'status': 200})",
            "returned without completing its response",
        ),
    ],
)
async def test_application_errors_are_500_and_one_log_line(
    app_body: str, logged: str, caplog: pytest.LogCaptureFixture
) -> None:
    namespace: dict[str, Any] = {}
    exec(  # the failing application, written out per case
        f"async def app(scope, receive, send):\n"
        f"    if scope['type'] != 'http':\n"
        f"        return\n"
        f"    {app_body}\n",
        namespace,
    )
    with caplog.at_level(logging.ERROR, logger="wsserver"):
        async with serving(namespace["app"]) as client:
            response = await client.get("/broken")
            # The connection is still usable afterwards.
            again = await client.get("/broken")
    assert response.status_code == 500
    assert response.text == "Internal Server Error\n"
    assert again.status_code == 500
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 2
    assert logged in caplog.text


async def test_an_error_after_the_response_is_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    done = asyncio.Event()

    async def app(scope: Message, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 204})
        await send({"type": "http.response.body"})
        try:
            raise ValueError("background failed")
        finally:
            asyncio.get_running_loop().call_soon(done.set)

    with caplog.at_level(logging.ERROR, logger="wsserver"):
        async with serving(app) as client:
            assert (await client.get("/job")).status_code == 204
            await asyncio.wait_for(done.wait(), TIMEOUT)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [r.getMessage() for r in errors] == [
        "error in the ASGI application after its response to GET /job"
    ]


async def test_shutdown_cancels_applications_still_running_after_their_response() -> None:
    cancelled = asyncio.Event()

    async def app(scope: Message, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body"})
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async with serving(app, shutdown_timeout=0.1) as client:
        assert (await client.get("/")).status_code == 200
    assert cancelled.is_set()


@pytest.mark.parametrize(("limit", "status"), [(None, 413), (4 * 1024 * 1024, 200)])
async def test_uploads_over_the_body_limit_are_413_unless_it_is_raised(
    limit: int | None, status: int
) -> None:
    async def app(scope: Message, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        size = 0
        while True:
            event = await receive()
            size += len(event["body"])
            if not event["more_body"]:
                break
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": str(size).encode()})

    upload = b"u" * (2 * 1024 * 1024)
    protocol = ProtocolSettings() if limit is None else ProtocolSettings(max_body_size=limit)
    async with (
        serving_asgi(app, protocol=protocol) as server,
        httpx.AsyncClient(trust_env=False, timeout=TIMEOUT) as client,
    ):
        response = await client.post(f"http://127.0.0.1:{server.port}/", content=upload)
    assert response.status_code == status
    if status == 200:
        assert response.text == str(len(upload))


@pytest.mark.parametrize("streaming", [False, True])
async def test_an_application_cancelled_from_inside_is_500_or_a_dropped_stream(
    streaming: bool, caplog: pytest.LogCaptureFixture
) -> None:
    async def app(scope: Message, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        if streaming:
            await send({"type": "http.response.start", "status": 200})
            await send({"type": "http.response.body", "body": b"half", "more_body": True})
        waiting: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().call_soon(waiting.cancel)
        await waiting  # CancelledError in the application's own task

    with caplog.at_level(logging.ERROR, logger="wsserver"):
        async with serving(app) as client:
            if streaming:
                with pytest.raises(httpx.RemoteProtocolError):
                    await client.get("/")
            else:
                assert (await client.get("/")).status_code == 500
    (record,) = [r for r in caplog.records if r.levelno >= logging.ERROR]
    if streaming:
        assert "connection dropped" in record.getMessage()
        assert "cancelled mid-response" in caplog.text
    else:
        assert record.getMessage().endswith("the HTTP handler was cancelled; answered 500")


# ---------------------------------------------------------------------------
# Request bodies as they arrive: more_body, back-pressure, 100-continue,
# http.disconnect
# ---------------------------------------------------------------------------

MiB = 1024 * 1024
#: The most one piece can hold: what may wait unparsed (read_limit) and one
#: more socket read (the server's receive buffer).
LARGEST_PIECE = ServerConfig().read_limit + RECEIVE_BUFFER_SIZE


async def read_body(receive: Any) -> list[bytes]:
    """Every piece of the request body, as the application received them."""
    pieces = []
    while True:
        event = await receive()
        assert event["type"] == "http.request", event
        pieces.append(event["body"])
        if not event["more_body"]:
            return pieces


async def test_a_streamed_upload_arrives_in_pieces_of_bounded_size() -> None:
    sizes: list[int] = []

    async def app(scope: Message, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        digest = hashlib.sha256()
        for piece in await read_body(receive):
            sizes.append(len(piece))
            digest.update(piece)
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": digest.hexdigest().encode()})

    block = bytes(range(256)) * 256  # 64 KiB
    expected = hashlib.sha256(block * 128).hexdigest()

    async def upload() -> AsyncIterator[bytes]:
        for _ in range(128):  # 8 MiB, chunked: httpx knows no length
            yield block

    protocol = ProtocolSettings(max_body_size=16 * MiB)
    async with (
        serving_asgi(app, protocol=protocol) as server,
        httpx.AsyncClient(trust_env=False, timeout=TIMEOUT) as client,
    ):
        response = await client.post(f"http://127.0.0.1:{server.port}/", content=upload())
    assert (response.status_code, response.text) == (200, expected)
    assert sum(sizes) == 8 * MiB
    assert len(sizes) > 1
    assert max(sizes) <= LARGEST_PIECE


async def test_a_client_faster_than_the_application_is_held_back_by_tcp() -> None:
    first_read = asyncio.Event()
    go_on = asyncio.Event()
    total = 64 * MiB  # more than loopback's socket buffers hold, both ends

    async def app(scope: Message, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        first = await receive()
        first_read.set()
        await go_on.wait()
        size = len(first["body"]) + sum(len(piece) for piece in await read_body(receive))
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": str(size).encode()})

    protocol = ProtocolSettings(max_body_size=total)
    async with serving_asgi(app, protocol=protocol) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % total)
        sending = asyncio.ensure_future(send_zeros(writer, total))
        await asyncio.wait_for(first_read.wait(), TIMEOUT)
        [connection] = server.connections
        transport = connection.transport
        assert transport is not None
        # The application does not ask: the server stops reading the socket
        # once read_limit bytes wait, and no more is kept meanwhile.
        await asyncio.wait_for(until(lambda: not transport.is_reading()), TIMEOUT)
        assert connection.protocol.buffered <= LARGEST_PIECE
        assert not sending.done()  # the client is held back by TCP
        go_on.set()
        await asyncio.wait_for(sending, TIMEOUT * 4)
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT)
        assert head.startswith(b"HTTP/1.1 200 ")
        assert await asyncio.wait_for(reader.readexactly(len(str(total))), TIMEOUT) == (
            str(total).encode()
        )
        writer.close()


async def send_zeros(writer: asyncio.StreamWriter, size: int) -> None:
    block = bytes(256 * 1024)
    for _ in range(size // len(block)):
        writer.write(block)
        await writer.drain()


async def until(condition: Any) -> None:
    """Until ``condition()`` holds, looking again at each turn of the loop."""
    while not condition():
        await asyncio.sleep(0.001)


async def test_100_continue_is_sent_when_the_application_first_receives() -> None:
    started = asyncio.Event()
    go_on = asyncio.Event()

    async def app(scope: Message, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        started.set()
        await go_on.wait()
        body = b"".join(await read_body(receive))
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": body.upper()})

    loop = asyncio.get_running_loop()
    async with serving_asgi(app) as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as client:
            client.setblocking(False)
            await loop.sock_sendall(
                client,
                b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n",
            )
            await asyncio.wait_for(started.wait(), TIMEOUT)
            # The application runs and has not asked for the body: nothing
            # was written.  (Had the 100 gone out with the head parsed, it
            # would be here: loopback delivers a write before the next turn.)
            with pytest.raises(BlockingIOError):
                client.recv(1)
            go_on.set()
            continue_ = await asyncio.wait_for(loop.sock_recv(client, 100), TIMEOUT)
            assert continue_ == b"HTTP/1.1 100 Continue\r\n\r\n"
            await loop.sock_sendall(client, b"hello")
            response = b""
            while not response.endswith(b"HELLO"):
                response += await asyncio.wait_for(loop.sock_recv(client, 1000), TIMEOUT)
    assert response.startswith(b"HTTP/1.1 200 ")
    assert b"connection: close" not in response.lower()


async def test_an_answer_without_reading_the_body_sends_no_100_and_closes() -> None:
    async def app(scope: Message, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 413})
        await send({"type": "http.response.body", "body": b"too big for me"})

    async with serving_asgi(app) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99\r\nExpect: 100-continue\r\n\r\n"
        )
        response = await asyncio.wait_for(reader.read(), TIMEOUT)  # to the server's EOF
        writer.close()
    assert response.startswith(b"HTTP/1.1 413 ")
    assert b"100 Continue" not in response
    assert b"connection: close" in response.lower()
    assert response.endswith(b"too big for me")


async def test_a_client_leaving_mid_body_is_http_disconnect(
    caplog: pytest.LogCaptureFixture,
) -> None:
    events: list[Message] = []
    first = asyncio.Event()
    done = asyncio.Event()

    async def app(scope: Message, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        events.append(await receive())
        first.set()
        events.append(await receive())
        try:
            await send({"type": "http.response.start", "status": 200})
        except ClientDisconnected:
            events.append({"type": "send raised ClientDisconnected"})
        done.set()

    with caplog.at_level(logging.INFO, logger="wsserver"):
        async with serving_asgi(app) as server:
            _, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789")
            await asyncio.wait_for(first.wait(), TIMEOUT)
            writer.close()
            await asyncio.wait_for(done.wait(), TIMEOUT)
    assert events[0]["type"] == "http.request"
    assert events[0]["more_body"] is True
    assert b"0123456789".startswith(events[0]["body"])
    assert events[1:] == [{"type": "http.disconnect"}, {"type": "send raised ClientDisconnected"}]
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]


async def test_an_upload_over_the_limit_mid_stream_is_413_and_http_disconnect() -> None:
    events: list[Message] = []

    async def app(scope: Message, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        while True:
            events.append(await receive())
            if events[-1]["type"] == "http.disconnect":
                return

    protocol = ProtocolSettings(max_body_size=10)
    async with serving_asgi(app, protocol=protocol) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        writer.write(b"6\r\nabcdef\r\n6\r\nghijkl\r\n0\r\n\r\n")  # 12 > 10
        response = await asyncio.wait_for(reader.read(), TIMEOUT)
        writer.close()
        await asyncio.wait_for(
            until(lambda: bool(events) and events[-1]["type"] != "http.request"), TIMEOUT
        )
    assert response.startswith(b"HTTP/1.1 413 ")
    # What came before the chunk that broke the limit, then the disconnect.
    *pieces, last = events
    assert last == {"type": "http.disconnect"}
    assert all(piece["more_body"] for piece in pieces)
    assert b"abcdef".startswith(b"".join(piece["body"] for piece in pieces))


async def test_a_client_leaving_while_the_response_streams_is_http_disconnect(
    caplog: pytest.LogCaptureFixture,
) -> None:
    outcome: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def app(scope: Message, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await read_body(receive)
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": b"first", "more_body": True})
        # An event stream with nothing to send: it waits for the client to go.
        outcome.set_result((await receive())["type"])

    with caplog.at_level(logging.INFO, logger="wsserver"):
        async with serving_asgi(app) as server:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
            await asyncio.wait_for(reader.readuntil(b"first\r\n"), TIMEOUT)
            writer.close()
            assert await asyncio.wait_for(outcome, TIMEOUT) == "http.disconnect"
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]


async def test_starlette_reads_a_streamed_upload_and_sees_the_disconnect() -> None:
    from starlette.applications import Starlette
    from starlette.requests import Request as StarletteRequest
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def count(request: StarletteRequest) -> PlainTextResponse:
        pieces = [len(piece) async for piece in request.stream() if piece]
        return PlainTextResponse(f"{sum(pieces)} in {len(pieces) > 1}")

    app = Starlette(routes=[Route("/", count, methods=["POST"])])

    async def upload() -> AsyncIterator[bytes]:
        for _ in range(64):
            yield bytes(64 * 1024)

    protocol = ProtocolSettings(max_body_size=8 * MiB)
    async with (
        serving_asgi(app, protocol=protocol) as server,
        httpx.AsyncClient(trust_env=False, timeout=TIMEOUT) as client,
    ):
        response = await client.post(f"http://127.0.0.1:{server.port}/", content=upload())
    assert (response.status_code, response.text) == (200, f"{4 * MiB} in True")


async def test_a_streamed_body_read_to_its_end_keeps_the_connection_alive() -> None:
    clients: list[Any] = []

    async def app(scope: Message, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        clients.append(scope["client"])
        body = b"".join(await read_body(receive))
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": str(len(body)).encode()})

    async def upload() -> AsyncIterator[bytes]:
        for _ in range(4):
            yield bytes(100_000)

    async with (
        serving_asgi(app) as server,
        httpx.AsyncClient(trust_env=False, timeout=TIMEOUT) as client,
    ):
        url = f"http://127.0.0.1:{server.port}/"
        first = await client.post(url, content=upload())
        second = await client.post(url, content=b"again")
    assert (first.text, second.text) == ("400000", "5")
    assert "close" not in first.headers.get("connection", "")
    assert clients[0] == clients[1]  # the same connection, kept alive


async def test_a_receive_waiting_for_an_unread_body_ends_with_the_response() -> None:
    outcome: asyncio.Future[Message] = asyncio.get_running_loop().create_future()

    async def app(scope: Message, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        # A disconnect listener (as Starlette's while it streams), started
        # while the body has not come: it waits in the body's read.
        listener = asyncio.ensure_future(receive())
        await asyncio.sleep(0)
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": b"done"})
        outcome.set_result(await asyncio.wait_for(listener, TIMEOUT))

    async with serving_asgi(app) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")
        response = await asyncio.wait_for(reader.read(), TIMEOUT)  # closed after it
        writer.close()
        assert await asyncio.wait_for(outcome, TIMEOUT) == {"type": "http.disconnect"}
    assert response.startswith(b"HTTP/1.1 200 ")
    assert response.endswith(b"done")
