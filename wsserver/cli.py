"""The command line: ``wsserver run module:attr``.

``attr`` is a ``WebSocketView`` subclass, an ``App`` (or any object with
``handle_http`` and ``handle_websocket``), an ``async def endpoint(ws)``,
or with ``--factory`` a callable returning one of those.  The current
directory is on ``sys.path``, as with uvicorn, so ``examples.echo:EchoView``
works from the repository root.

``--workers N`` (N > 1) runs a supervisor and N worker processes that share
one TCP port with SO_REUSEPORT, so that the kernel spreads connections
between them.  The supervisor imports the application first (to report
errors once), reserves the port (so that ``--port 0`` gives every worker the
same one), starts the workers with ``--workers 1 --port <port>
--reuse-port``, and waits until each says it is listening; a worker that
exits before that makes the supervisor stop the others and exit with status
1.  SIGINT and SIGTERM are forwarded to every worker (once, as SIGTERM) for
a graceful shutdown; the supervisor exits 0 when they all did.  A worker
that crashes later is restarted.  Workers run in their own process group
(a terminal's Ctrl-C reaches the supervisor alone, which forwards it) and
stop by themselves if the supervisor disappears.

Several workers share nothing in memory: what one worker's channel manager
broadcasts reaches another's connections only through Redis.  When an
application uses the in-process channel backend with ``--workers`` > 1, the
command says so.  ``--channels-backend URL`` (``redis://host:port/db``)
sets ``WSSERVER_CHANNELS_BACKEND`` before the application is imported, so
that every ``ChannelManager()`` built without an explicit backend uses it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import logging
import math
import os
import signal
import socket
import ssl
import subprocess
import sys
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import __version__
from .protocol import DeflateSettings, ProtocolSettings
from .server import Application, OriginPolicy, Server, ServerConfig, as_app, serve

__all__ = [
    "WORKER_ENV",
    "WORKER_FD_ENV",
    "ImportFromStringError",
    "build_config",
    "channels_warning",
    "import_from_string",
    "main",
]

logger = logging.getLogger("wsserver")

#: Set in a worker's environment: its index (1 to N).
WORKER_ENV = "WSSERVER_WORKER"
#: Set in a worker's environment: the file descriptor of its end of the
#: socket pair to the supervisor (it writes one byte once listening; end of
#: file means that the supervisor is gone).
WORKER_FD_ENV = "WSSERVER_WORKER_FD"
#: Seconds a worker may take from its start until it listens.
WORKER_START_TIMEOUT = 60.0
# Seconds added to shutdown_timeout before the supervisor kills a worker
# that has not finished its graceful shutdown.
_KILL_MARGIN = 5.0
# The byte a worker sends when it is listening.
_READY = b"R"


class ImportFromStringError(Exception):
    """The ``module:attr`` string cannot be turned into an object."""


def import_from_string(spec: str) -> object:
    """Import ``module:attr`` (``attr`` may be dotted).

    Raises:
        ImportFromStringError: with a one-line message naming the problem.
    """
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ImportFromStringError(f'import string "{spec}" must be in the form "module:attr"')
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name != module_name and not module_name.startswith(f"{error.name}."):
            # The module exists but something it imports does not.
            raise ImportFromStringError(
                f'error importing "{module_name}": no module named "{error.name}"'
            ) from error
        raise ImportFromStringError(f'could not import module "{module_name}"') from error
    except Exception as error:
        # Anything else raised while the module runs (a SyntaxError, a
        # missing setting...): one line naming the module and the error,
        # as for the other import failures, instead of a traceback.
        raise ImportFromStringError(
            f'error importing "{module_name}": {type(error).__name__}: {error}'
        ) from error
    target: object = module
    for part in attr.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise ImportFromStringError(
                f'attribute "{attr}" not found in module "{module_name}"'
            ) from None
    return target


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("must be a positive number of seconds") from None
    # "nan" passes a plain "<= 0" test and would reach the timers.
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError("must be a positive number of seconds")
    return value


def _positive_float_or_none(text: str) -> float | None:
    if text.lower() in ("none", "off", "0"):
        return None
    try:
        return _positive_float(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError("must be positive, or 'none'") from None


def _workers(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("must be a whole number >= 1") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be a whole number >= 1")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wsserver", description="A WebSocket server.")
    parser.add_argument("--version", action="version", version=f"wsserver {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="serve an application")
    run.add_argument("target", help="module:attr, e.g. examples.echo:EchoView")
    run.add_argument("--factory", action="store_true", help="attr is a factory to call")
    run.add_argument("--host", default="127.0.0.1")
    run.add_argument("--port", type=int, default=8000)
    run.add_argument("--uds", default=None, help="listen on a Unix socket instead")
    run.add_argument("--path", default="/", help="where a lone view is mounted")
    defaults = ProtocolSettings()
    run.add_argument("--ws-max-size", type=int, default=defaults.max_message_size)
    run.add_argument("--ws-max-frame-size", type=int, default=None)
    run.add_argument("--ws-max-fragments", type=int, default=defaults.max_fragments)
    run.add_argument("--ws-max-queue", type=int, default=16)
    run.add_argument("--ws-ping-interval", type=_positive_float_or_none, default=20.0)
    run.add_argument("--ws-ping-timeout", type=_positive_float_or_none, default=20.0)
    run.add_argument("--receive-timeout", type=_positive_float_or_none, default=None)
    run.add_argument("--open-timeout", type=_positive_float_or_none, default=10.0)
    run.add_argument("--close-timeout", type=_positive_float, default=10.0)
    run.add_argument("--max-connections", type=int, default=10_000)
    run.add_argument("--write-timeout", type=_positive_float_or_none, default=60.0)
    run.add_argument("--shutdown-timeout", type=_positive_float, default=10.0)
    run.add_argument(
        "--origin",
        action="append",
        default=None,
        metavar="ORIGIN",
        help="allow WebSocket handshakes from this Origin (repeatable; '*' stands "
        "for host labels, as https://*.example.com); others get 403",
    )
    run.add_argument(
        "--compression",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="permessage-deflate (on by default)",
    )
    deflate = DeflateSettings()
    run.add_argument(
        "--deflate-server-max-window-bits", type=int, default=deflate.server_max_window_bits
    )
    run.add_argument(
        "--deflate-client-max-window-bits", type=int, default=deflate.client_max_window_bits
    )
    run.add_argument("--deflate-server-no-context-takeover", action="store_true")
    run.add_argument("--deflate-client-no-context-takeover", action="store_true")
    run.add_argument("--deflate-level", type=int, default=deflate.compression_level)
    run.add_argument("--deflate-mem-level", type=int, default=deflate.mem_level)
    run.add_argument("--ssl-certfile", default=None)
    run.add_argument("--ssl-keyfile", default=None)
    run.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    run.add_argument(
        "--workers",
        type=_workers,
        default=1,
        help="worker processes sharing the port with SO_REUSEPORT (default 1: no supervisor)",
    )
    run.add_argument(
        "--reuse-port",
        action="store_true",
        help="set SO_REUSEPORT, so that other processes can listen on the same port",
    )
    run.add_argument(
        "--channels-backend",
        default=None,
        metavar="URL",
        help="the channel manager's backend for ChannelManager() without one: memory:// "
        "or redis://host:port/db (sets WSSERVER_CHANNELS_BACKEND); "
        "several workers need Redis to reach each other's connections",
    )
    run.add_argument("--log-level", choices=("debug", "info", "warning", "error"), default="info")
    run.add_argument(
        "--access-log",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="one line per HTTP request and WebSocket handshake (on by default)",
    )
    return parser


def build_config(args: argparse.Namespace) -> ServerConfig:
    """Turn parsed arguments into a ``ServerConfig``."""
    deflate = None
    if args.compression:
        deflate = DeflateSettings(
            server_max_window_bits=args.deflate_server_max_window_bits,
            client_max_window_bits=args.deflate_client_max_window_bits,
            server_no_context_takeover=args.deflate_server_no_context_takeover,
            client_no_context_takeover=args.deflate_client_no_context_takeover,
            compression_level=args.deflate_level,
            mem_level=args.deflate_mem_level,
        )
    ssl_context = None
    if args.ssl_certfile:
        ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ssl_context.load_cert_chain(args.ssl_certfile, args.ssl_keyfile)
    return ServerConfig(
        host=args.host,
        port=args.port,
        uds=args.uds,
        protocol=ProtocolSettings(
            max_message_size=args.ws_max_size,
            max_frame_size=args.ws_max_frame_size,
            max_fragments=args.ws_max_fragments,
        ),
        deflate=deflate,
        max_queue=args.ws_max_queue,
        ping_interval=args.ws_ping_interval,
        ping_timeout=args.ws_ping_timeout,
        receive_timeout=args.receive_timeout,
        open_timeout=args.open_timeout,
        close_timeout=args.close_timeout,
        max_connections=args.max_connections,
        write_timeout=args.write_timeout,
        shutdown_timeout=args.shutdown_timeout,
        origins=OriginPolicy(args.origin) if args.origin else None,
        ssl_context=ssl_context,
        reuse_port=args.reuse_port,
        access_log=args.access_log,
    )


def channels_warning(workers: int) -> str | None:
    """The warning to print when several workers use the in-process channel backend.

    Looks at the channel managers the application created while it was
    imported (``wsserver.plugins.channels.managers()``); ``None`` when there
    is nothing to say (one worker, no manager, or every manager's backend
    reaches other processes).
    """
    if workers < 2 or "wsserver.plugins.channels.manager" not in sys.modules:
        return None
    from .plugins.channels.manager import managers

    local = [manager for manager in managers() if not manager.cross_process]
    if not local:
        return None
    return (
        f"wsserver: warning: {workers} workers, and the application's channel manager uses the "
        "in-process backend: broadcast, send-to-user, topics and send-and-wait reach only the "
        "connections of the worker that sends them; cross-worker delivery needs Redis "
        "(--channels-backend redis://host:port/0, or ChannelManager(RedisBackend(url)))"
    )


def _configure_logging(level: str, worker: str | None, workers: int) -> None:
    if worker is not None:
        fmt = f"%(asctime)s %(levelname)s [worker {worker} %(process)d] %(name)s: %(message)s"
    elif workers > 1:
        fmt = "%(asctime)s %(levelname)s [supervisor %(process)d] %(name)s: %(message)s"
    else:
        fmt = "%(asctime)s %(levelname)s %(name)s: %(message)s"
    logging.basicConfig(level=level.upper(), format=fmt)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``wsserver`` command; returns the exit status."""
    parser = _parser()
    arguments = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(arguments)
    worker = os.environ.get(WORKER_ENV)
    worker_fd = os.environ.pop(WORKER_FD_ENV, None)
    _configure_logging(args.log_level, worker, args.workers)
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    if args.channels_backend is not None:
        from .plugins.channels.backends import ENV_VAR, check_url

        try:
            check_url(args.channels_backend)
        except ValueError as error:
            print(f"wsserver: error: --channels-backend: {error}", file=sys.stderr)
            return 2
        # Before the import: managers built at import time read it.
        os.environ[ENV_VAR] = args.channels_backend
    try:
        target = import_from_string(args.target)
        if args.factory:
            if not callable(target):
                raise ImportFromStringError(f'"{args.target}" is not callable (--factory)')
            try:
                target = target()
            except Exception as error:
                raise ImportFromStringError(
                    f'factory "{args.target}" failed: {type(error).__name__}: {error}'
                ) from error
        app = as_app(target, path=args.path)
    except (ImportFromStringError, TypeError) as error:
        print(f"wsserver: error: {error}", file=sys.stderr)
        return 2
    try:
        config = build_config(args)
    except (ValueError, OSError, ssl.SSLError) as error:
        print(f"wsserver: error: {error}", file=sys.stderr)
        return 2
    if args.workers > 1 and config.uds is not None:
        print("wsserver: error: --workers needs TCP: it cannot share --uds", file=sys.stderr)
        return 2
    if args.loop == "uvloop":
        try:
            import uvloop
        except ImportError:
            print("wsserver: error: --loop uvloop needs the uvloop package", file=sys.stderr)
            return 2
    warning = channels_warning(args.workers)
    if warning is not None:
        print(warning, file=sys.stderr)
    if args.workers > 1:
        return _run_supervisor(arguments, args.workers, config)
    if worker_fd is not None:
        run: Coroutine[Any, Any, None] = _serve_worker(app, config, int(worker_fd))
    else:
        run = serve(app, config)
    try:
        if args.loop == "uvloop":
            uvloop.run(run)
        else:
            asyncio.run(run)
    except OSError as error:
        # Binding failed (port in use, no permission, bad address): nothing
        # was served.  Connection-level errors never reach here.
        where = config.uds if config.uds is not None else f"{config.host}:{config.port}"
        print(f"wsserver: error: cannot listen on {where}: {error}", file=sys.stderr)
        return 1
    return 0


# ---------------------------------------------------------------------------
# Workers and their supervisor
# ---------------------------------------------------------------------------


async def _serve_worker(app: Application, config: ServerConfig, fd: int) -> None:
    """A worker: serve, tell the supervisor when listening, stop with it."""
    loop = asyncio.get_running_loop()
    link = socket.socket(fileno=fd)
    link.setblocking(False)
    stop = asyncio.Event()
    server = Server(app, config)
    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)

    def supervisor_gone() -> None:
        try:
            data = link.recv(16)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            logger.warning("the supervisor is gone: shutting down")
            loop.remove_reader(link)
            stop.set()

    try:
        await server.start()
        await loop.sock_sendall(link, _READY)
        loop.add_reader(link, supervisor_gone)
        await stop.wait()
    finally:
        with contextlib.suppress(ValueError, OSError):
            loop.remove_reader(link)
        for sig in installed:
            loop.remove_signal_handler(sig)
        logger.info("shutting down")
        await server.shutdown()
        link.close()


def _reserve_port(config: ServerConfig) -> tuple[socket.socket, int]:
    """Bind (without listening) a SO_REUSEPORT socket: the workers' port.

    With ``port=0`` this picks the free port every worker then binds; the
    socket is held open so that no other program takes the port meanwhile.
    It never listens, so the kernel never hands it a connection.
    """
    family, kind, proto, _, address = socket.getaddrinfo(
        config.host, config.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    port: int = sock.getsockname()[1]
    return sock, port


@dataclass
class _Worker:
    index: int
    process: asyncio.subprocess.Process
    link: socket.socket
    ready: asyncio.Task[bytes]
    exited: asyncio.Task[int]
    started: float = 0.0
    restarts: int = field(default=0)


def _run_supervisor(arguments: list[str], workers: int, config: ServerConfig) -> int:
    if not hasattr(socket, "SO_REUSEPORT"):
        print("wsserver: error: --workers needs SO_REUSEPORT (Linux, BSD)", file=sys.stderr)
        return 2
    try:
        reserved, port = _reserve_port(config)
    except OSError as error:
        where = f"{config.host}:{config.port}"
        print(f"wsserver: error: cannot listen on {where}: {error}", file=sys.stderr)
        return 1
    try:
        return asyncio.run(_supervise(arguments, workers, port, config))
    finally:
        reserved.close()


async def _start_worker(arguments: list[str], index: int, port: int) -> _Worker:
    loop = asyncio.get_running_loop()
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    env = dict(os.environ)
    env[WORKER_ENV] = str(index)
    env[WORKER_FD_ENV] = str(theirs.fileno())
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "wsserver",
            *arguments,
            # argparse keeps the last value: these override the user's.
            "--workers",
            "1",
            "--port",
            str(port),
            "--reuse-port",
            stdin=subprocess.DEVNULL,
            env=env,
            pass_fds=(theirs.fileno(),),
            # Its own process group: a terminal's Ctrl-C reaches only the
            # supervisor, which forwards it once.
            process_group=0,
        )
    finally:
        theirs.close()
    return _Worker(
        index,
        process,
        ours,
        asyncio.create_task(loop.sock_recv(ours, 1)),
        asyncio.create_task(process.wait()),
        started=loop.time(),
    )


async def _wait_ready(worker: _Worker, stop: asyncio.Event) -> bool:
    """Wait until ``worker`` listens; ``False`` if it exits (or hangs) first."""
    stopping = asyncio.create_task(stop.wait())
    try:
        done, _ = await asyncio.wait(
            {worker.ready, worker.exited, stopping},
            timeout=WORKER_START_TIMEOUT,
            return_when=asyncio.FIRST_COMPLETED,
        )
    finally:
        stopping.cancel()
    if worker.ready in done and worker.ready.result() == _READY:
        return True
    if stopping in done:
        return True  # not a start-up failure: we are stopping anyway
    if worker.exited not in done:
        # The worker closed its end before listening: its exit follows.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(worker.exited), 5.0)
    return False


def _describe_exit(worker: _Worker) -> str:
    if not worker.exited.done():
        return f"did not listen within {WORKER_START_TIMEOUT:g} s"
    code = worker.exited.result()
    if code < 0:
        return f"was killed by signal {-code}"
    return f"exited with status {code}"


async def _supervise(arguments: list[str], count: int, port: int, config: ServerConfig) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals = 0

    def on_signal() -> None:
        nonlocal signals
        signals += 1
        stop.set()
        if signals > 1:
            # A second Ctrl-C: do not wait for the grace period.
            for worker in workers.values():
                if worker.process.returncode is None:
                    worker.process.kill()

    workers: dict[int, _Worker] = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    status = 0
    try:
        for index in range(1, count + 1):
            workers[index] = await _start_worker(arguments, index, port)
        for worker in list(workers.values()):
            if not await _wait_ready(worker, stop):
                print(
                    f"wsserver: error: worker {worker.index} (pid {worker.process.pid}) "
                    f"{_describe_exit(worker)} during start-up",
                    file=sys.stderr,
                )
                status = 1
                stop.set()
                break
        if not stop.is_set():
            logger.info(
                "supervisor: %d workers listening on %s:%d (SO_REUSEPORT)",
                count,
                config.host,
                port,
            )
        while not stop.is_set():
            stopping = asyncio.create_task(stop.wait())
            exits = {worker.exited: worker for worker in workers.values()}
            done, _ = await asyncio.wait({stopping, *exits}, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            for task in done:
                crashed = exits.get(task)
                if crashed is None or stop.is_set():
                    continue
                logger.error(
                    "worker %d (pid %d) %s; restarting it (restart %d)",
                    crashed.index,
                    crashed.process.pid,
                    _describe_exit(crashed),
                    crashed.restarts + 1,
                )
                crashed.link.close()
                # At most one restart a second: a worker that keeps crashing
                # must not make the supervisor spin.
                await asyncio.sleep(max(0.0, crashed.started + 1.0 - loop.time()))
                replacement = await _start_worker(arguments, crashed.index, port)
                replacement.restarts = crashed.restarts + 1
                workers[crashed.index] = replacement
                if not await _wait_ready(replacement, stop):
                    print(
                        f"wsserver: error: worker {replacement.index} (pid "
                        f"{replacement.process.pid}) {_describe_exit(replacement)} "
                        "during start-up",
                        file=sys.stderr,
                    )
                    status = 1
                    stop.set()
    finally:
        status = max(status, await _stop_workers(list(workers.values()), config))
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    return status


async def _stop_workers(workers: list[_Worker], config: ServerConfig) -> int:
    """SIGTERM every worker, wait for the graceful shutdowns, kill stragglers."""
    for worker in workers:
        if worker.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                worker.process.send_signal(signal.SIGTERM)
    grace = config.shutdown_timeout + config.close_timeout + _KILL_MARGIN
    exits = [worker.exited for worker in workers]
    _, late = await asyncio.wait(exits, timeout=grace)
    for worker in workers:
        if worker.exited in late:
            logger.error(
                "worker %d (pid %d) did not stop: killing it", worker.index, worker.process.pid
            )
            with contextlib.suppress(ProcessLookupError):
                worker.process.kill()
    if late:
        await asyncio.wait(late)
    status = 0
    for worker in workers:
        worker.ready.cancel()
        worker.link.close()
        if worker.exited.result() != 0:
            status = 1
    await asyncio.gather(*(worker.ready for worker in workers), return_exceptions=True)
    return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
