"""Tests for wsserver.plugins.channels.redis_backend, against a real Redis.

The backend alone (pub/sub, order, presence and crashed nodes, outages and
recovery), then channel managers over Redis: two in this process, then two
server processes (``wsserver run --channels-backend redis://...``) where a
broadcast from one reaches a client of the other and a send-and-wait is
answered across them, and the Brython chat with one page on each process.

Redis is Debian's redis-server, started by ``conftest.py``; the outage tests
stop and restart a private one.
"""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot

from wsserver.plugins.channels import (
    BackendUnavailable,
    ChannelDisconnected,
    ChannelManager,
    ChannelNotFound,
    HistoryLost,
    Position,
    RedisBackend,
    ReplyTimeout,
)
from wsserver.plugins.channels.redis_backend import (
    APPEND_SCRIPT,
    RANGE_SCRIPT,
    _redact,
    history_keys,
    topic_presence_key,
)
from wsserver.server import App, Response, Server, WebSocket
from wsserver.server.metric_sources import metric_sources

from ..._live import HTTPClient
from ._helpers import (
    ROOT,
    TIMEOUT,
    ChannelClient,
    NodeProcess,
    RedisServer,
    chat_between_two_pages,
    find_redis_server,
    redis_cluster,
    serve_manager,
    wait_until,
)

if TYPE_CHECKING:
    from playwright.async_api import Browser

# The browser fixture is per module, so the loop is too.
pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(45)]

Received = list[tuple[str, dict[str, Any]]]


def fast(url: str, **options: Any) -> RedisBackend:
    """A backend that notices outages and reconnects quickly (for tests)."""
    options.setdefault("reconnect_base", 0.05)
    options.setdefault("reconnect_max", 0.2)
    options.setdefault("connect_timeout", 1.0)
    options.setdefault("command_timeout", 1.0)
    options.setdefault("heartbeat_interval", 0.5)
    return RedisBackend(url, **options)


@asynccontextmanager
async def started(
    backend: RedisBackend, *subjects: str
) -> AsyncIterator[tuple[RedisBackend, Received, list[bool]]]:
    received: Received = []
    statuses: list[bool] = []
    await backend.start(lambda s, p: received.append((s, p)), subjects, statuses.append)
    try:
        yield backend, received, statuses
    finally:
        await backend.close()


# ---------------------------------------------------------------------------
# Without Redis
# ---------------------------------------------------------------------------


async def test_without_redis_py_the_error_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("redis", "redis.asyncio", "redis.asyncio.retry", "redis.backoff"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ImportError, match=r'pip install "wsserver\[channels\]"'):
        RedisBackend()


async def test_the_package_imports_without_redis_py() -> None:
    code = (
        "import sys; sys.modules['redis'] = None\n"
        "import wsserver.plugins.channels as c\n"
        "m = c.ChannelManager()\n"
        "print(type(m.backend).__name__)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "InProcessBackend"


async def test_passwords_stay_out_of_logs() -> None:
    assert _redact("redis://:s3cret@host:6379/0") == "redis://:***@host:6379/0"
    assert _redact("redis://user:s3cret@host/0") == "redis://user:***@host/0"
    assert _redact("redis://host:6379/0") == "redis://host:6379/0"
    backend = RedisBackend("redis://:s3cret@127.0.0.1:1/0")
    assert "s3cret" not in repr(backend) and "s3cret" not in backend.describe()


@pytest.mark.parametrize(
    "options",
    [
        {"prefix": ""},
        {"prefix": "a b"},
        {"max_pending": 0},
        {"reconnect_base": 0},
        {"heartbeat_interval": float("nan")},
        {"command_timeout": True},
    ],
)
async def test_settings_are_checked(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        RedisBackend(**options)


# ---------------------------------------------------------------------------
# The backend against Redis
# ---------------------------------------------------------------------------


async def test_publish_and_subscribe_between_two_nodes(redis_server: RedisServer) -> None:
    async with (
        started(fast(redis_server.url), "all") as (a, got_a, status_a),
        started(fast(redis_server.url), "all") as (b, got_b, status_b),
    ):
        assert a.available and b.available and status_a == [True] and status_b == [True]
        assert a.cross_process and a.name == "redis"
        # Both nodes subscribe to "all": the count includes the publisher.
        assert await a.publish("all", {"n": 0}, wait=True) == 2
        for n in range(1, 100):
            await a.publish("all", {"n": n})
        await wait_until(lambda: len(got_b) == 100)
        assert [p["n"] for _, p in got_b] == list(range(100))  # in order
        # The publisher receives its own too: the manager skips them.
        await wait_until(lambda: len(got_a) == 100)
        await b.subscribe("topic:x")
        assert await a.publish("topic:x", {"t": 1}, wait=True) == 1
        await wait_until(lambda: ("topic:x", {"t": 1}) in got_b)
        await b.unsubscribe("topic:x")
        assert await a.publish("topic:x", {"t": 2}, wait=True) == 0
        with pytest.raises(TypeError):
            await a.publish("all", {"x": object()})


async def test_prefixes_keep_applications_apart(redis_server: RedisServer) -> None:
    async with (
        started(fast(redis_server.url, prefix="one"), "all") as (a, _, _),
        started(fast(redis_server.url, prefix="two"), "all") as (_, got_b, _),
    ):
        assert await a.publish("all", {}, wait=True) == 1  # only itself
        await asyncio.sleep(0.05)
        assert got_b == []


async def test_presence_spans_nodes_and_forgets_crashed_ones(redis_server: RedisServer) -> None:
    async with (
        started(fast(redis_server.url, prefix="presence")) as (a, _, _),
        started(fast(redis_server.url, prefix="presence")) as (b, _, _),
    ):
        await a.add_presence("ann", f"{a.node_id}.1")
        await b.add_presence("ann", f"{b.node_id}.2")
        assert await a.user_channels("ann") == {f"{a.node_id}.1", f"{b.node_id}.2"}
        # A node that crashed left its channel behind; its key is gone.
        redis_server.command("SADD", "presence:presence:ann", "deadbeef0000.9")
        assert await b.user_channels("ann") == {f"{a.node_id}.1", f"{b.node_id}.2"}
        members = redis_server.command("SMEMBERS", "presence:presence:ann")
        assert b"deadbeef0000.9" not in members  # tidied away
        await a.remove_presence("ann", f"{a.node_id}.1")
        assert await b.user_channels("ann") == {f"{b.node_id}.2"}
        await b.close()  # a clean exit removes its presence
        assert await a.user_channels("ann") == set()
        assert await a.user_channels("nobody") == set()


async def test_start_while_redis_is_down_then_connect(
    private_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    private_redis.stop()
    backend = fast(private_redis.url)
    with caplog.at_level(logging.WARNING, "wsserver.plugins.channels"):
        async with started(backend, "all") as (_, got, statuses):
            assert not backend.available and statuses == []
            assert "is unavailable" in caplog.text
            with pytest.raises(BackendUnavailable):
                await backend.publish("all", {})
            with pytest.raises(BackendUnavailable):
                await backend.user_channels("ann")
            await backend.add_presence("ann", f"{backend.node_id}.1")  # kept for later
            private_redis.start()
            await wait_until(lambda: backend.available)
            assert statuses == [True]
            assert "is back after" in caplog.text
            assert await backend.publish("all", {"n": 1}, wait=True) == 1
            await wait_until(lambda: bool(got))
            assert await backend.user_channels("ann") == {f"{backend.node_id}.1"}


async def test_an_outage_is_survived_and_everything_resubscribed(
    private_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    async with (
        started(fast(private_redis.url), "all") as (a, _, status_a),
        started(fast(private_redis.url), "all") as (b, got_b, status_b),
    ):
        await b.subscribe("topic:t")
        await b.add_presence("ann", f"{b.node_id}.1")
        with caplog.at_level(logging.WARNING, "wsserver.plugins.channels"):
            private_redis.stop()
            await wait_until(lambda: not a.available and not b.available)
            assert status_a == [True, False] and status_b == [True, False]
            with pytest.raises(BackendUnavailable):
                await a.publish("all", {"lost": True})
            with pytest.raises(BackendUnavailable):
                await a.publish("all", {"lost": True})
            assert a.dropped >= 2 and a.outages == 1
            # The same figures, summed over the backends, for the metrics.
            readings = {s.name: s.read() for s in metric_sources()}
            assert readings["wsserver_channels_redis_outages"] >= a.outages + b.outages
            assert readings["wsserver_channels_redis_dropped"] >= a.dropped
            # Logged once per outage, not once per message.
            assert caplog.text.count("not delivering to other processes") == 1
            await b.subscribe("topic:during")  # recorded, applied on reconnection
            private_redis.start()  # empty: no persistence
            await wait_until(lambda: a.available and b.available)
        assert status_b == [True, False, True]
        for subject in ("all", "topic:t", "topic:during"):
            reached = await a.publish(subject, {"s": subject}, wait=True)
            assert reached is not None and reached >= 1
        await wait_until(lambda: len(got_b) == 3)
        assert [p["s"] for _, p in got_b] == ["all", "topic:t", "topic:during"]
        # The presence was written again into the new, empty Redis.
        assert await a.user_channels("ann") == {f"{b.node_id}.1"}


# ---------------------------------------------------------------------------
# Channel managers over Redis, in this process
# ---------------------------------------------------------------------------


@asynccontextmanager
async def two_managers(
    url: str, **options: Any
) -> AsyncIterator[tuple[ChannelManager, ChannelManager, Server, Server]]:
    async def authenticate(websocket: WebSocket) -> Response | None:
        websocket.state.user_id = websocket.query_params.get("user")
        return None

    a = ChannelManager(fast(url), **options)
    b = ChannelManager(fast(url), **options)
    async with (
        serve_manager(a, app=App(authenticate=authenticate)) as server_a,
        serve_manager(b, app=App(authenticate=authenticate)) as server_b,
    ):
        yield a, b, server_a, server_b


async def test_managers_reach_each_others_channels(redis_server: RedisServer) -> None:
    async with two_managers(redis_server.url) as (a, b, server_a, server_b):
        here = await ChannelClient.connect(server_a.port, "/ws?user=ann")
        there = await ChannelClient.connect(server_b.port, "/ws?user=ann")
        await b.subscribe(there.channel, "news")
        assert await a.broadcast("to all") == 1
        assert (await here.next())["data"] == "to all"
        assert (await there.next())["data"] == "to all"
        await here.nothing()  # once, not also through Redis
        assert await a.send_message(there.channel, "direct") is True
        assert (await there.next())["data"] == "direct"
        await a.send_message_to_user("ann", "to ann", ignore_channel=here.channel)
        assert (await there.next())["data"] == "to ann"
        await a.publish("news", "headline")
        assert (await there.next())["topic"] == "news"
        assert await a.get_user_channels("ann") == {here.channel, there.channel}
        call = asyncio.create_task(a.send_and_wait(there.channel, "q", timeout=TIMEOUT))
        await there.answer({"answer": 42})
        assert await call == {"answer": 42}
        # A timeout is passed on: the other node stops waiting.
        with pytest.raises(ReplyTimeout):
            await a.send_and_wait(there.channel, "slow", timeout=0.3)
        channel = b.channel(there.channel)
        assert channel is not None
        await wait_until(lambda: channel.pending_requests == 0)
        # A disconnect fails the wait at once, across processes too.
        call = asyncio.create_task(a.send_and_wait(there.channel, "last", timeout=30))
        await there.next("msg", lambda m: m["data"] == "last")
        begun = time.monotonic()
        await there.close()
        with pytest.raises(ChannelDisconnected):
            await asyncio.wait_for(call, TIMEOUT)
        assert time.monotonic() - begun < 1.5
        with pytest.raises(ChannelNotFound):
            await a.send_and_wait("deadbeef0000.x", "q", timeout=TIMEOUT)
        # The other node forgets the channel's presence soon after.
        async with asyncio.timeout(TIMEOUT):
            while await a.get_user_channels("ann") != {here.channel}:
                await asyncio.sleep(0.01)
        await here.close()


async def test_local_delivery_survives_an_outage_and_cross_node_delivery_resumes(
    private_redis: RedisServer,
) -> None:
    async with two_managers(private_redis.url) as (a, b, server_a, server_b):
        here = await ChannelClient.connect(server_a.port)
        there = await ChannelClient.connect(server_b.port)
        await a.broadcast("before")
        assert (await there.next())["data"] == "before"
        await here.next()
        # A request across nodes is waiting when Redis goes away: it fails
        # at once, not at its timeout.
        call = asyncio.create_task(a.send_and_wait(there.channel, "q", timeout=30))
        await there.next("msg", lambda m: "rchan" in m)
        private_redis.stop()
        with pytest.raises(BackendUnavailable):
            await asyncio.wait_for(call, TIMEOUT)
        await wait_until(lambda: not a.backend.available and not b.backend.available)
        # Local delivery goes on.
        assert await a.broadcast("during") == 1
        assert (await here.next())["data"] == "during"
        await there.nothing()  # at most once: lost, never repeated later
        assert await a.send_message(there.channel, "lost") is False
        assert await a.get_user_channels("nobody") == set()
        private_redis.start()
        await wait_until(lambda: a.backend.available and b.backend.available)
        await a.broadcast("after")
        assert (await there.next())["data"] == "after"
        assert (await here.next())["data"] == "after"
        call = asyncio.create_task(a.send_and_wait(there.channel, "again", timeout=TIMEOUT))
        await there.answer("yes")
        assert await call == "yes"
        await here.close()
        await there.close()


# ---------------------------------------------------------------------------
# Two server processes
# ---------------------------------------------------------------------------


async def post(port: int, target: str, body: Any) -> Any:
    client = await HTTPClient.open(port)
    try:
        data = json.dumps(body).encode()
        client.writer.write(
            f"POST {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n".encode()
            + data
        )
        await client.writer.drain()
        raw = await asyncio.wait_for(client.reader.read(), TIMEOUT)
    finally:
        await client.close()
    head, _, payload = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    return json.loads(payload)


async def test_two_server_processes_deliver_to_each_other(redis_server: RedisServer) -> None:
    async with NodeProcess(redis_server.url) as one, NodeProcess(redis_server.url) as two:
        client = await ChannelClient.connect(two.port)
        answer = await client.request("whoami")
        node_two = answer["data"]["node"]
        assert client.channel.startswith(node_two + ".")
        # A broadcast made by process one reaches process two's client.
        result = await post(one.port, "/broadcast", {"from": "one"})
        assert result == {"local": 0}
        assert (await client.next())["data"] == {"from": "one"}
        # A send-and-wait from process one, answered by process two's client.
        ask = asyncio.create_task(post(one.port, f"/ask?channel={client.channel}", "ping?"))
        question = await client.answer("pong!")
        assert question["data"] == "ping?"
        assert await ask == {"answer": "pong!"}
        # And an error crosses the processes as its own type.
        ask = asyncio.create_task(post(one.port, "/ask?channel=deadbeef0000.x", "?"))
        assert (await ask)["error"] == "ChannelNotFound"
        await client.close()
    assert "Traceback" not in "".join(one.log + two.log)


async def test_the_chat_with_a_page_on_each_of_two_processes(
    browser: Browser, redis_server: RedisServer
) -> None:
    async with (
        NodeProcess(redis_server.url, "examples.chat:app") as one,
        NodeProcess(redis_server.url, "examples.chat:app") as two,
    ):
        await chat_between_two_pages(browser, one.port, two.port)
    assert "Traceback" not in "".join(one.log + two.log)


# ---------------------------------------------------------------------------
# Topic history on Redis Streams: offsets, outages, lost data
# ---------------------------------------------------------------------------


async def topic_messages(client: ChannelClient, count: int) -> list[dict[str, Any]]:
    """The next ``count`` topic messages of ``client``, in arrival order."""
    got: list[dict[str, Any]] = []
    async with asyncio.timeout(4 * TIMEOUT):
        while len(got) < count:
            message = json.loads(await client.connection.recv())
            assert message["k"] != "lost", message
            if message["k"] == "msg":
                got.append(message)
    return got


async def test_history_numbers_and_keeps_topic_messages(redis_server: RedisServer) -> None:
    backend = fast(redis_server.url, prefix="numbers")
    async with started(backend, "topic:t") as (b, received, _):
        # Queued, not awaited: numbered in the next round trip.
        assert await b.append("topic:t", "t", {"n": 1}, None, size=3, ttl=60) is None
        for n in range(2, 6):
            await b.append("topic:t", "t", {"n": n}, "c1", size=3, ttl=60)
        # Every node on the subject gets each with its offset, this one too
        # (twice here: its own result, and Redis's PUBLISH).
        await wait_until(lambda: len(received) == 10)
        assert sorted({p["off"] for _, p in received}) == [1, 2, 3, 4, 5]
        (epoch,) = {p["ep"] for _, p in received}
        found = await b.history("t", 0, ttl=60)
        # Exactly the last three (MAXLEN without ~), in order, one epoch.
        assert (found.epoch, found.top) == (epoch, 5)
        assert [(e.offset, e.message["n"], e.ignore) for e in found.entries] == [
            (3, 3, "c1"),
            (4, 4, "c1"),
            (5, 5, "c1"),
        ]
        assert [e.offset for e in (await b.history("t", 4, ttl=60)).entries] == [5]
        position = await b.history("t", None, ttl=60)
        assert (position.top, position.entries) == (5, ())
        # A topic never published has an epoch at offset 0 already.
        assert (await b.history("fresh", 0, ttl=60)).top == 0


async def test_history_expires_by_age_on_the_redis_clock(redis_server: RedisServer) -> None:
    async with started(fast(redis_server.url, prefix="ages")) as (b, _, _):
        await b.append("topic:t", "t", "old", None, size=10, ttl=0.2)
        await wait_until(lambda: b.history_pending == 0)
        await asyncio.sleep(0.3)  # the age is the point: older than the ttl
        await b.append("topic:t", "t", "new", None, size=10, ttl=0.2)
        await wait_until(lambda: b.history_pending == 0)
        found = await b.history("t", 0, ttl=0.2)
        assert [e.message for e in found.entries] == ["new"] and found.top == 2


async def test_an_outage_loses_no_topic_message_on_either_node(
    persistent_redis: RedisServer,
) -> None:
    count = 1000
    options = {"history_size": 2 * count}
    async with two_managers(persistent_redis.url, **options) as (a, b, server_a, server_b):
        here = await ChannelClient.connect(server_a.port)
        there = await ChannelClient.connect(server_b.port)
        await a.subscribe(here.channel, "feed")
        await b.subscribe(there.channel, "feed")
        async with b.listen("feed") as listener:
            assert await a.publish("feed", "before") == 1
            assert [m["data"] for m in await topic_messages(there, 1)] == ["before"]
            await topic_messages(here, 1)
            persistent_redis.stop()
            await wait_until(lambda: not a.backend.available and not b.backend.available)
            # Both nodes publish while Redis is away: it all waits in their outboxes.
            for n in range(count):
                publisher = a if n % 10 else b
                assert await publisher.publish("feed", n) == 1  # its subscriber, later
            persistent_redis.start()
            want = list(range(count))
            for client in (here, there):
                got = await topic_messages(client, count)
                # Every message once; one order for everybody, offsets 2, 3...
                assert sorted(m["data"] for m in got) == want
                assert [m["off"] for m in got] == list(range(2, count + 2))
                assert len({m["ep"] for m in got}) == 1
                order = [m["data"] for m in got]
                # What one node published keeps its order.
                assert [n for n in order if n % 10] == [n for n in want if n % 10]
                assert [n for n in order if not n % 10] == [n for n in want if not n % 10]
            heard = []
            async for item in listener:
                heard.append(item.message)
                if len(heard) == count + 1:
                    break
            assert heard[1:] == order
            await here.nothing()
            await there.nothing()
        await here.close()
        await there.close()


async def test_a_node_that_missed_messages_reads_them_from_the_stream(
    persistent_redis: RedisServer,
) -> None:
    """The subscriber's node loses Redis while the publisher's does not."""
    async with two_managers(persistent_redis.url, history_size=100) as (a, b, _, server_b):
        there = await ChannelClient.connect(server_b.port)
        await b.subscribe(there.channel, "feed")
        await a.publish("feed", 0)
        await topic_messages(there, 1)
        # Kill b's connections only: a keeps publishing through Redis.
        persistent_redis.command("CLIENT", "KILL", "TYPE", "pubsub")
        for n in range(1, 51):
            await a.publish("feed", n)
        got = await topic_messages(there, 50)
        assert [m["data"] for m in got] == list(range(1, 51))
        await there.nothing()
        await there.close()


async def test_a_flushed_redis_is_a_new_epoch_not_a_silent_gap(redis_server: RedisServer) -> None:
    async with two_managers(redis_server.url, history_size=10) as (a, b, _, server_b):
        there = await ChannelClient.connect(server_b.port)
        await b.subscribe(there.channel, "flush")
        async with b.listen("flush") as listener:
            await a.publish("flush", "one")
            one = await there.next()
            assert (one["data"], one["off"]) == ("one", 1)
            redis_server.command("FLUSHALL")
            await a.publish("flush", "two")
            lost = await there.next("lost")
            assert lost["reason"] == "epoch" and lost["ep"] != one["ep"]
            two = await there.next()
            assert (two["data"], two["off"], two["ep"]) == ("two", 1, lost["ep"])
            assert (await anext(listener)).message == "one"
            with pytest.raises(HistoryLost) as caught:
                await anext(listener)
            assert caught.value.reason == "epoch"
            assert (await anext(listener)).message == "two"  # and on it goes
        # A page that comes back with the old epoch is told, not replayed.
        again = await ChannelClient.connect(server_b.port)
        await b.subscribe(again.channel, "flush", since=Position(one["ep"], 1))
        assert (await again.next("lost"))["reason"] == "epoch"
        await again.close()
        await there.close()


async def test_a_full_outbox_refuses_the_publisher(private_redis: RedisServer) -> None:
    manager = ChannelManager(fast(private_redis.url, max_outbox=3), history_size=10)
    async with manager:
        private_redis.stop()
        await wait_until(lambda: not manager.backend.available)
        for n in range(3):
            assert await manager.publish("t", n) == 0
        with pytest.raises(BackendUnavailable):
            await manager.publish("t", "one too many")
        private_redis.start()
        await wait_until(lambda: manager.backend.available)
        async with asyncio.timeout(TIMEOUT):
            while (await manager.backend.history("t", 0, ttl=60)).top < 3:
                await asyncio.sleep(0.01)
        found = await manager.backend.history("t", 0, ttl=60)
        assert [e.message for e in found.entries] == [0, 1, 2]


async def test_a_stray_cancellation_is_a_lost_connection_not_the_end(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Python 3.11's asyncio.timeout (inside redis-py) can cancel a later await
    of the task it timed; the backend's tasks must survive that."""
    async with started(fast(redis_server.url, prefix="stray"), "all") as (b, got, statuses):
        (reader,) = [t for t in asyncio.all_tasks() if t.get_name() == "redis-reader"]
        reader.cancel()  # as a stray cancellation would: nobody stops the backend
        await wait_until(lambda: statuses == [True, False, True])
        assert b.outages == 1 and "stray cancellation" in caplog.text
        await b.publish("all", {"n": 1}, wait=True)
        # And it still receives (its own node's subject, from another node).
        async with started(fast(redis_server.url, prefix="stray")) as (other, _, _):
            await other.publish(f"node:{b.node_id}", {"hello": 1}, wait=True)
        await wait_until(lambda: (f"node:{b.node_id}", {"hello": 1}) in got)


async def test_live_messages_during_a_replay_come_once_and_in_order(
    redis_server: RedisServer,
) -> None:
    async with two_managers(redis_server.url, history_size=500) as (a, b, _, server_b):
        for n in range(100):
            await a.publish("busy", n)
        epoch = (await a.backend.history("busy", None, ttl=60)).epoch
        # Another subscriber keeps b's feed of the topic live meanwhile.
        async with b.listen("busy"):
            client = await ChannelClient.connect(server_b.port)

            async def publish_more() -> None:
                for n in range(100, 200):
                    await a.publish("busy", n)

            more = asyncio.create_task(publish_more())
            await b.subscribe(client.channel, "busy", since=Position(epoch, 50))
            await more
            got = await topic_messages(client, 150)
            assert [m["data"] for m in got] == list(range(50, 200))
            await client.nothing()
            await client.close()


async def test_a_recovery_while_redis_is_away_waits_and_completes_when_it_returns(
    persistent_redis: RedisServer,
) -> None:
    async with two_managers(persistent_redis.url, history_size=5) as (a, b, _, server_b):
        for n in range(3):
            await a.publish("away", n)
        epoch = (await a.backend.history("away", None, ttl=60)).epoch
        client = await ChannelClient.connect(server_b.port)
        persistent_redis.stop()
        await wait_until(lambda: not b.backend.available)
        # Returns at once; the recovery waits in the background, nothing sent.
        await b.subscribe(client.channel, "away", since=Position(epoch, 1))
        await wait_until(lambda: b.waiting_recoveries == 1)
        await client.nothing("lost")
        persistent_redis.start()  # with its data: the same epoch
        got = [await client.next(), await client.next()]
        assert [(m["data"], m["ep"], m["off"]) for m in got] == [(1, epoch, 2), (2, epoch, 3)]
        assert b.waiting_recoveries == 0
        await wait_until(lambda: a.backend.available)
        await a.publish("away", "after")
        after = await client.next()
        assert (after["data"], after["off"]) == ("after", 4)
        await client.nothing("lost")
        await client.nothing()
        await client.close()


async def test_a_listener_recovering_while_redis_is_away_waits_too(
    persistent_redis: RedisServer,
) -> None:
    async with two_managers(persistent_redis.url, history_size=5) as (a, b, _, _):
        for n in range(2):
            await a.publish("away", n)
        epoch = (await a.backend.history("away", None, ttl=60)).epoch
        persistent_redis.stop()
        await wait_until(lambda: not b.backend.available)
        async with b.listen("away", since=Position(epoch, 0)) as listener:
            assert b.waiting_recoveries == 1
            persistent_redis.start()
            async with asyncio.timeout(TIMEOUT):
                got = [await anext(listener), await anext(listener)]
            assert [(m.message, m.position) for m in got] == [
                (0, Position(epoch, 1)),
                (1, Position(epoch, 2)),
            ]


async def test_a_recovery_waits_within_its_bound_then_says_unavailable(
    private_redis: RedisServer,
) -> None:
    async with two_managers(private_redis.url, history_size=5, recover_wait=0.2) as (
        a,
        b,
        _,
        server_b,
    ):
        await a.publish("away", "kept")
        epoch = (await a.backend.history("away", None, ttl=60)).epoch
        client = await ChannelClient.connect(server_b.port)
        private_redis.stop()
        await wait_until(lambda: not b.backend.available)
        await b.subscribe(client.channel, "away", since=Position(epoch, 0))
        # Redis stays away past recover_wait: the page is told.
        lost = await client.next("lost")
        assert lost["reason"] == "unavailable" and "ep" not in lost
        assert b.waiting_recoveries == 0
        private_redis.start()  # empty: a new epoch
        await wait_until(lambda: a.backend.available and b.backend.available)
        await wait_until(lambda: b.topic_position("away") is not None)
        await a.publish("away", "after")
        assert (await client.next())["data"] == "after"
        await client.close()


async def test_recoveries_beyond_the_count_are_told_unavailable_at_once(
    persistent_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    async with two_managers(persistent_redis.url, history_size=5, max_waiting_recoveries=1) as (
        a,
        b,
        _,
        server_b,
    ):
        await a.publish("away", "kept")
        epoch = (await a.backend.history("away", None, ttl=60)).epoch
        first = await ChannelClient.connect(server_b.port)
        second = await ChannelClient.connect(server_b.port)
        persistent_redis.stop()
        await wait_until(lambda: not b.backend.available)
        await b.subscribe(first.channel, "away", since=Position(epoch, 0))
        await b.subscribe(second.channel, "away", since=Position(epoch, 0))
        lost = await second.next("lost")
        assert lost["reason"] == "unavailable"
        assert "recoveries are waiting for the backend" in caplog.text
        persistent_redis.start()
        assert (await first.next())["data"] == "kept"
        await first.nothing("lost")
        await first.close()
        await second.close()


async def test_a_waiting_recovery_of_a_channel_that_left_is_dropped(
    persistent_redis: RedisServer,
) -> None:
    async with two_managers(persistent_redis.url, history_size=5) as (a, b, _, server_b):
        await a.publish("away", "kept")
        epoch = (await a.backend.history("away", None, ttl=60)).epoch
        client = await ChannelClient.connect(server_b.port)
        persistent_redis.stop()
        await wait_until(lambda: not b.backend.available)
        await b.subscribe(client.channel, "away", since=Position(epoch, 0))
        await b.unsubscribe(client.channel, "away")
        persistent_redis.start()
        await wait_until(lambda: b.waiting_recoveries == 0)
        await client.nothing()
        await client.nothing("lost")
        await client.close()


async def test_an_append_sent_again_is_not_numbered_twice(redis_server: RedisServer) -> None:
    async with started(fast(redis_server.url, prefix="again"), "topic:t") as (b, _, _):
        await b.append("topic:t", "t", "once", None, size=10, ttl=60)
        await wait_until(lambda: b.history_pending == 0)
        # The same append again, as after a connection that broke before its
        # answer came back: same node, same sequence number.
        b._append_seq -= 1
        await b.append("topic:t", "t", "once", None, size=10, ttl=60)
        await wait_until(lambda: b.history_pending == 0)
        await b.append("topic:t", "t", "next", None, size=10, ttl=60)
        await wait_until(lambda: b.history_pending == 0)
        found = await b.history("t", 0, ttl=60)
        assert [(e.offset, e.message) for e in found.entries] == [(1, "once"), (2, "next")]


async def test_a_message_redis_refuses_is_logged_and_the_rest_go_on(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    async with started(fast(redis_server.url, prefix="refused"), "topic:t") as (b, _, _):
        await b.append("topic:bad", "bad", "kept", None, size=10, ttl=60)
        await wait_until(lambda: b.history_pending == 0)
        # Another program wrote over the topic's stream.
        redis_server.command("SET", "refused:hist:{t:bad}", "not-a-stream")
        await b.append("topic:bad", "bad", "x", None, size=10, ttl=60)
        await b.append("topic:t", "t", "fine", None, size=10, ttl=60)
        await wait_until(lambda: b.history_pending == 0)
        assert "Redis refused a message of topic 'bad'" in caplog.text and b.dropped == 1
        assert [e.message for e in (await b.history("t", 0, ttl=60)).entries] == ["fine"]
        assert b.available


# -- Redis Cluster -------------------------------------------------------------------

#: Topics whose braces could break a naive hash tag, and plain ones.
ODD_TOPICS = ("room:lobby", "}x", "a{b}c", "{", "{}", "é", "x" * 256)


async def test_a_topics_keys_share_one_slot() -> None:
    for topic in ODD_TOPICS:
        meta, stream = history_keys("wsserver", topic)
        presence = topic_presence_key("wsserver", topic)
        assert key_slot(meta.encode()) == key_slot(stream.encode()) == key_slot(presence.encode())
    # One slot per topic, not one for every topic: topics spread over the cluster.
    slots = {key_slot(history_keys("wsserver", f"room:{n}")[0].encode()) for n in range(50)}
    assert len(slots) > 10
    assert history_keys("app", "room:lobby") == (
        "app:hist-meta:{t:room:lobby}",
        "app:hist:{t:room:lobby}",
    )


@pytest.mark.parametrize("prefix", ["my{app}", "a{", "b}"])
async def test_a_prefix_with_a_brace_is_refused(prefix: str) -> None:
    with pytest.raises(ValueError, match="without spaces or braces"):
        RedisBackend("redis://127.0.0.1:1/0", prefix=prefix)


async def test_the_history_scripts_run_on_a_redis_cluster(tmp_path: Path) -> None:
    """A real three-node cluster (redis-server --cluster-enabled, redis-cli
    --cluster create): each topic's script runs on the node of its slot."""
    executable = find_redis_server()
    assert executable is not None
    with redis_cluster(executable, tmp_path) as ports:
        client = RedisCluster(host="127.0.0.1", port=ports[0])
        try:
            owners = set()
            for topic in ODD_TOPICS:
                meta, stream = history_keys("wsserver", topic)
                for n in range(3):
                    payload = json.dumps({"topic": topic, "msg": n, "ignore": None})
                    epoch, offset = await client.eval(
                        APPEND_SCRIPT, 2, meta, stream,
                        "epoch-a", 10, 60_000, 86_400_000, payload, "wsserver:t", "node1", n + 1,
                    )  # fmt: skip
                    assert (epoch, offset) == (b"epoch-a", n + 1)
                found = await client.eval(
                    RANGE_SCRIPT, 2, meta, stream, "epoch-b", 1, 60_000, 86_400_000, "0-2"
                )
                assert found[:2] == [b"epoch-a", b"3"]
                assert [json.loads(d)["msg"] for d in found[3::2]] == [1, 2]
                owner = client.get_node_from_key(meta)
                assert owner is not None
                owners.add(owner.port)
            assert len(owners) > 1  # the topics live on different nodes
            # The layout before hash tags could not run there at all.
            with pytest.raises(Exception, match="all keys must map to the same key slot"):
                await client.eval(
                    RANGE_SCRIPT, 2, "wsserver:hist-meta:room", "wsserver:hist:room",
                    "e", -1, 1, 1, "0-0",
                )  # fmt: skip
        finally:
            await client.aclose()
