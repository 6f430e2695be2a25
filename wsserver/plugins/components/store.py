"""Page snapshots: a pluggable session store, and a signed, compressed format.

A page's state (its component tree's ``State`` fields, its URL, the number
of the last patch batch) is kept between connections so that a page whose
connection dropped is resumed, not lost.  Two parts:

- ``SessionStore``: an abstract, asynchronous key -> bytes store with a
  time to live: ``get``, ``set(key, value, ttl)``, ``delete``.
  ``InMemoryStore`` is the default (bounded: entries and bytes, least
  recently used first out); ``RedisStore`` (``redis_store``), shared by
  every worker and kept across restarts, lets any worker resume any page.
- ``SnapshotCodec``: data -> bytes and back.  The data is JSON (declared
  state only, never pickle: reading a snapshot can only set values),
  compressed with zstandard, and signed with HMAC-SHA256 under a
  per-server secret, bound to the page id.  A store entry that was changed,
  truncated, or copied to another page's key is refused before it is even
  decompressed; the decompressed size is capped, so a forged frame cannot
  expand without bound either.

``Snapshots`` ties them together with the time to live and the size limit.
"""

from __future__ import annotations

import abc
import asyncio
import hashlib
import hmac
import io
import json
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

__all__ = [
    "DEFAULT_MAX_SNAPSHOT_SIZE",
    "DEFAULT_SNAPSHOT_TTL",
    "InMemoryStore",
    "SessionStore",
    "SnapshotCodec",
    "SnapshotError",
    "SnapshotExpired",
    "SnapshotInvalid",
    "SnapshotTooLarge",
    "Snapshots",
    "StoreUnavailable",
]

#: Seconds a snapshot lives after its last save.
DEFAULT_SNAPSHOT_TTL = 30 * 60.0
#: The largest snapshot, in bytes of JSON before compression.
DEFAULT_MAX_SNAPSHOT_SIZE = 256 * 1024

_MAGIC = b"cv1"
_MAC_SIZE = hashlib.sha256().digest_size


class SnapshotError(Exception):
    """A snapshot that cannot be used."""


class SnapshotExpired(SnapshotError):
    """No snapshot for that page: never saved, expired, or evicted."""


class SnapshotInvalid(SnapshotError):
    """A snapshot that fails its signature check, or cannot be decoded."""


class SnapshotTooLarge(SnapshotError):
    """A snapshot over the size limit."""


class StoreUnavailable(SnapshotError):
    """The store cannot be reached now (a shared store whose server is down)."""


class SessionStore(abc.ABC):
    """An asynchronous key -> bytes store whose entries expire.

    Implementations must be safe to call from concurrent tasks of one event
    loop.  Keys are short ASCII strings.  A store that cannot be reached
    raises ``StoreUnavailable``.
    """

    #: Whether other processes read what this store holds (``RedisStore``):
    #: they can verify snapshots only if every process signs with one secret.
    shared = False

    @abc.abstractmethod
    async def get(self, key: str) -> bytes | None:
        """The value, or ``None`` if absent or expired."""

    @abc.abstractmethod
    async def set(self, key: str, value: bytes, ttl: float) -> None:
        """Store ``value`` under ``key`` for ``ttl`` seconds (replacing any)."""

    @abc.abstractmethod
    async def delete(self, key: str) -> None:
        """Forget ``key`` (no error if absent)."""

    async def close(self) -> None:  # noqa: B027 - optional, not abstract
        """Release resources (connections); the default does nothing."""


class InMemoryStore(SessionStore):
    """A ``SessionStore`` in this process's memory.

    Expired entries are dropped when read and swept as new ones come; past
    ``max_entries`` or ``max_bytes`` the least recently used go first.

    Args:
        max_entries: the most entries kept.
        max_bytes: the most value bytes kept, all entries together.
        clock: seconds, monotonic (for tests).
    """

    def __init__(
        self,
        *,
        max_entries: int = 10_000,
        max_bytes: int = 64 * 1024 * 1024,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_entries < 1 or max_bytes < 1:
            raise ValueError("max_entries and max_bytes must be positive")
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._clock = clock
        self._entries: OrderedDict[str, tuple[bytes, float]] = OrderedDict()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def size(self) -> int:
        """Bytes held, all values together."""
        return self._bytes

    async def get(self, key: str) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        value, expires = entry
        if self._clock() >= expires:
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return value

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        if not ttl > 0:
            raise ValueError("ttl must be positive")
        self._drop(key)
        if len(value) > self.max_bytes:
            return  # could never fit; as if evicted at once
        now = self._clock()
        self._sweep(now)
        self._entries[key] = (bytes(value), now + ttl)
        self._bytes += len(value)
        while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
            self._drop(next(iter(self._entries)))

    async def delete(self, key: str) -> None:
        self._drop(key)

    def _drop(self, key: str) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._bytes -= len(entry[0])

    def _sweep(self, now: float) -> None:
        # Oldest-used first; stop at the first live entry: a cheap, partial
        # sweep, enough to keep expired pages from piling up.
        for key, (_, expires) in list(self._entries.items())[:64]:
            if expires <= now:
                self._drop(key)


class SnapshotCodec:
    """JSON, zstandard and HMAC: data <-> signed bytes.

    The format is ``b"cv1" + HMAC-SHA256(secret, b"cv1" + page_id + NUL +
    frame) + frame``, where ``frame`` is one zstandard frame of the UTF-8
    JSON text.

    Args:
        secret: the signing key, at least 16 bytes; the same on every
            server sharing a store.
        max_size: the largest JSON text, in bytes.
        level: the zstandard compression level.

    Raises:
        ValueError: a short secret or a bad size.
        ImportError: ``zstandard`` is not installed (``pip install
            wsserver[components]``).
    """

    def __init__(
        self, secret: bytes, *, max_size: int = DEFAULT_MAX_SNAPSHOT_SIZE, level: int = 3
    ) -> None:
        try:
            import zstandard
        except ImportError as exc:  # pragma: no cover - an install problem
            raise ImportError(
                "page snapshots need the zstandard package: pip install 'wsserver[components]'"
            ) from exc
        if len(secret) < 16:
            raise ValueError("the snapshot secret must be at least 16 bytes")
        if max_size < 1:
            raise ValueError("max_size must be positive")
        self._secret = bytes(secret)
        self.max_size = max_size
        self._compressor = zstandard.ZstdCompressor(level=level, write_content_size=True)
        self._decompressor = zstandard.ZstdDecompressor()
        self._zstd_error = zstandard.ZstdError

    def _mac(self, page_id: str, frame: bytes) -> bytes:
        message = _MAGIC + page_id.encode("utf-8") + b"\x00" + frame
        return hmac.new(self._secret, message, hashlib.sha256).digest()

    def _decompress(self, frame: bytes) -> bytes:
        # A stream read in bounded chunks: the frame's declared content size
        # is not trusted, and a frame may not declare one at all.
        limit = self.max_size
        chunks: list[bytes] = []
        total = 0
        try:
            with self._decompressor.stream_reader(io.BytesIO(frame)) as reader:
                while total <= limit:
                    chunk = reader.read(min(65536, limit + 1 - total))
                    if not chunk:
                        break
                    chunks.append(chunk)
                    total += len(chunk)
        except self._zstd_error as exc:
            raise SnapshotInvalid(f"the snapshot does not decompress: {exc}") from None
        if total > limit:
            raise SnapshotTooLarge(f"the snapshot decompresses to more than {limit} bytes")
        return b"".join(chunks)

    def encode(self, page_id: str, data: Mapping[str, Any]) -> bytes:
        """Serialise, compress and sign ``data`` for ``page_id``.

        Raises:
            SnapshotTooLarge: the JSON is over ``max_size`` bytes.
            TypeError, ValueError: ``data`` is not JSON-serialisable.
        """
        text = json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        raw = text.encode("utf-8")
        if len(raw) > self.max_size:
            raise SnapshotTooLarge(
                f"snapshot of {len(raw)} bytes exceeds the limit of {self.max_size} bytes"
            )
        frame = self._compressor.compress(raw)
        return _MAGIC + self._mac(page_id, frame) + frame

    def decode(self, page_id: str, blob: bytes) -> dict[str, Any]:
        """Check, decompress and parse a snapshot of ``page_id``.

        Raises:
            SnapshotInvalid: wrong format, a signature that does not match
                (tampered, another page's, another secret's), a frame that
                does not decompress, or not a JSON object.
            SnapshotTooLarge: it decompresses to more than ``max_size``.
        """
        head = len(_MAGIC) + _MAC_SIZE
        if len(blob) <= head or not blob.startswith(_MAGIC):
            raise SnapshotInvalid("not a snapshot")
        mac, frame = blob[len(_MAGIC) : head], blob[head:]
        if not hmac.compare_digest(mac, self._mac(page_id, frame)):
            raise SnapshotInvalid("the snapshot's signature does not match")
        raw = self._decompress(frame)
        try:
            data = json.loads(raw.decode("utf-8"), parse_constant=_refuse_constant)
        except (ValueError, RecursionError) as exc:
            raise SnapshotInvalid(f"the snapshot is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise SnapshotInvalid("the snapshot is not a JSON object")
        return data


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


class Snapshots:
    """Save and load page snapshots: a store, a codec, a time to live.

    Args:
        store: where snapshots live.
        codec: how they are encoded.
        ttl: seconds a snapshot lives after its last save.
        prefix: prepended to page ids to make store keys.
    """

    def __init__(
        self,
        store: SessionStore,
        codec: SnapshotCodec,
        *,
        ttl: float = DEFAULT_SNAPSHOT_TTL,
        prefix: str = "cv:",
    ) -> None:
        if not ttl > 0:
            raise ValueError("ttl must be positive")
        self.store = store
        self.codec = codec
        self.ttl = ttl
        self.prefix = prefix
        # One save at a time per page: a slow store must not let an older
        # snapshot overwrite a newer one.
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    def _key(self, page_id: str) -> str:
        return self.prefix + page_id

    async def save(self, page_id: str, data: Mapping[str, Any]) -> int:
        """Store ``data`` as the page's snapshot; return its size in bytes.

        Raises:
            SnapshotTooLarge: over the limit (the old snapshot is deleted:
                a stale one would resume the page in a wrong state).
        """
        lock, users = self._locks.get(page_id, (None, 0))
        if lock is None:
            lock = asyncio.Lock()
        self._locks[page_id] = (lock, users + 1)
        try:
            async with lock:
                try:
                    blob = self.codec.encode(page_id, data)
                except SnapshotTooLarge:
                    await self.store.delete(self._key(page_id))
                    raise
                await self.store.set(self._key(page_id), blob, self.ttl)
                return len(blob)
        finally:
            lock, users = self._locks[page_id]
            if users == 1:
                del self._locks[page_id]
            else:
                self._locks[page_id] = (lock, users - 1)

    async def load(self, page_id: str) -> dict[str, Any]:
        """The page's snapshot.

        Raises:
            SnapshotExpired: there is none.
            SnapshotInvalid, SnapshotTooLarge: see ``SnapshotCodec.decode``.
        """
        blob = await self.store.get(self._key(page_id))
        if blob is None:
            raise SnapshotExpired(f"no snapshot for page {page_id!r}")
        return self.codec.decode(page_id, blob)

    async def delete(self, page_id: str) -> None:
        """Forget the page's snapshot."""
        await self.store.delete(self._key(page_id))
