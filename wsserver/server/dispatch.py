"""``Dispatch``: a message handler run in the connection's own read callback.

The direct path of a ``WebSocketView`` (issue 16).  While the view waits
for its next message (``WebSocket.handle_messages``), the connection's pump
runs inside ``Dispatch.run`` and hands each message it parses to
``Dispatch.deliver``, which starts the view's handler (``on_receive``) and
runs it right there, without waking the application's task: most
handlers send their reply and return without ever suspending, and a reply
made in the read callback leaves with the write at the end of that
callback, in the same loop iteration as the read.

A handler that does suspend (it awaits I/O, a lock, a full write buffer)
is handed over to the application's task, which finishes it
(``Suspended``) and then takes the messages that arrived meanwhile from the
inbox, in order, as it always has.  An exception raised before the handler
suspended is handed over too, and raised in the task: the server sees it
where it always did, with the same close code and log line.

While the handler runs outside its task it is made to look as though it
ran inside it, so that nothing an application can observe differs:

- ``asyncio.current_task()`` is the application's task (asyncio's own
  ``_enter_task``/``_leave_task``, the pair its tasks use around each
  step): ``asyncio.timeout()``, ``websocket.stream()`` and anyio's
  cancel scopes work as they do in the task, and cancel the right one;
- context variables are the task's own: the connection creates the task
  with a ``contextvars.Context`` it keeps (``Inbox.context``), and runs the
  handler in that very context, so a variable a handler sets is seen by the
  next one, by ``on_disconnect``, and by tasks it starts.

Both are entered once per read (``Dispatch.run`` around the pump), not once
per message: each costs about as much as a short handler's own work.

One message at a time: the pump delivers only while the view is parked
with nothing queued and no handler in progress (``Inbox.busy``), and never
from inside a running task (a pump that a handler's own ``close()`` starts
queues instead).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Generator
from typing import TYPE_CHECKING, Any, Protocol

from ..protocol import BinaryMessage, TextMessage

if TYPE_CHECKING:
    from .inbox import Inbox

__all__ = ["Dispatch", "MessageHandler", "Suspended", "direct_dispatch"]


class MessageHandler(Protocol):
    """What ``WebSocket.handle_messages`` runs for each message (a view's is
    ``wsserver.server.views``' own)."""

    def start(self, message: TextMessage | BinaryMessage) -> Awaitable[object]:
        """The awaitable that handles ``message`` (typically the coroutine of
        ``on_receive``, not run yet)."""
        ...

    def check(self, returned: object) -> None:
        """Called with what a handler returned, when not ``None``; what it
        raises ends the receive loop as a handler's exception would."""
        ...


# asyncio's pair around each step of a task (C functions since 3.7): they
# make current_task() answer the given task.  Looked up once; a Python that
# lacks them gets no direct path (Inbox.context stays unused).
_enter_task: Callable[[asyncio.AbstractEventLoop, asyncio.Task[Any]], None] | None = getattr(
    asyncio.tasks, "_enter_task", None
)
_leave_task: Callable[[asyncio.AbstractEventLoop, asyncio.Task[Any]], None] | None = getattr(
    asyncio.tasks, "_leave_task", None
)


class Suspended:
    """A handler's coroutine that suspended outside its task.

    Awaiting this (in the task) finishes the coroutine: the first thing it
    passes to the task is what the coroutine was waiting for when it
    suspended (the future, or ``None`` for a bare yield), exactly as if the
    task had run that first step itself; every later step goes through
    unchanged, results, exceptions and cancellation alike.
    """

    __slots__ = ("_coroutine", "_thrown", "_yielded")

    def __init__(self, coroutine: Coroutine[Any, Any, object], yielded: object) -> None:
        self._coroutine = coroutine
        self._yielded = yielded
        self._thrown: BaseException | None = None

    def throwing(self, error: BaseException) -> Suspended:
        """Finish by throwing ``error`` into the coroutine first.

        For a cancellation that reached the task between the hand-over and
        the task's first step: the handler, not the receive loop, is what
        the task was running, so it is the handler that is cancelled.
        """
        self._thrown = error
        return self

    def __await__(self) -> Generator[Any, Any, object]:
        return _finish(self._coroutine, self._yielded, self._thrown)


def _finish(
    coroutine: Coroutine[Any, Any, object], yielded: object, thrown: BaseException | None
) -> Generator[Any, Any, object]:
    # A hand-written ``yield from`` whose first step was already taken.
    try:
        if thrown is not None:
            yielded = coroutine.throw(thrown)
        while True:
            try:
                sent = yield yielded
            except GeneratorExit:
                coroutine.close()
                raise
            except BaseException as error:
                yielded = coroutine.throw(error)
            else:
                yielded = coroutine.send(sent)
    except StopIteration as done:
        return done.value


class Dispatch:
    """Runs a receive loop's handler for the messages the pump delivers.

    Created by ``direct_dispatch`` for one ``WebSocket.handle_messages``
    call, around its ``MessageHandler``; the loop sets it as
    ``Inbox.dispatch`` while it is parked.

    Attributes:
        handoff: what the task must finish before its next message: a
            ``Suspended`` handler (or the awaitable a handler that is not a
            coroutine function returned), or the exception a handler
            raised; ``None`` when every handler finished.
    """

    __slots__ = ("_handler", "_inbox", "handoff")

    def __init__(self, handler: MessageHandler, inbox: Inbox) -> None:
        # Few fields: an idle view holds one (the task and its context are
        # read from the inbox, once per read).
        self._handler = handler
        self._inbox = inbox
        self.handoff: Awaitable[object] | BaseException | None = None

    def run(self, pump: Callable[[Dispatch], None]) -> None:
        """Call ``pump(self)`` as the task and in its context.

        The connection's pump runs in here when the view is parked, so that
        the task is entered and the context switched once per read, not
        once per message.  The caller runs outside every task.
        """
        inbox = self._inbox
        task = inbox.task
        context = inbox.context
        assert task is not None and context is not None
        assert _enter_task is not None and _leave_task is not None
        loop = task.get_loop()
        _enter_task(loop, task)
        try:
            context.run(pump, self)
        finally:
            _leave_task(loop, task)

    def deliver(self, message: TextMessage | BinaryMessage) -> bool:
        """Handle ``message`` now (within ``run``).

        The view is parked, nothing is queued and no handler is out.

        Returns:
            ``True`` if the handler finished; ``False`` if it was handed
            over (it suspended or raised): the view's receive loop is woken
            to finish it, and ``Inbox.dispatch`` is cleared, so that what
            arrives next queues behind it.
        """
        inbox = self._inbox
        # The parked loop's future, kept aside: a handler may itself call
        # receive(), which must find no receiver waiting.
        parked = inbox.receiver
        inbox.receiver = None
        # Busy as in the task: a Close from the peer that a pump started by
        # the handler parses is held until the handler is done.
        inbox.busy = True
        handoff: Awaitable[object] | BaseException
        try:
            awaitable = self._handler.start(message)
            try:
                send = awaitable.send  # type: ignore[attr-defined]
            except AttributeError:
                # Not a coroutine (a plain function returning an awaitable,
                # or a mistake): the task awaits it as it always did, with
                # the same error if it cannot be awaited.
                handoff = awaitable
            else:
                handoff = Suspended(awaitable, send(None))  # type: ignore[arg-type]
        except StopIteration as done:
            returned = done.value
            if returned is None:
                inbox.busy = False
                inbox.receiver = parked
                return True
            try:
                self._handler.check(returned)
            except Exception as mistake:
                handoff = mistake
            else:
                inbox.busy = False
                inbox.receiver = parked
                return True
        except (KeyboardInterrupt, SystemExit):
            raise  # as a task's step does: they end the loop, not the handler
        except BaseException as error:
            handoff = error
        self.handoff = handoff
        inbox.dispatch = None
        if parked is not None and not parked.done():
            parked.set_result(None)
        return False


def direct_dispatch(inbox: Inbox, handler: MessageHandler) -> Dispatch | None:
    """A ``Dispatch`` for a receive loop running in the connection's own task.

    ``None`` when the loop runs in another task (the connection cannot run
    handlers as that task: it does not hold its context), when the
    connection gave no task (a test's stand-in), or on a Python without
    asyncio's ``_enter_task``: the loop then receives as any other does.
    """
    task = inbox.task
    if task is None or inbox.context is None or _enter_task is None or _leave_task is None:
        return None
    if asyncio.current_task() is not task:
        return None
    return Dispatch(handler, inbox)
