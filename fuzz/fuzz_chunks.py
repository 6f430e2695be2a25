"""Fuzz target: chunk reassembly (``plugins/channels/chunks.py``).

INVARIANT: a message or a documented failure, never any other exception,
never unbounded memory.  Here:

* each received ``ch/chunk`` message is decoded (``runtime.messages.decode``)
  and checked (``parse_chunk``), then given to a ``Reassembler``; the only
  failures are ``MalformedMessage`` (``ChunkError`` is one) and
  ``MessageTooLarge``, which the session turns into Close 1007 and 1009;
* the bytes the reassembler holds never exceed its ``max_size``, nor its
  messages in progress ``max_pending``, and its ``size`` is the UTF-8 size
  of the parts it holds; ``expire`` and ``clear`` give everything back;
* a message the reassembler completes is the parts joined in index order;
* ``make_chunks`` splits any text into chunk messages no larger than the
  limit that reassemble to the text (what the server sends the browser).

Input: byte 0 picks the limits (bits 0-1: ``max_size``; bit 2:
``max_pending`` 1 or 4; bits 3-4: the ``make_chunks`` limit); the rest,
decoded as UTF-8 (invalid bytes replaced), is split at NUL bytes into
messages; a message starting with ``~`` moves the clock past the timeout
(``expire``).  The first message is also split with ``make_chunks``.

Run: ``python fuzz/fuzz_chunks.py [libFuzzer args] [corpus dirs]``.
"""

from __future__ import annotations

import json
import sys

import atheris

with atheris.instrument_imports(include=["wsserver"]):
    from wsserver.plugins.channels.chunks import (
        CHUNK_KIND,
        Reassembler,
        make_chunks,
        parse_chunk,
    )
    from wsserver.plugins.runtime.messages import (
        MalformedMessage,
        MessageTooLarge,
        decode,
        utf8_length,
    )

MAX_SIZES = (16, 200, 4096, 1 << 20)
SPLIT_LIMITS = (80, 100, 256, 1000)
MAX_CHUNKS = 16
TIMEOUT = 10.0


def _held(reassembler: Reassembler) -> int:
    return sum(
        utf8_length(part)
        for assembly in reassembler._assemblies.values()
        for part in assembly.parts.values()
    )


def _check_split(text: str, limit: int) -> None:
    try:
        utf8_length(text)
    except UnicodeEncodeError:  # pragma: no cover - replaced input has none
        return
    try:
        messages = make_chunks(text, chunk_id="s1", limit=limit)
    except ValueError:
        return  # a limit too small to chunk with: documented
    if not messages:
        assert text == "", "make_chunks gave no chunk for a text"
        return
    reassembler = Reassembler(max_size=max(1, utf8_length(text)), max_chunks=len(messages))
    joined = None
    for number, message in enumerate(messages):
        assert utf8_length(message) <= limit, f"a chunk of {utf8_length(message)} > {limit} bytes"
        chunk = parse_chunk(decode(message), max_chunks=len(messages))
        assert chunk.index == number and chunk.count == len(messages)
        joined = reassembler.add(chunk, 0.0)
    assert joined == text, "make_chunks + Reassembler changed the text"


def TestOneInput(data: bytes) -> None:
    if not data:
        return
    config = data[0]
    reassembler = Reassembler(
        max_size=MAX_SIZES[config & 0x03],
        max_chunks=MAX_CHUNKS,
        max_pending=4 if config & 0x04 else 1,
        timeout=TIMEOUT,
    )
    now = 0.0
    pieces = data[1:].split(b"\x00")[:256]
    for piece in pieces:
        text = piece.decode("utf-8", "replace")
        if text.startswith("~"):
            now += TIMEOUT
            reassembler.expire(now)
            assert reassembler.next_deadline is None or reassembler.next_deadline > now
            assert _held(reassembler) == reassembler.size
            continue
        try:
            message = decode(text)
            if message.kind != CHUNK_KIND:
                continue
            chunk = parse_chunk(message, max_chunks=reassembler.max_chunks)
            before = {key: dict(a.parts) for key, a in reassembler._assemblies.items()}
            joined = reassembler.add(chunk, now)
        except (MalformedMessage, MessageTooLarge):
            pass
        else:
            if joined is not None:
                parts = before.get(chunk.id, {})
                parts[chunk.index] = chunk.data
                expected = "".join(parts[index] for index in range(chunk.count))
                assert joined == expected, "the parts were not joined in order"
        assert reassembler.size <= reassembler.max_size, "held more than max_size"
        assert reassembler.pending <= reassembler.max_pending, "more than max_pending"
        assert _held(reassembler) == reassembler.size, "size is not what is held"
    reassembler.clear()
    assert reassembler.size == 0 and reassembler.pending == 0
    if pieces:
        _check_split(pieces[0].decode("utf-8", "replace"), SPLIT_LIMITS[(config >> 3) & 0x03])


# -- seeds ------------------------------------------------------------------


def _chunk(chunk_id: str, index: int, count: int, data: str) -> bytes:
    message = {"p": "ch", "k": "chunk", "id": chunk_id, "i": index, "n": count, "data": data}
    return json.dumps(message, ensure_ascii=False).encode()


def seeds() -> dict[str, bytes]:
    """Chunked messages, whole, interleaved, broken and timed out."""
    whole = '{"p":"ch","k":"send","topic":"room","data":{"text":"hello, world"}}'
    thirds = [whole[:20], whole[20:40], whole[40:]]
    one = [_chunk("c1", i, 3, part) for i, part in enumerate(thirds)]
    two = [_chunk("c2", i, 3, part) for i, part in enumerate(thirds)]
    cases = {
        "in-order": (0x1B, one),
        "reversed": (0x03, one[::-1]),
        "interleaved": (0x07, [one[0], two[0], one[1], two[2], two[1], one[2]]),
        "duplicate": (0x03, [one[0], one[0]]),
        "count-changed": (0x03, [one[0], _chunk("c1", 1, 2, "x")]),
        "too-many-pending": (0x03, [one[0], two[0]]),
        "too-large": (0x00, [_chunk("c3", 0, 2, "x" * 20)]),
        "expired": (0x07, [one[0], b"~", one[1], one[2]]),
        "single": (0x03, [_chunk("c4", 0, 1, whole)]),
        "bad-fields": (
            0x03,
            [
                b'{"p":"ch","k":"chunk","id":"","i":0,"n":2,"data":"x"}',
                b'{"p":"ch","k":"chunk","id":"a","i":2,"n":2,"data":"x"}',
                b'{"p":"ch","k":"chunk","id":"a","i":true,"n":2,"data":"x"}',
                b'{"p":"ch","k":"chunk","id":"a","i":0,"n":99,"data":"x"}',
                b'{"p":"ch","k":"chunk","id":"a","i":0,"n":2,"data":null}',
            ],
        ),
        "unicode": (0x0B, [_chunk("c5", 0, 2, "é\U0001f600"), _chunk("c5", 1, 2, "ü" * 40)]),
        "escapes": (
            0x03,
            [b'{"p":"ch","k":"chunk","id":"c6","i":0,"n":2,"data":"\\u00e9\\n\\"\\\\"}'],
        ),
    }
    out = {
        name: bytes([config]) + b"\x00".join(messages) for name, (config, messages) in cases.items()
    }
    out["split-unicode"] = bytes([0x18]) + ('"\\é\U0001f600' * 50).encode()
    return out


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
