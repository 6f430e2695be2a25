"""How the stream targets cut one fuzzer input into the pieces of a byte stream.

Shared by ``fuzz_frames``, ``fuzz_client``, ``fuzz_handshake`` and
``fuzz_connection`` (their seeds are built with ``encode``, and
``make_seeds.py`` and ``tests/test_fuzz_targets.py`` check them with it).
An input is::

    config (1 byte) | answers (``answer_bytes`` bytes) | stream | sizes, reversed | count

``atheris.FuzzedDataProvider`` takes the config and the answers off the
front and the integers off the end, so the stream stays one contiguous run
of the input (a mutation of the stream does not move the cuts).  The stream
is cut after each of ``count`` (at most ``MAX_CUTS``) pieces of ``sizes``
bytes (each at most ``MAX_PIECE``); the rest of it is the last piece.

Not a target (no ``fuzz_`` prefix): ``run_all.py`` and ``make_seeds.py``
list the targets by that prefix.
"""

from __future__ import annotations

from dataclasses import dataclass

import atheris

__all__ = ["MAX_CUTS", "MAX_PIECE", "Case", "decode", "encode"]

#: The most cuts in one input: enough to split every frame header of a seed.
MAX_CUTS = 32
#: The largest piece before the last, in bytes (one byte says it).
MAX_PIECE = 255


@dataclass(frozen=True)
class Case:
    """One input, decoded.

    Attributes:
        config: byte 0, read by each target its own way.
        answers: the target's choices for its callbacks (empty for a target
            without).
        pieces: the stream, cut; joined they are the whole stream.
    """

    config: int
    answers: bytes
    pieces: list[bytes]


def decode(data: bytes, answer_bytes: int = 0) -> Case:
    """Split a fuzzer input into the config byte, ``answer_bytes`` answer
    bytes (fewer if the input is short) and the stream's pieces."""
    fdp = atheris.FuzzedDataProvider(data)
    config = int(fdp.ConsumeUInt(1))
    answers = bytes(fdp.ConsumeBytes(answer_bytes)) if answer_bytes else b""
    count = int(fdp.ConsumeIntInRange(0, MAX_CUTS))
    sizes = [int(fdp.ConsumeIntInRange(0, MAX_PIECE)) for _ in range(count)]
    stream = bytes(fdp.ConsumeBytes(fdp.remaining_bytes()))
    pieces = []
    position = 0
    for size in sizes:
        pieces.append(stream[position : position + size])
        position += size
    pieces.append(stream[position:])
    return Case(config, answers, pieces)


def encode(config: int, stream: bytes, sizes: tuple[int, ...] = (), answers: bytes = b"") -> bytes:
    """The input that ``decode(..., len(answers))`` turns into ``answers`` and
    ``stream`` cut after ``sizes``."""
    assert len(sizes) <= MAX_CUTS and all(0 <= size <= MAX_PIECE for size in sizes)
    return bytes([config]) + answers + stream + bytes(reversed(sizes)) + bytes([len(sizes)])
