"""Chunked messages: one large message sent as several, reassembled in order.

A message whose encoded text is larger than the connection's message limit
travels as ``ch/chunk`` messages::

    {"p": "ch", "k": "chunk", "id": "s17", "i": 0, "n": 3, "data": "{\\"p\\":\\"ch\\",..."}

``data`` is a slice of the original message's JSON text; ``i`` is the
slice's index (from 0) and ``n`` the number of slices.  The receiver keeps
the slices by index, so they may arrive in any order (they do not over one
WebSocket, but the index makes the reassembly independent of that), and
decodes the joined text once all ``n`` are there.  This fixes the seed's
fault of appending chunks in arrival order with neither index nor limit.

Limits, so that a peer cannot make the receiver hold unbounded memory:

- ``max_size``: the bytes held for all messages being reassembled on one
  connection, together (so also the largest chunked message);
- ``max_chunks``: the largest ``n``;
- ``max_pending``: messages being reassembled at once;
- ``timeout``: seconds from a message's first chunk until its last; a
  message still missing chunks then is dropped (``expire``).

This module is pure: no I/O and no clock (the caller passes ``now``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeGuard

from ..runtime.messages import Envelope, MalformedMessage, MessageTooLarge, encode, utf8_length

__all__ = [
    "CHUNK_KIND",
    "DEFAULT_CHUNK_TIMEOUT",
    "DEFAULT_MAX_CHUNKED_SIZE",
    "DEFAULT_MAX_CHUNKS",
    "DEFAULT_MAX_PENDING",
    "MAX_CHUNK_ID_LENGTH",
    "Chunk",
    "ChunkError",
    "Reassembler",
    "make_chunks",
    "parse_chunk",
    "split_text",
]

#: The kind of a chunk message (its plugin is the channel manager's, ``ch``).
CHUNK_KIND = "chunk"
#: 8 MiB: well above any page's state, small enough to hold per connection.
DEFAULT_MAX_CHUNKED_SIZE = 8 * 1024 * 1024
#: Chunks of one message: at the default 1 MiB frame limit, 8 MiB is 9 chunks;
#: 1024 leaves room for small frame limits without letting ``n`` be absurd.
DEFAULT_MAX_CHUNKS = 1024
#: Messages reassembled at once per connection.
DEFAULT_MAX_PENDING = 4
#: Seconds a message may take from its first chunk to its last.
DEFAULT_CHUNK_TIMEOUT = 10.0
#: Chunk ids are the sender's counters ("s12", "c3"): short.
MAX_CHUNK_ID_LENGTH = 64

# Bytes a chunk message needs besides its data, beyond the fixed keys: the
# id, the two numbers and the JSON punctuation, with room to spare.
_SLACK = 16
# The smallest data budget worth chunking with: below it the limit is too
# small for chunking to make sense (and a 6-byte escape must always fit).
_MIN_BUDGET = 64


class ChunkError(MalformedMessage):
    """A chunk that breaks the rules: bad fields, a duplicate, a changed count.

    A ``MalformedMessage``, so the runtime's session closes the connection
    with 1007 when the browser sends one.
    """


@dataclass(frozen=True, slots=True)
class Chunk:
    """One decoded ``ch/chunk`` message.

    Attributes:
        id: the chunked message's id, chosen by the sender.
        index: this slice's position, from 0.
        count: the number of slices.
        data: the slice of the original message's JSON text.
    """

    id: str
    index: int
    count: int
    data: str


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def parse_chunk(message: Envelope | Mapping[str, Any], *, max_chunks: int) -> Chunk:
    """Check a chunk message's fields.

    Args:
        message: the ``ch/chunk`` envelope (or its fields).
        max_chunks: the largest count accepted.

    Raises:
        ChunkError: a field is missing, of the wrong type or out of range.
    """
    chunk_id = message.get("id")
    index = message.get("i")
    count = message.get("n")
    data = message.get("data")
    if not isinstance(chunk_id, str) or not 0 < len(chunk_id) <= MAX_CHUNK_ID_LENGTH:
        raise ChunkError(f"ch/chunk: 'id' must be a string of 1 to {MAX_CHUNK_ID_LENGTH} chars")
    if not _is_int(count) or not 1 <= count <= max_chunks:
        raise ChunkError(f"ch/chunk: 'n' must be an integer from 1 to {max_chunks}")
    if not _is_int(index) or not 0 <= index < count:
        raise ChunkError("ch/chunk: 'i' must be an integer from 0 to n - 1")
    if not isinstance(data, str):
        raise ChunkError("ch/chunk: 'data' must be a string")
    return Chunk(chunk_id, index, count, data)


def _escaped_size(piece: str) -> int:
    """Bytes ``piece`` takes inside a JSON string, as ``encode`` writes it."""
    return utf8_length(json.dumps(piece, ensure_ascii=False)) - 2


def split_text(text: str, budget: int) -> list[str]:
    """Cut ``text`` into slices whose JSON-escaped UTF-8 size is at most ``budget``.

    Slices end on code point boundaries; joined, they give ``text`` back.

    Raises:
        ValueError: ``budget`` is below 64 bytes.
    """
    if budget < _MIN_BUDGET:
        raise ValueError(f"a chunk budget of {budget} bytes is too small")
    pieces: list[str] = []
    position, length = 0, len(text)
    while position < length:
        # Every character takes at least one byte: start from the most that
        # could fit, and shrink in proportion to the overshoot (escapes and
        # multi-byte characters), a few times at most.
        piece = text[position : position + budget]
        size = _escaped_size(piece)
        while size > budget:
            keep = math.floor(len(piece) * budget / size * 0.97)
            piece = piece[: max(1, min(keep, len(piece) - 1))]
            size = _escaped_size(piece)
        pieces.append(piece)
        position += len(piece)
    return pieces


def make_chunks(text: str, *, chunk_id: str, limit: int, plugin: str = "ch") -> list[str]:
    """The chunk messages (encoded) that carry ``text``, each at most ``limit`` bytes.

    Args:
        text: the original message's JSON text.
        chunk_id: the id shared by the chunks.
        limit: the connection's message limit in bytes.
        plugin: the plugin name of the chunk messages.

    Raises:
        ValueError: ``limit`` is too small to carry any data.
    """
    # The envelope around the data, at its largest (the last chunk's index);
    # the count is not known yet, so assume the largest that could be needed.
    worst_count = max(2, len(text))
    overhead = utf8_length(
        encode(plugin, CHUNK_KIND, {"id": chunk_id, "i": worst_count, "n": worst_count, "data": ""})
    )
    pieces = split_text(text, limit - overhead - _SLACK)
    count = len(pieces)
    return [
        encode(plugin, CHUNK_KIND, {"id": chunk_id, "i": index, "n": count, "data": piece})
        for index, piece in enumerate(pieces)
    ]


@dataclass(slots=True)
class _Assembly:
    count: int
    deadline: float
    parts: dict[int, str] = field(default_factory=dict)
    size: int = 0


class Reassembler:
    """Collects the chunks of one connection's messages and joins them.

    Args:
        max_size: bytes held for all messages in progress together.
        max_chunks: the largest chunk count accepted.
        max_pending: messages in progress at once.
        timeout: seconds from a message's first chunk until its last.

    Attributes:
        expired: messages dropped so far because chunks were missing.
    """

    def __init__(
        self,
        *,
        max_size: int = DEFAULT_MAX_CHUNKED_SIZE,
        max_chunks: int = DEFAULT_MAX_CHUNKS,
        max_pending: int = DEFAULT_MAX_PENDING,
        timeout: float = DEFAULT_CHUNK_TIMEOUT,
    ) -> None:
        if max_size < 1 or max_chunks < 1 or max_pending < 1:
            raise ValueError("max_size, max_chunks and max_pending must be at least 1")
        if not (timeout > 0 and math.isfinite(timeout)):
            raise ValueError("timeout must be a positive number of seconds")
        self.max_size = max_size
        self.max_chunks = max_chunks
        self.max_pending = max_pending
        self.timeout = timeout
        self.expired = 0
        self._assemblies: dict[str, _Assembly] = {}
        self._size = 0

    @property
    def pending(self) -> int:
        """Messages in progress."""
        return len(self._assemblies)

    @property
    def size(self) -> int:
        """Bytes held for messages in progress."""
        return self._size

    @property
    def next_deadline(self) -> float | None:
        """When the earliest message in progress expires, or ``None``."""
        if not self._assemblies:
            return None
        return min(assembly.deadline for assembly in self._assemblies.values())

    def add(self, chunk: Chunk, now: float) -> str | None:
        """Keep one chunk; return the whole message's text once complete.

        Raises:
            ChunkError: a duplicate index, a count that differs from the
                message's earlier chunks, or too many messages in progress.
            MessageTooLarge: the message (with the others in progress) would
                exceed ``max_size``.
        """
        if chunk.count > self.max_chunks:
            raise ChunkError(f"ch/chunk: more than {self.max_chunks} chunks")
        size = utf8_length(chunk.data)
        if self._size + size > self.max_size:
            raise MessageTooLarge(self._size + size, self.max_size)
        assembly = self._assemblies.get(chunk.id)
        if assembly is None:
            if chunk.count == 1:
                return chunk.data  # nothing to wait for
            if len(self._assemblies) >= self.max_pending:
                raise ChunkError(f"ch/chunk: more than {self.max_pending} chunked messages at once")
            assembly = _Assembly(chunk.count, now + self.timeout)
            self._assemblies[chunk.id] = assembly
        elif assembly.count != chunk.count:
            raise ChunkError(f"ch/chunk {chunk.id!r}: count changed from {assembly.count}")
        if chunk.index in assembly.parts:
            raise ChunkError(f"ch/chunk {chunk.id!r}: chunk {chunk.index} received twice")
        assembly.parts[chunk.index] = chunk.data
        assembly.size += size
        self._size += size
        if len(assembly.parts) < assembly.count:
            return None
        del self._assemblies[chunk.id]
        self._size -= assembly.size
        return "".join(assembly.parts[index] for index in range(assembly.count))

    def expire(self, now: float) -> list[str]:
        """Drop the messages whose time is up; return their ids."""
        gone = [key for key, assembly in self._assemblies.items() if assembly.deadline <= now]
        for key in gone:
            self._size -= self._assemblies.pop(key).size
        self.expired += len(gone)
        return gone

    def clear(self) -> None:
        """Drop every message in progress (the connection is gone)."""
        self._assemblies.clear()
        self._size = 0
