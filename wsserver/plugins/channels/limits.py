"""Per-user limits of one node: open channels, and messages per second.

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

Channels without a user are not counted here (the server's per-client
limits are for them).  Each refusal is logged once per user and
``LOG_INTERVAL``, not once per message.  Memory stays bounded: a bucket
exists only for a user with a channel on this node, and is forgotten with
its last channel.  The limits are per node: with ``--workers 4`` a user may
have four times the channels, one cap per worker.

This module keeps no clock: the caller passes the time.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

__all__ = ["LOG_INTERVAL", "UserLimits"]

logger = logging.getLogger("wsserver.plugins.channels")

#: Seconds between two log lines about the same user's refusals.
LOG_INTERVAL = 10.0


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
    """

    def __init__(self, rate: float | None, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self._buckets: dict[str, _Bucket] = {}
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
        logged = self._cap_logged.get(user_id)
        if logged is None or now - logged >= LOG_INTERVAL:
            logger.warning(
                "channels: user %r has %d channels open on this node (max_user_channels): "
                "connection refused",
                user_id,
                cap,
            )
            self._cap_logged[user_id] = now

    def forget(self, user_id: str) -> None:
        """The user has no channel here any more: drop what is kept about it."""
        self._buckets.pop(user_id, None)
        self._cap_logged.pop(user_id, None)
