"""Tests for wsserver.plugins.channels.lifecycle: a channel's life on its node.

Over real servers with a WebSocket client speaking the protocol by hand
(``ChannelClient``): ``ch/init`` and what it announces, the registries and
their cleanup (users, sessions, topics, the backend's subjects), nothing
sent before the page is ready, one channel per session.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from websockets.asyncio.client import connect

from wsserver.plugins.channels import (
    Channel,
    ChannelManager,
    ChannelNotFound,
    ChannelView,
    InProcessBackend,
)
from wsserver.plugins.channels.addresses import PLUGIN
from wsserver.server import App, Response, WebSocket

from ._helpers import TIMEOUT, ChannelClient, connected, serve_manager, wait_until

pytestmark = pytest.mark.timeout(30)


async def test_init_announces_the_channel_and_the_limits() -> None:
    manager = ChannelManager(max_chunked_size=5000, chunk_timeout=1.5)
    async with serve_manager(manager) as server:
        client = await ChannelClient.connect(server.port)
        init = client.init
        assert init["channel"].startswith(manager.node_id + ".")
        assert init == {
            "p": "ch",
            "k": "init",
            "channel": init["channel"],
            "user": None,
            "node": manager.node_id,
            "max_chunked_size": 5000,
            "max_chunks": 1024,
            "chunk_timeout_ms": 1500,
        }
        assert manager.channels == [client.channel]
        channel = manager.channel(client.channel)
        assert isinstance(channel, Channel) and not channel.closed
        assert channel.session.plugins[PLUGIN] is channel
        await client.close()
        await wait_until(lambda: not manager.channels)
        assert channel.closed and channel.queue.closed


async def test_users_sessions_and_channels_are_registered_and_cleaned() -> None:
    async def authenticate(websocket: WebSocket) -> Response | None:
        user = websocket.query_params.get("user")
        if user is not None:
            websocket.state.user_id = user
            websocket.state.session_id = websocket.query_params.get("session")
        return None

    manager = ChannelManager()
    backend = manager.backend
    assert isinstance(backend, InProcessBackend)
    app = App(authenticate=authenticate)
    async with serve_manager(manager, app=app) as server:
        tab1 = await ChannelClient.connect(server.port, "/ws?user=ann&session=s1")
        tab2 = await ChannelClient.connect(server.port, "/ws?user=ann&session=s1")
        phone = await ChannelClient.connect(server.port, "/ws?user=ann&session=s2")
        anonymous = await ChannelClient.connect(server.port)
        assert tab1.init["user"] == "ann" and anonymous.init["user"] is None
        ann = {tab1.channel, tab2.channel, phone.channel}
        assert manager.local_user_channels("ann") == ann
        assert await manager.get_user_channels("ann") == ann
        assert manager.registry.user_sessions("ann") == {"s1", "s2"}
        assert manager.registry.session_channels("s1") == {tab1.channel, tab2.channel}
        assert "user:ann" in backend.subjects
        for client in (tab1, tab2):
            await client.close()
        await wait_until(lambda: manager.local_user_channels("ann") == {phone.channel})
        assert manager.registry.user_sessions("ann") == {"s2"}
        await phone.close()
        await wait_until(lambda: "user:ann" not in backend.subjects)
        assert await manager.get_user_channels("ann") == set()
        assert manager.registry.users() == set()
        await anonymous.close()


async def test_nothing_reaches_the_page_before_it_is_ready() -> None:
    manager = ChannelManager()
    async with serve_manager(manager) as server:
        connection = await connect(f"ws://127.0.0.1:{server.port}/ws")
        try:
            first = json.loads(await asyncio.wait_for(connection.recv(), TIMEOUT))
            assert first["k"] == "init" and first["p"] == "rt"
            await wait_until(lambda: bool(manager.channels))
            (channel_id,) = manager.channels
            # Queued meanwhile, sent after ch/init, in order.
            await manager.broadcast("early")
            call = asyncio.create_task(manager.send_and_wait(channel_id, "ask", timeout=TIMEOUT))
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(connection.recv(), 0.2)
            await connection.send('{"p":"ch","k":"ready"}')
            await connection.send('{"p":"ch","k":"ready"}')  # twice: harmless
            received = [json.loads(await connection.recv()) for _ in range(3)]
            assert [m["k"] for m in received] == ["init", "msg", "msg"]
            assert received[0]["channel"] == channel_id
            assert received[1]["data"] == "early"
            question = received[2]
            reply = {"p": "ch", "k": "reply", "response_for": question["rchan"], "ok": True}
            await connection.send(json.dumps({**reply, "data": 7}))
            assert await call == 7
        finally:
            await connection.close()


async def test_a_session_gets_one_channel() -> None:
    manager = ChannelManager()
    session_holder: list[Any] = []

    class View(ChannelView):
        async def on_channel_start(self, channel: Channel) -> None:
            session_holder.append(channel.session)

    async with connected(manager, view=View) as (_, _):
        await wait_until(lambda: bool(session_holder))
        with pytest.raises(ValueError, match="already"):
            manager.attach(session_holder[0])


async def test_topics() -> None:
    manager = ChannelManager()
    backend = manager.backend
    assert isinstance(backend, InProcessBackend)
    async with serve_manager(manager) as server:
        a = await ChannelClient.connect(server.port)
        b = await ChannelClient.connect(server.port)
        await manager.subscribe(a.channel, "room:1")
        await manager.subscribe(b.channel, "room:1")
        await manager.subscribe(b.channel, "room:2")
        assert "topic:room:1" in backend.subjects
        assert manager.topic_subscribers("room:1") == {a.channel, b.channel}
        assert await manager.publish("room:1", "hi", ignore_channel=b.channel) == 1
        assert await a.next() == {"p": "ch", "k": "msg", "data": "hi", "topic": "room:1"}
        await b.nothing()
        await manager.unsubscribe(a.channel, "room:1")
        await manager.unsubscribe(a.channel, "room:1")  # not subscribed: no error
        assert await manager.publish("room:1", "again") == 1
        assert (await b.next())["data"] == "again"
        await a.nothing()
        channel_b = manager.channel(b.channel)
        assert channel_b is not None and channel_b.topics == {"room:1", "room:2"}
        await b.close()
        await wait_until(lambda: "topic:room:1" not in backend.subjects)
        assert channel_b.topics == {"room:1", "room:2"}  # its last ones
        assert manager.registry.topics() == set()
        with pytest.raises(ChannelNotFound):
            await manager.subscribe(b.channel, "room:1")
        with pytest.raises(ValueError, match="topic"):
            await manager.subscribe(a.channel, "")
        with pytest.raises(ValueError, match="topic"):
            await manager.publish("x" * 257, "too long a name")
        await a.close()
