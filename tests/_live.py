"""Helpers for end-to-end tests: an in-process server and byte-level clients.

Not a test module (no ``test_`` prefix): shared by the tests of
``websocket``, ``views``, ``app`` and ``cli``.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import h11
from websockets.asyncio.client import ClientConnection
from websockets.datastructures import Headers as ClientHeaders

from wsserver.client import ClientWebSocket
from wsserver.server import Server, ServerConfig, as_app
from wsserver.testing import TestClient, wire

#: Every wait in these tests is bounded by this, so that a bug fails a test
#: quickly instead of hanging until pytest-timeout.
TIMEOUT = 5.0


@asynccontextmanager
async def serving(target: object, **config: Any) -> AsyncIterator[Server]:
    """Serve ``target`` (an app, view class or endpoint) on a free loopback port."""
    config.setdefault("ping_interval", None)
    server = Server(as_app(target), ServerConfig(port=0, **config))
    await server.start()
    try:
        yield server
    finally:
        await server.shutdown()


@asynccontextmanager
async def in_memory(target: object, **config: Any) -> AsyncIterator[TestClient]:
    """Serve ``target`` as ``serving`` does, in memory: no socket (``wsserver.testing``).

    For the tests where the socket is not the point: the same ``Server``
    and ``Connection`` run, against wsserver's client role, with every wait
    bounded by ``TIMEOUT``.
    """
    config.setdefault("ping_interval", None)
    async with TestClient(target, ServerConfig(**config), timeout=TIMEOUT) as client:
        yield client


def ws_url(server: Server, path: str = "/") -> str:
    return f"ws://127.0.0.1:{server.port}{path}"


def handshake_headers(client: ClientConnection | ClientWebSocket) -> ClientHeaders:
    """The headers of the server's 101 response (case-insensitive names)."""
    if isinstance(client, ClientWebSocket):
        return ClientHeaders(list(client.response_headers))
    assert client.response is not None
    return client.response.headers


# ---------------------------------------------------------------------------
# HTTP over a raw socket (h11 parses the answers)
# ---------------------------------------------------------------------------


@dataclass
class HTTPResult:
    status: int
    headers: dict[str, list[str]]
    body: bytes

    def header(self, name: str) -> str:
        values = self.headers.get(name.lower(), [])
        assert len(values) == 1, f"{name}: {values}"
        return values[0]


class HTTPClient:
    """One TCP connection speaking HTTP/1.1, for keep-alive and odd requests."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.h11 = h11.Connection(h11.CLIENT)

    @classmethod
    async def open(cls, port: int) -> HTTPClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def request(
        self, method: str, target: str, headers: list[tuple[str, str]] | None = None
    ) -> HTTPResult:
        if self.h11.our_state is h11.DONE and self.h11.their_state is h11.DONE:
            self.h11.start_next_cycle()
        pairs = [("host", "127.0.0.1"), *(headers or [])]
        self.writer.write(self.h11.send(h11.Request(method=method, target=target, headers=pairs)))
        self.writer.write(self.h11.send(h11.EndOfMessage()))
        await self.writer.drain()
        status = 0
        got: dict[str, list[str]] = {}
        body = bytearray()
        while True:
            event = self.h11.next_event()
            if event is h11.NEED_DATA:
                data = await asyncio.wait_for(self.reader.read(65536), TIMEOUT)
                self.h11.receive_data(data)
                continue
            if isinstance(event, h11.Response):
                status = event.status_code
                for name, value in event.headers:
                    got.setdefault(name.decode().lower(), []).append(value.decode())
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                return HTTPResult(status, got, bytes(body))
            else:
                raise AssertionError(f"unexpected HTTP event {event!r}")

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


async def http_get(
    port: int | TestClient,
    target: str,
    headers: list[tuple[str, str]] | None = None,
    method: str = "GET",
) -> HTTPResult:
    """One request on a connection of its own: over loopback to ``port``, or in memory."""
    if isinstance(port, TestClient):
        response = await port.request(method, target, headers=headers or [])
        got: dict[str, list[str]] = {}
        for name, value in response.headers.multi_items():
            got.setdefault(name.lower(), []).append(value)
        return HTTPResult(response.status_code, got, response.body)
    client = await HTTPClient.open(port)
    try:
        return await client.request(method, target, headers)
    finally:
        await client.close()


# ---------------------------------------------------------------------------
# WebSocket over a raw socket: every frame as it came on the wire
# ---------------------------------------------------------------------------


@dataclass
class Frame:
    fin: bool
    rsv1: bool
    opcode: int
    payload: bytes


class RawWebSocket:
    """A minimal client: handshake without extensions, frames byte by byte."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(
        cls, port: int, path: str = "/", extra: list[tuple[str, str]] | None = None
    ) -> RawWebSocket:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(wire.client_handshake(path, host=f"127.0.0.1:{port}", headers=extra or ()))
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT)
        if not head.startswith(b"HTTP/1.1 101 "):
            writer.close()
            await writer.wait_closed()
            raise AssertionError(f"handshake refused: {head!r}")
        return cls(reader, writer)

    def send_frame(self, opcode: int, payload: bytes, *, fin: bool = True) -> None:
        self.writer.write(wire.client_frame(opcode, payload, fin=fin))

    async def recv_frame(self) -> Frame:
        async def read(n: int) -> bytes:
            return await asyncio.wait_for(self.reader.readexactly(n), TIMEOUT)

        data = await read(2)
        data += await read(wire.frame_header_size(data) - 2)
        header = wire.read_frame_header(data)
        assert header is not None
        assert header.mask is None, "server frames must not be masked"
        return Frame(header.fin, header.rsv1, header.opcode, await read(header.length))

    async def at_eof(self) -> bool:
        """Whether the server closed TCP (waits for it)."""
        return await asyncio.wait_for(self.reader.read(1), TIMEOUT) == b""

    def reset(self) -> None:
        """Drop the connection with a TCP reset (no FIN, no Close frame)."""
        sock = self.writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.writer.transport.abort()

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()
