"""Topics with history on one node: every subscriber gets each message once, in order.

A node keeps, per topic with history that it has subscribers for, a *feed*:
the epoch and the last offset it delivered.  Messages come in from the
backend (``op: hist``, the node's own publications included) and from the
results of its own appends, possibly twice, possibly out of order across a
reconnection.  The feed delivers offset ``last + 1`` and nothing else:

- an offset already delivered is a duplicate and is dropped;
- an offset beyond ``last + 1`` means the node missed some (its Redis
  connection broke): it is held, the gap is read from the backend's history
  (``Backend.history``), and everything goes out in order;
- when the backend comes back after an outage, every feed reads what it
  missed from its last offset (``resync``);
- a message of another epoch means the history was lost: every subscriber
  is told (``ch/lost``, or ``HistoryLost`` for a Python listener), and the
  feed follows the new epoch from its start.

A subscriber that arrives with a position (a page reconnecting, a Python
listener with ``since``) is first served from the history, while the feed's
live messages for it are held; then the held ones, without the duplicates;
then it is live.  If the history does not cover the gap, it is told so
instead, and goes on live.  If the history cannot be read because the
backend is away, the recovery waits for it in the background (at most
``recover_wait`` seconds, at most ``max_waiting_recoveries`` at once on the
node) and completes when it is back; past either bound the subscriber is
told ``"unavailable"``.

Channels are found through the registry (``registry.subscribers(topic)``);
Python listeners (``TopicListener``, ``ChannelManager.listen``) are kept
here.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeAlias

from .addresses import topic_subject
from .backends import BackendUnavailable
from .errors import HistoryLost
from .history import HistoryEntry, HistoryRange, Position, recover

if TYPE_CHECKING:
    from .channel import Channel
    from .delivery import Delivery
    from .nodes import NodeLink
    from .registry import Registry
    from .settings import ChannelSettings

__all__ = ["TopicFeeds", "TopicListener", "TopicMessage"]

logger = logging.getLogger("wsserver.plugins.channels")

# A subscriber: a channel (by id) or a Python listener.
_Key: TypeAlias = "str | TopicListener"
# What waits for a subscriber during its recovery: an entry, or a loss.
_Held = HistoryEntry | HistoryLost


@dataclass(frozen=True, slots=True)
class TopicMessage:
    """One message of a topic with history, as a Python listener gets it.

    Attributes:
        topic: the topic.
        position: its epoch and offset.
        message: what was published.
    """

    topic: str
    position: Position
    message: Any


@dataclass(eq=False)
class _Feed:
    topic: str
    epoch: str | None = None
    last: int | None = None
    fetching: bool = False
    # Arrived ahead of a gap; bounded (what does not fit is read from history).
    early: dict[int, HistoryEntry] = field(default_factory=dict)
    abandoned: set[str] = field(default_factory=set)
    # Subscribers being recovered, and what arrived live for them meanwhile.
    held: dict[_Key, list[_Held]] = field(default_factory=dict)
    # Subscribers recovered beyond ``last``: they have everything up to this.
    floor: dict[_Key, int] = field(default_factory=dict)
    listeners: set[TopicListener] = field(default_factory=set)
    opening: asyncio.Task[None] | None = None


class TopicListener:
    """A Python subscriber of a topic with history (``ChannelManager.listen``).

    ::

        async with manager.listen("prices", since=saved) as listener:
            while True:
                try:
                    async for item in listener:
                        saved = item.position
                        handle(item.message)
                except HistoryLost as lost:
                    saved = lost.position
                    reload_everything()   # then iterate again: it goes on live

    Iterating yields ``TopicMessage`` in offset order, each once; it raises
    ``HistoryLost`` where history does not cover a gap (the listener goes on
    after it), and ends when the listener is closed.

    Attributes:
        topic: the topic.
        position: the position of the last message yielded (or where it
            started).
    """

    def __init__(self, feeds: TopicFeeds, topic: str, since: Position | None) -> None:
        self.topic = topic
        self.position = since
        self._feeds = feeds
        self._since = since
        self._queue: deque[TopicMessage | HistoryLost] = deque()
        self._wakeup = asyncio.Event()
        self._closed = False

    async def __aenter__(self) -> TopicListener:
        await self._feeds.add_listener(self, self._since)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop listening; an iteration in progress ends."""
        if not self._closed:
            self._closed = True
            self._wakeup.set()
            await self._feeds.remove_listener(self)

    def __aiter__(self) -> TopicListener:
        return self

    async def __anext__(self) -> TopicMessage:
        while not self._queue:
            if self._closed:
                raise StopAsyncIteration
            self._wakeup.clear()
            await self._wakeup.wait()
        item = self._queue.popleft()
        if isinstance(item, HistoryLost):
            self.position = item.position
            raise item
        self.position = item.position
        return item

    def _put(self, item: TopicMessage | HistoryLost) -> None:
        if isinstance(item, TopicMessage) and len(self._queue) >= self._feeds.max_listener_queue:
            # Fallen behind: what waited is dropped, and said so.
            self._queue.clear()
            logger.warning("channels: listener of %r fell behind; told HistoryLost", self.topic)
            item = HistoryLost(self.topic, item.position, "overflow")
        self._queue.append(item)
        self._wakeup.set()


class TopicFeeds:
    """The feeds of one node's topics with history, and their subscribers.

    Args:
        link: the link to the other nodes (the backend's history).
        registry: this node's channels.
        delivery: sends to them.
        settings: history limits.
    """

    def __init__(
        self,
        *,
        link: NodeLink,
        registry: Registry[Channel],
        delivery: Delivery,
        settings: ChannelSettings,
    ) -> None:
        self._link = link
        self._registry = registry
        self._delivery = delivery
        self._settings = settings
        self._feeds: dict[str, _Feed] = {}
        self.max_listener_queue = settings.max_listener_queue
        # Held out-of-order entries per feed, at most; beyond, the gap read
        # from history brings them.
        self._max_early = max(1024, settings.history_size)
        # Recoveries waiting for the backend to come back: one future each,
        # resolved by ``resync``.
        self._waiting: set[asyncio.Future[None]] = set()
        self._full_logged = False

    def wants(self, topic: str) -> bool:
        """Whether ``topic`` has history here (settings, and a backend that keeps it)."""
        return self._settings.has_history(topic) and self._link.backend.keeps_history

    def position(self, topic: str) -> Position | None:
        """This node's last delivered position for ``topic``, if it has a feed and knows it."""
        feed = self._feeds.get(topic)
        if feed is None or feed.epoch is None or feed.last is None:
            return None
        return Position(feed.epoch, feed.last)

    def has_listeners(self, topic: str) -> bool:
        """Whether Python listeners follow ``topic`` on this node."""
        feed = self._feeds.get(topic)
        return feed is not None and bool(feed.listeners)

    # -- publishing ----------------------------------------------------------------

    async def publish(self, topic: str, message: Any, ignore: str | None) -> int:
        """Append to the topic's history; deliver here once numbered.

        Returns:
            This node's subscribers of the topic (each gets it once it is
            numbered: at once in-process, after a round trip to Redis, or
            when Redis is back).

        Raises:
            BackendUnavailable: the backend's outbox is full.
            TypeError, ValueError, MessageTooLarge: as ``ChannelManager.publish``.
        """
        settings = self._settings
        # Checked before it is numbered: a message nobody could be sent must
        # not take an offset (the widest epoch and offset, for the size).
        self._delivery.message(
            "msg", {"data": message, "topic": topic, "ep": "0" * 16, "off": 2**53 - 1}
        )
        await self._link.start()
        entry = await self._link.backend.append(
            topic_subject(topic),
            topic,
            message,
            ignore,
            size=settings.history_size,
            ttl=settings.history_ttl,
        )
        if entry is not None:
            self.offer(entry)  # numbered at once (in-process)
        # Counted, not measured: with Redis, they get it once it is numbered.
        return len(self._registry.subscribers(topic) - {ignore})

    # -- subscribers ---------------------------------------------------------------

    async def add_channel(self, channel: Channel, topic: str, since: Position | None) -> None:
        """A channel of this node joined ``topic`` (registered already): recover it
        from ``since``, or tell it the current position."""
        feed = self._feed(topic)
        if since is not None:
            feed.held[channel.id] = []  # before any await: nothing live overtakes the replay
        await self._opened(feed)
        if since is None:
            position = self.position(topic)
            if position is not None and not channel.closed:
                self._delivery.send(
                    channel, "pos", {"topic": topic, "ep": position.epoch, "off": position.offset}
                )
            return
        await self._recover(feed, channel.id, since)

    async def add_listener(self, listener: TopicListener, since: Position | None) -> None:
        """Start a Python listener (``TopicListener.__aenter__``)."""
        topic = listener.topic
        await self._link.start()
        await self._link.backend.subscribe(topic_subject(topic))
        feed = self._feed(topic)
        if since is not None:
            feed.held[listener] = []
        feed.listeners.add(listener)
        await self._opened(feed)
        if since is None:
            listener.position = self.position(topic)
            return
        await self._recover(feed, listener, since)

    async def remove_listener(self, listener: TopicListener) -> None:
        """Stop a Python listener; the topic is released if nobody else follows it."""
        feed = self._feeds.get(listener.topic)
        if feed is None:
            return
        feed.listeners.discard(listener)
        feed.held.pop(listener, None)
        feed.floor.pop(listener, None)
        if not feed.listeners and not self._registry.subscribers(listener.topic):
            self.drop(listener.topic)
            await self._link.backend.unsubscribe(topic_subject(listener.topic))

    def forget(self, channel_id: str, topics: Iterable[str]) -> None:
        """A channel left these topics: forget its recovery state."""
        for topic in topics:
            feed = self._feeds.get(topic)
            if feed is not None:
                feed.held.pop(channel_id, None)
                feed.floor.pop(channel_id, None)

    def drop(self, topic: str) -> None:
        """Nobody follows ``topic`` here any more: forget its feed."""
        feed = self._feeds.get(topic)
        if feed is not None and not feed.listeners:
            del self._feeds[topic]

    def _feed(self, topic: str) -> _Feed:
        feed = self._feeds.get(topic)
        if feed is None:
            feed = self._feeds[topic] = _Feed(topic)
            feed.opening = asyncio.ensure_future(self._read_position(feed))
        return feed

    async def _opened(self, feed: _Feed) -> None:
        if feed.opening is not None:
            await asyncio.shield(feed.opening)

    async def _read_position(self, feed: _Feed) -> None:
        # Subscribed to the topic's subject already: whatever is published
        # after this read reaches the feed live.
        try:
            found = await self._link.backend.history(
                feed.topic, None, ttl=self._settings.history_ttl
            )
        except BackendUnavailable:
            return  # read again when the backend is back (resync)
        finally:
            feed.opening = None
        if feed.epoch is None:
            feed.epoch, feed.last = found.epoch, found.top
            if self._drain(feed) and not feed.fetching:
                self._start_fetch(feed)

    @property
    def waiting_recoveries(self) -> int:
        """Recoveries waiting for the backend to come back."""
        return len(self._waiting)

    async def _recover(self, feed: _Feed, key: _Key, since: Position) -> None:
        try:
            found: HistoryRange | None = await self._link.backend.history(
                feed.topic, since.offset, ttl=self._settings.history_ttl
            )
        except BackendUnavailable:
            if len(self._waiting) < self._settings.max_waiting_recoveries:
                # Held (its live messages too) until the backend is back,
                # in the background: the caller's subscribe returns now.
                waiter = asyncio.get_running_loop().create_future()
                self._waiting.add(waiter)
                self._link.spawn(
                    self._recover_later(feed, key, since, waiter),
                    f"channels-recover-{feed.topic}",
                )
                return
            if not self._full_logged:
                self._full_logged = True
                logger.warning(
                    "channels: %d recoveries are waiting for the backend; further ones "
                    "are told 'unavailable' at once (max_waiting_recoveries)",
                    len(self._waiting),
                )
            found = None
        self._complete(feed, key, since, found)

    async def _recover_later(
        self, feed: _Feed, key: _Key, since: Position, waiter: asyncio.Future[None]
    ) -> None:
        """Wait (bounded) for the backend, then read the history and complete."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._settings.recover_wait
        found: HistoryRange | None = None
        try:
            while True:
                try:
                    async with asyncio.timeout_at(deadline):
                        await asyncio.shield(waiter)
                except TimeoutError:
                    break
                if key not in feed.held or self._feeds.get(feed.topic) is not feed:
                    return  # it left, or nobody follows the topic any more
                try:
                    found = await self._link.backend.history(
                        feed.topic, since.offset, ttl=self._settings.history_ttl
                    )
                    break
                except BackendUnavailable:
                    # Gone again at once: wait for the next return, same deadline.
                    self._waiting.discard(waiter)
                    waiter = loop.create_future()
                    self._waiting.add(waiter)
        finally:
            self._waiting.discard(waiter)
        if key in feed.held and self._feeds.get(feed.topic) is feed:
            self._complete(feed, key, since, found)

    def _complete(
        self, feed: _Feed, key: _Key, since: Position, found: HistoryRange | None
    ) -> None:
        """Send what the subscriber missed (or that it cannot be), then what was held."""
        topic = feed.topic
        held = feed.held.pop(key, [])
        if found is None:
            # Not knowable now: say so rather than pretend.
            current = self.position(topic)
            lost: HistoryLost | None = HistoryLost(topic, current, "unavailable")
            entries: tuple[HistoryEntry, ...] = ()
            upto = current.offset if current is not None else 0
        else:
            entries, lost = recover(topic, since, found)
            upto = found.top if lost is not None else since.offset
        if lost is not None:
            self._send_lost(key, lost)
        for entry in entries:
            self._send(key, entry)
            upto = entry.offset
        for item in held:
            if isinstance(item, HistoryLost):
                self._send_lost(key, item)
                upto = 0
            elif item.offset > upto:
                self._send(key, item)
                upto = item.offset
        if feed.last is not None and upto > feed.last and self._feeds.get(topic) is feed:
            feed.floor[key] = upto

    # -- the sequence ---------------------------------------------------------------

    def offer(self, entry: HistoryEntry) -> int:
        """A numbered message, from the backend or this node's append.

        Returns:
            This node's channels it was queued for now.
        """
        feed = self._feeds.get(entry.topic)
        if feed is None or entry.epoch in feed.abandoned:
            return 0
        if feed.epoch is None:
            if feed.fetching or feed.opening is not None:
                self._hold(feed, entry)
                return 0
            feed.epoch, feed.last = entry.epoch, entry.offset - 1
        elif entry.epoch != feed.epoch:
            self._switch(feed, entry.epoch)
        assert feed.last is not None
        if entry.offset <= feed.last:
            return 0  # a duplicate
        if feed.fetching or entry.offset != feed.last + 1:
            logger.debug(
                "channels: topic %r: holding offset %d (last %d%s)",
                entry.topic,
                entry.offset,
                feed.last,
                ", reading history" if feed.fetching else "",
            )
            self._hold(feed, entry)
            if not feed.fetching:
                self._start_fetch(feed)
            return 0
        delivered = self._deliver(feed, entry)
        if self._drain(feed):
            self._start_fetch(feed)
        return delivered

    def resync(self) -> None:
        """The backend is back: every feed reads what it missed, and the
        recoveries waiting for it go on."""
        for feed in self._feeds.values():
            if not feed.fetching and feed.opening is None:
                self._start_fetch(feed)
        for waiter in self._waiting:
            if not waiter.done():
                waiter.set_result(None)
        self._full_logged = False

    def _hold(self, feed: _Feed, entry: HistoryEntry) -> None:
        if len(feed.early) < self._max_early:
            feed.early[entry.offset] = entry

    def _switch(self, feed: _Feed, epoch: str) -> None:
        """Another epoch: the history was lost; everyone is told."""
        if feed.epoch is not None:
            feed.abandoned.add(feed.epoch)
            logger.warning(
                "channels: the history of topic %r was lost (epoch %s -> %s); subscribers are told",
                feed.topic,
                feed.epoch,
                epoch,
            )
        feed.epoch, feed.last = epoch, 0
        feed.early = {k: v for k, v in feed.early.items() if v.epoch == epoch}
        feed.floor.clear()
        self._lost_all(feed, HistoryLost(feed.topic, Position(epoch, 0), "epoch"))

    def _start_fetch(self, feed: _Feed) -> None:
        feed.fetching = True
        self._link.spawn(self._fetch(feed), f"channels-history-{feed.topic}")

    async def _fetch(self, feed: _Feed) -> None:
        try:
            while self._feeds.get(feed.topic) is feed:
                try:
                    found = await self._link.backend.history(
                        feed.topic, feed.last, ttl=self._settings.history_ttl
                    )
                except BackendUnavailable:
                    return  # resync when the backend is back
                if feed.epoch is None or feed.last is None:
                    feed.epoch, feed.last = found.epoch, found.top
                elif found.epoch != feed.epoch:
                    if found.epoch in feed.abandoned:
                        return
                    self._switch(feed, found.epoch)
                    continue  # read the new epoch from its start
                else:
                    self._catch_up(feed, found)
                if not self._drain(feed):
                    return
                # Still a gap before what is held: read again.
        finally:
            feed.fetching = False

    def _catch_up(self, feed: _Feed, found: HistoryRange) -> None:
        assert feed.last is not None and feed.epoch is not None
        entries = [e for e in found.entries if e.offset > feed.last]
        if feed.last < found.top and (not entries or entries[0].offset != feed.last + 1):
            resume = entries[0].offset - 1 if entries else found.top
            logger.warning(
                "channels: topic %r: messages %d to %d are no longer in history; "
                "subscribers are told",
                feed.topic,
                feed.last + 1,
                resume,
            )
            feed.last = resume
            self._lost_all(feed, HistoryLost(feed.topic, Position(feed.epoch, resume), "trimmed"))
        for entry in entries:
            if entry.offset == feed.last + 1:
                self._deliver(feed, entry)
        feed.early = {k: v for k, v in feed.early.items() if k > feed.last}

    def _drain(self, feed: _Feed) -> bool:
        """Deliver the held entries that follow; whether some remain beyond a gap."""
        early = feed.early
        if feed.last is None:
            return bool(early)
        while (entry := early.pop(feed.last + 1, None)) is not None:
            self._deliver(feed, entry)
        for offset in [k for k in early if k <= feed.last]:
            del early[offset]
        return bool(early)

    # -- sending -------------------------------------------------------------------

    def _deliver(self, feed: _Feed, entry: HistoryEntry) -> int:
        feed.last = entry.offset
        outgoing = None
        delivered = 0
        for key in self._subscribers(feed):
            if key == entry.ignore or self._skip(feed, key, entry):
                continue
            if isinstance(key, TopicListener):
                key._put(TopicMessage(entry.topic, entry.position, entry.message))
                continue
            channel = self._registry.get(key)
            if channel is None:
                continue
            if outgoing is None:
                try:
                    outgoing = self._delivery.message("msg", _msg_fields(entry))
                except (TypeError, ValueError) as exc:  # MessageTooLarge: a ValueError
                    # Published by a node with larger limits than this one's.
                    logger.warning(
                        "channels: topic %r: message %d not delivered here: %s",
                        *_about(entry, exc),
                    )
                    return delivered
            if self._delivery.put(channel, outgoing):
                delivered += 1
        return delivered

    def _subscribers(self, feed: _Feed) -> list[_Key]:
        keys: list[_Key] = [*self._registry.subscribers(feed.topic)]
        keys.extend(feed.listeners)
        return keys

    def _skip(self, feed: _Feed, key: _Key, entry: HistoryEntry) -> bool:
        held = feed.held.get(key)
        if held is not None:
            held.append(entry)
            return True
        floor = feed.floor.get(key)
        if floor is None:
            return False
        if entry.offset <= floor:
            return True
        del feed.floor[key]
        return False

    def _lost_all(self, feed: _Feed, lost: HistoryLost) -> None:
        for key in self._subscribers(feed):
            held = feed.held.get(key)
            if held is not None:
                held.append(lost)
            else:
                self._send_lost(key, lost)

    def _send(self, key: _Key, entry: HistoryEntry) -> None:
        if isinstance(key, TopicListener):
            key._put(TopicMessage(entry.topic, entry.position, entry.message))
            return
        channel = self._registry.get(key)
        if channel is None:
            return
        try:
            self._delivery.send(channel, "msg", _msg_fields(entry))
        except (TypeError, ValueError) as exc:  # as in _deliver
            logger.warning("channels: topic %r: message %d not replayed: %s", *_about(entry, exc))

    def _send_lost(self, key: _Key, lost: HistoryLost) -> None:
        if isinstance(key, TopicListener):
            key._put(lost)
            return
        channel = self._registry.get(key)
        if channel is None:
            return
        fields: dict[str, Any] = {"topic": lost.topic, "reason": lost.reason}
        if lost.position is not None:
            fields.update(ep=lost.position.epoch, off=lost.position.offset)
        self._delivery.send(channel, "lost", fields)


def _msg_fields(entry: HistoryEntry) -> dict[str, Any]:
    return {"data": entry.message, "topic": entry.topic, "ep": entry.epoch, "off": entry.offset}


def _about(entry: HistoryEntry, exc: Exception) -> tuple[str, int, Exception]:
    return entry.topic, entry.offset, exc
