"""``RedisStore``: page snapshots in Redis, shared by every worker and restart.

With ``InMemoryStore`` a page can be resumed only by the process that served
it: a restart, a deploy, or a reconnect that a load balancer sends to another
worker finds no snapshot, and the page reloads.  ``RedisStore`` keeps the
snapshots in Redis instead, each under its own key with Redis's own expiry
(``SET key value PX ttl``), so that any worker, started at any time, can
resume any page whose snapshot has not expired.

Snapshots stay what ``SnapshotCodec`` makes of them: compressed with
zstandard and signed with HMAC-SHA256, bound to their page id.  Every worker
must therefore sign with the same secret: ``ComponentApp`` refuses a shared
store without an explicit ``secret`` (a random one per process would make
every other process's snapshots unreadable).

When Redis cannot be reached, a command fails within ``command_timeout`` with
``StoreUnavailable`` (one log line from the page's connection, no traceback):
a page then cannot be saved or resumed until Redis is back, and a page that
asks to resume reloads.  Nothing waits longer than the timeouts, so an
outage never stalls a page's event handling.

redis-py is imported when the store is made (``pip install
"wsserver[channels]"``, the same dependency as the channel manager's
backend).
"""

from __future__ import annotations

import math
import urllib.parse
from typing import Any

from .store import SessionStore, StoreUnavailable

__all__ = ["DEFAULT_URL", "RedisStore"]

#: Where ``RedisStore()`` connects unless told otherwise.
DEFAULT_URL = "redis://127.0.0.1:6379/0"


def _import_redis() -> Any:
    try:
        import redis.asyncio
        import redis.asyncio.retry
        import redis.backoff
        import redis.exceptions
    except ImportError as exc:
        raise ImportError(
            'RedisStore needs redis-py: pip install "wsserver[channels]" (or: pip install redis)'
        ) from exc
    return redis


def _redact(url: str) -> str:
    """``url`` without its password, for messages."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rpartition("@")[2]
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{netloc}"))


class RedisStore(SessionStore):
    """A ``SessionStore`` in Redis.

    Args:
        url: redis-py's URL syntax (``redis://:password@host:6379/0``,
            ``rediss://`` for TLS, ``unix:///path?db=0``).
        prefix: prepended to every key, so that several applications can
            share one database; ``"wsserver:"``.
        connect_timeout: seconds to connect; 2 s.
        command_timeout: seconds one command may take; 2 s.  A page's save
            waits at most this long when Redis is slow or gone.
    """

    shared = True

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        prefix: str = "wsserver:",
        connect_timeout: float = 2.0,
        command_timeout: float = 2.0,
    ) -> None:
        for name, value in (
            ("connect_timeout", connect_timeout),
            ("command_timeout", command_timeout),
        ):
            if isinstance(value, bool) or not (value > 0 and math.isfinite(value)):
                raise ValueError(f"{name} must be a positive number of seconds")
        redis = _import_redis()
        self.url = url
        self.prefix = prefix
        self._closed = False
        self._errors: tuple[type[BaseException], ...] = (
            redis.exceptions.RedisError,
            OSError,
            TimeoutError,
        )
        self._client = redis.asyncio.Redis.from_url(
            url,
            socket_connect_timeout=connect_timeout,
            socket_timeout=command_timeout,
            # Fail at once during an outage: a page's save must not retry
            # for seconds while its events wait.
            retry=redis.asyncio.retry.Retry(redis.backoff.NoBackoff(), 0),
        )

    def __repr__(self) -> str:
        return f"RedisStore({_redact(self.url)!r}, prefix={self.prefix!r})"

    def _unavailable(self, action: str, error: BaseException) -> StoreUnavailable:
        return StoreUnavailable(
            f"{action} at {_redact(self.url)} failed: {type(error).__name__}: {error}"
        )

    def _check_open(self, action: str) -> None:
        # A page saving as its server shuts down must not open a new
        # connection to Redis after the store was closed.
        if self._closed:
            raise StoreUnavailable(f"{action}: the store is closed")

    async def get(self, key: str) -> bytes | None:
        self._check_open("GET")
        try:
            value = await self._client.get(self.prefix + key)
        except self._errors as error:
            raise self._unavailable("GET", error) from error
        return None if value is None else bytes(value)

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        # Redis keeps time in whole milliseconds; at least one.
        milliseconds = max(1, math.ceil(ttl * 1000))
        self._check_open("SET")
        try:
            await self._client.set(self.prefix + key, value, px=milliseconds)
        except self._errors as error:
            raise self._unavailable("SET", error) from error

    async def delete(self, key: str) -> None:
        self._check_open("DEL")
        try:
            await self._client.delete(self.prefix + key)
        except self._errors as error:
            raise self._unavailable("DEL", error) from error

    async def close(self) -> None:
        """Close the connections; later commands raise ``StoreUnavailable``."""
        self._closed = True
        await self._client.aclose()
