"""Tests for wsserver.server.sender: the interface a WebSocket sends through.

A ``WebSocket`` needs nothing of its connection but a ``Sender`` and an
``Inbox``: here it runs over a recording stand-in, with no socket and no
protocol core.  That ``Connection`` implements ``Sender`` is checked by mypy
(the server passes itself where a ``Sender`` is expected) and below.
"""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import pytest

from wsserver.protocol import ServerConnection, TextMessage, WebSocketRequest
from wsserver.protocol.frames import PreparedMessage
from wsserver.server.connection import Connection
from wsserver.server.inbox import Disconnect, Inbox
from wsserver.server.responses import PlainTextResponse, Response
from wsserver.server.sender import Sender
from wsserver.server.websocket import WebSocket, WebSocketDisconnect, WebSocketState
from wsserver.server.writer import Writer


class RecordingSender:
    """A ``Sender`` that records what the WebSocket asked."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.closed = False
        self.is_open = False
        self.writing_paused = False
        self.latency: float | None = 0.25

    def accept(self, subprotocol: str | None, headers: tuple[tuple[str, str], ...]) -> str | None:
        self.calls.append(("accept", subprotocol, headers))
        self.is_open = True
        return "permessage-deflate"

    def reject(self, response: Response) -> None:
        self.calls.append(("reject", response.status_code))

    async def send_text(self, data: str, compress: bool | None = None) -> None:
        self.calls.append(("send_text", data, compress))

    async def send_bytes(
        self, data: bytes | bytearray | memoryview, compress: bool | None = None
    ) -> None:
        self.calls.append(("send_bytes", bytes(data), compress))

    async def send_fragment(
        self, data: str | bytes, *, fin: bool, compress: bool | None = None
    ) -> None:
        self.calls.append(("send_fragment", data, fin, compress))

    def send_prepared(self, message: PreparedMessage, size: int, *, compress: bool) -> None:
        self.calls.append(("send_prepared", size, compress))

    def message_dropped(self, *, closing: bool) -> None:
        self.calls.append(("message_dropped", closing))

    def ping(self, data: bytes | None) -> asyncio.Future[float]:
        self.calls.append(("ping", data))
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        future.set_result(0.5)
        return future

    def close(self, code: int, reason: str) -> None:
        self.calls.append(("close", code, reason))
        self.is_open = False

    def fail(self, code: int, reason: str) -> None:
        self.calls.append(("fail", code, reason))
        self.is_open = False


class NoPump:
    """The inbox's producer, here with nothing to pull."""

    def pump(self) -> None:
        pass


def websocket_over(sender: Sender) -> tuple[WebSocket, Inbox]:
    loop = asyncio.get_running_loop()
    inbox = Inbox(loop, 16, Writer(ServerConnection(), loop, 1024), NoPump())
    request = WebSocketRequest(
        target="/chat?room=1",
        headers=(("host", "example.com"),),
        subprotocols=("chat",),
        extensions=(),
    )
    websocket = WebSocket(
        sender,
        inbox,
        request,
        connection_id=7,
        max_message_size=1024,
        scheme="ws",
        server_host="127.0.0.1:8000",
        client=None,
    )
    return websocket, inbox


async def test_a_websocket_runs_over_any_sender_and_inbox() -> None:
    sender = RecordingSender()
    websocket, inbox = websocket_over(sender)
    assert (websocket.connection_id, websocket.max_message_size) == (7, 1024)
    assert websocket.url.path == "/chat"
    await websocket.accept("chat", {"x-test": "1"})
    assert (websocket.subprotocol, websocket.extensions) == ("chat", "permessage-deflate")
    assert websocket.latency == 0.25
    await websocket.send_text("hé")
    await websocket.send_bytes(b"\x00", compress=False)
    async with websocket.stream() as stream:
        await stream.write("part")
    assert await websocket.ping(b"p") == 0.5
    inbox.messages.append(TextMessage(data="in"))
    assert await websocket.receive() == TextMessage(data="in")
    await websocket.close(4000, "done")
    assert sender.calls == [
        ("accept", "chat", (("x-test", "1"),)),
        ("send_text", "hé", None),
        ("send_bytes", b"\x00", False),
        ("send_fragment", "part", False, None),
        ("send_fragment", "", True, None),
        ("ping", b"p"),
        ("close", 4000, "done"),
    ]


async def test_the_websocket_reads_the_end_and_the_transport_from_them() -> None:
    sender = RecordingSender()
    websocket, inbox = websocket_over(sender)
    await websocket.accept()
    inbox.end(Disconnect(1001, "away"))
    with pytest.raises(WebSocketDisconnect) as caught:
        await websocket.send_text("too late")
    assert (caught.value.code, caught.value.reason) == (1001, "away")
    before = websocket.client_state  # the end is not received yet
    sender.closed = True  # the transport is gone
    after = websocket.client_state
    assert (before, after) == (WebSocketState.CONNECTED, WebSocketState.DISCONNECTED)


async def test_a_refused_handshake_goes_through_reject() -> None:
    sender = RecordingSender()
    websocket, _ = websocket_over(sender)
    await websocket.send_denial_response(PlainTextResponse("no\n", status_code=401))
    assert sender.calls == [("reject", 401)]
    assert websocket.application_state is WebSocketState.DISCONNECTED


def test_connection_implements_every_member_of_sender() -> None:
    members = {
        name
        for name, value in vars(Sender).items()
        if not name.startswith("_") and (callable(value) or isinstance(value, property))
    }
    assert members == {
        "closed",
        "is_open",
        "writing_paused",
        "latency",
        "accept",
        "reject",
        "send_text",
        "send_bytes",
        "send_fragment",
        "send_prepared",
        "message_dropped",
        "ping",
        "close",
        "fail",
    }
    for name in members:
        protocol_member = getattr(Sender, name)
        implementation = getattr(Connection, name)
        if inspect.isfunction(protocol_member):
            assert inspect.iscoroutinefunction(implementation) == (
                inspect.iscoroutinefunction(protocol_member)
            ), name
            assert list(inspect.signature(implementation).parameters) == list(
                inspect.signature(protocol_member).parameters
            ), name
