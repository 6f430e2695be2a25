"""Tests for wsserver.plugins.channels.feeds: each topic message once, in order.

Two nodes joined by a ``Hub`` (the in-process backend keeps history too),
real servers and WebSocket clients speaking the protocol (``ChannelClient``):
offsets and positions on the wire, a reconnecting client replayed exactly
what it missed (from the positions its ``ready`` carries, or ``since``), a
gap it cannot be replayed (``ch/lost``), Python listeners, and the feed's
own sequencing: duplicates dropped, a gap read back from history, another
epoch announced.  The same over Redis, with outages, is in
test_redis_backend.py; in Chromium, in test_manager.py.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from wsserver.plugins.channels import (
    ChannelManager,
    HistoryEntry,
    HistoryLost,
    Hub,
    InProcessBackend,
    Position,
)
from wsserver.plugins.channels.history import HistoryRange, MemoryHistory
from wsserver.plugins.runtime.messages import MessageTooLarge

from ._helpers import TIMEOUT, ChannelClient, serve_manager, two_nodes, wait_until

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(30)]


async def test_topic_messages_carry_offsets_on_every_node() -> None:
    async with two_nodes(history_size=10) as (a, b, server_a, server_b):
        here = await ChannelClient.connect(server_a.port)
        there = await ChannelClient.connect(server_b.port)
        await a.subscribe(here.channel, "t")
        await b.subscribe(there.channel, "t")
        position = await here.next("pos")
        assert (position["topic"], position["off"]) == ("t", 0)
        assert (await there.next("pos"))["ep"] == position["ep"]
        assert await a.publish("t", "one") == 1
        assert await b.publish("t", "two", ignore_channel=there.channel) == 0
        for client in (here, there):
            one = await client.next()
            assert (one["data"], one["topic"], one["off"], one["ep"]) == (
                "one",
                "t",
                1,
                position["ep"],
            )
        assert (await here.next())["off"] == 2
        await there.nothing()  # left out, as asked
        assert a.topic_position("t") == Position(position["ep"], 2)
        # local_only messages are not numbered (a source on every node).
        await a.publish("t", "local", local_only=True)
        assert "off" not in await here.next()
        await here.close()
        await there.close()


async def test_a_reconnecting_client_gets_exactly_what_it_missed() -> None:
    manager = ChannelManager(history_size=50)
    async with serve_manager(manager) as server:
        first = await ChannelClient.connect(server.port)
        await manager.subscribe(first.channel, "t")
        for n in range(3):
            await manager.publish("t", n)
        seen = [await first.next() for _ in range(3)]
        await first.close()
        for n in range(3, 8):
            await manager.publish("t", n)
        last = seen[-1]
        again = await ChannelClient.connect(
            server.port, positions={"t": {"ep": last["ep"], "off": last["off"]}}
        )
        # The application subscribes the new channel as it did the old one.
        await manager.subscribe(again.channel, "t")
        replay = [await again.next() for _ in range(5)]
        assert [(m["data"], m["off"]) for m in replay] == [(n, n + 1) for n in range(3, 8)]
        await manager.publish("t", "live")
        assert (await again.next())["data"] == "live"
        await again.nothing()
        await again.nothing("lost")
        await again.close()


async def test_a_gap_beyond_the_history_is_said_not_hidden() -> None:
    manager = ChannelManager(history_size=3)
    async with serve_manager(manager) as server:
        client = await ChannelClient.connect(server.port)
        await manager.publish("t", "seen")  # no subscriber yet: kept all the same
        for n in range(10):
            await manager.publish("t", n)
        epoch = (await manager.backend.history("t", None, ttl=60)).epoch
        await manager.subscribe(client.channel, "t", since=Position(epoch, 1))
        lost = await client.next("lost")
        assert (lost["topic"], lost["reason"], lost["ep"], lost["off"]) == (
            "t",
            "trimmed",
            epoch,
            11,
        )
        await client.nothing()  # no partial replay
        await manager.publish("t", "after")
        assert (await client.next())["off"] == 12
        await client.close()


async def test_positions_from_a_page_are_checked() -> None:
    manager = ChannelManager(history_size=5, max_recover_topics=2)
    async with serve_manager(manager) as server:
        many = {f"t{n}": {"ep": "e", "off": n} for n in range(5)}
        client = await ChannelClient.connect(server.port, positions=many)
        channel = manager.channel(client.channel)
        assert channel is not None and set(channel.recovery) == {"t0", "t1"}
        await client.close()
        for pos in ('{"t":{"ep":3,"off":1}}', "[1]", '{"t":5}', '{"":{"ep":"e","off":1}}'):
            async with connect(f"ws://127.0.0.1:{server.port}/ws") as bad:
                assert json.loads(await bad.recv())["k"] == "init"  # the runtime's
                await bad.send(f'{{"p":"ch","k":"ready","pos":{pos}}}')
                with pytest.raises(ConnectionClosed):
                    await asyncio.wait_for(bad.recv(), TIMEOUT)
                assert bad.close_code == 1007, pos


async def test_a_listener_recovers_and_is_told_when_it_cannot() -> None:
    manager = ChannelManager(history_size=5, max_listener_queue=3)
    async with manager:
        with pytest.raises(ValueError, match="no history"):
            ChannelManager().listen("t")
        for n in range(4):
            await manager.publish("t", n)
        epoch = (await manager.backend.history("t", None, ttl=60)).epoch
        async with manager.listen("t", since=Position(epoch, 2)) as listener:
            assert [(await anext(listener)).message for _ in range(2)] == [2, 3]
            assert listener.position == Position(epoch, 4)
            for n in range(4, 8):  # more than its queue holds
                await manager.publish("t", n)
            with pytest.raises(HistoryLost) as caught:
                await anext(listener)
            assert caught.value.reason == "overflow"
            # Offsets 5 to 7 filled the queue; 8 overflowed it: all dropped.
            assert caught.value.position == Position(epoch, 8)
            assert listener.position == Position(epoch, 8)
            await manager.publish("t", "next")
            assert (await anext(listener)).position == Position(epoch, 9)
        async with manager.listen("t", since=Position(epoch, 1)) as late:
            with pytest.raises(HistoryLost) as caught:
                await anext(late)
            assert caught.value.reason == "trimmed"
        async with manager.listen("t") as now:
            assert now.position == Position(epoch, 9)
            await now.close()
            assert [item async for item in now] == []


async def test_the_feed_drops_duplicates_and_reads_gaps_back() -> None:
    manager = ChannelManager(history_size=20)
    async with serve_manager(manager) as server:
        client = await ChannelClient.connect(server.port)
        await manager.subscribe(client.channel, "t")
        await client.next("pos")
        backend = manager.backend
        assert isinstance(backend, InProcessBackend)
        kept = [backend.hub.history.append("t", n, None, size=20, ttl=60) for n in range(3)]
        feeds = manager._feeds
        # Offset 3 first: 1 and 2 are missing, read back from the history.
        assert feeds.offer(kept[2]) == 0
        got = [await client.next() for _ in range(3)]
        assert [m["data"] for m in got] == [0, 1, 2]
        assert feeds.offer(kept[0]) == 0 and feeds.offer(kept[2]) == 0  # duplicates
        await client.nothing()
        # Another epoch: the history was lost; the subscriber is told.
        fresh = HistoryEntry("t", "another", 1, "new")
        feeds.offer(fresh)
        lost = await client.next("lost")
        assert (lost["reason"], lost["ep"], lost["off"]) == ("epoch", "another", 0)
        assert (await client.next())["data"] == "new"
        feeds.offer(kept[1])  # the old epoch is over: ignored
        await client.nothing()
        await client.close()


async def test_a_subscriber_that_leaves_is_forgotten() -> None:
    manager = ChannelManager(history_size=5)
    async with serve_manager(manager) as server:
        client = await ChannelClient.connect(server.port)
        await manager.subscribe(client.channel, "t")
        await manager.subscribe(client.channel, "t")  # again: no second position
        await client.next("pos")
        await client.nothing("pos")
        await manager.unsubscribe(client.channel, "t")
        assert manager.topic_position("t") is None
        await manager.publish("t", "nobody")
        await client.nothing()
        await client.close()
        await wait_until(lambda: not manager.channels, TIMEOUT)


async def test_publishing_waits_for_nothing_but_the_number() -> None:
    """Concurrent publishers: one order for everybody."""
    async with two_nodes(history_size=100) as (a, b, server_a, server_b):
        here = await ChannelClient.connect(server_a.port)
        there = await ChannelClient.connect(server_b.port)
        await a.subscribe(here.channel, "t")
        await b.subscribe(there.channel, "t")

        async def burst(manager: ChannelManager, tag: str) -> None:
            for n in range(20):
                await manager.publish("t", f"{tag}{n}")

        await asyncio.gather(burst(a, "a"), burst(b, "b"))
        seen: list[list[Any]] = []
        for client in (here, there):
            got = [await client.next() for _ in range(40)]
            assert [m["off"] for m in got] == list(range(1, 41))
            seen.append([m["data"] for m in got])
        assert seen[0] == seen[1]
        await here.close()
        await there.close()


async def test_a_listener_waits_for_the_next_message() -> None:
    async with ChannelManager(history_size=5) as manager, manager.listen("t") as listener:
        waiting = asyncio.create_task(anext(listener))
        await asyncio.sleep(0)  # it is waiting now
        assert not waiting.done()
        await manager.publish("t", "hello")
        assert (await asyncio.wait_for(waiting, TIMEOUT)).message == "hello"


async def test_a_gap_the_history_no_longer_covers_is_said_to_every_subscriber() -> None:
    manager = ChannelManager(history_size=5)
    async with serve_manager(manager) as server, manager.listen("t") as listener:
        client = await ChannelClient.connect(server.port)
        await manager.subscribe(client.channel, "t")
        await client.next("pos")
        backend = manager.backend
        assert isinstance(backend, InProcessBackend)
        # Twenty this node never heard of, with five kept: 1 to 15 are gone.
        kept = [backend.hub.history.append("t", n, None, size=5, ttl=60) for n in range(20)]
        manager._feeds.offer(kept[-1])
        lost = await client.next("lost")
        assert (lost["reason"], lost["off"]) == ("trimmed", 15)
        assert [(await client.next())["data"] for _ in range(5)] == [15, 16, 17, 18, 19]
        with pytest.raises(HistoryLost):
            await anext(listener)
        assert [(await anext(listener)).message for _ in range(5)] == [15, 16, 17, 18, 19]
        await client.close()


class SlowHistory(InProcessBackend):
    """Reads of the history wait for ``gate`` while it is closed (a slow Redis)."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.gate.set()
        self.reading = asyncio.Event()

    async def history(self, topic: str, after: int | None, *, ttl: float) -> HistoryRange:
        self.reading.set()
        await self.gate.wait()
        return await super().history(topic, after, ttl=ttl)


async def test_live_messages_during_a_replay_are_held_then_sent_once() -> None:
    backend = SlowHistory()
    manager = ChannelManager(backend, history_size=50)
    async with serve_manager(manager) as server, manager.listen("t"):
        for n in range(5):
            await manager.publish("t", n)
        epoch = backend.hub.history.epoch
        client = await ChannelClient.connect(server.port)
        backend.gate.clear()
        backend.reading.clear()
        recovering = asyncio.create_task(
            manager.subscribe(client.channel, "t", since=Position(epoch, 2))
        )
        await backend.reading.wait()  # the replay is reading the history
        for n in range(5, 8):
            await manager.publish("t", n)  # live meanwhile: held for the client
        backend.gate.set()
        await recovering
        got = [await client.next() for _ in range(6)]
        # The replay (2 to 4), then what was held (5 to 7), once each.
        assert [(m["data"], m["off"]) for m in got] == [(n, n + 1) for n in range(2, 8)]
        await client.nothing()
        await client.close()


async def test_what_cannot_be_sent_is_refused_before_it_is_numbered(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with ChannelManager(history_size=5, max_chunked_size=200) as manager:
        with pytest.raises(MessageTooLarge):
            await manager.publish("t", "x" * 300)
        with pytest.raises(ValueError):
            await manager.publish("t", float("nan"))
        assert (await manager.backend.history("t", None, ttl=60)).top == 0

    class NoHistory(InProcessBackend):
        keeps_history = False

    manager = ChannelManager(NoHistory(), history_size=5)
    assert "keeps no history" in caplog.text
    async with serve_manager(manager) as server:
        client = await ChannelClient.connect(server.port)
        await manager.subscribe(client.channel, "t")
        await manager.publish("t", "plain")
        assert "off" not in await client.next()  # plain pub/sub
        await client.close()


async def test_a_node_that_finds_another_epoch_tells_its_subscribers() -> None:
    manager = ChannelManager(history_size=5)
    async with serve_manager(manager) as server, manager.listen("t") as listener:
        client = await ChannelClient.connect(server.port)
        await manager.subscribe(client.channel, "t")
        await client.next("pos")
        await manager.publish("t", "old")
        assert (await client.next())["data"] == "old"
        backend = manager.backend
        assert isinstance(backend, InProcessBackend)
        # The history is lost (as when Redis is flushed), and a message of
        # the new epoch was published that this node did not hear.
        backend.hub.history = MemoryHistory()
        backend.hub.history.append("t", "new", None, size=5, ttl=60)
        manager._feeds.resync()  # what the backend's return triggers
        lost = await client.next("lost")
        assert (lost["reason"], lost["ep"], lost["off"]) == ("epoch", backend.hub.history.epoch, 0)
        assert (await client.next())["data"] == "new"
        assert (await anext(listener)).message == "old"
        with pytest.raises(HistoryLost):
            await anext(listener)
        assert (await anext(listener)).message == "new"
        await client.close()


async def test_a_message_too_large_for_this_node_is_logged_not_fatal(
    caplog: pytest.LogCaptureFixture,
) -> None:
    hub = Hub()
    big = ChannelManager(InProcessBackend(hub), history_size=5, max_chunked_size=1 << 20)
    small = ChannelManager(InProcessBackend(hub), history_size=5, max_chunked_size=500)
    async with big, serve_manager(small) as server:
        client = await ChannelClient.connect(server.port)
        await small.subscribe(client.channel, "t")
        await client.next("pos")
        await big.publish("t", "x" * 1000)
        await big.publish("t", "fits")
        assert (await client.next())["data"] == "fits"
        assert "message 1 not delivered here" in caplog.text
        # A replay of it is skipped the same way.
        epoch = hub.history.epoch
        again = await ChannelClient.connect(server.port)
        await small.subscribe(again.channel, "t", since=Position(epoch, 0))
        assert (await again.next())["data"] == "fits"
        assert "message 1 not replayed" in caplog.text
        await client.close()
        await again.close()
