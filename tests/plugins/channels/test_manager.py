"""Tests for wsserver.plugins.channels.manager: the ChannelManager end to end.

First over real servers with a WebSocket client speaking the protocol by
hand (``ChannelClient``), so that every message on the wire is visible:
``ch/init``, the registries and their cleanup, custom handlers and their
answers, broadcast / send / send-to-user / topics, ``send_and_wait`` (its
timeout, its failure at once on disconnect), chunked messages both ways.
Then two managers in one process joined by a ``Hub``: every operation
across nodes.  Then headless Chromium running ``channels.js``, and the
chat and ticker examples.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from examples import chat, ticker
from wsserver.plugins.channels import (
    Channel,
    ChannelDisconnected,
    ChannelManager,
    ChannelNotFound,
    ChannelView,
    HandlerError,
    Hub,
    Identity,
    InProcessBackend,
    ReplyError,
    ReplyTimeout,
    channels_asset,
    channels_script_tag,
    managers,
)
from wsserver.plugins.channels.manager import PLUGIN
from wsserver.plugins.runtime import script_tag
from wsserver.plugins.runtime.assets import asset_path
from wsserver.plugins.runtime.messages import MalformedMessage, MessageTooLarge, encode
from wsserver.protocol import ProtocolSettings
from wsserver.server import (
    App,
    HTMLResponse,
    Request,
    Response,
    Server,
    ServerConfig,
    WebSocket,
)

from ..._live import http_get
from .._browser import RECORDER, WAIT, wait_status
from ._helpers import TIMEOUT, ChannelClient, chat_between_two_pages, serve_manager, wait_until

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page

# One browser for the module (tests/plugins/conftest.py), so one loop.
pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(30)]


@asynccontextmanager
async def connected(
    manager: ChannelManager, **options: Any
) -> AsyncIterator[tuple[Server, ChannelClient]]:
    """``serve_manager(manager, **options)`` and one client connected to it."""
    async with serve_manager(manager, **options) as server:
        client = await ChannelClient.connect(server.port)
        try:
            yield server, client
        finally:
            await client.close()


def small_frames(limit: int = 65536) -> dict[str, Any]:
    """Server settings with a small message limit, so that chunking starts early."""
    return {"protocol": ProtocolSettings(max_message_size=limit)}


async def closed_with(client: ChannelClient) -> int | None:
    with pytest.raises(ConnectionClosed):
        while True:
            await asyncio.wait_for(client.connection.recv(), TIMEOUT)
    return client.connection.close_code


# ---------------------------------------------------------------------------
# Connections, init, registries
# ---------------------------------------------------------------------------


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


async def test_identify_can_be_overridden() -> None:
    class View(ChannelView):
        def identify(self, websocket: WebSocket) -> Identity:
            return Identity(user_id="fixed", session_id="sess")

    manager = ChannelManager()
    async with connected(manager, view=View) as (_, client):
        assert client.init["user"] == "fixed"
        assert manager.registry.session_channels("sess") == {client.channel}


async def test_hooks_run_around_the_channel() -> None:
    seen: list[tuple[str, str, bool]] = []

    class View(ChannelView):
        async def on_channel_start(self, channel: Channel) -> None:
            seen.append(("start", channel.id, channel.closed))

        async def on_channel_end(self, channel: Channel) -> None:
            seen.append(("end", channel.id, channel.closed))

    manager = ChannelManager()
    async with serve_manager(manager, view=View) as server:
        client = await ChannelClient.connect(server.port)
        await client.close()
        await wait_until(lambda: len(seen) == 2)
    assert seen == [("start", client.channel, False), ("end", client.channel, True)]


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


async def test_a_view_needs_a_manager() -> None:
    app = App()
    app.add_websocket_route("/bare", ChannelView)
    async with serve_manager(ChannelManager(), app=app) as server:
        client = await ChannelClient.connect(server.port)  # the installed view works
        await client.close()
        with pytest.raises(ConnectionClosed) as caught:
            await ChannelClient.connect(server.port, "/bare")
        assert caught.value.rcvd is not None and caught.value.rcvd.code == 1011
    view = ChannelView.__new__(ChannelView)
    with pytest.raises(RuntimeError, match="manager is not set"):
        view.get_manager()


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


# ---------------------------------------------------------------------------
# Custom messages
# ---------------------------------------------------------------------------


async def test_a_handlers_return_value_is_the_answer() -> None:
    manager = ChannelManager()

    @manager.handler("add")
    def add(channel: Channel, data: Any) -> Any:
        return {"sum": sum(data), "channel": channel.id}

    @manager.handler("later")
    async def later(channel: Channel, data: Any) -> Any:
        await asyncio.sleep(0.01)
        return data * 2

    async with connected(manager) as (_, client):
        answer = await client.request("add", [1, 2, 3])
        assert answer == {
            "p": "ch",
            "k": "res",
            "response_for": "r1",
            "ok": True,
            "data": {"sum": 6, "channel": client.channel},
        }
        assert (await client.request("later", "ab"))["data"] == "abab"
        # Without rchan the handler runs and nothing is answered.
        await client.send("custom", kind="later", data="x")
        await client.nothing("res")


async def test_handler_failures_are_answered_without_leaking(
    caplog: pytest.LogCaptureFixture,
) -> None:
    manager = ChannelManager()

    @manager.handler("refuse")
    def refuse(channel: Channel, data: Any) -> Any:
        raise HandlerError("not in this room")

    @manager.handler("bug")
    def bug(channel: Channel, data: Any) -> Any:
        raise KeyError("secret internals")

    @manager.handler("bad")
    def bad(channel: Channel, data: Any) -> Any:
        raise MalformedMessage("data must be a list")

    @manager.handler("weird")
    def weird(channel: Channel, data: Any) -> Any:
        return {1, 2}  # not JSON

    async with connected(manager) as (_, client):
        refused = await client.request("refuse")
        assert refused["ok"] is False
        assert refused["error"] == {"name": "HandlerError", "message": "not in this room"}
        with caplog.at_level(logging.ERROR, "wsserver.plugins.channels"):
            broken = await client.request("bug")
        assert broken["error"] == {"name": "InternalError", "message": "internal error"}
        assert "secret internals" in caplog.text  # logged, not sent
        assert (await client.request("bad"))["error"]["name"] == "MalformedMessage"
        assert (await client.request("weird"))["error"]["name"] == "InternalError"
        unknown = await client.request("nope")
        assert unknown["error"] == {"name": "UnknownKind", "message": "no handler for 'nope'"}
        # The connection survives all of it.
        assert (await client.request("refuse"))["ok"] is False


@pytest.mark.parametrize(
    "fields",
    [
        {"data": 1},
        {"kind": 5},
        {"kind": "Bad Kind"},
        {"kind": "ok", "rchan": 7},
        {"kind": "ok", "rchan": "x" * 65},
        {"kind": "ok", "rchan": ""},
    ],
)
async def test_malformed_custom_messages_close_with_1007(fields: dict[str, Any]) -> None:
    async with serve_manager(ChannelManager()) as server:
        client = await ChannelClient.connect(server.port)
        await client.send("custom", **fields)
        assert await closed_with(client) == 1007


async def test_handlers_run_in_order_and_may_wait_for_their_own_page() -> None:
    manager = ChannelManager()
    order: list[str] = []

    @manager.handler("slow")
    async def slow(channel: Channel, data: Any) -> Any:
        # Asks the page and waits: the receive loop must still read the answer.
        answer = await manager.send_and_wait(channel.id, "question", timeout=TIMEOUT)
        order.append(f"slow:{answer}")
        return answer

    @manager.handler("fast")
    def fast(channel: Channel, data: Any) -> Any:
        order.append("fast")
        return "fast"

    async with connected(manager) as (_, client):
        await client.send("custom", kind="slow", rchan="a")
        await client.send("custom", kind="fast", rchan="b")
        question = await client.answer("yes")
        assert question["data"] == "question"
        first = await client.next("res")
        second = await client.next("res")
        assert (first["response_for"], second["response_for"]) == ("a", "b")
        assert order == ["slow:yes", "fast"]


async def test_handler_registration_rules() -> None:
    manager = ChannelManager()

    def handler(channel: Channel, data: Any) -> Any:
        return None

    assert manager.handler("k", handler) is handler
    with pytest.raises(ValueError, match="already"):
        manager.add_handler("k", handler)
    manager.add_handler("k", handler, replace=True)
    with pytest.raises(ValueError):
        manager.add_handler("Not A Name", handler)
    assert manager.remove_handler("k") is handler
    assert manager.remove_handler("k") is None


# ---------------------------------------------------------------------------
# Broadcast, send, send to user, topics
# ---------------------------------------------------------------------------


async def test_broadcast_send_and_send_to_user() -> None:
    async def authenticate(websocket: WebSocket) -> Response | None:
        websocket.state.user = websocket.query_params.get("user")
        return None

    manager = ChannelManager()
    async with serve_manager(manager, app=App(authenticate=authenticate)) as server:
        a1 = await ChannelClient.connect(server.port, "/ws?user=ann")
        a2 = await ChannelClient.connect(server.port, "/ws?user=ann")
        b = await ChannelClient.connect(server.port, "/ws?user=bob")
        assert await manager.broadcast({"all": 1}, ignore_channel=a1.channel) == 2
        for client in (a2, b):
            assert await client.next() == {"p": "ch", "k": "msg", "data": {"all": 1}}
        await a1.nothing()
        assert await manager.send_message(b.channel, "just bob") is True
        assert (await b.next())["data"] == "just bob"
        assert await manager.send_message_to_user("ann", "ann only", ignore_channel=a2.channel) == 1
        assert (await a1.next())["data"] == "ann only"
        await a2.nothing()
        await b.nothing()
        # Unknown channels: False, not silence.
        assert await manager.send_message(manager.node_id + ".gone", "x") is False
        assert await manager.send_message("no-dot", "x") is False
        assert await manager.send_message_to_user("nobody", "x") == 0
        with pytest.raises(TypeError):
            await manager.broadcast({1, 2})
        for client in (a1, a2, b):
            await client.close()


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


async def test_channel_shortcuts() -> None:
    manager = ChannelManager()
    async with connected(manager) as (_, client):
        channel = manager.channel(client.channel)
        assert channel is not None
        await channel.subscribe("t")
        assert channel.topics == {"t"}
        assert await channel.send("direct")
        assert (await client.next())["data"] == "direct"
        request = asyncio.create_task(channel.request("q", timeout=TIMEOUT))
        await client.answer(42)
        assert await request == 42
        await channel.unsubscribe("t")
        assert channel.topics == frozenset()
        assert "open" in repr(channel)


# ---------------------------------------------------------------------------
# send_and_wait
# ---------------------------------------------------------------------------


async def test_send_and_wait_correlates_the_answer() -> None:
    manager = ChannelManager()
    async with connected(manager) as (_, client):
        first = asyncio.create_task(manager.send_and_wait(client.channel, 1, timeout=TIMEOUT))
        second = asyncio.create_task(manager.send_and_wait(client.channel, 2, timeout=TIMEOUT))
        q1 = await client.next("msg", lambda m: m["data"] == 1)
        q2 = await client.next("msg", lambda m: m["data"] == 2)
        assert q1["rchan"] != q2["rchan"]
        # Answered out of order: each reaches its own caller.
        await client.send("reply", response_for=q2["rchan"], ok=True, data="two")
        await client.send("reply", response_for=q1["rchan"], ok=True, data="one")
        assert (await first, await second) == ("one", "two")
        channel = manager.channel(client.channel)
        assert channel is not None and channel.pending_requests == 0


async def test_send_and_wait_reports_the_pages_error() -> None:
    manager = ChannelManager()
    async with connected(manager) as (_, client):
        call = asyncio.create_task(manager.send_and_wait(client.channel, "q", timeout=TIMEOUT))
        question = await client.next()
        error = {"name": "TypeError", "message": "x is undefined"}
        await client.send("reply", response_for=question["rchan"], ok=False, error=error)
        with pytest.raises(ReplyError) as caught:
            await call
        assert (caught.value.name, caught.value.message) == ("TypeError", "x is undefined")


async def test_send_and_wait_times_out_and_a_late_answer_is_ignored() -> None:
    manager = ChannelManager()
    async with connected(manager) as (_, client):
        started = time.monotonic()
        with pytest.raises(ReplyTimeout) as caught:
            await manager.send_and_wait(client.channel, "q", timeout=0.2)
        assert 0.15 < time.monotonic() - started < 2
        assert isinstance(caught.value, TimeoutError)
        question = await client.next()
        channel = manager.channel(client.channel)
        assert channel is not None and channel.pending_requests == 0
        await client.send("reply", response_for=question["rchan"], ok=True, data=1)
        await wait_until(lambda: channel.unknown_replies == 1)


async def test_send_and_wait_fails_at_once_when_the_channel_disconnects() -> None:
    manager = ChannelManager()
    async with serve_manager(manager) as server:
        client = await ChannelClient.connect(server.port)
        call = asyncio.create_task(manager.send_and_wait(client.channel, "q", timeout=30))
        await client.next()
        started = time.monotonic()
        await client.close()
        with pytest.raises(ChannelDisconnected, match="disconnected"):
            await asyncio.wait_for(call, TIMEOUT)
        assert time.monotonic() - started < 1.0  # not at the 30 s timeout
        with pytest.raises(ChannelNotFound):
            await manager.send_and_wait(client.channel, "q", timeout=1)


async def test_send_and_wait_argument_checks() -> None:
    manager = ChannelManager(request_timeout=0.1)
    async with connected(manager) as (_, client):
        for bad in (0, -1, float("nan"), float("inf"), True):
            with pytest.raises(ValueError, match="timeout"):
                await manager.send_and_wait(client.channel, "q", timeout=bad)
        with pytest.raises(ReplyTimeout):  # the default timeout, 0.1 s
            await manager.send_and_wait(client.channel, "q")
        with pytest.raises(ChannelNotFound):
            await manager.send_and_wait("not-a-channel", "q", timeout=1)


async def test_malformed_replies_close_with_1007() -> None:
    async with serve_manager(ChannelManager()) as server:
        client = await ChannelClient.connect(server.port)
        await client.send("reply", response_for="x", ok="yes")
        assert await closed_with(client) == 1007


# ---------------------------------------------------------------------------
# Chunked messages
# ---------------------------------------------------------------------------


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


def chunk_messages(text: str, chunk_id: str, size: int) -> list[dict[str, Any]]:
    parts = [text[i : i + size] for i in range(0, len(text), size)]
    return [{"id": chunk_id, "i": i, "n": len(parts), "data": part} for i, part in enumerate(parts)]


async def test_a_large_message_from_the_page_is_reassembled() -> None:
    manager = ChannelManager()

    @manager.handler("echo")
    def echo(channel: Channel, data: Any) -> Any:
        return len(data)

    async with connected(manager, **small_frames()) as (_, client):
        text = encode("ch", "custom", {"kind": "echo", "data": "ü" * 100_000, "rchan": "c"})
        chunks = chunk_messages(text, "c1", 10_000)  # \u00fc escapes: 60 KB each
        for chunk in reversed(chunks):  # any order: the index decides
            await client.send("chunk", **chunk)
        answer = await client.next("res")
        assert answer["data"] == 100_000


async def test_missing_chunks_time_out(caplog: pytest.LogCaptureFixture) -> None:
    manager = ChannelManager(chunk_timeout=0.2)
    async with connected(manager) as (_, client):
        channel = manager.channel(client.channel)
        assert channel is not None
        await client.send("chunk", id="c1", i=0, n=3, data='{"p":"ch",')
        await wait_until(lambda: channel.chunks.pending == 1)
        with caplog.at_level(logging.WARNING, "wsserver.plugins.channels"):
            await wait_until(lambda: channel.chunks.pending == 0)
        assert "chunked message 'c1' incomplete after 0.2 s: dropped" in caplog.text
        assert channel.chunks.expired == 1
        # The connection goes on.
        await client.send("chunk", id="c2", i=0, n=1, data=encode("ch", "custom", {"kind": "x"}))


@pytest.mark.parametrize(
    ("chunks", "code"),
    [
        # Larger than max_chunked_size (1000 here): 1009.
        ([{"id": "a", "i": 0, "n": 2, "data": "x" * 1001}], 1009),
        # A chunk received twice: 1007.
        ([{"id": "a", "i": 0, "n": 2, "data": "x"}] * 2, 1007),
        # Whole, but not JSON: 1007.
        ([{"id": "a", "i": 0, "n": 1, "data": "{nope"}], 1007),
        # Whole, but a chunk in a chunk: 1007.
        ([{"id": "a", "i": 0, "n": 1, "data": '{"p":"ch","k":"chunk"}'}], 1007),
        # Whole, but another plugin's message: 1007.
        ([{"id": "a", "i": 0, "n": 1, "data": '{"p":"rt","k":"ping"}'}], 1007),
        # A bad index: 1007.
        ([{"id": "a", "i": 2, "n": 2, "data": "x"}], 1007),
    ],
)
async def test_bad_chunks_close_the_connection(chunks: list[dict[str, Any]], code: int) -> None:
    async with serve_manager(ChannelManager(max_chunked_size=1000)) as server:
        client = await ChannelClient.connect(server.port)
        for chunk in chunks:
            await client.send("chunk", **chunk)
        assert await closed_with(client) == code


# ---------------------------------------------------------------------------
# Several nodes in one process (a Hub)
# ---------------------------------------------------------------------------


@asynccontextmanager
async def two_nodes(
    **options: Any,
) -> AsyncIterator[tuple[ChannelManager, ChannelManager, Server, Server]]:
    async def authenticate(websocket: WebSocket) -> Response | None:
        websocket.state.user_id = websocket.query_params.get("user")
        return None

    hub = Hub()
    a = ChannelManager(InProcessBackend(hub), **options)
    b = ChannelManager(InProcessBackend(hub), **options)
    async with (
        serve_manager(a, app=App(authenticate=authenticate)) as server_a,
        serve_manager(b, app=App(authenticate=authenticate)) as server_b,
    ):
        yield a, b, server_a, server_b


async def test_every_operation_reaches_the_other_node() -> None:
    async with two_nodes() as (a, b, server_a, server_b):
        here = await ChannelClient.connect(server_a.port, "/ws?user=ann")
        there = await ChannelClient.connect(server_b.port, "/ws?user=ann")
        assert there.channel.startswith(b.node_id + ".")
        # Broadcast: both nodes' channels, once each.
        assert await a.broadcast("all") == 1
        assert (await here.next())["data"] == "all"
        assert (await there.next())["data"] == "all"
        await here.nothing()
        # Send to a channel of the other node.
        assert await a.send_message(there.channel, "direct") is True
        assert (await there.next())["data"] == "direct"
        # Send to a user: every tab on every node, but the ignored one.
        await a.send_message_to_user("ann", "to ann", ignore_channel=here.channel)
        assert (await there.next())["data"] == "to ann"
        await here.nothing()
        assert await a.get_user_channels("ann") == {here.channel, there.channel}
        # Topics: subscribers on the other node.
        await b.subscribe(there.channel, "news")
        assert await a.publish("news", "headline") == 0
        assert await there.next() == {"p": "ch", "k": "msg", "data": "headline", "topic": "news"}
        assert await a.publish("news", "local", local_only=True) == 0
        await there.nothing()
        # Send and wait across nodes.
        call = asyncio.create_task(a.send_and_wait(there.channel, "q", timeout=TIMEOUT))
        assert (await there.answer("a"))["data"] == "q"
        assert await call == "a"
        for client in (here, there):
            await client.close()


async def test_send_and_wait_across_nodes_fails_like_a_local_one() -> None:
    async with two_nodes() as (a, b, _, server_b):
        there = await ChannelClient.connect(server_b.port)
        # The page's error.
        call = asyncio.create_task(a.send_and_wait(there.channel, "q", timeout=TIMEOUT))
        question = await there.next()
        error = {"name": "RangeError", "message": "no"}
        await there.send("reply", response_for=question["rchan"], ok=False, error=error)
        with pytest.raises(ReplyError, match="RangeError: no"):
            await call
        # A timeout: the other node stops waiting too.
        with pytest.raises(ReplyTimeout):
            await a.send_and_wait(there.channel, "q", timeout=0.2)
        channel = b.channel(there.channel)
        assert channel is not None
        await wait_until(lambda: channel.pending_requests == 0 and b._requests.serving_count == 0)
        # A channel gone on a live node, and a node that does not exist.
        with pytest.raises(ChannelNotFound):
            await a.send_and_wait(b.node_id + ".gone", "q", timeout=TIMEOUT)
        with pytest.raises(ChannelNotFound, match="node is gone"):
            await a.send_and_wait("deadbeef0000.x", "q", timeout=TIMEOUT)
        assert await a.send_message("deadbeef0000.x", "lost") is False
        # A disconnect: at once.
        call = asyncio.create_task(a.send_and_wait(there.channel, "last", timeout=30))
        await there.next("msg", lambda m: m["data"] == "last")
        started = time.monotonic()
        await there.close()
        with pytest.raises(ChannelDisconnected):
            await asyncio.wait_for(call, TIMEOUT)
        assert time.monotonic() - started < 1.0


async def test_a_closed_manager_fails_its_waiting_requests() -> None:
    async with two_nodes() as (a, _, _, server_b):
        there = await ChannelClient.connect(server_b.port)
        call = asyncio.create_task(a.send_and_wait(there.channel, "q", timeout=30))
        await there.next()
        await a.close()
        with pytest.raises(Exception, match="closed"):
            await asyncio.wait_for(call, TIMEOUT)
        await there.close()


# ---------------------------------------------------------------------------
# The manager object
# ---------------------------------------------------------------------------


async def test_settings_are_checked() -> None:
    for options in (
        {"queue_policy": "block"},
        {"max_queue": 0},
        {"max_chunked_size": 0},
        {"max_inbox": 0},
        {"max_pending_chunked": 0},
        {"request_timeout": 0},
        {"chunk_timeout": float("nan")},
    ):
        with pytest.raises(ValueError):
            ChannelManager(**options)


async def test_managers_are_listed_for_the_command_line() -> None:
    manager = ChannelManager()
    assert manager in managers()
    assert manager.cross_process is False
    assert "memory" in repr(manager)


async def test_install_serves_channels_js_versioned() -> None:
    manager = ChannelManager()
    async with serve_manager(manager) as server:
        asset = channels_asset()
        path = asset_path(asset=asset)
        assert path == f"/_wsserver/channels.{asset.version}.js"
        response = await http_get(server.port, path)
        assert response.status == 200
        assert response.body == asset.body
        assert response.header("cache-control") == "public, max-age=31536000, immutable"
        assert response.header("content-type").startswith("text/javascript")
        tag = channels_script_tag()
        assert f'src="{path}"' in tag and f'integrity="{asset.integrity}"' in tag
        assert "integrity" not in channels_script_tag(integrity=False)


# ---------------------------------------------------------------------------
# The browser: channels.js in headless Chromium
# ---------------------------------------------------------------------------


class Pages:
    """A server with a manager, and pages that load the runtime and channels.js."""

    def __init__(self, manager: ChannelManager, **config: Any) -> None:
        self.manager = manager
        self.app = App()
        self.config = config
        self.contexts: list[Any] = []
        self.console: list[str] = []
        self.server: Server | None = None

        @self.app.route("/")
        async def page(request: Request) -> Response:
            tags = script_tag("/ws", reconnect_base=0.05, reconnect_max=0.2) + channels_script_tag()
            return HTMLResponse(f"<!doctype html><title>t</title>{tags}")

        @self.app.route("/favicon.ico")
        async def favicon(request: Request) -> Response:
            return Response(b"", status_code=204)

    async def __aenter__(self) -> Pages:
        self._serving = serve_manager(self.manager, app=self.app, **self.config)
        self.server = await self._serving.__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        for context in self.contexts:
            await context.close()
        await self._serving.__aexit__(*exc)

    async def open(self, browser: Browser) -> Page:
        assert self.server is not None
        context = await browser.new_context()
        self.contexts.append(context)
        page = await context.new_page()
        page.on("console", lambda message: self.console.append(f"{message.type}: {message.text}"))
        await page.add_init_script(RECORDER)
        await page.goto(f"http://127.0.0.1:{self.server.port}/")
        await wait_status(page, "open")
        await page.wait_for_function(
            "() => window.wsserverChannels.channel !== null", timeout=WAIT * 1000
        )
        return page


async def test_the_page_knows_its_channel(browser: Browser) -> None:
    manager = ChannelManager()
    async with Pages(manager) as pages:
        page = await pages.open(browser)
        channel = await page.evaluate("window.wsserverChannels.channel")
        assert manager.channels == [channel]
        assert await page.evaluate("window.wsserverChannels.node") == manager.node_id
        assert await page.evaluate("window.wsserverChannels.ready()") == channel
        attribute = await page.evaluate(
            "document.documentElement.getAttribute('data-wsserver-channel')"
        )
        assert attribute == channel
        # Frozen, one global, registered on the runtime as plugin "ch".
        assert await page.evaluate("Object.isFrozen(window.wsserverChannels)") is True
        with pytest.raises(Exception, match="exists"):
            await page.evaluate("window.wsserver.on('ch', 'msg', () => {})")


async def test_the_page_receives_messages_and_topics(browser: Browser) -> None:
    manager = ChannelManager()
    async with Pages(manager) as pages:
        page = await pages.open(browser)
        await page.evaluate(
            """() => {
                window.got = []; window.news = [];
                window.offAll = wsserverChannels.on((d, m) => got.push([d, m.topic]));
                wsserverChannels.onTopic("news", (d) => news.push(d));
            }"""
        )
        channel = await page.evaluate("wsserverChannels.channel")
        await manager.subscribe(channel, "news")
        await manager.broadcast({"hello": [1, "two"]})
        await manager.publish("news", "headline")
        await page.wait_for_function("() => window.got.length === 2 && window.news.length === 1")
        assert await page.evaluate("window.got") == [
            [{"hello": [1, "two"]}, None],
            ["headline", "news"],
        ]
        await page.evaluate("window.offAll()")
        await manager.publish("news", "second")
        await page.wait_for_function("() => window.news.length === 2")
        assert await page.evaluate("window.got.length") == 2


async def test_page_requests_get_their_handlers_answers(browser: Browser) -> None:
    manager = ChannelManager()

    @manager.handler("double")
    async def double(channel: Channel, data: Any) -> Any:
        return data * 2

    @manager.handler("refuse")
    def refuse(channel: Channel, data: Any) -> Any:
        raise HandlerError("no thanks")

    @manager.handler("stall")
    async def stall(channel: Channel, data: Any) -> Any:
        await asyncio.sleep(5)

    async with Pages(manager) as pages:
        page = await pages.open(browser)
        assert await page.evaluate("wsserverChannels.request('double', 21)") == 42
        error = await page.evaluate(
            "wsserverChannels.request('refuse').catch((e) => [e.name, e.message])"
        )
        assert error == ["HandlerError", "no thanks"]
        error = await page.evaluate("wsserverChannels.request('nope').catch((e) => e.name)")
        assert error == "UnknownKind"
        error = await page.evaluate(
            "wsserverChannels.request('stall', null, {timeoutMs: 100}).catch((e) => e.name)"
        )
        assert error == "TimeoutError"
        assert await page.evaluate("wsserverChannels.send('double', 1)") is True


async def test_the_page_answers_send_and_wait(browser: Browser) -> None:
    manager = ChannelManager()
    async with Pages(manager) as pages:
        page = await pages.open(browser)
        channel = await page.evaluate("wsserverChannels.channel")
        with pytest.raises(ReplyError) as caught:
            await manager.send_and_wait(channel, "anyone?", timeout=WAIT)
        assert caught.value.name == "NoHandler"
        # A block body: Playwright would call a function the expression returns
        # (here the handler's remover).
        await page.evaluate(
            """() => { wsserverChannels.onRequest((data) => {
                if (data.op === "add") return data.a + data.b;
                if (data.op === "later") return new Promise((r) => setTimeout(() => r("done"), 20));
                if (data.op === "big") return "ß".repeat(data.n);
                if (data.op === "bigint") return 1n;
                throw new RangeError("unknown op " + data.op);
            }); }"""
        )
        assert await manager.send_and_wait(channel, {"op": "add", "a": 2, "b": 3}) == 5
        assert await manager.send_and_wait(channel, {"op": "later"}) == "done"
        with pytest.raises(ReplyError) as caught:
            await manager.send_and_wait(channel, {"op": "x"})
        assert (caught.value.name, caught.value.message) == ("RangeError", "unknown op x")
        with pytest.raises(ReplyError) as caught:
            await manager.send_and_wait(channel, {"op": "bigint"})
        assert caught.value.name == "TypeError"


async def test_large_messages_travel_in_chunks_both_ways(browser: Browser) -> None:
    manager = ChannelManager()

    @manager.handler("measure")
    def measure(channel: Channel, data: Any) -> Any:
        return [len(data), data[:3], data[-3:]]

    async with Pages(manager, **small_frames()) as pages:
        page = await pages.open(browser)
        assert await page.evaluate("wsserver.maxMessageSize") == 65536
        channel = await page.evaluate("wsserverChannels.channel")
        # Server to page: a 600 KB message over 64 KiB frames.
        await page.evaluate("() => { window.got = []; wsserverChannels.on((d) => got.push(d)); }")
        big = 'aé😀\n"\\' * 60_000
        await manager.send_message(channel, big)
        await page.wait_for_function("() => window.got.length === 1", timeout=WAIT * 1000)
        assert await page.evaluate("window.got[0] === " + json.dumps(big)) is True
        # Page to server: the request is chunked, and so is a large answer.
        answer = await page.evaluate("wsserverChannels.request('measure', 'x😀é'.repeat(100000))")
        assert answer == [300_000, "x😀é", "x😀é"]  # code points
        await page.evaluate("() => { wsserverChannels.onRequest((n) => 'ü'.repeat(n)); }")
        assert await manager.send_and_wait(channel, 200_000, timeout=WAIT) == "ü" * 200_000


async def test_a_page_that_leaves_fails_send_and_wait_at_once(browser: Browser) -> None:
    manager = ChannelManager()
    async with Pages(manager) as pages:
        page = await pages.open(browser)
        await page.evaluate("() => { wsserverChannels.onRequest(() => new Promise(() => {})); }")
        channel = await page.evaluate("wsserverChannels.channel")
        call = asyncio.create_task(manager.send_and_wait(channel, "never", timeout=30))
        await wait_until(lambda: manager.channel(channel) is not None)
        await asyncio.sleep(0.05)
        started = time.monotonic()
        await page.close()
        with pytest.raises(ChannelDisconnected):
            await asyncio.wait_for(call, TIMEOUT)
        assert time.monotonic() - started < 2.0


async def test_a_reconnected_page_is_a_new_channel(browser: Browser) -> None:
    manager = ChannelManager()

    @manager.handler("stall")
    async def stall(channel: Channel, data: Any) -> Any:
        await asyncio.sleep(10)

    async with Pages(manager) as pages:
        page = await pages.open(browser)
        first = await page.evaluate("wsserverChannels.channel")
        await page.evaluate(
            """() => {
                window.channels = [];
                addEventListener("wsserver:channel", (e) => channels.push(e.detail.channel));
                window.pending = wsserverChannels.request("stall").catch((e) => e.name);
            }"""
        )
        await asyncio.sleep(0.05)
        channel = manager.channel(first)
        assert channel is not None
        await channel.session.close(1012, "restart")
        assert await page.evaluate("window.pending") == "Disconnected"
        await page.wait_for_function("() => window.channels.length === 1", timeout=WAIT * 1000)
        second = await page.evaluate("wsserverChannels.channel")
        assert second != first and manager.channels == [second]


# ---------------------------------------------------------------------------
# The examples, end to end
# ---------------------------------------------------------------------------


@asynccontextmanager
async def serving_app(app: App) -> AsyncIterator[Server]:
    server = Server(app, ServerConfig(port=0, ping_interval=None))
    await server.start()
    try:
        yield server
    finally:
        await server.shutdown()
        await app.state.channels.close()


async def rows(page: Page) -> dict[str, int]:
    found: dict[str, int] = await page.evaluate(
        "Object.fromEntries([...document.querySelectorAll('#quotes tr')]"
        ".map((r) => [r.id.slice(4), Number(r.dataset.updates)]))"
    )
    return found


async def test_the_ticker_updates_subscribed_symbols_only(browser: Browser) -> None:
    app = ticker.create_app(interval=0.05, default_symbols=("AAPL", "MSFT"))
    async with serving_app(app) as server:
        context = await browser.new_context()
        try:
            page = await context.new_page()
            await page.goto(f"http://127.0.0.1:{server.port}/")
            await page.wait_for_function(
                "() => document.querySelectorAll('#quotes tr').length === 2", timeout=WAIT * 1000
            )
            # The table updates: several quotes per symbol.
            await page.wait_for_function(
                "() => "
                "[...document.querySelectorAll('#quotes tr')].every((r) => r.dataset.updates > 3)",
                timeout=WAIT * 1000,
            )
            price = await page.inner_text("#row-AAPL td:nth-child(2)")
            assert float(price) > 0
            # Unsubscribe one, subscribe another.
            await page.uncheck("#box-MSFT")
            await page.check("#box-TSLA")
            await page.wait_for_function(
                "() => document.getElementById('row-TSLA') && !document.getElementById('row-MSFT')",
                timeout=WAIT * 1000,
            )
            manager: ChannelManager = app.state.channels
            await wait_until(lambda: not manager.topic_subscribers("ticker:MSFT"))
            assert manager.topic_subscribers("ticker:TSLA")
            before = await rows(page)
            await page.wait_for_function(
                f"document.getElementById('row-TSLA').dataset.updates > {before['TSLA'] + 2}",
                timeout=WAIT * 1000,
            )
            assert "MSFT" not in await rows(page)
        finally:
            await context.close()
        # The feed stops once nobody listens.
        await wait_until(lambda: not app.state.feed.running)


async def test_ticker_quotes_are_the_same_everywhere() -> None:
    assert ticker.quote("AAPL", 1000) == ticker.quote("AAPL", 1000)
    assert ticker.quote("AAPL", 1000) != ticker.quote("AAPL", 1001)
    q = ticker.quote("MSFT", 5)
    assert q["change"] == round(q["price"] - ticker.quote("MSFT", 4)["price"], 2)
    with pytest.raises(ValueError):
        ticker.PriceFeed(ChannelManager(), 0)


async def test_the_chat_between_two_pages(browser: Browser) -> None:
    app = chat.create_app()
    async with serving_app(app) as server:
        await chat_between_two_pages(browser, server.port, server.port)


async def test_the_chat_refuses_bad_input() -> None:
    app = chat.create_app()
    async with serving_app(app) as server, await ChannelClient.connect(server.port) as client:
        for data, message in [
            ({"username": "", "room": "lobby"}, "a name has 1 to 32"),
            ({"username": "x" * 33, "room": "lobby"}, "a name has 1 to 32"),
            ({"username": "a\u0007", "room": "lobby"}, "control"),
            ({"username": 5, "room": "lobby"}, "a name is text"),
            ({"username": "a", "room": "UP"}, "a room name"),
            ("not an object", "expected an object"),
        ]:
            answer = await client.request("join", data)
            assert (
                answer["error"]["message"].startswith(message)
                or message in answer["error"]["message"]
            ), answer
        answer = await client.request("message", {"room": "lobby", "text": "hi"})
        assert answer["error"]["message"] == "join lobby first"
        joined = await client.request("join", {"username": "  Ann   B ", "room": "lobby"})
        assert joined["data"]["username"] == "Ann B"
        notice = await client.next()
        assert notice["data"] == {"type": "join", "room": "lobby", "username": "Ann B"}
        too_long = await client.request("message", {"room": "lobby", "text": "x" * 2001})
        assert "1 to 2000" in too_long["error"]["message"]
        await client.request("leave", {"room": "lobby"})
        assert (await client.next())["data"]["type"] == "leave"
        response = await http_get(server.port, "/")
        assert response.status == 200 and b"brython.js" in response.body
        assert b'type="text/python" src="/static/client.py"' in response.body
        brython = await http_get(server.port, f"/brython/{chat._brython_version()}/brython.js")
        assert brython.status == 200 and len(brython.body) > 100_000


async def test_brython_comes_from_the_installed_package() -> None:
    directory = chat.brython_directory()
    assert (directory / "brython.js").is_file()
    assert "site-packages" in str(directory) or "dist-packages" in str(directory)
