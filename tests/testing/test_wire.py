"""Tests for ``wsserver.testing.wire``: a client's bytes, written from RFC 6455.

The module is the reference the server is tested against, so it is checked
three ways: against the RFC's own bytes (section 5.7's frames, section 1.3's
key and accept), against the RFC's definitions written out byte by byte
(section 5.3's masking), and differentially: what it builds is read the same
by wsserver's reader and by wsproto's server, and its handshakes are
accepted by both.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import itertools
import os
import random
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection
from wsproto.events import Request as WsprotoRequest
from wsproto.frame_protocol import FrameProtocol, ParseFailed

import wsserver.testing
from wsserver.protocol.connection import ServerConnection
from wsserver.protocol.events import BinaryMessage, TextMessage, WebSocketRequest
from wsserver.protocol.exceptions import FrameError
from wsserver.protocol.headers import ExtensionOffer
from wsserver.protocol.reader import ControlFrame, MessageReader
from wsserver.protocol.settings import ProtocolSettings
from wsserver.testing import wire
from wsserver.testing.wire import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONTINUATION,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    FrameHeader,
    accept_for,
    apply_mask,
    client_frame,
    client_handshake,
    close_frame,
    close_payload,
    frame_header_size,
    handshake_fields,
    http_request,
    minimal_length_bits,
    random_key,
    random_mask,
    read_frame_header,
)

#: The masking key of RFC 6455 section 5.7's examples.
RFC_MASK = b"\x37\xfa\x21\x3d"
#: Section 1.3's worked example: "if as in the example above, the
#: |Sec-WebSocket-Key| header field had the value "dGhlIHNhbXBsZSBub25jZQ==""
#: ... "This value is then base64-encoded ..., to give the value
#: "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=""".
RFC_KEY = "dGhlIHNhbXBsZSBub25jZQ=="
RFC_ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

CONTROL_OPCODES = (OP_CLOSE, OP_PING, OP_PONG)


def reference_mask(data: bytes, key: bytes) -> bytes:
    """Section 5.3 word for word: "j = i MOD 4; transformed-octet-i = original-octet-i XOR
    masking-key-octet-j"."""
    return bytes(octet ^ key[i % 4] for i, octet in enumerate(data))


def header_of(frame: bytes) -> FrameHeader:
    header = read_frame_header(frame)
    assert header is not None
    return header


def test_the_package_reexports_the_module() -> None:
    assert set(wire.__all__) <= set(wsserver.testing.__all__)
    for name in wire.__all__:
        assert getattr(wsserver.testing, name) is getattr(wire, name)


# --------------------------------------------------------------------------
# Section 5.7's examples, byte for byte
# --------------------------------------------------------------------------

HELLO = bytes([0x48, 0x65, 0x6C, 0x6C, 0x6F])

RFC_FRAMES = [
    # "A single-frame unmasked text message"
    ("unmasked-text", client_frame(OP_TEXT, b"Hello", mask=None), bytes([0x81, 0x05]) + HELLO),
    # "A single-frame masked text message"
    (
        "masked-text",
        client_frame(OP_TEXT, b"Hello", mask=RFC_MASK),
        bytes([0x81, 0x85, 0x37, 0xFA, 0x21, 0x3D, 0x7F, 0x9F, 0x4D, 0x51, 0x58]),
    ),
    # "A fragmented unmasked text message"
    (
        "fragmented",
        client_frame(OP_TEXT, b"Hel", fin=False, mask=None)
        + client_frame(OP_CONTINUATION, b"lo", mask=None),
        bytes([0x01, 0x03, 0x48, 0x65, 0x6C, 0x80, 0x02, 0x6C, 0x6F]),
    ),
    # "Unmasked Ping request and masked Ping response"
    ("unmasked-ping", client_frame(OP_PING, b"Hello", mask=None), bytes([0x89, 0x05]) + HELLO),
    (
        "masked-pong",
        client_frame(OP_PONG, b"Hello", mask=RFC_MASK),
        bytes([0x8A, 0x85, 0x37, 0xFA, 0x21, 0x3D, 0x7F, 0x9F, 0x4D, 0x51, 0x58]),
    ),
    # "256 bytes binary message in a single unmasked frame"
    (
        "binary-256",
        client_frame(OP_BINARY, bytes(range(256)), mask=None),
        bytes([0x82, 0x7E, 0x01, 0x00]) + bytes(range(256)),
    ),
    # "64KiB binary message in a single unmasked frame"
    (
        "binary-64k",
        client_frame(OP_BINARY, bytes(range(256)) * 256, mask=None),
        bytes([0x82, 0x7F, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00]) + bytes(range(256)) * 256,
    ),
]


@pytest.mark.parametrize(
    ("built", "expected"), [f[1:] for f in RFC_FRAMES], ids=[f[0] for f in RFC_FRAMES]
)
def test_section_5_7_examples(built: bytes, expected: bytes) -> None:
    assert built == expected


def test_section_5_7_masked_hello_read_back() -> None:
    frame = bytes([0x81, 0x85, 0x37, 0xFA, 0x21, 0x3D, 0x7F, 0x9F, 0x4D, 0x51, 0x58])
    header = header_of(frame)
    assert header == FrameHeader(
        fin=True,
        rsv1=False,
        rsv2=False,
        rsv3=False,
        opcode=OP_TEXT,
        mask=RFC_MASK,
        length=5,
        length_bits=7,
        size=6,
    )
    assert apply_mask(frame[header.size :], RFC_MASK) == b"Hello"


# --------------------------------------------------------------------------
# Section 5.2: the header
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fin", "rsv1", "rsv2", "rsv3", "first"),
    [
        (True, False, False, False, 0x80),
        (False, False, False, False, 0x00),
        (True, True, False, False, 0xC0),
        (True, False, True, False, 0xA0),
        (True, False, False, True, 0x90),
        (False, True, True, True, 0x70),
    ],
)
@pytest.mark.parametrize("opcode", range(16))
def test_first_byte_is_fin_rsv_and_opcode(
    fin: bool, rsv1: bool, rsv2: bool, rsv3: bool, first: int, opcode: int
) -> None:
    # "FIN: 1 bit ... RSV1, RSV2, RSV3: 1 bit each ... Opcode: 4 bits",
    # reserved opcodes included (a test of refusals needs them).
    frame = client_frame(opcode, b"", fin=fin, rsv1=rsv1, rsv2=rsv2, rsv3=rsv3, mask=RFC_MASK)
    assert frame == bytes([first | opcode, 0x80]) + RFC_MASK


@pytest.mark.parametrize("opcode", [-1, 16, 0x81])
def test_an_opcode_is_four_bits(opcode: int) -> None:
    with pytest.raises(ValueError, match="4 bits"):
        client_frame(opcode)


#: (payload length, its length bytes in the minimal form)
MINIMAL_LENGTHS = [
    (0, b"\x80"),
    (1, b"\x81"),
    (125, b"\xfd"),
    (126, b"\xfe\x00\x7e"),
    (0xFFFF, b"\xfe\xff\xff"),
    (0x10000, b"\xff\x00\x00\x00\x00\x00\x01\x00\x00"),
    (70_000, b"\xff" + (70_000).to_bytes(8, "big")),
]


@pytest.mark.parametrize(
    ("length", "field"), MINIMAL_LENGTHS, ids=[str(n) for n, _ in MINIMAL_LENGTHS]
)
def test_section_5_2_minimal_length_encoding(length: int, field: bytes) -> None:
    # "the minimal number of bytes MUST be used to encode the length"
    frame = client_frame(OP_BINARY, bytes(length), mask=RFC_MASK)
    assert frame[: 1 + len(field) + 4] == b"\x82" + field + RFC_MASK
    assert len(frame) == 1 + len(field) + 4 + length
    assert minimal_length_bits(length) == {1: 7, 3: 16, 9: 64}[len(field)]


#: (announced length, encoding) pairs, minimal or not, every encoding.
FORCED_LENGTHS = [
    (0, 7),
    (125, 7),
    (0, 16),
    (125, 16),
    (126, 16),
    (0xFFFF, 16),
    (0, 64),
    (126, 64),
    (0xFFFF, 64),
    (0x10000, 64),
    (1 << 63, 64),
    ((1 << 64) - 1, 64),
]


@pytest.mark.parametrize(("length", "bits"), FORCED_LENGTHS)
def test_forced_length_encodings_are_written_as_asked(length: int, bits: int) -> None:
    # A forged header: the announced length need not be the payload's.
    frame = client_frame(OP_BINARY, b"abc", length=length, length_bits=bits, mask=RFC_MASK)
    seven = {7: length, 16: 126, 64: 127}[bits]
    extended = b"" if bits == 7 else length.to_bytes(bits // 8, "big")
    assert frame == bytes([0x82, 0x80 | seven]) + extended + RFC_MASK + apply_mask(b"abc", RFC_MASK)
    header = header_of(frame)
    assert (header.length, header.length_bits, header.size) == (length, bits, 2 + len(extended) + 4)


@pytest.mark.parametrize(("length", "bits"), [(126, 7), (127, 7), (0x10000, 16), (1 << 64, 64)])
def test_a_length_must_fit_its_encoding(length: int, bits: int) -> None:
    with pytest.raises(ValueError, match="does not fit"):
        client_frame(OP_BINARY, length=length, length_bits=bits)


@pytest.mark.parametrize("bits", [0, 8, 32, 63])
def test_only_three_length_encodings_exist(bits: int) -> None:
    with pytest.raises(ValueError, match="7, 16 or 64"):
        client_frame(OP_BINARY, length_bits=bits)


def test_a_length_is_not_negative() -> None:
    with pytest.raises(ValueError, match="not negative"):
        client_frame(OP_BINARY, length=-1)
    with pytest.raises(ValueError, match="not negative"):
        minimal_length_bits(-1)


def test_a_forged_length_writes_the_payload_given() -> None:
    # A header announcing more than follows: the server waits for the rest.
    assert client_frame(OP_TEXT, b"ab", length=10, mask=None) == b"\x81\x0aab"
    # Only the header (and the key): what a test of a huge declared length sends.
    assert client_frame(OP_BINARY, length=1 << 62, mask=RFC_MASK) == (
        b"\x82\xff" + (1 << 62).to_bytes(8, "big") + RFC_MASK
    )


# --------------------------------------------------------------------------
# Section 5.3: masking
# --------------------------------------------------------------------------


@settings(max_examples=200)
@given(data=st.binary(max_size=300), key=st.binary(min_size=4, max_size=4))
def test_property_masking_is_section_5_3s_xor_and_its_own_inverse(data: bytes, key: bytes) -> None:
    masked = apply_mask(data, key)
    assert masked == reference_mask(data, key)
    # "the same steps are applied to mask the data as to unmask the data"
    assert apply_mask(masked, key) == data


def test_masking_a_large_payload() -> None:
    data = random.Random(0).randbytes(1 << 20)
    key = b"\x01\x80\xfe\x7f"
    masked = apply_mask(data, key)
    assert masked == reference_mask(data, key)
    # Leading zero bytes survive the integer round trip.
    assert apply_mask(bytes(1000), key)[:4] == key
    assert apply_mask(key * 10, key) == bytes(40)


@pytest.mark.parametrize("key", [b"", b"abc", b"abcde"])
def test_a_masking_key_is_four_bytes(key: bytes) -> None:
    with pytest.raises(ValueError, match="4 bytes"):
        apply_mask(b"x", key)
    with pytest.raises(ValueError, match="4 bytes"):
        client_frame(OP_TEXT, b"x", mask=key)


def test_unmasked_frame_has_no_mask_bit_and_no_key() -> None:
    # Section 5.2: "This field is present if the mask bit is set to 1 and is
    # absent if the mask bit is set to 0."
    frame = client_frame(OP_BINARY, b"\x00\x01", mask=None)
    assert frame == b"\x82\x02\x00\x01"
    assert header_of(frame).mask is None


def test_the_default_key_is_fresh_from_os_urandom(monkeypatch: pytest.MonkeyPatch) -> None:
    # Section 5.3: "the masking key MUST be derived from a strong source of entropy".
    keys = iter([b"\x01\x02\x03\x04", b"\xaa\xbb\xcc\xdd"])
    asked: list[int] = []

    def urandom(size: int) -> bytes:
        asked.append(size)
        return next(keys)

    monkeypatch.setattr(os, "urandom", urandom)
    first = client_frame(OP_TEXT, b"Hello")
    second = close_frame()
    assert asked == [4, 4]
    assert first == b"\x81\x85\x01\x02\x03\x04" + apply_mask(b"Hello", b"\x01\x02\x03\x04")
    assert second == b"\x88\x82\xaa\xbb\xcc\xdd" + apply_mask(b"\x03\xe8", b"\xaa\xbb\xcc\xdd")


def test_random_mask_is_four_bytes() -> None:
    assert len(random_mask()) == 4
    header = header_of(client_frame(OP_PING, b"x"))
    assert header.mask is not None and len(header.mask) == 4


# --------------------------------------------------------------------------
# Section 5.5.1: Close
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "reason", "body"),
    [
        (1000, "", b"\x03\xe8"),
        (1001, "bye", b"\x03\xe9bye"),
        (4999, "caf\u00e9", b"\x13\x87caf\xc3\xa9"),
        # Codes a server must refuse are written too (section 7.4).
        (999, "", b"\x03\xe7"),
        (1005, "", b"\x03\xed"),
        (0xFFFF, "", b"\xff\xff"),
    ],
)
def test_close_payload_is_the_code_then_utf8(code: int, reason: str, body: bytes) -> None:
    assert close_payload(code, reason) == body
    frame = close_frame(code, reason, mask=RFC_MASK)
    assert frame == bytes([0x88, 0x80 | len(body)]) + RFC_MASK + apply_mask(body, RFC_MASK)


def test_close_frame_defaults_to_1000_and_may_have_no_body() -> None:
    assert close_frame(mask=None) == b"\x88\x02\x03\xe8"
    assert close_frame(None, mask=None) == b"\x88\x00"
    with pytest.raises(ValueError, match="no reason"):
        close_frame(None, "why")


# --------------------------------------------------------------------------
# Reading frame headers back
# --------------------------------------------------------------------------


@settings(max_examples=300)
@given(
    opcode=st.integers(min_value=0, max_value=15),
    bits=st.tuples(st.booleans(), st.booleans(), st.booleans(), st.booleans()),
    payload=st.binary(max_size=200),
    mask=st.none() | st.binary(min_size=4, max_size=4),
    encoding=st.sampled_from([None, 16, 64]),
)
def test_property_read_frame_header_inverts_client_frame(
    opcode: int,
    bits: tuple[bool, bool, bool, bool],
    payload: bytes,
    mask: bytes | None,
    encoding: int | None,
) -> None:
    fin, rsv1, rsv2, rsv3 = bits
    frame = client_frame(
        opcode, payload, fin=fin, rsv1=rsv1, rsv2=rsv2, rsv3=rsv3, mask=mask, length_bits=encoding
    )
    header = header_of(frame)
    length_bits = encoding or minimal_length_bits(len(payload))
    assert header == FrameHeader(
        fin=fin,
        rsv1=rsv1,
        rsv2=rsv2,
        rsv3=rsv3,
        opcode=opcode,
        mask=mask,
        length=len(payload),
        length_bits=length_bits,
        size=len(frame) - len(payload),
    )
    body = frame[header.size :]
    assert (body if mask is None else apply_mask(body, mask)) == payload
    # The size is known from the first two bytes; any shorter prefix is "not yet".
    assert frame_header_size(frame) == header.size
    for end in range(header.size):
        assert read_frame_header(frame[:end]) is None
    # At an offset, in a bytearray, as a stream reader holds it.
    assert read_frame_header(bytearray(b"junk" + frame), 4) == header
    assert frame_header_size(b"junk" + frame, 4) == header.size


def test_frame_header_size_needs_two_bytes() -> None:
    with pytest.raises(ValueError, match="two bytes"):
        frame_header_size(b"\x81")
    with pytest.raises(ValueError, match="two bytes"):
        frame_header_size(b"\x81\x85", 1)


def test_read_frame_header_reports_what_a_server_must_refuse() -> None:
    # A non-minimal length and reserved bits are reported, not judged.
    header = header_of(client_frame(OP_BINARY, b"x", rsv2=True, length_bits=64, mask=None))
    assert header.rsv2
    assert header.length_bits == 64 != minimal_length_bits(header.length)


# --------------------------------------------------------------------------
# Differential: wsserver's reader and wsproto's server read the same messages
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Message:
    opcode: int
    data: bytes
    #: Where the payload is cut into fragments.
    cuts: tuple[int, ...] = ()
    #: Control frames sent between the fragments (as many as fit the gaps).
    interleaved: tuple[tuple[int, bytes], ...] = ()
    #: The masking keys of the fragments, in turn.
    masks: tuple[bytes, ...] = (RFC_MASK,)


Item = Message | tuple[int, bytes]


def fragments(data: bytes, cuts: tuple[int, ...]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)] or [data]


def encode(items: list[Item]) -> tuple[bytes, list[tuple[str, object]]]:
    """The client's bytes for ``items``, and what a reader must make of them."""
    out = b""
    expected: list[tuple[str, object]] = []
    for item in items:
        if not isinstance(item, Message):
            opcode, payload = item
            out += client_frame(opcode, payload)
            expected.append((f"control-{opcode}", payload))
            continue
        parts = fragments(item.data, item.cuts)
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            out += client_frame(
                item.opcode if i == 0 else OP_CONTINUATION,
                part,
                fin=last,
                mask=item.masks[i % len(item.masks)],
            )
            if not last and i < len(item.interleaved):
                opcode, payload = item.interleaved[i]
                out += client_frame(opcode, payload)
                expected.append((f"control-{opcode}", payload))
        if item.opcode == OP_TEXT:
            expected.append(("text", item.data.decode()))
        else:
            expected.append(("binary", item.data))
    return out, expected


def read_with_wsserver(stream: bytes) -> list[tuple[str, object]]:
    reader = MessageReader(ProtocolSettings(), None)
    reader.feed(stream)
    found: list[tuple[str, object]] = []
    while (result := reader.read()) is not None:
        if isinstance(result, TextMessage):
            found.append(("text", result.data))
        elif isinstance(result, BinaryMessage):
            found.append(("binary", result.data))
        else:
            assert isinstance(result, ControlFrame)
            found.append((f"control-{int(result.opcode)}", result.payload))
    assert reader.buffered == 0 and not reader.in_message
    return found


def read_with_wsproto(stream: bytes) -> list[tuple[str, object]]:
    server = FrameProtocol(client=False, extensions=[])
    server.receive_bytes(stream)
    found: list[tuple[str, object]] = []
    text: list[str] = []
    binary: list[bytes] = []
    for frame in server.received_frames():
        opcode, payload = int(frame.opcode), frame.payload
        if isinstance(payload, tuple):  # a Close: wsproto parses its body
            code, reason = payload
            found.append((f"control-{opcode}", close_payload(int(code), reason)))
        elif opcode in CONTROL_OPCODES:
            found.append((f"control-{opcode}", payload))
        elif isinstance(payload, str):
            text.append(payload)
        else:
            binary.append(bytes(payload))
        if opcode not in CONTROL_OPCODES and frame.message_finished:
            found.append(
                ("text", "".join(text)) if text or not binary else ("binary", b"".join(binary))
            )
            text, binary = [], []
    assert not text and not binary
    return found


texts = st.text(max_size=40).map(str.encode)
binaries = st.one_of(
    st.binary(max_size=300),
    # The 16- and 64-bit length encodings: big payloads from a seed
    # (hypothesis is slow to draw 64 KiB).
    st.builds(
        lambda seed, size: random.Random(seed).randbytes(size),
        st.integers(min_value=0),
        st.sampled_from([126, 1000, 65535, 65536, 70_000]),
    ),
)
masks = st.binary(min_size=4, max_size=4)
pings = st.tuples(st.sampled_from([OP_PING, OP_PONG]), st.binary(max_size=125))
#: A Close ends the stream for wsproto (nothing after it is read): last only.
closes = st.builds(
    lambda code, reason: (OP_CLOSE, close_payload(code, reason)),
    st.sampled_from([1000, 1001, 1003, 1011, 3000, 4999]),
    st.text(max_size=30),  # at most 120 bytes: within a control frame's 125
)
messages = st.one_of(
    st.builds(
        Message,
        opcode=st.just(OP_TEXT),
        data=texts,
        cuts=st.lists(st.integers(min_value=0), max_size=4).map(tuple),
        interleaved=st.lists(pings, max_size=3).map(tuple),
        masks=st.lists(masks, min_size=1, max_size=3).map(tuple),
    ),
    st.builds(
        Message,
        opcode=st.just(OP_BINARY),
        data=binaries,
        cuts=st.lists(st.integers(min_value=0), max_size=4).map(tuple),
        interleaved=st.lists(pings, max_size=3).map(tuple),
        masks=st.lists(masks, min_size=1, max_size=3).map(tuple),
    ),
)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(
    items=st.lists(st.one_of(messages, pings), max_size=5),
    close=st.lists(closes, max_size=1),
)
def test_property_wsserver_and_wsproto_read_the_same_messages(
    items: list[Item], close: list[tuple[int, bytes]]
) -> None:
    stream, expected = encode([*items, *close])
    assert read_with_wsserver(stream) == expected
    assert read_with_wsproto(stream) == expected


def test_wsproto_refuses_an_unmasked_frame_as_wsserver_does() -> None:
    # The same refusal from both: section 5.1's "MUST close the connection
    # upon receiving a frame that is not masked".
    frame = client_frame(OP_TEXT, b"x", mask=None)
    reader = MessageReader(ProtocolSettings(), None)
    reader.feed(frame)
    with pytest.raises(FrameError):
        reader.read()
    server = FrameProtocol(client=False, extensions=[])
    server.receive_bytes(frame)
    with pytest.raises(ParseFailed):
        list(server.received_frames())


# --------------------------------------------------------------------------
# Section 4: the opening handshake
# --------------------------------------------------------------------------


def test_accept_for_section_1_3s_example() -> None:
    assert accept_for(RFC_KEY) == RFC_ACCEPT


def test_random_key_is_16_random_bytes_in_base64(monkeypatch: pytest.MonkeyPatch) -> None:
    assert len(base64.b64decode(random_key(), validate=True)) == 16
    monkeypatch.setattr(os, "urandom", lambda size: b"the sample nonce"[:size])
    # Section 1.3's key is the base64 of "the sample nonce".
    assert random_key() == RFC_KEY


def test_client_handshake_bytes() -> None:
    assert client_handshake(key=RFC_KEY) == (
        b"GET / HTTP/1.1\r\n"
        b"Host: 127.0.0.1\r\n"
        b"Upgrade: websocket\r\n"
        b"Connection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"Sec-WebSocket-Version: 13\r\n"
        b"\r\n"
    )


def test_client_handshake_with_every_option() -> None:
    request = client_handshake(
        "/chat?room=1",
        host="example.com:8080",
        key=RFC_KEY,
        version="8",
        subprotocols=["chat", "superchat"],
        extensions="permessage-deflate; client_max_window_bits",
        connection="keep-alive, Upgrade",
        headers=[("Origin", "http://example.com"), ("X-Twice", "1"), ("X-Twice", "2")],
    )
    assert request == (
        b"GET /chat?room=1 HTTP/1.1\r\n"
        b"Host: example.com:8080\r\n"
        b"Upgrade: websocket\r\n"
        b"Connection: keep-alive, Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"Sec-WebSocket-Version: 8\r\n"
        b"Sec-WebSocket-Protocol: chat, superchat\r\n"
        b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
        b"Origin: http://example.com\r\n"
        b"X-Twice: 1\r\n"
        b"X-Twice: 2\r\n"
        b"\r\n"
    )


def test_handshake_fields_without_a_key_get_a_fresh_one() -> None:
    first = dict(handshake_fields())
    second = dict(handshake_fields())
    assert len(base64.b64decode(first["Sec-WebSocket-Key"], validate=True)) == 16
    assert (
        first.keys()
        == second.keys()
        == {
            "Host",
            "Upgrade",
            "Connection",
            "Sec-WebSocket-Key",
            "Sec-WebSocket-Version",
        }
    )


def test_http_request_is_written_as_asked() -> None:
    fields = [("Host", "x"), ("X-Name", "caf\u00e9")]
    assert (
        http_request("GET", "/", fields) == b"GET / HTTP/1.1\r\nHost: x\r\nX-Name: caf\xe9\r\n\r\n"
    )
    assert http_request("POST", "/form", [("Content-Length", "5")], body=b"hello") == (
        b"POST /form HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"
    )
    assert http_request("GET", "/", [], http_version="HTTP/1.0", eol="\n") == b"GET / HTTP/1.0\n\n"


HANDSHAKE_CASES = [
    ("/", (), None),
    ("/chat?room=1&x=%20", ("chat", "superchat"), None),
    ("/", (), "permessage-deflate; client_max_window_bits"),
    ("/a/b", ("v2.chat",), "permessage-deflate, x-webkit-deflate-frame"),
]


@pytest.mark.parametrize(("path", "subprotocols", "extensions"), HANDSHAKE_CASES)
def test_wsserver_accepts_the_handshake(
    path: str, subprotocols: tuple[str, ...], extensions: str | None
) -> None:
    key = random_key()
    conn = ServerConnection(ProtocolSettings(), deflate=None)
    conn.receive_data(
        client_handshake(
            path,
            host="example.com",
            key=key,
            subprotocols=subprotocols,
            extensions=extensions,
            headers=[("Origin", "http://example.com")],
        )
    )
    request = conn.next_event()
    assert isinstance(request, WebSocketRequest), request
    assert request.target == path
    assert request.subprotocols == subprotocols
    offered = [offer.name for offer in request.extensions]
    assert offered == (
        [] if extensions is None else [e.split(";")[0] for e in extensions.split(", ")]
    )
    if extensions and extensions.startswith("permessage-deflate;"):
        assert request.extensions[0] == ExtensionOffer(
            name="permessage-deflate", params=(("client_max_window_bits", None),)
        )
    assert ("origin", "http://example.com") in request.headers
    conn.accept(subprotocols[0] if subprotocols else None)
    head = b"".join(conn.data_to_send())
    assert head.startswith(b"HTTP/1.1 101 ")
    assert b"\r\nSec-WebSocket-Accept: " + accept_for(key).encode() + b"\r\n" in head
    # And frames after it are read as messages.
    conn.receive_data(client_frame(OP_TEXT, b"Hello"))
    assert conn.next_event() == TextMessage(data="Hello")


@pytest.mark.parametrize(("path", "subprotocols", "extensions"), HANDSHAKE_CASES)
def test_wsproto_accepts_the_handshake(
    path: str, subprotocols: tuple[str, ...], extensions: str | None
) -> None:
    key = random_key()
    server = WSConnection(ConnectionType.SERVER)
    server.receive_data(
        client_handshake(
            path, host="example.com", key=key, subprotocols=subprotocols, extensions=extensions
        )
    )
    (request,) = server.events()
    assert isinstance(request, WsprotoRequest), request
    assert (request.host, request.target) == ("example.com", path)
    assert request.subprotocols == list(subprotocols)
    assert request.extensions == ([] if extensions is None else extensions.split(", "))
    head = server.send(AcceptConnection(subprotocol=subprotocols[0] if subprotocols else None))
    assert head.startswith(b"HTTP/1.1 101 ")
    assert b"\r\nSec-WebSocket-Accept: " + accept_for(key).encode() + b"\r\n" in head


def test_accept_for_is_sha1_of_key_and_guid_in_base64() -> None:
    # Section 4.2.2, with another key: checked against wsproto's own answer above,
    # and here against the definition.
    key = random_key()
    expected = base64.b64encode(hashlib.sha1((key + wire.GUID).encode()).digest()).decode()
    assert accept_for(key) == expected
    assert len(binascii.a2b_base64(accept_for(key))) == 20
