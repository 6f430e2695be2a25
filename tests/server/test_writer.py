"""Tests for wsserver.server.writer: when a connection's bytes are written.

End to end over loopback (a server in-process, a raw socket client), with
the connection's ``transport.write`` recorded: batching, the reply written
at once, large payloads written alone, ``write_limit`` counted in bytes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any, cast

import pytest

from wsserver.protocol import ServerConnection
from wsserver.server.websocket import WebSocket
from wsserver.server.writer import WRITE_ALONE, Writer

from .helpers import (
    OP_BINARY,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    TIMEOUT,
    FunctionApp,
    Harness,
    RawClient,
    WebSocketHandler,
    harness,
    mask_frame,
    only_connection,
)


@pytest.fixture
async def h() -> AsyncIterator[Harness]:
    async with harness() as h:
        yield h


# ---------------------------------------------------------------------------
# Large payloads
# ---------------------------------------------------------------------------


async def _record_writes(
    h: Harness, monkeypatch: pytest.MonkeyPatch, handler: WebSocketHandler, **settings: Any
) -> tuple[RawClient, list[bytes]]:
    """Serve ``handler``, open a raw client, and record (the very objects)
    what the connection hands to ``transport.write`` from then on."""
    server = await h.serve(FunctionApp(handler), **settings)
    raw = await h.raw(server)
    await raw.handshake()
    connection = only_connection(server)
    assert connection.transport is not None
    written: list[bytes] = []
    original = connection.transport.write

    def recording_write(data: bytes) -> None:
        written.append(data)
        original(data)

    monkeypatch.setattr(connection.transport, "write", recording_write)
    return raw, written


async def test_a_large_payload_is_written_without_joining_it_to_its_header(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    # writelines() would copy a 300 KiB payload into one buffer with its
    # frame header; the connection hands the payload object itself to
    # write(), and joins only the small chunks around it.
    payload = bytes(range(256)) * 1200  # 300 KiB, past WRITE_ALONE
    sent = asyncio.Event()

    async def handler(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.receive()
        await websocket.send_text("before")
        await websocket.send_bytes(payload)
        await websocket.send_text("after")
        sent.set()
        await websocket.receive()

    raw, written = await _record_writes(h, monkeypatch, handler)
    await raw.send(mask_frame(OP_TEXT, b"go"))
    await asyncio.wait_for(sent.wait(), TIMEOUT)
    frames = [await raw.recv_non_ping() for _ in range(3)]
    assert [(f.opcode, f.payload) for f in frames] == [
        (OP_TEXT, b"before"),
        (OP_BINARY, payload),
        (OP_TEXT, b"after"),
    ]
    assert any(chunk is payload for chunk in written)
    assert all(len(chunk) < 1024 for chunk in written if chunk is not payload)


# ---------------------------------------------------------------------------
# When replies are written
# ---------------------------------------------------------------------------


async def test_the_reply_to_the_last_queued_message_is_written_within_send(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A request/response peer waits for this reply: it reaches write()
    # before send_text() returns, not at the end of the loop iteration.
    written_at_return: list[int] = []
    done = asyncio.Event()
    writes: list[bytes] = []

    async def handler(websocket: WebSocket) -> None:
        await websocket.accept()
        message = await websocket.receive_text()
        await websocket.send_text(message)
        written_at_return.append(len(writes))
        await websocket.send_text("second")  # no longer a reply: deferred
        written_at_return.append(len(writes))
        done.set()
        await websocket.receive()

    raw, writes = await _record_writes(h, monkeypatch, handler)
    await raw.send(mask_frame(OP_TEXT, b"ping?"))
    await asyncio.wait_for(done.wait(), TIMEOUT)
    assert written_at_return == [1, 1]
    frames = [await raw.recv_non_ping() for _ in range(2)]
    assert [f.payload for f in frames] == [b"ping?", b"second"]
    assert writes[0] == b"\x81\x05ping?"


async def test_replies_to_messages_read_together_leave_in_one_write(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Ten messages in one read: the handler answers each, the replies wait
    # while messages remain queued, and the last reply carries them all.
    answered = asyncio.Event()

    async def handler(websocket: WebSocket) -> None:
        await websocket.accept()
        for _ in range(10):
            await websocket.send_text(await websocket.receive_text())
        answered.set()
        await websocket.receive()

    raw, writes = await _record_writes(h, monkeypatch, handler)
    await raw.send(b"".join(mask_frame(OP_TEXT, b"m%d" % n) for n in range(10)))
    await asyncio.wait_for(answered.wait(), TIMEOUT)
    frames = [await raw.recv_non_ping() for _ in range(10)]
    assert [f.payload for f in frames] == [b"m%d" % n for n in range(10)]
    assert writes == [b"".join(b"\x81\x02m%d" % n for n in range(10))]


# ---------------------------------------------------------------------------
# Counting bytes, not characters
# ---------------------------------------------------------------------------


async def test_write_limit_counts_the_utf8_bytes_of_non_ascii_text(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 600 characters: 600 bytes in ASCII, 1,200 in UTF-8 as "é".  With a
    # write_limit of 1,000 bytes the second is over it and must reach the
    # transport within send_text (so that pause_writing, the backpressure
    # signal, sees it); the first waits for the end of the loop iteration.
    # Counting characters would defer both.
    gate = asyncio.Event()
    done = asyncio.Event()
    written_at_return: list[int] = []

    async def handler(websocket: WebSocket) -> None:
        await websocket.accept()
        await gate.wait()
        # Nothing received, so no reply is due: each send is batched unless
        # it reaches write_limit.
        await websocket.send_text("e" * 600)
        written_at_return.append(len(writes))
        for _ in range(100):  # the end-of-iteration write: one turn of the loop
            if writes:
                break
            await asyncio.sleep(0)
        before = len(writes)
        await websocket.send_text("é" * 600)
        written_at_return.append(len(writes) - before)
        done.set()
        await websocket.receive()

    raw, writes = await _record_writes(h, monkeypatch, handler, write_limit=1000)
    gate.set()
    await asyncio.wait_for(done.wait(), TIMEOUT)
    assert written_at_return == [0, 1]
    frames = [await raw.recv_non_ping() for _ in range(2)]
    assert [f.payload for f in frames] == [b"e" * 600, "é".encode() * 600]


# ---------------------------------------------------------------------------
# The rules, one by one (a Writer over stand-ins)
# ---------------------------------------------------------------------------


class FakeCore:
    """Stands in for ``ServerConnection``: bytes queued by the test."""

    def __init__(self) -> None:
        self.output: list[bytes] = []

    def data_to_send(self) -> list[bytes]:
        output, self.output = self.output, []
        return output


class FakeLoop:
    """Records ``call_soon`` instead of running it."""

    def __init__(self) -> None:
        self.scheduled: list[Callable[[], object]] = []

    def call_soon(self, callback: Callable[[], object]) -> None:
        self.scheduled.append(callback)

    def run_scheduled(self) -> None:
        scheduled, self.scheduled = self.scheduled, []
        for callback in scheduled:
            callback()


class FakeTransport:
    """Records the calls: ("write", chunk) or ("writelines", [chunks])."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []

    def write(self, data: bytes) -> None:
        self.calls.append(("write", data))

    def writelines(self, data: list[bytes]) -> None:
        self.calls.append(("writelines", list(data)))


def make_writer(write_limit: int = 100) -> tuple[Writer, FakeCore, FakeLoop, FakeTransport]:
    core, loop, transport = FakeCore(), FakeLoop(), FakeTransport()
    writer = Writer(
        cast(ServerConnection, core), cast(asyncio.AbstractEventLoop, loop), write_limit
    )
    writer.transport = cast(asyncio.Transport, transport)
    return writer, core, loop, transport


def test_collect_with_nothing_to_write_schedules_nothing() -> None:
    writer, _, loop, transport = make_writer()
    writer.collect()
    assert loop.scheduled == []
    assert transport.calls == []


def test_what_is_collected_in_one_iteration_leaves_in_one_write() -> None:
    writer, core, loop, transport = make_writer()
    for chunk in (b"one", b"two", b"three"):
        core.output.append(chunk)
        writer.collect()
    assert len(loop.scheduled) == 1  # one end-of-iteration write, not three
    assert transport.calls == []
    core.output.append(b"pong")  # queued by the core meanwhile: joins them
    loop.run_scheduled()
    assert transport.calls == [("writelines", [b"one", b"two", b"three", b"pong"])]
    assert writer.bytes_out == 15
    assert writer.unflushed == 0


def test_reaching_write_limit_writes_at_once() -> None:
    writer, core, loop, transport = make_writer(write_limit=100)
    core.output.append(b"x" * 60)
    writer.collect()
    assert transport.calls == []
    core.output.append(b"y" * 40)
    writer.collect()
    assert transport.calls == [("writelines", [b"x" * 60, b"y" * 40])]
    assert writer.unflushed == 0
    loop.run_scheduled()  # the scheduled write finds nothing left
    assert len(transport.calls) == 1


def test_queued_counts_the_size_it_is_given() -> None:
    writer, core, loop, transport = make_writer(write_limit=100)
    core.output.append(b"b" * 50)  # a broadcast frame the core holds
    writer.queued(50)
    assert (writer.unflushed, transport.calls, len(loop.scheduled)) == (50, [], 1)
    core.output.append(b"c" * 50)
    writer.queued(50)
    assert transport.calls == [("writelines", [b"b" * 50, b"c" * 50])]


def test_sent_writes_the_awaited_reply_at_once_then_batches_again() -> None:
    writer, core, loop, transport = make_writer()
    writer.reply_now = True
    core.output.append(b"reply")
    writer.sent(5)
    assert transport.calls == [("write", b"reply")]
    assert not writer.reply_now
    core.output.append(b"more")
    writer.sent(4)
    assert len(transport.calls) == 1
    assert len(loop.scheduled) == 1


def test_a_large_chunk_is_written_alone_between_joined_small_ones() -> None:
    writer, core, _, transport = make_writer()
    big = b"z" * WRITE_ALONE
    core.output.extend([b"a", b"b", big, b"c"])
    writer.flush()
    assert transport.calls == [
        ("writelines", [b"a", b"b"]),
        ("write", big),
        ("writelines", [b"c"]),
    ]


def test_without_a_transport_what_is_left_is_dropped() -> None:
    writer, core, loop, _ = make_writer()
    writer.transport = None
    core.output.append(b"late")
    writer.collect()
    loop.run_scheduled()
    assert core.output == []
    assert writer.bytes_out == 0


async def test_a_read_with_nothing_to_answer_schedules_no_write(h: Harness) -> None:
    # The pump hands the writer what the core has to send after each read;
    # a message that needs no answer from the core (the application has not
    # replied yet) must not cost a call_soon.  A ping does: its pong waits
    # for the end of the iteration.
    held = asyncio.Event()

    async def handler(websocket: WebSocket) -> None:
        await websocket.accept()
        await held.wait()

    server = await h.serve(FunctionApp(handler))
    raw = await h.raw(server)
    await raw.handshake()
    connection = only_connection(server)
    writer = connection._writer
    connection.data_received(mask_frame(OP_TEXT, b"no answer needed"))
    assert not writer._scheduled
    connection.data_received(mask_frame(OP_PING, b"answer me"))
    assert writer._scheduled
    frame = await raw.recv_frame()
    assert (frame.opcode, frame.payload) == (OP_PONG, b"answer me")
    held.set()


def test_sent_counts_the_size_the_core_reports() -> None:
    # A burst of well-compressed messages: the core holds few bytes, but
    # each send reports its payload before compression, and the burst is
    # written once those reach write_limit.
    writer, core, _, transport = make_writer(write_limit=100)
    core.output.append(b"tiny")
    writer.sent(60)
    assert (writer.unflushed, transport.calls) == (60, [])
    core.output.append(b"tiny")
    writer.sent(60)
    assert transport.calls == [("writelines", [b"tiny", b"tiny"])]


def test_a_batch_holds_sends_for_one_write_at_its_end_and_schedules_none() -> None:
    writer, core, loop, transport = make_writer(write_limit=100)
    writer.reply_now = True  # armed by an earlier take(): the batch's end is the reply's write
    writer.batch()
    for reply in (b"r1", b"r2", b"r3"):
        core.output.append(reply)
        writer.sent(len(reply))
    assert (transport.calls, loop.scheduled) == ([], [])
    writer.end_batch()
    assert transport.calls == [("writelines", [b"r1", b"r2", b"r3"])]
    assert not writer.reply_now
    core.output.append(b"later")  # after the batch: the end-of-iteration write again
    writer.sent(5)
    assert len(loop.scheduled) == 1


def test_a_batch_still_writes_at_write_limit_and_keeps_a_write_scheduled_before_it() -> None:
    writer, core, loop, transport = make_writer(write_limit=10)
    core.output.append(b"pong")
    writer.collect()  # scheduled before the batch
    writer.batch()
    core.output.append(b"x" * 12)
    writer.sent(12)  # past write_limit: written at once
    assert transport.calls == [("writelines", [b"pong", b"x" * 12])]
    writer.end_batch()
    assert len(transport.calls) == 1  # nothing left to write
    core.output.append(b"y")
    writer.sent(1)
    assert len(loop.scheduled) == 1  # the write scheduled before the batch still counts
