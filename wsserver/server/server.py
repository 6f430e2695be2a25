"""``Server``: listening, the set of live connections, graceful shutdown.

``serve(app, config)`` runs until SIGINT or SIGTERM, then shuts down in
order: stop accepting; answer new handshakes on open connections with 503;
close every WebSocket with 1001 (going away), flushing what was already
passed to ``send``; wait up to ``shutdown_timeout``; abort what is left.

``shutdown(restart=True)`` is the same with 1012 (service restart) and no
drain delay: what a worker does when the supervisor replaces it (a rolling
restart, ``wsserver.supervisor``), and what a single process does on SIGHUP
(it then exits; see docs/operations.md).  1012 tells clients that the
server is coming back at once: the browser runtime reconnects without
waiting.

An application may have two optional hooks, ``async def startup()`` and
``async def shutdown()`` (an ASGI application's lifespan, through
``ASGIApp``): ``start()`` awaits the first before it listens, and a failure
there (``ApplicationStartupError``) leaves the server not listening;
``shutdown()`` awaits the second once every connection and handler is done.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from ..protocol import CloseCode, build_info
from .app import Application
from .config import ServerConfig
from .connection import Connection
from .deadlines import DeadlineSweep
from .descriptors import limit_accept_failure_logs
from .keepalive import Keepalive
from .readiness import Readiness, ServerPhase
from .requests import Request
from .responses import Response
from .startup import ApplicationStartupError, StartupContext, startup_warnings
from .websocket import WebSocket

if TYPE_CHECKING:
    from .metrics import Metered, Metrics

__all__ = ["Server", "serve"]

logger = logging.getLogger("wsserver")

#: Seconds shutdown() waits, after the grace period, for aborted transports
#: to report their end and for cancelled handlers to unwind.
_AFTER_ABORT = 1.0

#: What a graceful shutdown tells every WebSocket (RFC 6455 section 7.4.1:
#: 1001, "an endpoint is going away, such as a server going down").
SHUTDOWN_CLOSE = (CloseCode.GOING_AWAY, "server shutting down")
#: What a restart tells them: 1012 (IANA registry, "Service Restart"), so
#: that clients reconnect at once rather than back off.
RESTART_CLOSE = (CloseCode.SERVICE_RESTART, "server restarting")


#: Bytes read from a socket at once: asyncio's own figure for its
#: transports (``max_size``), large enough that a 1 MiB message takes four
#: reads.
RECEIVE_BUFFER_SIZE = 256 * 1024


class Server:
    """Serves one application on one listening socket.

    Use it as an async context manager, or ``start()`` / ``shutdown()``.
    """

    def __init__(self, app: Application, config: ServerConfig | None = None) -> None:
        self.app = app
        # An application that reads request bodies as they arrive says so
        # (ASGIApp); the others get each body whole.
        self.streams_request_bodies = getattr(app, "streams_request_bodies", False) is True
        self.config = config if config is not None else ServerConfig()
        self.connections: set[Connection] = set()
        self.shutting_down = False
        #: What shutdown() closes WebSockets with (ConnectionOwner).
        self.shutdown_close = SHUTDOWN_CLOSE
        self._websocket_count = 0
        self._listener: asyncio.Server | None = None
        self._next_id = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._all_closed: asyncio.Event | None = None
        # The connections' handler tasks (the application's code), so that
        # shutdown() can wait for them: a connection leaves ``connections``
        # when its transport is gone, which may be before its handler returns.
        self._tasks: set[asyncio.Task[None]] = set()
        # Whether the application's startup() hook ran and its shutdown()
        # is owed.
        self._app_started = False
        # Where every connection's transport reads into: see
        # Connection.get_buffer.  One per server, not per connection: an
        # idle connection holds no receive buffer.
        self.receive_buffer = memoryview(bytearray(RECEIVE_BUFFER_SIZE))
        # Parsed once, not per request.
        self.trusted_proxies = self.config.trusted_proxies
        # Open WebSockets and handshakes per client address (limits.py).
        self.client_limiter = self.config.client_limiter()
        #: ``/readyz``: the phase, and the application's checks (``add_check``).
        app_checks = getattr(app, "readiness_checks", None)
        self.readiness = Readiness(app_checks if isinstance(app_checks, list) else ())
        #: The Prometheus figures, or ``None`` when metrics are off (then
        #: prometheus_client is not even imported).
        self.metrics: Metrics | None = None
        if self.config.metrics_path:
            from .metrics import METRICS_DIR_ENV, Metrics

            self.metrics = Metrics(self.config.metrics_path, os.environ.get(METRICS_DIR_ENV))
            self.metrics.attach(self)
        self._snapshot_timer: asyncio.TimerHandle | None = None
        #: The open_timeout and handshake_timeout deadlines of every
        #: connection (ConnectionOwner), set up by start() on its loop.
        self.open_deadlines: DeadlineSweep[Connection] | None = None
        self.handshake_deadlines: DeadlineSweep[Connection] | None = None
        #: The WebSockets' heartbeats at ping_interval (Keepalive).
        self.heartbeats: DeadlineSweep[Keepalive] | None = None
        # Set while shutdown() waits out the drain delay; setting it ends it.
        self._draining: asyncio.Event | None = None
        # Started by start_in_memory(): connections come without a listener.
        self._in_memory = False

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The event loop the server runs on (set by ``start``)."""
        assert self._loop is not None, "the server is not started"
        return self._loop

    async def start(self) -> None:
        """Run the application's ``startup()`` hook, bind, start accepting.

        Raises:
            ApplicationStartupError: the hook failed; nothing is listening.
            OSError: binding failed (the ``shutdown()`` hook has run).
        """
        await self._start_app()
        try:
            await self._listen()
        except BaseException:
            await self._stop_app()
            raise

    async def start_in_memory(self) -> None:
        """Run the ``startup()`` hook and serve connections made by hand, without a socket.

        For ``wsserver.testing``: it makes each ``Connection(server)`` over
        an in-memory transport.  Everything but the listener is as in
        ``start()``; ``shutdown()`` ends it the same way.

        Raises:
            ApplicationStartupError: the hook failed.
        """
        await self._start_app()
        self._prepare()
        self._in_memory = True
        self.readiness.phase = ServerPhase.SERVING

    async def _start_app(self) -> None:
        startup = getattr(self.app, "startup", None)
        if startup is None or self._app_started:
            return
        try:
            await startup()
        except ApplicationStartupError:
            raise
        except Exception as error:
            raise ApplicationStartupError(
                f"application startup failed: {type(error).__name__}: {error}"
            ) from error
        self._app_started = True

    async def _stop_app(self) -> None:
        shutdown = getattr(self.app, "shutdown", None)
        if shutdown is None or not self._app_started:
            return
        self._app_started = False
        try:
            await shutdown()
        except Exception:
            # The server is stopping anyway: say why the application's own
            # clean-up did not finish, and go on.
            logger.exception("the application's shutdown hook failed")

    def _prepare(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._all_closed = asyncio.Event()
        self._all_closed.set()
        self.shutting_down = False  # a server may be started again after shutdown()
        self.shutdown_close = SHUTDOWN_CLOSE
        self.readiness.phase = ServerPhase.STARTING

    async def _listen(self) -> None:
        self._prepare()
        assert self._loop is not None
        config = self.config
        _raise_open_file_limit(config.max_connections)
        # One timer per setting for all connections, not one per connection
        # (wsserver.server.deadlines: a connection may live up to the
        # sweep's resolution, 1 s for the 10 s defaults, past its deadline).
        self.open_deadlines = self.handshake_deadlines = None
        self.heartbeats = None
        if config.open_timeout is not None:
            self.open_deadlines = DeadlineSweep(
                self._loop, config.open_timeout, Connection.open_deadline_passed
            )
        if config.handshake_timeout is not None:
            self.handshake_deadlines = DeadlineSweep(
                self._loop, config.handshake_timeout, Connection.handshake_deadline_passed
            )
        if config.ping_interval is not None:
            self.heartbeats = DeadlineSweep(
                self._loop, config.ping_interval, Keepalive.heartbeat_due
            )
        limit_accept_failure_logs()
        # The TLS handshake comes before connection_made(), out of
        # open_timeout's reach: bound it by the same time.
        handshake_timeout = config.open_timeout if config.ssl_context is not None else None
        if config.uds is not None:
            self._listener = await self._loop.create_unix_server(
                lambda: Connection(self),
                config.uds,
                ssl=config.ssl_context,
                backlog=config.backlog,
                ssl_handshake_timeout=handshake_timeout,
            )
        else:
            self._listener = await self._loop.create_server(
                lambda: Connection(self),
                config.host,
                config.port,
                ssl=config.ssl_context,
                backlog=config.backlog,
                reuse_port=config.reuse_port or None,
                ssl_handshake_timeout=handshake_timeout,
            )
        # Which build of the protocol core runs (mypyc-compiled or pure
        # Python): the same behaviour, a different speed, so worth one line.
        logger.info(
            "wsserver listening on %s (protocol core: %s)",
            ", ".join(self.addresses),
            build_info.describe(),
        )
        self.readiness.phase = ServerPhase.SERVING
        if self.metrics is not None and self.metrics.snapshot_dir is not None:
            self._write_snapshot()

    @property
    def addresses(self) -> list[str]:
        """The addresses listened on, for logs and tests."""
        if self._listener is None:
            return []
        result = []
        for sock in self._listener.sockets:
            name = sock.getsockname()
            if isinstance(name, tuple):
                host = f"[{name[0]}]" if ":" in str(name[0]) else str(name[0])
                result.append(f"{host}:{name[1]}")
            else:
                result.append(str(name))
        return result

    @property
    def port(self) -> int:
        """The TCP port bound (useful with ``port=0``).

        Raises:
            RuntimeError: not started, or listening on a Unix socket.
        """
        if self._listener is None:
            raise RuntimeError("the server is not listening")
        name = self._listener.sockets[0].getsockname()
        # A Unix socket's name is its path: indexing it returned a character.
        if not isinstance(name, tuple):
            raise RuntimeError(f"listening on a Unix socket ({name}), not on a TCP port")
        port: int = name[1]
        return port

    async def __aenter__(self) -> Server:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.shutdown()

    # -- connection registry (called by Connection) -------------------------

    def next_connection_id(self) -> int:
        """A process-unique connection id for log lines."""
        self._next_id += 1
        return self._next_id

    def connection_opened(self, connection: Connection) -> None:
        """Register a new transport."""
        self.connections.add(connection)
        assert self._all_closed is not None
        self._all_closed.clear()

    def task_started(self, task: asyncio.Task[None]) -> None:
        """Track a connection's handler task until it is done."""
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def connection_closed(self, connection: Connection) -> None:
        """Forget a transport that is gone."""
        if connection in self.connections and connection.websocket is not None:
            self._websocket_count -= 1
        self.connections.discard(connection)
        if not self.connections and self._all_closed is not None:
            self._all_closed.set()

    def websocket_attached(self) -> None:
        """A connection became a WebSocket (counted for ``max_connections``)."""
        self._websocket_count += 1

    def refuses_new_websockets(self) -> bool:
        """True when a new handshake must get 503: shutting down, or full.

        Not in a restart: a handshake that reaches this server then came on a
        connection accepted before its listener closed; it is accepted, then
        closed at once with 1012, which sends the client to the new workers
        without counting as a failure.
        """
        if self.shutting_down and self.shutdown_close is not RESTART_CLOSE:
            return True
        limit = self.config.max_connections
        if limit is None:
            return False
        # A running count: walking every connection per handshake would make
        # a handshake flood cost O(connections) each.
        return self._websocket_count >= limit

    # -- operations: readiness and metrics ------------------------------------

    def operations_response(self, request: Request) -> Response | None:
        """The answer to a readiness probe or a scrape, or ``None`` for the app."""
        if request.method not in ("GET", "HEAD"):
            return None
        path = request.url.raw_path
        config = self.config
        if config.readiness_path and path == config.readiness_path:
            return self.readiness.response()
        if self.metrics is not None and path == self.metrics.path:
            return self.metrics.response()
        return None

    @property
    def metered(self) -> Iterable[Metered]:
        """The open connections, for the metrics' scrape."""
        return self.connections

    @property
    def ready(self) -> bool:
        """Whether ``/readyz`` answers 200 now."""
        return self.readiness.ready

    def _write_snapshot(self) -> None:
        """With ``--workers N``: this worker's figures for the others, each second."""
        assert self.metrics is not None
        try:
            self.metrics.write_snapshot()
        except OSError as error:
            logger.warning("cannot write the metrics snapshot: %s", error)
        if self._listener is not None:
            from .metrics import SNAPSHOT_INTERVAL

            self._snapshot_timer = self.loop.call_later(SNAPSHOT_INTERVAL, self._write_snapshot)

    @property
    def websockets(self) -> list[WebSocket]:
        """The open WebSocket connections."""
        return [c.websocket for c in self.connections if c.websocket is not None]

    # -- shutdown --------------------------------------------------------------

    async def shutdown(self, *, restart: bool = False) -> None:
        """Stop accepting, close every connection with 1001, abort stragglers.

        Then let the application's handlers finish (they learn of the end
        from ``receive`` or ``send``) in what is left of ``shutdown_timeout``,
        and cancel those still running: none outlives the server.

        With ``restart``, WebSockets get 1012 (service restart) instead, and
        the drain delay is skipped: in a rolling restart the new workers
        already listen on the same port, so there is nothing for a load
        balancer to notice, and the sooner this listener closes, the fewer
        connections land in its queue.
        """
        # A local: a second shutdown() running concurrently (a signal while
        # ``async with`` exits) sets self._listener to None when it is done.
        listener = self._listener
        if listener is None and not self._in_memory:
            return
        self._in_memory = False
        loop = asyncio.get_running_loop()
        # /readyz answers 503 from now on; with a drain delay, the listener
        # stays open meanwhile, for the load balancer to see it.
        self.readiness.phase = ServerPhase.DRAINING
        if restart:
            self.shutdown_close = RESTART_CLOSE
        draining = self._draining
        if draining is not None:
            # A second call (a second signal) ends the drain delay now.
            draining.set()
        elif self.config.drain_delay and not restart:
            logger.info("draining: /readyz answers 503 for %ss", self.config.drain_delay)
            draining = self._draining = asyncio.Event()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(draining.wait(), self.config.drain_delay)
            self._draining = None
        deadline = loop.time() + self.config.shutdown_timeout
        self.shutting_down = True
        if listener is not None:
            listener.close()
        for connection in list(self.connections):
            connection.shutdown()
        assert self._all_closed is not None
        try:
            await asyncio.wait_for(self._all_closed.wait(), self.config.shutdown_timeout)
        except TimeoutError:
            logger.info("aborting %d connections after the grace period", len(self.connections))
            for connection in list(self.connections):
                connection.abort()
            # connection_lost() follows abort() at the next loop iteration;
            # wait for it so that ``connections`` is empty on return.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._all_closed.wait(), _AFTER_ABORT)
        # Not the caller's own task, if a handler called shutdown().
        tasks = self._tasks - {asyncio.current_task()}
        if tasks:
            remaining = max(0.0, deadline - loop.time())
            _, pending = await asyncio.wait(tasks, timeout=remaining)
            if pending:
                logger.info("cancelling %d handlers after the grace period", len(pending))
                for task in pending:
                    task.cancel()
                await asyncio.wait(pending, timeout=_AFTER_ABORT)
        if listener is not None:
            await listener.wait_closed()
        self._listener = None
        if self._snapshot_timer is not None:
            self._snapshot_timer.cancel()
            self._snapshot_timer = None
        for sweep in (self.open_deadlines, self.handshake_deadlines, self.heartbeats):
            if sweep is not None:
                sweep.close()
        if self.metrics is not None and self.metrics.snapshot_dir is not None:
            # The last figures of this worker, kept after it exits.
            with contextlib.suppress(OSError):
                self.metrics.write_snapshot()
        if self.config.uds is not None:
            # asyncio (before 3.13) leaves the socket file behind, and the
            # next start() would fail on it with "address already in use".
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.config.uds)
        await self._stop_app()

    async def serve_forever(self, stop: asyncio.Event | None = None) -> None:
        """Serve until ``stop`` is set (or a signal when it is not given).

        Without ``stop``: SIGINT and SIGTERM shut down (1001); SIGHUP shuts
        down for a restart (1012, see ``shutdown``), for whatever restarts
        this process (systemd's ``Restart=always``, a container runtime) to
        start it again; a SIGHUP ignored when the process started (``nohup``)
        stays ignored.
        """
        await self.start()
        installed: list[signal.Signals] = []
        restart = False
        if stop is None:
            stop = asyncio.Event()

            def on_hangup() -> None:
                nonlocal restart
                restart = True
                stop.set()

            installed = _install_signal_handlers(stop, on_hangup)
        try:
            await stop.wait()
        finally:
            # Back to the default handlers before the grace period: a second
            # Ctrl-C (or SIGTERM) then stops the process at once instead of
            # being swallowed, and none of ours outlives this call.
            _remove_signal_handlers(installed)
            if restart:
                logger.info("SIGHUP: shutting down for a restart (1012)")
            else:
                logger.info("shutting down")
            await self.shutdown(restart=restart)


#: Descriptors kept for everything that is not a client connection: the
#: listener, logs, static files, the event loop's own.
_FD_RESERVE = 64


def _raise_open_file_limit(max_connections: int | None) -> None:
    """Let the process open as many sockets as ``max_connections`` allows.

    The usual soft limit (1,024) is far below the default ``max_connections``
    (10,000): a connection flood would hit EMFILE, and asyncio's accept loop
    would log a traceback per attempt, long before the server answered 503.
    The soft limit is raised towards the hard one (a process may always do
    that); if even the hard limit is too low, say so once.
    """
    try:
        import resource
    except ImportError:  # pragma: no cover - not on Unix
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = (max_connections or 0) + _FD_RESERVE
    if hard == resource.RLIM_INFINITY:
        target = max(soft, wanted) if soft != resource.RLIM_INFINITY else soft
    else:
        target = hard
    if soft != resource.RLIM_INFINITY and target > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):  # pragma: no cover - refused by the system
            pass
    if max_connections is not None and soft != resource.RLIM_INFINITY and wanted > soft:
        logger.warning(
            "max_connections=%d needs about %d file descriptors but the limit is %d: "
            "raise it (ulimit -n) or lower max_connections",
            max_connections,
            wanted,
            soft,
        )


def _install_signal_handlers(
    stop: asyncio.Event, on_hangup: Callable[[], None] | None = None
) -> list[signal.Signals]:
    loop = asyncio.get_running_loop()
    installed = []
    handlers: list[tuple[signal.Signals, Callable[[], None]]] = [
        (signal.SIGINT, stop.set),
        (signal.SIGTERM, stop.set),
    ]
    hangup = getattr(signal, "SIGHUP", None)
    # Under nohup SIGHUP is ignored on purpose: keep it so.
    if on_hangup is not None and hangup is not None and signal.getsignal(hangup) != signal.SIG_IGN:
        handlers.append((hangup, on_hangup))
    for sig, handler in handlers:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, handler)
            installed.append(sig)
    return installed


def _remove_signal_handlers(installed: list[signal.Signals]) -> None:
    loop = asyncio.get_running_loop()
    for sig in installed:
        loop.remove_signal_handler(sig)


async def serve(app: Application, config: ServerConfig | None = None) -> None:
    """Serve ``app`` until SIGINT or SIGTERM, then shut down gracefully.

    Before listening, the start-up checks plugins registered
    (``wsserver.server.startup``) run for this one process; their warnings
    are logged.
    """
    server = Server(app, config)
    for warning in startup_warnings(StartupContext(app=app, config=server.config, workers=1)):
        logger.warning("%s", warning)
    await server.serve_forever()
