"""Tests for ``ClientWebSocket``: the open connection's API, end to end over
loopback against our server (and a raw one where the server must misbehave).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.client._servers import TIMEOUT, raw_server, switching
from tests.server.helpers import FunctionApp, harness
from wsserver.client import ConnectionClosed, ConnectionClosedError, ConnectionClosedOK, connect
from wsserver.protocol import State
from wsserver.server import WebSocket


def options(**extra: Any) -> dict[str, Any]:
    extra.setdefault("open_timeout", TIMEOUT)
    extra.setdefault("close_timeout", TIMEOUT)
    extra.setdefault("ping_interval", None)
    return extra


async def test_messages_before_the_servers_close_then_a_normal_end() -> None:
    async def handler(websocket: WebSocket) -> None:
        await websocket.accept()
        for number in range(3):
            await websocket.send_text(str(number))
        await websocket.close(1000, "done")

    async with harness() as h:
        server = await h.serve(FunctionApp(handler))
        async with connect(f"ws://127.0.0.1:{server.port}/", **options()) as ws:
            got = [message async for message in ws]
            assert got == ["0", "1", "2"]
            assert (ws.close_code, ws.close_reason) == (1000, "done")
            assert ws.state is State.CLOSED
            with pytest.raises(ConnectionClosedOK):
                await ws.recv()
            with pytest.raises(ConnectionClosed):
                await ws.send("late")


async def test_an_error_close_raises_out_of_the_loop() -> None:
    async def handler(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.close(1011, "broken")

    async with harness() as h:
        server = await h.serve(FunctionApp(handler))
        async with connect(f"ws://127.0.0.1:{server.port}/", **options()) as ws:
            with pytest.raises(ConnectionClosedError) as caught:
                async for _ in ws:
                    pass
    assert (caught.value.code, caught.value.reason) == (1011, "broken")


async def test_ping_returns_the_round_trip_time() -> None:
    async with harness() as h:
        server = await h.serve()
        async with connect(f"ws://127.0.0.1:{server.port}/", **options()) as ws:
            rtt = await ws.ping()
            assert 0 < rtt < TIMEOUT
            assert ws.latency == rtt
            assert 0 < await ws.ping(b"chosen") < TIMEOUT


async def test_a_fragmented_message_from_an_async_iterable() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for number in range(5):
            yield bytes([number]) * 1000

    async def mixed() -> AsyncIterator[str | bytes]:
        yield "text"
        yield b"bytes"

    async with harness() as h:
        server = await h.serve()
        async with connect(f"ws://127.0.0.1:{server.port}/", **options()) as ws:
            await ws.send(chunks())
            assert await ws.recv() == b"".join(bytes([n]) * 1000 for n in range(5))
            await ws.send([])  # nothing to send
            with pytest.raises(TypeError):
                await ws.send(42)  # type: ignore[arg-type]
            with pytest.raises(TypeError):
                await ws.send(mixed())
            # A message cut in the middle cannot go on: the connection fails.
            with pytest.raises(ConnectionClosedError) as caught:
                await ws.recv()
            assert caught.value.sent_code == 1011


async def test_many_messages_through_a_small_queue_arrive_in_order() -> None:
    async def handler(websocket: WebSocket) -> None:
        await websocket.accept()
        for number in range(200):
            await websocket.send_text(str(number))
        await websocket.close()

    async with harness() as h:
        server = await h.serve(FunctionApp(handler))
        async with connect(f"ws://127.0.0.1:{server.port}/", max_queue=2, **options()) as ws:
            got = [message async for message in ws]
    assert got == [str(number) for number in range(200)]


async def test_a_message_over_max_size_fails_with_1009() -> None:
    async def handler(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_bytes(b"x" * 2000)
        await asyncio.sleep(TIMEOUT)

    async with harness() as h:
        server = await h.serve(FunctionApp(handler))
        async with connect(f"ws://127.0.0.1:{server.port}/", max_size=1000, **options()) as ws:
            with pytest.raises(ConnectionClosedError) as caught:
                await ws.recv()
    assert caught.value.sent_code == 1009


async def test_the_heartbeat_fails_a_silent_server() -> None:
    # The server answers the handshake, then never reads or answers a ping.
    async with (
        raw_server(switching) as port,
        connect(
            f"ws://127.0.0.1:{port}/",
            **options(ping_interval=0.05, ping_timeout=0.1, close_timeout=0.2),
        ) as ws,
    ):
        with pytest.raises(ConnectionClosedError) as caught:
            await asyncio.wait_for(ws.recv(), TIMEOUT)
    assert caught.value.sent_code == 1011


async def test_close_gives_up_on_a_server_that_never_closes() -> None:
    async with raw_server(switching) as port:
        ws = await connect(f"ws://127.0.0.1:{port}/", **options(close_timeout=0.2))
        await asyncio.wait_for(ws.close(), TIMEOUT)
        await asyncio.wait_for(ws.wait_closed(), TIMEOUT)
        # No Close came back: the transport was aborted (1006).
        assert (ws.state, ws.close_code) == (State.CLOSED, 1006)
        await ws.close()  # again: nothing to do


async def test_close_with_a_code_is_echoed_by_the_server() -> None:
    async with harness() as h:
        server = await h.serve()
        ws = await connect(f"ws://127.0.0.1:{server.port}/", **options())
        await ws.close(4000, "bye")
        assert (ws.close_code, ws.state) == (4000, State.CLOSED)


async def test_a_large_message_is_written_in_pieces_and_echoed_whole() -> None:
    # Above 64 KiB the frame's header and payload are written one by one
    # rather than joined first (ClientWebSocket._flush).
    payload = bytes(range(256)) * 1024  # 256 KiB
    async with harness() as h:
        server = await h.serve()
        async with connect(f"ws://127.0.0.1:{server.port}/", **options(compression=None)) as ws:
            await ws.send(payload)
            assert await asyncio.wait_for(ws.recv(), TIMEOUT) == payload
            await ws.send("small after large")
            assert await asyncio.wait_for(ws.recv(), TIMEOUT) == "small after large"


async def test_close_after_taking_a_message_reads_the_servers_close_code() -> None:
    # The application took a message and did not come back to recv(): its
    # own close() must still take the server's Close (no hold), so that the
    # code is known when close() returns (found by the in-memory TestClient).
    async with harness() as h:
        server = await h.serve()
        ws = await connect(f"ws://127.0.0.1:{server.port}/", **options())
        await ws.send("taken")
        assert await ws.recv() == "taken"
        await ws.close(4000, "bye")
        assert (ws.close_code, ws.state) == (4000, State.CLOSED)


async def test_a_close_held_behind_an_unread_message_is_answered_after_close_timeout() -> None:
    async def handler(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text("unread")
        await websocket.close(1000, "bye")

    async with harness() as h:
        server = await h.serve(FunctionApp(handler))
        ws = await connect(f"ws://127.0.0.1:{server.port}/", **options(close_timeout=0.1))
        # Nobody reads: the server's Close waits behind the message, then
        # is answered anyway, and the server closes TCP.
        await asyncio.wait_for(ws.wait_closed(), TIMEOUT)
        assert ws.close_code == 1000
        assert await ws.recv() == "unread"
        with pytest.raises(ConnectionClosedOK):
            await ws.recv()


async def test_fragments_must_be_str_or_bytes() -> None:
    async with harness() as h:
        server = await h.serve()
        async with connect(f"ws://127.0.0.1:{server.port}/", **options()) as ws:
            with pytest.raises(TypeError, match="fragment of type int"):
                await ws.send([1, 2])  # type: ignore[list-item]


async def test_a_ping_when_the_server_is_gone() -> None:
    async with raw_server(switching, close=True) as port:
        ws = await connect(f"ws://127.0.0.1:{port}/", **options())
        await asyncio.wait_for(ws.wait_closed(), TIMEOUT)
        with pytest.raises(ConnectionClosedError) as caught:
            await ws.ping()
    assert caught.value.code == 1006


async def test_two_receivers_at_once_are_refused() -> None:
    async with harness() as h:
        server = await h.serve()
        async with connect(f"ws://127.0.0.1:{server.port}/", **options()) as ws:
            first = asyncio.ensure_future(ws.recv())
            await asyncio.sleep(0)  # one loop turn: the first recv() is waiting
            with pytest.raises(RuntimeError, match="already waiting"):
                await ws.recv()
            await ws.send("to the first")
            assert await asyncio.wait_for(first, TIMEOUT) == "to the first"
