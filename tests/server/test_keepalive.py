"""Tests for wsserver.server.keepalive: heartbeat pings, pongs, the receive timeout.

End to end over loopback, as ``test_connection.py``: a server in-process,
and a raw socket client (``helpers.RawClient``) or the ``websockets``
library's.  Intervals are configured small so that every behaviour shows in
well under a second.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import AsyncIterator

import pytest
from websockets.exceptions import ConnectionClosed

from wsserver.protocol import TextMessage
from wsserver.server.websocket import Disconnect, WebSocket

from .helpers import (
    OP_CLOSE,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    TIMEOUT,
    FunctionApp,
    Harness,
    harness,
    mask_frame,
    only_connection,
    wait_until,
    ws_client,
)


@pytest.fixture
async def h() -> AsyncIterator[Harness]:
    async with harness() as h:
        yield h


# ---------------------------------------------------------------------------
# Heartbeats
# ---------------------------------------------------------------------------


async def test_server_pings_at_interval_and_pongs_keep_it_open(h: Harness) -> None:
    interval = 0.05
    server = await h.serve(ping_interval=interval, ping_timeout=0.5)
    raw = await h.raw(server)
    await raw.handshake()
    arrivals = []
    for _ in range(4):
        frame = await raw.recv_frame()
        assert frame.opcode == OP_PING
        assert len(frame.payload) == 8  # unpredictable payloads, see Keepalive._next_payload
        arrivals.append(time.monotonic())
        await raw.send(mask_frame(OP_PONG, frame.payload))
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    assert all(gap >= interval * 0.8 for gap in gaps), gaps
    # Answered pings, so still open: an echo goes through.
    await raw.send(mask_frame(OP_TEXT, b"still here"))
    assert (await raw.recv_non_ping()).payload == b"still here"
    assert only_connection(server).websocket is not None
    assert only_connection(server).websocket.latency is not None  # type: ignore[union-attr]


async def test_latency_is_measured_with_a_websockets_client(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    server = await h.serve(ping_interval=0.05, ping_timeout=1.0)
    # websockets logs every frame it receives at DEBUG.
    with caplog.at_level(logging.DEBUG, logger="websockets.client"):
        async with ws_client(server) as ws:
            websocket = only_connection(server).websocket
            assert websocket is not None
            assert websocket.latency is None
            # Latency is server-side state that nothing signals: poll it.
            await wait_until(lambda: websocket.latency is not None)
            assert websocket.latency is not None
            assert 0 < websocket.latency < 1
            await ws.send("ping-pong worked")
            assert await ws.recv() == "ping-pong worked"
    received = [r.getMessage() for r in caplog.records if r.name == "websockets.client"]
    pings = [m for m in received if m.startswith("< PING ")]
    assert pings, received
    assert all("[binary, 8 bytes]" in m for m in pings)
    # The client answered each ping (its own keepalive is off): these are
    # the server's pings it saw.
    assert [m for m in received if m.startswith("> PONG ")]


async def test_application_ping_resolves_with_round_trip_time(h: Harness) -> None:
    results: list[float] = []

    async def handler(websocket: WebSocket) -> None:
        await websocket.accept()
        results.append(await websocket.ping())
        results.append(await websocket.ping(b"custom"))
        await websocket.send_text("pinged")
        await websocket.receive()

    server = await h.serve(FunctionApp(handler))
    async with ws_client(server) as ws:
        assert await ws.recv() == "pinged"
    assert len(results) == 2
    assert all(0 < rtt < 1 for rtt in results)


async def test_unanswered_ping_fails_the_connection_with_1011(h: Harness) -> None:
    interval, ping_timeout, close_timeout = 0.05, 0.15, 0.2
    ended: asyncio.Future[Disconnect] = asyncio.get_running_loop().create_future()

    async def handler(websocket: WebSocket) -> None:
        await websocket.accept()
        message = await websocket.receive()
        assert isinstance(message, Disconnect)
        ended.set_result(message)

    server = await h.serve(
        FunctionApp(handler),
        ping_interval=interval,
        ping_timeout=ping_timeout,
        close_timeout=close_timeout,
    )
    raw = await h.raw(server)
    await raw.handshake()
    opened = time.monotonic()
    # The client reads but never answers anything.
    frame = await raw.recv_frame()
    while frame.opcode == OP_PING:
        frame = await raw.recv_frame()
    closed_at = time.monotonic()
    reason = b"keepalive ping timeout"
    assert frame.opcode == OP_CLOSE
    assert frame.payload == b"\x03\xf3" + reason  # 1011, on the wire
    assert closed_at - opened >= (interval + ping_timeout) * 0.9
    # Nothing after the Close; the server ends TCP (half-close, then abort
    # after close_timeout since this client never closes its side).
    assert await raw.read_to_eof() == b""
    await wait_until(lambda: not server.connections)
    assert (await asyncio.wait_for(ended, TIMEOUT)) == Disconnect(1011, "keepalive ping timeout")


async def test_slow_application_does_not_fail_a_peer_that_answers_pings(h: Harness) -> None:
    # The application's queue is full for many ping timeouts: nothing is
    # parsed meanwhile, the pongs included, but the peer is not at fault.
    gate = asyncio.Event()
    received: list[str] = []

    async def handler(websocket: WebSocket) -> None:
        await websocket.accept()
        await gate.wait()
        while True:
            message = await websocket.receive()
            if isinstance(message, Disconnect):
                return
            assert isinstance(message, TextMessage)
            received.append(message.data)
            if len(received) == 5:
                await websocket.send_text("got all")

    server = await h.serve(FunctionApp(handler), max_queue=2, ping_interval=0.05, ping_timeout=0.1)
    async with ws_client(server) as ws:
        for i in range(5):
            await ws.send(f"m{i}")
        inbox = only_connection(server)._inbox
        assert inbox is not None
        await wait_until(lambda: len(inbox.messages) == 2)
        # Six ping timeouts pass with the queue full; the client answers
        # every ping, so the connection stays open.
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(ws.recv(), 0.6)
        gate.set()
        assert await ws.recv() == "got all"
    assert received == [f"m{i}" for i in range(5)]


async def test_no_pings_when_heartbeats_are_off(h: Harness) -> None:
    server = await h.serve(ping_interval=None)
    raw = await h.raw(server)
    await raw.handshake()
    after_handshake = raw.received
    with pytest.raises(TimeoutError):
        await raw.recv_frame(timeout=0.2)
    assert raw.received == after_handshake
    assert not raw.buffer


# ---------------------------------------------------------------------------
# The receive timeout
# ---------------------------------------------------------------------------


async def test_receive_timeout_closes_an_idle_connection_with_1001(h: Harness) -> None:
    receive_timeout = 0.3
    server = await h.serve(receive_timeout=receive_timeout)
    async with ws_client(server) as ws:
        # Messages keep it open: one every 0.1 s for longer than the timeout.
        for i in range(5):
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(ws.recv(), 0.1)
            await ws.send(f"m{i}")
            assert await ws.recv() == f"m{i}"
        idle_from = time.monotonic()
        with pytest.raises(ConnectionClosed) as caught:
            await asyncio.wait_for(ws.recv(), TIMEOUT)
        assert time.monotonic() - idle_from >= receive_timeout * 0.9
    assert caught.value.rcvd is not None
    assert (caught.value.rcvd.code, caught.value.rcvd.reason) == (1001, "idle timeout")


async def test_pong_timers_end_with_the_connection(h: Harness) -> None:
    # A closed connection must not stay referenced by heartbeat timers for
    # up to ping_timeout.
    server = await h.serve(FunctionApp(), ping_interval=0.05, ping_timeout=30.0)
    raw = await h.raw(server)
    await raw.handshake()
    keepalive = only_connection(server)._keepalive
    assert keepalive is not None
    await wait_until(lambda: bool(keepalive._pong_timers))
    raw.abort()
    await wait_until(lambda: not server.connections)
    assert keepalive._pong_timers == {}


async def test_an_endpoint_gives_its_connection_its_own_keepalive(h: Harness) -> None:
    configured = asyncio.Event()

    async def handler(websocket: WebSocket) -> None:
        await websocket.accept()
        with pytest.raises(ValueError, match="receive_timeout must be positive"):
            websocket.configure_keepalive(ping_interval=None, receive_timeout=0.0)
        # The server pings every 50 ms and has no receive timeout; this
        # connection: no pings, and closed after 0.3 s of silence.
        websocket.configure_keepalive(ping_interval=None)
        websocket.configure_keepalive(receive_timeout=0.3)  # the interval stays off
        configured.set()
        while not isinstance(await websocket.receive(), Disconnect):
            pass

    server = await h.serve(FunctionApp(handler), ping_interval=0.05, receive_timeout=None)
    async with ws_client(server) as ws:
        await asyncio.wait_for(configured.wait(), TIMEOUT)
        keepalive = only_connection(server)._keepalive
        assert keepalive is not None
        assert keepalive._ping_timer is None and keepalive._receive_timer is not None
        assert server.heartbeats is not None
        assert keepalive not in server.heartbeats
        with pytest.raises(ConnectionClosed) as caught:
            await asyncio.wait_for(ws.recv(), TIMEOUT)
    assert caught.value.rcvd is not None
    assert (caught.value.rcvd.code, caught.value.rcvd.reason) == (1001, "idle timeout")


async def test_the_servers_heartbeats_share_one_sweep_and_an_own_interval_has_its_timer(
    h: Harness,
) -> None:
    # At the server's ping_interval the heartbeat is an entry in the
    # server's sweep (wsserver.server.deadlines); an endpoint's own interval
    # gets a call_later handle.  Either way the pings come, never early.
    own = 0.05
    configured = asyncio.Event()

    async def handler(websocket: WebSocket) -> None:
        await websocket.accept()
        if websocket.url.path == "/own":
            websocket.configure_keepalive(ping_interval=own)
        configured.set()
        while not isinstance(await websocket.receive(), Disconnect):
            pass

    server = await h.serve(FunctionApp(handler), ping_interval=0.1, ping_timeout=TIMEOUT)
    assert server.heartbeats is not None
    for path, interval in (("/", 0.1), ("/own", own)):
        configured.clear()
        raw = await h.raw(server)
        await raw.handshake(path)
        await asyncio.wait_for(configured.wait(), TIMEOUT)
        keepalive = only_connection(server)._keepalive
        assert keepalive is not None
        assert (keepalive in server.heartbeats) is (path == "/")
        assert (keepalive._ping_timer is not None) is (path == "/own")
        arrivals = []
        for _ in range(3):
            frame = await raw.recv_frame()
            assert frame.opcode == OP_PING
            arrivals.append(time.monotonic())
            await raw.send(mask_frame(OP_PONG, frame.payload))
        gaps = [b - a for a, b in itertools.pairwise(arrivals)]
        assert all(gap >= interval * 0.8 for gap in gaps), gaps
        raw.abort()
        await wait_until(lambda: not server.connections)
        # Gone: nothing of it is left armed.
        assert keepalive not in server.heartbeats
        assert keepalive._ping_timer is None
