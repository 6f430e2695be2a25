"""The in-memory transport pair: delivery, flow control, half-close, reset; and a raw
client on it against the real server (bytes built by ``wire``, not by the core)."""

from __future__ import annotations

import asyncio

import pytest

from wsserver.server import App, ServerConfig, WebSocket, WebSocketRoute
from wsserver.server.connection import Connection
from wsserver.server.server import Server
from wsserver.testing import wire
from wsserver.testing.transport import DEFAULT_HIGH_WATER, MemoryTransport, transport_pair


class Recorder(asyncio.Protocol):
    """Records every callback; ``keep_open`` is what ``eof_received`` returns."""

    def __init__(self, *, keep_open: bool = False) -> None:
        self.keep_open = keep_open
        self.transport: MemoryTransport | None = None
        self.events: list[object] = []
        self.data = bytearray()
        self.lost: asyncio.Future[Exception | None] = asyncio.get_running_loop().create_future()
        self.changed = asyncio.Event()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, MemoryTransport)
        self.transport = transport
        self.events.append("made")

    def data_received(self, data: bytes) -> None:
        assert isinstance(data, bytes)
        self.data += data
        self.events.append(("data", data))
        self.changed.set()

    def eof_received(self) -> bool:
        self.events.append("eof")
        self.changed.set()
        return self.keep_open

    def pause_writing(self) -> None:
        self.events.append("pause")

    def resume_writing(self) -> None:
        self.events.append("resume")

    def connection_lost(self, exc: Exception | None) -> None:
        self.events.append(("lost", type(exc).__name__ if exc else None))
        if not self.lost.done():
            self.lost.set_result(exc)

    @property
    def t(self) -> MemoryTransport:
        assert self.transport is not None
        return self.transport


def pair(
    a: asyncio.BaseProtocol, b: asyncio.BaseProtocol
) -> tuple[MemoryTransport, MemoryTransport]:
    return transport_pair(
        asyncio.get_running_loop(),
        a,
        b,
        client_address=("127.0.0.1", 5000),
        server_address=("127.0.0.1", 80),
    )


async def turns(count: int = 3) -> None:
    """Let the loop run ``count`` rounds of ready callbacks (no clock involved)."""
    for _ in range(count):
        await asyncio.sleep(0)


async def test_bytes_arrive_later_in_order_and_joined() -> None:
    server, client = Recorder(), Recorder()
    server_side, client_side = pair(server, client)
    assert server.events == client.events == ["made"]
    assert server_side.get_extra_info("peername") == ("127.0.0.1", 5000)
    assert client_side.get_extra_info("peername") == ("127.0.0.1", 80)
    assert client_side.get_extra_info("ssl_object") is None
    client_side.write(b"one ")
    client_side.writelines([b"two ", bytearray(b"three")])
    assert server.data == b""  # never inside write()
    assert client_side.get_write_buffer_size() == 13
    await turns()
    assert server.data == b"one two three"
    assert server.events == ["made", ("data", b"one two three")]
    assert client_side.get_write_buffer_size() == 0


async def test_pause_reading_holds_bytes_until_resumed() -> None:
    server, client = Recorder(), Recorder()
    server_side, client_side = pair(server, client)
    server_side.pause_reading()
    assert not server_side.is_reading()
    client_side.write(b"held")
    await turns()
    assert server.data == b""
    server_side.resume_reading()
    server_side.resume_reading()  # twice is harmless
    await turns()
    assert server.data == b"held"


async def test_write_buffer_pauses_and_resumes_the_writer() -> None:
    server, client = Recorder(), Recorder()
    server_side, client_side = pair(server, client)
    assert client_side.get_write_buffer_limits() == (DEFAULT_HIGH_WATER // 4, DEFAULT_HIGH_WATER)
    client_side.set_write_buffer_limits(high=100)
    assert client_side.get_write_buffer_limits() == (25, 100)
    server_side.pause_reading()
    client_side.write(b"x" * 101)
    assert client.events == ["made", "pause"]
    server_side.resume_reading()
    await turns()
    assert client.events == ["made", "pause", "resume"]
    assert len(server.data) == 101
    with pytest.raises(ValueError):
        client_side.set_write_buffer_limits(high=1, low=2)
    client_side.set_write_buffer_limits(low=10)
    assert client_side.get_write_buffer_limits() == (10, 40)


async def test_close_sends_eof_after_the_data_and_a_false_eof_closes_the_peer() -> None:
    server, client = Recorder(), Recorder(keep_open=False)
    server_side, _ = pair(server, client)
    server_side.write(b"last words")
    server_side.close()
    server_side.close()  # twice is harmless
    assert server_side.is_closing()
    server_side.write(b"ignored after close")
    assert await asyncio.wait_for(client.lost, 5) is None
    assert await asyncio.wait_for(server.lost, 5) is None
    assert client.events == ["made", ("data", b"last words"), "eof", ("lost", None)]
    assert server.events == ["made", ("lost", None)]


async def test_write_eof_is_a_half_close() -> None:
    server, client = Recorder(keep_open=True), Recorder()
    server_side, client_side = pair(server, client)
    assert client_side.can_write_eof()
    client_side.write(b"request")
    client_side.write_eof()
    client_side.write_eof()  # twice is harmless
    with pytest.raises(RuntimeError):
        client_side.write(b"more")
    await turns()
    assert server.events == ["made", ("data", b"request"), "eof"]
    server_side.write(b"answer")  # the other direction still works
    await turns()
    assert client.data == b"answer"
    server_side.close()
    await asyncio.wait_for(client.lost, 5)
    await asyncio.wait_for(server.lost, 5)


async def test_abort_is_a_reset_for_the_peer() -> None:
    server, client = Recorder(), Recorder()
    server_side, client_side = pair(server, client)
    client_side.write(b"unread")
    server_side.pause_reading()
    client_side.abort()
    exc = await asyncio.wait_for(server.lost, 5)
    assert isinstance(exc, ConnectionResetError)
    assert await asyncio.wait_for(client.lost, 5) is None
    assert server.data == b""  # the reset overtook what was not read
    client_side.abort()  # after the end: nothing
    client_side.write(b"nowhere")


async def test_set_protocol_redirects_delivery() -> None:
    first, second, client = Recorder(), Recorder(), Recorder()
    server_side, client_side = pair(first, client)
    server_side.set_protocol(second)
    assert server_side.get_protocol() is second
    client_side.write(b"to the second")
    await turns()
    assert first.data == b""
    assert second.data == b"to the second"


# -- a raw client against the real server ------------------------------------------


async def echo(websocket: WebSocket) -> None:
    await websocket.accept()
    async for message in websocket.iter_text():
        await websocket.send_text(message)


async def raw_connection(
    server: Server,
) -> tuple[Recorder, MemoryTransport]:
    client = Recorder()
    _, client_side = pair(Connection(server), client)
    client_side.write(wire.client_handshake(host="testserver", path="/"))
    while b"\r\n\r\n" not in client.data:
        client.changed.clear()
        await asyncio.wait_for(client.changed.wait(), 5)
    return client, client_side


async def read_until(client: Recorder, needle: bytes) -> None:
    while needle not in client.data and not client.lost.done():
        client.changed.clear()
        await asyncio.wait_for(client.changed.wait(), 5)


async def test_the_server_reads_a_buffered_protocol_delivery_and_answers_frames() -> None:
    server = Server(App([WebSocketRoute("/", echo)]), ServerConfig(ping_interval=None))
    await server.start_in_memory()
    try:
        client, client_side = await raw_connection(server)
        assert client.data.startswith(b"HTTP/1.1 101 ")
        client.data.clear()
        client_side.write(wire.client_frame(wire.OP_TEXT, b"raw hello"))
        await read_until(client, b"raw hello")
        header = wire.read_frame_header(client.data)
        assert header is not None
        assert (header.opcode, header.mask, header.length) == (wire.OP_TEXT, None, 9)
        client_side.close()  # the raw client does not answer a Close: it leaves
        await asyncio.wait_for(client.lost, 5)
    finally:
        await server.shutdown()


async def test_an_unmasked_frame_is_a_protocol_error_1002() -> None:
    server = Server(App([WebSocketRoute("/", echo)]), ServerConfig(ping_interval=None))
    await server.start_in_memory()
    try:
        client, client_side = await raw_connection(server)
        client.data.clear()
        # RFC 6455 section 5.1: "The server MUST close the connection upon
        # receiving a frame that is not masked."
        client_side.write(wire.client_frame(wire.OP_TEXT, b"bare", mask=None))
        await read_until(client, b"\x03\xea")  # 1002
        header = wire.read_frame_header(client.data)
        assert header is not None and header.opcode == wire.OP_CLOSE
        assert client.data[header.size : header.size + 2] == (1002).to_bytes(2, "big")
    finally:
        await server.shutdown()


async def test_writes_to_a_gone_peer_go_nowhere() -> None:
    server, client = Recorder(), Recorder(keep_open=True)
    server_side, client_side = pair(server, client)
    server_side.close()
    await asyncio.wait_for(server.lost, 5)
    assert client.events == ["made", "eof"]  # half-open: it kept its side
    client_side.write(b"into the void")
    assert client_side.get_write_buffer_size() == 0
    client_side.abort()  # the peer is gone: no reset to send
    assert await asyncio.wait_for(client.lost, 5) is None


async def test_a_close_of_the_kept_side_after_the_peer_left() -> None:
    server, client = Recorder(), Recorder(keep_open=True)
    server_side, client_side = pair(server, client)
    server_side.close()
    await asyncio.wait_for(server.lost, 5)
    client_side.close()
    assert await asyncio.wait_for(client.lost, 5) is None


async def test_pause_between_write_and_delivery_holds_the_bytes() -> None:
    server, client = Recorder(), Recorder()
    server_side, client_side = pair(server, client)
    client_side.write(b"late")
    server_side.pause_reading()  # before the delivery's turn
    await turns()
    assert server.data == b""
    server_side.resume_reading()
    await turns()
    assert server.data == b"late"


async def test_a_reset_after_the_own_close_changes_nothing() -> None:
    server, client = Recorder(), Recorder()
    server_side, client_side = pair(server, client)
    server_side.close()  # its connection_lost(None) is on its way
    client_side.abort()  # the reset comes after it
    assert await asyncio.wait_for(server.lost, 5) is None
    await turns()
    assert server.events == ["made", ("lost", None)]


class SmallBuffer(asyncio.BufferedProtocol):
    """A buffered protocol with a 4-byte buffer: a delivery takes several reads."""

    def __init__(self) -> None:
        self.buffer = bytearray(4)
        self.reads: list[bytes] = []

    def get_buffer(self, sizehint: int) -> bytearray:
        return self.buffer

    def buffer_updated(self, nbytes: int) -> None:
        self.reads.append(bytes(self.buffer[:nbytes]))


async def test_a_buffered_protocol_reads_through_its_buffer() -> None:
    small, client = SmallBuffer(), Recorder()
    _, client_side = pair(small, client)
    client_side.write(b"0123456789")
    await turns()
    assert small.reads == [b"0123", b"4567", b"89"]
