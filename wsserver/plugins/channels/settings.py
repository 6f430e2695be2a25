"""The channel manager's settings: every limit, with its default and its reason.

``ChannelManager(**options)`` builds one ``ChannelSettings`` and checks it
once; every part of the manager reads the same frozen object.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .chunks import (
    DEFAULT_CHUNK_TIMEOUT,
    DEFAULT_MAX_CHUNKED_SIZE,
    DEFAULT_MAX_CHUNKS,
    DEFAULT_MAX_PENDING,
)
from .history import DEFAULT_HISTORY_TTL, check_history
from .queues import DEFAULT_MAX_BYTES, DEFAULT_MAX_MESSAGES, OverflowPolicy

__all__ = [
    "DEFAULT_MAX_INBOX",
    "DEFAULT_MAX_LISTENER_QUEUE",
    "DEFAULT_MAX_RECOVER_TOPICS",
    "DEFAULT_MAX_REQUEST_TIMEOUT",
    "DEFAULT_MAX_TOKEN_LENGTH",
    "DEFAULT_MAX_USER_CHANNELS",
    "DEFAULT_MAX_USER_WAITS",
    "DEFAULT_MAX_WAITING_RECOVERIES",
    "DEFAULT_RECOVER_WAIT",
    "DEFAULT_REQUEST_TIMEOUT",
    "DEFAULT_USER_BURST",
    "DEFAULT_USER_RATE",
    "ChannelSettings",
    "check_timeout",
]

#: Seconds ``send_and_wait`` waits unless told otherwise.
DEFAULT_REQUEST_TIMEOUT = 30.0
#: The longest a remote node may make this node wait for one of its pages:
#: ten minutes, beyond any sensible question to a user.
DEFAULT_MAX_REQUEST_TIMEOUT = 600.0
#: Custom messages of one connection waiting for their handler: enough for a
#: burst of clicks, small enough that a flooding page is stopped by TCP.
DEFAULT_MAX_INBOX = 64
#: Topic positions one page may send back to recover from on reconnection:
#: more topics than a page sensibly follows, few enough that reading them
#: costs nothing.
DEFAULT_MAX_RECOVER_TOPICS = 64
#: Seconds a recovery asked for while the backend is away waits for it to
#: come back before the subscriber is told ``"unavailable"``: a Redis restart
#: or failover takes seconds; much longer, and the page is better told at
#: once so that it can reload its state rather than show a stale one.
DEFAULT_RECOVER_WAIT = 30.0
#: Recoveries that may wait for the backend at once on one node: every page
#: of a worker reconnecting during the same outage (a few thousand, with a
#: few topics each); each costs a small task and the live messages held for
#: it.  Beyond it, a recovery is told ``"unavailable"`` at once.
DEFAULT_MAX_WAITING_RECOVERIES = 10_000
#: Messages a Python topic listener may have waiting before it is told it
#: fell behind (``HistoryLost``, reason ``"overflow"``): a burst, not a backlog.
DEFAULT_MAX_LISTENER_QUEUE = 1024
#: The longest token a page may send to refresh its identity
#: (``updateToken``): a signed JWT with its claims is one to two KiB; 8 KiB
#: leaves room for large ones and bounds what one message makes the server
#: verify.
DEFAULT_MAX_TOKEN_LENGTH = 8192
#: Channels one user may have open on one node at once: the tabs and
#: devices of one person are a few dozen at most; 100 keeps one account (or
#: one stolen token) from taking every connection of a worker.
DEFAULT_MAX_USER_CHANNELS = 100
#: Custom messages (and token updates) per second one user may send, over
#: all its channels on one node, and the burst allowed above that rate.  A
#: person clicking sends a few per second; an application polling in a loop
#: a few tens.  Beyond it each message is refused (``RateLimited``) and the
#: handlers of the other users keep the worker.
DEFAULT_USER_RATE = 50.0
DEFAULT_USER_BURST = 100
#: ``send_and_wait`` calls made on behalf of one user (from its pages'
#: handlers) waiting at once on one node.  A handler waits for one answer at
#: a time, and a person answers one question at a time; 32 leaves room for a
#: handler asking several of the user's tabs, or a few other users, at once,
#: while what one user holds (a future, a timer, a pending entry each, for
#: up to ``request_timeout``) stays small whatever its pages send.
DEFAULT_MAX_USER_WAITS = 32


def check_timeout(timeout: float, name: str = "timeout") -> float:
    """``timeout`` as a float, if it is a positive finite number of seconds.

    Raises:
        ValueError: it is not (``True``, 0, NaN and infinity included).
    """
    if isinstance(timeout, bool) or not (timeout > 0 and math.isfinite(timeout)):
        raise ValueError(f"{name} must be a positive number of seconds, not {timeout!r}")
    return float(timeout)


@dataclass(frozen=True, slots=True)
class ChannelSettings:
    """The limits of a ``ChannelManager``; see its arguments.

    Raises:
        ValueError: a setting out of range (checked on creation).
    """

    max_queue: int = DEFAULT_MAX_MESSAGES
    max_queue_bytes: int = DEFAULT_MAX_BYTES
    queue_policy: OverflowPolicy = "close"
    compress: bool = False
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT
    max_request_timeout: float = DEFAULT_MAX_REQUEST_TIMEOUT
    max_chunked_size: int = DEFAULT_MAX_CHUNKED_SIZE
    max_chunks: int = DEFAULT_MAX_CHUNKS
    max_pending_chunked: int = DEFAULT_MAX_PENDING
    chunk_timeout: float = DEFAULT_CHUNK_TIMEOUT
    max_inbox: int = DEFAULT_MAX_INBOX
    # 0: no history, topics are plain pub/sub (at most once), as before this
    # setting existed; history costs a backend round trip per publication.
    history_size: int = 0
    history_ttl: float = DEFAULT_HISTORY_TTL
    history_topics: tuple[str, ...] = ("",)
    max_recover_topics: int = DEFAULT_MAX_RECOVER_TOPICS
    max_listener_queue: int = DEFAULT_MAX_LISTENER_QUEUE
    recover_wait: float = DEFAULT_RECOVER_WAIT
    # 0: never wait, "unavailable" at once (the behaviour before it existed).
    max_waiting_recoveries: int = DEFAULT_MAX_WAITING_RECOVERIES
    # None by default: presence costs a backend write and an event to every
    # subscriber per subscription.
    presence_topics: tuple[str, ...] = ()
    max_token_length: int = DEFAULT_MAX_TOKEN_LENGTH
    # None: no cap (the per-user limits count only channels with a user).
    max_user_channels: int | None = DEFAULT_MAX_USER_CHANNELS
    user_rate: float | None = DEFAULT_USER_RATE
    user_burst: int = DEFAULT_USER_BURST
    max_user_waits: int | None = DEFAULT_MAX_USER_WAITS

    def has_history(self, topic: str) -> bool:
        """Whether ``topic``'s messages are numbered and kept."""
        return self.history_size > 0 and topic.startswith(self.history_topics)

    def has_presence(self, topic: str) -> bool:
        """Whether ``topic``'s subscribers are recorded and announced."""
        return bool(self.presence_topics) and topic.startswith(self.presence_topics)

    def __post_init__(self) -> None:
        check_history(self.history_size, self.history_ttl)
        prefixes: object = self.history_topics
        if not isinstance(prefixes, tuple | list) or not all(isinstance(p, str) for p in prefixes):
            raise ValueError("history_topics must be a tuple of topic prefixes")
        object.__setattr__(self, "history_topics", tuple(self.history_topics))
        presence: object = self.presence_topics
        if not isinstance(presence, tuple | list) or not all(isinstance(p, str) for p in presence):
            raise ValueError("presence_topics must be a tuple of topic prefixes")
        object.__setattr__(self, "presence_topics", tuple(self.presence_topics))
        if self.max_recover_topics < 1 or self.max_listener_queue < 1:
            raise ValueError("max_recover_topics and max_listener_queue must be at least 1")
        object.__setattr__(self, "history_ttl", float(self.history_ttl))
        if isinstance(self.max_waiting_recoveries, bool) or self.max_waiting_recoveries < 0:
            raise ValueError("max_waiting_recoveries must be 0 (never wait) or more")
        if self.queue_policy not in ("close", "drop_oldest"):
            raise ValueError('queue_policy must be "close" or "drop_oldest"')
        if min(self.max_queue, self.max_queue_bytes, self.max_chunked_size, self.max_chunks) < 1:
            raise ValueError("queue and chunk limits must be at least 1")
        if self.max_pending_chunked < 1 or self.max_inbox < 1:
            raise ValueError("max_pending_chunked and max_inbox must be at least 1")
        if self.max_token_length < 1 or self.user_burst < 1:
            raise ValueError("max_token_length and user_burst must be at least 1")
        if self.max_user_channels is not None and self.max_user_channels < 1:
            raise ValueError("max_user_channels must be at least 1, or None for no cap")
        waits: object = self.max_user_waits
        if waits is not None and (
            isinstance(waits, bool) or not isinstance(waits, int) or waits < 1
        ):
            raise ValueError("max_user_waits must be an integer of at least 1, or None for no cap")
        if self.user_rate is not None:
            if isinstance(self.user_rate, bool) or not (
                self.user_rate > 0 and math.isfinite(self.user_rate)
            ):
                raise ValueError("user_rate must be a positive number per second, or None")
            object.__setattr__(self, "user_rate", float(self.user_rate))
        for name in ("request_timeout", "max_request_timeout", "chunk_timeout", "recover_wait"):
            # A frozen dataclass: the checked value replaces the given one.
            object.__setattr__(self, name, check_timeout(getattr(self, name), name))
