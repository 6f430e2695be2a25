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

The manager is the facade over parts with one job each: ``lifecycle``
(channels attached, opened, subscribed, ended), ``delivery`` (encoding once
and queueing), ``nodes`` (the backend and background tasks), ``remote``
(what other nodes publish), ``inbound`` (what pages send),
``send_and_wait``, and ``settings``.  The wire messages and the guarantees
are in ``docs/plugins/channels.md``.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable
from typing import Any, TypeVar, overload

from ...server import App
from ...server.startup import StartupContext, add_startup_check
from ..runtime.assets import DEFAULT_PREFIX, install, install_asset
from ..runtime.session import Session
from .addresses import (
    ALL_NODES,
    MAX_TOPIC_LENGTH,
    PLUGIN,
    check_topic,
    node_of,
    node_subject,
    topic_subject,
    user_subject,
)
from .assets import channels_asset, channels_script_tag
from .backends import Backend, BackendUnavailable, backend_from_env
from .channel import Channel, Identity, TokenVerifier
from .chunks import (
    DEFAULT_CHUNK_TIMEOUT,
    DEFAULT_MAX_CHUNKED_SIZE,
    DEFAULT_MAX_CHUNKS,
    DEFAULT_MAX_PENDING,
)
from .delivery import Delivery
from .envelopes import message_fields, remote_kind
from .errors import (
    ChannelDisconnected,
    ChannelNotFound,
    HandlerError,
    ReplyError,
    ReplyTimeout,
)
from .feeds import TopicFeeds, TopicListener
from .history import DEFAULT_HISTORY_TTL, Position
from .inbound import CustomHandler, HandlerTable, Inbound
from .lifecycle import Lifecycle
from .limits import UserLimits
from .nodes import NodeLink
from .presence import TopicPresence
from .queues import DEFAULT_MAX_BYTES, DEFAULT_MAX_MESSAGES, OverflowPolicy
from .registry import Registry
from .remote import RemoteMessages
from .send_and_wait import Requests
from .settings import (
    DEFAULT_MAX_INBOX,
    DEFAULT_MAX_LISTENER_QUEUE,
    DEFAULT_MAX_RECOVER_TOPICS,
    DEFAULT_MAX_REQUEST_TIMEOUT,
    DEFAULT_MAX_TOKEN_LENGTH,
    DEFAULT_MAX_USER_CHANNELS,
    DEFAULT_MAX_USER_WAITS,
    DEFAULT_MAX_WAITING_RECOVERIES,
    DEFAULT_RECOVER_WAIT,
    DEFAULT_REQUEST_TIMEOUT,
    DEFAULT_USER_BURST,
    DEFAULT_USER_RATE,
    ChannelSettings,
)
from .view import ChannelView

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
        history_size: messages kept per topic, so that subscribers recover
            what they missed; 0 (the default): no history, topics are
            plain pub/sub.
        history_ttl: seconds a topic message is kept in history.
        history_topics: prefixes of the topics with history (default: all,
            when ``history_size`` is set).
        max_recover_topics: topic positions a page may send back on
            reconnection.
        max_listener_queue: messages a Python listener may have waiting.
        recover_wait: seconds a recovery asked for while the backend is
            away waits for it to come back (then ``"unavailable"``).
        max_waiting_recoveries: recoveries that may wait so at once on
            this node (0: none; beyond it, ``"unavailable"`` at once).
        presence_topics: prefixes of the topics with presence (default:
            none): their subscribers are recorded on every node and their
            joins and leaves announced to the other subscribers.
        max_token_length: the longest token a page may send to refresh
            its identity (``updateToken``).
        max_user_channels: channels one user may have open on this node
            (``None``: no cap); see ``limits``.
        user_rate, user_burst: custom messages per second one user may
            send over its channels on this node (``None``: no limit), and
            the burst above it.
        max_user_waits: ``send_and_wait`` calls made on behalf of one user
            (from its pages' handlers) waiting at once on this node
            (``None``: no cap); past it ``TooManyWaits``; see ``limits``.

    Attributes:
        backend: the ``Backend``.
        registry: this node's channels, users and topics.
        limits: each user's message rate and waits on this node
            (``UserLimits``).
        settings: the limits above, checked (``ChannelSettings``); each is
            also readable as an attribute of the manager.
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
        max_request_timeout: float = DEFAULT_MAX_REQUEST_TIMEOUT,
        max_chunked_size: int = DEFAULT_MAX_CHUNKED_SIZE,
        max_chunks: int = DEFAULT_MAX_CHUNKS,
        max_pending_chunked: int = DEFAULT_MAX_PENDING,
        chunk_timeout: float = DEFAULT_CHUNK_TIMEOUT,
        max_inbox: int = DEFAULT_MAX_INBOX,
        history_size: int = 0,
        history_ttl: float = DEFAULT_HISTORY_TTL,
        history_topics: tuple[str, ...] = ("",),
        max_recover_topics: int = DEFAULT_MAX_RECOVER_TOPICS,
        max_listener_queue: int = DEFAULT_MAX_LISTENER_QUEUE,
        recover_wait: float = DEFAULT_RECOVER_WAIT,
        max_waiting_recoveries: int = DEFAULT_MAX_WAITING_RECOVERIES,
        presence_topics: tuple[str, ...] = (),
        max_token_length: int = DEFAULT_MAX_TOKEN_LENGTH,
        max_user_channels: int | None = DEFAULT_MAX_USER_CHANNELS,
        user_rate: float | None = DEFAULT_USER_RATE,
        user_burst: int = DEFAULT_USER_BURST,
        max_user_waits: int | None = DEFAULT_MAX_USER_WAITS,
    ) -> None:
        self.settings = ChannelSettings(
            max_queue=max_queue,
            max_queue_bytes=max_queue_bytes,
            queue_policy=queue_policy,
            compress=compress,
            request_timeout=request_timeout,
            max_request_timeout=max_request_timeout,
            max_chunked_size=max_chunked_size,
            max_chunks=max_chunks,
            max_pending_chunked=max_pending_chunked,
            chunk_timeout=chunk_timeout,
            max_inbox=max_inbox,
            history_size=history_size,
            history_ttl=history_ttl,
            history_topics=history_topics,
            max_recover_topics=max_recover_topics,
            max_listener_queue=max_listener_queue,
            recover_wait=recover_wait,
            max_waiting_recoveries=max_waiting_recoveries,
            presence_topics=presence_topics,
            max_token_length=max_token_length,
            max_user_channels=max_user_channels,
            user_rate=user_rate,
            user_burst=user_burst,
            max_user_waits=max_user_waits,
        )
        self.backend = backend if backend is not None else backend_from_env()
        if self.settings.history_size and not self.backend.keeps_history:
            logger.warning(
                "channels: history_size is set but the %s backend keeps no history: "
                "topics are plain pub/sub",
                self.backend.name,
            )
        self.registry: Registry[Channel] = Registry()
        self._handlers = HandlerTable()
        self._link = NodeLink(
            self.backend, receive=self._on_node_message, on_status=self._on_backend_status
        )
        self._delivery = Delivery(self.registry, self.settings.max_chunked_size)
        self.limits = UserLimits(
            self.settings.user_rate, self.settings.user_burst, self.settings.max_user_waits
        )
        self._requests = Requests(
            registry=self.registry,
            link=self._link,
            delivery=self._delivery,
            settings=self.settings,
            limits=self.limits,
        )
        self._feeds = TopicFeeds(
            link=self._link, registry=self.registry, delivery=self._delivery, settings=self.settings
        )
        self._presence = TopicPresence(
            link=self._link, registry=self.registry, delivery=self._delivery, settings=self.settings
        )
        self._remote = RemoteMessages(
            node_id=self.node_id,
            registry=self.registry,
            delivery=self._delivery,
            requests=self._requests,
            feeds=self._feeds,
            presence=self._presence,
        )
        self._inbound = Inbound(
            handlers=self._handlers,
            delivery=self._delivery,
            settings=self.settings,
            limits=self.limits,
        )
        self._lifecycle = Lifecycle(
            self,
            registry=self.registry,
            link=self._link,
            delivery=self._delivery,
            inbound=self._inbound,
            feeds=self._feeds,
            presence=self._presence,
            settings=self.settings,
            limits=self.limits,
        )
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

    # -- the settings, as attributes -------------------------------------------

    @property
    def max_queue(self) -> int:
        """Messages queued per connection."""
        return self.settings.max_queue

    @property
    def max_queue_bytes(self) -> int:
        """Bytes queued per connection."""
        return self.settings.max_queue_bytes

    @property
    def queue_policy(self) -> OverflowPolicy:
        """What a full send queue does: ``"close"`` or ``"drop_oldest"``."""
        return self.settings.queue_policy

    @property
    def compress(self) -> bool:
        """Whether messages are compressed where permessage-deflate was agreed."""
        return self.settings.compress

    @property
    def request_timeout(self) -> float:
        """``send_and_wait``'s default timeout, in seconds."""
        return self.settings.request_timeout

    @property
    def max_request_timeout(self) -> float:
        """The longest timeout a remote node may ask for, in seconds."""
        return self.settings.max_request_timeout

    @property
    def max_chunked_size(self) -> int:
        """The largest message sent or received in chunks, in bytes."""
        return self.settings.max_chunked_size

    @property
    def max_chunks(self) -> int:
        """The most chunks one message may have."""
        return self.settings.max_chunks

    @property
    def max_pending_chunked(self) -> int:
        """Chunked messages received at once per connection."""
        return self.settings.max_pending_chunked

    @property
    def chunk_timeout(self) -> float:
        """Seconds a chunked message may take to arrive whole."""
        return self.settings.chunk_timeout

    @property
    def max_inbox(self) -> int:
        """Custom messages of one connection waiting for their handler."""
        return self.settings.max_inbox

    @property
    def max_user_channels(self) -> int | None:
        """Channels one user may have open on this node (``None``: no cap)."""
        return self.settings.max_user_channels

    @property
    def max_user_waits(self) -> int | None:
        """``send_and_wait`` calls one user may have waiting here (``None``: no cap)."""
        return self.settings.max_user_waits

    @property
    def history_size(self) -> int:
        """Messages kept per topic with history (0: no history)."""
        return self.settings.history_size

    @property
    def history_ttl(self) -> float:
        """Seconds a topic message is kept in history."""
        return self.settings.history_ttl

    # -- lifecycle -----------------------------------------------------------

    async def start(self) -> None:
        """Start the backend (idempotent; every method that needs it calls it).

        Returns once the backend's first connection attempt is over; a
        backend that could not connect keeps trying in the background.
        """
        await self._link.start()

    async def close(self) -> None:
        """Stop the backend and background work; connections stay open."""
        self._requests.close()
        await self._link.close()

    async def __aenter__(self) -> ChannelManager:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _on_node_message(self, subject: str, payload: dict[str, Any]) -> None:
        self._remote.receive(subject, payload)

    def _on_backend_status(self, up: bool) -> None:
        if up:
            # Topics with history read what they missed while it was away.
            self._feeds.resync()
        else:
            # Replies from other nodes cannot arrive now: fail at once rather
            # than at the timeout.
            self._requests.backend_down()

    # -- the application's side: connections ----------------------------------

    def attach(
        self,
        session: Session,
        identity: Identity | None = None,
        *,
        verify_token: TokenVerifier | None = None,
    ) -> Channel:
        """Give a session its channel (before its ``init`` is sent).

        Registers the channel, the plugin's message handlers and a close
        callback that cleans everything up.  Call ``open`` once the session
        runs; ``ChannelView`` does both.  ``verify_token`` checks the page's
        token updates (``None``: they are refused); ``ChannelView`` passes
        its ``verify_token``.

        Raises:
            ValueError: the session has a channel already.
        """
        return self._lifecycle.attach(session, identity, verify_token)

    async def set_identity(self, channel_id: str, identity: Identity) -> None:
        """Move a live channel of this node to another user and session.

        What a token update does once its token is verified, without a
        reconnection: the channel is re-registered under its new user
        (``send_message_to_user`` and ``get_user_channels`` find it there, on
        every node, and no longer under the old one), keeps its topics (on
        topics with presence the old user leaves and the new one joins), and
        the page is told (``ch/identity``; ``wsserverChannels.user``).
        Handlers that start afterwards see the new identity
        (``current_user``...).

        Raises:
            ChannelNotFound: no such channel on this node.
            TypeError: ``identity`` is not an ``Identity``.
        """
        if not isinstance(identity, Identity):
            raise TypeError(f"expected an Identity, not {identity!r}")
        channel = self.registry.get(channel_id)
        if channel is None:
            raise ChannelNotFound(f"no channel {channel_id!r} on this node")
        await self._lifecycle.set_identity(channel, identity)

    async def open(self, channel: Channel) -> None:
        """Make the channel reachable from every node.

        Then, once the page has said ``ch/ready``, ``ch/init`` goes out,
        followed by whatever was queued for the channel meanwhile.
        """
        await self._lifecycle.open(channel)

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
        self._handlers.add(kind, function, replace=replace)

    def remove_handler(self, kind: str) -> CustomHandler | None:
        """Unregister and return the handler of ``kind``, if any."""
        return self._handlers.remove(kind)

    # -- sending ---------------------------------------------------------------------

    async def broadcast(
        self,
        message: Any,
        ignore_channel: str | None = None,
        *,
        custom: bool = False,
        local_only: bool = False,
        compress: bool | None = None,
    ) -> int:
        """Send ``message`` to every channel, on every node.

        Args:
            message: any JSON-serialisable value; the page receives it as
                ``ch/msg``'s ``data``.  With ``custom``, a typed envelope
                (``CustomServerMessage``, see ``envelopes``) for the page's
                ``onCustom`` handlers.
            ignore_channel: a channel id to leave out (the sender's).
            custom: whether ``message`` is a custom envelope.
            local_only: this node's channels only.
            compress: compress it where permessage-deflate was agreed
                (``True`` for a large, compressible payload; ``False`` for
                one that does not compress); ``None``: the manager's
                ``compress`` setting.  Every node that delivers it follows
                the choice.

        Returns:
            The number of this node's channels it was queued for.

        Raises:
            TypeError, ValueError: ``message`` is not JSON-serialisable, or
                the envelope does not match ``custom``.
            MessageTooLarge: it exceeds ``max_chunked_size``.
        """
        fields = message_fields(message, custom)
        outgoing = self._delivery.message("msg", fields)
        delivered = self._delivery.to_channels(self.registry, outgoing, ignore_channel, compress)
        if not local_only:
            await self._link.publish_quietly(
                ALL_NODES,
                {"op": "bcast", "msg": fields["data"], "ignore": ignore_channel}
                | remote_kind(fields, compress),
            )
        return delivered

    async def send_message(
        self,
        channel_id: str,
        message: Any,
        custom: bool = False,
        *,
        compress: bool | None = None,
    ) -> bool:
        """Send ``message`` to one channel, on whichever node holds it.

        With ``custom``, ``message`` is a typed envelope; ``compress`` as
        ``broadcast``.

        Returns:
            ``False`` when it is known not to be delivered: no such channel
            here, its node is gone, or the other nodes cannot be reached.
            ``True`` when it was queued here or handed to the channel's node
            (which drops it if the channel has just ended).

        Raises:
            TypeError, ValueError: ``message`` is not JSON-serialisable, or
                the envelope does not match ``custom``.
            MessageTooLarge: it exceeds ``max_chunked_size``.
        """
        fields = message_fields(message, custom)
        outgoing = self._delivery.message("msg", fields)
        channel = self.registry.get(channel_id)
        if channel is not None:
            return self._delivery.put(channel, outgoing, compress)
        node = node_of(channel_id)
        if node is None or node == self.node_id:
            return False
        try:
            reached = await self._link.publish(
                node_subject(node),
                {"op": "send", "channel": channel_id, "msg": fields["data"]}
                | remote_kind(fields, compress),
                wait=True,
            )
        except BackendUnavailable:
            return False
        return bool(reached)

    async def send_message_to_user(
        self,
        user_id: str,
        message: Any,
        ignore_channel: str | None = None,
        *,
        custom: bool = False,
        compress: bool | None = None,
    ) -> int:
        """Send ``message`` to every channel of a user (all tabs, all nodes).

        With ``custom``, ``message`` is a typed envelope; ``compress`` as
        ``broadcast``.

        Returns:
            The number of this node's channels it was queued for.

        Raises:
            TypeError, ValueError, MessageTooLarge: as ``broadcast``.
        """
        fields = message_fields(message, custom)
        outgoing = self._delivery.message("msg", fields)
        local = self.registry.user_channels(user_id)
        delivered = self._delivery.to_channels(local, outgoing, ignore_channel, compress)
        await self._link.publish_quietly(
            user_subject(user_id),
            {"op": "user", "user": user_id, "msg": fields["data"], "ignore": ignore_channel}
            | remote_kind(fields, compress),
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

    async def subscribe(
        self, channel_id: str, topic: str, *, since: Position | None = None
    ) -> None:
        """Subscribe a channel of this node to a topic.

        On a topic with history (``history_size``), the channel is first sent
        what came after ``since`` (by default: the position its page sent back
        on reconnection for this topic, if any), in order, then the live
        messages, each once; or ``ch/lost`` when history does not cover the
        gap.  Without a position, the page is told the current one
        (``ch/pos``) so that it can recover from there later.

        Raises:
            ValueError: an invalid topic name.
            ChannelNotFound: no such channel on this node (subscribe where
                the connection is, typically in a custom handler).
        """
        await self._lifecycle.subscribe(channel_id, topic, since)

    async def unsubscribe(self, channel_id: str, topic: str) -> None:
        """Unsubscribe a channel of this node from a topic (no error if it was not)."""
        await self._lifecycle.unsubscribe(channel_id, topic)

    def listen(self, topic: str, *, since: Position | None = None) -> TopicListener:
        """A Python subscriber of a topic with history, from ``since`` or from now.

        ::

            async with manager.listen("room:lobby", since=saved) as listener:
                async for item in listener:      # TopicMessage: topic, position, message
                    ...

        Iteration raises ``HistoryLost`` where history does not cover a gap
        (the listener then goes on from ``lost.position``).

        Raises:
            ValueError: an invalid topic, or one without history.
        """
        check_topic(topic)
        if not self._feeds.wants(topic):
            raise ValueError(
                f"topic {topic!r} has no history (history_size, history_topics, and a backend "
                "that keeps history)"
            )
        return TopicListener(self._feeds, topic, since)

    async def presence(self, topic: str) -> dict[str, str | None]:
        """Who follows ``topic``: its channels on every node, with their users.

        On a topic with presence (``presence_topics``); otherwise, and while
        the backend is unavailable (with a warning), this node's channels.
        The channels of a node that died count until its node key expires
        (``RedisBackend(node_ttl=...)``).

        Raises:
            ValueError: an invalid topic.
        """
        check_topic(topic)
        return await self._presence.members(topic)

    def topic_position(self, topic: str) -> Position | None:
        """This node's last delivered position of a topic with history it follows."""
        return self._feeds.position(topic)

    @property
    def waiting_recoveries(self) -> int:
        """Recoveries asked for while the backend was away, waiting for it to
        come back (at most ``max_waiting_recoveries``, each ``recover_wait``)."""
        return self._feeds.waiting_recoveries

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
        compress: bool | None = None,
    ) -> int:
        """Send ``message`` to a topic's subscribers on every node.

        The page receives ``ch/msg`` with ``topic`` set.

        Args:
            topic: the topic.
            message: any JSON-serialisable value.
            ignore_channel: a channel id to leave out.
            local_only: this node's subscribers only (for a source that runs
                on every node, such as the ticker's simulated prices).
            compress: as ``broadcast``; on a topic with history, the
                manager's ``compress`` setting always (a replay is sent
                long after the call).

        On a topic with history the message is first numbered by the
        backend, then delivered here and on every node in that order: with
        Redis it goes to the backend's outbox (``max_outbox``), sent in
        order with one round trip per batch, and kept while Redis is away
        until it is back.  ``local_only`` messages have no history.

        Returns:
            The number of this node's channels it was queued for; on a topic
            with history, the number of this node's subscribers it is for
            (they get it once it is numbered).

        Raises:
            ValueError: an invalid topic; ``message`` not JSON-serialisable.
            BackendUnavailable: a message with history cannot be kept: the
                outbox is full (nothing is dropped silently).
            TypeError, MessageTooLarge: as ``broadcast``.
        """
        check_topic(topic)
        if not local_only and self._feeds.wants(topic):
            return await self._feeds.publish(topic, message, ignore_channel)
        outgoing = self._delivery.message("msg", {"data": message, "topic": topic})
        local = self.registry.subscribers(topic)
        delivered = self._delivery.to_channels(local, outgoing, ignore_channel, compress)
        if not local_only:
            await self._link.publish_quietly(
                topic_subject(topic),
                {"op": "topic", "topic": topic, "msg": message, "ignore": ignore_channel}
                | remote_kind({}, compress),
            )
        return delivered

    # -- send and wait ------------------------------------------------------------------

    async def send_and_wait(
        self, channel_id: str, message: Any, timeout: float | None = None, *, custom: bool = False
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
            custom: ``message`` is a typed envelope (as ``broadcast``); the
                page's request handler gets its ``data``, and its ``kind`` in
                the second argument (``{rchan, kind}``).

        Raises:
            ChannelNotFound: no such channel (or its node is gone).
            ChannelDisconnected: the connection ended before answering; at
                once, not at the timeout.
            ReplyTimeout: no answer in time (also a ``TimeoutError``).
            ReplyError: the page's handler failed, or there is none.
            BackendUnavailable: the channel is on another node and the
                backend is down (or went down while waiting).
            TooManyWaits: called on behalf of a user (in a handler of one of
                its pages, or a task it started) that has ``max_user_waits``
                calls waiting on this node; at once, nothing is sent.
            ValueError: a bad timeout.
            TypeError: the envelope does not match ``custom``.
        """
        fields = message_fields(message, custom)
        return await self._requests.send_and_wait(channel_id, fields, timeout)
