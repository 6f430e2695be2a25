"""Tests for wsserver.server.dispatch: a view's handler run in the read callback.

End to end, a real server with ``WebSocketView``s and an independent client
(``websockets``, or a raw socket for byte-level control): messages handled
one at a time and in order whether handlers suspend or not (hypothesis over
sequences), exceptions before and after suspending, a close while a
handler is suspended, cancellation at shutdown, a handler sending many
messages past the write buffer, what a handler sees of its task and its
context, and one write per read.  Then unit tests of ``Suspended`` (the
hand-over to the task) and ``direct_dispatch``.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Awaitable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from wsserver.protocol import ServerConnection, TextMessage
from wsserver.server import WebSocket, WebSocketView
from wsserver.server.dispatch import Dispatch, Suspended, direct_dispatch
from wsserver.server.inbox import Inbox
from wsserver.server.writer import Writer

from .._live import TIMEOUT, serving, ws_url
from .helpers import (
    OP_CLOSE,
    OP_TEXT,
    RawClient,
    close_frame,
    mask_frame,
    only_connection,
    wait_until,
)


@contextmanager
def counting_deliveries() -> Iterator[list[int]]:
    """Count the messages the pump handed to a view directly (``Dispatch.deliver``)."""
    count = [0]
    original = Dispatch.deliver

    def deliver(self: Dispatch, message: Any) -> bool:
        count[0] += 1
        return original(self, message)

    Dispatch.deliver = deliver  # type: ignore[method-assign]
    try:
        yield count
    finally:
        Dispatch.deliver = original  # type: ignore[method-assign]


async def recv_all(client: ClientConnection, count: int) -> list[str | bytes]:
    return [await asyncio.wait_for(client.recv(), TIMEOUT) for _ in range(count)]


# ---------------------------------------------------------------------------
# Ordering: handlers that sometimes suspend
# ---------------------------------------------------------------------------

#: How a handler of the ordering test behaves, by the message's first word.
STEPS = ("now", "yield", "future", "sleep", "twice")


class OrderView(WebSocketView):
    """Replies ``n`` to message ``"<step> n"``, after suspending as ``step`` says.

    Fails the connection (1011) if two handlers ever overlap.
    """

    encoding = "text"
    active = 0

    async def on_receive(self, websocket: WebSocket, data: str) -> None:
        step, number = data.split()
        assert OrderView.active == 0, "two handlers at once"
        OrderView.active += 1
        try:
            if step == "yield":
                await asyncio.sleep(0)
            elif step == "future":
                future = asyncio.get_running_loop().create_future()
                asyncio.get_running_loop().call_soon(future.set_result, None)
                await future
            elif step == "sleep":
                await asyncio.sleep(0.001)
            await websocket.send_text(number)
            if step == "twice":
                await asyncio.sleep(0)
                await websocket.send_text(number + "+")
        finally:
            OrderView.active -= 1


async def _exchange_in_order(steps: list[str]) -> int:
    OrderView.active = 0
    with counting_deliveries() as delivered:
        async with serving(OrderView) as server, connect(ws_url(server)) as client:
            for number, step in enumerate(steps):
                await client.send(f"{step} {number}")
            expected: list[str | bytes] = []
            for number, step in enumerate(steps):
                expected.append(str(number))
                if step == "twice":
                    expected.append(f"{number}+")
            assert await recv_all(client, len(expected)) == expected
    return delivered[0]


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(steps=st.lists(st.sampled_from(STEPS), min_size=1, max_size=30))
def test_messages_are_handled_one_at_a_time_in_order_whether_handlers_suspend_or_not(
    steps: list[str],
) -> None:
    delivered = asyncio.run(_exchange_in_order(steps))
    # The view was waiting when the first message came: at least that one
    # was handled in the read callback (the path under test ran).
    assert delivered >= 1


async def test_a_burst_of_handlers_that_never_suspend_is_handled_in_the_read_callback() -> None:
    with counting_deliveries() as delivered:
        assert await _exchange_in_order(["now"] * 200) == delivered[0]
    assert delivered[0] == 200


# ---------------------------------------------------------------------------
# Exceptions, before and after suspending
# ---------------------------------------------------------------------------


class Ended:
    def __init__(self) -> None:
        self.codes: list[int] = []
        self.event = asyncio.Event()


def failing_view(ended: Ended, *, suspend_first: bool) -> type[WebSocketView]:
    class Failing(WebSocketView):
        async def on_receive(self, websocket: WebSocket, data: Any) -> None:
            if data == "ok":
                await websocket.send_text("ok")
                return
            if suspend_first:
                await asyncio.sleep(0)
            raise ValueError("secret detail")

        async def on_disconnect(self, websocket: WebSocket, close_code: int) -> None:
            ended.codes.append(close_code)
            ended.event.set()

    return Failing


@pytest.mark.parametrize("suspend_first", [False, True], ids=["at-once", "after-suspending"])
async def test_an_exception_in_a_handler_closes_1011_with_one_logged_traceback(
    suspend_first: bool, caplog: pytest.LogCaptureFixture
) -> None:
    ended = Ended()
    view = failing_view(ended, suspend_first=suspend_first)
    with caplog.at_level(logging.ERROR, logger="wsserver"):
        async with serving(view) as server, connect(ws_url(server)) as client:
            await client.send("ok")
            await client.send("boom")
            await client.send("never handled")
            assert await asyncio.wait_for(client.recv(), TIMEOUT) == "ok"
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(client.recv(), TIMEOUT)
            assert (client.close_code, client.close_reason) == (1011, "internal error")
            await asyncio.wait_for(ended.event.wait(), TIMEOUT)
    assert ended.codes == [1011]
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert "error in WebSocket handler" in errors[0].getMessage()
    assert errors[0].exc_info is not None
    assert isinstance(errors[0].exc_info[1], ValueError)


async def test_a_value_returned_by_a_handler_that_did_not_suspend_closes_1011(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Returning(WebSocketView):
        async def on_receive(self, websocket: WebSocket, data: Any) -> Any:
            return "a reply?"

    with caplog.at_level(logging.ERROR, logger="wsserver"):
        async with serving(Returning) as server, connect(ws_url(server)) as client:
            await client.send("hello")
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(client.recv(), TIMEOUT)
            assert client.close_code == 1011
    (record,) = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert "returned str 'a reply?'" in record.getMessage()
    assert "send replies with websocket.send_*()" in record.getMessage()


async def test_a_value_returned_after_suspending_closes_1011_too(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Returning(WebSocketView):
        async def on_receive(self, websocket: WebSocket, data: Any) -> Any:
            await asyncio.sleep(0)
            return 42

    with caplog.at_level(logging.ERROR, logger="wsserver"):
        async with serving(Returning) as server, connect(ws_url(server)) as client:
            await client.send("hello")
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(client.recv(), TIMEOUT)
            assert client.close_code == 1011
    (record,) = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert "returned int 42" in record.getMessage()


# ---------------------------------------------------------------------------
# Closing and cancellation while a handler is suspended
# ---------------------------------------------------------------------------


async def test_the_peers_close_waits_for_a_suspended_handler_whose_reply_goes_first() -> None:
    gate = asyncio.Event()
    started = asyncio.Event()
    ended = Ended()

    class Slow(WebSocketView):
        async def on_receive(self, websocket: WebSocket, data: Any) -> None:
            started.set()
            await gate.wait()
            await websocket.send_text(f"late reply to {data}")

        async def on_disconnect(self, websocket: WebSocket, close_code: int) -> None:
            ended.codes.append(close_code)
            ended.event.set()

    async with serving(Slow) as server:
        raw = await RawClient.connect(server.port)
        try:
            await raw.handshake()
            await raw.send(mask_frame(OP_TEXT, b"hi"))
            await asyncio.wait_for(started.wait(), TIMEOUT)
            await raw.send(close_frame(1000))
            # The Close is read, and held while the handler is out.
            await wait_until(lambda: only_connection(server).protocol.reply_held)
            gate.set()
            reply = await raw.recv_frame()
            assert (reply.opcode, reply.payload) == (OP_TEXT, b"late reply to hi")
            close = await raw.recv_frame()
            assert (close.opcode, close.close_code) == (OP_CLOSE, 1000)
        finally:
            raw.close()
        await asyncio.wait_for(ended.event.wait(), TIMEOUT)
    assert ended.codes == [1000]


async def test_shutdown_cancels_a_handler_suspended_after_starting_in_the_read_callback() -> None:
    started = asyncio.Event()
    cancelled = asyncio.Event()

    class Stuck(WebSocketView):
        async def on_receive(self, websocket: WebSocket, data: Any) -> None:
            started.set()
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                cancelled.set()
                raise

    with counting_deliveries() as delivered:
        async with (
            serving(Stuck, shutdown_timeout=0.2) as server,
            connect(ws_url(server)) as client,
        ):
            await client.send("wait forever")
            await asyncio.wait_for(started.wait(), TIMEOUT)
            await asyncio.wait_for(server.shutdown(), TIMEOUT)
    assert delivered[0] == 1
    assert cancelled.is_set()


async def test_a_cancellation_before_the_task_takes_a_handler_over_reaches_the_handler() -> None:
    # The handler cancels its own task (as asyncio.timeout() would, from a
    # timer) and suspends, all in the read callback: the task is cancelled
    # before it took the handler over, and the handler gets the
    # CancelledError at its await, as it would in the task.
    class SelfCancelling(WebSocketView):
        encoding = "text"

        async def on_receive(self, websocket: WebSocket, data: str) -> None:
            if data == "cancel me":
                task = asyncio.current_task()
                assert task is not None
                task.cancel()
                try:
                    await asyncio.sleep(0)
                except asyncio.CancelledError:
                    task.uncancel()
                    await websocket.send_text("cancelled at the await")
                    return
            await websocket.send_text(data)

    with counting_deliveries() as delivered:
        async with serving(SelfCancelling) as server, connect(ws_url(server)) as client:
            await client.send("cancel me")
            assert await recv_all(client, 1) == ["cancelled at the await"]
            await client.send("still served")
            assert await recv_all(client, 1) == ["still served"]
    assert delivered[0] == 2


async def test_handle_messages_in_another_task_receives_as_any_loop_does() -> None:
    # The connection cannot run handlers as a task it did not start: the
    # loop falls back to receive(), with the same order and checks.
    class Handler:
        def __init__(self, websocket: WebSocket) -> None:
            self.websocket = websocket
            self.mistakes: list[object] = []

        async def handle(self, message: TextMessage) -> object:
            await self.websocket.send_text(message.data.upper())
            return "mistake" if message.data == "return" else None

        def start(self, message: Any) -> Awaitable[object]:
            return self.handle(message)

        def check(self, returned: object) -> None:
            self.mistakes.append(returned)

    seen: list[object] = []

    async def endpoint(websocket: WebSocket) -> None:
        with pytest.raises(RuntimeError, match="before accept"):
            await websocket.handle_messages(Handler(websocket))
        await websocket.accept()
        handler = Handler(websocket)
        ended = await asyncio.create_task(websocket.handle_messages(handler))
        seen.extend([ended.code, *handler.mistakes])

    with counting_deliveries() as delivered:
        async with serving(endpoint) as server:
            async with connect(ws_url(server)) as client:
                for message in ("a", "return", "b"):
                    await client.send(message)
                assert await recv_all(client, 3) == ["A", "RETURN", "B"]
            await wait_until(lambda: bool(seen))
    assert delivered[0] == 0
    assert seen == [1000, "mistake"]


# ---------------------------------------------------------------------------
# A handler that sends many messages
# ---------------------------------------------------------------------------


async def test_a_handler_sending_past_the_write_buffer_suspends_and_delivers_everything() -> None:
    class Burst(WebSocketView):
        async def on_receive(self, websocket: WebSocket, data: Any) -> None:
            for number in range(int(data)):
                await websocket.send_text(f"{number:06d}" + "x" * 1000)
            await websocket.send_text("done")

    count = 2000  # 2 MB: past write_limit, and past what loopback buffers
    async with (
        serving(Burst, write_limit=16 * 1024) as server,
        connect(ws_url(server), max_size=None) as client,
    ):
        await client.send(str(count))
        await client.send("1")
        replies = await recv_all(client, count + 1 + 2)
    assert [r[:6] for r in replies[:count]] == [f"{n:06d}" for n in range(count)]
    assert replies[count] == "done"
    assert replies[count + 1][:6] == "000000"
    assert replies[count + 2] == "done"


# ---------------------------------------------------------------------------
# What a handler sees: its task, its context, asyncio.timeout
# ---------------------------------------------------------------------------

SEEN: contextvars.ContextVar[str] = contextvars.ContextVar("SEEN", default="unset")


async def test_a_handler_runs_as_the_connections_task_in_its_context() -> None:
    seen: dict[str, Any] = {}
    done = asyncio.Event()

    class Contextual(WebSocketView):
        async def on_connect(self, websocket: WebSocket) -> None:
            seen["task"] = asyncio.current_task()
            SEEN.set("from on_connect")
            await websocket.accept()

        async def on_receive(self, websocket: WebSocket, data: Any) -> None:
            assert asyncio.current_task() is seen["task"]
            previous = SEEN.get()
            SEEN.set(data)
            try:
                async with asyncio.timeout(0.001):
                    await asyncio.Event().wait()
            except TimeoutError:
                timed_out = "timeout"
            await websocket.send_text(f"{previous}|{timed_out}")

        async def on_disconnect(self, websocket: WebSocket, close_code: int) -> None:
            seen["at the end"] = SEEN.get()
            done.set()

    with counting_deliveries() as delivered:
        async with serving(Contextual) as server, connect(ws_url(server)) as client:
            await client.send("first")
            assert await asyncio.wait_for(client.recv(), TIMEOUT) == "from on_connect|timeout"
            await client.send("second")
            assert await asyncio.wait_for(client.recv(), TIMEOUT) == "first|timeout"
            await client.close()
            await asyncio.wait_for(done.wait(), TIMEOUT)
    assert delivered[0] == 2
    assert seen["at the end"] == "second"
    assert SEEN.get() == "unset"  # nothing leaked into the caller's context


async def test_a_stream_started_in_the_read_callback_keeps_other_senders_out() -> None:
    class Streaming(WebSocketView):
        async def on_receive(self, websocket: WebSocket, data: Any) -> None:
            async with websocket.stream() as stream:
                await stream.write("a")
                # Another task sends meanwhile: it must wait for the end.
                other = asyncio.create_task(websocket.send_text("other"))
                await asyncio.sleep(0)
                await stream.write("b")
            await other

    async with serving(Streaming) as server, connect(ws_url(server)) as client:
        await client.send("go")
        assert await recv_all(client, 2) == ["ab", "other"]


async def test_a_handler_may_receive_the_next_message_itself() -> None:
    class TwoPart(WebSocketView):
        encoding = "text"

        async def on_receive(self, websocket: WebSocket, data: str) -> None:
            if data == "pair":
                second = await websocket.receive_text()
                await websocket.send_text(f"pair of {second}")
            else:
                await websocket.send_text(data)

    with counting_deliveries() as delivered:
        async with serving(TwoPart) as server, connect(ws_url(server)) as client:
            for message in ("a", "pair", "b", "c", "pair"):
                await client.send(message)
            assert await recv_all(client, 3) == ["a", "pair of b", "c"]
            await client.send("d")
            assert await recv_all(client, 1) == ["pair of d"]
            await client.send("e")
            assert await recv_all(client, 1) == ["e"]
    assert delivered[0] >= 2


# ---------------------------------------------------------------------------
# One write per read
# ---------------------------------------------------------------------------


class Echo(WebSocketView):
    async def on_receive(self, websocket: WebSocket, data: Any) -> None:
        await websocket.send_text(data)
        await websocket.send_text(data + "!")


async def test_the_replies_to_one_read_leave_in_one_write_before_the_callback_returns() -> None:
    async with serving(Echo) as server:
        raw = await RawClient.connect(server.port)
        try:
            await raw.handshake()
            connection = only_connection(server)
            transport = connection.transport
            assert transport is not None
            # What the connection hands the transport, not the transport's
            # own calls (asyncio's writelines may call write).
            writes: list[str] = []
            inside = [False]
            original_write, original_writelines = transport.write, transport.writelines

            def write(data: Any) -> None:
                if not inside[0]:
                    writes.append("write")
                original_write(data)

            def writelines(data: Any) -> None:
                writes.append("writelines")
                inside[0] = True
                try:
                    original_writelines(data)
                finally:
                    inside[0] = False

            transport.write = write  # type: ignore[method-assign]
            transport.writelines = writelines  # type: ignore[method-assign,assignment]
            read = b"".join(mask_frame(OP_TEXT, f"m{n}".encode()) for n in range(32))
            in_callback: list[int] = []

            def one_read() -> None:
                connection.data_received(read)
                in_callback.append(len(writes))

            loop = asyncio.get_running_loop()
            loop.call_soon(one_read)
            frames = [await raw.recv_frame() for _ in range(64)]
            assert [f.payload for f in frames] == [
                p for n in range(32) for p in (f"m{n}".encode(), f"m{n}!".encode())
            ]
            assert in_callback == [1]  # written once, inside the read's own callback
            assert len(writes) == 1
        finally:
            raw.close()


# ---------------------------------------------------------------------------
# Unit tests: Suspended and direct_dispatch
# ---------------------------------------------------------------------------


async def test_suspended_finishes_a_coroutine_started_outside_its_task() -> None:
    loop = asyncio.get_running_loop()
    first = loop.create_future()
    second = loop.create_future()

    async def handler() -> str:
        a = await first
        b = await second
        return f"{a}{b}"

    coroutine = handler()
    yielded = coroutine.send(None)
    assert yielded is first
    loop.call_soon(first.set_result, "x")
    loop.call_soon(lambda: loop.call_soon(second.set_result, "y"))
    assert await Suspended(coroutine, yielded) == "xy"


async def test_suspended_passes_a_cancellation_thrown_into_it_to_the_coroutine() -> None:
    loop = asyncio.get_running_loop()
    seen: list[str] = []

    async def handler() -> str:
        try:
            await loop.create_future()
        except asyncio.CancelledError:
            seen.append("cancelled")
            return "swallowed"
        return "not reached"

    coroutine = handler()
    yielded = coroutine.send(None)
    # Cancelled while the task awaited the suspended handler.
    task = asyncio.ensure_future(Suspended(coroutine, yielded))
    await asyncio.sleep(0)
    task.cancel()
    assert await task == "swallowed"
    # Cancelled before the task took the handler over.
    coroutine = handler()
    yielded = coroutine.send(None)
    assert await Suspended(coroutine, yielded).throwing(asyncio.CancelledError()) == "swallowed"
    assert seen == ["cancelled", "cancelled"]


async def test_suspended_closes_its_coroutine_when_closed() -> None:
    closed: list[bool] = []

    async def handler() -> None:
        try:
            await asyncio.get_running_loop().create_future()
        finally:
            closed.append(True)

    coroutine = handler()
    generator = Suspended(coroutine, coroutine.send(None)).__await__()
    next(generator)
    generator.close()
    assert closed == [True]


class Handler:
    """A ``MessageHandler`` whose every message gets the same awaitable."""

    def __init__(self, awaitable: Awaitable[object]) -> None:
        self.awaitable = awaitable

    def start(self, message: object) -> Awaitable[object]:
        return self.awaitable

    def check(self, returned: object) -> None:
        raise AssertionError(returned)


async def test_direct_dispatch_is_only_for_the_connections_own_task() -> None:
    loop = asyncio.get_running_loop()

    class Pumped:
        def pump(self) -> None:
            pass

    inbox = Inbox(loop, 4, Writer(ServerConnection(), loop, 1024), Pumped())

    handler = Handler(asyncio.sleep(0))
    assert direct_dispatch(inbox, handler) is None  # no task given
    inbox.task = asyncio.current_task()
    inbox.context = contextvars.copy_context()
    assert isinstance(direct_dispatch(inbox, handler), Dispatch)
    other = asyncio.create_task(asyncio.sleep(0))
    inbox.task = other
    assert direct_dispatch(inbox, handler) is None  # another task
    await other
    await handler.awaitable


async def test_deliver_hands_over_a_handler_that_is_not_a_coroutine() -> None:
    loop = asyncio.get_running_loop()

    class Pumped:
        def pump(self) -> None:
            pass

    inbox = Inbox(loop, 4, Writer(ServerConnection(), loop, 1024), Pumped())
    future: asyncio.Future[object] = loop.create_future()

    async def parked() -> None:
        dispatch = Dispatch(Handler(future), inbox)
        waiter = inbox.waiter()
        assert waiter is not None
        inbox.dispatch = dispatch
        loop.call_soon(dispatch.run, lambda run: results.append(run.deliver(TextMessage(data="x"))))
        await waiter
        results.append(dispatch.handoff is future)

    results: list[bool] = []
    context = contextvars.copy_context()
    inbox.task = task = loop.create_task(parked(), context=context)
    inbox.context = context
    await task
    assert results == [False, True]
    assert inbox.dispatch is None
    assert inbox.busy
