"""Topic history: offsets, epochs, and the in-process store.

A topic *with history* numbers its messages: each gets an **offset**, 1, 2,
3... in the order the backend appended it, the same order for every node and
every subscriber.  The numbering lives in an **epoch**, a random token made
when the topic's history starts; when the history is lost (a Redis flushed,
or restarted without persistence) the next message starts a new epoch at
offset 1, so a subscriber can tell "I saw everything up to 41" from "the
history I knew is gone".  A ``Position`` is the pair.

History is kept for a bounded number of messages (``history_size``) and a
bounded time (``history_ttl``); what a subscriber missed can be replayed
while it is still there.  When it is not (trimmed, expired, or another
epoch), recovery fails with ``HistoryLost`` (Python) or ``ch/lost`` (the
page): never a silent gap.

``MemoryHistory`` is the in-process backend's store: a bounded ``deque`` per
topic, one epoch per store (made when the store is created).  Redis keeps
its own in streams (``redis_backend``).
"""

from __future__ import annotations

import math
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .errors import HistoryLost

__all__ = [
    "DEFAULT_HISTORY_SIZE",
    "DEFAULT_HISTORY_TTL",
    "MAX_EPOCH_LENGTH",
    "MAX_OFFSET",
    "HistoryEntry",
    "HistoryRange",
    "MemoryHistory",
    "Position",
    "check_history",
    "new_epoch",
    "recover",
]

#: Messages kept per topic once history is asked for: a few minutes of a busy
#: chat room, small enough that a thousand topics stay within megabytes.
DEFAULT_HISTORY_SIZE = 100
#: Seconds a message stays in history: longer than a phone's network change or
#: a laptop's short sleep, short enough that stale replays are not sent.
DEFAULT_HISTORY_TTL = 300.0
#: Epochs are ours (16 hex digits); anything longer from a page is refused.
MAX_EPOCH_LENGTH = 64
#: The largest offset: JavaScript's largest exact integer, since pages keep
#: offsets as numbers (beyond it a page's position is refused as malformed).
MAX_OFFSET = 2**53 - 1


def new_epoch() -> str:
    """A random epoch token (16 hex digits)."""
    return secrets.token_hex(8)


@dataclass(frozen=True, slots=True)
class Position:
    """A place in a topic's stream: the last offset seen, in its epoch.

    ``offset`` 0 means "before the first message".
    """

    epoch: str
    offset: int

    def __post_init__(self) -> None:
        # Checked as objects: positions come from pages, as JSON.
        epoch: object = self.epoch
        offset: object = self.offset
        if not isinstance(epoch, str) or not 0 < len(epoch) <= MAX_EPOCH_LENGTH:
            raise ValueError(f"an epoch is 1 to {MAX_EPOCH_LENGTH} characters")
        if isinstance(offset, bool) or not isinstance(offset, int) or not 0 <= offset <= MAX_OFFSET:
            raise ValueError(f"an offset is an integer from 0 to {MAX_OFFSET}")


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One message of a topic with history.

    Attributes:
        topic: the topic.
        epoch, offset: its position.
        message: what was published.
        ignore: the channel id the publisher left out, if any.
    """

    topic: str
    epoch: str
    offset: int
    message: Any
    ignore: str | None = None

    @property
    def position(self) -> Position:
        """``Position(epoch, offset)``."""
        return Position(self.epoch, self.offset)

    def to_payload(self) -> dict[str, Any]:
        """How it travels between nodes (``op: hist``)."""
        return {
            "op": "hist",
            "ep": self.epoch,
            "off": self.offset,
            "p": {"topic": self.topic, "msg": self.message, "ignore": self.ignore},
        }

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> HistoryEntry:
        """The entry an ``op: hist`` payload carries.

        Raises:
            KeyError, TypeError, ValueError: a malformed payload.
        """
        inner = payload["p"]
        epoch, offset = payload["ep"], payload["off"]
        if not isinstance(inner, dict) or not isinstance(epoch, str):
            raise TypeError("malformed history payload")
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 1:
            raise ValueError("malformed history offset")
        ignore = inner.get("ignore")
        return cls(
            topic=str(inner["topic"]),
            epoch=epoch,
            offset=offset,
            message=inner.get("msg"),
            ignore=ignore if isinstance(ignore, str) else None,
        )


@dataclass(frozen=True, slots=True)
class HistoryRange:
    """What a backend's history holds for one topic after an offset.

    Attributes:
        epoch: the topic's current epoch.
        top: the offset of its last message (0: none yet in this epoch).
        entries: the messages still kept after the asked offset, in order
            (trimmed and expired ones are missing: the first may be later
            than asked).
    """

    epoch: str
    top: int
    entries: tuple[HistoryEntry, ...] = ()


def check_history(size: int, ttl: float) -> tuple[int, float]:
    """``(size, ttl)`` if they are valid history limits.

    Raises:
        ValueError: ``size`` is not an integer >= 0 or ``ttl`` is not a
            positive number of seconds.
    """
    value: object = size
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError("history_size must be an integer >= 0 (0: no history)")
    if isinstance(ttl, bool) or not (ttl > 0 and math.isfinite(ttl)):
        raise ValueError("history_ttl must be a positive number of seconds")
    return size, float(ttl)


@dataclass
class _Topic:
    offset: int = 0
    entries: deque[tuple[float, HistoryEntry]] = field(default_factory=deque)


class MemoryHistory:
    """The history of the in-process backend: a bounded deque per topic.

    One epoch for the store, made when it is created: the history lives as
    long as the process (a restarted process is a new epoch).

    Args:
        clock: seconds, monotonic (for ``ttl``).
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.epoch = new_epoch()
        self._clock = clock
        self._topics: dict[str, _Topic] = {}

    def append(
        self, topic: str, message: Any, ignore: str | None, *, size: int, ttl: float
    ) -> HistoryEntry:
        """Number ``message`` and keep it (at most ``size`` per topic)."""
        state = self._topics.get(topic)
        if state is None:
            state = self._topics[topic] = _Topic()
        state.offset += 1
        entry = HistoryEntry(topic, self.epoch, state.offset, message, ignore)
        entries = state.entries
        entries.append((self._clock(), entry))
        while len(entries) > size:
            entries.popleft()
        self._expire(entries, ttl)
        return entry

    def range(self, topic: str, after: int | None, *, ttl: float) -> HistoryRange:
        """The kept messages of ``topic`` after offset ``after`` (none for ``None``)."""
        state = self._topics.get(topic)
        if state is None:
            return HistoryRange(self.epoch, 0)
        self._expire(state.entries, ttl)
        if after is None:
            return HistoryRange(self.epoch, state.offset)
        found = tuple(entry for _, entry in state.entries if entry.offset > after)
        return HistoryRange(self.epoch, state.offset, found)

    def _expire(self, entries: deque[tuple[float, HistoryEntry]], ttl: float) -> None:
        oldest = self._clock() - ttl
        while entries and entries[0][0] < oldest:
            entries.popleft()

    def topics(self) -> int:
        """How many topics have a history (for tests and metrics)."""
        return len(self._topics)


def recover(
    topic: str, since: Position, found: HistoryRange
) -> tuple[tuple[HistoryEntry, ...], HistoryLost | None]:
    """What a subscriber at ``since`` gets from ``found``.

    Returns:
        ``(entries, None)``: the entries after ``since``, to replay in order;
        or ``((), lost)`` when history does not cover the gap: the
        subscriber is told and continues from ``found``'s top (a partial
        replay would hide the hole).
    """
    current = Position(found.epoch, found.top)
    if since.epoch != found.epoch or since.offset > found.top:
        # Another epoch; or an offset this epoch has not reached, which only a
        # page holding a position from a lost history can have.
        return (), HistoryLost(topic, current, "epoch")
    entries = tuple(e for e in found.entries if e.offset > since.offset)
    if since.offset < found.top and (not entries or entries[0].offset != since.offset + 1):
        return (), HistoryLost(topic, current, "trimmed")
    return entries, None
