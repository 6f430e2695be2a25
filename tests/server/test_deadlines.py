"""``DeadlineSweep``: one timer for many same-length deadlines.

Most tests drive the sweep with a hand-turned clock (``ManualLoop``: the two
loop methods the sweep uses, ``time`` and ``call_at``), so that what is
asserted does not depend on how busy the machine is; one runs it on a real
event loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import cast

import pytest

from wsserver.server.deadlines import (
    MAX_RESOLUTION,
    MIN_RESOLUTION,
    DeadlineSweep,
    resolution_for,
)


class Timer:
    """What the sweep uses of an ``asyncio.TimerHandle``: ``cancel``."""

    def __init__(self, when: float, callback: Callable[[], object]) -> None:
        self.when = when
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class ManualLoop:
    """A clock moved by the test, and the timers armed on it."""

    def __init__(self) -> None:
        self.now = 100.0
        self.timers: list[Timer] = []

    def time(self) -> float:
        return self.now

    def call_at(self, when: float, callback: Callable[[], object]) -> asyncio.TimerHandle:
        timer = Timer(when, callback)
        self.timers.append(timer)
        return cast(asyncio.TimerHandle, timer)

    def armed(self) -> list[float]:
        return sorted(timer.when for timer in self.timers if not timer.cancelled)

    def advance(self, to: float) -> None:
        """Move the clock to ``to``, running the timers due on the way, in order."""
        while True:
            due = [t for t in self.timers if not t.cancelled and t.when <= to]
            if not due:
                break
            timer = min(due, key=lambda t: t.when)
            self.timers.remove(timer)
            self.now = max(self.now, timer.when)
            timer.callback()
        self.now = to


def sweep(timeout: float = 10.0) -> tuple[ManualLoop, DeadlineSweep[str], list[tuple[float, str]]]:
    loop = ManualLoop()
    fired: list[tuple[float, str]] = []
    deadlines: DeadlineSweep[str] = DeadlineSweep(
        cast(asyncio.AbstractEventLoop, loop), timeout, lambda item: fired.append((loop.now, item))
    )
    return loop, deadlines, fired


def test_resolution_is_a_tenth_of_the_timeout_within_bounds() -> None:
    assert resolution_for(10.0) == 1.0
    assert resolution_for(2.0) == pytest.approx(0.2)
    assert resolution_for(0.1) == MIN_RESOLUTION
    assert resolution_for(3600.0) == MAX_RESOLUTION


def test_an_item_expires_at_its_deadline_not_before() -> None:
    loop, deadlines, fired = sweep()
    deadlines.start("a")
    assert loop.armed() == [110.0]
    loop.advance(109.999)
    assert fired == []
    loop.advance(110.0)
    assert fired == [(110.0, "a")]
    assert len(deadlines) == 0
    # Nothing left: the timer is not re-armed.
    assert loop.armed() == []


def test_one_timer_serves_every_deadline() -> None:
    loop, deadlines, fired = sweep()
    for index in range(1000):
        loop.now = 100.0 + index * 0.001
        deadlines.start(f"c{index}")
    assert len(loop.armed()) == 1
    loop.advance(200.0)
    assert len(fired) == 1000
    # Batched: one wake-up per resolution at most, none early, and none
    # later than the resolution past its item's deadline.
    for when, item in fired:
        deadline = 100.0 + int(item[1:]) * 0.001 + 10.0
        assert deadline <= when <= deadline + deadlines.resolution
    assert len({when for when, _ in fired}) <= 2


def test_a_cancelled_deadline_never_fires() -> None:
    loop, deadlines, fired = sweep()
    deadlines.start("a")
    deadlines.start("b")
    deadlines.cancel("a")
    deadlines.cancel("never started")
    assert "a" not in deadlines
    assert "b" in deadlines
    loop.advance(120.0)
    assert [item for _, item in fired] == ["b"]


def test_cancelling_everything_leaves_one_empty_wake_up() -> None:
    loop, deadlines, fired = sweep()
    deadlines.start("a")
    deadlines.cancel("a")
    loop.advance(110.0)
    assert fired == []
    assert loop.armed() == []


def test_restarting_moves_the_deadline() -> None:
    loop, deadlines, fired = sweep()
    deadlines.start("a")
    deadlines.start("b")
    loop.now = 105.0
    deadlines.start("a")  # a kept-alive connection between two requests
    loop.advance(110.0)
    assert fired == [(110.0, "b")]
    loop.advance(115.0 + deadlines.resolution)
    assert [item for _, item in fired] == ["b", "a"]
    assert 115.0 <= fired[1][0] <= 115.0 + deadlines.resolution


def test_a_sweep_soon_after_another_waits_for_the_resolution() -> None:
    loop, deadlines, fired = sweep()
    deadlines.start("a")
    loop.now = 100.5
    deadlines.start("b")
    loop.advance(110.0)
    assert fired == [(110.0, "a")]
    # b is due at 110.5, within the resolution (1 s): the next sweep is at 111.
    assert loop.armed() == [111.0]
    loop.advance(111.0)
    assert fired[1] == (111.0, "b")


def test_a_callback_may_start_and_cancel_deadlines() -> None:
    loop = ManualLoop()
    fired: list[str] = []
    deadlines: DeadlineSweep[str]

    def expired(item: str) -> None:
        fired.append(item)
        deadlines.cancel("b")
        if item == "a":
            deadlines.start("a")  # its own, again

    deadlines = DeadlineSweep(cast(asyncio.AbstractEventLoop, loop), 10.0, expired)
    deadlines.start("a")
    deadlines.start("b")  # due at the same sweep, cancelled by a's callback
    loop.advance(110.0)
    assert fired == ["a"]
    assert "a" in deadlines
    assert "b" not in deadlines
    loop.advance(121.0)
    assert fired == ["a", "a"]


def test_a_failing_callback_is_logged_and_the_sweep_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    loop = ManualLoop()
    fired: list[str] = []

    def expired(item: str) -> None:
        if item == "bad":
            raise RuntimeError("boom")
        fired.append(item)

    deadlines = DeadlineSweep(cast(asyncio.AbstractEventLoop, loop), 10.0, expired)
    deadlines.start("bad")
    deadlines.start("good")
    with caplog.at_level(logging.ERROR, logger="wsserver"):
        loop.advance(110.0)
    assert fired == ["good"]
    assert [r.getMessage() for r in caplog.records] == ["a deadline's callback failed"]


def test_close_forgets_everything() -> None:
    loop, deadlines, fired = sweep()
    deadlines.start("a")
    deadlines.close()
    assert len(deadlines) == 0
    assert loop.armed() == []
    loop.advance(200.0)
    assert fired == []


async def test_on_a_real_event_loop() -> None:
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    fired: list[float] = []

    def expired(item: str) -> None:
        fired.append(time.monotonic())
        done.set()

    timeout = 0.05
    deadlines: DeadlineSweep[str] = DeadlineSweep(loop, timeout, expired)
    started = time.monotonic()
    deadlines.start("a")
    await asyncio.wait_for(done.wait(), 30)
    assert fired[0] - started >= timeout * 0.9
    assert len(deadlines) == 0


def test_close_before_anything_was_set() -> None:
    loop, deadlines, fired = sweep()
    deadlines.close()
    deadlines.start("a")
    loop.advance(110.0)
    assert fired == [(110.0, "a")]
