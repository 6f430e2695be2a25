"""Tests for wsserver.plugins.components.store: the in-memory store, and
signed, compressed snapshots (tampering, size limits, expiry)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json

import pytest
import zstandard

from wsserver.plugins.components.store import (
    InMemoryStore,
    SessionStore,
    SnapshotCodec,
    SnapshotExpired,
    SnapshotInvalid,
    Snapshots,
    SnapshotTooLarge,
)

SECRET = b"s" * 32


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_in_memory_store_get_set_delete_and_ttl() -> None:
    clock = Clock()
    store = InMemoryStore(clock=clock)
    assert isinstance(store, SessionStore)
    assert await store.get("a") is None
    await store.set("a", b"1", ttl=10)
    assert await store.get("a") == b"1"
    clock.now += 9.9
    assert await store.get("a") == b"1"
    clock.now += 0.1
    assert await store.get("a") is None  # expired
    assert len(store) == 0
    await store.set("b", b"2", ttl=5)
    await store.set("b", b"22", ttl=5)  # replaced
    assert await store.get("b") == b"22" and store.size == 2
    await store.delete("b")
    await store.delete("b")  # absent: fine
    assert await store.get("b") is None and store.size == 0
    with pytest.raises(ValueError):
        await store.set("c", b"", ttl=0)
    await store.close()


async def test_in_memory_store_bounds_evict_least_recently_used() -> None:
    store = InMemoryStore(max_entries=3, max_bytes=10)
    for key in "abc":
        await store.set(key, b"xx", ttl=60)
    assert await store.get("a") == b"xx"  # a is now the most recent
    await store.set("d", b"xx", ttl=60)
    assert await store.get("b") is None and await store.get("a") == b"xx"
    await store.set("e", b"x" * 8, ttl=60)  # bytes: 2 + 2 + 2 + 8 > 10
    assert store.size <= 10 and await store.get("e") == b"x" * 8
    await store.set("huge", b"x" * 11, ttl=60)  # can never fit
    assert await store.get("huge") is None
    with pytest.raises(ValueError):
        InMemoryStore(max_entries=0)


async def test_expired_entries_are_swept_as_new_ones_come() -> None:
    clock = Clock()
    store = InMemoryStore(clock=clock)
    for n in range(10):
        await store.set(f"old{n}", b"x", ttl=1)
    clock.now += 2
    await store.set("new", b"x", ttl=1)
    assert len(store) == 1


def test_codec_round_trip_and_format() -> None:
    codec = SnapshotCodec(SECRET)
    data = {"root": {"c": "m:C", "s": {"text": "héllo " * 100}}, "seq": 3}
    blob = codec.encode("page1", data)
    assert blob.startswith(b"cv1")
    frame = blob[3 + 32 :]
    # zstandard-compressed (so much smaller than the JSON) ...
    assert (
        zstandard.ZstdDecompressor().decompress(frame)
        == json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()
    )
    assert len(blob) < len(json.dumps(data)) / 3
    # ... and signed with HMAC-SHA256, bound to the page id.
    mac = hmac.new(SECRET, b"cv1page1\x00" + frame, hashlib.sha256).digest()
    assert blob[3:35] == mac
    assert codec.decode("page1", blob) == data


def test_tampered_snapshots_are_refused() -> None:
    codec = SnapshotCodec(SECRET)
    blob = codec.encode("page1", {"a": 1})
    for bad in (
        blob[:-1],  # truncated
        blob[:-1] + bytes([blob[-1] ^ 1]),  # one bit of the frame
        blob[:10] + bytes([blob[10] ^ 1]) + blob[11:],  # one bit of the MAC
        b"cv2" + blob[3:],  # another format
        b"",
        b"cv1",
    ):
        with pytest.raises(SnapshotInvalid):
            codec.decode("page1", bad)
    with pytest.raises(SnapshotInvalid, match="signature"):
        codec.decode("page2", blob)  # copied to another page's key
    with pytest.raises(SnapshotInvalid, match="signature"):
        SnapshotCodec(b"t" * 32).decode("page1", blob)  # another server's secret


def test_a_forged_frame_needs_the_secret_to_even_be_decompressed() -> None:
    codec = SnapshotCodec(SECRET)

    def forge(raw: bytes, *, content_size: bool = True) -> bytes:
        frame = zstandard.ZstdCompressor(write_content_size=content_size).compress(raw)
        mac = hmac.new(SECRET, b"cv1p\x00" + frame, hashlib.sha256).digest()
        return b"cv1" + mac + frame

    # Correctly signed (the secret leaked) but not usable:
    with pytest.raises(SnapshotInvalid, match="object"):
        codec.decode("p", forge(b"[1, 2]"))
    with pytest.raises(SnapshotInvalid, match="JSON"):
        codec.decode("p", forge(b"{nope"))
    with pytest.raises(SnapshotInvalid, match="JSON"):
        codec.decode("p", forge(b'{"a": NaN}'))
    with pytest.raises(SnapshotInvalid, match="JSON"):
        codec.decode("p", forge(b"[" * 100_000))
    # A decompression bomb is cut at the limit, with or without a declared size.
    small = SnapshotCodec(SECRET, max_size=1000)
    for content_size in (True, False):
        with pytest.raises(SnapshotTooLarge):
            small.decode("p", forge(b"{" + b" " * 10_000_000 + b"}", content_size=content_size))


def test_size_limit_on_encode() -> None:
    codec = SnapshotCodec(SECRET, max_size=100)
    codec.encode("p", {"x": "y" * 80})
    with pytest.raises(SnapshotTooLarge):
        codec.encode("p", {"x": "y" * 100})
    with pytest.raises(ValueError):
        codec.encode("p", {"x": float("nan")})
    with pytest.raises(ValueError, match="16 bytes"):
        SnapshotCodec(b"short")
    with pytest.raises(ValueError):
        SnapshotCodec(SECRET, max_size=0)


async def test_snapshots_save_load_expire_and_delete() -> None:
    clock = Clock()
    store = InMemoryStore(clock=clock)
    snapshots = Snapshots(store, SnapshotCodec(SECRET, max_size=200), ttl=30)
    size = await snapshots.save("p", {"seq": 1})
    assert size == len(await store.get("cv:p") or b"")
    assert await snapshots.load("p") == {"seq": 1}
    clock.now += 31
    with pytest.raises(SnapshotExpired):
        await snapshots.load("p")
    await snapshots.save("p", {"seq": 2})
    # Too large: refused, and the old snapshot goes (it would be stale).
    with pytest.raises(SnapshotTooLarge):
        await snapshots.save("p", {"x": "y" * 300})
    with pytest.raises(SnapshotExpired):
        await snapshots.load("p")
    await snapshots.save("p", {"seq": 3})
    await snapshots.delete("p")
    with pytest.raises(SnapshotExpired):
        await snapshots.load("p")
    with pytest.raises(ValueError):
        Snapshots(store, SnapshotCodec(SECRET), ttl=0)


async def test_a_tampered_store_entry_is_refused_by_load() -> None:
    store = InMemoryStore()
    snapshots = Snapshots(store, SnapshotCodec(SECRET))
    await snapshots.save("p", {"root": {"c": "x"}})
    blob = await store.get("cv:p")
    assert blob is not None
    await store.set("cv:p", blob[:-2] + b"zz", ttl=60)
    with pytest.raises(SnapshotInvalid):
        await snapshots.load("p")


async def test_concurrent_saves_of_one_page_keep_the_last() -> None:
    class SlowStore(InMemoryStore):
        calls = 0

        async def set(self, key: str, value: bytes, ttl: float) -> None:
            # The first write is slow: without a lock, the second would land
            # first and be overwritten by the older state.
            SlowStore.calls += 1
            await asyncio.sleep(0.02 if SlowStore.calls == 1 else 0)
            await super().set(key, value, ttl)

    snapshots = Snapshots(SlowStore(), SnapshotCodec(SECRET, level=1))
    await asyncio.gather(snapshots.save("p", {"v": "first"}), snapshots.save("p", {"v": "second"}))
    assert await snapshots.load("p") == {"v": "second"}
    assert snapshots._locks == {}  # nothing left behind
