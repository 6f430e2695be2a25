"""Tests for wsserver.plugins.components.patches: the wire form and the
Python mirror of the browser's applier."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings

from wsserver.plugins.components.events import EventSpec
from wsserver.plugins.components.patches import (
    Insert,
    Move,
    Patch,
    PatchError,
    Remove,
    Replace,
    SetEvents,
    SetProps,
    SetStyle,
    SetText,
    apply_patches,
    node_from_wire,
    node_to_wire,
    patch_from_wire,
    patch_to_wire,
    patches_to_wire,
)
from wsserver.plugins.components.vdom import TEXT, VNode, diff

from .test_vdom import nodes

LI_A = VNode("li", "r/.a", text="a")
LI_B = VNode("li", "r/.b", text="b")
TREE = VNode("ul", "r", children=(LI_A, LI_B))


def test_node_wire_form_leaves_empty_fields_out() -> None:
    assert node_to_wire(VNode("br", "r/0")) == {"t": "br", "k": "r/0"}
    node = VNode(
        "p",
        "r",
        {"id": "x", "hidden": True},
        {"color": "red"},
        {"click": EventSpec(prevent_default=True)},
        None,
        (VNode(TEXT, "r/#0", text=""), VNode("b", "r/1", text="hi")),
    )
    assert node_to_wire(node) == {
        "t": "p",
        "k": "r",
        "a": {"id": "x", "hidden": True},
        "s": {"color": "red"},
        "e": {"click": {"p": 1}},
        "c": [{"t": "#text", "k": "r/#0", "x": ""}, {"t": "b", "k": "r/1", "x": "hi"}],
    }
    assert node_from_wire(node_to_wire(node)) == node


WIRE: list[tuple[Patch, dict[str, Any]]] = [
    (Insert("r", None, LI_A), {"o": "ins", "k": "r", "b": None, "n": node_to_wire(LI_A)}),
    (Insert("r", "r/.b", LI_A), {"o": "ins", "k": "r", "b": "r/.b", "n": node_to_wire(LI_A)}),
    (Remove("r/.a"), {"o": "rm", "k": "r/.a"}),
    (Move("r/.a", None), {"o": "mv", "k": "r/.a", "b": None}),
    (Replace("r/.a", LI_A), {"o": "rep", "k": "r/.a", "n": node_to_wire(LI_A)}),
    (SetText("r/.a", "<b>&"), {"o": "txt", "k": "r/.a", "x": "<b>&"}),
    (
        SetProps("r", {"id": "x", "hidden": None}),
        {"o": "attr", "k": "r", "a": {"id": "x", "hidden": None}},
    ),
    (SetStyle("r", {"color": None}), {"o": "css", "k": "r", "s": {"color": None}}),
    (
        SetEvents("r", {"click": EventSpec("value", debounce_ms=5), "input": None}),
        {"o": "ev", "k": "r", "e": {"click": {"v": "value", "d": 5}, "input": None}},
    ),
]


@pytest.mark.parametrize(("patch", "wire"), WIRE, ids=lambda v: type(v).__name__)
def test_patch_wire_form_round_trips(patch: Patch, wire: dict[str, Any]) -> None:
    assert patch_to_wire(patch) == wire
    assert patch_from_wire(json.loads(json.dumps(wire))) == patch


def test_a_batch_is_a_list() -> None:
    assert patches_to_wire([Remove("a"), Move("b", None)]) == [
        {"o": "rm", "k": "a"},
        {"o": "mv", "k": "b", "b": None},
    ]


@pytest.mark.parametrize(
    "wire",
    [
        None,
        {"o": "rm"},
        {"o": "zap", "k": "r"},
        {"o": "mv", "k": "r", "b": 3},
        {"o": "txt", "k": "r", "x": 1},
        {"o": "attr", "k": "r", "a": {"x": [1]}},
        {"o": "ins", "k": "r", "b": None, "n": {"t": "p"}},
        {"o": "ins", "k": "r", "b": None, "n": {"t": "p", "k": "r/0", "c": {}}},
        {"o": "ev", "k": "r", "e": {"click": {"v": "javascript:alert(1)"}}},
        {"o": "ev", "k": "r", "e": {"click": {"v": "auto", "z": 1}}},
    ],
)
def test_malformed_wire_patches_are_refused(wire: Any) -> None:
    with pytest.raises(ValueError):
        patch_from_wire(wire)


def test_the_applier_applies_each_op() -> None:
    tree = apply_patches(TREE, [Move("r/.b", "r/.a")])
    assert [c.key for c in tree.children] == ["r/.b", "r/.a"]
    tree = apply_patches(TREE, [Remove("r/.a"), SetText("r/.b", "B"), SetProps("r", {"id": "l"})])
    assert tree == VNode("ul", "r", {"id": "l"}, children=(VNode("li", "r/.b", text="B"),))
    replaced = apply_patches(TREE, [Replace("r", VNode("ol", "r"))])
    assert replaced == VNode("ol", "r")
    styled = apply_patches(TREE, [SetStyle("r", {"color": "red"}), SetStyle("r", {"color": None})])
    assert styled == TREE
    click = EventSpec()
    bound = apply_patches(TREE, [SetEvents("r/.a", {"click": click})])
    assert bound.children[0].events == {"click": click}


@pytest.mark.parametrize(
    ("patches", "message"),
    [
        ([Remove("r/.zz")], "no node"),
        ([Remove("r")], "root"),
        ([Move("r", None)], "root"),
        ([Move("r/.a", "r/.a")], "itself"),
        ([Insert("r", None, LI_A)], "already"),
        ([Insert("r", "r/.zz", VNode("li", "r/.c"))], "no node"),
        ([Insert("r/.a", None, VNode("b", "r/.a/0"))], "text"),
        ([Replace("r/.a", LI_B)], "keyed"),
    ],
)
def test_the_applier_refuses_what_does_not_fit(patches: list[Patch], message: str) -> None:
    with pytest.raises(PatchError, match=message):
        apply_patches(TREE, patches)


def test_anchors_must_be_siblings() -> None:
    inner = VNode("ul", "r/0", children=(VNode("li", "r/0/0"),))
    tree = VNode("div", "r", children=(inner, VNode("p", "r/1")))
    with pytest.raises(PatchError, match="not a child"):
        apply_patches(tree, [Move("r/1", "r/0/0")])


@settings(max_examples=100, deadline=None)
@given(nodes(), nodes())
def test_the_wire_form_of_any_diff_round_trips(a: VNode, b: VNode) -> None:
    patches = diff(a, b)
    wire = json.loads(json.dumps(patches_to_wire(patches)))
    assert [patch_from_wire(p) for p in wire] == patches
