"""Tests for reading client frames and assembling messages (RFC 6455 sections 5.1-5.7, 10.4;
RFC 7692 section 6).

Client frames are built by ``wsserver.testing.wire.client_frame``, an encoder
written from section 5.2, independent of the code under test (here with an
explicit masking key); wsproto's client serves as a second, independent
encoder.
"""

from __future__ import annotations

import dataclasses
import functools
import gc
import itertools
import operator
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from wsproto.extensions import PerMessageDeflate as WsprotoDeflate
from wsproto.frame_protocol import FrameProtocol

from wsserver.protocol import masking
from wsserver.protocol import reader as reader_module
from wsserver.protocol.codes import CloseCode, Opcode
from wsserver.protocol.events import BinaryMessage, TextMessage
from wsserver.protocol.exceptions import FrameError
from wsserver.protocol.extensions.permessage_deflate import (
    DeflateSettings,
    PerMessageDeflate,
    negotiate,
)
from wsserver.protocol.headers import ExtensionOffer
from wsserver.protocol.reader import ControlFrame, MessageReader, ReadResult
from wsserver.protocol.settings import ProtocolSettings
from wsserver.testing import wire

from ._counting import CountingMask

#: RFC 6455 section 5.7's masking key.
MASK = b"\x37\xfa\x21\x3d"

Result = TextMessage | BinaryMessage | ControlFrame

#: Test ids for opcodes: their names.
NAME = operator.attrgetter("name")

# --------------------------------------------------------------------------
# Helpers: the independent client encoder, and driving the reader
# --------------------------------------------------------------------------


#: The frames: ``wsserver.testing.wire``'s encoder (written from section 5.2,
#: independent of the code under test), with section 5.7's masking key unless
#: a test gives another, so that every frame's bytes are reproducible.
client_frame = functools.partial(wire.client_frame, mask=MASK)


def message_of(opcode: Opcode, data: bytes) -> TextMessage | BinaryMessage:
    """The event a whole text or binary message gives."""
    if opcode == Opcode.TEXT:
        return TextMessage(data=data.decode("utf-8"))
    return BinaryMessage(data=data)


def drain(reader: MessageReader) -> list[Result]:
    results: list[Result] = []
    while (result := reader.read()) is not None:
        results.append(result)
    return results


def read_whole(
    data: bytes, settings: ProtocolSettings | None = None, deflate: PerMessageDeflate | None = None
) -> list[Result]:
    reader = MessageReader(settings or ProtocolSettings(), deflate)
    reader.feed(data)
    return drain(reader)


def read_pieces(
    pieces: Iterable[bytes],
    settings: ProtocolSettings | None = None,
    deflate: PerMessageDeflate | None = None,
) -> list[Result]:
    reader = MessageReader(settings or ProtocolSettings(), deflate)
    results: list[Result] = []
    for piece in pieces:
        reader.feed(piece)
        results += drain(reader)
    return results


@dataclass
class Outcome:
    """What a stream gives: the results, then the error that stopped it, if any."""

    results: list[Result]
    error: CloseCode | None


def outcome(
    pieces: Iterable[bytes],
    settings: ProtocolSettings | None = None,
    deflate: PerMessageDeflate | None = None,
) -> Outcome:
    reader = MessageReader(settings or ProtocolSettings(), deflate)
    results: list[Result] = []
    try:
        for piece in pieces:
            reader.feed(piece)
            while (result := reader.read()) is not None:
                results.append(result)
    except FrameError as error:
        return Outcome(results, error.code)
    return Outcome(results, None)


def failure(
    data: bytes, settings: ProtocolSettings | None = None, deflate: PerMessageDeflate | None = None
) -> CloseCode:
    """Feed ``data`` whole; check that it fails with no result first; return the code."""
    result = outcome([data], settings, deflate)
    assert result.results == []
    assert result.error is not None, "the reader accepted the input"
    return result.error


def split(data: bytes, cuts: Iterable[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)] or [data]


def chunks(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def random_text(size: int, seed: int = 0) -> bytes:
    """ASCII that compresses about as badly as prose: ~6 bits per byte."""
    alphabet = b"abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789,."
    table = bytes(alphabet[i % len(alphabet)] for i in range(256))
    return random.Random(seed).randbytes(size).translate(table)


# permessage-deflate, negotiated the way the connection does it.

DEFLATE_OFFERS: list[tuple[tuple[str, str | None], ...]] = [
    (),
    (("client_max_window_bits", None),),
    (("client_max_window_bits", "9"), ("client_no_context_takeover", None)),
    (("client_max_window_bits", "15"), ("server_no_context_takeover", None)),
]


def deflate_pair(
    params: tuple[tuple[str, str | None], ...] = (),
) -> tuple[PerMessageDeflate, PerMessageDeflate]:
    """(our codec, a client's codec) for an offer: the client compresses what we inflate."""
    negotiated = negotiate(
        [ExtensionOffer(name="permessage-deflate", params=params)], DeflateSettings()
    )
    assert negotiated is not None
    _, ours = negotiated
    # Our own codec, mirrored, stands in for the client's compressor: its
    # "server" side is what the client sends with.
    client = PerMessageDeflate(
        server_no_context_takeover=ours.client_no_context_takeover,
        server_max_window_bits=ours.client_max_window_bits,
        client_no_context_takeover=ours.server_no_context_takeover,
        client_max_window_bits=ours.server_max_window_bits,
        # A client compresses as hard as it likes: a bomb is made with
        # zlib's best level, whatever our own default.
        compression_level=9,
    )
    return ours, client


def compressed_frames(
    client: PerMessageDeflate,
    opcode: Opcode,
    message: bytes,
    cuts: Sequence[int] = (),
    masks: Sequence[bytes] = (MASK,),
) -> bytes:
    """One compressed message, its compressed payload split into frames at ``cuts``.

    RFC 7692 section 6.1: RSV1 "on the first frame of a message", and the
    payload of the fragments is the compressed data, split anywhere.
    """
    payload = client.compress(message, True)
    parts = split(payload, cuts)
    out = b""
    for i, part in enumerate(parts):
        out += client_frame(
            opcode if i == 0 else Opcode.CONTINUATION,
            part,
            fin=i == len(parts) - 1,
            rsv1=i == 0,
            mask=masks[i % len(masks)],
        )
    return out


# --------------------------------------------------------------------------
# The helper itself, against the RFC's bytes (section 5.7)
# --------------------------------------------------------------------------

#: "A single-frame masked text message"
RFC_MASKED_TEXT = bytes([0x81, 0x85, 0x37, 0xFA, 0x21, 0x3D, 0x7F, 0x9F, 0x4D, 0x51, 0x58])
#: "Unmasked Ping request and masked Ping response": the masked Pong.
RFC_MASKED_PONG = bytes([0x8A, 0x85, 0x37, 0xFA, 0x21, 0x3D, 0x7F, 0x9F, 0x4D, 0x51, 0x58])


def test_section_5_7_masked_examples_both_ways() -> None:
    assert client_frame(Opcode.TEXT, b"Hello") == RFC_MASKED_TEXT
    assert client_frame(Opcode.PONG, b"Hello") == RFC_MASKED_PONG
    assert read_whole(RFC_MASKED_TEXT) == [TextMessage(data="Hello")]
    assert read_whole(RFC_MASKED_PONG) == [ControlFrame(Opcode.PONG, b"Hello")]
    assert read_whole(RFC_MASKED_TEXT + RFC_MASKED_PONG + RFC_MASKED_TEXT) == [
        TextMessage(data="Hello"),
        ControlFrame(Opcode.PONG, b"Hello"),
        TextMessage(data="Hello"),
    ]


@pytest.mark.parametrize(
    "wire",
    [
        bytes([0x81, 0x05, 0x48, 0x65, 0x6C, 0x6C, 0x6F]),  # "single-frame unmasked text"
        bytes([0x01, 0x03, 0x48, 0x65, 0x6C]),  # "fragmented unmasked text", first frame
        bytes([0x89, 0x05, 0x48, 0x65, 0x6C, 0x6C, 0x6F]),  # "Unmasked Ping request"
        bytes([0x82, 0x7E, 0x01, 0x00]) + bytes(256),  # "256 bytes binary ... unmasked"
        bytes([0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0]) + bytes(65536),  # "64KiB ... unmasked"
    ],
    ids=["text", "fragment", "ping", "binary-256", "binary-64k"],
)
def test_section_5_1_rfc_unmasked_examples_are_refused(wire: bytes) -> None:
    # "The server MUST close the connection upon receiving a frame that is
    # not masked."  Seen from the second byte alone.
    assert failure(wire) == CloseCode.PROTOCOL_ERROR
    assert failure(wire[:2]) == CloseCode.PROTOCOL_ERROR


# --------------------------------------------------------------------------
# Section 5.2: opcodes
# --------------------------------------------------------------------------


def test_section_5_2_text_frame() -> None:
    assert read_whole(client_frame(Opcode.TEXT, "κόσμε".encode())) == [TextMessage(data="κόσμε")]


def test_section_5_2_binary_frame() -> None:
    payload = bytes(range(256))
    assert read_whole(client_frame(Opcode.BINARY, payload)) == [BinaryMessage(data=payload)]


@pytest.mark.parametrize("opcode", [Opcode.CLOSE, Opcode.PING, Opcode.PONG], ids=NAME)
@pytest.mark.parametrize("payload", [b"", b"\x03\xe8bye", bytes(range(125))], ids=len)
def test_section_5_2_control_frames_are_returned_raw(opcode: Opcode, payload: bytes) -> None:
    # The Close body is the connection's to parse (frames.parse_close_payload).
    (result,) = read_whole(client_frame(opcode, payload))
    assert result == ControlFrame(opcode, payload)
    assert isinstance(result, ControlFrame)
    assert type(result.payload) is bytes


def test_control_frame_is_a_frozen_slotted_dataclass() -> None:
    frame = ControlFrame(Opcode.PING, b"p")
    assert frame == ControlFrame(opcode=Opcode.PING, payload=b"p")
    assert frame != ControlFrame(Opcode.PONG, b"p")
    assert hash(frame) == hash(ControlFrame(Opcode.PING, b"p"))
    assert repr(frame) == "ControlFrame(opcode=<Opcode.PING: 9>, payload=b'p')"
    assert [field.name for field in dataclasses.fields(frame)] == ["opcode", "payload"]
    assert not hasattr(frame, "__dict__")
    with pytest.raises(dataclasses.FrozenInstanceError):
        frame.payload = b"q"  # type: ignore[misc]
    with pytest.raises(TypeError):
        ControlFrame(Opcode.PING)  # type: ignore[call-arg]


def test_section_5_4_continuation_without_a_message() -> None:
    assert failure(client_frame(Opcode.CONTINUATION, b"x")) == CloseCode.PROTOCOL_ERROR
    assert failure(client_frame(Opcode.CONTINUATION, b"", fin=False)) == CloseCode.PROTOCOL_ERROR


@pytest.mark.parametrize("opcode", [0x3, 0x4, 0x5, 0x6, 0x7, 0xB, 0xC, 0xD, 0xE, 0xF], ids=hex)
@pytest.mark.parametrize("fin", [True, False])
def test_section_5_2_reserved_opcodes(opcode: int, fin: bool) -> None:
    # "If an unknown opcode is received, the receiving endpoint MUST _Fail
    # the WebSocket Connection_."  Known from the first byte.
    frame = client_frame(opcode, b"data", fin=fin)
    assert failure(frame) == CloseCode.PROTOCOL_ERROR
    assert failure(frame[:2]) == CloseCode.PROTOCOL_ERROR


def test_section_5_2_reserved_opcode_after_a_good_frame() -> None:
    result = outcome([RFC_MASKED_TEXT + client_frame(0x3, b"")])
    assert result == Outcome([TextMessage(data="Hello")], CloseCode.PROTOCOL_ERROR)


# --------------------------------------------------------------------------
# Section 5.2: RSV bits (and RFC 7692 section 6 for RSV1)
# --------------------------------------------------------------------------

ALL_OPCODES = [Opcode.TEXT, Opcode.BINARY, Opcode.CLOSE, Opcode.PING, Opcode.PONG]


@pytest.mark.parametrize("opcode", ALL_OPCODES, ids=NAME)
@pytest.mark.parametrize(("rsv2", "rsv3"), [(True, False), (False, True), (True, True)])
@pytest.mark.parametrize("with_deflate", [False, True])
def test_section_5_2_rsv2_rsv3(opcode: Opcode, rsv2: bool, rsv3: bool, with_deflate: bool) -> None:
    # "MUST be 0 unless an extension is negotiated that defines meanings for
    # non-zero values."  permessage-deflate defines RSV1 only.
    deflate = deflate_pair()[0] if with_deflate else None
    frame = client_frame(opcode, b"", rsv2=rsv2, rsv3=rsv3)
    assert failure(frame, deflate=deflate) == CloseCode.PROTOCOL_ERROR
    assert failure(frame[:2], deflate=deflate) == CloseCode.PROTOCOL_ERROR


@pytest.mark.parametrize("opcode", [Opcode.TEXT, Opcode.BINARY], ids=NAME)
def test_section_5_2_rsv1_without_an_extension(opcode: Opcode) -> None:
    frame = client_frame(opcode, b"x", rsv1=True)
    assert failure(frame) == CloseCode.PROTOCOL_ERROR
    assert failure(frame[:2]) == CloseCode.PROTOCOL_ERROR


@pytest.mark.parametrize("opcode", [Opcode.CLOSE, Opcode.PING, Opcode.PONG], ids=NAME)
@pytest.mark.parametrize("with_deflate", [False, True])
def test_rfc7692_section_6_1_rsv1_on_a_control_frame(opcode: Opcode, with_deflate: bool) -> None:
    # RFC 7692 section 6.1: "An endpoint MUST NOT set the "Per-Message
    # Compressed" bit of control frames".
    deflate = deflate_pair()[0] if with_deflate else None
    frame = client_frame(opcode, b"", rsv1=True)
    assert failure(frame, deflate=deflate) == CloseCode.PROTOCOL_ERROR


def test_rfc7692_section_6_1_rsv1_on_a_continuation_frame() -> None:
    # "An endpoint MUST NOT set the "Per-Message Compressed" bit of [...]
    # non-first fragments of a data message."
    ours, client = deflate_pair()
    first = client_frame(Opcode.TEXT, client.compress(b"hello", True), fin=False, rsv1=True)
    rest = client_frame(Opcode.CONTINUATION, b"", rsv1=True)
    assert outcome([first + rest], deflate=ours) == Outcome([], CloseCode.PROTOCOL_ERROR)
    # Also when the message itself is not compressed.
    ours, _ = deflate_pair()
    plain = client_frame(Opcode.TEXT, b"hel", fin=False)
    assert outcome([plain + rest], deflate=ours) == Outcome([], CloseCode.PROTOCOL_ERROR)


def test_rfc7692_uncompressed_messages_still_allowed_with_deflate() -> None:
    # Section 6: "the "Per-Message Compressed" bit [...] indicates whether a
    # message is compressed or not"; clear, the message is plain.
    ours, _ = deflate_pair()
    frames = client_frame(Opcode.TEXT, b"plain") + client_frame(Opcode.BINARY, b"\x00\xff")
    assert read_whole(frames, deflate=ours) == [
        TextMessage(data="plain"),
        BinaryMessage(data=b"\x00\xff"),
    ]


# --------------------------------------------------------------------------
# Section 5.1: masking
# --------------------------------------------------------------------------


@pytest.mark.parametrize("opcode", ALL_OPCODES, ids=NAME)
def test_section_5_1_unmasked_client_frame(opcode: Opcode) -> None:
    assert failure(client_frame(opcode, b"abc", mask=None)) == CloseCode.PROTOCOL_ERROR


def test_section_5_1_unmasked_continuation() -> None:
    first = client_frame(Opcode.BINARY, b"ab", fin=False)
    rest = client_frame(Opcode.CONTINUATION, b"cd", mask=None)
    assert outcome([first + rest]) == Outcome([], CloseCode.PROTOCOL_ERROR)


@pytest.mark.parametrize("mask", [b"\x00\x00\x00\x00", b"\xff\xff\xff\xff", b"\x01\x02\x03\x04"])
def test_section_5_3_any_masking_key(mask: bytes) -> None:
    payload = bytes(range(256)) * 3
    frames = client_frame(Opcode.BINARY, payload, mask=mask) + client_frame(
        Opcode.PING, payload[:125], mask=mask
    )
    assert read_whole(frames) == [
        BinaryMessage(data=payload),
        ControlFrame(Opcode.PING, payload[:125]),
    ]


# --------------------------------------------------------------------------
# Section 5.2: the payload length
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("length", "bits"),
    [(0, 16), (1, 16), (125, 16), (0, 64), (125, 64), (126, 64), (65535, 64)],
)
def test_section_5_2_length_not_minimal(length: int, bits: int) -> None:
    # "In all cases, the minimal number of bytes MUST be used to encode the
    # length".  Refused from the length bytes, before the payload.
    frame = client_frame(Opcode.BINARY, bytes(length), length_bits=bits)
    assert failure(frame) == CloseCode.PROTOCOL_ERROR
    header_size = 2 + bits // 8 + 4
    assert failure(frame[:header_size]) == CloseCode.PROTOCOL_ERROR
    assert failure(frame[: header_size - 4]) == CloseCode.PROTOCOL_ERROR


@pytest.mark.parametrize(("length", "bits"), [(126, 16), (65535, 16), (65536, 64)])
def test_section_5_2_minimal_lengths_at_the_boundaries(length: int, bits: int) -> None:
    payload = bytes(range(256)) * (length // 256) + bytes(range(length % 256))
    frame = client_frame(Opcode.BINARY, payload)
    assert frame[1] & 0x7F == (126 if bits == 16 else 127)
    assert read_whole(frame) == [BinaryMessage(data=payload)]


@pytest.mark.parametrize("length", [1 << 63, (1 << 64) - 1, (1 << 63) + 65536])
def test_section_5_2_64_bit_length_with_the_top_bit(length: int) -> None:
    # "the most significant bit MUST be 0"
    header = client_frame(Opcode.BINARY, length=length, length_bits=64)
    assert failure(header) == CloseCode.PROTOCOL_ERROR
    assert failure(header[:10]) == CloseCode.PROTOCOL_ERROR


# --------------------------------------------------------------------------
# Section 5.5: control frames
# --------------------------------------------------------------------------


@pytest.mark.parametrize("opcode", [Opcode.CLOSE, Opcode.PING, Opcode.PONG], ids=NAME)
@pytest.mark.parametrize("length", [126, 127, 65535, 65536])
def test_section_5_5_control_frame_over_125_bytes(opcode: Opcode, length: int) -> None:
    # "All control frames MUST have a payload length of 125 bytes or less"
    header = client_frame(opcode, length=length)
    assert failure(header) == CloseCode.PROTOCOL_ERROR
    assert failure(client_frame(opcode, bytes(length))) == CloseCode.PROTOCOL_ERROR


@pytest.mark.parametrize("opcode", [Opcode.CLOSE, Opcode.PING, Opcode.PONG], ids=NAME)
def test_section_5_5_fragmented_control_frame(opcode: Opcode) -> None:
    # "... and MUST NOT be fragmented."
    frame = client_frame(opcode, b"x", fin=False)
    assert failure(frame) == CloseCode.PROTOCOL_ERROR
    assert failure(frame[:2]) == CloseCode.PROTOCOL_ERROR


def test_section_5_5_control_frame_waits_for_its_whole_payload() -> None:
    frame = client_frame(Opcode.PING, bytes(range(125)))
    reader = MessageReader(ProtocolSettings())
    for byte in frame[:-1]:
        reader.feed(bytes([byte]))
        assert reader.read() is None
    reader.feed(frame[-1:])
    assert reader.read() == ControlFrame(Opcode.PING, bytes(range(125)))
    assert reader.buffered == 0


# --------------------------------------------------------------------------
# Section 5.4: fragmentation
# --------------------------------------------------------------------------


def fragments(opcode: Opcode, parts: Sequence[bytes], **kwargs) -> bytes:
    return b"".join(
        client_frame(
            opcode if i == 0 else Opcode.CONTINUATION, part, fin=i == len(parts) - 1, **kwargs
        )
        for i, part in enumerate(parts)
    )


def test_section_5_4_fragmented_text() -> None:
    # The euro sign's three bytes land in three fragments: UTF-8 is checked
    # over the message, not per frame.
    parts = [b"Hel", b"lo \xe2", b"\x82", b"\xac!"]
    assert read_whole(fragments(Opcode.TEXT, parts)) == [TextMessage(data="Hello €!")]


def test_section_5_4_fragmented_binary() -> None:
    parts = [bytes([i]) * i for i in range(1, 20)]
    assert read_whole(fragments(Opcode.BINARY, parts)) == [BinaryMessage(data=b"".join(parts))]


def test_section_5_4_control_frames_interleaved() -> None:
    # "Control frames (see Section 5.5) MAY be injected in the middle of a
    # fragmented message."
    stream = (
        client_frame(Opcode.TEXT, b"one ", fin=False)
        + client_frame(Opcode.PING, b"p1")
        + client_frame(Opcode.CONTINUATION, b"two ", fin=False)
        + client_frame(Opcode.PONG, b"p2")
        + client_frame(Opcode.PING, b"")
        + client_frame(Opcode.CONTINUATION, b"three")
        + client_frame(Opcode.CLOSE, b"\x03\xe8")
    )
    expected: list[Result] = [
        ControlFrame(Opcode.PING, b"p1"),
        ControlFrame(Opcode.PONG, b"p2"),
        ControlFrame(Opcode.PING, b""),
        TextMessage(data="one two three"),
        ControlFrame(Opcode.CLOSE, b"\x03\xe8"),
    ]
    assert read_whole(stream) == expected
    assert read_pieces(chunks(stream, 1)) == expected


@pytest.mark.parametrize("opcode", [Opcode.TEXT, Opcode.BINARY], ids=NAME)
@pytest.mark.parametrize("inner", [Opcode.TEXT, Opcode.BINARY], ids=NAME)
def test_section_5_4_new_data_frame_inside_a_fragmented_message(
    opcode: Opcode, inner: Opcode
) -> None:
    # "The fragments of one message MUST NOT be interleaved between the
    # fragments of another message".
    stream = client_frame(opcode, b"a", fin=False) + client_frame(inner, b"b")
    assert outcome([stream]) == Outcome([], CloseCode.PROTOCOL_ERROR)


def test_section_5_4_continuation_after_the_message_ended() -> None:
    stream = fragments(Opcode.TEXT, [b"a", b"b"]) + client_frame(Opcode.CONTINUATION, b"c")
    assert outcome([stream]) == Outcome([TextMessage(data="ab")], CloseCode.PROTOCOL_ERROR)


@pytest.mark.parametrize(
    "parts",
    [[b"", b""], [b"", b"abc"], [b"abc", b""], [b"", b"", b"a", b"", b"bc", b""]],
    ids=str,
)
@pytest.mark.parametrize("opcode", [Opcode.TEXT, Opcode.BINARY], ids=NAME)
def test_section_5_4_empty_fragments(opcode: Opcode, parts: list[bytes]) -> None:
    data = b"".join(parts)
    expected = message_of(opcode, data)
    assert read_whole(fragments(opcode, parts)) == [expected]
    assert read_pieces(chunks(fragments(opcode, parts), 1)) == [expected]


def test_section_5_6_zero_length_messages() -> None:
    stream = (
        client_frame(Opcode.TEXT, b"")
        + client_frame(Opcode.BINARY, b"")
        + fragments(Opcode.TEXT, [b"", b""])
        + fragments(Opcode.BINARY, [b"", b"", b""])
    )
    expected: list[Result] = [
        TextMessage(data=""),
        BinaryMessage(data=b""),
        TextMessage(data=""),
        BinaryMessage(data=b""),
    ]
    assert read_whole(stream) == expected
    assert read_pieces(chunks(stream, 1)) == expected


def test_in_message_and_buffered() -> None:
    reader = MessageReader(ProtocolSettings())
    assert not reader.in_message
    assert reader.buffered == 0
    rest = client_frame(Opcode.CONTINUATION, b"cd")
    reader.feed(client_frame(Opcode.TEXT, b"ab", fin=False) + rest[:1])
    assert reader.read() is None
    assert reader.in_message
    # The first frame was consumed; the first byte of the next header waits.
    assert reader.buffered == 1
    reader.feed(rest[1:])
    assert reader.read() == TextMessage(data="abcd")
    assert not reader.in_message
    assert reader.buffered == 0


# --------------------------------------------------------------------------
# Section 5.6 and 8.1: UTF-8, failing fast
# --------------------------------------------------------------------------


@pytest.mark.parametrize("payload", [b"\xff", b"ok\xc0\xaf", b"\xed\xa0\x80", b"abc\xe2\x82"])
def test_section_8_1_invalid_text_frame(payload: bytes) -> None:
    assert failure(client_frame(Opcode.TEXT, payload)) == CloseCode.INVALID_PAYLOAD_DATA


def test_section_8_1_text_truncated_at_the_end_of_a_fragmented_message() -> None:
    stream = fragments(Opcode.TEXT, [b"abc\xe2", b"\x82"])
    assert failure(stream) == CloseCode.INVALID_PAYLOAD_DATA


def test_binary_messages_are_not_utf8_checked() -> None:
    assert read_whole(client_frame(Opcode.BINARY, b"\xff\xfe")) == [BinaryMessage(data=b"\xff\xfe")]


def test_section_8_1_fail_fast_in_a_later_fragment() -> None:
    # Autobahn 6.4.1: the bad bytes arrive in the second of three fragments.
    first = client_frame(Opcode.TEXT, "κόσμε".encode(), fin=False)
    second = client_frame(Opcode.CONTINUATION, b"\xf4\x90\x80\x80", fin=False)
    reader = MessageReader(ProtocolSettings())
    reader.feed(first)
    assert reader.read() is None
    reader.feed(second[:7])  # header and the first byte, 0xf4: still possible
    assert reader.read() is None
    reader.feed(second[7:8])  # 0x90: F4 90 is past U+10FFFF
    with pytest.raises(FrameError) as info:
        reader.read()
    assert info.value.code == CloseCode.INVALID_PAYLOAD_DATA


MIB = 1 << 20


def test_partial_1_mib_text_frame_gives_nothing_until_complete() -> None:
    text = random_text(MIB, seed=1)
    stream = client_frame(Opcode.TEXT, text)
    reader = MessageReader(ProtocolSettings())
    pieces = chunks(stream, 1000)
    for piece in pieces[:-1]:
        reader.feed(piece)
        assert reader.read() is None
        assert reader.in_message
        assert reader.buffered == 0  # every byte is taken as it arrives
    reader.feed(pieces[-1])
    assert reader.read() == TextMessage(data=text.decode())
    assert not reader.in_message


@pytest.mark.parametrize("position", [0, 500, 985])
def test_section_8_1_fail_fast_in_the_first_piece_of_a_1_mib_frame(position: int) -> None:
    text = bytearray(random_text(MIB, seed=2))
    text[position] = 0xFF
    stream = client_frame(Opcode.TEXT, bytes(text))
    reader = MessageReader(ProtocolSettings())
    reader.feed(stream[:1000])  # 14 header bytes, then 986 of payload
    with pytest.raises(FrameError) as info:
        reader.read()
    assert info.value.code == CloseCode.INVALID_PAYLOAD_DATA


@pytest.mark.parametrize("params", DEFLATE_OFFERS, ids=str)
def test_rfc7692_partial_compressed_1_mib_text(params: tuple[tuple[str, str | None], ...]) -> None:
    ours, client = deflate_pair(params)
    text = random_text(MIB, seed=3)
    stream = compressed_frames(client, Opcode.TEXT, text)
    assert len(stream) > 500_000  # random letters do not compress much
    reader = MessageReader(ProtocolSettings(), ours)
    pieces = chunks(stream, 1000)
    for piece in pieces[:-1]:
        reader.feed(piece)
        assert reader.read() is None
    reader.feed(pieces[-1])
    assert reader.read() == TextMessage(data=text.decode())


@pytest.mark.parametrize("params", DEFLATE_OFFERS, ids=str)
def test_rfc7692_fail_fast_in_the_first_piece_of_a_compressed_message(
    params: tuple[tuple[str, str | None], ...],
) -> None:
    ours, client = deflate_pair(params)
    text = bytearray(random_text(MIB, seed=4))
    text[10] = 0xFF
    stream = compressed_frames(client, Opcode.TEXT, bytes(text))
    reader = MessageReader(ProtocolSettings(), ours)
    reader.feed(stream[:1000])
    with pytest.raises(FrameError) as info:
        reader.read()
    assert info.value.code == CloseCode.INVALID_PAYLOAD_DATA


# --------------------------------------------------------------------------
# Section 10.4 and 7.4.1 (1009): limits
#
# "Implementations that have implementation- and/or platform-specific
# limitations regarding the frame size or total message size after
# reassembly from multiple frames MUST protect themselves against exceeding
# those limits."  1009: "a message that is too big for it to process".
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("limit", "length"),
    [(100, 101), (100, 125), (1000, 1001), (1000, 65536), (1000, 1 << 40), (70000, 70001)],
)
@pytest.mark.parametrize("opcode", [Opcode.TEXT, Opcode.BINARY], ids=NAME)
def test_section_10_4_frame_too_big_from_the_header_alone(
    opcode: Opcode, limit: int, length: int
) -> None:
    settings = ProtocolSettings(max_frame_size=limit)
    header = client_frame(opcode, length=length)
    assert failure(header, settings) == CloseCode.MESSAGE_TOO_BIG
    # Even before the masking key: the length is enough.
    assert failure(header[:-4], settings) == CloseCode.MESSAGE_TOO_BIG


@pytest.mark.parametrize("opcode", [Opcode.TEXT, Opcode.BINARY], ids=NAME)
def test_section_10_4_frame_at_the_limit(opcode: Opcode) -> None:
    settings = ProtocolSettings(max_frame_size=300)
    assert read_whole(client_frame(opcode, b"a" * 300), settings) == [
        message_of(opcode, b"a" * 300)
    ]
    assert failure(client_frame(opcode, b"a" * 301), settings) == CloseCode.MESSAGE_TOO_BIG


def test_section_10_4_frame_limit_applies_to_each_fragment() -> None:
    settings = ProtocolSettings(max_frame_size=10, max_message_size=100)
    ok = fragments(Opcode.BINARY, [b"a" * 10] * 10)
    assert read_whole(ok, settings) == [BinaryMessage(data=b"a" * 100)]
    first = client_frame(Opcode.BINARY, b"a" * 10, fin=False)
    big = client_frame(Opcode.CONTINUATION, length=11)
    assert outcome([first + big], settings) == Outcome([], CloseCode.MESSAGE_TOO_BIG)


def test_section_10_4_message_limit_defaults_the_frame_limit() -> None:
    settings = ProtocolSettings(max_message_size=100)
    header = client_frame(Opcode.TEXT, length=101)[:2]
    assert failure(header, settings) == CloseCode.MESSAGE_TOO_BIG


@pytest.mark.parametrize("opcode", [Opcode.TEXT, Opcode.BINARY], ids=NAME)
def test_section_10_4_message_too_big_at_the_header_of_the_crossing_fragment(
    opcode: Opcode,
) -> None:
    settings = ProtocolSettings(max_message_size=100)
    start = client_frame(opcode, b"a" * 60, fin=False) + client_frame(
        Opcode.CONTINUATION, b"b" * 30, fin=False
    )
    reader = MessageReader(settings)
    reader.feed(start)
    assert reader.read() is None
    # 60 + 30 + 10 fits exactly ...
    fits = MessageReader(settings)
    fits.feed(start + client_frame(Opcode.CONTINUATION, b"c" * 10))
    expected = b"a" * 60 + b"b" * 30 + b"c" * 10
    assert fits.read() == message_of(opcode, expected)
    # ... one more byte does not, and the header alone says so.
    reader.feed(client_frame(Opcode.CONTINUATION, length=11)[:2])
    with pytest.raises(FrameError) as info:
        reader.read()
    assert info.value.code == CloseCode.MESSAGE_TOO_BIG


def test_section_10_4_limit_is_per_message() -> None:
    settings = ProtocolSettings(max_message_size=100)
    stream = fragments(Opcode.BINARY, [b"a" * 50, b"b" * 50]) * 3 + client_frame(
        Opcode.BINARY, b"c" * 100
    )
    assert read_whole(stream, settings) == [BinaryMessage(data=b"a" * 50 + b"b" * 50)] * 3 + [
        BinaryMessage(data=b"c" * 100)
    ]


@pytest.mark.parametrize("limit", [1, 3, 10])
def test_section_10_4_too_many_fragments(limit: int) -> None:
    settings = ProtocolSettings(max_fragments=limit)
    # Exactly the limit is fine, empty fragments included ...
    assert read_whole(fragments(Opcode.BINARY, [b""] * limit), settings) == [
        BinaryMessage(data=b"")
    ]
    # ... one more fails at its header, before its payload.
    head = b"".join(
        client_frame(Opcode.BINARY if i == 0 else Opcode.CONTINUATION, b"x", fin=False)
        for i in range(limit)
    )
    extra = client_frame(Opcode.CONTINUATION, b"x")
    assert outcome([head + extra[:6]], settings) == Outcome([], CloseCode.MESSAGE_TOO_BIG)


def test_section_10_4_fragment_count_is_per_message() -> None:
    settings = ProtocolSettings(max_fragments=2)
    stream = fragments(Opcode.TEXT, [b"a", b"b"]) * 5
    assert read_whole(stream, settings) == [TextMessage(data="ab")] * 5


def test_section_10_4_compressed_message_too_big_after_inflating() -> None:
    ours, client = deflate_pair()
    bomb = compressed_frames(client, Opcode.BINARY, bytes(MIB + 1))
    assert len(bomb) < 2000
    assert failure(bomb, ProtocolSettings(), ours) == CloseCode.MESSAGE_TOO_BIG
    ours, client = deflate_pair()
    exact = compressed_frames(client, Opcode.BINARY, bytes(MIB), cuts=[5, 50])
    assert read_whole(exact, ProtocolSettings(), ours) == [BinaryMessage(data=bytes(MIB))]


def test_section_10_4_compressed_frame_limit_is_on_the_wire_size() -> None:
    ours, client = deflate_pair()
    settings = ProtocolSettings(max_frame_size=100, max_message_size=10_000)
    # 10,000 zeros compress to far fewer than 100 bytes: accepted.
    small = compressed_frames(client, Opcode.BINARY, bytes(10_000))
    assert read_whole(small, settings, ours) == [BinaryMessage(data=bytes(10_000))]
    # Incompressible bytes exceed the frame limit on the wire.
    ours, client = deflate_pair()
    noisy = compressed_frames(client, Opcode.BINARY, random.Random(5).randbytes(200))
    assert failure(noisy, settings, ours) == CloseCode.MESSAGE_TOO_BIG


# --------------------------------------------------------------------------
# Splitting the input anywhere
# --------------------------------------------------------------------------


def test_every_split_of_every_header_shape() -> None:
    # Each header form (7-, 16- and 64-bit length; data and control), cut at
    # every byte, including inside the masking key.
    frames = [
        client_frame(Opcode.TEXT, b"Hello"),
        client_frame(Opcode.BINARY, bytes(300)),
        client_frame(Opcode.BINARY, b"\x01" * 65536),
        client_frame(Opcode.PING, b"ping"),
        client_frame(Opcode.TEXT, b"a", fin=False),
        client_frame(Opcode.CONTINUATION, b"", fin=False),
        client_frame(Opcode.CONTINUATION, b"b"),
    ]
    stream = b"".join(frames)
    expected: list[Result] = [
        TextMessage(data="Hello"),
        BinaryMessage(data=bytes(300)),
        BinaryMessage(data=b"\x01" * 65536),
        ControlFrame(Opcode.PING, b"ping"),
        TextMessage(data="ab"),
    ]
    assert read_whole(stream) == expected
    for boundary in itertools.accumulate((len(f) for f in frames), initial=0):
        for offset in range(15):
            cut = boundary + offset
            assert read_pieces([stream[:cut], stream[cut:]]) == expected, cut


def test_byte_by_byte_small_frames() -> None:
    stream = RFC_MASKED_TEXT + client_frame(Opcode.BINARY, bytes(200)) + RFC_MASKED_PONG
    reader = MessageReader(ProtocolSettings())
    results = []
    for i, byte in enumerate(stream):
        reader.feed(bytes([byte]))
        result = reader.read()
        if result is not None:
            results.append((i, result))
    assert results == [
        (10, TextMessage(data="Hello")),
        (10 + 208, BinaryMessage(data=bytes(200))),
        (10 + 208 + 11, ControlFrame(Opcode.PONG, b"Hello")),
    ]


# --------------------------------------------------------------------------
# Linear cost
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("opcode", "size"),
    [(Opcode.BINARY, MIB), (Opcode.TEXT, 256 * 1024)],
    ids=["binary-1MiB", "text-256KiB"],
)
def test_one_byte_pieces_cost_linear_work(
    opcode: Opcode, size: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Work is counted, not timed: the receive buffer never holds more than
    # a header's worth of bytes (so no byte is copied or scanned again and
    # again), and every payload byte is unmasked exactly once.
    if opcode == Opcode.TEXT:
        # Characters of 1 to 4 bytes: every byte-by-byte state of the decoder.
        payload = ("aé€\U0001f600" * (size // 10)).encode()
    else:
        payload = random.Random(6).randbytes(size)
    stream = client_frame(opcode, payload)
    counter = CountingMask().install(monkeypatch)
    reader = MessageReader(ProtocolSettings())
    largest = 0
    results: list[tuple[int, ReadResult]] = []
    view = memoryview(stream)
    for i in range(len(stream)):
        reader.feed(view[i : i + 1])
        largest = max(largest, reader.buffered)
        result = reader.read()
        if result is not None:
            results.append((i, result))
    assert results == [(len(stream) - 1, message_of(opcode, payload))]
    assert largest <= 14  # the longest header: 2 + 8 + 4
    assert counter.bytes == len(payload)
    assert counter.calls == len(payload)


# --------------------------------------------------------------------------
# Property tests
# --------------------------------------------------------------------------

masks = st.binary(min_size=4, max_size=4)
control_opcodes = st.sampled_from([Opcode.PING, Opcode.PONG, Opcode.CLOSE])
controls = st.tuples(control_opcodes, st.binary(max_size=125), masks)


@dataclass
class Message:
    opcode: Opcode
    data: bytes
    cuts: list[int]  # where the (possibly compressed) payload is split into frames
    masks: list[bytes]
    interleaved: list[tuple[Opcode, bytes, bytes]]  # control frames between fragments
    compressed: bool

    @property
    def result(self) -> Result:
        return message_of(self.opcode, self.data)


@st.composite
def messages(draw: st.DrawFn, compressible: bool = False) -> Message:
    opcode = draw(st.sampled_from([Opcode.TEXT, Opcode.BINARY]))
    if opcode == Opcode.TEXT:
        data = draw(st.text(max_size=200)).encode()
    else:
        data = draw(st.binary(max_size=200))
    repeat = draw(st.sampled_from([1, 1, 1, 2, 700]))  # sometimes past 126 / 65,536 bytes
    data *= repeat
    return Message(
        opcode=opcode,
        data=data,
        cuts=draw(st.lists(st.integers(min_value=0, max_value=1 << 20), max_size=4)),
        masks=draw(st.lists(masks, min_size=1, max_size=5)),
        interleaved=draw(st.lists(controls, max_size=3)),
        compressed=compressible and draw(st.booleans()),
    )


Item = Message | tuple[Opcode, bytes, bytes]


def stream_items(compressible: bool = False, min_size: int = 0) -> st.SearchStrategy[list[Item]]:
    return st.lists(st.one_of(messages(compressible), controls), min_size=min_size, max_size=6)


def encode_items(
    items: Sequence[Item], client: PerMessageDeflate | None = None
) -> tuple[bytes, list[Result]]:
    """The client's bytes for ``items``, and the results they must give, in order.

    A message's control frames go between its fragments (as many as there
    are gaps), so they come out before the message.
    """
    out = b""
    results: list[Result] = []
    for item in items:
        if not isinstance(item, Message):
            opcode, payload, mask = item
            out += client_frame(opcode, payload, mask=mask)
            results.append(ControlFrame(opcode, payload))
            continue
        if item.compressed:
            assert client is not None
            payload = client.compress(item.data, True)
        else:
            payload = item.data
        parts = split(payload, item.cuts)
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            out += client_frame(
                item.opcode if i == 0 else Opcode.CONTINUATION,
                part,
                fin=last,
                rsv1=item.compressed and i == 0,
                mask=item.masks[i % len(item.masks)],
            )
            if not last and i < len(item.interleaved):
                opcode, control, mask = item.interleaved[i]
                out += client_frame(opcode, control, mask=mask)
                results.append(ControlFrame(opcode, control))
        results.append(item.result)
    return out, results


cut_lists = st.lists(st.integers(min_value=0, max_value=1 << 21), max_size=12)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(items=stream_items(), cuts=cut_lists)
def test_property_any_split_gives_the_same_results(items: list[Item], cuts: list[int]) -> None:
    stream, expected = encode_items(items)
    assert read_whole(stream) == expected
    assert read_pieces(split(stream, cuts)) == expected


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(
    items=stream_items(compressible=True),
    cuts=cut_lists,
    params=st.sampled_from(DEFLATE_OFFERS),
)
def test_property_any_split_gives_the_same_results_with_deflate(
    items: list[Item], cuts: list[int], params: tuple[tuple[str, str | None], ...]
) -> None:
    # Two readers, each with its own inflater, read the same bytes: one
    # whole, one in pieces.  The client compresses with context takeover
    # unless negotiated otherwise, so the messages depend on each other.
    ours_whole, client = deflate_pair(params)
    ours_pieces, _ = deflate_pair(params)
    stream, expected = encode_items(items, client)
    assert read_whole(stream, deflate=ours_whole) == expected
    assert read_pieces(split(stream, cuts), deflate=ours_pieces) == expected


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(
    items=stream_items(min_size=1),
    flips=st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 7)), min_size=1, max_size=3),
    cuts=cut_lists,
    limits=st.sampled_from(
        [
            ProtocolSettings(),
            ProtocolSettings(max_message_size=300, max_fragments=3),
            ProtocolSettings(max_frame_size=50),
        ]
    ),
)
def test_property_corrupted_streams_fail_the_same_whatever_the_split(
    items: list[Item],
    flips: list[tuple[int, int]],
    cuts: list[int],
    limits: ProtocolSettings,
) -> None:
    # Flip a few bits of a valid stream: the reader gives the same results
    # and fails with the same code (or not at all) whether the bytes come
    # whole or in pieces, and never raises anything but FrameError.
    stream, _ = encode_items(items)
    corrupted = bytearray(stream)
    for position, bit in flips:
        corrupted[position % len(corrupted)] ^= 1 << bit
    whole = outcome([bytes(corrupted)], limits)
    assert outcome(split(bytes(corrupted), cuts), limits) == whole


@settings(max_examples=300)
@given(data=st.binary(max_size=64), cuts=cut_lists)
def test_property_random_bytes(data: bytes, cuts: list[int]) -> None:
    # Garbage, usually refused at its first header: the same either way.
    assert outcome(split(data, cuts)) == outcome([data])


LENGTHS = [0, 1, 2, 3, 4, 5, 124, 125, 126, 127, 128, 65534, 65535, 65536, 65537, 70000]


@st.composite
def frame_shapes(draw: st.DrawFn) -> tuple[Opcode, bool, bytes, bytes]:
    opcode = draw(st.sampled_from(ALL_OPCODES))
    control = opcode.is_control
    fin = True if control else draw(st.booleans())
    length = draw(
        st.one_of(
            st.sampled_from([n for n in LENGTHS if n <= 125 or not control]),
            st.integers(min_value=0, max_value=125 if control else 1000),
        )
    )
    if opcode == Opcode.TEXT:
        # Valid UTF-8 of exactly ``length`` bytes: some text, padded.
        head = draw(st.text(max_size=10)).encode()
        payload = head + b"x" * (length - len(head)) if len(head) <= length else b"x" * length
    else:
        seed = draw(st.integers(min_value=0, max_value=1 << 32))
        payload = random.Random(seed).randbytes(length)
    return opcode, fin, payload, draw(masks)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(shape=frame_shapes())
def test_property_serialise_then_parse_every_frame_shape(
    shape: tuple[Opcode, bool, bytes, bytes],
) -> None:
    opcode, fin, payload, mask = shape
    frame = client_frame(opcode, payload, fin=fin, mask=mask)
    # The header is section 5.2's minimal form.
    extended = 0 if len(payload) < 126 else 2 if len(payload) < 65536 else 8
    assert len(frame) - len(payload) == 2 + extended + 4
    reader = MessageReader(ProtocolSettings())
    reader.feed(frame)
    if opcode.is_control:
        assert reader.read() == ControlFrame(opcode, payload)
    else:
        if not fin:
            # Unfinished: nothing yet; an empty final fragment completes it.
            assert reader.read() is None
            reader.feed(client_frame(Opcode.CONTINUATION, b"", mask=mask))
        assert reader.read() == message_of(opcode, payload)
    assert reader.read() is None
    assert reader.buffered == 0
    assert not reader.in_message


# --------------------------------------------------------------------------
# Differential: wsproto's client writes, we read
# --------------------------------------------------------------------------


@dataclass
class WsprotoMessage:
    """A message for wsproto's ``send_data``, in fragments (text is sent as ``str``)."""

    text: bool
    fragments: list[bytes]


@dataclass
class WsprotoControl:
    """A ping, a pong (``payload``) or a close (``code``, ``reason``) for wsproto to send."""

    kind: str
    payload: bytes = b""
    code: int = 1000
    reason: str = ""


WsprotoItem = WsprotoMessage | WsprotoControl

wsproto_messages = st.one_of(
    st.builds(
        WsprotoMessage,
        text=st.just(True),
        fragments=st.lists(st.text(max_size=100).map(str.encode), min_size=1, max_size=4),
    ),
    st.builds(
        WsprotoMessage,
        text=st.just(False),
        fragments=st.lists(st.binary(max_size=100), min_size=1, max_size=4),
    ),
    # One large binary message, past the 16-bit length (made from a seed:
    # hypothesis is slow to draw 64 KiB).
    st.builds(
        lambda seed, size: WsprotoMessage(False, [random.Random(seed).randbytes(size)]),
        st.integers(min_value=0),
        st.integers(min_value=65_000, max_value=70_000),
    ),
)
wsproto_controls = st.one_of(
    st.builds(
        WsprotoControl, kind=st.sampled_from(["ping", "pong"]), payload=st.binary(max_size=125)
    ),
    st.builds(
        WsprotoControl,
        kind=st.just("close"),
        code=st.sampled_from([1000, 1001, 1003, 1008, 1011, 3000, 4999]),
        reason=st.text(max_size=30),  # at most 120 bytes: wsproto truncates beyond 123
    ),
)


def wsproto_stream(
    items: Sequence[WsprotoItem], client: FrameProtocol
) -> tuple[bytes, list[Result]]:
    """wsproto's client bytes for ``items``, and the results they must give."""
    out = b""
    expected: list[Result] = []
    for item in items:
        if isinstance(item, WsprotoMessage):
            for i, fragment in enumerate(item.fragments):
                data = fragment.decode() if item.text else fragment
                out += client.send_data(data, fin=i == len(item.fragments) - 1)
            expected.append(
                message_of(Opcode.TEXT if item.text else Opcode.BINARY, b"".join(item.fragments))
            )
        elif item.kind == "ping":
            out += client.ping(item.payload)
            expected.append(ControlFrame(Opcode.PING, item.payload))
        elif item.kind == "pong":
            out += client.pong(item.payload)
            expected.append(ControlFrame(Opcode.PONG, item.payload))
        else:
            out += client.close(item.code, item.reason)
            expected.append(
                ControlFrame(Opcode.CLOSE, item.code.to_bytes(2, "big") + item.reason.encode())
            )
    return out, expected


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(items=st.lists(st.one_of(wsproto_messages, wsproto_controls), max_size=6), cuts=cut_lists)
def test_differential_wsproto_client_frames(items: list[WsprotoItem], cuts: list[int]) -> None:
    stream, expected = wsproto_stream(items, FrameProtocol(client=True, extensions=[]))
    assert read_whole(stream) == expected
    assert read_pieces(split(stream, cuts)) == expected


#: (client_no_context_takeover, server_no_context_takeover, client bits, server bits)
WSPROTO_DEFLATE = [
    (False, False, None, None),
    (True, False, None, None),
    (False, True, 9, None),
    (True, True, 12, 10),
    (False, False, 15, 15),
    (False, False, 9, 9),
]


def wsproto_deflate_client(
    client_nct: bool, server_nct: bool, client_bits: int | None, server_bits: int | None
) -> tuple[FrameProtocol, PerMessageDeflate]:
    theirs = WsprotoDeflate(
        client_no_context_takeover=client_nct,
        server_no_context_takeover=server_nct,
        client_max_window_bits=client_bits,
        server_max_window_bits=server_bits,
    )
    offer = theirs.offer()
    assert isinstance(offer, str)
    params = []
    for part in offer.split(";"):
        name, _, value = part.strip().partition("=")
        params.append((name, value or None))
    negotiated = negotiate(
        [ExtensionOffer(name="permessage-deflate", params=tuple(params))], DeflateSettings()
    )
    assert negotiated is not None
    response, ours = negotiated
    theirs.finalize(response)
    assert theirs.client_max_window_bits == ours.client_max_window_bits
    return FrameProtocol(client=True, extensions=[theirs]), ours


@pytest.mark.parametrize("params", WSPROTO_DEFLATE, ids=str)
def test_differential_wsproto_permessage_deflate(
    params: tuple[bool, bool, int | None, int | None],
) -> None:
    client, ours = wsproto_deflate_client(*params)
    text = random_text(5000, seed=7)
    items: list[WsprotoItem] = [
        WsprotoMessage(True, [b"hello"]),
        # The second time, with context takeover, a back-reference.
        WsprotoMessage(True, [b"hello"]),
        WsprotoMessage(True, [text]),
        WsprotoMessage(True, [text[:1000], b"", text[1000:3000], text[3000:]]),
        WsprotoControl("ping", b"between"),
        WsprotoMessage(False, [random_text(70_000, seed=8)]),
        WsprotoMessage(False, [bytes(100_000)]),
        WsprotoMessage(True, [b""]),
        WsprotoMessage(False, [b""]),
        WsprotoControl("close", code=1000, reason="bye"),
        WsprotoMessage(True, [text]),
    ]
    stream, expected = wsproto_stream(items, client)
    assert read_pieces(chunks(stream, 777), deflate=ours) == expected


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
@given(
    items=st.lists(st.one_of(wsproto_messages, wsproto_controls), max_size=6),
    params=st.sampled_from(WSPROTO_DEFLATE),
    cuts=cut_lists,
)
def test_property_differential_wsproto_permessage_deflate(
    items: list[WsprotoItem],
    params: tuple[bool, bool, int | None, int | None],
    cuts: list[int],
) -> None:
    client, ours = wsproto_deflate_client(*params)
    stream, expected = wsproto_stream(items, client)
    assert read_pieces(split(stream, cuts), deflate=ours) == expected


# --------------------------------------------------------------------------
# Large single-frame binary messages: unmasked into one payload buffer
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "size",
    [
        reader_module._PAYLOAD_BUFFER_FROM - 1,
        reader_module._PAYLOAD_BUFFER_FROM,
        100_003,
    ],
)
@pytest.mark.parametrize("seed", range(3))
def test_large_binary_frame_split_anywhere(size: int, seed: int) -> None:
    rng = random.Random(seed * 1000 + size)
    payload = rng.randbytes(size)
    stream = client_frame(Opcode.BINARY, payload) + client_frame(Opcode.PING, b"after")
    reader = MessageReader(ProtocolSettings())
    results: list[ReadResult] = []
    position = 0
    while position < len(stream):
        step = rng.randrange(1, 40_000)
        reader.feed(stream[position : position + step])
        position += step
        while (result := reader.read()) is not None:
            results.append(result)
        if not results and position >= 14:
            # Mid-message (past the longest header): the reader says so (the
            # connection's close handling relies on it).
            assert reader.in_message
    assert results == [BinaryMessage(data=payload), ControlFrame(Opcode.PING, b"after")]
    assert not reader.in_message


def test_large_binary_frame_then_a_new_message_then_a_fragmented_one() -> None:
    big = bytes(range(256)) * 300
    stream = (
        client_frame(Opcode.BINARY, big)
        + client_frame(Opcode.TEXT, b"small")
        + client_frame(Opcode.BINARY, big[:20_000], fin=False)
        + client_frame(Opcode.CONTINUATION, big[20_000:])
    )
    reader = MessageReader(ProtocolSettings())
    results = []
    for start in range(0, len(stream), 7_000):
        reader.feed(stream[start : start + 7_000])
        while (result := reader.read()) is not None:
            results.append(result)
    assert results == [
        BinaryMessage(data=big),
        TextMessage(data="small"),
        BinaryMessage(data=big),
    ]


def test_large_binary_frame_over_the_limit_fails_before_any_allocation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refuse(length: int, mask: bytes) -> masking.PayloadBufferType:
        raise AssertionError("no buffer may be allocated for a frame over the limit")

    monkeypatch.setattr(reader_module, "PayloadBuffer", refuse)
    reader = MessageReader(ProtocolSettings(max_message_size=100_000))
    reader.feed(client_frame(Opcode.BINARY, bytes(100_001))[:20])
    with pytest.raises(FrameError) as caught:
        reader.read()
    assert caught.value.code == CloseCode.MESSAGE_TOO_BIG


def test_a_parsed_chunk_is_not_kept() -> None:
    # An idle connection must not hold its last read: once every byte of a
    # chunk is parsed, the reader lets go of it (measured: 4 KiB more per
    # idle connection at 5,000 connections when it did not).
    chunk = client_frame(Opcode.BINARY, b"x" * 1000) + client_frame(Opcode.PING, b"p")
    reader = MessageReader(ProtocolSettings())
    reader.feed(chunk)
    assert reader.read() == BinaryMessage(data=b"x" * 1000)
    assert any(referent is chunk for referent in gc.get_referents(reader))  # half parsed
    assert reader.read() == ControlFrame(Opcode.PING, b"p")
    assert reader.read() is None
    assert not any(referent is chunk for referent in gc.get_referents(reader))
    assert reader.buffered == 0
