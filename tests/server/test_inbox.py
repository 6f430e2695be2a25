"""Tests for wsserver.server.inbox: the queue between a connection and its WebSocket.

Unit tests: an ``Inbox`` with a real ``Writer`` (over a protocol core that
has nothing to write) and a stand-in connection whose pump counts its
calls.  The end-to-end behaviour (backpressure, held Closes) is in
``test_connection.py``.
"""

from __future__ import annotations

import asyncio

import pytest

from wsserver.protocol import BinaryMessage, ServerConnection, TextMessage
from wsserver.server.inbox import Disconnect, Inbox
from wsserver.server.writer import Writer


class Pump:
    """Stands in for the connection: its pump counts calls, may deliver a message."""

    def __init__(self) -> None:
        self.calls = 0
        self.inbox: Inbox | None = None
        self.delivers: TextMessage | None = None

    def pump(self) -> None:
        self.calls += 1
        if self.delivers is not None and self.inbox is not None:
            self.inbox.messages.append(self.delivers)


def make_inbox(max_queue: int = 4) -> tuple[Inbox, Writer, Pump]:
    loop = asyncio.get_running_loop()
    writer = Writer(ServerConnection(), loop, 1024)
    pump = Pump()
    inbox = Inbox(loop, max_queue, writer, pump)
    pump.inbox = inbox
    return inbox, writer, pump


async def test_take_returns_the_oldest_and_marks_the_application_busy() -> None:
    inbox, _, _ = make_inbox()
    inbox.messages.extend([TextMessage(data="a"), BinaryMessage(data=b"b")])
    assert inbox.take() == TextMessage(data="a")
    assert inbox.busy
    assert inbox.take() == BinaryMessage(data=b"b")
    assert not inbox.messages


async def test_taking_the_last_message_arms_the_writers_reply_now() -> None:
    inbox, writer, _ = make_inbox()
    inbox.messages.extend([TextMessage(data="a"), TextMessage(data="b")])
    inbox.take()
    assert not writer.reply_now  # a message remains: its reply will carry this one's
    inbox.take()
    assert writer.reply_now


async def test_a_full_queue_resumes_the_pump_at_half_not_at_the_first_free_slot() -> None:
    inbox, _, pump = make_inbox(max_queue=4)
    inbox.messages.extend(TextMessage(data=str(n)) for n in range(4))
    assert inbox.full
    inbox.blocked = True
    inbox.take()  # 3 left
    assert pump.calls == 0
    inbox.take()  # 2 left: half of max_queue
    assert pump.calls == 1
    assert not inbox.blocked
    inbox.take()
    assert pump.calls == 1  # not blocked any more: nothing to resume


async def test_waiter_clears_busy_and_stores_the_receivers_future() -> None:
    inbox, _, pump = make_inbox()
    inbox.busy = True
    waiter = inbox.waiter()
    assert waiter is not None
    assert inbox.receiver is waiter
    assert not inbox.busy
    assert pump.calls == 0  # nothing held, nothing blocked: nothing to pump
    inbox.messages.append(TextMessage(data="x"))
    inbox.wake()
    assert waiter.done()


@pytest.mark.parametrize("stalled", ["blocked", "held"])
async def test_waiter_lets_a_stalled_pump_run_first(stalled: str) -> None:
    inbox, _, pump = make_inbox()
    setattr(inbox, stalled, True)
    pump.delivers = TextMessage(data="was waiting")
    assert inbox.waiter() is None  # the pump brought a message: no need to wait
    assert pump.calls == 1
    assert inbox.receiver is None
    assert not inbox.blocked

    inbox.messages.clear()
    pump.delivers = None
    setattr(inbox, stalled, True)
    assert inbox.waiter() is not None  # the pump ran, nothing came: wait
    assert pump.calls == 2


async def test_end_keeps_the_first_ending_and_wakes_the_receiver() -> None:
    inbox, _, _ = make_inbox()
    waiter = inbox.waiter()
    assert waiter is not None
    inbox.end(Disconnect(1000, "bye"))
    inbox.end(Disconnect(1006))
    assert inbox.ended == Disconnect(1000, "bye")
    assert waiter.done()


async def test_wake_without_a_receiver_or_twice_is_harmless() -> None:
    inbox, _, _ = make_inbox()
    inbox.wake()
    waiter = inbox.waiter()
    assert waiter is not None
    inbox.wake()
    inbox.wake()
    assert waiter.result() is None


def test_disconnect_is_a_frozen_value() -> None:
    assert Disconnect(1000) == Disconnect(1000, "")
    with pytest.raises(AttributeError):
        Disconnect(1000).code = 1001  # type: ignore[misc]


async def test_stop_waiting_clears_dispatch_and_only_its_own_receiver() -> None:
    inbox, _, _ = make_inbox()
    waiter = inbox.waiter()
    assert waiter is not None
    inbox.dispatch = object()  # type: ignore[assignment]
    inbox.stop_waiting(waiter)
    assert (inbox.dispatch, inbox.receiver) == (None, None)
    # A handler handed over while it waited in receive() has a future of
    # its own: the parked loop coming back leaves it.
    own = inbox.waiter()
    inbox.stop_waiting(waiter)
    assert inbox.receiver is own
