"""Fuzz target: page snapshots read back from a store (``plugins/components``).

INVARIANT: a page or a documented failure, never any other exception, never
unbounded memory.  A snapshot comes back from a store the server does not
own (Redis shared by every worker), so it is read as untrusted bytes:

* ``SnapshotCodec.decode`` returns a dict or raises ``SnapshotInvalid`` or
  ``SnapshotTooLarge``, on any bytes; it never inflates more than
  ``max_size`` bytes (the frame's declared size is not believed); a blob
  whose signature is not the page's is refused before decompression;
* what resuming a page does with the data (``PageConnection._attach``):
  ``load_component(data["root"])`` builds registered components or raises
  ``LookupError``, ``ValueError`` or ``TypeError``, the failures ``_attach``
  answers with ``cv/expired``; the restored tree renders
  (``render_tree``); ``History.from_json`` never raises, and keeps at most
  its limit of states.

Input: byte 0 picks the case (bit 0: the rest is a zstandard frame, signed
as is, or JSON text, compressed and signed by the harness; bit 1: the blob
is tampered with and must be refused; bit 2: a small ``max_size``); the
rest is the frame or the JSON.

Run: ``python fuzz/fuzz_snapshots.py [libFuzzer args] [corpus dirs]``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import sys
from typing import Any

import atheris

with atheris.instrument_imports(include=["wsserver"]):
    from wsserver.plugins.components import Component, State, h, render_tree
    from wsserver.plugins.components.component import load_component
    from wsserver.plugins.components.navigation import History
    from wsserver.plugins.components.store import (
        SnapshotCodec,
        SnapshotInvalid,
        SnapshotTooLarge,
    )
    from wsserver.plugins.components.vdom import count_nodes

import zstandard

SECRET = b"fuzz-snapshot-secret-0123456789"
PAGE = "page-1"
MAX_SIZES = (256 * 1024, 512)
HISTORY_LIMIT = 4
_MAGIC = b"cv1"


class Item(Component):
    """A leaf with a text, restored from any JSON value."""

    __module__ = "fuzz_snapshots"  # the same registry name however run
    text = State("")

    def render(self) -> Any:
        return h.li(str(self.text)[:50])


class Page(Component):
    """A root holding child components in a list and a field."""

    __module__ = "fuzz_snapshots"
    title = State("")
    # Restored from untrusted data: any JSON value, whatever the default.
    items: State[Any] = State(factory=list)
    extra: State[Any] = State(None)

    def render(self) -> Any:
        items = self.items if isinstance(self.items, list) else []
        # Keys unique among siblings, as the render that made the snapshot
        # had them: a render that repeats a key is the application's bug
        # (render_tree raises ValueError), not the snapshot's.
        children: list[Component] = []
        keys: set[object] = set()
        for item in items[:50]:
            if isinstance(item, Component) and (item.key is None or item.key not in keys):
                keys.add(item.key)
                children.append(item)
        extra = self.extra if isinstance(self.extra, Component) else h.span("none")
        return h.div(h.h1(str(self.title)[:50]), h.ul(*children), extra)


def _sign(page_id: str, frame: bytes) -> bytes:
    mac = hmac.new(SECRET, _MAGIC + page_id.encode() + b"\x00" + frame, hashlib.sha256).digest()
    return _MAGIC + mac + frame


def _resume(data: dict[str, Any]) -> None:
    """What ``PageConnection._attach`` does with a snapshot's data."""
    try:
        root = load_component(data["root"])
        url, seq = data["url"], data["seq"]
        if not isinstance(url, str) or not isinstance(seq, int):
            raise ValueError("malformed snapshot")
    except (LookupError, ValueError, TypeError):
        return  # answered with cv/expired "invalid"
    history = History.from_json(data.get("hist"), HISTORY_LIMIT)
    assert len(history) <= HISTORY_LIMIT
    rendered = render_tree(root)
    assert count_nodes(rendered.tree) >= 1


def TestOneInput(data: bytes) -> None:
    if not data:
        return
    config, payload = data[0], data[1:]
    codec = SnapshotCodec(SECRET, max_size=MAX_SIZES[(config >> 2) & 0x01])
    frame = payload if config & 0x01 else zstandard.ZstdCompressor(level=1).compress(payload)
    blob = _sign(PAGE, frame)
    if config & 0x02:
        tampered = bytearray(blob)
        position = payload[0] % len(tampered) if payload else 0
        tampered[position] ^= 0x01
        try:
            codec.decode(PAGE, bytes(tampered))
        except SnapshotInvalid:
            pass
        else:
            raise AssertionError("a tampered snapshot was accepted")
        try:
            codec.decode("page-2", blob)
        except SnapshotInvalid:
            pass
        else:
            raise AssertionError("another page's snapshot was accepted")
        return
    try:
        decoded = codec.decode(PAGE, blob)
    except SnapshotTooLarge:
        return
    except SnapshotInvalid:
        return
    assert isinstance(decoded, dict)
    assert len(json.dumps(decoded)) <= 6 * codec.max_size + 2  # \uXXXX at worst
    _resume(decoded)


# -- seeds ------------------------------------------------------------------


def _snapshot(root: dict[str, Any], hist: object = None) -> dict[str, Any]:
    return {"v": 1, "page": "/", "url": "/?a=1", "seq": 3, "root": root, "hist": hist}


def seeds() -> dict[str, bytes]:
    """Snapshots as the server writes them, and broken ones."""
    item = {"c": "fuzz_snapshots:Item", "k": None, "s": {"text": "one"}}
    page = {
        "c": "fuzz_snapshots:Page",
        "k": None,
        "s": {
            "title": "hello",
            "items": [{"$c": item}, {"$c": {**item, "k": "b"}}],
            "extra": {"$d": {"$c": "a user dict"}},
        },
    }
    hist = {"cur": 1, "next": 3, "states": [[0, {"url": "/", "root": page}], [2, {}]]}
    cases: dict[str, tuple[int, bytes]] = {
        "page": (0x00, json.dumps(_snapshot(page, hist)).encode()),
        "unknown-class": (0x00, json.dumps(_snapshot({"c": "x:Y", "k": None, "s": {}})).encode()),
        "bad-root": (0x00, json.dumps(_snapshot({"c": 1})).encode()),
        "not-an-object": (0x00, b"[1, 2, 3]"),
        "not-json": (0x00, b'{"v": 1, '),
        "nested": (
            0x00,
            json.dumps(_snapshot(page)).encode().replace(b'"one"', b"[" * 400 + b"]" * 400),
        ),
        "too-large": (0x04, json.dumps(_snapshot({**page, "pad": "x" * 600})).encode()),
        "tampered": (0x02, json.dumps(_snapshot(page)).encode()),
        "raw-frame": (0x01, zstandard.ZstdCompressor().compress(b'{"root": {}}')),
        "raw-no-size": (
            0x01,
            zstandard.ZstdCompressor(write_content_size=False).compress(b"{}" + b" " * 2000),
        ),
        "raw-garbage": (0x01, b"\x28\xb5\x2f\xfd" + bytes(20)),
    }
    return {name: bytes([config]) + payload for name, (config, payload) in cases.items()}


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
