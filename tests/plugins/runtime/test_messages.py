"""Tests for wsserver.plugins.runtime.messages: envelopes, limits, registry."""

from __future__ import annotations

import json
import logging
from types import MappingProxyType

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wsserver.plugins.runtime.messages import (
    Envelope,
    HandlerRegistry,
    MalformedMessage,
    MessageTooLarge,
    UnknownKindLog,
    decode,
    encode,
    utf8_length,
    validate_name,
)

# ---------------------------------------------------------------------------
# encode
# ---------------------------------------------------------------------------


def test_encode_puts_plugin_and_kind_first_compactly() -> None:
    text = encode("js", "exec", {"id": 1, "code": "1+1"})
    assert text == '{"p":"js","k":"exec","id":1,"code":"1+1"}'


def test_encode_keeps_non_ascii_as_is() -> None:
    assert encode("rt", "x", {"s": "é😀"}) == '{"p":"rt","k":"x","s":"é😀"}'


def test_encode_without_fields() -> None:
    assert encode("rt", "pong") == '{"p":"rt","k":"pong"}'


@pytest.mark.parametrize("field", ["p", "k"])
def test_encode_refuses_reserved_fields(field: str) -> None:
    with pytest.raises(ValueError, match="reserved"):
        encode("rt", "x", {field: 1})


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_encode_refuses_what_json_parse_refuses(value: float) -> None:
    with pytest.raises(ValueError):
        encode("rt", "x", {"v": value})


def test_encode_refuses_unserialisable_values() -> None:
    with pytest.raises(TypeError):
        encode("rt", "x", {"v": object()})


def test_encode_refuses_lone_surrogates_under_a_limit() -> None:
    # No text frame can carry one; a ValueError says so before sending.
    with pytest.raises(ValueError):
        encode("rt", "x", {"v": "\ud800"}, limit=100)


@pytest.mark.parametrize("name", ["", "JS", "1x", "a b", "a" * 33, "é", "a/b"])
def test_encode_refuses_bad_names(name: str) -> None:
    with pytest.raises(ValueError, match="invalid plugin"):
        encode(name, "x")
    with pytest.raises(ValueError, match="invalid kind"):
        encode("rt", name)


@pytest.mark.parametrize("name", ["a", "js", "view.patch", "a-b_c9", "a" * 32])
def test_validate_name_accepts(name: str) -> None:
    assert validate_name(name) == name


def test_validate_name_refuses_non_strings() -> None:
    with pytest.raises(ValueError):
        validate_name(3)


def test_encode_limit_counts_utf8_bytes() -> None:
    text = encode("rt", "x", {"s": "é"})
    size = len(text.encode())
    assert size == len(text) + 1
    assert encode("rt", "x", {"s": "é"}, limit=size) == text
    with pytest.raises(MessageTooLarge) as caught:
        encode("rt", "x", {"s": "é"}, limit=size - 1)
    assert (caught.value.size, caught.value.limit) == (size, size - 1)
    assert isinstance(caught.value, ValueError)


def test_utf8_length() -> None:
    assert utf8_length("") == 0
    assert utf8_length("abc") == 3
    assert utf8_length("é😀") == 2 + 4


# ---------------------------------------------------------------------------
# decode
# ---------------------------------------------------------------------------


def test_decode_splits_plugin_kind_and_fields() -> None:
    message = decode('{"p":"js","k":"result","id":3,"ok":true,"value":[1,"a"]}')
    assert (message.plugin, message.kind) == ("js", "result")
    assert dict(message.fields) == {"id": 3, "ok": True, "value": [1, "a"]}
    assert message["id"] == 3
    assert "ok" in message
    assert message.get("missing", 9) == 9
    assert sorted(message) == ["id", "ok", "value"]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "{",
        "{not json",
        "nul",
        "[1,2]",
        '"text"',
        "3",
        "null",
        "{}",
        '{"p":"js"}',
        '{"k":"x"}',
        '{"p":1,"k":"x"}',
        '{"p":"js","k":null}',
        '{"p":"","k":"x"}',
        '{"p":"js","k":"x","v":NaN}',
        '{"p":"js","k":"x","v":Infinity}',
        '{"p":"js","k":"x","v":-Infinity}',
        "[" * 100_000 + "]" * 100_000,
        '{"p":"js","k":"x","v":' + "1" * 5000 + "}",
    ],
    ids=lambda text: text[:30],
)
def test_decode_refuses_malformed_messages(text: str) -> None:
    with pytest.raises(MalformedMessage):
        decode(text)


@pytest.mark.parametrize("number", ["1e400", "-1E+999", "1.5e309"])
def test_decode_refuses_numbers_a_float_cannot_hold(number: str) -> None:
    # Found by fuzz/fuzz_runtime.py: ``1e400`` decoded to infinity, which
    # ``encode`` then refused, so a handler echoing a value failed far from
    # the cause.  The message is refused as NaN and Infinity are.
    with pytest.raises(MalformedMessage, match="out of range"):
        decode('{"p":"js","k":"x","v":' + number + "}")
    assert decode('{"p":"js","k":"x","v":1.5e308}')["v"] == 1.5e308


def test_decode_replaces_lone_surrogate_escapes() -> None:
    # Found by fuzz/fuzz_chunks.py: a "\\ud800" escape gave a string no UTF-8
    # encoder takes, and the first handler to count or send it raised.
    # Valid pairs stay one character; lone halves become U+FFFD, in values,
    # keys and nested values alike.
    message = decode(
        '{"p":"js","k":"x","v":"a\\ud800b\\ud83d\\ude00","\\udc00":["\\uDFFF",{"w":"\\ud800"}]}'
    )
    assert message["v"] == "a\ufffdb\U0001f600"
    assert message["\ufffd"] == ["\ufffd", {"w": "\ufffd"}]
    assert utf8_length(encode("js", "x", message.fields)) > 0
    # An escaped backslash before "ud800" is no escape: nothing changes.
    assert decode('{"p":"js","k":"x","v":"\\\\ud800"}')["v"] == "\\ud800"


def test_decode_limit() -> None:
    text = '{"p":"rt","k":"ping","n":1}'
    assert decode(text, limit=len(text)).kind == "ping"
    with pytest.raises(MessageTooLarge):
        decode(text, limit=len(text) - 1)


def test_decode_accepts_unknown_names_for_the_registry_to_report() -> None:
    # Names are validated where handlers are registered; an unknown name from
    # the peer is just an unknown kind.
    message = decode('{"p":"Some Plugin","k":"?!"}')
    assert (message.plugin, message.kind) == ("Some Plugin", "?!")


@given(
    st.sampled_from(["rt", "js", "view"]),
    st.sampled_from(["init", "exec", "result"]),
    st.dictionaries(
        st.text(min_size=1).filter(lambda key: key not in ("p", "k")),
        st.recursive(
            st.none()
            | st.booleans()
            | st.integers()
            | st.floats(allow_nan=False, allow_infinity=False)
            | st.text(),
            lambda children: st.lists(children) | st.dictionaries(st.text(), children),
            max_leaves=10,
        ),
        max_size=5,
    ),
)
def test_encode_then_decode_round_trips(plugin: str, kind: str, fields: dict[str, object]) -> None:
    message = decode(encode(plugin, kind, fields))
    assert message == Envelope(plugin, kind, fields)
    assert json.loads(Envelope(plugin, kind, fields).encode()) == {"p": plugin, "k": kind, **fields}


# ---------------------------------------------------------------------------
# Envelope
# ---------------------------------------------------------------------------


def test_envelope_is_frozen_and_copies_its_fields() -> None:
    fields = {"a": 1}
    message = Envelope("rt", "x", fields)
    fields["a"] = 2
    assert message["a"] == 1
    assert isinstance(message.fields, MappingProxyType)
    with pytest.raises(AttributeError):
        message.kind = "y"  # type: ignore[misc]
    with pytest.raises(TypeError):
        message.fields["a"] = 3  # type: ignore[index]


def test_envelope_to_dict() -> None:
    assert Envelope("js", "exec", {"id": 1}).to_dict() == {"p": "js", "k": "exec", "id": 1}


def test_require_returns_fields_of_the_right_type() -> None:
    message = Envelope("js", "result", {"id": 3, "ok": True, "f": 1, "s": "x", "d": {}})
    assert message.require("id", int) == 3
    assert message.require("ok", bool) is True
    assert message.require("f", float) == 1  # JSON does not tell 1 from 1.0
    assert message.require("s", str) == "x"
    assert message.require("d", dict) == {}
    assert message.require("s", (int, str)) == "x"


@pytest.mark.parametrize(
    ("fields", "name", "expected", "error"),
    [
        ({}, "id", int, "missing field 'id'"),
        ({"id": "3"}, "id", int, "must be int, not str"),
        ({"id": True}, "id", int, "must be int, not bool"),
        ({"id": 1.5}, "id", int, "must be int, not float"),
        ({"ok": 1}, "ok", bool, "must be bool, not int"),
        ({"f": False}, "f", float, "must be float, not bool"),
        ({"d": []}, "d", dict, "must be dict, not list"),
    ],
)
def test_require_refuses(fields: dict[str, object], name: str, expected: type, error: str) -> None:
    with pytest.raises(MalformedMessage, match=error):
        Envelope("js", "result", fields).require(name, expected)


# ---------------------------------------------------------------------------
# HandlerRegistry
# ---------------------------------------------------------------------------


def test_registry_registers_looks_up_and_unregisters() -> None:
    registry = HandlerRegistry()

    def handler(message: Envelope) -> None:
        pass

    registry.register("js", "result", handler)
    assert registry.lookup("js", "result") is handler
    assert ("js", "result") in registry
    assert len(registry) == 1
    assert registry.kinds() == [("js", "result")]
    assert registry.lookup("js", "exec") is None
    assert registry.unregister("js", "result") is handler
    assert registry.unregister("js", "result") is None
    assert len(registry) == 0


def test_registry_refuses_a_second_handler_unless_replacing() -> None:
    registry = HandlerRegistry()

    def first(message: Envelope) -> None:
        pass

    def second(message: Envelope) -> None:
        pass

    registry.register("js", "result", first)
    with pytest.raises(ValueError, match="already registered"):
        registry.register("js", "result", second)
    registry.register("js", "result", second, replace=True)
    assert registry.lookup("js", "result") is second


def test_registry_validates_names() -> None:
    with pytest.raises(ValueError):
        HandlerRegistry().register("JS", "result", lambda message: None)


# ---------------------------------------------------------------------------
# UnknownKindLog
# ---------------------------------------------------------------------------


def test_unknown_kinds_are_logged_once_per_kind_with_the_connection_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = UnknownKindLog(42)
    with caplog.at_level(logging.WARNING, logger="wsserver.plugins.runtime"):
        assert log.report("nope", "a") is True
        assert log.report("nope", "a") is False
        assert log.report("nope", "b") is True
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2
    assert all(line.startswith("conn 42: unknown message kind") for line in lines)
    assert "'nope'/'a'" in lines[0]
    assert log.count == 3


def test_unknown_kind_log_is_bounded(caplog: pytest.LogCaptureFixture) -> None:
    log = UnknownKindLog(1, limit=3)
    with caplog.at_level(logging.WARNING, logger="wsserver.plugins.runtime"):
        for i in range(10):
            log.report("p", f"k{i}")
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 4
    assert "more than 3 unknown message kinds" in lines[-1]
    assert log.count == 10


def test_unknown_kind_log_truncates_long_names(caplog: pytest.LogCaptureFixture) -> None:
    log = UnknownKindLog(1)
    with caplog.at_level(logging.WARNING, logger="wsserver.plugins.runtime"):
        log.report("p" * 10_000, "k")
    assert len(caplog.records[0].getMessage()) < 300
