"""The virtual DOM: immutable nodes with stable keys, and the keyed diff.

A ``VNode`` is an element (``tag``, ``props``, ``style``, ``events``, and
either ``text`` or ``children``) or a text node (tag ``"#text"``, only
``text``).  Every node has a **key** that is unique in its tree and names it
on the wire: the browser keeps a key -> DOM node map, and every patch says
which node it touches by key.

Keys are paths, built by ``child_key``: the root is ``"r"``; a child's key
is its parent's key, ``/``, and its local key among its siblings -- the
user's key (``key="todo-3"`` -> ``.todo-3``, percent-encoded), else its
index (``0``, ``1``...), or ``#<index>`` for a text node.  So keys are
unique by construction, stable across renders for keyed children, and the
same in the server-side HTML as in later patches.

``diff(old, new)`` returns the patches (``patches.py``) that turn the DOM
of ``old`` into ``new``.  Children are matched by key; their new order is
reached with the fewest moves: the children whose old positions form a
longest increasing subsequence (LIS) stay, and every other one is moved
once, so a pure reorder of ``n`` children sends exactly ``n - LIS`` moves,
never a remove and an insert.  Properties, style and listeners are diffed
name by name.

This module is pure: no I/O, no asyncio.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from .events import EventSpec

if TYPE_CHECKING:
    from .patches import Patch

__all__ = [
    "ROOT_KEY",
    "TEXT",
    "Live",
    "PropValue",
    "VNode",
    "check_keys",
    "child_key",
    "count_nodes",
    "diff",
    "explicit_key",
    "find",
    "index_key",
    "is_within",
    "iter_nodes",
    "lis",
    "text_key",
]

#: The key of a page's root node.
ROOT_KEY = "r"
#: The tag of text nodes.
TEXT = "#text"

#: A property's value: a string, or a bool for boolean attributes and the
#: ``checked``/``selected`` properties (``False`` is kept: it says the
#: render *controls* the property and wants it off).
PropValue = str | bool
#: Live values reported by the browser: ``{key: {"value": "abc"}}``.
Live = Mapping[str, Mapping[str, PropValue]]

_EMPTY: Mapping[str, Any] = MappingProxyType({})


def _frozen(mapping: Mapping[str, Any] | None) -> Mapping[str, Any]:
    if not mapping:
        return _EMPTY
    if isinstance(mapping, MappingProxyType):
        return mapping
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True, slots=True)
class VNode:
    """One node of a virtual DOM tree; immutable.

    Attributes:
        tag: the element's tag (lowercase), or ``"#text"``.
        key: the node's key, unique in its tree.
        props: attributes and properties, name -> ``PropValue``.
        style: CSS properties, name -> value.
        events: bound events, name -> ``EventSpec``.
        text: the element's whole text content (then it has no children),
            or a text node's text.  An element's empty text is stored as
            ``None``: the two render the same DOM.
        children: child nodes, in order.
    """

    tag: str
    key: str
    props: Mapping[str, PropValue] = field(default_factory=lambda: _EMPTY)
    style: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    events: Mapping[str, EventSpec] = field(default_factory=lambda: _EMPTY)
    text: str | None = None
    children: tuple[VNode, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "props", _frozen(self.props))
        object.__setattr__(self, "style", _frozen(self.style))
        object.__setattr__(self, "events", _frozen(self.events))
        # tuple() of a tuple is the same tuple: cheap when it already is one.
        object.__setattr__(self, "children", tuple(self.children))
        if self.tag == TEXT:
            if self.text is None:
                object.__setattr__(self, "text", "")
            if self.children or self.props or self.style or self.events:
                raise ValueError("a text node has only text")
            return
        if self.text is not None:
            if self.children:
                raise ValueError(f"node {self.key!r} has both text and children")
            if self.text == "":
                object.__setattr__(self, "text", None)

    @property
    def is_text(self) -> bool:
        """Whether this is a text node."""
        return self.tag == TEXT


# -- keys ---------------------------------------------------------------------


def explicit_key(key: object) -> str:
    """The local key for a user's ``key``: ``.`` and its percent-encoding.

    ``str(key)`` is encoded with every character but ``A-Z a-z 0-9 _ . - ~``
    escaped, so a local key never holds ``/`` and never looks like an index.
    """
    return "." + quote(str(key), safe="")


def index_key(index: int) -> str:
    """The local key of the ``index``-th child, when it has no key of its own."""
    return str(index)


def text_key(index: int) -> str:
    """The local key of a text node, the ``index``-th child."""
    return f"#{index}"


def child_key(parent: str, local: str) -> str:
    """A child's key: ``parent/local``."""
    return f"{parent}/{local}"


def is_within(key: str, ancestor: str) -> bool:
    """Whether ``key`` is ``ancestor`` or a descendant's key."""
    return key == ancestor or key.startswith(ancestor + "/")


# -- walking ------------------------------------------------------------------


def iter_nodes(tree: VNode) -> Iterator[VNode]:
    """Every node of ``tree``, in document order (pre-order)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(reversed(node.children))


def count_nodes(tree: VNode) -> int:
    """The number of nodes in ``tree``, text nodes included."""
    return sum(1 for _ in iter_nodes(tree))


def find(tree: VNode, key: str) -> VNode | None:
    """The node of ``tree`` with ``key``, or ``None``."""
    for node in iter_nodes(tree):
        if node.key == key:
            return node
    return None


def check_keys(tree: VNode) -> None:
    """Check that every key in ``tree`` is unique.

    Raises:
        ValueError: a key occurs twice.
    """
    seen: set[str] = set()
    for node in iter_nodes(tree):
        if node.key in seen:
            raise ValueError(f"duplicate key {node.key!r}")
        seen.add(node.key)


# -- longest increasing subsequence -------------------------------------------


def lis(sequence: Sequence[int]) -> list[int]:
    """The positions of a longest strictly increasing subsequence.

    ``O(n log n)`` (patience sorting with back links).  Negative values are
    skipped: ``diff`` marks new children with ``-1``.

    >>> lis([3, 0, 1, 4, 2])
    [1, 2, 4]
    """
    tails: list[int] = []  # tails[i]: the smallest tail value of a run of length i+1
    tail_pos: list[int] = []  # ... and its position in ``sequence``
    back: list[int] = [-1] * len(sequence)
    for pos, value in enumerate(sequence):
        if value < 0:
            continue
        i = bisect.bisect_left(tails, value)
        if i == len(tails):
            tails.append(value)
            tail_pos.append(pos)
        else:
            tails[i] = value
            tail_pos[i] = pos
        back[pos] = tail_pos[i - 1] if i else -1
    result: list[int] = []
    pos = tail_pos[-1] if tail_pos else -1
    while pos >= 0:
        result.append(pos)
        pos = back[pos]
    result.reverse()
    return result


# -- the diff -----------------------------------------------------------------


def diff(old: VNode, new: VNode, *, live: Live | None = None) -> list[Patch]:
    """The patches that turn the DOM rendered from ``old`` into ``new``.

    Args:
        old: the tree the browser shows.
        new: the tree it should show; same root key.
        live: values the browser reported for form controls (by key).  A
            control whose ``new`` node sets the property (the render
            *controls* it) is diffed against the live value instead of the
            old one, so that a value the user typed is corrected; a
            property the render leaves out is not touched.

    Raises:
        ValueError: the roots' keys differ.
    """
    if old.key != new.key:
        raise ValueError(f"the roots' keys differ: {old.key!r} and {new.key!r}")
    # Imported here: patches.py builds on VNode, so it imports this module.
    from . import patches

    out: list[Patch] = []
    _Differ(patches, out, live or _EMPTY).node(old, new)
    return out


class _Differ:
    __slots__ = ("live", "out", "p")

    def __init__(self, module: Any, out: list[Patch], live: Live) -> None:
        self.p = module
        self.out = out
        self.live = live

    def _live_inside(self, key: str) -> bool:
        return any(is_within(k, key) for k in self.live)

    def node(self, old: VNode, new: VNode) -> None:
        if old is new and not (self.live and self._live_inside(old.key)):
            return  # an unchanged (memoised) subtree
        p = self.p
        if old.tag != new.tag:
            self.out.append(p.Replace(new.key, new))
            return
        if new.tag == TEXT:
            if old.text != new.text:
                self.out.append(p.SetText(new.key, new.text or ""))
            return
        old_props: Mapping[str, PropValue] = old.props
        reported = self.live.get(new.key)
        if reported:
            merged = dict(old_props)
            for name, value in reported.items():
                if name in new.props:  # controlled by the render
                    merged[name] = value
            old_props = merged
        changes = _changed(old_props, new.props)
        if changes:
            self.out.append(p.SetProps(new.key, changes))
        styles = _changed(old.style, new.style)
        if styles:
            self.out.append(p.SetStyle(new.key, styles))
        events = _changed(old.events, new.events)
        if events:
            self.out.append(p.SetEvents(new.key, events))
        if new.text is not None:
            if old.text != new.text or old.children:
                self.out.append(p.SetText(new.key, new.text))
            return
        old_children = old.children
        if old.text is not None:
            self.out.append(p.SetText(new.key, ""))  # clears the old text
            old_children = ()
        self.children(new.key, old_children, new.children)

    def children(self, parent: str, old: tuple[VNode, ...], new: tuple[VNode, ...]) -> None:
        if old == () and new == ():
            return
        p = self.p
        out = self.out
        old_index = {child.key: i for i, child in enumerate(old)}
        new_keys = {child.key for child in new}
        for child in old:
            if child.key not in new_keys:
                out.append(p.Remove(child.key))
        sources = [old_index.get(child.key, -1) for child in new]
        staying = set(lis(sources))
        # Right to left: the next sibling (the anchor) is always in place.
        for j in range(len(new) - 1, -1, -1):
            before = new[j + 1].key if j + 1 < len(new) else None
            if sources[j] < 0:
                out.append(p.Insert(parent, before, new[j]))
            elif j not in staying:
                out.append(p.Move(new[j].key, before))
        for j, child in enumerate(new):
            if sources[j] >= 0:
                self.node(old[sources[j]], child)


def _changed(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """Names whose value differs: the new value, or ``None`` when removed."""
    if old is new:
        return {}
    changes: dict[str, Any] = {}
    for name, value in new.items():
        if name not in old or not _same(old[name], value):
            changes[name] = value
    for name in old:
        if name not in new:
            changes[name] = None
    return changes


def _same(a: object, b: object) -> bool:
    # True == 1 and False == "" must not hide a change of type.
    return type(a) is type(b) and a == b
