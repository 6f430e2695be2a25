"""Fuzz target: component events, event specs and patches (``plugins/components``).

INVARIANT: a value or a documented failure, never any other exception, never
unbounded memory.  Here:

* ``parse_event_message`` on any decoded ``cv/ev`` message returns an
  ``EventMessage`` (key and type within their bounds, ``live`` holding only
  ``value`` strings and ``checked``/``selected`` booleans, at most 2,048
  entries) or raises ``MalformedMessage`` (Close 1007);
* ``EventSpec.from_wire`` and ``patch_from_wire`` return or raise
  ``ValueError``; what they return goes back to the same wire form;
  ``apply_patches`` applies them or raises ``PatchError``;
* ``diff(old, new)`` between two trees built from the input (sharing keys,
  so that children move, appear and vanish) gives patches that survive the
  wire (JSON and back) and turn ``old`` into ``new`` under
  ``apply_patches`` (the Python mirror of the browser's applier); a tree
  differs from itself by nothing.

Input: byte 0 is unused but for the seeds' sake; the rest, decoded as UTF-8
(invalid bytes replaced), is split at NUL bytes: the first piece is a
``cv/ev`` message, the second an event spec, the third a list of patches;
what follows drives the two trees of the diff.

Run: ``python fuzz/fuzz_components.py [libFuzzer args] [corpus dirs]``.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import atheris

with atheris.instrument_imports(include=["wsserver"]):
    from wsserver.plugins.components.events import LIVE_PROPS, EventSpec, parse_event_message
    from wsserver.plugins.components.patches import (
        PatchError,
        apply_patches,
        patch_from_wire,
        patch_to_wire,
        patches_to_wire,
    )
    from wsserver.plugins.components.vdom import (
        ROOT_KEY,
        TEXT,
        VNode,
        check_keys,
        child_key,
        diff,
        explicit_key,
        index_key,
        text_key,
    )
    from wsserver.plugins.runtime.messages import MalformedMessage, decode

_TAGS = ("div", "span", "ul", "li", "input", "select")
_KEYS = ("a", "b", "c", "d", "e", "f")
_PROPS = ("class", "id", "value", "checked", "selected", "hidden")
_STYLES = ("color", "width")
_GETTERS = ("auto", "value", "checked", "form", "data:x", "none")
_MAX_DEPTH = 4
_MAX_CHILDREN = 6
_TREE_NODES = 60


def _check_event(text: str) -> None:
    try:
        event = parse_event_message(decode(text))
    except MalformedMessage:
        return
    assert len(event.key) <= 4096 and 1 <= len(event.name) <= 64
    assert len(event.live) <= 2048
    for props in event.live.values():
        for name, value in props.items():
            assert name in LIVE_PROPS
            assert isinstance(value, str) if name == "value" else isinstance(value, bool)


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


def _check_wire(spec_text: str, patches_text: str) -> None:
    try:
        spec = EventSpec.from_wire(_json(spec_text))
    except ValueError:
        pass
    else:
        assert EventSpec.from_wire(spec.to_wire()) == spec
    data = _json(patches_text)
    if not isinstance(data, list):
        return
    patches = []
    for item in data[:64]:
        try:
            patch = patch_from_wire(item)
        except (ValueError, RecursionError):
            # RecursionError: only from node_from_wire on a node nested as
            # deeply as the JSON parser allows, which the browser never
            # sends back (patches flow from the server to the browser).
            continue
        assert patch_from_wire(patch_to_wire(patch)) == patch, "a patch changed on the wire"
        patches.append(patch)
    tree = VNode("div", ROOT_KEY, children=(VNode("span", "r/0", text="x"),))
    try:
        apply_patches(tree, patches)
    except PatchError:
        pass
    except ValueError as exc:
        # VNode's own checks (text and children together) on a patched node.
        assert "text" in str(exc), exc


class _Trees:
    """Two trees from one byte stream: shared keys, so that the diff moves."""

    def __init__(self, fdp: atheris.FuzzedDataProvider) -> None:
        self.fdp = fdp
        self.budget = _TREE_NODES

    def _pick(self, options: tuple[str, ...]) -> str:
        return options[int(self.fdp.ConsumeIntInRange(0, len(options) - 1))]

    def node(self, key: str, depth: int) -> VNode:
        self.budget -= 1
        fdp = self.fdp
        props: dict[str, str | bool] = {}
        for _ in range(fdp.ConsumeIntInRange(0, 2)):
            name = self._pick(_PROPS)
            props[name] = fdp.ConsumeBool() if name in ("checked", "selected") else self._text()
        style = {self._pick(_STYLES): self._text() for _ in range(fdp.ConsumeIntInRange(0, 1))}
        events = {
            self._pick(("click", "input")): EventSpec(
                self._pick(_GETTERS), fdp.ConsumeBool(), False, fdp.ConsumeIntInRange(0, 2)
            )
            for _ in range(fdp.ConsumeIntInRange(0, 1))
        }
        tag = self._pick(_TAGS)
        if fdp.ConsumeBool() or depth >= _MAX_DEPTH or self.budget <= 0:
            return VNode(tag, key, props, style, events, self._text() or None)
        children: list[VNode] = []
        used: set[str] = set()
        for index in range(fdp.ConsumeIntInRange(0, _MAX_CHILDREN)):
            choice = fdp.ConsumeIntInRange(0, 2)
            if choice == 0:
                children.append(VNode(TEXT, child_key(key, text_key(index)), text=self._text()))
                continue
            local = explicit_key(self._pick(_KEYS)) if choice == 1 else index_key(index)
            if local in used:
                continue
            used.add(local)
            children.append(self.node(child_key(key, local), depth + 1))
        return VNode(tag, key, props, style, events, None, tuple(children))

    def _text(self) -> str:
        return str(self.fdp.ConsumeUnicodeNoSurrogates(self.fdp.ConsumeIntInRange(0, 4)))


def _check_diff(rest: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(rest)
    trees = _Trees(fdp)
    old = trees.node(ROOT_KEY, 0)
    trees.budget = _TREE_NODES
    new = trees.node(ROOT_KEY, 0)
    check_keys(old)
    check_keys(new)
    patches = diff(old, new)
    wire = json.loads(json.dumps(patches_to_wire(patches)))
    assert apply_patches(old, [patch_from_wire(item) for item in wire]) == new, "diff is wrong"
    assert diff(new, new) == [], "a tree differs from itself"


def TestOneInput(data: bytes) -> None:
    if not data:
        return
    pieces = data[1:].split(b"\x00", 3)
    texts = [piece.decode("utf-8", "replace") for piece in pieces[:3]]
    texts += [""] * (3 - len(texts))
    _check_event(texts[0])
    _check_wire(texts[1], texts[2])
    _check_diff(pieces[3] if len(pieces) > 3 else b"")


# -- seeds ------------------------------------------------------------------


def seeds() -> dict[str, bytes]:
    """Events the browser sends, specs and patches the server sends, trees."""
    event = b'{"p":"cv","k":"ev","key":"r/0/.b","type":"click","value":null}'
    live = (
        b'{"p":"cv","k":"ev","key":"r/1","type":"input","value":"ab",'
        b'"live":{"r/1":{"value":"ab"},"r/2":{"checked":true},"r/3":{"selected":false}}}'
    )
    bad_event = b'{"p":"cv","k":"ev","key":"r","type":"onclick","live":{"r":{"x":1}}}'
    spec = b'{"v":"value","p":1,"s":1,"d":250}'
    patches = (
        b'[{"o":"ins","k":"r","b":null,"n":{"t":"li","k":"r/.a","a":{"class":"x"},'
        b'"e":{"click":{}},"c":[{"t":"#text","k":"r/.a/#0","x":"hi"}]}},'
        b'{"o":"mv","k":"r/.a","b":"r/0"},{"o":"txt","k":"r/0","x":"y"},'
        b'{"o":"attr","k":"r/0","a":{"id":"i","hidden":null}},{"o":"css","k":"r","s":{"color":"red"}},'
        b'{"o":"ev","k":"r","e":{"click":null,"input":{"v":"value"}}},'
        b'{"o":"rep","k":"r/0","n":{"t":"b","k":"r/0"}},{"o":"rm","k":"r/.a"}]'
    )
    bad_patches = b'[{"o":"rm","k":"r"},{"o":"ins","k":"r/9","n":{}},{"o":"zz","k":"r"},1]'
    trees = bytes(range(256)) * 2
    return {
        "event": b"\x00" + event + b"\x00" + spec + b"\x00" + patches + b"\x00" + trees,
        "live": b"\x00" + live + b"\x00{}\x00[]\x00" + trees[::-1],
        "bad": b"\x00" + bad_event + b"\x00" + b'{"v":"eval(1)"}' + b"\x00" + bad_patches,
        "trees-only": b"\x00\x00\x00\x00" + bytes([7, 200, 3, 1, 99, 42]) * 40,
    }


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
