"""The WebSocket cycle, end to end: raw ASGI applications written here,
driven over loopback by the ``websockets`` client (or raw frames where the
wire matters)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidStatus

from wsserver.protocol import Opcode, ProtocolSettings
from wsserver.server.asgi import ClientDisconnected

from ..._live import TIMEOUT, RawWebSocket
from ..helpers import ws_client
from .helpers import serving_asgi

Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Body = Callable[[Receive, Send], Awaitable[Any]]


class Probe:
    """An ASGI application running ``body`` for each WebSocket; its outcome."""

    def __init__(self, body: Body) -> None:
        self.body = body
        self.result: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

    async def __call__(self, scope: Message, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            # No lifespan: tolerated (see test_lifespan).
            raise RuntimeError("websocket only")
        try:
            value = await self.body(receive, send)
        except BaseException as error:
            if not self.result.done():
                self.result.set_exception(error)
            raise
        if not self.result.done():
            self.result.set_result(value)

    async def outcome(self) -> Any:
        return await asyncio.wait_for(self.result, TIMEOUT)


async def closed_with(client: ClientConnection) -> tuple[int | None, str | None]:
    await asyncio.wait_for(client.wait_closed(), TIMEOUT)
    assert client.close_code is not None or client.close_reason is not None
    return client.close_code, client.close_reason


async def refused(server: Any, path: str = "/") -> tuple[int, bytes, dict[str, str]]:
    with pytest.raises(InvalidStatus) as caught:
        async with ws_client(server, path):
            pass
    response = caught.value.response
    return response.status_code, bytes(response.body or b""), dict(response.headers)


async def test_connect_accept_receive_send_and_disconnect() -> None:
    async def body(receive: Receive, send: Send) -> list[Message]:
        events = [await receive()]
        await send({"type": "websocket.accept", "subprotocol": "v1", "headers": [(b"x-a", b"1")]})
        while True:
            event = await receive()
            events.append(event)
            if event["type"] == "websocket.disconnect":
                break
            if "text" in event:
                await send({"type": "websocket.send", "text": event["text"].upper()})
            else:
                await send({"type": "websocket.send", "bytes": event["bytes"][::-1]})
        # Every later receive() gives the disconnect again.
        events.append(await receive())
        return events

    probe = Probe(body)
    async with serving_asgi(probe) as server:
        async with ws_client(server, subprotocols=["v1"]) as client:
            assert client.subprotocol == "v1"
            assert client.response is not None
            assert client.response.headers["x-a"] == "1"
            await client.send("hello")
            assert await client.recv() == "HELLO"
            await client.send(b"\x01\x02")
            assert await client.recv() == b"\x02\x01"
            await client.close(4000, "bye")
        events = await probe.outcome()
    disconnect = {"type": "websocket.disconnect", "code": 4000, "reason": "bye"}
    assert events == [
        {"type": "websocket.connect"},
        {"type": "websocket.receive", "text": "hello"},
        {"type": "websocket.receive", "bytes": b"\x01\x02"},
        disconnect,
        disconnect,
    ]


async def test_close_with_code_and_reason_then_the_peers_answer() -> None:
    async def body(receive: Receive, send: Send) -> Message:
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": 4001, "reason": "done"})
        return await receive()

    probe = Probe(body)
    async with serving_asgi(probe) as server:
        async with ws_client(server) as client:
            assert await closed_with(client) == (4001, "done")
        assert await probe.outcome() == {
            "type": "websocket.disconnect",
            "code": 4001,
            "reason": "done",
        }


async def test_close_without_a_code_is_1000() -> None:
    async def body(receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "reason": None})

    async with serving_asgi(Probe(body)) as server, ws_client(server) as client:
        assert await closed_with(client) == (1000, "")


async def test_close_before_accept_is_403() -> None:
    async def body(receive: Receive, send: Send) -> Message:
        await receive()
        await send({"type": "websocket.close", "code": 1008})
        return await receive()

    probe = Probe(body)
    async with serving_asgi(probe) as server:
        status, _, _ = await refused(server)
        assert status == 403
        # After a refused handshake, receive() says the client is gone.
        assert await probe.outcome() == {"type": "websocket.disconnect", "code": 1006, "reason": ""}


async def test_an_unanswered_handshake_is_403() -> None:
    async def body(receive: Receive, send: Send) -> None:
        await receive()

    async with serving_asgi(Probe(body)) as server:
        assert (await refused(server))[0] == 403


async def test_denial_response_with_status_headers_and_a_streamed_body() -> None:
    async def body(receive: Receive, send: Send) -> None:
        await receive()
        await send(
            {
                "type": "websocket.http.response.start",
                "status": 401,
                "headers": [(b"www-authenticate", b"Bearer"), (b"content-type", b"text/plain")],
            }
        )
        await send({"type": "websocket.http.response.body", "body": b"token ", "more_body": True})
        await send({"type": "websocket.http.response.body", "body": b"required"})

    async with serving_asgi(Probe(body)) as server:
        status, content, headers = await refused(server)
    assert status == 401
    assert content == b"token required"
    assert headers["www-authenticate"] == "Bearer"
    assert headers["content-length"] == "14"


@pytest.mark.parametrize(
    ("events", "error"),
    [
        ([{"type": "websocket.send", "text": "x"}], "'websocket.send' before the handshake"),
        (
            [{"type": "websocket.accept"}, {"type": "websocket.accept"}],
            "'websocket.accept' after websocket.accept",
        ),
        (
            [{"type": "websocket.http.response.start", "status": 403}, {"type": "websocket.send"}],
            "'websocket.send' after websocket.http.response.start",
        ),
        ([{"type": "http.response.start", "status": 200}], "'http.response.start' before"),
        (
            [{"type": "websocket.accept"}, {"type": "websocket.send"}],
            "exactly one of text and bytes",
        ),
        (
            [{"type": "websocket.accept"}, {"type": "websocket.send", "text": "a", "bytes": b""}],
            "exactly one of text and bytes",
        ),
    ],
)
async def test_events_out_of_order_raise_naming_the_event(
    events: list[Message], error: str
) -> None:
    async def body(receive: Receive, send: Send) -> None:
        await receive()
        for event in events:
            await send(event)

    probe = Probe(body)
    async with serving_asgi(probe) as server:
        try:
            async with ws_client(server) as client:
                await closed_with(client)
        except InvalidStatus as refusal:
            assert refusal.response.status_code == 500
        with pytest.raises(RuntimeError, match=error):
            await probe.outcome()


async def test_after_close_every_send_is_an_error() -> None:
    async def body(receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close"})
        await send({"type": "websocket.send", "text": "late"})

    probe = Probe(body)
    async with serving_asgi(probe) as server, ws_client(server) as client:
        assert await closed_with(client) == (1000, "")
        with pytest.raises(RuntimeError, match=r"'websocket\.send' after the application closed"):
            await probe.outcome()


async def test_receive_again_before_answering_the_handshake_is_an_error() -> None:
    async def body(receive: Receive, send: Send) -> None:
        await receive()
        await receive()

    probe = Probe(body)
    async with serving_asgi(probe) as server:
        assert (await refused(server))[0] == 500
        with pytest.raises(RuntimeError, match=r"send websocket\.accept"):
            await probe.outcome()


@pytest.mark.parametrize(("accept_first", "outcome"), [(False, 500), (True, 1011)])
async def test_an_exception_is_500_before_accept_and_1011_after(
    accept_first: bool, outcome: int, caplog: pytest.LogCaptureFixture
) -> None:
    async def body(receive: Receive, send: Send) -> None:
        await receive()
        if accept_first:
            await send({"type": "websocket.accept"})
        raise KeyError("boom")

    probe = Probe(body)
    with caplog.at_level(logging.ERROR, logger="wsserver"):
        async with serving_asgi(probe) as server:
            if accept_first:
                async with ws_client(server) as client:
                    assert (await closed_with(client))[0] == outcome
            else:
                assert (await refused(server))[0] == outcome
            with pytest.raises(KeyError):
                await probe.outcome()
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert "KeyError: 'boom'" in caplog.text


async def test_a_send_after_the_peer_left_raises_client_disconnected() -> None:
    left = asyncio.Event()

    async def body(receive: Receive, send: Send) -> str:
        await receive()
        await send({"type": "websocket.accept"})
        await left.wait()
        try:
            for _ in range(100):
                await send({"type": "websocket.send", "text": "anyone?"})
                await asyncio.sleep(0)
        except ClientDisconnected as error:
            assert isinstance(error, OSError)
            return "disconnected"
        return "never told"

    probe = Probe(body)
    async with serving_asgi(probe) as server:
        raw = await RawWebSocket.connect(server.port)
        raw.reset()
        left.set()
        assert await probe.outcome() == "disconnected"


async def test_the_compression_key_controls_each_message() -> None:
    data = "a" * 1000

    async def body(receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": data})
        await send({"type": "websocket.send", "text": data, "wsserver.compress": False})
        await send({"type": "websocket.send", "bytes": data.encode(), "wsserver.compress": False})
        await receive()

    async with serving_asgi(Probe(body)) as server:
        raw = await RawWebSocket.connect(
            server.port, extra=[("Sec-WebSocket-Extensions", "permessage-deflate")]
        )
        try:
            compressed, plain_text, plain_bytes = [await raw.recv_frame() for _ in range(3)]
        finally:
            await raw.close()
    assert compressed.rsv1
    assert len(compressed.payload) < len(data)
    assert (plain_text.rsv1, plain_text.opcode, plain_text.payload) == (
        False,
        Opcode.TEXT,
        data.encode(),
    )
    assert (plain_bytes.rsv1, plain_bytes.opcode) == (False, Opcode.BINARY)


async def test_a_message_over_the_limit_closes_with_1009_and_the_app_is_told() -> None:
    async def body(receive: Receive, send: Send) -> Message:
        await receive()
        await send({"type": "websocket.accept"})
        return await receive()

    probe = Probe(body)
    async with serving_asgi(probe, protocol=ProtocolSettings(max_message_size=10)) as server:
        async with ws_client(server) as client:
            await client.send("x" * 11)
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(client.recv(), TIMEOUT)
            assert client.close_code == 1009
        event = await probe.outcome()
    assert event["type"] == "websocket.disconnect"
    assert event["code"] == 1009


@pytest.mark.parametrize(
    ("events", "error"),
    [
        ([{"type": "websocket.http.response.start", "status": "403"}], "status must be an int"),
        (
            [
                {"type": "websocket.http.response.start", "status": 403},
                {"type": "websocket.http.response.body", "body": "text"},
            ],
            "body must be bytes",
        ),
    ],
)
async def test_malformed_denial_events_are_type_errors_and_500(
    events: list[Message], error: str
) -> None:
    async def body(receive: Receive, send: Send) -> None:
        await receive()
        for event in events:
            await send(event)

    probe = Probe(body)
    async with serving_asgi(probe) as server:
        assert (await refused(server))[0] == 500
        with pytest.raises(TypeError, match=error):
            await probe.outcome()
