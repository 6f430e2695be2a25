"""Writing frames, and the Close frame's body (RFC 6455 sections 5.2, 5.5.1).

Reading frames is incremental and lives in ``reader.py``; writing is simple
enough to be a few functions.  A server never masks (section 5.1: "A server
MUST NOT mask any frames that it sends to the client").
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from .codes import CloseCode, Opcode, is_valid_received_close_code
from .exceptions import FrameError, LocalProtocolError
from .utf8 import decode_utf8

__all__ = [
    "MAX_CLOSE_REASON",
    "MAX_CONTROL_PAYLOAD",
    "Frame",
    "PreparedMessage",
    "encode_close_payload",
    "encode_frame",
    "frame_header",
    "masked_frame_header",
    "parse_close_payload",
    "prepare_message",
]

#: Section 5.5: "All control frames MUST have a payload length of 125 bytes
#: or less and MUST NOT be fragmented."
MAX_CONTROL_PAYLOAD = 125
#: A close payload is a 2-byte code followed by the reason.
MAX_CLOSE_REASON = MAX_CONTROL_PAYLOAD - 2

_FIN = 0x80
_RSV1 = 0x40
_pack_16 = struct.Struct("!BBH").pack
_pack_64 = struct.Struct("!BBQ").pack

# Headers of unfragmented, uncompressed frames with a 7-bit length are the
# common case on the send path (and the only case for control frames: the
# pong answering each ping, a Close); build them once.
_SHORT_HEADERS: dict[int, tuple[bytes, ...]] = {
    first: tuple(bytes((first, length)) for length in range(126))
    for first in (
        _FIN | Opcode.TEXT,
        _FIN | Opcode.BINARY,
        _FIN | Opcode.CLOSE,
        _FIN | Opcode.PING,
        _FIN | Opcode.PONG,
    )
}


@dataclass(frozen=True, slots=True)
class Frame:
    """One frame, for tests, fuzzing and documentation.

    The reader does not build these on its hot path; it is the readable
    form of what the bytes mean.
    """

    opcode: Opcode
    payload: bytes
    fin: bool = True
    rsv1: bool = False


def frame_header(opcode: int, length: int, *, fin: bool = True, rsv1: bool = False) -> bytes:
    """The unmasked header of a frame carrying ``length`` payload bytes.

    Section 5.2: lengths up to 125 fit the 7-bit field; 126 announces a 16-bit
    length and 127 a 64-bit one, always in the shortest form.
    """
    first = opcode | (_FIN if fin else 0) | (_RSV1 if rsv1 else 0)
    if length < 126:
        table = _SHORT_HEADERS.get(first)
        if table is not None:
            return table[length]
        return bytes((first, length))
    if length < 0x10000:
        return _pack_16(first, 126, length)
    return _pack_64(first, 127, length)


def masked_frame_header(
    opcode: int, length: int, key: bytes, *, fin: bool = True, rsv1: bool = False
) -> bytes:
    """The header of a frame a client sends: MASK set, then the 4-byte key.

    Section 5.3: "The masking key is contained completely within the frame"
    and follows the payload length.  The caller masks the payload with the
    same key (``masking.apply_mask``).
    """
    header = frame_header(opcode, length, fin=fin, rsv1=rsv1)
    return bytes((header[0], header[1] | 0x80)) + header[2:] + key


def encode_frame(frame: Frame) -> bytes:
    """Serialise a whole frame, as a server sends it (unmasked)."""
    return frame_header(frame.opcode, len(frame.payload), fin=frame.fin, rsv1=frame.rsv1) + (
        frame.payload
    )


def parse_close_payload(payload: bytes | bytearray) -> tuple[int, str]:
    """Read the code and reason of a received Close frame (section 5.5.1).

    Returns:
        ``(code, reason)``; ``(1005, "")`` for an empty body, as section
        7.1.5 says ("If there is no such data in the Close control frame,
        _The WebSocket Connection Close Code_ is considered to be 1005").

    Raises:
        FrameError: 1002 for a 1-byte body or a code that may not travel on
            the wire (section 7.4); 1007 for a reason that is not UTF-8.
    """
    if not payload:
        return CloseCode.NO_STATUS_RECEIVED, ""
    if len(payload) == 1:
        # "If there is a body, the first two bytes of the body MUST be a
        # 2-byte unsigned integer": one byte cannot hold it.
        raise FrameError(CloseCode.PROTOCOL_ERROR, "close frame with a 1-byte payload")
    code = (payload[0] << 8) | payload[1]
    if not is_valid_received_close_code(code):
        raise FrameError(CloseCode.PROTOCOL_ERROR, f"invalid close code {code}")
    return code, decode_utf8(payload[2:])


def encode_close_payload(code: int | None, reason: str = "") -> bytes:
    """Build the body of a Close frame we send.

    ``code=None`` (or 1005, "no status") gives an empty body, which is how a
    Close without a status is echoed.

    Raises:
        LocalProtocolError: for a code that may not be sent, a reason that
            has no UTF-8 form (a lone surrogate), or a reason longer than the
            123 bytes a control frame leaves for it.
    """
    if code is None or code == CloseCode.NO_STATUS_RECEIVED:
        if reason:
            raise LocalProtocolError("a close reason needs a close code")
        return b""
    if not is_valid_received_close_code(code):
        raise LocalProtocolError(f"close code {code} may not be sent (RFC 6455 section 7.4)")
    try:
        encoded = reason.encode("utf-8")
    except UnicodeEncodeError:
        # Section 5.5.1: the reason is UTF-8; a lone surrogate has no UTF-8
        # form, so this is the caller's mistake, not an internal error.
        raise LocalProtocolError("close reason is not encodable as UTF-8") from None
    if len(encoded) > MAX_CLOSE_REASON:
        raise LocalProtocolError(
            f"close reason is {len(encoded)} bytes of UTF-8; at most {MAX_CLOSE_REASON} fit"
        )
    return code.to_bytes(2, "big") + encoded


@dataclass(frozen=True, slots=True)
class PreparedMessage:
    """A data message encoded once, to be sent on many connections.

    ``frame`` is the whole unfragmented, uncompressed frame: servers never
    mask (section 5.1), so the same bytes are valid on every connection.
    ``payload`` is kept for connections that compress it themselves.
    """

    opcode: Opcode
    payload: bytes
    frame: bytes


def prepare_message(data: str | bytes | bytearray | memoryview) -> PreparedMessage:
    """Encode a text (``str``) or binary message once, for broadcasting."""
    if isinstance(data, str):
        opcode, payload = Opcode.TEXT, data.encode("utf-8")
    else:
        opcode, payload = Opcode.BINARY, bytes(data)
    return PreparedMessage(opcode, payload, frame_header(opcode, len(payload)) + payload)
