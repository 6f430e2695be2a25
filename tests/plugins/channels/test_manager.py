"""Tests for wsserver.plugins.channels.manager: the ChannelManager end to end.

The facade's own operations over a real server and a WebSocket client
speaking the protocol by hand (``ChannelClient``): broadcast, send, send to
a user; the list of managers; the old names still importable from
``manager``.  Then headless Chromium running ``channels.js`` against the
whole manager, and the chat and ticker examples.  Each part has its own
test module besides (test_lifecycle.py, test_inbound.py,
test_send_and_wait.py, test_remote.py...).
"""

from __future__ import annotations

import asyncio
import json
import time
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import pytest

import wsserver.plugins.channels as package
import wsserver.plugins.channels.manager as manager_module
from examples import chat, ticker
from wsserver.plugins.channels import (
    Channel,
    ChannelDisconnected,
    ChannelManager,
    ChannelView,
    CustomServerMessage,
    HandlerError,
    Identity,
    ReplyError,
    channels_script_tag,
    current_session,
    current_user,
    managers,
)
from wsserver.plugins.runtime import script_tag
from wsserver.server import App, HTMLResponse, Request, Response, Server, ServerConfig, WebSocket

from ..._live import RawWebSocket, http_get
from .._browser import RECORDER, WAIT, statuses, wait_status
from ._helpers import (
    TIMEOUT,
    ChannelClient,
    chat_between_two_pages,
    open_chat,
    serve_manager,
    small_frames,
    texts,
    wait_until,
)

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page

# One browser for the module (tests/plugins/conftest.py), so one loop.
pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(90)]


# ---------------------------------------------------------------------------
# The facade
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


async def test_compress_is_chosen_per_send() -> None:
    manager = ChannelManager()  # compress=False: the default for every send
    async with serve_manager(manager) as server:
        raw = await RawWebSocket.connect(
            server.port, "/ws", [("Sec-WebSocket-Extensions", "permessage-deflate")]
        )
        inflater = zlib.decompressobj(-15)

        async def next_message() -> tuple[bool, dict[str, Any]]:
            frame = await raw.recv_frame()
            payload = frame.payload
            if frame.rsv1:  # RFC 7692 section 7.2.2: append the tail, inflate
                payload = inflater.decompress(payload + b"\x00\x00\xff\xff")
            return frame.rsv1, json.loads(payload)

        try:
            assert (await next_message())[1]["k"] == "init"  # the runtime's
            raw.send_frame(1, b'{"p":"ch","k":"ready"}')
            compressed, init = await next_message()
            assert (init["k"], compressed) == ("init", False)
            channel = init["channel"]
            big = "all work and no play " * 5000  # about 100 KiB, compresses well
            await manager.send_message(channel, big, compress=True)
            compressed, message = await next_message()
            assert compressed is True and message["data"] == big
            await manager.send_message(channel, big)
            assert (await next_message())[0] is False
            await manager.broadcast(big, compress=True)
            assert (await next_message())[0] is True
            await manager.subscribe(channel, "t")
            await manager.publish("t", big, compress=True)
            assert (await next_message())[0] is True
            await manager.send_message_to_user("nobody", big, compress=True)  # nobody: no frame
            await manager.send_message(channel, "small", compress=False)
            assert (await next_message()) == (False, {"p": "ch", "k": "msg", "data": "small"})
        finally:
            await raw.close()


async def test_managers_are_listed_for_the_command_line() -> None:
    manager = ChannelManager()
    assert manager in managers()
    assert manager.cross_process is False
    assert "memory" in repr(manager)


#: What ``wsserver.plugins.channels.manager`` exported before it was split.
OLD_MANAGER_NAMES = [
    "DEFAULT_REQUEST_TIMEOUT",
    "MAX_TOPIC_LENGTH",
    "PLUGIN",
    "Channel",
    "ChannelDisconnected",
    "ChannelManager",
    "ChannelNotFound",
    "ChannelView",
    "CustomHandler",
    "HandlerError",
    "Identity",
    "ReplyError",
    "ReplyTimeout",
    "channels_asset",
    "channels_script_tag",
    "managers",
]


async def test_the_old_names_are_still_importable_from_manager() -> None:
    assert sorted(manager_module.__all__) == sorted(OLD_MANAGER_NAMES)
    for name in OLD_MANAGER_NAMES:
        value = getattr(manager_module, name)
        if name != "MAX_TOPIC_LENGTH":  # the package never exported it
            assert getattr(package, name) is value, name
    assert manager_module.PLUGIN == "ch"
    assert manager_module.MAX_TOPIC_LENGTH == 256
    assert manager_module.DEFAULT_REQUEST_TIMEOUT == 30.0


async def test_the_settings_read_as_attributes() -> None:
    manager = ChannelManager(max_queue=3, chunk_timeout=2, request_timeout=4)
    assert (manager.max_queue, manager.chunk_timeout, manager.request_timeout) == (3, 2.0, 4.0)
    assert repr(manager.chunk_timeout) == "2.0"
    assert manager.max_queue_bytes == manager.settings.max_queue_bytes
    assert manager.queue_policy == "close" and manager.compress is False
    assert manager.max_request_timeout == 600.0 and manager.max_inbox == 64
    assert (manager.history_size, manager.history_ttl) == (0, 300.0)
    assert (manager.max_chunked_size, manager.max_chunks, manager.max_pending_chunked) == (
        8 << 20,
        1024,
        4,
    )


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


async def test_custom_envelopes_reach_their_kind_only(browser: Browser) -> None:
    manager = ChannelManager()
    async with Pages(manager) as pages:
        page = await pages.open(browser)
        await page.evaluate(
            """() => {
                window.plain = []; window.toasts = []; window.alerts = [];
                wsserverChannels.on((d) => plain.push(d));
                wsserverChannels.onCustom("toast", (d, m) => toasts.push([d, m.kind]));
                wsserverChannels.onCustom("alert", (d) => alerts.push(d));
                wsserverChannels.onRequest((d, m) => [d, m.kind || null]);
            }"""
        )
        channel = await page.evaluate("wsserverChannels.channel")
        await manager.send_message(channel, CustomServerMessage("toast", {"text": "saved"}), True)
        await manager.broadcast({"kind": "alert", "data": 1}, custom=True)
        await manager.send_message(channel, {"kind": "toast", "data": "plain data"})
        # Dara's serialised envelope, unwrapped once.
        await manager.send_message(
            channel, {"type": "custom", "message": {"kind": "toast", "data": 2}}, custom=True
        )
        await page.wait_for_function(
            "() => window.toasts.length === 2 && window.alerts.length === 1"
            " && window.plain.length === 1"
        )
        assert await page.evaluate("window.toasts") == [[{"text": "saved"}, "toast"], [2, "toast"]]
        assert await page.evaluate("window.plain") == [{"kind": "toast", "data": "plain data"}]
        # send_and_wait: the page's request handler is told the kind.
        asked = CustomServerMessage("confirm", "delete?")
        assert await manager.send_and_wait(channel, asked, custom=True) == ["delete?", "confirm"]
        assert await manager.send_and_wait(channel, "plain") == ["plain", None]
        with pytest.raises(TypeError):
            await manager.send_message(channel, asked)


async def test_a_token_update_takes_effect_without_a_reconnect(browser: Browser) -> None:
    class View(ChannelView):
        def identify(self, websocket: WebSocket) -> Identity:
            return Identity("ann", "login-1")

        async def verify_token(self, channel: Channel, token: str) -> Identity:
            if token != "bob-token":
                raise HandlerError("expired token")
            return Identity("bob", "login-2")

    manager = ChannelManager()

    @manager.handler("whoami")
    async def whoami(channel: Channel, data: Any) -> Any:
        return [current_user.get(), current_session.get(), channel.user_id]

    async with Pages(manager, view=View) as pages:
        page = await pages.open(browser)
        channel = await page.evaluate("wsserverChannels.channel")
        assert await page.evaluate("wsserverChannels.user") == "ann"
        assert manager.local_user_channels("ann") == {channel}
        await page.evaluate(
            """() => { window.identities = [];
                window.addEventListener("wsserver:identity", (e) => identities.push(e.detail.user));
                window.toBob = [];
                wsserverChannels.on((d) => toBob.push(d)); }"""
        )
        answer = await page.evaluate("wsserverChannels.updateToken('bob-token')")
        assert answer == {"user": "bob"}
        # The same channel, the same connection: no reconnection happened.
        assert await page.evaluate("wsserverChannels.channel") == channel
        assert [s["status"] for s in await statuses(page)] == ["connecting", "open"]
        assert await page.evaluate("wsserverChannels.user") == "bob"
        assert await page.evaluate("window.identities") == ["bob"]
        # Registered under the new user, on the registry and the backend.
        assert manager.local_user_channels("bob") == {channel}
        assert manager.local_user_channels("ann") == set()
        assert await manager.get_user_channels("bob") == {channel}
        assert await manager.get_user_channels("ann") == set()
        assert await manager.send_message_to_user("bob", "for bob") == 1
        assert await manager.send_message_to_user("ann", "for ann") == 0
        await page.wait_for_function("() => window.toBob.length === 1")
        assert await page.evaluate("window.toBob") == ["for bob"]
        assert await page.evaluate("wsserverChannels.request('whoami')") == [
            "bob",
            "login-2",
            "bob",
        ]
        # A refused token: the page is told why, the identity stays.
        refused = await page.evaluate(
            "wsserverChannels.updateToken('stale').catch((e) => [e.name, e.message])"
        )
        assert refused == ["HandlerError", "expired token"]
        assert manager.local_user_channels("bob") == {channel}
        assert await page.evaluate("wsserverChannels.channel") == channel


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


class Gate:
    """Refuses WebSocket handshakes while closed (a network cut, as the page sees it)."""

    def __init__(self) -> None:
        self.closed = False
        self.refused = 0

    async def authenticate(self, websocket: WebSocket) -> Response | None:
        if not self.closed:
            return None
        self.refused += 1
        return Response(b"down for a moment", status_code=503)


FOLLOWER = """<script>
window.got = []; window.lost = []; window.follows = 0;
wsserverChannels.onTopic("ticks", (data, meta) => got.push([data, meta.offset]));
wsserverChannels.onLost((detail) => lost.push(detail));
function follow() {
  wsserverChannels.request("follow", "ticks").then(() => { window.follows += 1; });
}
// Every new channel (the first, and each after a reconnection) follows again,
// as an application subscribes again; the server replays what was missed.
addEventListener("wsserver:channel", follow);
if (wsserverChannels.channel !== null) follow();
</script>"""


@asynccontextmanager
async def follower_cut_while_publishing(
    browser: Browser, history_size: int, during: int
) -> AsyncIterator[tuple[Page, ChannelManager]]:
    """A page follows "ticks" and has 5 messages; then its connection drops,
    and its reconnections are refused (a network cut, as the page sees it)
    while ``during`` more are published and until it has retried three
    times; then it reconnects, and follows "ticks" again."""
    manager = ChannelManager(history_size=history_size)
    gate = Gate()
    app = App(authenticate=gate.authenticate)

    @manager.handler("follow")
    async def follow(channel: Channel, topic: Any) -> Any:
        await manager.subscribe(channel.id, str(topic))
        return True

    @app.route("/")
    async def home(request: Request) -> Response:
        tags = script_tag("/ws", reconnect_base=0.05, reconnect_max=0.3, reconnect_attempts=10_000)
        return HTMLResponse(
            f"<!doctype html><title>t</title>{tags}{channels_script_tag()}{FOLLOWER}"
        )

    async with serve_manager(manager, app=app) as server:
        context = await browser.new_context()
        try:
            page = await context.new_page()
            await page.goto(f"http://127.0.0.1:{server.port}/")
            await page.wait_for_function("() => window.follows === 1", timeout=WAIT * 1000)
            for n in range(5):
                await manager.publish("ticks", n)
            await page.wait_for_function("() => window.got.length === 5", timeout=WAIT * 1000)
            gate.closed = True
            (channel_id,) = manager.channels
            channel = manager.channel(channel_id)
            assert channel is not None
            await channel.session.close(1012, "cut")
            await wait_until(lambda: not manager.channels)
            for n in range(5, 5 + during):
                await manager.publish("ticks", n)
            await wait_until(lambda: gate.refused >= 3, WAIT)
            gate.closed = False
            await page.wait_for_function("() => window.follows === 2", timeout=WAIT * 1000)
            yield page, manager
        finally:
            await context.close()


async def test_a_page_that_reconnects_gets_what_it_missed(browser: Browser) -> None:
    async with follower_cut_while_publishing(browser, 200, 100) as (page, manager):
        await manager.publish("ticks", "live")
        await page.wait_for_function("() => window.got.length === 106", timeout=WAIT * 1000)
        got = await page.evaluate("window.got")
        assert [data for data, _ in got] == [*range(105), "live"]
        assert [offset for _, offset in got] == list(range(1, 107))  # in order, once each
        assert await page.evaluate("window.lost") == []
        position = await page.evaluate("wsserverChannels.position('ticks')")
        assert position["offset"] == 106


async def test_a_page_told_it_cannot_recover(browser: Browser) -> None:
    async with follower_cut_while_publishing(browser, 20, 100) as (page, manager):
        await page.wait_for_function("() => window.lost.length === 1", timeout=WAIT * 1000)
        lost = await page.evaluate("window.lost[0]")
        assert (lost["topic"], lost["reason"], lost["offset"]) == ("ticks", "trimmed", 105)
        assert await page.evaluate("window.got.length") == 5  # no partial replay
        await manager.publish("ticks", "live")
        await page.wait_for_function("() => window.got.length === 6", timeout=WAIT * 1000)
        assert await page.evaluate("window.got[5]") == ["live", 106]


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


async def test_a_chat_page_that_reconnects_catches_up(browser: Browser) -> None:
    app = chat.create_app()
    manager: ChannelManager = app.state.channels
    async with serving_app(app) as server:
        page = await open_chat(browser, server.port, "Ann")
        try:
            (channel_id,) = manager.channels
            channel = manager.channel(channel_id)
            assert channel is not None
            await channel.session.close(1012, "restart")
            # Said while Ann is away (nothing here lets the loop accept her
            # reconnection in between).
            for n in range(20):
                await manager.publish(
                    "room:lobby",
                    {"type": "message", "room": "lobby", "username": "Bob", "text": f"m{n}"},
                )
            await page.wait_for_function(
                "() => document.querySelectorAll('#messages .chat').length >= 20",
                timeout=WAIT * 2000,
            )
            said = await texts(page, "#messages .chat")
            assert said == [f"Bob: m{n}" for n in range(20)]  # in order, once each
        finally:
            await page.context.close()


async def test_the_chat_shows_one_notice_per_outage(browser: Browser) -> None:
    app = chat.create_app()
    server = Server(app, ServerConfig(port=0, ping_interval=None))
    await server.start()
    port = server.port
    page = await open_chat(browser, port, "Ann")
    try:
        await page.evaluate(
            """() => {
                window.__attempts = 0;
                window.addEventListener("wsserver:status", (event) => {
                    if (event.detail.status === "reconnecting") window.__attempts += 1;
                });
            }"""
        )
        await server.shutdown()  # the page's connection ends with 1001
        # Reconnection attempts fail while the server is away...
        await page.wait_for_function("() => window.__attempts >= 2", timeout=WAIT * 2000)
        notices = await texts(page, "#messages .system")
        # ... and the reader is told once, not once per attempt.
        assert notices.count("Disconnected from server, reconnecting...") == 1
        assert notices[-1] == "Disconnected from server, reconnecting..."
        server = Server(app, ServerConfig(port=port, ping_interval=None))
        await server.start()
        # Back: the page says so (and rejoins its room, which adds a notice).
        await page.wait_for_function(
            """() => {
                const notices = [...document.querySelectorAll('#messages .system')]
                    .map((n) => n.textContent);
                return notices.lastIndexOf('Connected to chat server')
                    > notices.indexOf('Disconnected from server, reconnecting...');
            }""",
            timeout=WAIT * 2000,
        )
        after = await texts(page, "#messages .system")
        assert after.count("Disconnected from server, reconnecting...") == 1
    finally:
        await page.context.close()
        await server.shutdown()
        await app.state.channels.close()


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
