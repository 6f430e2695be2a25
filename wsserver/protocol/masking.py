"""Client-to-server masking (RFC 6455 section 5.3).

"The masked data is the unmasked data XORed with the masking key, octet i
with key octet i MOD 4."  XOR is its own inverse, so one function masks and
unmasks.

The pure-Python path XORs the payload as one big integer: CPython does the
work in C over machine words, about a hundred times faster than a loop over
bytes.  It is
the reference implementation; an accelerator, if any, must give identical
results.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["apply_mask", "apply_mask_python", "rotate_mask"]


def apply_mask_python(data: bytes | bytearray | memoryview, mask: bytes) -> bytes:
    """XOR ``data`` with the repeated 4-byte ``mask``, in pure Python."""
    length = len(data)
    if length == 0:
        return b""
    repeated = mask * ((length >> 2) + 1)
    # Little-endian on both sides keeps byte i of data aligned with byte i of
    # the repeated mask; the surplus mask bytes fall off the high end.
    value = int.from_bytes(data, "little") ^ int.from_bytes(repeated[:length], "little")
    return value.to_bytes(length, "little")


def rotate_mask(mask: bytes, offset: int) -> bytes:
    """The mask to apply to a chunk that starts ``offset`` bytes into a payload.

    Payloads are unmasked as their bytes arrive, so a chunk may start at any
    position; key octet ``i MOD 4`` then belongs to the chunk's first byte.
    """
    shift = offset & 3
    return mask[shift:] + mask[:shift] if shift else mask


#: The masking function in use.  A compiled accelerator replaces it when
#: one is built (see docs/benchmarks.md); the pure-Python one is the reference.
apply_mask: Callable[[bytes | bytearray | memoryview, bytes], bytes] = apply_mask_python
