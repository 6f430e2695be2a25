"""Threat scenarios of issue 5, "Hostile input and faults", end to end.

One test (or one parametrised test) per threat.  Each reproduces the attack
against a real server on loopback, or against ``ServerConnection`` in-process
where a deterministic count is the point, and would fail without the
protection it names: docs/security.md lists, for every attack, what the
attacker gets and which test shows it, including the threats covered
elsewhere (ping floods, slow readers, handler exceptions, origin checks).

Costs are counted, not timed, wherever a count exists (``bytes_examined``,
bytes unmasked, Python line events); where only time can tell (C code), the
test compares the CPU time (``process_time``) of N and 4N with a generous
bound.  Memory is measured with ``tracemalloc``.  Every loop is bounded in
count, every wait by a timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import socket
import struct
import sys
import time
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import FrameType, ModuleType
from typing import Any

import pytest

import wsserver.protocol
from wsserver.protocol import (
    BinaryMessage,
    ProtocolSettings,
    ServerConnection,
    TextMessage,
    WebSocketRequest,
)
from wsserver.server.app import Application
from wsserver.server.asgi import ASGIApp
from wsserver.server.requests import Request
from wsserver.server.responses import Response
from wsserver.server.websocket import Disconnect, WebSocket
from wsserver.testing.wire import client_frame

from .protocol._counting import CountingMask
from .protocol._interpreted import interpreted
from .server.helpers import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONT,
    OP_TEXT,
    TIMEOUT,
    Frame,
    FunctionApp,
    Harness,
    RawClient,
    echo_text_close_on_request,
    handshake_request,
    harness,
    mask_frame,
    only_connection,
    open_fds,
    tls_contexts,
    wait_until,
    ws_client,
)

#: What asyncio's selector transport reads from a socket at once.
ONE_READ = 256 * 1024
KIB, MIB = 1024, 1024 * 1024

TraceFunction = Callable[[FrameType, str, Any], Any]

#: RSV1, as the ``rsv`` argument of ``mask_frame``: a compressed message.
RSV1 = 0b100


@pytest.fixture
async def h() -> AsyncIterator[Harness]:
    async with harness() as h:
        yield h


async def recording(ended: asyncio.Future[Disconnect], websocket: WebSocket) -> None:
    """Accept, echo, and report how the connection ended."""
    await websocket.accept()
    while True:
        message = await websocket.receive()
        if isinstance(message, Disconnect):
            if not ended.done():
                ended.set_result(message)
            return
        if isinstance(message, TextMessage):
            await websocket.send_text(message.data)
        else:
            await websocket.send_bytes(message.data)


#: Builds an echo application and the future of how its connection ended.
RecordingApp = Callable[[], "tuple[Application, asyncio.Future[Disconnect]]"]


def recording_app() -> tuple[Application, asyncio.Future[Disconnect]]:
    ended: asyncio.Future[Disconnect] = asyncio.get_running_loop().create_future()

    async def handler(websocket: WebSocket) -> None:
        await recording(ended, websocket)

    return FunctionApp(handler), ended


def asgi_recording_app() -> tuple[Application, asyncio.Future[Disconnect]]:
    """``recording_app`` written as an ASGI application, served by ``ASGIApp``."""
    ended: asyncio.Future[Disconnect] = asyncio.get_running_loop().create_future()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "websocket":
            raise RuntimeError("websocket only")  # no lifespan: tolerated
        await receive()
        await send({"type": "websocket.accept"})
        while True:
            event = await receive()
            if event["type"] == "websocket.disconnect":
                if not ended.done():
                    ended.set_result(Disconnect(event["code"], event["reason"]))
                return
            await send(
                {"type": "websocket.send", **{k: v for k, v in event.items() if k != "type"}}
            )

    return ASGIApp(app), ended


@pytest.fixture(params=["native", "asgi"])
def make_recording_app(
    request: pytest.FixtureRequest,
) -> RecordingApp:
    """The threats below, against a native endpoint and an ASGI application."""
    return recording_app if request.param == "native" else asgi_recording_app


def open_connection(settings: ProtocolSettings | None = None) -> ServerConnection:
    """A ``ServerConnection`` past its handshake (in-process, no compression)."""
    connection = ServerConnection(settings, deflate=None)
    connection.receive_data(handshake_request())
    assert isinstance(connection.next_event(), WebSocketRequest)
    connection.accept()
    connection.data_to_send()
    return connection


async def send_and_measure(raw: RawClient, data: bytes) -> tuple[Frame, int]:
    """Send ``data``, read the server's next frame other than a ping, and
    return it with this process's peak traced memory meanwhile (bytes)."""
    gc.collect()
    tracemalloc.start()
    try:
        await raw.send(data)
        frame = await raw.recv_non_ping()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return frame, peak


def count_lines(function: Callable[[], object], package: ModuleType = wsserver.protocol) -> int:
    """Python lines executed in ``package`` while ``function`` runs.

    Deterministic for a given input, unlike time: a work counter for parsers
    written in Python.  The compiled build runs no Python lines in
    ``wsserver.protocol``: count on ``interpreted()``, its source run by the
    interpreter (tests/protocol/_interpreted.py).
    """
    directory = os.path.dirname(package.__file__ or "")
    count = 0

    def local(frame: FrameType, event: str, arg: object) -> TraceFunction:
        nonlocal count
        if event == "line":
            count += 1
        return local

    def tracer(frame: FrameType, event: str, arg: object) -> TraceFunction | None:
        if not frame.f_code.co_filename.startswith(directory):
            return None  # no line events in this frame
        return local

    # Put back whatever traced before (coverage.py's tracer, when scripts/test
    # measures coverage): clearing it would stop the measurement for every
    # test after this one.
    previous = sys.gettrace()
    sys.settrace(tracer)
    try:
        function()
    finally:
        sys.settrace(previous)
    return count


def best_cpu_time(function: Callable[[], object], repeat: int = 3) -> float:
    """The smallest CPU time of ``repeat`` runs (not wall-clock time)."""
    best = float("inf")
    for _ in range(repeat):
        started = time.process_time()
        function()
        best = min(best, time.process_time() - started)
    return best


# ---------------------------------------------------------------------------
# Decompression bombs
# ---------------------------------------------------------------------------


def deflate_raw(data: bytes, wbits: int = 15) -> bytes:
    """``data`` compressed as a permessage-deflate payload (RFC 7692 7.2.1)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -wbits)
    compressed = compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
    assert compressed.endswith(b"\x00\x00\xff\xff")
    return compressed[:-4]


def compressed_frames(payload: bytes, fragments: int) -> bytes:
    """One compressed binary message, split into ``fragments`` frames."""
    size = -(-len(payload) // fragments)
    pieces = [payload[i : i + size] for i in range(0, len(payload), size)]
    return b"".join(
        mask_frame(
            OP_BINARY if i == 0 else OP_CONT,
            piece,
            fin=i == len(pieces) - 1,
            rsv=RSV1 if i == 0 else 0,
        )
        for i, piece in enumerate(pieces)
    )


@pytest.mark.parametrize("fragments", [1, 64], ids=["one-frame", "64-fragments"])
async def test_decompression_bomb_is_stopped_at_the_limit_with_1009(
    h: Harness,
    fragments: int,
    make_recording_app: RecordingApp,
) -> None:
    """Threat: a decompression bomb, 16 KiB on the wire inflating to 16 MiB.

    Protection: inflation is bounded by what is left of
    ``ProtocolSettings.max_message_size`` (zlib is never asked for more than
    the limit + 1 bytes, across fragments), so the connection fails with
    1009 having held about the limit, never the inflated size.
    (CVE-2018-1000518 in websockets, aiohttp #11898, Bandit CVE-2026-39804.)
    """
    limit = 1 * MIB
    bomb = 16 * limit
    app, ended = make_recording_app()
    server = await h.serve(app, protocol=ProtocolSettings(max_message_size=limit))
    raw = await h.raw(server)
    await raw.send(handshake_request(extra="Sec-WebSocket-Extensions: permessage-deflate\r\n"))
    status, headers = await raw.response_head()
    assert status == 101
    assert headers["sec-websocket-extensions"] == "permessage-deflate"
    compressed = deflate_raw(bytes(bomb))
    assert len(compressed) < bomb // 512  # a small message on the wire
    frames = compressed_frames(compressed, fragments)

    frame, peak = await send_and_measure(raw, frames)
    assert frame.opcode == OP_CLOSE
    assert frame.close_code == 1009
    assert "after decompression" in frame.close_reason
    # Twice the limit (zlib's output blocks, then the bytes object they are
    # joined into), plus socket reads; the whole bomb would be 16 MiB, 32
    # with its pieces joined.
    assert peak < 2 * limit + 2 * ONE_READ, peak
    assert (await asyncio.wait_for(ended, TIMEOUT)).code == 1009


# ---------------------------------------------------------------------------
# Huge declared lengths
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("declared", [2**62, MIB + 1], ids=["2**62", "limit+1"])
async def test_declared_length_over_the_limit_fails_at_once_from_the_header(
    h: Harness,
    declared: int,
    make_recording_app: RecordingApp,
) -> None:
    """Threat: a frame header declaring more than the limit (up to 2**62).

    Protection: the reader checks the length against
    ``max_frame_size``/``max_message_size`` as soon as the length bytes are
    in, before the masking key or any payload: 1009 at once, nothing
    allocated for the declared size.
    """
    app, ended = make_recording_app()
    server = await h.serve(app, protocol=ProtocolSettings(max_message_size=MIB))
    raw = await h.raw(server)
    await raw.handshake()
    # Only the 10 header bytes: no masking key, no payload.
    header = client_frame(OP_BINARY, length=declared, length_bits=64)[:10]
    frame, peak = await send_and_measure(raw, header)
    assert frame.opcode == OP_CLOSE
    assert frame.close_code == 1009
    assert f"frame of {declared} bytes" in frame.close_reason
    assert peak < 2 * ONE_READ, peak
    assert (await asyncio.wait_for(ended, TIMEOUT)).code == 1009


async def test_declared_length_within_the_limit_allocates_nothing_and_times_out(
    h: Harness,
) -> None:
    """Threat: a frame declaring 64 MiB - 1 (within the limit) that never ends.

    Protection: the reader never allocates for a declared length (payload
    is processed as it arrives; a large binary frame's buffer starts at
    1 MiB of address space, whose pages are committed only as bytes arrive,
    and grows with what arrived), and ``receive_timeout`` counts whole
    messages, not bytes: a frame trickled a byte at a time still gets the
    1001 "idle timeout" Close, then the abort after ``close_timeout``.
    """
    limit = 64 * MIB
    receive_timeout, close_timeout = 0.4, 0.3
    server = await h.serve(
        protocol=ProtocolSettings(max_message_size=limit),
        receive_timeout=receive_timeout,
        close_timeout=close_timeout,
    )
    raw = await h.raw(server)
    opened = time.monotonic()  # the server's timer starts later, at its accept
    await raw.handshake()
    header = client_frame(OP_BINARY, length=limit - 1)  # the header and a random key

    async def trickle() -> None:
        for _ in range(200):  # at most 10 s; cancelled once the Close arrives
            await asyncio.sleep(0.05)
            await raw.send(b"\x00")

    gc.collect()
    tracemalloc.start()
    trickling: asyncio.Task[None] | None = None
    try:
        await raw.send(header + bytes(4 * KIB))
        trickling = asyncio.create_task(trickle())
        frame = await raw.recv_non_ping()
        idle = time.monotonic() - opened
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        if trickling is not None:
            trickling.cancel()
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await trickling
    assert (frame.opcode, frame.close_code, frame.close_reason) == (OP_CLOSE, 1001, "idle timeout")
    assert idle >= receive_timeout * 0.9
    assert peak < MIB + 2 * ONE_READ, peak  # nothing near the declared 64 MiB
    # The client cannot answer the Close from inside its frame: aborted.
    await wait_until(lambda: not server.connections)


# ---------------------------------------------------------------------------
# Bytes trickled one at a time
# ---------------------------------------------------------------------------


def filler_head(size: int, extra: str = "") -> bytes:
    """A WebSocket handshake padded with 1000-byte header lines to ``size``."""
    base = handshake_request(extra=extra)
    lines = "".join(
        f"X-Filler-{i:03d}: {'v' * 984}\r\n" for i in range(max(0, size - len(base)) // 1000)
    )
    head = handshake_request(extra=extra + lines)
    assert len(head) <= size + 1000
    return head


def examined_bytewise(head: bytes, settings: ProtocolSettings | None = None) -> int:
    """Feed ``head`` one byte at a time; the HTTP phase's ``bytes_examined``."""
    connection = ServerConnection(settings)
    phase = connection._http
    assert phase is not None
    for i in range(len(head)):
        connection.receive_data(head[i : i + 1])
    assert isinstance(connection.next_event(), WebSocketRequest)
    connection.accept()
    return phase.bytes_examined


def test_handshake_trickled_byte_by_byte_costs_linear_work() -> None:
    """Threat: a request head sent one byte per packet (a slowloris variant
    that also tries for quadratic parsing).

    Protection: the head scanner resumes where it stopped
    (``HTTPPhase.bytes_examined`` counts every byte it looks at): each byte
    is examined once, plus the request line once more, however the input
    is split; h11 gets the head once, whole.
    """
    settings = ProtocolSettings()
    small, large = filler_head(15 * KIB), filler_head(60 * KIB)
    work_small = examined_bytewise(small)
    work_large = examined_bytewise(large)
    assert len(small) <= work_small <= len(small) + settings.max_request_line
    assert len(large) <= work_large <= len(large) + settings.max_request_line
    assert 3.5 <= work_large / work_small <= 4.5


async def test_handshake_trickled_over_loopback_is_scanned_once(h: Harness) -> None:
    """Threat: the same trickled head, end to end (one byte per TCP send).

    Protection: as above; the asyncio layer hands each read to the core
    without accumulating anything of its own.
    """
    server = await h.serve()
    raw = await h.raw(server)
    raw.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    head = filler_head(8 * KIB)
    await raw.send(head[:1])
    await wait_until(lambda: len(server.connections) == 1)
    connection = only_connection(server)
    phase = connection.protocol._http
    assert phase is not None
    for i in range(1, len(head)):
        await raw.send(head[i : i + 1])
        await asyncio.sleep(0)  # let the server read this byte on its own
    status, _ = await raw.response_head()
    assert status == 101
    assert connection._bytes_in == len(head)
    assert len(head) <= phase.bytes_examined <= len(head) + ProtocolSettings().max_request_line


def piecewise_message(payload: bytes, opcode: int, piece: int = 1) -> Callable[[], None]:
    """A run feeding one message ``piece`` bytes at a time through ServerConnection."""
    stream = mask_frame(opcode, payload)

    def run() -> None:
        connection = open_connection()
        view = memoryview(stream)
        events = []
        largest = 0
        for i in range(0, len(stream), piece):
            connection.receive_data(view[i : i + piece])
            largest = max(largest, connection.buffered)
            event = connection.next_event()
            if event is not None:
                events.append(event)
        (message,) = events
        assert isinstance(message, TextMessage | BinaryMessage)
        assert message.data == (payload.decode() if opcode == OP_TEXT else payload)
        # Never more than a frame header (and a piece) waits in the buffer:
        # no byte is kept to be looked at again.
        assert largest <= 14 + piece

    return run


@pytest.mark.parametrize("opcode", [OP_BINARY, OP_TEXT], ids=["binary", "text"])
def test_frames_trickled_byte_by_byte_cost_linear_cpu(
    opcode: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Threat: a message sent one byte per packet, to make the server redo
    work on every read.

    Protection: the reader unmasks, checks and stores each payload byte as
    it arrives, keeps at most a frame header buffered, and assembles the
    message without copying it again and again.  Counted: every payload
    byte is unmasked exactly once, the buffer never holds more than a
    header.  Timed (CPU, not wall clock): 4x the bytes cost about 4x, far
    from the 16x of quadratic work, fed one byte at a time; and again in
    16-byte pieces up to the 1 MiB limit, where a quadratic copy of the
    message so far would show (with 1-byte pieces, at sizes a test can
    afford, the fixed cost of each read hides it).
    """
    counter = CountingMask().install(monkeypatch)
    piecewise_message(b"a" * (16 * KIB), opcode)()
    assert counter.bytes == 16 * KIB
    monkeypatch.undo()
    for piece, small in ((1, 16 * KIB), (16, 256 * KIB)):
        cpu_small = best_cpu_time(piecewise_message(b"a" * small, opcode, piece), repeat=2)
        cpu_large = best_cpu_time(piecewise_message(b"a" * (4 * small), opcode, piece), repeat=2)
        assert cpu_large / cpu_small < 8, (piece, cpu_small, cpu_large)


@pytest.mark.parametrize("opcode", [OP_BINARY, OP_TEXT], ids=["binary", "text"])
def test_message_trickled_in_tiny_reads_holds_memory_near_its_size(opcode: int) -> None:
    """Threat: a message trickled in 2-byte reads, so that the server holds
    one Python object per read (aiohttp PR #13350: "held ~28x its size").
    Measured today: 22x for binary, 30x for text, so ``max_message_size``
    does not bound what a connection holds.

    Protection wanted: memory held for a message in progress stays within a
    small multiple of its size, as ``max_message_size`` promises.
    """
    size = 128 * KIB
    payload = b"a" * size
    stream = mask_frame(opcode, payload)
    connection = open_connection()
    view = memoryview(stream)
    gc.collect()
    tracemalloc.start()
    try:
        # All but the last two bytes: the message stays in progress.
        for i in range(0, len(stream) - 2, 2):
            connection.receive_data(view[i : i + 2])
            assert connection.next_event() is None
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * size, f"{peak / size:.0f}x the message size"


# ---------------------------------------------------------------------------
# Header floods
# ---------------------------------------------------------------------------


def _line(n: int) -> str:
    return "v" * n


@pytest.mark.parametrize(
    ("head", "status", "reason"),
    [
        (
            b"GET /" + b"a" * (9 * KIB) + b" HTTP/1.1\r\nHost: x\r\n\r\n",
            414,
            b"request line too long",
        ),
        (handshake_request(extra=f"X-Long: {_line(9 * KIB)}\r\n"), 431, b"header line too long"),
        (
            handshake_request(extra="".join(f"X-{i}: v\r\n" for i in range(129))),
            431,
            b"too many header fields",
        ),
        (
            handshake_request(extra="".join(f"X-{i}: {_line(8000)}\r\n" for i in range(9))),
            431,
            b"request head too large",
        ),
    ],
    ids=["long-request-line", "long-header-line", "too-many-headers", "head-too-large"],
)
async def test_header_floods_get_414_or_431(
    h: Harness, head: bytes, status: int, reason: bytes
) -> None:
    """Threat: over-long request lines, header lines, too many headers, a
    huge head (Node ws CVE-2024-37890: a crash on too many headers).

    Protection: the head scanner enforces ``max_request_line`` (414),
    ``max_header_line``, ``max_headers`` and ``max_head_size`` (431) before
    h11 sees the head; the application never runs; the server closes.
    """
    ran: list[bool] = []

    async def handler(websocket: WebSocket) -> None:
        ran.append(True)
        await websocket.accept()

    server = await h.serve(FunctionApp(handler))
    raw = await h.raw(server)
    with contextlib.suppress(ConnectionResetError, BrokenPipeError):
        await raw.send(head)
    code, headers = await raw.response_head()
    assert code == status
    body = await raw.read_exactly(int(headers["content-length"]))
    assert reason in body
    assert await raw.read_to_eof() == b""
    raw.close()
    assert ran == []
    await wait_until(lambda: not server.connections)


#: (header, prefix, unit, suffix): values built to make a backtracking
#: parser explode, the unit repeated to the size wanted.
HOSTILE_HEADER_VALUES = [
    # websocket-extensions GHSA-g78m-2chm-r7qv: an unclosed quoted string.
    ("Sec-WebSocket-Extensions", 'permessage-deflate; x="', "\\a", ""),
    ("Sec-WebSocket-Extensions", "x; y=", '"\\', ""),
    ("Sec-WebSocket-Extensions", "permessage-deflate", "; a", ""),
    ("Sec-WebSocket-Extensions", "", "permessage-deflate; x, ", "permessage-deflate"),
    # ws CVE-2021-32640: spaces with no comma in Sec-WebSocket-Protocol.
    ("Sec-WebSocket-Protocol", "b", " ", "x"),
    ("Sec-WebSocket-Protocol", "", ", ", "chat"),
    ("Sec-WebSocket-Protocol", "", "chat,", "chat"),
    ("Connection", "Upgrade", ", ", "Upgrade"),
]
HOSTILE_IDS = [f"{n}:{p}{u}...{s}" for n, p, u, s in HOSTILE_HEADER_VALUES]


def _hostile_request(name: str, prefix: str, unit: str, suffix: str, size: int) -> bytes:
    value = prefix + unit * ((size - len(prefix) - len(suffix)) // len(unit)) + suffix
    return handshake_request(extra=f"{name}: {value}\r\n")


def _handshake_work(request: bytes, protocol: ModuleType = wsserver.protocol) -> Callable[[], None]:
    """A whole handshake of ``request`` through ``protocol``'s ServerConnection."""
    settings = protocol.ProtocolSettings(max_header_line=1 * MIB, max_head_size=2 * MIB)

    def run() -> None:
        connection = protocol.ServerConnection(settings)
        connection.receive_data(request)
        event = connection.next_event()
        if isinstance(event, protocol.WebSocketRequest):
            connection.accept()  # negotiates permessage-deflate on the offers

    return run


@pytest.mark.parametrize(
    ("name", "prefix", "unit", "suffix"), HOSTILE_HEADER_VALUES, ids=HOSTILE_IDS
)
def test_hostile_handshake_headers_are_parsed_in_linear_time(
    name: str, prefix: str, unit: str, suffix: str
) -> None:
    """Threat: extension and subprotocol headers built to trigger
    backtracking (ReDoS: ws CVE-2021-32640, websocket-extensions
    GHSA-g78m-2chm-r7qv), or negotiation work per offer.

    Protection: the header parsers are hand-written scanners that never step
    back, and ``negotiate`` looks at each offer once.  Counted: the Python
    lines the core runs for the whole handshake grow 4x for 4x the input;
    timed (CPU): well under the 16x of quadratic work, so no regular
    expression took over either.
    """
    small_request = _hostile_request(name, prefix, unit, suffix, 16 * KIB)
    large_request = _hostile_request(name, prefix, unit, suffix, 64 * KIB)
    # Lines counted on the source run by the interpreter, CPU timed on the
    # build under test (compiled or not).
    source = interpreted()
    lines_small = count_lines(_handshake_work(small_request, source), source)
    lines_large = count_lines(_handshake_work(large_request, source), source)
    small, large = _handshake_work(small_request), _handshake_work(large_request)
    assert lines_small > 4 * KIB  # the counter does see the parsing
    assert 3.5 <= lines_large / lines_small <= 4.5, (lines_small, lines_large)
    cpu_small, cpu_large = best_cpu_time(small), best_cpu_time(large)
    assert cpu_large / cpu_small < 8, (cpu_small, cpu_large)


@pytest.mark.parametrize(
    ("name", "prefix", "unit", "suffix"), HOSTILE_HEADER_VALUES, ids=HOSTILE_IDS
)
async def test_hostile_handshake_headers_get_an_answer_end_to_end(
    h: Harness, name: str, prefix: str, unit: str, suffix: str
) -> None:
    """Threat: the same values at the default header line limit, over TCP.

    Protection: as above; the answer is a 101 or a 400, never a stall.
    """
    server = await h.serve()
    raw = await h.raw(server)
    await raw.send(_hostile_request(name, prefix, unit, suffix, 8000))
    status, _ = await raw.response_head()
    assert status in (101, 400)


# ---------------------------------------------------------------------------
# Slow handshakes (slowloris)
# ---------------------------------------------------------------------------


async def test_slowloris_handshakes_are_closed_by_the_open_timeout(h: Harness) -> None:
    """Threat: slowloris, 200 connections each trickling a request head.

    Protection: ``open_timeout`` runs from the connection's first moment and
    bytes do not extend it: every slow connection is closed without a
    response, while a normal client connects and echoes meanwhile.
    """
    count, open_timeout = 200, 1.5
    server = await h.serve(open_timeout=open_timeout, backlog=count)
    head = handshake_request()
    closed_after: list[float] = []

    async def slow_client() -> None:
        raw = await h.raw(server)
        raw.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        started = time.monotonic()
        received = b""
        for i in range(100):  # one byte every 50 ms: 5 s at most
            try:
                await raw.send(head[i : i + 1])
                received = await raw.read_to_eof(timeout=0.05)
            except TimeoutError:
                continue
            except (ConnectionResetError, BrokenPipeError):
                pass
            break
        else:
            raise AssertionError("a slow client was never closed")
        assert received == b""  # no response, just the end
        closed_after.append(time.monotonic() - started)

    slow = [asyncio.create_task(slow_client()) for _ in range(count)]
    await wait_until(lambda: len(server.connections) == count)
    async with ws_client(server) as ws:
        await ws.send("served meanwhile")
        assert await ws.recv() == "served meanwhile"
    assert len(server.connections) >= count  # the slow ones are still there
    await asyncio.wait_for(asyncio.gather(*slow), 4 * TIMEOUT)
    assert len(closed_after) == count
    assert min(closed_after) >= open_timeout * 0.9
    await wait_until(lambda: not server.connections)


async def test_slow_tls_handshake_is_closed_by_the_open_timeout(h: Harness, tmp_path: Path) -> None:
    """Threat: slowloris on the TLS handshake (a ClientHello never finished).

    Protection wanted: ``open_timeout`` bounds it as it bounds a slow
    request head.
    """
    server_context, _ = tls_contexts(tmp_path)
    server = await h.serve(open_timeout=0.3, ssl_context=server_context)
    raw = await h.raw(server)
    await raw.send(b"\x16\x03\x01")  # the start of a TLS record, never finished
    assert await raw.read_to_eof(timeout=3.0) == b""


# ---------------------------------------------------------------------------
# Fragment storms
# ---------------------------------------------------------------------------


async def test_fragment_storm_is_cut_off_after_max_fragments_with_1009(
    h: Harness,
    monkeypatch: pytest.MonkeyPatch,
    make_recording_app: RecordingApp,
) -> None:
    """Threat: a 16 MiB message sent as 1-byte fragments (each costs a
    header parse and a stored piece; 112 MB on the wire).

    Protection: ``max_fragments`` (4,096): the connection fails with 1009
    right after fragment 4,097, having parsed that many frames and no more
    (counted: payload pieces unmasked), though the size limit is 16 MiB.
    """
    max_fragments = ProtocolSettings().max_fragments
    counter = CountingMask().install(monkeypatch)
    app, ended = make_recording_app()
    server = await h.serve(app, protocol=ProtocolSettings(max_message_size=16 * MIB))
    raw = await h.raw(server)
    await raw.handshake()
    first = mask_frame(OP_BINARY, b"x", fin=False)
    batch = mask_frame(OP_CONT, b"x", fin=False) * 8192

    async def storm() -> None:
        await raw.send(first)
        for _ in range(16 * MIB // 8192):  # the whole 16 MiB at most
            await raw.send(batch)

    storming = asyncio.create_task(storm())
    try:
        frame = await raw.recv_non_ping()
    finally:
        storming.cancel()
        with contextlib.suppress(asyncio.CancelledError, OSError):
            await storming
    assert frame.opcode == OP_CLOSE
    assert frame.close_code == 1009
    assert frame.close_reason == f"message split into more than {max_fragments} fragments"
    # Fragment 4,097 is refused from its header: its payload is not unmasked.
    assert counter.bytes == max_fragments
    assert (await asyncio.wait_for(ended, TIMEOUT)).code == 1009
    raw.close()
    await wait_until(lambda: not server.connections)


# ---------------------------------------------------------------------------
# Connection floods
# ---------------------------------------------------------------------------


async def _try_handshake(server_port: int) -> tuple[int, RawClient]:
    raw = await RawClient.connect(server_port)
    await raw.send(handshake_request())
    status, _ = await raw.response_head()
    return status, raw


async def test_connection_flood_beyond_max_connections_gets_503(h: Harness) -> None:
    """Threat: a connection flood, 5x more WebSocket handshakes than allowed.

    Protection: ``max_connections``: handshakes beyond it get 503 before
    the application runs, open connections keep working, plain HTTP is still
    served, and the listener accepts again as soon as connections drop.
    """
    limit = 20
    server = await h.serve(max_connections=limit, backlog=128)
    port = server.port
    opened = []
    for _ in range(limit):
        status, raw = await _try_handshake(port)
        h.clients.append(raw)
        assert status == 101
        opened.append(raw)

    flood = await asyncio.gather(*(_try_handshake(port) for _ in range(5 * limit)))
    for status, raw in flood:
        h.clients.append(raw)
        assert status == 503
        await raw.read_to_eof()  # the body, then the end
        raw.close()
    # Plain HTTP is not refused (max_connections counts WebSockets only).
    health = await h.raw(server)
    await health.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (await health.response_head())[0] == 200
    # The open ones still echo.
    for raw in opened:
        await raw.send(mask_frame(OP_TEXT, b"still here"))
        assert (await raw.recv_non_ping()).payload == b"still here"

    # Half of them leave abruptly: exactly that many new handshakes succeed.
    for raw in opened[: limit // 2]:
        raw.abort()
    await wait_until(lambda: len(server.connections) == limit // 2 + 1)
    again = await asyncio.gather(*(_try_handshake(port) for _ in range(limit // 2 + 5)))
    statuses = sorted(status for status, _ in again)
    h.clients.extend(raw for _, raw in again)
    assert statuses == [101] * (limit // 2) + [503] * 5


async def test_listener_accepts_again_after_file_descriptors_ran_out(tmp_path: Path) -> None:
    """Threat: a connection flood past the process's file-descriptor limit
    (the usual soft limit is 1,024, under ``max_connections``).

    Protection: on EMFILE asyncio's listener logs "socket.accept() out of
    system resource" and retries a second later instead of dying (wsserver
    lets one short line per 10 s of that through, instead of a traceback per
    failed accept), and connections release their descriptors as they end:
    once the flood drops, new clients are served.  (examples/soak_server.py, run with a
    64-descriptor limit.)
    """
    root = Path(__file__).resolve().parent.parent
    code = (
        "import resource, runpy, sys; "
        "resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64)); "
        "sys.argv = ['examples/soak_server.py', '--port', '0']; "
        "runpy.run_path(sys.argv[0], run_name='__main__')"
    )
    # Neither asyncio's debug mode nor coverage's tracing of subprocesses
    # (scripts/test measures coverage): this test is about descriptors, and
    # both make a flooded server slow for reasons of their own.
    env = {
        k: v
        for k, v in os.environ.items()
        if k != "PYTHONASYNCIODEBUG" and not k.startswith("COVERAGE_")
    }
    env["PYTHONPATH"] = str(root)
    # The server logs a traceback per failed accept: into a file, since a
    # pipe nobody reads would fill up and block it.
    log = tmp_path / "stderr.log"
    with log.open("wb") as stderr:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            code,
            cwd=root,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
        )
    flood: list[RawClient] = []
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), 3 * TIMEOUT)
        assert line.startswith(b"listening on "), line
        port = int(line.rsplit(b":", 1)[1])

        async def attempt() -> bool:
            raw = await RawClient.connect(port)
            flood.append(raw)
            await raw.send(handshake_request())
            status, _ = await raw.response_head(timeout=3 * TIMEOUT)
            return status == 101

        # 100 clients against 64 descriptors: some are served, and the
        # listener runs out (asyncio logs it).  Both are waited for as
        # events, not inferred from a client that got no answer within a
        # deadline, which on a busy machine could just be slow.
        attempts = [asyncio.ensure_future(attempt()) for _ in range(100)]
        # A hang guard, not a speed check.
        deadline = time.monotonic() + 6 * TIMEOUT
        try:
            while not (
                any(a.done() and not a.exception() and a.result() for a in attempts)
                and b"socket.accept() out of system resource" in log.read_bytes()
            ):
                assert time.monotonic() < deadline, "no client served, or no EMFILE logged"
                await asyncio.sleep(0.05)
        finally:
            for task in attempts:
                task.cancel()
            await asyncio.gather(*attempts, return_exceptions=True)
        for raw in flood:
            raw.abort()
        # Served again once the flood is gone (asyncio retries after 1 s).
        deadline = time.monotonic() + 3 * TIMEOUT
        while True:
            raw = await RawClient.connect(port)
            flood.append(raw)
            await raw.send(handshake_request())
            try:
                status, _ = await raw.response_head(timeout=1.0)
                break
            except (TimeoutError, EOFError):
                raw.abort()
                assert time.monotonic() < deadline, "the listener never accepted again"
        assert status == 101
        await raw.send(mask_frame(OP_TEXT, b"back"))
        assert (await raw.recv_non_ping()).payload == b"back"
    finally:
        for raw in flood:
            raw.close()
        if process.returncode is None:
            process.terminate()
        await asyncio.wait_for(process.communicate(), 3 * TIMEOUT)
    # Logged, once per interval (wsserver.server.descriptors), not once per
    # failed accept (thousands a second).
    failures = log.read_bytes().count(b"socket.accept() out of system resource")
    assert 1 <= failures <= 10, failures


# ---------------------------------------------------------------------------
# Abrupt disconnects, 10,000 times
# ---------------------------------------------------------------------------


async def _abrupt_client(port: int, kind: int, reset: bool) -> None:
    """Connect, get to a point of the protocol, and vanish (FIN or RST)."""
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        await loop.sock_connect(sock, ("127.0.0.1", port))
        request = handshake_request()

        async def handshake() -> None:
            await loop.sock_sendall(sock, request)
            response = b""
            while b"\r\n\r\n" not in response:
                chunk = await loop.sock_recv(sock, 4096)
                assert chunk, "the server closed during the handshake"
                response += chunk
            assert response.startswith(b"HTTP/1.1 101 "), response[:40]

        if kind == 0:  # mid-handshake
            await loop.sock_sendall(sock, request[: len(request) // 2])
        elif kind == 1:  # mid-frame
            await handshake()
            await loop.sock_sendall(sock, mask_frame(OP_TEXT, b"x" * 300)[:50])
        elif kind == 2:  # mid-close, the client's Close unanswered
            await handshake()
            await loop.sock_sendall(sock, mask_frame(OP_CLOSE, b"\x03\xe8"))
        elif kind == 3:  # mid-close, the server's Close unanswered
            await handshake()
            await loop.sock_sendall(sock, mask_frame(OP_TEXT, b"close"))
            assert (await loop.sock_recv(sock, 4096))[:1] == b"\x88"
        else:  # mid-handshake while the application starts
            await loop.sock_sendall(sock, request + mask_frame(OP_TEXT, b"echo"))
        if reset:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    finally:
        sock.close()


@pytest.mark.timeout(180)
async def test_ten_thousand_abrupt_disconnects_leak_nothing(h: Harness) -> None:
    """Threat: peers vanishing mid-handshake, mid-frame and mid-close
    (FIN or RST), 10,000 times, to leak tasks, descriptors or memory.

    Protection: ``Connection.connection_lost`` cancels every timer, wakes
    every waiter and unregisters the connection; handler tasks end with
    their connection.  Counted after the storm: no connection, the same
    tasks and file descriptors, traced memory back near its baseline.
    """
    total, batch = 10_000, 100

    server = await h.serve(
        FunctionApp(echo_text_close_on_request), close_timeout=0.5, open_timeout=2.0
    )
    port = server.port

    async def run(start: int, stop: int) -> None:
        for first in range(start, stop, batch):
            await asyncio.gather(
                *(
                    _abrupt_client(port, i % 5, bool(i // 5 % 2))
                    for i in range(first, first + batch)
                )
            )

    def settled() -> bool:
        return not server.connections and not server._tasks

    tracemalloc.start()
    try:
        await run(0, batch)  # warm-up: caches, free lists, first-use imports
        await wait_until(settled)
        gc.collect()
        baseline_memory = tracemalloc.get_traced_memory()[0]
        baseline_tasks = len(asyncio.all_tasks())
        baseline_fds = open_fds()
        first_id = server.next_connection_id()

        await run(0, total)
        await wait_until(settled, timeout=2 * TIMEOUT)
        await wait_until(lambda: len(asyncio.all_tasks()) <= baseline_tasks)
        gc.collect()
        growth = tracemalloc.get_traced_memory()[0] - baseline_memory
    finally:
        tracemalloc.stop()
    assert server.next_connection_id() == first_id + total + 1  # all reached the server
    assert len(asyncio.all_tasks()) == baseline_tasks
    assert open_fds() == baseline_fds
    # A leaked connection costs kilobytes (its core, h11, buffers): 10,000
    # of them would be tens of MB.  What remains is noise, not per-connection.
    assert growth < 256 * KIB, growth


# ---------------------------------------------------------------------------
# Half-open connections
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["idle", "mid-frame"])
async def test_half_open_peer_is_detected_by_heartbeats_and_freed(
    h: Harness,
    where: str,
    make_recording_app: RecordingApp,
) -> None:
    """Threat: a half-open connection, the peer gone without a FIN (it
    never reads, never sends, never closes), possibly inside a frame.

    Protection: heartbeats (``ping_interval``/``ping_timeout``): the
    unanswered ping fails the connection with 1011, and ``close_timeout``
    aborts it since the peer never ends TCP; its descriptor is freed.
    """
    interval, ping_timeout, close_timeout = 0.1, 0.2, 0.3
    app, ended = make_recording_app()
    server = await h.serve(
        app, ping_interval=interval, ping_timeout=ping_timeout, close_timeout=close_timeout
    )
    fds = open_fds()
    raw = await h.raw(server, rcvbuf=4096)
    started = time.monotonic()  # the server's heartbeat starts later, at its accept
    await raw.handshake()
    if where == "mid-frame":
        await raw.send(mask_frame(OP_BINARY, bytes(1000))[:100])
    # From here on the client does nothing at all.
    disconnect = await asyncio.wait_for(ended, TIMEOUT)
    assert disconnect == Disconnect(1011, "keepalive ping timeout")
    await wait_until(lambda: not server.connections)
    assert time.monotonic() - started >= interval + ping_timeout * 0.9
    assert open_fds() == fds + 1  # only the client's own socket is left


# ---------------------------------------------------------------------------
# Pipelined HTTP requests from a peer that never reads
# ---------------------------------------------------------------------------


class BigResponses(FunctionApp):
    """Every HTTP request gets a 64 KiB response."""

    async def handle_http(self, request: Request) -> Response:
        return Response(b"x" * (64 * KIB), media_type="application/octet-stream")


async def test_pipelined_requests_from_a_peer_that_never_reads_stay_bounded(
    h: Harness,
) -> None:
    """Threat: 1,000 pipelined GETs (30 KB) from a peer that never reads
    the answers: 64 MB of responses to buffer, an amplification of 2,000x.

    Protection wanted: as for WebSocket pings, the server stops parsing
    requests while its write buffer is over ``write_limit``, and drops the
    peer after ``write_timeout``.
    """
    write_limit = 64 * KIB
    server = await h.serve(BigResponses(), write_limit=write_limit, write_timeout=TIMEOUT)
    raw = await h.raw(server, rcvbuf=4096)
    request = b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n"
    await raw.send(request * 1000)
    connection = only_connection(server)
    await wait_until(lambda: connection.writing_paused)
    transport = connection.transport
    assert transport is not None
    largest = 0
    for _ in range(50):  # half a second for the server to go on, or not
        await asyncio.sleep(0.01)
        largest = max(largest, transport.get_write_buffer_size())
    assert largest <= write_limit + 2 * 64 * KIB + 4 * KIB, largest
