"""Tests for client-to-server masking (RFC 6455 section 5.3)."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wsserver.protocol import masking
from wsserver.protocol.masking import apply_mask, apply_mask_python, rotate_mask

#: RFC 6455 section 5.7, "A single-frame masked text message": "Hello"
#: masked with the key 37 fa 21 3d.
RFC_MASKED_HELLO_FRAME = bytes([0x81, 0x85, 0x37, 0xFA, 0x21, 0x3D, 0x7F, 0x9F, 0x4D, 0x51, 0x58])
RFC_MASK = RFC_MASKED_HELLO_FRAME[2:6]
RFC_MASKED_HELLO = RFC_MASKED_HELLO_FRAME[6:]

IMPLEMENTATIONS = [apply_mask, apply_mask_python]


def naive_mask(data: bytes, mask: bytes, offset: int = 0) -> bytes:
    """Section 5.3, literally: "octet i ... XOR ... octet at index (i modulo 4)"."""
    return bytes(byte ^ mask[(offset + i) % 4] for i, byte in enumerate(data))


# --------------------------------------------------------------------------
# Section 5.3: the transformation
# --------------------------------------------------------------------------


@pytest.mark.parametrize("mask_fn", IMPLEMENTATIONS, ids=lambda f: f.__name__)
class TestSection53:
    def test_rfc_example_unmasks(self, mask_fn) -> None:
        assert mask_fn(RFC_MASKED_HELLO, RFC_MASK) == b"Hello"

    def test_rfc_example_masks(self, mask_fn) -> None:
        assert mask_fn(b"Hello", RFC_MASK) == RFC_MASKED_HELLO

    def test_empty(self, mask_fn) -> None:
        assert mask_fn(b"", RFC_MASK) == b""

    def test_zero_key_is_identity(self, mask_fn) -> None:
        data = bytes(range(256))
        assert mask_fn(data, b"\x00\x00\x00\x00") == data

    @pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
    def test_accepts_any_bytes_like_and_returns_bytes(self, mask_fn, kind) -> None:
        data = bytes(range(37))
        result = mask_fn(kind(data), RFC_MASK)
        assert type(result) is bytes
        assert result == naive_mask(data, RFC_MASK)

    def test_leading_and_trailing_zero_bytes_survive(self, mask_fn) -> None:
        # The implementation goes through an integer: bytes that XOR to zero
        # at either end must not be dropped.
        data = RFC_MASK + b"\x00" * 7 + RFC_MASK
        assert mask_fn(data, RFC_MASK) == naive_mask(data, RFC_MASK)
        assert len(mask_fn(RFC_MASK * 3, RFC_MASK)) == 12

    def test_every_length_against_the_naive_loop(self, mask_fn) -> None:
        data = bytes(range(200, 256)) + bytes(range(0, 100))
        for length in range(len(data) + 1):
            assert mask_fn(data[:length], RFC_MASK) == naive_mask(data[:length], RFC_MASK)

    def test_applying_twice_is_identity(self, mask_fn) -> None:
        # "the same algorithm applies regardless of the direction of the
        # translation"
        data = bytes(range(256)) * 3
        assert mask_fn(mask_fn(data, RFC_MASK), RFC_MASK) == data


def test_apply_mask_is_the_reference_without_an_accelerator() -> None:
    # An accelerator may replace it; until one exists, they are the same.
    assert masking.apply_mask is masking.apply_mask_python


# --------------------------------------------------------------------------
# Section 5.3: unmasking a payload in chunks (rotate_mask)
# --------------------------------------------------------------------------


def test_rotate_mask_by_offset() -> None:
    mask = b"\x01\x02\x03\x04"
    rotated = [rotate_mask(mask, offset) for offset in range(9)]
    expected = [bytes(mask[(offset + i) % 4] for i in range(4)) for offset in range(9)]
    assert rotated == expected


@pytest.mark.parametrize("offset", range(12))
def test_rotate_mask_chunks_match_the_naive_loop(offset: int) -> None:
    data = bytes(range(1, 48))
    for length in range(41):
        chunk = data[offset : offset + length]
        assert apply_mask(chunk, rotate_mask(RFC_MASK, offset)) == naive_mask(
            chunk, RFC_MASK, offset
        )


def test_rfc_example_unmasked_in_every_pair_of_chunks() -> None:
    for cut in range(len(RFC_MASKED_HELLO) + 1):
        head = apply_mask(RFC_MASKED_HELLO[:cut], rotate_mask(RFC_MASK, 0))
        tail = apply_mask(RFC_MASKED_HELLO[cut:], rotate_mask(RFC_MASK, cut))
        assert head + tail == b"Hello"


# --------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------

masks = st.binary(min_size=4, max_size=4)


@settings(max_examples=200)
@given(data=st.binary(max_size=300), mask=masks)
def test_property_matches_naive_loop(data: bytes, mask: bytes) -> None:
    assert apply_mask(data, mask) == naive_mask(data, mask)
    assert apply_mask_python(data, mask) == naive_mask(data, mask)


@settings(max_examples=100)
@given(data=st.binary(max_size=300), mask=masks)
def test_property_involution(data: bytes, mask: bytes) -> None:
    assert apply_mask(apply_mask(data, mask), mask) == data


@settings(max_examples=100)
@given(
    data=st.binary(max_size=200),
    mask=masks,
    cuts=st.lists(st.integers(min_value=0, max_value=200), max_size=6),
)
def test_property_chunked_unmasking_equals_whole(data: bytes, mask: bytes, cuts: list[int]) -> None:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    pieces = [apply_mask(data[a:b], rotate_mask(mask, a)) for a, b in itertools.pairwise(points)]
    assert b"".join(pieces) == naive_mask(data, mask)
