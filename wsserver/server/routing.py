"""Path routing for HTTP handlers, WebSocket endpoints and static mounts.

Templates name parameters in braces, with an optional converter::

    /rooms/{room}          one path segment, decoded, non-empty (``str``)
    /items/{id:int}        1 to 18 decimal digits, converted to ``int``
    /files/{path:path}     the rest of the path, ``/`` included, maybe empty

Matching works on the *raw* (percent-encoded) path, ``url.raw_path``, not the
decoded one: an encoded ``%2F`` then stays inside one parameter instead of
splitting it, and ``url_path_for`` and ``match_*`` are exact inverses.  The
raw path is first normalised as RFC 3986 section 6.2.2 allows (encoded
unreserved characters decoded, hex digits uppercased), so ``/r%6Foms/1``
finds ``/rooms/{room}``; captured parameters are then percent-decoded as
UTF-8.  A parameter that does not decode matches nothing.

Each template compiles once to an anchored regex that cannot backtrack
badly: a template may have at most one parameter per path segment and at
most one ``path`` parameter, so every ``[^/]+`` is pinned between slashes.

Routes are tried in order and the first full match wins, as in Starlette and
Lilya.  There is no trailing-slash redirection: ``/a`` and ``/a/`` are
different paths.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TypeVar
from urllib.parse import quote, unquote

from .requests import Request
from .responses import PlainTextResponse, Response
from .static import StaticFiles

__all__ = [
    "AnyRoute",
    "HTTPEndpoint",
    "Match",
    "MatchKind",
    "Mount",
    "NoMatchFound",
    "PathParam",
    "Route",
    "Router",
    "WebSocketRoute",
]

HTTPEndpoint = Callable[[Request], Awaitable[Response]]
"""An HTTP handler: ``async def handler(request: Request) -> Response``."""

_HTTPEndpointT = TypeVar("_HTTPEndpointT", bound=HTTPEndpoint)
_T = TypeVar("_T")

PathParam = str | int
"""The type of a decoded path parameter: ``int`` for ``{x:int}``, else ``str``."""

_PARAM_RE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?::([A-Za-z_][A-Za-z0-9_]*))?\}")
_CONVERTER_PATTERNS = {
    "str": "[^/]+",
    # Bounded so that int() never meets Python's 4,300-digit limit and the
    # value fits a signed 64-bit column; a longer number matches nothing.
    "int": "[0-9]{1,18}",
    "path": ".*",
}
_INT_LIMIT = 10**18

_PCT_RE = re.compile(r"%([0-9A-Fa-f]{2})")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
# What a template's literal text may keep unencoded: pchar and "/".
_LITERAL_SAFE = "/!$&'()*+,;=:@"


def _normalise(raw_path: str) -> str:
    """Decode percent-encoded unreserved characters, uppercase the rest."""

    def fix(match: re.Match[str]) -> str:
        char = chr(int(match.group(1), 16))
        return char if char in _UNRESERVED else f"%{match.group(1).upper()}"

    return _PCT_RE.sub(fix, raw_path) if "%" in raw_path else raw_path


def _encode_segment(value: str) -> str:
    # quote() leaves only unreserved characters, so the result is already in
    # normal form; "." and ".." are encoded so that clients, which remove dot
    # segments (RFC 3986 section 5.2.4), send them unchanged.
    if value in (".", ".."):
        return "%2E" * len(value)
    return quote(value, safe="")


class NoMatchFound(LookupError):
    """``url_path_for`` found no route of that name taking those parameters."""


@dataclass(frozen=True, slots=True)
class _Template:
    """A compiled path template."""

    source: str
    regex: re.Pattern[str]
    # Alternating literal text (encoded) and (name, converter) parameters.
    pieces: tuple[str | tuple[str, str], ...]
    converters: Mapping[str, str]

    @classmethod
    def compile(cls, template: str, *, prefix: bool = False) -> _Template:
        if not template.startswith("/"):
            raise ValueError(f"path template must start with '/': {template!r}")
        pieces: list[str | tuple[str, str]] = []
        converters: dict[str, str] = {}
        pattern: list[str] = []
        position = 0
        for match in _PARAM_RE.finditer(template):
            literal = template[position : match.start()]
            name, converter = match.group(1), match.group(2) or "str"
            if converter not in _CONVERTER_PATTERNS:
                raise ValueError(f"unknown converter {converter!r} in {template!r}")
            if name in converters:
                raise ValueError(f"parameter {name!r} repeated in {template!r}")
            if pieces and not isinstance(pieces[-1], str) and "/" not in literal:
                raise ValueError(
                    f"two parameters in one path segment in {template!r}: separate them with '/'"
                )
            if converter == "path" and "path" in converters.values():
                raise ValueError(f"more than one 'path' parameter in {template!r}")
            cls._add_literal(literal, template, pieces, pattern)
            pieces.append((name, converter))
            converters[name] = converter
            pattern.append(f"(?P<{name}>{_CONVERTER_PATTERNS[converter]})")
            position = match.end()
        cls._add_literal(template[position:], template, pieces, pattern)
        if prefix:
            # A mount: the prefix, then nothing or "/" and anything.
            pattern.append("(?P<_rest>(?:/.*)?)" if template != "/" else "(?P<_rest>.*)")
        regex = re.compile("".join(pattern), re.DOTALL)
        return cls(template, regex, tuple(pieces), converters)

    @staticmethod
    def _add_literal(
        literal: str,
        template: str,
        pieces: list[str | tuple[str, str]],
        pattern: list[str],
    ) -> None:
        if not literal:
            return
        if "{" in literal or "}" in literal:
            raise ValueError(f"invalid parameter syntax in {template!r}")
        encoded = quote(literal, safe=_LITERAL_SAFE)
        pieces.append(encoded)
        pattern.append(re.escape(encoded))

    def match(self, normalised_path: str) -> dict[str, str] | None:
        """Raw captures of a normalised raw path, or ``None``."""
        found = self.regex.fullmatch(normalised_path)
        return None if found is None else found.groupdict()

    def convert(self, captures: Mapping[str, str]) -> dict[str, PathParam] | None:
        """Decode and convert the captures; ``None`` if one does not decode."""
        params: dict[str, PathParam] = {}
        for name, converter in self.converters.items():
            raw = captures[name]
            if converter == "int":
                params[name] = int(raw)
                continue
            try:
                params[name] = unquote(raw, encoding="utf-8", errors="strict")
            except UnicodeDecodeError:
                return None
        return params

    def expand(self, params: Mapping[str, object]) -> str:
        """The raw path for ``params``; ``NoMatchFound`` or ``ValueError``."""
        if set(params) != set(self.converters):
            raise NoMatchFound(
                f"{self.source!r} takes parameters {sorted(self.converters)}, got {sorted(params)}"
            )
        out: list[str] = []
        for piece in self.pieces:
            if isinstance(piece, str):
                out.append(piece)
                continue
            name, converter = piece
            out.append(_expand_param(name, converter, params[name]))
        return "".join(out)


def _expand_param(name: str, converter: str, value: object) -> str:
    if converter == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"parameter {name!r} must be an int, got {value!r}")
        if not 0 <= value < _INT_LIMIT:
            raise ValueError(f"parameter {name!r} must be in [0, 10**18), got {value}")
        return str(value)
    if not isinstance(value, str):
        raise ValueError(f"parameter {name!r} must be a str, got {value!r}")
    if converter == "str" and not value:
        raise ValueError(f"parameter {name!r} must not be empty")
    try:
        if converter == "path":
            return "/".join(_encode_segment(part) for part in value.split("/"))
        return _encode_segment(value)
    except UnicodeEncodeError:
        raise ValueError(f"parameter {name!r} is not encodable as UTF-8") from None


class Route:
    """An HTTP route: a path template, a handler and its methods.

    Attributes:
        path: the template.
        endpoint: ``async def handler(request: Request) -> Response``.
        methods: the accepted methods; ``HEAD`` is added when ``GET`` is
            there, since a ``HEAD`` is a ``GET`` whose body the connection
            drops.
        name: the name for ``url_path_for``, or ``None``.
    """

    __slots__ = ("_template", "endpoint", "methods", "name", "path")

    def __init__(
        self,
        path: str,
        endpoint: HTTPEndpoint,
        methods: Iterable[str] = ("GET", "HEAD"),
        name: str | None = None,
    ) -> None:
        """Compile the template.

        Raises:
            ValueError: invalid template, or no methods.
        """
        self.path = path
        self.endpoint = endpoint
        accepted = list(dict.fromkeys(methods))
        if not accepted:
            raise ValueError("a route needs at least one method")
        if "GET" in accepted and "HEAD" not in accepted:
            accepted.append("HEAD")
        self.methods: tuple[str, ...] = tuple(accepted)
        self.name = name
        self._template = _Template.compile(path)

    def __repr__(self) -> str:
        return f"Route({self.path!r}, methods={self.methods!r}, name={self.name!r})"


class WebSocketRoute:
    """A WebSocket route: a path template and an endpoint.

    The endpoint is stored as ``object``: the server decides what it accepts
    (a coroutine function, an endpoint class...) and checks it.

    Attributes:
        path: the template.
        endpoint: the endpoint.
        name: the name for ``url_path_for``, or ``None``.
    """

    __slots__ = ("_template", "endpoint", "name", "path")

    def __init__(self, path: str, endpoint: object, name: str | None = None) -> None:
        """Compile the template.

        Raises:
            ValueError: invalid template.
        """
        self.path = path
        self.endpoint = endpoint
        self.name = name
        self._template = _Template.compile(path)

    def __repr__(self) -> str:
        return f"WebSocketRoute({self.path!r}, name={self.name!r})"


class Mount:
    """A ``StaticFiles`` served under a path prefix, for any method.

    ``Mount("/static", files)`` matches ``/static`` and ``/static/...``
    (not ``/staticx``); the decoded rest of the path is ``Match.subpath``.
    ``url_path_for(name, path="css/a.css")`` gives ``/static/css/a.css``.

    Attributes:
        prefix: the prefix, without trailing ``/``, or ``/`` for everything.
        static: the files.
        name: the name for ``url_path_for``, or ``None``.
    """

    __slots__ = ("_raw_prefix", "_template", "name", "prefix", "static")

    def __init__(self, prefix: str, static: StaticFiles, name: str | None = None) -> None:
        """Compile the prefix.

        Raises:
            ValueError: the prefix does not start with ``/`` or has
                parameters.
        """
        self.prefix = prefix.rstrip("/") or "/"
        self.static = static
        self.name = name
        self._template = _Template.compile(self.prefix, prefix=True)
        if self._template.converters:
            raise ValueError(f"a mount prefix cannot have parameters: {prefix!r}")
        # The prefix as it appears in a raw path, without the trailing "/".
        self._raw_prefix = quote(self.prefix, safe=_LITERAL_SAFE).rstrip("/")

    def __repr__(self) -> str:
        return f"Mount({self.prefix!r}, name={self.name!r})"


AnyRoute = Route | WebSocketRoute | Mount
"""Anything a ``Router`` holds."""


class MatchKind(enum.Enum):
    """How a path matched; see ``Match``."""

    FOUND = "found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    WEBSOCKET_ONLY = "websocket_only"
    NOT_FOUND = "not_found"


@dataclass(frozen=True, slots=True)
class Match:
    """The outcome of ``Router.match_http`` or ``Router.match_websocket``.

    Attributes:
        kind: what happened.
        route: the matched ``Route``, ``WebSocketRoute`` or ``Mount`` when
            ``kind`` is ``FOUND``, else ``None``.
        path_params: decoded parameters (``int`` for ``{x:int}``).
        allowed_methods: for ``METHOD_NOT_ALLOWED``, the methods the path
            accepts, for the ``Allow`` header.
        subpath: for a ``Mount``, the decoded path below the prefix, to pass
            to ``StaticFiles.resolve``.
    """

    kind: MatchKind
    route: AnyRoute | None = None
    # Read-only by default: the shared NOT_FOUND instance must stay empty.
    path_params: Mapping[str, PathParam] = field(default_factory=lambda: MappingProxyType({}))
    allowed_methods: tuple[str, ...] = ()
    subpath: str = ""

    @property
    def found(self) -> bool:
        """A route matched path and method."""
        return self.kind is MatchKind.FOUND

    @property
    def method_not_allowed(self) -> bool:
        """The path matched, the method did not: answer 405."""
        return self.kind is MatchKind.METHOD_NOT_ALLOWED

    @property
    def websocket_only(self) -> bool:
        """A plain HTTP request for a WebSocket-only path: answer 426."""
        return self.kind is MatchKind.WEBSOCKET_ONLY

    @property
    def not_found(self) -> bool:
        """Nothing matched: answer 404."""
        return self.kind is MatchKind.NOT_FOUND

    def error_response(self) -> Response | None:
        """The standard answer when nothing was found, else ``None``.

        404; 405 with ``Allow``; 426 with ``Upgrade: websocket`` (RFC 9110
        section 15.5.22).  RFC 9110 section 7.8 also requires
        ``Connection: upgrade`` next to ``Upgrade``: the connection code,
        which owns the ``Connection`` header, must add that token.
        """
        if self.kind is MatchKind.NOT_FOUND:
            return PlainTextResponse("Not Found", status_code=404)
        if self.kind is MatchKind.METHOD_NOT_ALLOWED:
            return PlainTextResponse(
                "Method Not Allowed",
                status_code=405,
                headers=[("allow", ", ".join(self.allowed_methods))],
            )
        if self.kind is MatchKind.WEBSOCKET_ONLY:
            return PlainTextResponse(
                "Upgrade Required: this resource is a WebSocket endpoint.",
                status_code=426,
                headers=[("upgrade", "websocket")],
            )
        return None


_NOT_FOUND = Match(MatchKind.NOT_FOUND)


class Router:
    """An ordered list of routes, with matching and reverse lookup.

    Example:
        >>> router = Router()
        >>> @router.route("/rooms/{room}", name="room")
        ... async def room(request: Request) -> Response:
        ...     return Response(request.path_params["room"])
        >>> router.match_http("/rooms/a%20b", "GET").path_params
        {'room': 'a b'}
        >>> router.url_path_for("room", room="a b")
        '/rooms/a%20b'
    """

    def __init__(self, routes: Iterable[AnyRoute] = ()) -> None:
        """Start with ``routes``, in order.

        Raises:
            ValueError: two routes share a name.
        """
        self._routes: list[AnyRoute] = []
        self._names: dict[str, AnyRoute] = {}
        for route in routes:
            self._add(route)

    @property
    def routes(self) -> tuple[AnyRoute, ...]:
        """The routes, in matching order."""
        return tuple(self._routes)

    def _add(self, route: AnyRoute) -> None:
        if route.name is not None:
            if route.name in self._names:
                raise ValueError(f"route name {route.name!r} is already used")
            self._names[route.name] = route
        self._routes.append(route)

    def add_route(
        self,
        path: str,
        endpoint: HTTPEndpoint,
        methods: Iterable[str] = ("GET", "HEAD"),
        name: str | None = None,
    ) -> Route:
        """Add an HTTP route (see ``Route``) and return it."""
        route = Route(path, endpoint, methods, name)
        self._add(route)
        return route

    def add_websocket_route(
        self, path: str, endpoint: object, name: str | None = None
    ) -> WebSocketRoute:
        """Add a WebSocket route (see ``WebSocketRoute``) and return it."""
        route = WebSocketRoute(path, endpoint, name)
        self._add(route)
        return route

    def mount(self, prefix: str, static: StaticFiles, name: str | None = None) -> Mount:
        """Serve ``static`` under ``prefix`` (see ``Mount``) and return the mount."""
        mount = Mount(prefix, static, name)
        self._add(mount)
        return mount

    def route(
        self,
        path: str,
        methods: Iterable[str] = ("GET", "HEAD"),
        name: str | None = None,
    ) -> Callable[[_HTTPEndpointT], _HTTPEndpointT]:
        """Decorator form of ``add_route``; returns the handler unchanged."""

        def decorator(endpoint: _HTTPEndpointT) -> _HTTPEndpointT:
            self.add_route(path, endpoint, methods, name)
            return endpoint

        return decorator

    def websocket(self, path: str, name: str | None = None) -> Callable[[_T], _T]:
        """Decorator form of ``add_websocket_route``; returns the endpoint unchanged."""

        def decorator(endpoint: _T) -> _T:
            self.add_websocket_route(path, endpoint, name)
            return endpoint

        return decorator

    def match_http(self, raw_path: str, method: str) -> Match:
        """Classify a plain HTTP request.

        Args:
            raw_path: the percent-encoded path, ``request.url.raw_path``.
                Passing the decoded path would decode parameters twice.
            method: the request method.

        Returns:
            ``FOUND`` for the first route matching path and method (a mount
            matches every method: ``StaticFiles`` answers 405 itself);
            otherwise ``METHOD_NOT_ALLOWED`` if an HTTP route has the path,
            ``WEBSOCKET_ONLY`` if only WebSocket routes have it, else
            ``NOT_FOUND``.  Never raises.
        """
        path = _normalise(raw_path)
        allowed: dict[str, None] = {}
        websocket_only = False
        for route in self._routes:
            captures = route._template.match(path)
            if captures is None:
                continue
            if isinstance(route, Mount):
                try:
                    subpath = unquote(captures["_rest"], encoding="utf-8", errors="strict")
                except UnicodeDecodeError:
                    continue
                return Match(MatchKind.FOUND, route, subpath=subpath.lstrip("/"))
            params = route._template.convert(captures)
            if params is None:
                continue
            if isinstance(route, WebSocketRoute):
                websocket_only = True
            elif method in route.methods:
                return Match(MatchKind.FOUND, route, params)
            else:
                allowed.update(dict.fromkeys(route.methods))
        if allowed:
            return Match(MatchKind.METHOD_NOT_ALLOWED, allowed_methods=tuple(allowed))
        if websocket_only:
            return Match(MatchKind.WEBSOCKET_ONLY)
        return _NOT_FOUND

    def match_websocket(self, raw_path: str) -> Match:
        """Find the WebSocket route for an upgrade request.

        Args:
            raw_path: the percent-encoded path, ``websocket.url.raw_path``.

        Returns:
            ``FOUND`` with the first matching ``WebSocketRoute``, else
            ``NOT_FOUND`` (HTTP routes and mounts never take upgrades).
            Never raises.
        """
        path = _normalise(raw_path)
        for route in self._routes:
            if not isinstance(route, WebSocketRoute):
                continue
            captures = route._template.match(path)
            if captures is None:
                continue
            params = route._template.convert(captures)
            if params is not None:
                return Match(MatchKind.FOUND, route, params)
        return _NOT_FOUND

    def url_path_for(self, name: str, /, **params: object) -> str:
        """Build the raw path of a named route.

        Args:
            name: the route's name.
            **params: every parameter of its template (for a ``Mount``,
                ``path``, the file's path below the prefix).

        Returns:
            The percent-encoded path; ``match_*`` on it gives back the route
            and ``params``.

        Raises:
            NoMatchFound: no route has that name, or the parameter names
                differ from the template's.
            ValueError: a value does not fit its converter (empty ``str``,
                negative or too large ``int``, wrong type).
        """
        route = self._names.get(name)
        if route is None:
            raise NoMatchFound(f"no route named {name!r}")
        if isinstance(route, Mount):
            if set(params) != {"path"}:
                raise NoMatchFound(f"mount {name!r} takes one parameter, 'path'")
            rest = _expand_param("path", "path", params["path"]).lstrip("/")
            return f"{route._raw_prefix}/{rest}"
        return route._template.expand(params)
