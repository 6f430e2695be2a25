"""A page connection's jobs, run one at a time, in order.

Events, attaches and navigations arrive in the session's receive loop; they
are queued here and run by one worker task (``JobQueue.run``), so that a
handler may await the browser (``execute_js(..., wait_for_result=True)``)
while the receive loop stays free for the answer.  Calls made from outside
(``PageConnection.refresh`` from a timer) wait for their turn; calls made
by a job (a handler calling ``refresh``) run at once, as the worker is
theirs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from ..runtime import SessionClosed

__all__ = ["Job", "JobQueue"]

#: A job: a coroutine function taking nothing.
Job = Callable[[], Awaitable[None]]


class JobQueue:
    """A bounded queue of jobs and the worker running them.

    Args:
        limit: jobs waiting for the worker; ``submit`` beyond it floods the
            queue.
        on_flood: called once, when ``submit`` finds the queue full (the
            browser sends faster than the handlers run); every job submitted
            after that is dropped.
        on_failure: awaited by the worker when a job nobody waits for fails;
            the worker stops after it.
    """

    def __init__(
        self,
        limit: int,
        *,
        on_flood: Callable[[], None],
        on_failure: Callable[[Exception], Awaitable[None]],
    ) -> None:
        self._queue: asyncio.Queue[tuple[Job, asyncio.Future[None] | None]]
        self._queue = asyncio.Queue(limit)
        self._on_flood = on_flood
        self._on_failure = on_failure
        self._worker: asyncio.Task[None] | None = None
        self._waiting: set[asyncio.Future[None]] = set()
        self._flooded = False
        self._closed = False

    @property
    def flooded(self) -> bool:
        """Whether the queue overflowed (and drops what is submitted)."""
        return self._flooded

    def submit(self, job: Job) -> None:
        """Queue ``job`` without waiting for it (from the receive loop)."""
        if self._flooded:
            return
        try:
            self._queue.put_nowait((job, None))
        except asyncio.QueueFull:
            self._flooded = True
            self._on_flood()

    async def call(self, job: Job) -> None:
        """Run ``job`` in its turn and wait for it; at once in the worker.

        Raises:
            SessionClosed: the queue was closed before ``job`` ran.
            Exception: whatever ``job`` raised.
        """
        if self._worker is not None and asyncio.current_task() is self._worker:
            await job()  # already in the worker (a handler): run it now
            return
        if self._closed:
            raise SessionClosed("the page's connection is closed")
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.add(waiter)
        try:
            await self._queue.put((job, waiter))
            await waiter
        finally:
            self._waiting.discard(waiter)

    async def run(self) -> None:
        """Run the jobs until cancelled, or until one ends the connection
        (``SessionClosed``) or fails with nobody waiting for it."""
        self._worker = asyncio.current_task()
        while True:
            job, waiter = await self._queue.get()
            if waiter is not None and waiter.done():
                continue  # its caller gave up
            try:
                await job()
            except SessionClosed as exc:
                if waiter is not None and not waiter.done():
                    waiter.set_exception(exc)
                return
            except Exception as exc:
                if waiter is not None and not waiter.done():
                    waiter.set_exception(exc)
                    continue
                await self._on_failure(exc)
                return
            else:
                if waiter is not None and not waiter.done():
                    waiter.set_result(None)

    def close(self) -> None:
        """The connection is gone: every caller waiting gets ``SessionClosed``,
        and so do later ``call``s."""
        self._closed = True
        for waiter in list(self._waiting):
            if not waiter.done():
                waiter.set_exception(SessionClosed("the page's connection closed"))
        while not self._queue.empty():
            _, queued = self._queue.get_nowait()
            if queued is not None and not queued.done():
                queued.set_exception(SessionClosed("the page's connection closed"))
