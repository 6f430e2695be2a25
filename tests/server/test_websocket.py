"""Tests for wsserver.server.websocket: the WebSocket API, end to end.

Every test serves an endpoint in-process.  Where the socket is not the point
it runs in memory (``wsserver.testing``: the same ``Server`` and
``Connection``, wsserver's client role on the other side); otherwise over
loopback with an independent client: the ``websockets`` library, or
``RawWebSocket`` where the frames on the wire matter.  What the endpoint saw
is handed back to the
test through a ``Probe``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import struct
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.datastructures import Headers as ClientHeaders
from websockets.exceptions import ConnectionClosed

from wsserver.client import ClientWebSocket
from wsserver.client import ConnectionClosed as ClientConnectionClosed
from wsserver.client import InvalidStatus as ClientInvalidStatus
from wsserver.protocol import CloseCode, LocalProtocolError, Opcode, ProtocolSettings
from wsserver.server import (
    Address,
    App,
    PlainTextResponse,
    Response,
    WebSocket,
    WebSocketDisconnect,
    WebSocketState,
)
from wsserver.server.connection import Connection
from wsserver.server.websocket import Disconnect, Message

from .._live import TIMEOUT, RawWebSocket, handshake_headers, in_memory, serving, ws_url

Body = Callable[[WebSocket], Awaitable[Any]]


class Probe:
    """An endpoint running ``body``; its result or exception goes to the test."""

    def __init__(self, body: Body) -> None:
        self.body = body
        self.future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

    async def run(self, websocket: WebSocket) -> None:
        try:
            result = await self.body(websocket)
        except BaseException as error:
            if not self.future.done():
                self.future.set_exception(error)
            raise
        if not self.future.done():
            self.future.set_result(result)

    async def outcome(self) -> Any:
        return await asyncio.wait_for(asyncio.shield(self.future), TIMEOUT)


async def closed_with(client: ClientConnection | ClientWebSocket) -> tuple[int | None, str | None]:
    """Read until the server closes; the code and reason it sent."""
    with pytest.raises((ConnectionClosed, ClientConnectionClosed)):
        while True:
            await asyncio.wait_for(client.recv(), TIMEOUT)
    return client.close_code, client.close_reason


# ---------------------------------------------------------------------------
# accept: subprotocols and response headers
# ---------------------------------------------------------------------------


async def test_accept_agrees_on_the_subprotocol_the_app_picks() -> None:
    async def body(ws: WebSocket) -> tuple[tuple[str, ...], str | None]:
        offered = ws.subprotocols
        await ws.accept(subprotocol="b")
        return offered, ws.subprotocol

    probe = Probe(body)
    async with (
        in_memory(probe.run) as app,
        app.websocket_connect("/", subprotocols=["a", "b"]) as client,
    ):
        assert client.subprotocol == "b"
        assert handshake_headers(client)["Sec-WebSocket-Protocol"] == "b"
        assert await probe.outcome() == (("a", "b"), "b")


async def test_max_message_size_is_the_connections_limit() -> None:
    async def body(ws: WebSocket) -> int:
        await ws.accept()
        return ws.max_message_size

    probe = Probe(body)
    async with (
        in_memory(probe.run, protocol=ProtocolSettings(max_message_size=4096)) as app,
        app.websocket_connect("/"),
    ):
        assert await probe.outcome() == 4096


async def test_accept_without_subprotocol_agrees_on_none() -> None:
    async def body(ws: WebSocket) -> str | None:
        await ws.accept()
        return ws.subprotocol

    probe = Probe(body)
    async with (
        in_memory(probe.run) as app,
        app.websocket_connect("/", subprotocols=["a"]) as client,
    ):
        assert client.subprotocol is None
        assert "Sec-WebSocket-Protocol" not in handshake_headers(client)
        assert await probe.outcome() is None


async def test_accept_with_a_subprotocol_not_offered_raises_and_stays_connecting() -> None:
    async def body(ws: WebSocket) -> tuple[str, WebSocketState]:
        with pytest.raises(LocalProtocolError) as caught:
            await ws.accept(subprotocol="c")
        state = ws.application_state
        # Nothing was sent: the endpoint can still accept properly.
        await ws.accept(subprotocol="a")
        return str(caught.value), state

    probe = Probe(body)
    async with (
        in_memory(probe.run) as app,
        app.websocket_connect("/", subprotocols=["a", "b"]) as client,
    ):
        assert client.subprotocol == "a"
        message, state = await probe.outcome()
        assert "'c' was not offered" in message
        assert "['a', 'b']" in message
        assert state is WebSocketState.CONNECTING


async def test_accept_with_a_subprotocol_when_none_offered_fails_the_handshake() -> None:
    async def body(ws: WebSocket) -> None:
        await ws.accept(subprotocol="chat")

    probe = Probe(body)
    async with in_memory(probe.run) as app:
        with pytest.raises(ClientInvalidStatus) as caught:
            await app.websocket_connect("/")
        # The uncaught error reaches the server, which answers 500.
        assert caught.value.status == 500
        with pytest.raises(LocalProtocolError, match="not offered"):
            await probe.outcome()


@pytest.mark.parametrize(
    "headers",
    [
        [("X-Extra", "1"), ("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")],
        {"X-Extra": "1", "Set-Cookie": "a=1"},
    ],
    ids=["pairs", "mapping"],
)
async def test_accept_sends_extra_response_headers(
    headers: list[tuple[str, str]] | dict[str, str],
) -> None:
    async def body(ws: WebSocket) -> None:
        await ws.accept(headers=headers)

    probe = Probe(body)
    async with in_memory(probe.run) as app, app.websocket_connect("/") as client:
        response_headers = handshake_headers(client)
        assert response_headers["x-extra"] == "1"
        expected = [v for k, v in (headers.items() if isinstance(headers, dict) else headers)]
        assert response_headers.get_all("set-cookie") == [v for v in expected if "=" in v]
        await probe.outcome()


# ---------------------------------------------------------------------------
# refusing the handshake
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(("status", "body_text"), [(401, "who are you"), (429, "slow down")])
async def test_send_denial_response_reaches_the_client(status: int, body_text: str) -> None:
    async def body(ws: WebSocket) -> WebSocketState:
        await ws.send_denial_response(
            PlainTextResponse(body_text, status_code=status, headers=[("x-why", "test")])
        )
        return ws.application_state

    probe = Probe(body)
    async with in_memory(probe.run) as app:
        with pytest.raises(ClientInvalidStatus) as caught:
            await app.websocket_connect("/")
        response = caught.value
        assert response.status == status
        assert response.body == body_text.encode()
        assert ClientHeaders(list(response.headers))["x-why"] == "test"
        assert await probe.outcome() is WebSocketState.DISCONNECTED


@pytest.mark.parametrize(
    ("denial", "error", "message"),
    [
        ("go away", TypeError, "send_denial_response() takes a Response, not str 'go away'"),
        (
            # A 1xx status is a valid Response but cannot refuse a handshake.
            Response(status_code=101),
            LocalProtocolError,
            "status 101 is not a final status code (200-599)",
        ),
    ],
)
async def test_a_denial_the_server_cannot_send_is_500_and_a_traceback(
    denial: Any, error: type[Exception], message: str, caplog: pytest.LogCaptureFixture
) -> None:
    async def body(ws: WebSocket) -> WebSocketState:
        try:
            await ws.send_denial_response(denial)
        except Exception:
            # Nothing was answered: the handshake is still pending.
            assert ws.application_state is WebSocketState.CONNECTING
            raise
        return ws.application_state

    probe = Probe(body)

    async def handshake() -> int:
        with pytest.raises(ClientInvalidStatus) as caught:
            await app.websocket_connect("/")
        return caught.value.status

    async with in_memory(probe.run) as app:
        with caplog.at_level(logging.ERROR, logger="wsserver"):
            assert await asyncio.wait_for(handshake(), TIMEOUT) == 500
        with pytest.raises(error) as raised:
            await probe.outcome()
        assert str(raised.value) == message
        (record,) = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert record.getMessage().endswith("error in WebSocket handler for /")
        # Raised in the application's own call: the traceback shows where.
        assert record.exc_info is not None and record.exc_info[1] is raised.value


async def test_close_before_accept_refuses_with_403() -> None:
    async def body(ws: WebSocket) -> None:
        await ws.close()

    probe = Probe(body)
    async with in_memory(probe.run) as app:
        with pytest.raises(ClientInvalidStatus) as caught:
            await app.websocket_connect("/")
        assert caught.value.status == 403
        assert caught.value.body == b"Forbidden\n"
        await probe.outcome()


async def test_send_denial_response_after_accept_is_an_error() -> None:
    async def body(ws: WebSocket) -> None:
        await ws.accept()
        await ws.send_denial_response(PlainTextResponse("late", status_code=400))

    probe = Probe(body)
    async with in_memory(probe.run) as app, app.websocket_connect("/"):
        with pytest.raises(RuntimeError, match="after accept"):
            await probe.outcome()


# ---------------------------------------------------------------------------
# sending
# ---------------------------------------------------------------------------


async def test_send_text_bytes_and_json_arrive_with_their_types() -> None:
    async def body(ws: WebSocket) -> None:
        await ws.accept()
        await ws.send_text("héllo")
        await ws.send_bytes(b"\x00\x01\xff")
        await ws.send_bytes(bytearray(b"ba"))
        await ws.send_bytes(memoryview(b"xmvx")[1:3])
        await ws.send_bytes(b"raw", compress=False)
        await ws.send_json({"a": [1, 2], "é": None})
        await ws.send_json({"b": True}, mode="binary")
        await ws.send_text("")

    probe = Probe(body)
    async with in_memory(probe.run) as app, app.websocket_connect("/") as client:
        received = [await asyncio.wait_for(client.recv(), TIMEOUT) for _ in range(8)]
        assert received == [
            "héllo",
            b"\x00\x01\xff",
            b"ba",
            b"mv",
            b"raw",
            # Compact separators, non-ASCII kept as is.
            '{"a":[1,2],"é":null}',
            b'{"b":true}',
            "",
        ]
        await probe.outcome()
        # The endpoint returned: the server closes normally.
        assert await closed_with(client) == (1000, "")


async def test_send_bytes_compress_false_sends_uncompressed_frames() -> None:
    data = b"a" * 1000

    async def body(ws: WebSocket) -> str | None:
        await ws.accept()
        await ws.send_bytes(data)
        await ws.send_bytes(data, compress=False)
        return ws.extensions

    probe = Probe(body)
    async with serving(probe.run) as server:
        raw = await RawWebSocket.connect(
            server.port, extra=[("Sec-WebSocket-Extensions", "permessage-deflate")]
        )
        try:
            compressed, plain = await raw.recv_frame(), await raw.recv_frame()
            assert str(await probe.outcome()).startswith("permessage-deflate")
            assert compressed.rsv1
            assert len(compressed.payload) < len(data)
            # Already-compressed data is sent as is: no RSV1, same bytes.
            assert (plain.rsv1, plain.opcode, plain.payload) == (False, Opcode.BINARY, data)
        finally:
            await raw.close()


async def test_every_send_takes_compress() -> None:
    # send_text, send_json (both modes) and stream() take compress= as
    # send_bytes does: False sends a message uncompressed even above
    # min_size, True compresses one below it, None follows min_size.
    big = "a" * 1000

    async def body(ws: WebSocket) -> None:
        await ws.accept()
        await ws.send_text(big)
        await ws.send_text(big, compress=False)
        await ws.send_text("tiny", compress=True)
        await ws.send_text("tiny")
        await ws.send_json({"k": big}, compress=False)
        await ws.send_json({"k": big}, mode="binary", compress=False)
        async with ws.stream(compress=False) as stream:
            await stream.write(big)
        async with ws.stream(binary=True) as stream:
            await stream.write(big.encode())

    probe = Probe(body)
    async with serving(probe.run) as server:
        raw = await RawWebSocket.connect(
            server.port, extra=[("Sec-WebSocket-Extensions", "permessage-deflate")]
        )
        try:
            frames = [await raw.recv_frame() for _ in range(10)]
            await probe.outcome()
        finally:
            await raw.close()
    seen = [(f.opcode, f.fin, f.rsv1) for f in frames]
    assert seen == [
        (Opcode.TEXT, True, True),
        (Opcode.TEXT, True, False),
        (Opcode.TEXT, True, True),
        (Opcode.TEXT, True, False),  # 4 bytes: below min_size
        (Opcode.TEXT, True, False),
        (Opcode.BINARY, True, False),
        (Opcode.TEXT, False, False),  # a stream: RSV1 on its first frame or none
        (Opcode.CONTINUATION, True, False),
        (Opcode.BINARY, False, True),
        (Opcode.CONTINUATION, True, False),
    ]
    # What went out uncompressed is the message itself.
    assert frames[1].payload == big.encode()
    assert frames[4].payload == b'{"k":"' + big.encode() + b'"}'
    assert frames[6].payload == big.encode()


async def test_stream_sends_one_message_in_several_frames_on_the_wire() -> None:
    async def body(ws: WebSocket) -> None:
        await ws.accept()
        async with ws.stream(binary=True) as stream:
            await stream.write(b"one")
            await stream.write(b"")  # sends nothing
            await stream.write(b"two")
            await stream.write(b"three")
        await ws.send_text("after")

    probe = Probe(body)
    async with serving(probe.run) as server:
        raw = await RawWebSocket.connect(server.port)
        try:
            frames = [await raw.recv_frame() for _ in range(5)]
            assert [(f.opcode, f.fin, f.payload) for f in frames] == [
                (Opcode.BINARY, False, b"one"),
                (Opcode.CONTINUATION, False, b"two"),
                (Opcode.CONTINUATION, False, b"three"),
                # The final fragment is empty: the stream did not know the
                # last chunk was the last.
                (Opcode.CONTINUATION, True, b""),
                (Opcode.TEXT, True, b"after"),
            ]
            await probe.outcome()
        finally:
            await raw.close()


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "text"])
async def test_stream_arrives_as_one_message(binary: bool) -> None:
    chunks: list[str | bytes] = (
        [b"alpha-", b"beta-", b"gamma"] if binary else ["alpha-", "bêta-", "gamma"]
    )

    async def body(ws: WebSocket) -> None:
        await ws.accept()
        async with ws.stream(binary=binary) as stream:
            for chunk in chunks:
                await stream.write(chunk)

    probe = Probe(body)
    async with in_memory(probe.run) as app, app.websocket_connect("/") as client:
        message = await asyncio.wait_for(client.recv(), TIMEOUT)
        assert message == (b"alpha-beta-gamma" if binary else "alpha-bêta-gamma")
        await probe.outcome()


async def test_stream_refuses_chunks_of_the_wrong_type() -> None:
    async def body(ws: WebSocket) -> None:
        await ws.accept()
        async with ws.stream(binary=True) as stream:
            with pytest.raises(TypeError, match="bytes to a binary stream"):
                await stream.write("text")
            await stream.write(b"ok")
        async with ws.stream() as stream:
            with pytest.raises(TypeError):
                await stream.write(b"bytes")
            await stream.write("fine")

    probe = Probe(body)
    async with in_memory(probe.run) as app, app.websocket_connect("/") as client:
        assert await asyncio.wait_for(client.recv(), TIMEOUT) == b"ok"
        assert await asyncio.wait_for(client.recv(), TIMEOUT) == "fine"
        await probe.outcome()


async def test_stream_failing_halfway_fails_the_connection_with_1011() -> None:
    async def body(ws: WebSocket) -> None:
        await ws.accept()
        async with ws.stream(binary=True) as stream:
            await stream.write(b"half")
            raise KeyError("source broke")

    probe = Probe(body)
    async with in_memory(probe.run) as app, app.websocket_connect("/") as client:
        # Half a message must not pass for a whole one.
        assert await closed_with(client) == (1011, "message stream failed")
        with pytest.raises(KeyError):
            await probe.outcome()


async def test_stream_failing_before_any_fragment_leaves_the_connection_usable() -> None:
    async def body(ws: WebSocket) -> None:
        await ws.accept()
        with pytest.raises(KeyError):
            async with ws.stream():
                raise KeyError("nothing sent yet")
        await ws.send_text("still open")

    probe = Probe(body)
    async with in_memory(probe.run) as app, app.websocket_connect("/") as client:
        assert await asyncio.wait_for(client.recv(), TIMEOUT) == "still open"
        await probe.outcome()


# ---------------------------------------------------------------------------
# receiving
# ---------------------------------------------------------------------------


async def test_receive_returns_messages_then_disconnect_once_then_raises() -> None:
    async def body(ws: WebSocket) -> tuple[list[Message], str, WebSocketState]:
        await ws.accept()
        got = [await ws.receive(), await ws.receive(), await ws.receive()]
        state = ws.client_state
        with pytest.raises(RuntimeError) as caught:
            await ws.receive()
        return got, str(caught.value), state

    probe = Probe(body)
    async with in_memory(probe.run) as app, app.websocket_connect("/") as client:
        await client.send("text")
        await client.send(b"bytes")
        await client.close(4001, "done here")
        got, error, state = await probe.outcome()
        assert [type(m).__name__ for m in got] == ["TextMessage", "BinaryMessage", "Disconnect"]
        assert [getattr(m, "data", None) for m in got[:2]] == ["text", b"bytes"]
        assert got[2] == Disconnect(4001, "done here")
        assert "after the disconnect was already received" in error
        assert state is WebSocketState.DISCONNECTED


@pytest.mark.parametrize(
    ("code", "reason"),
    [(1000, ""), (1001, "going"), (4000, "bye"), (4999, "é" * 10)],
)
async def test_client_close_code_and_reason_are_delivered(code: int, reason: str) -> None:
    async def body(ws: WebSocket) -> object:
        await ws.accept()
        return await ws.receive()

    probe = Probe(body)
    async with in_memory(probe.run) as app, app.websocket_connect("/") as client:
        await client.close(code, reason)
        assert await probe.outcome() == Disconnect(code, reason)
        # The server answered with the same code (RFC 6455 section 5.5.1).
        assert client.close_code == code


async def test_empty_close_frame_is_delivered_as_1005() -> None:
    async def body(ws: WebSocket) -> object:
        await ws.accept()
        return await ws.receive()

    probe = Probe(body)
    async with serving(probe.run) as server:
        raw = await RawWebSocket.connect(server.port)
        try:
            raw.send_frame(Opcode.CLOSE, b"")
            assert await probe.outcome() == Disconnect(CloseCode.NO_STATUS_RECEIVED, "")
            reply = await raw.recv_frame()
            assert reply.opcode == Opcode.CLOSE
            # 1005 may not be sent on the wire: the answer is empty.
            assert reply.payload == b""
            assert await raw.at_eof()
        finally:
            await raw.close()


async def test_connection_dropped_without_close_is_1006() -> None:
    async def body(ws: WebSocket) -> object:
        await ws.accept()
        return await ws.receive()

    probe = Probe(body)
    async with serving(probe.run) as server:
        raw = await RawWebSocket.connect(server.port)
        await raw.close()
        assert await probe.outcome() == Disconnect(CloseCode.ABNORMAL_CLOSURE, "")


async def test_receive_text_raises_websocket_disconnect_with_code_and_reason() -> None:
    async def body(ws: WebSocket) -> tuple[int, str, str, WebSocketState]:
        await ws.accept()
        with pytest.raises(WebSocketDisconnect) as caught:
            await ws.receive_text()
        error = caught.value
        return error.code, error.reason, str(error), ws.application_state

    probe = Probe(body)
    async with in_memory(probe.run) as app, app.websocket_connect("/") as client:
        await client.close(4000, "bye")
        assert await probe.outcome() == (
            4000,
            "bye",
            "WebSocket disconnected with code 4000: bye",
            WebSocketState.DISCONNECTED,
        )


async def test_send_after_the_peer_closed_raises_websocket_disconnect() -> None:
    async def body(ws: WebSocket) -> tuple[int, str]:
        await ws.accept()
        assert isinstance(await ws.receive(), Disconnect)
        with pytest.raises(WebSocketDisconnect) as caught:
            await ws.send_text("too late")
        return caught.value.code, caught.value.reason

    probe = Probe(body)
    async with in_memory(probe.run) as app, app.websocket_connect("/") as client:
        await client.close(4002, "gone")
        assert await probe.outcome() == (4002, "gone")


async def test_send_after_a_connection_reset_raises_websocket_disconnect() -> None:
    # A reset leaves no closing handshake behind: the server learns of it
    # only from the transport.  Sends must not then vanish silently.
    async def body(ws: WebSocket) -> tuple[object, int, int]:
        await ws.accept()
        await ws.send_text("ready")
        ended = await ws.receive()
        with pytest.raises(WebSocketDisconnect) as text_error:
            await ws.send_text("into the void")
        with pytest.raises(WebSocketDisconnect) as ping_error:
            ws.ping()
        return ended, text_error.value.code, ping_error.value.code

    probe = Probe(body)
    async with serving(probe.run) as server:
        raw = await RawWebSocket.connect(server.port)
        assert (await raw.recv_frame()).payload == b"ready"
        raw.reset()
        assert await probe.outcome() == (Disconnect(CloseCode.ABNORMAL_CLOSURE), 1006, 1006)


async def test_close_with_an_invalid_code_raises_and_leaves_the_connection_open() -> None:
    async def body(ws: WebSocket) -> tuple[str, WebSocketState]:
        await ws.accept()
        with pytest.raises(LocalProtocolError) as caught:
            await ws.close(1006)
        state = ws.application_state
        await ws.send_text("still open")
        await ws.close(4000, "now")
        return str(caught.value), state

    probe = Probe(body)
    async with in_memory(probe.run) as app, app.websocket_connect("/") as client:
        assert await asyncio.wait_for(client.recv(), TIMEOUT) == "still open"
        assert await closed_with(client) == (4000, "now")
        error, state = await probe.outcome()
        assert "1006 may not be sent" in error
        assert state is WebSocketState.CONNECTED


@pytest.mark.parametrize(
    ("method", "send", "expected"),
    [
        ("receive_text", "text", "text"),
        ("receive_bytes", b"bytes", b"bytes"),
        ("receive_json", '{"a":[1]}', {"a": [1]}),
    ],
)
async def test_receive_typed(method: str, send: str | bytes, expected: object) -> None:
    async def body(ws: WebSocket) -> object:
        await ws.accept()
        return await getattr(ws, method)()

    probe = Probe(body)
    async with in_memory(probe.run) as app, app.websocket_connect("/") as client:
        await client.send(send)
        assert await probe.outcome() == expected


async def test_receive_json_binary_mode() -> None:
    async def body(ws: WebSocket) -> object:
        await ws.accept()
        return await ws.receive_json(mode="binary")

    probe = Probe(body)
    async with in_memory(probe.run) as app, app.websocket_connect("/") as client:
        await client.send(json.dumps({"x": "é"}).encode())
        assert await probe.outcome() == {"x": "é"}


@pytest.mark.parametrize(
    ("method", "kwargs", "send", "reason"),
    [
        ("receive_text", {}, b"bytes", "expected a text message"),
        ("receive_bytes", {}, "text", "expected a binary message"),
        ("receive_json", {}, b"{}", "expected a text message"),
        ("receive_json", {"mode": "binary"}, "{}", "expected a binary message"),
    ],
)
async def test_receiving_the_wrong_type_closes_with_1003(
    method: str, kwargs: dict[str, str], send: str | bytes, reason: str
) -> None:
    async def body(ws: WebSocket) -> tuple[int, str]:
        await ws.accept()
        with pytest.raises(WebSocketDisconnect) as caught:
            await getattr(ws, method)(**kwargs)
        return caught.value.code, caught.value.reason

    probe = Probe(body)
    async with in_memory(probe.run) as app, app.websocket_connect("/") as client:
        await client.send(send)
        assert await closed_with(client) == (1003, reason)
        assert await probe.outcome() == (1003, reason)


@pytest.mark.parametrize(
    ("mode", "send"), [("text", "{not json"), ("binary", b"\xff\xfe"), ("binary", b"[1,")]
)
async def test_invalid_json_closes_with_1007(mode: str, send: str | bytes) -> None:
    async def body(ws: WebSocket) -> tuple[int, str]:
        await ws.accept()
        with pytest.raises(WebSocketDisconnect) as caught:
            await ws.receive_json(mode=mode)  # type: ignore[arg-type]
        return caught.value.code, caught.value.reason

    probe = Probe(body)
    async with in_memory(probe.run) as app, app.websocket_connect("/") as client:
        await client.send(send)
        assert await closed_with(client) == (1007, "invalid JSON")
        assert await probe.outcome() == (1007, "invalid JSON")


@pytest.mark.parametrize(
    ("method", "kwargs", "sends", "expected"),
    [
        ("iter_text", {}, ["a", "b", "c"], ["a", "b", "c"]),
        ("iter_bytes", {}, [b"a", b"b"], [b"a", b"b"]),
        ("iter_json", {}, ["1", '{"k":2}', "[]"], [1, {"k": 2}, []]),
        ("iter_json", {"mode": "binary"}, [b"1", b'"s"'], [1, "s"]),
    ],
)
async def test_iterators_stop_at_disconnect(
    method: str, kwargs: dict[str, str], sends: list[str | bytes], expected: list[object]
) -> None:
    async def body(ws: WebSocket) -> list[object]:
        await ws.accept()
        return [item async for item in getattr(ws, method)(**kwargs)]

    probe = Probe(body)
    async with in_memory(probe.run) as app, app.websocket_connect("/") as client:
        for message in sends:
            await client.send(message)
        await client.close()
        assert await probe.outcome() == expected


async def test_cancelled_receive_leaves_the_connection_usable() -> None:
    async def body(ws: WebSocket) -> str:
        await ws.accept()
        waiting = asyncio.create_task(ws.receive())
        # One turn of the loop: the task starts waiting for a message.
        await asyncio.sleep(0)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        await ws.send_text("cancelled")
        return await ws.receive_text()

    probe = Probe(body)
    async with in_memory(probe.run) as app, app.websocket_connect("/") as client:
        assert await asyncio.wait_for(client.recv(), TIMEOUT) == "cancelled"
        await client.send("received after all")
        assert await probe.outcome() == "received after all"


async def test_receive_timeout_raises_and_the_connection_stays_usable() -> None:
    async def body(ws: WebSocket) -> list[str]:
        await ws.accept()
        with pytest.raises(TimeoutError):
            await ws.receive(timeout=0.01)
        with pytest.raises(TimeoutError):
            await ws.receive_text(timeout=0.01)
        await ws.send_text("timed out twice")  # the client answers only now
        got = [await ws.receive_text(timeout=TIMEOUT)]
        await ws.send_text("next")
        got.append(await ws.receive_text())
        return got

    probe = Probe(body)
    async with in_memory(probe.run) as app, app.websocket_connect("/") as client:
        assert await asyncio.wait_for(client.recv(), TIMEOUT) == "timed out twice"
        await client.send("first")
        assert await asyncio.wait_for(client.recv(), TIMEOUT) == "next"
        await client.send("second")
        assert await probe.outcome() == ["first", "second"]


# ---------------------------------------------------------------------------
# ping
# ---------------------------------------------------------------------------


async def test_ping_resolves_to_the_round_trip_time_and_sets_latency() -> None:
    async def body(ws: WebSocket) -> tuple[float | None, float, float, float | None]:
        await ws.accept()
        before = ws.latency
        rtt = await asyncio.wait_for(ws.ping(), TIMEOUT)
        custom = await asyncio.wait_for(ws.ping(b"mine"), TIMEOUT)
        return before, rtt, custom, ws.latency

    probe = Probe(body)
    # The websockets client answers pings from its background reader.
    async with in_memory(probe.run) as app, app.websocket_connect("/"):
        before, rtt, custom, latency = await probe.outcome()
        assert before is None
        assert 0 < rtt < TIMEOUT
        assert 0 < custom < TIMEOUT
        assert latency == custom


async def test_ping_fails_with_websocket_disconnect_when_the_connection_ends() -> None:
    async def body(ws: WebSocket) -> int:
        await ws.accept()
        pong = ws.ping(b"lost")
        await ws.send_text("pinged")
        with pytest.raises(WebSocketDisconnect) as caught:
            await asyncio.wait_for(pong, TIMEOUT)
        return caught.value.code

    probe = Probe(body)
    async with serving(probe.run) as server:
        raw = await RawWebSocket.connect(server.port)
        # The raw client never answers the ping: it reads the ping and the
        # message, then drops the connection.
        assert (await raw.recv_frame()).opcode == Opcode.PING
        assert (await raw.recv_frame()).payload == b"pinged"
        await raw.close()
        assert await probe.outcome() == CloseCode.ABNORMAL_CLOSURE


# ---------------------------------------------------------------------------
# request information
# ---------------------------------------------------------------------------


async def test_request_information() -> None:
    app = App()
    seen: asyncio.Future[dict[str, object]] = asyncio.get_running_loop().create_future()

    @app.websocket("/rooms/{room}")
    async def room(ws: WebSocket) -> None:
        ws.state.user = "ann"
        await ws.accept(subprotocol="chat")
        seen.set_result(
            {
                "url": (ws.url.scheme, ws.url.host, ws.url.port, ws.url.path, ws.url.query),
                "raw_path": ws.url.raw_path,
                "headers": (ws.headers["X-MULTI"], ws.headers.getlist("x-Multi")),
                "query": (ws.query_params.getlist("a"), ws.query_params["b"]),
                "path_params": ws.path_params,
                "cookies": ws.cookies,
                "client": ws.client,
                "subprotocol": ws.subprotocol,
                "extensions": ws.extensions,
                "state": (ws.state.user, "user" in ws.state, "other" in ws.state),
                "connection_id": ws.connection_id,
            }
        )

    async with (
        serving(app) as server,
        connect(
            ws_url(server, "/rooms/caf%C3%A9?a=1&a=2&b=%C3%A9"),
            subprotocols=["chat"],  # type: ignore[list-item]
            additional_headers=[("X-Multi", "1"), ("x-multi", "2"), ("Cookie", "s=abc; t=1")],
        ) as client,
    ):
        info = await asyncio.wait_for(seen, TIMEOUT)
        port = server.port
        assert info["url"] == ("ws", "127.0.0.1", port, "/rooms/café", "a=1&a=2&b=%C3%A9")
        assert info["raw_path"] == "/rooms/caf%C3%A9"
        assert info["headers"] == ("1", ["1", "2"])
        assert info["query"] == (["1", "2"], "é")
        assert info["path_params"] == {"room": "café"}
        assert info["cookies"] == {"s": "abc", "t": "1"}
        assert info["client"] == Address("127.0.0.1", client.local_address[1])
        assert info["subprotocol"] == "chat"
        assert isinstance(info["extensions"], str)
        assert info["extensions"].startswith("permessage-deflate")
        assert handshake_headers(client)["Sec-WebSocket-Extensions"] == info["extensions"]
        assert info["state"] == ("ann", True, False)
        assert isinstance(info["connection_id"], int)


async def test_no_extensions_when_compression_is_off() -> None:
    async def body(ws: WebSocket) -> str | None:
        await ws.accept()
        return ws.extensions

    probe = Probe(body)
    async with in_memory(probe.run, deflate=None) as app, app.websocket_connect("/") as client:
        assert await probe.outcome() is None
        assert "Sec-WebSocket-Extensions" not in handshake_headers(client)


async def test_no_extensions_when_the_client_offers_none() -> None:
    async def body(ws: WebSocket) -> str | None:
        await ws.accept()
        return ws.extensions

    probe = Probe(body)
    async with in_memory(probe.run) as app, app.websocket_connect("/", compression=None):
        assert await probe.outcome() is None


# ---------------------------------------------------------------------------
# states and misuse
# ---------------------------------------------------------------------------


async def test_states_follow_the_connection() -> None:
    async def body(ws: WebSocket) -> list[tuple[WebSocketState, WebSocketState]]:
        states = [(ws.client_state, ws.application_state)]
        await ws.accept()
        states.append((ws.client_state, ws.application_state))
        await ws.close(4100, "app done")
        states.append((ws.client_state, ws.application_state))
        await ws.close()  # closing twice is harmless
        return states

    probe = Probe(body)
    async with in_memory(probe.run) as app, app.websocket_connect("/") as client:
        assert await closed_with(client) == (4100, "app done")
        assert await probe.outcome() == [
            (WebSocketState.CONNECTING, WebSocketState.CONNECTING),
            (WebSocketState.CONNECTED, WebSocketState.CONNECTED),
            (WebSocketState.CONNECTED, WebSocketState.DISCONNECTED),
        ]


async def _misuse(body: Body) -> object:
    probe = Probe(body)
    async with in_memory(probe.run) as app:
        try:
            async with app.websocket_connect("/"):
                return await probe.outcome()
        except ClientInvalidStatus:
            # Endpoints that never accept are refused with 403.
            return await probe.outcome()


async def _expect_runtime_error(action: Callable[[], Awaitable[Any]]) -> str:
    with pytest.raises(RuntimeError) as caught:
        await action()
    return str(caught.value)


async def test_send_before_accept_is_an_error() -> None:
    async def body(ws: WebSocket) -> list[str]:
        return [
            await _expect_runtime_error(lambda: ws.send_text("x")),
            await _expect_runtime_error(lambda: ws.send_bytes(b"x")),
            await _expect_runtime_error(lambda: ws.send_json(1)),
            await _expect_runtime_error(lambda: ws.stream().__aenter__()),
            await _expect_runtime_error(lambda: asyncio.sleep(0, ws.ping())),
        ]

    assert await _misuse(body) == ["send before accept()"] * 5


async def test_receive_before_accept_is_an_error() -> None:
    async def body(ws: WebSocket) -> list[str]:
        return [
            await _expect_runtime_error(ws.receive),
            await _expect_runtime_error(ws.receive_text),
            await _expect_runtime_error(ws.receive_json),
        ]

    assert await _misuse(body) == ["receive() before accept()"] * 3


async def test_accept_twice_is_an_error() -> None:
    async def body(ws: WebSocket) -> str:
        await ws.accept()
        return await _expect_runtime_error(ws.accept)

    assert await _misuse(body) == "accept() called twice, or after close()"


async def test_send_after_close_is_an_error() -> None:
    async def body(ws: WebSocket) -> str:
        await ws.accept()
        await ws.close()
        return await _expect_runtime_error(lambda: ws.send_text("x"))

    assert await _misuse(body) == "send after close()"


async def test_two_tasks_receiving_at_once_is_an_error() -> None:
    async def body(ws: WebSocket) -> tuple[str, object]:
        await ws.accept()
        first = asyncio.create_task(ws.receive())
        # One turn of the loop: the task runs up to its wait for a message
        # (no message is there yet: the client sends only when told to).
        await asyncio.sleep(0)
        error = await _expect_runtime_error(ws.receive)
        await ws.send_text("go")
        return error, await first

    probe = Probe(body)
    async with in_memory(probe.run) as app, app.websocket_connect("/") as client:
        assert await asyncio.wait_for(client.recv(), TIMEOUT) == "go"
        await client.send("for the first")
        error, message = await probe.outcome()
        assert error == "receive() is already waiting in another task"
        assert getattr(message, "data", None) == "for the first"


# ---------------------------------------------------------------------------
# concurrent senders
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("compression", [None, "deflate"])
async def test_concurrent_senders_never_interleave(
    monkeypatch: pytest.MonkeyPatch, compression: str | None
) -> None:
    tasks, per_task = 100, 50
    pauses: list[int] = []
    original_pause = Connection.pause_writing

    def counting_pause(self: Connection) -> None:
        pauses.append(self.id)
        original_pause(self)

    monkeypatch.setattr(Connection, "pause_writing", counting_pause)
    stream_chunks = [struct.pack("!I", i) * 256 for i in range(64)]  # 1 KiB each

    async def sender(ws: WebSocket, task: int) -> None:
        for i in range(per_task):
            # Distinct payloads of varied sizes, some above the write limit
            # share so that senders wait for the transport to drain.
            await ws.send_text(f"{task}:{i}:" + "x" * ((task * 37 + i * 11) % 3000))

    async def streamer(ws: WebSocket) -> None:
        async with ws.stream(binary=True) as stream:
            for chunk in stream_chunks:
                await stream.write(chunk)

    async def body(ws: WebSocket) -> None:
        await ws.accept()
        async with asyncio.TaskGroup() as group:
            for task in range(tasks):
                group.create_task(sender(ws, task))
                if task == tasks // 2:
                    group.create_task(streamer(ws))

    probe = Probe(body)
    # A small write limit makes the senders queue behind the transport.
    async with (
        serving(probe.run, write_limit=16 * 1024) as server,
        connect(ws_url(server), max_size=None, compression=compression) as client,
    ):
        texts: list[str] = []
        binaries: list[bytes] = []
        for _ in range(tasks * per_task + 1):
            message = await asyncio.wait_for(client.recv(), TIMEOUT)
            if isinstance(message, str):
                texts.append(message)
            else:
                binaries.append(message)
        await probe.outcome()
        assert binaries == [b"".join(stream_chunks)]
        per_sender: dict[int, list[int]] = {}
        for text in texts:
            task_s, i_s, padding = text.split(":")
            task, i = int(task_s), int(i_s)
            assert padding == "x" * ((task * 37 + i * 11) % 3000)
            per_sender.setdefault(task, []).append(i)
        # Every message arrived intact, once, and each task's in its order.
        assert per_sender == {task: list(range(per_task)) for task in range(tasks)}
        if compression is None:
            # The senders did queue behind a full transport buffer.  (The
            # padding compresses to almost nothing with deflate.)
            assert pauses


# ---------------------------------------------------------------------------
# the small classes
# ---------------------------------------------------------------------------


def test_websocket_disconnect_defaults_and_text() -> None:
    error = WebSocketDisconnect()
    assert (error.code, error.reason) == (1000, "")
    assert str(error) == "WebSocket disconnected with code 1000"
    assert error.args == (1000, "")


# ---------------------------------------------------------------------------
# queue_prepared: broadcast's way to send, without waiting
# ---------------------------------------------------------------------------


async def test_queue_prepared_queues_on_an_open_connection_only() -> None:
    from wsserver.protocol.frames import prepare_message
    from wsserver.server.websocket import QueueOutcome

    prepared = prepare_message("queued")
    size = len(prepared.frame)

    async def body(ws: WebSocket) -> list[QueueOutcome]:
        before = ws.queue_prepared(prepared, size, compress=False, close_if_slow=True)
        await ws.accept()
        outcomes = [before, ws.queue_prepared(prepared, size, compress=False, close_if_slow=True)]
        async with ws.stream():
            outcomes.append(ws.queue_prepared(prepared, size, compress=False, close_if_slow=True))
        await ws.close()
        outcomes.append(ws.queue_prepared(prepared, size, compress=False, close_if_slow=True))
        return outcomes

    probe = Probe(body)
    async with in_memory(probe.run) as app, app.websocket_connect("/") as client:
        assert await asyncio.wait_for(client.recv(), TIMEOUT) == "queued"
        assert await probe.outcome() == [
            QueueOutcome.NOT_OPEN,
            QueueOutcome.QUEUED,
            QueueOutcome.STREAMING,
            QueueOutcome.NOT_OPEN,
        ]
        # The empty stream: one empty text message, then the close.
        assert await asyncio.wait_for(client.recv(), TIMEOUT) == ""
        assert await closed_with(client) == (1000, "")
