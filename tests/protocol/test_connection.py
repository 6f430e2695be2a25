"""Tests for ``ServerConnection``: the whole server side, driven with raw bytes.

The client's side is written with ``wsserver.testing.wire`` (a frame encoder
and a handshake request written from the RFC, independent of the code under
test) or by real clients (wsproto's and websockets' sans-I/O clients,
connected in memory); what the server writes is read back with a small
unmasked-frame parser that also checks the server never masks.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from websockets.client import ClientProtocol
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory
from websockets.frames import Frame as WebsocketsFrame
from websockets.frames import Opcode as WebsocketsOpcode
from websockets.http11 import Response as WebsocketsResponse
from websockets.protocol import State as WebsocketsState
from websockets.typing import Subprotocol
from websockets.uri import parse_uri
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, BytesMessage, CloseConnection
from wsproto.events import Ping as WsprotoPing
from wsproto.events import Pong as WsprotoPong
from wsproto.events import Request as WsprotoRequest
from wsproto.events import TextMessage as WsprotoTextMessage
from wsproto.extensions import PerMessageDeflate as WsprotoDeflate

from wsserver.protocol import state as state_module
from wsserver.protocol.codes import CloseCode, Opcode
from wsserver.protocol.connection import ServerConnection
from wsserver.protocol.events import (
    BinaryMessage,
    CloseReceived,
    ConnectionFailed,
    ConnectionLost,
    Event,
    HTTPRequest,
    Ping,
    Pong,
    RequestBody,
    RequestRejected,
    TextMessage,
    WebSocketRequest,
)
from wsserver.protocol.exceptions import LocalProtocolError
from wsserver.protocol.extensions.permessage_deflate import DeflateSettings
from wsserver.protocol.frames import Frame
from wsserver.protocol.settings import ProtocolSettings
from wsserver.protocol.state import TRANSITION_TABLE, TRANSITIONS, State, Trigger
from wsserver.testing import wire

KEY = "dGhlIHNhbXBsZSBub25jZQ=="
#: RFC 6455 section 1.3's worked example.
ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
#: The masking key of RFC 6455 section 5.7's examples.
MASK = b"\x37\xfa\x21\x3d"
TAIL = b"\x00\x00\xff\xff"


def handshake(*fields: tuple[str, str], target: str = "/chat") -> bytes:
    """A valid opening handshake (RFC 6455 section 4.1) with extra header fields."""
    return wire.client_handshake(target, host="example.com", key=KEY, headers=fields)


#: A frame as a client writes it (``wsserver.testing.wire``, independent of
#: the code under test): masked with section 5.7's key unless told otherwise.
client_frame = functools.partial(wire.client_frame, mask=MASK)


def text(data: str, **kwargs) -> bytes:
    return client_frame(Opcode.TEXT, data.encode(), **kwargs)


def close(code: int | None = None, reason: str = "") -> bytes:
    return wire.close_frame(code, reason, mask=MASK)


def server_frames(data: bytes) -> list[Frame]:
    """Parse what the server wrote, checking what a client would check."""
    frames = []
    position = 0
    while position < len(data):
        header = wire.read_frame_header(data, position)
        assert header is not None, "truncated frame header"
        assert header.mask is None, "section 5.1: a server MUST NOT mask"
        assert not (header.rsv2 or header.rsv3), "RSV2 and RSV3 are never set"
        assert header.length_bits == wire.minimal_length_bits(header.length), "shortest length form"
        position += header.size
        payload = data[position : position + header.length]
        assert len(payload) == header.length, "truncated frame"
        position += header.length
        frames.append(Frame(Opcode(header.opcode), payload, header.fin, header.rsv1))
    return frames


def close_frame(code: int | None, reason: str = "") -> Frame:
    payload = b"" if code is None else wire.close_payload(code, reason)
    return Frame(Opcode.CLOSE, payload)


def written(conn: ServerConnection) -> bytes:
    return b"".join(conn.data_to_send())


def sent(conn: ServerConnection) -> list[Frame]:
    return server_frames(written(conn))


def feed(conn: ServerConnection, *chunks: bytes) -> list[Event]:
    for chunk in chunks:
        conn.receive_data(chunk)
    return conn.events()


def opened(
    *fields: tuple[str, str],
    settings: ProtocolSettings | None = None,
    deflate: DeflateSettings | None = DeflateSettings(),  # noqa: B008 - frozen
    subprotocol: str | None = None,
) -> ServerConnection:
    """A connection past its handshake, with the 101 already taken."""
    conn = ServerConnection(settings, deflate=deflate)
    [request] = feed(conn, handshake(*fields))
    assert isinstance(request, WebSocketRequest)
    conn.accept(subprotocol)
    response = written(conn)
    assert response.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    assert response.endswith(b"\r\n\r\n")
    assert conn.state is State.OPEN
    return conn


# mypy keeps properties narrowed across calls that change them; asking
# through a function keeps `assert not ...` then `assert ...` checkable.
def state_of(conn: ServerConnection) -> State:
    return conn.state


def closes(conn: ServerConnection) -> bool:
    return conn.must_close_transport


def held(conn: ServerConnection) -> bool:
    return conn.reply_held


# --------------------------------------------------------------------------
# Raw bytes, both ways: RFC 6455 section 5.7 and RFC 7692 section 7.2.3


class TestRfcExamples:
    # "A single-frame masked text message ... contains "Hello""
    MASKED_HELLO = bytes.fromhex("81 85 37 fa 21 3d 7f 9f 4d 51 58")
    # "A single-frame unmasked text message"
    UNMASKED_HELLO = bytes.fromhex("81 05 48 65 6c 6c 6f")
    # "A fragmented unmasked text message": "Hel", then "lo".
    FRAGMENTED_HELLO = bytes.fromhex("01 03 48 65 6c") + bytes.fromhex("80 02 6c 6f")
    # "Unmasked Ping request and masked Ping response" ("Hello").
    UNMASKED_PING = bytes.fromhex("89 05 48 65 6c 6c 6f")
    MASKED_PONG = bytes.fromhex("8a 85 37 fa 21 3d 7f 9f 4d 51 58")
    # RFC 7692 section 7.2.3.1/7.2.3.2: "Hello" compressed, then again
    # with the first one's window.
    COMPRESSED_HELLO = bytes.fromhex("c1 07 f2 48 cd c9 c9 07 00")
    COMPRESSED_HELLO_AGAIN = bytes.fromhex("c1 05 f2 00 11 00 00")
    # RFC 7692 section 7.2.3.3: "Hello" in a stored (BTYPE=00) block.
    STORED_HELLO = bytes.fromhex("c1 0b 00 05 00 fa ff 48 65 6c 6c 6f 00")

    def test_encoder_matches_the_rfc(self) -> None:
        assert text("Hello") == self.MASKED_HELLO
        assert client_frame(Opcode.PONG, b"Hello") == self.MASKED_PONG
        assert client_frame(Opcode.BINARY, b"x" * 256)[:4] == bytes.fromhex("82 fe 01 00")
        assert client_frame(Opcode.BINARY, b"x" * 65536)[:10] == bytes.fromhex(
            "82 ff 00 00 00 00 00 01 00 00"
        )

    def test_parser_matches_the_rfc(self) -> None:
        assert server_frames(self.UNMASKED_HELLO) == [Frame(Opcode.TEXT, b"Hello")]
        assert server_frames(self.FRAGMENTED_HELLO) == [
            Frame(Opcode.TEXT, b"Hel", fin=False),
            Frame(Opcode.CONTINUATION, b"lo"),
        ]
        assert server_frames(self.COMPRESSED_HELLO) == [
            Frame(Opcode.TEXT, bytes.fromhex("f2 48 cd c9 c9 07 00"), rsv1=True)
        ]

    def test_masked_hello_in(self) -> None:
        assert feed(opened(), self.MASKED_HELLO) == [TextMessage(data="Hello")]

    def test_unmasked_hello_out(self) -> None:
        conn = opened()
        conn.send_text("Hello")
        assert written(conn) == self.UNMASKED_HELLO

    def test_fragmented_hello_out(self) -> None:
        conn = opened()
        conn.send_fragment("Hel", fin=False)
        conn.send_fragment("lo", fin=True)
        assert written(conn) == self.FRAGMENTED_HELLO

    def test_fragmented_hello_in(self) -> None:
        data = text("Hel", fin=False) + client_frame(Opcode.CONTINUATION, b"lo")
        assert data[:2] == bytes.fromhex("01 83") and data[9:11] == bytes.fromhex("80 82")
        assert feed(opened(), data) == [TextMessage(data="Hello")]

    def test_ping_out_and_masked_pong_in(self) -> None:
        conn = opened()
        conn.send_ping(b"Hello")
        assert written(conn) == self.UNMASKED_PING
        assert feed(conn, self.MASKED_PONG) == [Pong(payload=b"Hello", acknowledged=(b"Hello",))]

    def test_compressed_hello_out(self) -> None:
        conn = opened(("Sec-WebSocket-Extensions", "permessage-deflate"))
        conn.send_text("Hello", compress=True)
        assert written(conn) == self.COMPRESSED_HELLO
        conn.send_text("Hello", compress=True)
        assert written(conn) == self.COMPRESSED_HELLO_AGAIN

    def test_compressed_hello_in(self) -> None:
        conn = opened(("Sec-WebSocket-Extensions", "permessage-deflate"))
        payloads = [
            self.COMPRESSED_HELLO[2:],
            self.COMPRESSED_HELLO_AGAIN[2:],
            self.STORED_HELLO[2:],
        ]
        frames = [client_frame(Opcode.TEXT, payload, rsv1=True) for payload in payloads]
        assert feed(conn, *frames) == [TextMessage(data="Hello")] * 3


# --------------------------------------------------------------------------
# The HTTP phase through the connection


class TestHandshake:
    def test_accept(self) -> None:
        conn = ServerConnection()
        assert conn.state is State.CONNECTING
        [request] = feed(conn, handshake(("Sec-WebSocket-Protocol", "chat, superchat")))
        assert isinstance(request, WebSocketRequest)
        assert request.subprotocols == ("chat", "superchat")
        assert written(conn) == b""
        conn.accept("superchat", (("Server", "wsserver"),))
        assert written(conn) == (
            b"HTTP/1.1 101 Switching Protocols\r\n"
            b"Upgrade: websocket\r\n"
            b"Connection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + ACCEPT.encode() + b"\r\n"
            b"Sec-WebSocket-Protocol: superchat\r\n"
            b"Server: wsserver\r\n"
            b"\r\n"
        )
        assert state_of(conn) is State.OPEN
        assert conn.subprotocol == "superchat"
        assert conn.extensions is None
        assert not closes(conn)
        assert conn.events() == []

    def test_frames_in_the_same_read_as_the_request(self) -> None:
        conn = ServerConnection()
        [request] = feed(conn, handshake() + text("early") + text("ea"))
        assert isinstance(request, WebSocketRequest)
        # The HTTP phase keeps them until the answer, and counts them (the
        # server stops reading while they wait).
        assert conn.buffered == len(text("early") + text("ea"))
        conn.accept()
        written(conn)
        assert conn.buffered == len(text("early") + text("ea"))
        assert conn.next_event() == TextMessage(data="early")
        assert conn.buffered == len(text("ea"))
        assert conn.next_event() == TextMessage(data="ea")
        assert conn.buffered == 0

    def test_reject(self) -> None:
        conn = ServerConnection()
        feed(conn, handshake())
        conn.reject(403, (("Content-Type", "text/plain"),), b"no\n")
        assert written(conn) == (
            b"HTTP/1.1 403 Forbidden\r\n"
            b"Content-Type: text/plain\r\n"
            b"Content-Length: 3\r\n"
            b"Connection: close\r\n"
            b"\r\n"
            b"no\n"
        )
        assert conn.state is State.CLOSED
        assert closes(conn)
        assert feed(conn, text("ignored")) == []
        assert written(conn) == b""

    def test_plain_http_then_upgrade_on_the_same_connection(self) -> None:
        conn = ServerConnection()
        [page] = feed(conn, b"GET /index HTTP/1.1\r\nHost: example.com\r\n\r\n" + handshake())
        assert isinstance(page, HTTPRequest)
        assert page.target == "/index"
        conn.send_response(200, (("Content-Type", "text/plain"),), b"hi")
        assert written(conn) == (
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nhi"
        )
        assert state_of(conn) is State.CONNECTING
        assert not closes(conn)
        [request] = conn.events()
        assert isinstance(request, WebSocketRequest)
        conn.accept()
        assert written(conn).startswith(b"HTTP/1.1 101 ")
        assert state_of(conn) is State.OPEN

    def test_a_streamed_response_then_the_next_request(self) -> None:
        conn = ServerConnection()
        [page] = feed(conn, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + handshake())
        assert isinstance(page, HTTPRequest)
        conn.start_response(200, (("Content-Type", "text/plain"),))
        conn.send_body(b"part")
        conn.end_response()
        assert written(conn) == (
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n4\r\npart\r\n0\r\n\r\n"
        )
        [request] = conn.events()
        assert isinstance(request, WebSocketRequest)
        conn.accept()
        with pytest.raises(LocalProtocolError, match="after the WebSocket handshake"):
            conn.start_response(200)
        with pytest.raises(LocalProtocolError, match="after the WebSocket handshake"):
            conn.send_body(b"")
        with pytest.raises(LocalProtocolError, match="after the WebSocket handshake"):
            conn.end_response()

    def test_a_streamed_request_body_then_the_upgrade(self) -> None:
        conn = ServerConnection(stream_bodies=True)
        head = b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n"
        conn.receive_data(head + b"hel")
        page = conn.next_event()
        assert isinstance(page, HTTPRequest)
        assert page.streamed
        assert conn.buffered == 3  # waits for the caller to ask
        assert conn.next_event() == RequestBody(data=b"hel", more=True)
        assert conn.next_event() is None
        conn.receive_data(b"lo" + handshake())
        assert conn.next_event() == RequestBody(data=b"lo", more=False)
        conn.send_response(200, (), b"ok")
        assert written(conn).endswith(b"\r\n\r\nok")
        [request] = conn.events()
        assert isinstance(request, WebSocketRequest)

    def test_plain_http_with_connection_close(self) -> None:
        conn = ServerConnection()
        [page] = feed(conn, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert isinstance(page, HTTPRequest)
        conn.send_response(204)
        assert b"Connection: close" in written(conn)
        assert closes(conn)
        assert conn.events() == []
        assert state_of(conn) is State.CLOSED

    def test_invalid_request_is_rejected_by_the_core(self) -> None:
        conn = ServerConnection()
        [event] = feed(conn, handshake().replace(b"Version: 13", b"Version: 8"))
        assert event == RequestRejected(
            status=426, reason="unsupported WebSocket version: this server speaks version 13"
        )
        assert written(conn).startswith(b"HTTP/1.1 426 Upgrade Required\r\n")
        assert conn.state is State.CLOSED
        assert closes(conn)

    def test_eof_between_requests(self) -> None:
        conn = ServerConnection()
        conn.receive_eof()
        assert conn.eof_received
        assert conn.events() == []
        assert conn.state is State.CLOSED
        assert closes(conn)

    def test_eof_in_the_request(self) -> None:
        conn = ServerConnection()
        conn.receive_data(handshake()[:-2])
        conn.receive_eof()
        [event] = conn.events()
        assert isinstance(event, RequestRejected)
        assert event.status == 400
        assert conn.state is State.CLOSED

    def test_eof_after_the_request_still_gets_the_messages(self) -> None:
        conn = ServerConnection()
        [request] = feed(conn, handshake() + text("last words"))
        conn.receive_eof()
        assert isinstance(request, WebSocketRequest)
        conn.accept()
        assert conn.events() == [
            TextMessage(data="last words"),
            ConnectionLost(code=CloseCode.ABNORMAL_CLOSURE, reason=""),
        ]
        assert written(conn).startswith(b"HTTP/1.1 101 ")
        assert closes(conn)


class TestTooMuchBeforeThe101:
    """The client sent more than the HTTP phase keeps while the caller decides."""

    LIMITS = ProtocolSettings(max_head_size=1024, max_body_size=0)

    def waiting(self) -> ServerConnection:
        conn = ServerConnection(self.LIMITS)
        [request] = feed(conn, handshake())
        assert isinstance(request, WebSocketRequest)
        return conn

    def test_excess_fails_the_connection_after_the_101(self) -> None:
        conn = self.waiting()
        frame = client_frame(Opcode.BINARY, b"\x00" * 600)
        conn.receive_data(frame)
        conn.receive_data(frame)  # 1,212 bytes: over the 1,024 kept
        conn.accept()
        response, _, frames = written(conn).partition(b"\r\n\r\n")
        assert response.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
        reason = "too much data before the handshake completed"
        assert server_frames(frames) == [close_frame(1009, reason)]
        assert state_of(conn) is State.CLOSED
        assert closes(conn)
        assert conn.sent_close_code == 1009
        assert conn.next_event() == ConnectionFailed(code=1009, reason=reason)
        assert conn.next_event() is None
        # Nothing of the cut stream is delivered, and nothing more is sent.
        with pytest.raises(LocalProtocolError):
            conn.send_text("x")
        assert written(conn) == b""

    def test_exactly_what_is_kept_goes_through(self) -> None:
        conn = self.waiting()
        payload = b"\x00" * (self.LIMITS.max_head_size - 8)
        frame = client_frame(Opcode.BINARY, payload)
        assert len(frame) == self.LIMITS.max_head_size
        conn.receive_data(frame)
        conn.accept()
        assert conn.events() == [BinaryMessage(data=payload)]
        assert state_of(conn) is State.OPEN
        assert not closes(conn)

    def test_the_read_that_completed_the_request_is_kept_whole(self) -> None:
        conn = ServerConnection(self.LIMITS)
        payload = b"y" * 5000
        [request] = feed(conn, handshake() + client_frame(Opcode.BINARY, payload))
        assert isinstance(request, WebSocketRequest)
        conn.accept()
        assert conn.events() == [BinaryMessage(data=payload)]
        assert state_of(conn) is State.OPEN


# --------------------------------------------------------------------------
# Misuse: every mistake of the caller raises LocalProtocolError


class TestLocalErrors:
    @pytest.mark.parametrize(
        "action",
        [
            lambda c: c.send_text("x"),
            lambda c: c.send_bytes(b"x"),
            lambda c: c.send_fragment("x", fin=True),
            lambda c: c.send_ping(),
            lambda c: c.send_pong(),
            lambda c: c.send_close(),
        ],
        ids=["text", "bytes", "fragment", "ping", "pong", "close"],
    )
    def test_send_before_accept(self, action: Callable[[ServerConnection], None]) -> None:
        conn = ServerConnection()
        feed(conn, handshake())
        with pytest.raises(LocalProtocolError, match="in state CONNECTING"):
            action(conn)
        assert written(conn) == b""
        conn.accept()  # still answerable

    def test_accept_without_a_request(self) -> None:
        with pytest.raises(LocalProtocolError, match="needs a pending WebSocketRequest"):
            ServerConnection().accept()
        with pytest.raises(LocalProtocolError, match="needs a pending WebSocketRequest"):
            ServerConnection().reject(400)

    def test_accept_or_reject_a_plain_request(self) -> None:
        conn = ServerConnection()
        feed(conn, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        with pytest.raises(LocalProtocolError):
            conn.accept()
        with pytest.raises(LocalProtocolError):
            conn.reject(400)
        conn.send_response(200)

    def test_send_response_to_a_handshake(self) -> None:
        conn = ServerConnection()
        feed(conn, handshake())
        with pytest.raises(LocalProtocolError, match="accept\\(\\) or reject\\(\\)"):
            conn.send_response(200)

    def test_accept_twice(self) -> None:
        conn = opened()
        with pytest.raises(LocalProtocolError, match="needs a pending WebSocketRequest"):
            conn.accept()
        with pytest.raises(LocalProtocolError):
            conn.reject(400)
        assert written(conn) == b""
        assert conn.state is State.OPEN

    def test_send_response_after_accept(self) -> None:
        with pytest.raises(LocalProtocolError, match="after the WebSocket handshake"):
            opened().send_response(200)

    def test_subprotocol_not_offered(self) -> None:
        conn = ServerConnection()
        feed(conn, handshake(("Sec-WebSocket-Protocol", "chat")))
        with pytest.raises(LocalProtocolError, match="not offered"):
            conn.accept("superchat")
        assert written(conn) == b""
        assert state_of(conn) is State.CONNECTING
        conn.accept("chat")
        assert state_of(conn) is State.OPEN

    def test_handshake_headers_are_the_cores(self) -> None:
        conn = ServerConnection()
        feed(conn, handshake(("Sec-WebSocket-Extensions", "permessage-deflate")))
        with pytest.raises(LocalProtocolError, match="set by the protocol core"):
            conn.accept(None, (("Sec-WebSocket-Extensions", "x"),))
        assert state_of(conn) is State.CONNECTING
        conn.accept()
        assert conn.extensions == "permessage-deflate"

    def test_ping_payload_too_long(self) -> None:
        conn = opened()
        conn.send_ping(b"x" * 125)
        with pytest.raises(LocalProtocolError, match="at most 125"):
            conn.send_ping(b"y" * 126)
        with pytest.raises(LocalProtocolError, match="at most 125"):
            conn.send_pong(b"y" * 126)
        assert sent(conn) == [Frame(Opcode.PING, b"x" * 125)]

    def test_duplicate_ping(self) -> None:
        conn = opened()
        conn.send_ping(b"same")
        with pytest.raises(LocalProtocolError, match="already waiting"):
            conn.send_ping(bytearray(b"same"))
        assert sent(conn) == [Frame(Opcode.PING, b"same")]
        feed(conn, client_frame(Opcode.PONG, b"same"))
        conn.send_ping(b"same")  # answered: may be sent again
        assert sent(conn) == [Frame(Opcode.PING, b"same")]

    @pytest.mark.parametrize("how", ["send_close", "peer_close", "fail"])
    def test_send_after_close(self, how: str) -> None:
        conn = opened()
        if how == "send_close":
            conn.send_close()
        elif how == "peer_close":
            feed(conn, close(1000))
        else:
            conn.fail(1011)
        written(conn)
        actions: list[Callable[[], object]] = [
            lambda: conn.send_text("x"),
            lambda: conn.send_bytes(b"x"),
            lambda: conn.send_fragment(b"x", fin=True),
            lambda: conn.send_ping(b"x"),
            lambda: conn.send_pong(b"x"),
            conn.send_close,
        ]
        for action in actions:
            with pytest.raises(LocalProtocolError, match=r"cannot .* in state CLOS"):
                action()
        assert written(conn) == b""

    @pytest.mark.parametrize(("first", "second"), [("text", b"bytes"), (b"bytes", "text")])
    def test_send_fragment_type_mixing(self, first: str | bytes, second: str | bytes) -> None:
        conn = opened()
        conn.send_fragment(first, fin=False)
        with pytest.raises(LocalProtocolError, match="must all be str or bytes"):
            conn.send_fragment(second, fin=True)
        conn.send_fragment(first, fin=True)
        assert [frame.opcode for frame in sent(conn)] == [
            Opcode.TEXT if isinstance(first, str) else Opcode.BINARY,
            Opcode.CONTINUATION,
        ]

    def test_whole_message_while_streaming(self) -> None:
        conn = opened()
        conn.send_fragment(b"a", fin=False)
        with pytest.raises(LocalProtocolError, match="finish it first"):
            conn.send_text("b")
        with pytest.raises(LocalProtocolError, match="finish it first"):
            conn.send_bytes(b"b")
        conn.send_fragment(b"c", fin=True)
        conn.send_text("d")  # the stream is over
        assert [frame.payload for frame in sent(conn)] == [b"a", b"c", b"d"]

    def test_fail_before_handshake(self) -> None:
        conn = ServerConnection()
        with pytest.raises(LocalProtocolError, match="use reject"):
            conn.fail(1011)
        feed(conn, handshake())
        with pytest.raises(LocalProtocolError, match="use reject"):
            conn.fail(1011)
        assert state_of(conn) is State.CONNECTING

    @pytest.mark.parametrize(
        ("code", "reason"),
        [(999, ""), (1004, ""), (1005, "why"), (1006, ""), (1015, ""), (2999, ""), (5000, "")],
    )
    def test_close_code_that_may_not_be_sent(self, code: int, reason: str) -> None:
        conn = opened()
        with pytest.raises(LocalProtocolError):
            conn.send_close(code, reason)
        with pytest.raises(LocalProtocolError):
            conn.fail(code, reason)
        assert conn.state is State.OPEN
        assert written(conn) == b""

    def test_close_reason_too_long_or_not_utf8(self) -> None:
        conn = opened()
        with pytest.raises(LocalProtocolError, match="at most 123"):
            conn.send_close(1000, "x" * 124)
        with pytest.raises(LocalProtocolError, match="UTF-8"):
            conn.send_close(1000, "\ud800")
        conn.send_close(1000, "x" * 123)
        assert sent(conn) == [close_frame(1000, "x" * 123)]

    def test_fail_truncates_its_reason(self) -> None:
        conn = opened()
        conn.fail(1011, "\u00e9" * 100)  # 200 bytes of UTF-8
        assert sent(conn) == [close_frame(1011, "\u00e9" * 61)]
        assert conn.sent_close_reason == "\u00e9" * 61


# --------------------------------------------------------------------------
# Ping and pong


class TestPingPong:
    @pytest.mark.parametrize("payload", [b"", b"a", b"\x00\xff" * 62 + b"!"])
    def test_auto_pong_with_identical_payload(self, payload: bytes) -> None:
        conn = opened()
        assert feed(conn, client_frame(Opcode.PING, payload)) == [Ping(payload=payload)]
        assert sent(conn) == [Frame(Opcode.PONG, payload)]

    def test_pongs_in_order_of_the_pings(self) -> None:
        conn = opened()
        pings = [client_frame(Opcode.PING, b"%d" % i) for i in range(3)]
        assert feed(conn, *pings) == [Ping(payload=b"%d" % i) for i in range(3)]
        assert sent(conn) == [Frame(Opcode.PONG, b"%d" % i) for i in range(3)]

    def test_unsolicited_pong(self) -> None:
        conn = opened()
        assert feed(conn, client_frame(Opcode.PONG, b"beat")) == [
            Pong(payload=b"beat", acknowledged=())
        ]
        assert written(conn) == b""
        conn.send_pong(b"ours")
        assert sent(conn) == [Frame(Opcode.PONG, b"ours")]

    def test_a_pong_acknowledges_its_ping_and_every_older_one(self) -> None:
        conn = opened()
        for payload in (b"1", b"2", b"3", b"4", b"5"):
            conn.send_ping(payload)
        assert [frame.payload for frame in sent(conn)] == [b"1", b"2", b"3", b"4", b"5"]
        pong = client_frame(Opcode.PONG, b"3")
        assert feed(conn, pong) == [Pong(payload=b"3", acknowledged=(b"1", b"2", b"3"))]
        assert feed(conn, pong) == [Pong(payload=b"3", acknowledged=())]
        assert feed(conn, client_frame(Opcode.PONG, b"5")) == [
            Pong(payload=b"5", acknowledged=(b"4", b"5"))
        ]
        assert feed(conn, client_frame(Opcode.PONG, b"1")) == [Pong(payload=b"1")]

    def test_pong_for_an_unknown_ping_acknowledges_nothing(self) -> None:
        conn = opened()
        conn.send_ping(b"a")
        assert feed(conn, client_frame(Opcode.PONG, b"b")) == [Pong(payload=b"b")]
        assert feed(conn, client_frame(Opcode.PONG, b"a")) == [
            Pong(payload=b"a", acknowledged=(b"a",))
        ]

    def test_no_pong_once_our_close_is_out(self) -> None:
        conn = opened()
        conn.send_ping(b"p")
        conn.send_close()
        written(conn)
        assert feed(conn, client_frame(Opcode.PING, b"x"), client_frame(Opcode.PONG, b"p")) == [
            Ping(payload=b"x"),
            Pong(payload=b"p", acknowledged=(b"p",)),
        ]
        assert written(conn) == b""


# --------------------------------------------------------------------------
# The closing handshake


class TestClose:
    @pytest.mark.parametrize("code", [1000, 1001, 1011, 3000, 4999])
    def test_peer_initiated(self, code: int) -> None:
        conn = opened()
        assert feed(conn, close(code, "bye")) == [CloseReceived(code=code, reason="bye")]
        # Section 5.5.1: "typically echoing the status code it received".
        assert sent(conn) == [close_frame(code)]
        assert conn.state is State.CLOSED
        assert closes(conn)
        assert (conn.close_code, conn.close_reason) == (code, "bye")
        assert (conn.sent_close_code, conn.sent_close_reason) == (code, "")
        # Section 5.5.1: after the Close, nothing more is read.
        assert feed(conn, text("late"), close(1000)) == []
        assert written(conn) == b""

    def test_empty_close_is_echoed_empty(self) -> None:
        conn = opened()
        assert feed(conn, close()) == [CloseReceived(code=1005, reason="")]
        assert written(conn) == b"\x88\x00"
        assert conn.close_code == 1005
        assert conn.sent_close_code == 1005

    def test_we_initiate(self) -> None:
        conn = opened()
        conn.send_close(1000, "done")
        assert written(conn) == b"\x88\x06\x03\xe8done"
        assert conn.state is State.CLOSING
        assert not closes(conn)
        assert (conn.sent_close_code, conn.sent_close_reason) == (1000, "done")
        # Messages still arrive until the peer's Close (section 7.1.2).
        assert feed(conn, text("in flight"), client_frame(Opcode.BINARY, b"\x01")) == [
            TextMessage(data="in flight"),
            BinaryMessage(data=b"\x01"),
        ]
        assert state_of(conn) is State.CLOSING
        assert feed(conn, close(1000, "ok")) == [CloseReceived(code=1000, reason="ok")]
        assert written(conn) == b""  # no second Close
        assert state_of(conn) is State.CLOSED
        assert closes(conn)

    def test_we_initiate_in_the_middle_of_a_streamed_message(self) -> None:
        conn = opened()
        conn.send_fragment("par", fin=False)
        conn.send_close(1001)
        assert sent(conn) == [Frame(Opcode.TEXT, b"par", fin=False), close_frame(1001)]

    def test_peer_error_while_closing_sends_no_second_close(self) -> None:
        conn = opened()
        conn.send_close()
        written(conn)
        assert feed(conn, client_frame(0x3)) == [
            ConnectionFailed(code=1002, reason="reserved opcode 0x3")
        ]
        assert written(conn) == b""
        assert conn.state is State.CLOSED

    def test_eof_while_closing(self) -> None:
        conn = opened()
        conn.send_close()
        conn.receive_eof()
        assert conn.events() == [ConnectionLost(code=1006, reason="")]
        assert conn.state is State.CLOSED

    def test_fail(self) -> None:
        conn = opened()
        conn.fail(1011, "handler crashed")
        assert sent(conn) == [close_frame(1011, "handler crashed")]
        assert conn.state is State.CLOSED
        assert closes(conn)
        conn.fail(1011)  # idempotent
        assert written(conn) == b""
        assert feed(conn, close(1000)) == []

    def test_fail_while_closing_sends_nothing(self) -> None:
        conn = opened()
        conn.send_close()
        written(conn)
        conn.fail(1011)
        assert written(conn) == b""
        assert conn.state is State.CLOSED

    @pytest.mark.parametrize(
        ("payload", "code", "reason"),
        [
            (b"\x03", 1002, "close frame with a 1-byte payload"),
            (b"\x03\xe7", 1002, "invalid close code 999"),
            (b"\x03\xec", 1002, "invalid close code 1004"),
            (b"\x03\xed", 1002, "invalid close code 1005"),
            (b"\x03\xee", 1002, "invalid close code 1006"),
            (b"\x03\xf7", 1002, "invalid close code 1015"),
            (b"\x0b\xb7", 1002, "invalid close code 2999"),
            (b"\x13\x88", 1002, "invalid close code 5000"),
            (b"\x03\xe8\xff", 1007, "invalid UTF-8 in text message"),
        ],
    )
    def test_invalid_close_payload(self, payload: bytes, code: int, reason: str) -> None:
        conn = opened()
        assert feed(conn, client_frame(Opcode.CLOSE, payload)) == [
            ConnectionFailed(code=code, reason=reason)
        ]
        assert sent(conn) == [close_frame(code, reason)]
        assert conn.state is State.CLOSED
        assert conn.close_code is None


# --------------------------------------------------------------------------
# Peer errors: ConnectionFailed and a Close frame with the same code

LIMITED = ProtocolSettings(max_message_size=100, max_fragments=3)

PEER_ERRORS = {
    "unmasked": (client_frame(Opcode.TEXT, b"x", mask=None), 1002),
    "reserved data opcode": (client_frame(0x3), 1002),
    "reserved control opcode": (client_frame(0xB), 1002),
    "rsv1 without deflate": (text("x", rsv1=True), 1002),
    "rsv2": (text("x", rsv2=True), 1002),
    "rsv3": (text("x", rsv3=True), 1002),
    "fragmented ping": (client_frame(Opcode.PING, fin=False), 1002),
    "ping over 125": (client_frame(Opcode.PING, b"x" * 126), 1002),
    "lone continuation": (client_frame(Opcode.CONTINUATION, b"x"), 1002),
    "text inside a fragmented message": (text("a", fin=False) + text("b"), 1002),
    "non-minimal 16-bit length": (client_frame(Opcode.BINARY, bytes(5), length_bits=16), 1002),
    "non-minimal 64-bit length": (client_frame(Opcode.BINARY, length=200, length_bits=64), 1002),
    "64-bit length with the top bit": (client_frame(Opcode.BINARY, length=1 << 63), 1002),
    "invalid UTF-8": (client_frame(Opcode.TEXT, b"\xc3\x28"), 1007),
    "invalid UTF-8 across fragments": (
        text("\u00e9", fin=False)[:-1] + client_frame(Opcode.CONTINUATION, b"\xff"),
        1007,
    ),
    "frame too big": (client_frame(Opcode.BINARY, b"x" * 101), 1009),
    "message too big": (
        client_frame(Opcode.BINARY, b"x" * 60, fin=False)
        + client_frame(Opcode.CONTINUATION, b"x" * 41),
        1009,
    ),
    "too many fragments": (
        b"".join(client_frame(Opcode.BINARY if i == 0 else 0, fin=False) for i in range(4)),
        1009,
    ),
}


class TestPeerErrors:
    @pytest.mark.parametrize(("data", "code"), PEER_ERRORS.values(), ids=PEER_ERRORS.keys())
    def test_error_fails_the_connection(self, data: bytes, code: int) -> None:
        conn = opened(settings=LIMITED)
        events = feed(conn, text("before"), data, text("after"))
        assert events[0] == TextMessage(data="before")
        [failed] = events[1:]
        assert isinstance(failed, ConnectionFailed)
        assert failed.code == code
        assert sent(conn) == [close_frame(code, failed.reason)]
        assert (conn.sent_close_code, conn.sent_close_reason) == (code, failed.reason)
        assert conn.state is State.CLOSED
        assert closes(conn)
        assert feed(conn, text("ignored")) == []

    def test_errors_never_raise_whatever_the_split(self) -> None:
        for data, code in PEER_ERRORS.values():
            conn = opened(settings=LIMITED)
            events = []
            for byte in data:
                events += feed(conn, bytes([byte]))
            assert [type(event) for event in events] == [ConnectionFailed]
            assert sent(conn)[0].payload[:2] == code.to_bytes(2, "big")


# --------------------------------------------------------------------------
# hold_replies


class TestHoldReplies:
    def test_close_is_held_until_asked(self) -> None:
        conn = opened()
        conn.receive_data(text("question") + close(1000) + text("ignored"))
        assert conn.next_event(hold_replies=True) == TextMessage(data="question")
        assert conn.next_event(hold_replies=True) is None
        assert held(conn)
        assert written(conn) == b""
        assert conn.state is State.OPEN
        assert conn.next_event(hold_replies=True) is None  # still held
        conn.send_text("answer")  # the application catches up
        assert conn.next_event() == CloseReceived(code=1000, reason="")
        assert not held(conn)
        assert sent(conn) == [Frame(Opcode.TEXT, b"answer"), close_frame(1000)]
        assert state_of(conn) is State.CLOSED
        assert conn.next_event() is None

    def test_error_is_held_until_asked(self) -> None:
        conn = opened()
        conn.receive_data(text("question") + client_frame(0x3))
        assert conn.next_event(hold_replies=True) == TextMessage(data="question")
        assert conn.next_event(hold_replies=True) is None
        assert held(conn)
        assert written(conn) == b""
        conn.send_text("answer")
        assert conn.next_event() == ConnectionFailed(code=1002, reason="reserved opcode 0x3")
        assert not held(conn)
        assert sent(conn) == [
            Frame(Opcode.TEXT, b"answer"),
            close_frame(1002, "reserved opcode 0x3"),
        ]

    def test_pings_and_pongs_are_not_held(self) -> None:
        conn = opened()
        conn.receive_data(client_frame(Opcode.PING, b"p") + client_frame(Opcode.PONG, b"q"))
        assert conn.next_event(hold_replies=True) == Ping(payload=b"p")
        assert conn.next_event(hold_replies=True) == Pong(payload=b"q")
        assert conn.next_event(hold_replies=True) is None
        assert not held(conn)
        assert sent(conn) == [Frame(Opcode.PONG, b"p")]

    def test_close_we_started_then_held_close(self) -> None:
        conn = opened()
        conn.receive_data(close(1001))
        assert conn.next_event(hold_replies=True) is None
        conn.send_close(1000)
        assert conn.next_event() == CloseReceived(code=1001, reason="")
        assert sent(conn) == [close_frame(1000)]  # ours only: no echo
        assert conn.state is State.CLOSED

    def test_fail_drops_what_is_held(self) -> None:
        conn = opened()
        conn.receive_data(close(1000))
        assert conn.next_event(hold_replies=True) is None
        assert held(conn)
        conn.fail(1011)
        assert not held(conn)
        assert conn.next_event() is None
        assert sent(conn) == [close_frame(1011)]
        assert conn.state is State.CLOSED

    def test_eof_after_a_held_close(self) -> None:
        conn = opened()
        conn.receive_data(close(1000))
        conn.receive_eof()
        assert conn.next_event(hold_replies=True) is None
        assert conn.next_event() == CloseReceived(code=1000, reason="")
        assert conn.next_event() is None


# --------------------------------------------------------------------------
# End of file


class TestEof:
    def test_eof_mid_message(self) -> None:
        conn = opened()
        partial = client_frame(Opcode.BINARY, b"abcdef")[:-2]
        assert feed(conn, text("one"), partial) == [TextMessage(data="one")]
        conn.receive_eof()
        assert conn.eof_received
        assert conn.events() == [ConnectionLost(code=CloseCode.ABNORMAL_CLOSURE, reason="")]
        assert conn.state is State.CLOSED
        assert closes(conn)
        assert written(conn) == b""

    def test_eof_mid_fragmented_message(self) -> None:
        conn = opened()
        conn.receive_data(text("a") + text("b", fin=False))
        conn.receive_eof()
        assert conn.events() == [
            TextMessage(data="a"),
            ConnectionLost(code=CloseCode.ABNORMAL_CLOSURE, reason=""),
        ]

    def test_eof_between_messages(self) -> None:
        conn = opened()
        conn.receive_data(text("a"))
        conn.receive_eof()
        assert conn.events() == [TextMessage(data="a"), ConnectionLost(code=1006, reason="")]
        assert conn.events() == []


# --------------------------------------------------------------------------
# Sending


class TestSending:
    @pytest.mark.parametrize("size", [0, 1, 125, 126, 1023, 1024, 65535, 65536, 70000])
    def test_lengths(self, size: int) -> None:
        conn = opened()
        conn.send_bytes(bytearray(b"b" * size))
        conn.send_text("t" * size)
        frames = sent(conn)
        assert frames == [Frame(Opcode.BINARY, b"b" * size), Frame(Opcode.TEXT, b"t" * size)]

    def test_memoryview_payloads(self) -> None:
        conn = opened()
        conn.send_bytes(memoryview(b"abc"))
        conn.send_fragment(memoryview(b"de"), fin=True)
        assert [frame.payload for frame in sent(conn)] == [b"abc", b"de"]

    def test_interleaved_control_frames_between_fragments(self) -> None:
        conn = opened()
        conn.send_fragment("a", fin=False)
        conn.send_ping(b"x")
        conn.send_fragment("b", fin=False)
        conn.send_pong(b"y")
        conn.send_fragment("", fin=True)
        assert sent(conn) == [
            Frame(Opcode.TEXT, b"a", fin=False),
            Frame(Opcode.PING, b"x"),
            Frame(Opcode.CONTINUATION, b"b", fin=False),
            Frame(Opcode.PONG, b"y"),
            Frame(Opcode.CONTINUATION, b""),
        ]

    def test_interleaved_control_frames_between_received_fragments(self) -> None:
        conn = opened()
        events = feed(
            conn,
            text("a", fin=False),
            client_frame(Opcode.PING, b"x"),
            client_frame(Opcode.CONTINUATION, b"b", fin=False),
            client_frame(Opcode.PONG, b"y"),
            client_frame(Opcode.CONTINUATION, b"c"),
        )
        assert events == [Ping(payload=b"x"), Pong(payload=b"y"), TextMessage(data="abc")]
        assert sent(conn) == [Frame(Opcode.PONG, b"x")]


# --------------------------------------------------------------------------
# permessage-deflate through the connection


class Deflater:
    """The client's half of permessage-deflate, for building frames by hand."""

    def __init__(self, bits: int = 15, no_context_takeover: bool = False) -> None:
        self.bits = bits
        self.no_context_takeover = no_context_takeover
        self.compressor = zlib.compressobj(wbits=-bits)

    def compress(self, data: bytes) -> bytes:
        if self.no_context_takeover:
            self.compressor = zlib.compressobj(wbits=-self.bits)
        output = self.compressor.compress(data) + self.compressor.flush(zlib.Z_SYNC_FLUSH)
        assert output.endswith(TAIL)
        return output[: -len(TAIL)]

    def frame(self, data: str | bytes) -> bytes:
        if isinstance(data, str):
            return client_frame(Opcode.TEXT, self.compress(data.encode()), rsv1=True)
        return client_frame(Opcode.BINARY, self.compress(data), rsv1=True)


class Inflater:
    """The client's inflater, with the window the server agreed to use."""

    def __init__(self, bits: int = 15) -> None:
        self.inflater = zlib.decompressobj(wbits=-bits)

    def message(self, frames: list[Frame]) -> bytes:
        if not frames[0].rsv1:
            return b"".join(frame.payload for frame in frames)
        assert not any(frame.rsv1 for frame in frames[1:])
        data = b"".join(frame.payload for frame in frames) + TAIL
        return self.inflater.decompress(data)


def params_of(header: str) -> dict[str, str | None]:
    name, *params = (part.strip() for part in header.split(";"))
    assert name == "permessage-deflate"
    return {key: value for key, _, value in (p.partition("=") for p in params)} | {
        key: None for key in params if "=" not in key
    }


#: (offer, server settings, agreed response)
NEGOTIATIONS = [
    ("permessage-deflate", DeflateSettings(), "permessage-deflate"),
    (
        "permessage-deflate; client_max_window_bits",
        DeflateSettings(),
        "permessage-deflate; client_max_window_bits=12",
    ),
    (
        "permessage-deflate; client_max_window_bits=10",
        DeflateSettings(),
        "permessage-deflate; client_max_window_bits=10",
    ),
    (
        "permessage-deflate; server_max_window_bits=10",
        DeflateSettings(),
        "permessage-deflate; server_max_window_bits=10",
    ),
    (
        "permessage-deflate; server_max_window_bits=15",
        DeflateSettings(),
        "permessage-deflate; server_max_window_bits=12",
    ),
    (
        "permessage-deflate; server_no_context_takeover",
        DeflateSettings(),
        "permessage-deflate; server_no_context_takeover",
    ),
    (
        "permessage-deflate; client_no_context_takeover",
        DeflateSettings(),
        "permessage-deflate; client_no_context_takeover",
    ),
    (
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover;"
        " server_max_window_bits=9; client_max_window_bits=9",
        DeflateSettings(),
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover;"
        " server_max_window_bits=9; client_max_window_bits=9",
    ),
    (
        "permessage-deflate",
        DeflateSettings(server_no_context_takeover=True, client_no_context_takeover=True),
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
    ),
    (
        "permessage-deflate; client_max_window_bits",
        DeflateSettings(client_max_window_bits=15, server_max_window_bits=15),
        "permessage-deflate; client_max_window_bits=15",
    ),
    (
        # The first acceptable offer wins; an invalid one is skipped.
        "x-other, permessage-deflate; bogus, permessage-deflate; client_no_context_takeover",
        DeflateSettings(),
        "permessage-deflate; client_no_context_takeover",
    ),
]


class TestCompression:
    @pytest.mark.parametrize(("offer", "deflate", "agreed"), NEGOTIATIONS)
    def test_negotiation_and_round_trip(
        self, offer: str, deflate: DeflateSettings, agreed: str
    ) -> None:
        conn = ServerConnection(deflate=deflate)
        [request] = feed(conn, handshake(("Sec-WebSocket-Extensions", offer)))
        assert isinstance(request, WebSocketRequest)
        assert "permessage-deflate" in [extension.name for extension in request.extensions]
        conn.accept()
        response = written(conn)
        assert f"\r\nSec-WebSocket-Extensions: {agreed}\r\n".encode() in response
        assert conn.extensions == agreed
        params = params_of(agreed)
        server_bits = int(params.get("server_max_window_bits") or deflate.server_max_window_bits)
        client_bits = int(params.get("client_max_window_bits") or 15)
        client = Deflater(client_bits, "client_no_context_takeover" in params)
        inflater = Inflater(server_bits)
        # Repeated, compressible messages: with context takeover the second
        # refers back to the first; without, each stands alone.
        messages: list[str | bytes] = [
            "hello " * 100,
            "hello " * 100,
            b"\x00\x01" * 3000,
            "x",
            "caf\u00e9 " * 500,
        ]
        for message in messages:
            assert feed(conn, client.frame(message)) == [
                TextMessage(data=message)
                if isinstance(message, str)
                else BinaryMessage(data=message)
            ]
            if isinstance(message, str):
                conn.send_text(message)
                expected = message.encode()
            else:
                conn.send_bytes(message)
                expected = message
            frames = sent(conn)
            assert len(frames) == 1
            assert frames[0].rsv1 is (len(expected) >= deflate.min_size)
            assert inflater.message(frames) == expected
        if "server_no_context_takeover" in params:
            # Every message stands alone: a fresh inflater reads it.
            conn.send_text("hello " * 100)
            [frame] = sent(conn)
            fresh = zlib.decompressobj(wbits=-server_bits)
            assert fresh.decompress(frame.payload + TAIL) == b"hello " * 100

    @pytest.mark.parametrize(
        "offer",
        [
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; client_max_window_bits=16",
            "permessage-deflate; unknown",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "x-webkit-deflate-frame",
        ],
    )
    def test_declined_offers(self, offer: str) -> None:
        conn = ServerConnection()
        feed(conn, handshake(("Sec-WebSocket-Extensions", offer)))
        conn.accept()
        assert b"Sec-WebSocket-Extensions" not in written(conn)
        assert conn.extensions is None
        conn.send_text("t" * 1000)
        assert not sent(conn)[0].rsv1
        # RSV1 is then a protocol error.
        assert feed(conn, text("x", rsv1=True)) == [
            ConnectionFailed(code=1002, reason="RSV1 set but no extension was negotiated")
        ]

    def test_no_deflate_settings_never_negotiates(self) -> None:
        conn = opened(("Sec-WebSocket-Extensions", "permessage-deflate"), deflate=None)
        assert conn.extensions is None
        conn.send_text("t" * 1000, compress=True)
        assert not sent(conn)[0].rsv1

    def test_min_size_threshold_and_compress_argument(self) -> None:
        deflate = DeflateSettings(min_size=10)
        conn = opened(("Sec-WebSocket-Extensions", "permessage-deflate"), deflate=deflate)
        inflater = Inflater()
        cases: list[tuple[Callable[[], object], bytes, bool]] = [
            (lambda: conn.send_text("a" * 9), b"a" * 9, False),
            (lambda: conn.send_text("a" * 10), b"a" * 10, True),
            (lambda: conn.send_bytes(b"b" * 9), b"b" * 9, False),
            (lambda: conn.send_bytes(b"b" * 10), b"b" * 10, True),
            (lambda: conn.send_text("c", compress=True), b"c", True),
            (lambda: conn.send_text("", compress=True), b"", True),
            (lambda: conn.send_text("d" * 500, compress=False), b"d" * 500, False),
            (lambda: conn.send_bytes(b"e" * 500, compress=False), b"e" * 500, False),
            (lambda: conn.send_bytes(b"f", compress=True), b"f", True),
        ]
        for send, payload, compressed in cases:
            send()
            [frame] = sent(conn)
            assert frame.rsv1 is compressed
            if not compressed:
                assert frame.payload == payload
            assert inflater.message([frame]) == payload

    def test_compressed_messages_in_several_fragments(self) -> None:
        conn = opened(("Sec-WebSocket-Extensions", "permessage-deflate"))
        payload = Deflater().compress(("fragmented " * 300).encode())
        pieces = [payload[:10], payload[10:11], b"", payload[11:]]
        data = client_frame(Opcode.TEXT, pieces[0], fin=False, rsv1=True)
        data += client_frame(Opcode.PING, b"between")
        for i, piece in enumerate(pieces[1:], 1):
            data += client_frame(Opcode.CONTINUATION, piece, fin=i == len(pieces) - 1)
        assert feed(conn, data) == [
            Ping(payload=b"between"),
            TextMessage(data="fragmented " * 300),
        ]

    @pytest.mark.parametrize("compress", [None, False])
    def test_send_fragment_streaming(self, compress: bool | None) -> None:
        conn = opened(("Sec-WebSocket-Extensions", "permessage-deflate"))
        inflater = Inflater()
        parts = ["stream " * 50, "", "ing " * 80, "!"]
        for message in range(2):  # the second one with the first's context
            for i, part in enumerate(parts):
                conn.send_fragment(part, fin=i == len(parts) - 1, compress=compress)
                if i == 1:
                    conn.send_ping(b"%d" % message)
            frames = sent(conn)
            assert frames[2] == Frame(Opcode.PING, b"%d" % message)
            del frames[2]
            assert [frame.opcode for frame in frames] == [Opcode.TEXT] + [Opcode.CONTINUATION] * 3
            assert [frame.fin for frame in frames] == [False, False, False, True]
            assert [frame.rsv1 for frame in frames] == [compress is None, False, False, False]
            assert inflater.message(frames) == "".join(parts).encode()
        # A later compress= does not change a streamed message's mind.
        conn.send_fragment(b"\x00" * 100, fin=False, compress=compress)
        conn.send_fragment(b"\x00" * 100, fin=True, compress=not compress)
        frames = sent(conn)
        assert [frame.rsv1 for frame in frames] == [compress is None, False]
        assert inflater.message(frames) == b"\x00" * 200

    def test_send_fragment_without_deflate_ignores_compress(self) -> None:
        conn = opened()
        conn.send_fragment(b"abc", fin=True, compress=True)
        assert sent(conn) == [Frame(Opcode.BINARY, b"abc")]

    def test_decompression_bomb(self) -> None:
        limits = ProtocolSettings(max_message_size=1000)
        conn = opened(("Sec-WebSocket-Extensions", "permessage-deflate"), settings=limits)
        assert feed(conn, Deflater().frame(b"\x00" * 1000)) == [BinaryMessage(data=b"\x00" * 1000)]
        [failed] = feed(conn, Deflater().frame(b"\x00" * 1001))
        assert isinstance(failed, ConnectionFailed)
        assert failed.code == 1009
        assert sent(conn) == [close_frame(1009, failed.reason)]


# --------------------------------------------------------------------------
# The state table, through the public API

Action = Callable[[ServerConnection], object]


def eof(conn: ServerConnection) -> list[Event]:
    conn.receive_eof()
    return conn.events()


ACTIONS: dict[str, Action] = {
    "accept": lambda c: c.accept(),
    "reject": lambda c: c.reject(403),
    "send_response": lambda c: c.send_response(200),
    "send_text": lambda c: c.send_text("x"),
    "send_bytes": lambda c: c.send_bytes(b"x"),
    "send_fragment": lambda c: c.send_fragment("x", fin=False),
    "send_ping": lambda c: c.send_ping(b"p"),
    "send_pong": lambda c: c.send_pong(b"p"),
    "send_close": lambda c: c.send_close(),
    "fail": lambda c: c.fail(1011),
    "peer_text": lambda c: feed(c, text("x")),
    "peer_close": lambda c: feed(c, close(1000)),
    "peer_error": lambda c: feed(c, client_frame(0x3)),
    "eof": lambda c: eof(c),
}

ERROR = "LocalProtocolError"
CONNECTING, OPEN, CLOSING, CLOSED = State.CONNECTING, State.OPEN, State.CLOSING, State.CLOSED

#: state -> action -> the state after it, or ERROR.
TABLE: dict[State, dict[str, State | str]] = {
    CONNECTING: {
        "accept": OPEN,
        "reject": CLOSED,
        "send_response": ERROR,
        "send_text": ERROR,
        "send_bytes": ERROR,
        "send_fragment": ERROR,
        "send_ping": ERROR,
        "send_pong": ERROR,
        "send_close": ERROR,
        "fail": ERROR,
        "peer_text": CONNECTING,  # kept until the request is answered
        "peer_close": CONNECTING,
        "peer_error": CONNECTING,
        "eof": CONNECTING,  # the request still gets its answer
    },
    OPEN: {
        "accept": ERROR,
        "reject": ERROR,
        "send_response": ERROR,
        "send_text": OPEN,
        "send_bytes": OPEN,
        "send_fragment": OPEN,
        "send_ping": OPEN,
        "send_pong": OPEN,
        "send_close": CLOSING,
        "fail": CLOSED,
        "peer_text": OPEN,
        "peer_close": CLOSED,
        "peer_error": CLOSED,
        "eof": CLOSED,
    },
    CLOSING: {
        "accept": ERROR,
        "reject": ERROR,
        "send_response": ERROR,
        "send_text": ERROR,
        "send_bytes": ERROR,
        "send_fragment": ERROR,
        "send_ping": ERROR,
        "send_pong": ERROR,
        "send_close": ERROR,
        "fail": CLOSED,
        "peer_text": CLOSING,
        "peer_close": CLOSED,
        "peer_error": CLOSED,
        "eof": CLOSED,
    },
    CLOSED: {
        "accept": ERROR,
        "reject": ERROR,
        "send_response": ERROR,
        "send_text": ERROR,
        "send_bytes": ERROR,
        "send_fragment": ERROR,
        "send_ping": ERROR,
        "send_pong": ERROR,
        "send_close": ERROR,
        "fail": CLOSED,  # a no-op
        "peer_text": CLOSED,
        "peer_close": CLOSED,
        "peer_error": CLOSED,
        "eof": CLOSED,
    },
}


def in_state(state: State) -> ServerConnection:
    conn = ServerConnection()
    feed(conn, handshake())
    if state is not State.CONNECTING:
        conn.accept()
    if state is State.CLOSING:
        conn.send_close()
    elif state is State.CLOSED:
        conn.fail(1011)
    written(conn)
    assert conn.state is state
    return conn


def outcome(state: State, action: str) -> State | str:
    conn = in_state(state)
    try:
        ACTIONS[action](conn)
    except LocalProtocolError:
        assert written(conn) == b"", "a refused call writes nothing"
        assert conn.state is state, "a refused call changes nothing"
        return ERROR
    return conn.state


def test_table_covers_every_state_and_action() -> None:
    assert set(TABLE) == set(State)
    for row in TABLE.values():
        assert set(row) == set(ACTIONS)


@pytest.mark.parametrize(
    ("state", "action"),
    list(itertools.product(State, ACTIONS)),
    ids=lambda x: getattr(x, "name", x),
)
def test_state_table(state: State, action: str) -> None:
    result = outcome(state, action)
    assert result == TABLE[state][action]
    if isinstance(result, State) and result is not state:
        assert result in TRANSITIONS[state]


def test_every_transition_is_reachable_through_the_api() -> None:
    reached = {
        (state, after)
        for state, row in TABLE.items()
        for after in row.values()
        if isinstance(after, State) and after is not state
    }
    legal = {(state, after) for state, targets in TRANSITIONS.items() for after in targets}
    assert reached == legal


Move = tuple[State, Trigger, State]


@pytest.fixture
def moves(monkeypatch: pytest.MonkeyPatch) -> list[Move]:
    """Every move the connection asks the table for, as it happens.

    The table is replaced, not ``transition``: a module's functions call each
    other directly in the compiled build (mypyc), so only what they look up
    at run time, such as the table, can be observed from outside.
    """
    made: list[Move] = []
    real = state_module.TRANSITION_TABLE

    class RecordingRow(Mapping[Trigger, State]):
        def __init__(self, before: State) -> None:
            self.before = before

        def __getitem__(self, trigger: Trigger) -> State:
            after = real[self.before][trigger]
            made.append((self.before, trigger, after))
            return after

        def __iter__(self) -> Iterator[Trigger]:
            return iter(real[self.before])

        def __len__(self) -> int:
            return len(real[self.before])

    class RecordingTable(Mapping[State, Mapping[Trigger, State]]):
        def __getitem__(self, before: State) -> Mapping[Trigger, State]:
            return RecordingRow(before)

        def __iter__(self) -> Iterator[State]:
            return iter(real)

        def __len__(self) -> int:
            return len(real)

    monkeypatch.setattr(state_module, "TRANSITION_TABLE", RecordingTable())
    return made


def assert_moved_by_the_table(made: list[Move], conn: ServerConnection) -> None:
    """The connection went from CONNECTING to its state by these moves alone."""
    state = State.CONNECTING
    for before, trigger, after in made:
        assert before is state, f"{state.name} became {before.name} outside the table"
        assert TRANSITION_TABLE[before][trigger] is after
        state = after
    assert conn.state is state, f"{state.name} became {conn.state.name} outside the table"


@pytest.mark.parametrize(
    ("state", "action"),
    list(itertools.product(State, ACTIONS)),
    ids=lambda x: getattr(x, "name", x),
)
def test_every_state_change_goes_through_the_table(
    state: State, action: str, moves: list[Move]
) -> None:
    conn = in_state(state)
    with contextlib.suppress(LocalProtocolError):
        ACTIONS[action](conn)
    assert_moved_by_the_table(moves, conn)


def rejected_by_the_core() -> ServerConnection:
    conn = ServerConnection()
    feed(conn, handshake().replace(b"Version: 13", b"Version: 8"))
    return conn


def plain_http_with_connection_close() -> ServerConnection:
    conn = ServerConnection()
    feed(conn, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    conn.send_response(204)
    conn.events()
    return conn


def eof_before_any_request() -> ServerConnection:
    conn = ServerConnection()
    conn.receive_eof()
    conn.events()
    return conn


def too_much_before_the_101() -> ServerConnection:
    conn = ServerConnection(ProtocolSettings(max_head_size=1024, max_body_size=0))
    feed(conn, handshake())
    conn.receive_data(client_frame(Opcode.BINARY, bytes(1200)))
    conn.accept()
    conn.events()
    return conn


def held_close_after_our_close() -> ServerConnection:
    conn = opened()
    conn.receive_data(client_frame(Opcode.PING, b"p") + close(1001))
    conn.next_event(hold_replies=True)
    conn.next_event(hold_replies=True)
    conn.send_close(1000)
    conn.events()
    return conn


def held_error() -> ServerConnection:
    conn = opened()
    conn.receive_data(text("question") + client_frame(0x3))
    conn.next_event(hold_replies=True)
    conn.next_event(hold_replies=True)
    conn.events()
    return conn


def ping_then_eof_while_closing() -> ServerConnection:
    conn = opened()
    conn.send_close()
    feed(conn, client_frame(Opcode.PING, b"p"))
    eof(conn)
    return conn


@pytest.mark.parametrize(
    "scenario",
    [
        rejected_by_the_core,
        plain_http_with_connection_close,
        eof_before_any_request,
        too_much_before_the_101,
        held_close_after_our_close,
        held_error,
        ping_then_eof_while_closing,
    ],
    ids=lambda f: f.__name__,
)
def test_state_changes_of_the_other_paths_go_through_the_table(
    scenario: Callable[[], ServerConnection], moves: list[Move]
) -> None:
    conn = scenario()
    assert conn.state is State.CLOSED
    assert_moved_by_the_table(moves, conn)


def test_closed_after_reject_refuses_everything() -> None:
    conn = ServerConnection()
    feed(conn, handshake())
    conn.reject(400)
    written(conn)
    for name, action in ACTIONS.items():
        if name in ("fail", "peer_text", "peer_close", "peer_error", "eof"):
            continue
        with pytest.raises(LocalProtocolError):
            action(conn)
    assert conn.state is State.CLOSED
    assert written(conn) == b""


# --------------------------------------------------------------------------
# Differential: wsproto's client against our server, in memory


@dataclass
class WsprotoPair:
    """A wsproto client and our server, with the bytes between them pumped by hand."""

    extensions: list[WsprotoDeflate] = field(default_factory=list)
    client: WSConnection = field(default_factory=lambda: WSConnection(ConnectionType.CLIENT))
    server: ServerConnection = field(init=False)
    client_events: list[object] = field(default_factory=list)
    server_events: list[Event] = field(default_factory=list)
    _text: list[str] = field(default_factory=list)
    _bytes: list[bytes] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.server = ServerConnection()
        self.to_server(
            self.client.send(
                WsprotoRequest(host="example.com", target="/chat", extensions=self.extensions)
            )
        )
        [request] = self.take_server_events()
        assert isinstance(request, WebSocketRequest)
        self.server.accept()
        self.pump()
        [accepted] = self.take_client_events()
        assert isinstance(accepted, AcceptConnection)

    def to_server(self, data: bytes) -> None:
        self.server.receive_data(data)
        self.server_events += self.server.events()

    def pump(self) -> None:
        while output := b"".join(self.server.data_to_send()):
            self.client.receive_data(output)
            for event in self.client.events():
                # wsproto hands out messages frame by frame: join them.
                if isinstance(event, WsprotoTextMessage):
                    self._text.append(event.data)
                    if event.message_finished:
                        joined, self._text = "".join(self._text), []
                        self.client_events.append(WsprotoTextMessage(data=joined))
                    continue
                if isinstance(event, BytesMessage):
                    self._bytes.append(bytes(event.data))
                    if event.message_finished:
                        data, self._bytes = b"".join(self._bytes), []
                        self.client_events.append(BytesMessage(data=data))
                    continue
                self.client_events.append(event)
                # Answer pings, and the server's Close if it sent the first.
                if isinstance(event, WsprotoPing) or (
                    isinstance(event, CloseConnection) and self.client.state.name != "CLOSED"
                ):
                    self.to_server(self.client.send(event.response()))

    def take_server_events(self) -> list[Event]:
        events, self.server_events = self.server_events, []
        return events

    def take_client_events(self) -> list[object]:
        events, self.client_events = self.client_events, []
        return events


SIZES = [0, 1, 125, 126, 65535, 65536, 1_000_000]

#: name -> (the client's offer, the server's answer)
WSPROTO_EXTENSIONS: dict[str, tuple[Callable[[], list[WsprotoDeflate]], str | None]] = {
    "none": (lambda: [], None),
    "default": (
        lambda: [WsprotoDeflate()],
        "permessage-deflate; server_max_window_bits=12; client_max_window_bits=12",
    ),
    "no-context": (
        lambda: [WsprotoDeflate(client_no_context_takeover=True, server_no_context_takeover=True)],
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover;"
        " server_max_window_bits=12; client_max_window_bits=12",
    ),
    "small-windows": (
        lambda: [WsprotoDeflate(client_max_window_bits=9, server_max_window_bits=10)],
        "permessage-deflate; server_max_window_bits=10; client_max_window_bits=9",
    ),
}


def sample(size: int, seed: int) -> str:
    """Text of exactly ``size`` bytes of UTF-8, compressible but not trivially so."""
    words = ["alpha", "beta", "gamma", "\u00e9t\u00e9", "\u6f22\u5b57", str(seed)]
    out = []
    total = 0
    for i in itertools.count():
        if total >= size:
            break
        word = words[(i * 7 + i // 5 + seed) % len(words)]
        out.append(word)
        total += len(word.encode()) + 1
    encoded = " ".join(out).encode()[:size]
    cut = encoded.decode("utf-8", "ignore")
    return cut + "z" * (size - len(cut.encode()))


class TestAgainstWsproto:
    @pytest.mark.parametrize(
        ("extensions", "agreed"), WSPROTO_EXTENSIONS.values(), ids=WSPROTO_EXTENSIONS
    )
    def test_messages_both_ways(
        self, extensions: Callable[[], list[WsprotoDeflate]], agreed: str | None
    ) -> None:
        pair = WsprotoPair(extensions=extensions())
        assert pair.server.extensions == agreed
        for size in SIZES:
            message = sample(size, size)
            assert len(message.encode()) == size
            data = bytes(range(256)) * (size // 256) + bytes(size % 256)
            pair.to_server(pair.client.send(WsprotoTextMessage(data=message)))
            pair.to_server(pair.client.send(BytesMessage(data=data)))
            assert pair.take_server_events() == [
                TextMessage(data=message),
                BinaryMessage(data=data),
            ]
            pair.server.send_text(message)
            pair.server.send_bytes(data)
            pair.pump()
            got = pair.take_client_events()
            assert got == [WsprotoTextMessage(data=message), BytesMessage(data=data)]

    @pytest.mark.parametrize("compressed", [False, True])
    def test_streamed_message_to_wsproto(self, compressed: bool) -> None:
        pair = WsprotoPair(extensions=[WsprotoDeflate()] if compressed else [])
        pair.server.send_fragment("one ", fin=False)
        if not compressed:
            # wsproto 1.3.2 loses track of a compressed message when a
            # control frame comes between its fragments (its
            # frame_inbound_complete resets _inbound_compressed for the
            # ping), so it is only tested uncompressed; websockets'
            # client checks the compressed case below.
            pair.server.send_ping(b"mid")
        pair.server.send_fragment("", fin=False)
        pair.server.send_fragment("two", fin=True)
        pair.pump()
        events = pair.take_client_events()
        if not compressed:
            assert events.pop(0) == WsprotoPing(payload=b"mid")
            assert pair.take_server_events() == [Pong(payload=b"mid", acknowledged=(b"mid",))]
        assert events == [WsprotoTextMessage(data="one two")]

    def test_pings_both_ways(self) -> None:
        pair = WsprotoPair()
        pair.to_server(pair.client.send(WsprotoPing(payload=b"from client")))
        assert pair.take_server_events() == [Ping(payload=b"from client")]
        pair.pump()
        assert pair.take_client_events() == [WsprotoPong(payload=b"from client")]
        pair.server.send_ping(b"from server")
        pair.pump()
        assert pair.take_client_events() == [WsprotoPing(payload=b"from server")]
        assert pair.take_server_events() == [
            Pong(payload=b"from server", acknowledged=(b"from server",))
        ]

    def test_client_closes(self) -> None:
        pair = WsprotoPair()
        pair.to_server(pair.client.send(CloseConnection(code=1001, reason="leaving")))
        assert pair.take_server_events() == [CloseReceived(code=1001, reason="leaving")]
        assert pair.server.must_close_transport
        pair.pump()
        assert pair.take_client_events() == [CloseConnection(code=1001, reason="")]
        assert pair.client.state.name == "CLOSED"

    def test_server_closes(self) -> None:
        pair = WsprotoPair()
        pair.server.send_close(1000, "bye")
        pair.pump()
        assert pair.take_client_events() == [CloseConnection(code=1000, reason="bye")]
        assert pair.client.state.name == "CLOSED"
        assert pair.take_server_events() == [CloseReceived(code=1000, reason="bye")]
        assert pair.server.state is State.CLOSED

    def test_server_fails(self) -> None:
        pair = WsprotoPair()
        pair.to_server(b"\x83\x80" + MASK)  # reserved opcode
        [failed] = pair.take_server_events()
        assert failed == ConnectionFailed(code=1002, reason="reserved opcode 0x3")
        pair.pump()
        assert pair.take_client_events() == [
            CloseConnection(code=1002, reason="reserved opcode 0x3")
        ]


# --------------------------------------------------------------------------
# Differential: websockets' sans-I/O client


class WebsocketsPair:
    def __init__(self, extensions: Factories) -> None:
        self.client = ClientProtocol(
            parse_uri("ws://example.com/chat"),
            extensions=extensions,
            subprotocols=[Subprotocol("chat")],
            max_size=None,
        )
        self.server = ServerConnection()
        self.server_events: list[Event] = []
        self.transport_closed = False
        self.client.send_request(self.client.connect())
        self.flush_client()
        [request] = self.take_server_events()
        assert isinstance(request, WebSocketRequest)
        assert request.subprotocols == ("chat",)
        self.server.accept("chat")
        [response] = self.flush_server()
        assert isinstance(response, WebsocketsResponse)
        assert response.status_code == 101
        assert self.client.state is WebsocketsState.OPEN
        assert self.client.handshake_exc is None

    def flush_client(self) -> None:
        for chunk in self.client.data_to_send():
            if chunk:
                self.server.receive_data(chunk)
            else:
                self.server.receive_eof()  # websockets' way of saying "half-close"
        self.server_events += self.server.events()

    def flush_server(self) -> list[object]:
        for chunk in self.server.data_to_send():
            self.client.receive_data(chunk)
        events: list[object] = list(self.client.events_received())
        self.flush_client()  # automatic pongs and close echoes
        if self.server.must_close_transport and not self.transport_closed:
            # The server closes the TCP connection first (RFC 6455 7.1.1).
            assert self.server.data_to_send() == []
            self.transport_closed = True
            self.client.receive_eof()
            events += self.client.events_received()
        return events

    def take_server_events(self) -> list[Event]:
        events, self.server_events = self.server_events, []
        return events


def frames_to_messages(frames: Iterable[object]) -> list[tuple[WebsocketsOpcode, bytes]]:
    messages = []
    parts: list[bytes] = []
    opcode = None
    for frame in frames:
        assert isinstance(frame, WebsocketsFrame)
        if frame.opcode in (WebsocketsOpcode.TEXT, WebsocketsOpcode.BINARY):
            opcode = frame.opcode
        if frame.opcode.value >= 0x8:
            messages.append((frame.opcode, bytes(frame.data)))
            continue
        parts.append(bytes(frame.data))
        if frame.fin:
            assert opcode is not None
            messages.append((opcode, b"".join(parts)))
            parts = []
    return messages


Factories = list[ClientPerMessageDeflateFactory] | None

#: name -> (the client's offer, the server's answer)
WEBSOCKETS_EXTENSIONS: dict[str, tuple[Callable[[], Factories], str | None]] = {
    # None, not []: with an empty list websockets sends an empty
    # Sec-WebSocket-Extensions header, which the grammar (1#extension)
    # does not allow, and the server answers 400.
    "none": (lambda: None, None),
    "default": (
        lambda: [ClientPerMessageDeflateFactory()],
        "permessage-deflate; client_max_window_bits=12",
    ),
    "no-context": (
        lambda: [
            ClientPerMessageDeflateFactory(
                server_no_context_takeover=True, client_no_context_takeover=True
            )
        ],
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover;"
        " client_max_window_bits=12",
    ),
    "windows": (
        lambda: [
            ClientPerMessageDeflateFactory(server_max_window_bits=10, client_max_window_bits=9)
        ],
        "permessage-deflate; server_max_window_bits=10; client_max_window_bits=9",
    ),
}


class TestAgainstWebsockets:
    @pytest.mark.parametrize(
        ("extensions", "agreed"), WEBSOCKETS_EXTENSIONS.values(), ids=WEBSOCKETS_EXTENSIONS
    )
    def test_messages_both_ways(
        self, extensions: Callable[[], Factories], agreed: str | None
    ) -> None:
        pair = WebsocketsPair(extensions())
        assert pair.server.extensions == agreed
        for size in SIZES:
            message = sample(size, size + 1)
            data = bytes(range(255, -1, -1)) * (size // 256) + bytes(size % 256)
            pair.client.send_text(message.encode())
            pair.client.send_binary(data)
            pair.flush_client()
            assert pair.take_server_events() == [
                TextMessage(data=message),
                BinaryMessage(data=data),
            ]
            pair.server.send_text(message)
            pair.server.send_bytes(data)
            assert frames_to_messages(pair.flush_server()) == [
                (WebsocketsOpcode.TEXT, message.encode()),
                (WebsocketsOpcode.BINARY, data),
            ]

    def test_fragments_and_pings_both_ways(self) -> None:
        pair = WebsocketsPair([ClientPerMessageDeflateFactory()])
        pair.client.send_text(b"frag", fin=False)
        pair.client.send_ping(b"c")
        pair.client.send_continuation(b"mented", fin=True)
        pair.flush_client()
        assert pair.take_server_events() == [Ping(payload=b"c"), TextMessage(data="fragmented")]
        assert frames_to_messages(pair.flush_server()) == [(WebsocketsOpcode.PONG, b"c")]
        pair.server.send_fragment(b"by", fin=False)
        pair.server.send_ping(b"s")
        pair.server.send_fragment(b"tes" * 100, fin=True)
        assert frames_to_messages(pair.flush_server()) == [
            (WebsocketsOpcode.PING, b"s"),
            (WebsocketsOpcode.BINARY, b"by" + b"tes" * 100),
        ]
        assert pair.take_server_events() == [Pong(payload=b"s", acknowledged=(b"s",))]

    def test_client_closes(self) -> None:
        pair = WebsocketsPair(None)
        pair.client.send_close(1000, "done")
        pair.flush_client()
        assert pair.take_server_events() == [CloseReceived(code=1000, reason="done")]
        assert frames_to_messages(pair.flush_server()) == [(WebsocketsOpcode.CLOSE, b"\x03\xe8")]
        assert pair.client.state is WebsocketsState.CLOSED
        assert pair.client.close_code == 1000

    def test_server_closes(self) -> None:
        pair = WebsocketsPair(None)
        pair.server.send_close(1001, "restart")
        assert frames_to_messages(pair.flush_server()) == [
            (WebsocketsOpcode.CLOSE, b"\x03\xe9restart")
        ]
        assert pair.take_server_events() == [CloseReceived(code=1001, reason="restart")]
        assert pair.server.state is State.CLOSED
        assert pair.client.state is WebsocketsState.CLOSED
        assert (pair.client.close_code, pair.client.close_reason) == (1001, "restart")


# --------------------------------------------------------------------------
# Splitting: any split of the client's bytes gives the same events


@st.composite
def client_streams(draw: st.DrawFn) -> bytes:
    """A handshake (maybe offering deflate), then frames, maybe broken or cut short."""
    compressed = draw(st.booleans())
    fields = [("Sec-WebSocket-Extensions", "permessage-deflate")] if compressed else []
    data = head = handshake(*fields)
    deflater = Deflater()
    masks = st.binary(min_size=4, max_size=4)
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(["text", "binary", "ping", "pong"]))
        if kind in ("ping", "pong"):
            opcode = Opcode.PING if kind == "ping" else Opcode.PONG
            data += client_frame(opcode, draw(st.binary(max_size=20)), mask=draw(masks))
            continue
        if kind == "text":
            opcode, payload = Opcode.TEXT, draw(st.text(max_size=40)).encode()
        else:
            opcode, payload = Opcode.BINARY, draw(st.binary(max_size=40))
        rsv1 = compressed and draw(st.booleans())
        if rsv1:
            payload = deflater.compress(payload)
        cuts = sorted(draw(st.lists(st.integers(0, len(payload)), max_size=3)))
        pieces = [payload[a:b] for a, b in itertools.pairwise([0, *cuts, len(payload)])]
        for i, piece in enumerate(pieces):
            data += client_frame(
                opcode if i == 0 else Opcode.CONTINUATION,
                piece,
                fin=i == len(pieces) - 1,
                rsv1=rsv1 and i == 0,
                mask=draw(masks),
            )
            if i < len(pieces) - 1 and draw(st.booleans()):
                data += client_frame(Opcode.PING, b"i", mask=draw(masks))
    ending = draw(st.sampled_from(["none", "close", "empty close", "error", "bad utf-8", "cut"]))
    if ending == "close":
        data += close(1000, "bye")
    elif ending == "empty close":
        data += close()
    elif ending == "error":
        data += client_frame(0x3)
    elif ending == "bad utf-8":
        data += client_frame(Opcode.TEXT, b"ok \xff")
    elif ending == "cut":  # in the frames, never in the handshake
        data = data[: max(len(head), len(data) - draw(st.integers(1, 8)))]
    return data + draw(st.sampled_from([b"", text("after the end")]))


def drive(chunks: Iterable[bytes], hold: bool) -> tuple[list[Event], bytes, State]:
    """Feed ``chunks``, accepting the handshake and echoing every message."""
    conn = ServerConnection()
    events: list[Event] = []
    out = bytearray()

    def pump() -> None:
        while True:
            event = conn.next_event(hold_replies=hold)
            if event is None:
                if not conn.reply_held:
                    break
                event = conn.next_event()
                assert event is not None
            events.append(event)
            if isinstance(event, WebSocketRequest):
                conn.accept()
            elif isinstance(event, TextMessage) and conn.state is State.OPEN:
                conn.send_text(event.data)
            elif isinstance(event, BinaryMessage) and conn.state is State.OPEN:
                conn.send_bytes(event.data)
        out.extend(b"".join(conn.data_to_send()))

    for chunk in chunks:
        conn.receive_data(chunk)
        pump()
    conn.receive_eof()
    pump()
    return events, bytes(out), conn.state


def split(data: bytes, points: Iterable[int]) -> list[bytes]:
    cuts = sorted({p % (len(data) + 1) for p in points} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(cuts)]


@settings(max_examples=200, deadline=None)
@given(client_streams(), st.lists(st.integers(min_value=0), max_size=20), st.booleans())
# A compressed text frame whose payload inflates to invalid UTF-8 and whose
# tail then fails to inflate: whole or split, the UTF-8 error is found first.
@example(
    data=handshake(("Sec-WebSocket-Extensions", "permessage-deflate"))
    + b"\xc1\x9a@\x00\x00\x00@\x14\x00\xeb\xbf000\x82\x80\xc2\x81\x82\x90\xc3\x90\x83"
    + b"\x91\xe0\xa1\xd0\xf0\x9a\xbc\x81\x8d",
    points=[len(handshake(("Sec-WebSocket-Extensions", "permessage-deflate"))) + 10],
    hold=False,
)
def test_any_split_gives_the_same_events(data: bytes, points: list[int], hold: bool) -> None:
    whole = drive([data], hold)
    assert isinstance(whole[0][0], WebSocketRequest)
    assert whole[2] is State.CLOSED  # every stream ends, by EOF at the latest
    assert drive(split(data, points), hold) == whole


@settings(max_examples=30, deadline=None)
@given(client_streams())
def test_byte_by_byte_gives_the_same_events(data: bytes) -> None:
    assert drive([data[i : i + 1] for i in range(len(data))], False) == drive([data], False)


def test_held_replies_keep_the_echo_before_the_close() -> None:
    # What hold_replies is for: the echo of the last message goes out before
    # the answer to the Close (Autobahn 3.2, 5.15, 7.1.1).
    data = handshake() + text("last") + close(1000)
    events, out, _ = drive([data], hold=True)
    assert events[1:] == [TextMessage(data="last"), CloseReceived(code=1000, reason="")]
    frames = server_frames(out.partition(b"\r\n\r\n")[2])
    assert frames == [Frame(Opcode.TEXT, b"last"), close_frame(1000)]
    # A caller that drains every event before answering, without holding,
    # has the Close answered first and cannot reply any more.
    conn = opened()
    assert feed(conn, text("last"), close(1000)) == events[1:]
    with pytest.raises(LocalProtocolError):
        conn.send_text("last")
    assert sent(conn) == [close_frame(1000)]


def test_sends_return_the_payload_size_as_encoded_before_compression() -> None:
    plain = opened()
    assert plain.send_text("é" * 10) == 20  # UTF-8 bytes, not characters
    assert plain.send_bytes(b"x" * 7) == 7
    assert plain.send_fragment("ab", fin=False) == 2
    assert plain.send_fragment("é", fin=True) == 2
    compressed = opened(("Sec-WebSocket-Extensions", "permessage-deflate"))
    assert compressed.send_text("a" * 4096) == 4096
    frames = written(compressed)
    assert frames[0] == 0xC1 and len(frames) < 100  # compressed, counted as 4096
