"""Tests for wsserver.server.decoding: decode each message, or close with its code.

``decode`` is tested alone; ``refuse`` and ``receive`` end to end, in memory
(``wsserver.testing``: the real server, the client role on the other side).
``WebSocketView``'s encodings, which use it, are tested in ``test_views.py``.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from wsserver.client import ConnectionClosed as ClientConnectionClosed
from wsserver.protocol import BinaryMessage, TextMessage
from wsserver.server import Disconnect, MessageDecoder, MessageRefused, WebSocket

from .._live import TIMEOUT, in_memory

TEXT = TextMessage(data='{"a": 1}')
BINARY = BinaryMessage(data=b'{"a": 1}')


def refusal(decoder: MessageDecoder[Any], message: TextMessage | BinaryMessage) -> tuple[int, str]:
    with pytest.raises(MessageRefused) as caught:
        decoder.decode(message)
    return caught.value.code, caught.value.reason


def test_without_a_type_or_a_function_the_data_passes_as_it_is() -> None:
    decoder = MessageDecoder()
    assert decoder.decode(TEXT) == '{"a": 1}'
    assert decoder.decode(BINARY) == b'{"a": 1}'


@pytest.mark.parametrize(
    ("expect", "message", "reason"),
    [
        ("text", BINARY, "expected text messages"),
        ("binary", TEXT, "expected binary messages"),
    ],
)
def test_the_wrong_type_is_refused_with_1003(
    expect: Any, message: TextMessage | BinaryMessage, reason: str
) -> None:
    # RFC 6455 section 7.4.1: 1003, "a type of data it cannot accept".
    assert refusal(MessageDecoder(expect=expect), message) == (1003, reason)


def test_a_value_error_from_the_function_is_refused_with_1007() -> None:
    decoder = MessageDecoder(json.loads, expect="text", invalid_reason="invalid JSON")
    assert decoder.decode(TEXT) == {"a": 1}
    assert refusal(decoder, TextMessage(data="{nope")) == (1007, "invalid JSON")
    # Without invalid_reason, the error's own message is the reason.
    plain = MessageDecoder(json.loads)
    code, reason = refusal(plain, TextMessage(data="{nope"))
    assert code == 1007
    assert reason.startswith("Expecting property name")


def test_the_function_may_choose_its_own_code() -> None:
    def decode(text: str) -> str:
        if len(text) > 4:
            raise MessageRefused(1009, f"{len(text)} characters, at most 4")
        return text

    decoder = MessageDecoder(decode, expect="text", wrong_type_reason="expected JSON text")
    assert decoder.decode(TextMessage(data="ok")) == "ok"
    assert refusal(decoder, TextMessage(data="too long")) == (1009, "8 characters, at most 4")
    assert refusal(decoder, BINARY) == (1003, "expected JSON text")


def test_other_errors_are_not_refusals() -> None:
    # A bug in the decode function is the application's error (1011 and a
    # traceback, from the server), not the peer's.
    def broken(data: str) -> None:
        raise KeyError("bug")

    with pytest.raises(KeyError):
        MessageDecoder(broken).decode(TEXT)


def test_a_refusal_keeps_its_whole_reason() -> None:
    refused = MessageRefused(1007, "é" * 100)
    assert refused.reason == "é" * 100
    assert str(refused) == f"message refused with 1007: {'é' * 100}"


def test_expect_must_be_a_known_type() -> None:
    with pytest.raises(ValueError, match="expect"):
        MessageDecoder(expect="json")  # type: ignore[call-overload]


async def test_receive_decodes_then_closes_on_a_refused_message() -> None:
    decoder = MessageDecoder(json.loads, expect="text", invalid_reason="invalid JSON")
    outcome: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()

    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        seen: list[Any] = []
        while True:
            item = await decoder.receive(websocket)
            seen.append(item)
            if isinstance(item, Disconnect):
                break
        outcome.set_result(seen)

    async with in_memory(endpoint) as served, served.websocket_connect("/") as client:
        await client.send('{"n": 1}')
        await client.send("not JSON")
        with pytest.raises(ClientConnectionClosed):
            await asyncio.wait_for(client.recv(), TIMEOUT)
        assert (client.close_code, client.close_reason) == (1007, "invalid JSON")
        seen = await asyncio.wait_for(outcome, TIMEOUT)
    assert seen == [{"n": 1}, Disconnect(1007, "invalid JSON")]


async def test_refuse_cuts_the_reason_to_fit_a_close_frame() -> None:
    # RFC 6455 section 5.5: 125 bytes of payload, 2 of them the code; the
    # cut falls on a character boundary.
    def decode(text: str) -> str:
        raise MessageRefused(1009, "é" * 100)

    decoder = MessageDecoder(decode, expect="text")
    outcome: asyncio.Future[object] = asyncio.get_running_loop().create_future()

    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        outcome.set_result(await decoder.receive(websocket))

    async with in_memory(endpoint) as served, served.websocket_connect("/") as client:
        await client.send("anything")
        with pytest.raises(ClientConnectionClosed):
            await asyncio.wait_for(client.recv(), TIMEOUT)
        assert (client.close_code, client.close_reason) == (1009, "é" * 61)
        assert await asyncio.wait_for(outcome, TIMEOUT) == Disconnect(1009, "é" * 61)


async def test_receive_returns_the_peers_own_end() -> None:
    decoder = MessageDecoder(expect="binary")
    outcome: asyncio.Future[object] = asyncio.get_running_loop().create_future()

    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        outcome.set_result(await decoder.receive(websocket))

    async with in_memory(endpoint) as served:
        async with served.websocket_connect("/") as client:
            await client.close(4001, "leaving")
        assert await asyncio.wait_for(outcome, TIMEOUT) == Disconnect(4001, "leaving")
