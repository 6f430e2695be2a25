"""This node's link to the other nodes: the backend, started once, and the
background work that goes with it.

``NodeLink`` starts the backend on first need (every operation that talks to
the other nodes calls ``start``; concurrent callers share one attempt),
stamps what this node publishes with its id (so that it can ignore its own
publications when they come back), and keeps the background tasks it
spawns, so that ``close`` can stop them.  What the other nodes send goes to
the ``receive`` callback (``remote.RemoteMessages``); the backend's state
changes to ``on_status``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from .addresses import ALL_NODES, node_subject
from .backends import Backend, BackendUnavailable

__all__ = ["NodeLink"]

logger = logging.getLogger("wsserver.plugins.channels")

_T = TypeVar("_T")


class NodeLink:
    """The backend of one ``ChannelManager``, and its background tasks.

    Args:
        backend: how to reach the other nodes.
        receive: called with ``(subject, payload)`` for each message from
            the backend (this node's own publications included).
        on_status: called with ``False`` when the backend loses the other
            nodes, and ``True`` when it has them again.
    """

    def __init__(
        self,
        backend: Backend,
        *,
        receive: Callable[[str, dict[str, Any]], None],
        on_status: Callable[[bool], None],
    ) -> None:
        self.backend = backend
        self._receive = receive
        self._on_status = on_status
        self._started = False
        self._starting: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def node_id(self) -> str:
        """This node's id."""
        return self.backend.node_id

    async def start(self) -> None:
        """Start the backend (idempotent).

        Returns once the backend's first connection attempt is over; a
        backend that could not connect keeps trying in the background.
        """
        if self._started:
            return
        if self._starting is None:
            self._starting = asyncio.create_task(self._start(), name="channels-start")
        await asyncio.shield(self._starting)

    async def _start(self) -> None:
        subjects = (ALL_NODES, node_subject(self.node_id))
        await self.backend.start(self._receive, subjects, self._on_status)
        self._started = True

    async def close(self) -> None:
        """Cancel the background tasks, then stop the backend (if it was started)."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._starting is not None:
            await asyncio.gather(self._starting, return_exceptions=True)
            self._starting = None
            await self.backend.close()
        self._started = False

    async def publish(
        self, subject: str, payload: dict[str, Any], *, wait: bool = False
    ) -> int | None:
        """Publish for the other nodes (see ``Backend.publish``).

        Raises:
            BackendUnavailable: the other nodes cannot be reached.
        """
        await self.start()
        payload["o"] = self.node_id
        return await self.backend.publish(subject, payload, wait=wait)

    async def publish_quietly(self, subject: str, payload: dict[str, Any]) -> None:
        """Publish, fire and forget: during an outage the other nodes miss it
        (at most once delivery); the backend logs the outage."""
        with contextlib.suppress(BackendUnavailable):
            await self.publish(subject, payload)

    def spawn(self, coroutine: Awaitable[_T], name: str) -> asyncio.Task[_T]:
        """Run ``coroutine`` in the background until it ends or ``close``; a
        failure is logged."""
        task: asyncio.Task[_T] = asyncio.ensure_future(coroutine)
        task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("channels: task %s failed", task.get_name(), exc_info=task.exception())
