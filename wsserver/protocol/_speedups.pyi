# Stub for the optional C accelerator built from _speedups.c, so that type
# checking gives the same result whether or not the extension is built.
# Runtime: any bytes-like object is accepted for either argument.

def apply_mask(
    data: bytes | bytearray | memoryview, mask: bytes | bytearray | memoryview, /
) -> bytes:
    """XOR ``data`` with the repeated 4-byte ``mask`` (RFC 6455 section 5.3)."""

class PayloadBuffer:
    """One frame's payload, unmasked into the bytes it becomes (one copy)."""

    def __init__(self, length: int, mask: bytes | bytearray | memoryview, /) -> None: ...
    @property
    def remaining(self) -> int: ...
    def unmask(self, data: bytes | bytearray | memoryview, /) -> None: ...
    def take(self) -> bytes: ...
