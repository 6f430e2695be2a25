"""``RedisBackend``: channel managers on many processes and hosts, over Redis.

Uses Redis pub/sub through redis-py's asyncio client (``redis.asyncio``),
imported when a ``RedisBackend`` is created, so that the channels package
imports without redis-py installed (``pip install "wsserver[channels]"``).

What travels where:

- each subject is a Redis pub/sub channel ``<prefix>:<subject>``
  (``wsserver:all``, ``wsserver:node:<id>``, ``wsserver:user:<id>``,
  ``wsserver:topic:<name>``); a node subscribes to ``all`` and its own
  ``node:`` subject always, and to a user's or topic's subject while it has
  a connection of that user or subscribed to that topic;
- payloads are JSON objects, published in order through one pipeline
  (one publisher task), so that what one node publishes arrives at another
  in the order it was published;
- presence, for ``get_user_channels``: a Redis set per user,
  ``<prefix>:presence:<user>``, of channel ids (``<node>.<token>``), and a
  key per live node, ``<prefix>:node:<id>``, refreshed every
  ``heartbeat_interval`` and expiring after ``node_ttl``.  Channel ids of a
  node whose key has expired (it crashed) are ignored and removed when read.

Outages.  When Redis goes away (or cannot be reached at start), the backend
logs it once, keeps the node serving its own connections (the manager
delivers locally without the backend), fails publishes at once with
``BackendUnavailable`` instead of queueing them, and reconnects with
exponential backoff and jitter (``reconnect_base`` doubling up to
``reconnect_max``).  Once back, it resubscribes to every subject and writes
its presence again (a restarted Redis without persistence has lost it), and
logs the recovery.

Delivery is at most once: what is published while Redis or a subscriber is
away is lost, never retried, so no message is ever delivered twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import random
import time
import urllib.parse
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar, overload

from ...server.metric_sources import MetricSource, add_metric_source
from .backends import Backend, BackendUnavailable, Receiver, StatusCallback, new_node_id

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.asyncio.client import PubSub

__all__ = ["DEFAULT_URL", "RedisBackend"]

logger = logging.getLogger("wsserver.plugins.channels")

#: The live backends, for the metrics (read at scrape time only).
_BACKENDS: weakref.WeakSet[RedisBackend] = weakref.WeakSet()

#: Where ``RedisBackend()`` connects unless told otherwise.
DEFAULT_URL = "redis://127.0.0.1:6379/0"
# Payloads handed to one pipeline round trip at most.
_BATCH = 256
# Seconds the reader waits for a message before checking its state again.
_READ_POLL = 1.0


def _import_redis() -> Any:
    """redis-py's modules, or an ImportError that says what to install."""
    try:
        import redis.asyncio
        import redis.asyncio.retry
        import redis.backoff
        import redis.exceptions
    except ImportError as exc:
        raise ImportError(
            'RedisBackend needs redis-py: pip install "wsserver[channels]" (or: pip install redis)'
        ) from exc
    return redis


def _redact(url: str) -> str:
    """``url`` without its password, for logs."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rpartition("@")[2]
    user = parts.username or ""
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


def _check_seconds(value: float, name: str) -> float:
    if isinstance(value, bool) or not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{name} must be a positive number of seconds")
    return float(value)


_T = TypeVar("_T")


@overload
async def _reply(command: Awaitable[_T]) -> _T: ...
@overload
async def _reply(command: Awaitable[_T] | _T) -> _T: ...
async def _reply(command: Awaitable[_T] | _T) -> _T:
    """Await one asyncio redis-py command.

    redis-py before 8.0 annotates some commands (``smembers``, ``srem``) as
    ``Awaitable[T] | T``, one signature for its blocking and asyncio clients;
    on the asyncio client the value is always awaitable.  Going through here
    keeps the code type-checked on every supported release, with no
    ``type: ignore`` that one of them would report as unused.
    """
    if isinstance(command, Awaitable):
        result: _T = await command
        return result
    return command


class RedisBackend(Backend):
    """Redis pub/sub between nodes (processes, hosts).

    Args:
        url: redis-py's URL syntax: ``redis://[[user]:password@]host:port/db``,
            ``rediss://`` for TLS, ``unix:///path/to/redis.sock``.
        prefix: the namespace of channel and key names, so that several
            applications can share one Redis.
        node_id: this node's id (default: random).
        reconnect_base: the first reconnection delay, in seconds.
        reconnect_max: the longest reconnection delay, in seconds.
        connect_timeout: seconds a connection attempt may take.
        command_timeout: seconds a command may take before the connection is
            considered lost.
        heartbeat_interval: seconds between refreshes of the node's key
            (which also detect a silent outage).
        node_ttl: seconds the node's key lives without a refresh (default
            four heartbeats): how long a crashed node's channels still count
            in ``user_channels``.
        max_pending: payloads waiting to be published, at most; beyond it
            publishes fail (Redis is too slow), instead of using memory.
        subscribe_timeout: seconds to wait for Redis to confirm a
            subscription.

    Raises:
        ImportError: redis-py is not installed.

    Attributes:
        outages: times the connection was lost (or could not be made).
        dropped: payloads not published because Redis was unavailable.
    """

    name = "redis"
    cross_process = True

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        prefix: str = "wsserver",
        node_id: str | None = None,
        reconnect_base: float = 0.25,
        reconnect_max: float = 10.0,
        connect_timeout: float = 3.0,
        command_timeout: float = 5.0,
        heartbeat_interval: float = 5.0,
        node_ttl: float | None = None,
        max_pending: int = 10_000,
        subscribe_timeout: float = 5.0,
    ) -> None:
        self._redis = _import_redis()
        if not prefix or any(c.isspace() for c in prefix):
            raise ValueError("prefix must be a non-empty name without spaces")
        if max_pending < 1:
            raise ValueError("max_pending must be at least 1")
        self.url = url
        self.prefix = prefix
        self.node_id = node_id if node_id is not None else new_node_id()
        self.reconnect_base = _check_seconds(reconnect_base, "reconnect_base")
        self.reconnect_max = max(
            self.reconnect_base, _check_seconds(reconnect_max, "reconnect_max")
        )
        self.connect_timeout = _check_seconds(connect_timeout, "connect_timeout")
        self.command_timeout = _check_seconds(command_timeout, "command_timeout")
        self.heartbeat_interval = _check_seconds(heartbeat_interval, "heartbeat_interval")
        self.node_ttl = _check_seconds(
            node_ttl if node_ttl is not None else 4 * self.heartbeat_interval, "node_ttl"
        )
        self.max_pending = max_pending
        self.subscribe_timeout = _check_seconds(subscribe_timeout, "subscribe_timeout")
        self._errors: tuple[type[BaseException], ...] = (
            self._redis.exceptions.RedisError,
            OSError,
            TimeoutError,
        )
        self._errors_or_unavailable = (*self._errors, BackendUnavailable)
        self.outages = 0
        self.dropped = 0
        _BACKENDS.add(self)
        self._receiver: Receiver | None = None
        self._on_status: StatusCallback | None = None
        self._desired: set[str] = set()
        self._actual: set[str] = set()
        self._confirm: dict[str, asyncio.Future[None]] = {}
        self._presence: dict[str, str] = {}  # channel -> user
        self._queue: deque[tuple[str, bytes, asyncio.Future[int] | None]] = deque()
        self._wakeup = asyncio.Event()
        self._lock = asyncio.Lock()
        self._client: Redis | None = None
        self._pubsub: PubSub | None = None
        self._task: asyncio.Task[None] | None = None
        self._up = False
        self._closing = False
        self._down_since: float | None = None
        self._drop_logged = False

    def __repr__(self) -> str:
        state = "up" if self._up else "down"
        return f"<RedisBackend {_redact(self.url)} node={self.node_id} {state}>"

    @property
    def available(self) -> bool:
        """Whether Redis is connected and every subscription is in place."""
        return self._up

    def describe(self) -> str:
        """``redis <url, password hidden> (node <id>)``."""
        return f"redis {_redact(self.url)} (node {self.node_id})"

    # -- names -------------------------------------------------------------

    def _channel_name(self, subject: str) -> str:
        return f"{self.prefix}:{subject}"

    def _presence_key(self, user_id: str) -> str:
        return f"{self.prefix}:presence:{user_id}"

    def _node_key(self, node_id: str) -> str:
        return f"{self.prefix}:node:{node_id}"

    # -- lifecycle ----------------------------------------------------------

    async def start(
        self,
        receiver: Receiver,
        subjects: tuple[str, ...] = (),
        on_status: StatusCallback | None = None,
    ) -> None:
        """Connect and subscribe, or keep trying in the background.

        Returns once the first attempt is over: connected and subscribed,
        or failed (logged; the backend then reconnects with backoff).
        """
        if self._task is not None:
            raise RuntimeError("RedisBackend.start() called twice")
        self._closing = False  # started again after close()
        self._receiver = receiver
        self._on_status = on_status
        # Its own node subject always: requests and replies for this node
        # travel on it (and the reader needs one subscription to read).
        self._desired.update((*subjects, f"node:{self.node_id}"))
        first: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._run(first), name=f"redis-backend-{self.node_id}")
        await asyncio.shield(first)

    async def close(self) -> None:
        """Forget this node's presence, unsubscribe, disconnect."""
        self._closing = True
        client = self._client
        if self._up and client is not None:
            # Best effort: a node that cannot say goodbye expires anyway.
            with contextlib.suppress(*self._errors):
                async with asyncio.timeout(self.command_timeout):
                    pipe = client.pipeline(transaction=False)
                    for channel_id, user_id in self._presence.items():
                        pipe.srem(self._presence_key(user_id), channel_id)
                    pipe.delete(self._node_key(self.node_id))
                    await pipe.execute()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._presence.clear()
        self._desired.clear()

    async def _run(self, first: asyncio.Future[None]) -> None:
        delay = self.reconnect_base
        while not self._closing:
            try:
                await self._connect()
                await self._serve(first)
            except self._errors as exc:
                self._went_down(exc)
            except Exception as exc:
                # A bug here must not end the backend for good: log it, and
                # go on as for an outage.
                logger.exception("channels: unexpected error in the Redis backend")
                self._went_down(exc)
            finally:
                was_up = self._up
                self._set_down()
                await self._disconnect()
            if not first.done():
                first.set_result(None)
            if was_up:
                delay = self.reconnect_base
            # "Equal jitter": nodes that lost Redis together do not all come
            # back in the same instant.
            await asyncio.sleep(delay / 2 + random.random() * delay / 2)
            delay = min(self.reconnect_max, delay * 2)

    async def _connect(self) -> None:
        redis = self._redis
        client = redis.asyncio.Redis.from_url(
            self.url,
            socket_connect_timeout=self.connect_timeout,
            socket_timeout=self.command_timeout,
            # Our own reconnection loop decides when to try again: a command
            # must fail at once during an outage, not retry for seconds.
            retry=redis.asyncio.retry.Retry(redis.backoff.NoBackoff(), 0),
            client_name=f"wsserver-{self.node_id}",
        )
        self._client = client
        async with asyncio.timeout(self.connect_timeout + self.command_timeout):
            await client.ping()
            # Presence first: a restarted Redis has forgotten it.
            pipe = client.pipeline(transaction=False)
            pipe.set(self._node_key(self.node_id), b"1", px=self._ttl_ms)
            for channel_id, user_id in self._presence.items():
                pipe.sadd(self._presence_key(user_id), channel_id)
            await pipe.execute()
        self._pubsub = client.pubsub()

    @property
    def _ttl_ms(self) -> int:
        return max(1, math.ceil(self.node_ttl * 1000))

    async def _serve(self, first: asyncio.Future[None]) -> None:
        client, pubsub = self._client, self._pubsub
        assert client is not None and pubsub is not None
        async with self._lock:
            subjects = set(self._desired)
            waiting = self._expect(subjects)
            await pubsub.subscribe(*(self._channel_name(s) for s in subjects))
            self._actual = subjects
        tasks = {
            asyncio.create_task(self._read(pubsub), name="redis-reader"),
            asyncio.create_task(self._publish_loop(client), name="redis-publisher"),
            asyncio.create_task(self._heartbeat(client), name="redis-heartbeat"),
        }
        try:
            confirmed: asyncio.Future[Any] = asyncio.ensure_future(asyncio.gather(*waiting))
            watched: set[asyncio.Future[Any]] = {confirmed, *tasks}
            done, _ = await asyncio.wait(
                watched,
                timeout=self.subscribe_timeout,
                return_when=asyncio.FIRST_COMPLETED,
            )
            if confirmed not in done:
                confirmed.cancel()
                for task in done:
                    task.result()  # raises what stopped it
                raise TimeoutError("Redis did not confirm the subscriptions")
            confirmed.result()
            self._came_up()
            if not first.done():
                first.set_result(None)
            # Subjects added while the first subscription was in flight.
            await self._reconcile()
            finished, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in finished:
                task.result()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _disconnect(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        client, self._client = self._client, None
        # A broken connection may fail to close cleanly: it is gone either way.
        if pubsub is not None:
            # Typed through a variable: redis-py annotates PubSub.aclose only
            # from 8.x on, and a direct call would need a `type: ignore` that
            # is unused there.
            close_pubsub: Callable[[], Awaitable[None]] = pubsub.aclose
            with contextlib.suppress(Exception):
                await close_pubsub()
        if client is not None:
            with contextlib.suppress(Exception):
                await client.aclose()

    def _came_up(self) -> None:
        self._up = True
        self._drop_logged = False
        if self._down_since is not None:
            logger.warning(
                "channels: Redis at %s is back after %.1f s; resubscribed to %d subjects",
                _redact(self.url),
                time.monotonic() - self._down_since,
                len(self._actual),
            )
            self._down_since = None
        else:
            logger.info(
                "channels: connected to Redis at %s as node %s", _redact(self.url), self.node_id
            )
        if self._on_status is not None:
            self._on_status(True)

    def _went_down(self, exc: BaseException) -> None:
        if self._closing:
            return
        if self._down_since is None:
            self.outages += 1
            self._down_since = time.monotonic()
            logger.warning(
                "channels: Redis at %s is unavailable (%s: %s); serving this process's "
                "connections only, and reconnecting",
                _redact(self.url),
                type(exc).__name__,
                exc,
            )
        else:
            logger.debug("channels: Redis still unavailable: %s", exc)

    def _set_down(self) -> None:
        was_up, self._up = self._up, False
        self._actual.clear()
        error = BackendUnavailable("the connection to Redis was lost")
        for future in self._confirm.values():
            if not future.done():
                future.set_exception(error)
                future.exception()  # nobody may be waiting: mark retrieved
        self._confirm.clear()
        lost = len(self._queue)
        while self._queue:
            _, _, waiter = self._queue.popleft()
            if waiter is not None and not waiter.done():
                waiter.set_exception(error)
        self.dropped += lost
        if was_up and self._on_status is not None:
            self._on_status(False)

    # -- subscriptions ------------------------------------------------------

    def _expect(self, subjects: set[str]) -> list[asyncio.Future[None]]:
        loop = asyncio.get_running_loop()
        futures = []
        for subject in subjects:
            future = self._confirm.get(subject)
            if future is None or future.done():
                future = self._confirm[subject] = loop.create_future()
            futures.append(future)
        return futures

    async def subscribe(self, subject: str) -> None:
        """Receive ``subject``; waits for Redis's confirmation when connected."""
        self._desired.add(subject)
        await self._reconcile()

    async def unsubscribe(self, subject: str) -> None:
        """Stop receiving ``subject``."""
        self._desired.discard(subject)
        await self._reconcile()

    async def _reconcile(self) -> None:
        """Make Redis's subscriptions match the desired ones (when connected)."""
        async with self._lock:
            pubsub = self._pubsub
            if not self._up or pubsub is None:
                return  # the next connection subscribes to everything desired
            new = self._desired - self._actual
            gone = self._actual - self._desired
            try:
                if new:
                    waiting = self._expect(new)
                    await pubsub.subscribe(*(self._channel_name(s) for s in new))
                    self._actual |= new
                    async with asyncio.timeout(self.subscribe_timeout):
                        await asyncio.gather(*waiting)
                if gone:
                    await pubsub.unsubscribe(*(self._channel_name(s) for s in gone))
                    self._actual -= gone
            except self._errors_or_unavailable as exc:
                # The reader notices a lost connection too, and the next
                # connection subscribes to everything desired.
                logger.debug("channels: subscription change failed: %s", exc)

    async def _read(self, pubsub: PubSub) -> None:
        prefix = self.prefix + ":"
        while True:
            message = await pubsub.get_message(timeout=_READ_POLL)
            if message is None:
                continue
            kind = message.get("type")
            name = message.get("channel")
            if isinstance(name, bytes):
                name = name.decode("utf-8", "replace")
            if not isinstance(name, str) or not name.startswith(prefix):
                continue
            subject = name[len(prefix) :]
            if kind == "subscribe":
                future = self._confirm.pop(subject, None)
                if future is not None and not future.done():
                    future.set_result(None)
            elif kind == "message":
                self._dispatch(subject, message.get("data"))

    def _dispatch(self, subject: str, data: object) -> None:
        if self._receiver is None or subject not in self._desired:
            return
        try:
            payload = json.loads(data) if isinstance(data, bytes | str) else None
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            logger.debug("channels: ignored a payload that is not a JSON object on %r", subject)
            return
        try:
            self._receiver(subject, payload)
        except Exception:
            logger.exception("channels: error delivering a %r payload", subject)

    # -- publishing ------------------------------------------------------------

    async def publish(
        self, subject: str, payload: Mapping[str, Any], *, wait: bool = False
    ) -> int | None:
        """Queue ``payload`` for Redis; see ``Backend.publish``."""
        data = json.dumps(
            payload, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        ).encode("utf-8")
        if not self._up:
            self._drop("Redis is unavailable")
        if len(self._queue) >= self.max_pending:
            self._drop(f"{self.max_pending} payloads are waiting for Redis")
        waiter: asyncio.Future[int] | None = None
        if wait:
            waiter = asyncio.get_running_loop().create_future()
        self._queue.append((self._channel_name(subject), data, waiter))
        self._wakeup.set()
        if waiter is None:
            return None
        return await waiter

    def _drop(self, why: str) -> None:
        self.dropped += 1
        if not self._drop_logged:
            self._drop_logged = True
            logger.warning("channels: not delivering to other processes: %s", why)
        raise BackendUnavailable(why)

    async def _publish_loop(self, client: Redis) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._queue:
                batch = [self._queue.popleft() for _ in range(min(_BATCH, len(self._queue)))]
                pipe = client.pipeline(transaction=False)
                for name, data, _ in batch:
                    pipe.publish(name, data)
                try:
                    counts = await pipe.execute()
                except BaseException:
                    error = BackendUnavailable("the connection to Redis was lost")
                    for _, _, waiter in batch:
                        if waiter is not None and not waiter.done():
                            waiter.set_exception(error)
                    self.dropped += len(batch)
                    raise
                for (_, _, waiter), count in zip(batch, counts, strict=True):
                    if waiter is not None and not waiter.done():
                        waiter.set_result(int(count))

    async def _heartbeat(self, client: Redis) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_interval)
            await client.set(self._node_key(self.node_id), b"1", px=self._ttl_ms)

    # -- presence ----------------------------------------------------------------

    async def add_presence(self, user_id: str, channel_id: str) -> None:
        """Add the channel to the user's set (again after every reconnection)."""
        self._presence[channel_id] = user_id
        await self._presence_command("sadd", self._presence_key(user_id), channel_id)

    async def remove_presence(self, user_id: str, channel_id: str) -> None:
        """Remove the channel from the user's set."""
        self._presence.pop(channel_id, None)
        await self._presence_command("srem", self._presence_key(user_id), channel_id)

    async def _presence_command(self, command: str, key: str, member: str) -> None:
        client = self._client
        if not self._up or client is None:
            return  # written when the connection is back
        try:
            await getattr(client, command)(key, member)
        except self._errors as exc:
            logger.debug("channels: presence update failed (%s); redone on reconnection", exc)

    async def user_channels(self, user_id: str) -> set[str]:
        """The user's channels on every live node (read from Redis)."""
        client = self._client
        if not self._up or client is None:
            raise BackendUnavailable("Redis is unavailable")
        key = self._presence_key(user_id)
        try:
            members = await _reply(client.smembers(key))
            channels = {m.decode() if isinstance(m, bytes) else str(m) for m in members}
            nodes = sorted({channel.partition(".")[0] for channel in channels})
            if not nodes:
                return set()
            pipe = client.pipeline(transaction=False)
            for node in nodes:
                pipe.exists(self._node_key(node))
            alive = {node for node, found in zip(nodes, await pipe.execute(), strict=True) if found}
            stale = {channel for channel in channels if channel.partition(".")[0] not in alive}
            if stale:
                # A crashed node's channels: tidy them away for everyone.
                await _reply(client.srem(key, *stale))
        except self._errors as exc:
            raise BackendUnavailable(f"Redis is unavailable: {exc}") from exc
        return channels - stale


# The backends' own counters, in the metrics when they are on
# (docs/operations.md): summed over this process's backends.
add_metric_source(
    MetricSource(
        "wsserver_channels_redis_up",
        "gauge",
        "Redis channel backends connected with every subscription in place",
        lambda: sum(1 for backend in list(_BACKENDS) if backend.available),
    )
)
add_metric_source(
    MetricSource(
        "wsserver_channels_redis_outages",
        "counter",
        "Times a Redis channel backend lost its connection or could not make it",
        lambda: sum(backend.outages for backend in list(_BACKENDS)),
    )
)
add_metric_source(
    MetricSource(
        "wsserver_channels_redis_dropped",
        "counter",
        "Payloads a Redis channel backend could not publish (Redis unavailable or too slow)",
        lambda: sum(backend.dropped for backend in list(_BACKENDS)),
    )
)
