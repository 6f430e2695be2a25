"""A WebSocket client's bytes, written from RFC 6455: frames, Close bodies, handshakes.

The one place where the tests, the fuzz targets and the benchmarks build
what a client sends, and read back the frame headers a server writes.  It is
written from the RFC alone, with the standard library only, and imports
nothing from ``wsserver.protocol`` (``tests/test_layering.py`` holds it to
that): it is the independent reference the server's reader and encoder are
checked against, so a mistake in their encoding cannot hide by being shared.

What it builds is exactly what it is asked for, including what a conforming
client never sends (an unmasked frame, a reserved bit, a forged or
non-minimal length), so that tests can check the server's refusals.  It
checks only that the request can be laid out at all: a 4-bit opcode, a
4-byte key, a length that fits the field chosen for it.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

__all__ = [
    "GUID",
    "OP_BINARY",
    "OP_CLOSE",
    "OP_CONTINUATION",
    "OP_PING",
    "OP_PONG",
    "OP_TEXT",
    "FrameHeader",
    "accept_for",
    "apply_mask",
    "client_frame",
    "client_handshake",
    "close_frame",
    "close_payload",
    "frame_header_size",
    "handshake_fields",
    "http_request",
    "minimal_length_bits",
    "random_key",
    "random_mask",
    "read_frame_header",
]

# Section 5.2, "Opcode: 4 bits": "%x0 denotes a continuation frame, %x1
# denotes a text frame, %x2 denotes a binary frame, ... %x8 denotes a
# connection close, %x9 denotes a ping, %xA denotes a pong".
OP_CONTINUATION: Final = 0x0
OP_TEXT: Final = 0x1
OP_BINARY: Final = 0x2
OP_CLOSE: Final = 0x8
OP_PING: Final = 0x9
OP_PONG: Final = 0xA

#: Section 1.3 / 4.2.2: the GUID a server appends to the client's key.
GUID: Final = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

_FIN, _RSV1, _RSV2, _RSV3 = 0x80, 0x40, 0x20, 0x10
_MASK_BIT = 0x80
#: The 7-bit length values that announce a 16-bit and a 64-bit length.
_LENGTH_16, _LENGTH_64 = 126, 127
#: The payload length encodings: in the 7-bit field, or in 16 or 64 more bits.
_LENGTH_ENCODINGS: Final = (7, 16, 64)
_KEY_SIZE: Final = 4


class _Default(enum.Enum):
    """``client_frame``'s ``mask`` when not given: a fresh random key."""

    RANDOM_KEY = enum.auto()


# ---------------------------------------------------------------------------
# Frames (section 5)
# ---------------------------------------------------------------------------


def random_mask() -> bytes:
    """A fresh masking key from ``os.urandom``.

    Section 5.3: "The masking key is a 32-bit value chosen at random by the
    client. ... the masking key MUST be derived from a strong source of
    entropy".
    """
    return os.urandom(_KEY_SIZE)


def apply_mask(data: bytes, key: bytes) -> bytes:
    """``data`` masked (or unmasked: the same operation) with the 4-byte ``key``.

    Section 5.3: "Octet i of the transformed data ("transformed-octet-i") is
    the XOR of octet i of the original data ("original-octet-i") with octet
    at index i modulo 4 of the masking key ("masking-key-octet-j")" and "the
    same steps are applied to mask the data as to unmask the data".

    Done as one XOR of two big integers (the data, and the key repeated to
    its length), so that megabytes cost milliseconds, not seconds.
    """
    if len(key) != _KEY_SIZE:
        raise ValueError(f"a masking key is {_KEY_SIZE} bytes, not {len(key)}")
    size = len(data)
    repeated = (key * (size // _KEY_SIZE + 1))[:size]
    return (int.from_bytes(data, "big") ^ int.from_bytes(repeated, "big")).to_bytes(size, "big")


def minimal_length_bits(length: int) -> int:
    """The payload length encoding section 5.2 requires for ``length``: 7, 16 or 64.

    "if 0-125, that is the payload length.  If 126, the following 2 bytes
    interpreted as a 16-bit unsigned integer are the payload length.  If
    127, the following 8 bytes interpreted as a 64-bit unsigned integer ...
    are the payload length", and "in all cases, the minimal number of bytes
    MUST be used to encode the length".
    """
    if length < 0:
        raise ValueError(f"a payload length is not negative: {length}")
    return 7 if length <= 125 else 16 if length <= 0xFFFF else 64


def client_frame(
    opcode: int,
    payload: bytes = b"",
    *,
    fin: bool = True,
    rsv1: bool = False,
    rsv2: bool = False,
    rsv3: bool = False,
    mask: bytes | _Default | None = _Default.RANDOM_KEY,
    length: int | None = None,
    length_bits: int | None = None,
) -> bytes:
    """One frame as a client writes it, section 5.2's layout::

        FIN, RSV1, RSV2, RSV3, opcode (4 bits) | MASK, payload length (7 bits)
        [extended payload length: 16 or 64 bits] [masking key: 4 bytes]
        payload data

    Section 5.1: "a client MUST mask all frames that it sends to the server".

    Args:
        opcode: the 4-bit opcode (``OP_TEXT`` and so on, or a reserved one).
        payload: the unmasked payload; it is masked here.
        fin, rsv1, rsv2, rsv3: the header bits.
        mask: the 4-byte masking key; ``None`` for an unmasked frame (MASK
            bit 0, no key), which a server must refuse; a fresh random key
            (``random_mask``) when not given.
        length: the payload length to announce, if not ``len(payload)``: a
            forged header (the payload written is still ``payload``).
        length_bits: 7, 16 or 64, to force a length encoding, minimal or
            not; the minimal one (``minimal_length_bits``) when ``None``.

    Raises:
        ValueError: for what the layout cannot hold: an opcode outside
            0-15, a key not 4 bytes long, a length that does not fit its
            encoding (over 125 in 7 bits, over 65535 in 16, 2**64 or more).
    """
    if not 0 <= opcode <= 0xF:
        raise ValueError(f"an opcode is 4 bits: {opcode}")
    announced = len(payload) if length is None else length
    bits = minimal_length_bits(announced) if length_bits is None else length_bits
    if bits not in _LENGTH_ENCODINGS:
        raise ValueError(f"a payload length is encoded in 7, 16 or 64 bits, not {bits}")
    if announced > (125 if bits == 7 else (1 << bits) - 1):
        raise ValueError(f"a length of {announced} does not fit in {bits} bits")
    if mask is _Default.RANDOM_KEY:
        mask = random_mask()
    first = (
        (_FIN if fin else 0)
        | (_RSV1 if rsv1 else 0)
        | (_RSV2 if rsv2 else 0)
        | (_RSV3 if rsv3 else 0)
        | opcode
    )
    mask_bit = 0 if mask is None else _MASK_BIT
    if bits == 7:
        header = bytes((first, mask_bit | announced))
    elif bits == 16:
        header = bytes((first, mask_bit | _LENGTH_16)) + announced.to_bytes(2, "big")
    else:
        header = bytes((first, mask_bit | _LENGTH_64)) + announced.to_bytes(8, "big")
    if mask is None:
        return header + payload
    return header + mask + apply_mask(payload, mask)


def close_payload(code: int, reason: str = "") -> bytes:
    """A Close frame's body: the status code, then the reason in UTF-8.

    Section 5.5.1: "If there is a body, the first two bytes of the body MUST
    be a 2-byte unsigned integer (in network byte order) representing a
    status code ... Following the 2-byte integer, the body MAY contain UTF-8
    encoded data with value /reason/".  Any 16-bit code is written, valid or
    not (section 7.4's ranges are for the tests to probe).
    """
    return code.to_bytes(2, "big") + reason.encode("utf-8")


def close_frame(
    code: int | None = 1000,
    reason: str = "",
    *,
    mask: bytes | _Default | None = _Default.RANDOM_KEY,
) -> bytes:
    """A client's Close frame: ``close_payload(code, reason)``, or no body for ``code=None``.

    ``mask`` is ``client_frame``'s.
    """
    if code is None:
        if reason:
            raise ValueError("a Close frame without a code has no reason either")
        payload = b""
    else:
        payload = close_payload(code, reason)
    return client_frame(OP_CLOSE, payload, mask=mask)


@dataclass(frozen=True, slots=True)
class FrameHeader:
    """A frame's header, read back from section 5.2's layout."""

    fin: bool
    rsv1: bool
    rsv2: bool
    rsv3: bool
    opcode: int
    #: The masking key; ``None`` when the MASK bit is 0 (every server frame).
    mask: bytes | None
    #: The payload length the header announces.
    length: int
    #: The encoding of that length: 7, 16 or 64 bits (compare with
    #: ``minimal_length_bits(length)`` to check it is the minimal one).
    length_bits: int
    #: The header's size in bytes, masking key included: the payload starts here.
    size: int


def frame_header_size(data: bytes | bytearray, offset: int = 0) -> int:
    """The size of the header starting at ``data[offset]``, known from its first two bytes.

    For readers of a stream: read two bytes, then the rest of the header
    (``frame_header_size(...) - 2`` bytes), then ``read_frame_header``.
    """
    if len(data) - offset < 2:
        raise ValueError("a frame header's size is known from its first two bytes")
    second = data[offset + 1]
    extended = {_LENGTH_16: 2, _LENGTH_64: 8}.get(second & 0x7F, 0)
    return 2 + extended + (_KEY_SIZE if second & _MASK_BIT else 0)


def read_frame_header(data: bytes | bytearray, offset: int = 0) -> FrameHeader | None:
    """The frame header starting at ``data[offset]``, or ``None`` if it is not all there.

    The inverse of ``client_frame``'s header, and the reader of a server's
    frames (section 5.1: "A server MUST NOT mask any frames that it sends
    to the client", which the caller checks with ``header.mask is None``).
    Nothing is refused here: a non-minimal length or a set reserved bit is
    reported as it is, for the caller to judge.
    """
    available = len(data) - offset
    if available < 2:
        return None
    size = frame_header_size(data, offset)
    if available < size:
        return None
    first, second = data[offset], data[offset + 1]
    length = second & 0x7F
    position = offset + 2
    bits = 7
    if length == _LENGTH_16:
        length, bits = int.from_bytes(data[position : position + 2], "big"), 16
        position += 2
    elif length == _LENGTH_64:
        length, bits = int.from_bytes(data[position : position + 8], "big"), 64
        position += 8
    mask = bytes(data[position : position + _KEY_SIZE]) if second & _MASK_BIT else None
    return FrameHeader(
        fin=bool(first & _FIN),
        rsv1=bool(first & _RSV1),
        rsv2=bool(first & _RSV2),
        rsv3=bool(first & _RSV3),
        opcode=first & 0x0F,
        mask=mask,
        length=length,
        length_bits=bits,
        size=size,
    )


# ---------------------------------------------------------------------------
# The opening handshake (section 4)
# ---------------------------------------------------------------------------


def random_key() -> str:
    """A fresh ``Sec-WebSocket-Key``.

    Section 4.1: "The value of this header field MUST be a nonce consisting
    of a randomly selected 16-byte value that has been base64-encoded ...
    The nonce MUST be selected randomly for each connection."
    """
    return base64.b64encode(os.urandom(16)).decode("ascii")


def accept_for(key: str) -> str:
    """The ``Sec-WebSocket-Accept`` a server must answer ``key`` with.

    Section 4.2.2: "concatenate this with the Globally Unique Identifier
    (GUID, [RFC4122]) "258EAFA5-E914-47DA-95CA-C5AB0DC85B11" in string form
    ... A SHA-1 hash (160 bits) [FIPS.180-3], base64-encoded (see Section 4
    of [RFC4648]), of this concatenation is then returned in the server's
    handshake."  (Section 1.3 works it through for the key
    ``dGhlIHNhbXBsZSBub25jZQ==``: ``s3pPLMBiTxaQ9kYGzzhZRbK+xOo=``.)
    """
    digest = hashlib.sha1((key + GUID).encode("ascii")).digest()
    return base64.b64encode(digest).decode("ascii")


def handshake_fields(
    *,
    host: str = "127.0.0.1",
    key: str | None = None,
    version: str = "13",
    subprotocols: Iterable[str] = (),
    extensions: str | None = None,
    connection: str = "Upgrade",
    headers: Iterable[tuple[str, str]] = (),
) -> list[tuple[str, str]]:
    """The header fields of a client's opening handshake, in the order written.

    Section 4.1: the request "MUST contain a |Host| header field", "an
    |Upgrade| header field whose value MUST include the "websocket"
    keyword", "a |Connection| header field whose value MUST include the
    "Upgrade" token", "a header field with the name |Sec-WebSocket-Key|",
    "a header field with the name |Sec-WebSocket-Version|. The value of this
    header field MUST be 13", and "MAY include a header field with the name
    |Sec-WebSocket-Protocol|" (the subprotocols, "ordered by preference")
    and "|Sec-WebSocket-Extensions|".

    Args:
        host: the ``Host`` value (with ``:port`` if wanted).
        key: the ``Sec-WebSocket-Key``; a fresh one (``random_key``) if ``None``.
        version: the ``Sec-WebSocket-Version``.
        subprotocols: offered, comma-separated in one field; none if empty.
        extensions: the ``Sec-WebSocket-Extensions`` value, written as given.
        connection: the ``Connection`` value (a browser may send
            ``keep-alive, Upgrade``).
        headers: more fields, after these, as given (repeats included).
    """
    fields = [
        ("Host", host),
        ("Upgrade", "websocket"),
        ("Connection", connection),
        ("Sec-WebSocket-Key", random_key() if key is None else key),
        ("Sec-WebSocket-Version", version),
    ]
    offered = ", ".join(subprotocols)
    if offered:
        fields.append(("Sec-WebSocket-Protocol", offered))
    if extensions is not None:
        fields.append(("Sec-WebSocket-Extensions", extensions))
    fields.extend(headers)
    return fields


def http_request(
    method: str,
    target: str,
    fields: Iterable[tuple[str, str]],
    *,
    http_version: str = "HTTP/1.1",
    eol: str = "\r\n",
    body: bytes = b"",
) -> bytes:
    """An HTTP/1.1 request as written on the wire (RFC 9112 section 2.1).

    ``request-line CRLF *( field-line CRLF ) CRLF [ message-body ]``; fields
    are written ``name: value`` in Latin-1 (RFC 9110 section 5.5 allows
    obs-text), in the order given.  ``http_version`` and ``eol`` may be
    anything, to test refusals; nothing is checked or added (no
    ``Content-Length`` for ``body``).
    """
    lines = [f"{method} {target} {http_version}", *(f"{name}: {value}" for name, value in fields)]
    return (eol.join(lines) + eol + eol).encode("latin-1") + body


def client_handshake(
    path: str = "/",
    *,
    host: str = "127.0.0.1",
    key: str | None = None,
    version: str = "13",
    subprotocols: Iterable[str] = (),
    extensions: str | None = None,
    connection: str = "Upgrade",
    headers: Iterable[tuple[str, str]] = (),
) -> bytes:
    """A client's opening handshake: ``GET path HTTP/1.1`` and ``handshake_fields``.

    Section 4.1: "The method of the request MUST be GET, and the HTTP
    version MUST be at least 1.1."  The arguments are ``handshake_fields``';
    with ``key=None`` the key is fresh, and ``accept_for`` needs it, so pass
    one (``random_key()``) to check the server's answer.
    """
    fields = handshake_fields(
        host=host,
        key=key,
        version=version,
        subprotocols=subprotocols,
        extensions=extensions,
        connection=connection,
        headers=headers,
    )
    return http_request("GET", path, fields)
