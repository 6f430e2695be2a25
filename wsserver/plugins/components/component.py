"""Components: Python classes with declared state that render elements.

::

    class Counter(Component):
        count = State(0)

        def render(self) -> Element:
            return h.div(
                h.button("+1").bind("click", self.increment),
                h.span(f"clicked {self.count} times"),
            )

        def increment(self) -> None:
            self.count += 1

**State.**  Class attributes made with ``State(default)`` (or
``State(factory=list)``) are the component's state: they are what a
snapshot keeps (``dump_component``), so they must hold JSON values (str,
int, finite float, bool, None, lists, dicts with str keys), components, or
lists and dicts of those.  Nothing else is serialised -- no pickle -- so a
snapshot read back from a store can only set declared fields of registered
component classes.  A component is restored without calling ``__init__``:
attributes that are not ``State`` are not restored (rebuild them in
``on_restore``).

**Children.**  A component owns its child components (in its state, as a
list or single fields) and places them in its render like elements:
``h.ul(*self.items)``.  ``key=`` gives a child a stable key among its
siblings; keyed children that change order are moved, not re-created.

**Re-rendering.**  Assigning a ``State`` field, or calling ``update()``,
marks the component and its ancestors for re-rendering; after an event
handler, the handler's component is marked too (so an in-place change such
as ``self.items.append(x)`` is seen).  Components not marked reuse their
last virtual DOM, so only the affected subtrees are rendered again.  A
render must therefore depend only on the component's own state (and its
children); call ``update()`` when it reads anything else that changed.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Self, TypeVar, overload

from .html import Binding, Element
from .vdom import ROOT_KEY, TEXT, VNode, child_key, explicit_key, index_key, text_key

if TYPE_CHECKING:
    from .connection import PageConnection
    from .events import DocumentEvent
    from .navigation import PageRequest

__all__ = [
    "BoundHandler",
    "Component",
    "Rendered",
    "State",
    "component_name",
    "dump_component",
    "load_component",
    "lookup_component",
    "registered_components",
    "render_tree",
    "rendered_node",
    "set_connection",
]

logger = logging.getLogger("wsserver.plugins.components")

_T = TypeVar("_T")
_C = TypeVar("_C", bound="Component")


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


_MISSING: Any = _Missing()

# Every Component subclass, by component_name(): the only classes a
# snapshot can instantiate.
_REGISTRY: dict[str, type[Component]] = {}


class State(Generic[_T]):
    """A declared state field of a component.

    Args:
        default: the initial value (copied per instance only if it is
            immutable: give ``factory`` for lists and dicts).
        factory: called for each new component to make the initial value.

    Raises:
        TypeError: both or neither of ``default`` and ``factory``, or a
            mutable default.
    """

    def __init__(self, default: _T = _MISSING, *, factory: Callable[[], _T] | None = None) -> None:
        if (default is _MISSING) == (factory is None):
            raise TypeError("State() needs a default or a factory (not both)")
        if isinstance(default, list | dict | set):
            raise TypeError("a mutable default would be shared: use State(factory=list)")
        self.default = default
        self.factory = factory
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def initial(self) -> _T:
        """A new initial value."""
        if self.factory is not None:
            return self.factory()
        return self.default

    @overload
    def __get__(self, instance: None, owner: type) -> State[_T]: ...

    @overload
    def __get__(self, instance: Component, owner: type) -> _T: ...

    def __get__(self, instance: Component | None, owner: type) -> State[_T] | _T:
        if instance is None:
            return self
        return instance._cv_state[self.name]  # type: ignore[no-any-return]

    def __set__(self, instance: Component, value: _T) -> None:
        instance._cv_state[self.name] = value
        instance.update()

    def __repr__(self) -> str:
        return f"State({self.name})"


def component_name(cls: type[Component]) -> str:
    """The registry name of a component class: ``module:QualName``."""
    return f"{cls.__module__}:{cls.__qualname__}"


def lookup_component(name: str) -> type[Component]:
    """The registered component class of that name.

    Raises:
        LookupError: no such class (not imported, or not a component).
    """
    try:
        return _REGISTRY[name]
    except KeyError:
        raise LookupError(f"no component class {name!r} is registered") from None


def registered_components() -> dict[str, type[Component]]:
    """A copy of the registry: every component class, by name."""
    return dict(_REGISTRY)


class Component:
    """Base class of components; see the module docstring.

    Args:
        key: the stable key among siblings (a str or int; ``None``: the
            position).
        **state: initial values of ``State`` fields.

    Raises:
        TypeError: a keyword that is not a ``State`` field.
    """

    #: Marks components for the element builder (which cannot import this).
    _cv_is_component: ClassVar[bool] = True
    #: The class's ``State`` fields (its own and inherited), by name.
    _cv_fields: ClassVar[dict[str, State[Any]]] = {}

    _cv_key: object
    _cv_state: dict[str, Any]
    _cv_parent: Component | None
    _cv_dirty: bool
    _cv_cache: _Cache | None
    _cv_connection: PageConnection | None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        fields: dict[str, State[Any]] = {}
        for klass in reversed(cls.__mro__):
            for name, value in vars(klass).items():
                if isinstance(value, State):
                    fields[name] = value
        cls._cv_fields = fields
        _REGISTRY[component_name(cls)] = cls

    def __new__(cls, *args: Any, **kwargs: Any) -> Self:
        # Here and not in __init__: a subclass's __init__ that forgets
        # super().__init__(), and restoring (which skips __init__), both
        # still get a working component.
        self = super().__new__(cls)
        self._cv_key = None
        self._cv_state = {name: f.initial() for name, f in cls._cv_fields.items()}
        self._cv_parent = None
        self._cv_dirty = True
        self._cv_cache = None
        self._cv_connection = None
        return self

    def __init__(self, *, key: object = None, **state: Any) -> None:
        self._cv_key = key
        for name, value in state.items():
            if name not in self._cv_fields:
                raise TypeError(f"{type(self).__name__} has no State field {name!r}")
            setattr(self, name, value)

    def __repr__(self) -> str:
        key = "" if self._cv_key is None else f" key={self._cv_key!r}"
        return f"<{type(self).__name__}{key}>"

    # -- identity and tree -------------------------------------------------

    @property
    def key(self) -> object:
        """The key among siblings, or ``None`` (keyed by position)."""
        return self._cv_key

    @key.setter
    def key(self, value: object) -> None:
        self._cv_key = value
        self.update()

    @property
    def parent(self) -> Component | None:
        """The component whose render placed this one (set when rendered)."""
        return self._cv_parent

    def find_parent(self, cls: type[_C]) -> _C | None:
        """The nearest ancestor that is a ``cls``, or ``None``."""
        node = self._cv_parent
        while node is not None:
            if isinstance(node, cls):
                return node
            node = node._cv_parent
        return None

    @property
    def root(self) -> Component:
        """The top of this component's tree."""
        node: Component = self
        while node._cv_parent is not None:
            node = node._cv_parent
        return node

    @property
    def connection(self) -> PageConnection | None:
        """The page connection showing this component, if one is attached."""
        return self.root._cv_connection

    @property
    def state(self) -> dict[str, Any]:
        """A copy of the ``State`` fields' values, by name."""
        return dict(self._cv_state)

    def update(self) -> None:
        """Mark this component and its ancestors for re-rendering."""
        node: Component | None = self
        while node is not None and not node._cv_dirty:
            node._cv_dirty = True
            node = node._cv_parent

    # -- to override -------------------------------------------------------

    def render(self) -> Element:
        """Return this component's element (its subtree)."""
        raise NotImplementedError(f"{type(self).__name__}.render()")

    def page_title(self) -> str | None:
        """The page title while this is the page's root (``None``: the page's)."""
        return None

    def on_connect(self, connection: PageConnection) -> Awaitable[None] | None:
        """Called for every component of the page when a connection attaches
        (the first one, after a resume, after navigating to a new page)."""
        return None

    def on_document(self, event: DocumentEvent) -> Awaitable[None] | None:
        """Called for every component of the page on a page-level event:
        the page loaded (once per page), or reached with back or forward
        (``events.DocumentEvent``); Duck's ``DOMContentLoaded`` and
        ``DuckBackNavigated`` document events."""
        return None

    async def update_now(self, *, force: bool = False) -> None:
        """Re-render this component and push the changes to the browser now,
        in the middle of a handler or from a background job (Duck's
        ``update_now``).  ``force``: send its whole subtree even if the diff
        finds nothing (the browser's copy was changed behind our back).
        Nothing happens while no page connection shows the component."""
        connection = self.connection
        if connection is not None:
            await connection.update_now(self, force=force)

    def on_restore(self) -> None:
        """Called after the component is restored from a snapshot."""

    @classmethod
    def for_request(cls, request: PageRequest) -> Component:
        """Make the page's root component for ``request`` (default: ``cls()``)."""
        return cls()


def rendered_node(component: Component) -> VNode | None:
    """The virtual DOM of ``component``'s last render (``None``: never
    rendered)."""
    cache = component._cv_cache
    return None if cache is None else cache.vnode


def set_connection(root: Component, connection: PageConnection | None) -> None:
    """Record ``connection`` as the one showing ``root``'s tree (``None``:
    none); ``Component.connection`` reads it from the root."""
    root._cv_connection = connection


# -- rendering ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BoundHandler:
    """A handler found by ``(key, event)``: the component that bound it and
    the binding."""

    component: Component
    binding: Binding


@dataclass(slots=True)
class _Cache:
    key: str
    vnode: VNode
    bindings: dict[tuple[str, str], BoundHandler]
    components: list[Component]


@dataclass(slots=True)
class Rendered:
    """A rendered component tree.

    Attributes:
        tree: the virtual DOM.
        bindings: the handlers, by ``(node key, event name)``.
        components: every component in the tree, in document order.
    """

    tree: VNode
    bindings: dict[tuple[str, str], BoundHandler] = field(default_factory=dict)
    components: list[Component] = field(default_factory=list)


def render_tree(root: Component, key: str = ROOT_KEY) -> Rendered:
    """Render ``root`` and its descendants (reusing unmarked subtrees).

    Raises:
        TypeError: a render returned something other than an ``Element``.
        ValueError: two siblings with one key, or one component placed twice.
    """
    root._cv_parent = None
    cache = _Renderer().component(root, key, None)
    return Rendered(cache.vnode, dict(cache.bindings), list(cache.components))


class _Renderer:
    def __init__(self) -> None:
        self.seen: set[int] = set()

    def _claim(self, component: Component) -> None:
        if id(component) in self.seen:
            raise ValueError(f"{component!r} is placed twice in the tree")
        self.seen.add(id(component))

    def component(self, component: Component, key: str, parent: Component | None) -> _Cache:
        component._cv_parent = parent
        cache = component._cv_cache
        if not component._cv_dirty and cache is not None and cache.key == key:
            for inner in cache.components:
                self._claim(inner)
            return cache
        self._claim(component)
        element = component.render()
        if not isinstance(element, Element):
            raise TypeError(
                f"{type(component).__name__}.render() must return an Element, not {element!r}"
            )
        bindings: dict[tuple[str, str], BoundHandler] = {}
        components: list[Component] = [component]
        vnode = self.element(element, key, component, bindings, components)
        cache = _Cache(key, vnode, bindings, components)
        component._cv_cache = cache
        component._cv_dirty = False
        return cache

    def element(
        self,
        element: Element,
        key: str,
        owner: Component,
        bindings: dict[tuple[str, str], BoundHandler],
        components: list[Component],
    ) -> VNode:
        for name, binding in element.events.items():
            bindings[(key, name)] = BoundHandler(owner, binding)
        events = {name: binding.spec for name, binding in element.events.items()}
        raw = _merge_text(element.children)
        if len(raw) == 1 and isinstance(raw[0], str):
            return VNode(element.tag, key, element.props, element.style, events, raw[0])
        children: list[VNode] = []
        locals_seen: set[str] = set()
        for index, child in enumerate(raw):
            if isinstance(child, str):
                children.append(VNode(TEXT, child_key(key, text_key(index)), text=child))
                continue
            child_local = index_key(index) if child.key is None else explicit_key(child.key)
            if child_local in locals_seen:
                raise ValueError(f"two children of {key!r} have the key {child.key!r}")
            locals_seen.add(child_local)
            ckey = child_key(key, child_local)
            if isinstance(child, Element):
                children.append(self.element(child, ckey, owner, bindings, components))
            else:
                cache = self.component(child, ckey, owner)
                bindings.update(cache.bindings)
                components.extend(cache.components)
                children.append(cache.vnode)
        return VNode(element.tag, key, element.props, element.style, events, None, tuple(children))


def _merge_text(children: list[Any]) -> list[Any]:
    """Adjacent strings as one: the browser's parser would merge them too."""
    merged: list[Any] = []
    for child in children:
        if isinstance(child, str) and merged and isinstance(merged[-1], str):
            merged[-1] += child
        else:
            merged.append(child)
    return merged


# -- snapshots of state ---------------------------------------------------------


def dump_component(component: Component) -> dict[str, Any]:
    """A component and its state as JSON-ready data.

    ``{"c": class name, "k": key or null, "s": {field: value}}``; child
    components inside state are dumped the same way, as ``{"$c": ...}``.

    Raises:
        TypeError: a state value that cannot be serialised.
    """
    key = component._cv_key
    return {
        "c": component_name(type(component)),
        "k": None if key is None else str(key),
        "s": {
            name: _encode(value, f"{type(component).__name__}.{name}")
            for name, value in component._cv_state.items()
        },
    }


def _encode(value: Any, where: str) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise TypeError(f"{where}: {value} cannot be serialised (not finite)")
        return value
    if isinstance(value, list | tuple):
        return [_encode(item, where) for item in value]
    if isinstance(value, dict):
        encoded: dict[str, Any] = {}
        for name, item in value.items():
            if not isinstance(name, str):
                raise TypeError(f"{where}: dict keys must be strings, not {name!r}")
            encoded[name] = _encode(item, where)
        # A user dict that looks like our markers is wrapped.
        if any(name.startswith("$") for name in encoded):
            return {"$d": encoded}
        return encoded
    if isinstance(value, Component):
        return {"$c": dump_component(value)}
    raise TypeError(f"{where}: a {type(value).__name__} cannot be kept in a snapshot")


def load_component(data: Mapping[str, Any]) -> Component:
    """Rebuild a component from ``dump_component``'s data.

    Only registered component classes are instantiated, without calling
    ``__init__``; only their declared ``State`` fields are set (unknown
    fields are ignored, missing ones keep their initial value); then
    ``on_restore`` runs.

    Raises:
        ValueError: malformed data, or nested too deeply to rebuild.
        LookupError: an unknown class.
    """
    try:
        return _load_component(data)
    except RecursionError:
        # Found by fuzz/fuzz_snapshots.py: a state nested a few hundred
        # levels deep parses as JSON but not here; one more malformed
        # snapshot (cv/expired), not a failed connection.
        raise ValueError("a component snapshot nested too deeply") from None


def _load_component(data: Mapping[str, Any]) -> Component:
    if not isinstance(data, Mapping):
        raise ValueError("a component snapshot must be an object")
    name, key, state = data.get("c"), data.get("k"), data.get("s")
    if not isinstance(name, str) or not (key is None or isinstance(key, str)):
        raise ValueError("a component snapshot needs a class name and a key")
    if not isinstance(state, Mapping):
        raise ValueError("a component snapshot needs its state")
    cls = lookup_component(name)
    component = cls.__new__(cls)
    component._cv_key = key
    for field_name, value in state.items():
        if field_name in cls._cv_fields:
            component._cv_state[field_name] = _decode(value)
        else:
            logger.debug("snapshot of %s: unknown field %r ignored", name, field_name)
    component.on_restore()
    return component


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return [_decode(item) for item in value]
    if isinstance(value, dict):
        if len(value) == 1 and "$c" in value:
            return _load_component(value["$c"])
        if len(value) == 1 and isinstance(value.get("$d"), dict):
            value = value["$d"]
        return {name: _decode(item) for name, item in value.items()}
    return value
