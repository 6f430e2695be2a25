"""Tests for ``ClientConnection``: the client role of the engine, with raw bytes.

The server's side is written by hand (responses as bytes, frames with
``wsserver.testing.wire``, which writes unmasked frames with ``mask=None``)
or by real servers: wsproto's and websockets' sans-I/O server roles, and our
own ``ServerConnection``, connected in memory.  What the client writes is
read back with ``wire.read_frame_header``, which checks the masking.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory
from websockets.frames import Frame as WebsocketsFrame
from websockets.frames import Opcode as WebsocketsOpcode
from websockets.server import ServerProtocol
from websockets.typing import Subprotocol
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, Request
from wsproto.events import TextMessage as WsprotoText
from wsproto.extensions import PerMessageDeflate as WsprotoDeflate

from wsserver.protocol import (
    BinaryMessage,
    ClientConnection,
    ClientDeflateSettings,
    CloseReceived,
    ConnectionFailed,
    HandshakeAccepted,
    HandshakeFailed,
    HandshakeFailure,
    LocalProtocolError,
    Ping,
    ServerConnection,
    State,
    TextMessage,
    WebSocketRequest,
)
from wsserver.protocol.codes import Opcode
from wsserver.protocol.exceptions import FrameError
from wsserver.protocol.reader import ControlFrame, MessageReader
from wsserver.protocol.settings import ProtocolSettings
from wsserver.testing import wire

#: RFC 6455 section 1.3's worked example: this nonce gives this key and accept.
NONCE = b"the sample nonce"
KEY = "dGhlIHNhbXBsZSBub25jZQ=="
ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
#: Section 5.7's masking key.
MASK = b"\x37\xfa\x21\x3d"


def fixed_random() -> Iterator[bytes]:
    yield NONCE
    while True:
        yield MASK


def client(**kwargs: object) -> ClientConnection:
    source = fixed_random()
    return ClientConnection(
        "example.com",
        "/chat",
        random_bytes=lambda n: next(source)[:n],
        **kwargs,  # type: ignore[arg-type]
    )


def response(*fields: tuple[str, str], status: str = "101 Switching Protocols") -> bytes:
    lines = [f"HTTP/1.1 {status}", *(f"{name}: {value}" for name, value in fields)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


GOOD = (("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Accept", ACCEPT))


def opened(**kwargs: object) -> ClientConnection:
    conn = client(deflate=None, **kwargs)
    conn.data_to_send()
    conn.receive_data(response(*GOOD))
    [event] = conn.events()
    assert isinstance(event, HandshakeAccepted)
    return conn


def written(conn: ClientConnection) -> bytes:
    return b"".join(conn.data_to_send())


# -- the request ----------------------------------------------------------


def test_the_request_bytes() -> None:
    conn = client(subprotocols=["chat", "v2"], headers=(("Origin", "https://example.com"),))
    assert written(conn) == (
        b"GET /chat HTTP/1.1\r\n"
        b"Host: example.com\r\n"
        b"Upgrade: websocket\r\n"
        b"Connection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"Sec-WebSocket-Version: 13\r\n"
        b"Sec-WebSocket-Protocol: chat, v2\r\n"
        b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
        b"Origin: https://example.com\r\n"
        b"\r\n"
    )
    assert conn.key == KEY
    assert conn.state is State.CONNECTING


def test_a_fresh_key_per_connection() -> None:
    keys = {ClientConnection("h").key for _ in range(20)}
    assert len(keys) == 20


@pytest.mark.parametrize(
    "kwargs",
    [
        {"subprotocols": ["a b"]},
        {"headers": (("Sec-WebSocket-Key", "x"),)},
        {"headers": (("Host", "other"),)},
        {"headers": (("X-Bad", "a\r\nb"),)},
    ],
)
def test_requests_refused_to_the_caller(kwargs: dict[str, object]) -> None:
    with pytest.raises(LocalProtocolError):
        ClientConnection("h", **kwargs)  # type: ignore[arg-type]


def test_nothing_can_be_sent_before_the_handshake() -> None:
    conn = client()
    with pytest.raises(LocalProtocolError, match="CONNECTING"):
        conn.send_text("early")


# -- the response ---------------------------------------------------------


def test_accepted_with_the_frames_behind_the_101() -> None:
    conn = client(subprotocols=["chat"])
    conn.data_to_send()
    server_frame = wire.client_frame(Opcode.TEXT, b"Hello", mask=None)
    conn.receive_data(
        response(*GOOD, ("Sec-WebSocket-Protocol", "chat"), ("X-Extra", "1")) + server_frame
    )
    accepted, message = conn.events()
    assert isinstance(accepted, HandshakeAccepted)
    assert accepted.subprotocol == conn.subprotocol == "chat"
    assert accepted.extensions is None
    assert ("x-extra", "1") in accepted.headers
    assert message == TextMessage(data="Hello")
    assert conn.state is State.OPEN


def test_a_response_in_one_byte_pieces() -> None:
    conn = client()
    conn.data_to_send()
    events = []
    for byte in response(*GOOD):
        conn.receive_data(bytes([byte]))
        events.extend(conn.events())
    assert [type(event) for event in events] == [HandshakeAccepted]


def test_an_empty_read_is_not_the_end_of_the_response() -> None:
    # Found by fuzz/fuzz_client.py: to h11, b"" means end of file.
    conn = client()
    conn.data_to_send()
    conn.receive_data(b"HTTP/1.1 101 ")
    conn.receive_data(b"")
    conn.receive_data(response(*GOOD)[13:])
    assert [type(event) for event in conn.events()] == [HandshakeAccepted]


def test_an_informational_response_before_the_101_is_skipped() -> None:
    conn = client()
    conn.data_to_send()
    conn.receive_data(b"HTTP/1.1 100 Continue\r\n\r\n" + response(*GOOD))
    assert [type(event) for event in conn.events()] == [HandshakeAccepted]


def failed(data: bytes, *, eof: bool = False, **kwargs: object) -> HandshakeFailed:
    conn = client(**kwargs)
    conn.data_to_send()
    conn.receive_data(data)
    if eof:
        conn.receive_eof()
    [event] = conn.events()
    assert isinstance(event, HandshakeFailed)
    assert conn.state is State.CLOSED
    assert conn.must_close_transport
    assert conn.next_event() is None
    return event


def test_a_refusal_with_its_status_headers_and_body() -> None:
    event = failed(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 7\r\nX-Why: origin\r\n\r\nnot you")
    assert event.failure is HandshakeFailure.INVALID_STATUS
    assert event.status == 403
    assert ("x-why", "origin") in event.headers
    assert event.body == b"not you"


def test_a_redirect_is_a_status_with_its_location() -> None:
    event = failed(b"HTTP/1.1 302 Found\r\nLocation: /elsewhere\r\nContent-Length: 0\r\n\r\n")
    assert event.failure is HandshakeFailure.INVALID_STATUS
    assert ("location", "/elsewhere") in event.headers


def test_a_refusal_body_is_cut_at_max_body_size() -> None:
    body = b"x" * 100
    event = failed(
        b"HTTP/1.1 500 Oops\r\nContent-Length: 100\r\n\r\n" + body,
        settings=ProtocolSettings(max_body_size=10),
    )
    assert event.status == 500
    assert event.body == b"x" * 10


def test_a_refusal_body_that_ends_with_the_connection() -> None:
    event = failed(b"HTTP/1.1 404 Not Found\r\n\r\ngone", eof=True)
    assert (event.status, event.body) == (404, b"gone")


@pytest.mark.parametrize(
    ("fields", "failure"),
    [
        # RFC 6455 section 4.1, steps 2 to 6, in order.
        (GOOD[1:], HandshakeFailure.INVALID_UPGRADE),
        ((("Upgrade", "h2c"), *GOOD[1:]), HandshakeFailure.INVALID_UPGRADE),
        ((GOOD[0], GOOD[2]), HandshakeFailure.INVALID_UPGRADE),
        ((GOOD[0], ("Connection", "keep-alive"), GOOD[2]), HandshakeFailure.INVALID_UPGRADE),
        (GOOD[:2], HandshakeFailure.INVALID_ACCEPT),
        (
            (*GOOD[:2], ("Sec-WebSocket-Accept", wire.accept_for("AAAAAAAAAAAAAAAAAAAAAA=="))),
            HandshakeFailure.INVALID_ACCEPT,
        ),
        ((*GOOD, GOOD[2]), HandshakeFailure.INVALID_ACCEPT),
        ((*GOOD, ("Sec-WebSocket-Extensions", "x-unknown")), HandshakeFailure.INVALID_EXTENSION),
        (
            (*GOOD, ("Sec-WebSocket-Extensions", "permessage-deflate; x=1")),
            HandshakeFailure.INVALID_EXTENSION,
        ),
        (
            (*GOOD, ("Sec-WebSocket-Extensions", "permessage-deflate, permessage-deflate")),
            HandshakeFailure.INVALID_EXTENSION,
        ),
        (
            (*GOOD, ("Sec-WebSocket-Extensions", "permessage-deflate; server_max_window_bits=16")),
            HandshakeFailure.INVALID_EXTENSION,
        ),
        (
            (
                *GOOD,
                ("Sec-WebSocket-Extensions", "permessage-deflate; client_no_context_takeover=1"),
            ),
            HandshakeFailure.INVALID_EXTENSION,
        ),
        (
            (*GOOD, ("Sec-WebSocket-Extensions", 'permessage-deflate; "')),
            HandshakeFailure.INVALID_EXTENSION,
        ),
        ((*GOOD, ("Sec-WebSocket-Protocol", "chat")), HandshakeFailure.INVALID_SUBPROTOCOL),
    ],
)
def test_each_rule_of_section_4_1(
    fields: tuple[tuple[str, str], ...], failure: HandshakeFailure
) -> None:
    event = failed(response(*fields))
    assert event.failure is failure
    assert event.status == 101


def test_an_extension_when_none_was_offered() -> None:
    event = failed(
        response(*GOOD, ("Sec-WebSocket-Extensions", "permessage-deflate")), deflate=None
    )
    assert event.failure is HandshakeFailure.INVALID_EXTENSION


def test_two_subprotocols_in_the_answer() -> None:
    event = failed(
        response(*GOOD, ("Sec-WebSocket-Protocol", "a"), ("Sec-WebSocket-Protocol", "b")),
        subprotocols=["a", "b"],
    )
    assert event.failure is HandshakeFailure.INVALID_SUBPROTOCOL


@pytest.mark.parametrize(
    "data",
    [b"SSH-2.0-OpenSSH\r\n\r\n", b"HTTP/1.1 abc\r\n\r\n", b"HTTP/1.1 200 OK\r\nbad\r\n\r\n"],
)
def test_not_an_http_response(data: bytes) -> None:
    assert failed(data).failure is HandshakeFailure.INVALID_MESSAGE


def test_the_connection_closed_before_the_response() -> None:
    assert failed(b"HTTP/1.1 101 Swi", eof=True).failure is HandshakeFailure.INVALID_MESSAGE


def test_a_response_head_over_the_limit() -> None:
    event = failed(
        response(*GOOD, ("X-Big", "x" * 2000)), settings=ProtocolSettings(max_head_size=1000)
    )
    assert event.failure is HandshakeFailure.INVALID_MESSAGE


# -- frames -----------------------------------------------------------------


def test_section_5_7_masked_hello() -> None:
    conn = opened()
    conn.send_text("Hello")
    # RFC 6455 section 5.7: "A single-frame masked text message".
    assert written(conn) == bytes.fromhex("818537fa213d7f9f4d5158")


def test_every_frame_masked_with_a_fresh_key() -> None:
    keys: list[bytes] = []

    def source(n: int) -> bytes:
        key = len(keys).to_bytes(n, "big")
        keys.append(key)
        return key

    conn = ClientConnection("h", deflate=None, random_bytes=source)
    key = conn.key
    conn.data_to_send()
    conn.receive_data(response(GOOD[0], GOOD[1], ("Sec-WebSocket-Accept", wire.accept_for(key))))
    conn.events()
    conn.send_text("a")
    conn.send_bytes(b"b" * 2000)
    conn.send_ping(b"p")
    conn.send_fragment("x", fin=False)
    conn.send_fragment("y", fin=True)
    conn.send_close(1000, "bye")
    data = written(conn)
    position = 0
    seen = []
    while position < len(data):
        header = wire.read_frame_header(data, position)
        assert header is not None
        assert header.mask is not None, "section 5.1: a client masks every frame"
        seen.append(header.mask)
        position += header.size + header.length
    assert len(seen) == 6
    assert seen == keys[1:]  # the first draw was the nonce
    assert len(set(seen)) == 6


def test_unmasked_frames_from_the_server_are_read() -> None:
    conn = opened()
    conn.receive_data(
        wire.client_frame(Opcode.BINARY, b"\x00\x01", mask=None)
        + wire.client_frame(Opcode.PING, b"hi", mask=None)
    )
    assert conn.events() == [BinaryMessage(data=b"\x00\x01"), Ping(payload=b"hi")]
    # The pong is masked, with the same payload.
    assert written(conn) == b"\x8a\x82" + MASK + wire.apply_mask(b"hi", MASK)


def test_a_masked_frame_from_the_server_fails_with_1002() -> None:
    conn = opened()
    conn.receive_data(wire.client_frame(Opcode.TEXT, b"Hello", mask=MASK))
    [event] = conn.events()
    assert event == ConnectionFailed(code=1002, reason="server frame is masked")
    frame = written(conn)
    header = wire.read_frame_header(frame)
    assert header is not None and header.opcode == Opcode.CLOSE and header.mask == MASK
    body = wire.apply_mask(frame[header.size :], MASK)
    assert body[:2] == (1002).to_bytes(2, "big")
    # Section 7.1.1: the client waits for the server to close TCP first.
    assert conn.state is State.CLOSED
    assert not conn.must_close_transport
    conn.receive_eof()
    assert conn.must_close_transport


def test_the_closing_handshake_from_the_client() -> None:
    conn = opened()
    conn.send_close(1000, "done")
    assert conn.state is State.CLOSING
    conn.data_to_send()
    conn.receive_data(wire.close_frame(1000, "done", mask=None))
    assert conn.events() == [CloseReceived(code=1000, reason="done")]
    assert conn.state is State.CLOSED  # type: ignore[comparison-overlap]
    assert not conn.must_close_transport
    assert written(conn) == b""
    conn.receive_eof()
    assert conn.must_close_transport


def test_the_closing_handshake_from_the_server_is_echoed_masked() -> None:
    conn = opened()
    conn.receive_data(wire.close_frame(1001, "", mask=None))
    assert conn.events() == [CloseReceived(code=1001, reason="")]
    assert written(conn) == b"\x88\x82" + MASK + wire.apply_mask(b"\x03\xe9", MASK)


# -- permessage-deflate from the client side ------------------------------------


@pytest.mark.parametrize(
    ("settings", "offer"),
    [
        (ClientDeflateSettings(), "permessage-deflate; client_max_window_bits"),
        (
            ClientDeflateSettings(
                server_no_context_takeover=True,
                client_no_context_takeover=True,
                server_max_window_bits=10,
            ),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
            "server_max_window_bits=10; client_max_window_bits",
        ),
    ],
)
def test_the_offer(settings: ClientDeflateSettings, offer: str) -> None:
    conn = client(deflate=settings)
    assert f"Sec-WebSocket-Extensions: {offer}\r\n".encode() in written(conn)


@pytest.mark.parametrize(
    ("settings", "answer", "ok"),
    [
        (ClientDeflateSettings(), "permessage-deflate", True),
        (ClientDeflateSettings(), "permessage-deflate; client_max_window_bits=9", True),
        (ClientDeflateSettings(), "permessage-deflate; server_max_window_bits=10", True),
        (ClientDeflateSettings(server_no_context_takeover=True), "permessage-deflate", False),
        (
            ClientDeflateSettings(server_no_context_takeover=True),
            "permessage-deflate; server_no_context_takeover",
            True,
        ),
        (ClientDeflateSettings(server_max_window_bits=10), "permessage-deflate", False),
        (
            ClientDeflateSettings(server_max_window_bits=10),
            "permessage-deflate; server_max_window_bits=11",
            False,
        ),
        (
            ClientDeflateSettings(server_max_window_bits=10),
            "permessage-deflate; server_max_window_bits=9",
            True,
        ),
        (ClientDeflateSettings(), "permessage-deflate; client_max_window_bits", False),
        (ClientDeflateSettings(), "permessage-deflate; server_max_window_bits=010", False),
        (ClientDeflateSettings(), "permessage-deflate; server_max_window_bits", False),
        (ClientDeflateSettings(), "permessage-deflate; Server_No_Context_Takeover", True),
    ],
)
def test_the_answer_against_the_offer(
    settings: ClientDeflateSettings, answer: str, ok: bool
) -> None:
    conn = client(deflate=settings)
    conn.data_to_send()
    conn.receive_data(response(*GOOD, ("Sec-WebSocket-Extensions", answer)))
    [event] = conn.events()
    if ok:
        assert isinstance(event, HandshakeAccepted)
        assert event.extensions == answer
    else:
        assert isinstance(event, HandshakeFailed)
        assert event.failure is HandshakeFailure.INVALID_EXTENSION


@pytest.mark.parametrize("bits", [8, 9, 12, 15])
@pytest.mark.parametrize("takeover", [False, True])
def test_compressed_both_ways_with_our_server(bits: int, takeover: bool) -> None:
    ours = ClientConnection(
        "h",
        deflate=ClientDeflateSettings(
            server_max_window_bits=bits,
            client_max_window_bits=bits,
            server_no_context_takeover=takeover,
            client_no_context_takeover=takeover,
        ),
    )
    server = ServerConnection()
    pump(ours, server)
    [request] = server.events()
    assert isinstance(request, WebSocketRequest)
    server.accept()
    pump(server, ours)
    [accepted] = ours.events()
    assert isinstance(accepted, HandshakeAccepted), accepted
    messages = ["hello " * 50, "hello " * 60, "x" * 10, "caf\u00e9 " * 40]
    for message in messages:
        ours.send_text(message)
        server.send_text(message)
    pump(ours, server)
    pump(server, ours)
    expected = [TextMessage(data=message) for message in messages]
    assert server.events() == expected
    assert ours.events() == expected


def pump(source: ClientConnection | ServerConnection, target: object) -> None:
    for data in source.data_to_send():
        target.receive_data(data)  # type: ignore[attr-defined]


# -- against other servers, in memory (differential) ------------------------------


def test_against_websockets_server() -> None:
    ours = ClientConnection("example.com", "/chat", subprotocols=["chat"])
    theirs = ServerProtocol(
        subprotocols=[Subprotocol("chat")],
        extensions=[ServerPerMessageDeflateFactory()],
    )
    for data in ours.data_to_send():
        theirs.receive_data(data)
    [request] = theirs.events_received()
    theirs.send_response(theirs.accept(request))  # type: ignore[arg-type]
    for data in theirs.data_to_send():
        ours.receive_data(data)
    [accepted] = ours.events()
    assert isinstance(accepted, HandshakeAccepted)
    assert accepted.subprotocol == "chat"
    assert accepted.extensions is not None and "permessage-deflate" in accepted.extensions
    ours.send_text("hello " * 30)
    ours.send_bytes(b"\x00" * 3000)
    for data in ours.data_to_send():
        theirs.receive_data(data)
    frames = theirs.events_received()
    assert [(f.opcode, f.data) for f in frames] == [  # type: ignore[union-attr]
        (WebsocketsOpcode.TEXT, b"hello " * 30),
        (WebsocketsOpcode.BINARY, b"\x00" * 3000),
    ]
    theirs.send_text(("back " * 40).encode())
    theirs.send_frame(WebsocketsFrame(WebsocketsOpcode.PING, b"p"))
    for data in theirs.data_to_send():
        ours.receive_data(data)
    assert ours.events() == [TextMessage(data="back " * 40), Ping(payload=b"p")]


def test_against_wsproto_server() -> None:
    ours = ClientConnection("example.com", "/", subprotocols=["a", "b"])
    theirs = WSConnection(ConnectionType.SERVER)
    for data in ours.data_to_send():
        theirs.receive_data(data)
    [request] = list(theirs.events())
    assert isinstance(request, Request)
    ours_out = theirs.send(AcceptConnection(subprotocol="b", extensions=[WsprotoDeflate()]))
    ours.receive_data(ours_out)
    [accepted] = ours.events()
    assert isinstance(accepted, HandshakeAccepted)
    assert accepted.subprotocol == "b"
    ours.send_text("hi " * 100)
    for data in ours.data_to_send():
        theirs.receive_data(data)
    assert [event.data for event in theirs.events()] == ["hi " * 100]  # type: ignore[attr-defined]
    ours.receive_data(theirs.send(WsprotoText(data="yo " * 100)))
    assert ours.events() == [TextMessage(data="yo " * 100)]


# -- the client-side reader: properties ----------------------------------------------

messages = st.one_of(
    st.text(max_size=300).map(lambda text: (Opcode.TEXT, text.encode())),
    st.binary(max_size=300).map(lambda data: (Opcode.BINARY, data)),
    st.binary(max_size=125).map(lambda data: (Opcode.PING, data)),
)


def server_stream(items: list[tuple[Opcode, bytes]], sizes: list[int]) -> bytes:
    """Unmasked frames, as a server writes them; data messages fragmented by ``sizes``."""
    out = b""
    for index, (opcode, payload) in enumerate(items):
        size = sizes[index % len(sizes)] if sizes else 0
        if opcode == Opcode.PING or not size or size >= len(payload):
            out += wire.client_frame(opcode, payload, mask=None)
            continue
        pieces = [payload[i : i + size] for i in range(0, len(payload), size)]
        for number, piece in enumerate(pieces):
            out += wire.client_frame(
                opcode if number == 0 else Opcode.CONTINUATION,
                piece,
                fin=number == len(pieces) - 1,
                mask=None,
            )
    return out


def expected_results(items: list[tuple[Opcode, bytes]]) -> list[object]:
    results: list[object] = []
    for opcode, payload in items:
        if opcode == Opcode.TEXT:
            results.append(TextMessage(data=payload.decode()))
        elif opcode == Opcode.BINARY:
            results.append(BinaryMessage(data=payload))
        else:
            results.append(ControlFrame(opcode, payload))
    return results


def read_all(chunks: list[bytes]) -> list[object]:
    reader = MessageReader(ProtocolSettings(), masked=False)
    results: list[object] = []
    for chunk in chunks:
        reader.feed(chunk)
        while (item := reader.read()) is not None:
            results.append(item)
    return results


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(
    items=st.lists(messages, max_size=8),
    sizes=st.lists(st.integers(min_value=0, max_value=64), max_size=4),
    cuts=st.lists(st.integers(min_value=0, max_value=4000), max_size=10),
)
def test_property_client_reader_any_split_gives_the_same_results(
    items: list[tuple[Opcode, bytes]], sizes: list[int], cuts: list[int]
) -> None:
    stream = server_stream(items, sizes)
    pieces = [
        stream[a:b] for a, b in zip([0, *sorted(cuts)], [*sorted(cuts), len(stream)], strict=True)
    ]
    assert read_all([stream]) == expected_results(items)
    assert read_all(pieces) == expected_results(items)


@settings(max_examples=200)
@given(data=st.binary(min_size=2, max_size=40))
def test_property_client_reader_never_accepts_a_masked_frame(data: bytes) -> None:
    frame = bytes([data[0] & 0x8F | 0x80, data[1] | 0x80]) + data[2:]
    reader = MessageReader(ProtocolSettings(), masked=False)
    reader.feed(frame)
    try:
        item = reader.read()
    except FrameError:
        return
    assert item is None, "a masked frame must never be returned"


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
@given(texts=st.lists(st.text(min_size=1, max_size=400), min_size=1, max_size=6))
def test_property_compressed_server_messages_read_by_the_client(texts: list[str]) -> None:
    # The server side compresses with zlib as RFC 7692 section 7.2.1 says.
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    ours = opened_with_deflate()
    for text in texts:
        payload = compressor.compress(text.encode()) + compressor.flush(zlib.Z_SYNC_FLUSH)
        assert payload.endswith(b"\x00\x00\xff\xff")
        ours.receive_data(wire.client_frame(Opcode.TEXT, payload[:-4], rsv1=True, mask=None))
    assert ours.events() == [TextMessage(data=text) for text in texts]


def opened_with_deflate() -> ClientConnection:
    conn = client()
    conn.data_to_send()
    conn.receive_data(response(*GOOD, ("Sec-WebSocket-Extensions", "permessage-deflate")))
    [event] = conn.events()
    assert isinstance(event, HandshakeAccepted)
    return conn
