"""Per-client limits: open WebSockets and handshakes per second per address.

The server-wide ``max_connections`` protects the server; it does not protect
clients from each other: one address could open every slot, or handshake in
a loop, and lock everyone else out.  ``ClientLimiter`` keeps, per client
address, the number of open WebSockets and a token bucket of handshakes, and
refuses what goes past them before the upgrade, with ``429 Too Many
Requests`` and ``Retry-After`` (RFC 6585 section 4).  ``503`` stays the
answer of the server as a whole (at capacity, shutting down).

Who is "a client":

- its address as the server resolved it, so behind a trusted proxy the
  address from ``X-Forwarded-For`` (``wsserver.server.proxy``), never a
  header from anyone else;
- IPv4 addresses one by one; IPv6 addresses grouped by their first
  ``ipv6_prefix`` bits (64 by default: one customer network gets a /64 at
  least, and a host can pick any of its 2**64 addresses at will); an
  IPv4-mapped IPv6 address counts as its IPv4 address;
- a peer without an address (a Unix socket), or a trusted proxy that sent
  no ``X-Forwarded-For``, is not limited: every client behind it would
  share its count (the connection decides this, ``Connection``; by default
  127.0.0.1 is a trusted proxy, so local load tests are not limited
  either).

Memory stays bounded under a flood of distinct addresses.  Clients with open
WebSockets are held while they have them (at most ``max_connections`` of
them).  The others are kept in least-recently-seen order, at most
``table_size`` of them: a new one evicts the oldest.  An evicted client
only loses handshake tokens it had spent, so a flood must cycle through
more than ``table_size`` addresses within a bucket's refill time to gain a
fresh burst per address, and each of those still costs a TCP handshake from
a distinct address.

Refusals are logged once per client and ``LOG_INTERVAL`` with the number
refused meanwhile, not once per refusal: a client in a loop must not fill
the log.
"""

from __future__ import annotations

import logging
import math
import socket
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

__all__ = [
    "LOG_INTERVAL",
    "ClientLimiter",
    "ClientSlot",
    "Refusal",
    "check_client_limits",
    "client_key",
]

logger = logging.getLogger("wsserver")

#: Seconds between two log lines about the same client's refusals.
LOG_INTERVAL = 10.0

# ::ffff:a.b.c.d, an IPv4 client on an IPv6 socket (RFC 4291 section 2.5.5.2).
_IPV4_MAPPED = bytes(10) + b"\xff\xff"


def client_key(host: str, ipv6_prefix: int) -> str:
    """The identity a limit counts for ``host``: the address, or its IPv6 network.

    ``host`` comes from the socket or from ``proxy.forwarded_client``, both
    of which give addresses in their canonical text form, so an IPv4
    address is its own key without parsing.  A host that is not an IP
    address (a Unix socket path) is its own key too.  ``inet_pton`` rather
    than ``ipaddress``: a handshake pays for this, and the module's network
    objects cost 60 times as much.
    """
    if ":" not in host:
        return host
    try:
        packed = socket.inet_pton(socket.AF_INET6, host.partition("%")[0])
    except OSError:
        return host
    if packed[:12] == _IPV4_MAPPED:
        return socket.inet_ntop(socket.AF_INET, packed[12:])
    if ipv6_prefix >= 128:
        return socket.inet_ntop(socket.AF_INET6, packed)
    drop = 128 - ipv6_prefix
    network = (int.from_bytes(packed, "big") >> drop << drop).to_bytes(16, "big")
    return f"{socket.inet_ntop(socket.AF_INET6, network)}/{ipv6_prefix}"


def check_client_limits(
    *, max_open: int | None, rate: float | None, burst: int, ipv6_prefix: int, table_size: int
) -> None:
    """The rules of the per-client limits, in one place.

    ``ClientLimiter`` checks its arguments with it, and ``ServerConfig``
    its settings, at start-up, even when both limits are off (no limiter is
    made then).  The messages name the settings (``ServerConfig``'s and the
    command line's) the values come from.

    Raises:
        ValueError: a value out of its range.
    """
    if max_open is not None and max_open < 1:
        raise ValueError(f"max_connections_per_client must be at least 1 (or None), not {max_open}")
    if rate is not None and not (rate > 0 and math.isfinite(rate)):
        raise ValueError(
            f"handshake_rate_per_client must be a positive number (or None), not {rate}"
        )
    if burst < 1:
        raise ValueError(f"handshake_burst_per_client must be at least 1, not {burst}")
    if not 1 <= ipv6_prefix <= 128:
        raise ValueError(f"client_ipv6_prefix must be between 1 and 128, not {ipv6_prefix}")
    if table_size < 1:
        raise ValueError(f"client_table_size must be at least 1, not {table_size}")


@dataclass(frozen=True, slots=True)
class Refusal:
    """A handshake refused before the upgrade.

    Attributes:
        status: the HTTP status (429).
        retry_after: whole seconds after which trying again may succeed.
        reason: what was exceeded, for the response body and the log.
        limit: the setting that refused it, by name (the metrics' label).
    """

    status: int
    retry_after: int
    reason: str
    limit: str


class _Client:
    __slots__ = ("key", "logged_at", "open", "refused", "tokens", "updated")

    def __init__(self, key: str, tokens: float, now: float) -> None:
        self.key = key
        self.open = 0
        self.tokens = tokens
        self.updated = now
        self.logged_at = -math.inf
        self.refused = 0


class ClientSlot:
    """One open WebSocket counted against its client; ``release()`` once it ends."""

    __slots__ = ("_client", "_on_release")

    def __init__(self, client: _Client, on_release: Callable[[_Client], None]) -> None:
        self._client: _Client | None = client
        self._on_release = on_release

    @property
    def key(self) -> str | None:
        """The client's key, until the slot is released."""
        return None if self._client is None else self._client.key

    def release(self) -> None:
        """Give the slot back (a second call does nothing)."""
        client, self._client = self._client, None
        if client is not None:
            self._on_release(client)


class ClientLimiter:
    """Counts open WebSockets and handshakes per client; see the module docstring.

    Args:
        max_open: open WebSockets per client, ``None`` for no limit.
        rate: handshakes per second per client, refilled continuously;
            ``None`` for no limit.
        burst: handshakes a client may make at once (the bucket's size).
        ipv6_prefix: bits of an IPv6 address that name a client (1..128).
        table_size: clients without an open WebSocket remembered at most.
        clock: seconds, monotonic (``time.monotonic``; tests pass their own).

    Raises:
        ValueError: a value out of range (``check_client_limits``).
    """

    def __init__(
        self,
        *,
        max_open: int | None,
        rate: float | None,
        burst: int,
        ipv6_prefix: int = 64,
        table_size: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        check_client_limits(
            max_open=max_open,
            rate=rate,
            burst=burst,
            ipv6_prefix=ipv6_prefix,
            table_size=table_size,
        )
        self.max_open = max_open
        self.rate = rate
        self.burst = burst
        self.ipv6_prefix = ipv6_prefix
        self.table_size = table_size
        self._clock = clock
        # Clients holding open WebSockets: never evicted (their number is
        # bounded by the server's max_connections).
        self._active: dict[str, _Client] = {}
        # The others, least recently seen first.
        self._idle: OrderedDict[str, _Client] = OrderedDict()

    def __len__(self) -> int:
        """Clients remembered (active and idle)."""
        return len(self._active) + len(self._idle)

    def admit(self, host: str | None) -> ClientSlot | Refusal | None:
        """Count a WebSocket handshake from ``host``.

        Returns a ``ClientSlot`` to release when the WebSocket ends, a
        ``Refusal`` to answer with, or ``None`` when ``host`` is unknown
        (nothing counted).
        """
        if host is None:
            return None
        key = client_key(host, self.ipv6_prefix)
        now = self._clock()
        client = self._find(key, now)
        refusal = self._check(client, now)
        if refusal is not None:
            self._refused(client, refusal, now)
            return refusal
        if client.open == 0:
            self._idle.pop(key, None)
            self._active[key] = client
        client.open += 1
        return ClientSlot(client, self._release)

    def _find(self, key: str, now: float) -> _Client:
        client = self._active.get(key)
        if client is not None:
            return client
        client = self._idle.get(key)
        if client is not None:
            self._idle.move_to_end(key)
            return client
        while len(self._idle) >= self.table_size:
            self._idle.popitem(last=False)
        client = self._idle[key] = _Client(key, float(self.burst), now)
        return client

    def _check(self, client: _Client, now: float) -> Refusal | None:
        if self.max_open is not None and client.open >= self.max_open:
            # No way to know when one of them ends: a short, fixed wait.
            return Refusal(
                429,
                1,
                f"too many open WebSockets from one client ({self.max_open})",
                "max_connections_per_client",
            )
        rate = self.rate
        if rate is None:
            return None
        tokens = min(float(self.burst), client.tokens + (now - client.updated) * rate)
        client.updated = now
        if tokens < 1.0:
            client.tokens = tokens
            wait = math.ceil((1.0 - tokens) / rate)
            return Refusal(
                429,
                max(1, wait),
                f"too many handshakes from one client ({rate:g}/s)",
                "handshake_rate_per_client",
            )
        client.tokens = tokens - 1.0
        return None

    def _refused(self, client: _Client, refusal: Refusal, now: float) -> None:
        client.refused += 1
        if now - client.logged_at < LOG_INTERVAL:
            return
        logger.warning(
            "client %s: %s; answered %d (%d refused since the last line, "
            "at most one line per %g s per client)",
            client.key,
            refusal.reason,
            refusal.status,
            client.refused,
            LOG_INTERVAL,
        )
        client.logged_at = now
        client.refused = 0

    def _release(self, client: _Client) -> None:
        client.open -= 1
        if client.open == 0 and self._active.get(client.key) is client:
            del self._active[client.key]
            while len(self._idle) >= self.table_size:
                self._idle.popitem(last=False)
            self._idle[client.key] = client
