"""Tests for UTF-8 validation of text messages (RFC 6455 sections 5.6 and 8.1, RFC 3629)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wsserver.protocol.codes import CloseCode
from wsserver.protocol.exceptions import FrameError
from wsserver.protocol.utf8 import Utf8Decoder, decode_utf8

# --------------------------------------------------------------------------
# An independent reference: RFC 3629 section 4, the syntax of UTF-8
#
#   UTF8-1      = %x00-7F
#   UTF8-2      = %xC2-DF UTF8-tail
#   UTF8-3      = %xE0 %xA0-BF UTF8-tail / %xE1-EC 2( UTF8-tail ) /
#                 %xED %x80-9F UTF8-tail / %xEE-EF 2( UTF8-tail )
#   UTF8-4      = %xF0 %x90-BF 2( UTF8-tail ) / %xF1-F3 3( UTF8-tail ) /
#                 %xF4 %x80-8F 2( UTF8-tail )
#   UTF8-tail   = %x80-BF
# --------------------------------------------------------------------------

TAIL = range(0x80, 0xC0)


def _following(lead: int) -> Sequence[range] | None:
    """The ranges the bytes after ``lead`` must fall in; None if ``lead`` starts nothing."""
    if lead <= 0x7F:
        return ()
    if 0xC2 <= lead <= 0xDF:
        return (TAIL,)
    if lead == 0xE0:
        return (range(0xA0, 0xC0), TAIL)
    if 0xE1 <= lead <= 0xEC or 0xEE <= lead <= 0xEF:
        return (TAIL, TAIL)
    if lead == 0xED:
        return (range(0x80, 0xA0), TAIL)
    if lead == 0xF0:
        return (range(0x90, 0xC0), TAIL, TAIL)
    if 0xF1 <= lead <= 0xF3:
        return (TAIL, TAIL, TAIL)
    if lead == 0xF4:
        return (range(0x80, 0x90), TAIL, TAIL)
    return None


def first_impossible_byte(data: bytes) -> int | None:
    """Index of the first byte after which ``data`` can no longer start valid UTF-8."""
    i = 0
    while i < len(data):
        ranges = _following(data[i])
        if ranges is None:
            return i
        for j, allowed in enumerate(ranges, start=1):
            if i + j == len(data):
                return None  # a valid, incomplete sequence
            if data[i + j] not in allowed:
                return i + j
        i += 1 + len(ranges)
    return None


def is_complete_utf8(data: bytes) -> bool:
    """Whether ``data`` is exactly a sequence of whole ``UTF8-char``."""
    i = 0
    while i < len(data):
        ranges = _following(data[i])
        if ranges is None or i + len(ranges) >= len(data):
            return False
        if any(data[i + j] not in allowed for j, allowed in enumerate(ranges, start=1)):
            return False
        i += 1 + len(ranges)
    return True


def test_reference_agrees_with_the_rfc_examples() -> None:
    # RFC 3629 section 7: U+0041 U+2262 U+0391 U+002E "A<NOT IDENTICAL TO><ALPHA>.";
    # "한국어"; "日本語"; U+FEFF U+233B4.
    for example in (
        b"\x41\xe2\x89\xa2\xce\x91\x2e",
        b"\xed\x95\x9c\xea\xb5\xad\xec\x96\xb4",
        b"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e",
        b"\xef\xbb\xbf\xf0\xa3\x8e\xb4",
    ):
        assert is_complete_utf8(example)
        assert first_impossible_byte(example) is None
    # Section 10 names these as the classic attacks: overlong "/" and a
    # surrogate.
    assert first_impossible_byte(b"\xc0\xaf") == 0
    assert first_impossible_byte(b"\xed\xa0\x80") == 1


def fails(decoder: Utf8Decoder, data: bytes, final: bool = False) -> bool:
    try:
        decoder.decode(data, final)
    except FrameError as error:
        assert error.code == CloseCode.INVALID_PAYLOAD_DATA
        return True
    return False


# --------------------------------------------------------------------------
# Section 8.1: decoding a whole message
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text", ["", "Hello", "κόσμε", "日本語", "\U0001f600 emoji", "\x00nul", "\U0010ffff"]
)
@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_section_8_1_decode_valid(text: str, kind) -> None:
    assert decode_utf8(kind(text.encode("utf-8"))) == text


@pytest.mark.parametrize(
    "data",
    [
        b"\x80",  # a lone continuation byte
        b"\xc0\xaf",  # overlong "/"
        b"\xe0\x80\xaf",  # overlong, 3 bytes
        b"\xed\xa0\x80",  # U+D800, a surrogate
        b"\xed\xbf\xbf",  # U+DFFF
        b"\xf4\x90\x80\x80",  # U+110000, past the last code point
        b"\xf5\x80\x80\x80",
        b"\xff",
        b"\xce",  # truncated
        b"Hello\xe2\x82",  # truncated at the end
    ],
)
@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_section_8_1_decode_invalid_fails_with_1007(data: bytes, kind) -> None:
    # "When an endpoint is to interpret a byte stream as UTF-8 but finds that
    # the byte stream is not, in fact, a valid UTF-8 stream, that endpoint
    # MUST _Fail the WebSocket Connection_."  Section 7.4.1: 1007 is for
    # "data within a message that was not consistent with the type of the
    # message (e.g., non-UTF-8 [RFC3629] data within a text message)".
    assert not is_complete_utf8(data)
    with pytest.raises(FrameError) as info:
        decode_utf8(kind(data))
    assert info.value.code == CloseCode.INVALID_PAYLOAD_DATA


# --------------------------------------------------------------------------
# Section 8.1, failing fast: the incremental decoder
# --------------------------------------------------------------------------

KOSME = b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"  # "κόσμε"

#: (name, chunks, index of the chunk that must fail).  The 6.4.x cases are
#: Autobahn's "Fail-fast on invalid UTF-8" payloads, chopped as it sends them.
FAIL_FAST_CASES = [
    ("autobahn-6.4.1", [KOSME, b"\xf4\x90\x80\x80", b"edited"], 1),
    ("autobahn-6.4.2", [KOSME + b"\xf4", b"\x90\x80\x80edited"], 1),
    ("autobahn-6.4.3", [KOSME, b"\xf4", b"\x90", b"\x80\x80edited"], 2),
    ("autobahn-6.4.4", [KOSME, b"\xf4\x90", b"\x80\x80", b"edited"], 1),
    ("surrogate-lead-byte-by-byte", [b"\xed", b"\xa0", b"\x80"], 1),
    ("surrogate-lead-one-chunk", [b"ok\xed\xa0"], 0),
    ("surrogate-high-end", [b"\xed", b"\xbf"], 1),
    ("overlong-3", [b"\xe0", b"\x9f"], 1),
    ("overlong-4", [b"\xf0", b"\x8f"], 1),
    ("overlong-2", [b"abc", b"\xc1"], 1),
    ("lone-continuation", [b"a", b"\x80"], 1),
    ("invalid-lead", [KOSME, b"\xf8"], 1),
    ("missing-continuation", [b"\xe2\x82", b"a"], 1),
]


@pytest.mark.parametrize(
    ("chunks", "failing"),
    [case[1:] for case in FAIL_FAST_CASES],
    ids=[case[0] for case in FAIL_FAST_CASES],
)
def test_section_8_1_fails_at_the_chunk_with_the_first_impossible_byte(
    chunks: list[bytes], failing: int
) -> None:
    # The reference agrees that the first impossible byte is in that chunk.
    data = b"".join(chunks)
    bad = first_impossible_byte(data)
    assert bad is not None
    start = sum(len(c) for c in chunks[:failing])
    assert start <= bad < start + len(chunks[failing])

    decoder = Utf8Decoder()
    decoded = "".join(decoder.decode(chunk) for chunk in chunks[:failing])
    # Everything before it decoded (an incomplete sequence at the end waits).
    assert decoded == data[:start].decode("utf-8", errors="ignore")
    with pytest.raises(FrameError) as info:
        decoder.decode(chunks[failing])
    assert info.value.code == CloseCode.INVALID_PAYLOAD_DATA


def test_section_8_1_surrogate_lead_fails_before_the_third_byte() -> None:
    # CPython's own decoder holds back ED A0 until a third byte: the one case
    # Utf8Decoder checks itself.
    decoder = Utf8Decoder()
    assert decoder.decode(b"\xed") == ""
    assert fails(decoder, b"\xa0")


def test_truncated_sequence_fails_at_the_end_of_the_message() -> None:
    decoder = Utf8Decoder()
    assert decoder.decode(b"ab\xe2\x82") == "ab"
    assert fails(decoder, b"", final=True)


def test_final_chunk_may_carry_data() -> None:
    decoder = Utf8Decoder()
    assert decoder.decode(b"\xe2") == ""
    assert decoder.decode(b"\x82\xac!", final=True) == "€!"


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_decoder_accepts_any_bytes_like(kind) -> None:
    decoder = Utf8Decoder()
    assert decoder.decode(kind(b"\xe2\x82")) + decoder.decode(kind(b"\xac"), final=True) == "€"


def test_valid_multi_byte_text_split_at_every_position() -> None:
    text = "a\u00e9\u20ac\U0001f600z\u07ff\u0800\uffff\U00010000\U0010ffff"
    data = text.encode("utf-8")
    for cut in range(len(data) + 1):
        decoder = Utf8Decoder()
        assert decoder.decode(data[:cut]) + decoder.decode(data[cut:], final=True) == text
    for first, second in itertools.combinations(range(len(data) + 1), 2):
        decoder = Utf8Decoder()
        pieces = [data[:first], data[first:second], data[second:]]
        decoded = decoder.decode(pieces[0]) + decoder.decode(pieces[1])
        assert decoded + decoder.decode(pieces[2], final=True) == text


def test_byte_by_byte() -> None:
    text = "κόσμε \U0001f600 €"
    decoder = Utf8Decoder()
    decoded = "".join(decoder.decode(bytes([byte])) for byte in text.encode("utf-8"))
    assert decoded + decoder.decode(b"", final=True) == text


def test_exhaustive_one_and_two_byte_inputs() -> None:
    # Every input of one or two bytes: the decoder fails exactly when the
    # reference says no continuation can make the bytes valid.
    wrong = []
    for length in (1, 2):
        for combination in itertools.product(range(256), repeat=length):
            data = bytes(combination)
            if fails(Utf8Decoder(), data) is (first_impossible_byte(data) is None):
                wrong.append(data)
    assert wrong == []


def test_exhaustive_third_byte_of_four_byte_sequences() -> None:
    # The 4-byte leads with every valid-looking second byte and every third
    # byte: the longest prefix that can still be pending.
    wrong = []
    for lead in range(0xF0, 0xF5):
        for second, third in itertools.product(TAIL, range(256)):
            data = bytes((lead, second, third))
            if fails(Utf8Decoder(), data) is (first_impossible_byte(data) is None):
                wrong.append(data)
    assert wrong == []


# --------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


cut_lists = st.lists(st.integers(min_value=0, max_value=1 << 16), max_size=8)

#: Bytes that are often nearly valid: UTF-8 text with random bytes mixed in.
nearly_utf8 = st.lists(
    st.one_of(st.text(max_size=8).map(lambda s: s.encode("utf-8")), st.binary(max_size=3)),
    max_size=8,
).map(b"".join)


@settings(max_examples=150)
@given(text=st.text(), cuts=cut_lists)
def test_property_any_split_of_valid_text_decodes_to_it(text: str, cuts: list[int]) -> None:
    decoder = Utf8Decoder()
    pieces = split(text.encode("utf-8"), cuts)
    assert "".join(decoder.decode(p) for p in pieces) + decoder.decode(b"", final=True) == text


@settings(max_examples=300)
@given(data=st.one_of(st.binary(max_size=20), nearly_utf8), cuts=cut_lists)
def test_property_chunked_fails_iff_whole_fails_and_as_early_as_possible(
    data: bytes, cuts: list[int]
) -> None:
    whole_fails = fails(Utf8Decoder(), data, final=True)
    assert whole_fails is not is_complete_utf8(data)

    bad = first_impossible_byte(data)
    decoder = Utf8Decoder()
    offset = 0
    chunked_fails = False
    decoded = []
    for piece in split(data, cuts):
        try:
            decoded.append(decoder.decode(piece))
        except FrameError:
            chunked_fails = True
            # Fail fast: this piece holds the first impossible byte.
            assert bad is not None
            assert offset <= bad < offset + len(piece)
            break
        # ... and no piece before it fails.
        assert bad is None or bad >= offset + len(piece)
        offset += len(piece)
    else:
        try:
            decoded.append(decoder.decode(b"", final=True))
        except FrameError:
            chunked_fails = True
            assert bad is None  # only truncated at the end
        else:
            assert "".join(decoded) == data.decode("utf-8")
    assert chunked_fails is whole_fails
