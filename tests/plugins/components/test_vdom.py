"""Tests for wsserver.plugins.components.vdom: nodes, keys, LIS and the diff.

The property tests are the heart: for random trees ``a`` and ``b``,
applying ``diff(a, b)`` to ``a`` (in the Python mirror of the browser's
applier, ``patches.apply_patches``) gives ``b``; and a pure reorder of ``n``
keyed children sends exactly ``n - LIS`` moves and nothing else.
"""

from __future__ import annotations

import itertools
import random
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wsserver.plugins.components.events import EventSpec
from wsserver.plugins.components.patches import (
    Insert,
    Move,
    Remove,
    Replace,
    SetEvents,
    SetProps,
    SetStyle,
    SetText,
    apply_patches,
)
from wsserver.plugins.components.vdom import (
    ROOT_KEY,
    TEXT,
    VNode,
    check_keys,
    child_key,
    count_nodes,
    diff,
    explicit_key,
    find,
    index_key,
    is_within,
    iter_nodes,
    lis,
    text_key,
)


def el(tag: str, key: str, *children: VNode, text: str | None = None, **props: Any) -> VNode:
    return VNode(tag, key, props, text=text, children=children)


def keyed_list(keys: list[str], parent: str = ROOT_KEY) -> VNode:
    return VNode(
        "ul",
        parent,
        children=tuple(
            VNode("li", child_key(parent, explicit_key(k)), text=f"item {k}") for k in keys
        ),
    )


def brute_lis_length(sequence: list[int]) -> int:
    best = [1] * len(sequence)
    for i in range(len(sequence)):
        for j in range(i):
            if sequence[j] < sequence[i]:
                best[i] = max(best[i], best[j] + 1)
    return max(best, default=0)


# ---------------------------------------------------------------------------
# Nodes and keys
# ---------------------------------------------------------------------------


def test_a_node_normalises_its_fields() -> None:
    node = VNode("div", "r", {"id": "x"}, {"color": "red"}, {}, "", [])  # type: ignore[arg-type]
    assert node.text is None  # empty text and no children render the same DOM
    assert node.children == ()
    assert dict(node.props) == {"id": "x"}
    with pytest.raises(TypeError):
        node.props["id"] = "y"  # type: ignore[index]
    assert VNode(TEXT, "r/#0").text == ""
    assert VNode(TEXT, "r/#0").is_text


def test_a_node_cannot_have_text_and_children() -> None:
    with pytest.raises(ValueError, match="both"):
        VNode("p", "r", text="x", children=(VNode(TEXT, "r/#0", text="y"),))
    with pytest.raises(ValueError, match="only text"):
        VNode(TEXT, "r/#0", {"id": "x"}, text="y")


def test_equal_trees_are_equal() -> None:
    assert el("p", "r", text="a", id="1") == el("p", "r", text="a", id="1")
    assert el("p", "r", text="a") != el("p", "r", text="b")


def test_keys_are_paths() -> None:
    assert explicit_key("todo-3") == ".todo-3"
    assert explicit_key(3) == ".3"
    # Encoded so that a user's key never holds "/" nor looks like an index.
    assert explicit_key("a/b c") == ".a%2Fb%20c"
    assert index_key(2) == "2"
    assert text_key(1) == "#1"
    assert child_key("r", ".x") == "r/.x"
    assert is_within("r/.x/1", "r/.x")
    assert is_within("r/.x", "r/.x")
    assert not is_within("r/.xy", "r/.x")


def test_walking_counting_and_finding() -> None:
    tree = el("div", "r", el("p", "r/0", text="a"), el("ul", "r/1", el("li", "r/1/0")))
    assert [n.key for n in iter_nodes(tree)] == ["r", "r/0", "r/1", "r/1/0"]
    assert count_nodes(tree) == 4
    found = find(tree, "r/1/0")
    assert found is not None and found.tag == "li"
    assert find(tree, "nope") is None
    check_keys(tree)
    with pytest.raises(ValueError, match="duplicate"):
        check_keys(el("div", "r", el("p", "r/0"), el("p", "r/0")))


# ---------------------------------------------------------------------------
# LIS
# ---------------------------------------------------------------------------


def test_lis_examples() -> None:
    assert lis([]) == []
    assert lis([5]) == [0]
    assert lis([3, 0, 1, 4, 2]) == [1, 2, 4]
    assert lis([0, 1, 2, 3]) == [0, 1, 2, 3]
    assert len(lis([3, 2, 1, 0])) == 1
    assert lis([-1, 0, -1, 1]) == [1, 3]  # new children (-1) are skipped


@given(st.lists(st.integers(-1, 40), max_size=60))
def test_lis_is_a_longest_increasing_subsequence(sequence: list[int]) -> None:
    positions = lis(sequence)
    values = [sequence[p] for p in positions]
    assert positions == sorted(positions)
    assert all(v >= 0 for v in values)
    assert all(a < b for a, b in itertools.pairwise(values))
    assert len(positions) == brute_lis_length([v for v in sequence if v >= 0])


# ---------------------------------------------------------------------------
# The diff, by example
# ---------------------------------------------------------------------------


def test_identical_trees_give_no_patches() -> None:
    tree = el("div", "r", el("p", "r/0", text="a"))
    assert diff(tree, tree) == []
    assert diff(tree, el("div", "r", el("p", "r/0", text="a"))) == []


def test_roots_must_share_a_key() -> None:
    with pytest.raises(ValueError, match="keys differ"):
        diff(el("div", "r"), el("div", "s"))


def test_text_props_style_and_events_are_diffed_name_by_name() -> None:
    click = EventSpec()
    old = VNode("p", "r", {"id": "a", "title": "t", "hidden": True}, {"color": "red"}, {}, "x")
    new = VNode(
        "p", "r", {"id": "a", "title": "u", "lang": "en"}, {"margin": "0"}, {"click": click}, "y"
    )
    assert diff(old, new) == [
        SetProps("r", {"title": "u", "lang": "en", "hidden": None}),
        SetStyle("r", {"margin": "0", "color": None}),
        SetEvents("r", {"click": click}),
        SetText("r", "y"),
    ]


def test_a_change_of_type_is_a_change() -> None:
    # True == 1 and False == 0 in Python; not on the wire.
    assert diff(el("input", "r", checked=True), el("input", "r", checked="1")) == [
        SetProps("r", {"checked": "1"})
    ]
    assert diff(el("input", "r", checked=False), el("input", "r")) == [
        SetProps("r", {"checked": None})
    ]


def test_a_new_tag_is_a_replace() -> None:
    old = el("div", "r", el("p", "r/0", text="a"))
    new = el("div", "r", el("h1", "r/0", text="a"))
    assert diff(old, new) == [Replace("r/0", new.children[0])]


def test_text_and_children_switch() -> None:
    with_text = el("div", "r", text="hello")
    with_children = el("div", "r", el("b", "r/0", text="x"))
    assert diff(with_text, with_children) == [
        SetText("r", ""),
        Insert("r", None, with_children.children[0]),
    ]
    assert diff(with_children, with_text) == [SetText("r", "hello")]
    assert diff(with_children, el("div", "r")) == [Remove("r/0")]


def test_removes_use_the_removed_nodes_own_key() -> None:
    # Duck's diff removed with the parent's key; here each remove names its node.
    old = keyed_list(["a", "b", "c"])
    new = keyed_list(["a", "c"])
    assert diff(old, new) == [Remove("r/.b")]


def test_inserts_name_the_sibling_they_go_before() -> None:
    old = keyed_list(["a", "c"])
    new = keyed_list(["a", "b", "c", "d"])
    patches = diff(old, new)
    assert patches == [
        Insert("r", None, new.children[3]),
        Insert("r", "r/.c", new.children[1]),
    ]
    assert apply_patches(old, patches) == new


def test_a_reorder_is_moves_not_remove_and_insert() -> None:
    old = keyed_list(["a", "b", "c", "d", "e"])
    new = keyed_list(["e", "a", "b", "c", "d"])
    assert diff(old, new) == [Move("r/.e", "r/.a")]  # one move, not five
    reverse = keyed_list(["e", "d", "c", "b", "a"])
    patches = diff(old, reverse)
    assert len(patches) == 4 and all(isinstance(p, Move) for p in patches)
    assert apply_patches(old, patches) == reverse


def test_moves_and_changes_together() -> None:
    old = keyed_list(["a", "b", "c"])
    new_children = [
        VNode("li", "r/.c", text="item c"),
        VNode("li", "r/.a", text="changed"),
        VNode("li", "r/.d", text="new"),
    ]
    new = VNode("ul", "r", children=tuple(new_children))
    patches = diff(old, new)
    assert Remove("r/.b") in patches
    assert sum(isinstance(p, Move) for p in patches) == 1
    assert SetText("r/.a", "changed") in patches
    assert apply_patches(old, patches) == new


def test_live_values_correct_controlled_properties_only() -> None:
    old = el("form", "r", el("input", "r/0", value=""), el("input", "r/1"))
    new = el("form", "r", el("input", "r/0", value=""), el("input", "r/1"))
    live = {"r/0": {"value": "typed"}, "r/1": {"value": "also typed"}}
    # The render controls r/0's value: the browser's "typed" is corrected.
    # r/1's value is the user's: it is not touched.
    assert diff(old, new, live=live) == [SetProps("r/0", {"value": ""})]
    # Equal live and new values: nothing to send.
    assert diff(old, new, live={"r/0": {"value": ""}}) == []
    # A memoised (identical) subtree is still checked against live values.
    assert diff(old, old, live=live) == [SetProps("r/0", {"value": ""})]
    checkbox = el("input", "r", checked=False)
    assert diff(checkbox, checkbox, live={"r": {"checked": True}}) == [
        SetProps("r", {"checked": False})
    ]


def test_text_nodes() -> None:
    old = el("p", "r", VNode(TEXT, "r/#0", text="Hello "), el("b", "r/1", text="you"))
    new = el("p", "r", VNode(TEXT, "r/#0", text="Bye "), el("b", "r/1", text="you"))
    assert diff(old, new) == [SetText("r/#0", "Bye ")]
    element = el("p", "r", el("span", "r/#0"), el("b", "r/1", text="you"))
    assert diff(old, element)[0] == Replace("r/#0", element.children[0])


# ---------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------

TAGS = ["div", "span", "ul", "li", "p"]
EXPLICIT_KEYS = [f"k{i}" for i in range(8)]
SPECS = [EventSpec(), EventSpec("value", debounce_ms=100), EventSpec("form", True)]

prop_values = st.one_of(st.sampled_from(["a", "b", ""]), st.booleans())


@st.composite
def nodes(draw: st.DrawFn, key: str = ROOT_KEY, depth: int = 3) -> VNode:
    tag = draw(st.sampled_from(TAGS))
    props = draw(
        st.dictionaries(st.sampled_from(["class", "title", "id"]), prop_values, max_size=3)
    )
    style = draw(
        st.dictionaries(
            st.sampled_from(["color", "margin"]), st.sampled_from(["0", "red"]), max_size=2
        )
    )
    events = draw(
        st.dictionaries(st.sampled_from(["click", "input"]), st.sampled_from(SPECS), max_size=2)
    )
    mode = draw(
        st.sampled_from(["text", "children", "children", "empty"] if depth else ["text", "empty"])
    )
    if mode == "text":
        return VNode(tag, key, props, style, events, draw(st.text("abc", min_size=1, max_size=3)))
    if mode == "empty":
        return VNode(tag, key, props, style, events)
    kinds = draw(st.lists(st.sampled_from(["keyed", "keyed", "unkeyed", "text"]), max_size=6))
    explicit = iter(draw(st.permutations(EXPLICIT_KEYS)))
    children: list[VNode] = []
    for index, kind in enumerate(kinds):
        if kind == "text":
            text = draw(st.text("xyz", max_size=3))
            children.append(VNode(TEXT, child_key(key, text_key(index)), text=text))
            continue
        local = explicit_key(next(explicit)) if kind == "keyed" else index_key(index)
        children.append(draw(nodes(child_key(key, local), depth - 1)))
    return VNode(tag, key, props, style, events, None, tuple(children))


@st.composite
def shuffled(draw: st.DrawFn, tree: VNode) -> VNode:
    """``tree`` with each keyed child list reordered, some nodes dropped or changed."""
    if tree.tag == TEXT or not tree.children:
        return tree
    children = [draw(shuffled(child)) for child in tree.children]
    children = draw(st.permutations(children))
    keep = draw(st.lists(st.booleans(), min_size=len(children), max_size=len(children)))
    kept = [child for child, k in zip(children, keep, strict=True) if k or child.tag != TEXT]
    if draw(st.booleans()):
        kept = [c for c in kept if not c.key.rsplit("/", 1)[-1].startswith(".k1")]
    return VNode(tree.tag, tree.key, tree.props, tree.style, tree.events, None, tuple(kept))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(nodes(), nodes())
def test_applying_the_diff_of_random_trees_gives_the_new_tree(a: VNode, b: VNode) -> None:
    check_keys(a)
    check_keys(b)
    patches = diff(a, b)
    assert apply_patches(a, patches) == b
    assert diff(b, b) == []


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_applying_the_diff_of_a_shuffled_tree_gives_it(data: st.DataObject) -> None:
    a = data.draw(nodes())
    b = data.draw(shuffled(a))
    patches = diff(a, b)
    assert apply_patches(a, patches) == b
    # Nothing but moves and removes: the nodes are the same ones.
    assert all(isinstance(p, Move | Remove) for p in patches)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 10_000), min_size=0, max_size=40, unique=True), st.randoms())
def test_a_pure_reorder_sends_exactly_n_minus_lis_moves(ids: list[int], rng: random.Random) -> None:
    keys = [str(i) for i in ids]
    shuffled_keys = list(keys)
    rng.shuffle(shuffled_keys)
    old, new = keyed_list(keys), keyed_list(shuffled_keys)
    patches = diff(old, new)
    assert all(isinstance(p, Move) for p in patches)
    old_positions = [keys.index(k) for k in shuffled_keys]
    assert len(patches) == len(keys) - brute_lis_length(old_positions)
    assert apply_patches(old, patches) == new
