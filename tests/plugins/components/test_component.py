"""Tests for wsserver.plugins.components.component: state, rendering and
re-rendering, keys, handler tables, and snapshots of state."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, cast

import pytest

from wsserver.plugins.components.component import (
    Component,
    State,
    component_name,
    dump_component,
    load_component,
    lookup_component,
    registered_components,
    render_tree,
    set_connection,
)
from wsserver.plugins.components.html import Element, h
from wsserver.plugins.components.vdom import TEXT, diff, find

if TYPE_CHECKING:
    from wsserver.plugins.components.connection import PageConnection


class Item(Component):
    title = State("")
    done = State(False)
    renders = 0

    def render(self) -> Element:
        type(self).renders += 1
        return h.li(
            h.input(type="checkbox", checked=self.done).bind("change", self.toggle),
            h.span(self.title),
        )

    def toggle(self) -> None:
        self.done = not self.done


class Listing(Component):
    items: State[list[Item]] = State(factory=list)
    heading = State("To do")

    def render(self) -> Element:
        return h.section(h.h1(self.heading), h.ul(*self.items, key="items"))


class Restored(Component):
    note = State("n")

    def __init__(self, required: str, **state: Any) -> None:
        super().__init__(**state)
        self.cache = required  # not state: gone after a restore

    def render(self) -> Element:
        return h.p(self.note)

    def on_restore(self) -> None:
        self.cache = "rebuilt"


def make_listing() -> Listing:
    return Listing(items=[Item(key=n, title=f"t{n}") for n in (1, 2, 3)])


def test_state_fields_defaults_and_assignment() -> None:
    item = Item(title="x")
    assert (item.title, item.done) == ("x", False)
    assert Item._cv_fields.keys() == {"title", "done"}
    assert isinstance(Item.title, State)
    assert item.state == {"title": "x", "done": False}
    with pytest.raises(TypeError, match="no State field"):
        Item(colour="red")
    # Each instance gets its own list from a factory.
    a, b = Listing(), Listing()
    a.items.append(Item())
    assert b.items == []
    with pytest.raises(TypeError, match="mutable"):
        State([])
    with pytest.raises(TypeError, match="default or a factory"):
        State()
    assert repr(Item.title) == "State(title)"


def test_render_tree_keys_bindings_and_components() -> None:
    listing = make_listing()
    rendered = render_tree(listing)
    tree = rendered.tree
    assert tree.key == "r" and tree.tag == "section"
    ul = find(tree, "r/.items")
    assert ul is not None
    assert [child.key for child in ul.children] == ["r/.items/.1", "r/.items/.2", "r/.items/.3"]
    checkbox = find(tree, "r/.items/.2/0")
    assert checkbox is not None and checkbox.props["checked"] is False
    bound = rendered.bindings[("r/.items/.2/0", "change")]
    assert bound.component is listing.items[1]
    assert rendered.components == [listing, *listing.items]
    assert listing.items[0].parent is listing
    assert listing.items[0].root is listing
    assert listing.items[0].find_parent(Listing) is listing
    assert listing.items[0].find_parent(Item) is None


def test_mixed_text_children_become_text_nodes() -> None:
    class Mixed(Component):
        def render(self) -> Element:
            return h.p("Hello ", "there ", h.b("you"), "!")

    tree = render_tree(Mixed()).tree
    assert [(c.tag, c.key, c.text) for c in tree.children] == [
        (TEXT, "r/#0", "Hello there "),  # adjacent strings merged
        ("b", "r/1", "you"),
        (TEXT, "r/#2", "!"),
    ]


def test_only_marked_components_render_again() -> None:
    listing = make_listing()
    first = render_tree(listing).tree
    Item.renders = 0
    again = render_tree(listing).tree
    assert again is first and Item.renders == 0  # nothing marked: all reused
    listing.items[1].toggle()  # state assignment marks item 2 and its ancestors
    third = render_tree(listing).tree
    assert Item.renders == 1
    patches = diff(first, third)
    assert len(patches) == 1 and patches[0].key == "r/.items/.2/0"  # type: ignore[union-attr]
    # An in-place change is seen after update().
    listing.items[0].done = True
    listing.items.reverse()
    listing.update()
    fourth = render_tree(listing).tree
    ul = find(fourth, "r/.items")
    assert ul is not None and next(c.key for c in ul.children) == "r/.items/.3"


def test_duplicate_keys_and_twice_placed_components_are_errors() -> None:
    class Dupes(Component):
        def render(self) -> Element:
            return h.ul(h.li(key="a"), h.li(key="a"))

    with pytest.raises(ValueError, match="have the key"):
        render_tree(Dupes())
    item = Item()

    class Twice(Component):
        def render(self) -> Element:
            return h.div(item, item)

    with pytest.raises(ValueError, match="twice"):
        render_tree(Twice())

    class NotAnElement(Component):
        def render(self) -> Element:
            return "text"  # type: ignore[return-value]

    with pytest.raises(TypeError, match="must return an Element"):
        render_tree(NotAnElement())
    with pytest.raises(NotImplementedError):
        Component().render()


def test_dump_and_load_round_trip() -> None:
    listing = make_listing()
    listing.items[2].done = True
    data = dump_component(listing)
    assert json.loads(json.dumps(data)) == data  # plain JSON
    restored = load_component(json.loads(json.dumps(data)))
    assert isinstance(restored, Listing)
    assert [(i.key, i.title, i.done) for i in restored.items] == [
        ("1", "t1", False),
        ("2", "t2", False),
        ("3", "t3", True),
    ]
    # The same keys: the restored page renders the same tree.
    assert render_tree(restored).tree == render_tree(listing).tree


def test_state_values_that_look_like_markers_survive() -> None:
    class Holder(Component):
        value: State[dict[str, Any]] = State(factory=dict)

        def render(self) -> Element:
            return h.p()

    tricky = {"$c": {"c": "x"}, "$d": 1, "plain": [1.5, None, True, {"$c": 2}]}
    holder = Holder(value=tricky)
    restored = load_component(json.loads(json.dumps(dump_component(holder))))
    assert restored.state["value"] == tricky


def test_restoring_skips_init_and_calls_on_restore() -> None:
    original = Restored("needed", note="kept")
    restored = load_component(dump_component(original))
    assert isinstance(restored, Restored)
    assert restored.note == "kept" and restored.cache == "rebuilt"


@pytest.mark.parametrize(
    "value",
    [object(), {1: "x"}, float("nan"), b"bytes", {"a": {1, 2}}],
)
def test_values_a_snapshot_cannot_hold_are_refused(value: Any) -> None:
    class Box(Component):
        content = State(None)

        def render(self) -> Element:
            return h.p()

    with pytest.raises(TypeError):
        dump_component(Box(content=value))


def test_only_registered_component_classes_are_loaded() -> None:
    assert lookup_component(component_name(Item)) is Item
    assert registered_components()[component_name(Item)] is Item
    for name in ("os:system", "builtins:eval", "subprocess:Popen", "x"):
        with pytest.raises(LookupError):
            load_component({"c": name, "k": None, "s": {}})
    bad: Any
    for bad in ([], {"c": 1}, {"c": component_name(Item), "k": 1, "s": {}}, {"c": "x", "k": None}):
        with pytest.raises(ValueError):
            load_component(bad)
    # Unknown fields are ignored; only declared state is ever set.
    item = load_component(
        {"c": component_name(Item), "k": None, "s": {"__class__": "x", "title": "t"}}
    )
    assert type(item) is Item and item.title == "t"


def test_hooks_and_defaults() -> None:
    item = Item(key="k")
    assert item.key == "k"
    item.key = "j"
    assert item.key == "j" and "Item key='j'" in repr(item)
    assert item.page_title() is None
    assert item.on_connect(None) is None  # type: ignore[arg-type]
    assert item.connection is None
    assert isinstance(Item.for_request(None), Item)  # type: ignore[arg-type]


def test_a_subclass_that_skips_super_init_still_works() -> None:
    class Careless(Component):
        n = State(1)

        def __init__(self) -> None:  # no super().__init__()
            self.extra = True

        def render(self) -> Element:
            return h.p(str(self.n))

    careless = Careless()
    careless.n = 2
    assert render_tree(careless).tree.text == "2"


def test_the_connection_is_the_roots() -> None:
    listing = make_listing()
    render_tree(listing)  # places the items under the listing
    connection = cast("PageConnection", object())  # only its identity matters here
    set_connection(listing, connection)
    assert listing.connection is connection
    assert all(item.connection is connection for item in listing.items)
    set_connection(listing, None)
    assert listing.connection is None and listing.items[0].connection is None


def test_load_component_refuses_state_nested_too_deeply_with_value_error() -> None:
    # Found by fuzz/fuzz_snapshots.py: a state value nested 600 lists deep
    # parses as JSON but overflowed the rebuild's recursion, and the
    # RecursionError escaped PageConnection._attach's handling (Close 1011
    # and a traceback instead of cv/expired).  Nesting as JSON allows it.
    depth = 600
    data = json.loads(
        '{"c":"'
        + component_name(Item)
        + '","k":null,"s":{"title":'
        + "[" * depth
        + "]" * depth
        + "}}"
    )
    with pytest.raises(ValueError, match="nested too deeply"):
        load_component(data)
    shallow = json.loads('{"c":"' + component_name(Item) + '","k":null,"s":{"title":[[[]]]}}')
    assert cast(Any, load_component(shallow)).title == [[[]]]
