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
from typing import TYPE_CHECKING, Any

import pytest

from wsserver.plugins.channels import (
    BackendUnavailable,
    ChannelDisconnected,
    ChannelManager,
    ChannelNotFound,
    RedisBackend,
    ReplyTimeout,
)
from wsserver.plugins.channels.redis_backend import _redact
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
