"""The plugins' helpers: a component page driven by events, ``execute_js`` answered,
a channel's ``send_and_wait`` answered, all in memory against the real plugins."""

from __future__ import annotations

import asyncio

import pytest

from tests.plugins.components._pages import Counter
from wsserver.client import ConnectionClosedError
from wsserver.plugins.channels import ChannelManager, ReplyError
from wsserver.plugins.components import Component, ComponentApp, Element, Event, State, h
from wsserver.plugins.js import JavascriptExecutionError
from wsserver.plugins.runtime import RuntimeView, Session
from wsserver.server import App, HTMLResponse, Request, Response, Route, WebSocketRoute
from wsserver.testing import TestClient
from wsserver.testing.plugins import BrowserSession, ChannelSession, ComponentPage, _PageParser

# -- components --------------------------------------------------------------------


async def test_a_component_event_gives_its_patches() -> None:
    async with TestClient(ComponentApp({"/": Counter})) as client:
        page = await ComponentPage.open(client, "/")
        assert page.page_id
        assert page.seq == 0
        assert page.init["v"] == 1
        count = page.find("output")
        assert count.text == "0"
        assert count.attributes["id"] == "count"
        ops = await page.event(page.find("button", text="+1").key)
        assert ops == [{"o": "txt", "k": count.key, "x": "1"}]
        assert page.seq == 1
        await page.websocket.close()


async def test_a_component_waiting_for_execute_js_gets_the_answer() -> None:
    async with TestClient(ComponentApp({"/": Counter})) as client:
        page = await ComponentPage.open(client, "/")
        await page.send_event(page.find("button", text="+2 (async)").key)
        request = await page.answer_js(2)
        assert request["code"] == "1 + 1"
        assert request["reply"] is True
        patch = await page.next_patch()
        assert patch["ops"] == [{"o": "txt", "k": page.find("output").key, "x": "2"}]
        assert patch["title"] == "Count 2"
        await page.websocket.close()


class Asker(Component):
    answer = State("")

    def render(self) -> Element:
        return h.div(h.button("ask", id="ask").bind("click", self.ask), h.span(self.answer))

    async def ask(self, event: Event) -> None:
        assert event.connection is not None
        try:
            await event.connection.execute_js("boom()", wait_for_result=True, timeout=5)
        except JavascriptExecutionError as error:
            self.answer = f"failed: {error}"


async def test_a_js_error_answer_reaches_the_component() -> None:
    async with TestClient(ComponentApp({"/": Asker})) as client:
        page = await ComponentPage.open(client, "/")
        await page.send_event(page.find("button", text="ask").key)
        await page.answer_js(error={"name": "ReferenceError", "message": "boom is not defined"})
        ops = (await page.next_patch())["ops"]
        assert len(ops) == 1
        assert "ReferenceError" in ops[0]["x"] and "boom is not defined" in ops[0]["x"]
        await page.websocket.close()


async def test_a_page_that_is_not_there_fails_to_open() -> None:
    async with TestClient(ComponentApp({"/": Counter})) as client:
        with pytest.raises(AssertionError, match="404"):
            await ComponentPage.open(client, "/missing")


async def test_ws_path_is_needed_for_another_app() -> None:
    components = ComponentApp({"/": Counter})

    async with TestClient(App()) as client:
        with pytest.raises(AssertionError, match="data-cv-page"):
            await ComponentPage.open(client, "/healthz")
    async with TestClient(components) as client:
        page = await ComponentPage.open(client, "/", ws_path=components.ws_path)
        await page.websocket.close()


def test_find_reports_what_is_missing() -> None:
    page = ComponentPage.__new__(ComponentPage)
    page.elements = []
    with pytest.raises(LookupError, match="<button>"):
        page.find("button", text="nope")


# -- the runtime --------------------------------------------------------------------


class JSView(RuntimeView):
    results: asyncio.Queue[object]

    async def on_session_start(self, session: Session) -> None:
        from wsserver.plugins.js import execute_js, get_js_result

        await execute_js(session, "console.log(1)")  # no reply asked
        value = await get_js_result(session, "", "document.title", timeout=5)
        await self.results.put(value)


async def test_answer_js_without_a_reply_and_with_one() -> None:
    JSView.results = asyncio.Queue()
    async with TestClient(App([WebSocketRoute("/rt", JSView)])) as client:
        ws = await client.websocket_connect("/rt")
        browser = await BrowserSession.start(ws)
        assert browser.init["sid"]
        fire_and_forget = await browser.answer_js("unused")
        assert (fire_and_forget["code"], fire_and_forget["reply"]) == ("console.log(1)", False)
        asked = await browser.answer_js("The title")
        assert asked["expr"] == "document.title"
        assert await asyncio.wait_for(JSView.results.get(), 5) == "The title"
        pong = await browser.ping()
        assert pong == {"p": "rt", "k": "pong", "n": 1}
        await ws.close()


async def test_receive_refuses_what_is_not_an_envelope() -> None:
    async def sender(websocket: object) -> None:
        from wsserver.server import WebSocket

        assert isinstance(websocket, WebSocket)
        await websocket.accept()
        await websocket.send_text('{"p": "x", "k": "first"}')
        await websocket.send_text("[1, 2]")
        await websocket.send_bytes(b"\x00")
        await websocket.receive()

    async with TestClient(sender) as client:
        ws = await client.websocket_connect("/")
        browser = BrowserSession(ws)
        with pytest.raises(ValueError, match="not an envelope"):
            await browser.receive("x", "second")  # holds "first" meanwhile
        assert browser.held == [{"p": "x", "k": "first"}]
        assert await browser.receive("x") == {"p": "x", "k": "first"}
        with pytest.raises(ValueError, match="binary"):
            await browser.receive()
        await ws.close()


# -- channels -------------------------------------------------------------------------


async def test_send_and_wait_answered_by_the_page() -> None:
    manager = ChannelManager()
    app = App()
    manager.install(app, "/ws")
    try:
        async with TestClient(app) as client:
            ws = await client.websocket_connect("/ws")
            page = await ChannelSession.open(ws)
            channel = page.channel["channel"]
            await manager.send_message(channel, {"plain": True})
            asking = asyncio.create_task(manager.send_and_wait(channel, {"q": 1}, timeout=5))
            request = await page.answer_send_and_wait({"a": 2})
            assert request["data"] == {"q": 1}
            assert await asking == {"a": 2}
            # The plain message read while looking for the request is kept.
            assert (await page.message())["data"] == {"plain": True}
            failing = asyncio.create_task(manager.send_and_wait(channel, "?", timeout=5))
            await page.answer_send_and_wait(error=("TypeError", "no can do"))
            with pytest.raises(ReplyError, match="no can do"):
                await failing
            await ws.close()
    finally:
        await manager.close()


async def test_custom_messages_reach_their_handler() -> None:
    manager = ChannelManager()
    app = App()
    got: asyncio.Queue[object] = asyncio.Queue()

    @manager.handler("note")
    async def note(channel: object, data: object) -> str:
        await got.put(data)
        return "noted"

    manager.install(app, "/ws")
    try:
        async with TestClient(app) as client:
            ws = await client.websocket_connect("/ws")
            page = await ChannelSession.open(ws)
            await page.custom("note", {"n": 1})
            assert await asyncio.wait_for(got.get(), 5) == {"n": 1}
            await page.custom("note", 2, rchan="r1")
            answer = await page.receive("ch", "res")
            assert answer["response_for"] == "r1"
            assert answer["data"] == "noted"
            await ws.close()
    finally:
        await manager.close()


async def test_a_malformed_envelope_closes_with_1007() -> None:
    manager = ChannelManager()
    app = App()
    manager.install(app, "/ws")
    try:
        async with TestClient(app) as client:
            ws = await client.websocket_connect("/ws")
            page = await ChannelSession.open(ws)
            await page.send("ch", "reply", response_for=3, ok=True)  # not a string
            with pytest.raises(ConnectionClosedError) as closed:
                await page.receive()
            assert closed.value.code == 1007
    finally:
        await manager.close()


async def test_resync_answers_with_the_whole_page() -> None:
    async with TestClient(ComponentApp({"/": Counter})) as client:
        page = await ComponentPage.open(client, "/")
        assert page.mounted is None
        mount = await page.resync()
        assert mount["k"] == "mount"
        assert page.mounted == mount["node"]
        assert page.mounted is not None and page.mounted["k"] == "r"
        assert page.seq == mount["seq"] == 1
        await page.websocket.close()


async def test_a_page_with_an_id_but_not_a_component_app_needs_ws_path() -> None:
    async def fake(request: Request) -> Response:
        return HTMLResponse('<div id="cv-root" data-cv-page="p1"><input data-k="r"></div>')

    async with TestClient(App([Route("/", fake)])) as client:
        with pytest.raises(TypeError, match="ws_path"):
            await ComponentPage.open(client, "/")


def test_the_page_parser_reads_keys_text_and_void_elements() -> None:
    parser = _PageParser()
    parser.feed(
        '<div id="cv-root" data-cv-page="abc"><ul data-k="r"><li data-k="r/0">one</li>'
        # Unclosed <li> and <b>: </ul> closes them; a stray </p> closes nothing.
        '<li data-k="r/1">two <b>bold</ul></p><input data-k="r/2" value="v"><br></div>'
    )
    parser.close()
    assert parser.page_id == "abc"
    assert [(e.key, e.tag, e.text) for e in parser.elements] == [
        ("r", "ul", "onetwo bold"),
        ("r/0", "li", "one"),
        ("r/1", "li", "two bold"),
        ("r/2", "input", ""),
    ]
    assert parser.elements[3].attributes["value"] == "v"
    assert parser.count == 4


async def test_held_messages_are_matched_in_order_and_undefined_is_no_value() -> None:
    class Twice(RuntimeView):
        results: asyncio.Queue[object]

        async def on_session_start(self, session: Session) -> None:
            await session.send("x", "one")
            await session.send("x", "two")
            from wsserver.plugins.js import execute_js

            await self.results.put(await execute_js(session, "void 0", wait_for_result=True))

    Twice.results = asyncio.Queue()
    async with TestClient(App([WebSocketRoute("/rt", Twice)])) as client:
        ws = await client.websocket_connect("/rt")
        browser = await BrowserSession.start(ws)
        await browser.answer_js()  # holds x/one and x/two meanwhile
        assert await asyncio.wait_for(Twice.results.get(), 5) is None
        assert await browser.receive("x", "two") == {"p": "x", "k": "two"}
        assert await browser.receive("x") == {"p": "x", "k": "one"}
        await ws.close()
