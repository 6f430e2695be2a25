"""Servers for the client's end-to-end tests, on loopback: ours, websockets',
wsproto's, and a raw one that answers the handshake with chosen bytes.

Not a test module (leading underscore): shared by the tests of this folder.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import websockets.asyncio.server
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Ping,
    Request,
    TextMessage,
)
from wsproto.extensions import PerMessageDeflate

from wsserver.testing import wire

#: Every wait in these tests is bounded by this.
TIMEOUT = 5.0


@asynccontextmanager
async def websockets_echo(**options: object) -> AsyncIterator[int]:
    """websockets' server, echoing; yields its port."""

    async def echo(connection: websockets.asyncio.server.ServerConnection) -> None:
        async for message in connection:
            await connection.send(message)

    async with websockets.asyncio.server.serve(
        echo,
        "127.0.0.1",
        0,
        ping_interval=None,
        **options,  # type: ignore[arg-type]
    ) as server:
        yield next(iter(server.sockets)).getsockname()[1]


@asynccontextmanager
async def wsproto_echo() -> AsyncIterator[int]:
    """A server on wsproto's sans-I/O server role, echoing; yields its port."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        ws = WSConnection(ConnectionType.SERVER)
        try:
            while data := await reader.read(65536):
                ws.receive_data(data)
                for event in ws.events():
                    if isinstance(event, Request):
                        writer.write(
                            ws.send(
                                AcceptConnection(
                                    subprotocol=event.subprotocols[0]
                                    if event.subprotocols
                                    else None,
                                    extensions=[PerMessageDeflate()],
                                )
                            )
                        )
                    elif isinstance(event, TextMessage):
                        # Each piece as it comes: a fragmented message goes
                        # back fragmented.
                        writer.write(
                            ws.send(
                                TextMessage(
                                    data=event.data, message_finished=event.message_finished
                                )
                            )
                        )
                    elif isinstance(event, BytesMessage):
                        writer.write(
                            ws.send(
                                BytesMessage(
                                    data=event.data, message_finished=event.message_finished
                                )
                            )
                        )
                    elif isinstance(event, Ping):
                        writer.write(ws.send(event.response()))
                    elif isinstance(event, CloseConnection):
                        writer.write(ws.send(event.response()))
                        await writer.drain()
                        return
                await writer.drain()
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    async with server:
        yield server.sockets[0].getsockname()[1]


@asynccontextmanager
async def raw_server(answer: Callable[[str], bytes], *, close: bool = False) -> AsyncIterator[int]:
    """Reads a request head and writes ``answer(key)``; yields the port.

    Then closes the connection if ``close``, else waits for the client to.
    """

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        key = ""
        for line in head.decode("latin-1").split("\r\n"):
            name, _, value = line.partition(":")
            if name.lower() == "sec-websocket-key":
                key = value.strip()
        writer.write(answer(key))
        await writer.drain()
        try:
            if not close:
                await reader.read()  # until the client leaves
        except (ConnectionError, asyncio.CancelledError):
            pass  # the client aborted, or the test ended first
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    async with server:
        yield server.sockets[0].getsockname()[1]


def switching(key: str, *fields: tuple[str, str]) -> bytes:
    """A 101 for ``key`` with more fields."""
    lines = [
        "HTTP/1.1 101 Switching Protocols",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Accept: {wire.accept_for(key)}",
        *(f"{name}: {value}" for name, value in fields),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
