"""Soak test: thousands of WebSocket connections for minutes, then nothing left.

    python bench/soak.py [--connections 5000] [--duration 180] [--ping-interval 5]

Starts ``examples/soak_server.py`` in a subprocess (heartbeats every
``--ping-interval`` seconds), records its figures with no client (the
baseline), opens ``--connections`` WebSocket connections from this process
and keeps them for ``--duration`` seconds.  Every second a random 5% send a
message and check its echo, and 1% disconnect abruptly (a TCP reset, no
Close frame) and reconnect.  Clients answer the server's pings.

The server's figures (``GET /stats``: RSS, file descriptors, asyncio tasks,
WebSocket connections) are reported with no client (baseline), once all are
connected (start), half-way (middle), at the end (end), and after every
client has closed and the server has settled (after).

Then, as a leak check, every client connects once more (again) and leaves
(final).  Stats are taken with ``?trim=1``: garbage collected and
``malloc_trim``-ed first, so RSS shows what is held.

Exits non-zero unless: every echo came back intact, no client was dropped by
the server, and after closing every client the server is back to its steady
values: 0 connections, the baseline's file descriptors and tasks, and an RSS
within ``--rss-tolerance`` (default 5%) of the steady state: no growth in the
second half of the run (end vs middle), none once the clients are gone (after
vs end), and a second round of connections fits in the memory the first one
left (again vs end, final vs after).  RSS after does not return to the
baseline: CPython's allocator keeps arenas that still hold a few live objects
(fragmentation), which the second round reuses rather than grows.

The clients are asyncio protocols on raw sockets (no client library): one
process on one core holds 5,000 of them.  Both processes raise their soft
``RLIMIT_NOFILE`` to the hard limit.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import socket
import struct
import subprocess
import sys
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from wsserver.testing import wire
from wsserver.testing.wire import OP_CLOSE, OP_PING, OP_PONG, OP_TEXT

ROOT = Path(__file__).resolve().parent.parent
SERVER_SCRIPT = ROOT / "examples" / "soak_server.py"

#: Every wait is bounded by this (connect, handshake, a stats request).
TIMEOUT = 30.0
#: An echo not back after this many seconds counts as lost.
ECHO_DEADLINE = 10.0


@dataclass
class Counters:
    """What the clients saw."""

    echoes_sent: int = 0
    echoes_ok: int = 0
    echoes_wrong: int = 0
    echoes_abandoned: int = 0  # sent by a client that then aborted
    pings_answered: int = 0
    aborts: int = 0
    reconnects: int = 0
    dropped_by_server: int = 0
    handshake_failures: int = 0
    errors: list[str] = field(default_factory=list)

    def error(self, message: str) -> None:
        if len(self.errors) < 20:
            self.errors.append(message)


class SoakClient(asyncio.Protocol):
    """One WebSocket client: handshake, echo checks, pongs, close or abort."""

    def __init__(self, counters: Counters, request: bytes) -> None:
        self.counters = counters
        self.request = request
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.open = False
        self.leaving = False  # we closed or aborted: the end is expected
        self.expected: deque[tuple[float, bytes]] = deque()

    # -- asyncio callbacks ---------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.open:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            status = bytes(self.buffer[:12])
            del self.buffer[: end + 4]
            if not status.startswith(b"HTTP/1.1 101"):
                self.counters.handshake_failures += 1
                self.counters.error(f"handshake answered {status!r}")
                self._fail_open()
                return
            self.open = True
            if not self.opened.done():
                self.opened.set_result(None)
        self._parse_frames()

    def connection_lost(self, exc: Exception | None) -> None:
        was_open = self.open
        self.open = False
        self._fail_open()
        if was_open and not self.leaving:
            self.counters.dropped_by_server += 1
            self.counters.error(f"connection dropped by the server ({exc!r})")
        if not self.lost.done():
            self.lost.set_result(None)

    # -- frames ----------------------------------------------------------

    def _parse_frames(self) -> None:
        buffer = self.buffer
        while (header := wire.read_frame_header(buffer)) is not None:
            end = header.size + header.length
            if len(buffer) < end:
                return
            payload = bytes(buffer[header.size : end])
            del buffer[:end]
            self._frame(header.opcode, payload)

    def _frame(self, opcode: int, payload: bytes) -> None:
        transport = self.transport
        if opcode == OP_PING:
            if transport is not None and not self.leaving:
                transport.write(wire.client_frame(OP_PONG, payload))
                self.counters.pings_answered += 1
        elif opcode == OP_TEXT:
            if not self.expected:
                self.counters.echoes_wrong += 1
                self.counters.error("a message nobody sent")
                return
            _, wanted = self.expected.popleft()
            if payload == wanted:
                self.counters.echoes_ok += 1
            else:
                self.counters.echoes_wrong += 1
                self.counters.error(f"echo {payload[:40]!r} != {wanted[:40]!r}")
        elif opcode == OP_CLOSE and transport is not None:
            if not self.leaving:
                self.counters.error(f"server sent Close {payload[:2].hex()}")
                transport.write(wire.client_frame(OP_CLOSE, payload[:2]))
            self.leaving = True
        # Pongs and anything else: ignored.

    def _fail_open(self) -> None:
        if not self.opened.done():
            self.opened.set_exception(ConnectionError("handshake failed"))
            self.opened.exception()  # retrieved here; callers check ``open``
            if self.transport is not None:
                self.transport.abort()

    # -- actions ---------------------------------------------------------

    def send_echo(self, payload: bytes) -> None:
        assert self.transport is not None
        self.expected.append((time.monotonic(), payload))
        self.transport.write(wire.client_frame(OP_TEXT, payload))
        self.counters.echoes_sent += 1

    def overdue(self, now: float) -> int:
        """Echoes waited for longer than ``ECHO_DEADLINE``."""
        return sum(1 for sent, _ in self.expected if now - sent > ECHO_DEADLINE)

    def abort(self) -> None:
        """Vanish with a TCP reset: no Close frame, no FIN."""
        self.leaving = True
        self.counters.echoes_abandoned += len(self.expected)
        self.expected.clear()
        if self.transport is not None:
            sock = self.transport.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.transport.abort()

    def close(self) -> None:
        """Start a clean closing handshake (Close 1000)."""
        self.leaving = True
        if self.transport is not None and self.open:
            self.transport.write(wire.close_frame(1000))


async def close_all(clients: list[SoakClient]) -> set[asyncio.Future[None]]:
    """Close every client cleanly; the ones whose connection did not end."""
    for client in clients:
        client.close()
    _, still_open = await asyncio.wait([client.lost for client in clients], timeout=TIMEOUT)
    for future in still_open:
        future.cancel()
    return still_open


def handshake_request(port: int) -> bytes:
    return wire.client_handshake("/", host=f"127.0.0.1:{port}", key="dGhlIHNhbXBsZSBub25jZQ==")


async def connect(port: int, counters: Counters) -> SoakClient:
    loop = asyncio.get_running_loop()
    request = handshake_request(port)
    _, client = await asyncio.wait_for(
        loop.create_connection(lambda: SoakClient(counters, request), "127.0.0.1", port),
        TIMEOUT,
    )
    await asyncio.wait_for(client.opened, TIMEOUT)
    return client


async def connect_many(port: int, count: int, counters: Counters) -> list[SoakClient]:
    clients: list[SoakClient] = []
    batch = 200
    for start in range(0, count, batch):
        size = min(batch, count - start)
        clients += await asyncio.gather(*(connect(port, counters) for _ in range(size)))
    return clients


async def fetch_stats(port: int) -> dict[str, int]:
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), TIMEOUT)
    try:
        writer.write(b"GET /stats?trim=1 HTTP/1.1\r\nHost: soak\r\nConnection: close\r\n\r\n")
        response = await asyncio.wait_for(reader.read(), TIMEOUT)
    finally:
        writer.close()
        await writer.wait_closed()
    head, _, body = response.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"/stats answered {head[:40]!r}")
    figures: dict[str, int] = json.loads(body)
    return figures


def show(label: str, figures: dict[str, int], extra: str = "") -> None:
    print(
        f"[soak] {label:<9} rss {figures['rss_kib'] / 1024:7.1f} MiB  fds {figures['fds']:>6}  "
        f"tasks {figures['tasks']:>6}  connections {figures['connections']:>6}{extra}",
        flush=True,
    )


def raise_fd_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    return soft


def start_server(ping_interval: float) -> tuple[subprocess.Popen[str], int]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONASYNCIODEBUG"}
    env["PYTHONPATH"] = str(ROOT)
    process = subprocess.Popen(
        [sys.executable, str(SERVER_SCRIPT), "--port", "0", "--ping-interval", str(ping_interval)],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()  # "listening on 127.0.0.1:<port>"
    if not line.startswith("listening on "):
        process.kill()
        raise RuntimeError(f"the soak server did not start: {line!r}")
    return process, int(line.rsplit(":", 1)[1])


async def settle(port: int, baseline: dict[str, int], seconds: float) -> dict[str, int]:
    """Poll the stats until connections, fds and tasks are back, or time is up."""
    deadline = time.monotonic() + seconds
    while True:
        figures = await fetch_stats(port)
        back = (
            figures["connections"] == 0
            and figures["fds"] <= baseline["fds"]
            and figures["tasks"] <= baseline["tasks"]
        )
        if back or time.monotonic() > deadline:
            return figures
        await asyncio.sleep(0.5)


async def soak(port: int, args: argparse.Namespace) -> int:
    counters = Counters()
    rng = random.Random(args.seed)
    baseline = await fetch_stats(port)
    show("baseline", baseline)

    started = time.monotonic()
    clients = await connect_many(port, args.connections, counters)
    print(
        f"[soak] {len(clients)} connections open in {time.monotonic() - started:.1f}s", flush=True
    )
    start_figures = await fetch_stats(port)
    show("start", start_figures)

    middle_figures: dict[str, int] | None = None
    began = time.monotonic()
    seq = 0
    for second in range(1, args.duration + 1):
        # 5% send a message and expect it back.
        for client in rng.sample(clients, max(1, len(clients) * 5 // 100)):
            if client.open and not client.leaving:
                seq += 1
                client.send_echo(f"{seq}:".encode() + rng.randbytes(24).hex().encode())
        # 1% vanish with a reset and are replaced.
        leaving = rng.sample(range(len(clients)), max(1, len(clients) // 100))
        for index in leaving:
            clients[index].abort()
            counters.aborts += 1
        replacements = await asyncio.gather(
            *(connect(port, counters) for _ in leaving), return_exceptions=True
        )
        for index, replacement in zip(leaving, replacements, strict=True):
            if isinstance(replacement, BaseException):
                counters.error(f"reconnect failed: {replacement!r}")
                continue
            clients[index] = replacement
            counters.reconnects += 1
        if second == args.duration // 2:
            middle_figures = await fetch_stats(port)
            show("middle", middle_figures, f"  (t={second}s)")
        # Next tick.
        await asyncio.sleep(max(0.0, began + second - time.monotonic()))
    await asyncio.sleep(1.0)  # the last echoes
    now = time.monotonic()
    overdue = sum(client.overdue(now) for client in clients)
    pending = sum(len(client.expected) for client in clients)
    end_figures = await fetch_stats(port)
    show("end", end_figures, f"  (t={args.duration}s)")

    still_open = await close_all(clients)
    after = await settle(port, baseline, args.settle)
    show("after", after)

    # A second round: memory the first one left is reused, not grown.
    clients = await connect_many(port, args.connections, counters)
    again = await fetch_stats(port)
    show("again", again)
    still_open |= await close_all(clients)
    final = await settle(port, baseline, args.settle)
    show("final", final)

    print(
        f"[soak] echoes sent {counters.echoes_sent}, ok {counters.echoes_ok}, "
        f"wrong {counters.echoes_wrong}, abandoned by aborting clients "
        f"{counters.echoes_abandoned}, pending {pending} (overdue {overdue}); pings answered "
        f"{counters.pings_answered}; aborts {counters.aborts}, reconnects "
        f"{counters.reconnects}; dropped by the server {counters.dropped_by_server}; "
        f"failed handshakes {counters.handshake_failures}; unclosed {len(still_open)}",
        flush=True,
    )
    for message in counters.errors:
        print(f"[soak]   {message}")

    problems = []
    accounted = counters.echoes_ok + counters.echoes_abandoned + pending
    if counters.echoes_wrong or overdue or accounted != counters.echoes_sent:
        problems.append("echoes wrong or missing")
    if counters.dropped_by_server or counters.handshake_failures:
        problems.append("clients dropped or refused")
    if counters.reconnects != counters.aborts:
        problems.append("reconnects failed")
    if still_open:
        problems.append(f"{len(still_open)} clients did not close")
    if after["connections"] != 0:
        problems.append(f"{after['connections']} connections left")
    if after["fds"] > baseline["fds"]:
        problems.append(f"fds {after['fds']} > baseline {baseline['fds']}")
    if after["tasks"] > baseline["tasks"]:
        problems.append(f"tasks {after['tasks']} > baseline {baseline['tasks']}")
    for label, figures in (("final", final),):
        if figures["connections"] != 0:
            problems.append(f"{label}: {figures['connections']} connections left")
        if figures["fds"] > baseline["fds"] or figures["tasks"] > baseline["tasks"]:
            problems.append(f"{label}: fds or tasks over the baseline")
    tolerance = 1 + args.rss_tolerance / 100
    assert middle_figures is not None
    for label, value, reference, name in (
        ("end", end_figures, middle_figures, "middle"),
        ("after", after, end_figures, "end"),
        ("again", again, end_figures, "end"),
        ("final", final, after, "after"),
    ):
        if value["rss_kib"] > reference["rss_kib"] * tolerance:
            problems.append(f"RSS {label} more than {args.rss_tolerance}% over {name}")
    if problems:
        print(f"[soak] FAILED: {'; '.join(problems)}", flush=True)
        return 1
    print("[soak] ok: back to the steady values", flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=5000)
    parser.add_argument("--duration", type=int, default=180, help="seconds (default 180)")
    parser.add_argument("--ping-interval", type=float, default=5.0, help="server heartbeats (s)")
    parser.add_argument(
        "--settle", type=float, default=60.0, help="seconds allowed to settle after closing"
    )
    parser.add_argument(
        "--rss-tolerance", type=float, default=5.0, help="percent of RSS growth allowed"
    )
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args(argv)
    if args.connections < 100 or args.duration < 4:
        parser.error("at least 100 connections and 4 seconds")
    limit = raise_fd_limit()
    if limit < args.connections + 100:
        parser.error(f"RLIMIT_NOFILE is {limit}: too low for {args.connections} connections")
    process, port = start_server(args.ping_interval)
    try:
        return asyncio.run(soak(port, args))
    finally:
        process.terminate()
        try:
            process.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


if __name__ == "__main__":
    sys.exit(main())
