"""Events: what the browser listens for, what it sends, and calling handlers.

A binding (``element.bind("click", handler)``) has two halves:

- ``EventSpec``, pure data that travels to the browser inside the virtual
  DOM: which *value* to extract when the event fires (``"auto"``,
  ``"value"``, ``"form"``...), whether to call ``preventDefault`` or
  ``stopPropagation``, and a debounce delay.  The browser never receives
  code: value getters are names from a fixed list, not JavaScript
  expressions (domsync spliced its ``js_value_getter`` into generated code;
  here the few expressions it used are accepted as aliases and mapped to
  names);
- the handler, a Python callable that stays on the server, found again by
  ``(node key, event name)`` when the browser reports the event.

A handler takes no argument, one (the ``Event``), or four (``component,
event, value, connection``, the signature Duck's Lively components use);
it may be a coroutine function.  The arity is read once, when it is bound.
"""

from __future__ import annotations

import inspect
import math
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

from ..runtime.messages import Envelope, MalformedMessage

if TYPE_CHECKING:
    from .component import Component
    from .connection import PageConnection
    from .document import DocElement

__all__ = [
    "DOMSYNC_ALIASES",
    "LIVE_PROPS",
    "VALUE_GETTERS",
    "DocumentEvent",
    "Event",
    "EventMessage",
    "EventSpec",
    "Handler",
    "call_handler",
    "check_event_name",
    "check_value_getter",
    "handler_arity",
    "make_spec",
    "parse_event_message",
]

#: A handler: ``handler()``, ``handler(event)`` or ``handler(component,
#: event, value, connection)``; may return an awaitable.
Handler = Callable[..., Awaitable[None] | None]

# DOM event types: ``click``, ``keydown``, custom ones such as
# ``my-widget:changed``.  No spaces, no quotes: they end up in attribute
# values and log lines.
_EVENT_RE = re.compile(r"[A-Za-z][A-Za-z0-9_:.-]{0,63}")

#: Value getters: what the browser extracts when the event fires.
#:
#: - ``auto``: the form's values for a ``submit`` or an event on a form; a
#:   control's value for an event on a control (text: a string; checkbox: a
#:   bool; radio: its value if checked, else null; select: the value, or a
#:   list for ``multiple``; file input: a list of file metadata); else null.
#: - ``none``: null.
#: - ``value``, ``checked``, ``files``: that property of the element.
#: - ``form``: the values of the element's form (or of the element if it
#:   is a form).
#: - ``text``: the element's ``textContent``.
#: - ``key``: the keyboard event's ``key``.
#: - ``detail``: a ``CustomEvent``'s ``detail`` (JSON-serialisable).
#: - ``selected``: a select's selected values, always as a list.
#: - ``attr:NAME``: the element's attribute ``NAME`` (or null).
#: - ``data:NAME``: ``element.dataset[NAME]`` (or null).
VALUE_GETTERS = frozenset(
    {"auto", "none", "value", "checked", "files", "form", "text", "key", "detail", "selected"}
)
_PREFIXED_GETTER_RE = re.compile(r"(attr|data):([A-Za-z_][A-Za-z0-9_:.-]{0,63})")

#: The JavaScript expressions domsync users pass as ``js_value_getter``,
#: mapped to getter names.  Anything else is refused: no code is ever sent.
DOMSYNC_ALIASES: Mapping[str, str] = MappingProxyType(
    {
        "this.value": "value",
        "this.checked": "checked",
        "this.files": "files",
        "this.innerText": "text",
        "this.textContent": "text",
        "this.options[this.selectedIndex].value": "value",
        "event.key": "key",
        "event.detail": "detail",
        "null": "none",
    }
)

#: The properties whose live values the browser reports with an event
#: (``EventMessage.live``): what the user may have changed without the
#: server knowing.
LIVE_PROPS = frozenset({"value", "checked", "selected"})

# The longest debounce accepted: anything longer is a bug, not a choice.
_MAX_DEBOUNCE_MS = 60_000
# Bounds on what one event message may carry in ``live``.
_MAX_LIVE_ENTRIES = 2048
_MAX_KEY_LENGTH = 4096


def check_event_name(name: object) -> str:
    """Return ``name`` if it is a valid DOM event type.

    Raises:
        ValueError: not a string of 1-64 letters, digits, ``_ : . -``
            starting with a letter, or a name starting with ``on`` (write
            ``"click"``, not ``"onclick"``).
    """
    if not isinstance(name, str) or _EVENT_RE.fullmatch(name) is None:
        raise ValueError(f"invalid event name {name!r}")
    if name.lower().startswith("on") and name.lower() not in _ON_EVENTS:
        raise ValueError(f"event names do not start with 'on': write {name[2:]!r}, not {name!r}")
    return name


# Real event types that do start with "on": "online" and "one..." would be
# refused by the rule above without this list.
_ON_EVENTS = frozenset({"online", "open"})


def check_value_getter(getter: object) -> str:
    """Return the canonical name of a value getter.

    Accepts a name of ``VALUE_GETTERS``, ``attr:NAME``, ``data:NAME``, or
    one of ``DOMSYNC_ALIASES``.

    Raises:
        ValueError: anything else (in particular, arbitrary JavaScript).
    """
    if not isinstance(getter, str):
        raise ValueError(f"a value getter must be a string, not {type(getter).__name__}")
    getter = DOMSYNC_ALIASES.get(getter.strip(), getter)
    if getter in VALUE_GETTERS or _PREFIXED_GETTER_RE.fullmatch(getter):
        return getter
    raise ValueError(
        f"unknown value getter {getter!r}: use one of {sorted(VALUE_GETTERS)},"
        " 'attr:NAME' or 'data:NAME' (no JavaScript is sent to the browser)"
    )


@dataclass(frozen=True, slots=True)
class EventSpec:
    """How the browser handles one bound event: pure data, sent as JSON.

    Attributes:
        value: the value getter (``check_value_getter``).
        prevent_default: call ``event.preventDefault()``.
        stop_propagation: call ``event.stopPropagation()``.
        debounce_ms: wait until the event has not fired for this many
            milliseconds, then send the last one (0: send each).
    """

    value: str = "auto"
    prevent_default: bool = False
    stop_propagation: bool = False
    debounce_ms: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "value", check_value_getter(self.value))
        if isinstance(self.debounce_ms, bool) or not isinstance(self.debounce_ms, int):
            raise ValueError("debounce_ms must be an integer")
        if not 0 <= self.debounce_ms <= _MAX_DEBOUNCE_MS:
            raise ValueError(f"debounce_ms must be between 0 and {_MAX_DEBOUNCE_MS}")

    def to_wire(self) -> dict[str, Any]:
        """The JSON form: ``{"v": getter, "p": 1, "s": 1, "d": ms}``, defaults
        (``"auto"``, false, 0) left out: most specs are ``{}``."""
        wire: dict[str, Any] = {}
        if self.value != "auto":
            wire["v"] = self.value
        if self.prevent_default:
            wire["p"] = 1
        if self.stop_propagation:
            wire["s"] = 1
        if self.debounce_ms:
            wire["d"] = self.debounce_ms
        return wire

    @classmethod
    def from_wire(cls, data: object) -> EventSpec:
        """Parse ``to_wire``'s form.

        Raises:
            ValueError: not such an object.
        """
        if not isinstance(data, dict):
            raise ValueError("an event spec must be an object")
        unknown = set(data) - {"v", "p", "s", "d"}
        if unknown:
            raise ValueError(f"unknown event spec fields {sorted(unknown)}")
        debounce = data.get("d", 0)
        if isinstance(debounce, bool) or not isinstance(debounce, int):
            raise ValueError("event spec field 'd' must be an integer")
        return cls(
            value=data.get("v", "auto"),
            prevent_default=bool(data.get("p", 0)),
            stop_propagation=bool(data.get("s", 0)),
            debounce_ms=debounce,
        )


def make_spec(
    event: str,
    *,
    tag: str | None = None,
    value: str = "auto",
    prevent_default: bool | None = None,
    stop_propagation: bool = False,
    debounce: float | None = None,
) -> EventSpec:
    """Build an ``EventSpec`` with this package's defaults.

    Args:
        event: the event name (checked).
        tag: the element's tag, for the defaults.
        value: the value getter.
        prevent_default: ``None`` means: yes for ``submit`` (a bound form
            never reloads the page) and for ``click`` on an ``a`` (a bound
            link is a button), no otherwise.
        stop_propagation: stop the event at this element.
        debounce: seconds (Python's unit); the wire carries milliseconds.

    Raises:
        ValueError: a bad name, getter or debounce.
    """
    check_event_name(event)
    if prevent_default is None:
        prevent_default = event == "submit" or (event == "click" and tag == "a")
    if debounce is None:
        debounce_ms = 0
    else:
        if isinstance(debounce, bool) or not (debounce >= 0 and math.isfinite(debounce)):
            raise ValueError("debounce must be a finite number of seconds >= 0")
        debounce_ms = round(debounce * 1000)
    return EventSpec(value, bool(prevent_default), bool(stop_propagation), debounce_ms)


@dataclass(frozen=True, slots=True)
class Event:
    """One event, as a handler receives it.

    Attributes:
        name: the DOM event type (``"click"``).
        value: what the browser extracted (see ``VALUE_GETTERS``), decoded
            from JSON: a str, bool, number, list, dict or ``None``.
        component: the component whose ``render`` bound the handler, or the
            ``DocElement`` for the imperative ``Document``.
        connection: the page's connection.
        key: the key of the element the event fired on.
    """

    name: str
    value: Any
    component: Component | DocElement | None
    connection: PageConnection | None
    key: str


@dataclass(frozen=True, slots=True)
class DocumentEvent:
    """A page-level event, delivered to every component of the page
    (``Component.on_document``).

    Attributes:
        kind: ``"load"``: the page was loaded, once per page (a reconnect
            or a resume is not a load; a page reached by following a link
            is one); ``"history"``: the page was reached with the browser's
            back or forward button (within the app, or a back to a page
            the browser loads again).
        url: the page's URL (path and query).
        direction: ``"back"`` or ``"forward"`` for a history event within
            the app; ``None`` when the browser does not say.
        connection: the page's connection.
    """

    kind: Literal["load", "history"]
    url: str
    direction: Literal["back", "forward"] | None
    connection: PageConnection


def handler_arity(handler: Handler) -> int:
    """How many arguments ``call_handler`` passes to ``handler``: 0, 1 or 4.

    Raises:
        TypeError: ``handler`` is not callable, or accepts none of those.
    """
    if not callable(handler):
        raise TypeError(f"an event handler must be callable, not {handler!r}")
    try:
        signature = inspect.signature(handler)
    except (TypeError, ValueError):
        return 1  # a builtin without a signature: give it the event
    positional = [
        p
        for p in signature.parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    required = [p for p in positional if p.default is p.empty]
    varargs = any(p.kind is p.VAR_POSITIONAL for p in signature.parameters.values())
    # One argument first: a handler with an optional parameter gets the event.
    for arity in (1, 0, 4):
        if len(required) <= arity and (varargs or len(positional) >= arity):
            return arity
    raise TypeError(
        f"event handler {handler!r} must take no argument, one (the event), or four"
        " (component, event, value, connection)"
    )


async def call_handler(handler: Handler, arity: int, event: Event) -> None:
    """Call ``handler`` with ``arity`` arguments; await it if it is async."""
    if arity == 0:
        result = handler()
    elif arity == 1:
        result = handler(event)
    else:
        result = handler(event.component, event, event.value, event.connection)
    if inspect.isawaitable(result):
        await result


@dataclass(frozen=True, slots=True)
class EventMessage:
    """A ``cv/ev`` message from the browser, validated.

    Attributes:
        key: the key of the element whose listener fired.
        name: the event type.
        value: the extracted value.
        live: the live values of form controls in the event's scope, by
            key: ``{key: {"value": "..."}}``, ``{key: {"checked": true}}``
            or ``{key: {"selected": false}}``.
    """

    key: str
    name: str
    value: Any
    live: Mapping[str, Mapping[str, str | bool]] = field(
        default_factory=lambda: MappingProxyType({})
    )


def parse_event_message(message: Envelope) -> EventMessage:
    """Validate a ``cv/ev`` message.

    Raises:
        MalformedMessage: a missing field or one of the wrong type (the
            session closes the connection with 1007).
    """
    key = message.require("key", str)
    name = message.require("type", str)
    if len(key) > _MAX_KEY_LENGTH:
        raise MalformedMessage("cv/ev: key too long")
    try:
        check_event_name(name)
    except ValueError as exc:
        raise MalformedMessage(f"cv/ev: {exc}") from None
    live_field = message.get("live")
    live: dict[str, Mapping[str, str | bool]] = {}
    if live_field is not None:
        if not isinstance(live_field, dict) or len(live_field) > _MAX_LIVE_ENTRIES:
            raise MalformedMessage("cv/ev: 'live' must be an object of at most 2048 entries")
        for node_key, props in live_field.items():
            live[node_key] = _live_props(node_key, props)
    return EventMessage(key, name, message.get("value"), MappingProxyType(live))


def _live_props(node_key: str, props: object) -> Mapping[str, str | bool]:
    if len(node_key) > _MAX_KEY_LENGTH or not isinstance(props, dict):
        raise MalformedMessage("cv/ev: each 'live' entry must be an object")
    checked: dict[str, str | bool] = {}
    for name, value in props.items():
        if name not in LIVE_PROPS:
            raise MalformedMessage(f"cv/ev: unknown live property {name!r}")
        if name == "value" and not isinstance(value, str):
            raise MalformedMessage("cv/ev: a live 'value' must be a string")
        if name != "value" and not isinstance(value, bool):
            raise MalformedMessage(f"cv/ev: a live {name!r} must be a boolean")
        checked[name] = value
    return MappingProxyType(checked)
