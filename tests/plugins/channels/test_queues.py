"""Tests for wsserver.plugins.channels.queues: the bounded send queue.

Over a fake WebSocket whose writes can be held (a peer that does not read),
then over a real server with a client that stops reading: the ``close``
policy ends the connection with 1013, ``drop_oldest`` keeps it and drops,
and memory stays within the bounds either way.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from wsserver.plugins.channels.queues import SendQueue, direct_writer
from wsserver.server import (
    App,
    Server,
    ServerConfig,
    WebSocket,
    WebSocketDisconnect,
    WebSocketState,
)

from ..._live import RawWebSocket
from ._helpers import TIMEOUT, wait_until


class SlowWebSocket:
    """What a SendQueue uses of a WebSocket; ``gate`` holds every send."""

    def __init__(self) -> None:
        self.connection_id = 3
        self.application_state = WebSocketState.CONNECTED
        self.sent: list[str] = []
        self.compressed: list[bool | None] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.closed_with: tuple[int, str] | None = None
        self.fail: BaseException | None = None

    async def send_text(self, text: str, *, compress: bool | None = None) -> None:
        self.compressed.append(compress)
        await self.gate.wait()
        if self.fail is not None:
            raise self.fail
        self.sent.append(text)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        self.closed_with = (code, reason)
        self.application_state = WebSocketState.DISCONNECTED


def make(*, writable: bool = False, **options: Any) -> tuple[SendQueue, SlowWebSocket, list[str]]:
    """A queue over a SlowWebSocket; ``direct`` collects fast-path writes."""
    websocket = SlowWebSocket()
    direct: list[str] = []

    def try_write(text: str, compress: bool) -> bool:
        if writable:
            direct.append(f"{text}+z" if compress else text)
        return writable

    queue = SendQueue(cast(WebSocket, websocket), try_write=try_write, **options)
    return queue, websocket, direct


async def test_the_fast_path_writes_at_once_without_a_task() -> None:
    queue, websocket, direct = make(writable=True)
    assert queue.put("a") and queue.put(("b1", "b2"))
    assert direct == ["a", "b1", "b2"]
    assert queue.sent == 2 and len(queue) == 0 and websocket.sent == []
    await queue.join()  # nothing to wait for


async def test_compress_is_chosen_per_message() -> None:
    queue, _, direct = make(writable=True)
    assert queue.put("default") and queue.put("yes", compress=True)
    assert queue.put("no", compress=False)
    assert direct == ["default", "yes+z", "no"]
    queue, _, direct = make(writable=True, compress=True)
    assert queue.put("default") and queue.put("no", compress=False)
    assert direct == ["default+z", "no"]
    # Queued messages keep their choice until the writer sends them.
    queue, websocket, _ = make(writable=False, compress=True)
    queue.put("default")
    queue.put("no", compress=False)
    queue.put("yes", compress=True)
    await queue.join()
    assert websocket.sent == ["default", "no", "yes"]
    assert websocket.compressed == [True, False, True]


async def test_a_full_transport_queues_and_the_writer_sends_in_order() -> None:
    queue, websocket, _ = make()
    websocket.gate.clear()
    for text in ("1", ("2a", "2b"), "3"):
        assert queue.put(text)
        await asyncio.sleep(0)  # the writer starts, and takes "1"
    assert len(queue) == 2  # the first is being written
    websocket.gate.set()
    await asyncio.wait_for(queue.join(), TIMEOUT)
    assert websocket.sent == ["1", "2a", "2b", "3"]
    assert queue.sent == 3 and queue.queued_bytes == 0


async def test_nothing_overtakes_the_queue() -> None:
    # Once something waits, a message that could be written now must queue
    # behind it, or the order breaks.
    writable = False
    websocket = SlowWebSocket()
    direct: list[str] = []

    def try_write(text: str, compress: bool) -> bool:
        if writable:
            direct.append(f"{text}+z" if compress else text)
        return writable

    queue = SendQueue(cast(WebSocket, websocket), try_write=try_write)
    websocket.gate.clear()
    queue.put("first")
    writable = True
    queue.put("second")
    assert direct == []
    websocket.gate.set()
    await asyncio.wait_for(queue.join(), TIMEOUT)
    assert websocket.sent == ["first", "second"]


async def test_a_chunked_message_cut_by_a_full_transport_keeps_its_order() -> None:
    websocket = SlowWebSocket()
    direct: list[str] = []

    def try_write(text: str, compress: bool) -> bool:
        if len(direct) < 2:
            direct.append(text)
            return True
        return False

    queue = SendQueue(cast(WebSocket, websocket), try_write=try_write)
    assert queue.put(("c0", "c1", "c2", "c3"))
    await asyncio.wait_for(queue.join(), TIMEOUT)
    assert direct + websocket.sent == ["c0", "c1", "c2", "c3"]


async def test_close_policy_closes_with_1013_when_full() -> None:
    overflowed: list[bool] = []
    queue, websocket, _ = make(max_messages=3, on_overflow=lambda: overflowed.append(True))
    websocket.gate.clear()
    assert queue.put("0")
    await asyncio.sleep(0)  # the writer takes it
    assert all(queue.put(str(i)) for i in range(1, 4))  # one in flight, three queued
    assert queue.put("too many") is False
    await wait_until(lambda: websocket.closed_with is not None)
    assert websocket.closed_with == (1013, "too slow to keep up")
    assert queue.overflowed and queue.closed and overflowed == [True]
    assert queue.dropped == 3 and len(queue) == 0
    assert queue.put("after") is False


async def test_drop_oldest_keeps_the_newest_within_the_bounds() -> None:
    queue, websocket, _ = make(max_messages=3, policy="drop_oldest")
    websocket.gate.clear()
    assert queue.put("0")
    await asyncio.sleep(0)  # the writer takes it
    for i in range(1, 10):
        assert queue.put(str(i))
    assert len(queue) == 3 and queue.dropped == 6
    websocket.gate.set()
    await asyncio.wait_for(queue.join(), TIMEOUT)
    assert websocket.sent == ["0", "7", "8", "9"]  # "0" was already being written
    assert websocket.closed_with is None


async def test_the_byte_bound_counts_utf8_bytes() -> None:
    queue, websocket, _ = make(max_bytes=10, policy="drop_oldest")
    websocket.gate.clear()
    queue.put("in flight")
    await asyncio.sleep(0)  # the writer takes it
    queue.put("ééé")  # 6 bytes
    queue.put("ééé")  # 12 > 10: the first is dropped
    assert len(queue) == 1 and queue.queued_bytes == 6 and queue.dropped == 1
    # One message larger than the bound still goes into an empty queue.
    queue.put("x" * 50)
    assert len(queue) == 1 and queue.queued_bytes == 50
    websocket.gate.set()
    await asyncio.wait_for(queue.join(), TIMEOUT)


async def test_a_connection_that_ends_closes_the_queue() -> None:
    queue, websocket, _ = make()
    websocket.gate.clear()
    websocket.fail = WebSocketDisconnect(1006)
    queue.put("a")
    queue.put("b")
    websocket.gate.set()
    await asyncio.wait_for(queue.join(), TIMEOUT)
    assert queue.closed and queue.dropped == 1
    assert queue.put("c") is False


async def test_a_closed_websocket_refuses_on_the_fast_path() -> None:
    queue, websocket, _ = make()
    websocket.application_state = WebSocketState.DISCONNECTED
    assert queue.put("a") is False and queue.closed


async def test_a_held_queue_sends_nothing_until_released() -> None:
    queue, websocket, direct = make(writable=True, held=True, max_messages=2, policy="drop_oldest")
    assert queue.held
    for text in ("a", "b", "c"):
        assert queue.put(text)
    assert direct == [] and websocket.sent == [] and queue.dropped == 1
    joined = asyncio.create_task(queue.join())
    await asyncio.sleep(0.01)
    assert not joined.done()  # waits for the release
    queue.release(first="hello")
    await asyncio.wait_for(joined, TIMEOUT)
    assert websocket.sent == ["hello", "b", "c"]
    # Released: the fast path again.
    queue.put("d")
    assert direct == ["d"]
    with pytest.raises(RuntimeError, match="not held"):
        queue.release()


async def test_a_held_queue_released_empty_or_closed() -> None:
    queue, websocket, _ = make(held=True)
    queue.release()
    assert not queue.held and websocket.sent == []
    queue, websocket, _ = make(held=True)
    queue.put("x")
    queue.close()
    await asyncio.wait_for(queue.join(), TIMEOUT)
    queue.release(first="init")
    assert websocket.sent == [] and queue.dropped == 1


async def test_settings_are_checked() -> None:
    websocket = cast(WebSocket, SlowWebSocket())
    with pytest.raises(ValueError, match="policy"):
        SendQueue(websocket, policy="block")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        SendQueue(websocket, max_messages=0)
    with pytest.raises(ValueError):
        SendQueue(websocket, max_bytes=0)


# ---------------------------------------------------------------------------
# Over a real server, with a peer that stops reading
# ---------------------------------------------------------------------------


async def slow_peer(**options: Any) -> tuple[Server, list[SendQueue], RawWebSocket]:
    queues: list[SendQueue] = []
    app = App()

    @app.websocket("/")
    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        queues.append(SendQueue(websocket, **options))
        await websocket.receive()

    server = Server(app, ServerConfig(port=0, ping_interval=None, write_timeout=None))
    await server.start()
    client = await RawWebSocket.connect(server.port)
    client.writer.transport.pause_reading()  # type: ignore[attr-defined]
    await wait_until(lambda: bool(queues))
    return server, queues, client


async def flood(queue: SendQueue, until: Any) -> int:
    message = "x" * 65536
    for count in range(1, 2000):
        queue.put(message)
        if until():
            return count
        await asyncio.sleep(0)
    raise AssertionError("the queue never filled")


async def test_a_real_slow_peer_is_closed_with_1013() -> None:
    server, queues, client = await slow_peer(max_messages=8, max_bytes=1 << 20)
    (queue,) = queues
    try:
        await flood(queue, lambda: queue.overflowed)
        assert queue.queued_bytes == 0 and queue.closed
        # Memory stayed bounded: at most 8 messages were ever queued.
        assert queue.dropped <= 8
    finally:
        client.writer.transport.abort()
        await server.shutdown()


async def test_a_real_slow_peer_with_drop_oldest_keeps_its_connection() -> None:
    server, queues, client = await slow_peer(max_messages=8, policy="drop_oldest")
    (queue,) = queues
    try:
        await flood(queue, lambda: queue.dropped > 20)
        assert len(queue) <= 8 and not queue.closed
        assert queue.websocket.application_state is WebSocketState.CONNECTED
    finally:
        client.writer.transport.abort()
        await server.shutdown()


async def test_direct_writer_writes_to_an_open_connection() -> None:
    app = App()
    done = asyncio.Event()
    results: list[bool] = []

    @app.websocket("/")
    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        results.append(direct_writer(websocket)("hello", False))
        await websocket.close()
        results.append(direct_writer(websocket)("late", False))
        done.set()

    server = Server(app, ServerConfig(port=0, ping_interval=None))
    await server.start()
    try:
        client = await RawWebSocket.connect(server.port)
        frame = await client.recv_frame()
        assert (frame.opcode, frame.payload) == (1, b"hello")
        await asyncio.wait_for(done.wait(), TIMEOUT)
        assert results == [True, False]
        await client.close()
    finally:
        await server.shutdown()


def _metric(name: str) -> float:
    from wsserver.server.metric_sources import metric_sources

    (source,) = [s for s in metric_sources() if s.name == name]
    assert source.kind == "counter"
    return source.read()


async def test_deliveries_and_drops_are_counted_for_the_metrics() -> None:
    sent, dropped = _metric("wsserver_channels_deliveries"), _metric("wsserver_channels_drops")
    fast, _, direct = make(writable=True)
    assert fast.put("fast") and direct == ["fast"]  # the fast path
    queue, websocket, _ = make(max_messages=2, policy="drop_oldest")
    websocket.gate.clear()
    assert queue.put("0")
    await asyncio.sleep(0)  # the writer takes it
    for i in range(1, 6):
        assert queue.put(str(i))  # 1, 2 and 3 dropped to make room
    websocket.gate.set()
    await asyncio.wait_for(queue.join(), TIMEOUT)
    assert websocket.sent == ["0", "4", "5"]
    queue.close()
    assert queue.put("refused") is False
    assert _metric("wsserver_channels_deliveries") - sent == 4
    assert _metric("wsserver_channels_drops") - dropped == 4
