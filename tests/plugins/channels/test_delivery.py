"""Tests for wsserver.plugins.channels.delivery: messages encoded once, queued,
chunked when larger than the connection's message limit.

Over a real connection with a small message limit; then ``Outgoing`` alone
(one encoding, one split per limit, fresh chunk ids) and ``Delivery`` over
fake sessions (the ignored, absent and closed channels are skipped).
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest

from wsserver.plugins.channels import ChannelManager
from wsserver.plugins.channels.delivery import Delivery, Outgoing
from wsserver.plugins.runtime.messages import MessageTooLarge, encode

from .._fakes import fake_session
from ._helpers import connected, small_frames

pytestmark = pytest.mark.timeout(30)


async def test_a_large_message_reaches_the_page_in_chunks() -> None:
    manager = ChannelManager()
    big = "é😀" * 40_000  # 240 KB of UTF-8
    async with connected(manager, **small_frames()) as (_, client):
        assert await manager.broadcast(big) == 1
        chunks: list[dict[str, Any]] = []
        while not chunks or chunks[-1]["i"] < chunks[-1]["n"] - 1:
            chunks.append(await client.next("chunk"))
        assert len(chunks) == chunks[0]["n"] >= 4
        assert [c["i"] for c in chunks] == list(range(len(chunks)))
        sizes = [len(json.dumps(c, ensure_ascii=False).encode()) for c in chunks]
        assert max(sizes) <= 65536
        joined = json.loads("".join(c["data"] for c in chunks))
        assert joined == {"p": "ch", "k": "msg", "data": big}
        with pytest.raises(MessageTooLarge):
            await manager.broadcast("x" * (9 << 20))  # above max_chunked_size


def test_a_message_is_encoded_once_and_split_once_per_limit() -> None:
    chunk_ids = itertools.count(1)
    outgoing = Outgoing("msg", {"data": "x" * 1000}, max_size=10_000, chunk_ids=chunk_ids)
    assert outgoing.text == encode("ch", "msg", {"data": "x" * 1000})
    assert outgoing.size == len(outgoing.text.encode())
    assert outgoing.item(2000) is outgoing.text  # small enough: as is
    chunks = outgoing.item(300)
    assert isinstance(chunks, tuple) and len(chunks) > 1
    assert outgoing.item(300) is chunks  # split once for this limit
    other = outgoing.item(500)
    first, second = json.loads(chunks[0]), json.loads(other[0])
    assert (first["p"], first["k"], first["id"], second["id"]) == ("ch", "chunk", "s1", "s2")
    assert "".join(json.loads(c)["data"] for c in chunks) == outgoing.text
    with pytest.raises(MessageTooLarge):
        Outgoing("msg", {"data": "x" * 20_000}, max_size=10_000, chunk_ids=chunk_ids)
    with pytest.raises(TypeError):
        Outgoing("msg", {"data": {1, 2}}, max_size=10_000, chunk_ids=chunk_ids)


async def test_delivery_skips_the_ignored_the_absent_and_the_closed() -> None:
    manager = ChannelManager()
    ignored, reached, closed = (manager.attach(fake_session()[0]) for _ in range(3))
    closed.end(frozenset())
    delivery = Delivery(manager.registry, manager.max_chunked_size)
    outgoing = delivery.message("msg", {"data": 1})
    ids = [ignored.id, reached.id, closed.id, "absent.x"]
    assert delivery.to_channels(ids, outgoing, ignore=ignored.id) == 1
    assert (len(ignored.queue), len(reached.queue)) == (0, 1)
    assert delivery.put(closed, outgoing) is False
    assert delivery.send(reached, "msg", {"data": 2}) is True
    assert len(reached.queue) == 2
