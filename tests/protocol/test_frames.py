"""Tests for writing frames and Close bodies (RFC 6455 sections 5.2, 5.5.1, 5.7 and 7.4)."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wsproto.frame_protocol import FrameProtocol
from wsproto.frame_protocol import Opcode as WsprotoOpcode

from wsserver.protocol.codes import CloseCode, Opcode, is_valid_received_close_code
from wsserver.protocol.exceptions import FrameError, LocalProtocolError
from wsserver.protocol.frames import (
    MAX_CLOSE_REASON,
    MAX_CONTROL_PAYLOAD,
    Frame,
    encode_close_payload,
    encode_frame,
    frame_header,
    parse_close_payload,
    prepare_message,
)
from wsserver.testing import wire


def parse_server_frames(data: bytes) -> list[tuple[int, bool, bytes | str | tuple[int, str]]]:
    """Parse unmasked frames with wsproto, as a client does.

    wsproto reports a continuation frame with its message's opcode, decodes
    text payloads and splits Close bodies into ``(code, reason)``.
    """
    client = FrameProtocol(client=True, extensions=[])
    client.receive_bytes(data)
    frames = []
    for frame in client.received_frames():
        assert frame.frame_finished
        frames.append((int(frame.opcode), frame.message_finished, frame.payload))
    return frames


def read_header(data: bytes) -> wire.FrameHeader:
    """Section 5.2, read back (``wsserver.testing.wire``): the header of a server frame."""
    header = wire.read_frame_header(data)
    assert header is not None, "truncated frame header"
    assert header.mask is None, "server frames are not masked"
    return header


# --------------------------------------------------------------------------
# Section 5.7: the RFC's examples, both ways
# --------------------------------------------------------------------------

RFC_EXAMPLES = [
    # "A single-frame unmasked text message"
    ("text", [Frame(Opcode.TEXT, b"Hello")], bytes([0x81, 0x05, 0x48, 0x65, 0x6C, 0x6C, 0x6F])),
    # "A fragmented unmasked text message"
    (
        "fragmented",
        [Frame(Opcode.TEXT, b"Hel", fin=False), Frame(Opcode.CONTINUATION, b"lo")],
        bytes([0x01, 0x03, 0x48, 0x65, 0x6C, 0x80, 0x02, 0x6C, 0x6F]),
    ),
    # "Unmasked Ping request"
    ("ping", [Frame(Opcode.PING, b"Hello")], bytes([0x89, 0x05, 0x48, 0x65, 0x6C, 0x6C, 0x6F])),
    # "256 bytes binary message in a single unmasked frame"
    (
        "binary-256",
        [Frame(Opcode.BINARY, bytes(range(256)))],
        bytes([0x82, 0x7E, 0x01, 0x00]) + bytes(range(256)),
    ),
    # "64KiB binary message in a single unmasked frame"
    (
        "binary-64k",
        [Frame(Opcode.BINARY, bytes(range(256)) * 256)],
        bytes([0x82, 0x7F, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00]) + bytes(range(256)) * 256,
    ),
]


@pytest.mark.parametrize(
    ("frames", "wire"), [e[1:] for e in RFC_EXAMPLES], ids=[e[0] for e in RFC_EXAMPLES]
)
def test_section_5_7_examples_encode(frames: list[Frame], wire: bytes) -> None:
    assert b"".join(encode_frame(f) for f in frames) == wire


@pytest.mark.parametrize(
    ("frames", "wire"), [e[1:] for e in RFC_EXAMPLES], ids=[e[0] for e in RFC_EXAMPLES]
)
def test_section_5_7_examples_parse_with_wsproto(frames: list[Frame], wire: bytes) -> None:
    parsed = parse_server_frames(wire)
    assert len(parsed) == len(frames)
    for (opcode, fin, payload), frame in zip(parsed, frames, strict=True):
        expected_opcode = frames[0].opcode if frame.opcode == Opcode.CONTINUATION else frame.opcode
        assert opcode == expected_opcode
        assert fin == frame.fin
        if opcode == Opcode.TEXT:
            assert payload == frame.payload.decode("utf-8")
        else:
            assert payload == frame.payload


# --------------------------------------------------------------------------
# Section 5.2: the header
# --------------------------------------------------------------------------

#: (length, the length field and extended length, as section 5.2 lays them out)
LENGTH_FIELDS = [
    (0, b"\x00"),
    (1, b"\x01"),
    (125, b"\x7d"),  # "if 0-125, that is the payload length"
    (126, b"\x7e\x00\x7e"),  # "If 126, the following 2 bytes ... are the payload length"
    (65535, b"\x7e\xff\xff"),
    (65536, b"\x7f\x00\x00\x00\x00\x00\x01\x00\x00"),  # "If 127, the following 8 bytes"
    (2**32, b"\x7f\x00\x00\x00\x01\x00\x00\x00\x00"),
    (2**63 - 1, b"\x7f\x7f\xff\xff\xff\xff\xff\xff\xff"),
]


@pytest.mark.parametrize(("length", "field"), LENGTH_FIELDS, ids=[str(x[0]) for x in LENGTH_FIELDS])
def test_section_5_2_payload_length_in_the_minimal_form(length: int, field: bytes) -> None:
    assert frame_header(Opcode.BINARY, length) == b"\x82" + field
    assert frame_header(Opcode.TEXT, length, fin=False) == b"\x01" + field
    assert frame_header(Opcode.CONTINUATION, length, rsv1=True) == b"\xc0" + field
    assert frame_header(Opcode.TEXT, length, fin=False, rsv1=True) == b"\x41" + field


@pytest.mark.parametrize("opcode", list(Opcode), ids=lambda o: o.name)
@pytest.mark.parametrize("fin", [True, False])
@pytest.mark.parametrize("rsv1", [True, False])
@pytest.mark.parametrize("length", [0, 5, 125, 126, 65536])
def test_section_5_2_first_byte(opcode: Opcode, fin: bool, rsv1: bool, length: int) -> None:
    # "FIN: 1 bit ... RSV1, RSV2, RSV3: 1 bit each ... Opcode: 4 bits"; and
    # section 5.1, "A server MUST NOT mask any frames": the MASK bit is 0.
    header = frame_header(opcode, length, fin=fin, rsv1=rsv1)
    parsed = read_header(header)
    assert (parsed.fin, parsed.rsv1, parsed.rsv2, parsed.rsv3) == (fin, rsv1, False, False)
    assert parsed.opcode == opcode.value
    assert parsed.length == length
    assert parsed.size == len(header)


@settings(max_examples=200)
@given(length=st.integers(min_value=0, max_value=2**63 - 1))
def test_property_header_round_trip_and_minimal(length: int) -> None:
    # "the minimal number of bytes MUST be used to encode the length"
    header = frame_header(Opcode.BINARY, length)
    parsed = read_header(header)
    assert (parsed.fin, parsed.rsv1, parsed.rsv2, parsed.rsv3) == (True, False, False, False)
    assert (parsed.opcode, parsed.length, parsed.size) == (0x2, length, len(header))
    assert parsed.length_bits == wire.minimal_length_bits(length)
    assert len(header) == (2 if length <= 125 else 4 if length <= 0xFFFF else 10)


def test_header_returned_as_immutable_bytes() -> None:
    # The short headers come from a shared table: they must not be mutable.
    for opcode in Opcode:
        for length in (0, 125, 126, 70000):
            assert type(frame_header(opcode, length)) is bytes


# --------------------------------------------------------------------------
# Encoding whole frames, checked by wsproto
# --------------------------------------------------------------------------


def test_frame_defaults() -> None:
    frame = Frame(Opcode.TEXT, b"x")
    assert frame.fin
    assert not frame.rsv1


@pytest.mark.parametrize("length", [0, 1, 125, 126, 127, 65535, 65536, 70000])
@pytest.mark.parametrize("opcode", [Opcode.TEXT, Opcode.BINARY])
def test_encode_frame_lengths_parse_with_wsproto(opcode: Opcode, length: int) -> None:
    payload = (b"abcdefghij" * (length // 10 + 1))[:length]
    wire = encode_frame(Frame(opcode, payload))
    assert wire == frame_header(opcode, length) + payload
    text_or_bytes = payload.decode() if opcode == Opcode.TEXT else payload
    assert parse_server_frames(wire) == [(opcode, True, text_or_bytes)]


@pytest.mark.parametrize("opcode", [Opcode.PING, Opcode.PONG])
@pytest.mark.parametrize("length", [0, 1, MAX_CONTROL_PAYLOAD])
def test_encode_control_frames_parse_with_wsproto(opcode: Opcode, length: int) -> None:
    payload = bytes(range(length))
    assert parse_server_frames(encode_frame(Frame(opcode, payload))) == [(opcode, True, payload)]


@settings(max_examples=100)
@given(
    pieces=st.lists(
        st.tuples(st.sampled_from([Opcode.TEXT, Opcode.BINARY]), st.lists(st.text(), min_size=1)),
        max_size=5,
    )
)
def test_property_fragmented_messages_parse_with_wsproto(
    pieces: list[tuple[Opcode, list[str]]],
) -> None:
    wire = b""
    expected = []
    for opcode, fragments in pieces:
        for i, fragment in enumerate(fragments):
            fin = i == len(fragments) - 1
            frame_opcode = opcode if i == 0 else Opcode.CONTINUATION
            wire += encode_frame(Frame(frame_opcode, fragment.encode(), fin=fin))
            expected.append((opcode, fin, fragment if opcode == Opcode.TEXT else fragment.encode()))
    assert parse_server_frames(wire) == expected


# --------------------------------------------------------------------------
# Section 5.5.1: the body of a received Close frame
# --------------------------------------------------------------------------


def test_section_7_1_5_empty_close_body_means_1005() -> None:
    # "If there is no such data in the Close control frame, _The WebSocket
    # Connection Close Code_ is considered to be 1005."
    assert parse_close_payload(b"") == (CloseCode.NO_STATUS_RECEIVED, "")
    assert parse_close_payload(bytearray()) == (1005, "")


@pytest.mark.parametrize("body", [b"\x03", b"\xe8", b"\x00"])
def test_section_5_5_1_one_byte_body_is_a_protocol_error(body: bytes) -> None:
    # "If there is a body, the first two bytes of the body MUST be a 2-byte
    # unsigned integer".
    with pytest.raises(FrameError) as info:
        parse_close_payload(body)
    assert info.value.code == CloseCode.PROTOCOL_ERROR


@pytest.mark.parametrize("code", [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535])
def test_section_7_4_invalid_codes_are_a_protocol_error(code: int) -> None:
    with pytest.raises(FrameError) as info:
        parse_close_payload(code.to_bytes(2, "big") + b"reason")
    assert info.value.code == CloseCode.PROTOCOL_ERROR


def test_section_7_4_every_code_parses_as_the_table_says() -> None:
    for code in range(65536):
        body = code.to_bytes(2, "big")
        if is_valid_received_close_code(code):
            assert parse_close_payload(body) == (code, "")
        else:
            with pytest.raises(FrameError):
                parse_close_payload(body)


@pytest.mark.parametrize("reason", [b"\xff", b"ok\xc0\xaf", b"\xed\xa0\x80", b"truncated \xe2\x82"])
def test_section_5_5_1_reason_not_utf8_is_1007(reason: bytes) -> None:
    # "the data MAY contain a reason [...] the interpretation of this data is
    # not defined [...] MUST be UTF-8-encoded"; 8.1: not UTF-8 fails with 1007.
    with pytest.raises(FrameError) as info:
        parse_close_payload(b"\x03\xe8" + reason)
    assert info.value.code == CloseCode.INVALID_PAYLOAD_DATA


@pytest.mark.parametrize(
    ("body", "code", "reason"),
    [
        (b"\x03\xe8", 1000, ""),
        (b"\x03\xe9bye", 1001, "bye"),
        (b"\x03\xf3" + "κόσμε".encode(), 1011, "κόσμε"),
        (b"\x0b\xb8", 3000, ""),
        (b"\x13\x87x", 4999, "x"),
        (b"\x03\xe8" + b"r" * MAX_CLOSE_REASON, 1000, "r" * MAX_CLOSE_REASON),
    ],
)
def test_section_5_5_1_valid_bodies(body: bytes, code: int, reason: str) -> None:
    assert parse_close_payload(body) == (code, reason)
    assert parse_close_payload(bytearray(body)) == (code, reason)
    assert encode_close_payload(code, reason) == body


# --------------------------------------------------------------------------
# Section 5.5.1: the body of a Close frame we send
# --------------------------------------------------------------------------


@pytest.mark.parametrize("code", [None, CloseCode.NO_STATUS_RECEIVED, 1005])
def test_no_code_gives_an_empty_body(code: int | None) -> None:
    assert encode_close_payload(code) == b""
    assert encode_close_payload(code, "") == b""


def test_reason_without_code_is_refused() -> None:
    with pytest.raises(LocalProtocolError):
        encode_close_payload(None, "why")
    with pytest.raises(LocalProtocolError):
        encode_close_payload(CloseCode.NO_STATUS_RECEIVED, "why")


@pytest.mark.parametrize("code", [0, 999, 1004, 1006, 1015, 1016, 2999, 5000, 65535, 65536, -1])
def test_section_7_4_unsendable_codes_are_refused(code: int) -> None:
    with pytest.raises(LocalProtocolError):
        encode_close_payload(code)


def test_section_7_4_every_sendable_code() -> None:
    for code in range(6000):
        if code == 1005:
            continue  # "no status": the empty body, tested above
        if is_valid_received_close_code(code):
            assert encode_close_payload(code) == struct.pack("!H", code)
        else:
            with pytest.raises(LocalProtocolError):
                encode_close_payload(code)


@pytest.mark.parametrize(
    ("reason", "fits"),
    [
        ("a" * MAX_CLOSE_REASON, True),
        ("a" * (MAX_CLOSE_REASON + 1), False),
        ("é" * (MAX_CLOSE_REASON // 2), True),  # 122 bytes
        ("é" * (MAX_CLOSE_REASON // 2 + 1), False),  # 62 characters, 124 bytes
        ("€" * (MAX_CLOSE_REASON // 3), True),  # 123 bytes
        ("a" + "€" * (MAX_CLOSE_REASON // 3), False),
    ],
)
def test_section_5_5_reason_must_fit_a_control_frame(reason: str, fits: bool) -> None:
    # Section 5.5: "All control frames MUST have a payload length of 125
    # bytes or less"; two of them are the code.  Bytes count, not characters.
    assert MAX_CLOSE_REASON == MAX_CONTROL_PAYLOAD - 2 == 123
    if fits:
        body = encode_close_payload(CloseCode.GOING_AWAY, reason)
        assert len(body) <= MAX_CONTROL_PAYLOAD
        assert parse_close_payload(body) == (CloseCode.GOING_AWAY, reason)
    else:
        with pytest.raises(LocalProtocolError):
            encode_close_payload(CloseCode.GOING_AWAY, reason)


def test_reason_that_is_not_encodable_is_a_caller_error() -> None:
    # A lone surrogate has no UTF-8 form: the caller's mistake, reported as
    # such rather than as a UnicodeEncodeError.
    with pytest.raises(LocalProtocolError):
        encode_close_payload(CloseCode.NORMAL_CLOSURE, "bad \ud800")


@settings(max_examples=200)
@given(
    code=st.one_of(
        st.sampled_from([1000, 1001, 1002, 1003, *range(1007, 1015)]),
        st.integers(min_value=3000, max_value=4999),
    ),
    reason=st.text(max_size=40),
)
def test_property_close_body_round_trip(code: int, reason: str) -> None:
    body = encode_close_payload(code, reason)
    assert parse_close_payload(body) == (code, reason)
    # ... and wsproto reads the Close frame the same way (it predates the
    # IANA registration of 1014, which it refuses).
    if code == CloseCode.BAD_GATEWAY:
        return
    assert parse_server_frames(encode_frame(Frame(Opcode.CLOSE, body))) == [
        (WsprotoOpcode.CLOSE, True, (code, reason))
    ]


class TestPreparedMessage:
    """frames.prepare_message: one encoding, valid on every connection."""

    def test_text_is_encoded_once_as_an_unmasked_frame(self) -> None:
        prepared = prepare_message("Hello")
        assert prepared.opcode is Opcode.TEXT
        assert prepared.payload == b"Hello"
        # RFC 6455 section 5.7: "A single-frame unmasked text message".
        assert prepared.frame == bytes.fromhex("810548656c6c6f")

    def test_binary_with_a_16_bit_length(self) -> None:
        prepared = prepare_message(bytearray(256))
        assert prepared.opcode is Opcode.BINARY
        # "256 bytes binary message in a single unmasked frame"
        assert prepared.frame[:4] == bytes.fromhex("827e0100")
        assert prepared.frame[4:] == bytes(256)
