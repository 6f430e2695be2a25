"""Per-connection rates: messages and bytes per second a peer may send.

The per-client limits (``limits.py``) bound how many connections a client
holds; they do not bound what one connection sends.  Without this, one
connection can send as fast as a worker parses, and the worker's other
connections wait behind it on the same event loop.  ``ConnectionRates``
keeps two token buckets per WebSocket, refilled continuously:

- messages (text and binary, each counted once however many fragments it
  came in; control frames are bounded by the byte rate and by the write
  buffer's back-pressure on their answers);
- bytes, as read from the socket (frame headers included, before
  decompression: what the peer makes the server read).

A bucket may go into debt: a read is counted whole when it arrives, so the
peer's *average* rate is held to the limit, whatever the read sizes.  What
happens past a limit is the server's ``rate_limit_policy``: ``"pause"``
(the default) stops reading and parsing until the buckets are out of debt,
back-pressure that TCP passes on to the peer, who is slowed, not refused;
``"close"`` fails the connection with 1008 (policy violation).

This module is pure bookkeeping: the connection passes the event loop's
time in, reads ``overdrawn`` and acts.
"""

from __future__ import annotations

import math
from typing import Literal

__all__ = [
    "RATE_LIMIT_POLICIES",
    "ConnectionRates",
    "RateLimitPolicy",
    "TokenBucket",
    "check_rates",
]

#: What happens past a rate: slow the reader down, or close with 1008.
RateLimitPolicy = Literal["pause", "close"]
RATE_LIMIT_POLICIES: tuple[RateLimitPolicy, ...] = ("pause", "close")


def check_rates(
    *,
    message_rate: float | None,
    message_burst: int,
    byte_rate: float | None,
    byte_burst: int,
    policy: str,
) -> None:
    """The rules of the per-connection rates, in one place.

    Messages name the ``ServerConfig`` settings the values come from.

    Raises:
        ValueError: a value out of its range.
    """
    for name, rate in (
        ("message_rate_per_connection", message_rate),
        ("byte_rate_per_connection", byte_rate),
    ):
        if rate is not None and not (rate > 0 and math.isfinite(rate)):
            raise ValueError(f"{name} must be a positive number (or None), not {rate}")
    for name, burst in (
        ("message_burst_per_connection", message_burst),
        ("byte_burst_per_connection", byte_burst),
    ):
        if burst < 1:
            raise ValueError(f"{name} must be at least 1, not {burst}")
    if policy not in RATE_LIMIT_POLICIES:
        raise ValueError(f"rate_limit_policy must be 'pause' or 'close', not {policy!r}")


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved up; debt allowed.

    Args:
        rate: tokens added per second.
        burst: the most tokens held (a full bucket at the start).
        now: the time, in seconds, of the start.
    """

    __slots__ = ("burst", "rate", "tokens", "updated")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.updated = now

    def take(self, amount: float, now: float) -> bool:
        """Take ``amount`` tokens (into debt if need be); whether in debt now."""
        tokens = self.tokens + (now - self.updated) * self.rate
        self.tokens = (tokens if tokens < self.burst else self.burst) - amount
        self.updated = now
        return self.tokens < 0.0

    def wait(self, now: float) -> float:
        """Seconds from ``now`` until the bucket is out of debt (0.0: it is)."""
        tokens = self.tokens + (now - self.updated) * self.rate
        return 0.0 if tokens >= 0.0 else -tokens / self.rate


class ConnectionRates:
    """The message and byte buckets of one WebSocket; see the module docstring.

    Args:
        message_rate: messages per second, ``None`` for no limit.
        message_burst: messages that may arrive at once.
        byte_rate: bytes per second, ``None`` for no limit.
        byte_burst: bytes that may arrive at once.
        now: the time of the start (the event loop's).
    """

    __slots__ = ("bytes", "logged", "messages")

    def __init__(
        self,
        *,
        message_rate: float | None,
        message_burst: int,
        byte_rate: float | None,
        byte_burst: int,
        now: float,
    ) -> None:
        self.messages = (
            None if message_rate is None else TokenBucket(message_rate, message_burst, now)
        )
        self.bytes = None if byte_rate is None else TokenBucket(byte_rate, byte_burst, now)
        #: Whether the connection has logged its first pause (one line each).
        self.logged = False

    def received_bytes(self, count: int, now: float) -> bool:
        """Count one read; whether the byte rate is overdrawn now."""
        bucket = self.bytes
        return bucket is not None and bucket.take(count, now)

    def received_message(self, now: float) -> bool:
        """Count one message; whether the message rate is overdrawn now."""
        bucket = self.messages
        return bucket is not None and bucket.take(1, now)

    def overdrawn(self, now: float) -> tuple[float, str]:
        """Seconds until both buckets are out of debt, and which one is (or ``""``)."""
        wait, which = 0.0, ""
        if self.messages is not None:
            wait = self.messages.wait(now)
            which = "message" if wait > 0.0 else ""
        if self.bytes is not None:
            byte_wait = self.bytes.wait(now)
            if byte_wait > wait:
                wait, which = byte_wait, "byte"
        return wait, which
