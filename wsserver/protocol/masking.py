"""Client-to-server masking (RFC 6455 section 5.3).

"The masked data is the unmasked data XORed with the masking key, octet i
with key octet i MOD 4."  XOR is its own inverse, so one function masks and
unmasks.

Two implementations, with identical results:

* :func:`apply_mask_python`, the reference, XORs the payload as one big
  integer: CPython does the work in C over machine words, about a hundred
  times faster than a loop over bytes.
* ``wsserver.protocol._speedups.apply_mask``, an optional C accelerator
  (``_speedups.c``) that XORs 8 bytes at a time, over a hundred times faster
  again on large payloads.  ``pip install`` compiles it when a C compiler is
  present and goes on without it otherwise.

:data:`apply_mask` is the accelerator when it imports, else the reference;
:data:`ACCELERATED` says which.  Setting the environment variable
``WSSERVER_NO_SPEEDUPS=1`` (any value but empty or ``0``) before wsserver is
imported forces the pure-Python path, so that a test suite can run both ways.

The same goes for :data:`PayloadBuffer`, which unmasks a large frame's
pieces, as they arrive, straight into the bytes object that becomes the
message: one copy per byte where unmasking each piece and joining the
pieces would make two.  :class:`PayloadBufferPython` is its reference
(it does unmask and join).

Both functions accept any bytes-like ``data`` and ``mask`` (bytes, bytearray,
memoryview, array, ...) and return ``bytes``.  A memoryview counts as its raw
bytes whatever its format or shape, and a non-contiguous one (``view[::2]``)
is handled by copying it first.  A mask that is not exactly 4 bytes long
raises ValueError; an object that is not bytes-like, TypeError.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Protocol

__all__ = [
    "ACCELERATED",
    "PayloadBuffer",
    "PayloadBufferPython",
    "apply_mask",
    "apply_mask_python",
    "rotate_mask",
]

BytesLike = bytes | bytearray | memoryview
MaskFunction = Callable[[BytesLike, BytesLike], bytes]

#: The environment variable that forces the pure-Python implementation.
NO_SPEEDUPS_VARIABLE = "WSSERVER_NO_SPEEDUPS"


def apply_mask_python(data: BytesLike, mask: BytesLike) -> bytes:
    """XOR ``data`` with the repeated 4-byte ``mask``, in pure Python."""
    if type(mask) is not bytes or len(mask) != 4:
        mask = _checked_mask(mask)
    # The common types first: this runs once per frame or chunk received.
    if type(data) is bytes or type(data) is bytearray:
        length = len(data)
    elif type(data) is memoryview:
        # len() would count items of the view's format along its first
        # dimension; its bytes are what is masked.
        length = data.nbytes
    else:
        length = memoryview(data).nbytes  # TypeError if not bytes-like
    if length == 0:
        return b""
    repeated = mask * ((length >> 2) + 1)
    # Little-endian on both sides keeps byte i of data aligned with byte i of
    # the repeated mask; the surplus mask bytes fall off the high end.
    # int.from_bytes reads any bytes-like object as its raw bytes, copying a
    # non-contiguous one.
    value = int.from_bytes(data, "little") ^ int.from_bytes(repeated[:length], "little")
    return value.to_bytes(length, "little")


def _checked_mask(mask: BytesLike) -> bytes:
    """``mask`` as bytes, or ValueError if it is not 4 bytes long."""
    mask = memoryview(mask).tobytes()
    if len(mask) != 4:
        raise ValueError(f"mask must be 4 bytes long, not {len(mask)}")
    return mask


def rotate_mask(mask: bytes | bytearray, offset: int) -> bytes | bytearray:
    """The mask to apply to a chunk that starts ``offset`` bytes into a payload.

    Payloads are unmasked as their bytes arrive, so a chunk may start at any
    position; key octet ``i MOD 4`` then belongs to the chunk's first byte.
    A ``bytearray`` key gives a ``bytearray`` (the reader slices keys from
    its input, which is one when a header arrived in pieces); both mask
    functions take either.
    """
    shift = offset & 3
    return mask[shift:] + mask[:shift] if shift else mask


class PayloadBufferType(Protocol):
    """What both payload buffers offer."""

    @property
    def remaining(self) -> int: ...

    def unmask(self, data: BytesLike, /) -> None: ...

    def take(self) -> bytes: ...


class PayloadBufferPython:
    """One frame's payload of ``length`` bytes, unmasked piece by piece.

    ``unmask(piece)`` takes the next piece (masked with ``mask`` from the
    payload's first byte on); ``take()`` returns the whole payload once every
    byte is in.  A piece past the announced length, or ``take()`` before the
    end or twice, raises ValueError.
    """

    __slots__ = ("_key", "_parts", "remaining")

    def __init__(self, length: int, mask: BytesLike, /) -> None:
        if length < 0:
            raise ValueError("length must not be negative")
        self._key: bytes | bytearray = (
            mask if type(mask) is bytes and len(mask) == 4 else _checked_mask(mask)
        )
        self._parts: list[bytes] | None = []
        self.remaining = length

    def unmask(self, data: BytesLike, /) -> None:
        if self._parts is None:
            raise ValueError("the payload was already taken")
        size = memoryview(data).nbytes
        if size > self.remaining:
            raise ValueError("more data than the payload's length")
        self._parts.append(apply_mask_python(data, self._key))
        # The next piece starts that many octets further into the key.
        self._key = rotate_mask(self._key, size)
        self.remaining -= size

    def take(self) -> bytes:
        if self._parts is None:
            raise ValueError("the payload was already taken")
        if self.remaining:
            raise ValueError(f"payload incomplete: {self.remaining} bytes missing")
        parts, self._parts = self._parts, None
        return b"".join(parts)


PayloadBufferFactory = Callable[[int, BytesLike], PayloadBufferType]


def _select(environ: Mapping[str, str]) -> tuple[MaskFunction, PayloadBufferFactory, bool]:
    """``(apply_mask, PayloadBuffer, ACCELERATED)`` for this environment."""
    if environ.get(NO_SPEEDUPS_VARIABLE, "") not in ("", "0"):
        return apply_mask_python, PayloadBufferPython, False
    try:
        from ._speedups import PayloadBuffer as compiled_buffer
        from ._speedups import apply_mask as compiled
    except ImportError:
        return apply_mask_python, PayloadBufferPython, False
    return compiled, compiled_buffer, True


#: The masking function in use: the C accelerator when it is built and not
#: disabled by ``WSSERVER_NO_SPEEDUPS``, else :func:`apply_mask_python`.
apply_mask: MaskFunction
#: The payload buffer in use, chosen the same way: ``PayloadBuffer(length,
#: mask)``.
PayloadBuffer: PayloadBufferFactory
#: Whether :data:`apply_mask` and :data:`PayloadBuffer` are the C accelerator.
ACCELERATED: bool
apply_mask, PayloadBuffer, ACCELERATED = _select(os.environ)
