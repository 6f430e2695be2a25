"""Fuzz target: the browser runtime's message decoder (``plugins/runtime/messages.py``).

INVARIANT: a message or a documented failure, never any other exception,
never unbounded memory.  Here:

* ``decode(text, limit=...)`` returns an ``Envelope`` or raises
  ``MessageTooLarge`` (more than ``limit`` UTF-8 bytes, and only then) or
  ``MalformedMessage``, on any text a text frame can carry (valid UTF-8);
  JSON nested too deeply, ``NaN`` and ``Infinity`` included;
* an envelope's plugin and kind are non-empty strings, its fields hold
  neither ``p`` nor ``k``, and ``to_dict()`` gives back the decoded object;
* ``require(name, type)`` on any field, for the types handlers ask for,
  returns a value of that type or raises ``MalformedMessage``;
* every string in an envelope is valid Unicode (a lone surrogate escaped as
  ``\\ud800`` is replaced by U+FFFD), so its UTF-8 size can be counted;
* an envelope whose names are valid re-encodes (``encode``) and decodes to
  itself (numbers beyond a float's range, which ``encode`` would refuse,
  are refused by ``decode``);
* ``UnknownKindLog`` remembers at most its limit of kinds, whatever the
  peer's names.

Input: byte 0 picks the limit (bits 0-1: none, 64, 1 KiB, 1 MiB); the rest,
decoded as UTF-8 (invalid bytes replaced, as a text frame is always valid
UTF-8), is split at NUL bytes into messages received one after the other by
one connection.

Run: ``python fuzz/fuzz_runtime.py [libFuzzer args] [corpus dirs]``.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

import atheris

with atheris.instrument_imports(include=["wsserver"]):
    from wsserver.plugins.runtime.messages import (
        Envelope,
        MalformedMessage,
        MessageTooLarge,
        UnknownKindLog,
        decode,
        encode,
        utf8_length,
        validate_name,
    )

LIMITS = (None, 64, 1024, 1 << 20)
_KNOWN_LIMIT = 8
_TYPES: tuple[type[Any] | tuple[type[Any], ...], ...] = (
    str,
    int,
    float,
    bool,
    dict,
    list,
    (int, float),
    (str, type(None)),
)


def _well_formed(value: Any) -> Any:
    # The harness's own copy of the rule: lone surrogates become U+FFFD.
    if isinstance(value, str):
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if isinstance(value, list):
        return [_well_formed(item) for item in value]
    if isinstance(value, dict):
        return {_well_formed(name): _well_formed(item) for name, item in value.items()}
    return value


def _valid_name(name: str) -> bool:
    try:
        validate_name(name)
    except ValueError:
        return False
    return True


def _check_envelope(envelope: Envelope, text: str) -> None:
    assert envelope.plugin, "an empty plugin name"
    assert envelope.kind, "an empty kind"
    assert "p" not in envelope.fields and "k" not in envelope.fields
    try:
        expected = _well_formed(json.loads(text))
    except RecursionError:
        expected = None  # the harness's walk is deeper than the decoder's
    if expected is not None:
        assert envelope.to_dict() == expected, "to_dict() is not the message"
    for name in list(envelope)[:16]:
        for expected in _TYPES:
            try:
                value = envelope.require(name, expected)
            except MalformedMessage:
                continue
            types = expected if isinstance(expected, tuple) else (expected,)
            if float in types and not isinstance(value, bool) and isinstance(value, int):
                continue  # JSON does not tell 1 from 1.0
            assert isinstance(value, types), f"require({name!r}, {expected}) gave {value!r}"
            assert not isinstance(value, bool) or bool in types, "true taken for a number"
    try:
        envelope.require("\x00missing", str)
    except MalformedMessage:
        pass
    else:
        raise AssertionError("require() accepted a missing field")
    if _valid_name(envelope.plugin) and _valid_name(envelope.kind):
        try:
            again = encode(envelope.plugin, envelope.kind, envelope.fields)
        except ValueError as exc:
            raise AssertionError(f"a decoded message does not re-encode: {exc}") from exc
        utf8_length(again)  # raises on a lone surrogate
        assert decode(again) == envelope, "re-encoding changed the message"


def TestOneInput(data: bytes) -> None:
    if not data:
        return
    limit = LIMITS[data[0] & 0x03]
    unknown = UnknownKindLog(0, limit=_KNOWN_LIMIT)
    for piece in data[1:].split(b"\x00")[:64]:
        text = piece.decode("utf-8", "replace")
        size = len(text.encode("utf-8"))
        try:
            envelope = decode(text, limit=limit)
        except MessageTooLarge as exc:
            assert limit is not None and size > limit, f"refused {size} bytes under {limit}"
            assert exc.size == size and exc.limit == limit
            continue
        except MalformedMessage:
            assert limit is None or size <= limit, "a message over the limit was parsed"
            continue
        assert limit is None or size <= limit, "a message over the limit was accepted"
        _check_envelope(envelope, text)
        unknown.report(envelope.plugin, envelope.kind)
    assert len(unknown._seen) <= _KNOWN_LIMIT


# -- seeds ------------------------------------------------------------------


def seeds() -> dict[str, bytes]:
    """Messages the runtime and its plugins send and receive, and broken ones."""
    messages = {
        "ping": [b'{"p":"rt","k":"ping","n":1}', b'{"p":"rt","k":"pong","n":2}'],
        "js-result": [
            b'{"p":"js","k":"result","id":3,"ok":true,"value":[1,2,{"a":null}]}',
            b'{"p":"js","k":"result","id":4,"ok":false,"error":{"name":"TypeError",'
            b'"message":"x is undefined","stack":"at f"}}',
        ],
        "components": [
            b'{"p":"cv","k":"ev","key":"r/0/.b","type":"click","value":null}',
            b'{"p":"cv","k":"nav","href":"/items/1?x=2#top","method":"GET"}',
            b'{"p":"cv","k":"attach","page":"abc","seq":3,"count":12}',
        ],
        "channels": [
            b'{"p":"ch","k":"chunk","id":"c1","i":0,"n":2,"data":"{\\"p\\":\\"ch\\","}',
            b'{"p":"ch","k":"send","topic":"room","data":{"text":"hi \\u00e9"}}',
        ],
        "unknown-kinds": [f'{{"p":"x{i}","k":"y"}}'.encode() for i in range(12)],
        "broken": [
            b"",
            b"[]",
            b'{"p":1,"k":"x"}',
            b'{"p":"a"}',
            b"NaN",
            b'{"p":"a","k":"b","v":Infinity}',
            b"[" * 3000,
            b'{"p":"a","k":"b","s":"\\ud800"}',
            b'{"p":"a","k":"b","p":"c"}',
        ],
        "unicode": ['{"p":"é","k":"ü","t":"\U0001f600"}'.encode()],
    }
    out = {name: bytes([0]) + b"\x00".join(texts) for name, texts in messages.items()}
    out["limit-64"] = bytes([1]) + b'{"p":"rt","k":"ping","pad":"' + b"x" * 60 + b'"}'
    out["limit-1k"] = bytes([2]) + b'{"p":"rt","k":"ping","pad":"' + "é".encode() * 600 + b'"}'
    out["limit-1m"] = bytes([3]) + messages["components"][0]
    return out


def main() -> None:
    # One line per unknown kind is the point of UnknownKindLog, not news here.
    logging.getLogger("wsserver").setLevel(logging.CRITICAL)
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
