"""``App``: routes for HTTP and WebSocket side by side, and the two entry
points the server calls for every request.

Any object with ``handle_http`` and ``handle_websocket`` (the
``Application`` protocol) can be served; ``App`` is the one most programs
want::

    app = App()

    @app.websocket("/rooms/{room}")
    class Room(WebSocketView): ...

    @app.route("/")
    async def home(request):
        return HTMLResponse("<h1>hello</h1>")
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol, TypeVar, cast

from .datastructures import State
from .mistakes import ApplicationMistake, awaited
from .readiness import ReadinessCheck
from .requests import Request
from .responses import PlainTextResponse, Response
from .routing import AnyRoute, Mount, Route, Router, WebSocketRoute, _HTTPEndpointT
from .static import StaticFiles, read_file
from .views import WebSocketView
from .websocket import WebSocket

__all__ = ["App", "Application", "Authenticator", "HTTPEndpoint", "WebSocketEndpoint", "as_app"]

HTTPEndpoint = Callable[[Request], Awaitable[Response]]
#: A ``WebSocketView`` subclass, or ``async def endpoint(websocket)``.
WebSocketEndpoint = type[WebSocketView] | Callable[[WebSocket], Awaitable[None]]
#: ``async def authenticate(websocket) -> Response | None``; see ``App``.
Authenticator = Callable[[WebSocket], Awaitable[Response | None]]
_T = TypeVar("_T")


class Application(Protocol):
    """What the server needs from an application."""

    async def handle_http(self, request: Request) -> Response:
        """Answer a plain HTTP request."""
        ...

    async def handle_websocket(self, websocket: WebSocket) -> None:
        """Run a WebSocket connection from handshake to end."""
        ...


class App:
    """A router with HTTP routes, WebSocket routes and static mounts.

    Args:
        routes: initial ``Route``, ``WebSocketRoute`` and ``Mount`` objects.
        health_path: a path answered ``200 ok`` for load balancers and
            probes, before any route; ``None`` for none.
        authenticate: called for every WebSocket handshake that matched a
            route, before its endpoint runs (path parameters are set).  It
            returns ``None`` to let the handshake through, or the HTTP
            response to refuse it with (401, 403...), so that a refused
            client never reaches application code.  Anything else (``True``,
            a string) is a mistake: the client gets 500 and the log one
            line naming the hook and the value.  It may store what it
            learnt (the user) in ``websocket.state``.  Compare secrets with
            ``secrets_equal``, in constant time.
    """

    def __init__(
        self,
        routes: Iterable[AnyRoute] = (),
        *,
        health_path: str | None = "/healthz",
        authenticate: Authenticator | None = None,
    ) -> None:
        self.router = Router(routes)
        self.health_path = health_path
        self.authenticate = authenticate
        #: Application-wide state, for plugins and handlers.
        self.state = State()
        #: Checks ``/readyz`` runs (``add_readiness_check``).
        self.readiness_checks: list[ReadinessCheck] = []

    # -- building --------------------------------------------------------

    def route(
        self, path: str, methods: Iterable[str] = ("GET", "HEAD"), name: str | None = None
    ) -> Callable[[_HTTPEndpointT], _HTTPEndpointT]:
        """Decorator registering an HTTP endpoint."""
        return self.router.route(path, methods=methods, name=name)

    def websocket(self, path: str, name: str | None = None) -> Callable[[_T], _T]:
        """Decorator registering a WebSocket endpoint (view class or function)."""
        return self.router.websocket(path, name=name)

    def add_route(
        self, path: str, endpoint: HTTPEndpoint, methods: Iterable[str] = ("GET", "HEAD")
    ) -> Route:
        """Register an HTTP endpoint."""
        return self.router.add_route(path, endpoint, methods=methods)

    def add_websocket_route(self, path: str, endpoint: WebSocketEndpoint) -> WebSocketRoute:
        """Register a WebSocket endpoint."""
        return self.router.add_websocket_route(path, endpoint)

    def add_readiness_check(self, check: ReadinessCheck) -> None:
        """Make ``/readyz`` answer 503 while ``check()`` returns ``False`` or a reason.

        For a dependency the application cannot serve without (Redis, a
        database): ``app.add_readiness_check(lambda: redis_up or "redis away")``.
        The check runs at every probe, on the event loop: it must be quick
        and must not block (see ``wsserver.server.readiness``).
        """
        if not callable(check):
            raise TypeError(f"a readiness check must be callable, not {check!r}")
        self.readiness_checks.append(check)

    def mount(self, prefix: str, static: StaticFiles) -> Mount:
        """Serve a directory of static files under ``prefix``."""
        return self.router.mount(prefix, static)

    # -- serving -----------------------------------------------------------

    async def handle_http(self, request: Request) -> Response:
        """Route a plain HTTP request: health, routes, static files, errors.

        Raises:
            ApplicationMistake: a handler is not ``async``, or returned
                something other than a ``Response``; the server answers 500.
        """
        path = request.url.raw_path
        if self.health_path is not None and path == self.health_path:
            return PlainTextResponse("ok\n")
        match = self.router.match_http(path, request.method)
        route = match.route
        if match.found and isinstance(route, Route):
            request.path_params = dict(match.path_params)
            endpoint = route.endpoint
            response = await awaited("HTTP handler", endpoint, endpoint(request))
            if not isinstance(response, Response):
                raise ApplicationMistake("HTTP handler", endpoint, response, "a Response")
            return response
        if match.found and isinstance(route, Mount):
            static = route.static
            found = static.resolve(match.subpath, request.method, request.headers)
            if isinstance(found, Response):
                return found
            try:
                data = await asyncio.to_thread(read_file, found.path, static.max_file_size)
            except OSError:
                # Deleted or replaced between resolve() and the read.
                return PlainTextResponse("Not Found\n", status_code=404)
            return static.build(found, data)
        response = match.error_response()
        assert response is not None
        if match.websocket_only:
            # RFC 9110 section 7.8: Upgrade is sent with the token in Connection.
            response.headers.append("connection", "upgrade")
        return response

    async def handle_websocket(self, websocket: WebSocket) -> None:
        """Route a WebSocket handshake to its endpoint, or refuse it (404).

        Raises:
            ApplicationMistake: ``authenticate`` or a function endpoint
                returned what the server cannot use; the server answers 500
                before the handshake is answered, or closes with 1011 after.
        """
        match = self.router.match_websocket(websocket.url.raw_path)
        route = match.route
        if not match.found or not isinstance(route, WebSocketRoute):
            await websocket.send_denial_response(PlainTextResponse("Not Found\n", status_code=404))
            return
        websocket.path_params = dict(match.path_params)
        authenticate = self.authenticate
        if authenticate is not None:
            refusal = await awaited("authenticate hook", authenticate, authenticate(websocket))
            if refusal is not None:
                if not isinstance(refusal, Response):
                    raise ApplicationMistake(
                        "authenticate hook", authenticate, refusal, "None or a Response"
                    )
                await websocket.send_denial_response(refusal)
                return
        await run_websocket_endpoint(route.endpoint, websocket)


async def run_websocket_endpoint(endpoint: object, websocket: WebSocket) -> None:
    """Run a view class or an ``async def endpoint(websocket)``.

    Raises:
        ApplicationMistake: a function endpoint returned something other
            than ``None`` (the server answers 500, or closes with 1011).
        TypeError: ``endpoint`` is neither.
    """
    if inspect.isclass(endpoint) and issubclass(endpoint, WebSocketView):
        await endpoint(websocket).dispatch()
        return
    if callable(endpoint):
        result: Any = endpoint(websocket)
        if inspect.isawaitable(result):
            result = await result
        if result is not None:
            hint = (
                "refuse a handshake with websocket.send_denial_response()"
                if isinstance(result, Response)
                else ""
            )
            raise ApplicationMistake("WebSocket endpoint", endpoint, result, "None", hint)
        return
    raise TypeError(f"not a WebSocket endpoint: {endpoint!r}")


def as_app(target: object, *, path: str = "/") -> Application:
    """Turn what ``wsserver run`` was given into an application.

    Args:
        target: an ``App`` (or any ``Application``), a ``WebSocketView``
            subclass, or an ``async def endpoint(websocket)``.
        path: where a lone view or function is mounted.

    Raises:
        TypeError: for anything else.
    """
    if isinstance(target, App):
        return target
    # Not a class: ``App`` itself (or a subclass) has these methods too, but
    # serving the class would fail on every request with a TypeError.
    if (
        not inspect.isclass(target)
        and hasattr(target, "handle_http")
        and hasattr(target, "handle_websocket")
    ):
        return cast(Application, target)
    if (inspect.isclass(target) and issubclass(target, WebSocketView)) or (
        inspect.iscoroutinefunction(target)
    ):
        return App([WebSocketRoute(path, target)])
    hint = " (a class: pass an instance)" if inspect.isclass(target) else ""
    raise TypeError(
        f"{target!r} is not a WebSocketView subclass, an App, or an async WebSocket endpoint{hint}"
    )
