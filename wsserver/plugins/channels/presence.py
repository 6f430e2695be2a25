"""Topic presence: who follows a topic, on every node, and their comings and goings.

For the topics with presence (``ChannelManager(presence_topics=(...))``),
each channel that subscribes is recorded in the backend with its user
(``Backend.join_topic``), and forgotten when it unsubscribes or its
connection ends.  ``members`` reads them from every node; a node that died
without saying goodbye (SIGKILL, a lost host) stops counting when its node
key expires (``RedisBackend(node_ttl=...)``, 20 s by default), and its
entries are removed then.

Joins and leaves are announced to the topic's subscribers on every node, as
``ch/presence`` (``{topic, event: "join" | "leave", channel, user}``),
through the topic's subject (op ``pres``).  A node that died announces
nothing: its members just disappear from ``members``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from .addresses import topic_subject
from .backends import BackendUnavailable

if TYPE_CHECKING:
    from .channel import Channel
    from .delivery import Delivery
    from .nodes import NodeLink
    from .registry import Registry
    from .settings import ChannelSettings

__all__ = ["TopicPresence"]

logger = logging.getLogger("wsserver.plugins.channels")


class TopicPresence:
    """The presence of this node's channels in topics, and the events.

    Args:
        link: the link to the other nodes.
        registry: this node's channels.
        delivery: sends ``ch/presence`` to them.
        settings: which topics have presence.
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

    def wants(self, topic: str) -> bool:
        """Whether ``topic`` has presence (settings, and a backend that keeps it)."""
        return self._settings.has_presence(topic) and self._link.backend.keeps_topic_presence

    async def joined(self, channel: Channel, topic: str) -> None:
        """A channel of this node subscribed to ``topic``."""
        await self._link.backend.join_topic(topic, channel.id, channel.user_id)
        await self._announce(topic, "join", channel.id, channel.user_id)

    async def left(self, channel_id: str, user_id: str | None, topic: str) -> None:
        """A channel of this node unsubscribed from ``topic`` (or ended)."""
        await self._link.backend.leave_topic(topic, channel_id)
        await self._announce(topic, "leave", channel_id, user_id)

    async def members(self, topic: str) -> dict[str, str | None]:
        """The topic's channels on every node, with their users.

        While the backend is unavailable, this node's only (a warning is
        logged).
        """
        local = {
            channel_id: channel.user_id
            for channel_id in self._registry.subscribers(topic)
            if (channel := self._registry.get(channel_id)) is not None
        }
        if not self.wants(topic):
            return local
        await self._link.start()
        try:
            return {**await self._link.backend.topic_members(topic), **local}
        except BackendUnavailable as exc:
            logger.warning("channels: presence(%r): this node only: %s", topic, exc)
            return local

    def receive(self, payload: dict[str, Any]) -> None:
        """An ``op: pres`` event from another node.

        Raises:
            KeyError, TypeError, ValueError: a malformed payload.
        """
        topic, event, channel_id = payload["topic"], payload["ev"], payload["channel"]
        user = payload.get("user")
        if not isinstance(topic, str) or event not in ("join", "leave"):
            raise ValueError("malformed presence event")
        if not isinstance(channel_id, str) or not (user is None or isinstance(user, str)):
            raise TypeError("malformed presence event")
        self._deliver(topic, event, channel_id, user)

    async def _announce(self, topic: str, event: str, channel_id: str, user: str | None) -> None:
        self._deliver(topic, event, channel_id, user)
        await self._link.publish_quietly(
            topic_subject(topic),
            {"op": "pres", "topic": topic, "ev": event, "channel": channel_id, "user": user},
        )

    def _deliver(self, topic: str, event: str, channel_id: str, user: str | None) -> None:
        fields = {"topic": topic, "event": event, "channel": channel_id, "user": user}
        outgoing = self._delivery.message("presence", fields)
        self._delivery.to_channels(self._registry.subscribers(topic), outgoing)
