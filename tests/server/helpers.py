"""Shared helpers for the end-to-end tests of the asyncio server.

Not a test module (no ``test_`` prefix): used by ``test_connection.py`` and
``test_server.py``.

The clients here are independent of wsserver's own protocol code: a raw
socket that writes frames built by hand and reads the server's bytes as they
come, for byte-level control (buffer sizes, half requests, invalid frames,
resets).  Higher-level tests use the ``websockets`` library's client.
"""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import struct
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trustme
from websockets.asyncio.client import connect

from wsserver.protocol import BinaryMessage, TextMessage
from wsserver.server import Server, ServerConfig
from wsserver.server.app import Application
from wsserver.server.connection import Connection
from wsserver.server.requests import Request
from wsserver.server.responses import PlainTextResponse, Response
from wsserver.server.websocket import Disconnect, WebSocket
from wsserver.testing import wire

# The wire builders the server tests use, from the one independent encoder
# (re-exported: the tests import them from here).
from wsserver.testing.wire import OP_BINARY as OP_BINARY
from wsserver.testing.wire import OP_CLOSE as OP_CLOSE
from wsserver.testing.wire import OP_PING as OP_PING
from wsserver.testing.wire import OP_PONG as OP_PONG
from wsserver.testing.wire import OP_TEXT as OP_TEXT
from wsserver.testing.wire import close_frame as close_frame
from wsserver.testing.wire import close_payload as close_payload

#: Every wait in these tests is bounded by this, so that a bug fails a test
#: quickly instead of hanging until pytest-timeout.
TIMEOUT = 5.0

OP_CONT = wire.OP_CONTINUATION


# ---------------------------------------------------------------------------
# Applications
# ---------------------------------------------------------------------------

WebSocketHandler = Callable[[WebSocket], Awaitable[None]]


class FunctionApp:
    """An ``Application`` around one WebSocket handler (and a tiny HTTP side).

    Deliberately not ``App``: these tests are about the server and the
    connection, and must not depend on routing.  ``GET /healthz`` answers
    ``ok``; ``GET /slow`` waits for ``http_gate``; anything else is 404.
    """

    def __init__(self, handler: WebSocketHandler | None = None) -> None:
        self.handler = handler if handler is not None else echo
        self.http_gate = asyncio.Event()
        self.http_started = asyncio.Event()

    async def handle_http(self, request: Request) -> Response:
        if request.url.path == "/healthz":
            return PlainTextResponse("ok\n")
        if request.url.path == "/slow":
            self.http_started.set()
            await self.http_gate.wait()
            return PlainTextResponse("slow\n")
        return PlainTextResponse("Not Found\n", status_code=404)

    async def handle_websocket(self, websocket: WebSocket) -> None:
        await self.handler(websocket)


async def echo(websocket: WebSocket) -> None:
    """Accept, then echo every message until the peer leaves."""
    await websocket.accept()
    while True:
        message = await websocket.receive()
        if isinstance(message, TextMessage):
            await websocket.send_text(message.data)
        elif isinstance(message, BinaryMessage):
            await websocket.send_bytes(message.data)
        else:
            return


async def echo_text_close_on_request(websocket: WebSocket) -> None:
    """Accept, echo text, close with 1000 on the text ``close``; end on disconnect."""
    await websocket.accept()
    while True:
        message = await websocket.receive()
        if isinstance(message, Disconnect):
            return
        if isinstance(message, TextMessage) and message.data == "close":
            await websocket.close(1000)
        elif isinstance(message, TextMessage):
            await websocket.send_text(message.data)


# ---------------------------------------------------------------------------
# Servers
# ---------------------------------------------------------------------------


def quick_config(**settings: Any) -> ServerConfig:
    """A ``ServerConfig`` for tests: a free port, no heartbeats, short waits."""
    settings.setdefault("port", 0)
    settings.setdefault("ping_interval", None)
    settings.setdefault("close_timeout", 1.0)
    settings.setdefault("shutdown_timeout", 1.0)
    return ServerConfig(**settings)


@dataclass
class Harness:
    """Servers and raw clients of one test, torn down at its end."""

    servers: list[Server] = field(default_factory=list)
    clients: list[RawClient] = field(default_factory=list)

    async def serve(self, app: Application | None = None, **settings: Any) -> Server:
        server = Server(app if app is not None else FunctionApp(), quick_config(**settings))
        await server.start()
        self.servers.append(server)
        return server

    async def raw(self, server: Server | int, **options: Any) -> RawClient:
        port = server if isinstance(server, int) else server.port
        client = await RawClient.connect(port, **options)
        self.clients.append(client)
        return client

    async def close(self) -> None:
        for client in self.clients:
            client.close()
        for server in self.servers:
            await server.shutdown()


@asynccontextmanager
async def harness() -> AsyncIterator[Harness]:
    h = Harness()
    try:
        yield h
    finally:
        await h.close()


def ws_url(server: Server, path: str = "/", scheme: str = "ws") -> str:
    return f"{scheme}://127.0.0.1:{server.port}{path}"


def ws_client(server: Server, path: str = "/", **options: Any) -> connect:
    """A ``websockets`` client for ``server``: no client pings, no proxy."""
    options.setdefault("ping_interval", None)
    options.setdefault("proxy", None)
    options.setdefault("open_timeout", TIMEOUT)
    options.setdefault("close_timeout", TIMEOUT)
    return connect(ws_url(server, path), **options)


def only_connection(server: Server) -> Connection:
    """The server's one live connection."""
    connections = list(server.connections)
    assert len(connections) == 1, connections
    return connections[0]


async def wait_until(condition: Callable[[], bool], timeout: float = TIMEOUT) -> None:
    """Poll ``condition`` (server-side state nothing can be awaited for).

    Bounded: fails the test after ``timeout``.  Each round yields to the
    loop for one tick, so the server runs in between.
    """
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s: {condition}")
        # Let the loop run its ready callbacks and one selector round.
        await asyncio.sleep(0.005)


# ---------------------------------------------------------------------------
# A raw socket client
# ---------------------------------------------------------------------------


def mask_frame(
    opcode: int, payload: bytes = b"", *, fin: bool = True, rsv: int = 0, masked: bool = True
) -> bytes:
    """One client frame (``wire.client_frame``), its RSV bits as one number (RSV1 = 0b100)."""
    return wire.client_frame(
        opcode,
        payload,
        fin=fin,
        rsv1=bool(rsv & 0b100),
        rsv2=bool(rsv & 0b010),
        rsv3=bool(rsv & 0b001),
        mask=wire.random_mask() if masked else None,
    )


@dataclass(frozen=True)
class Frame:
    opcode: int
    payload: bytes
    fin: bool = True

    @property
    def close_code(self) -> int:
        assert self.opcode == OP_CLOSE, self
        (code,) = struct.unpack("!H", self.payload[:2])
        return int(code)

    @property
    def close_reason(self) -> str:
        return self.payload[2:].decode()


def handshake_request(path: str = "/", host: str = "127.0.0.1", extra: str = "") -> bytes:
    """A client's opening handshake (``wire.client_handshake``).

    ``extra`` holds more header lines as written, ``"Name: value\r\n"`` each
    (repeats and odd spellings kept), after the handshake's own fields.
    """
    lines = [line.split(":", 1) for line in extra.split("\r\n") if line]
    return wire.client_handshake(
        path, host=host, headers=[(name, value.lstrip(" ")) for name, value in lines]
    )


class RawClient:
    """A TCP socket on the test's event loop, driven byte by byte.

    Options ``sndbuf`` and ``rcvbuf`` set the kernel buffer sizes before
    connecting (the receive window is fixed at connect time).
    """

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.loop = asyncio.get_running_loop()
        self.buffer = bytearray()
        self.sent = 0
        self.received = 0
        self.eof = False

    @classmethod
    async def connect(
        cls, port: int, *, sndbuf: int | None = None, rcvbuf: int | None = None
    ) -> RawClient:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setblocking(False)
            if sndbuf is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
            if rcvbuf is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            await asyncio.wait_for(
                asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port)), TIMEOUT
            )
        except BaseException:
            sock.close()
            raise
        return cls(sock)

    # -- writing ---------------------------------------------------------

    async def send(self, data: bytes) -> None:
        await self.loop.sock_sendall(self.sock, data)
        self.sent += len(data)

    # -- reading ---------------------------------------------------------

    async def _fill(self, timeout: float) -> None:
        """Read at least one byte more into the buffer; EOFError at EOF."""
        if self.eof:
            raise EOFError
        try:
            data = await asyncio.wait_for(self.loop.sock_recv(self.sock, 262144), timeout)
        except ConnectionResetError:
            data = b""
        if not data:
            self.eof = True
            raise EOFError
        self.received += len(data)
        self.buffer += data

    async def read_exactly(self, n: int, timeout: float = TIMEOUT) -> bytes:
        while len(self.buffer) < n:
            await self._fill(timeout)
        data = bytes(self.buffer[:n])
        del self.buffer[:n]
        return data

    async def read_until(self, separator: bytes, timeout: float = TIMEOUT) -> bytes:
        while (index := self.buffer.find(separator)) < 0:
            await self._fill(timeout)
        end = index + len(separator)
        data = bytes(self.buffer[:end])
        del self.buffer[:end]
        return data

    async def read_to_eof(self, timeout: float = TIMEOUT) -> bytes:
        """Everything until the server ends the connection (FIN or reset)."""
        while True:
            try:
                await self._fill(timeout)
            except EOFError:
                break
        data = bytes(self.buffer)
        self.buffer.clear()
        return data

    async def response_head(self, timeout: float = TIMEOUT) -> tuple[int, dict[str, str]]:
        head = await self.read_until(b"\r\n\r\n", timeout)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        return status, headers

    async def handshake(self, path: str = "/", extra: bytes = b"") -> None:
        """Open a WebSocket; ``extra`` bytes (frames) go in the same write."""
        await self.send(handshake_request(path) + extra)
        status, headers = await self.response_head()
        assert status == 101, (status, headers)

    async def recv_frame(self, timeout: float = TIMEOUT) -> Frame:
        data = await self.read_exactly(2, timeout)
        data += await self.read_exactly(wire.frame_header_size(data) - 2, timeout)
        header = wire.read_frame_header(data)
        assert header is not None
        assert header.mask is None, "a server must not mask its frames"
        payload = await self.read_exactly(header.length, timeout)
        return Frame(header.opcode, payload, header.fin)

    async def recv_non_ping(self, timeout: float = TIMEOUT) -> Frame:
        """The next frame that is not a ping (heartbeats may come in between)."""
        while True:
            frame = await self.recv_frame(timeout)
            if frame.opcode != OP_PING:
                return frame

    # -- ending --------------------------------------------------------

    def close(self) -> None:
        self.sock.close()

    def abort(self) -> None:
        """Close with a TCP reset (SO_LINGER 0) instead of a FIN."""
        if self.sock.fileno() >= 0:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()


# ---------------------------------------------------------------------------
# TLS
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Certificate:
    """PEM files for a TLS test: a ``localhost`` certificate and the CA it trusts."""

    cert: Path  #: the server's certificate chain (leaf first)
    key: Path  #: the server's private key
    ca: Path  #: the throwaway CA's certificate, for clients' ``cafile``


def make_certificate(directory: Path) -> Certificate:
    """A throwaway CA and a certificate it signed for ``localhost`` and 127.0.0.1.

    trustme (a test dependency, in the lock) makes both in memory; nothing
    depends on the ``openssl`` command or on the machine's trust store.
    """
    authority = trustme.CA()
    leaf = authority.issue_cert("localhost", "127.0.0.1")
    files = Certificate(directory / "cert.pem", directory / "key.pem", directory / "ca.pem")
    leaf.private_key_pem.write_to_path(str(files.key))
    files.cert.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    authority.cert_pem.write_to_path(str(files.ca))
    return files


def tls_contexts(directory: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server context with a fresh certificate and a client context trusting it."""
    files = make_certificate(directory)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(files.cert, files.key)
    client_context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(files.ca))
    return server_context, client_context


def open_fds() -> int:
    """File descriptors open in this process."""
    return len(os.listdir("/proc/self/fd"))
