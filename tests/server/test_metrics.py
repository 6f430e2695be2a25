"""Tests for wsserver.server.metrics: /metrics scraped over loopback after a
load of known size sent by an independent client (websockets), parsed with
prometheus_client's own parser; metrics off; several workers' snapshots."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path

import prometheus_client
import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidStatus

from wsserver.protocol import BinaryMessage, ProtocolSettings, TextMessage
from wsserver.server import Server, ServerConfig, broadcast
from wsserver.server.metrics import (
    METRICS,
    METRICS_DIR_ENV,
    PING_RTT_BUCKETS,
    Metrics,
)
from wsserver.server.websocket import Disconnect, WebSocket
from wsserver.supervisor import METRICS_DIR_ENV as SUPERVISOR_METRICS_DIR_ENV

from .helpers import (
    TIMEOUT,
    FunctionApp,
    Harness,
    handshake_request,
    harness,
    wait_until,
    ws_client,
)

HANDSHAKES = "wsserver_websocket_handshakes_total"
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture
async def h() -> AsyncIterator[Harness]:
    async with harness() as h:
        yield h


async def http_get(port: int, path: str) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 GET over a fresh loopback connection: status, headers, body."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n".encode())
        raw = await asyncio.wait_for(reader.read(), TIMEOUT)
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, body


async def scrape(port: int) -> Samples:
    """Every sample of ``/metrics``, parsed by prometheus_client."""
    status, headers, body = await http_get(port, "/metrics")
    assert status == 200
    assert headers["content-type"].startswith("text/plain; version=")
    samples: Samples = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def poll_scrape(port: int, done: object) -> Samples:
    """Scrape until ``done(samples)`` holds (bounded by TIMEOUT)."""
    assert callable(done)
    deadline = asyncio.get_running_loop().time() + TIMEOUT
    while True:
        samples = await scrape(port)
        if done(samples):
            return samples
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not reached within {TIMEOUT}s: {samples}")
        await asyncio.sleep(0.02)


async def scripted(websocket: WebSocket) -> None:
    """Echo; ``close:<code>`` closes from the server; ``ping`` pings the client."""
    if websocket.url.path == "/refuse":
        await websocket.close()  # 403 before accept
        return
    await websocket.accept()
    while True:
        message = await websocket.receive()
        if isinstance(message, Disconnect):
            return
        if isinstance(message, TextMessage) and message.data.startswith("close:"):
            await websocket.close(int(message.data[6:]))
        elif isinstance(message, TextMessage) and message.data == "ping":
            await websocket.ping()
            await websocket.send_text("pinged")
        elif isinstance(message, TextMessage):
            await websocket.send_text(message.data)
        elif isinstance(message, BinaryMessage):
            await websocket.send_bytes(message.data)


TEXTS = ["hello", "été", "x" * 300, "{}", "🙂"]
BINARIES = [b"\x00", b"\xff" * 1000, b"abc"]


async def exchange(client: ClientConnection) -> None:
    for text in TEXTS:
        await client.send(text)
        assert await client.recv() == text
    for data in BINARIES:
        await client.send(data)
        assert await client.recv() == data


async def test_counters_equal_what_an_independent_client_sent_and_received(h: Harness) -> None:
    server = await h.serve(FunctionApp(scripted), metrics_path="/metrics")
    port = server.port
    clients = 5
    stack = [ws_client(server, "/chat", compression=None) for _ in range(clients)]
    connections = [await context.__aenter__() for context in stack]
    for client in connections:
        await exchange(client)
    await connections[0].send("ping")
    assert await connections[0].recv() == "pinged"

    samples = await scrape(port)
    assert value(samples, "wsserver_websockets_open") == clients
    assert value(samples, "wsserver_connections_open") == clients + 1  # and the scrape's
    text_bytes = sum(len(text.encode()) for text in TEXTS) * clients
    binary_bytes = sum(len(data) for data in BINARIES) * clients
    received_text = len(TEXTS) * clients + 1  # and "ping"
    for name, expected in {
        ("wsserver_websocket_messages_received_total", "text"): received_text,
        ("wsserver_websocket_messages_received_total", "binary"): len(BINARIES) * clients,
        ("wsserver_websocket_messages_sent_total", "text"): received_text,
        ("wsserver_websocket_messages_sent_total", "binary"): len(BINARIES) * clients,
        ("wsserver_websocket_payload_bytes_sent_total", "text"): text_bytes + len("pinged"),
        ("wsserver_websocket_payload_bytes_sent_total", "binary"): binary_bytes,
    }.items():
        assert value(samples, name[0], type=name[1]) == expected, name
    accepted = value(samples, HANDSHAKES, outcome="accepted", status="101")
    assert accepted == clients
    assert value(samples, "wsserver_websocket_ping_rtt_seconds_count") == 1
    assert value(samples, "wsserver_websocket_ping_rtt_seconds_bucket", le="+Inf") == 1
    assert value(samples, "wsserver_ready") == 1

    # Three clients close (1000, by the client), two ask the server to (4001).
    for client in connections[:3]:
        await client.close()
    for client in connections[3:]:
        await client.send("close:4001")
        with pytest.raises(ConnectionClosed):
            await client.recv()
        assert client.close_code == 4001
    for context in stack:
        await context.__aexit__(None, None, None)

    # A refused handshake, plain HTTP requests of three statuses.
    with pytest.raises(InvalidStatus):
        async with ws_client(server, "/refuse"):
            pass
    for path in ("/healthz", "/healthz", "/nope"):
        await http_get(port, path)

    samples = await poll_scrape(port, lambda s: value(s, "wsserver_websockets_open") == 0)
    closes = {
        dict(labels)["code"] + "/" + dict(labels)["side"]: count
        for (name, labels), count in samples.items()
        if name == "wsserver_websocket_closes_total"
    }
    assert closes == {"1000/client": 3, "4001/server": 2}
    assert value(samples, HANDSHAKES, outcome="refused", status="403") == 1
    assert value(samples, "wsserver_http_requests_total", status="404") == 1
    # /healthz twice, and the scrapes before this one (counted once answered).
    assert value(samples, "wsserver_http_requests_total", status="200") >= 3
    # Totals survive the connections that made them.
    assert value(samples, "wsserver_websocket_messages_received_total", type="binary") == (
        len(BINARIES) * clients
    )
    assert value(samples, "wsserver_received_bytes_total") > text_bytes + binary_bytes


async def test_limit_hits_and_the_close_they_cause_are_counted_once(h: Harness) -> None:
    server = await h.serve(
        FunctionApp(scripted),
        metrics_path="/metrics",
        protocol=ProtocolSettings(max_message_size=100),
    )
    async with ws_client(server, "/", compression=None, max_size=None) as client:
        await client.send(b"x" * 101)
        with pytest.raises(ConnectionClosed):
            await client.recv()
        assert client.close_code == 1009
    samples = await poll_scrape(server.port, lambda s: value(s, "wsserver_websockets_open") == 0)
    assert value(samples, "wsserver_limit_hits_total", limit="message_size") == 1
    assert value(samples, "wsserver_websocket_closes_total", code="1009", side="server") == 1


async def test_metrics_off_serves_no_route_and_registers_no_collector(h: Harness) -> None:
    before = set(prometheus_client.REGISTRY._names_to_collectors)
    server = await h.serve(FunctionApp(scripted))
    assert server.metrics is None
    status, _, _ = await http_get(server.port, "/metrics")
    assert status == 404  # the application's answer: nothing intercepted it
    assert set(prometheus_client.REGISTRY._names_to_collectors) == before
    assert not any(name.startswith("wsserver_") for name in before)


async def test_every_metric_is_exposed_with_its_help(h: Harness) -> None:
    server = await h.serve(FunctionApp(scripted), metrics_path="/metrics")
    _, _, body = await http_get(server.port, "/metrics")
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    for spec in METRICS:
        assert spec.name in families, spec.name
        assert families[spec.name].documentation == spec.help
        assert families[spec.name].type == spec.kind


def test_the_ping_histogram_counts_each_round_trip_in_its_bucket() -> None:
    metrics = Metrics("/metrics")
    for seconds in (0.0005, 0.003, 0.003, 99.0):
        metrics.ping_rtt(seconds)
    (histogram,) = [f for f in metrics.families() if f.name.endswith("ping_rtt_seconds")]
    buckets = {s.labels["le"]: s.value for s in histogram.samples if s.name.endswith("_bucket")}
    assert buckets[repr(PING_RTT_BUCKETS[0])] == 1
    assert buckets["0.005"] == 3
    assert buckets["10.0"] == 3
    assert buckets["+Inf"] == 4


def test_workers_snapshots_add_up_and_an_exited_workers_gauges_do_not(tmp_path: Path) -> None:
    assert SUPERVISOR_METRICS_DIR_ENV == METRICS_DIR_ENV
    mine = Metrics("/metrics", str(tmp_path))
    mine.handshake(101)
    mine.websocket_closed(1000, "client")
    other = {
        "pid": os.getpid(),  # alive: its gauges count
        "counters": {"wsserver_websocket_handshakes": {"accepted\x1f101": 2}},
        "gauges": {"wsserver_websockets_open": {"": 4}, "wsserver_ready": {"": 1}},
        "rtt": {"buckets": [1] + [0] * len(PING_RTT_BUCKETS), "sum": 0.001},
    }
    gone = {
        "pid": 2**22 + 12345,  # no such process
        "counters": {"wsserver_websocket_closes": {"1000\x1fclient": 5}},
        "gauges": {"wsserver_websockets_open": {"": 7}, "wsserver_ready": {"": 0}},
        "rtt": {"buckets": [0] * (len(PING_RTT_BUCKETS) + 1), "sum": 0.0},
    }
    (tmp_path / "worker-1.json").write_text(json.dumps(other))
    (tmp_path / "worker-2.json").write_text(json.dumps(gone))
    (tmp_path / "worker-3.json").write_text("{not json")  # half-written: skipped
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in mine.families()
        for s in family.samples
    }
    assert value(samples, HANDSHAKES, outcome="accepted", status="101") == 3
    assert value(samples, "wsserver_websocket_closes_total", code="1000", side="client") == 6
    assert value(samples, "wsserver_websockets_open") == 4
    assert value(samples, "wsserver_websocket_ping_rtt_seconds_count") == 1
    # This process has no server attached: its own gauges are absent, and
    # the live other worker is ready.
    assert value(samples, "wsserver_ready") == 1
    assert (tmp_path / f"worker-{os.getpid()}.json").exists()


async def test_each_worker_writes_its_snapshot_while_serving_and_at_the_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(METRICS_DIR_ENV, str(tmp_path))
    server = Server(FunctionApp(scripted), ServerConfig(port=0, metrics_path="/metrics"))
    await server.start()
    snapshot = tmp_path / f"worker-{os.getpid()}.json"
    try:
        assert json.loads(snapshot.read_text())["gauges"]["wsserver_ready"] == {"": 1}
        async with ws_client(server, "/") as client:
            await client.send("hi")
            assert await client.recv() == "hi"
    finally:
        await server.shutdown()
    final = json.loads(snapshot.read_text())
    assert final["counters"]["wsserver_websocket_messages_received"] == {"text": 1}


async def test_broadcast_drops_and_slow_consumer_closes_are_counted(h: Harness) -> None:
    opened: list[WebSocket] = []

    async def hold(websocket: WebSocket) -> None:
        await websocket.accept()
        opened.append(websocket)
        while not isinstance(await websocket.receive(), Disconnect):
            pass

    server = await h.serve(FunctionApp(hold), metrics_path="/metrics")
    # A raw client that completes the handshake and then never reads.
    slow = await h.raw(server, rcvbuf=4096)
    await slow.handshake("/")
    await wait_until(lambda: len(opened) == 1)
    payload = "y" * 64 * 1024
    skipped = 0
    for _ in range(500):
        if broadcast(opened, payload, on_slow="skip") == 0:
            skipped += 1
            break
        await asyncio.sleep(0)
    assert skipped == 1
    for _ in range(500):
        if broadcast(opened, payload, on_slow="close") == 0:
            break
        await asyncio.sleep(0)
    samples = await poll_scrape(server.port, lambda s: value(s, "wsserver_websockets_open") == 0)
    assert value(samples, "wsserver_broadcast_drops_total") == 2
    assert value(samples, "wsserver_slow_consumer_closes_total", cause="broadcast") == 1
    assert value(samples, "wsserver_websocket_closes_total", code="1013", side="server") == 1
    sent = value(samples, "wsserver_websocket_messages_sent_total", type="text")
    assert value(samples, "wsserver_websocket_payload_bytes_sent_total", type="text") == (
        sent * len(payload)
    )


async def test_a_peer_not_reading_past_the_write_timeout_is_counted(h: Harness) -> None:
    async def flood(websocket: WebSocket) -> None:
        await websocket.accept()
        payload = b"z" * 64 * 1024
        while True:  # until the send raises WebSocketDisconnect(1008)
            await websocket.send_bytes(payload)

    server = await h.serve(FunctionApp(flood), metrics_path="/metrics", write_timeout=0.2)
    slow = await h.raw(server, rcvbuf=4096)
    await slow.handshake("/")
    closes = "wsserver_websocket_closes_total"
    samples = await poll_scrape(
        server.port, lambda s: value(s, closes, code="1008", side="server") == 1
    )
    assert value(samples, "wsserver_slow_consumer_closes_total", cause="write_timeout") == 1
    assert value(samples, "wsserver_websockets_open") == 0


async def never_answers(websocket: WebSocket) -> None:
    """Neither accepts nor refuses (until cancelled by the handshake timeout)."""
    await asyncio.Event().wait()


async def test_every_limit_hit_is_counted_by_name(h: Harness) -> None:
    opened: list[WebSocket] = []

    async def silent(websocket: WebSocket) -> None:
        if websocket.url.path == "/stuck":
            await never_answers(websocket)
        await websocket.accept()
        opened.append(websocket)
        while not isinstance(await websocket.receive(), Disconnect):
            pass

    server = await h.serve(
        FunctionApp(silent),
        metrics_path="/metrics",
        max_connections=1,
        open_timeout=0.2,
        handshake_timeout=0.2,
        receive_timeout=0.2,
    )
    port = server.port
    # The one WebSocket allowed; it says nothing, so the receive timeout
    # closes it (1001); meanwhile a second handshake is refused (503).
    first = await h.raw(server)
    await first.handshake("/")
    second = await h.raw(server)
    await second.send(handshake_request("/"))
    # (The first stays counted until its transport is gone: after the
    # receive timeout's Close, up to close_timeout, since it never answers.)
    assert (await second.response_head())[0] == 503
    # A connection that sends nothing: the open timeout closes it.
    idle = await h.raw(server)
    # Headers over the core's limit: 431.
    big = await h.raw(server)
    await big.send(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n")
    assert (await big.response_head())[0] == 431
    await idle.read_to_eof()

    def counted(samples: Samples) -> bool:
        return value(samples, "wsserver_websockets_open") == 0 and all(
            value(samples, "wsserver_limit_hits_total", limit=limit) >= 1
            for limit in ("max_connections", "open_timeout", "receive_timeout", "request_headers")
        )

    samples = await poll_scrape(port, counted)
    assert value(samples, "wsserver_http_requests_total", status="431") == 1
    assert value(samples, "wsserver_websocket_closes_total", code="1001", side="server") == 1
    # The handshake timeout, now that the first WebSocket is gone.
    stuck = await h.raw(server)
    await stuck.send(handshake_request("/stuck"))
    assert (await stuck.response_head())[0] == 503
    samples = await poll_scrape(
        port, lambda s: value(s, "wsserver_limit_hits_total", limit="handshake_timeout") == 1
    )
    assert value(samples, HANDSHAKES, outcome="error", status="503") == 2


async def test_a_missing_pong_is_counted(h: Harness) -> None:
    server = await h.serve(
        FunctionApp(scripted), metrics_path="/metrics", ping_interval=0.1, ping_timeout=0.1
    )
    raw = await h.raw(server)
    await raw.handshake("/")  # and never answers the heartbeat's pings
    # Counted at once; the close once the transport is gone (the failed
    # connection waits up to close_timeout for the silent peer's end).
    samples = await poll_scrape(server.port, lambda s: value(s, "wsserver_websockets_open") == 0)
    assert value(samples, "wsserver_limit_hits_total", limit="ping_timeout") == 1
    assert value(samples, "wsserver_websocket_closes_total", code="1011", side="server") == 1


async def test_the_per_client_limits_are_counted_by_name(h: Harness) -> None:
    server = await h.serve(
        FunctionApp(scripted),
        metrics_path="/metrics",
        max_connections_per_client=1,
        handshake_rate_per_client=0.001,
        handshake_burst_per_client=2,
        # Loopback is a trusted proxy by default, and a trusted proxy that
        # forwards no client address is not limited: be a plain client.
        proxy_headers=False,
    )
    first = await h.raw(server)
    await first.handshake("/")
    # The client's second WebSocket while the first is open: one too many.
    second = await h.raw(server)
    await second.send(handshake_request("/"))
    assert (await second.response_head())[0] == 429
    first.abort()
    await poll_scrape(server.port, lambda s: value(s, "wsserver_websockets_open") == 0)
    # The second token of the burst; then the rate refuses the next one.
    third = await h.raw(server)
    await third.handshake("/")
    third.abort()
    await poll_scrape(server.port, lambda s: value(s, "wsserver_websockets_open") == 0)
    fourth = await h.raw(server)
    await fourth.send(handshake_request("/"))
    assert (await fourth.response_head())[0] == 429
    samples = await poll_scrape(
        server.port,
        lambda s: value(s, "wsserver_limit_hits_total", limit="handshake_rate_per_client") == 1,
    )
    assert value(samples, "wsserver_limit_hits_total", limit="max_connections_per_client") == 1
    assert value(samples, HANDSHAKES, outcome="refused", status="429") == 2
