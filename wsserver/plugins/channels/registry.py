"""Who is connected to this process: users, their sessions, channels, topics.

::

    user -> sessions -> channels          (one user, several logins or tabs)
    topic -> channels                      (rooms, ticker symbols)

A *channel* is one connection (one browser tab's WebSocket), with an id of
its own.  A *session* is whatever groups a user's channels in the
application's eyes (a login session, a cookie); several tabs of one login
share it.  A channel may belong to no user (an anonymous page) and no
session.

The registry is local to one process and pure bookkeeping: no I/O, no
locks (everything runs on one event loop).  ``remove`` cleans every index at
once and says which user and topics lost their last local channel, so that
the manager can drop its cross-process subscriptions for them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["Registry", "Removed"]

_C = TypeVar("_C")
_K = TypeVar("_K")


@dataclass(frozen=True, slots=True)
class Removed(Generic[_C]):
    """What ``Registry.remove`` took out.

    Attributes:
        item: the channel's object.
        user_id: its user, or ``None``.
        session_id: its session, or ``None``.
        topics: the topics it was subscribed to.
        last_of_user: it was the user's last channel here.
        emptied_topics: topics that now have no channel here.
    """

    item: _C
    user_id: str | None
    session_id: str | None
    topics: frozenset[str]
    last_of_user: bool
    emptied_topics: frozenset[str]


@dataclass(slots=True)
class _Entry(Generic[_C]):
    item: _C
    user_id: str | None
    session_id: str | None
    topics: set[str]


class Registry(Generic[_C]):
    """Channels by id, by user and session, and by topic."""

    def __init__(self) -> None:
        self._channels: dict[str, _Entry[_C]] = {}
        # user -> session -> channels; a channel without a session is kept
        # under the session key None.
        self._users: dict[str, dict[str | None, set[str]]] = {}
        self._sessions: dict[str, set[str]] = {}
        self._topics: dict[str, set[str]] = {}

    # -- channels -----------------------------------------------------------

    def add(
        self,
        channel_id: str,
        item: _C,
        *,
        user_id: str | None = None,
        session_id: str | None = None,
    ) -> bool:
        """Register a channel.

        Returns:
            Whether it is its user's first channel here (``False`` without
            a user).

        Raises:
            ValueError: the id is taken.
        """
        if channel_id in self._channels:
            raise ValueError(f"channel {channel_id!r} is already registered")
        self._channels[channel_id] = _Entry(item, user_id, session_id, set())
        if session_id is not None:
            self._sessions.setdefault(session_id, set()).add(channel_id)
        if user_id is None:
            return False
        sessions = self._users.get(user_id)
        first = sessions is None
        if sessions is None:
            sessions = self._users[user_id] = {}
        sessions.setdefault(session_id, set()).add(channel_id)
        return first

    def remove(self, channel_id: str) -> Removed[_C] | None:
        """Unregister a channel from every index; ``None`` if unknown."""
        entry = self._channels.pop(channel_id, None)
        if entry is None:
            return None
        if entry.session_id is not None:
            _discard(self._sessions, entry.session_id, channel_id)
        last_of_user = False
        if entry.user_id is not None:
            sessions = self._users[entry.user_id]
            _discard(sessions, entry.session_id, channel_id)
            if not sessions:
                del self._users[entry.user_id]
                last_of_user = True
        emptied = set()
        for topic in entry.topics:
            if _discard(self._topics, topic, channel_id):
                emptied.add(topic)
        return Removed(
            entry.item,
            entry.user_id,
            entry.session_id,
            frozenset(entry.topics),
            last_of_user,
            frozenset(emptied),
        )

    def reidentify(self, channel_id: str, *, user_id: str | None, session_id: str | None) -> bool:
        """Move a channel to another user and session; its topics stay.

        Returns:
            Whether it was its old user's last channel here (``False``
            without an old user, or when the user does not change).

        Raises:
            KeyError: the channel is unknown.
        """
        entry = self._channels[channel_id]
        last_of_user = False
        if entry.session_id is not None:
            _discard(self._sessions, entry.session_id, channel_id)
        if entry.user_id is not None:
            sessions = self._users[entry.user_id]
            _discard(sessions, entry.session_id, channel_id)
            if not sessions:
                del self._users[entry.user_id]
                last_of_user = entry.user_id != user_id
        entry.user_id = user_id
        entry.session_id = session_id
        if session_id is not None:
            self._sessions.setdefault(session_id, set()).add(channel_id)
        if user_id is not None:
            self._users.setdefault(user_id, {}).setdefault(session_id, set()).add(channel_id)
        return last_of_user

    def get(self, channel_id: str) -> _C | None:
        """The channel's object, or ``None``."""
        entry = self._channels.get(channel_id)
        return None if entry is None else entry.item

    def __contains__(self, channel_id: object) -> bool:
        return channel_id in self._channels

    def __len__(self) -> int:
        return len(self._channels)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._channels))

    def items(self) -> list[_C]:
        """Every channel's object."""
        return [entry.item for entry in self._channels.values()]

    def user_of(self, channel_id: str) -> str | None:
        """The channel's user (``None`` for an anonymous or unknown channel)."""
        entry = self._channels.get(channel_id)
        return None if entry is None else entry.user_id

    # -- users and sessions -----------------------------------------------------

    def users(self) -> set[str]:
        """Users with at least one channel here."""
        return set(self._users)

    def user_channels(self, user_id: str) -> set[str]:
        """The user's channels here (every session)."""
        sessions = self._users.get(user_id, {})
        return set().union(*sessions.values()) if sessions else set()

    def user_sessions(self, user_id: str) -> set[str]:
        """The user's sessions with a channel here (not counting ``None``)."""
        return {key for key in self._users.get(user_id, {}) if key is not None}

    def session_channels(self, session_id: str) -> set[str]:
        """The session's channels here."""
        return set(self._sessions.get(session_id, ()))

    # -- topics -------------------------------------------------------------------

    def subscribe(self, channel_id: str, topic: str) -> bool:
        """Subscribe a channel to a topic.

        Returns:
            Whether the topic had no channel here before.

        Raises:
            KeyError: the channel is unknown.
        """
        entry = self._channels[channel_id]
        entry.topics.add(topic)
        members = self._topics.get(topic)
        if members is None:
            self._topics[topic] = {channel_id}
            return True
        members.add(channel_id)
        return False

    def unsubscribe(self, channel_id: str, topic: str) -> bool:
        """Unsubscribe a channel from a topic (no error if it was not subscribed).

        Returns:
            Whether the topic now has no channel here (and had one before).
        """
        entry = self._channels.get(channel_id)
        if entry is None or topic not in entry.topics:
            return False
        entry.topics.discard(topic)
        return _discard(self._topics, topic, channel_id)

    def topics_of(self, channel_id: str) -> frozenset[str]:
        """The channel's topics."""
        entry = self._channels.get(channel_id)
        return frozenset() if entry is None else frozenset(entry.topics)

    def subscribers(self, topic: str) -> set[str]:
        """The topic's channels here."""
        return set(self._topics.get(topic, ()))

    def topics(self) -> set[str]:
        """Topics with at least one channel here."""
        return set(self._topics)


def _discard(index: dict[_K, set[str]], key: _K, channel_id: str) -> bool:
    """Remove ``channel_id`` from ``index[key]``; drop the key when empty.

    Returns:
        Whether the key was dropped.
    """
    members = index.get(key)
    if members is None:
        return False
    members.discard(channel_id)
    if members:
        return False
    del index[key]
    return True
