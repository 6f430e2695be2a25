"""``ChannelManager``: channels, users, topics and requests over the runtime.

Each browser connection running the runtime gets a *channel*: an id of its
own (``<node id>.<random>``), announced to the page in a ``ch/init``
message.  The manager keeps who is connected (``registry``), sends to one
channel, a user's channels, a topic's subscribers or everyone, asks a page
and waits for its answer (``send_and_wait``), runs handlers for the page's
custom messages, and splits and joins messages larger than one WebSocket
message (``chunks``).  Every connection has a bounded send queue
(``queues``).

Other processes and hosts are reached through a ``Backend``: in-process by
default, Redis for many workers.  The manager always delivers to its own
connections directly (so they keep working while Redis is down) and
publishes for the other nodes; a node ignores what it published itself.

::

    manager = ChannelManager()            # or ChannelManager(RedisBackend(url))
    app = App()
    manager.install(app, "/ws")           # the runtime, channels.js, the endpoint

    @manager.handler("hello")
    async def hello(channel: Channel, data: Any) -> Any:
        await manager.subscribe(channel.id, "news")
        return {"welcome": channel.id}    # the page's request() resolves to it

    await manager.publish("news", {"headline": "..."})
    answer = await manager.send_and_wait(channel_id, {"question": 1}, timeout=5)

The wire messages and the guarantees are in ``docs/plugins/channels.md``.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import inspect
import itertools
import logging
import math
import secrets
import weakref
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, ClassVar, TypeVar, overload

from ...server import App, WebSocket
from ...server.startup import StartupContext, add_startup_check
from ..runtime.assets import DEFAULT_PREFIX, RuntimeAsset, asset_path, install, install_asset
from ..runtime.messages import (
    Envelope,
    MalformedMessage,
    MessageTooLarge,
    UnknownKindLog,
    decode,
    encode,
    utf8_length,
    validate_name,
)
from ..runtime.session import Session
from ..runtime.view import RuntimeView
from .backends import Backend, BackendUnavailable, ChannelError, backend_from_env
from .chunks import (
    CHUNK_KIND,
    DEFAULT_CHUNK_TIMEOUT,
    DEFAULT_MAX_CHUNKED_SIZE,
    DEFAULT_MAX_CHUNKS,
    DEFAULT_MAX_PENDING,
    Reassembler,
    make_chunks,
    parse_chunk,
)
from .queues import DEFAULT_MAX_BYTES, DEFAULT_MAX_MESSAGES, OverflowPolicy, SendQueue
from .registry import Registry

__all__ = [
    "DEFAULT_REQUEST_TIMEOUT",
    "MAX_TOPIC_LENGTH",
    "PLUGIN",
    "Channel",
    "ChannelDisconnected",
    "ChannelManager",
    "ChannelNotFound",
    "ChannelView",
    "CustomHandler",
    "HandlerError",
    "Identity",
    "ReplyError",
    "ReplyTimeout",
    "channels_asset",
    "channels_script_tag",
    "managers",
]

logger = logging.getLogger("wsserver.plugins.channels")

#: The plugin name on the wire.
PLUGIN = "ch"
#: Seconds ``send_and_wait`` waits unless told otherwise.
DEFAULT_REQUEST_TIMEOUT = 30.0
#: The longest topic name, in characters.
MAX_TOPIC_LENGTH = 256
# Reply channel ids and request ids: random, and bounded when they come in.
_MAX_RCHAN_LENGTH = 64
# Subjects on the backend (see backends.py).
_ALL = "all"

_T = TypeVar("_T")

#: A custom message handler: ``handler(channel, data)``; its return value (or
#: the value its coroutine returns) is the answer to a page's ``request``.
CustomHandler = Callable[["Channel", Any], Any]
_H = TypeVar("_H", bound=CustomHandler)

# Every manager of this process, for ``wsserver run`` to inspect.
_MANAGERS: weakref.WeakSet[ChannelManager] = weakref.WeakSet()


def managers() -> list[ChannelManager]:
    """The channel managers created in this process (still alive)."""
    return list(_MANAGERS)


@add_startup_check
def _workers_share_no_channels(context: StartupContext) -> list[str]:
    """Several workers with the in-process backend do not reach each other."""
    if context.workers < 2 or all(manager.cross_process for manager in managers()):
        return []
    return [
        f"{context.workers} workers, and the application's channel manager uses the "
        "in-process backend: broadcast, send-to-user, topics and send-and-wait reach only the "
        "connections of the worker that sends them; cross-worker delivery needs Redis "
        "(--channels-backend redis://host:port/0, or ChannelManager(RedisBackend(url)))"
    ]


# ---------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------


class ChannelNotFound(ChannelError):
    """No connection has this channel id (any more)."""


class ChannelDisconnected(ChannelError):
    """The channel's connection ended while waiting for its answer."""


class ReplyTimeout(ChannelError, TimeoutError):
    """The page did not answer within the timeout."""


class ReplyError(ChannelError):
    """The page's request handler failed (or there was none).

    Attributes:
        name: the JavaScript error's name (``"Error"``, ``"NoHandler"``...).
        message: its message.
    """

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"{name}: {message}")
        self.name = name
        self.message = message


class HandlerError(Exception):
    """Raise it in a custom handler to answer the page with an error message.

    The message is sent to the page as is (``{"name": "HandlerError",
    "message": ...}``); any other exception is logged and the page gets
    ``"internal error"``, so that server details do not leak.
    """


# Error descriptions between nodes: type tag -> exception class.
_ERROR_TYPES: dict[str, type[ChannelError]] = {
    "notfound": ChannelNotFound,
    "disconnected": ChannelDisconnected,
    "timeout": ReplyTimeout,
    "unavailable": BackendUnavailable,
}


def _describe(exc: ChannelError) -> dict[str, Any]:
    if isinstance(exc, ReplyError):
        return {"type": "reply", "name": exc.name, "message": exc.message}
    for tag, cls in _ERROR_TYPES.items():
        if isinstance(exc, cls):
            return {"type": tag, "message": str(exc)}
    return {"type": "error", "message": str(exc)}


def _rebuild(error: object) -> ChannelError:
    if not isinstance(error, dict):
        return ChannelError("the other node sent a malformed error")
    message = str(error.get("message", ""))
    tag = error.get("type")
    if tag == "reply":
        return ReplyError(str(error.get("name", "Error")), message)
    cls = _ERROR_TYPES.get(str(tag), ChannelError)
    return cls(message)


# ---------------------------------------------------------------------------
# Channels
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a connection belongs to.

    Attributes:
        user_id: the user (``None``: anonymous).
        session_id: what groups the user's channels (a login session, a
            cookie); ``None``: none.
    """

    user_id: str | None = None
    session_id: str | None = None


class Channel:
    """One connection's channel, on the process that holds the connection.

    Attributes:
        id: the channel id (``<node id>.<random>``).
        user_id: its user, or ``None``.
        session_id: its session, or ``None``.
        session: the runtime ``Session`` (the connection).
        manager: the ``ChannelManager``.
        queue: the connection's ``SendQueue``.
        state: free for the application (a chat keeps the user's name here).
        unknown_replies: answers received for no pending request (late ones).
    """

    def __init__(
        self,
        manager: ChannelManager,
        session: Session,
        channel_id: str,
        identity: Identity,
        queue: SendQueue,
    ) -> None:
        self.id = channel_id
        self.user_id = identity.user_id
        self.session_id = identity.session_id
        self.session = session
        self.manager = manager
        self.queue = queue
        self.state: dict[str, Any] = {}
        self.unknown_replies = 0
        self._closed = False
        # Both must hold before anything is sent: the page's channels module
        # said ch/ready, and the channel is registered on every node (open).
        self._ready = False
        self._opened = False
        self._topics: frozenset[str] = frozenset()
        self._pending: dict[str, asyncio.Future[Any]] = {}
        self._inbox: asyncio.Queue[tuple[str, Any, str | None]] = asyncio.Queue(manager.max_inbox)
        self._worker: asyncio.Task[None] | None = None
        self._reassembler = Reassembler(
            max_size=manager.max_chunked_size,
            max_chunks=manager.max_chunks,
            max_pending=manager.max_pending_chunked,
            timeout=manager.chunk_timeout,
        )
        self._expiry: asyncio.TimerHandle | None = None
        self._unknown = UnknownKindLog(session.connection_id)

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<Channel {self.id} user={self.user_id!r} {state}>"

    @property
    def closed(self) -> bool:
        """Whether the connection has ended."""
        return self._closed

    @property
    def topics(self) -> frozenset[str]:
        """The topics it is subscribed to (its last ones, once closed)."""
        if self._closed:
            return self._topics
        return self.manager.registry.topics_of(self.id)

    @property
    def pending_requests(self) -> int:
        """``send_and_wait`` calls waiting for this page's answer."""
        return len(self._pending)

    async def send(self, message: Any) -> bool:
        """``manager.send_message(self.id, message)``."""
        return await self.manager.send_message(self.id, message)

    async def request(self, message: Any, timeout: float | None = None) -> Any:
        """``manager.send_and_wait(self.id, message, timeout)``."""
        return await self.manager.send_and_wait(self.id, message, timeout)

    async def subscribe(self, topic: str) -> None:
        """``manager.subscribe(self.id, topic)``."""
        await self.manager.subscribe(self.id, topic)

    async def unsubscribe(self, topic: str) -> None:
        """``manager.unsubscribe(self.id, topic)``."""
        await self.manager.unsubscribe(self.id, topic)

    def _put(self, item: str | tuple[str, ...]) -> bool:
        if self._closed:
            return False
        return self.queue.put(item)

    def _send_control(self, kind: str, **fields: Any) -> bool:
        """Queue a small message of the plugin's own (init, res)."""
        return self.manager._put(self, kind, fields)


# ---------------------------------------------------------------------------
# The browser side's asset
# ---------------------------------------------------------------------------


@cache
def channels_asset() -> RuntimeAsset:
    """The packaged ``static/channels.js``, served like the runtime (versioned)."""
    body = resources.files(__package__).joinpath("static", "channels.js").read_bytes()
    return RuntimeAsset.from_bytes(body, name="channels")


def channels_script_tag(*, prefix: str = DEFAULT_PREFIX, integrity: bool = True) -> str:
    """The ``<script>`` element loading ``channels.js``; put it after the runtime's."""
    asset = channels_asset()
    attributes = {"src": asset_path(prefix, asset)}
    if integrity:
        attributes["integrity"] = asset.integrity
    rendered = " ".join(
        f'{name}="{html.escape(value, quote=True)}"' for name, value in attributes.items()
    )
    return f"<script {rendered}></script>"


# ---------------------------------------------------------------------------
# The manager
# ---------------------------------------------------------------------------


class _Outgoing:
    """One message to deliver: encoded once, chunked once per message limit."""

    __slots__ = ("_items", "manager", "size", "text")

    def __init__(self, manager: ChannelManager, kind: str, fields: dict[str, Any]) -> None:
        self.manager = manager
        self.text = encode(PLUGIN, kind, fields)  # TypeError/ValueError for bad data
        self.size = utf8_length(self.text)
        if self.size > manager.max_chunked_size:
            raise MessageTooLarge(self.size, manager.max_chunked_size)
        self._items: dict[int, tuple[str, ...]] = {}

    def item(self, limit: int) -> str | tuple[str, ...]:
        if self.size <= limit:
            return self.text
        item = self._items.get(limit)
        if item is None:
            chunk_id = f"s{next(self.manager._chunk_ids)}"
            item = self._items[limit] = tuple(
                make_chunks(self.text, chunk_id=chunk_id, limit=limit, plugin=PLUGIN)
            )
        return item


def _check_timeout(timeout: float, name: str = "timeout") -> float:
    if isinstance(timeout, bool) or not (timeout > 0 and math.isfinite(timeout)):
        raise ValueError(f"{name} must be a positive number of seconds, not {timeout!r}")
    return float(timeout)


def _check_topic(topic: object) -> str:
    if not isinstance(topic, str) or not 0 < len(topic) <= MAX_TOPIC_LENGTH:
        raise ValueError(f"a topic must be a string of 1 to {MAX_TOPIC_LENGTH} characters")
    return topic


def _node_of(channel_id: str) -> str | None:
    node, dot, rest = channel_id.partition(".")
    return node if dot and node and rest else None


class ChannelManager:
    """Channels, users, topics and requests, on one node or many.

    Args:
        backend: how to reach the other nodes; default:
            ``backend_from_env()`` (``WSSERVER_CHANNELS_BACKEND``, else
            in-process).
        max_queue: messages queued per connection.
        max_queue_bytes: bytes queued per connection.
        queue_policy: ``"close"`` (1013) or ``"drop_oldest"``, for a
            connection whose queue is full (see ``queues``).
        compress: compress messages where permessage-deflate was agreed
            (costs CPU per connection on a broadcast).
        request_timeout: ``send_and_wait``'s default timeout, in seconds.
        max_request_timeout: the longest timeout a remote node may ask for.
        max_chunked_size: the largest message sent or received in chunks,
            in bytes (and the bytes held per connection for chunks in
            progress).
        max_chunks: the most chunks one message may have.
        max_pending_chunked: chunked messages received at once per
            connection.
        chunk_timeout: seconds a chunked message may take to arrive whole.
        max_inbox: custom messages of one connection waiting for their
            handler; beyond it the connection's reading pauses.

    Attributes:
        backend: the ``Backend``.
        registry: this node's channels, users and topics.
    """

    def __init__(
        self,
        backend: Backend | None = None,
        *,
        max_queue: int = DEFAULT_MAX_MESSAGES,
        max_queue_bytes: int = DEFAULT_MAX_BYTES,
        queue_policy: OverflowPolicy = "close",
        compress: bool = False,
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
        max_request_timeout: float = 600.0,
        max_chunked_size: int = DEFAULT_MAX_CHUNKED_SIZE,
        max_chunks: int = DEFAULT_MAX_CHUNKS,
        max_pending_chunked: int = DEFAULT_MAX_PENDING,
        chunk_timeout: float = DEFAULT_CHUNK_TIMEOUT,
        max_inbox: int = 64,
    ) -> None:
        if queue_policy not in ("close", "drop_oldest"):
            raise ValueError('queue_policy must be "close" or "drop_oldest"')
        if min(max_queue, max_queue_bytes, max_chunked_size, max_chunks) < 1:
            raise ValueError("queue and chunk limits must be at least 1")
        if max_pending_chunked < 1 or max_inbox < 1:
            raise ValueError("max_pending_chunked and max_inbox must be at least 1")
        self.backend = backend if backend is not None else backend_from_env()
        self.max_queue = max_queue
        self.max_queue_bytes = max_queue_bytes
        self.queue_policy: OverflowPolicy = queue_policy
        self.compress = compress
        self.request_timeout = _check_timeout(request_timeout, "request_timeout")
        self.max_request_timeout = _check_timeout(max_request_timeout, "max_request_timeout")
        self.max_chunked_size = max_chunked_size
        self.max_chunks = max_chunks
        self.max_pending_chunked = max_pending_chunked
        self.chunk_timeout = _check_timeout(chunk_timeout, "chunk_timeout")
        self.max_inbox = max_inbox
        self.registry: Registry[Channel] = Registry()
        self._handlers: dict[str, CustomHandler] = {}
        self._started = False
        self._starting: asyncio.Task[None] | None = None
        self._requests: dict[str, asyncio.Future[Any]] = {}  # ours, to other nodes
        self._serving: dict[str, asyncio.Task[None]] = {}  # theirs, for our channels
        self._tasks: set[asyncio.Task[Any]] = set()
        self._chunk_ids = itertools.count(1)
        _MANAGERS.add(self)

    def __repr__(self) -> str:
        return f"<ChannelManager {self.backend.describe()} channels={len(self.registry)}>"

    @property
    def node_id(self) -> str:
        """This node's id (the prefix of its channel ids)."""
        return self.backend.node_id

    @property
    def cross_process(self) -> bool:
        """Whether the backend reaches other processes (``wsserver run`` asks)."""
        return self.backend.cross_process

    # -- lifecycle -----------------------------------------------------------

    async def start(self) -> None:
        """Start the backend (idempotent; every method that needs it calls it).

        Returns once the backend's first connection attempt is over; a
        backend that could not connect keeps trying in the background.
        """
        if self._started:
            return
        if self._starting is None:
            self._starting = asyncio.create_task(self._start(), name="channels-start")
        await asyncio.shield(self._starting)

    async def _start(self) -> None:
        await self.backend.start(
            self._receive, (_ALL, f"node:{self.node_id}"), self._backend_status
        )
        self._started = True

    async def close(self) -> None:
        """Stop the backend and background work; connections stay open."""
        for task in list(self._serving.values()):
            task.cancel()
        error = ChannelError("the channel manager is closed")
        for future in self._requests.values():
            if not future.done():
                future.set_exception(error)
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._starting is not None:
            await asyncio.gather(self._starting, return_exceptions=True)
            self._starting = None
            await self.backend.close()
        self._started = False

    async def __aenter__(self) -> ChannelManager:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _spawn(self, coroutine: Awaitable[_T], name: str) -> asyncio.Task[_T]:
        task: asyncio.Task[_T] = asyncio.ensure_future(coroutine)
        task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("channels: task %s failed", task.get_name(), exc_info=task.exception())

    def _backend_status(self, up: bool) -> None:
        if up:
            return
        # Replies from other nodes cannot arrive now: fail at once rather
        # than at the timeout.
        error = BackendUnavailable("lost the connection to the other nodes while waiting")
        for future in self._requests.values():
            if not future.done():
                future.set_exception(error)

    # -- the application's side: connections ----------------------------------

    def attach(self, session: Session, identity: Identity | None = None) -> Channel:
        """Give a session its channel (before its ``init`` is sent).

        Registers the channel, the plugin's message handlers and a close
        callback that cleans everything up.  Call ``open`` once the session
        runs; ``ChannelView`` does both.

        Raises:
            ValueError: the session has a channel already.
        """
        if PLUGIN in session.plugins:
            raise ValueError("this session has a channel already")
        identity = identity if identity is not None else Identity()
        channel_id = f"{self.node_id}.{secrets.token_urlsafe(12)}"
        queue = SendQueue(
            session.websocket,
            max_messages=self.max_queue,
            max_bytes=self.max_queue_bytes,
            policy=self.queue_policy,
            compress=self.compress,
            # Until the page's ch/ready: the runtime may connect before the
            # page has loaded channels.js, and would drop what it cannot
            # handle yet.
            held=True,
        )
        channel = Channel(self, session, channel_id, identity, queue)
        session.plugins[PLUGIN] = channel
        self.registry.add(
            channel_id, channel, user_id=identity.user_id, session_id=identity.session_id
        )
        session.on(PLUGIN, "ready", lambda message: self._on_ready(channel))
        session.on(PLUGIN, "reply", lambda message: self._on_reply(channel, message))
        session.on(PLUGIN, "custom", lambda message: self._on_custom(channel, message))
        session.on(PLUGIN, CHUNK_KIND, lambda message: self._on_chunk(channel, message))
        session.add_close_callback(lambda _: self._detach(channel))
        return channel

    async def open(self, channel: Channel) -> None:
        """Make the channel reachable from every node.

        Then, once the page has said ``ch/ready``, ``ch/init`` goes out,
        followed by whatever was queued for the channel meanwhile.
        """
        await self.start()
        user_id = channel.user_id
        if user_id is not None and not channel.closed:
            await self.backend.subscribe(f"user:{user_id}")
            await self.backend.add_presence(user_id, channel.id)
            if channel.id not in self.registry:  # it ended while we were registering it
                await self._release_user(user_id, channel.id)
                return
        channel._opened = True
        self._start_sending(channel)

    def _on_ready(self, channel: Channel) -> None:
        if channel._ready:
            return  # said twice: harmless
        channel._ready = True
        self._start_sending(channel)

    def _start_sending(self, channel: Channel) -> None:
        if not (channel._ready and channel._opened) or channel.closed:
            return
        if not channel.queue.held:
            return
        init = _Outgoing(
            self,
            "init",
            {
                "channel": channel.id,
                "user": channel.user_id,
                "node": self.node_id,
                "max_chunked_size": self.max_chunked_size,
                "max_chunks": self.max_chunks,
                "chunk_timeout_ms": math.ceil(self.chunk_timeout * 1000),
            },
        )
        channel.queue.release(first=init.item(channel.session.max_message_size))

    def _detach(self, channel: Channel) -> None:
        """The connection is gone: clean every index, fail what waits on it."""
        topics = self.registry.topics_of(channel.id)
        removed = self.registry.remove(channel.id)
        channel._topics = topics
        channel._closed = True
        code = channel.session.close_code
        pending, channel._pending = channel._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(
                    ChannelDisconnected(
                        f"channel {channel.id} disconnected (close code {code}) before answering"
                    )
                )
        if channel._worker is not None:
            channel._worker.cancel()
        while not channel._inbox.empty():
            channel._inbox.get_nowait()
        if channel._expiry is not None:
            channel._expiry.cancel()
        channel._reassembler.clear()
        channel.queue.close()
        if removed is None:
            return
        if removed.user_id is not None:
            self._spawn(self._release_user(removed.user_id, channel.id), "channels-release-user")
        for topic in removed.emptied_topics:
            self._spawn(self._release_topic(topic), "channels-release-topic")

    async def _release_user(self, user_id: str, channel_id: str) -> None:
        # Checked now, not when the channel left: another tab of the user may
        # have arrived since, and needs the subscription.
        if not self.registry.user_channels(user_id):
            await self.backend.unsubscribe(f"user:{user_id}")
        await self.backend.remove_presence(user_id, channel_id)

    async def _release_topic(self, topic: str) -> None:
        if not self.registry.subscribers(topic):
            await self.backend.unsubscribe(f"topic:{topic}")

    def channel(self, channel_id: str) -> Channel | None:
        """The channel of this node with this id, or ``None``."""
        return self.registry.get(channel_id)

    @property
    def channels(self) -> list[str]:
        """The ids of this node's channels."""
        return list(self.registry)

    def view(self, base: type[ChannelView] | None = None) -> type[ChannelView]:
        """A ``ChannelView`` subclass bound to this manager."""
        parent = base if base is not None else ChannelView
        return type(parent.__name__, (parent,), {"manager": self})

    def install(
        self,
        app: App,
        path: str | None = "/ws",
        *,
        view: type[ChannelView] | None = None,
        prefix: str = DEFAULT_PREFIX,
    ) -> None:
        """Serve the runtime, ``channels.js`` and (unless ``path`` is None) the endpoint.

        Args:
            app: the application.
            path: where the WebSocket endpoint goes; ``None`` for none
                (add your own ``ChannelView``).
            view: the endpoint's class (default: ``self.view()``); its
                ``manager`` is set to this one.
            prefix: the URL prefix of the scripts.
        """
        install(app, prefix=prefix)
        install_asset(app, channels_asset(), prefix=prefix)
        if path is not None:
            endpoint = self.view(view)
            app.add_websocket_route(path, endpoint)

    # -- custom message handlers --------------------------------------------------

    @overload
    def handler(self, kind: str, function: None = None) -> Callable[[_H], _H]: ...

    @overload
    def handler(self, kind: str, function: _H) -> _H: ...

    def handler(self, kind: str, function: _H | None = None) -> _H | Callable[[_H], _H]:
        """Register the handler of a custom message kind; usable as a decorator.

        ``function(channel, data)`` may be sync or async; what it returns is
        the answer to the page's ``request`` (ignored for ``send``).

        Raises:
            ValueError: an invalid kind name, or one already registered.
        """
        if function is not None:
            self.add_handler(kind, function)
            return function

        def decorator(function: _H) -> _H:
            self.add_handler(kind, function)
            return function

        return decorator

    def add_handler(self, kind: str, function: CustomHandler, *, replace: bool = False) -> None:
        """Register ``function`` for custom messages of ``kind``.

        Raises:
            ValueError: an invalid kind name, or one already registered and
                ``replace`` is false.
        """
        validate_name(kind, "custom message kind")
        if kind in self._handlers and not replace:
            raise ValueError(f"a handler for the custom kind {kind!r} is already registered")
        self._handlers[kind] = function

    def remove_handler(self, kind: str) -> CustomHandler | None:
        """Unregister and return the handler of ``kind``, if any."""
        return self._handlers.pop(kind, None)

    # -- sending ---------------------------------------------------------------------

    def _put(self, channel: Channel, kind: str, fields: dict[str, Any]) -> bool:
        outgoing = _Outgoing(self, kind, fields)
        return channel._put(outgoing.item(channel.session.max_message_size))

    def _deliver(self, channels: Iterable[Channel], outgoing: _Outgoing) -> int:
        delivered = 0
        for channel in channels:
            if channel._put(outgoing.item(channel.session.max_message_size)):
                delivered += 1
        return delivered

    def _local(self, ids: Iterable[str], ignore: str | None = None) -> list[Channel]:
        found = []
        for channel_id in ids:
            if channel_id == ignore:
                continue
            channel = self.registry.get(channel_id)
            if channel is not None:
                found.append(channel)
        return found

    async def _publish(
        self, subject: str, payload: dict[str, Any], *, wait: bool = False
    ) -> int | None:
        """Publish for the other nodes; raises ``BackendUnavailable``."""
        await self.start()
        payload["o"] = self.node_id
        return await self.backend.publish(subject, payload, wait=wait)

    async def _publish_quietly(self, subject: str, payload: dict[str, Any]) -> None:
        # Fire and forget: during an outage the other nodes miss it (at most
        # once); the backend logs the outage.
        with contextlib.suppress(BackendUnavailable):
            await self._publish(subject, payload)

    async def broadcast(
        self, message: Any, ignore_channel: str | None = None, *, local_only: bool = False
    ) -> int:
        """Send ``message`` to every channel, on every node.

        Args:
            message: any JSON-serialisable value; the page receives it as
                ``ch/msg``'s ``data``.
            ignore_channel: a channel id to leave out (the sender's).
            local_only: this node's channels only.

        Returns:
            The number of this node's channels it was queued for.

        Raises:
            TypeError, ValueError: ``message`` is not JSON-serialisable.
            MessageTooLarge: it exceeds ``max_chunked_size``.
        """
        outgoing = _Outgoing(self, "msg", {"data": message})
        delivered = self._deliver(self._local(self.registry, ignore_channel), outgoing)
        if not local_only:
            await self._publish_quietly(
                _ALL, {"op": "bcast", "msg": message, "ignore": ignore_channel}
            )
        return delivered

    async def send_message(self, channel_id: str, message: Any) -> bool:
        """Send ``message`` to one channel, on whichever node holds it.

        Returns:
            ``False`` when it is known not to be delivered: no such channel
            here, its node is gone, or the other nodes cannot be reached.
            ``True`` when it was queued here or handed to the channel's node
            (which drops it if the channel has just ended).

        Raises:
            TypeError, ValueError: ``message`` is not JSON-serialisable.
            MessageTooLarge: it exceeds ``max_chunked_size``.
        """
        outgoing = _Outgoing(self, "msg", {"data": message})
        channel = self.registry.get(channel_id)
        if channel is not None:
            return self._deliver((channel,), outgoing) == 1
        node = _node_of(channel_id)
        if node is None or node == self.node_id:
            return False
        try:
            reached = await self._publish(
                f"node:{node}", {"op": "send", "channel": channel_id, "msg": message}, wait=True
            )
        except BackendUnavailable:
            return False
        return bool(reached)

    async def send_message_to_user(
        self, user_id: str, message: Any, ignore_channel: str | None = None
    ) -> int:
        """Send ``message`` to every channel of a user (all tabs, all nodes).

        Returns:
            The number of this node's channels it was queued for.

        Raises:
            TypeError, ValueError, MessageTooLarge: as ``broadcast``.
        """
        outgoing = _Outgoing(self, "msg", {"data": message})
        local = self._local(self.registry.user_channels(user_id), ignore_channel)
        delivered = self._deliver(local, outgoing)
        await self._publish_quietly(
            f"user:{user_id}",
            {"op": "user", "user": user_id, "msg": message, "ignore": ignore_channel},
        )
        return delivered

    def local_user_channels(self, user_id: str) -> set[str]:
        """The user's channels on this node."""
        return self.registry.user_channels(user_id)

    async def get_user_channels(self, user_id: str) -> set[str]:
        """The user's channels on every node.

        While the backend is unavailable, this node's channels only (and a
        warning is logged).
        """
        local = self.registry.user_channels(user_id)
        await self.start()
        try:
            return local | await self.backend.user_channels(user_id)
        except BackendUnavailable as exc:
            logger.warning("channels: get_user_channels(%r): this node only: %s", user_id, exc)
            return local

    # -- topics ------------------------------------------------------------------------

    async def subscribe(self, channel_id: str, topic: str) -> None:
        """Subscribe a channel of this node to a topic.

        Raises:
            ValueError: an invalid topic name.
            ChannelNotFound: no such channel on this node (subscribe where
                the connection is, typically in a custom handler).
        """
        _check_topic(topic)
        channel = self.registry.get(channel_id)
        if channel is None or channel.closed:
            raise ChannelNotFound(f"no channel {channel_id!r} on this node")
        self.registry.subscribe(channel_id, topic)
        await self.start()
        await self.backend.subscribe(f"topic:{topic}")
        if channel.id not in self.registry:  # it ended meanwhile
            await self._release_topic(topic)

    async def unsubscribe(self, channel_id: str, topic: str) -> None:
        """Unsubscribe a channel of this node from a topic (no error if it was not)."""
        _check_topic(topic)
        if self.registry.unsubscribe(channel_id, topic):
            await self._release_topic(topic)

    def topic_subscribers(self, topic: str) -> set[str]:
        """The topic's channels on this node."""
        return self.registry.subscribers(topic)

    async def publish(
        self,
        topic: str,
        message: Any,
        ignore_channel: str | None = None,
        *,
        local_only: bool = False,
    ) -> int:
        """Send ``message`` to a topic's subscribers on every node.

        The page receives ``ch/msg`` with ``topic`` set.

        Args:
            topic: the topic.
            message: any JSON-serialisable value.
            ignore_channel: a channel id to leave out.
            local_only: this node's subscribers only (for a source that runs
                on every node, such as the ticker's simulated prices).

        Returns:
            The number of this node's channels it was queued for.

        Raises:
            ValueError: an invalid topic; ``message`` not JSON-serialisable.
            TypeError, MessageTooLarge: as ``broadcast``.
        """
        _check_topic(topic)
        outgoing = _Outgoing(self, "msg", {"data": message, "topic": topic})
        local = self._local(self.registry.subscribers(topic), ignore_channel)
        delivered = self._deliver(local, outgoing)
        if not local_only:
            await self._publish_quietly(
                f"topic:{topic}",
                {"op": "topic", "topic": topic, "msg": message, "ignore": ignore_channel},
            )
        return delivered

    # -- send and wait ------------------------------------------------------------------

    async def send_and_wait(
        self, channel_id: str, message: Any, timeout: float | None = None
    ) -> Any:
        """Send ``message`` to a channel and return the page's answer.

        The page's request handler (``wsserverChannels.onRequest``) gets
        ``message``; what it returns (or its promise resolves to) comes
        back, correlated by a reply channel id (``rchan`` out,
        ``response_for`` back).  The channel may be on any node.

        Args:
            channel_id: the channel.
            message: any JSON-serialisable value.
            timeout: seconds to wait (default ``request_timeout``); there is
                always one.

        Raises:
            ChannelNotFound: no such channel (or its node is gone).
            ChannelDisconnected: the connection ended before answering; at
                once, not at the timeout.
            ReplyTimeout: no answer in time (also a ``TimeoutError``).
            ReplyError: the page's handler failed, or there is none.
            BackendUnavailable: the channel is on another node and the
                backend is down (or went down while waiting).
            ValueError: a bad timeout.
        """
        timeout = self.request_timeout if timeout is None else _check_timeout(timeout)
        channel = self.registry.get(channel_id)
        if channel is not None:
            return await self._request_local(channel, message, timeout)
        node = _node_of(channel_id)
        if node is None or node == self.node_id:
            raise ChannelNotFound(f"no channel {channel_id!r}")
        return await self._request_remote(node, channel_id, message, timeout)

    async def _request_local(self, channel: Channel, message: Any, timeout: float) -> Any:
        if channel.closed:
            raise ChannelNotFound(f"channel {channel.id} is closed")
        rchan = secrets.token_urlsafe(12)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        channel._pending[rchan] = future
        try:
            if not self._put(channel, "msg", {"data": message, "rchan": rchan}):
                raise ChannelDisconnected(f"channel {channel.id} disconnected")
            async with asyncio.timeout(timeout):
                return await future
        except TimeoutError:
            raise ReplyTimeout(
                f"no answer from channel {channel.id} within {timeout:g} s"
            ) from None
        finally:
            channel._pending.pop(rchan, None)
            if future.done() and not future.cancelled():
                future.exception()  # retrieved, whoever set it
            else:
                future.cancel()

    async def _request_remote(
        self, node: str, channel_id: str, message: Any, timeout: float
    ) -> Any:
        request_id = secrets.token_urlsafe(12)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._requests[request_id] = future
        answered = False
        try:
            async with asyncio.timeout(timeout):
                reached = await self._publish(
                    f"node:{node}",
                    {
                        "op": "req",
                        "rid": request_id,
                        "channel": channel_id,
                        "msg": message,
                        "timeout": timeout,
                    },
                    wait=True,
                )
                if not reached:
                    answered = True  # nobody to cancel
                    raise ChannelNotFound(f"no channel {channel_id!r}: its node is gone")
                result = await future
                answered = True
                return result
        except TimeoutError:
            raise ReplyTimeout(
                f"no answer from channel {channel_id} within {timeout:g} s"
            ) from None
        finally:
            self._requests.pop(request_id, None)
            if future.done() and not future.cancelled():
                answered = True
                future.exception()
            else:
                future.cancel()
            if not answered:
                # Timed out or cancelled: the other node stops waiting too.
                self._spawn(
                    self._publish_quietly(f"node:{node}", {"op": "cancel", "rid": request_id}),
                    "channels-cancel",
                )

    async def _serve_request(self, payload: dict[str, Any]) -> None:
        request_id = str(payload["rid"])
        origin = str(payload["o"])
        reply: dict[str, Any] = {"op": "rep", "rid": request_id}
        try:
            channel = self.registry.get(str(payload["channel"]))
            if channel is None:
                raise ChannelNotFound(f"no channel {payload['channel']!r}")
            timeout = min(float(payload["timeout"]), self.max_request_timeout)
            data = await self._request_local(channel, payload.get("msg"), timeout)
            reply.update(ok=True, data=data)
        except ChannelError as exc:
            reply.update(ok=False, error=_describe(exc))
        except (TypeError, ValueError) as exc:
            # The message is too large for this node's limits.
            reply.update(ok=False, error={"type": "error", "message": str(exc)})
        finally:
            self._serving.pop(request_id, None)
        await self._publish_quietly(f"node:{origin}", reply)

    # -- from the other nodes ------------------------------------------------------------

    def _receive(self, subject: str, payload: dict[str, Any]) -> None:
        if payload.get("o") == self.node_id:
            return  # our own publication: delivered locally already
        op = payload.get("op")
        try:
            if op == "bcast":
                outgoing = _Outgoing(self, "msg", {"data": payload.get("msg")})
                self._deliver(self._local(self.registry, payload.get("ignore")), outgoing)
            elif op == "user":
                user_id = str(payload["user"])
                outgoing = _Outgoing(self, "msg", {"data": payload.get("msg")})
                ids = self.registry.user_channels(user_id)
                self._deliver(self._local(ids, payload.get("ignore")), outgoing)
            elif op == "topic":
                topic = _check_topic(payload["topic"])
                fields = {"data": payload.get("msg"), "topic": topic}
                outgoing = _Outgoing(self, "msg", fields)
                ids = self.registry.subscribers(topic)
                self._deliver(self._local(ids, payload.get("ignore")), outgoing)
            elif op == "send":
                channel = self.registry.get(str(payload["channel"]))
                if channel is None:
                    logger.debug("channels: message for unknown channel %r", payload["channel"])
                    return
                self._deliver((channel,), _Outgoing(self, "msg", {"data": payload.get("msg")}))
            elif op == "req":
                request_id = str(payload["rid"])
                task = self._spawn(self._serve_request(payload), "channels-serve-request")
                self._serving[request_id] = task
            elif op == "rep":
                future = self._requests.get(str(payload["rid"]))
                if future is None or future.done():
                    return  # a late answer: the request timed out
                if payload.get("ok") is True:
                    future.set_result(payload.get("data"))
                else:
                    future.set_exception(_rebuild(payload.get("error")))
            elif op == "cancel":
                serving = self._serving.pop(str(payload["rid"]), None)
                if serving is not None:
                    serving.cancel()
            else:
                logger.debug("channels: unknown operation %r from node %r", op, payload.get("o"))
        except (KeyError, TypeError, ValueError) as exc:
            logger.warning(
                "channels: malformed %r payload from node %r: %s", op, payload.get("o"), exc
            )

    # -- from the browser -------------------------------------------------------------------

    def _on_reply(self, channel: Channel, message: Envelope) -> None:
        rchan = message.require("response_for", str)
        ok = message.require("ok", bool)
        future = channel._pending.get(rchan)
        if future is None or future.done():
            channel.unknown_replies += 1
            logger.debug("conn %d: reply for unknown rchan ignored", channel.session.connection_id)
            return
        if ok:
            future.set_result(message.get("data"))
            return
        error = message.require("error", dict)
        name = error.get("name")
        text = error.get("message", "")
        future.set_exception(ReplyError(str(name)[:200] if name else "Error", str(text)[:4096]))

    async def _on_custom(self, channel: Channel, message: Envelope) -> None:
        kind = message.require("kind", str)
        try:
            validate_name(kind, "custom message kind")
        except ValueError as exc:
            raise MalformedMessage(str(exc)) from None
        rchan = message.get("rchan")
        if rchan is not None and (
            not isinstance(rchan, str) or not 0 < len(rchan) <= _MAX_RCHAN_LENGTH
        ):
            raise MalformedMessage(
                f"ch/custom: 'rchan' must be a string of 1 to {_MAX_RCHAN_LENGTH}"
            )
        if channel.closed:
            return
        if channel._worker is None:
            channel._worker = asyncio.create_task(
                self._work(channel), name=f"channels-handlers-{channel.id}"
            )
        # Waits when the inbox is full: the receive loop stops reading, and
        # TCP pushes back on the page.
        await channel._inbox.put((kind, message.get("data"), rchan))

    async def _work(self, channel: Channel) -> None:
        # One message at a time, in order, outside the receive loop: a handler
        # may await the page's own answers (send_and_wait) without blocking
        # the loop that receives them.
        while True:
            kind, data, rchan = await channel._inbox.get()
            await self._run_handler(channel, kind, data, rchan)

    async def _run_handler(self, channel: Channel, kind: str, data: Any, rchan: str | None) -> None:
        handler = self._handlers.get(kind)
        if handler is None:
            channel._unknown.report("ch.custom", kind)
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
            channel._send_control("res", **fields)
        except (TypeError, ValueError) as exc:
            # Not JSON, or larger than max_chunked_size.
            logger.error(
                "conn %d: cannot send a handler's answer: %s", channel.session.connection_id, exc
            )
            channel._send_control(
                "res",
                response_for=rchan,
                ok=False,
                error={"name": "InternalError", "message": "the answer cannot be sent"},
            )

    async def _on_chunk(self, channel: Channel, message: Envelope) -> None:
        chunk = parse_chunk(message, max_chunks=self.max_chunks)
        loop = asyncio.get_running_loop()
        text = channel._reassembler.add(chunk, loop.time())
        self._schedule_expiry(channel)
        if text is None:
            return
        inner = decode(text, limit=self.max_chunked_size)
        if inner.plugin != PLUGIN or inner.kind == CHUNK_KIND:
            raise MalformedMessage("a chunked message must be a ch message other than a chunk")
        await channel.session.handle(inner)

    def _schedule_expiry(self, channel: Channel) -> None:
        if channel._expiry is not None:
            channel._expiry.cancel()
            channel._expiry = None
        deadline = channel._reassembler.next_deadline
        if deadline is not None and not channel.closed:
            loop = asyncio.get_running_loop()
            channel._expiry = loop.call_at(deadline, self._expire, channel)

    def _expire(self, channel: Channel) -> None:
        channel._expiry = None
        dropped = channel._reassembler.expire(asyncio.get_running_loop().time())
        for chunk_id in dropped:
            logger.warning(
                "conn %d: chunked message %r incomplete after %g s: dropped",
                channel.session.connection_id,
                chunk_id,
                self.chunk_timeout,
            )
        self._schedule_expiry(channel)


# ---------------------------------------------------------------------------
# The endpoint
# ---------------------------------------------------------------------------


class ChannelView(RuntimeView):
    """A ``RuntimeView`` whose every connection gets a channel of ``manager``.

    Set ``manager`` (or use ``manager.view()`` / ``manager.install``), and
    override ``identify`` to say who the connection belongs to.  The hooks
    ``on_channel_start`` (after ``ch/init`` is queued, beside the receive
    loop) and ``on_channel_end`` (after the channel is cleaned up) replace
    ``on_session_start`` / ``on_session_end``.

    Attributes:
        manager: the ``ChannelManager`` (a class attribute).
        channel: this connection's channel, once accepted.
    """

    manager: ClassVar[ChannelManager | None] = None

    def __init__(self, websocket: WebSocket) -> None:
        super().__init__(websocket)
        self.channel: Channel | None = None

    def get_manager(self) -> ChannelManager:
        """The manager; raises ``RuntimeError`` if none is set."""
        manager = type(self).manager
        if manager is None:
            raise RuntimeError(f"{type(self).__name__}.manager is not set")
        return manager

    def identify(self, websocket: WebSocket) -> Identity:
        """Who the connection belongs to; by default from ``websocket.state``.

        ``state.user_id`` (or ``state.user``, when a string) and
        ``state.session_id``, as an ``App(authenticate=...)`` hook may set
        them; anonymous otherwise.
        """
        state = websocket.state
        user = getattr(state, "user_id", None)
        if user is None:
            user = getattr(state, "user", None)
        session = getattr(state, "session_id", None)
        return Identity(
            user if isinstance(user, str) else None,
            session if isinstance(session, str) else None,
        )

    def create_session(self, websocket: WebSocket) -> Session:
        """The runtime's session, with its channel attached."""
        session = super().create_session(websocket)
        self.channel = self.get_manager().attach(session, self.identify(websocket))
        return session

    async def on_session_start(self, session: Session) -> None:
        """Open the channel (``ch/init``), then run ``on_channel_start``."""
        channel = self.channel
        assert channel is not None
        await self.get_manager().open(channel)
        await self.on_channel_start(channel)

    async def on_session_end(self, session: Session) -> None:
        """Run ``on_channel_end``."""
        if self.channel is not None:
            await self.on_channel_end(self.channel)

    async def on_channel_start(self, channel: Channel) -> None:
        """Called once the channel is open; may last as long as the connection."""

    async def on_channel_end(self, channel: Channel) -> None:
        """Called once the channel is gone (``channel.topics`` are its last ones)."""
