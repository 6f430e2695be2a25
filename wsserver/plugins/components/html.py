"""The element builder, attribute and URL safety, and server-side rendering.

Build elements with ``h``::

    h.form(
        h.input(name="title", value=self.draft, placeholder="What needs doing?"),
        h.button("Add", type="submit"),
        class_="new-todo",
    ).bind("submit", self.add)

Positional arguments are children: elements, components, strings (text),
numbers, and lists of those; ``None`` and booleans are skipped, so
``cond and h.p("...")`` works.  Keyword arguments are attributes:
``class_`` and ``for_`` lose their trailing underscore, other underscores
become hyphens (``aria_label`` -> ``aria-label``); ``key=`` is the stable
key among siblings, ``style=`` a dict (or a CSS string), ``attrs=`` a dict
of names that are not identifiers, and ``on_<event>=handler`` binds an event
(as ``.bind(event, handler)``).

Everything is data, never markup or code:

- tags are checked, and the ones that run or load code or change how the
  page is read (``script``, ``style``, ``base``, ``meta``, ``object``,
  ``embed``, SVG ``animate``/``set``...) are refused;
- attribute names are checked; event-handler attributes (``on*``) cannot
  be set (bind events instead); ``srcdoc`` and ``style`` (use ``style=``)
  neither;
- URLs in ``href``, ``src``, ``action``, ``formaction``... are checked after
  removing what the browser's URL parser ignores (leading/trailing controls
  and spaces, tabs and newlines anywhere), and a ``javascript:``,
  ``vbscript:`` or ``data:`` URL (any case, however obfuscated) is dropped,
  with a log line: the attribute is left out, so the link is inert;
- ``render_html`` escapes every text and attribute value; the browser
  runtime sets text with ``textContent`` and attributes with
  ``setAttribute``, and applies the same checks again.
"""

from __future__ import annotations

import html
import json
import logging
import math
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Self

from .events import EventSpec, Handler, handler_arity, make_spec
from .uploads import (
    DEFAULT_MAX_FILES,
    DEFAULT_MAX_UPLOAD_SIZE,
    UPLOAD_EVENT,
    UploadCallback,
    UploadHandler,
    UploadSpec,
)
from .vdom import TEXT, PropValue, VNode

__all__ = [
    "FORBIDDEN_TAGS",
    "KNOWN_TAGS",
    "URL_ATTRIBUTES",
    "VOID_TAGS",
    "AttrValue",
    "Binding",
    "Child",
    "Element",
    "StyleArg",
    "check_attribute_name",
    "check_style_name",
    "check_tag",
    "clean_style_value",
    "element",
    "h",
    "is_safe_url",
    "normalize_attribute",
    "parse_style",
    "render_html",
    "safe_url",
]

logger = logging.getLogger("wsserver.plugins.components")

#: An attribute value as given: ``None`` leaves it out, ``True``/``False``
#: for boolean attributes, numbers become strings.
AttrValue = str | int | float | bool | None
#: ``style=``: a dict of CSS properties (``None`` values left out), or a
#: CSS declaration string.
StyleArg = Mapping[str, str | int | float | None] | str | None
#: A child: an element, a component, text, a number, a list of children;
#: ``None`` and booleans are skipped.
Child = Any

_TAG_RE = re.compile(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*")
_ATTRIBUTE_RE = re.compile(r"[A-Za-z_:][A-Za-z0-9_:.-]{0,63}")
_STYLE_NAME_RE = re.compile(r"--[A-Za-z0-9_-]{1,62}|-?[a-z][a-z0-9-]{0,62}")

#: Tags that run or load code, change how the page's other content is read,
#: or hold raw text that would need escaping rules of its own.
FORBIDDEN_TAGS = frozenset(
    {
        "script",
        "style",
        "base",
        "meta",
        "link",
        "title",
        "head",
        "html",
        "body",
        "object",
        "embed",
        "applet",
        "frame",
        "frameset",
        "noscript",
        "noembed",
        "noframes",
        "xmp",
        "plaintext",
        "listing",
        "template",
        # SVG animation can set an href to a javascript: URL, and the XML
        # event elements attach handlers.
        "animate",
        "set",
        "animatemotion",
        "animatetransform",
        "handler",
        "listener",
    }
)
#: Elements without content.
VOID_TAGS = frozenset(
    {"area", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
)
#: The tags ``h.<tag>`` knows (others: ``h("tag")``, which custom elements
#: with a hyphen need anyway); a typo is an ``AttributeError``.
_KNOWN = (
    "a abbr address area article aside audio b bdi bdo blockquote br button canvas"
    " caption cite code col colgroup data datalist dd del details dfn dialog div dl dt em"
    " fieldset figcaption figure footer form h1 h2 h3 h4 h5 h6 header hgroup hr i iframe"
    " img input ins kbd label legend li main map mark menu meter nav ol optgroup option"
    " output p picture pre progress q rp rt ruby s samp search section select slot small"
    " source span strong sub summary sup table tbody td textarea tfoot th thead time tr"
    " track u ul var video wbr svg g path circle ellipse line polyline polygon rect text"
    " tspan defs use symbol lineargradient radialgradient stop clippath mask pattern"
    " marker image"
)
KNOWN_TAGS = frozenset(_KNOWN.split())
# Attributes that cannot be set: event handlers are bound, not written;
# srcdoc is a whole HTML document; style goes through style=; the keys and
# listeners are the runtime's; xmlns cannot be changed by setAttribute.
_FORBIDDEN_ATTRIBUTES = frozenset({"srcdoc", "style", "data-k", "xmlns", "is"})
_RESERVED_PREFIXES = ("on", "data-cv-", "xmlns:")
# The one runtime attribute a page sets itself: a link or form marked
# data-cv-reload is followed with a real load.
_ALLOWED_RESERVED = frozenset({"data-cv-reload"})
#: Attributes holding a URL.
URL_ATTRIBUTES = frozenset(
    {
        "href",
        "src",
        "action",
        "formaction",
        "xlink:href",
        "poster",
        "cite",
        "background",
        "data",
        "codebase",
        "longdesc",
        "manifest",
        "ping",
        "profile",
        "usemap",
        "lowsrc",
        "dynsrc",
        "classid",
        "archive",
        "icon",
        "itemtype",
    }
)
_SRCSET_ATTRIBUTES = frozenset({"srcset", "imagesrcset"})
_SAFE_SCHEMES = frozenset({"http", "https", "mailto", "tel", "sms", "ftp", "blob"})
_IMAGE_DATA_RE = re.compile(r"data:image/(?:png|gif|jpeg|jpg|webp|avif|bmp)[;,]", re.I)
# What the WHATWG URL parser ignores or strips (C0 controls and space at the
# ends, tab and newlines anywhere), plus every other control and invisible
# character, which a filter may be fooled by while a browser is not: all
# removed before the scheme is read.  Removing too much only refuses more.
_URL_IGNORED_RE = re.compile(
    "[\x00-\x20\x7f-\x9f\u00a0\u00ad\u1680\u180e\u2000-\u200f\u2028-\u202f\u205f-\u206f"
    "\u3000\ufeff]"
)
_SCHEME_RE = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")
_STYLE_VALUE_FORBIDDEN_RE = re.compile(r"[;{}<>]|expression\s*\(|javascript:|vbscript:", re.I)
_MAX_TEXT = 1 << 24


# -- checks -------------------------------------------------------------------


def check_tag(tag: object) -> str:
    """Return ``tag`` if elements of it may be built.

    Raises:
        ValueError: not a lowercase tag name, ``#text``, or a forbidden tag.
    """
    if not isinstance(tag, str) or _TAG_RE.fullmatch(tag) is None:
        raise ValueError(f"invalid tag {tag!r}: lowercase letters, digits and inner hyphens")
    if tag in FORBIDDEN_TAGS:
        raise ValueError(f"the tag {tag!r} is not allowed in components (it can run code)")
    return tag


def check_attribute_name(name: object) -> str:
    """Return ``name`` if it may be set as an attribute.

    Raises:
        ValueError: not an attribute name, an event handler (``on*``),
            ``style``, ``srcdoc``, or one reserved by the runtime.
    """
    if not isinstance(name, str) or _ATTRIBUTE_RE.fullmatch(name) is None:
        raise ValueError(f"invalid attribute name {name!r}")
    lowered = name.lower()
    if lowered.startswith("on"):
        raise ValueError(
            f"event-handler attributes cannot be set ({name!r}): bind the event instead"
        )
    if lowered in _FORBIDDEN_ATTRIBUTES or (
        lowered.startswith(_RESERVED_PREFIXES) and lowered not in _ALLOWED_RESERVED
    ):
        hint = " (use style=)" if lowered == "style" else ""
        raise ValueError(f"the attribute {name!r} cannot be set{hint}")
    return name


def check_style_name(name: object) -> str:
    """Return a CSS property name (``color``, ``--custom``) if valid.

    Raises:
        ValueError: anything else.
    """
    if not isinstance(name, str) or _STYLE_NAME_RE.fullmatch(name) is None:
        raise ValueError(f"invalid CSS property name {name!r}")
    return name


def clean_style_value(name: str, value: str) -> str | None:
    """``value`` if it is a plain CSS value; ``None`` (logged) if not.

    A value may not contain ``;``, braces or angle brackets (it would add
    declarations in server-side HTML that ``style.setProperty`` would refuse
    in the browser), nor ``expression(`` or script URLs.
    """
    if _STYLE_VALUE_FORBIDDEN_RE.search(value):
        logger.info("CSS value for %r dropped: %r", name, value[:80])
        return None
    return value


def safe_url(value: str, *, attribute: str = "href") -> str | None:
    """``value`` if it is a safe URL for ``attribute``, else ``None``.

    Relative URLs are safe, and absolute ones with the schemes ``http``,
    ``https``, ``mailto``, ``tel``, ``sms``, ``ftp``, ``blob``; ``data:``
    only for raster images in ``src`` and ``poster``.  Refused:
    ``javascript:``, ``vbscript:``, ``data:`` elsewhere, and any other
    scheme, in any case and whatever controls, spaces or invisible
    characters are hidden in them.
    """
    squeezed = _URL_IGNORED_RE.sub("", value)
    match = _SCHEME_RE.match(squeezed)
    if match is None:
        return value  # relative: no scheme, nothing to run
    scheme = match.group(1).lower()
    if scheme in _SAFE_SCHEMES:
        return value
    if scheme == "data" and attribute in ("src", "poster") and _IMAGE_DATA_RE.match(squeezed):
        return value
    return None


def is_safe_url(value: str, *, attribute: str = "href") -> bool:
    """Whether ``safe_url`` keeps ``value``."""
    return safe_url(value, attribute=attribute) is not None


def _safe_srcset(value: str) -> str | None:
    for candidate in value.split(","):
        url = candidate.strip().split(" ", 1)[0]
        if url and safe_url(url, attribute="src") is None:
            return None
    return value


def normalize_attribute(name: str, value: AttrValue) -> PropValue | None:
    """Check an attribute and its value; return the value to store.

    Returns:
        ``None`` to leave the attribute out (``value`` is ``None``, or an
        unsafe URL, logged); a bool for boolean attributes; else a string.

    Raises:
        ValueError: a forbidden name (``check_attribute_name``), or a
            non-finite number.
        TypeError: a value of another type.
    """
    check_attribute_name(name)
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        text = str(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"attribute {name!r}: {value} is not a finite number")
        text = repr(value)
    elif isinstance(value, str):
        text = value
    else:
        raise TypeError(f"attribute {name!r}: expected str, number, bool or None, not {value!r}")
    lowered = name.lower()
    if lowered in URL_ATTRIBUTES and safe_url(text, attribute=lowered) is None:
        logger.info("unsafe URL in %r left out: %r", name, text[:80])
        return None
    if lowered in _SRCSET_ATTRIBUTES and _safe_srcset(text) is None:
        logger.info("unsafe URL in %r left out: %r", name, text[:80])
        return None
    return text


def parse_style(style: StyleArg) -> dict[str, str]:
    """A ``style=`` argument as a checked ``{property: value}`` dict.

    A string is split on ``;`` and ``:``.  In a dict, underscores in names
    become hyphens (``background_color``); ``None`` values are left out.
    Unsafe values are dropped (``clean_style_value``).

    Raises:
        ValueError: an invalid property name.
    """
    if style is None:
        return {}
    pairs: list[tuple[str, object]] = []
    if isinstance(style, str):
        for declaration in style.split(";"):
            prop, colon, text = declaration.partition(":")
            if colon and prop.strip():
                pairs.append((prop.strip().lower(), text.strip()))
    else:
        for raw_name, raw_value in style.items():
            prop = raw_name if raw_name.startswith("--") else raw_name.replace("_", "-")
            pairs.append((prop, raw_value))
    result: dict[str, str] = {}
    for name, value in pairs:
        check_style_name(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise TypeError(f"CSS property {name!r}: expected str or number, not {value!r}")
        cleaned = clean_style_value(name, str(value))
        if cleaned is not None:
            result[name] = cleaned
    return result


# -- the builder --------------------------------------------------------------


class Binding:
    """An event bound on an element: the server-side handler and the spec.

    Attributes:
        handler: the callable.
        arity: how many arguments it takes (0, 1 or 4).
        spec: what the browser does (``EventSpec``).
    """

    __slots__ = ("arity", "handler", "spec")

    def __init__(self, handler: Handler, spec: EventSpec) -> None:
        self.handler = handler
        self.arity = handler_arity(handler)
        self.spec = spec

    def __repr__(self) -> str:
        return f"Binding({self.handler!r}, {self.spec!r})"


def _attribute_name(python_name: str) -> str:
    if python_name.endswith("_"):
        python_name = python_name[:-1]
    return python_name.replace("_", "-")


class Element:
    """An HTML element under construction: tag, key, attributes, style,
    event bindings and children.

    Args:
        tag: the tag (``check_tag``).
        *children: see the module docstring.
        key: the element's stable key among its siblings.
        style: CSS properties.
        attrs: attributes by their real names.
        **kwargs: attributes (``class_``, ``aria_label``...), and
            ``on_<event>=handler`` bindings.

    Raises:
        ValueError, TypeError: a bad tag, attribute, value or child.
    """

    __slots__ = ("children", "events", "key", "props", "style", "tag")

    def __init__(
        self,
        tag: str,
        *children: Child,
        key: object = None,
        style: StyleArg = None,
        attrs: Mapping[str, AttrValue] | None = None,
        **kwargs: Any,
    ) -> None:
        self.tag = check_tag(tag)
        self.key = key
        self.props: dict[str, PropValue] = {}
        self.style = parse_style(style)
        self.events: dict[str, Binding] = {}
        self.children: list[Any] = []
        for name, value in (attrs or {}).items():
            self.set_attribute(name, value)
        for python_name, value in kwargs.items():
            if python_name.startswith("on_") and callable(value):
                self.bind(python_name[3:], value)
                continue
            if callable(value):
                raise TypeError(f"{python_name}=: handlers are bound with on_<event>=")
            name = _attribute_name(python_name)
            if name == "class" and isinstance(value, list | tuple):
                value = " ".join(str(part) for part in value if part)
            self.set_attribute(name, value)
        self.add(*children)

    def __repr__(self) -> str:
        key = "" if self.key is None else f" key={self.key!r}"
        return f"<Element {self.tag}{key} children={len(self.children)}>"

    def set_attribute(self, name: str, value: AttrValue) -> Self:
        """Set (or, with ``None``, remove) an attribute; see ``normalize_attribute``."""
        normalized = normalize_attribute(name, value)
        if normalized is None:
            self.props.pop(name, None)
        else:
            self.props[name] = normalized
        return self

    def set_style(self, style: StyleArg) -> Self:
        """Add CSS properties."""
        self.style.update(parse_style(style))
        return self

    def add(self, *children: Child) -> Self:
        """Append children (see the module docstring for what a child is)."""
        flat = _flatten(children)
        if flat and self.tag in VOID_TAGS:
            raise ValueError(f"<{self.tag}> cannot have children")
        self.children.extend(flat)
        return self

    def bind(
        self,
        event: str,
        handler: Handler,
        *,
        value: str = "auto",
        prevent_default: bool | None = None,
        stop_propagation: bool = False,
        debounce: float | None = None,
    ) -> Self:
        """Call ``handler`` on the server when ``event`` fires in the browser.

        Args:
            event: the DOM event type (``"click"``, ``"input"``, ``"submit"``).
            handler: ``handler()``, ``handler(event)`` or ``handler(component,
                event, value, connection)``, sync or async (see ``events``).
            value: what the browser sends with it (``events.VALUE_GETTERS``).
            prevent_default: ``None``: yes for ``submit`` and for a click on
                a link, no otherwise.
            stop_propagation: stop the event here.
            debounce: seconds of quiet before the last event is sent.

        Raises:
            ValueError: a bad event name, getter or debounce.
            TypeError: a handler with another signature.
        """
        spec = make_spec(
            event,
            tag=self.tag,
            value=value,
            prevent_default=prevent_default,
            stop_propagation=stop_propagation,
            debounce=debounce,
        )
        self.events[event] = Binding(handler, spec)
        return self

    def upload(
        self,
        handler: UploadCallback,
        *,
        max_size: int = DEFAULT_MAX_UPLOAD_SIZE,
        max_files: int = DEFAULT_MAX_FILES,
        accept: Iterable[str] = (),
    ) -> Self:
        """Upload the files picked in this ``<input type=file>`` over the
        page's WebSocket, calling ``handler(UploadEvent)`` with the progress
        (``uploads.py``).

        Sets the input's ``accept`` (and ``multiple`` when ``max_files`` is
        over 1) so that the picker offers what the server takes.

        Raises:
            ValueError: not an ``<input>``, or bad limits.
        """
        if self.tag != "input":
            raise ValueError("uploads are declared on an <input type=file>")
        spec = UploadSpec(max_size=max_size, max_files=max_files, accept=tuple(accept))
        self.props["type"] = "file"
        if spec.accept:
            self.props["accept"] = ",".join(spec.accept)
        if spec.max_files > 1:
            self.props["multiple"] = True
        self.events[UPLOAD_EVENT] = Binding(
            UploadHandler(handler, spec), make_spec(UPLOAD_EVENT, tag=self.tag, value="none")
        )
        return self


def _flatten(children: Iterable[Any]) -> list[Any]:
    flat: list[Any] = []
    for child in children:
        if child is None or isinstance(child, bool):
            continue
        if isinstance(child, str):
            if child:
                flat.append(child)
        elif isinstance(child, int | float):
            flat.append(str(child))
        elif isinstance(child, Element) or getattr(child, "_cv_is_component", False):
            flat.append(child)
        elif isinstance(child, list | tuple) or (
            isinstance(child, Iterable) and not isinstance(child, bytes | Mapping)
        ):
            flat.extend(_flatten(child))
        else:
            raise TypeError(f"not a child element, component or text: {child!r}")
    return flat


def element(tag: str, *children: Child, **kwargs: Any) -> Element:
    """``Element(tag, *children, **kwargs)``."""
    return Element(tag, *children, **kwargs)


class _Builder:
    """``h.div(...)``, ``h.button(...)``...; ``h("my-widget", ...)`` for any tag."""

    def __call__(self, tag: str, *children: Child, **kwargs: Any) -> Element:
        return Element(tag, *children, **kwargs)

    def __getattr__(self, tag: str) -> Callable[..., Element]:
        if tag not in KNOWN_TAGS:
            raise AttributeError(f"h.{tag}: unknown tag (use h({tag!r}, ...) for custom ones)")

        def build(*children: Child, **kwargs: Any) -> Element:
            return Element(tag, *children, **kwargs)

        build.__name__ = tag
        return build


#: The element builder.
h = _Builder()


# -- server-side rendering ----------------------------------------------------


def _escape_text(text: str) -> str:
    return html.escape(text, quote=False)


def _escape_attribute(value: str) -> str:
    return html.escape(value, quote=True)


def _escape_single_quoted(value: str) -> str:
    # Enough for an attribute value in single quotes: & < > and '.
    return (
        value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("'", "&#x27;")
    )


def render_html(node: VNode) -> str:
    """The HTML of ``node`` and its subtree, every text and value escaped.

    Every element carries ``data-k="<key>"``, and bound events are listed in
    ``data-cv-on`` (JSON), for the browser runtime to find them.  A
    ``textarea``'s ``value`` becomes its content, and a ``select``'s
    ``value`` selects the matching ``option``.
    """
    parts: list[str] = []
    _render(node, parts, None)
    return "".join(parts)


def _render(node: VNode, out: list[str], selected: str | None) -> None:
    if node.tag == TEXT:
        out.append(_escape_text(node.text or ""))
        return
    tag = node.tag
    props = dict(node.props)
    content_value: str | None = None
    if tag == "textarea" and "value" in props:
        raw = props.pop("value")
        content_value = raw if isinstance(raw, str) else ""
    select_value: str | None = None
    if tag == "select" and "value" in props:
        raw = props.pop("value")
        select_value = raw if isinstance(raw, str) else None
    if tag == "option" and selected is not None and "selected" not in props:
        option_value = props.get("value")
        if not isinstance(option_value, str):
            option_value = node.text or ""
        if option_value == selected:
            props["selected"] = True
    out.append(f'<{tag} data-k="{_escape_attribute(node.key)}"')
    for name, value in props.items():
        if value is True:
            out.append(f" {name}")
        elif value is not False:
            out.append(f' {name}="{_escape_attribute(value)}"')
    if node.style:
        css = "; ".join(f"{name}: {value}" for name, value in node.style.items())
        out.append(f' style="{_escape_attribute(css)}"')
    if node.events:
        spec = json.dumps(
            {name: s.to_wire() for name, s in node.events.items()}, separators=(",", ":")
        )
        # In single quotes, so that the JSON's double quotes stay readable.
        out.append(f" data-cv-on='{_escape_single_quoted(spec)}'")
    out.append(">")
    if tag in VOID_TAGS:
        return
    text = content_value if content_value is not None else node.text
    if text is not None:
        # The parser drops one newline right after <pre> and <textarea>.
        if text.startswith("\n") and tag in ("pre", "textarea"):
            out.append("\n")
        out.append(_escape_text(text))
    else:
        first = node.children[0] if node.children else None
        if (
            first is not None
            and first.tag == TEXT
            and tag == "pre"
            and (first.text or "").startswith("\n")
        ):
            out.append("\n")
        inherited = select_value if tag == "select" else selected
        if tag not in ("select", "optgroup"):
            inherited = None
        for child in node.children:
            _render(child, out, inherited)
    out.append(f"</{tag}>")
