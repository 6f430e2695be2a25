"""Per-user limits of one node: open channels, messages per second, waits.

Issue 21's fairness for the channel manager: one user (one account, or one
stolen token) must not take every connection of a worker, nor keep its
custom message handlers busy for everyone else.

- ``max_user_channels``: a user's channels open on this node at once.
  Beyond it ``ChannelView`` refuses the handshake with 429 and
  ``Retry-After`` (and, when two handshakes race past the check, closes the
  later connection with 1008, policy violation).
- ``user_rate`` and ``user_burst``: a token bucket per user, over all its
  channels on this node, for the custom messages and token updates its pages
  send.  A message past it is refused: a request is answered with the error
  ``RateLimited``, a plain ``send`` is dropped.  The connection stays open:
  the page learns why, and can slow down.
- ``max_user_waits``: ``send_and_wait`` calls made on behalf of a user
  (from its pages' handlers, and the tasks they start: the context variable
  ``current_user`` names the user) waiting at once on this node.  Each wait
  holds a future, a timer and a pending entry until its answer or its
  timeout (30 s by default, up to ``max_request_timeout``); a handler that
  fans a question out to many pages, or a user whose pages keep asking
  while nobody answers, would otherwise hold them without bound.  Past it
  the call raises ``TooManyWaits`` at once, and a page's ``request`` whose
  handler made the call is answered ``TooManyWaits``.  Calls outside any
  handler (the application's own tasks: ``current_user`` is ``None``) are
  not counted.

Channels without a user are not counted here (the server's per-client
limits are for them).  Each refusal is logged once per user and
``LOG_INTERVAL``, not once per message.  Memory stays bounded: a bucket
exists only for a user with a channel on this node, and is forgotten with
its last channel; a user's count of waits exists only while it has one
waiting.  The limits are per node: with ``--workers 4`` a user may
have four times the channels, one cap per worker.

Every refusal (not every log line) is counted in
``wsserver_limit_hits_total``, ``limit`` being the setting's name
(``max_user_channels``, ``user_rate``, ``max_user_waits``).

This module keeps no clock: the caller passes the time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from ...server.metric_sources import add_limit_source

__all__ = ["LOG_INTERVAL", "MAX_WAIT_LOG_ENTRIES", "UserLimits", "limit_hits"]

logger = logging.getLogger("wsserver.plugins.channels")

#: Seconds between two log lines about the same user's refusals.
LOG_INTERVAL = 10.0
#: Users whose refused waits' last log line is remembered beyond their last
#: channel (a task of a handler may outlive its channel): past it, the lines
#: older than ``LOG_INTERVAL`` are forgotten.
MAX_WAIT_LOG_ENTRIES = 1024

# Refusals of every manager of this process, by limit, for the metrics
# (``wsserver_limit_hits_total{limit=...}``; read at scrape time only).
_hits = {"max_user_channels": 0, "user_rate": 0, "max_user_waits": 0}


def _reader(limit: str) -> Callable[[], float]:
    return lambda: _hits[limit]


for _limit in _hits:
    add_limit_source(_limit, _reader(_limit))


def limit_hits() -> dict[str, int]:
    """The refusals counted so far in this process, by limit."""
    return dict(_hits)


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float
    refused: int = 0
    logged: float | None = None


class UserLimits:
    """The message rate of each user of this node (a token bucket each).

    Args:
        rate: messages per second (``None``: no limit).
        burst: the bucket's size: messages allowed at once.
        max_waits: ``send_and_wait`` calls one user may have waiting
            (``None``: no limit).
    """

    def __init__(self, rate: float | None, burst: int, max_waits: int | None = None) -> None:
        self.rate = rate
        self.burst = burst
        self.max_waits = max_waits
        self._buckets: dict[str, _Bucket] = {}
        # Waits of each user with at least one; the entry goes at zero.
        self._waits: dict[str, int] = {}
        # When a refused wait of each user was last logged, and how many were
        # refused since (forgotten with the user's last channel, or when
        # there are too many and the line is old).
        self._waits_logged: dict[str, tuple[float, int]] = {}
        # When a refused connection of each user was last logged.  Only users
        # at their cap get an entry, and they have channels here, so it is
        # forgotten with their last one.
        self._cap_logged: dict[str, float] = {}

    def __len__(self) -> int:
        return len(self._buckets)

    def allow(self, user_id: str | None, now: float) -> bool:
        """Take one message of ``user_id`` at ``now``; whether it is within the rate.

        A refusal is logged (WARNING), once per user and ``LOG_INTERVAL``,
        with the number refused since the last line.
        """
        rate = self.rate
        if rate is None or user_id is None:
            return True
        bucket = self._buckets.get(user_id)
        if bucket is None:
            bucket = self._buckets[user_id] = _Bucket(float(self.burst), now)
        else:
            bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.updated) * rate)
            bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return True
        bucket.refused += 1
        _hits["user_rate"] += 1
        if bucket.logged is None or now - bucket.logged >= LOG_INTERVAL:
            logger.warning(
                "channels: user %r sent more than %g messages per second (burst %d): "
                "%d refused (RateLimited)",
                user_id,
                rate,
                self.burst,
                bucket.refused,
            )
            bucket.logged = now
            bucket.refused = 0
        return False

    def refused_connection(self, user_id: str, cap: int, now: float) -> None:
        """Log a connection of ``user_id`` refused at its cap, once per ``LOG_INTERVAL``."""
        _hits["max_user_channels"] += 1
        logged = self._cap_logged.get(user_id)
        if logged is None or now - logged >= LOG_INTERVAL:
            logger.warning(
                "channels: user %r has %d channels open on this node (max_user_channels): "
                "connection refused",
                user_id,
                cap,
            )
            self._cap_logged[user_id] = now

    # -- send_and_wait ---------------------------------------------------------

    def waiting(self, user_id: str) -> int:
        """The user's ``send_and_wait`` calls waiting now."""
        return self._waits.get(user_id, 0)

    @property
    def waiting_users(self) -> int:
        """Users with at least one ``send_and_wait`` call waiting."""
        return len(self._waits)

    def begin_wait(self, user_id: str | None, now: float) -> bool:
        """Count one more wait of ``user_id`` at ``now``, if within ``max_waits``.

        A refusal is not counted (no ``end_wait`` follows it) and is logged
        (WARNING), once per user and ``LOG_INTERVAL``, with the number
        refused since the last line.
        """
        if user_id is None:
            return True
        count = self._waits.get(user_id, 0)
        limit = self.max_waits
        if limit is None or count < limit:
            self._waits[user_id] = count + 1
            return True
        _hits["max_user_waits"] += 1
        logged, refused = self._waits_logged.get(user_id, (None, 0))
        refused += 1
        if logged is None or now - logged >= LOG_INTERVAL:
            logger.warning(
                "channels: user %r has %d send_and_wait calls waiting (max_user_waits): "
                "%d refused (TooManyWaits)",
                user_id,
                limit,
                refused,
            )
            self._remember_wait_log(user_id, now)
        else:
            self._waits_logged[user_id] = (logged, refused)
        return False

    def end_wait(self, user_id: str | None) -> None:
        """One wait of ``user_id`` counted by ``begin_wait`` has ended."""
        if user_id is None:
            return
        count = self._waits.get(user_id, 0) - 1
        if count > 0:
            self._waits[user_id] = count
        else:
            self._waits.pop(user_id, None)

    def _remember_wait_log(self, user_id: str, now: float) -> None:
        entries = self._waits_logged
        if user_id not in entries and len(entries) >= MAX_WAIT_LOG_ENTRIES:
            for old in [u for u, (at, _) in entries.items() if now - at >= LOG_INTERVAL]:
                del entries[old]
        entries[user_id] = (now, 0)

    def forget(self, user_id: str) -> None:
        """The user has no channel here any more: drop what is kept about it.

        Its waits still running are still counted (each ends with its own
        ``end_wait``).
        """
        self._buckets.pop(user_id, None)
        self._cap_logged.pop(user_id, None)
        self._waits_logged.pop(user_id, None)
