"""``DeadlineSweep``: many one-shot deadlines of the same length, one timer.

The server bounds each new connection's wait for its request head
(``open_timeout``) and each WebSocket endpoint's answer to its handshake
(``handshake_timeout``).  With a ``loop.call_later`` handle per connection,
every handshake paid for a ``TimerHandle`` (and the context it captures), a
push onto the loop's heap, and its cancellation a moment later, when the
request arrived well in time, as almost every one does.

A sweep keeps the deadlines in a dictionary instead, in the order they were
set.  All of them are the same length and the loop's clock only moves
forward, so that order is also the order in which they fall due: one timer,
armed for the earliest, closes every item past its deadline, then re-arms
for the next.  Setting a deadline is a dictionary insertion, cancelling it a
removal; neither touches the loop.

Resolution: a sweep never acts before a deadline, but after a sweep the
next one is at least ``resolution`` later, so that a steady stream of
deadlines costs at most one wake-up per ``resolution``.  An item may thus
live up to ``resolution`` past its deadline: ``timeout / 10``, at least
50 ms and at most 1 s (so 1 s for the 10 s defaults).  A cancelled deadline
leaves the timer armed; it finds nothing due and is not re-armed if nothing
is left.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["DeadlineSweep", "resolution_for"]

logger = logging.getLogger("wsserver")

T = TypeVar("T")

#: The bounds of a sweep's resolution, in seconds (see the module docstring).
MIN_RESOLUTION = 0.05
MAX_RESOLUTION = 1.0


def resolution_for(timeout: float) -> float:
    """How late past its deadline a sweep of ``timeout`` deadlines may act."""
    return min(max(timeout / 10, MIN_RESOLUTION), MAX_RESOLUTION)


class DeadlineSweep(Generic[T]):
    """Deadlines ``timeout`` seconds after ``start``, all served by one timer.

    Args:
        loop: the event loop, for its clock and the one timer.
        timeout: seconds from ``start(item)`` to ``item``'s deadline.
        expired: called with each item whose deadline passed (and which
            was not cancelled), once; an exception it raises is logged and
            does not stop the sweep.
    """

    __slots__ = ("_deadlines", "_expired", "_handle", "_loop", "resolution", "timeout")

    def __init__(
        self, loop: asyncio.AbstractEventLoop, timeout: float, expired: Callable[[T], None]
    ) -> None:
        self._loop = loop
        self.timeout = timeout
        self.resolution = resolution_for(timeout)
        self._expired = expired
        # Insertion order is deadline order: see the module docstring.
        self._deadlines: dict[T, float] = {}
        self._handle: asyncio.TimerHandle | None = None

    def __len__(self) -> int:
        return len(self._deadlines)

    def __contains__(self, item: object) -> bool:
        return item in self._deadlines

    def start(self, item: T) -> None:
        """Set ``item``'s deadline ``timeout`` from now (again, if it had one)."""
        deadlines = self._deadlines
        # Removed first, so that a renewed deadline moves to the end.
        deadlines.pop(item, None)
        deadline = self._loop.time() + self.timeout
        deadlines[item] = deadline
        if self._handle is None:
            self._handle = self._loop.call_at(deadline, self._sweep)

    def cancel(self, item: T) -> None:
        """Forget ``item``'s deadline, if it has one."""
        self._deadlines.pop(item, None)

    def close(self) -> None:
        """Forget every deadline and disarm the timer."""
        self._deadlines.clear()
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _sweep(self) -> None:
        self._handle = None
        deadlines = self._deadlines
        now = self._loop.time()
        due = []
        for item, deadline in deadlines.items():
            if deadline > now:
                break
            due.append((item, deadline))
        for item, deadline in due:
            # An earlier callback may have cancelled or renewed this one.
            if deadlines.get(item) != deadline:
                continue
            # Removed before its callback, which may set it again.
            del deadlines[item]
            try:
                self._expired(item)
            except Exception:
                logger.exception("a deadline's callback failed")
        if deadlines and self._handle is None:
            first = next(iter(deadlines.values()))
            self._handle = self._loop.call_at(max(first, now + self.resolution), self._sweep)
