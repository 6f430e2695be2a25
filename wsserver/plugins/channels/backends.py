"""How channel managers in different processes reach each other.

A ``ChannelManager`` delivers to its own connections itself; a backend
carries what must reach the *other* managers (nodes): broadcasts, messages
for a user or a topic, messages for a channel on another node, and the
requests and replies of ``send_and_wait``.  Every backend has one interface:

- ``publish(subject, payload)``: a JSON object to every other node
  subscribed to ``subject``;
- ``subscribe(subject)`` / ``unsubscribe(subject)``: which subjects this
  node receives (its manager's ``receiver`` is called with each);
- presence: ``add_presence`` / ``remove_presence`` / ``user_channels``, so
  that ``get_user_channels`` sees a user's channels on every node;
- topic presence: ``join_topic`` / ``leave_topic`` / ``topic_members``:
  which channels, on every node, follow a topic (for topics with presence);
- topic history (``history``): ``append`` numbers a topic message (an
  offset in the topic's epoch) and keeps it, bounded, and hands it to every
  node subscribed to the topic, this one included (``op: hist``);
  ``history`` reads what is kept after an offset.

Subjects are ``all``, ``node:<node id>``, ``user:<user id>`` and
``topic:<topic>``; the manager decides what they mean.

Two backends:

- ``InProcessBackend`` (the default; nothing to install): one process.  With
  a shared ``Hub``, several managers in one process behave as nodes of one
  cluster (payloads are copied through JSON, as over a network), which is
  how the cross-node logic is tested without a server;
- ``RedisBackend`` (``redis_backend``): Redis pub/sub, for many processes
  and hosts.

Plain publications between nodes are **at most once**: a payload published
while the backend is down, or while a node is reconnecting, is lost, never
repeated.  Topic messages with history are numbered, so a node that missed
some reads them back from the history (``feeds``).

``backend_from_env`` picks one from ``WSSERVER_CHANNELS_BACKEND``
(``memory://`` or ``redis://host:port/db``), which ``wsserver run
--channels-backend URL`` sets.
"""

from __future__ import annotations

import abc
import asyncio
import json
import logging
import os
import secrets
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from ...server.plugin_options import EnvironmentOption

if TYPE_CHECKING:
    from .history import HistoryEntry, HistoryRange, MemoryHistory

__all__ = [
    "BACKEND_OPTION",
    "ENV_VAR",
    "Backend",
    "BackendUnavailable",
    "ChannelError",
    "Hub",
    "InProcessBackend",
    "Receiver",
    "StatusCallback",
    "backend_from_env",
    "backend_from_url",
    "check_url",
    "new_node_id",
]

logger = logging.getLogger("wsserver.plugins.channels")

#: The environment variable naming the backend (a URL); see ``backend_from_url``.
ENV_VAR = "WSSERVER_CHANNELS_BACKEND"

#: Called with ``(subject, payload)`` for every payload another node published
#: on a subject this node subscribes to.  Synchronous: it must not block.
Receiver = Callable[[str, dict[str, Any]], None]
#: Called with ``True`` when the backend (re)connects, ``False`` when it is lost.
StatusCallback = Callable[[bool], None]


class ChannelError(Exception):
    """The base of the channel manager's errors."""


class BackendUnavailable(ChannelError):
    """The backend cannot reach the other nodes now (Redis is down)."""


def new_node_id() -> str:
    """A random node id: 12 hex digits, no dots (channel ids are ``<node>.<...>``)."""
    return secrets.token_hex(6)


def _copy(payload: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy through JSON: what another process would receive."""
    copied: dict[str, Any] = json.loads(
        json.dumps(payload, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    )
    return copied


class Backend(abc.ABC):
    """The interface between a channel manager and the other nodes.

    Attributes:
        name: a short name for logs (``memory``, ``redis``).
        cross_process: whether it reaches managers in other processes.
        node_id: this node's id, unique in the cluster.
    """

    name: ClassVar[str]
    cross_process: ClassVar[bool]
    node_id: str

    @property
    @abc.abstractmethod
    def available(self) -> bool:
        """Whether other nodes can be reached now."""

    @abc.abstractmethod
    async def start(
        self,
        receiver: Receiver,
        subjects: tuple[str, ...] = (),
        on_status: StatusCallback | None = None,
    ) -> None:
        """Start receiving; ``subjects`` are subscribed from the start.

        The node's own subject, ``node:<node_id>``, is always subscribed.
        Returns once the first connection attempt is over (a backend that
        cannot connect keeps trying in the background).
        """

    @abc.abstractmethod
    async def close(self) -> None:
        """Stop, unsubscribe and forget this node's presence."""

    @abc.abstractmethod
    async def subscribe(self, subject: str) -> None:
        """Receive ``subject`` (idempotent); never raises for an outage."""

    @abc.abstractmethod
    async def unsubscribe(self, subject: str) -> None:
        """Stop receiving ``subject`` (idempotent); never raises for an outage."""

    @abc.abstractmethod
    async def publish(
        self, subject: str, payload: Mapping[str, Any], *, wait: bool = False
    ) -> int | None:
        """Send ``payload`` (a JSON object) to the other nodes on ``subject``.

        Args:
            subject: the subject.
            payload: JSON-serialisable.
            wait: wait until it was handed over, and return how many
                subscribers received it.

        Returns:
            With ``wait``, the number of subscribers (0: nobody listens);
            otherwise ``None``.

        Raises:
            BackendUnavailable: the other nodes cannot be reached now.
            TypeError, ValueError: ``payload`` is not JSON-serialisable.
        """

    @abc.abstractmethod
    async def add_presence(self, user_id: str, channel_id: str) -> None:
        """Record that ``channel_id`` (of this node) belongs to ``user_id``."""

    @abc.abstractmethod
    async def remove_presence(self, user_id: str, channel_id: str) -> None:
        """Forget ``add_presence``."""

    @abc.abstractmethod
    async def user_channels(self, user_id: str) -> set[str]:
        """The user's channels on every live node.

        Raises:
            BackendUnavailable: the other nodes cannot be reached now.
        """

    #: Whether ``append`` and ``history`` work (topic history).
    keeps_history: ClassVar[bool] = False
    #: Whether ``join_topic``, ``leave_topic`` and ``topic_members`` work.
    keeps_topic_presence: ClassVar[bool] = False

    async def join_topic(self, topic: str, channel_id: str, user_id: str | None) -> None:
        """Record that ``channel_id`` (of this node) follows ``topic``."""
        raise NotImplementedError(f"the {self.name} backend keeps no topic presence")

    async def leave_topic(self, topic: str, channel_id: str) -> None:
        """Forget ``join_topic``."""
        raise NotImplementedError(f"the {self.name} backend keeps no topic presence")

    async def topic_members(self, topic: str) -> dict[str, str | None]:
        """The channels following ``topic`` on every live node, with their users.

        Raises:
            BackendUnavailable: the other nodes cannot be reached now.
        """
        raise NotImplementedError(f"the {self.name} backend keeps no topic presence")

    async def append(
        self,
        subject: str,
        topic: str,
        message: Any,
        ignore: str | None,
        *,
        size: int,
        ttl: float,
    ) -> HistoryEntry | None:
        """Number a topic message, keep it, and hand it to every node on ``subject``.

        Every node subscribed to ``subject`` (this one too) receives it as an
        ``op: hist`` payload (``HistoryEntry.to_payload``), in offset order.

        Args:
            subject: the topic's subject.
            topic, message, ignore: what ``publish`` got.
            size: messages kept for the topic, at most.
            ttl: seconds a message is kept.

        Returns:
            The entry, once numbered; ``None`` when it waits in an outbox
            for the backend to come back (it is delivered then).

        Raises:
            BackendUnavailable: it cannot be kept (an outbox is full).
            TypeError, ValueError: ``message`` is not JSON-serialisable.
        """
        raise NotImplementedError(f"the {self.name} backend keeps no topic history")

    async def history(self, topic: str, after: int | None, *, ttl: float) -> HistoryRange:
        """The topic's epoch, last offset, and the messages kept after ``after``.

        ``after=None`` asks for the position only.  A topic never published
        gets its epoch here (offset 0).

        Raises:
            BackendUnavailable: the history cannot be read now.
        """
        raise NotImplementedError(f"the {self.name} backend keeps no topic history")

    def describe(self) -> str:
        """A one-line description for logs."""
        return self.name


class Hub:
    """The shared medium of ``InProcessBackend`` nodes in one process."""

    def __init__(self) -> None:
        from .history import MemoryHistory  # history.py needs this module's errors

        self.nodes: dict[str, InProcessBackend] = {}
        self.presence: dict[str, dict[str, str]] = {}  # user -> channel -> node
        # topic -> channel -> (user, node)
        self.topic_presence: dict[str, dict[str, tuple[str | None, str]]] = {}
        self.history: MemoryHistory = MemoryHistory()


class InProcessBackend(Backend):
    """Nodes in one process (by default: this node alone).

    Args:
        hub: share one ``Hub`` between several managers to make them nodes
            of one cluster; by default each backend has a hub of its own.
        node_id: this node's id (default: random).
    """

    name = "memory"
    cross_process = False
    keeps_history = True
    keeps_topic_presence = True

    def __init__(self, hub: Hub | None = None, *, node_id: str | None = None) -> None:
        self.hub = hub if hub is not None else Hub()
        self.node_id = node_id if node_id is not None else new_node_id()
        self.subjects: set[str] = set()
        self._receiver: Receiver | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def available(self) -> bool:
        """Always: there is no connection to lose."""
        return True

    async def start(
        self,
        receiver: Receiver,
        subjects: tuple[str, ...] = (),
        on_status: StatusCallback | None = None,
    ) -> None:
        """Join the hub."""
        if self.node_id in self.hub.nodes and self.hub.nodes[self.node_id] is not self:
            raise ValueError(f"node id {self.node_id!r} is taken in this hub")
        self._receiver = receiver
        self._loop = asyncio.get_running_loop()
        self.subjects.update((*subjects, f"node:{self.node_id}"))
        self.hub.nodes[self.node_id] = self
        if on_status is not None:
            on_status(True)

    async def close(self) -> None:
        """Leave the hub, taking this node's presence with it."""
        self.hub.nodes.pop(self.node_id, None)
        for user_id in list(self.hub.presence):
            channels = self.hub.presence[user_id]
            for channel_id in [c for c, node in channels.items() if node == self.node_id]:
                del channels[channel_id]
            if not channels:
                del self.hub.presence[user_id]
        for topic in list(self.hub.topic_presence):
            members = self.hub.topic_presence[topic]
            for channel_id in [c for c, (_, node) in members.items() if node == self.node_id]:
                del members[channel_id]
            if not members:
                del self.hub.topic_presence[topic]
        self.subjects.clear()
        self._receiver = None

    async def subscribe(self, subject: str) -> None:
        """Receive ``subject``."""
        self.subjects.add(subject)

    async def unsubscribe(self, subject: str) -> None:
        """Stop receiving ``subject``."""
        self.subjects.discard(subject)

    async def publish(
        self, subject: str, payload: Mapping[str, Any], *, wait: bool = False
    ) -> int | None:
        """Hand a copy of ``payload`` to every other node subscribed to ``subject``.

        Delivery happens in later loop iterations, in publishing order, as
        it would over a network.
        """
        copied = _copy(payload)  # raises for what JSON cannot carry
        reached = 0
        for node in list(self.hub.nodes.values()):
            if node is self or subject not in node.subjects or node._loop is None:
                continue
            node._loop.call_soon(node._deliver, subject, _copy(copied))
            reached += 1
        return reached if wait else None

    async def append(
        self,
        subject: str,
        topic: str,
        message: Any,
        ignore: str | None,
        *,
        size: int,
        ttl: float,
    ) -> HistoryEntry | None:
        """Number and keep the message in the hub; every node on ``subject`` gets it."""
        _copy({"msg": message})  # raises for what JSON cannot carry, before numbering
        entry = self.hub.history.append(topic, message, ignore, size=size, ttl=ttl)
        payload = entry.to_payload()
        for node in list(self.hub.nodes.values()):
            if subject in node.subjects and node._loop is not None:
                node._loop.call_soon(node._deliver, subject, _copy(payload))
        return entry

    async def history(self, topic: str, after: int | None, *, ttl: float) -> HistoryRange:
        """What the hub keeps for ``topic``."""
        return self.hub.history.range(topic, after, ttl=ttl)

    def _deliver(self, subject: str, payload: dict[str, Any]) -> None:
        # Checked again on arrival: the node may have unsubscribed meanwhile.
        if self._receiver is None or subject not in self.subjects:
            return
        try:
            self._receiver(subject, payload)
        except Exception:
            logger.exception("channels: error delivering a %r payload", subject)

    async def add_presence(self, user_id: str, channel_id: str) -> None:
        """Record the channel in the hub."""
        self.hub.presence.setdefault(user_id, {})[channel_id] = self.node_id

    async def remove_presence(self, user_id: str, channel_id: str) -> None:
        """Forget the channel."""
        channels = self.hub.presence.get(user_id)
        if channels is not None:
            channels.pop(channel_id, None)
            if not channels:
                del self.hub.presence[user_id]

    async def user_channels(self, user_id: str) -> set[str]:
        """The user's channels on every node of the hub."""
        channels = self.hub.presence.get(user_id, {})
        return {channel for channel, node in channels.items() if node in self.hub.nodes}

    async def join_topic(self, topic: str, channel_id: str, user_id: str | None) -> None:
        """Record the channel among the topic's members in the hub."""
        self.hub.topic_presence.setdefault(topic, {})[channel_id] = (user_id, self.node_id)

    async def leave_topic(self, topic: str, channel_id: str) -> None:
        """Forget the channel among the topic's members."""
        members = self.hub.topic_presence.get(topic)
        if members is not None:
            members.pop(channel_id, None)
            if not members:
                del self.hub.topic_presence[topic]

    async def topic_members(self, topic: str) -> dict[str, str | None]:
        """The topic's members on every node of the hub."""
        members = self.hub.topic_presence.get(topic, {})
        return {c: user for c, (user, node) in members.items() if node in self.hub.nodes}

    def describe(self) -> str:
        """``memory (node <id>)``."""
        return f"memory (node {self.node_id})"


_REDIS_SCHEMES = ("redis", "rediss", "unix")


def check_url(url: str | None) -> str:
    """The kind of backend a URL names: ``"memory"`` or ``"redis"``.

    ``None``, ``""``, ``memory`` and ``memory://`` name the in-process
    backend; ``redis://``, ``rediss://`` and ``unix://`` URLs (redis-py's
    syntax) name Redis.

    Raises:
        ValueError: an unknown scheme.
    """
    if not url or url.strip() in ("memory", "memory://"):
        return "memory"
    scheme, sep, rest = url.partition("://")
    if sep and rest and scheme.lower() in _REDIS_SCHEMES:
        return "redis"
    raise ValueError(
        f"unknown channels backend {url!r}: expected memory:// or redis://host:port/db"
    )


#: ``wsserver run --channels-backend URL``: published as an entry point
#: (``wsserver.options``, see ``wsserver.server.plugin_options``), so that the
#: command line sets ``ENV_VAR`` before the application builds its managers.
BACKEND_OPTION = EnvironmentOption(
    flag="--channels-backend",
    env_var=ENV_VAR,
    metavar="URL",
    help="the channel manager's backend for ChannelManager() without one: memory:// "
    f"or redis://host:port/db (sets {ENV_VAR}); "
    "several workers need Redis to reach each other's connections",
    check=check_url,
)


def backend_from_url(url: str | None, **options: Any) -> Backend:
    """The backend a URL names.

    Args:
        url: ``None``, ``""`` or ``memory://``: an ``InProcessBackend``;
            ``redis://``, ``rediss://`` or ``unix://``: a ``RedisBackend``
            (redis-py's URL syntax, such as ``redis://:pw@host:6379/0``).
        options: keyword arguments for the backend's constructor.

    Raises:
        ValueError: an unknown scheme.
    """
    if check_url(url) == "memory" or url is None:
        return InProcessBackend(**options)
    from .redis_backend import RedisBackend

    return RedisBackend(url, **options)


def backend_from_env(environ: Mapping[str, str] | None = None) -> Backend:
    """The backend named by ``WSSERVER_CHANNELS_BACKEND`` (in-process when unset).

    Raises:
        ValueError: the variable names an unknown scheme.
    """
    env = os.environ if environ is None else environ
    return backend_from_url(env.get(ENV_VAR))
