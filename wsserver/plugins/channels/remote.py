"""Messages from the other nodes, through the backend.

Each is a JSON object with an ``op`` and the publishing node's id in ``o``
(a node ignores its own publications: it delivered to its own channels
already):

============  ==================================================================
``bcast``     ``msg`` for every channel of this node but ``ignore``
              (``bcast``, ``user``, ``send`` and ``req`` carry ``kind`` too
              when the message is a custom envelope, and ``bcast``, ``user``,
              ``topic`` and ``send`` carry ``z``, the sender's ``compress=``
              choice, when it made one: ``envelopes``)
``user``      ``msg`` for this node's channels of ``user``, but ``ignore``
``topic``     ``msg`` for this node's subscribers of ``topic``, but ``ignore``
``send``      ``msg`` for this node's ``channel``
``req``       a ``send_and_wait`` to this node's ``channel`` (``send_and_wait.py``)
``rep``       the answer to one of this node's ``send_and_wait`` calls
``cancel``    the asking node stopped waiting for ``rid``
``pres``      a channel of ``o`` joined or left ``topic`` (``ev``, ``channel``,
              ``user``), for the topic's subscribers here (``presence``)
``hist``      a numbered message of a topic with history (``ep``, ``off``, and
              ``p``: ``topic``, ``msg``, ``ignore``), for ``feeds``; this
              node's own are **not** ignored: they are how it learns the
              offsets of what it published while Redis was away
============  ==================================================================

A malformed payload is logged (one warning) and dropped; nothing a node
sends can fail this one.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from .addresses import check_topic
from .envelopes import remote_compress, remote_fields
from .history import HistoryEntry

if TYPE_CHECKING:
    from .channel import Channel
    from .delivery import Delivery
    from .feeds import TopicFeeds
    from .presence import TopicPresence
    from .registry import Registry
    from .send_and_wait import Requests

__all__ = ["RemoteMessages"]

logger = logging.getLogger("wsserver.plugins.channels")


class RemoteMessages:
    """Carries out what the other nodes publish, on this node.

    Args:
        node_id: this node's id.
        registry: this node's channels.
        delivery: queues messages on them.
        requests: the ``send_and_wait`` calls, ours and those we serve.
        feeds: the topics with history.
        presence: the topics with presence.
    """

    def __init__(
        self,
        *,
        node_id: str,
        registry: Registry[Channel],
        delivery: Delivery,
        requests: Requests,
        feeds: TopicFeeds,
        presence: TopicPresence,
    ) -> None:
        self._node_id = node_id
        self._feeds = feeds
        self._presence = presence
        self._registry = registry
        self._delivery = delivery
        self._requests = requests

    def receive(self, subject: str, payload: dict[str, Any]) -> None:
        """One message from the backend (the backend's ``receiver``)."""
        if payload.get("op") == "hist":
            try:
                entry = HistoryEntry.from_payload(payload)
                check_topic(entry.topic)
            except (KeyError, TypeError, ValueError) as exc:
                logger.warning("channels: malformed 'hist' payload: %s", exc)
                return
            self._feeds.offer(entry)
            return
        if payload.get("o") == self._node_id:
            return  # our own publication: delivered locally already
        op = payload.get("op")
        try:
            if op == "bcast":
                outgoing = self._delivery.message("msg", remote_fields(payload))
                self._delivery.to_channels(
                    self._registry, outgoing, payload.get("ignore"), remote_compress(payload)
                )
            elif op == "user":
                user_id = str(payload["user"])
                outgoing = self._delivery.message("msg", remote_fields(payload))
                ids = self._registry.user_channels(user_id)
                self._delivery.to_channels(
                    ids, outgoing, payload.get("ignore"), remote_compress(payload)
                )
            elif op == "topic":
                topic = check_topic(payload["topic"])
                fields = {"data": payload.get("msg"), "topic": topic}
                outgoing = self._delivery.message("msg", fields)
                ids = self._registry.subscribers(topic)
                self._delivery.to_channels(
                    ids, outgoing, payload.get("ignore"), remote_compress(payload)
                )
            elif op == "pres":
                self._presence.receive(payload)
            elif op == "send":
                channel = self._registry.get(str(payload["channel"]))
                if channel is None:
                    logger.debug("channels: message for unknown channel %r", payload["channel"])
                    return
                outgoing = self._delivery.message("msg", remote_fields(payload))
                self._delivery.put(channel, outgoing, remote_compress(payload))
            elif op == "req":
                self._requests.serve(payload)
            elif op == "rep":
                self._requests.settle(payload)
            elif op == "cancel":
                self._requests.cancel(str(payload["rid"]))
            else:
                logger.debug("channels: unknown operation %r from node %r", op, payload.get("o"))
        except (KeyError, TypeError, ValueError) as exc:
            logger.warning(
                "channels: malformed %r payload from node %r: %s", op, payload.get("o"), exc
            )
