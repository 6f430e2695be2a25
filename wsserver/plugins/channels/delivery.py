"""Sending the plugin's messages to this node's channels.

A message is encoded once, however many channels get it (``Outgoing``), and
split into chunks once per message limit among them: a broadcast to ten
thousand connections with the same limit costs one ``json.dumps`` and at
most one split.  Each channel's ``SendQueue`` then takes it (``Delivery``).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from ..runtime.messages import MessageTooLarge, encode, utf8_length
from .addresses import PLUGIN
from .chunks import make_chunks

if TYPE_CHECKING:
    from .channel import Channel
    from .registry import Registry

__all__ = ["Delivery", "Outgoing"]


class Outgoing:
    """One message to deliver: encoded once, chunked once per message limit.

    Args:
        kind: the message's kind (plugin ``ch``).
        fields: its fields.
        max_size: the largest message, in bytes (``max_chunked_size``).
        chunk_ids: where the ids of its chunks come from (``s1``, ``s2``...).

    Raises:
        TypeError, ValueError: the fields are not JSON-serialisable.
        MessageTooLarge: the message exceeds ``max_size``.
    """

    __slots__ = ("_chunk_ids", "_items", "size", "text")

    def __init__(
        self, kind: str, fields: dict[str, Any], *, max_size: int, chunk_ids: Iterator[int]
    ) -> None:
        self.text = encode(PLUGIN, kind, fields)
        self.size = utf8_length(self.text)
        if self.size > max_size:
            raise MessageTooLarge(self.size, max_size)
        self._chunk_ids = chunk_ids
        self._items: dict[int, tuple[str, ...]] = {}

    def item(self, limit: int) -> str | tuple[str, ...]:
        """What a connection whose messages are at most ``limit`` bytes queues:
        the text, or its chunks."""
        if self.size <= limit:
            return self.text
        item = self._items.get(limit)
        if item is None:
            chunk_id = f"s{next(self._chunk_ids)}"
            item = self._items[limit] = tuple(
                make_chunks(self.text, chunk_id=chunk_id, limit=limit, plugin=PLUGIN)
            )
        return item


class Delivery:
    """Encodes the plugin's messages and queues them on this node's channels.

    Args:
        registry: this node's channels.
        max_chunked_size: the largest message, in bytes.
    """

    def __init__(self, registry: Registry[Channel], max_chunked_size: int) -> None:
        self._registry = registry
        self._max_chunked_size = max_chunked_size
        # Chunk ids count up per manager, so they never repeat on a connection.
        self._chunk_ids: Iterator[int] = itertools.count(1)

    def message(self, kind: str, fields: dict[str, Any]) -> Outgoing:
        """Encode a message once, for any number of channels.

        Raises:
            TypeError, ValueError, MessageTooLarge: see ``Outgoing``.
        """
        return Outgoing(kind, fields, max_size=self._max_chunked_size, chunk_ids=self._chunk_ids)

    def put(self, channel: Channel, outgoing: Outgoing, compress: bool | None = None) -> bool:
        """Queue ``outgoing`` on ``channel``; ``False`` if it is closed or its queue refused.

        ``compress``: compress it where permessage-deflate was agreed
        (``None``: the manager's ``compress`` setting).
        """
        if channel.closed:
            return False
        return channel.queue.put(outgoing.item(channel.session.max_message_size), compress)

    def send(self, channel: Channel, kind: str, fields: dict[str, Any]) -> bool:
        """Encode a message and queue it on one channel (see ``put``)."""
        return self.put(channel, self.message(kind, fields))

    def to_channels(
        self,
        channel_ids: Iterable[str],
        outgoing: Outgoing,
        ignore: str | None = None,
        compress: bool | None = None,
    ) -> int:
        """Queue ``outgoing`` on each of this node's channels among ``channel_ids``.

        Args:
            channel_ids: channel ids; those not on this node are skipped.
            outgoing: the message.
            ignore: a channel id to leave out (the sender's).
            compress: as ``put``.

        Returns:
            How many channels queued it.
        """
        # The channels are looked up first: a queue that overflows may close
        # its connection, and the registry must not change under the loop.
        channels = []
        for channel_id in channel_ids:
            if channel_id == ignore:
                continue
            channel = self._registry.get(channel_id)
            if channel is not None:
                channels.append(channel)
        delivered = 0
        for channel in channels:
            if self.put(channel, outgoing, compress):
                delivered += 1
        return delivered
