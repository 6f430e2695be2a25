"""Fuzz target: the permessage-deflate inflater (``PerMessageDeflate``).

INVARIANT: events or a documented failure, never any other exception, never
unbounded memory.  Here:

* ``decompress`` and ``finish_decompression`` return bytes or raise
  ``FrameError`` (1007 bad data, 1009 too big, 1008 too many final blocks in
  one chunk), nothing else, on any payload;
* no call returns more than the ``max_length`` it was given, so that no
  message inflates past its limit (the harness passes what is left of it, as
  the frame reader does);
* memory stays bounded by the limit, not by what the data would inflate
  to: the ``tracemalloc`` peak of a run stays under ``4 * max_length + 1
  MiB`` (a decompression bomb is cut off after ``max_length + 1`` bytes);
* how a message's payload is split does not matter: the same messages come
  out when each is fed in one piece, except that the one-piece run may fail
  with 1008 (the limit on final blocks is per piece), and data both too big
  and invalid may fail with 1009 one way and 1007 the other.

Input: byte 0 picks the inflater's window (``client_max_window_bits``),
context takeover and the message size limit; the bytes at the end say how
to cut the rest into pieces and where messages end.

Run: ``python fuzz/fuzz_deflate.py [libFuzzer args] [corpus dirs]``.
"""

from __future__ import annotations

import sys
import tracemalloc
import zlib
from dataclasses import dataclass

import atheris

with atheris.instrument_imports(include=["wsserver"]):
    from wsserver.protocol.codes import CloseCode
    from wsserver.protocol.exceptions import FrameError
    from wsserver.protocol.extensions.permessage_deflate import PerMessageDeflate

#: Byte 0, bits 4-7: the message size limit.
MAX_LENGTHS = (
    0,
    1,
    2,
    3,
    16,
    100,
    125,
    1000,
    1024,
    4096,
    10000,
    16384,
    65535,
    65536,
    100000,
    2**20,
)
MAX_PIECES = 32
#: A piece spec: 14 bits of size, and bit 15 ends the message after it.
_END = 0x8000
_SIZE = 0x3FFF

ALLOWED_CODES = frozenset(
    {CloseCode.INVALID_PAYLOAD_DATA, CloseCode.MESSAGE_TOO_BIG, CloseCode.POLICY_VIOLATION}
)


_EITHER = {CloseCode.INVALID_PAYLOAD_DATA, CloseCode.MESSAGE_TOO_BIG}


def memory_bound(max_length: int) -> int:
    return 4 * max_length + (1 << 20)


@dataclass(frozen=True)
class Case:
    window_bits: int
    no_context_takeover: bool
    max_length: int
    #: Each message as the pieces it is fed in.
    messages: list[list[bytes]]


def decode(data: bytes) -> Case:
    fdp = atheris.FuzzedDataProvider(data)
    config = int(fdp.ConsumeUInt(1))
    count = int(fdp.ConsumeIntInRange(0, MAX_PIECES))
    specs = [int(fdp.ConsumeIntInRange(0, 0xFFFF)) for _ in range(count)]
    stream = bytes(fdp.ConsumeBytes(fdp.remaining_bytes()))
    messages: list[list[bytes]] = [[]]
    position = 0
    for spec in specs:
        size = spec & _SIZE
        messages[-1].append(stream[position : position + size])
        position += size
        if spec & _END:
            messages.append([])
    messages[-1].append(stream[position:])
    return Case(
        window_bits=8 + (config & 0x07),
        no_context_takeover=bool(config & 0x08),
        max_length=MAX_LENGTHS[config >> 4],
        messages=messages,
    )


def encode(config: int, messages: list[list[bytes]]) -> bytes:
    """The input ``decode`` turns into these messages (the last piece of the
    last message is whatever follows the others)."""
    specs = []
    for index, pieces in enumerate(messages):
        last = index == len(messages) - 1
        for number, piece in enumerate(pieces):
            if last and number == len(pieces) - 1:
                break
            assert len(piece) <= _SIZE
            ends = number == len(pieces) - 1
            specs.append(len(piece) | (_END if ends else 0))
    assert len(specs) <= MAX_PIECES
    tail = b"".join(bytes([spec & 0xFF, spec >> 8]) for spec in reversed(specs))
    stream = b"".join(b"".join(pieces) for pieces in messages)
    return bytes([config]) + stream + tail + bytes([len(specs)])


Result = list[bytes | int]


def _inflate_message(codec: PerMessageDeflate, pieces: list[bytes], max_length: int) -> bytes:
    produced = 0
    output = []
    for piece in pieces:
        room = max_length - produced
        data = codec.decompress(piece, room)
        assert len(data) <= room, f"decompress() returned {len(data)} bytes, allowed {room}"
        produced += len(data)
        output.append(data)
    room = max_length - produced
    data = codec.finish_decompression(room)
    assert len(data) <= room, f"finish_decompression() returned {len(data)}, allowed {room}"
    output.append(data)
    return b"".join(output)


def run(case: Case, messages: list[list[bytes]]) -> Result:
    """Inflate the messages in order; a close code ends the list."""
    codec = PerMessageDeflate(
        client_max_window_bits=case.window_bits,
        client_no_context_takeover=case.no_context_takeover,
    )
    results: Result = []
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        baseline = tracemalloc.get_traced_memory()[0]
        for pieces in messages:
            try:
                results.append(_inflate_message(codec, pieces, case.max_length))
            except FrameError as error:
                assert error.code in ALLOWED_CODES, f"unexpected close code {error.code}"
                results.append(int(error.code))
                break
        peak = tracemalloc.get_traced_memory()[1] - baseline
    finally:
        if started:
            tracemalloc.stop()
    bound = memory_bound(case.max_length)
    assert peak <= bound, f"peak {peak} bytes over the bound {bound} (max_length {case.max_length})"
    return results


def TestOneInput(data: bytes) -> None:
    case = decode(data)
    split = run(case, case.messages)
    whole = run(case, [[b"".join(pieces)] for pieces in case.messages])
    # Messages both runs inflated are the same.
    for got, expected in zip(split, whole, strict=False):
        if isinstance(got, int) or isinstance(expected, int):
            break
        assert got == expected, "the split changed a message"
    if whole[-1] == CloseCode.POLICY_VIOLATION:
        # The split run may go on past it, but not fail sooner.
        assert len(split) >= len(whole), "the split failed sooner"
        return
    # Data that is both too big and invalid may fail either way, depending on
    # where a piece ends: zlib reports an error it parses past the last
    # output byte it was allowed (1007) even though that byte was one too
    # many (1009).  Both answers are right.
    if split[-1] != whole[-1] and {split[-1], whole[-1]} == _EITHER:
        assert split[:-1] == whole[:-1], "the split changed a message"
        return
    assert split == whole, f"split gave {split[-1:]!r}, whole {whole[-1:]!r}"


# -- seeds ------------------------------------------------------------------


def _client_messages(messages: list[bytes], *, wbits: int = 15, reset: bool = False) -> list[bytes]:
    compressor = zlib.compressobj(6, zlib.DEFLATED, -wbits)
    payloads = []
    for message in messages:
        if reset:
            compressor = zlib.compressobj(6, zlib.DEFLATED, -wbits)
        output = compressor.compress(message) + compressor.flush(zlib.Z_SYNC_FLUSH)
        payloads.append(output[:-4])
    return payloads


def seeds() -> dict[str, bytes]:
    text = b"The quick brown fox jumps over the lazy dog. " * 4
    two = _client_messages([text, text + b"again"])
    small = _client_messages([b"Hello"], wbits=9, reset=True)[0]
    final = zlib.compressobj(6, zlib.DEFLATED, -15)
    bfinal = final.compress(b"final block") + final.flush(zlib.Z_FINISH)
    bomb = _client_messages([bytes(1 << 20)])[0]
    limit_1000, limit_100, limit_64k = 7 << 4, 5 << 4, 13 << 4
    return {
        # RFC 7692 section 7.2.3.1.
        "hello": encode(limit_100 | 7, [[b"\xf2\x48\xcd\xc9\xc9\x07\x00"]]),
        "hello-split": encode(limit_100 | 7, [[b"\xf2\x48", b"\xcd\xc9\xc9", b"\x07\x00"]]),
        "takeover": encode(limit_1000 | 7, [[two[0][:10], two[0][10:]], [two[1]]]),
        "no-takeover": encode(limit_1000 | 0x08 | 1, [[small], [small]]),
        # RFC 7692 section 7.2.3.4: a final block, then more blocks.
        "bfinal": encode(limit_1000 | 7, [[bfinal + small]]),
        "empty": encode(limit_100 | 7, [[b""], [b"\x00"], [b"\x02\x00"]]),
        "bomb": encode(limit_64k | 7, [[bomb]]),
        "stored": encode(limit_100 | 7, [[b"\x00\x05\x00\xfa\xffhello"]]),
        "invalid": encode(limit_100 | 7, [[b"\xff\xff\xff"]]),
        # Three literals, then a stored block with bad lengths: in one piece
        # zlib reports the bad block (1007); cut before it, the third
        # literal is one byte too many first (1009).
        "too-big-and-invalid": encode(
            2 << 4 | 0x08 | 3, [[bytes.fromhex("2a2bcc00000300"), bytes.fromhex("4b2bcc000000")]]
        ),
    }


def main() -> None:
    tracemalloc.start()
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
