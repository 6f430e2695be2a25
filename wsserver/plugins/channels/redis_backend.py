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

Plain publications are at most once: what is published while Redis or a
subscriber is away is lost, never retried, so no message is ever delivered
twice.

Topic history (``append``, ``history``), on Redis Streams.  Per topic, a
hash ``<prefix>:hist-meta:{t:<topic>}`` holds the epoch (a random token, set by
whoever finds it missing) and the last offset (``HINCRBY``); a stream
``<prefix>:hist:{t:<topic>}`` holds the messages, with the stream id
``0-<offset>`` (an explicit counter rather than Redis's time-based ids:
offsets are then 1, 2, 3..., so a gap is visible, and a page can compare
two positions).  One Lua script does, atomically: create the epoch if the
hash is gone (and drop a stream left over), number the message, ``XADD``
it with ``MAXLEN`` = ``size`` (exact trimming) and the Redis server's time,
refresh the expiries, and ``PUBLISH`` it on the topic's channel with its
offset.  Live delivery is thus still pub/sub, and a node that missed some
reads them back with ``XRANGE`` (another script, which also drops entries
older than ``ttl`` by the same clock).  If Redis loses the data (flushed,
or restarted without persistence), the next append finds the hash gone and
starts a new epoch at offset 1: subscribers see the epoch change.  The
``{t:<topic>}`` part is a Redis Cluster hash tag: a topic's keys share one
slot, as a script touching several keys requires.

While Redis is away, appends wait in a bounded outbox (``max_outbox``) and
are sent, in order, when it is back; beyond the bound ``append`` raises
``BackendUnavailable`` (logged once): never a silent loss.  Each append
carries this node's sequence number, remembered in the topic's hash, so an
append retried after a connection broke mid-flight is not numbered twice.
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
from .history import HistoryEntry, HistoryRange, new_epoch

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.asyncio.client import PubSub

__all__ = [
    "APPEND_SCRIPT",
    "DEFAULT_URL",
    "RANGE_SCRIPT",
    "RedisBackend",
    "history_keys",
    "topic_presence_key",
]

logger = logging.getLogger("wsserver.plugins.channels")

#: The live backends, for the metrics (read at scrape time only).
_BACKENDS: weakref.WeakSet[RedisBackend] = weakref.WeakSet()

#: Where ``RedisBackend()`` connects unless told otherwise.
DEFAULT_URL = "redis://127.0.0.1:6379/0"
# Payloads handed to one pipeline round trip at most.
_BATCH = 256
#: Topic messages with history that may wait for Redis during an outage: at
#: a kilobyte each, ten megabytes at most.
DEFAULT_MAX_OUTBOX = 10_000
#: Seconds a topic's epoch and counter outlive its last message: a day, so a
#: page that comes back after the history expired is told "trimmed" (its
#: epoch still holds) rather than "another epoch".
DEFAULT_HISTORY_META_TTL = 86_400.0


def _topic_tag(topic: str) -> str:
    # A Redis Cluster hash tag: the key's slot is the hash of what lies
    # between its first "{" and the first "}" after it.  "t:" first, so the
    # tag is never empty (a topic starting with "}" would make "{}", and then
    # the whole key is hashed and the topic's keys part); the prefix holds no
    # brace (checked), so the first "{" is this one.
    return "{t:" + topic + "}"


def history_keys(prefix: str, topic: str) -> tuple[str, str]:
    """The Redis keys of a topic's history: its hash (epoch, counter) and stream.

    Both carry the topic's hash tag, so that on Redis Cluster they are in one
    slot: the Lua scripts that number and read a topic's messages touch both
    (a script's keys must be in one slot).
    """
    tag = _topic_tag(topic)
    return f"{prefix}:hist-meta:{tag}", f"{prefix}:hist:{tag}"


def topic_presence_key(prefix: str, topic: str) -> str:
    """The Redis hash of a topic's presence, in the slot of its history keys."""
    return f"{prefix}:topic-presence:{_topic_tag(topic)}"


#: The Lua script that numbers a topic message (public so that it can be
#: checked on a Redis Cluster, where its two keys must share a slot).
# KEYS: meta hash, stream.  ARGV: a new epoch, size, ttl ms, meta ttl ms,
# payload (JSON), pub/sub channel, node id, the node's sequence number.
APPEND_SCRIPT = """
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then
  epoch = ARGV[1]
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'epoch', epoch, 'seq', 0)
end
local mark = 'n:' .. ARGV[7]
local done = tonumber(redis.call('HGET', KEYS[1], mark) or '0')
if done >= tonumber(ARGV[8]) then
  return {epoch, -1}
end
redis.call('HSET', KEYS[1], mark, ARGV[8])
local offset = redis.call('HINCRBY', KEYS[1], 'seq', 1)
local now = redis.call('TIME')
local ms = now[1] .. string.format('%03d', math.floor(tonumber(now[2]) / 1000))
redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[2], '0-' .. offset, 't', ms, 'd', ARGV[5])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('PUBLISH', ARGV[6],
  '{"op":"hist","ep":"' .. epoch .. '","off":' .. offset .. ',"p":' .. ARGV[5] .. '}')
return {epoch, offset}
"""

#: The Lua script that reads a topic's position and kept messages.
# KEYS: meta hash, stream.  ARGV: a new epoch, after (-1: position only),
# ttl ms, meta ttl ms, the first stream id to read ("0-<after + 1>", made in
# Python: Lua would print a large number in exponent notation).  Returns
# epoch, top, then id, payload pairs.
RANGE_SCRIPT = """
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then
  epoch = ARGV[1]
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'epoch', epoch, 'seq', 0)
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
end
local out = {epoch, redis.call('HGET', KEYS[1], 'seq')}
local after = tonumber(ARGV[2])
if after < 0 then
  return out
end
local now = redis.call('TIME')
local oldest = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) - tonumber(ARGV[3])
for _, entry in ipairs(redis.call('XRANGE', KEYS[2], ARGV[5], '+')) do
  local fields = entry[2]
  local t, d
  for i = 1, #fields, 2 do
    if fields[i] == 't' then
      t = tonumber(fields[i + 1])
    elseif fields[i] == 'd' then
      d = fields[i + 1]
    end
  end
  if t and d and t >= oldest then
    table.insert(out, entry[1])
    table.insert(out, d)
  end
end
return out
"""


class _Append:
    """A topic message waiting to be appended (the outbox's items)."""

    __slots__ = ("data", "seq", "size", "subject", "topic", "ttl_ms")

    def __init__(
        self, subject: str, topic: str, data: bytes, seq: int, *, size: int, ttl_ms: int
    ) -> None:
        self.size = size
        self.ttl_ms = ttl_ms
        self.subject = subject
        self.topic = topic
        self.data = data
        self.seq = seq


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
        max_outbox: topic messages with history that may wait for Redis
            (during an outage, or while it is slow); beyond it ``append``
            raises ``BackendUnavailable``.
        history_meta_ttl: seconds a topic's epoch and counter are kept after
            its last message.

    Raises:
        ImportError: redis-py is not installed.

    Attributes:
        outages: times the connection was lost (or could not be made).
        dropped: payloads not published because Redis was unavailable.
    """

    name = "redis"
    cross_process = True
    keeps_history = True
    keeps_topic_presence = True

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
        max_outbox: int = DEFAULT_MAX_OUTBOX,
        history_meta_ttl: float = DEFAULT_HISTORY_META_TTL,
    ) -> None:
        self._redis = _import_redis()
        if not prefix or any(c.isspace() or c in "{}" for c in prefix):
            # A brace would change the keys' hash tags (Redis Cluster slots).
            raise ValueError("prefix must be a non-empty name without spaces or braces")
        if max_pending < 1 or max_outbox < 1:
            raise ValueError("max_pending and max_outbox must be at least 1")
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
        self.max_outbox = max_outbox
        self.history_meta_ttl = _check_seconds(history_meta_ttl, "history_meta_ttl")
        self._outbox: deque[_Append] = deque()
        self._append_seq = 0
        self._outbox_logged = False
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
        self._topic_presence: dict[tuple[str, str], str | None] = {}  # (topic, channel) -> user
        self._queue: deque[tuple[str, bytes, asyncio.Future[int] | None]] = deque()
        self._wakeup = asyncio.Event()
        self._lock = asyncio.Lock()
        self._client: Redis | None = None
        self._listener: Redis | None = None
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

    def _topic_presence_key(self, topic: str) -> str:
        return topic_presence_key(self.prefix, topic)

    def _history_keys(self, topic: str) -> tuple[str, str]:
        return history_keys(self.prefix, topic)

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
                    for topic, channel_id in self._topic_presence:
                        pipe.hdel(self._topic_presence_key(topic), channel_id)
                    pipe.delete(self._node_key(self.node_id))
                    await pipe.execute()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._presence.clear()
        self._topic_presence.clear()
        self._desired.clear()

    async def _run(self, first: asyncio.Future[None]) -> None:
        delay = self.reconnect_base
        while not self._closing:
            try:
                await self._connect()
                await self._serve(first)
            except self._errors as exc:
                self._went_down(exc)
            except asyncio.CancelledError as exc:
                if _stopping():
                    raise
                self._went_down(_stray(exc))
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
            for (topic, channel_id), member in self._topic_presence.items():
                pipe.hset(self._topic_presence_key(topic), channel_id, json.dumps(member))
            await pipe.execute()
        # Pub/sub on a client of its own, without a read timeout: its reader
        # waits for the next message as long as it takes (a quiet node is not
        # an outage), with no timer that could expire under it (see
        # ``_stray``).  A dead Redis is noticed by the heartbeat on the other
        # client, which ends this one's reader too.
        self._listener = redis.asyncio.Redis.from_url(
            self.url,
            socket_connect_timeout=self.connect_timeout,
            socket_timeout=None,
            retry=redis.asyncio.retry.Retry(redis.backoff.NoBackoff(), 0),
            client_name=f"wsserver-{self.node_id}",
        )
        self._pubsub = self._listener.pubsub()

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
                    _result(task)  # raises what stopped it
                raise TimeoutError("Redis did not confirm the subscriptions")
            confirmed.result()
            self._came_up()
            if not first.done():
                first.set_result(None)
            # Subjects added while the first subscription was in flight.
            await self._reconcile()
            finished, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in finished:
                _result(task)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _disconnect(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        client, self._client = self._client, None
        listener, self._listener = self._listener, None
        # A broken connection may fail to close cleanly: it is gone either way.
        if pubsub is not None:
            # Typed through a variable: redis-py annotates PubSub.aclose only
            # from 8.x on, and a direct call would need a `type: ignore` that
            # is unused there.
            close_pubsub: Callable[[], Awaitable[None]] = pubsub.aclose
            with contextlib.suppress(Exception):
                await close_pubsub()
        for each in (client, listener):
            if each is not None:
                with contextlib.suppress(Exception):
                    await each.aclose()

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
            message = await pubsub.get_message(timeout=None)
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
        self._wakeup.set()  # what waited in the outbox goes first
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._outbox:
                await self._append_batch(client)
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

    # -- topic history ---------------------------------------------------------------

    async def append(
        self,
        subject: str,
        topic: str,
        message: Any,
        ignore: str | None,
        *,
        size: int,
        ttl: float,
    ) -> HistoryEntry | None:
        """Queue a topic message for Redis to number and keep; see ``Backend.append``.

        Returns ``None`` at once: the message is numbered in the next round
        trip (with the others queued meanwhile: one pipeline), or, while
        Redis is away, when it is back, in order.  This node's own feed
        learns the offset then, like the other nodes.
        """
        data = json.dumps(
            {"topic": topic, "msg": message, "ignore": ignore},
            separators=(",", ":"),
            ensure_ascii=False,
            allow_nan=False,
        ).encode("utf-8")
        if len(self._outbox) >= self.max_outbox:
            self.dropped += 1
            if not self._outbox_logged:
                self._outbox_logged = True
                logger.warning(
                    "channels: %d topic messages are waiting for Redis; refusing more "
                    "(publish raises BackendUnavailable)",
                    self.max_outbox,
                )
            raise BackendUnavailable(f"{self.max_outbox} topic messages are waiting for Redis")
        self._append_seq += 1
        self._outbox.append(
            _Append(subject, topic, data, self._append_seq, size=size, ttl_ms=math.ceil(ttl * 1000))
        )
        self._wakeup.set()
        return None

    @property
    def history_pending(self) -> int:
        """Topic messages in the outbox, waiting to be numbered."""
        return len(self._outbox)

    def _append_args(self, item: _Append) -> list[Any]:
        return [
            new_epoch(),
            item.size,
            item.ttl_ms,
            math.ceil(self.history_meta_ttl * 1000),
            item.data,
            self._channel_name(item.subject),
            self.node_id,
            item.seq,
        ]

    async def _append_batch(self, client: Redis) -> None:
        # Peeked, not popped: if the connection breaks, they are sent again
        # (the script skips what it already numbered).
        batch = [self._outbox[i] for i in range(min(_BATCH, len(self._outbox)))]
        pipe = client.pipeline(transaction=False)
        for item in batch:
            meta, stream = self._history_keys(item.topic)
            pipe.eval(APPEND_SCRIPT, 2, meta, stream, *self._append_args(item))
        results = await pipe.execute(raise_on_error=False)
        for item, result in zip(batch, results, strict=True):
            if isinstance(result, Exception) and not isinstance(
                result, self._redis.exceptions.ResponseError
            ):
                raise result  # the connection: this one and the rest are sent again
            self._outbox.popleft()
            if isinstance(result, Exception):
                # Redis refused this one (a key of another type, out of
                # memory...): it would be refused forever.
                self.dropped += 1
                logger.error(
                    "channels: Redis refused a message of topic %r, dropped: %s", item.topic, result
                )
                continue
            epoch, offset = _text(result[0]), int(result[1])
            if offset < 0:
                continue  # numbered already, before the connection broke
            inner = json.loads(item.data)
            entry = HistoryEntry(item.topic, epoch, offset, inner.get("msg"), inner.get("ignore"))
            # Delivered here as on the other nodes (which get Redis's PUBLISH):
            # this node's feed keeps the order and drops the echo.
            self._deliver_own(item.subject, entry)
        if not self._outbox:
            self._outbox_logged = False

    def _deliver_own(self, subject: str, entry: HistoryEntry) -> None:
        if self._receiver is None or subject not in self._desired:
            return
        try:
            self._receiver(subject, entry.to_payload())
        except Exception:
            logger.exception("channels: error delivering a %r payload", subject)

    async def history(self, topic: str, after: int | None, *, ttl: float) -> HistoryRange:
        """The topic's epoch, last offset and kept messages after ``after``, from Redis."""
        client = self._client
        if not self._up or client is None:
            raise BackendUnavailable("Redis is unavailable")
        meta, stream = self._history_keys(topic)
        args: list[str | int] = [
            new_epoch(),
            -1 if after is None else after,
            math.ceil(ttl * 1000),
            math.ceil(self.history_meta_ttl * 1000),
            f"0-{0 if after is None else after + 1}",
        ]
        try:
            async with asyncio.timeout(self.command_timeout):
                found = await _reply(client.eval(RANGE_SCRIPT, 2, meta, stream, *args))
        except self._errors as exc:
            raise BackendUnavailable(f"Redis is unavailable: {exc}") from exc
        epoch, top = _text(found[0]), int(found[1])
        entries = []
        for index in range(2, len(found) - 1, 2):
            offset = int(_text(found[index]).partition("-")[2])
            inner = json.loads(found[index + 1])
            ignore = inner.get("ignore")
            entries.append(
                HistoryEntry(
                    topic,
                    epoch,
                    offset,
                    inner.get("msg"),
                    ignore if isinstance(ignore, str) else None,
                )
            )
        return HistoryRange(epoch, top, tuple(entries))

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

    # -- topic presence -------------------------------------------------------------

    async def join_topic(self, topic: str, channel_id: str, user_id: str | None) -> None:
        """Add the channel to the topic's hash (again after every reconnection)."""
        self._topic_presence[topic, channel_id] = user_id
        client = self._client
        if not self._up or client is None:
            return  # written when the connection is back
        try:
            await _reply(
                client.hset(self._topic_presence_key(topic), channel_id, json.dumps(user_id))
            )
        except self._errors as exc:
            logger.debug("channels: topic presence update failed (%s); redone on reconnection", exc)

    async def leave_topic(self, topic: str, channel_id: str) -> None:
        """Remove the channel from the topic's hash."""
        self._topic_presence.pop((topic, channel_id), None)
        await self._presence_command("hdel", self._topic_presence_key(topic), channel_id)

    async def topic_members(self, topic: str) -> dict[str, str | None]:
        """The topic's members on every live node (read from Redis).

        Members of a node whose key has expired (it crashed) are left out,
        and removed for everyone.
        """
        client = self._client
        if not self._up or client is None:
            raise BackendUnavailable("Redis is unavailable")
        key = self._topic_presence_key(topic)
        try:
            raw = await _reply(client.hgetall(key))
            members: dict[str, str | None] = {}
            for field, value in raw.items():
                user = json.loads(value)
                members[_text(field)] = user if isinstance(user, str) else None
            nodes = sorted({channel.partition(".")[0] for channel in members})
            if not nodes:
                return {}
            pipe = client.pipeline(transaction=False)
            for node in nodes:
                pipe.exists(self._node_key(node))
            alive = {node for node, found in zip(nodes, await pipe.execute(), strict=True) if found}
            stale = [channel for channel in members if channel.partition(".")[0] not in alive]
            if stale:
                await _reply(client.hdel(key, *stale))
        except self._errors as exc:
            raise BackendUnavailable(f"Redis is unavailable: {exc}") from exc
        except ValueError:
            members, stale = {}, []  # not ours: written by something else
        return {channel: user for channel, user in members.items() if channel not in stale}


def _text(value: object) -> str:
    """A Redis reply as text."""
    return value.decode() if isinstance(value, bytes) else str(value)


def _stopping() -> bool:
    """Whether the current task is being cancelled (stopped), as opposed to
    hit by a stray cancellation (``_stray``)."""
    task = asyncio.current_task()
    return task is None or task.cancelling() > 0


def _stray(exc: BaseException) -> ConnectionError:
    """A cancellation nobody asked for, as the lost connection it amounts to.

    Python 3.11's ``asyncio.timeout`` (which redis-py uses for its reads) can
    leave its cancellation pending when it expires in the same loop iteration
    as the awaited read completes; the ``CancelledError`` then lands on a
    later ``await`` of the same task.  Seen on a busy machine: it ended the
    backend's reader, and with it the backend, silently.  A read or write cut
    anywhere is treated like a broken connection: logged, reconnected.
    """
    error = ConnectionError("a Redis command was interrupted by a stray cancellation")
    error.__cause__ = exc
    return error


def _result(task: asyncio.Future[Any]) -> None:
    """Raise what ended one of the backend's tasks (a stray cancellation as a
    lost connection: the backend itself is not being stopped)."""
    if task.cancelled():
        raise _stray(asyncio.CancelledError())
    task.result()


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
