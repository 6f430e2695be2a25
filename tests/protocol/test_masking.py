"""Tests for client-to-server masking (RFC 6455 section 5.3).

Every behavioural test runs against both implementations, through the
``mask_fn`` fixture: ``apply_mask_python`` (the reference) and the C
accelerator ``wsserver.protocol._speedups.apply_mask``.  The accelerator must
be built where these tests run: without it, its tests fail (they do not
skip) and say how to build it.  ``WSSERVER_NO_SPEEDUPS=1`` changes only which
one ``masking.apply_mask`` is (scripts/test runs tests/protocol both ways);
both are tested either way.
"""

from __future__ import annotations

import array
import itertools
import os
import random
import subprocess
import sys
import tracemalloc
from collections.abc import Callable
from types import ModuleType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wsserver.protocol import masking
from wsserver.protocol.masking import PayloadBufferPython, apply_mask_python, rotate_mask

#: RFC 6455 section 5.7, "A single-frame masked text message": "Hello"
#: masked with the key 37 fa 21 3d.
RFC_MASKED_HELLO_FRAME = bytes([0x81, 0x85, 0x37, 0xFA, 0x21, 0x3D, 0x7F, 0x9F, 0x4D, 0x51, 0x58])
RFC_MASK = RFC_MASKED_HELLO_FRAME[2:6]
RFC_MASKED_HELLO = RFC_MASKED_HELLO_FRAME[6:]

MIB = 1024 * 1024

MaskFn = Callable[[bytes | bytearray | memoryview, bytes | bytearray | memoryview], bytes]

NOT_BUILT = (
    "the C accelerator wsserver.protocol._speedups is not built (or does not import: {error}). "
    "Build it in place with `pip install -e .` (scripts/test does) on a machine with "
    "a C compiler (gcc or clang) and the Python headers; pip prints a warning, not an error, "
    "when the build fails.  Its tests fail rather than skip so that a missing "
    "build is never mistaken for a passing one."
)


def speedups() -> ModuleType:
    """The compiled module, or a test failure saying how to build it."""
    try:
        from wsserver.protocol import _speedups
    except ImportError as error:
        message = NOT_BUILT.format(error=error)
    else:
        return _speedups
    pytest.fail(message, pytrace=False)  # outside `except`: no chained traceback


def implementation(name: str) -> MaskFn:
    if name == "python":
        return apply_mask_python
    fn: MaskFn = speedups().apply_mask
    return fn


IMPLEMENTATIONS = ["python", "compiled"]


# Module scope: hypothesis refuses function-scoped fixtures in @given tests.
@pytest.fixture(scope="module", params=IMPLEMENTATIONS)
def mask_fn(request: pytest.FixtureRequest) -> MaskFn:
    name: str = request.param
    return implementation(name)


def cut_points(data: bytes, cuts: list[int]) -> list[int]:
    """Where to split ``data``: ``cuts`` folded into range, plus both ends, sorted."""
    return sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})


def naive_mask(data: bytes, mask: bytes, offset: int = 0) -> bytes:
    """Section 5.3, literally: "octet i ... XOR ... octet at index (i modulo 4)"."""
    return bytes(byte ^ mask[(offset + i) % 4] for i, byte in enumerate(data))


# --------------------------------------------------------------------------
# Section 5.3: the transformation
# --------------------------------------------------------------------------


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


# --------------------------------------------------------------------------
# Choosing the implementation
# --------------------------------------------------------------------------


def test_the_accelerator_is_built() -> None:
    # Fails, with instructions, where the extension was not compiled.
    assert callable(speedups().apply_mask)


def test_apply_mask_is_the_accelerator_unless_disabled() -> None:
    disabled = os.environ.get("WSSERVER_NO_SPEEDUPS", "") not in ("", "0")
    if disabled:
        assert masking.apply_mask is apply_mask_python
        assert masking.PayloadBuffer is PayloadBufferPython
        assert masking.ACCELERATED is False
    else:
        assert masking.apply_mask is speedups().apply_mask
        assert masking.PayloadBuffer is speedups().PayloadBuffer
        assert masking.ACCELERATED is True


@pytest.mark.parametrize("value", ["1", "yes"])
def test_select_honours_no_speedups(value: str) -> None:
    assert masking._select({"WSSERVER_NO_SPEEDUPS": value}) == (
        apply_mask_python,
        PayloadBufferPython,
        False,
    )


@pytest.mark.parametrize(
    "environ", [{}, {"WSSERVER_NO_SPEEDUPS": ""}, {"WSSERVER_NO_SPEEDUPS": "0"}]
)
def test_select_prefers_the_accelerator(environ: dict[str, str]) -> None:
    compiled = speedups()
    assert masking._select(environ) == (compiled.apply_mask, compiled.PayloadBuffer, True)


def test_select_falls_back_when_the_accelerator_is_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A None entry in sys.modules makes the import raise ImportError, as a
    # missing extension does.
    monkeypatch.setitem(sys.modules, "wsserver.protocol._speedups", None)
    assert masking._select({}) == (apply_mask_python, PayloadBufferPython, False)


@pytest.mark.parametrize(("value", "accelerated"), [("1", False), ("", True)])
def test_environment_variable_is_read_at_import(value: str, accelerated: bool) -> None:
    if accelerated:
        speedups()
    env = {**os.environ, "WSSERVER_NO_SPEEDUPS": value}
    code = (
        "from wsserver.protocol import masking\n"
        "print(masking.ACCELERATED, masking.apply_mask.__name__)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == [str(accelerated), "apply_mask" if accelerated else "apply_mask_python"]


# --------------------------------------------------------------------------
# Section 5.3: unmasking a payload in chunks (rotate_mask)
# --------------------------------------------------------------------------


def test_rotate_mask_by_offset() -> None:
    mask = b"\x01\x02\x03\x04"
    rotated = [rotate_mask(mask, offset) for offset in range(9)]
    expected = [bytes(mask[(offset + i) % 4] for i in range(4)) for offset in range(9)]
    assert rotated == expected


@pytest.mark.parametrize("offset", range(12))
def test_rotate_mask_chunks_match_the_naive_loop(mask_fn: MaskFn, offset: int) -> None:
    data = bytes(range(1, 48))
    for length in range(41):
        chunk = data[offset : offset + length]
        assert mask_fn(chunk, rotate_mask(RFC_MASK, offset)) == naive_mask(chunk, RFC_MASK, offset)


def test_rfc_example_unmasked_in_every_pair_of_chunks(mask_fn: MaskFn) -> None:
    for cut in range(len(RFC_MASKED_HELLO) + 1):
        head = mask_fn(RFC_MASKED_HELLO[:cut], rotate_mask(RFC_MASK, 0))
        tail = mask_fn(RFC_MASKED_HELLO[cut:], rotate_mask(RFC_MASK, cut))
        assert head + tail == b"Hello"


def test_random_chunks_at_every_offset(mask_fn: MaskFn) -> None:
    # Chunk starts at every offset mod 8, lengths across the 8-byte words
    # and the tail loop of the C code.
    rng = random.Random(53)
    for _ in range(20):
        mask = rng.randbytes(4)
        data = rng.randbytes(rng.randrange(0, 600))
        cuts = sorted({0, len(data), *(rng.randrange(len(data) + 1) for _ in range(8))})
        pieces = [mask_fn(data[a:b], rotate_mask(mask, a)) for a, b in itertools.pairwise(cuts)]
        assert b"".join(pieces) == naive_mask(data, mask)


# --------------------------------------------------------------------------
# The implementations agree
# --------------------------------------------------------------------------


def test_random_inputs_of_every_length_up_to_300(mask_fn: MaskFn) -> None:
    rng = random.Random(300)
    for length in range(301):
        data, mask = rng.randbytes(length), rng.randbytes(4)
        assert mask_fn(data, mask) == naive_mask(data, mask)


@pytest.mark.parametrize("size", [3 * MIB, 3 * MIB + 7, 4 * MIB - 1])
def test_megabytes_agree_with_the_reference(mask_fn: MaskFn, size: int) -> None:
    rng = random.Random(size)
    data, mask = rng.randbytes(size), rng.randbytes(4)
    expected = apply_mask_python(data, mask)
    assert mask_fn(data, mask) == expected
    # Spot-check the reference itself against the literal definition.
    for start in (0, 1, size // 2 + 3, size - 13):
        window = data[start : start + 13]
        assert expected[start : start + 13] == naive_mask(window, mask, start)


@pytest.mark.parametrize("delta", range(-9, 10))
def test_around_the_gil_release_threshold(mask_fn: MaskFn, delta: int) -> None:
    # The C code releases the GIL above 64 KiB: same result on either side.
    size = 64 * 1024 + delta
    data = random.Random(delta).randbytes(size)
    assert mask_fn(data, RFC_MASK) == apply_mask_python(data, RFC_MASK)


def test_memoryview_at_every_alignment(mask_fn: MaskFn) -> None:
    # Slices of one buffer start at every address mod 8: the C code's loads
    # must not assume alignment.
    data = random.Random(8).randbytes(1100)
    view = memoryview(data)
    for start in range(16):
        for length in (0, 1, 7, 8, 9, 63, 64, 65, 1000):
            chunk = view[start : start + length]
            assert mask_fn(chunk, RFC_MASK) == naive_mask(bytes(chunk), RFC_MASK)


#: Ways to hold the same bytes: (id, build from bytes).
BUFFER_KINDS: list[tuple[str, Callable[[bytes], object]]] = [
    ("bytes", bytes),
    ("bytearray", bytearray),
    ("memoryview-bytes", memoryview),
    ("memoryview-bytearray", lambda b: memoryview(bytearray(b))),
    ("memoryview-slice", lambda b: memoryview(b"xyz" + b + b"xyz")[3:-3]),
    ("memoryview-readonly", lambda b: memoryview(bytearray(b)).toreadonly()),
    ("array-B", lambda b: array.array("B", b)),
    ("bytes-subclass", lambda b: type("Sub", (bytes,), {})(b)),
]


@pytest.mark.parametrize("make", [k[1] for k in BUFFER_KINDS], ids=[k[0] for k in BUFFER_KINDS])
@pytest.mark.parametrize("length", [0, 1, 5, 8, 37, 1000])
def test_every_buffer_type(mask_fn: MaskFn, make: Callable[[bytes], object], length: int) -> None:
    data = random.Random(length).randbytes(length)
    result = mask_fn(make(data), RFC_MASK)  # type: ignore[arg-type]
    assert type(result) is bytes
    assert result == naive_mask(data, RFC_MASK)


@pytest.mark.parametrize("make", [bytes, bytearray, memoryview], ids=lambda k: k.__name__)
def test_mask_may_be_any_bytes_like(mask_fn: MaskFn, make: Callable[[bytes], object]) -> None:
    data = bytes(range(50))
    assert mask_fn(data, make(RFC_MASK)) == naive_mask(data, RFC_MASK)  # type: ignore[arg-type]


def test_memoryview_of_other_formats_counts_bytes(mask_fn: MaskFn) -> None:
    # len() of a memoryview counts items, not bytes: both take its raw bytes.
    raw = bytes(range(40))
    words = memoryview(bytearray(raw)).cast("I")
    assert len(words) == 10
    assert mask_fn(words, RFC_MASK) == naive_mask(raw, RFC_MASK)
    square = memoryview(raw).cast("B", (5, 8))
    assert mask_fn(square, RFC_MASK) == naive_mask(raw, RFC_MASK)
    halfwords = array.array("H", raw[:20])  # len() 10, 20 bytes
    assert mask_fn(halfwords, RFC_MASK) == naive_mask(raw[:20], RFC_MASK)  # type: ignore[arg-type]


@pytest.mark.parametrize("step", [2, 3, -1])
def test_non_contiguous_memoryview_is_copied_then_masked(mask_fn: MaskFn, step: int) -> None:
    # Documented behaviour: handled (not TypeError), as bytes(view) would read it.
    base = bytes(range(256)) * 4
    view = memoryview(base)[::step]
    assert not view.contiguous
    assert mask_fn(view, RFC_MASK) == naive_mask(view.tobytes(), RFC_MASK)


def test_result_is_a_new_object_and_input_is_untouched(mask_fn: MaskFn) -> None:
    data = bytearray(range(100))
    result = mask_fn(data, RFC_MASK)
    assert data == bytearray(range(100))
    assert result is not data
    assert mask_fn(result, RFC_MASK) == bytes(data)


# --------------------------------------------------------------------------
# Bad arguments
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "mask", [b"", b"\x01", b"\x01\x02\x03", b"\x01\x02\x03\x04\x05", b"\x00" * 8]
)
@pytest.mark.parametrize("data", [b"", b"Hello", bytes(100)], ids=["empty", "short", "long"])
def test_mask_not_four_bytes_is_a_value_error(mask_fn: MaskFn, mask: bytes, data: bytes) -> None:
    with pytest.raises(ValueError, match="4 bytes"):
        mask_fn(data, mask)


@pytest.mark.parametrize(
    ("data", "mask"),
    [("text", RFC_MASK), (5, RFC_MASK), (None, RFC_MASK), (b"data", "mask"), (b"data", 1234)],
    ids=["str-data", "int-data", "none-data", "str-mask", "int-mask"],
)
def test_not_bytes_like_is_a_type_error(mask_fn: MaskFn, data: object, mask: object) -> None:
    with pytest.raises(TypeError):
        mask_fn(data, mask)  # type: ignore[arg-type]


# --------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------

masks = st.binary(min_size=4, max_size=4)


@settings(max_examples=200)
@given(data=st.binary(max_size=300), mask=masks)
def test_property_matches_naive_loop(mask_fn: MaskFn, data: bytes, mask: bytes) -> None:
    assert mask_fn(data, mask) == naive_mask(data, mask)


@settings(max_examples=100)
@given(data=st.binary(max_size=300), mask=masks)
def test_property_involution(mask_fn: MaskFn, data: bytes, mask: bytes) -> None:
    assert mask_fn(mask_fn(data, mask), mask) == data


@settings(max_examples=100)
@given(
    data=st.binary(max_size=200),
    mask=masks,
    cuts=st.lists(st.integers(min_value=0, max_value=200), max_size=6),
)
def test_property_chunked_unmasking_equals_whole(
    mask_fn: MaskFn, data: bytes, mask: bytes, cuts: list[int]
) -> None:
    points = cut_points(data, cuts)
    pieces = [mask_fn(data[a:b], rotate_mask(mask, a)) for a, b in itertools.pairwise(points)]
    assert b"".join(pieces) == naive_mask(data, mask)


@settings(max_examples=100)
@given(data=st.binary(max_size=2000), mask=masks, start=st.integers(0, 15))
def test_property_implementations_agree(data: bytes, mask: bytes, start: int) -> None:
    compiled = implementation("compiled")
    view = memoryview(data)[start:]
    assert compiled(view, mask) == apply_mask_python(view, mask)


# --------------------------------------------------------------------------
# PayloadBuffer: a frame's pieces unmasked into the message's bytes
# --------------------------------------------------------------------------

BufferFactory = Callable[[int, bytes], masking.PayloadBufferType]


@pytest.fixture(scope="module", params=IMPLEMENTATIONS)
def buffer_type(request: pytest.FixtureRequest) -> BufferFactory:
    if request.param == "python":
        return PayloadBufferPython
    factory: BufferFactory = speedups().PayloadBuffer
    return factory


def test_payload_buffer_rfc_example(buffer_type: BufferFactory) -> None:
    buffer = buffer_type(5, RFC_MASK)
    for piece in (RFC_MASKED_HELLO[:1], RFC_MASKED_HELLO[1:4], RFC_MASKED_HELLO[4:]):
        buffer.unmask(piece)
    assert buffer.remaining == 0
    assert buffer.take() == b"Hello"


def test_payload_buffer_counts_what_is_left(buffer_type: BufferFactory) -> None:
    buffer = buffer_type(10, b"\x00\x00\x00\x00")
    assert buffer.remaining == 10
    buffer.unmask(b"abc")
    assert buffer.remaining == 7
    buffer.unmask(memoryview(b"defghij"))
    assert buffer.remaining == 0
    assert buffer.take() == b"abcdefghij"


def test_payload_buffer_empty(buffer_type: BufferFactory) -> None:
    buffer = buffer_type(0, b"abcd")
    buffer.unmask(b"")
    assert buffer.take() == b""


def test_payload_buffer_refuses_overflow_early_take_and_second_take(
    buffer_type: BufferFactory,
) -> None:
    buffer = buffer_type(4, b"abcd")
    with pytest.raises(ValueError):
        buffer.unmask(b"12345")
    buffer.unmask(b"12")
    with pytest.raises(ValueError, match="incomplete"):
        buffer.take()
    buffer.unmask(b"34")
    assert buffer.take() == apply_mask_python(b"1234", b"abcd")
    with pytest.raises(ValueError, match="taken"):
        buffer.take()
    with pytest.raises(ValueError, match="taken"):
        buffer.unmask(b"")
    assert buffer.remaining == 0


@pytest.mark.parametrize("mask", [b"", b"abc", b"abcde"])
def test_payload_buffer_mask_not_four_bytes(buffer_type: BufferFactory, mask: bytes) -> None:
    with pytest.raises(ValueError):
        buffer_type(4, mask)


def test_payload_buffer_negative_length(buffer_type: BufferFactory) -> None:
    with pytest.raises(ValueError):
        buffer_type(-1, b"abcd")


def test_payload_buffer_input_is_untouched_and_result_is_new(buffer_type: BufferFactory) -> None:
    data = bytearray(os.urandom(1000))
    before = bytes(data)
    buffer = buffer_type(1000, b"wxyz")
    buffer.unmask(data)
    assert bytes(data) == before
    result = buffer.take()
    assert type(result) is bytes
    assert result == naive_mask(before, b"wxyz")


@pytest.mark.parametrize("size", [MIB, 3 * MIB + 5])
def test_payload_buffer_megabytes_in_uneven_pieces(buffer_type: BufferFactory, size: int) -> None:
    rng = random.Random(size)
    data = rng.randbytes(size)
    mask = rng.randbytes(4)
    buffer = buffer_type(size, mask)
    position = 0
    while position < size:
        step = rng.randrange(1, 200_000)
        buffer.unmask(memoryview(data)[position : position + step])
        position += step
    assert buffer.take() == apply_mask_python(data, mask)


@settings(max_examples=100)
@given(
    data=st.binary(max_size=300),
    mask=masks,
    cuts=st.lists(st.integers(min_value=0, max_value=300), max_size=8),
)
def test_property_payload_buffer_any_split_equals_whole(
    buffer_type: BufferFactory, data: bytes, mask: bytes, cuts: list[int]
) -> None:
    points = cut_points(data, cuts)
    buffer = buffer_type(len(data), mask)
    for a, b in itertools.pairwise(points):
        buffer.unmask(data[a:b])
    assert buffer.take() == naive_mask(data, mask)


def test_payload_buffer_memory_follows_the_bytes_received(buffer_type: BufferFactory) -> None:
    # A header announcing 64 MiB must not reserve 64 MiB: at most the first
    # 1 MiB (the compiled buffer's initial capacity), then growth with what
    # arrives.
    announced = 64 * MIB
    tracemalloc.start()
    try:
        buffer = buffer_type(announced, b"abcd")
        buffer.unmask(bytes(4096))
        _, peak_small = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        for _ in range(3):
            buffer.unmask(bytes(MIB))
        current, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak_small < MIB + 64 * 1024
    assert current < 2 * (3 * MIB + 4096) + 64 * 1024
    assert buffer.remaining == announced - 3 * MIB - 4096
