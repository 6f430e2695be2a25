"""Tests for wsserver.plugins.channels.inbound: what the pages send.

Custom messages and their handlers (answers, failures that do not leak, in
order, a handler waiting for its own page), malformed messages closing with
1007, and chunked messages reassembled, timed out, or refused.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from wsserver.plugins.channels import Channel, ChannelManager, HandlerError
from wsserver.plugins.runtime.messages import MalformedMessage, encode

from ._helpers import (
    TIMEOUT,
    ChannelClient,
    closed_with,
    connected,
    serve_manager,
    small_frames,
    wait_until,
)

pytestmark = pytest.mark.timeout(90)


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


# ---------------------------------------------------------------------------
# Token updates
# ---------------------------------------------------------------------------


async def test_token_updates_without_a_verifier_are_unsupported() -> None:
    manager = ChannelManager()
    async with connected(manager) as (_, client):  # the default view refuses them
        await client.send("token", token="t", rchan="a")
        answer = await client.next("res", lambda m: m["response_for"] == "a")
        assert answer["error"] == {
            "name": "HandlerError",
            "message": "this endpoint does not accept token updates",
        }
        # attach() without a verifier: nobody to ask.
        channel = manager.channel(client.channel)
        assert channel is not None
        channel.verify_token = None
        await client.send("token", token="t", rchan="b")
        answer = await client.next("res", lambda m: m["response_for"] == "b")
        assert answer["error"]["name"] == "Unsupported"


async def test_a_verifier_that_returns_no_identity_is_an_internal_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    manager = ChannelManager()
    async with connected(manager) as (_, client):
        channel = manager.channel(client.channel)
        assert channel is not None
        channel.verify_token = lambda channel, token: "not an identity"
        with caplog.at_level(logging.ERROR, "wsserver.plugins.channels"):
            await client.send("token", token="t", rchan="a")
            answer = await client.next("res", lambda m: m["response_for"] == "a")
        assert answer["error"] == {"name": "InternalError", "message": "internal error"}
        assert "error in verify_token" in caplog.text
        assert "expected an Identity" in caplog.text


@pytest.mark.parametrize(
    "fields",
    [
        {"token": "t"},  # no rchan
        {"token": "t", "rchan": ""},
        {"token": "t", "rchan": "x" * 65},
        {"token": 5, "rchan": "a"},
        {"token": "", "rchan": "a"},
        {"token": "x" * 8193, "rchan": "a"},  # past max_token_length
    ],
)
async def test_malformed_token_updates_close_with_1007(fields: dict[str, Any]) -> None:
    async with connected(ChannelManager()) as (_, client):
        await client.send("token", **fields)
        assert await closed_with(client) == 1007


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
# Replies
# ---------------------------------------------------------------------------


async def test_malformed_replies_close_with_1007() -> None:
    async with serve_manager(ChannelManager()) as server:
        client = await ChannelClient.connect(server.port)
        await client.send("reply", response_for="x", ok="yes")
        assert await closed_with(client) == 1007


# ---------------------------------------------------------------------------
# Chunked messages
# ---------------------------------------------------------------------------


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
