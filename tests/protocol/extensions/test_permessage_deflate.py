"""Tests for permessage-deflate (RFC 7692): negotiation, codec, interop, limits."""

from __future__ import annotations

import itertools
import os
import random
import tracemalloc
import zlib
from collections.abc import Iterable, Sequence
from types import SimpleNamespace
from typing import Literal, cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.extensions.permessage_deflate import (
    ClientPerMessageDeflateFactory,
)
from websockets.extensions.permessage_deflate import (
    PerMessageDeflate as WebsocketsDeflate,
)
from websockets.frames import Frame, Opcode
from websockets.headers import build_extension, parse_extension
from wsproto.extensions import PerMessageDeflate as WsprotoDeflate
from wsproto.frame_protocol import FrameProtocol, RsvBits
from wsproto.frame_protocol import Opcode as WsprotoOpcode

from wsserver.protocol.codes import CloseCode, HandshakeFailure
from wsserver.protocol.exceptions import FrameError, InvalidResponse, LocalProtocolError
from wsserver.protocol.extensions import DeflateSettings, PerMessageDeflate, negotiate
from wsserver.protocol.extensions.permessage_deflate import (
    ClientDeflateSettings,
    accept_response,
)
from wsserver.protocol.headers import ExtensionOffer

TAIL = b"\x00\x00\xff\xff"
NAME = "permessage-deflate"

Params = tuple[tuple[str, str | None], ...]


def offer(*params: tuple[str, str | None], name: str = NAME) -> ExtensionOffer:
    return ExtensionOffer(name=name, params=params)


def offers_from_header(value: str) -> list[ExtensionOffer]:
    """Parse a header value with websockets' parser (ours is not ready yet)."""
    return [
        ExtensionOffer(name=name, params=tuple(params)) for name, params in parse_extension(value)
    ]


def receive(codec: PerMessageDeflate, chunks: Iterable[bytes], limit: int = 1 << 24) -> bytes:
    """Inflate one message the way the connection does: a shrinking budget."""
    out = bytearray()
    for chunk in chunks:
        piece = codec.decompress(chunk, limit - len(out))
        assert len(piece) <= limit - len(out)
        out += piece
    piece = codec.finish_decompression(limit - len(out))
    assert len(piece) <= limit - len(out)
    out += piece
    return bytes(out)


def sample_text(size: int, seed: int = 0) -> bytes:
    """Compressible text with repeats at every distance up to ``size``."""
    rng = random.Random(seed)
    letters = b"abcdefghijklmnop"
    words = [bytes(rng.choice(letters) for _ in range(rng.randint(2, 9))) for _ in range(200)]
    out = bytearray()
    while len(out) < size:
        out += rng.choice(words) + b" "
    return bytes(out[:size])


def split(data: bytes, points: Iterable[int]) -> list[bytes]:
    cuts = sorted({p % (len(data) + 1) for p in points} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(cuts)]


# --------------------------------------------------------------------------
# Settings
# --------------------------------------------------------------------------


class TestSettings:
    def test_defaults_are_memory_conscious(self) -> None:
        s = DeflateSettings()
        assert (s.server_max_window_bits, s.client_max_window_bits, s.mem_level) == (12, 12, 5)
        assert not s.server_no_context_takeover and not s.client_no_context_takeover
        assert (s.compression_level, s.min_size) == (1, 64)

    @pytest.mark.parametrize(
        "kwargs",
        [
            {"server_max_window_bits": 7},
            {"server_max_window_bits": 16},
            {"client_max_window_bits": 7},
            {"client_max_window_bits": 16},
            {"compression_level": -2},
            {"compression_level": 10},
            {"mem_level": 0},
            {"mem_level": 10},
            {"min_size": -1},
        ],
    )
    def test_out_of_range_rejected(self, kwargs: dict[str, int]) -> None:
        with pytest.raises(LocalProtocolError):
            DeflateSettings(**kwargs)  # type: ignore[arg-type]

    @pytest.mark.parametrize(
        "kwargs",
        [
            {"server_max_window_bits": 8, "client_max_window_bits": 8},
            {"server_max_window_bits": 15, "client_max_window_bits": 15},
            {"compression_level": -1, "mem_level": 1, "min_size": 0},
            {"compression_level": 9, "mem_level": 9},
        ],
    )
    def test_boundaries_accepted(self, kwargs: dict[str, int]) -> None:
        s = DeflateSettings(**kwargs)  # type: ignore[arg-type]
        for key, value in kwargs.items():
            assert getattr(s, key) == value

    def test_codec_validates_its_parameters(self) -> None:
        with pytest.raises(LocalProtocolError):
            PerMessageDeflate(server_max_window_bits=16)
        with pytest.raises(LocalProtocolError):
            PerMessageDeflate(client_max_window_bits=7)

    @pytest.mark.parametrize("data", [b"", b"\x00"])
    def test_negative_max_length_is_a_caller_bug(self, data: bytes) -> None:
        with pytest.raises(LocalProtocolError):
            PerMessageDeflate().decompress(data, -1)
        with pytest.raises(LocalProtocolError):
            PerMessageDeflate().finish_decompression(-1)


# --------------------------------------------------------------------------
# Negotiation
# --------------------------------------------------------------------------

S = "server_no_context_takeover"
C = "client_no_context_takeover"
SB = "server_max_window_bits"
CB = "client_max_window_bits"

# (offered params, response, (server_nct, client_nct, server_bits, client_bits))
# with the default settings: 12-bit windows, context takeover allowed.
NEGOTIATION_TABLE: list[tuple[Params, str | None, tuple[bool, bool, int, int] | None]] = [
    ((), NAME, (False, False, 12, 15)),
    # server_no_context_takeover
    (((S, None),), f"{NAME}; {S}", (True, False, 12, 15)),
    (((S, "1"),), None, None),
    (((S, ""),), None, None),
    # client_no_context_takeover: echoed
    (((C, None),), f"{NAME}; {C}", (False, True, 12, 15)),
    (((C, "x"),), None, None),
    # server_max_window_bits: a value 8..15 is required
    (((SB, None),), None, None),
    (((SB, "7"),), None, None),
    (((SB, "8"),), f"{NAME}; {SB}=8", (False, False, 8, 15)),
    (((SB, "9"),), f"{NAME}; {SB}=9", (False, False, 9, 15)),
    (((SB, "10"),), f"{NAME}; {SB}=10", (False, False, 10, 15)),
    (((SB, "12"),), f"{NAME}; {SB}=12", (False, False, 12, 15)),
    (((SB, "15"),), f"{NAME}; {SB}=12", (False, False, 12, 15)),
    (((SB, "16"),), None, None),
    (((SB, "abc"),), None, None),
    (((SB, "010"),), None, None),
    (((SB, "+9"),), None, None),
    (((SB, " 9"),), None, None),
    (((SB, ""),), None, None),
    # client_max_window_bits: no value, or 8..15
    (((CB, None),), f"{NAME}; {CB}=12", (False, False, 12, 12)),
    (((CB, "7"),), None, None),
    (((CB, "8"),), f"{NAME}; {CB}=8", (False, False, 12, 8)),
    (((CB, "9"),), f"{NAME}; {CB}=9", (False, False, 12, 9)),
    (((CB, "10"),), f"{NAME}; {CB}=10", (False, False, 12, 10)),
    (((CB, "15"),), f"{NAME}; {CB}=12", (False, False, 12, 12)),
    (((CB, "16"),), None, None),
    (((CB, "abc"),), None, None),
    (((CB, "08"),), None, None),
    (((CB, ""),), None, None),
    # all together, in any order
    (
        ((S, None), (C, None), (SB, "10"), (CB, "11")),
        f"{NAME}; {S}; {C}; {SB}=10; {CB}=11",
        (True, True, 10, 11),
    ),
    (
        ((CB, None), (SB, "15"), (C, None), (S, None)),
        f"{NAME}; {S}; {C}; {SB}=12; {CB}=12",
        (True, True, 12, 12),
    ),
    # names are case-insensitive, answered in lowercase
    (
        ((S.upper(), None), ("Client_Max_Window_Bits", "9")),
        f"{NAME}; {S}; {CB}=9",
        (True, False, 12, 9),
    ),
    # duplicates
    (((S, None), (S, None)), None, None),
    (((C, None), (C, None)), None, None),
    (((SB, "10"), (SB, "10")), None, None),
    (((CB, None), (CB, "10")), None, None),
    (((S, None), (S.upper(), None)), None, None),
    # unknown parameters
    ((("x", None),), None, None),
    ((("max_window_bits", "10"),), None, None),
    (((S, None), ("mux", "1")), None, None),
]


@pytest.mark.parametrize(("params", "response", "agreed"), NEGOTIATION_TABLE)
def test_negotiation_table(
    params: Params, response: str | None, agreed: tuple[bool, bool, int, int] | None
) -> None:
    result = negotiate([offer(*params)], DeflateSettings())
    if response is None:
        assert result is None
        return
    assert result is not None
    header, codec = result
    assert header == response
    assert agreed == (
        codec.server_no_context_takeover,
        codec.client_no_context_takeover,
        codec.server_max_window_bits,
        codec.client_max_window_bits,
    )


def test_quoted_value_arrives_unquoted_and_is_accepted() -> None:
    # The header parser unquotes: client_max_window_bits="10" reaches us as 10
    # (RFC 6455 section 9.1 allows the quoted-string form of a token).
    offers = offers_from_header(f'{NAME}; {CB}="10"; {SB}="9"')
    result = negotiate(offers, DeflateSettings())
    assert result is not None
    assert result[0] == f"{NAME}; {SB}=9; {CB}=10"


@pytest.mark.parametrize(
    ("settings_kwargs", "params", "response", "agreed"),
    [
        # settings ask for no context takeover unasked
        ({"server_no_context_takeover": True}, (), f"{NAME}; {S}", (True, False, 12, 15)),
        ({"client_no_context_takeover": True}, (), f"{NAME}; {C}", (False, True, 12, 15)),
        # larger windows allowed by settings: the offer limits them
        ({"server_max_window_bits": 15}, ((SB, "11"),), f"{NAME}; {SB}=11", (False, False, 11, 15)),
        ({"server_max_window_bits": 15}, ((SB, "15"),), f"{NAME}; {SB}=15", (False, False, 15, 15)),
        ({"client_max_window_bits": 15}, ((CB, None),), f"{NAME}; {CB}=15", (False, False, 12, 15)),
        ({"client_max_window_bits": 10}, ((CB, "9"),), f"{NAME}; {CB}=9", (False, False, 12, 9)),
        # not offered: nothing announced, our own window used / 15 for the client
        ({"server_max_window_bits": 10}, (), NAME, (False, False, 10, 15)),
        ({"client_max_window_bits": 9}, (), NAME, (False, False, 12, 15)),
        # settings of 8 behave as 9 unless the client itself asks for 8
        ({"server_max_window_bits": 8}, (), NAME, (False, False, 9, 15)),
        ({"server_max_window_bits": 8}, ((SB, "15"),), f"{NAME}; {SB}=9", (False, False, 9, 15)),
        ({"server_max_window_bits": 8}, ((SB, "8"),), f"{NAME}; {SB}=8", (False, False, 8, 15)),
        ({"client_max_window_bits": 8}, ((CB, None),), f"{NAME}; {CB}=9", (False, False, 12, 9)),
        ({"client_max_window_bits": 8}, ((CB, "8"),), f"{NAME}; {CB}=8", (False, False, 12, 8)),
    ],
)
def test_negotiation_with_settings(
    settings_kwargs: dict[str, int | bool],
    params: Params,
    response: str,
    agreed: tuple[bool, bool, int, int],
) -> None:
    result = negotiate([offer(*params)], DeflateSettings(**settings_kwargs))  # type: ignore[arg-type]
    assert result is not None
    header, codec = result
    assert header == response
    assert agreed == (
        codec.server_no_context_takeover,
        codec.client_no_context_takeover,
        codec.server_max_window_bits,
        codec.client_max_window_bits,
    )


def test_settings_pass_through_to_codec() -> None:
    result = negotiate([offer()], DeflateSettings(min_size=10, compression_level=1, mem_level=9))
    assert result is not None
    assert result[1].min_size == 10


class TestSeveralOffers:
    def test_no_offer(self) -> None:
        assert negotiate([], DeflateSettings()) is None

    def test_other_extensions_only(self) -> None:
        offers = [offer(name="x-webkit-deflate-frame"), offer(name="permessage-bzip2")]
        assert negotiate(offers, DeflateSettings()) is None

    def test_first_acceptable_wins(self) -> None:
        offers = [offer((SB, "10")), offer((SB, "11"))]
        result = negotiate(offers, DeflateSettings())
        assert result is not None
        assert result[0] == f"{NAME}; {SB}=10"

    def test_invalid_offers_skipped(self) -> None:
        offers = [
            offer(name="foo"),
            offer((SB, "16")),
            offer((S, None), (S, None)),
            offer(("x", None)),
            offer((CB, None)),
            offer((SB, "9")),
        ]
        result = negotiate(offers, DeflateSettings())
        assert result is not None
        assert result[0] == f"{NAME}; {CB}=12"

    def test_all_invalid(self) -> None:
        assert negotiate([offer((SB, None)), offer((C, "1"))], DeflateSettings()) is None

    def test_name_is_case_insensitive(self) -> None:
        result = negotiate([offer(name="PerMessage-Deflate")], DeflateSettings())
        assert result is not None
        assert result[0] == NAME

    def test_browser_offer(self) -> None:
        # What Chrome and Firefox send.
        offers = offers_from_header(f"{NAME}; {CB}")
        result = negotiate(offers, DeflateSettings())
        assert result is not None
        assert result[0] == f"{NAME}; {CB}=12"


# --------------------------------------------------------------------------
# Codec: RFC 7692 section 7.2.3 examples
# --------------------------------------------------------------------------


class TestRfcExamples:
    def test_compress_hello(self) -> None:
        # 7.2.3.1: "Hello" -> 0xf2 0x48 0xcd 0xc9 0xc9 0x07 0x00
        codec = PerMessageDeflate()
        assert codec.compress(b"Hello", True) == bytes.fromhex("f248cdc9c90700")

    def test_sharing_window(self) -> None:
        # 7.2.3.2: the second "Hello" refers back to the first.
        codec = PerMessageDeflate()
        codec.compress(b"Hello", True)
        assert codec.compress(b"Hello", True) == bytes.fromhex("f200110000")

    def test_no_sharing_with_server_no_context_takeover(self) -> None:
        codec = PerMessageDeflate(server_no_context_takeover=True)
        first = codec.compress(b"Hello", True)
        assert codec.compress(b"Hello", True) == first == bytes.fromhex("f248cdc9c90700")

    @pytest.mark.parametrize(
        ("payload", "expected"),
        [
            ("f248cdc9c90700", b"Hello"),  # 7.2.3.1
            ("f24805000000ffff", b"He"),  # 7.2.3.5, first block alone
            ("000500faff48656c6c6f00", b"Hello"),  # 7.2.3.3 stored block
            ("f348cdc9c9070000", b"Hello"),  # 7.2.3.4 BFINAL set
            ("f24805000000ffffcac9c90700", b"Hello"),  # 7.2.3.5 two blocks
        ],
    )
    def test_decompress_examples(self, payload: str, expected: bytes) -> None:
        assert receive(PerMessageDeflate(), [bytes.fromhex(payload)]) == expected

    def test_fragmented_example(self) -> None:
        # 7.2.3.1: "Hello" compressed, then sent in two frames.
        codec = PerMessageDeflate()
        fragments = [bytes.fromhex("f248cd"), bytes.fromhex("c9c90700")]
        assert receive(codec, fragments) == b"Hello"

    def test_decompress_shared_window(self) -> None:
        codec = PerMessageDeflate()
        assert receive(codec, [bytes.fromhex("f248cdc9c90700")]) == b"Hello"
        assert receive(codec, [bytes.fromhex("f200110000")]) == b"Hello"

    def test_empty_fragment(self) -> None:
        # 7.2.3.6: a single 0x00 is an empty fragment / empty message.
        codec = PerMessageDeflate()
        assert codec.compress(b"", True) == b"\x00"
        assert receive(codec, [b"\x00"]) == b""
        assert receive(codec, [bytes.fromhex("f248cdc9c90700")]) == b"Hello"


# --------------------------------------------------------------------------
# Codec: round trips
# --------------------------------------------------------------------------


def peer_of(codec: PerMessageDeflate) -> PerMessageDeflate:
    """A codec that receives what ``codec`` sends (same parameters, mirrored)."""
    return PerMessageDeflate(
        client_no_context_takeover=codec.server_no_context_takeover,
        client_max_window_bits=codec.server_max_window_bits,
    )


@pytest.mark.parametrize("bits", range(8, 16))
@pytest.mark.parametrize("no_context_takeover", [False, True])
def test_round_trip_messages(bits: int, no_context_takeover: bool) -> None:
    sender = PerMessageDeflate(
        server_max_window_bits=bits, server_no_context_takeover=no_context_takeover
    )
    receiver = peer_of(sender)
    # A strict inflater with exactly the agreed window proves it is honoured.
    strict = zlib.decompressobj(wbits=-bits)
    for i in range(4):
        message = sample_text(5000 + i, seed=i % 2)
        payload = sender.compress(message, True)
        assert receive(receiver, [payload]) == message
        if no_context_takeover:
            strict = zlib.decompressobj(wbits=-bits)
        assert strict.decompress(payload + TAIL) == message


@pytest.mark.parametrize("bits", range(8, 16))
@pytest.mark.parametrize("no_context_takeover", [False, True])
def test_context_takeover_is_used(bits: int, no_context_takeover: bool) -> None:
    sender = PerMessageDeflate(
        server_max_window_bits=bits, server_no_context_takeover=no_context_takeover
    )
    receiver = peer_of(sender)
    # Incompressible on its own, but within reach of any window of 9+ bits.
    message = random.Random(bits).randbytes(200)
    sizes = []
    for _ in range(3):
        payload = sender.compress(message, True)
        sizes.append(len(payload))
        assert receive(receiver, [payload]) == message
    if no_context_takeover or bits == 8:
        # Huffman-only (8 bits) has no back-references to take over.
        assert sizes[0] == sizes[1] == sizes[2] > 150
    else:
        assert sizes[0] > 150
        assert sizes[1] < 10 and sizes[2] < 10


@pytest.mark.parametrize("client_nct", [False, True])
def test_round_trip_receive_side(client_nct: bool) -> None:
    sender = PerMessageDeflate(server_max_window_bits=11, server_no_context_takeover=client_nct)
    receiver = PerMessageDeflate(client_max_window_bits=11, client_no_context_takeover=client_nct)
    for i in range(5):
        message = sample_text(3000 + i, seed=i % 2)
        assert receive(receiver, [sender.compress(message, True)]) == message


@settings(max_examples=150, deadline=None)
@given(
    message=st.binary(max_size=3000) | st.integers(0, 20000).map(sample_text),
    send_cuts=st.lists(st.integers(0, 1 << 16), max_size=6),
    recv_cuts=st.lists(st.integers(0, 1 << 16), max_size=12),
    bits=st.integers(8, 15),
    nct=st.booleans(),
)
def test_round_trip_fragments(
    message: bytes, send_cuts: list[int], recv_cuts: list[int], bits: int, nct: bool
) -> None:
    sender = PerMessageDeflate(server_max_window_bits=bits, server_no_context_takeover=nct)
    receiver = peer_of(sender)
    for _ in range(2):
        fragments = split(message, send_cuts) or [b""]
        payload = b"".join(
            sender.compress(fragment, i == len(fragments) - 1)
            for i, fragment in enumerate(fragments)
        )
        assert receive(receiver, split(payload, recv_cuts)) == message
        # The exact budget is enough, one byte less is not.
        if message:
            check = peer_of(PerMessageDeflate(server_max_window_bits=bits))
            fresh = PerMessageDeflate(server_max_window_bits=bits)
            one_shot = fresh.compress(message, True)
            assert receive(check, [one_shot], limit=len(message)) == message
            with pytest.raises(FrameError) as excinfo:
                receive(peer_of(fresh), split(one_shot, recv_cuts), limit=len(message) - 1)
            assert excinfo.value.code == CloseCode.MESSAGE_TOO_BIG


def test_empty_fragments_anywhere() -> None:
    sender = PerMessageDeflate()
    receiver = peer_of(sender)
    for fragments in ([b""], [b"", b""], [b"abc", b""], [b"", b"abc"], [b"ab", b"", b"c", b""]):
        parts = [sender.compress(f, i == len(fragments) - 1) for i, f in enumerate(fragments)]
        assert parts[-1] != b""
        assert receive(receiver, parts) == b"".join(fragments)


def test_empty_compressed_payload_is_an_empty_message() -> None:
    receiver = PerMessageDeflate()
    sender = PerMessageDeflate()
    assert receive(receiver, [sender.compress(b"Hello", True)]) == b"Hello"
    assert receive(receiver, []) == b""
    assert receive(receiver, [b"", b""]) == b""
    # The window survived: the next message may refer back to the first.
    assert receive(receiver, [sender.compress(b"Hello", True)]) == b"Hello"


def test_min_size_is_exposed_for_the_connection() -> None:
    assert PerMessageDeflate(min_size=0).min_size == 0
    assert PerMessageDeflate().min_size == 64


def test_repr_names_the_parameters() -> None:
    text = repr(PerMessageDeflate(server_max_window_bits=9, client_no_context_takeover=True))
    assert "server_max_window_bits=9" in text and "client_no_context_takeover=True" in text


# --------------------------------------------------------------------------
# Codec: 8-bit windows
# --------------------------------------------------------------------------


def test_eight_bit_server_window_uses_huffman_only() -> None:
    codec = PerMessageDeflate(server_max_window_bits=8)
    message = sample_text(20000)
    payload = codec.compress(message, True)
    # Compressed (literals only) and inflatable by a true 8-bit inflater.
    assert len(payload) < len(message)
    assert zlib.decompressobj(wbits=-8).decompress(payload + TAIL) == message


def test_eight_bit_peer_stream_decodes() -> None:
    # A peer that agreed client_max_window_bits=8.  zlib cannot compress with
    # an 8-bit window, so the real 8-bit peers are Huffman-only streams and
    # zlib's 9-bit window (whose longest distance is 250 < 256): both are
    # checked valid for an 8-bit inflater before we decode them.
    result = negotiate([offer((CB, "8"))], DeflateSettings())
    assert result is not None
    header, codec = result
    assert header == f"{NAME}; {CB}=8"
    message = sample_text(30000)
    for strategy in (zlib.Z_HUFFMAN_ONLY, zlib.Z_DEFAULT_STRATEGY):
        peer = zlib.compressobj(9, zlib.DEFLATED, -9, 9, strategy)
        strict = zlib.decompressobj(wbits=-8)
        for _ in range(2):
            payload = (peer.compress(message) + peer.flush(zlib.Z_SYNC_FLUSH))[:-4]
            assert strict.decompress(payload + TAIL) == message
            assert receive(codec, [payload]) == message


def test_window_larger_than_agreed_is_invalid() -> None:
    # The client agreed to 9 bits, then refers 2,000 bytes back into the
    # previous message, which our 512-byte window no longer holds.
    codec = PerMessageDeflate(client_max_window_bits=9)
    rng = random.Random(5)
    block = rng.randbytes(1000)
    peer = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = (peer.compress(block) + peer.flush(zlib.Z_SYNC_FLUSH))[:-4]
    assert receive(codec, [first]) == block
    second = (peer.compress(rng.randbytes(1000) + block) + peer.flush(zlib.Z_SYNC_FLUSH))[:-4]
    assert len(second) < 1100  # the back-reference is really there
    with pytest.raises(FrameError) as excinfo:
        receive(codec, [second])
    assert excinfo.value.code == CloseCode.INVALID_PAYLOAD_DATA


# --------------------------------------------------------------------------
# Codec: lazy allocation
# --------------------------------------------------------------------------


def zlib_objects(codec: PerMessageDeflate) -> tuple[bool, bool]:
    return codec._compressor is not None, codec._decompressor is not None


class TestLazyAllocation:
    def test_fresh_codec_holds_nothing(self) -> None:
        result = negotiate([offer((CB, None))], DeflateSettings())
        assert result is not None
        assert zlib_objects(result[1]) == (False, False)

    def test_created_on_first_use_and_kept_with_context_takeover(self) -> None:
        codec = PerMessageDeflate()
        codec.compress(b"Hello", True)
        assert zlib_objects(codec) == (True, False)
        receive(codec, [bytes.fromhex("f248cdc9c90700")])
        assert zlib_objects(codec) == (True, True)

    def test_dropped_after_each_message_without_context_takeover(self) -> None:
        codec = PerMessageDeflate(server_no_context_takeover=True, client_no_context_takeover=True)
        codec.compress(b"Hel", False)
        assert zlib_objects(codec) == (True, False)
        codec.compress(b"lo", True)
        assert codec.decompress(bytes.fromhex("f24805000000ffff"), 100) == b"He"
        assert zlib_objects(codec) == (False, True)
        assert codec.decompress(bytes.fromhex("cac9c90700"), 100) == b"llo"
        assert codec.finish_decompression(100) == b""
        assert zlib_objects(codec) == (False, False)

    def test_empty_input_creates_nothing(self) -> None:
        codec = PerMessageDeflate()
        assert codec.decompress(b"", 10) == b""
        assert codec.finish_decompression(10) == b""
        assert zlib_objects(codec) == (False, False)

    def test_each_direction_independent(self) -> None:
        codec = PerMessageDeflate(server_no_context_takeover=True)
        codec.compress(b"Hello", True)
        receive(codec, [bytes.fromhex("f248cdc9c90700")])
        assert zlib_objects(codec) == (False, True)


# --------------------------------------------------------------------------
# Codec: errors and limits
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        b"\xff\xff\xff\xff",  # reserved block type 11
        bytes.fromhex("0005000000"),  # stored block with LEN != ~NLEN
        b"\x07",  # BFINAL with reserved block type 11
        b"\x04" + b"\xff" * 20,  # dynamic block with impossible code lengths
        bytes.fromhex("f200110000"),  # refers back to a message we never saw
    ],
)
def test_corrupt_data(payload: bytes) -> None:
    with pytest.raises(FrameError) as excinfo:
        receive(PerMessageDeflate(), [payload])
    assert excinfo.value.code == CloseCode.INVALID_PAYLOAD_DATA
    assert excinfo.value.reason == "invalid compressed data"


def test_corrupt_data_found_while_streaming() -> None:
    codec = PerMessageDeflate()
    good = PerMessageDeflate().compress(b"Hello" * 100, False)
    assert codec.decompress(good, 1000) == b"Hello" * 100
    with pytest.raises(FrameError) as excinfo:
        codec.decompress(b"\xff\xff", 1000)
    assert excinfo.value.code == CloseCode.INVALID_PAYLOAD_DATA


def make_bomb(size: int, bits: int = 15) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -bits, 9)
    chunk = bytes(1 << 20)
    parts = [compressor.compress(chunk) for _ in range(size >> 20)]
    parts.append(compressor.flush(zlib.Z_SYNC_FLUSH))
    return b"".join(parts)[:-4]


class TestBomb:
    LIMIT = 1 << 20

    def test_whole_payload(self) -> None:
        bomb = make_bomb(100 << 20)
        # DEFLATE cannot beat ~1032:1, so 100 MiB needs ~100 KB.
        assert len(bomb) < 110_000
        codec = PerMessageDeflate()
        tracemalloc.start()
        try:
            baseline = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()
            with pytest.raises(FrameError) as excinfo:
                codec.decompress(bomb, self.LIMIT)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert excinfo.value.code == CloseCode.MESSAGE_TOO_BIG
        assert peak - baseline < 4 << 20

    def test_streamed_in_frames(self) -> None:
        bomb = make_bomb(100 << 20)
        codec = PerMessageDeflate()
        received = 0
        largest = 0
        tracemalloc.start()
        try:
            baseline = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()
            with pytest.raises(FrameError) as excinfo:
                for start in range(0, len(bomb), 1024):
                    room = self.LIMIT - received
                    piece = codec.decompress(bomb[start : start + 1024], room)
                    assert len(piece) <= room
                    largest = max(largest, len(piece))
                    received += len(piece)
                codec.finish_decompression(self.LIMIT - received)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert excinfo.value.code == CloseCode.MESSAGE_TOO_BIG
        assert received <= self.LIMIT
        assert 0 < largest <= self.LIMIT
        assert peak - baseline < 4 << 20

    def test_every_split_point_exact_budget(self) -> None:
        message = sample_text(700)
        payload = PerMessageDeflate().compress(message, True)
        for cut in range(len(payload) + 1):
            chunks = [payload[:cut], payload[cut:]]
            assert receive(PerMessageDeflate(), chunks, limit=len(message)) == message
            with pytest.raises(FrameError) as excinfo:
                receive(PerMessageDeflate(), chunks, limit=len(message) - 1)
            assert excinfo.value.code == CloseCode.MESSAGE_TOO_BIG

    def test_zero_budget(self) -> None:
        codec = PerMessageDeflate()
        assert codec.decompress(b"", 0) == b""
        assert codec.decompress(b"\x00", 0) == b""
        assert codec.finish_decompression(0) == b""
        with pytest.raises(FrameError) as excinfo:
            codec.decompress(bytes.fromhex("f248cdc9c90700"), 0)
        assert excinfo.value.code == CloseCode.MESSAGE_TOO_BIG


class TestFinalBlocks:
    def test_final_block_then_more_blocks(self) -> None:
        # RFC 7692 section 7.2.1: "The next DEFLATE block follows the padded
        # data if any."  Two streams each ended by a BFINAL block.
        payload = bytes.fromhex("f348cdc9c90700") + bytes.fromhex("f348cdc9c90700") + b"\x00"
        codec = PerMessageDeflate()
        assert receive(codec, [payload]) == b"HelloHello"
        assert receive(codec, [bytes.fromhex("f248cdc9c90700")]) == b"Hello"

    def test_final_block_split_across_calls(self) -> None:
        payload = bytes.fromhex("f348cdc9c90700") * 3 + b"\x00"
        codec = PerMessageDeflate()
        assert receive(codec, split(payload, [3, 7, 8, 15])) == b"Hello" * 3

    def test_finish_flushed_streams(self) -> None:
        # A peer that ends each message with Z_FINISH (BFINAL) plus 0x00.
        codec = PerMessageDeflate()
        for i in range(3):
            message = sample_text(2000, seed=i)
            payload = zlib.compress(message, wbits=-15) + b"\x00"
            assert receive(codec, [payload]) == message

    def test_too_many_final_blocks_in_one_chunk(self) -> None:
        empty_final = b"\x03\x00"  # fixed-Huffman block, BFINAL, no symbols
        codec = PerMessageDeflate()
        assert codec.decompress(empty_final * 16, 10) == b""
        with pytest.raises(FrameError) as excinfo:
            PerMessageDeflate().decompress(empty_final * 10_000, 10)
        assert excinfo.value.code == CloseCode.POLICY_VIOLATION


# --------------------------------------------------------------------------
# Interop with websockets' client codec
# --------------------------------------------------------------------------

ClientBits = int | Literal[True] | None

WEBSOCKETS_CLIENTS: list[tuple[bool, bool, int | None, ClientBits]] = list(
    itertools.product(
        [False, True],  # server_no_context_takeover
        [False, True],  # client_no_context_takeover
        [None, 8, 9, 12, 15],  # server_max_window_bits
        [None, True, 9, 11, 15],  # client_max_window_bits
    )
)

SERVER_SETTINGS = [
    DeflateSettings(),
    DeflateSettings(
        server_max_window_bits=15,
        client_max_window_bits=15,
        compression_level=9,
        mem_level=9,
    ),
    DeflateSettings(
        server_max_window_bits=8,
        client_max_window_bits=8,
        server_no_context_takeover=True,
        client_no_context_takeover=True,
        compression_level=1,
        mem_level=1,
    ),
]

MESSAGES = [
    b"Hello",
    sample_text(3000),
    b"",
    sample_text(3000),
    os.urandom(700),
    sample_text(40000, 7),
]


def websockets_pair(
    client: tuple[bool, bool, int | None, ClientBits], server_settings: DeflateSettings
) -> tuple[WebsocketsDeflate, PerMessageDeflate, str]:
    server_nct, client_nct, server_bits, client_bits = client
    factory = ClientPerMessageDeflateFactory(
        server_no_context_takeover=server_nct,
        client_no_context_takeover=client_nct,
        server_max_window_bits=server_bits,
        client_max_window_bits=client_bits,
    )
    request = build_extension([(factory.name, factory.get_request_params())])
    result = negotiate(offers_from_header(request), server_settings)
    assert result is not None, request
    response, ours = result
    [(name, params)] = parse_extension(response)
    assert name == NAME
    # websockets validates our answer against its offer (RFC 7692 7.1).
    theirs = factory.process_response_params(params, [])
    assert isinstance(theirs, WebsocketsDeflate)
    return theirs, ours, response


@pytest.mark.parametrize("server_settings", SERVER_SETTINGS, ids=["default", "large", "small"])
@pytest.mark.parametrize("client", WEBSOCKETS_CLIENTS, ids=str)
def test_interop_websockets(
    client: tuple[bool, bool, int | None, ClientBits], server_settings: DeflateSettings
) -> None:
    theirs, ours, response = websockets_pair(client, server_settings)
    # Agreed parameters match on both ends.
    assert theirs.remote_no_context_takeover == ours.server_no_context_takeover
    assert theirs.local_no_context_takeover == ours.client_no_context_takeover
    assert theirs.local_max_window_bits == ours.client_max_window_bits
    if f"{SB}=" in response:
        assert theirs.remote_max_window_bits == ours.server_max_window_bits

    for message in MESSAGES:
        # Client to server, whole message.
        frame = theirs.encode(Frame(Opcode.BINARY, message, fin=True))
        assert frame.rsv1
        assert receive(ours, [bytes(frame.data)]) == message
        # Server to client, whole message.
        payload = ours.compress(message, True)
        decoded = theirs.decode(Frame(Opcode.BINARY, payload, fin=True, rsv1=True), max_size=None)
        assert bytes(decoded.data) == message

    # Fragmented both ways.
    message = sample_text(9000, 3)
    pieces = [message[:10], message[10:5000], b"", message[5000:]]
    frames = [
        theirs.encode(
            Frame(Opcode.TEXT if i == 0 else Opcode.CONT, piece, fin=i == len(pieces) - 1)
        )
        for i, piece in enumerate(pieces)
    ]
    assert receive(ours, [bytes(f.data) for f in frames]) == message
    out = bytearray()
    for i, piece in enumerate(pieces):
        fin = i == len(pieces) - 1
        frame = Frame(
            Opcode.TEXT if i == 0 else Opcode.CONT, ours.compress(piece, fin), fin=fin, rsv1=i == 0
        )
        out += theirs.decode(frame, max_size=None).data
    assert bytes(out) == message


# --------------------------------------------------------------------------
# Interop with wsproto's client codec
# --------------------------------------------------------------------------

WSPROTO_CLIENT = cast(FrameProtocol, SimpleNamespace(client=True))

WSPROTO_CLIENTS: list[tuple[bool, bool, int | None, int | None]] = list(
    itertools.product([False, True], [False, True], [None, 9, 12, 15], [None, 9, 12, 15])
)


def wsproto_send(ext: WsprotoDeflate, pieces: Sequence[bytes]) -> list[bytes]:
    out = []
    for i, piece in enumerate(pieces):
        opcode = WsprotoOpcode.TEXT if i == 0 else WsprotoOpcode.CONTINUATION
        rsv, data = ext.frame_outbound(
            WSPROTO_CLIENT, opcode, RsvBits(False, False, False), piece, i == len(pieces) - 1
        )
        assert rsv.rsv1 == (i == 0)
        out.append(data)
    return out


def wsproto_receive(ext: WsprotoDeflate, payloads: Sequence[bytes]) -> bytes:
    out = bytearray()
    for i, payload in enumerate(payloads):
        opcode = WsprotoOpcode.TEXT if i == 0 else WsprotoOpcode.CONTINUATION
        rsv = ext.frame_inbound_header(
            WSPROTO_CLIENT, opcode, RsvBits(i == 0, False, False), len(payload)
        )
        assert isinstance(rsv, RsvBits)
        data = ext.frame_inbound_payload_data(WSPROTO_CLIENT, payload)
        assert isinstance(data, bytes)
        out += data
        tail = ext.frame_inbound_complete(WSPROTO_CLIENT, i == len(payloads) - 1)
        assert tail is None or isinstance(tail, bytes)
        out += tail or b""
    return bytes(out)


@pytest.mark.parametrize("server_settings", SERVER_SETTINGS, ids=["default", "large", "small"])
@pytest.mark.parametrize("client", WSPROTO_CLIENTS, ids=str)
def test_interop_wsproto(
    client: tuple[bool, bool, int | None, int | None], server_settings: DeflateSettings
) -> None:
    server_nct, client_nct, server_bits, client_bits = client
    theirs = WsprotoDeflate(
        server_no_context_takeover=server_nct,
        client_no_context_takeover=client_nct,
        server_max_window_bits=server_bits,
        client_max_window_bits=client_bits,
    )
    request = theirs.offer()
    assert isinstance(request, str)
    result = negotiate(offers_from_header(f"{NAME}; {request}"), server_settings)
    assert result is not None, request
    response, ours = result
    theirs.finalize(response)  # raises ValueError on a value it refuses
    assert theirs.server_max_window_bits == ours.server_max_window_bits
    assert theirs.client_max_window_bits == ours.client_max_window_bits

    for message in [*MESSAGES, *MESSAGES]:
        assert receive(ours, wsproto_send(theirs, [message])) == message
        assert wsproto_receive(theirs, [ours.compress(message, True)]) == message

    message = sample_text(9000, 4)
    pieces = [message[:3000], b"", message[3000:]]
    assert receive(ours, wsproto_send(theirs, pieces)) == message
    payloads = [ours.compress(p, i == len(pieces) - 1) for i, p in enumerate(pieces)]
    assert wsproto_receive(theirs, payloads) == message


# -- the client's side of the negotiation ------------------------------------


class TestClientSide:
    def test_nothing_accepted(self) -> None:
        assert accept_response([], ClientDeflateSettings()) is None

    @pytest.mark.parametrize(
        ("answer", "reason"),
        [
            (
                [
                    ExtensionOffer(name="permessage-deflate"),
                    ExtensionOffer(name="permessage-deflate"),
                ],
                "more extensions",
            ),
            ([ExtensionOffer(name="x-other")], "did not offer"),
            ([ExtensionOffer(name="permessage-deflate", params=(("x", None),))], "unknown"),
            (
                [
                    ExtensionOffer(
                        name="permessage-deflate",
                        params=(("server_no_context_takeover", None),) * 2,
                    )
                ],
                "duplicate",
            ),
        ],
    )
    def test_refused(self, answer: list[ExtensionOffer], reason: str) -> None:
        with pytest.raises(InvalidResponse, match=reason) as caught:
            accept_response(answer, ClientDeflateSettings())
        assert caught.value.failure is HandshakeFailure.INVALID_EXTENSION

    def test_the_agreed_parameters_and_the_swapped_directions(self) -> None:
        codec = accept_response(
            [
                ExtensionOffer(
                    name="Permessage-Deflate",
                    params=(
                        ("server_no_context_takeover", None),
                        ("client_max_window_bits", "9"),
                        ("server_max_window_bits", "10"),
                    ),
                )
            ],
            ClientDeflateSettings(client_no_context_takeover=True),
        )
        assert codec is not None
        assert codec.server_no_context_takeover and codec.client_no_context_takeover
        assert (codec.server_max_window_bits, codec.client_max_window_bits) == (10, 9)
        # The client compresses with the client_* window: a server codec
        # with the same agreement inflates it.
        server = PerMessageDeflate(
            server_no_context_takeover=True,
            client_no_context_takeover=True,
            server_max_window_bits=10,
            client_max_window_bits=9,
        )
        for message in (b"hello " * 100, b"world " * 100):
            payload = codec.compress(message, True)
            assert server.decompress(payload, 10_000) + server.finish_decompression(10_000) == (
                message
            )
            back = server.compress(message, True)
            assert codec.decompress(back, 10_000) + codec.finish_decompression(10_000) == message

    def test_settings_checked(self) -> None:
        with pytest.raises(LocalProtocolError):
            ClientDeflateSettings(client_max_window_bits=16)
        with pytest.raises(LocalProtocolError):
            ClientDeflateSettings(server_max_window_bits=7)
