"""An imperative DOM in domsync's style, producing the same patches.

::

    doc = connection.document("r/.board")      # a host element of a component
    button = doc.createElement("button", id="go", innerText="Go")
    button.addEventListener("click", on_go, "value")
    doc.getRootElement().appendChild(button)
    await doc.flush()                           # one patch batch

The method names are domsync's (``createElement``, ``appendChild``,
``insertBefore``, ``remove``, ``setAttribute``, ``removeAttribute``,
``addEventListener``, ``innerText``, ``value``, ``getElementById``,
``flush``), and so are its rules: setters that change nothing send nothing,
``id`` is fixed at creation, event handlers are bound, not written as
``on*`` attributes.  Unlike domsync, nothing is sent as JavaScript: each
change becomes a patch (``patches.py``), text and values travel as data,
and ``value_getter`` is a getter name (``"value"``, ``"checked"``...), the
common domsync expressions (``"this.value"``) being accepted as aliases.

A document lives inside a *host*: an element rendered by a component with
no children and no text of its own (``h.div(key="board")``), whose key is
the document's root key.  The component's diff leaves the host's content
alone, the document owns it.  A new document starts by clearing its host
(after a resume, the old document's nodes are still in the page), so the
code that builds it -- typically a component's ``on_connect`` -- runs again
on every connection.

Elements are keyed ``<root key>/@<id>``.  Changes to elements not yet in the
document are kept with the element and sent when it is inserted.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING
from urllib.parse import quote

from .events import Handler, make_spec
from .html import (
    VOID_TAGS,
    AttrValue,
    Binding,
    check_tag,
    normalize_attribute,
    parse_style,
)
from .patches import Insert, Move, Patch, Remove, SetEvents, SetProps, SetStyle, SetText
from .vdom import TEXT, PropValue, VNode, child_key

if TYPE_CHECKING:
    from .connection import PageConnection

__all__ = ["DocElement", "Document"]

_ID_RE = re.compile(r"[^\s/]{1,128}")


class DocElement:
    """One element of a ``Document``; create it with ``Document.createElement``."""

    def __init__(self, document: Document, tag: str, element_id: str, *, root: bool = False):
        self._doc = document
        self._tag = tag
        self._id = element_id
        self._root = root
        self._key = (
            document.root_key
            if root
            else child_key(document.root_key, "@" + quote(element_id, safe=""))
        )
        self._props: dict[str, PropValue] = {}
        self._style: dict[str, str] = {}
        self._events: dict[str, Binding] = {}
        self._text = ""
        self._children: list[DocElement] = []
        self._parent: DocElement | None = None

    def __repr__(self) -> str:
        return f"<DocElement {self._tag}#{self._id}>"

    # -- read-only properties --------------------------------------------

    @property
    def tagName(self) -> str:
        """The tag, upper case (as the DOM reports it)."""
        return self._tag.upper()

    @property
    def id(self) -> str:
        """The element's id (fixed at creation)."""
        return self._id

    @property
    def key(self) -> str:
        """The element's key on the wire."""
        return self._key

    @property
    def parentElement(self) -> DocElement | None:
        """The parent, or ``None``."""
        return self._parent

    @property
    def children(self) -> list[DocElement]:
        """The child elements (a copy)."""
        return list(self._children)

    @property
    def firstElementChild(self) -> DocElement | None:
        """The first child, or ``None``."""
        return self._children[0] if self._children else None

    @property
    def lastElementChild(self) -> DocElement | None:
        """The last child, or ``None``."""
        return self._children[-1] if self._children else None

    @property
    def attributes(self) -> dict[str, str]:
        """The attributes as strings (``style`` included), a copy."""
        result = {n: ("" if v is True else v) for n, v in self._props.items() if v is not False}
        if self._style:
            result["style"] = "; ".join(f"{n}: {v}" for n, v in self._style.items())
        return result

    @property
    def attached(self) -> bool:
        """Whether the element is in the document (so its changes are sent)."""
        node: DocElement | None = self
        while node is not None:
            if node._root:
                return True
            node = node._parent
        return False

    def getDocument(self) -> Document:
        """The document."""
        return self._doc

    # -- tree ----------------------------------------------------------------

    def appendChild(self, child: DocElement) -> DocElement:
        """Append ``child`` (moving it if it is somewhere already)."""
        return self.insertBefore(child, None)

    def insertBefore(self, new: DocElement, reference: DocElement | None) -> DocElement:
        """Insert ``new`` before ``reference`` (a child; ``None``: at the end).

        Raises:
            ValueError: ``reference`` is not a child, ``new`` is the root,
                an ancestor of this element, or of another document; or this
                element is void (``input``, ``img``...).
        """
        if new._doc is not self._doc:
            raise ValueError("the element belongs to another document")
        if new._root:
            raise ValueError("the root element cannot be moved")
        if reference is not None and reference._parent is not self:
            raise ValueError("the reference element is not a child of this element")
        if self._tag in VOID_TAGS:
            raise ValueError(f"<{self._tag}> cannot have children")
        node: DocElement | None = self
        while node is not None:
            if node is new:
                raise ValueError("an element cannot be inserted into itself")
            node = node._parent
        if reference is new:
            return new
        attached = self.attached
        before = None if reference is None else reference._key
        if new._parent is self and attached:
            # A move within one parent keeps the DOM node (and its state).
            self._children.remove(new)
            self._insert(new, reference)
            self._doc._emit(Move(new._key, before))
            return new
        if new._parent is not None:
            new.remove(forget=False)
        if attached and self._text and not self._children:
            # The text becomes a text node in front of the new children.
            self._doc._emit(SetText(self._key, ""))
            self._doc._emit(Insert(self._key, None, self._text_vnode()))
        self._insert(new, reference)
        if attached:
            self._doc._emit(Insert(self._key, before, new.to_vnode()))
        return new

    def _insert(self, new: DocElement, reference: DocElement | None) -> None:
        index = len(self._children) if reference is None else self._children.index(reference)
        self._children.insert(index, new)
        new._parent = self

    def remove(self, *, forget: bool = True) -> None:
        """Take the element out of its parent (and, by default, forget its
        subtree's ids and handlers, as domsync does).

        Raises:
            ValueError: the root cannot be removed.
        """
        if self._root:
            raise ValueError("the root element cannot be removed")
        parent = self._parent
        if parent is not None:
            if self.attached:
                self._doc._emit(Remove(self._key))
            parent._children.remove(self)
            self._parent = None
        if forget:
            for element in self._walk():
                self._doc._forget(element)

    def _walk(self) -> Iterator[DocElement]:
        yield self
        for child in self._children:
            yield from child._walk()

    # -- attributes ----------------------------------------------------------

    def getAttribute(self, name: str, default: str | None = None) -> str | None:
        """An attribute's value as a string, or ``default``."""
        return self.attributes.get(name, default)

    def setAttribute(self, name: str, value: AttrValue) -> None:
        """Set an attribute (``style`` as a CSS string); unchanged: nothing sent.

        Raises:
            ValueError: ``id`` (fixed at creation), ``on*`` and the other
                names ``html.check_attribute_name`` refuses.
        """
        self._check_not_root()
        if name == "id":
            raise ValueError("the id is set by createElement and cannot change")
        if name.lower() == "style":
            style = parse_style(value if isinstance(value, str) else None)
            changes: dict[str, str | None] = {n: None for n in self._style if n not in style}
            changes.update({n: v for n, v in style.items() if self._style.get(n) != v})
            self._style = style
            if changes and self.attached:
                self._doc._emit(SetStyle(self._key, changes))
            return
        normalized = normalize_attribute(name, value)
        if self._props.get(name) == normalized and type(self._props.get(name)) is type(normalized):
            return
        if normalized is None:
            if name not in self._props:
                return
            del self._props[name]
        else:
            self._props[name] = normalized
        if self.attached:
            self._doc._emit(SetProps(self._key, {name: normalized}))

    def removeAttribute(self, name: str) -> None:
        """Remove an attribute (``style`` included); absent: nothing sent."""
        self._check_not_root()
        if name.lower() == "style":
            self.setAttribute("style", "")
            return
        if name in self._props:
            del self._props[name]
            if self.attached:
                self._doc._emit(SetProps(self._key, {name: None}))

    def _check_not_root(self) -> None:
        if self._root:
            raise ValueError("the root element belongs to its component: change it there")

    # -- events ----------------------------------------------------------------

    def addEventListener(
        self,
        event: str,
        handler: Handler,
        value_getter: str | None = None,
        *,
        prevent_default: bool | None = None,
        debounce: float | None = None,
    ) -> None:
        """Call ``handler`` when ``event`` fires (one handler per event).

        Args:
            event: the event type.
            handler: ``handler()``, ``handler(event)`` or ``handler(element,
                event, value, connection)``, sync or async.
            value_getter: what the browser sends (``events.VALUE_GETTERS``,
                or a domsync expression such as ``"this.value"``); ``None``:
                ``"auto"``.
            prevent_default, debounce: as ``Element.bind``.
        """
        self._check_not_root()
        spec = make_spec(
            event,
            tag=self._tag,
            value=value_getter or "auto",
            prevent_default=prevent_default,
            debounce=debounce,
        )
        previous = self._events.get(event)
        self._events[event] = Binding(handler, spec)
        if self.attached and (previous is None or previous.spec != spec):
            self._doc._emit(SetEvents(self._key, {event: spec}))

    def removeEventListener(self, event: str) -> None:
        """Stop listening for ``event``."""
        if self._events.pop(event, None) is not None and self.attached:
            self._doc._emit(SetEvents(self._key, {event: None}))

    def binding(self, event: str) -> Binding | None:
        """The binding for ``event``, if any."""
        return self._events.get(event)

    # -- text and value --------------------------------------------------------

    @property
    def innerText(self) -> str:
        """The element's own text (its children's not included)."""
        return self._text

    @innerText.setter
    def innerText(self, text: str) -> None:
        self._check_not_root()
        text = str(text)
        if text == self._text and not self._children:
            return
        if self._tag in VOID_TAGS:
            raise ValueError(f"<{self._tag}> cannot have text")
        for child in list(self._children):
            child._parent = None
            for element in child._walk():
                self._doc._forget(element)
        self._children = []
        self._text = text
        if self.attached:
            self._doc._emit(SetText(self._key, text))

    @property
    def value(self) -> str:
        """The ``value`` property (of inputs, textareas, selects)."""
        value = self._props.get("value", "")
        return value if isinstance(value, str) else ""

    @value.setter
    def value(self, value: str) -> None:
        self._check_not_root()
        value = str(value)
        if self._props.get("value") == value:
            return
        self._props["value"] = value
        if self.attached:
            self._doc._emit(SetProps(self._key, {"value": value}))

    # -- the virtual DOM -------------------------------------------------------

    def _text_vnode(self) -> VNode:
        return VNode(TEXT, child_key(self._key, "#t"), text=self._text)

    def to_vnode(self) -> VNode:
        """This element and its subtree as a ``VNode``."""
        events = {name: binding.spec for name, binding in self._events.items()}
        if not self._children:
            return VNode(self._tag, self._key, self._props, self._style, events, self._text or None)
        children = [child.to_vnode() for child in self._children]
        if self._text:
            children.insert(0, self._text_vnode())
        return VNode(self._tag, self._key, self._props, self._style, events, None, tuple(children))


class Document:
    """A per-connection imperative DOM inside a host element.

    Args:
        root_key: the key of the host element (rendered by a component).
        connection: the page connection ``flush`` sends through.
    """

    def __init__(self, root_key: str, *, connection: PageConnection | None = None) -> None:
        self.root_key = root_key
        self.connection = connection
        self._ids = itertools.count(1)
        self._by_id: dict[str, DocElement] = {}
        self._by_key: dict[str, DocElement] = {}
        self._root = DocElement(self, "div", "", root=True)
        # Clear what an earlier document left in the host (after a resume).
        self._pending: list[Patch] = [SetText(root_key, "")]

    def __repr__(self) -> str:
        return f"<Document {self.root_key} elements={len(self._by_id)}>"

    def _emit(self, patch: Patch) -> None:
        self._pending.append(patch)

    def _forget(self, element: DocElement) -> None:
        self._by_id.pop(element.id, None)
        self._by_key.pop(element.key, None)

    def createElement(
        self,
        tagName: str,
        id: str | None = None,
        innerText: str | None = None,
        value: str | None = None,
        attributes: Mapping[str, AttrValue] | None = None,
    ) -> DocElement:
        """Create a (detached) element.

        Args:
            tagName: the tag (``html.check_tag``; case-insensitive).
            id: a unique id (also set as the DOM ``id`` attribute); ``None``:
                an automatic one (``e1``, ``e2``...; not set in the DOM).
            innerText: its text.
            value: its ``value``.
            attributes: more attributes.

        Raises:
            ValueError: a bad tag or attribute, an id in use or with ``/``
                or spaces.
        """
        tag = check_tag(tagName.lower())
        explicit = id is not None
        if id is None:
            id = f"e{next(self._ids)}"
            while id in self._by_id:
                id = f"e{next(self._ids)}"
        elif _ID_RE.fullmatch(id) is None:
            raise ValueError(f"invalid element id {id!r}")
        if id in self._by_id:
            raise ValueError(f"an element with id {id!r} exists")
        element = DocElement(self, tag, id)
        if explicit:
            element._props["id"] = id
        self._by_id[id] = element
        self._by_key[element.key] = element
        for name, attribute in (attributes or {}).items():
            element.setAttribute(name, attribute)
        if innerText is not None:
            element.innerText = innerText
        if value is not None:
            element.value = value
        return element

    def getRootElement(self) -> DocElement:
        """The host element (children can be added, its attributes not set)."""
        return self._root

    def getElementById(self, id: str, strict: bool = True) -> DocElement | None:
        """The element with ``id``.

        Raises:
            KeyError: none, and ``strict``.
        """
        element = self._by_id.get(id)
        if element is None and strict:
            raise KeyError(f"no element with id {id!r}")
        return element

    def getElementsByTagName(self, tagName: str) -> list[DocElement]:
        """Elements in the document (attached) with that tag; ``""``: all."""
        tag = tagName.lower()
        return [e for e in self._root._walk() if not e._root and tag in ("", e._tag)]

    def getElementsByClassName(self, className: str) -> list[DocElement]:
        """Elements in the document whose ``class`` lists ``className``."""
        return [
            e
            for e in self._root._walk()
            if not e._root and className in str(e._props.get("class", "")).split()
        ]

    def element_for_key(self, key: str) -> DocElement | None:
        """The element with that wire key, or ``None``."""
        return self._by_key.get(key)

    def find_handler(self, key: str, event: str) -> tuple[DocElement, Binding] | None:
        """The element and binding for an event from the browser, if bound."""
        element = self._by_key.get(key)
        if element is None or not element.attached:
            return None
        binding = element.binding(event)
        return None if binding is None else (element, binding)

    @property
    def pending(self) -> list[Patch]:
        """Patches not sent yet (a copy)."""
        return list(self._pending)

    def take_patches(self) -> list[Patch]:
        """The patches not sent yet, which are then forgotten."""
        patches, self._pending = self._pending, []
        return patches

    def to_vnode(self) -> VNode:
        """The document's content as children of a host ``div`` node."""
        return self._root.to_vnode()

    def snapshot_patches(self) -> list[Patch]:
        """The patches that show the whole document in an empty or stale
        host (domsync's ``render_js_full``): clear it, insert the content."""
        patches: list[Patch] = [SetText(self.root_key, "")]
        patches.extend(
            Insert(self.root_key, None, child.to_vnode()) for child in self._root._children
        )
        return patches

    async def flush(self) -> int:
        """Send the pending patches as one batch; return how many.

        Raises:
            RuntimeError: the document has no connection.
        """
        if self.connection is None:
            raise RuntimeError("this document has no connection to flush to")
        patches = self.take_patches()
        if patches:
            await self.connection.send_patches(patches)
        return len(patches)
