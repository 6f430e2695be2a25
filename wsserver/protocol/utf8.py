"""Incremental, fail-fast UTF-8 validation (RFC 6455 sections 5.6 and 8.1).

"When an endpoint is to interpret a byte stream as UTF-8 but finds that the
byte stream is not, in fact, a valid UTF-8 stream, that endpoint MUST _Fail
the WebSocket Connection_."  Failing *fast* means at the first byte that can
no longer begin a valid sequence, even when it arrives in the middle of a
frame and long before the message ends.

CPython's incremental decoder (C speed) already rejects an invalid sequence as
soon as its prefix is impossible, with one exception: it holds back ``ED``
followed by ``A0``-``BF`` until the third byte comes, although those two bytes
can only start a UTF-16 surrogate, which UTF-8 forbids (RFC 3629 section 4:
``ED %x80-9F UTF8-tail``).  ``Utf8Decoder`` checks that one case itself.
"""

from __future__ import annotations

import codecs

from .codes import CloseCode
from .exceptions import FrameError

__all__ = ["Utf8Decoder", "decode_utf8"]

_INVALID = "invalid UTF-8 in text message"


def decode_utf8(data: bytes | bytearray | memoryview) -> str:
    """Decode a complete message; raise ``FrameError`` (1007) if invalid."""
    try:
        return str(data, "utf-8")
    except UnicodeDecodeError:
        raise FrameError(CloseCode.INVALID_PAYLOAD_DATA, _INVALID) from None


class Utf8Decoder:
    """Decode a text message chunk by chunk, failing at the first bad byte."""

    __slots__ = ("_decoder",)

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")("strict")

    def decode(self, data: bytes | bytearray | memoryview, final: bool = False) -> str:
        """Decode the next chunk.

        Raises:
            FrameError: 1007, as soon as the bytes seen so far cannot be the
                beginning of valid UTF-8.
        """
        try:
            text = self._decoder.decode(data, final)
        except UnicodeDecodeError:
            raise FrameError(CloseCode.INVALID_PAYLOAD_DATA, _INVALID) from None
        if not final:
            pending = self._decoder.getstate()[0]
            if len(pending) >= 2 and pending[0] == 0xED and pending[1] >= 0xA0:
                raise FrameError(CloseCode.INVALID_PAYLOAD_DATA, _INVALID)
        return text
