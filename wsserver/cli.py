"""The command line: ``wsserver run module:attr``.

``attr`` is a ``WebSocketView`` subclass, an ``App`` (or any object with
``handle_http`` and ``handle_websocket``), an ``async def endpoint(ws)``,
or with ``--factory`` a callable returning one of those.  The current
directory is on ``sys.path``, as with uvicorn, so ``examples.echo:EchoView``
works from the repository root.

``--workers N`` (N > 1) hands over to the supervisor
(``wsserver.supervisor``), which runs N copies of this command on one port.

Several workers share nothing in memory: what one worker's channel manager
broadcasts reaches another's connections only through Redis.  When an
application uses the in-process channel backend with ``--workers`` > 1, the
channel manager's start-up check says so.  ``--channels-backend URL``
(``redis://host:port/db``) sets ``WSSERVER_CHANNELS_BACKEND`` before the
application is imported, so that every ``ChannelManager()`` built without an
explicit backend uses it.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import math
import os
import ssl
import sys
from collections.abc import Coroutine, Sequence
from functools import partial
from typing import Any

from . import __version__
from .protocol import DeflateSettings, ProtocolSettings
from .server import OriginPolicy, ServerConfig, as_app, serve
from .supervisor import WORKER_ENV, WORKER_FD_ENV, run_supervisor, serve_worker, worker_link

__all__ = [
    "WORKER_ENV",
    "WORKER_FD_ENV",
    "ImportFromStringError",
    "build_config",
    "import_from_string",
    "main",
]

logger = logging.getLogger("wsserver")


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
    )


def _worker_command(arguments: Sequence[str], port: int) -> list[str]:
    """This command again, as one worker on ``port`` (see ``wsserver.supervisor``)."""
    return [
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
    ]


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
    link = worker_link()
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
    if args.workers > 1:
        return run_supervisor(app, config, args.workers, partial(_worker_command, arguments))
    if link is not None:
        run: Coroutine[Any, Any, None] = serve_worker(app, config, link)
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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
