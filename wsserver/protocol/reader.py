"""Reading frames and assembling messages, incrementally.

RFC 6455 sections 5.2-5.6 and RFC 7692 section 6.2.  Bytes go in with
``feed``; ``read`` returns the next complete message or control frame, or
``None`` when it needs more bytes.  A data frame's payload is unmasked,
decompressed and UTF-8-checked as its bytes arrive, so a bad byte in the
first kilobyte of a 16 MiB frame fails the connection at once (Autobahn 6.4),
and nothing ever waits for a whole frame to check it.

``read`` takes one frame at a time through these steps:

1. ``_read_header``: the frame header and every rule a header can break
   (sections 5.1, 5.2, 5.4, 5.5; RFC 7692 section 6; the size limits).
2. The payload: a control frame whole (section 5.5), an unfragmented message
   whole when all of it is in (the common case), or else ``_start_frame``
   then ``_read_payload`` for each piece as it arrives (sections 5.3, 5.4).
3. ``_finish_message``: the message's end (sections 5.4, 5.6; RFC 7692
   section 7.2.2).

Every peer error is raised as ``FrameError`` carrying its close code; the
reader is unusable afterwards, and the connection fails.

Cost: a received chunk is parsed where it lies, through memoryviews: the
common complete message costs one copy (unmasking into the message's bytes),
a message spanning reads two (unmasking each piece, joining the pieces).
Only the unparsed tail of a chunk is kept across ``feed`` calls, and payload
bytes are consumed as they arrive, so that tail is a frame header or a
control frame (at most 139 bytes) unless the caller stopped reading events;
it is kept in a ``bytearray`` grown at the end, so input split into 1-byte
pieces costs linear time, not quadratic.  ``read`` runs once per frame
received, so the header's fields stay local variables and the steps are
called only where the path needs them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .codes import CloseCode, Opcode
from .events import BinaryMessage, TextMessage
from .exceptions import FrameError
from .masking import PayloadBuffer, PayloadBufferType, apply_mask, rotate_mask
from .settings import ProtocolSettings
from .utf8 import Utf8Decoder, decode_utf8

if TYPE_CHECKING:
    from .extensions.permessage_deflate import PerMessageDeflate

__all__ = ["ControlFrame", "MessageReader", "ReadResult"]


@dataclass(frozen=True, slots=True, init=False)
class ControlFrame:
    """A Close, Ping or Pong frame as received, its payload unmasked.

    RFC 6455 section 5.5: control frames "communicate state about the
    WebSocket" and may arrive between the fragments of a message.  The
    reader returns them as they are; the connection acts on them (answers a
    ping, parses and echoes a Close).
    """

    opcode: Opcode
    payload: bytes

    def __init__(self, opcode: Opcode, payload: bytes) -> None:
        # What the generated __init__ of a frozen dataclass does (it goes
        # through object.__setattr__ for each field), in less than two
        # thirds of the time: one is built per control frame received.
        _set_opcode(self, opcode)
        _set_payload(self, payload)


# vars(), not ControlFrame.__dict__: mypyc refuses the attribute on a class
# it compiles; the descriptors are the same either way.
_set_opcode = vars(ControlFrame)["opcode"].__set__
_set_payload = vars(ControlFrame)["payload"].__set__


ReadResult = TextMessage | BinaryMessage | ControlFrame | None

_TEXT = Opcode.TEXT
_BINARY = Opcode.BINARY
_CONTINUATION = Opcode.CONTINUATION

# The key a client's reader hands a large-payload buffer: frames from a
# server carry none (section 5.1), and XOR with zeros is the copy into the
# buffer that the payload needs anyway.  Whole frames and pieces of an
# unmasked frame are copied with bytes() instead: no XOR pass at all.
_NO_KEY = b"\x00\x00\x00\x00"

# Pieces of a message smaller than this are gathered before they are kept,
# so that a message trickled in tiny reads does not cost an object per read.
_COALESCE = 4096
_MAX_SMALL_PIECES = 256
# A single-frame binary message at least this large that spans reads is
# unmasked into one preallocated buffer.  The allocation follows the length
# the header announced (already checked against the limits); the operating
# system commits its pages only as payload bytes arrive and are written.
_PAYLOAD_BUFFER_FROM = 16 * 1024
# Opcode by its 4-bit value, None for the reserved ones: a tuple lookup per
# frame instead of an Enum call.
_OPCODES: tuple[Opcode | None, ...] = tuple(
    Opcode(value) if value in Opcode._value2member_map_ else None for value in range(16)
)
_CONTROL_OPCODES: dict[int, Opcode] = {
    opcode.value: opcode for opcode in Opcode if opcode.is_control
}


def _protocol_error(reason: str) -> FrameError:
    return FrameError(CloseCode.PROTOCOL_ERROR, reason)


def _too_big(reason: str) -> FrameError:
    return FrameError(CloseCode.MESSAGE_TOO_BIG, reason)


class MessageReader:
    """Parses the peer's frames and reassembles messages.

    One reader for both roles: a server reads masked frames (``masked=True``,
    the default), a client unmasked ones.  RFC 6455 section 5.1: "The server
    MUST close the connection upon receiving a frame that is not masked",
    and "A client MUST close a connection if it detects a masked frame."
    The role changes two numbers (the mask bit the header must carry, and
    the 4 or 0 bytes of key after the length), not the code path.

    Args:
        settings: the limits to enforce.
        deflate: the negotiated permessage-deflate codec, if any; it claims
            the RSV1 bit (RFC 7692 section 6).
        masked: whether the peer's frames are masked (we are the server).
    """

    __slots__ = (
        "_byte_parts",
        "_compressed",
        "_decoder",
        "_deflate",
        "_fragments",
        "_frame_fin",
        "_frame_mask",
        "_frame_offset",
        "_frame_remaining",
        "_in_frame",
        "_input",
        "_key_size",
        "_mask_bit",
        "_max_fragments",
        "_max_frame",
        "_max_message",
        "_message_opcode",
        "_message_size",
        "_payload",
        "_position",
        "_small_bytes",
        "_small_text",
        "_small_text_length",
        "_text_parts",
    )

    def __init__(
        self,
        settings: ProtocolSettings,
        deflate: PerMessageDeflate | None = None,
        *,
        masked: bool = True,
    ) -> None:
        # The MASK bit every frame from the peer must carry, and the size of
        # the masking key that follows the length (section 5.2).
        self._mask_bit = 0x80 if masked else 0
        self._key_size = 4 if masked else 0
        # Received bytes: parsed from _position on.  A chunk fed while
        # nothing is pending is kept as it is (bytes, no copy); only a tail
        # left unparsed is moved into a bytearray to be extended.
        self._input: bytes | bytearray = b""
        self._position = 0
        self._deflate = deflate
        self._max_frame = settings.frame_limit
        self._max_message = settings.max_message_size
        self._max_fragments = settings.max_fragments
        # The data frame whose payload is still arriving.
        self._in_frame = False
        self._frame_fin = 0  # its FIN bit: 0x80 or 0
        # Its masking key: a slice of the received bytes (bytes, or a
        # bytearray when the header came in pieces).
        self._frame_mask: bytes | bytearray = b""
        self._frame_offset = 0
        self._frame_remaining = 0
        # The message being assembled; opcode 0 means none, and then its
        # size is 0 too (the header step relies on it).
        self._message_opcode = 0
        self._compressed = False
        self._message_size = 0
        self._fragments = 0
        self._decoder: Utf8Decoder | None = None  # set for text messages only
        # A large unfragmented binary message's payload, being unmasked.
        self._payload: PayloadBufferType | None = None
        self._text_parts: list[str] = []
        self._byte_parts: list[bytes] = []
        self._small_bytes = bytearray()
        self._small_text: list[str] = []
        self._small_text_length = 0

    @property
    def buffered(self) -> int:
        """Bytes received and not parsed yet (for the caller's backpressure)."""
        return len(self._input) - self._position

    @property
    def in_message(self) -> bool:
        """Whether a fragmented or partly received message is under way."""
        return self._message_opcode != 0

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Append received bytes.

        ``bytes`` are kept without a copy; a mutable buffer is copied, since
        its owner may reuse it.
        """
        current = self._input
        position = self._position
        if position >= len(current):
            # Everything so far was parsed: take the new chunk as it is.
            self._input = data if type(data) is bytes else bytes(data)
        else:
            if type(current) is bytearray:
                if position:
                    # Trimming the front is constant time in CPython.
                    del current[:position]
            else:
                current = bytearray(memoryview(current)[position:])
            current += data
            self._input = current
        self._position = 0

    def read(self) -> ReadResult:
        """Parse as far as the buffered bytes allow.

        Each frame goes through the steps the module docstring lists: its
        header (``_read_header``), then its payload, here for a control frame
        or a whole unfragmented message, else through ``_start_frame`` and
        ``_read_payload``, and the message's end (``_finish_message``).

        Returns:
            The next complete ``TextMessage`` or ``BinaryMessage``, a
            ``ControlFrame``, or ``None`` when more bytes are needed.

        Raises:
            FrameError: the peer broke the protocol.
        """
        buffer = self._input
        position = self._position
        end = len(buffer)
        # Payloads are sliced through a view: no copy before unmasking.
        view = memoryview(buffer)
        # 4 for a server (masked frames), 0 for a client.
        key_size = self._key_size
        try:
            while True:
                if self._in_frame:
                    # A payload that spans reads: take what has arrived.
                    if position == end:
                        return None
                    start = position
                    position = min(end, start + self._frame_remaining)
                    message = self._read_payload(view[start:position], position - start)
                    if message is not None or position == end:
                        return message
                    continue

                if end - position < 2:
                    # Not even a header's first two bytes (the usual end of a
                    # read: checked here, without a call).
                    return None
                length = self._read_header(buffer, position, end)
                if length < 0:
                    return None
                first = buffer[position]
                opcode = first & 0x0F
                # The payload starts after 2 bytes, the extended length if
                # any, and the masking key if any (section 5.2); the header
                # step enforced the minimal length encoding, so the length
                # tells which.
                start = position + key_size + (2 if length < 126 else 4 if length < 0x10000 else 10)

                if opcode >= 0x8:
                    # Section 5.5: a control frame is returned whole, so it
                    # waits for its payload (at most 125 bytes).
                    if end - start < length:
                        return None
                    position = start + length
                    return ControlFrame(
                        _CONTROL_OPCODES[opcode],
                        apply_mask(view[start:position], buffer[start - 4 : start])
                        if key_size
                        # A client's frames from the server carry no key
                        # (section 5.1): a plain copy, no XOR pass.
                        else bytes(view[start:position]),
                    )

                if end < start:
                    # The masking key has not all arrived.
                    return None
                mask = buffer[start - 4 : start] if key_size else _NO_KEY
                position = start
                fin = first & 0x80
                if opcode == _CONTINUATION:
                    compressed = self._compressed
                else:
                    compressed = (first & 0x40) != 0
                    if fin and end - start >= length:
                        # The common case: a whole unfragmented message in
                        # the buffer.  No reassembly state is touched: the
                        # payload is unmasked (section 5.3), inflated (RFC
                        # 7692 section 7.2.2) and checked (section 8.1) in
                        # one go each.
                        position = start + length
                        payload = (
                            apply_mask(view[start:position], mask)
                            if key_size
                            else bytes(view[start:position])
                        )
                        if compressed:
                            payload = self._inflate_whole(payload, opcode == _TEXT)
                        if opcode == _TEXT:
                            return TextMessage(data=decode_utf8(payload))
                        return BinaryMessage(data=payload)
                message = self._start_frame(opcode, fin, compressed, length, mask)
                if message is not None:
                    return message
        finally:
            # Release the view now, so that ``feed`` may extend the buffer.
            view.release()
            if position >= end:
                # All parsed: drop the chunk, so that an idle connection
                # does not keep its last read alive.
                self._input = b""
                self._position = 0
            else:
                self._position = position

    def _read_header(self, buffer: bytes | bytearray, position: int, end: int) -> int:
        """Check the frame header at ``position``; return its payload length.

        RFC 6455 section 5.2, "Base Framing Protocol", with every rule a
        header alone can break, checked as soon as the bytes it needs are
        in: the length before the masking key, so that a frame too big fails
        at once.  ``read`` decodes the first byte again for itself: cheaper
        than returning the fields in a tuple, one allocation per frame.

        Returns:
            The payload length, or -1 while the header is incomplete.

        Raises:
            FrameError: 1002 for a broken rule, 1009 for a limit exceeded.
        """
        first = buffer[position]  # ``read`` checked that 2 bytes are in
        second = buffer[position + 1]
        opcode = _OPCODES[first & 0x0F]
        if opcode is None:
            # "If an unknown opcode is received, the receiving endpoint MUST
            # _Fail the WebSocket Connection_."
            raise _protocol_error(f"reserved opcode {first & 0x0F:#x}")
        if first & 0x30:
            # "MUST be 0 unless an extension is negotiated that defines
            # meanings for non-zero values."  Only RSV1 is ever claimed.
            raise _protocol_error("reserved bits RSV2/RSV3 set")
        if second & 0x80 != self._mask_bit:
            # Section 5.1: "The server MUST close the connection upon
            # receiving a frame that is not masked", and "A client MUST
            # close a connection if it detects a masked frame."
            raise _protocol_error(
                "client frame is not masked" if self._mask_bit else "server frame is masked"
            )
        length = second & 0x7F
        if length == 126:
            if end - position < 4:
                return -1
            length = (buffer[position + 2] << 8) | buffer[position + 3]
            if length < 126:
                # "the minimal number of bytes MUST be used to encode the
                # length"
                raise _protocol_error("frame length not minimally encoded")
        elif length == 127:
            if end - position < 10:
                return -1
            length = int.from_bytes(buffer[position + 2 : position + 10], "big")
            if length >> 63:
                # "the most significant bit MUST be 0"
                raise _protocol_error("frame length has its top bit set")
            if length < 0x10000:
                raise _protocol_error("frame length not minimally encoded")
        rsv1 = first & 0x40

        if opcode >= 0x8:
            # Section 5.5: "All control frames MUST have a payload length of
            # 125 bytes or less and MUST NOT be fragmented."
            if not first & 0x80:
                raise _protocol_error("fragmented control frame")
            if length > 125:
                raise _protocol_error("control frame payload over 125 bytes")
            if rsv1:
                # RFC 7692 section 6.1: permessage-deflate applies to data
                # messages only.
                raise _protocol_error("RSV1 set on a control frame")
            return length

        # Section 5.4: a fragmented message is "a single frame with the FIN
        # bit clear and an opcode other than 0, followed by zero or more
        # frames with the FIN bit clear and the opcode set to 0, and
        # terminated by a single frame with the FIN bit set and an opcode of
        # 0"; so a continuation belongs to a message under way, and no other
        # data frame may start before it ends.
        if opcode == _CONTINUATION:
            if not self._message_opcode:
                raise _protocol_error("continuation frame outside a fragmented message")
            if rsv1:
                # RFC 7692 section 6: RSV1 is set on the first frame of a
                # compressed message only.
                raise _protocol_error("RSV1 set on a continuation frame")
            compressed = self._compressed
            size = self._message_size + length
        else:
            if self._message_opcode:
                raise _protocol_error("new data frame inside a fragmented message")
            if rsv1 and self._deflate is None:
                raise _protocol_error("RSV1 set but no extension was negotiated")
            compressed = rsv1 != 0
            size = length  # no message under way: its size is 0
        if length > self._max_frame:
            raise _too_big(f"frame of {length} bytes exceeds the limit of {self._max_frame}")
        if not compressed and size > self._max_message:
            # A compressed message's size is known only as it is inflated.
            raise _too_big(f"message exceeds the limit of {self._max_message} bytes")
        return length

    def _start_frame(
        self, opcode: int, fin: int, compressed: bool, length: int, mask: bytes | bytearray
    ) -> TextMessage | BinaryMessage | None:
        """Prepare for a data frame whose payload is read piece by piece.

        A fragment (section 5.4: "the fragments of one message MUST NOT be
        interleaved between the fragments of another message"; the header
        step checked that) or a frame whose payload spans reads.  The first
        frame starts the message; ``max_fragments`` bounds how many frames
        it may take.

        Returns:
            The message, when an empty final fragment ends it; else ``None``.
        """
        if opcode == _BINARY and fin and not compressed and length >= _PAYLOAD_BUFFER_FROM:
            # A large binary message in one frame, arriving over several
            # reads: unmask its pieces into the message's own bytes (one
            # copy, not unmask-then-join).
            self._message_opcode = opcode
            self._payload = PayloadBuffer(length, mask)
            self._frame_remaining = length
            self._in_frame = True
            return None
        if opcode != _CONTINUATION:
            self._message_opcode = opcode
            self._compressed = compressed
            self._message_size = 0
            self._fragments = 0
            self._decoder = Utf8Decoder() if opcode == _TEXT else None
        self._fragments += 1
        if self._fragments > self._max_fragments:
            raise _too_big(f"message split into more than {self._max_fragments} fragments")
        if not compressed:
            self._message_size += length
        self._frame_fin = fin
        self._frame_mask = mask
        self._frame_offset = 0
        self._frame_remaining = length
        if length:
            self._in_frame = True
            return None
        if fin:
            return self._finish_message()
        return None

    def _read_payload(self, piece: memoryview, size: int) -> TextMessage | BinaryMessage | None:
        """Take the next ``size`` bytes of the current frame's payload.

        Section 5.3: "Octet i of the transformed data ("transformed-octet-i")
        is the XOR of octet i of the original data ("original-octet-i") with
        octet at index i modulo 4 of the masking key"; a piece that starts
        ``n`` bytes into the payload starts at key octet ``n`` modulo 4.  The
        piece is unmasked into the large-message buffer, or unmasked,
        inflated (RFC 7692 section 7.2.2) and UTF-8-checked (section 8.1)
        and kept.

        Returns:
            The message, when this piece ends its final frame; else ``None``.
        """
        target = self._payload
        if target is not None:
            target.unmask(piece)
            remaining = self._frame_remaining - size
            self._frame_remaining = remaining
            if remaining:
                return None
            self._in_frame = False
            self._payload = None
            self._message_opcode = 0
            return BinaryMessage(data=target.take())
        if self._key_size:
            data = apply_mask(piece, rotate_mask(self._frame_mask, self._frame_offset))
        else:
            # Unmasked (a client reading the server): a copy out of the view.
            data = bytes(piece)
        self._frame_offset += size
        if self._compressed:
            assert self._deflate is not None
            data = self._deflate.decompress(data, self._max_message - self._message_size)
            self._message_size += len(data)
        self._append(data)
        remaining = self._frame_remaining - size
        self._frame_remaining = remaining
        if remaining:
            return None
        self._in_frame = False
        if self._frame_fin:
            return self._finish_message()
        return None

    def _inflate_whole(self, payload: bytes, text: bool) -> bytes:
        """Decompress a whole single-frame message (RFC 7692 section 7.2.2).

        Errors come in the order the piece-by-piece path finds them, so that
        the outcome does not depend on how reads split the frame: that path
        checks the UTF-8 of the payload's output before it appends the
        tail, and the tail can fail too (a final DEFLATE block followed by
        garbage, or output past the size limit).
        """
        deflate = self._deflate
        assert deflate is not None
        data = deflate.decompress(payload, self._max_message)
        try:
            tail = deflate.finish_decompression(self._max_message - len(data))
        except FrameError:
            if text:
                Utf8Decoder().decode(data)  # raises first if the output so far is bad
            raise
        return data + tail if tail else data

    def _append(self, data: bytes) -> None:
        if not data:
            return
        if self._decoder is not None:
            text = self._decoder.decode(data)
            if len(text) >= _COALESCE:
                self._flush_text()
                self._text_parts.append(text)
            elif text:
                self._small_text.append(text)
                self._small_text_length += len(text)
                if (
                    self._small_text_length >= _COALESCE
                    or len(self._small_text) >= _MAX_SMALL_PIECES
                ):
                    self._flush_text()
        elif len(data) >= _COALESCE:
            self._flush_bytes()
            self._byte_parts.append(data)
        else:
            self._small_bytes += data
            if len(self._small_bytes) >= _COALESCE:
                self._flush_bytes()

    def _flush_text(self) -> None:
        if self._small_text:
            self._text_parts.append("".join(self._small_text))
            self._small_text = []
            self._small_text_length = 0

    def _flush_bytes(self) -> None:
        if self._small_bytes:
            self._byte_parts.append(bytes(self._small_bytes))
            self._small_bytes.clear()

    def _finish_message(self) -> TextMessage | BinaryMessage:
        """End the message whose final frame was read, and reset for the next.

        Section 5.4: the message "terminated by a single frame with the FIN
        bit set" is complete: its pieces are joined, a compressed message's
        inflater is flushed (RFC 7692 section 7.2.2), and a text message's
        decoder must end on a whole character (section 8.1: "When an
        endpoint is to interpret a byte stream as UTF-8 but finds that the
        byte stream is not, in fact, a valid UTF-8 stream, that endpoint
        MUST _Fail the WebSocket Connection_").
        """
        if self._compressed:
            assert self._deflate is not None
            tail = self._deflate.finish_decompression(self._max_message - self._message_size)
            self._message_size += len(tail)
            self._append(tail)
        decoder = self._decoder
        self._message_opcode = 0
        self._compressed = False
        self._message_size = 0
        self._fragments = 0
        self._decoder = None
        if decoder is not None:
            self._flush_text()
            self._text_parts.append(decoder.decode(b"", final=True))
            text = "".join(self._text_parts)
            self._text_parts = []
            return TextMessage(data=text)
        self._flush_bytes()
        data = b"".join(self._byte_parts)
        self._byte_parts = []
        return BinaryMessage(data=data)
