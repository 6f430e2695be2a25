"""``ASGIApp``: an ASGI 3 application as the server's ``Application``.

The server drives an ``ASGIApp`` exactly as it drives a native ``App``: it
calls ``handle_http(request)`` for a plain request and
``handle_websocket(websocket)`` for a handshake, and awaits ``startup()``
before listening and ``shutdown()`` after the last connection.  Nothing on
the native path knows the adapter exists.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from typing import Any

from ..requests import Request
from ..responses import Response
from ..uploads import Upload
from ..websocket import WebSocket
from .http import ClientDisconnected, HTTPCycle
from .lifespan import ASGICallable, Lifespan
from .scope import http_scope, websocket_scope
from .websocket import WebSocketCycle

__all__ = ["DEFAULT_SHUTDOWN_TIMEOUT", "LIFESPAN_MODES", "ASGIApp", "is_asgi_app"]

#: The values of ``ASGIApp(lifespan=...)`` and ``--lifespan``, as uvicorn's.
LIFESPAN_MODES = ("auto", "on", "off")

logger = logging.getLogger("wsserver")

#: Seconds ``shutdown()`` waits for applications still running after their
#: response (background tasks) before it cancels them: the server's own
#: ``shutdown_timeout`` default.
DEFAULT_SHUTDOWN_TIMEOUT = 10.0


class ASGIApp:
    """Serve an ASGI 3 application (``async def app(scope, receive, send)``).

    Args:
        app: the ASGI application.
        lifespan: uvicorn's ``--lifespan``: ``auto`` runs the lifespan
            protocol (``startup()``/``shutdown()``) and tolerates an
            application that does not speak it; ``on`` requires it (such an
            application does not start); ``off`` skips it.
        shutdown_timeout: see ``DEFAULT_SHUTDOWN_TIMEOUT``.
    """

    #: The server hands each request's body to the application as it
    #: arrives (``Request.upload``), not read whole: ``more_body``.
    streams_request_bodies = True

    def __init__(
        self,
        app: ASGICallable,
        *,
        lifespan: str = "auto",
        shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT,
    ) -> None:
        if lifespan not in LIFESPAN_MODES:
            raise ValueError(f"lifespan must be one of {', '.join(LIFESPAN_MODES)}: {lifespan!r}")
        self.app = app
        self._lifespan_required = lifespan == "on"
        self.lifespan = None if lifespan == "off" else Lifespan(app)
        self.shutdown_timeout = shutdown_timeout
        # Applications still running after their response was sent.
        self._running: set[asyncio.Task[None]] = set()

    @property
    def state(self) -> dict[str, Any]:
        """The lifespan state, copied into every connection's scope."""
        return self.lifespan.state if self.lifespan is not None else {}

    async def startup(self) -> None:
        """The lifespan startup (``LifespanFailed`` if the application refuses)."""
        if self.lifespan is not None:
            # A fresh run for each start.
            self.lifespan = Lifespan(self.app, required=self._lifespan_required)
            await self.lifespan.startup()

    async def shutdown(self) -> None:
        """Let running applications finish, then the lifespan shutdown."""
        running = set(self._running)
        if running:
            _, pending = await asyncio.wait(running, timeout=self.shutdown_timeout)
            for task in pending:
                task.cancel()
            if pending:
                logger.info("cancelled %d ASGI applications after the grace period", len(pending))
                await asyncio.wait(pending, timeout=1.0)
        if self.lifespan is not None:
            await self.lifespan.shutdown()

    async def handle_http(self, request: Request) -> Response:
        """Run the application for one request; its response once complete.

        The application runs in a task of its own: the response goes out
        as soon as its last body chunk is sent (a streamed one as soon as
        its first is), while the application may go on (a background task
        after the response).

        If the client goes first, the response returned is never sent
        (the connection sends nothing to a client that has gone, or whose
        body it refused); the application learns it from ``receive()``
        (``http.disconnect``) and its next ``send()``.

        Raises:
            Exception: what the application raised before its response was
                complete (the connection answers 500 and logs it).
        """
        loop = asyncio.get_running_loop()
        upload = request.upload
        if upload is None:
            # Not from a server that streams bodies (a test, a wrapper).
            upload = Upload(loop, body=request.body)
        cycle = HTTPCycle(upload)
        scope = http_scope(request, self.state)
        task = loop.create_task(self._run_http(scope, cycle))
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        try:
            # ``wait``: cancelling this must not cancel the futures.
            await asyncio.wait((cycle.response, upload.gone), return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            cycle.abandon()
            task.cancel()
            raise
        if cycle.response.done():
            return cycle.response.result()
        return _NOT_SENT

    async def _run_http(self, scope: dict[str, Any], cycle: HTTPCycle) -> None:
        response = cycle.response
        try:
            await self.app(scope, cycle.receive, cycle.send)
        except ClientDisconnected:
            return
        except Exception as error:
            if cycle.client_left and not cycle.complete:
                # Starlette raises ClientDisconnect at http.disconnect: not
                # an error of the application worth a traceback.
                logger.info(
                    "the ASGI application for %s %s ended with %r after its client left",
                    scope["method"],
                    scope["path"],
                    error,
                )
                return
            if not response.done():
                # The connection answers 500 and logs it.
                response.set_exception(error)
            elif cycle.streaming and not cycle.complete:
                # The connection logs it and drops the half-sent response.
                cycle.fail(error)
            elif not response.cancelled():
                logger.exception(
                    "error in the ASGI application after its response to %s %s",
                    scope["method"],
                    scope["path"],
                )
            return
        except asyncio.CancelledError:
            if not response.done():
                response.cancel()
            elif cycle.streaming and not cycle.complete:
                cycle.fail(RuntimeError("the ASGI application was cancelled mid-response"))
            raise
        if not cycle.complete and not cycle.client_left:
            what = "completing" if cycle.started else "sending"
            unfinished = RuntimeError(f"the ASGI application returned without {what} its response")
            if response.done():
                cycle.fail(unfinished)
            else:
                response.set_exception(unfinished)

    async def handle_websocket(self, websocket: WebSocket) -> None:
        """Run the application for one WebSocket handshake and connection."""
        cycle = WebSocketCycle(websocket)
        # ClientDisconnected: the peer went away while the application was
        # sending, and the application let the error through: nothing is
        # left to answer.
        with contextlib.suppress(ClientDisconnected):
            await self.app(websocket_scope(websocket, self.state), cycle.receive, cycle.send)


#: What ``handle_http`` returns when the client went before the response:
#: the connection sends nothing then (499 is nginx's "client closed
#: request", for anyone who looks).
_NOT_SENT = Response(b"", status_code=499)


def is_asgi_app(target: object) -> bool:
    """Whether ``target`` looks like an ASGI 3 application.

    That is: not a native application (``App``, anything with
    ``handle_http``), not a class (a ``WebSocketView``), and callable with
    three positional arguments (``scope, receive, send``): an ``async
    def`` function, an instance with an ``async def __call__`` (Starlette,
    FastAPI, Lilya) or middleware wrapping one.  A native
    ``async def endpoint(websocket)`` takes one.
    """
    if inspect.isclass(target) or not callable(target):
        return False
    if hasattr(target, "handle_http") and hasattr(target, "handle_websocket"):
        return False
    try:
        signature = inspect.signature(target)
    except (TypeError, ValueError):
        return False
    try:
        signature.bind(None, None, None)
    except TypeError:
        return False
    return True
