"""The load generator: one scenario against one running server.

    python -m bench.client --url ws://127.0.0.1:9001/ --scenario echo_c64_1k \\
        --server-pid 1234 [--duration 3] [--warmup 1]

prints one JSON object with the scenario's figures and the CPU time both
processes used during the measurement.  It must not be the bottleneck, so it
uses picows' Cython client on uvloop, sends pre-masked frames in batches
(see ``EchoClient``), and opens and closes connections for the handshake
scenario on a bare asyncio protocol (``HandshakeProtocol``).  The CPU
figures let a reader check: a server near 100 % of its core with the client
below it is server-bound.

What each kind of scenario does (see bench/common.py for the list):

- ``latency``: one connection, one message in flight; every round trip is
  timed, p50 and p99 are reported.
- ``echo``: N connections, each keeping ``window`` messages in flight
  (pipelining); echoed messages per second.  Every echo's size is checked,
  and for deflate the echo is decompressed and checked too.  Two load
  shapes (``Scenario.shape``): ``deep`` keeps up to 256 messages in flight
  and sends replacements in quarter-window batches (``EchoClient``);
  ``window32`` keeps at most 32 and is woken by ``SO_RCVLOWAT`` once half
  of them have come back (``Window32Client``).
- ``handshake``: 32 tasks each opening a connection, closing it (client
  Close, server Close, server closes TCP) and starting over; completed
  open+close cycles per second.
- ``rss``: opens N connections, exchanges one 1 KiB JSON message on each
  (so compression contexts exist where compression was agreed), waits, and
  reads the server's VmRSS; (after - before) / N.
- ``broadcast``: N connections; one of them sends ``broadcast:<n>:<size>``
  whenever the deliveries of all but the last command have arrived (at most
  two commands in flight); deliveries per second over all connections.
- ``http``: N keep-alive HTTP/1.1 connections, each with one ``GET /`` in
  flight, the next sent as soon as the response is whole (plain asyncio
  protocols, ``HTTPClient``); responses per second, every one checked for
  its 200 and its ``Content-Length``.

Every phase is bounded in time; only 127.0.0.1 is used.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import os
import socket
import sys
import time
import zlib
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from picows import WSCloseCode, WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

from bench._listener import ListenerBase
from bench.common import (
    Scenario,
    json_messages,
    quick_scenario,
    raise_open_file_limit,
    scenario_by_name,
)
from wsserver.testing import wire

__all__ = ["DeflateCodec", "Meter", "Window32Client", "main", "run_scenario", "wake_threshold"]

_TEXT = WSMsgType.TEXT
_BINARY = WSMsgType.BINARY
_CONTINUATION = WSMsgType.CONTINUATION
_CLOSE = WSMsgType.CLOSE

#: Upper bounds for the phases that are not timed by --duration.
CONNECT_TIMEOUT = 60.0
DRAIN_TIMEOUT = 10.0
CLOSE_TIMEOUT = 10.0
#: Handshakes in flight while opening many connections.
OPEN_CONCURRENCY = 100
MAX_FRAME = 64 * 1024 * 1024 + 1024
CLK_TCK = os.sysconf("SC_CLK_TCK")


class BenchError(Exception):
    """The scenario could not run as designed (wrong echo, lost connection...)."""


# ---------------------------------------------------------------------------
# /proc readings
# ---------------------------------------------------------------------------


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` (all threads) and its live descendants.

    Descendants: a server that runs its application in a worker process
    (granian) must be charged for it.  From /proc/<pid>/stat, and
    /proc/<pid>/task/*/children for the descendants.
    """
    with open(f"/proc/{pid}/stat") as f:
        data = f.read()
    fields = data[data.rindex(")") + 2 :].split()
    seconds = (int(fields[11]) + int(fields[12])) / CLK_TCK
    for child in _children(pid):
        with contextlib.suppress(OSError):
            seconds += process_cpu_seconds(child)
    return seconds


def _children(pid: int) -> list[int]:
    children: list[int] = []
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{task}/children") as f:
                children += [int(child) for child in f.read().split()]
    return children


def machine_busy_seconds() -> float:
    """CPU time all CPUs spent busy since boot (not idle, not waiting for I/O)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal guest guest_nice; guest
    # time is already counted in user.
    return (sum(fields[:8]) - fields[3] - fields[4]) / CLK_TCK


def process_rss_kib(pid: int) -> int:
    """Resident set size of ``pid`` in KiB (VmRSS)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise BenchError(f"no VmRSS for pid {pid}")


@dataclass
class Meter:
    """Wall time and both processes' CPU time over the measurement window."""

    server_pid: int | None
    _wall: float = 0.0
    _client: float = 0.0
    _server: float = 0.0
    _machine: float = 0.0
    result: dict[str, float] = field(default_factory=dict)

    def start(self) -> None:
        self._machine = machine_busy_seconds()
        self._wall = time.perf_counter()
        self._client = time.process_time()
        self._server = process_cpu_seconds(self.server_pid) if self.server_pid else 0.0

    def stop(self) -> float:
        """End the window; returns its length in seconds."""
        wall = time.perf_counter() - self._wall
        client = time.process_time() - self._client
        server = process_cpu_seconds(self.server_pid) - self._server if self.server_pid else 0.0
        # Everything else the machine did meanwhile: other people's work.
        other = max(0.0, machine_busy_seconds() - self._machine - client - server)
        self.result = {
            "other_cpu_pct": 100.0 * other / wall if wall else 0.0,
            "wall_s": wall,
            "client_cpu_s": client,
            "server_cpu_s": server,
            "client_cpu_pct": 100.0 * client / wall if wall else 0.0,
            "server_cpu_pct": 100.0 * server / wall if wall else 0.0,
        }
        return wall


# ---------------------------------------------------------------------------
# permessage-deflate for the client side (picows has none)
# ---------------------------------------------------------------------------

DEFLATE_OFFER = "permessage-deflate; client_max_window_bits"
_TAIL = b"\x00\x00\xff\xff"
#: Messages compressed on their own, by (window bits, message).
_ALONE: dict[tuple[int, bytes], bytes] = {}


class DeflateCodec:
    """RFC 7692 on the client side, as the server's response agreed it."""

    def __init__(
        self,
        *,
        client_max_window_bits: int = 15,
        client_no_context_takeover: bool = False,
        server_no_context_takeover: bool = False,
    ) -> None:
        if not 9 <= client_max_window_bits <= 15:
            # zlib cannot compress with a 256-byte window (it uses 512).
            raise BenchError(f"client_max_window_bits={client_max_window_bits} unsupported")
        self.bits = client_max_window_bits
        self.client_no_context_takeover = client_no_context_takeover
        self.server_no_context_takeover = server_no_context_takeover
        self._compressor = self._new_compressor()
        self._decompressor = zlib.decompressobj(-15)

    def _new_compressor(self) -> Any:
        return zlib.compressobj(6, zlib.DEFLATED, -self.bits)

    @classmethod
    def from_response(cls, header: str | None) -> DeflateCodec | None:
        """The codec for a ``Sec-WebSocket-Extensions`` response value, if it agreed."""
        if not header:
            return None
        params = [p.strip() for p in header.split(";")]
        if params[0].lower() != "permessage-deflate":
            raise BenchError(f"unexpected extension in response: {header}")
        options: dict[str, str | None] = {}
        for param in params[1:]:
            key, _, value = param.partition("=")
            options[key.strip().lower()] = value.strip().strip('"') or None
        bits = options.get("client_max_window_bits")
        return cls(
            client_max_window_bits=int(bits) if bits else 15,
            client_no_context_takeover="client_no_context_takeover" in options,
            server_no_context_takeover="server_no_context_takeover" in options,
        )

    def compress_alone(self, data: bytes) -> bytes:
        """``data`` compressed on its own, as with client_no_context_takeover.

        Always valid: a decompressor that keeps its window across messages
        never needs it for a message that does not refer back.  Such a
        message can be compressed once and sent many times.
        """
        key = (self.bits, data)
        compressed = _ALONE.get(key)
        if compressed is None:
            compressor = self._new_compressor()
            out = compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
            compressed = _ALONE[key] = bytes(out[:-4]) if out.endswith(_TAIL) else bytes(out)
        return compressed

    def compress(self, data: bytes) -> bytes:
        out = self._compressor.compress(data) + self._compressor.flush(zlib.Z_SYNC_FLUSH)
        if self.client_no_context_takeover:
            self._compressor = self._new_compressor()
        return bytes(out[:-4]) if out.endswith(_TAIL) else bytes(out)

    def decompress(self, data: bytes) -> bytes:
        out: bytes = self._decompressor.decompress(data + _TAIL)
        if self.server_no_context_takeover:
            self._decompressor = zlib.decompressobj(-15)
        return out


# ---------------------------------------------------------------------------
# Connections
# ---------------------------------------------------------------------------


class Client(ListenerBase):
    """Base listener: remembers its transport, finishes the closing handshake."""

    def __init__(self) -> None:
        self.transport: WSTransport | None = None
        self.codec: DeflateCodec | None = None
        self.close_received = False

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport
        self.codec = DeflateCodec.from_response(
            transport.response.headers.get("Sec-WebSocket-Extensions")
        )

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type is _CLOSE:
            self.on_close(transport, frame)

    def on_close(self, transport: WSTransport, frame: WSFrame) -> None:
        self.close_received = True
        if not transport.is_close_frame_sent:
            # The server started the close (it should not in a benchmark).
            transport.send_close(frame.get_close_code())
        # Wait for the server to close TCP first (RFC 6455 section 7.1.1).


async def connect(
    url: str, factory: Callable[[], Client], *, deflate: bool
) -> tuple[WSTransport, Client]:
    headers = {"Sec-WebSocket-Extensions": DEFLATE_OFFER} if deflate else None
    transport, listener = await ws_connect(
        cast("Callable[[], WSListener]", factory),
        url,
        extra_headers=headers,
        max_frame_size=MAX_FRAME,
        websocket_handshake_timeout=CONNECT_TIMEOUT,
    )
    if not isinstance(listener, Client):
        raise BenchError(f"the handshake did not complete (got {listener!r})")
    if deflate and listener.codec is None:
        raise BenchError("the server did not agree to permessage-deflate")
    return transport, listener


async def open_many(
    url: str, count: int, factory: Callable[[], Client], *, deflate: bool
) -> list[Client]:
    """Open ``count`` connections, ``OPEN_CONCURRENCY`` handshakes at a time."""
    semaphore = asyncio.Semaphore(OPEN_CONCURRENCY)

    async def one() -> Client:
        async with semaphore:
            return (await connect(url, factory, deflate=deflate))[1]

    async with asyncio.timeout(CONNECT_TIMEOUT):
        return list(await asyncio.gather(*(one() for _ in range(count))))


async def close_all(clients: Sequence[Client]) -> None:
    """Close every connection cleanly, aborting what is left after a bound."""

    async def close(transport: WSTransport) -> None:
        transport.send_close(WSCloseCode.OK)
        try:
            await asyncio.wait_for(transport.wait_disconnected(), CLOSE_TIMEOUT)
        except Exception:  # TimeoutError, or the connection failed meanwhile
            transport.disconnect(graceful=False)

    transports = [c.transport for c in clients if c.transport is not None]
    await asyncio.gather(*(close(t) for t in transports if not t.is_disconnected))


async def wait_until(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(0.005)
    return True


async def measure_window(
    meter: Meter, warmup: float, duration: float, on_start: Callable[[], None]
) -> float:
    await asyncio.sleep(warmup)
    on_start()
    meter.start()
    await asyncio.sleep(duration)
    return meter.stop()


# ---------------------------------------------------------------------------
# Echo and latency
# ---------------------------------------------------------------------------


@dataclass
class EchoStats:
    received: int = 0
    errors: int = 0
    running: bool = True
    recording: bool = False
    samples: list[int] = field(default_factory=list)
    #: Messages written, and the most any connection had in flight at once.
    sent: int = 0
    max_in_flight: int = 0
    #: Reads that delivered at least one whole frame (window32 shape only).
    wakeups: int = 0


def masking_key() -> bytes:
    """A random key, never all zeros (a server could skip unmasking for it)."""
    while True:
        key = wire.random_mask()
        if any(key):
            return key


class EchoClient(Client):
    """Keeps ``window`` messages in flight; checks every echo's size.

    The load generator must cost less per message than any server, so it
    sends the way a server's reply path would not: frames are built and
    masked once in advance (a fixed random key per connection: the server
    still unmasks every byte; with deflate, each message is compressed on its
    own, once), and replacements go out in batches of a quarter window, in
    one write each, which keeps at least three quarters of the window in
    flight.  Every echo is still checked (decompressed, with deflate).
    """

    def __init__(self, stats: EchoStats, scenario: Scenario, payloads: Sequence[bytes]) -> None:
        super().__init__()
        self.stats = stats
        self.size = scenario.size
        self.window = scenario.window
        self.batch = max(1, scenario.window // 4)
        self.opcode = 0x1 if scenario.text else 0x2
        self.payloads = payloads
        self.key = masking_key()
        self.frames: list[bytes] = []
        self.next_payload = 0
        self.in_flight = 0
        self.pending = 0
        self.timing = scenario.kind == "latency"
        self.sent_at: deque[int] = deque()
        self.parts: list[bytes] = []
        self.partial = 0
        self.compressed = False

    def flush(self) -> None:
        """Send the ``pending`` messages in one write."""
        transport = self.transport
        assert transport is not None
        count, self.pending = self.pending, 0
        if not count:
            return
        payloads = self.payloads
        if not self.frames:
            codec = self.codec
            self.frames = [
                wire.client_frame(self.opcode, p, mask=self.key)
                if codec is None
                else wire.client_frame(
                    self.opcode, codec.compress_alone(p), rsv1=True, mask=self.key
                )
                for p in payloads
            ]
        if len(self.frames) == 1:
            frames = [self.frames[0]] * count
        else:
            frames = []
            for _ in range(count):
                frames.append(self.frames[self.next_payload])
                self.next_payload = (self.next_payload + 1) % len(payloads)
        self.in_flight += count
        stats = self.stats
        stats.sent += count
        if self.in_flight > stats.max_in_flight:
            stats.max_in_flight = self.in_flight
        if self.timing:
            self.sent_at.extend([time.perf_counter_ns()] * count)
        raw = transport.underlying_transport
        if len(frames) == 1:
            raw.write(frames[0])
        else:
            raw.write(b"".join(frames))

    def start(self) -> None:
        self.pending = self.window
        self.flush()

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        kind = frame.msg_type
        if kind is _BINARY or kind is _TEXT or kind is _CONTINUATION:
            if self.codec is None:
                self.partial += frame.payload_size
                if not frame.fin:
                    return
                size = self.partial
            else:
                if kind is not _CONTINUATION:
                    self.compressed = frame.rsv1
                self.parts.append(frame.get_payload_as_bytes())
                if not frame.fin:
                    return
                data = b"".join(self.parts)
                size = len(self.codec.decompress(data) if self.compressed else data)
                self.parts = []
            self.partial = 0
            stats = self.stats
            if size != self.size:
                stats.errors += 1
            stats.received += 1
            self.in_flight -= 1
            if self.timing:
                sent = self.sent_at.popleft()
                if stats.recording:
                    stats.samples.append(time.perf_counter_ns() - sent)
            if stats.running:
                self.pending += 1
                if self.pending >= self.batch and (frame.last_in_buffer or self.timing):
                    self.flush()
        elif kind is _CLOSE:
            self.on_close(transport, frame)


#: The most a window32 client asks the kernel to gather before waking it:
#: uvloop reads up to 256 KiB at a time, so waiting for more would only hold
#: replies back without saving a wake-up.
MAX_RCVLOWAT = 256 * 1024


def reply_frame_size(size: int) -> int:
    """Bytes of one unmasked server frame with ``size`` payload bytes.

    RFC 6455 section 5.2: a 2-byte header, plus 2 bytes of extended length
    from 126 bytes of payload on, 8 from 64 KiB on; no masking key.
    """
    if size < 126:
        return 2 + size
    if size < 1 << 16:
        return 4 + size
    return 10 + size


def wake_threshold(in_flight: int, frame_size: int, target: int) -> int:
    """The ``SO_RCVLOWAT`` for a client with ``in_flight`` replies outstanding.

    ``target`` unless fewer bytes are sure to arrive.  The kernel wakes the
    client only once that many bytes are queued, so a threshold above what
    can still arrive is never reached: the client (and the whole run) would
    sleep forever, which is what happens to the last batch when the load
    stops.  picows keeps a partial frame until it is whole, so at most
    ``frame_size - 1`` bytes of the outstanding replies have been read
    already: ``(in_flight - 1) * frame_size + 1`` bytes are sure to come.
    """
    if in_flight <= 0:
        return 1
    return max(1, min(target, (in_flight - 1) * frame_size + 1))


class Window32Client(EchoClient):
    """The "window32" load shape: a shallow window, woken in batches.

    At most ``scenario.window`` (32) messages in flight; the kernel wakes the
    client through ``SO_RCVLOWAT`` once half of the window's replies have
    arrived (at most ``MAX_RCVLOWAT`` bytes, never more than can still
    arrive: see ``wake_threshold``); every read's replacements go out in one
    write.  The server never has more than 32 messages to work on per
    connection, so a reply it holds back for a later loop iteration stalls
    the pipeline, which the deep shape hides.  Binary, without deflate: the
    reply size must be known to compute the threshold.
    """

    def __init__(self, stats: EchoStats, scenario: Scenario, payloads: Sequence[bytes]) -> None:
        if scenario.text or scenario.deflate:
            raise BenchError("the window32 shape sends binary messages without deflate")
        super().__init__(stats, scenario, payloads)
        self.frame_size = reply_frame_size(scenario.size)
        self.target = max(1, min(MAX_RCVLOWAT, scenario.window * self.frame_size // 2))
        self.lowat = 1
        self.sock: Any = None

    def on_ws_connected(self, transport: WSTransport) -> None:
        super().on_ws_connected(transport)
        self.sock = transport.underlying_transport.get_extra_info("socket")

    def set_wake_threshold(self) -> None:
        value = wake_threshold(self.in_flight, self.frame_size, self.target)
        if value != self.lowat:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, value)
            self.lowat = value

    def start(self) -> None:
        super().start()
        self.set_wake_threshold()

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        kind = frame.msg_type
        if kind is _BINARY or kind is _TEXT or kind is _CONTINUATION:
            self.partial += frame.payload_size
            if frame.fin:
                stats = self.stats
                if self.partial != self.size:
                    stats.errors += 1
                self.partial = 0
                stats.received += 1
                self.in_flight -= 1
                if stats.running:
                    self.pending += 1
            if frame.last_in_buffer:
                # Everything this wake-up delivered: replace it in one write,
                # then say how much to wait for next.
                self.stats.wakeups += 1
                self.flush()
                self.set_wake_threshold()
        elif kind is _CLOSE:
            self.on_close(transport, frame)


def percentile(sorted_values: Sequence[int], fraction: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(fraction * (len(sorted_values) - 1))))
    return float(sorted_values[index])


async def run_echo(
    url: str, scenario: Scenario, meter: Meter, warmup: float, duration: float
) -> dict[str, Any]:
    stats = EchoStats()
    payloads = json_messages(64, scenario.size) if scenario.text else [os.urandom(scenario.size)]
    client_class = Window32Client if scenario.shape == "window32" else EchoClient
    clients = [
        c
        for c in await open_many(
            url,
            scenario.connections,
            lambda: client_class(stats, scenario, payloads),
            deflate=scenario.deflate,
        )
        if isinstance(c, EchoClient)
    ]
    for client in clients:
        client.start()
    counts: dict[str, int] = {}

    def begin() -> None:
        counts["start"] = stats.received
        stats.recording = True

    wall = await measure_window(meter, warmup, duration, begin)
    done = stats.received - counts["start"]
    stats.recording = False
    stats.running = False
    drained = await wait_until(lambda: all(c.in_flight == 0 for c in clients), DRAIN_TIMEOUT)
    await close_all(clients)
    if stats.errors:
        raise BenchError(f"{stats.errors} echoes had the wrong size")
    if not drained:
        raise BenchError("echoes still missing after the drain timeout")
    result: dict[str, Any] = {
        "msgs_per_s": done / wall,
        "mib_per_s": done * scenario.size / wall / (1024 * 1024),
        "messages": done,
        # Over the whole run, warm-up and drain included: every message sent
        # came back, and the window held.
        "sent_total": stats.sent,
        "received_total": stats.received,
        "max_in_flight": stats.max_in_flight,
    }
    if scenario.shape == "window32":
        result["echoes_per_wakeup"] = stats.received / max(1, stats.wakeups)
    if scenario.kind == "latency":
        samples = sorted(stats.samples)
        result.update(
            p50_us=percentile(samples, 0.50) / 1000,
            p99_us=percentile(samples, 0.99) / 1000,
            samples=len(samples),
        )
    return result


# ---------------------------------------------------------------------------
# Handshakes
# ---------------------------------------------------------------------------


class HandshakeProtocol(asyncio.Protocol):
    """One open + close cycle, on a bare asyncio protocol.

    picows' ``ws_connect`` costs more CPU per connection than the fastest
    servers spend answering it; this does only what a handshake needs:
    send the upgrade request, check the 101 and its ``Sec-WebSocket-Accept``,
    send a masked Close, wait for the server's Close and its end of the TCP
    connection.
    """

    def __init__(self, host: str, done: asyncio.Future[None]) -> None:
        key = wire.random_key()
        self.accept = wire.accept_for(key).encode()
        self.request = wire.client_handshake("/", host=host, key=key)
        self.done = done
        self.buffer = b""
        self.upgraded = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # (uvloop's transports do not derive from asyncio.Transport.)
        self.transport = cast(asyncio.Transport, transport)
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.upgraded:
            return
        head, sep, rest = self.buffer.partition(b"\r\n\r\n")
        if not sep:
            return
        lines = head.split(b"\r\n")
        accept = b""
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"sec-websocket-accept":
                accept = value.strip()
        if not lines[0].startswith(b"HTTP/1.1 101") or accept != self.accept:
            self._fail(BenchError(f"bad handshake response: {lines[0]!r}"))
            return
        self.upgraded = True
        self.buffer = rest
        assert self.transport is not None
        self.transport.write(_CLOSE_FRAME)

    def eof_received(self) -> bool:
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        if self.done.done():
            return
        if not self.upgraded:
            self.done.set_exception(BenchError("connection lost during the handshake"))
        elif not self.buffer.startswith(b"\x88"):
            self.done.set_exception(BenchError("no Close frame from the server"))
        else:
            self.done.set_result(None)

    def _fail(self, error: Exception) -> None:
        if not self.done.done():
            self.done.set_exception(error)
        if self.transport is not None:
            self.transport.abort()


_CLOSE_FRAME = wire.close_frame(1000, mask=masking_key())


async def handshake_once(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    name = f"{host}:{port}"
    transport, _ = await loop.create_connection(lambda: HandshakeProtocol(name, done), host, port)
    try:
        await asyncio.wait_for(done, CLOSE_TIMEOUT)
    finally:
        transport.close()


async def run_handshake(
    url: str, scenario: Scenario, meter: Meter, warmup: float, duration: float
) -> dict[str, Any]:
    host, _, port_text = url.removeprefix("ws://").rstrip("/").partition(":")
    port = int(port_text)
    running = True
    completed = 0
    failures = 0

    async def worker() -> None:
        nonlocal completed, failures
        while running:
            try:
                await handshake_once(host, port)
            except Exception:
                failures += 1
                if failures > 100:
                    raise
                continue
            completed += 1

    counts: dict[str, int] = {}
    tasks = [asyncio.create_task(worker()) for _ in range(scenario.connections)]

    def begin() -> None:
        counts["start"] = completed

    window = asyncio.create_task(measure_window(meter, warmup, duration, begin))
    done, _ = await asyncio.wait([window, *tasks], return_when=asyncio.FIRST_COMPLETED)
    if window not in done:
        window.cancel()
        for task in done:
            task.result()  # re-raise the worker's error
    wall = await window
    finished = completed - counts["start"]
    running = False
    async with asyncio.timeout(CLOSE_TIMEOUT + CONNECT_TIMEOUT):
        await asyncio.gather(*tasks)
    return {"handshakes_per_s": finished / wall, "handshakes": finished, "failures": failures}


# ---------------------------------------------------------------------------
# Memory per idle connection
# ---------------------------------------------------------------------------


class OneShotClient(Client):
    """Sends one message, then idles; ``echoed`` is set when it comes back."""

    def __init__(self, payload: bytes, done: Callable[[], None]) -> None:
        super().__init__()
        self.payload = payload
        self.done = done
        self.parts: list[bytes] = []

    def send(self) -> None:
        assert self.transport is not None
        if self.codec is not None:
            self.transport.send(_TEXT, self.codec.compress(self.payload), rsv1=True)
        else:
            self.transport.send(_TEXT, self.payload)

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type is _CLOSE:
            self.on_close(transport, frame)
        elif frame.fin:
            self.done()


async def run_rss(
    url: str, scenario: Scenario, meter: Meter, warmup: float, duration: float
) -> dict[str, Any]:
    assert meter.server_pid is not None, "the rss scenario needs --server-pid"
    payload = json_messages(1, scenario.size)[0]
    echoed = 0

    def done() -> None:
        nonlocal echoed
        echoed += 1

    # Warm up: the first connections import and allocate what every later
    # one shares; then the baseline.
    warm = await open_many(url, 10, lambda: OneShotClient(payload, done), deflate=scenario.deflate)
    for client in warm:
        assert isinstance(client, OneShotClient)
        client.send()
    await wait_until(lambda: echoed >= len(warm), DRAIN_TIMEOUT)
    await close_all(warm)
    await asyncio.sleep(0.5)
    before = process_rss_kib(meter.server_pid)
    echoed = 0
    meter.start()
    clients = await open_many(
        url, scenario.connections, lambda: OneShotClient(payload, done), deflate=scenario.deflate
    )
    for client in clients:
        assert isinstance(client, OneShotClient)
        client.send()
    if not await wait_until(lambda: echoed >= len(clients), DRAIN_TIMEOUT):
        raise BenchError(f"only {echoed} of {len(clients)} messages were echoed")
    await asyncio.sleep(min(1.0, duration))  # let the server settle
    after = process_rss_kib(meter.server_pid)
    meter.stop()
    await close_all(clients)
    return {
        "kib_per_conn": (after - before) / len(clients),
        "rss_before_kib": before,
        "rss_after_kib": after,
        "open_connections": len(clients),
    }


# ---------------------------------------------------------------------------
# Broadcast
# ---------------------------------------------------------------------------


@dataclass
class BroadcastStats:
    per_round: int
    command: bytes
    received: int = 0
    issued: int = 0
    threshold: int = 0
    running: bool = True
    stalls: int = 0
    sender: WSTransport | None = None

    def issue(self) -> None:
        assert self.sender is not None
        self.sender.send(_TEXT, self.command)
        self.issued += 1
        # At most two commands in flight: the next one goes when all but
        # the last one's deliveries have arrived.
        self.threshold = (self.issued - 1) * self.per_round


class BroadcastClient(Client):
    def __init__(self, stats: BroadcastStats) -> None:
        super().__init__()
        self.stats = stats

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        kind = frame.msg_type
        if kind is _TEXT or kind is _CONTINUATION or kind is _BINARY:
            if frame.fin:
                stats = self.stats
                stats.received += 1
                if stats.running and stats.received >= stats.threshold:
                    stats.issue()
        elif kind is _CLOSE:
            self.on_close(transport, frame)


async def run_broadcast(
    url: str, scenario: Scenario, meter: Meter, warmup: float, duration: float
) -> dict[str, Any]:
    stats = BroadcastStats(
        per_round=scenario.connections * scenario.broadcast_count,
        command=f"broadcast:{scenario.broadcast_count}:{scenario.size}".encode(),
    )
    clients = await open_many(
        url, scenario.connections, lambda: BroadcastClient(stats), deflate=False
    )
    stats.sender = clients[0].transport
    stats.issue()
    stats.issue()

    async def watchdog() -> None:
        # A server that drops deliveries would stop the command flow.
        last = -1
        while stats.running:
            await asyncio.sleep(0.25)
            if stats.received == last and stats.running:
                stats.stalls += 1
                stats.issue()
            last = stats.received

    guard = asyncio.create_task(watchdog())
    counts: dict[str, int] = {}

    def begin() -> None:
        counts["start"] = stats.received

    wall = await measure_window(meter, warmup, duration, begin)
    delivered = stats.received - counts["start"]
    stats.running = False
    await guard
    expected = stats.issued * stats.per_round
    await wait_until(lambda: stats.received >= expected, DRAIN_TIMEOUT)
    closed = sum(1 for c in clients if c.close_received)
    await close_all(clients)
    return {
        "deliveries_per_s": delivered / wall,
        "deliveries": delivered,
        "lost": expected - stats.received,
        "stalls": stats.stalls,
        "closed_by_server": closed,
    }


# ---------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------

Runner = Callable[[str, Scenario, Meter, float, float], Awaitable[dict[str, Any]]]
# ---------------------------------------------------------------------------
# Plain HTTP
# ---------------------------------------------------------------------------


@dataclass
class HTTPStats:
    running: bool = True
    recording: bool = False
    sent: int = 0
    received: int = 0
    errors: list[str] = field(default_factory=list)


class HTTPClient(asyncio.Protocol):
    """One keep-alive connection, one ``GET /`` in flight."""

    REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"

    def __init__(self, stats: HTTPStats) -> None:
        self.stats = stats
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.in_flight = 0
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.send()

    def send(self) -> None:
        assert self.transport is not None
        self.transport.write(self.REQUEST)
        self.in_flight += 1
        self.stats.sent += 1

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        while True:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buffer[:end]).lower()
            at = head.find(b"\r\ncontent-length:")
            if not head.startswith(b"http/1.1 200 ") or at < 0:
                self.fail(f"unexpected response head {head[:80]!r}")
                return
            line_end = head.find(b"\r\n", at + 2)
            length = int(head[at + 17 : line_end if line_end >= 0 else len(head)])
            total = end + 4 + length
            if len(buffer) < total:
                return
            del buffer[:total]
            self.in_flight -= 1
            self.stats.received += 1
            if self.stats.running:
                self.send()

    def fail(self, error: str) -> None:
        self.stats.errors.append(error)
        if self.transport is not None:
            self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.in_flight and self.stats.running:
            self.stats.errors.append(f"connection lost with a request in flight: {exc}")
        if not self.closed.done():
            self.closed.set_result(None)


async def run_http(
    url: str, scenario: Scenario, meter: Meter, warmup: float, duration: float
) -> dict[str, Any]:
    port = int(url.rsplit(":", 1)[1].strip("/"))
    stats = HTTPStats()
    loop = asyncio.get_running_loop()
    clients: list[HTTPClient] = []
    for _ in range(scenario.connections):
        _, client = await asyncio.wait_for(
            loop.create_connection(lambda: HTTPClient(stats), "127.0.0.1", port), CONNECT_TIMEOUT
        )
        clients.append(client)
    counts: dict[str, int] = {}

    def begin() -> None:
        counts["start"] = stats.received

    wall = await measure_window(meter, warmup, duration, begin)
    done = stats.received - counts["start"]
    stats.running = False
    drained = await wait_until(lambda: all(c.in_flight == 0 for c in clients), DRAIN_TIMEOUT)
    for client in clients:
        if client.transport is not None:
            client.transport.close()
    await asyncio.wait_for(asyncio.gather(*(c.closed for c in clients)), CLOSE_TIMEOUT)
    if stats.errors:
        raise BenchError(f"{len(stats.errors)} errors, first: {stats.errors[0]}")
    if not drained:
        raise BenchError("responses still missing after the drain timeout")
    return {"requests_per_s": done / wall, "messages": done, "sent_total": stats.sent}


RUNNERS: dict[str, Runner] = {
    "latency": run_echo,
    "echo": run_echo,
    "handshake": run_handshake,
    "rss": run_rss,
    "broadcast": run_broadcast,
    "http": run_http,
}


async def run_scenario(
    url: str,
    scenario: Scenario,
    *,
    server_pid: int | None,
    warmup: float,
    duration: float,
) -> dict[str, Any]:
    """Run one scenario; the figures plus the CPU use of both processes."""
    meter = Meter(server_pid)
    result = await RUNNERS[scenario.kind](url, scenario, meter, warmup, duration)
    result.update(meter.result)
    # CPU time per operation: unlike rates, it hardly depends on how much of
    # its core a process got, so it stays comparable on a shared machine.
    operations = result.get("messages") or result.get("handshakes") or result.get("deliveries")
    if operations:
        result["server_cpu_us_per_op"] = 1e6 * meter.result["server_cpu_s"] / operations
        result["client_cpu_us_per_op"] = 1e6 * meter.result["client_cpu_s"] / operations
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="wsserver benchmark load generator")
    parser.add_argument("--url", required=True, help="ws://127.0.0.1:PORT/")
    parser.add_argument("--scenario", required=True)
    parser.add_argument("--server-pid", type=int, default=None)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--quick", action="store_true", help="scaled-down scenario")
    parser.add_argument(
        "--loop",
        choices=("uvloop", "asyncio"),
        default="uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
    )
    args = parser.parse_args(argv)
    if not args.url.startswith("ws://127.0.0.1:"):
        parser.error("the benchmarks only talk to ws://127.0.0.1")
    scenario = scenario_by_name(args.scenario)
    if args.quick:
        scenario = quick_scenario(scenario)
    raise_open_file_limit()
    coro = run_scenario(
        args.url,
        scenario,
        server_pid=args.server_pid,
        warmup=args.warmup,
        duration=args.duration,
    )
    try:
        if args.loop == "uvloop":
            import uvloop

            result = uvloop.run(coro)
        else:
            result = asyncio.run(coro)
    except (BenchError, OSError, TimeoutError) as error:
        print(json.dumps({"error": f"{type(error).__name__}: {error}"}))
        return 1
    result["scenario"] = scenario.name
    result["connections"] = scenario.connections
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
