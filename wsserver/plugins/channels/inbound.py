"""Messages from the pages: answers, custom messages and their handlers, chunks.

A page sends five kinds of ``ch`` messages:

- ``ready``: its channels module is loaded (the lifecycle then sends
  ``ch/init``); with ``pos``, the positions it had reached in topics with
  history before it reconnected (``{topic: {"ep": epoch, "off": offset}}``),
  kept on the channel for when the application subscribes it again;
- ``reply``: its answer to a ``send_and_wait`` (``response_for`` names the
  question's ``rchan``);
- ``custom``: a message of the application's (``kind``, ``data``, and an
  ``rchan`` when it waits for an answer), for the handler registered for
  its kind;
- ``token``: a new token for its identity (``token``, ``rchan``): checked
  by the channel's ``verify_token`` in the handlers' turn (the messages
  after it are handled under the new identity), answered by ``res`` with
  ``{"user": ...}`` or the refusal;
- ``chunk``: a slice of a larger message of any of these kinds.

Custom messages and token updates count against their user's rate
(``limits``): past it, a request is answered ``RateLimited`` and a ``send``
dropped.  A handler's ``send_and_wait`` past the user's ``max_user_waits``
answers the page's request ``TooManyWaits``.  Every handler runs with the
context variables of ``context`` set.

Custom messages of one connection are handled one at a time, in order, by a
task of their own (``HandlerInbox``), outside the receive loop: a handler
may await the page's own answers (``send_and_wait``) without blocking the
loop that receives them.  Chunks are kept by ``ChunkAssembly`` until their
message is whole, or dropped when it takes longer than ``chunk_timeout``.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from ..runtime.messages import Envelope, MalformedMessage, UnknownKindLog, decode, validate_name
from .addresses import PLUGIN, check_topic
from .backends import ChannelError
from .chunks import CHUNK_KIND, Reassembler, parse_chunk
from .context import bound
from .errors import HandlerError, ReplyError, TooManyWaits
from .history import Position
from .limits import UserLimits
from .settings import ChannelSettings

if TYPE_CHECKING:
    from .channel import Channel
    from .delivery import Delivery

__all__ = [
    "ChunkAssembly",
    "CustomHandler",
    "CustomMessage",
    "HandlerInbox",
    "HandlerTable",
    "Inbound",
    "TokenUpdate",
]

logger = logging.getLogger("wsserver.plugins.channels")

#: A custom message handler: ``handler(channel, data)``; its return value (or
#: the value its coroutine returns) is the answer to a page's ``request``.
CustomHandler = Callable[["Channel", Any], Any]

# Reply channel ids from the page: bounded, since they come back to it.
_MAX_RCHAN_LENGTH = 64
# How much of a page's error text is kept.
_MAX_ERROR_NAME = 200
_MAX_ERROR_MESSAGE = 4096


class CustomMessage(NamedTuple):
    """A page's custom message, waiting for its handler."""

    kind: str
    data: Any
    rchan: str | None


class TokenUpdate(NamedTuple):
    """A page's new token, waiting for its turn among the custom messages."""

    token: str
    rchan: str


#: What waits in a connection's ``HandlerInbox``.
InboxItem = CustomMessage | TokenUpdate


class HandlerTable:
    """The custom message handlers of a manager, by kind."""

    def __init__(self) -> None:
        self._handlers: dict[str, CustomHandler] = {}

    def add(self, kind: str, function: CustomHandler, *, replace: bool = False) -> None:
        """Register ``function`` for ``kind``.

        Raises:
            ValueError: an invalid kind name, or one already registered and
                ``replace`` is false.
        """
        validate_name(kind, "custom message kind")
        if kind in self._handlers and not replace:
            raise ValueError(f"a handler for the custom kind {kind!r} is already registered")
        self._handlers[kind] = function

    def remove(self, kind: str) -> CustomHandler | None:
        """Unregister and return the handler of ``kind``, if any."""
        return self._handlers.pop(kind, None)

    def get(self, kind: str) -> CustomHandler | None:
        """The handler of ``kind``, if any."""
        return self._handlers.get(kind)


def _check_rchan(rchan: object, kind: str) -> None:
    if not isinstance(rchan, str) or not 0 < len(rchan) <= _MAX_RCHAN_LENGTH:
        raise MalformedMessage(f"ch/{kind}: 'rchan' must be a string of 1 to {_MAX_RCHAN_LENGTH}")


class HandlerInbox:
    """One connection's custom messages waiting for their handler.

    A task of its own, started by the first message, runs them one at a
    time, in order.  When the inbox is full, ``put`` waits: the receive loop
    stops reading, and TCP pushes back on the page.

    Args:
        capacity: messages waiting at most (``max_inbox``).
        connection_id: the connection's id, for the log lines.
        name: the task's name.

    Attributes:
        unknown_kinds: the once-per-kind log of kinds without a handler.
    """

    def __init__(self, capacity: int, connection_id: int, *, name: str) -> None:
        self._queue: asyncio.Queue[InboxItem] = asyncio.Queue(capacity)
        self._name = name
        self._worker: asyncio.Task[None] | None = None
        self.unknown_kinds = UnknownKindLog(connection_id)

    async def put(self, message: InboxItem, run: Callable[[InboxItem], Awaitable[None]]) -> None:
        """Queue ``message``; the worker, started by the first message, calls
        ``run`` on each one in turn."""
        if self._worker is None:
            self._worker = asyncio.create_task(self._work(run), name=self._name)
        await self._queue.put(message)

    async def _work(self, run: Callable[[InboxItem], Awaitable[None]]) -> None:
        while True:
            await run(await self._queue.get())

    def close(self) -> None:
        """Stop the worker and drop what waits (the connection is gone)."""
        if self._worker is not None:
            self._worker.cancel()
        while not self._queue.empty():
            self._queue.get_nowait()


class ChunkAssembly:
    """One connection's chunked messages in progress, dropped when too slow.

    A ``Reassembler`` (``chunks.py``, which keeps no clock) and the timer
    that expires its messages at their deadline.

    Args:
        settings: the limits (``max_chunked_size``, ``max_chunks``,
            ``max_pending_chunked``, ``chunk_timeout``).
        connection_id: the connection's id, for the log lines.
    """

    def __init__(self, settings: ChannelSettings, connection_id: int) -> None:
        self._reassembler = Reassembler(
            max_size=settings.max_chunked_size,
            max_chunks=settings.max_chunks,
            max_pending=settings.max_pending_chunked,
            timeout=settings.chunk_timeout,
        )
        self._connection_id = connection_id
        self._timeout = settings.chunk_timeout
        self._expiry: asyncio.TimerHandle | None = None
        self._closed = False

    @property
    def pending(self) -> int:
        """Messages in progress."""
        return self._reassembler.pending

    @property
    def expired(self) -> int:
        """Messages dropped so far because chunks were missing."""
        return self._reassembler.expired

    def add(self, message: Envelope) -> str | None:
        """Keep one ``ch/chunk``; return the whole message's text once complete.

        Raises:
            MalformedMessage: a malformed chunk (``ChunkError``).
            MessageTooLarge: more than ``max_chunked_size`` in progress.
        """
        chunk = parse_chunk(message, max_chunks=self._reassembler.max_chunks)
        text = self._reassembler.add(chunk, asyncio.get_running_loop().time())
        self._schedule_expiry()
        return text

    def close(self) -> None:
        """Drop every message in progress (the connection is gone)."""
        self._closed = True
        if self._expiry is not None:
            self._expiry.cancel()
        self._reassembler.clear()

    def _schedule_expiry(self) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        deadline = self._reassembler.next_deadline
        if deadline is not None and not self._closed:
            loop = asyncio.get_running_loop()
            self._expiry = loop.call_at(deadline, self._expire)

    def _expire(self) -> None:
        self._expiry = None
        dropped = self._reassembler.expire(asyncio.get_running_loop().time())
        for chunk_id in dropped:
            logger.warning(
                "conn %d: chunked message %r incomplete after %g s: dropped",
                self._connection_id,
                chunk_id,
                self._timeout,
            )
        self._schedule_expiry()


class Inbound:
    """Handles what the pages send, for every channel of a manager.

    Args:
        handlers: the custom message handlers.
        delivery: sends the answers (``ch/res``).
        settings: the limits (``max_chunked_size``, ``max_token_length``).
        limits: each user's message rate.
    """

    def __init__(
        self,
        *,
        handlers: HandlerTable,
        delivery: Delivery,
        settings: ChannelSettings,
        limits: UserLimits,
    ) -> None:
        self._handlers = handlers
        self._delivery = delivery
        self._settings = settings
        self._limits = limits

    def listen(self, channel: Channel, *, on_ready: Callable[[Channel], None]) -> None:
        """Register the handlers of the page's messages on the channel's session.

        Args:
            channel: the channel.
            on_ready: called on the page's ``ch/ready``.
        """
        session = channel.session
        session.on(PLUGIN, "ready", lambda message: self._on_ready(channel, message, on_ready))
        session.on(PLUGIN, "reply", lambda message: self._on_reply(channel, message))
        session.on(PLUGIN, "custom", lambda message: self._on_custom(channel, message))
        session.on(PLUGIN, "token", lambda message: self._on_token(channel, message))
        session.on(PLUGIN, CHUNK_KIND, lambda message: self._on_chunk(channel, message))

    def _on_ready(
        self, channel: Channel, message: Envelope, on_ready: Callable[[Channel], None]
    ) -> None:
        positions = message.get("pos")
        if positions is not None:
            channel.recovery = self._positions(positions)
        on_ready(channel)

    def _positions(self, positions: object) -> dict[str, Position]:
        """The page's ``pos`` map, checked.

        Raises:
            MalformedMessage: not a map of topics to ``{ep, off}`` (the
                runtime closes the connection with 1007).  Beyond
                ``max_recover_topics`` positions are ignored.
        """
        if not isinstance(positions, dict):
            raise MalformedMessage("ready: pos must be an object")
        checked: dict[str, Position] = {}
        limit = self._settings.max_recover_topics
        if len(positions) > limit:
            # Not an attack worth a close: a page that followed many topics.
            # The first ones are kept; the others start afresh.
            logger.info("channels: ready: %d topic positions, %d kept", len(positions), limit)
        for topic, position in list(positions.items())[:limit]:
            try:
                check_topic(topic)
                if not isinstance(position, dict):
                    raise TypeError("a position is an object")
                epoch: Any = position.get("ep")
                offset: Any = position.get("off")
                checked[topic] = Position(epoch, offset)  # checks both
            except (TypeError, ValueError) as exc:
                raise MalformedMessage(f"ready: bad position for {topic!r}: {exc}") from None
        return checked

    # -- answers to send_and_wait -----------------------------------------------------------

    def _on_reply(self, channel: Channel, message: Envelope) -> None:
        rchan = message.require("response_for", str)
        ok = message.require("ok", bool)
        if not channel.replies.expects(rchan):
            channel.replies.ignore(rchan)  # a late answer: the request timed out
            return
        if ok:
            channel.replies.resolve(rchan, message.get("data"))
            return
        error = message.require("error", dict)
        name = str(error["name"])[:_MAX_ERROR_NAME] if error.get("name") else "Error"
        text = str(error.get("message", ""))[:_MAX_ERROR_MESSAGE]
        channel.replies.reject(rchan, ReplyError(name, text))

    # -- custom messages ---------------------------------------------------------------------

    async def _on_custom(self, channel: Channel, message: Envelope) -> None:
        kind = message.require("kind", str)
        try:
            validate_name(kind, "custom message kind")
        except ValueError as exc:
            raise MalformedMessage(str(exc)) from None
        rchan = message.get("rchan")
        if rchan is not None:
            _check_rchan(rchan, "custom")
        if channel.closed or not self._within_rate(channel, rchan):
            return
        custom = CustomMessage(kind, message.get("data"), rchan)
        await channel.inbox.put(custom, functools.partial(self._run_handler, channel))

    def _within_rate(self, channel: Channel, rchan: str | None) -> bool:
        """Take one of the user's messages; past the rate, answer ``RateLimited``."""
        if self._limits.allow(channel.user_id, asyncio.get_running_loop().time()):
            return True
        if rchan is not None:
            self._answer(
                channel,
                rchan,
                error={
                    "name": "RateLimited",
                    "message": f"more than {self._limits.rate:g} messages per second",
                },
            )
        return False

    async def _on_token(self, channel: Channel, message: Envelope) -> None:
        token = message.require("token", str)
        rchan = message.require("rchan", str)
        _check_rchan(rchan, "token")
        limit = self._settings.max_token_length
        if not 0 < len(token) <= limit:
            raise MalformedMessage(f"ch/token: 'token' must be 1 to {limit} characters")
        if channel.closed or not self._within_rate(channel, rchan):
            return
        await channel.inbox.put(
            TokenUpdate(token, rchan), functools.partial(self._run_handler, channel)
        )

    async def _run_handler(self, channel: Channel, message: InboxItem) -> None:
        if isinstance(message, TokenUpdate):
            await self._run_token(channel, message)
            return
        with bound(channel):
            await self._run_custom(channel, message)

    async def _run_token(self, channel: Channel, update: TokenUpdate) -> None:
        connection_id = channel.session.connection_id
        verify = channel.verify_token
        if verify is None:
            self._answer(
                channel,
                update.rchan,
                error={"name": "Unsupported", "message": "this endpoint takes no token updates"},
            )
            return
        try:
            with bound(channel):
                identity = verify(channel, update.token)
                if inspect.isawaitable(identity):
                    identity = await identity
            # An Identity, or TypeError (logged below as the mistake it is).
            await channel.manager.set_identity(channel.id, identity)
        except HandlerError as exc:
            # The token is refused: the connection keeps its identity.
            logger.info("conn %d: token update refused: %s", connection_id, exc)
            self._answer(channel, update.rchan, error={"name": "HandlerError", "message": str(exc)})
        except Exception:
            if channel.closed:
                return
            logger.exception("conn %d: error in verify_token", connection_id)
            self._answer(
                channel, update.rchan, error={"name": "InternalError", "message": "internal error"}
            )
        else:
            self._answer(channel, update.rchan, data={"user": channel.user_id})

    async def _run_custom(self, channel: Channel, message: CustomMessage) -> None:
        kind, data, rchan = message
        handler = self._handlers.get(kind)
        if handler is None:
            channel.inbox.unknown_kinds.report("ch.custom", kind)
            if rchan is not None:
                self._answer(
                    channel,
                    rchan,
                    error={"name": "UnknownKind", "message": f"no handler for {kind!r}"},
                )
            return
        try:
            result = handler(channel, data)
            if inspect.isawaitable(result):
                result = await result
        except HandlerError as exc:
            error = {"name": "HandlerError", "message": str(exc)}
        except MalformedMessage as exc:
            error = {"name": "MalformedMessage", "message": str(exc)}
        except TooManyWaits as exc:
            # The user's own limit, logged by it once per interval: the page
            # learns why, as with RateLimited; no traceback.
            error = {"name": "TooManyWaits", "message": str(exc)}
        except ChannelError:
            if channel.closed:
                return  # the connection ended under the handler: nobody to answer
            logger.exception(
                "conn %d: error in the %r handler", channel.session.connection_id, kind
            )
            error = {"name": "InternalError", "message": "internal error"}
        except Exception:
            logger.exception(
                "conn %d: error in the %r handler", channel.session.connection_id, kind
            )
            error = {"name": "InternalError", "message": "internal error"}
        else:
            if rchan is not None:
                self._answer(channel, rchan, data=result)
            return
        if rchan is not None:
            self._answer(channel, rchan, error=error)

    def _answer(
        self,
        channel: Channel,
        rchan: str,
        *,
        data: Any = None,
        error: dict[str, str] | None = None,
    ) -> None:
        fields: dict[str, Any] = {"response_for": rchan, "ok": error is None}
        if error is None:
            fields["data"] = data
        else:
            fields["error"] = error
        try:
            self._delivery.send(channel, "res", fields)
        except (TypeError, ValueError) as exc:
            # Not JSON, or larger than max_chunked_size.
            logger.error(
                "conn %d: cannot send a handler's answer: %s", channel.session.connection_id, exc
            )
            self._delivery.send(
                channel,
                "res",
                {
                    "response_for": rchan,
                    "ok": False,
                    "error": {"name": "InternalError", "message": "the answer cannot be sent"},
                },
            )

    # -- chunks ------------------------------------------------------------------------------

    async def _on_chunk(self, channel: Channel, message: Envelope) -> None:
        text = channel.chunks.add(message)
        if text is None:
            return
        inner = decode(text, limit=self._settings.max_chunked_size)
        if inner.plugin != PLUGIN or inner.kind == CHUNK_KIND:
            raise MalformedMessage("a chunked message must be a ch message other than a chunk")
        await channel.session.handle(inner)
