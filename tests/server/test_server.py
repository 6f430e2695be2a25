"""Tests for wsserver.server.server: listening, limits, TLS, Unix sockets and
graceful shutdown, end to end over loopback (and one real process)."""

from __future__ import annotations

import ast
import asyncio
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from websockets.asyncio.client import connect, unix_connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from wsserver.protocol import build_info
from wsserver.server import Server
from wsserver.server.websocket import Disconnect, WebSocket

from .helpers import (
    OP_BINARY,
    OP_CLOSE,
    TIMEOUT,
    FunctionApp,
    Harness,
    RawClient,
    close_frame,
    close_payload,
    handshake_request,
    harness,
    only_connection,
    quick_config,
    tls_contexts,
    wait_until,
    ws_client,
)

REPO = Path(__file__).resolve().parent.parent.parent
GOING_AWAY = close_payload(1001, "server shutting down")


@pytest.fixture
async def h() -> AsyncIterator[Harness]:
    async with harness() as h:
        yield h


# ---------------------------------------------------------------------------
# Listening
# ---------------------------------------------------------------------------


async def test_start_binds_a_free_port_and_reports_it(h: Harness) -> None:
    server = await h.serve()
    assert server.port > 0
    assert server.addresses == [f"127.0.0.1:{server.port}"]
    async with ws_client(server) as ws:
        await ws.send("hello")
        assert await ws.recv() == "hello"
        assert len(server.websockets) == 1


async def test_async_context_manager_starts_and_shuts_down() -> None:
    async with Server(FunctionApp(), quick_config()) as server:
        port = server.port
        async with ws_client(server) as ws:
            await ws.send("in context")
            assert await ws.recv() == "in context"
    assert server.addresses == []
    with pytest.raises(ConnectionRefusedError):
        await RawClient.connect(port)


async def test_a_server_can_be_started_again_after_shutdown() -> None:
    server = Server(FunctionApp(), quick_config())
    for _ in range(2):
        await server.start()
        async with ws_client(server) as ws:
            await ws.send("again")
            assert await ws.recv() == "again"
        await server.shutdown()


async def test_unix_socket_file_is_removed_at_shutdown(tmp_path: Path) -> None:
    path = tmp_path / "s.sock"
    server = Server(FunctionApp(), quick_config(uds=str(path)))
    await server.start()
    assert path.is_socket()
    await server.shutdown()
    assert not path.exists()
    await server.start()  # the path is free again
    await server.shutdown()


async def test_serve_forever_returns_when_stop_is_set() -> None:
    server = Server(FunctionApp(), quick_config())
    stop = asyncio.Event()
    serving = asyncio.create_task(server.serve_forever(stop))
    # start() runs inside the task: wait for the listener.
    await wait_until(lambda: bool(server.addresses))
    async with ws_client(server) as ws:
        stop.set()
        with pytest.raises(ConnectionClosed) as caught:
            await ws.recv()
    await asyncio.wait_for(serving, TIMEOUT)
    assert caught.value.rcvd is not None and caught.value.rcvd.code == 1001


async def test_shutdown_before_start_is_a_no_op() -> None:
    server = Server(FunctionApp(), quick_config())
    await server.shutdown()
    assert server.addresses == []
    assert not server.shutting_down


# ---------------------------------------------------------------------------
# max_connections
# ---------------------------------------------------------------------------


async def test_max_connections_refuses_with_503_until_one_closes(h: Harness) -> None:
    server = await h.serve(max_connections=2)
    async with ws_client(server) as first:
        async with ws_client(server) as second:
            with pytest.raises(InvalidStatus) as caught:
                async with ws_client(server):
                    pass
            assert caught.value.response.status_code == 503
            # The two open ones still work.
            await second.send("two")
            assert await second.recv() == "two"
        # second closed: there is room again.
        async with ws_client(server) as third:
            await third.send("three")
            assert await third.recv() == "three"
        await first.send("one")
        assert await first.recv() == "one"


async def test_max_connections_does_not_count_plain_http(h: Harness) -> None:
    server = await h.serve(max_connections=1)
    http = await h.raw(server)
    await http.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    status, _ = await http.response_head()
    assert status == 200
    async with ws_client(server) as ws:
        await ws.send("room for me")
        assert await ws.recv() == "room for me"


# ---------------------------------------------------------------------------
# Graceful shutdown
# ---------------------------------------------------------------------------


async def test_shutdown_closes_open_websockets_with_1001(h: Harness) -> None:
    server = await h.serve(shutdown_timeout=TIMEOUT)
    async with ws_client(server) as one, ws_client(server) as two:
        started = time.monotonic()
        await server.shutdown()
        # Both answered the Close at once: no waiting for the grace period.
        assert time.monotonic() - started < 1.0
        for ws in (one, two):
            with pytest.raises(ConnectionClosed) as caught:
                await ws.recv()
            assert caught.value.rcvd is not None
            assert (caught.value.rcvd.code, caught.value.rcvd.reason) == (
                1001,
                "server shutting down",
            )
    assert not server.connections


async def test_shutdown_delivers_what_was_sent_before_it(h: Harness) -> None:
    count, size = 256, 32 * 1024
    burst_sent = asyncio.Event()

    async def handler(websocket: WebSocket) -> None:
        await websocket.accept()
        for i in range(count):
            await websocket.send_bytes(i.to_bytes(2, "big") * (size // 2))
        burst_sent.set()
        assert isinstance(await websocket.receive(), Disconnect)

    # A large write_limit lets the burst sit in the transport's buffer, and
    # a client with a small receive buffer keeps it there.
    server = await h.serve(FunctionApp(handler), write_limit=64 << 20, shutdown_timeout=TIMEOUT)
    raw = await h.raw(server, rcvbuf=4096)
    await raw.handshake()
    await asyncio.wait_for(burst_sent.wait(), TIMEOUT)
    transport = only_connection(server).transport
    assert transport is not None and transport.get_write_buffer_size() > 1 << 20
    shutting_down = asyncio.create_task(server.shutdown())
    raw.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)  # read faster now
    for i in range(count):
        frame = await raw.recv_frame()
        assert (frame.opcode, frame.payload) == (OP_BINARY, i.to_bytes(2, "big") * (size // 2))
    frame = await raw.recv_frame()
    assert (frame.opcode, frame.payload) == (OP_CLOSE, GOING_AWAY)
    await raw.send(close_frame(1001))
    assert await raw.read_to_eof() == b""
    await asyncio.wait_for(shutting_down, TIMEOUT)


async def test_a_restart_answers_a_handshake_accepted_before_the_listener_closed(
    h: Harness,
) -> None:
    """The race of a rolling restart: a client connects to an old worker just
    before its listener closes, and its handshake arrives after the shutdown
    began.  A plain shutdown closes such a connection (or answers its
    handshake with 503); a restart answers 101 then 1012,
    so that the client reconnects at once (to a new worker) instead of
    counting a refusal.  An open connection that sends nothing meanwhile is
    not dropped either: the grace period bounds it.
    """
    server = await h.serve(FunctionApp(), shutdown_timeout=TIMEOUT)
    late = await h.raw(server)
    await wait_until(lambda: len(server.connections) == 1)  # accepted
    shutting_down = asyncio.create_task(server.shutdown(restart=True))
    await wait_until(lambda: server.shutting_down)
    await late.handshake()
    frame = await late.recv_frame()
    assert (frame.opcode, frame.payload) == (OP_CLOSE, close_payload(1012, "server restarting"))
    await late.send(close_frame(1012))
    assert await late.read_to_eof() == b""
    await asyncio.wait_for(shutting_down, TIMEOUT)
    # The same race in a plain shutdown: the idle connection is closed.
    server = await h.serve(FunctionApp(), shutdown_timeout=TIMEOUT)
    late = await h.raw(server)
    await wait_until(lambda: len(server.connections) == 1)
    await asyncio.wait_for(server.shutdown(), TIMEOUT)
    assert await late.read_to_eof() == b""


async def test_shutdown_refuses_new_connections_and_aborts_stragglers(h: Harness) -> None:
    shutdown_timeout = 0.3
    # close_timeout is longer, so that it is the grace period that ends it.
    server = await h.serve(shutdown_timeout=shutdown_timeout, close_timeout=TIMEOUT)
    port = server.port
    straggler = await h.raw(server)
    await straggler.handshake()
    started = time.monotonic()
    shutting_down = asyncio.create_task(server.shutdown())
    frame = await straggler.recv_frame()
    assert (frame.opcode, frame.payload) == (OP_CLOSE, GOING_AWAY)
    # The listener is closed by now.
    with pytest.raises(ConnectionRefusedError):
        await RawClient.connect(port)
    # The straggler never answers: it is aborted after the grace period.
    assert await straggler.read_to_eof() == b""
    await asyncio.wait_for(shutting_down, TIMEOUT)
    elapsed = time.monotonic() - started
    assert shutdown_timeout * 0.9 <= elapsed < TIMEOUT
    assert not server.connections


async def test_shutdown_closes_idle_keep_alive_http_connections(h: Harness) -> None:
    server = await h.serve(shutdown_timeout=TIMEOUT)
    raw = await h.raw(server)
    await raw.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    status, headers = await raw.response_head()
    assert status == 200 and "close" not in headers.get("connection", "")
    assert await raw.read_exactly(3) == b"ok\n"
    started = time.monotonic()
    await server.shutdown()
    assert time.monotonic() - started < 1.0
    assert await raw.read_to_eof() == b""


async def test_shutdown_lets_an_http_request_in_progress_finish(h: Harness) -> None:
    app = FunctionApp()
    server = await h.serve(app, shutdown_timeout=TIMEOUT)
    raw = await h.raw(server)
    await raw.send(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
    await asyncio.wait_for(app.http_started.wait(), TIMEOUT)
    shutting_down = asyncio.create_task(server.shutdown())
    await wait_until(lambda: server.shutting_down)
    app.http_gate.set()
    status, headers = await raw.response_head()
    assert status == 200
    assert headers["connection"] == "close"
    assert await raw.read_to_eof() == b"slow\n"
    raw.close()  # the server lingers until the client's end of file
    await asyncio.wait_for(shutting_down, TIMEOUT)


async def test_handshake_accepted_during_shutdown_is_closed_with_1001(h: Harness) -> None:
    started = asyncio.Event()
    gate = asyncio.Event()

    async def handler(websocket: WebSocket) -> None:
        started.set()
        await gate.wait()
        await websocket.accept()
        assert isinstance(await websocket.receive(), Disconnect)

    server = await h.serve(FunctionApp(handler), shutdown_timeout=TIMEOUT)
    raw = await h.raw(server)
    await raw.send(handshake_request())
    await asyncio.wait_for(started.wait(), TIMEOUT)
    began = time.monotonic()
    shutting_down = asyncio.create_task(server.shutdown())
    await wait_until(lambda: server.shutting_down)
    gate.set()
    status, _ = await raw.response_head()
    assert status == 101
    frame = await raw.recv_frame()
    assert (frame.opcode, frame.payload) == (OP_CLOSE, GOING_AWAY)
    await raw.send(close_frame(1001))
    assert await raw.read_to_eof() == b""
    await asyncio.wait_for(shutting_down, TIMEOUT)
    assert time.monotonic() - began < 1.0  # not the grace period


async def test_shutdown_serves_no_request_pipelined_behind_one_in_progress(h: Harness) -> None:
    server = await h.serve(shutdown_timeout=TIMEOUT)
    # A request in progress is left to finish, with "Connection: close";
    # a handshake pipelined behind it is not served.
    app = server.app
    assert isinstance(app, FunctionApp)
    raw = await h.raw(server)
    await raw.send(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n" + handshake_request())
    await asyncio.wait_for(app.http_started.wait(), TIMEOUT)
    shutting_down = asyncio.create_task(server.shutdown())
    await wait_until(lambda: server.shutting_down)
    app.http_gate.set()
    status, headers = await raw.response_head()
    assert status == 200
    assert headers["connection"] == "close"
    assert await raw.read_to_eof() == b"slow\n"
    raw.close()  # the server lingers until the client's end of file
    await asyncio.wait_for(shutting_down, TIMEOUT)


async def test_shutdown_waits_for_handlers_to_finish(h: Harness) -> None:
    disconnected = asyncio.Event()
    cleanup_gate = asyncio.Event()
    finished: list[int] = []

    async def handler(websocket: WebSocket) -> None:
        await websocket.accept()
        message = await websocket.receive()
        assert isinstance(message, Disconnect)
        disconnected.set()
        await cleanup_gate.wait()  # the application's cleanup, e.g. a database write
        finished.append(message.code)

    server = await h.serve(FunctionApp(handler), shutdown_timeout=TIMEOUT)
    async with ws_client(server) as ws:
        shutting_down = asyncio.create_task(server.shutdown())
        with pytest.raises(ConnectionClosed):
            await ws.recv()
    await asyncio.wait_for(disconnected.wait(), TIMEOUT)
    assert not server.connections
    # The transport is gone but the handler is not done: shutdown waits.
    finished_early, _ = await asyncio.wait({shutting_down}, timeout=0.1)
    assert not finished_early
    cleanup_gate.set()
    await asyncio.wait_for(shutting_down, TIMEOUT)
    assert finished == [1001]


async def test_shutdown_cancels_handlers_still_running_after_the_grace_period(
    h: Harness,
) -> None:
    shutdown_timeout = 0.3
    outcome: list[str] = []

    async def handler(websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            await asyncio.Event().wait()  # never looks at the connection again
        except asyncio.CancelledError:
            outcome.append("cancelled")
            raise

    server = await h.serve(FunctionApp(handler), shutdown_timeout=shutdown_timeout)
    async with ws_client(server) as ws:
        started = time.monotonic()
        await server.shutdown()
        elapsed = time.monotonic() - started
        with pytest.raises(ConnectionClosed) as caught:
            await ws.recv()
    assert caught.value.rcvd is not None and caught.value.rcvd.code == 1001
    assert outcome == ["cancelled"]
    assert shutdown_timeout * 0.9 <= elapsed < TIMEOUT


async def test_a_handler_can_shut_the_server_down(h: Harness) -> None:
    servers: list[Server] = []
    outcome: list[str] = []

    async def handler(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.receive()
        await servers[0].shutdown()  # waits for every handler but this one
        outcome.append("shutdown returned")

    server = await h.serve(FunctionApp(handler), shutdown_timeout=TIMEOUT)
    servers.append(server)
    started = time.monotonic()
    async with ws_client(server) as ws:
        await ws.send("stop")
        with pytest.raises(ConnectionClosed) as caught:
            await ws.recv()
    assert caught.value.rcvd is not None and caught.value.rcvd.code == 1001
    await wait_until(lambda: bool(outcome))
    assert outcome == ["shutdown returned"]
    assert time.monotonic() - started < 1.0


async def test_concurrent_shutdowns_both_complete(h: Harness) -> None:
    server = await h.serve(shutdown_timeout=TIMEOUT)
    async with ws_client(server) as ws:
        await asyncio.wait_for(asyncio.gather(server.shutdown(), server.shutdown()), TIMEOUT)
        with pytest.raises(ConnectionClosed):
            await ws.recv()
    assert server.addresses == []
    assert not server.connections


@asynccontextmanager
async def cli_server(*options: str) -> AsyncIterator[tuple[asyncio.subprocess.Process, int]]:
    """``python -m wsserver run examples.echo:EchoView`` on a free port."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "wsserver",
        "run",
        "examples.echo:EchoView",
        "--port",
        "0",
        "--ws-ping-interval",
        "none",
        *options,
        cwd=REPO,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stderr is not None
    try:
        # The server logs the address it listens on: port 0 became a free one.
        while True:
            line = await asyncio.wait_for(process.stderr.readline(), TIMEOUT)
            assert line, "the server exited before listening"
            if match := re.search(rb"listening on 127\.0\.0\.1:(\d+)", line):
                break
        yield process, int(match[1])
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_sigterm_stops_the_cli_server_gracefully() -> None:
    async with cli_server() as (process, port):
        assert process.stderr is not None
        async with connect(
            f"ws://127.0.0.1:{port}/", ping_interval=None, proxy=None, open_timeout=TIMEOUT
        ) as ws:
            await ws.send("before SIGTERM")
            assert await ws.recv() == "before SIGTERM"
            started = time.monotonic()
            process.send_signal(signal.SIGTERM)
            with pytest.raises(ConnectionClosed) as caught:
                await asyncio.wait_for(ws.recv(), TIMEOUT)
        assert caught.value.rcvd is not None
        assert (caught.value.rcvd.code, caught.value.rcvd.reason) == (1001, "server shutting down")
        stderr = await asyncio.wait_for(process.stderr.read(), TIMEOUT)
        assert await asyncio.wait_for(process.wait(), TIMEOUT) == 0, stderr
        assert time.monotonic() - started < 3.0
        assert b"shutting down" in stderr
        assert b"Traceback" not in stderr


async def test_second_sigterm_during_the_grace_period_stops_at_once() -> None:
    # A client that never answers the Close keeps the grace period going
    # (10 s by default); a second signal ends it.
    async with cli_server() as (process, port):
        straggler = await RawClient.connect(port)
        try:
            await straggler.handshake()
            process.send_signal(signal.SIGTERM)
            frame = await straggler.recv_frame()
            assert (frame.opcode, frame.payload) == (OP_CLOSE, GOING_AWAY)
            started = time.monotonic()
            process.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(process.wait(), TIMEOUT) == -signal.SIGTERM
            assert time.monotonic() - started < 3.0
        finally:
            straggler.close()


async def test_serve_forever_stops_on_sigterm_and_restores_the_handlers() -> None:
    before = signal.getsignal(signal.SIGTERM)
    server = Server(FunctionApp(), quick_config())
    serving = asyncio.create_task(server.serve_forever())
    await wait_until(lambda: bool(server.addresses))
    # Only signal ourselves once the loop's handler is in place.
    assert signal.getsignal(signal.SIGTERM) is not before, "no SIGTERM handler installed"
    async with ws_client(server) as ws:
        os.kill(os.getpid(), signal.SIGTERM)
        with pytest.raises(ConnectionClosed) as caught:
            await ws.recv()
    await asyncio.wait_for(serving, TIMEOUT)
    assert caught.value.rcvd is not None and caught.value.rcvd.code == 1001
    assert signal.getsignal(signal.SIGTERM) == before


async def test_sighup_shuts_down_for_a_restart_with_1012_and_no_drain_delay() -> None:
    before = signal.getsignal(signal.SIGHUP)
    # The drain delay would hold a SIGTERM's shutdown for a minute: a
    # restart skips it (there is no balancer to tell; 1012 says "come back").
    server = Server(FunctionApp(), quick_config(drain_delay=60.0))
    serving = asyncio.create_task(server.serve_forever())
    await wait_until(lambda: bool(server.addresses))
    assert signal.getsignal(signal.SIGHUP) is not before, "no SIGHUP handler installed"
    async with ws_client(server) as ws:
        os.kill(os.getpid(), signal.SIGHUP)
        with pytest.raises(ConnectionClosed) as caught:
            await asyncio.wait_for(ws.recv(), TIMEOUT)
    await asyncio.wait_for(serving, TIMEOUT)
    assert caught.value.rcvd is not None
    assert (caught.value.rcvd.code, caught.value.rcvd.reason) == (1012, "server restarting")
    assert signal.getsignal(signal.SIGHUP) == before


async def test_a_sighup_ignored_at_start_stays_ignored() -> None:
    """Under nohup, a closed terminal's SIGHUP must not stop the server."""
    before = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        server = Server(FunctionApp(), quick_config())
        serving = asyncio.create_task(server.serve_forever())
        await wait_until(lambda: bool(server.addresses))
        assert signal.getsignal(signal.SIGHUP) == signal.SIG_IGN
        async with ws_client(server) as ws:
            os.kill(os.getpid(), signal.SIGHUP)  # discarded by the kernel
            os.kill(os.getpid(), signal.SIGTERM)
            with pytest.raises(ConnectionClosed) as caught:
                await asyncio.wait_for(ws.recv(), TIMEOUT)
        await asyncio.wait_for(serving, TIMEOUT)
        assert caught.value.rcvd is not None and caught.value.rcvd.code == 1001
    finally:
        signal.signal(signal.SIGHUP, before)


# ---------------------------------------------------------------------------
# TLS and Unix sockets
# ---------------------------------------------------------------------------


async def test_tls(h: Harness, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    server_context, client_context = tls_contexts(tmp_path)
    seen: list[str] = []

    async def handler(websocket: WebSocket) -> None:
        seen.append(str(websocket.url))
        await websocket.accept()
        message = await websocket.receive()
        if isinstance(message, Disconnect):
            return
        await websocket.send_text(f"{websocket.url.scheme}:{message.data!s}")
        assert isinstance(await websocket.receive(), Disconnect)

    server = await h.serve(FunctionApp(handler), ssl_context=server_context)
    with caplog.at_level(logging.INFO):
        async with connect(
            f"wss://127.0.0.1:{server.port}/secure?x=1",
            ssl=client_context,
            ping_interval=None,
            proxy=None,
            open_timeout=TIMEOUT,
        ) as ws:
            await ws.send("hello")
            assert await ws.recv() == "wss:hello"
        await wait_until(lambda: not server.connections)
        # A client that ends TLS (close_notify) without a closing handshake.
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", server.port, ssl=client_context, server_hostname="localhost"
        )
        writer.write(handshake_request())
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT)
        assert head.startswith(b"HTTP/1.1 101 ")
        writer.close()
        await writer.wait_closed()
        await wait_until(lambda: not server.connections)
    assert seen[0] == f"wss://127.0.0.1:{server.port}/secure?x=1"
    # Plain TCP to the TLS port gets nowhere.
    with pytest.raises(Exception):  # noqa: B017 - any failure: ConnectionClosed, InvalidMessage...
        async with ws_client(server, open_timeout=1):
            pass
    # Nothing to warn about in a normal TLS connection's life (asyncio warns
    # when a protocol asks to keep a TLS transport open after end of file).
    warnings = [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.WARNING
        and (r.name == "wsserver" or "eof_received" in r.getMessage())
    ]
    assert not warnings


async def test_startup_line_names_the_protocol_core_build(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="wsserver"):
        server = await h.serve(FunctionApp())
    lines = [r.getMessage() for r in caplog.records if "listening on" in r.getMessage()]
    assert lines == [
        f"wsserver listening on 127.0.0.1:{server.port} (protocol core: {build_info.describe()})"
    ]


async def test_unix_socket(h: Harness, tmp_path: Path) -> None:
    path = tmp_path / "s.sock"
    seen: list[object] = []

    async def handler(websocket: WebSocket) -> None:
        seen.append((websocket.client, str(websocket.url)))
        await websocket.accept()
        message = await websocket.receive()
        assert not isinstance(message, Disconnect)
        await websocket.send_text(str(message.data))
        assert isinstance(await websocket.receive(), Disconnect)

    server = await h.serve(FunctionApp(handler), uds=str(path))
    assert path.is_socket()
    assert server.addresses == [str(path)]
    async with unix_connect(
        str(path), uri="ws://localhost/over-uds", ping_interval=None, proxy=None
    ) as ws:
        await ws.send("via unix")
        assert await ws.recv() == "via unix"
    assert seen == [(None, "ws://localhost/over-uds")]
    with pytest.raises(RuntimeError):
        _ = server.port


# ---------------------------------------------------------------------------
# File descriptors: max_connections must be reachable before EMFILE
# ---------------------------------------------------------------------------

_FD_PROBE = """
import asyncio, logging, resource, sys
from wsserver import App, Server, ServerConfig
logging.basicConfig(level=logging.WARNING, stream=sys.stdout, format="%(message)s")
resource.setrlimit(resource.RLIMIT_NOFILE, (int(sys.argv[1]), int(sys.argv[2])))
async def main():
    server = Server(App(), ServerConfig(port=0, max_connections=int(sys.argv[3])))
    await server.start()
    print("soft", resource.getrlimit(resource.RLIMIT_NOFILE)[0])
    await server.shutdown()
asyncio.run(main())
"""


def _probe_fd_limit(soft: int, hard: int, max_connections: int) -> str:
    done = subprocess.run(
        [sys.executable, "-c", _FD_PROBE, str(soft), str(hard), str(max_connections)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return done.stdout


def test_start_raises_the_soft_open_file_limit_to_the_hard_one() -> None:
    output = _probe_fd_limit(256, 4096, 1000)
    assert "soft 4096" in output
    assert "file descriptors" not in output  # no warning: 1000 + reserve fit


def test_start_warns_when_even_the_hard_limit_is_below_max_connections() -> None:
    output = _probe_fd_limit(256, 512, 10_000)
    assert "soft 512" in output
    assert "max_connections=10000 needs about 10064 file descriptors but the limit is 512" in (
        output
    )


# ---------------------------------------------------------------------------
# The package's import graph (server.py sits at its top)
# ---------------------------------------------------------------------------

SERVER_DIR = Path(__file__).resolve().parents[2] / "wsserver" / "server"
SERVER_PACKAGE = "wsserver.server"


def _server_imports(path: Path) -> set[str]:
    """The modules of the server package ``path`` imports, from its source.

    Every import statement counts, wherever it is: at module level, in a
    function, under ``if TYPE_CHECKING:``.  The package's ``__init__`` is
    left out: it imports every module, as any package's does.
    """
    module = f"{SERVER_PACKAGE}.{path.stem}"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.rsplit(".", node.level)[0]
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            # "from . import x" imports the module x; "from .x import y", x.
            names = [target] + [f"{target}.{alias.name}" for alias in node.names]
        for name in names:
            parts = name.split(".")
            if parts[:2] == SERVER_PACKAGE.split(".") and len(parts) > 2:
                candidate = ".".join(parts[:3])
                if (SERVER_DIR / f"{parts[2]}.py").is_file() and candidate != module:
                    found.add(candidate)
    return found


def _import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every cycle found by a depth-first walk, each from its first module."""
    cycles: list[list[str]] = []
    done: set[str] = set()

    def walk(module: str, path: list[str]) -> None:
        if module in path:
            cycles.append([*path[path.index(module) :], module])
            return
        if module in done:
            return
        for target in sorted(graph.get(module, ())):
            walk(target, [*path, module])
        done.add(module)

    for module in sorted(graph):
        walk(module, [])
    return cycles


def test_the_cycle_check_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _import_cycles(graph) == [["a", "b", "c", "a"]]
    assert _import_cycles({"a": {"b"}, "b": set()}) == []


def test_no_module_of_the_server_package_imports_itself_back() -> None:
    graph = {
        f"{SERVER_PACKAGE}.{path.stem}": _server_imports(path)
        for path in sorted(SERVER_DIR.glob("*.py"))
        if path.name != "__init__.py"
    }
    assert len(graph) > 10, graph
    # The graph is read right: the connection imports the WebSocket.
    assert f"{SERVER_PACKAGE}.websocket" in graph[f"{SERVER_PACKAGE}.connection"]
    assert _import_cycles(graph) == []


# ---------------------------------------------------------------------------
# Without a socket: start_in_memory (what wsserver.testing builds on)
# ---------------------------------------------------------------------------


async def test_start_in_memory_runs_the_hooks_and_listens_nowhere() -> None:
    from wsserver.server import App, ServerConfig
    from wsserver.server.readiness import ServerPhase

    calls: list[str] = []

    class Hooked(App):
        async def startup(self) -> None:
            calls.append("startup")

        async def shutdown(self) -> None:
            calls.append("shutdown")

    server = Server(Hooked(), ServerConfig(port=0))
    await server.start_in_memory()
    assert calls == ["startup"]
    assert server.readiness.phase is ServerPhase.SERVING
    assert server.addresses == []
    with pytest.raises(RuntimeError, match="not listening"):
        _ = server.port
    await server.shutdown()
    assert calls == ["startup", "shutdown"]
    assert server.shutting_down
    await server.shutdown()  # a second one does nothing
    assert calls == ["startup", "shutdown"]
