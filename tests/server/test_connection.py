"""Tests for wsserver.server.connection, end to end over loopback.

Each test starts a server in-process (``Server(app, ServerConfig(port=0))``)
and talks to it with independent clients: the ``websockets`` library, or a
raw socket (``helpers.RawClient``) where the test needs byte-level control.
Timeouts are configured small so that every behaviour shows in well under a
second.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import socket
import time
import tracemalloc
from collections.abc import AsyncIterator
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from wsserver.protocol import BinaryMessage, TextMessage
from wsserver.server import App, PlainTextResponse, Request, Response, Server, as_app
from wsserver.server.datastructures import Address
from wsserver.server.responses import StreamingResponse
from wsserver.server.security import OriginPolicy
from wsserver.server.websocket import Disconnect, WebSocket, WebSocketDisconnect
from wsserver.testing import wire

from .._live import HTTPClient, RawWebSocket, http_get, serving
from .helpers import (
    OP_BINARY,
    OP_CLOSE,
    OP_PING,
    OP_TEXT,
    TIMEOUT,
    FunctionApp,
    Harness,
    close_frame,
    close_payload,
    echo_text_close_on_request,
    handshake_request,
    harness,
    mask_frame,
    only_connection,
    open_fds,
    wait_until,
    ws_client,
)

#: What asyncio's selector transport reads from a socket at once.
ONE_READ = 256 * 1024


@pytest.fixture
async def h() -> AsyncIterator[Harness]:
    async with harness() as h:
        yield h


# ---------------------------------------------------------------------------
# Backpressure
# ---------------------------------------------------------------------------


async def test_app_not_consuming_pauses_reading_and_loses_nothing(h: Harness) -> None:
    # The application does not receive until the gate opens; the client has
    # a small send buffer and tries to send 4 MiB.
    count, size = 256, 16 * 1024
    max_queue, read_limit = 4, 16 * 1024
    gate = asyncio.Event()
    done = asyncio.Event()
    received: list[bytes] = []

    async def handler(websocket: WebSocket) -> None:
        await websocket.accept()
        await gate.wait()
        for _ in range(count):
            message = await websocket.receive()
            assert isinstance(message, BinaryMessage)
            received.append(message.data)
        done.set()

    server = await h.serve(FunctionApp(handler), max_queue=max_queue, read_limit=read_limit)
    raw = await h.raw(server, sndbuf=4096)
    await raw.handshake()
    connection = only_connection(server)
    payloads = [i.to_bytes(4, "big") * (size // 4) for i in range(count)]
    data = b"".join(mask_frame(OP_BINARY, p) for p in payloads)

    tracemalloc.start()
    try:
        sending = asyncio.create_task(raw.send(data))
        await wait_until(lambda: connection._reading_paused)
        # The server stopped reading: the transport says so, the queue is
        # full, and what the core holds unparsed is bounded by one read past
        # read_limit.
        assert connection.transport is not None
        assert not connection.transport.is_reading()
        assert connection.websocket is not None
        assert connection._inbox is not None
        assert len(connection._inbox.messages) == max_queue
        buffered = connection.protocol.buffered
        assert read_limit <= buffered <= read_limit + ONE_READ
        # The client's send cannot finish: its socket buffer is full.
        finished, _ = await asyncio.wait({sending}, timeout=0.3)
        assert not finished
        assert connection.protocol.buffered == buffered
        assert connection._bytes_in < len(data) // 8
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # 4 MiB were offered; the process held the queue, the unparsed bytes
    # and one read in flight, with room for bookkeeping.
    assert peak < max_queue * size + read_limit + 2 * ONE_READ, peak

    # The rest goes faster through a normal send buffer (a tiny one makes
    # loopback TCP crawl).
    raw.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
    gate.set()
    await asyncio.wait_for(sending, TIMEOUT)
    await asyncio.wait_for(done.wait(), TIMEOUT)
    assert received == payloads
    assert not connection._reading_paused


async def test_peer_not_reading_makes_send_wait_then_fails_with_1008(h: Harness) -> None:
    message = b"x" * (1 << 20)
    write_limit, write_timeout = 64 * 1024, 0.3
    completed = 0
    outcome: asyncio.Future[WebSocketDisconnect] = asyncio.get_running_loop().create_future()

    async def handler(websocket: WebSocket) -> None:
        nonlocal completed
        await websocket.accept()
        try:
            for _ in range(64):
                await websocket.send_bytes(message)
                completed += 1
        except WebSocketDisconnect as error:
            outcome.set_result(error)
            raise

    server = await h.serve(
        FunctionApp(handler), write_limit=write_limit, write_timeout=write_timeout
    )
    raw = await h.raw(server, rcvbuf=4096)
    await raw.handshake()
    connection = only_connection(server)
    await wait_until(lambda: connection._writing_paused)
    paused_at = time.monotonic()
    assert connection.transport is not None
    # The send that went over the limit wrote one whole message, no more
    # (14: the largest frame header).
    assert 0 < connection.transport.get_write_buffer_size() <= write_limit + len(message) + 14
    sends_before = completed

    error = await asyncio.wait_for(outcome, TIMEOUT)
    assert error.code == 1008
    assert error.reason == "peer not reading"
    # The send waited for the whole write_timeout and never returned.
    assert time.monotonic() - paused_at >= write_timeout * 0.9
    assert completed == sends_before < 64
    # The connection is dropped: gone from the server, and the client reads
    # to the end what the kernel had taken, then the end.
    await wait_until(lambda: not server.connections)
    assert connection.closed
    await raw.read_to_eof()
    assert raw.eof


async def test_send_resumes_when_the_peer_reads_again(h: Harness) -> None:
    count, message = 8, b"y" * (1 << 20)
    done = asyncio.Event()

    async def handler(websocket: WebSocket) -> None:
        await websocket.accept()
        for _ in range(count):
            await websocket.send_bytes(message)
        done.set()
        await websocket.receive()

    server = await h.serve(FunctionApp(handler), write_timeout=TIMEOUT)
    raw = await h.raw(server, rcvbuf=4096)
    await raw.handshake()
    connection = only_connection(server)
    await wait_until(lambda: connection._writing_paused)
    assert not done.is_set()
    for _ in range(count):
        frame = await raw.recv_frame()
        assert (frame.opcode, frame.payload) == (OP_BINARY, message)
    await asyncio.wait_for(done.wait(), TIMEOUT)
    assert not connection._writing_paused


# ---------------------------------------------------------------------------
# Timeouts
# ---------------------------------------------------------------------------


async def test_open_timeout_closes_half_a_request_head(h: Harness) -> None:
    open_timeout = 0.5
    server = await h.serve(open_timeout=open_timeout)
    slow = await h.raw(server)
    started = time.monotonic()
    await slow.send(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: webs")
    await wait_until(lambda: len(server.connections) == 1)
    slow_connection = only_connection(server)
    # Meanwhile another client is served normally.
    async with ws_client(server) as ws:
        await ws.send("hello")
        assert await ws.recv() == "hello"
    assert slow_connection in server.connections
    # The slow one is closed without a response.
    assert await slow.read_to_eof() == b""
    assert time.monotonic() - started >= open_timeout * 0.9
    await wait_until(lambda: not server.connections)


async def test_open_timeout_applies_between_keep_alive_requests(h: Harness) -> None:
    open_timeout = 0.3
    server = await h.serve(open_timeout=open_timeout)
    raw = await h.raw(server)
    await raw.send(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    status, headers = await raw.response_head()
    assert status == 200
    answered = time.monotonic()
    assert await raw.read_exactly(int(headers["content-length"])) == b"ok\n"
    # Kept alive, then closed once the next request does not come.
    assert await raw.read_to_eof() == b""
    assert time.monotonic() - answered >= open_timeout * 0.9


async def test_close_timeout_aborts_a_peer_that_never_answers_the_close(h: Harness) -> None:
    close_timeout = 0.3

    async def handler(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.close(4000, "bye")
        assert isinstance(await websocket.receive(), Disconnect)

    server = await h.serve(FunctionApp(handler), close_timeout=close_timeout)
    raw = await h.raw(server)
    await raw.handshake()
    frame = await raw.recv_frame()
    assert frame.opcode == OP_CLOSE
    assert frame.payload == close_payload(4000, "bye")
    sent_close = time.monotonic()
    # The client never answers: TCP ends once close_timeout has passed.
    assert await raw.read_to_eof() == b""
    assert time.monotonic() - sent_close >= close_timeout * 0.9
    await wait_until(lambda: not server.connections)


async def test_closing_handshake_completes_before_close_timeout(h: Harness) -> None:
    async def handler(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.close(1000, "done")

    server = await h.serve(FunctionApp(handler), close_timeout=TIMEOUT)
    raw = await h.raw(server)
    await raw.handshake()
    frame = await raw.recv_frame()
    assert frame.payload == close_payload(1000, "done")
    started = time.monotonic()
    await raw.send(close_frame(1000))
    # The server closes TCP first, at once (RFC 6455 section 7.1.1).
    assert await raw.read_to_eof() == b""
    assert time.monotonic() - started < 1.0


async def test_close_while_busy_ends_as_soon_as_the_peer_answers(h: Harness) -> None:
    # The application closes while still handling a message and does not
    # call receive() again: the peer's answer to our Close must not be held
    # (there is nothing left to order after our Close).
    release = asyncio.Event()

    async def handler(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.receive()
        await websocket.close(1000, "enough")
        await release.wait()

    server = await h.serve(FunctionApp(handler), close_timeout=TIMEOUT)
    raw = await h.raw(server)
    await raw.handshake()
    await raw.send(mask_frame(OP_TEXT, b"one"))
    frame = await raw.recv_frame()
    assert (frame.opcode, frame.payload) == (OP_CLOSE, close_payload(1000, "enough"))
    started = time.monotonic()
    await raw.send(close_frame(1000))
    assert await raw.read_to_eof() == b""
    assert time.monotonic() - started < 1.0
    await wait_until(lambda: not server.connections)
    release.set()


# ---------------------------------------------------------------------------
# hold_replies: replies to messages go out before the Close
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("with_handshake", [False, True], ids=["after-101", "with-request"])
async def test_echo_goes_out_before_the_close_for_a_protocol_error(
    h: Harness, with_handshake: bool
) -> None:
    server = await h.serve()
    raw = await h.raw(server)
    # Text, then a frame with a reserved opcode, in one write (and in the
    # same write as the request, for the second case).
    frames = mask_frame(OP_TEXT, b"hello") + mask_frame(0x3, b"")
    if with_handshake:
        await raw.handshake(extra=frames)
    else:
        await raw.handshake()
        await raw.send(frames)
    first = await raw.recv_frame()
    assert (first.opcode, first.payload) == (OP_TEXT, b"hello")
    second = await raw.recv_frame()
    assert second.opcode == OP_CLOSE
    assert second.close_code == 1002
    await raw.send(close_frame(1002))
    assert await raw.read_to_eof() == b""


@pytest.mark.parametrize("with_handshake", [False, True], ids=["after-101", "with-request"])
async def test_echo_goes_out_before_the_close_echo(h: Harness, with_handshake: bool) -> None:
    server = await h.serve()
    raw = await h.raw(server)
    frames = (
        mask_frame(OP_TEXT, b"hello") + mask_frame(OP_BINARY, b"\x00\x01") + close_frame(1000, "x")
    )
    if with_handshake:
        await raw.handshake(extra=frames)
    else:
        await raw.handshake()
        await raw.send(frames)
    received = [await raw.recv_frame() for _ in range(3)]
    assert [(f.opcode, f.payload) for f in received] == [
        (OP_TEXT, b"hello"),
        (OP_BINARY, b"\x00\x01"),
        (OP_CLOSE, close_payload(1000)),
    ]
    assert await raw.read_to_eof() == b""


async def test_held_close_is_answered_after_close_timeout_if_the_app_stalls(h: Harness) -> None:
    # An application that never comes back for the next message cannot hold
    # the peer's Close forever.
    close_timeout = 0.3
    stalled = asyncio.Event()
    release = asyncio.Event()
    after: list[object] = []

    async def handler(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.receive()
        stalled.set()
        await release.wait()
        after.append(await websocket.receive())

    server = await h.serve(FunctionApp(handler), close_timeout=close_timeout)
    raw = await h.raw(server)
    await raw.handshake()
    await raw.send(mask_frame(OP_TEXT, b"one") + close_frame(1000))
    await asyncio.wait_for(stalled.wait(), TIMEOUT)
    started = time.monotonic()
    frame = await raw.recv_frame()
    assert (frame.opcode, frame.payload) == (OP_CLOSE, close_payload(1000))
    assert time.monotonic() - started >= close_timeout * 0.9
    assert await raw.read_to_eof() == b""
    await wait_until(lambda: not server.connections)
    # Coming back late, the application learns how the connection ended.
    release.set()
    await wait_until(lambda: bool(after))
    assert after == [Disconnect(1000)]


async def test_releasing_a_held_close_keeps_unread_messages(h: Harness) -> None:
    # The hold timing out answers the peer's Close, but the messages that
    # came before it were accepted: the application still reads them, in
    # order, before the disconnect.
    stalled = asyncio.Event()
    release = asyncio.Event()
    after: list[object] = []

    async def handler(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.receive()
        stalled.set()
        await release.wait()
        for _ in range(3):
            after.append(await websocket.receive())

    server = await h.serve(FunctionApp(handler), close_timeout=0.3)
    raw = await h.raw(server)
    await raw.handshake()
    await raw.send(
        mask_frame(OP_TEXT, b"one")
        + mask_frame(OP_TEXT, b"two")
        + mask_frame(OP_TEXT, b"three")
        + close_frame(1000)
    )
    await asyncio.wait_for(stalled.wait(), TIMEOUT)
    frame = await raw.recv_frame()
    assert (frame.opcode, frame.payload) == (OP_CLOSE, close_payload(1000))
    release.set()
    await wait_until(lambda: len(after) == 3)
    assert after == [TextMessage(data="two"), TextMessage(data="three"), Disconnect(1000)]


async def test_ping_flood_from_a_peer_that_never_reads_stays_bounded(h: Harness) -> None:
    # Issue "Hostile input": a client that sends pings and never reads the
    # pongs cannot grow the server's write buffer without bound.  Pongs need
    # no send() to wait on, so the server stops reading while its writes are
    # backed up, and drops the peer after write_timeout.
    write_limit = 16 * 1024
    server = await h.serve(FunctionApp(), write_limit=write_limit, write_timeout=1.0)
    raw = await h.raw(server, rcvbuf=4096)
    await raw.handshake()
    connection = only_connection(server)
    transport = connection.transport
    assert transport is not None
    batch = mask_frame(OP_PING, b"p" * 125) * 1000  # 131 KB of pings
    largest = 0
    started = time.monotonic()

    async def flood() -> None:
        for _ in range(200):  # at most 26 MB, bounded in count
            await raw.send(batch)

    flooding = asyncio.create_task(flood())
    try:
        while server.connections:
            largest = max(largest, transport.get_write_buffer_size())
            await asyncio.sleep(0.005)
            assert time.monotonic() - started < 30, "the flooding peer was never dropped"
    finally:
        flooding.cancel()
        with contextlib.suppress(asyncio.CancelledError, OSError):
            await flooding
    # At most what one parse of the core's buffered input can answer: one
    # read (256 KiB) of pings beyond the high-water mark, never the 26 MB.
    assert largest <= write_limit + 256 * 1024, largest
    assert raw.sent < 26 * 1024 * 1024  # the server stopped reading long before


# ---------------------------------------------------------------------------
# Errors in the application
# ---------------------------------------------------------------------------


async def test_handler_exception_after_accept_closes_with_1011(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    async def handler(websocket: WebSocket) -> None:
        await websocket.accept()
        while True:
            message = await websocket.receive()
            if isinstance(message, Disconnect):
                return
            assert isinstance(message, TextMessage)
            if message.data == "boom":
                raise RuntimeError("secret: /srv/app/db.sqlite password=hunter2")
            await websocket.send_text(message.data)

    server = await h.serve(FunctionApp(handler))
    with caplog.at_level(logging.INFO, logger="wsserver"):
        async with ws_client(server) as bystander, ws_client(server) as victim:
            await victim.send("boom")
            with pytest.raises(ConnectionClosed) as caught:
                await victim.recv()
            rcvd = caught.value.rcvd
            assert rcvd is not None
            assert rcvd.code == 1011
            assert "secret" not in rcvd.reason and "RuntimeError" not in rcvd.reason
            assert rcvd.reason == "internal error"
            # The other connection is unaffected.
            await bystander.send("still fine")
            assert await bystander.recv() == "still fine"
    # The details are in the server's log, not on the wire.
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert errors[0].exc_info is not None and "hunter2" in str(errors[0].exc_info[1])


async def test_handler_exception_before_accept_is_http_500(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    async def handler(websocket: WebSocket) -> None:
        raise ValueError("not ready")

    server = await h.serve(FunctionApp(handler))
    with caplog.at_level(logging.ERROR, logger="wsserver"), pytest.raises(InvalidStatus) as caught:
        async with ws_client(server):
            pass
    assert caught.value.response.status_code == 500
    assert b"not ready" not in (caught.value.response.body or b"")
    assert any(r.exc_info for r in caplog.records)
    await wait_until(lambda: not server.connections)


async def test_handler_returning_without_accept_is_403(h: Harness) -> None:
    async def handler(websocket: WebSocket) -> None:
        return

    server = await h.serve(FunctionApp(handler))
    with pytest.raises(InvalidStatus) as caught:
        async with ws_client(server):
            pass
    assert caught.value.response.status_code == 403


async def test_handler_returning_after_accept_closes_with_1000(h: Harness) -> None:
    async def handler(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text("bye")

    server = await h.serve(FunctionApp(handler))
    async with ws_client(server) as ws:
        assert await ws.recv() == "bye"
        with pytest.raises(ConnectionClosed) as caught:
            await ws.recv()
    assert caught.value.rcvd is not None and caught.value.rcvd.code == 1000


def error_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "wsserver" and r.levelno >= logging.ERROR]


async def http_status(h: Harness, server: Server, target: str) -> int:
    """The status of ``GET target``, read within TIMEOUT."""
    raw = await h.raw(server)
    await raw.send(f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    status, _ = await raw.response_head(timeout=TIMEOUT)
    return status


class MistakenApp(FunctionApp):
    """An ``Application`` (not ``App``) whose HTTP side returns what it is given."""

    def __init__(self, returned: object) -> None:
        super().__init__()
        self.returned = returned

    async def handle_http(self, request: Request) -> Any:
        return self.returned


async def test_application_returning_a_non_response_is_500_with_one_log_line(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    server = await h.serve(MistakenApp("text"))
    with caplog.at_level(logging.ERROR, logger="wsserver"):
        assert await http_status(h, server, "/page?q=1") == 500
    (record,) = error_records(caplog)
    assert record.getMessage().endswith(
        f": GET /page?q=1: HTTP handler {__name__}.MistakenApp.handle_http returned "
        "str 'text', expected a Response; answered 500"
    )
    assert record.exc_info is None


@pytest.mark.parametrize("status", [101, 103])
async def test_a_response_the_core_cannot_send_is_replaced_by_500(
    h: Harness, caplog: pytest.LogCaptureFixture, status: int
) -> None:
    server = await h.serve(MistakenApp(Response(status_code=status)))
    with caplog.at_level(logging.ERROR, logger="wsserver"):
        raw = await h.raw(server)
        request = b"GET /early HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        await raw.send(request)
        assert (await raw.response_head())[0] == 500
        # The connection is still usable: the next request is answered.
        await raw.read_until(b"Internal Server Error\n")
        await raw.send(request)
        assert (await raw.response_head())[0] == 500
    first = error_records(caplog)[0].getMessage()
    assert first.endswith(
        f": GET /early: the HTTP handler's response Response(status_code={status}, "
        f"body=<0 bytes>) cannot be sent (status {status} is not a final status code "
        "(200-599)); answered 500"
    )
    assert len(error_records(caplog)) == 2  # one line per request


class CancellingApp(FunctionApp):
    """Its HTTP handler awaits a future that gets cancelled."""

    async def handle_http(self, request: Request) -> Response:
        waiting: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().call_soon(waiting.cancel)
        await waiting  # raises CancelledError in this task
        return PlainTextResponse("never")


async def test_http_handler_cancelled_from_inside_is_answered_500(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    server = await h.serve(CancellingApp())
    with caplog.at_level(logging.ERROR, logger="wsserver"):
        assert await http_status(h, server, "/cancelled") == 500
    (record,) = error_records(caplog)
    assert record.getMessage().endswith(
        ": GET /cancelled: the HTTP handler was cancelled; answered 500"
    )


@pytest.mark.parametrize("accepted", [False, True])
async def test_websocket_handler_cancelled_from_inside_gets_500_or_1011(
    h: Harness, caplog: pytest.LogCaptureFixture, accepted: bool
) -> None:
    async def handler(websocket: WebSocket) -> None:
        if accepted:
            await websocket.accept()
        waiting: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().call_soon(waiting.cancel)
        await waiting

    server = await h.serve(FunctionApp(handler))
    with caplog.at_level(logging.ERROR, logger="wsserver"):
        raw = await h.raw(server)
        await raw.send(handshake_request("/gone"))
        status, _ = await raw.response_head()
        if accepted:
            assert status == 101
            frame = await raw.recv_non_ping()
            assert (frame.close_code, frame.close_reason) == (1011, "internal error")
        else:
            assert status == 500
    (record,) = error_records(caplog)
    outcome = "closed with 1011" if accepted else "answered 500"
    assert record.getMessage().endswith(f": /gone: the WebSocket handler was cancelled; {outcome}")


class ReturningWebSocketApp(FunctionApp):
    async def handle_websocket(self, websocket: WebSocket) -> Any:
        await websocket.accept()
        return "done"


async def test_application_websocket_side_returning_a_value_closes_with_1011(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    server = await h.serve(ReturningWebSocketApp())
    with caplog.at_level(logging.ERROR, logger="wsserver"):
        raw = await h.raw(server)
        await raw.handshake("/ws")
        assert (await raw.recv_non_ping()).close_code == 1011
    (record,) = error_records(caplog)
    assert record.getMessage().endswith(
        f": /ws: WebSocket handler {__name__}.ReturningWebSocketApp.handle_websocket "
        "returned str 'done', expected None; closed with 1011"
    )


# ---------------------------------------------------------------------------
# The handshake timeout: an endpoint that never answers
# ---------------------------------------------------------------------------


async def endpoint_that_never_answers(websocket: WebSocket) -> None:
    """Neither accepts nor refuses: waits for what never comes."""
    await asyncio.Event().wait()


async def test_an_endpoint_that_never_answers_gets_503_within_handshake_timeout(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    handshake_timeout = 0.3
    cancelled = asyncio.Event()

    async def endpoint(websocket: WebSocket) -> None:
        try:
            await endpoint_that_never_answers(websocket)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    server = await h.serve(as_app(endpoint), handshake_timeout=handshake_timeout)
    raw = await h.raw(server)
    await wait_until(lambda: len(server.connections) == 1)
    connection_id = only_connection(server).id
    with caplog.at_level(logging.INFO, logger="wsserver"):
        sent_at = time.monotonic()
        await raw.send(handshake_request("/?room=1"))
        status, headers = await raw.response_head()  # bounded by TIMEOUT
        answered_at = time.monotonic()
        await asyncio.wait_for(cancelled.wait(), TIMEOUT)
        await wait_until(lambda: not server.connections)
    assert status == 503
    assert headers["connection"] == "close"
    # Not before the timeout; well before the client's own patience.
    assert handshake_timeout * 0.9 <= answered_at - sent_at < TIMEOUT
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [
        f"conn {connection_id}: /: the WebSocket endpoint "
        f"{endpoint.__module__}.{endpoint.__qualname__} neither accepted nor refused the "
        f"handshake within {handshake_timeout}s (handshake_timeout); answered 503 and "
        "cancelled it"
    ]


async def test_the_client_is_answered_even_if_the_endpoint_ignores_the_cancellation(
    h: Harness,
) -> None:
    release = asyncio.Event()

    async def stubborn(websocket: WebSocket) -> None:
        try:
            await endpoint_that_never_answers(websocket)
        except asyncio.CancelledError:
            await release.wait()  # a mistake: it goes on waiting

    server = await h.serve(FunctionApp(stubborn), handshake_timeout=0.1)
    raw = await h.raw(server)
    await raw.send(handshake_request())
    status, _ = await raw.response_head()
    assert status == 503
    release.set()


async def test_an_endpoint_that_answers_in_time_is_not_touched(h: Harness) -> None:
    async def slow_then_echo(websocket: WebSocket) -> None:
        await asyncio.sleep(0.05)  # an authentication service, say
        await echo_text_close_on_request(websocket)

    server = await h.serve(FunctionApp(slow_then_echo), handshake_timeout=TIMEOUT)
    async with ws_client(server) as ws:
        connection = only_connection(server)
        assert server.handshake_deadlines is not None
        assert connection not in server.handshake_deadlines  # cancelled by the 101
        await ws.send("still open")
        assert await ws.recv() == "still open"


async def test_without_a_handshake_timeout_nothing_is_armed(h: Harness) -> None:
    answer = asyncio.Event()

    async def waits_for_the_test(websocket: WebSocket) -> None:
        await answer.wait()
        await websocket.accept()
        await websocket.receive()

    server = await h.serve(FunctionApp(waits_for_the_test), handshake_timeout=None)
    raw = await h.raw(server)
    await raw.send(handshake_request())
    await wait_until(lambda: only_connection(server)._task is not None)
    assert server.handshake_deadlines is None
    answer.set()
    status, _ = await raw.response_head()
    assert status == 101


# ---------------------------------------------------------------------------
# Logging
# ---------------------------------------------------------------------------

OPEN_LINE = re.compile(r"conn (\d+) open path=(\S+) client=127\.0\.0\.1:(\d+)$")
CLOSE_LINE = re.compile(
    r"conn (\d+) closed path=(\S+) client=(\S+) code=(\d+) reason=('.*') by=(server|client) "
    r"duration=(\d+\.\d+)s in=(\d+) out=(\d+)$"
)


async def test_one_log_line_on_open_and_one_on_close(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    ids: list[int] = []

    async def handler(websocket: WebSocket) -> None:
        ids.append(websocket.connection_id)
        await echo_once(websocket)

    async def echo_once(websocket: WebSocket) -> None:
        await websocket.accept()
        message = await websocket.receive()
        assert isinstance(message, TextMessage)
        await websocket.send_text(message.data)
        assert isinstance(await websocket.receive(), Disconnect)

    server = await h.serve(FunctionApp(handler))
    with caplog.at_level(logging.INFO, logger="wsserver"):
        raw = await h.raw(server)
        await raw.handshake("/chat?room=1")
        await raw.send(mask_frame(OP_TEXT, b"hi"))
        assert (await raw.recv_frame()).payload == b"hi"
        await raw.send(close_frame(1000))
        assert (await raw.recv_frame()).close_code == 1000
        await raw.read_to_eof()
    lines = [r.getMessage() for r in caplog.records if r.name == "wsserver"]
    (conn_id,) = ids
    mine = [line for line in lines if line.startswith(f"conn {conn_id} ")]
    assert len(mine) == 2, lines
    opened = OPEN_LINE.match(mine[0])
    closed = CLOSE_LINE.match(mine[1])
    assert opened is not None and closed is not None, mine
    assert opened[2] == "/chat"  # the path, without the query
    assert int(opened[3]) == raw.sock.getsockname()[1]
    client = f"127.0.0.1:{raw.sock.getsockname()[1]}"
    assert closed.group(1, 2, 3, 4, 5, 6) == (str(conn_id), "/chat", client, "1000", "''", "client")
    assert 0 <= float(closed[7]) < 1
    # Byte counts are exactly what went over the socket each way.
    assert int(closed[8]) == raw.sent
    assert int(closed[9]) == raw.received
    # The same fields on the record, for a structured (JSON) formatter.
    (record,) = [r for r in caplog.records if r.getMessage() == mine[1]]
    assert {
        name: getattr(record, name)
        for name in ("connection_id", "client", "path", "close_code", "closed_by", "bytes_in")
    } == {
        "connection_id": conn_id,
        "client": client,
        "path": "/chat",
        "close_code": 1000,
        "closed_by": "client",
        "bytes_in": raw.sent,
    }
    assert all(r.levelno == logging.INFO for r in caplog.records if r.name == "wsserver")


async def test_refused_handshake_logs_no_close_line(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    async def handler(websocket: WebSocket) -> None:
        await websocket.close()  # before accept: 403

    server = await h.serve(FunctionApp(handler))
    with caplog.at_level(logging.INFO, logger="wsserver"):
        raw = await h.raw(server)
        await raw.send(handshake_request())
        status, _ = await raw.response_head()
        assert status == 403
        await raw.read_to_eof()
        raw.close()  # the server lingers until the client's end of file
        await wait_until(lambda: not server.connections)
    messages = [r.getMessage() for r in caplog.records]
    assert not [m for m in messages if " open " in m or " closed " in m]


# ---------------------------------------------------------------------------
# Abrupt disconnects leak nothing
# ---------------------------------------------------------------------------


async def test_abrupt_disconnects_leak_no_connection_task_or_fd(h: Harness) -> None:
    server = await h.serve(FunctionApp(echo_text_close_on_request), close_timeout=0.5)
    baseline_tasks = len(asyncio.all_tasks())
    baseline_fds = open_fds()
    first_id = server.next_connection_id()
    request = handshake_request()
    for i in range(200):
        raw = await h.raw(server)
        kind = i % 5
        if kind == 0:  # mid-handshake
            await raw.send(request[: len(request) // 2])
        elif kind == 1:  # mid-frame
            await raw.handshake()
            await raw.send(mask_frame(OP_TEXT, b"x" * 300)[:50])
        elif kind == 2:  # mid-close, the client's
            await raw.handshake()
            await raw.send(close_frame(1000))
        elif kind == 3:  # mid-close, the server's
            await raw.handshake()
            await raw.send(mask_frame(OP_TEXT, b"close"))
            assert (await raw.recv_frame()).opcode == OP_CLOSE
        else:  # mid-handshake, while the application runs
            await raw.send(request + mask_frame(OP_TEXT, b"echo"))
        if i % 2:
            raw.abort()
        else:
            raw.close()
        h.clients.remove(raw)
    await wait_until(lambda: not server.connections)
    await wait_until(lambda: len(asyncio.all_tasks()) <= baseline_tasks)
    assert len(asyncio.all_tasks()) == baseline_tasks
    assert open_fds() == baseline_fds
    assert server.next_connection_id() == first_id + 201  # all 200 reached the server


async def test_peer_eof_while_open_ends_with_1006(h: Harness) -> None:
    ended: asyncio.Future[Disconnect] = asyncio.get_running_loop().create_future()

    async def handler(websocket: WebSocket) -> None:
        await websocket.accept()
        message = await websocket.receive()
        assert isinstance(message, Disconnect)
        ended.set_result(message)

    server = await h.serve(FunctionApp(handler))
    raw = await h.raw(server)
    await raw.handshake()
    raw.sock.shutdown(1)  # SHUT_WR: a FIN without a Close frame
    assert (await asyncio.wait_for(ended, TIMEOUT)).code == 1006
    assert await raw.read_to_eof() == b""
    await wait_until(lambda: not server.connections)


# ---------------------------------------------------------------------------
# Access control: Origin (cross-site WebSocket hijacking)
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "status"),
    [
        ("Origin: https://app.example.com\r\n", 101),
        ("Origin: https://example.com\r\n", 101),
        ("Origin: https://evil.test\r\n", 403),
        ("Origin: https://example.com.evil.test\r\n", 403),
        ("Origin: null\r\n", 403),
        ("", 101),  # not a browser: allowed by default
        ("Origin: https://example.com\r\nOrigin: https://evil.test\r\n", 403),
    ],
)
async def test_origin_policy_is_checked_before_the_upgrade(
    h: Harness, extra: str, status: int
) -> None:
    ran: list[bool] = []

    async def handler(websocket: WebSocket) -> None:
        ran.append(True)
        await websocket.accept()

    server = await h.serve(
        FunctionApp(handler),
        origins=OriginPolicy(["https://example.com", "https://*.example.com"]),
    )
    raw = await h.raw(server)
    await raw.send(handshake_request(extra=extra))
    code, _ = await raw.response_head()
    assert code == status
    if status == 403:
        assert ran == []  # the application never saw the refused handshake


async def test_origin_policy_can_refuse_clients_without_origin(h: Harness) -> None:
    server = await h.serve(
        FunctionApp(), origins=OriginPolicy(["https://example.com"], allow_missing=False)
    )
    raw = await h.raw(server)
    await raw.send(handshake_request())
    code, _ = await raw.response_head()
    assert code == 403


async def test_reading_pauses_during_the_handshake_only_once_bytes_wait(h: Harness) -> None:
    # While the application decides on a handshake, the server keeps
    # reading as long as nothing arrives (a client waits for its 101:
    # pausing every connection would cost two epoll_ctl calls for nothing),
    # and stops as soon as bytes wait in the core.
    decide = asyncio.Event()
    deciding = asyncio.Event()

    async def handler(websocket: WebSocket) -> None:
        deciding.set()
        await decide.wait()
        await websocket.accept()
        message = await websocket.receive()
        assert isinstance(message, TextMessage)
        await websocket.send_text(message.data)

    server = await h.serve(FunctionApp(handler))
    raw = await h.raw(server)
    await raw.send(handshake_request("/"))
    await asyncio.wait_for(deciding.wait(), TIMEOUT)
    connection = only_connection(server)
    assert connection.transport is not None
    assert not connection._reading_paused
    assert connection.transport.is_reading()
    # A client that does not wait: its frame is kept, and reading stops.
    await raw.send(mask_frame(OP_TEXT, b"early"))
    await wait_until(lambda: connection._reading_paused)
    assert not connection.transport.is_reading()
    assert connection.protocol.buffered == len(mask_frame(OP_TEXT, b"early"))
    decide.set()
    status, _ = await raw.response_head()
    assert status == 101
    frame = await raw.recv_non_ping()
    assert (frame.opcode, frame.payload) == (OP_TEXT, b"early")
    assert not connection._reading_paused
    assert connection.transport.is_reading()


# ---------------------------------------------------------------------------
# The shared receive buffer
# ---------------------------------------------------------------------------


async def test_connections_read_into_one_buffer_and_keep_what_they_received(
    h: Harness,
) -> None:
    # Every transport reads into the server's one receive buffer; what a
    # connection keeps (here the start of a frame header, which the core
    # cannot parse yet) must be a copy, or the next read on any connection
    # would overwrite it.
    received: list[str] = []
    both_received = asyncio.Event()

    async def handler(websocket: WebSocket) -> None:
        await websocket.accept()
        received.append(await websocket.receive_text())
        if len(received) == 2:
            both_received.set()
        await websocket.receive()

    server = await h.serve(FunctionApp(handler))
    first = await h.raw(server)
    await first.handshake()
    second = await h.raw(server)
    await second.handshake()
    one, two = sorted(server.connections, key=lambda c: c.id)
    assert one.get_buffer(-1) is two.get_buffer(-1) is server.receive_buffer

    frame = mask_frame(OP_TEXT, b"A" * 100)
    before = one._bytes_in
    await first.send(frame[:3])  # half of the header and mask
    await wait_until(lambda: one._bytes_in == before + 3)
    await second.send(mask_frame(OP_TEXT, b"B" * 100))  # overwrites the buffer
    await wait_until(lambda: received == ["B" * 100])
    await first.send(frame[3:])
    await asyncio.wait_for(both_received.wait(), TIMEOUT)
    assert received == ["B" * 100, "A" * 100]


# ---------------------------------------------------------------------------
# Forwarding proxies, the root path and extra response headers
# ---------------------------------------------------------------------------


def _forwarding_app(seen: list[tuple[str, object, str, str]]) -> App:
    app = App()

    @app.route("/where")
    async def where(request: Request) -> Response:
        seen.append(("http", request.client, request.url.scheme, request.root_path))
        return PlainTextResponse("here")

    @app.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        seen.append(("ws", websocket.client, websocket.url.scheme, websocket.root_path))
        await websocket.accept()
        await websocket.close()

    @app.websocket("/refused")
    async def refused(websocket: WebSocket) -> None:
        await websocket.send_denial_response(PlainTextResponse("no", status_code=403))

    return app


FORWARDED = [("x-forwarded-for", "6.6.6.6, 192.0.2.1"), ("x-forwarded-proto", "https")]


async def test_a_trusted_proxy_sets_the_client_and_scheme_of_every_request() -> None:
    seen: list[tuple[str, object, str, str]] = []
    async with serving(_forwarding_app(seen), root_path="/api") as server:
        assert (await http_get(server.port, "/where", FORWARDED)).status == 200
        ws = await RawWebSocket.connect(server.port, "/ws", FORWARDED)
        await ws.close()
        # The same connection's next request, not forwarded: the peer again.
        client = await HTTPClient.open(server.port)
        try:
            await client.request("GET", "/where", FORWARDED)
            await client.request("GET", "/where", [])
        finally:
            await client.close()
    assert seen[0] == ("http", Address("192.0.2.1", 0), "https", "/api")
    assert seen[1] == ("ws", Address("192.0.2.1", 0), "wss", "/api")
    assert seen[2] == ("http", Address("192.0.2.1", 0), "https", "/api")
    kind, peer, scheme, _ = seen[3]
    assert (kind, scheme) == ("http", "http")
    assert isinstance(peer, Address) and peer.host == "127.0.0.1" and peer.port > 0


@pytest.mark.parametrize(
    "config",
    [{"proxy_headers": False}, {"forwarded_allow_ips": "10.0.0.0/8"}],
    ids=["off", "untrusted"],
)
async def test_forwarding_headers_from_an_untrusted_peer_are_ignored(
    config: dict[str, object],
) -> None:
    seen: list[tuple[str, object, str, str]] = []
    async with serving(_forwarding_app(seen), **config) as server:
        await http_get(server.port, "/where", FORWARDED)
        ws = await RawWebSocket.connect(server.port, "/ws", FORWARDED)
        await ws.close()
    assert [(kind, scheme, root) for kind, _, scheme, root in seen] == [
        ("http", "http", ""),
        ("ws", "ws", ""),
    ]
    assert all(isinstance(peer, Address) and peer.host == "127.0.0.1" for _, peer, _, _ in seen)


async def test_extra_headers_go_with_every_kind_of_response() -> None:
    seen: list[tuple[str, object, str, str]] = []
    extra = (("server", "edge-1"), ("x-frame-options", "DENY"))
    async with serving(_forwarding_app(seen), headers=extra) as server:
        ok = await http_get(server.port, "/where")
        missing = await http_get(server.port, "/nowhere")
        heads = []
        for path in ("/refused", "/ws"):
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(wire.client_handshake(path, host="x"))
            heads.append(await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT))
            writer.close()
            await writer.wait_closed()
    for result in (ok, missing):
        assert result.header("server") == "edge-1"
        assert result.header("x-frame-options") == "DENY"
    assert (ok.status, missing.status) == (200, 404)
    denied, accepted = heads
    assert denied.startswith(b"HTTP/1.1 403 ")
    assert accepted.startswith(b"HTTP/1.1 101 ")
    for head in heads:
        assert b"\r\nserver: edge-1\r\n" in head
        assert b"\r\nx-frame-options: DENY\r\n" in head


# ---------------------------------------------------------------------------
# Streamed HTTP responses
# ---------------------------------------------------------------------------

GET = b"GET /stream HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


class Producer:
    """A streamed body: yields ``pieces``, then does what ``ending`` says."""

    def __init__(self, pieces: list[bytes | str], ending: str = "end") -> None:
        self.pieces = pieces
        self.ending = ending
        self.made = 0
        self.closed = asyncio.Event()

    async def content(self) -> AsyncIterator[bytes | str]:
        try:
            for piece in self.pieces:
                self.made += 1
                yield piece
            if self.ending == "raise":
                raise KeyError("producer broke")
            if self.ending == "hang":
                await asyncio.Event().wait()
        finally:
            self.closed.set()


class StreamingApp(FunctionApp):
    def __init__(self, producer: Producer, status: int = 200) -> None:
        super().__init__()
        self.producer = producer
        self.status = status

    async def handle_http(self, request: Request) -> Response:
        return StreamingResponse(
            self.producer.content(), status_code=self.status, media_type="text/plain"
        )


async def test_a_streamed_response_is_chunked_then_the_connection_is_reused(
    h: Harness,
) -> None:
    producer = Producer([b"abc", "\u00e9", b""])
    server = await h.serve(StreamingApp(producer))
    raw = await h.raw(server)
    await raw.send(GET)
    status, headers = await raw.response_head()
    assert status == 200
    assert headers["transfer-encoding"] == "chunked"
    assert headers["content-type"] == "text/plain; charset=utf-8"
    assert await raw.read_until(b"0\r\n\r\n") == b"3\r\nabc\r\n2\r\n\xc3\xa9\r\n0\r\n\r\n"
    assert producer.closed.is_set()
    # Keep-alive: the same connection serves the next request.
    producer.pieces = [b"again"]
    await raw.send(GET)
    assert (await raw.response_head())[0] == 200
    assert await raw.read_until(b"0\r\n\r\n") == b"5\r\nagain\r\n0\r\n\r\n"


async def test_a_peer_not_reading_holds_the_producer_back(h: Harness) -> None:
    producer = Producer([b"x" * 65536] * 200)  # 12.5 MiB if nothing held it back
    server = await h.serve(StreamingApp(producer), write_limit=65536)
    raw = await h.raw(server, rcvbuf=4096)
    await raw.send(GET)
    connection = only_connection(server)
    await wait_until(lambda: connection.writing_paused)
    made = producer.made
    for _ in range(50):
        await asyncio.sleep(0)
    assert producer.made == made < 200
    # The client leaves: the waiting producer is closed.
    raw.close()
    await asyncio.wait_for(producer.closed.wait(), TIMEOUT)
    assert producer.made == made


@pytest.mark.parametrize("ending", ["raise", "leave"])
async def test_a_stream_that_fails_or_loses_its_client_drops_the_connection(
    h: Harness, caplog: pytest.LogCaptureFixture, ending: str
) -> None:
    producer = Producer([b"half"], "raise" if ending == "raise" else "hang")
    server = await h.serve(StreamingApp(producer))
    with caplog.at_level(logging.ERROR, logger="wsserver"):
        raw = await h.raw(server)
        await raw.send(GET)
        assert (await raw.response_head())[0] == 200
        if ending == "leave":
            await raw.read_until(b"half\r\n")
            raw.close()
            # The hanging producer is not closed by the client leaving
            # until it yields again; the server's shutdown cancels it.
            await h.close()
        else:
            # No last chunk: the client cannot take the part for the whole.
            assert await raw.read_to_eof() == b"4\r\nhalf\r\n"
        await asyncio.wait_for(producer.closed.wait(), TIMEOUT)
    messages = [r.getMessage() for r in error_records(caplog)]
    if ending == "raise":
        assert len(messages) == 1
        assert messages[0].endswith(
            ": error in the streamed body of GET /stream; connection dropped"
        )
    else:
        assert messages == []


async def test_a_streamed_head_the_core_cannot_send_is_500(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    producer = Producer([b"never"])
    server = await h.serve(StreamingApp(producer, status=103))
    with caplog.at_level(logging.ERROR, logger="wsserver"):
        assert await http_status(h, server, "/stream") == 500
    assert producer.made == 0
    (record,) = error_records(caplog)
    assert "StreamingResponse(status_code=103) cannot be sent" in record.getMessage()


async def test_a_handshake_whose_query_cannot_be_parsed_gets_400_before_the_endpoint() -> None:
    # Found by fuzz/fuzz_http_fields.py: only the URL was parsed at the
    # handshake, so a query of more than 1,000 fields was let through and
    # websocket.query_params raised ValueError inside the application.
    from websockets.asyncio.client import connect

    seen: list[int] = []

    async def endpoint(websocket: WebSocket) -> None:
        seen.append(len(websocket.query_params.multi_items()))
        await websocket.accept()
        await websocket.close()

    async with serving(endpoint) as server:
        base = f"ws://127.0.0.1:{server.port}/?"
        with pytest.raises(InvalidStatus) as caught:
            async with connect(base + "a&" * 1000 + "a", open_timeout=10):
                pass
        assert caught.value.response.status_code == 400
        assert b"more than 1000 fields" in caught.value.response.body
        assert seen == []
        async with connect(base + "a&" * 999 + "a", open_timeout=10) as client:
            with contextlib.suppress(ConnectionClosed):
                await client.recv()
        assert seen == [1000]
