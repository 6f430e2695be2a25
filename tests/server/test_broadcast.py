"""broadcast(): one encoding for many connections, and the slow-peer policy."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest
from websockets.asyncio.client import connect

from wsserver import App, Server, ServerConfig, WebSocket, broadcast
from wsserver.protocol import CloseCode

CONNECTED: list[WebSocket] = []


async def hold_open(websocket: WebSocket) -> None:
    await websocket.accept()
    CONNECTED.append(websocket)
    try:
        async for _ in websocket.iter_text():
            pass
    finally:
        CONNECTED.remove(websocket)


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    app = App()
    app.add_websocket_route("/", hold_open)
    server = Server(
        app,
        ServerConfig(port=0, ping_interval=None, write_limit=16 * 1024, close_timeout=1.0),
    )
    await server.start()
    yield server
    await server.shutdown()


async def wait_for_connections(count: int) -> None:
    for _ in range(200):
        if len(CONNECTED) >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{len(CONNECTED)} connections, expected {count}")


async def test_every_open_connection_receives_text_and_binary(server: Server) -> None:
    url = f"ws://127.0.0.1:{server.port}/"
    clients = [await connect(url) for _ in range(5)]
    try:
        await wait_for_connections(5)
        assert broadcast(CONNECTED, "hello") == 5
        assert broadcast(CONNECTED, b"\x00\x01") == 5
        for client in clients:
            assert await client.recv() == "hello"
            assert await client.recv() == b"\x00\x01"
    finally:
        for client in clients:
            await client.close()


async def test_closed_connections_are_left_out(server: Server) -> None:
    url = f"ws://127.0.0.1:{server.port}/"
    first, second = await connect(url), await connect(url)
    await wait_for_connections(2)
    snapshot = list(CONNECTED)
    await first.close()
    for _ in range(200):
        if len(CONNECTED) == 1:
            break
        await asyncio.sleep(0.01)
    assert broadcast(snapshot, "after") == 1
    assert await second.recv() == "after"
    await second.close()


async def test_compressed_broadcast_uses_each_connections_context(server: Server) -> None:
    url = f"ws://127.0.0.1:{server.port}/"
    plain = await connect(url, compression=None)
    deflated = await connect(url)  # websockets offers permessage-deflate
    await wait_for_connections(2)
    text = "compressible " * 100
    assert broadcast(CONNECTED, text, compress=True) == 2
    assert await plain.recv() == text
    assert await deflated.recv() == text
    await plain.close()
    await deflated.close()


async def test_a_slow_reader_is_closed_with_1013_without_slowing_others(server: Server) -> None:
    url = f"ws://127.0.0.1:{server.port}/"
    fast = await connect(url, max_size=None)
    # A raw client that completes the handshake and then never reads.
    slow = socket.create_connection(("127.0.0.1", server.port))
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.sendall(
        b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    try:
        await wait_for_connections(2)
        slow_ws = next(
            ws for ws in CONNECTED if ws.client and ws.client[1] == slow.getsockname()[1]
        )
        payload = "x" * 64 * 1024
        rounds = 0
        inbox = slow_ws._inbox
        while inbox.ended is None and rounds < 500:
            broadcast(CONNECTED, payload)
            assert await fast.recv() == payload
            rounds += 1
        assert inbox.ended is not None, "the slow reader was never closed"
        assert inbox.ended.code == CloseCode.TRY_AGAIN_LATER
        # The fast client kept receiving all along, and still does.
        assert broadcast(CONNECTED, "still here") >= 1
        assert await fast.recv() == "still here"
    finally:
        slow.close()
        await fast.close()


async def test_skip_policy_leaves_slow_reader_open(server: Server) -> None:
    slow = socket.create_connection(("127.0.0.1", server.port))
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.sendall(
        b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    try:
        await wait_for_connections(1)
        websocket = CONNECTED[0]
        skipped = 0
        for _ in range(500):
            if broadcast(CONNECTED, "y" * 64 * 1024, on_slow="skip") == 0:
                skipped += 1
                break
            await asyncio.sleep(0)
        assert skipped == 1
        assert websocket._inbox.ended is None
        assert websocket._sender.writing_paused
    finally:
        slow.close()


async def test_streaming_connection_gets_the_message_after_its_stream(server: Server) -> None:
    url = f"ws://127.0.0.1:{server.port}/"
    client = await connect(url)
    await wait_for_connections(1)
    websocket = CONNECTED[0]
    async with websocket.stream() as stream:
        await stream.write("part one, ")
        assert broadcast(CONNECTED, "broadcast") == 1
        await stream.write("part two")
    assert await client.recv() == "part one, part two"
    assert await client.recv() == "broadcast"
    await client.close()


def test_on_slow_must_be_a_known_policy() -> None:
    with pytest.raises(ValueError, match="on_slow"):
        broadcast([], "x", on_slow="drop")  # type: ignore[arg-type]


async def test_a_burst_is_written_once_per_connection(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Broadcasts made in one loop iteration leave in one write per
    # connection (not one system call per message), in order.
    url = f"ws://127.0.0.1:{server.port}/"
    clients = [await connect(url) for _ in range(3)]
    try:
        await wait_for_connections(3)
        writes: dict[int, int] = {}
        for connection in server.connections:
            transport = connection.transport
            assert transport is not None
            # asyncio's writelines() joins and calls write(): counting
            # write() counts both.
            original = transport.write

            def counted(
                data: object, original: object = original, key: int = id(connection)
            ) -> None:
                writes[key] = writes.get(key, 0) + 1
                original(data)  # type: ignore[operator]

            monkeypatch.setattr(transport, "write", counted)
        for number in range(10):
            assert broadcast(CONNECTED, f"message {number}") == 3
        assert writes == {}  # nothing written yet: queued for the end of the iteration
        for client in clients:
            assert [await client.recv() for _ in range(10)] == [f"message {n}" for n in range(10)]
        assert sorted(writes.values()) == [1, 1, 1]
    finally:
        for client in clients:
            await client.close()


async def test_a_burst_past_write_limit_is_written_at_once(server: Server) -> None:
    # Queued bytes never exceed write_limit before reaching the transport,
    # so writing_paused (the slow-peer policy's signal) stays truthful.
    url = f"ws://127.0.0.1:{server.port}/"
    client = await connect(url)
    try:
        await wait_for_connections(1)
        [connection] = server.connections
        message = "x" * 1000
        for _ in range(40):  # 40 KB, write_limit is 16 KiB
            broadcast(CONNECTED, message, on_slow="skip")
            assert connection._writer.unflushed < 16 * 1024
        received = [await client.recv() for _ in range(40)]
        assert received == [message] * 40
    finally:
        await client.close()
