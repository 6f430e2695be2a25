"""Navigation without reloads: pages, their routes, requests and history.

A ``ComponentApp`` (``app.py``) has pages: a path template (the router's
syntax, ``/items/{id:int}``) and the component class that is the page's
root.  When a link or a form inside a page is followed, the browser runtime
does not load the next page: it sends ``cv/nav`` with the URL, and the
server makes the new root (``Component.for_request(PageRequest)``),
renders it, diffs it against the current page and sends one patch batch
with the new URL and title, which the browser pushes onto its history.  If
the URL is not one of the app's pages (another route, a 404), or the page
has a different ``<head>``, the answer is ``cv/load``: a full load.

Back and forward send ``cv/nav`` with ``pop`` and the history entry's
number.  Each entry's page state is stashed when the page is left, so going
back shows the page as it was left (like the browser's back/forward cache),
not a fresh one; entries whose state was dropped (``History.limit``) are
rendered fresh from their URL.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from ...server import QueryParams, Request, Router
from ..runtime.messages import Envelope, MalformedMessage

if TYPE_CHECKING:
    from .component import Component

__all__ = [
    "History",
    "NavRequest",
    "PageRequest",
    "PageRouter",
    "PageSpec",
    "form_from_body",
    "parse_nav_message",
    "split_href",
]

_MAX_HREF = 8192
# What a same-origin path-and-query looks like once the browser has
# percent-encoded it: printable ASCII, starting with one slash.
_HREF_RE = re.compile(r"/(?![/\\])[\x21-\x7e]*")
_FORM_TYPE = "application/x-www-form-urlencoded"
_MAX_FORM_FIELDS = 1000


def split_href(href: str) -> tuple[str, str]:
    """Split a same-origin ``path?query#fragment`` into ``(path, query)``.

    Raises:
        ValueError: not a path on this origin (``//host``, ``/\\host``, a
            scheme), not printable ASCII, or too long.
    """
    href = href.split("#", 1)[0]
    if len(href) > _MAX_HREF or _HREF_RE.fullmatch(href) is None:
        raise ValueError(f"not a same-origin path: {href[:100]!r}")
    path, _, query = href.partition("?")
    return path, query


def form_from_body(content_type: str, body: bytes) -> dict[str, Any]:
    """Decode an ``application/x-www-form-urlencoded`` body.

    A name given once maps to a string, a name given several times to the
    list of its values.  Other content types give ``{}``.

    Raises:
        ValueError: more than 1,000 fields (answer 400).
    """
    if content_type.split(";", 1)[0].strip().lower() != _FORM_TYPE:
        return {}
    try:
        pairs = parse_qsl(
            body.decode("utf-8", "replace"),
            keep_blank_values=True,
            max_num_fields=_MAX_FORM_FIELDS,
        )
    except ValueError:
        raise ValueError(f"form has more than {_MAX_FORM_FIELDS} fields") from None
    form: dict[str, Any] = {}
    for name, value in pairs:
        if name in form:
            previous = form[name]
            form[name] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            form[name] = value
    return form


@dataclass(frozen=True, slots=True)
class PageRequest:
    """What a page's root is made for: the URL, and the form if posted.

    Attributes:
        path: the decoded path.
        raw_path: the path as in the URL.
        query: the query string, parsed.
        query_string: the query string as in the URL.
        path_params: what the route's template captured.
        method: ``GET``, or ``POST`` for a posted form.
        form: the posted form's values (``None`` for ``GET``).
        cookies: the cookies of the HTTP request, or of the WebSocket
            handshake for a navigation.
    """

    path: str
    raw_path: str
    query: QueryParams
    query_string: str = ""
    path_params: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    method: str = "GET"
    form: Mapping[str, Any] | None = None
    cookies: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def url(self) -> str:
        """``raw_path``, plus ``?query`` when there is one."""
        return f"{self.raw_path}?{self.query_string}" if self.query_string else self.raw_path

    @classmethod
    def from_http(cls, request: Request, path_params: Mapping[str, Any]) -> PageRequest:
        """The page request of an HTTP request (a posted form is decoded).

        Raises:
            ValueError: a posted form of more than 1,000 fields.
        """
        form = None
        if request.method == "POST":
            form = form_from_body(request.headers.get("content-type", ""), request.body)
        return cls(
            path=request.url.path,
            raw_path=request.url.raw_path,
            query=request.query_params,
            query_string=request.url.query,
            path_params=MappingProxyType(dict(path_params)),
            method="POST" if request.method == "POST" else "GET",
            form=None if form is None else MappingProxyType(form),
            cookies=MappingProxyType(dict(request.cookies)),
        )


@dataclass(frozen=True, slots=True)
class PageSpec:
    """One page of an app.

    Attributes:
        path: the route's template.
        component: the root component's class.
        title: the ``<title>`` (``None``: the app's); the root's
            ``page_title()`` overrides it.
        head: extra HTML for ``<head>`` (trusted: written by the developer,
            not escaped); pages with different heads are not navigated
            between without a load.
    """

    path: str
    component: type[Component]
    title: str | None = None
    head: str = ""


async def _never_called(request: Request) -> Any:  # pragma: no cover
    raise RuntimeError("page routes are matched, not called")


class PageRouter:
    """The app's pages, matched with the server's ``Router`` rules."""

    def __init__(self) -> None:
        self._router = Router()
        self._specs: dict[int, PageSpec] = {}

    def add(self, spec: PageSpec) -> None:
        """Add a page (first added, first matched)."""
        route = self._router.add_route(spec.path, _never_called, methods=("GET", "HEAD", "POST"))
        self._specs[id(route)] = spec

    def __len__(self) -> int:
        return len(self._specs)

    @property
    def specs(self) -> list[PageSpec]:
        """The pages, in order."""
        return list(self._specs.values())

    def match(self, raw_path: str) -> tuple[PageSpec, dict[str, Any]] | None:
        """The page for ``raw_path`` and its path parameters, or ``None``."""
        match = self._router.match_http(raw_path, "GET")
        if not match.found or match.route is None:
            return None
        spec = self._specs.get(id(match.route))
        if spec is None:
            return None
        return spec, dict(match.path_params)


@dataclass(frozen=True, slots=True)
class NavRequest:
    """A ``cv/nav`` message, validated.

    Attributes:
        href: the path and query (no fragment).
        raw_path, query: ``href`` split.
        method: ``GET`` or ``POST``.
        form: a posted form's values.
        pop: back or forward (no new history entry).
        entry: the history entry's number, for ``pop``.
    """

    href: str
    raw_path: str
    query: str
    method: str = "GET"
    form: Mapping[str, Any] | None = None
    pop: bool = False
    entry: int | None = None


def parse_nav_message(message: Envelope) -> NavRequest:
    """Validate a ``cv/nav`` message.

    Raises:
        MalformedMessage: a missing or mistyped field, an ``href`` that
            is not a same-origin path, or a query of more than 1,000 fields.
    """
    href = message.require("href", str)
    try:
        raw_path, query = split_href(href)
        # Parsed here, where a bad one is the browser's fault (1007), not
        # later in the navigation, where it was logged as a failed render
        # with a traceback (found by fuzz/fuzz_navigation.py).
        QueryParams(query)
    except ValueError as exc:
        raise MalformedMessage(f"cv/nav: {exc}") from None
    method = message.get("method", "GET")
    if method not in ("GET", "POST"):
        raise MalformedMessage("cv/nav: 'method' must be GET or POST")
    form = message.get("form")
    if form is not None and not isinstance(form, dict):
        raise MalformedMessage("cv/nav: 'form' must be an object")
    pop = message.get("pop", False)
    if not isinstance(pop, bool):
        raise MalformedMessage("cv/nav: 'pop' must be a boolean")
    entry = message.get("entry")
    if entry is not None and (isinstance(entry, bool) or not isinstance(entry, int)):
        raise MalformedMessage("cv/nav: 'entry' must be an integer")
    clean = raw_path + (f"?{query}" if query else "")
    return NavRequest(
        clean,
        raw_path,
        query,
        method,
        None if form is None else MappingProxyType(form),
        pop,
        entry,
    )


class History:
    """The page states of a page's history entries, for back and forward.

    Entries are numbered per page from 0 (the page as loaded).  When a page
    is left, its state is stashed under its entry's number; going back to
    an entry restores it.  At most ``limit`` states are kept (the oldest
    stashed go first).

    Args:
        limit: how many states to keep.
    """

    def __init__(self, limit: int = 16) -> None:
        self.limit = limit
        self.current = 0
        self.next = 1
        self._states: OrderedDict[int, dict[str, Any]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._states)

    def stash(self, entry: int, state: dict[str, Any]) -> None:
        """Keep ``state`` (JSON data) for ``entry``."""
        self._states.pop(entry, None)
        self._states[entry] = state
        while len(self._states) > self.limit:
            self._states.popitem(last=False)

    def take(self, entry: int) -> dict[str, Any] | None:
        """The state stashed for ``entry`` (removed from the stash), or ``None``."""
        return self._states.pop(entry, None)

    def push(self) -> int:
        """Number a new entry, make it current, and return its number."""
        self.current = self.next
        self.next += 1
        return self.current

    def to_json(self) -> dict[str, Any]:
        """The history as JSON data, for the page's snapshot."""
        return {
            "cur": self.current,
            "next": self.next,
            "states": [[entry, state] for entry, state in self._states.items()],
        }

    @classmethod
    def from_json(cls, data: object, limit: int = 16) -> History:
        """Rebuild ``to_json``'s form; anything malformed gives a fresh history."""
        history = cls(limit)
        if not isinstance(data, dict):
            return history
        current, following, states = data.get("cur"), data.get("next"), data.get("states")
        if not (isinstance(current, int) and isinstance(following, int)):
            return history
        history.current, history.next = current, max(following, current + 1)
        if isinstance(states, list):
            for item in states:
                if (
                    isinstance(item, list)
                    and len(item) == 2
                    and isinstance(item[0], int)
                    and isinstance(item[1], dict)
                ):
                    history.stash(item[0], item[1])
        return history
