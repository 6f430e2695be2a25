"""Tests for wsserver.plugins.channels.chunks: splitting and reassembly.

Splitting is checked as a property (hypothesis): any text, including
escapes, control characters, multi-byte and astral characters, comes back
whole, and every chunk message fits the limit.  Reassembly: out of order by
index, duplicates and changed counts refused, the size, count and pending
limits, and the timeout of a message whose chunks do not all arrive.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wsserver.plugins.channels.chunks import (
    MAX_CHUNK_ID_LENGTH,
    Chunk,
    ChunkError,
    Reassembler,
    make_chunks,
    parse_chunk,
    split_text,
)
from wsserver.plugins.runtime.messages import (
    Envelope,
    MalformedMessage,
    MessageTooLarge,
    decode,
    encode,
    utf8_length,
)

# Text that stresses the escaping: quotes, backslashes, controls (6-byte
# escapes), 2- to 4-byte UTF-8 characters.
HARD = 'a"\\\n\x00\x1f é€😀 ' * 50


def escaped_size(piece: str) -> int:
    return utf8_length(json.dumps(piece, ensure_ascii=False)) - 2


# ---------------------------------------------------------------------------
# split_text and make_chunks
# ---------------------------------------------------------------------------


@given(text=st.text(max_size=3000), budget=st.integers(min_value=64, max_value=700))
@settings(max_examples=200, deadline=None)
def test_split_text_gives_the_text_back_in_slices_within_budget(text: str, budget: int) -> None:
    pieces = split_text(text, budget)
    assert "".join(pieces) == text
    assert all(piece and escaped_size(piece) <= budget for piece in pieces)


def test_split_text_of_hard_text_and_of_nothing() -> None:
    pieces = split_text(HARD, 64)
    assert "".join(pieces) == HARD
    assert max(escaped_size(p) for p in pieces) <= 64
    assert split_text("", 64) == []


def test_split_text_refuses_a_tiny_budget() -> None:
    with pytest.raises(ValueError, match="too small"):
        split_text("abc", 63)


@pytest.mark.parametrize("limit", [256, 1000, 4096])
def test_make_chunks_fit_the_limit_and_reassemble(limit: int) -> None:
    text = encode("ch", "msg", {"data": HARD * 3})
    messages = make_chunks(text, chunk_id="s1", limit=limit)
    assert len(messages) > 1
    assert all(utf8_length(m) <= limit for m in messages)
    envelopes = [decode(m) for m in messages]
    assert [(e.plugin, e.kind) for e in envelopes] == [("ch", "chunk")] * len(messages)
    assert [e["i"] for e in envelopes] == list(range(len(messages)))
    assert {e["n"] for e in envelopes} == {len(messages)}
    assert {e["id"] for e in envelopes} == {"s1"}
    assert "".join(e["data"] for e in envelopes) == text


def test_make_chunks_of_a_small_message_is_one_chunk() -> None:
    text = encode("ch", "msg", {"data": 1})
    (only,) = make_chunks(text, chunk_id="x", limit=1000)
    assert decode(only).fields == {"id": "x", "i": 0, "n": 1, "data": text}


def test_make_chunks_refuses_a_limit_too_small_for_data() -> None:
    with pytest.raises(ValueError):
        make_chunks("x" * 100, chunk_id="s1", limit=80)


# ---------------------------------------------------------------------------
# parse_chunk
# ---------------------------------------------------------------------------


def test_parse_chunk_reads_the_fields() -> None:
    envelope = Envelope("ch", "chunk", {"id": "c1", "i": 2, "n": 3, "data": "x"})
    assert parse_chunk(envelope, max_chunks=10) == Chunk("c1", 2, 3, "x")


@pytest.mark.parametrize(
    "fields",
    [
        {"i": 0, "n": 1, "data": ""},
        {"id": "", "i": 0, "n": 1, "data": ""},
        {"id": "x" * (MAX_CHUNK_ID_LENGTH + 1), "i": 0, "n": 1, "data": ""},
        {"id": 5, "i": 0, "n": 1, "data": ""},
        {"id": "a", "i": 0, "n": 0, "data": ""},
        {"id": "a", "i": 0, "n": 11, "data": ""},
        {"id": "a", "i": 0, "n": True, "data": ""},
        {"id": "a", "i": 1, "n": 1, "data": ""},
        {"id": "a", "i": -1, "n": 2, "data": ""},
        {"id": "a", "i": 0.0, "n": 2, "data": ""},
        {"id": "a", "i": 0, "n": 2},
        {"id": "a", "i": 0, "n": 2, "data": ["x"]},
    ],
)
def test_parse_chunk_refuses_bad_fields(fields: dict[str, Any]) -> None:
    with pytest.raises(ChunkError):
        parse_chunk(Envelope("ch", "chunk", fields), max_chunks=10)
    # A ChunkError is a MalformedMessage: the session closes with 1007.
    assert issubclass(ChunkError, MalformedMessage)


# ---------------------------------------------------------------------------
# Reassembler
# ---------------------------------------------------------------------------


def chunks_of(text: str, chunk_id: str, size: int) -> list[Chunk]:
    parts = [text[i : i + size] for i in range(0, len(text), size)]
    return [Chunk(chunk_id, i, len(parts), part) for i, part in enumerate(parts)]


def test_chunks_in_any_order_are_joined_by_index() -> None:
    reassembler = Reassembler()
    chunks = chunks_of("abcdefghij", "m", 3)
    assert [reassembler.add(c, 0.0) for c in reversed(chunks[1:])] == [None, None, None]
    assert reassembler.pending == 1 and reassembler.size == 7
    assert reassembler.add(chunks[0], 0.0) == "abcdefghij"
    assert reassembler.pending == 0 and reassembler.size == 0


def test_interleaved_messages_are_kept_apart() -> None:
    reassembler = Reassembler()
    a, b = chunks_of("aaaa", "a", 2), chunks_of("bbbbbb", "b", 2)
    assert reassembler.add(a[0], 0) is None
    assert reassembler.add(b[2], 0) is None
    assert reassembler.add(b[0], 0) is None
    assert reassembler.add(a[1], 0) == "aaaa"
    assert reassembler.add(b[1], 0) == "bbbbbb"


def test_a_single_chunk_is_the_message() -> None:
    assert Reassembler().add(Chunk("x", 0, 1, "whole"), 0.0) == "whole"


def test_duplicate_and_changed_count_are_errors() -> None:
    reassembler = Reassembler()
    reassembler.add(Chunk("m", 0, 3, "a"), 0)
    with pytest.raises(ChunkError, match="twice"):
        reassembler.add(Chunk("m", 0, 3, "a"), 0)
    with pytest.raises(ChunkError, match="count changed"):
        reassembler.add(Chunk("m", 1, 4, "b"), 0)


def test_size_limit_counts_every_message_in_progress() -> None:
    reassembler = Reassembler(max_size=10)
    reassembler.add(Chunk("a", 0, 2, "x" * 6), 0)
    with pytest.raises(MessageTooLarge) as caught:
        reassembler.add(Chunk("b", 0, 2, "y" * 5), 0)
    assert (caught.value.size, caught.value.limit) == (11, 10)
    # Bytes, not characters: "é" is two.
    with pytest.raises(MessageTooLarge):
        reassembler.add(Chunk("a", 1, 2, "éé" * 2), 0)


def test_count_and_pending_limits() -> None:
    reassembler = Reassembler(max_chunks=4, max_pending=2)
    with pytest.raises(ChunkError, match="more than 4 chunks"):
        reassembler.add(Chunk("a", 0, 5, "x"), 0)
    reassembler.add(Chunk("a", 0, 2, "x"), 0)
    reassembler.add(Chunk("b", 0, 2, "x"), 0)
    with pytest.raises(ChunkError, match="at once"):
        reassembler.add(Chunk("c", 0, 2, "x"), 0)


def test_a_message_missing_chunks_expires() -> None:
    reassembler = Reassembler(timeout=5.0)
    assert reassembler.next_deadline is None
    reassembler.add(Chunk("old", 0, 2, "xx"), 100.0)
    reassembler.add(Chunk("new", 0, 2, "yy"), 102.0)
    assert reassembler.next_deadline == 105.0
    assert reassembler.expire(104.9) == []
    assert reassembler.expire(105.0) == ["old"]
    assert reassembler.expired == 1
    assert reassembler.pending == 1 and reassembler.size == 2
    assert reassembler.next_deadline == 107.0
    # The late chunk of the expired message starts a new one, which never ends.
    assert reassembler.add(Chunk("old", 1, 2, "xx"), 106.0) is None
    assert reassembler.expire(200.0) == ["new", "old"]
    assert reassembler.size == 0


def test_clear_drops_everything() -> None:
    reassembler = Reassembler()
    reassembler.add(Chunk("a", 0, 2, "x"), 0)
    reassembler.clear()
    assert reassembler.pending == 0 and reassembler.size == 0


@pytest.mark.parametrize(
    "options",
    [
        {"max_size": 0},
        {"max_chunks": 0},
        {"max_pending": 0},
        {"timeout": 0},
        {"timeout": float("inf")},
    ],
)
def test_bad_settings(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        Reassembler(**options)


def test_make_chunks_and_reassembler_round_trip() -> None:
    text = encode("ch", "custom", {"kind": "k", "data": HARD * 20})
    reassembler = Reassembler()
    chunks = [
        parse_chunk(decode(m), max_chunks=1024) for m in make_chunks(text, chunk_id="c9", limit=512)
    ]
    results = [reassembler.add(chunk, 0.0) for chunk in chunks[::-1]]
    assert results[:-1] == [None] * (len(chunks) - 1)
    assert results[-1] == text


def test_a_chunk_holding_a_lone_surrogate_escape_is_reassembled() -> None:
    # Found by fuzz/fuzz_chunks.py: "\ud800" in a chunk's data decoded to a
    # lone surrogate, and counting its UTF-8 size raised UnicodeEncodeError
    # (Close 1011 and a traceback, not the documented 1007/1009).  The
    # decoder now replaces it with U+FFFD, as the browser's encoder would.
    reassembler = Reassembler(max_size=64)
    first = '{"p":"ch","k":"chunk","id":"a","i":0,"n":2,"data":"x\\ud800"}'
    second = '{"p":"ch","k":"chunk","id":"a","i":1,"n":2,"data":"\\udc00y"}'
    assert reassembler.add(parse_chunk(decode(first), max_chunks=2), 0.0) is None
    assert reassembler.size == 4  # "x" and U+FFFD
    joined = reassembler.add(parse_chunk(decode(second), max_chunks=2), 0.0)
    assert joined == "x\ufffd\ufffdy"
