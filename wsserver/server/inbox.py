"""``Inbox``: what a connection received for its application, until taken.

The receiving half of the interface between a ``Connection`` and the
``WebSocket`` its application holds (the sending half is ``Sender``).
Neither reads or writes the other's fields: they share this object, each
with its own side of it.

The connection (producer):

- appends each message to ``messages`` (a plain ``deque.append`` in its
  pump, the hot path), records the end of the stream with ``end`` (or sets
  ``ended`` directly when the peer's Close or failure arrives), and calls
  ``wake`` once after a batch;
- sets ``blocked`` when it stopped pulling events because ``messages`` is
  full (``max_queue``), and ``held`` to whether the core holds back a Close
  or an error until the application has replied (``hold_replies``): both
  ask for a call to ``pump`` once the application is back;
- stamps ``last_received`` (loop time) when messages arrive, for the
  receive timeout;
- gives the application's task and the context it runs in (``task``,
  ``context``), and, while a view's receive loop is parked with a
  ``dispatch`` (``wsserver.server.dispatch``), hands each message to it
  instead of appending it, if nothing is queued and nothing is ``busy``.

The WebSocket (consumer):

- calls ``take`` for each message, and ``waiter`` when there is none and
  the stream has not ended; it clears ``receiver`` after waiting;
- (``WebSocket.handle_messages``) sets ``dispatch`` while it waits, and
  clears it when woken.

Each consumer method does, inline, what the connection used to do in a
call of its own: taking a message is one call, as is starting to wait.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from ..protocol import BinaryMessage, TextMessage
from .writer import Writer

__all__ = ["Delivery", "Disconnect", "Inbox"]


@dataclass(frozen=True, slots=True)
class Disconnect:
    """What ``receive()`` returns once when the peer has gone."""

    code: int
    reason: str = ""


class Pumped(Protocol):
    """The inbox's producer: the connection, whose pump it calls back."""

    def pump(self) -> None:
        """Pull events from the core as far as the inbox allows."""
        ...


class Delivery(Protocol):
    """What runs a parked view's handler (``wsserver.server.dispatch.Dispatch``)."""

    def run(self, pump: Callable[[Delivery], None]) -> None:
        """Call ``pump(self)`` as the application's task, in its context."""
        ...

    def deliver(self, message: TextMessage | BinaryMessage) -> bool:
        """Handle ``message`` now, within ``run``; whether the handler finished
        (else it was handed over to the task)."""
        ...


class Inbox:
    """The messages received for one WebSocket and not taken yet.

    Args:
        loop: the event loop, for the receiver's future.
        max_queue: ``ServerConfig.max_queue``; the connection stops pulling
            messages from the core at this many.
        writer: the connection's ``Writer``, whose ``reply_now`` taking
            the last message arms.
        connection: whose ``pump`` runs again when the application's
            progress lets it pull more events (held, not a bound method:
            a few bytes less per connection).

    Attributes:
        messages: received, not taken, oldest first.
        ended: how the stream ended (the peer's Close, a failure, the
            transport lost), or ``None``.
        busy: the application took a message and has not come back for the
            next: it may be composing a reply, so the connection holds back
            a Close from the peer until then (RFC 6455 section 5.5.1: no
            data after our Close).
        receiver: the future a waiting receiver awaits, or ``None``.
        blocked: the connection stopped pulling because ``messages`` is full.
        held: the core holds back a Close or an error for ``busy``.
        last_received: loop time of the last arrival of messages.
        task: the application's task, once the connection started it.
        context: the ``contextvars.Context`` that task runs in (the
            connection creates it with one it keeps, so that a handler run
            outside the task can run in the task's own context).
        dispatch: while a view's receive loop waits, what runs its handler
            for a message the pump parses (``None`` otherwise).
    """

    __slots__ = (
        "_connection",
        "_loop",
        "_max_queue",
        "_resume_at",
        "_writer",
        "blocked",
        "busy",
        "context",
        "dispatch",
        "ended",
        "held",
        "last_received",
        "messages",
        "receiver",
        "task",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        max_queue: int,
        writer: Writer,
        connection: Pumped,
    ) -> None:
        self._loop = loop
        self._max_queue = max_queue
        # The pump resumes once the queue is down to half of max_queue, not
        # at the first free slot: refilling a nearly full queue one message
        # at a time would run the whole pump (and a write) per message.
        self._resume_at = max_queue // 2
        self._writer = writer
        self._connection = connection
        self.messages: deque[TextMessage | BinaryMessage] = deque()
        self.ended: Disconnect | None = None
        self.busy = False
        self.receiver: asyncio.Future[None] | None = None
        self.blocked = False
        self.held = False
        self.last_received = 0.0
        self.task: asyncio.Task[Any] | None = None
        self.context: contextvars.Context | None = None
        self.dispatch: Delivery | None = None

    @property
    def full(self) -> bool:
        """Whether ``max_queue`` messages wait."""
        return len(self.messages) >= self._max_queue

    # -- the consumer's side (WebSocket.receive) ---------------------------

    def take(self) -> TextMessage | BinaryMessage:
        """The oldest message; there must be one.

        Marks the application ``busy``.  Taking the last one arms the
        writer's ``reply_now``: the application's next send is the reply a
        waiting peer needs, and nothing is left to join it.  If the pump
        stopped for a full queue, and the queue is down to half, it runs
        again.
        """
        messages = self.messages
        message = messages.popleft()
        self.busy = True
        if not messages:
            self._writer.reply_now = True
        if self.blocked and len(messages) <= self._resume_at:
            self.blocked = False
            self._connection.pump()
        return message

    def waiter(self) -> asyncio.Future[None] | None:
        """Start waiting for a message, with none queued and the stream open.

        The application is back for more, so it is no longer ``busy``.  If
        the pump stopped for the application (a full queue, a held Close),
        it runs first: a held Close or error can be answered now, since
        every message before it has been replied to.  Nothing else can be
        waiting: the pump parsed all that arrived when it arrived.

        Returns:
            The future the connection resolves (``wake``) when a message or
            the end arrives, also stored as ``receiver``; ``None`` if the
            pump's run brought one already.
        """
        self.busy = False
        if self.blocked or self.held:
            self.blocked = False
            self._connection.pump()
            if self.messages or self.ended is not None:
                return None
        waiter = self.receiver = self._loop.create_future()
        return waiter

    def stop_waiting(self, waiter: asyncio.Future[None]) -> None:
        """A parked receive loop (``WebSocket.handle_messages``) is back.

        Clears ``dispatch``, and ``receiver`` if it is still the loop's own
        ``waiter``: a handler handed over while it waited in ``receive()``
        is waiting with a future of its own.
        """
        self.dispatch = None
        if self.receiver is waiter:
            self.receiver = None

    # -- the producer's side (Connection) ------------------------------------

    def end(self, disconnect: Disconnect) -> None:
        """Record how the stream ended, unless it already has, and wake the receiver."""
        if self.ended is None:
            self.ended = disconnect
        self.wake()

    def wake(self) -> None:
        """Resolve the receiver's future, if one waits."""
        waiter = self.receiver
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
