"""The channels rows: cross-worker topic delivery on Redis, against python-socketio.

    python -m bench.channels                  # every row, 3 runs, 1,000 subscribers
    python -m bench.channels --quick          # every row once, 20 subscribers, short
    python -m bench.channels --rows wsserver,socketio --subscribers 500

Each run starts its own ``redis-server`` on loopback (no persistence), two
server processes on two ports, both on that Redis, and then, in this
process, one client with ``--subscribers`` WebSocket connections split
evenly between the two workers and one publisher connection to the first.
The publisher sends small JSON messages (its ``time.perf_counter_ns()`` in
the payload) that the server publishes to one topic (a room), which every
subscriber follows: half of each message's deliveries cross from one worker
to the other through Redis.  Publishing is closed-loop: at most ``--window``
messages are in flight (a message is done when all its deliveries arrived),
so a slow server is not buried under a queue it cannot drain, and every
server gets the same load shape.  Figures over ``--duration`` seconds after
``--warmup``: deliveries per second, and the latency from publish to
delivery (median and p99, same clock: publisher and subscribers are one
process).  Then the publisher stops, the deliveries in flight are drained
and counted: ``lost`` is what never arrived, ``min``/``max`` per subscriber
show that each got every message once.

The rows:

- ``wsserver``: bench/servers/channels_app.py on ``wsserver run
  --channels-backend redis://...``, plain pub/sub (no history);
- ``wsserver-history``: the same with ``history_size=100``: every message
  numbered by a Lua script on Redis (stream + counter) before any worker
  delivers it;
- ``socketio``: bench/servers/socketio_app.py, python-socketio's
  ``AsyncServer`` with ``AsyncRedisManager``, on uvicorn (its ASGI mode, as
  its documentation shows for several processes).

The client: picows (Cython) on uvloop, speaking each server's framing itself
(the channel manager's JSON envelopes; Engine.IO 4 / Socket.IO 5 text
packets over a WebSocket, no HTTP long-polling), with the same cost per
delivery for both: one ``bytes.find`` for the timestamp, no JSON parsing.
The python-socketio client library is not used: it would cost the client
far more per delivery than the servers' own work, and it would measure
itself.  Both servers run on uvloop.  Nothing is pinned: on a two-CPU
machine the two workers, Redis and the client share the CPUs.

The raw figures go to bench/results/<timestamp>-channels.json; the medians
to the "Channels on Redis" section of docs/benchmarks.md (``--no-doc`` to
leave it).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.metadata
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from array import array
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, cast

from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

from bench._listener import ListenerBase
from bench.client import process_cpu_seconds
from bench.common import raise_open_file_limit
from bench.run import (
    CHANNELS_END,
    CHANNELS_START,
    DOC,
    RESULTS_DIR,
    machine_info,
    replace_section,
    write_results,
)

__all__ = [
    "ROWS",
    "ChannelsDialect",
    "Dialect",
    "Row",
    "SocketIODialect",
    "main",
    "render_channels",
    "run_row",
    "stamp_of",
    "summarize",
    "write_channels_section",
]

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
#: Debian's redis-server, or the one on PATH.
REDIS_SERVER = (
    "/usr/bin/redis-server"
    if os.access("/usr/bin/redis-server", os.X_OK)
    else shutil.which("redis-server") or "redis-server"
)

#: Bounds of the phases that are not timed.
READY_TIMEOUT = 20.0
CONNECT_TIMEOUT = 120.0
DRAIN_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0
#: Handshakes in flight while opening the subscribers.
OPEN_CONCURRENCY = 50
#: No delivery for this long while publishing: one more message is sent
#: anyway (and counted as a stall), so that a lost delivery cannot stop the run.
STALL_AFTER = 2.0

_TEXT = WSMsgType.TEXT
_PING = WSMsgType.PING
_CLOSE = WSMsgType.CLOSE

Server = Literal["wsserver", "socketio"]


@dataclass(frozen=True)
class Row:
    """One row of the table: a server, with or without history."""

    name: str
    label: str
    server: Server
    history: int = 0


ROWS: tuple[Row, ...] = (
    Row("wsserver", "wsserver channels, pub/sub (no history)", "wsserver"),
    Row("wsserver-history", "wsserver channels, history 100 (Redis Streams)", "wsserver", 100),
    Row("socketio", "python-socketio, AsyncRedisManager (uvicorn)", "socketio"),
)


def stamp_of(data: bytes) -> int | None:
    """The publish timestamp in a delivery (``"t":<digits>``), or ``None``."""
    start = data.find(b'"t":')
    if start < 0:
        return None
    start += 4
    end = start
    while end < len(data) and 48 <= data[end] <= 57:
        end += 1
    return int(data[start:end]) if end > start else None


def _payload(stamp: int, pad: str) -> str:
    return f'{{"t":{stamp},"pad":"{pad}"}}'


# ---------------------------------------------------------------------------
# The two framings
# ---------------------------------------------------------------------------


class Dialect:
    """What a connection says to one kind of server (sans I/O).

    ``opening()``: what to send once connected; ``answer(data)``: what to
    send on receiving ``data`` (a text message), and whether it confirms the
    subscription; ``is_delivery(data)``: whether it is a topic message;
    ``publish(payload)``: the message that asks the server to publish.
    """

    path = "/"

    def opening(self, subscribe: bool) -> list[bytes]:
        raise NotImplementedError

    def answer(self, data: bytes, subscribe: bool) -> tuple[list[bytes], bool]:
        raise NotImplementedError

    def is_delivery(self, data: bytes) -> bool:
        raise NotImplementedError

    def publish(self, payload: str) -> bytes:
        raise NotImplementedError


class ChannelsDialect(Dialect):
    """The channel manager's envelopes (docs/plugins/channels.md, "Wire messages").

    ``ch/ready`` at once (the server holds the channel's messages until
    then), then ``sub`` as a custom message with a reply channel: its
    ``res`` confirms the subscription.  A delivery is a ``ch/msg``.
    """

    path = "/ws"

    def opening(self, subscribe: bool) -> list[bytes]:
        frames = [b'{"p":"ch","k":"ready"}']
        if subscribe:
            frames.append(b'{"p":"ch","k":"custom","kind":"sub","data":null,"rchan":"s"}')
        return frames

    def answer(self, data: bytes, subscribe: bool) -> tuple[list[bytes], bool]:
        return [], subscribe and b'"k":"res"' in data and b'"ok":true' in data

    def is_delivery(self, data: bytes) -> bool:
        return b'"k":"msg"' in data

    def publish(self, payload: str) -> bytes:
        return f'{{"p":"ch","k":"custom","kind":"pub","data":{payload}}}'.encode()


class SocketIODialect(Dialect):
    """Engine.IO 4 and Socket.IO 5 text packets over a WebSocket.

    The server opens with Engine.IO's ``0{...}``; the client connects to
    the default namespace (``40``), and once connected (``40{"sid":...}``)
    emits ``sub`` with acknowledgement id 1 (``421["sub"]``), acknowledged
    by ``431[true]``.  The server's Engine.IO pings (``2``) are answered
    (``3``).  A delivery is the event ``m`` (``42["m",...]``).
    """

    path = "/socket.io/?EIO=4&transport=websocket"

    def opening(self, subscribe: bool) -> list[bytes]:
        return []

    def answer(self, data: bytes, subscribe: bool) -> tuple[list[bytes], bool]:
        if data == b"2":
            return [b"3"], False
        if data.startswith(b"0{"):
            return [b"40"], False
        if data.startswith(b"40"):
            return ([b'421["sub"]'] if subscribe else []), False
        if data.startswith(b"431"):
            return [], subscribe and data == b"431[true]"
        if data.startswith(b"44"):
            raise ConnectionError(f"Socket.IO refused the connection: {data[:200]!r}")
        return [], False

    def is_delivery(self, data: bytes) -> bool:
        return data.startswith(b'42["m"')

    def publish(self, payload: str) -> bytes:
        return f'42["pub",{payload}]'.encode()


def dialect_for(server: Server) -> Dialect:
    return ChannelsDialect() if server == "wsserver" else SocketIODialect()


# ---------------------------------------------------------------------------
# The client
# ---------------------------------------------------------------------------


@dataclass
class Stats:
    """What every connection of one run shares."""

    dialect: Dialect
    subscribers: int
    window: int
    pad: str
    publisher: WSTransport | None = None
    subscribed: int = 0
    received: int = 0
    issued: int = 0
    publishing: bool = False
    measuring: bool = False
    stalls: int = 0
    latencies: array[int] = field(default_factory=lambda: array("q"))
    last_progress: float = field(default_factory=time.monotonic)

    def issue(self) -> None:
        assert self.publisher is not None
        payload = _payload(time.perf_counter_ns(), self.pad)
        self.publisher.send(_TEXT, self.dialect.publish(payload))
        self.issued += 1

    def fill(self) -> None:
        # Closed loop: the next message goes once every delivery of all but
        # the last ``window - 1`` messages has arrived.
        while (
            self.publishing and self.received >= (self.issued - self.window + 1) * self.subscribers
        ):
            self.issue()


class Connection(ListenerBase):
    def __init__(self, stats: Stats, subscribe: bool) -> None:
        self.stats = stats
        self.subscribe = subscribe
        self.transport: WSTransport | None = None
        self.received = 0
        self.closed_by_server = False

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport
        for frame in self.stats.dialect.opening(self.subscribe):
            transport.send(_TEXT, frame)

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        kind = frame.msg_type
        if kind is _TEXT:
            data = frame.get_payload_as_bytes()
            stats = self.stats
            if stats.dialect.is_delivery(data):
                now = time.perf_counter_ns()
                self.received += 1
                stats.received += 1
                if stats.measuring:
                    stamp = stamp_of(data)
                    if stamp is not None:
                        stats.latencies.append(now - stamp)
                stats.fill()
                return
            replies, confirmed = stats.dialect.answer(data, self.subscribe)
            for reply in replies:
                transport.send(_TEXT, reply)
            if confirmed:
                stats.subscribed += 1
        elif kind is _PING:
            transport.send_pong(frame.get_payload_as_bytes())
        elif kind is _CLOSE:
            self.closed_by_server = True
            transport.send_close(frame.get_close_code())


async def _open(url: str, stats: Stats, subscribe: bool) -> Connection:
    _transport, listener = await ws_connect(
        cast("Callable[[], WSListener]", lambda: Connection(stats, subscribe)),
        url,
        websocket_handshake_timeout=CONNECT_TIMEOUT,
        enable_auto_pong=False,
    )
    if not isinstance(listener, Connection):
        raise ConnectionError(f"the handshake with {url} did not complete")
    return listener


async def _wait(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(0.01)
    return True


def _percentile(values: Sequence[int], fraction: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] / 1e6


async def drive(
    urls: Sequence[str],
    dialect: Dialect,
    *,
    subscribers: int,
    window: int,
    warmup: float,
    duration: float,
    size: int,
    cpu_pids: Sequence[int] = (),
    redis_pid: int | None = None,
) -> dict[str, Any]:
    """One run against servers already listening at ``urls`` (the publisher
    on the first); the figures of the measured window, then the drain's counts."""
    stats = Stats(dialect, subscribers, window, "x" * max(0, size - 32))
    semaphore = asyncio.Semaphore(OPEN_CONCURRENCY)

    async def one(index: int) -> Connection:
        async with semaphore:
            return await _open(urls[index % len(urls)], stats, True)

    async with asyncio.timeout(CONNECT_TIMEOUT):
        connections = list(await asyncio.gather(*(one(i) for i in range(subscribers))))
        publisher = await _open(urls[0], stats, False)
    stats.publisher = publisher.transport
    if not await _wait(lambda: stats.subscribed >= subscribers, CONNECT_TIMEOUT):
        raise TimeoutError(f"{stats.subscribed} of {subscribers} subscriptions confirmed")

    stats.publishing = True
    stats.fill()

    async def watchdog() -> None:
        last = -1
        while stats.publishing:
            await asyncio.sleep(STALL_AFTER)
            if stats.received == last and stats.publishing:
                stats.stalls += 1
                stats.issue()
            last = stats.received

    guard = asyncio.create_task(watchdog())
    await asyncio.sleep(warmup)
    pids = list(cpu_pids)
    cpu_start = [process_cpu_seconds(pid) for pid in pids]
    redis_start = process_cpu_seconds(redis_pid) if redis_pid else 0.0
    client_start = time.process_time()
    received_start = stats.received
    started = time.perf_counter()
    stats.measuring = True
    await asyncio.sleep(duration)
    stats.measuring = False
    wall = time.perf_counter() - started
    delivered = stats.received - received_start
    cpu = sum(process_cpu_seconds(pid) for pid in pids) - sum(cpu_start)
    redis_cpu = (process_cpu_seconds(redis_pid) - redis_start) if redis_pid else 0.0
    client_cpu = time.process_time() - client_start
    stats.publishing = False
    guard.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await guard
    expected = stats.issued * subscribers
    await _wait(lambda: stats.received >= expected, DRAIN_TIMEOUT)
    counts = [c.received for c in connections]
    closed = sum(1 for c in (*connections, publisher) if c.closed_by_server)
    for connection in (*connections, publisher):
        if connection.transport is not None:
            connection.transport.disconnect(graceful=False)
    latencies = stats.latencies
    result: dict[str, Any] = {
        "deliveries_per_s": delivered / wall,
        "deliveries": delivered,
        "published": stats.issued,
        "p50_ms": _percentile(latencies, 0.50),
        "p99_ms": _percentile(latencies, 0.99),
        "lost": expected - stats.received,
        "per_subscriber_min": min(counts),
        "per_subscriber_max": max(counts),
        "stalls": stats.stalls,
        "closed_by_server": closed,
    }
    if pids and delivered:
        result["server_cpu_us_per_delivery"] = cpu / delivered * 1e6
    if redis_pid and delivered:
        result["redis_cpu_us_per_delivery"] = redis_cpu / delivered * 1e6
    if delivered:
        result["client_cpu_us_per_delivery"] = client_cpu / delivered * 1e6
        # Near 1: the client, not the servers, set the pace.
        result["client_cpu_share"] = client_cpu / wall
    return result


# ---------------------------------------------------------------------------
# Processes
# ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _wait_listening(process: subprocess.Popen[bytes], port: int, what: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while not _listening(port):
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode} before listening")
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what} did not listen on {port} within {READY_TIMEOUT} s")
        time.sleep(0.05)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def server_command(row: Row, port: int, redis_url: str) -> list[str]:
    """How one worker of ``row`` is started."""
    if row.server == "wsserver":
        return [
            PYTHON, "-m", "wsserver", "run", "bench.servers.channels_app:app",
            "--host", "127.0.0.1", "--port", str(port), "--loop", "uvloop",
            "--log-level", "warning", "--no-access-log", "--channels-backend", redis_url,
        ]  # fmt: skip
    return [
        PYTHON, "-m", "uvicorn", "bench.servers.socketio_app:app",
        "--host", "127.0.0.1", "--port", str(port), "--loop", "uvloop",
        "--log-level", "warning", "--no-access-log",
    ]  # fmt: skip


@contextlib.contextmanager
def running(
    row: Row, log_dir: Path, workers: int = 2
) -> Iterator[tuple[list[str], list[int], int]]:
    """A fresh redis-server and ``workers`` servers of ``row`` on it: their
    WebSocket URLs, the workers' pids and Redis's pid."""
    processes: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory(prefix="bench-redis-") as directory:
        redis_port = free_port()
        redis_log = (log_dir / f"{row.name}-redis.log").open("ab")
        try:
            redis = subprocess.Popen(
                [REDIS_SERVER, "--port", str(redis_port), "--bind", "127.0.0.1",
                 "--save", "", "--appendonly", "no", "--dir", directory],
                stdout=redis_log, stderr=subprocess.STDOUT,
            )  # fmt: skip
            processes.append(redis)
            _wait_listening(redis, redis_port, "redis-server")
            redis_url = f"redis://127.0.0.1:{redis_port}/0"
            env = {
                **os.environ,
                "BENCH_CHANNELS_HISTORY": str(row.history),
                "BENCH_REDIS_URL": redis_url,
                "PYTHONPATH": str(ROOT),
            }
            ports = [free_port() for _ in range(workers)]
            for index, port in enumerate(ports):
                out = (log_dir / f"{row.name}-worker{index}.log").open("ab")
                worker = subprocess.Popen(
                    server_command(row, port, redis_url), cwd=ROOT, env=env,
                    stdout=out, stderr=subprocess.STDOUT,
                )  # fmt: skip
                out.close()
                processes.append(worker)
            for index, port in enumerate(ports):
                _wait_listening(processes[index + 1], port, f"{row.name} worker {index}")
            path = dialect_for(row.server).path
            urls = [f"ws://127.0.0.1:{port}{path}" for port in ports]
            yield urls, [p.pid for p in processes[1:]], redis.pid
        finally:
            for process in reversed(processes):
                _stop(process)
            redis_log.close()


def run_row(
    row: Row,
    log_dir: Path,
    *,
    subscribers: int,
    window: int,
    warmup: float,
    duration: float,
    size: int,
) -> dict[str, Any]:
    """One run of ``row``: its processes started, driven, stopped."""
    with running(row, log_dir) as (urls, pids, redis_pid):
        return _run_loop(
            drive(
                urls,
                dialect_for(row.server),
                subscribers=subscribers,
                window=window,
                warmup=warmup,
                duration=duration,
                size=size,
                cpu_pids=pids,
                redis_pid=redis_pid,
            )
        )


def _run_loop(coroutine: Any) -> dict[str, Any]:
    try:
        import uvloop
    except ImportError:
        return cast("dict[str, Any]", asyncio.run(coroutine))
    return cast("dict[str, Any]", uvloop.run(coroutine))


# ---------------------------------------------------------------------------
# Summary and docs/benchmarks.md
# ---------------------------------------------------------------------------

_MEDIANS = (
    "deliveries_per_s",
    "p50_ms",
    "p99_ms",
    "server_cpu_us_per_delivery",
    "redis_cpu_us_per_delivery",
    "client_cpu_us_per_delivery",
    "client_cpu_share",
)


def summarize(records: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per row: the median of each figure over its runs, and the runs' loss."""
    summary: dict[str, dict[str, Any]] = {}
    for name in dict.fromkeys(r["row"] for r in records):
        runs = [r for r in records if r["row"] == name and "error" not in r]
        cell: dict[str, Any] = {
            "runs": len(runs),
            "errors": sum(1 for r in records if r["row"] == name and "error" in r),
        }
        for key in _MEDIANS:
            values = [r[key] for r in runs if key in r]
            if values:
                cell[key] = statistics.median(values)
        cell["lost"] = sum(r.get("lost", 0) for r in runs)
        summary[name] = cell
    return summary


def _number(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:,.1f}"


def render_channels(data: dict[str, Any]) -> str:
    """The "Channels on Redis" section of docs/benchmarks.md, from a results file."""
    plan = data["plan"]
    summary = data["summary"]
    machine = data["machine"]
    load = data.get("loadavg", {})
    packages = ", ".join(f"{k} {v}" for k, v in machine["channels_packages"].items())
    lines = [
        f"_Run {data['started']}: {plan['runs']} run(s) per row of {plan['duration']} s after "
        f"{plan['warmup']} s of warm-up; {plan['subscribers']:,} subscribers on 2 workers, "
        f"window {plan['window']}, payload {plan['size']} B; load average "
        f"{load.get('start', 0):.2f} at the start, {load.get('end', 0):.2f} at the end; "
        f"{machine['cpus']} CPUs, {machine['cpu_model']}; {packages}._",
        "",
        "**Shared machine.** Two CPUs shared with other engineers' work while these "
        "were taken, and with the benchmark's own two workers, Redis and client "
        "(nothing pinned): the figures show the rows side by side under the same "
        "conditions, not what either library does on a quiet machine.  The CPU time "
        "per delivery depends less on how much of the machine each process got.",
        "",
        "Method: a fresh `redis-server` on loopback per run; two server processes on "
        "it, the subscribers split evenly between them and the publisher on the "
        "first, so half of every message's deliveries cross workers through Redis.  "
        "Closed loop: at most the window's messages in flight (a message is done when "
        "every subscriber has it).  Latency: from the publisher's clock in the payload "
        "to the subscriber's, same process.  The client is picows on uvloop speaking "
        "each framing itself (channel envelopes; Engine.IO 4 / Socket.IO 5 packets "
        "over a WebSocket), the same cost per delivery for both; not python-socketio's "
        "client library, which would cost more than the server it measures.  "
        "wsserver: `wsserver run bench.servers.channels_app:app --loop uvloop "
        "--channels-backend redis://...`; python-socketio: `uvicorn "
        "bench.servers.socketio_app:app --loop uvloop` (`AsyncServer` with "
        "`AsyncRedisManager`).  *lost*: deliveries that never arrived after the "
        "drain, over all runs; every subscriber also got every message exactly once "
        "(checked per run).",
        "",
        "| row | deliveries/s | p50 ms | p99 ms | workers' CPU µs/delivery "
        "| Redis CPU µs/delivery | lost |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in ROWS:
        cell = summary.get(row.name)
        if cell is None:
            continue
        if "deliveries_per_s" not in cell:
            lines.append(f"| {row.label} | failed | | | | | |")
            continue
        lines.append(
            f"| {row.label} | {_number(cell['deliveries_per_s'])} | {cell['p50_ms']:.1f} | "
            f"{cell['p99_ms']:.1f} | {cell.get('server_cpu_us_per_delivery', 0):.1f} | "
            f"{cell.get('redis_cpu_us_per_delivery', 0):.1f} | {cell['lost']} |"
        )
    peer = summary.get("socketio", {}).get("deliveries_per_s")
    ratios = [
        f"{row.label}: {summary[row.name]['deliveries_per_s'] / peer:.1f}x"
        for row in ROWS
        if row.server == "wsserver" and peer and "deliveries_per_s" in summary.get(row.name, {})
    ]
    if ratios:
        lines += ["", "Deliveries per second against python-socketio's: " + "; ".join(ratios) + "."]
    peer_cpu = summary.get("socketio", {}).get("server_cpu_us_per_delivery")
    cpu_ratios = [
        f"{row.label}: {peer_cpu / summary[row.name]['server_cpu_us_per_delivery']:.1f}x"
        for row in ROWS
        if row.server == "wsserver"
        and peer_cpu
        and summary.get(row.name, {}).get("server_cpu_us_per_delivery")
    ]
    if cpu_ratios:
        lines += [
            "",
            "Workers' CPU per delivery, python-socketio's over wsserver's (how many "
            "times less CPU wsserver spends per delivery): " + "; ".join(cpu_ratios) + ".",
        ]
    lines += [
        "",
        "```sh",
        'pip install -e ".[bench]"   # picows, uvloop, uvicorn, python-socketio, redis',
        "python -m bench.channels     # add --quick for a short smoke run",
        "```",
    ]
    return "\n".join(lines)


def write_channels_section(data: dict[str, Any], doc: Path) -> None:
    """Replace the "Channels on Redis" section of ``doc`` (appended if missing)."""
    text = replace_section(
        doc.read_text(encoding="utf-8"),
        "Channels on Redis",
        CHANNELS_START,
        CHANNELS_END,
        render_channels(data),
    )
    doc.write_text(text, encoding="utf-8")


def channels_packages() -> dict[str, str]:
    versions = {}
    for name in ("python-socketio", "python-engineio", "uvicorn", "redis", "picows", "uvloop"):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    versions["redis-server"] = _redis_version()
    return versions


def _redis_version() -> str:
    try:
        out = subprocess.run(
            [REDIS_SERVER, "--version"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except OSError:
        return "not installed"
    for word in out.split():
        if word.startswith("v="):
            return word[2:]
    return out.strip()


def _log(message: str) -> None:
    print(f"[bench.channels] {message}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    names = [row.name for row in ROWS]
    parser = argparse.ArgumentParser(
        prog="python -m bench.channels",
        description="cross-worker topic delivery on Redis: wsserver channels and python-socketio",
    )
    parser.add_argument("--rows", default=",".join(names))
    parser.add_argument(
        "--subscribers", type=int, default=None, help="default 1,000 (20 with --quick)"
    )
    parser.add_argument("--window", type=int, default=4, help="messages in flight (default 4)")
    parser.add_argument("--size", type=int, default=64, help="payload bytes (default 64)")
    parser.add_argument("--runs", type=int, default=None, help="default 3 (1 with --quick)")
    parser.add_argument("--warmup", type=float, default=None, help="default 2 s")
    parser.add_argument("--duration", type=float, default=None, help="default 5 s")
    parser.add_argument("--quick", action="store_true", help="20 subscribers, one short run")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    parser.add_argument("--doc", type=Path, default=DOC)
    parser.add_argument("--no-doc", action="store_true")
    parser.add_argument("--render", type=Path, metavar="RESULTS", help="re-render a results file")
    args = parser.parse_args(argv)
    if args.render is not None:
        data = json.loads(args.render.read_text(encoding="utf-8"))
        if not args.no_doc:
            write_channels_section(data, args.doc)
        print(render_channels(data))
        return 0
    chosen = [n.strip() for n in args.rows.split(",") if n.strip()]
    unknown = [n for n in chosen if n not in names]
    if unknown:
        raise SystemExit(f"unknown rows: {', '.join(unknown)}; known: {', '.join(names)}")
    rows = [row for row in ROWS if row.name in chosen]
    quick: bool = args.quick
    subscribers = args.subscribers or (20 if quick else 1000)
    runs = args.runs or (1 if quick else 3)
    warmup = args.warmup if args.warmup is not None else (0.3 if quick else 2.0)
    duration = args.duration if args.duration is not None else (1.0 if quick else 5.0)
    raise_open_file_limit()
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    log_dir = args.results_dir / f"{stamp}-channels-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    load_start = os.getloadavg()[0]
    records: list[dict[str, Any]] = []
    for run in range(runs):
        # Rows interleaved, their order rotated from run to run: background
        # load is spread over them.
        for row in rows[run % len(rows) :] + rows[: run % len(rows)]:
            _log(f"run {run + 1}/{runs}: {row.name}")
            record: dict[str, Any] = {"row": row.name, "run": run}
            try:
                record.update(
                    run_row(
                        row,
                        log_dir,
                        subscribers=subscribers,
                        window=args.window,
                        warmup=warmup,
                        duration=duration,
                        size=args.size,
                    )
                )
            except Exception as exc:  # a failed run is recorded, the others go on
                record["error"] = f"{type(exc).__name__}: {exc}"
            _log(json.dumps(record))
            records.append(record)
    data = {
        "started": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": {**machine_info(), "channels_packages": channels_packages()},
        "loadavg": {"start": load_start, "end": os.getloadavg()[0]},
        "plan": {
            "rows": [row.name for row in rows],
            "runs": runs,
            "subscribers": subscribers,
            "window": args.window,
            "size": args.size,
            "warmup": warmup,
            "duration": duration,
            "quick": quick,
        },
        "records": records,
        "summary": summarize(records),
    }
    write_results(data, args.results_dir / f"{stamp}-channels.json", log_dir)
    if not args.no_doc:
        write_channels_section(data, args.doc)
    print(render_channels(data))
    return 1 if any("error" in r for r in records) else 0


if __name__ == "__main__":
    sys.exit(main())
