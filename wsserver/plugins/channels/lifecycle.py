"""A channel's life on its node: attached, opened, subscribed, ended.

1. ``attach``: a runtime ``Session`` gets its ``Channel`` (an id, a held
   send queue, the handlers of the page's messages), registered on this node.
2. ``open``: the channel becomes reachable from every node (its user's
   subject is subscribed and its presence recorded on the backend).
3. Once the page has said ``ch/ready`` too, ``ch/init`` goes out, followed
   by whatever was queued for the channel meanwhile.
4. ``subscribe`` / ``unsubscribe``: topics; the node subscribes a topic's
   subject while it has a subscriber.  On a topic with history the channel
   is replayed what it missed since the position its page sent back
   (``feeds``), or told the current position.
5. ``set_identity``: the channel moves to another user and session (a
   token update): re-registered here and on the backend, its topics kept,
   the page told (``ch/identity``).
6. When the connection ends, every index forgets the channel, what waits on
   the page fails at once, and the backend subscriptions nobody needs any
   more are released (checked then, not when the channel left: another tab
   of the same user may have arrived meanwhile).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from ..runtime.session import Session
from .addresses import PLUGIN, check_topic, new_channel_id, topic_subject, user_subject
from .channel import Channel, Identity, TokenVerifier
from .errors import ChannelNotFound
from .limits import UserLimits
from .queues import SendQueue
from .settings import ChannelSettings

if TYPE_CHECKING:
    from .delivery import Delivery
    from .feeds import TopicFeeds
    from .history import Position
    from .inbound import Inbound
    from .manager import ChannelManager
    from .nodes import NodeLink
    from .presence import TopicPresence
    from .registry import Registry

__all__ = ["Lifecycle"]


class Lifecycle:
    """Attaches, opens, subscribes and ends the channels of one manager.

    Args:
        manager: the manager (each ``Channel`` refers to it).
        registry: this node's channels.
        link: the link to the other nodes (its backend's subscriptions and
            presence follow the channels).
        delivery: sends ``ch/init``.
        inbound: handles the page's messages.
        feeds: topics with history (replays and positions on subscription).
        presence: topics with presence (joins and leaves).
        settings: the send queues' limits and what ``ch/init`` announces.
        limits: the users' message rates (a user's is forgotten with its
            last channel).
    """

    def __init__(
        self,
        manager: ChannelManager,
        *,
        registry: Registry[Channel],
        link: NodeLink,
        delivery: Delivery,
        inbound: Inbound,
        feeds: TopicFeeds,
        presence: TopicPresence,
        settings: ChannelSettings,
        limits: UserLimits,
    ) -> None:
        self._manager = manager
        self._limits = limits
        self._registry = registry
        self._link = link
        self._delivery = delivery
        self._inbound = inbound
        self._feeds = feeds
        self._presence = presence
        self._settings = settings

    def attach(
        self,
        session: Session,
        identity: Identity | None = None,
        verify_token: TokenVerifier | None = None,
    ) -> Channel:
        """See ``ChannelManager.attach``."""
        if PLUGIN in session.plugins:
            raise ValueError("this session has a channel already")
        identity = identity if identity is not None else Identity()
        channel_id = new_channel_id(self._link.node_id)
        settings = self._settings
        queue = SendQueue(
            session.websocket,
            max_messages=settings.max_queue,
            max_bytes=settings.max_queue_bytes,
            policy=settings.queue_policy,
            compress=settings.compress,
            # Until the page's ch/ready: the runtime may connect before the
            # page has loaded channels.js, and would drop what it cannot
            # handle yet.
            held=True,
        )
        channel = Channel(self._manager, session, channel_id, identity, queue, verify_token)
        session.plugins[PLUGIN] = channel
        self._registry.add(
            channel_id, channel, user_id=identity.user_id, session_id=identity.session_id
        )
        self._inbound.listen(channel, on_ready=self._on_ready)
        session.add_close_callback(lambda _: self._end(channel))
        return channel

    async def open(self, channel: Channel) -> None:
        """See ``ChannelManager.open``."""
        await self._link.start()
        user_id = channel.user_id
        if user_id is not None and not channel.closed:
            backend = self._link.backend
            await backend.subscribe(user_subject(user_id))
            await backend.add_presence(user_id, channel.id)
            if channel.id not in self._registry:  # it ended while we were registering it
                await self._release_user(user_id, channel.id)
                return
        channel.mark_opened()
        self._start_sending(channel)

    def _on_ready(self, channel: Channel) -> None:
        if channel.mark_ready():  # said twice: harmless
            self._start_sending(channel)

    def _start_sending(self, channel: Channel) -> None:
        if not channel.ready_to_send or not channel.queue.held:
            return
        settings = self._settings
        init = self._delivery.message(
            "init",
            {
                "channel": channel.id,
                "user": channel.user_id,
                "node": self._link.node_id,
                "max_chunked_size": settings.max_chunked_size,
                "max_chunks": settings.max_chunks,
                "chunk_timeout_ms": math.ceil(settings.chunk_timeout * 1000),
            },
        )
        channel.queue.release(first=init.item(channel.session.max_message_size))

    # -- identity ------------------------------------------------------------------------

    async def set_identity(self, channel: Channel, identity: Identity) -> None:
        """See ``ChannelManager.set_identity``."""
        if channel.closed or channel.id not in self._registry:
            raise ChannelNotFound(f"no channel {channel.id!r} on this node")
        old_user = channel.user_id
        new_user = identity.user_id
        last_of_old = self._registry.reidentify(
            channel.id, user_id=new_user, session_id=identity.session_id
        )
        channel.set_identity(identity)
        if new_user != old_user:
            if last_of_old and old_user is not None:
                self._limits.forget(old_user)
            backend = self._link.backend
            await self._link.start()
            if new_user is not None:
                # Reachable under the new user from every node, as at open.
                await backend.subscribe(user_subject(new_user))
                await backend.add_presence(new_user, channel.id)
            if old_user is not None:
                await self._release_user(old_user, channel.id)
            for topic in sorted(self._registry.topics_of(channel.id)):
                if self._presence.wants(topic):
                    # The other subscribers see the old user leave and the
                    # new one arrive, as if it had subscribed again.
                    await self._presence.left(channel.id, old_user, topic)
                    await self._presence.joined(channel, topic)
        # The user only, as ch/init: a session id may be a server-side secret.
        self._delivery.send(channel, "identity", {"user": identity.user_id})

    # -- topics ------------------------------------------------------------------------

    async def subscribe(self, channel_id: str, topic: str, since: Position | None = None) -> None:
        """See ``ChannelManager.subscribe``."""
        check_topic(topic)
        channel = self._registry.get(channel_id)
        if channel is None or channel.closed:
            raise ChannelNotFound(f"no channel {channel_id!r} on this node")
        if since is None:
            # Where the page was before it reconnected, if it said so.
            since = channel.recovery.pop(topic, None)
        new = topic not in self._registry.topics_of(channel_id)
        self._registry.subscribe(channel_id, topic)
        await self._link.start()
        await self._link.backend.subscribe(topic_subject(topic))
        if channel.id not in self._registry:  # it ended meanwhile
            await self._release_topic(topic)
            return
        if new and self._feeds.wants(topic):
            await self._feeds.add_channel(channel, topic, since)
        if new and self._presence.wants(topic):
            await self._presence.joined(channel, topic)

    async def unsubscribe(self, channel_id: str, topic: str) -> None:
        """See ``ChannelManager.unsubscribe``."""
        check_topic(topic)
        self._feeds.forget(channel_id, (topic,))
        was = topic in self._registry.topics_of(channel_id)
        if self._registry.unsubscribe(channel_id, topic):
            await self._release_topic(topic)
        if was and self._presence.wants(topic):
            await self._presence.left(channel_id, self._registry.user_of(channel_id), topic)

    # -- the end -----------------------------------------------------------------------

    def _end(self, channel: Channel) -> None:
        """The connection is gone: clean every index, fail what waits on it."""
        topics = self._registry.topics_of(channel.id)
        removed = self._registry.remove(channel.id)
        self._feeds.forget(channel.id, topics)
        channel.end(topics)
        if removed is None:
            return
        if removed.user_id is not None:
            if removed.last_of_user:
                self._limits.forget(removed.user_id)
            self._link.spawn(
                self._release_user(removed.user_id, channel.id), "channels-release-user"
            )
        for topic in removed.emptied_topics:
            self._link.spawn(self._release_topic(topic), "channels-release-topic")
        for topic in sorted(topics):
            if self._presence.wants(topic):
                self._link.spawn(
                    self._presence.left(channel.id, removed.user_id, topic), "channels-leave-topic"
                )

    async def _release_user(self, user_id: str, channel_id: str) -> None:
        # Checked now, not when the channel left: another tab of the user may
        # have arrived since, and needs the subscription.
        if not self._registry.user_channels(user_id):
            await self._link.backend.unsubscribe(user_subject(user_id))
        await self._link.backend.remove_presence(user_id, channel_id)

    async def _release_topic(self, topic: str) -> None:
        if not self._registry.subscribers(topic) and not self._feeds.has_listeners(topic):
            self._feeds.drop(topic)
            await self._link.backend.unsubscribe(topic_subject(topic))
