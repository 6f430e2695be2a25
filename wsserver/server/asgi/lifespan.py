"""The ASGI lifespan protocol: startup before listening, shutdown after.

The application's lifespan call runs in a task of its own for as long as
the server does: ``startup()`` sends ``lifespan.startup`` and waits for
``lifespan.startup.complete`` or ``.failed``; ``shutdown()`` sends
``lifespan.shutdown`` and waits for ``.complete`` or ``.failed``.  The
``state`` dictionary of the lifespan scope is what startup fills; each
connection's scope gets a shallow copy of it.

An application that does not speak the protocol (it raises on the
``lifespan`` scope, or returns, before answering startup) is served
without it, with one debug line, as uvicorn's ``--lifespan auto`` does;
with ``required`` (``--lifespan on``) that is a failure too.
An application that answers ``startup.failed``, or raises after it
started answering, does not start: ``LifespanFailed``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from ..startup import ApplicationStartupError
from .scope import lifespan_scope

__all__ = ["ASGICallable", "Lifespan", "LifespanFailed"]

logger = logging.getLogger("wsserver")

Message = dict[str, Any]

#: Seconds given to an application to return from its lifespan call after
#: ``lifespan.shutdown.complete``; it is cancelled after that.
_RETURN_TIMEOUT = 1.0

#: ``app(scope, receive, send)``.  Loosely typed on purpose: each framework
#: spells the three types its own way (Starlette's ``MutableMapping``s).
ASGICallable = Callable[[Any, Any, Any], Awaitable[None]]


def _summary(message: object) -> str:
    """One line for a ``failed`` event's message.

    Starlette and Lilya send the whole traceback: it is logged, and its
    last line (the exception) is what the error says.
    """
    text = str(message or "").strip()
    if not text:
        return "(no message)"
    if text.startswith("Traceback (most recent call last)"):
        logger.error("the ASGI application's lifespan reported:\n%s", text)
        return text.splitlines()[-1]
    return " ".join(line.strip() for line in text.splitlines())


class LifespanFailed(ApplicationStartupError):
    """The application's lifespan startup (or shutdown) failed."""


class Lifespan:
    """One run of the lifespan protocol (``startup()`` then ``shutdown()``)."""

    def __init__(self, app: ASGICallable, *, required: bool = False) -> None:
        self._app = app
        self._required = required
        #: The lifespan scope's ``state``, shared with every connection's scope.
        self.state: dict[str, Any] = {}
        self._events: asyncio.Queue[Message] = asyncio.Queue()
        self._answers: asyncio.Queue[Message] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        #: Whether the application speaks the protocol (known after startup).
        self.supported = True
        self._answered_startup = False
        self._failed_sent = False

    async def startup(self) -> None:
        """Run the application's startup.

        Raises:
            LifespanFailed: ``lifespan.startup.failed``, or an exception
                after the application began answering.
        """
        self._task = asyncio.get_running_loop().create_task(self._run())
        await self._events.put({"type": "lifespan.startup"})
        answer = await self._answer()
        kind = answer.get("type")
        if kind == "lifespan.startup.complete":
            return
        if kind == "lifespan.startup.failed":
            message = _summary(answer.get("message"))
            raise LifespanFailed(f"the application's lifespan startup failed: {message}")
        raise LifespanFailed(f"the application's lifespan startup failed: {kind}")

    async def shutdown(self) -> None:
        """Run the application's shutdown (nothing if it has no lifespan).

        Raises:
            LifespanFailed: ``lifespan.shutdown.failed``, or an exception.
        """
        task = self._task
        if task is None or not self.supported or task.done():
            return
        await self._events.put({"type": "lifespan.shutdown"})
        answer = await self._answer()
        kind = answer.get("type")
        if kind in ("lifespan.shutdown.complete", "lifespan.returned"):
            # The application returns once shut down; do not wait for ever
            # for one that does not.
            await asyncio.wait((task,), timeout=_RETURN_TIMEOUT)
            task.cancel()
            return
        message = _summary(answer.get("message")) if "message" in answer else kind
        raise LifespanFailed(f"the application's lifespan shutdown failed: {message}")

    async def _answer(self) -> Message:
        """The application's next answer, or what its end means."""
        assert self._task is not None
        getter = asyncio.ensure_future(self._answers.get())
        await asyncio.wait((getter, self._task), return_when=asyncio.FIRST_COMPLETED)
        if getter.done():
            return getter.result()
        getter.cancel()
        # The task ended without answering: it put what that means.
        return self._answers.get_nowait()

    async def _run(self) -> None:
        try:
            await self._app(lifespan_scope(self.state), self._receive, self._send)
        except Exception as error:
            if not self._answered_startup and self._required:
                logger.exception("the ASGI application failed on the lifespan scope")
                self._answers.put_nowait(
                    {
                        "type": "lifespan.startup.failed",
                        "message": f"{type(error).__name__}: {error}",
                    }
                )
                return
            if not self._answered_startup:
                self.supported = False
                logger.debug(
                    "the ASGI application does not support lifespan (%s: %s): serving without it",
                    type(error).__name__,
                    error,
                )
                self._answers.put_nowait({"type": "lifespan.startup.complete"})
                return
            if not self._failed_sent:
                # (Starlette sends ``failed`` with the traceback, then
                # raises: its message already says it all.)
                logger.exception("the ASGI application's lifespan failed")
            self._answers.put_nowait(
                {"type": "lifespan.failed", "message": f"{type(error).__name__}: {error}"}
            )
            return
        if not self._answered_startup and self._required:
            message = "the application returned without answering lifespan.startup"
            self._answers.put_nowait({"type": "lifespan.startup.failed", "message": message})
            return
        if not self._answered_startup:
            self.supported = False
            logger.debug("the ASGI application returned from lifespan: serving without it")
            self._answers.put_nowait({"type": "lifespan.startup.complete"})
            return
        self._answers.put_nowait({"type": "lifespan.returned"})

    async def _receive(self) -> Message:
        return await self._events.get()

    async def _send(self, message: Message) -> None:
        kind = message.get("type")
        if kind not in (
            "lifespan.startup.complete",
            "lifespan.startup.failed",
            "lifespan.shutdown.complete",
            "lifespan.shutdown.failed",
        ):
            raise RuntimeError(f"unexpected ASGI lifespan message {kind!r}")
        self._answered_startup = True
        self._failed_sent = kind.endswith(".failed")
        await self._answers.put(message)
