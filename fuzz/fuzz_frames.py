"""Fuzz target: the frame reader (``wsserver.protocol.reader.MessageReader``).

INVARIANT: events or a documented failure, never any other exception, never
unbounded memory.  Here:

* ``read()`` returns messages and control frames, or raises ``FrameError``
  (the reader's only documented failure); nothing else ever escapes;
* after ``read()`` returned ``None`` the reader holds at most the bytes of
  one unfinished frame prefix (``MAX_PENDING``): payload is consumed as it
  arrives, whatever the input;
* every message fits ``max_message_size`` (text counted in UTF-8 bytes),
  control payloads fit 125 bytes, uncompressed messages never add up to more
  than the bytes fed, and text is valid UTF-8;
* the path a large binary frame takes does not matter: with the payload
  buffer (``masking.PayloadBuffer``, the C accelerator when built) used for
  every binary frame that spans pieces, not only for those of 16 KiB or
  more, the events and the close code are the same;
* how the bytes are split does not matter: without compression the events
  and the close code are those of the whole input fed at once; with it, the
  only difference allowed is a 1008 for too many final DEFLATE blocks in one
  chunk (a per-chunk limit), and a 1007/1009 choice when both apply.

Input: byte 0 picks the limits and, optionally, a permessage-deflate codec
negotiated from an offer it describes; the bytes at the end say where to
split the rest, which is the client's byte stream.

Run: ``python fuzz/fuzz_frames.py [libFuzzer args] [corpus dirs]``.
"""

from __future__ import annotations

import sys
import zlib
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["wsserver"]):
    from wsserver.protocol import reader as reader_module
    from wsserver.protocol.codes import CloseCode, Opcode
    from wsserver.protocol.events import BinaryMessage, TextMessage
    from wsserver.protocol.exceptions import FrameError
    from wsserver.protocol.extensions.permessage_deflate import (
        DeflateSettings,
        PerMessageDeflate,
        negotiate,
    )
    from wsserver.protocol.headers import ExtensionOffer
    from wsserver.protocol.reader import ControlFrame, MessageReader
    from wsserver.protocol.settings import ProtocolSettings

# The repository's root, for ``fuzz.cuts`` when run as a script (python fuzz/...).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from fuzz.cuts import decode, encode

# The client's bytes: outside the instrumented block, like the fuzzer's own code.
from wsserver.testing import wire

#: The most bytes the reader may still hold once ``read()`` returned
#: ``None``: an unfinished control frame, i.e. its 6-byte header (7-bit
#: length and mask) and 124 of its at most 125 payload bytes.  A data frame's
#: payload is consumed as it arrives, and its header is at most 14 bytes.
MAX_PENDING = 6 + 124

#: The limits byte 0 chooses from (its two low bits): small, so that every
#: limit is reached by short inputs.
LIMITS = (
    ProtocolSettings(max_message_size=1024, max_fragments=8),
    ProtocolSettings(max_message_size=4096, max_frame_size=256, max_fragments=64),
    ProtocolSettings(max_message_size=125, max_fragments=4),
    ProtocolSettings(max_message_size=1, max_frame_size=1, max_fragments=1),
)

#: ``client_max_window_bits`` in the client's offer (byte 0, bits 5-7):
#: absent, without a value, or a value.
CLIENT_WINDOW_OFFERS: tuple[str | None, ...] = (None, "", "8", "9", "10", "12", "15", "11")


def make_codec(config: int) -> PerMessageDeflate | None:
    """The codec byte 0 asks for (bit 2 set), negotiated as a server would."""
    if not config & 0x04:
        return None
    params: list[tuple[str, str | None]] = []
    if config & 0x08:
        params.append(("client_no_context_takeover", None))
    if config & 0x10:
        params.append(("server_no_context_takeover", None))
    client_bits = CLIENT_WINDOW_OFFERS[config >> 5]
    if client_bits is not None:
        params.append(("client_max_window_bits", client_bits or None))
    offer = ExtensionOffer(name="permessage-deflate", params=tuple(params))
    negotiated = negotiate([offer], DeflateSettings())
    assert negotiated is not None, f"a valid offer was declined: {offer}"
    return negotiated[1]


Item = tuple[str, object]


def _describe(item: object) -> Item:
    if isinstance(item, TextMessage):
        return ("text", item.data)
    if isinstance(item, BinaryMessage):
        return ("binary", item.data)
    assert isinstance(item, ControlFrame), f"read() returned {item!r}"
    return (Opcode(item.opcode).name, bytes(item.payload))


def run(settings: ProtocolSettings, config: int, pieces: list[bytes]) -> tuple[list[Item], int]:
    """Feed ``pieces`` one by one, reading after each until ``None``.

    Returns:
        The items read, and the close code of the ``FrameError`` that ended
        the stream (0 for none).
    """
    codec = make_codec(config)
    reader = MessageReader(settings, codec)
    items: list[Item] = []
    fed = 0
    uncompressed_total = 0
    for piece in pieces:
        reader.feed(piece)
        fed += len(piece)
        while True:
            try:
                item = reader.read()
            except FrameError as error:
                assert error.code in (
                    CloseCode.PROTOCOL_ERROR,
                    CloseCode.INVALID_PAYLOAD_DATA,
                    CloseCode.POLICY_VIOLATION,
                    CloseCode.MESSAGE_TOO_BIG,
                ), f"unexpected close code {error.code}"
                assert len(error.reason.encode("utf-8")) <= 123, "reason does not fit a Close"
                return items, int(error.code)
            if item is None:
                assert reader.buffered <= MAX_PENDING, (
                    f"{reader.buffered} bytes buffered after read() returned None"
                )
                break
            kind, value = described = _describe(item)
            if kind in ("text", "binary"):
                assert isinstance(value, str | bytes)
                size = len(value.encode("utf-8")) if isinstance(value, str) else len(value)
                assert size <= settings.max_message_size, (
                    f"{kind} message of {size} bytes over the limit of {settings.max_message_size}"
                )
                if codec is None:
                    uncompressed_total += size
                    assert uncompressed_total <= fed, "more message bytes than bytes fed"
            else:
                assert isinstance(value, bytes)
                assert kind in ("PING", "PONG", "CLOSE"), f"control frame {kind}"
                assert len(value) <= 125, "control payload over 125 bytes"
            items.append(described)
    return items, 0


#: The reader's own threshold for the payload buffer (16 KiB: more than any
#: message the limits above allow).
PAYLOAD_BUFFER_FROM = reader_module._PAYLOAD_BUFFER_FROM


def run_with_payload_buffer(
    settings: ProtocolSettings, config: int, pieces: list[bytes]
) -> tuple[list[Item], int]:
    """``run``, with every binary frame that spans pieces unmasked into a
    ``PayloadBuffer`` (the threshold lowered to 1 byte)."""
    reader_module._PAYLOAD_BUFFER_FROM = 1
    try:
        return run(settings, config, pieces)
    finally:
        reader_module._PAYLOAD_BUFFER_FROM = PAYLOAD_BUFFER_FROM


def TestOneInput(data: bytes) -> None:
    case = decode(data)
    settings = LIMITS[case.config & 0x03]
    items, code = run(settings, case.config, case.pieces)
    assert run_with_payload_buffer(settings, case.config, case.pieces) == (items, code), (
        "the payload buffer changed the outcome"
    )
    whole_items, whole_code = run(settings, case.config, [b"".join(case.pieces)])
    if not case.config & 0x04:
        assert (items, code) == (whole_items, whole_code), "the split changed the outcome"
        return
    # With compression, the limit on final DEFLATE blocks applies per chunk
    # of input: the whole-input run may fail with 1008 where the split one
    # goes on, and then anything may follow.  And a piece can reach invalid
    # UTF-8 before the size limit is seen: 1007 rather than 1009.
    if whole_code == CloseCode.POLICY_VIOLATION:
        assert items[: len(whole_items)] == whole_items, "the split changed the messages"
        return
    assert items == whole_items, "the split changed the messages"
    assert bool(code) == bool(whole_code), f"split failed with {code}, whole with {whole_code}"
    if code != whole_code:
        assert {code, whole_code} == {
            CloseCode.INVALID_PAYLOAD_DATA,
            CloseCode.MESSAGE_TOO_BIG,
        }, f"split failed with {code}, whole with {whole_code}"


# -- seeds ------------------------------------------------------------------


def frame(
    opcode: int,
    payload: bytes,
    *,
    fin: bool = True,
    rsv1: bool = False,
    mask: bytes = b"\x37\xfa\x21\x3d",
) -> bytes:
    """A client frame, masked with ``mask`` (RFC 6455 section 5.7's key by default)."""
    return wire.client_frame(opcode, payload, fin=fin, rsv1=rsv1, mask=mask)


def compress_messages(messages: list[bytes], *, wbits: int = 15) -> list[bytes]:
    """Payloads of compressed messages, as a client with context takeover sends."""
    compressor = zlib.compressobj(6, zlib.DEFLATED, -wbits)
    payloads = []
    for message in messages:
        output = compressor.compress(message) + compressor.flush(zlib.Z_SYNC_FLUSH)
        assert output.endswith(b"\x00\x00\xff\xff")
        payloads.append(output[:-4])
    return payloads


def seeds() -> dict[str, bytes]:
    """Small valid (and a few invalid) inputs to start the corpus from."""
    text, binary, cont = Opcode.TEXT, Opcode.BINARY, Opcode.CONTINUATION
    hello = frame(text, b"Hello")
    fragmented = (
        frame(binary, b"\x00\x01", fin=False)
        + frame(Opcode.PING, b"ping")
        + frame(cont, b"\x02\x03", fin=False)
        + frame(cont, b"", mask=b"\x00\x00\x00\x00")
    )
    utf8 = "h\u00e9llo \u20ac \U0001f600".encode()
    two = compress_messages([b"Hello, Hello, Hello", b"Hello, Hello, Hello again"])
    # deflate, context takeover, client_max_window_bits=10 offered
    deflate_config = 0x04 | (4 << 5)
    return {
        "text": encode(0, hello),
        "text-split": encode(0, hello, (1, 1, 3)),
        "fragmented": encode(0, fragmented, (3, 7, 1, 20)),
        "utf8-split": encode(0, frame(text, utf8, fin=False) + frame(cont, b"!"), (9, 1, 1)),
        "close": encode(0, frame(Opcode.CLOSE, b"\x03\xe8bye")),
        "pong-unmasked-key": encode(0, frame(Opcode.PONG, b"", mask=b"\x00\x00\x00\x00")),
        "medium": encode(1, frame(binary, bytes(200))),
        "too-big": encode(2, frame(text, b"x" * 126)),
        "reserved-opcode": encode(0, frame(0x3, b"")),
        # RFC 7692 section 7.2.3.1: "Hello" compressed.
        "deflate-hello": encode(0x04, frame(text, b"\xf2\x48\xcd\xc9\xc9\x07\x00", rsv1=True)),
        "deflate-takeover": encode(
            deflate_config,
            frame(text, two[0], rsv1=True) + frame(text, two[1], rsv1=True),
            (4, 4, 20),
        ),
        "deflate-fragmented": encode(
            0x04 | 0x08,
            frame(binary, two[0][:5], rsv1=True, fin=False) + frame(cont, two[0][5:]),
        ),
        "deflate-bomb": encode(
            0x05, frame(binary, compress_messages([bytes(100_000)])[0], rsv1=True)
        ),
    }


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
