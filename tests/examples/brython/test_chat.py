"""examples/brython/chat.py: the seed's ChatApp in Chromium, and the view's rules.

Two Brython pages talk through the browser's own WebSocket; a websockets
client checks what the view refuses, message by message.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

from examples.brython.chat import MAX_NAME, MAX_TEXT, ChatError, clean_name, clean_text

from ._serving import open_page, serving, texts, wait_text

if TYPE_CHECKING:
    from playwright.async_api import Browser

# One browser for the module (tests/examples/conftest.py), so one loop.
pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(90)]


async def test_two_pages_talk(browser: Browser) -> None:
    async with serving() as server:
        base = f"http://127.0.0.1:{server.port}/chat.html"
        async with open_page(browser, base + "?name=alice") as alice:
            await wait_text(alice, "#messages .system", "alice joined the chat")
            async with open_page(browser, base + "?name=bob") as bob:
                await wait_text(bob, "#messages .system", "bob joined the chat")
                await wait_text(alice, "#messages .system", "bob joined the chat")
                # Enter sends, as in the seed; the text arrives as text.
                await alice.fill("#message", "hello <b>bob</b>")
                await alice.press("#message", "Enter")
                await wait_text(bob, "#messages .chat .text", "hello <b>bob</b>")
                assert await texts(bob, "#messages .chat .user") == ["alice: "]
                assert await bob.locator("#messages b").count() == 0
                assert await alice.input_value("#message") == ""
                # The button sends too.
                await bob.fill("#message", "hi alice")
                await bob.click("#send")
                await wait_text(alice, "#messages .chat .text", "hi alice")
                assert await texts(alice, "#messages .chat .text") == [
                    "hello <b>bob</b>",
                    "hi alice",
                ]
                assert (await texts(alice, "#messages .system"))[0] == "Connected to chat server"
            # Bob's page closed: Alice is told.
            await wait_text(alice, "#messages .system", "bob left the chat")


async def _receive(ws: ClientConnection) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await ws.recv())
    return message


async def test_the_view_refuses_what_the_seed_would_not_send() -> None:
    async with serving() as server, connect(f"ws://127.0.0.1:{server.port}/chat") as ws:
        await ws.send(json.dumps({"type": "message", "text": "too early"}))
        assert await _receive(ws) == {"type": "error", "message": "join the chat first"}
        await ws.send(json.dumps(["not", "an", "object"]))
        assert (await _receive(ws))["message"] == "a message is a JSON object"
        await ws.send(json.dumps({"type": "dance"}))
        assert (await _receive(ws))["message"] == "unknown message type 'dance'"
        await ws.send(json.dumps({"type": "join", "username": "x" * (MAX_NAME + 1)}))
        assert (await _receive(ws))["type"] == "error"
        await ws.send(json.dumps({"type": "join", "username": "  carol  "}))
        assert await _receive(ws) == {"type": "join", "username": "carol"}
        await ws.send(json.dumps({"type": "join", "username": "dave"}))
        assert (await _receive(ws))["message"] == "you have joined already, as carol"
        # The name is the joined one, whatever the message claims.
        await ws.send(json.dumps({"type": "message", "username": "mallory", "text": "hi"}))
        assert await _receive(ws) == {"type": "message", "username": "carol", "text": "hi"}
        await ws.send(json.dumps({"type": "message", "text": "   "}))
        assert (await _receive(ws))["type"] == "error"
        # Leaving, then joining again, is allowed.
        await ws.send(json.dumps({"type": "leave"}))
        await ws.send(json.dumps({"type": "join", "username": "carol"}))
        assert await _receive(ws) == {"type": "join", "username": "carol"}


async def test_a_leave_reaches_the_others_only() -> None:
    async with serving() as server:
        url = f"ws://127.0.0.1:{server.port}/chat"
        async with connect(url) as one, connect(url) as two:
            await one.send(json.dumps({"type": "join", "username": "one"}))
            assert await _receive(one) == {"type": "join", "username": "one"}
            await two.send(json.dumps({"type": "join", "username": "two"}))
            assert await _receive(one) == {"type": "join", "username": "two"}
            assert await _receive(two) == {"type": "join", "username": "two"}
            await two.close()
            assert await _receive(one) == {"type": "leave", "username": "two"}


async def test_names_and_texts() -> None:
    assert clean_name(" a  b ") == "a b"
    bad: object
    for bad in (3, "", "   ", "a\x00b", "x" * (MAX_NAME + 1)):
        with pytest.raises(ChatError):
            clean_name(bad)
    assert clean_text(" hi ") == " hi "
    for bad in (None, "", " \n", "x" * (MAX_TEXT + 1)):
        with pytest.raises(ChatError):
            clean_text(bad)
