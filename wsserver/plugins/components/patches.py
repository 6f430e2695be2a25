"""Patches: the operations that change the browser's DOM, and their JSON form.

Every operation names the node it touches by key (``vdom.py``):

=========  ====================================  ==========================================
op         fields                                what the browser does
=========  ====================================  ==========================================
``ins``    ``k`` parent, ``b`` before, ``n``     build node ``n`` and insert it into ``k``
                                                 before the child keyed ``b`` (``null``:
                                                 at the end)
``rm``     ``k``                                 remove the node keyed ``k`` (its own key)
``mv``     ``k``, ``b``                          move ``k`` before its sibling ``b``
                                                 (``null``: to the end); the DOM node is
                                                 kept, with its state
``rep``    ``k``, ``n``                          replace ``k`` with a new node ``n`` (same
                                                 key)
``txt``    ``k``, ``x``                          set the text: ``textContent`` of an
                                                 element (its children go), ``data`` of a
                                                 text node
``attr``   ``k``, ``a``                          set properties: ``{name: value}``, a
                                                 string, ``true``/``false``, or ``null``
                                                 to remove
``css``    ``k``, ``s``                          set style: ``{property: value}``,
                                                 ``null`` to remove
``ev``     ``k``, ``e``                          bind listeners: ``{event: spec}``,
                                                 ``null`` to unbind
=========  ====================================  ==========================================

A node on the wire is ``{"t": tag, "k": key, "a": props, "s": style, "e":
events, "x": text, "c": [children]}``, empty fields left out.

``apply_patches`` is a Python mirror of the browser's applier (a key -> node
map, the same checks), used by the property tests to show that applying
``diff(a, b)`` to ``a`` gives ``b``, and by anyone who wants to know what a
batch does without a browser.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from .events import EventSpec
from .vdom import TEXT, PropValue, VNode, iter_nodes

__all__ = [
    "Insert",
    "Move",
    "Patch",
    "PatchError",
    "Remove",
    "Replace",
    "SetEvents",
    "SetProps",
    "SetStyle",
    "SetText",
    "apply_patches",
    "node_from_wire",
    "node_to_wire",
    "patch_from_wire",
    "patch_to_wire",
    "patches_to_wire",
]

_EMPTY: Mapping[str, Any] = MappingProxyType({})


class PatchError(ValueError):
    """A patch that does not fit the tree it is applied to."""


@dataclass(frozen=True, slots=True)
class Insert:
    """Insert ``node`` into ``parent``, before ``before`` (``None``: at the end)."""

    parent: str
    before: str | None
    node: VNode


@dataclass(frozen=True, slots=True)
class Remove:
    """Remove the node keyed ``key``, and its subtree."""

    key: str


@dataclass(frozen=True, slots=True)
class Move:
    """Move ``key`` before its sibling ``before`` (``None``: to the end)."""

    key: str
    before: str | None


@dataclass(frozen=True, slots=True)
class Replace:
    """Replace the node keyed ``key`` with ``node`` (whose key is ``key``)."""

    key: str
    node: VNode


@dataclass(frozen=True, slots=True)
class SetText:
    """Set an element's whole text content, or a text node's text."""

    key: str
    text: str


@dataclass(frozen=True, slots=True)
class SetProps:
    """Set or remove (``None``) properties, by name."""

    key: str
    props: Mapping[str, PropValue | None] = field(default_factory=lambda: _EMPTY)


@dataclass(frozen=True, slots=True)
class SetStyle:
    """Set or remove (``None``) CSS properties, by name."""

    key: str
    style: Mapping[str, str | None] = field(default_factory=lambda: _EMPTY)


@dataclass(frozen=True, slots=True)
class SetEvents:
    """Bind or unbind (``None``) listeners, by event name."""

    key: str
    events: Mapping[str, EventSpec | None] = field(default_factory=lambda: _EMPTY)


#: Any patch.
Patch = Insert | Remove | Move | Replace | SetText | SetProps | SetStyle | SetEvents


# -- the JSON form ------------------------------------------------------------


def node_to_wire(node: VNode) -> dict[str, Any]:
    """A node as a JSON object; see the module docstring."""
    wire: dict[str, Any] = {"t": node.tag, "k": node.key}
    if node.props:
        wire["a"] = dict(node.props)
    if node.style:
        wire["s"] = dict(node.style)
    if node.events:
        wire["e"] = {name: spec.to_wire() for name, spec in node.events.items()}
    if node.text is not None and (node.text or node.tag == TEXT):
        wire["x"] = node.text
    if node.children:
        wire["c"] = [node_to_wire(child) for child in node.children]
    return wire


def node_from_wire(data: object) -> VNode:
    """Parse ``node_to_wire``'s form.

    Raises:
        ValueError: not such an object.
    """
    if not isinstance(data, dict):
        raise ValueError("a node must be an object")
    tag, key = data.get("t"), data.get("k")
    if not isinstance(tag, str) or not isinstance(key, str):
        raise ValueError("a node needs string 't' and 'k'")
    props = _mapping(data.get("a"), (str, bool), "a")
    style = _mapping(data.get("s"), (str,), "s")
    events_data = _mapping(data.get("e"), (dict,), "e")
    text = data.get("x")
    if text is not None and not isinstance(text, str):
        raise ValueError("'x' must be a string")
    children_data = data.get("c", [])
    if not isinstance(children_data, list):
        raise ValueError("'c' must be a list")
    return VNode(
        tag,
        key,
        props,
        style,
        {name: EventSpec.from_wire(spec) for name, spec in events_data.items()},
        text,
        tuple(node_from_wire(child) for child in children_data),
    )


def _mapping(value: object, types: tuple[type, ...], name: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, types) for v in value.values()):
        raise ValueError(f"{name!r} must be an object of {'/'.join(t.__name__ for t in types)}")
    return value


def patch_to_wire(patch: Patch) -> dict[str, Any]:
    """A patch as a JSON object: ``{"o": op, "k": key, ...}``."""
    match patch:
        case Insert(parent, before, node):
            return {"o": "ins", "k": parent, "b": before, "n": node_to_wire(node)}
        case Remove(key):
            return {"o": "rm", "k": key}
        case Move(key, before):
            return {"o": "mv", "k": key, "b": before}
        case Replace(key, node):
            return {"o": "rep", "k": key, "n": node_to_wire(node)}
        case SetText(key, text):
            return {"o": "txt", "k": key, "x": text}
        case SetProps(key, props):
            return {"o": "attr", "k": key, "a": dict(props)}
        case SetStyle(key, style):
            return {"o": "css", "k": key, "s": dict(style)}
        case SetEvents(key, events):
            wire = {name: None if spec is None else spec.to_wire() for name, spec in events.items()}
            return {"o": "ev", "k": key, "e": wire}
    raise TypeError(f"not a patch: {patch!r}")  # pragma: no cover


def patches_to_wire(patches: Iterable[Patch]) -> list[dict[str, Any]]:
    """A batch of patches as a JSON list."""
    return [patch_to_wire(patch) for patch in patches]


def patch_from_wire(data: object) -> Patch:
    """Parse ``patch_to_wire``'s form.

    Raises:
        ValueError: not such an object.
    """
    if not isinstance(data, dict) or not isinstance(data.get("k"), str):
        raise ValueError("a patch must be an object with a string 'k'")
    op, key = data.get("o"), data["k"]
    before = data.get("b")
    if before is not None and not isinstance(before, str):
        raise ValueError("'b' must be a string or null")
    if op == "ins":
        return Insert(key, before, node_from_wire(data.get("n")))
    if op == "rm":
        return Remove(key)
    if op == "mv":
        return Move(key, before)
    if op == "rep":
        return Replace(key, node_from_wire(data.get("n")))
    if op == "txt":
        text = data.get("x")
        if not isinstance(text, str):
            raise ValueError("'x' must be a string")
        return SetText(key, text)
    if op == "attr":
        return SetProps(key, _nullable(data.get("a"), (str, bool), "a"))
    if op == "css":
        return SetStyle(key, _nullable(data.get("s"), (str,), "s"))
    if op == "ev":
        events = _nullable(data.get("e"), (dict,), "e")
        return SetEvents(
            key,
            {name: None if s is None else EventSpec.from_wire(s) for name, s in events.items()},
        )
    raise ValueError(f"unknown patch op {op!r}")


def _nullable(value: object, types: tuple[type, ...], name: str) -> dict[str, Any]:
    if not isinstance(value, dict) or not all(
        v is None or isinstance(v, types) for v in value.values()
    ):
        raise ValueError(f"{name!r} must be an object of values or nulls")
    return value


# -- the Python mirror of the browser's applier -----------------------------


class _Node:
    """A mutable node, as the browser's DOM node is."""

    __slots__ = ("children", "events", "key", "parent", "props", "style", "tag", "text")

    def __init__(self, vnode: VNode) -> None:
        self.tag = vnode.tag
        self.key = vnode.key
        self.props: dict[str, PropValue] = dict(vnode.props)
        self.style: dict[str, str] = dict(vnode.style)
        self.events: dict[str, EventSpec] = dict(vnode.events)
        self.text = vnode.text
        self.parent: _Node | None = None
        self.children: list[_Node] = []

    def freeze(self) -> VNode:
        return VNode(
            self.tag,
            self.key,
            self.props,
            self.style,
            self.events,
            self.text,
            tuple(child.freeze() for child in self.children),
        )


class _Applier:
    def __init__(self, tree: VNode) -> None:
        self.nodes: dict[str, _Node] = {}
        self.root = self.build(tree)

    def build(self, vnode: VNode) -> _Node:
        node = _Node(vnode)
        self.register(node)
        for child_vnode in vnode.children:
            child = self.build(child_vnode)
            child.parent = node
            node.children.append(child)
        return node

    def register(self, node: _Node) -> None:
        if node.key in self.nodes:
            raise PatchError(f"key {node.key!r} is already in the tree")
        self.nodes[node.key] = node

    def forget(self, node: _Node) -> None:
        for vnode in iter_nodes(node.freeze()):
            self.nodes.pop(vnode.key, None)

    def get(self, key: str) -> _Node:
        try:
            return self.nodes[key]
        except KeyError:
            raise PatchError(f"no node keyed {key!r}") from None

    def anchor(self, parent: _Node, before: str | None) -> int:
        if before is None:
            return len(parent.children)
        node = self.get(before)
        if node.parent is not parent:
            raise PatchError(f"{before!r} is not a child of {parent.key!r}")
        return parent.children.index(node)

    def apply(self, patch: Patch) -> None:
        match patch:
            case Insert(parent_key, before, vnode):
                parent = self.get(parent_key)
                if parent.tag == TEXT or parent.text:
                    raise PatchError(f"cannot insert into {parent_key!r}: it holds text")
                parent.text = None
                index = self.anchor(parent, before)
                node = self.build(vnode)
                node.parent = parent
                parent.children.insert(index, node)
            case Remove(key):
                node = self.get(key)
                if node.parent is None:
                    raise PatchError("cannot remove the root")
                node.parent.children.remove(node)
                self.forget(node)
            case Move(key, before):
                node = self.get(key)
                owner = node.parent
                if owner is None:
                    raise PatchError("cannot move the root")
                if before == key:
                    raise PatchError(f"cannot move {key!r} before itself")
                owner.children.remove(node)
                owner.children.insert(self.anchor(owner, before), node)
            case Replace(key, vnode):
                old = self.get(key)
                if vnode.key != key:
                    raise PatchError(f"replace {key!r} with a node keyed {vnode.key!r}")
                self.forget(old)
                node = self.build(vnode)
                node.parent = old.parent
                if old.parent is None:
                    self.root = node
                else:
                    siblings = old.parent.children
                    siblings[siblings.index(old)] = node
            case SetText(key, text):
                node = self.get(key)
                for child in node.children:
                    self.forget(child)
                node.children = []
                node.text = text
            case SetProps(key, props):
                _update(self.get(key).props, props)
            case SetStyle(key, style):
                _update(self.get(key).style, style)
            case SetEvents(key, events):
                _update(self.get(key).events, events)


def _update(target: dict[str, Any], changes: Mapping[str, Any]) -> None:
    for name, value in changes.items():
        if value is None:
            target.pop(name, None)
        else:
            target[name] = value


def apply_patches(tree: VNode, patches: Sequence[Patch]) -> VNode:
    """Apply ``patches`` to ``tree`` as the browser would; return the result.

    Raises:
        PatchError: a patch names a key that is not there, inserts a key
            that is, moves a node next to a node of another parent...
    """
    applier = _Applier(tree)
    for patch in patches:
        applier.apply(patch)
    return applier.root.freeze()
