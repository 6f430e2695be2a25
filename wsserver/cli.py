"""The command line: ``wsserver run module:attr``.

``attr`` is a ``WebSocketView`` subclass, an ``App`` (or any object with
``handle_http`` and ``handle_websocket``), an ``async def endpoint(ws)``,
an ASGI 3 application (Starlette, FastAPI, Lilya: ``--interface`` says
which kind, detected by default), or with ``--factory`` a callable
returning one of those.  The current
directory is on ``sys.path``, as with uvicorn, so ``examples.echo:EchoView``
works from the repository root.

Every setting's option is declared once, next to the setting, in its
dataclass field's metadata (``wsserver.server.config.cli_option``; the
protocol core writes the same plain mapping out): ``ServerConfig`` and the
settings dataclasses it holds (``ProtocolSettings``, ``DeflateSettings``)
are walked to add the options to the parser and, from the parsed
arguments, to build the settings.  Only what is not one setting is written
here: what to serve (``target``, ``--factory``, ``--path``), TLS
(``--ssl-certfile`` and ``--ssl-keyfile`` make one ``ssl_context``) and the
process (``--loop``, ``--workers``, ``--log-level``).  Plugins add their own
options through entry points (``wsserver.server.plugin_options``); this
module knows none of them by name.

``--workers N`` (N > 1) hands over to the supervisor
(``wsserver.supervisor``), which runs N copies of this command on one port.
``--reload`` (or any ``--reload-*`` option) hands over to the reloader
(``wsserver.reloader``), which runs one copy and restarts it when watched
files change; it never imports the application itself, and cannot be
combined with ``--workers`` > 1.

Several workers share nothing in memory: what one worker's channel manager
broadcasts reaches another's connections only through Redis.  When an
application uses the in-process channel backend with ``--workers`` > 1, the
channel manager's start-up check says so.  Its ``--channels-backend URL``
(``redis://host:port/db``), a plugin option, sets
``WSSERVER_CHANNELS_BACKEND`` before the application is imported, so that
every ``ChannelManager()`` built without an explicit backend uses it.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import importlib
import json
import logging
import math
import os
import ssl
import sys
import types
import typing
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

from . import __version__
from .protocol import LocalProtocolError
from .reloader import DEFAULT_EXCLUDES, DEFAULT_INCLUDES, ReloadSettings, run_reloader
from .server import ServerConfig, as_app, serve
from .server.app import Application
from .server.asgi import ASGIApp, is_asgi_app
from .server.asgi.app import LIFESPAN_MODES
from .server.config import CLI_OPTION
from .server.logformat import JsonFormatter
from .server.plugin_options import EnvironmentOption, plugin_options
from .server.startup import ApplicationStartupError
from .supervisor import WORKER_ENV, WORKER_FD_ENV, run_supervisor, serve_worker, worker_link

__all__ = [
    "WORKER_ENV",
    "WORKER_FD_ENV",
    "ImportFromStringError",
    "build_config",
    "import_from_string",
    "load_app",
    "main",
]

logger = logging.getLogger("wsserver")

_T = TypeVar("_T")


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


# ---------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------


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


def _positive_number_or_none(text: str) -> float | None:
    if text.lower() in ("none", "off"):
        return None
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("must be a positive number, or 'none'") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError("must be a positive number, or 'none'")
    return value


def _count_or_none(text: str) -> int | None:
    if text.lower() in ("none", "off"):
        return None
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("must be a whole number >= 1, or 'none'") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be a whole number >= 1, or 'none'")
    return value


def _workers(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("must be a whole number >= 1") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be a whole number >= 1")
    return value


#: What argparse gets for each option kind (``OptionKind``): a ``type`` that
#: parses one value, or an ``action`` for the on/off kinds.
_KINDS: dict[str, dict[str, object]] = {
    "text": {},
    "int": {"type": int},
    "seconds": {"type": _positive_float},
    "seconds_or_none": {"type": _positive_float_or_none},
    "number_or_none": {"type": _positive_number_or_none},
    "count_or_none": {"type": _count_or_none},
    "flag": {"action": "store_true"},
    "switch": {"action": argparse.BooleanOptionalAction},
}
_OPTION_KEYS = frozenset({"flags", "kind", "help", "metavar", "choices", "repeat", "convert"})


# ---------------------------------------------------------------------------
# Options from the settings dataclasses' field metadata
# ---------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class _Option:
    """One setting's command-line option, read from its field's metadata."""

    flags: tuple[str, ...]
    kind: str
    default: object
    help: str | None = None
    metavar: str | None = None
    choices: tuple[str, ...] | None = None
    repeat: bool = False
    convert: Callable[[Any], object] | None = None

    @property
    def dest(self) -> str:
        """The parsed attribute: argparse's name for it (``--ws-max-size`` -> ``ws_max_size``)."""
        long = next((flag for flag in self.flags if flag.startswith("--")), self.flags[0])
        return long.lstrip("-").replace("-", "_")

    def add_to(self, parser: argparse.ArgumentParser) -> None:
        settings: dict[str, Any] = dict(_KINDS[self.kind])
        if self.repeat:
            # No default: the values given, else the setting's own default.
            settings.update(action="append", default=None)
        else:
            settings["default"] = self.default
        for name in ("help", "metavar", "choices"):
            if getattr(self, name) is not None:
                settings[name] = getattr(self, name)
        parser.add_argument(*self.flags, dest=self.dest, **settings)


@dataclass(frozen=True)
class _Setting:
    """A field of a settings dataclass that the command line sets.

    ``option`` is its own option; ``section`` the settings dataclass it
    holds, whose fields have options of their own (an optional section's
    ``option`` is then the switch that turns it off).
    """

    name: str
    option: _Option | None
    section: type | None


def _settings(cls: type) -> list[_Setting]:
    """The fields of the settings dataclass ``cls`` that have options, in order."""
    hints = typing.get_type_hints(cls)
    found = []
    for field in dataclasses.fields(cls):
        section = _section_type(hints[field.name])
        if section is not None and not _settings(section):
            section = None
        option = _read_option(cls, field, section)
        if option is not None or section is not None:
            found.append(_Setting(field.name, option, section))
    return found


def _section_type(hint: object) -> type | None:
    """The settings dataclass a field holds (``X`` or ``X | None``), if any."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        held = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        if len(held) != 1:
            return None
        hint = held[0]
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return hint
    return None


def _read_option(cls: type, field: dataclasses.Field[Any], section: type | None) -> _Option | None:
    """The option in ``field``'s metadata; a ``TypeError`` names a bad declaration."""
    declared = field.metadata.get(CLI_OPTION)
    if declared is None:
        return None
    where = f"{cls.__name__}.{field.name}"
    if not isinstance(declared, Mapping):
        raise TypeError(f"{where}: {CLI_OPTION!r} metadata must be a mapping")
    unknown = set(declared) - _OPTION_KEYS
    flags = declared.get("flags")
    kind = declared.get("kind", "text")
    if unknown:
        raise TypeError(f"{where}: unknown {CLI_OPTION!r} metadata {sorted(unknown)}")
    if not (isinstance(flags, tuple) and flags and all(str(f).startswith("-") for f in flags)):
        raise TypeError(f"{where}: 'flags' must be a tuple of option names such as '--name'")
    if kind not in _KINDS:
        raise TypeError(f"{where}: unknown kind {kind!r}, not one of {sorted(_KINDS)}")
    if field.default is not dataclasses.MISSING:
        default: object = field.default
    elif field.default_factory is not dataclasses.MISSING:
        default = field.default_factory()
    else:
        raise TypeError(f"{where}: a setting with an option needs a default")
    if section is not None:
        if kind != "switch":
            raise TypeError(f"{where}: a section of settings takes only a 'switch' option")
        default = default is not None
    elif kind == "flag" and default is not False:
        raise TypeError(f"{where}: a 'flag' option is for a setting off by default")
    choices = declared.get("choices")
    return _Option(
        flags=flags,
        kind=kind,
        default=default,
        help=declared.get("help"),
        metavar=declared.get("metavar"),
        choices=None if choices is None else tuple(choices),
        repeat=bool(declared.get("repeat", False)),
        convert=declared.get("convert"),
    )


def _add_options(parser: argparse.ArgumentParser, cls: type) -> None:
    """Add the options of the settings dataclass ``cls`` (and of its sections)."""
    for setting in _settings(cls):
        if setting.option is not None:
            setting.option.add_to(parser)
        if setting.section is not None:
            _add_options(parser, setting.section)


def _from_arguments(cls: type[_T], args: argparse.Namespace, **given: object) -> _T:
    """An instance of the settings dataclass ``cls`` from parsed arguments.

    ``given`` are values the options do not provide; settings without an
    option keep their defaults.
    """
    values = dict(given)
    for setting in _settings(cls):
        option = setting.option
        value = getattr(args, option.dest) if option is not None else None
        if setting.section is not None:
            if option is None or value:
                values[setting.name] = _from_arguments(setting.section, args)
            else:
                values[setting.name] = None  # switched off
        elif option is not None and not (option.repeat and value is None):
            if option.convert is not None and value is not None:
                value = option.convert(value)
            values[setting.name] = value
    return cls(**values)


# ---------------------------------------------------------------------------
# The parser and the configuration
# ---------------------------------------------------------------------------


def _parser(options: Sequence[EnvironmentOption] | None = None) -> argparse.ArgumentParser:
    """The parser; ``options``: the plugins' options (default: every installed one)."""
    parser = argparse.ArgumentParser(prog="wsserver", description="A WebSocket server.")
    parser.add_argument("--version", action="version", version=f"wsserver {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="serve an application")
    # What to serve.
    run.add_argument("target", help="module:attr, e.g. examples.echo:EchoView")
    run.add_argument("--factory", action="store_true", help="attr is a factory to call")
    run.add_argument("--path", default="/", help="where a lone view is mounted")
    run.add_argument(
        "--interface",
        choices=("auto", "asgi", "native"),
        default="auto",
        help="what the target is: an ASGI 3 application, a native one, or detect it (default)",
    )
    run.add_argument(
        "--lifespan",
        choices=LIFESPAN_MODES,
        default="auto",
        help="an ASGI application's lifespan: run it if spoken (auto), require it (on), skip it",
    )
    run.add_argument(
        "--app-dir",
        default="",
        metavar="DIR",
        help="look for the module in DIR (default: the current directory)",
    )
    run.add_argument(
        "--env-file",
        default=None,
        metavar="FILE",
        help="set environment variables from a .env file before the import (python-dotenv)",
    )
    # How: every setting with an option, from its field's metadata.
    _add_options(run, ServerConfig)
    # Several options, one setting (ssl_context): see build_config.
    run.add_argument("--ssl-certfile", default=None, metavar="FILE")
    run.add_argument("--ssl-keyfile", default=None, metavar="FILE")
    run.add_argument("--ssl-keyfile-password", default=None, metavar="PASSWORD")
    run.add_argument(
        "--ssl-ca-certs", default=None, metavar="FILE", help="CA certificates to verify clients"
    )
    run.add_argument(
        "--ssl-cert-reqs",
        type=int,
        choices=(0, 1, 2),
        default=int(ssl.CERT_NONE),
        metavar="N",
        help="client certificates: 0 none, 1 optional, 2 required (ssl.CERT_*; default 0)",
    )
    # The process.
    run.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    run.add_argument(
        "--workers",
        type=_workers,
        default=1,
        help="worker processes sharing the port with SO_REUSEPORT (default 1: no supervisor)",
    )
    run.add_argument(
        "--reload",
        action="store_true",
        help="restart the server when files change (development; needs watchfiles)",
    )
    run.add_argument(
        "--reload-dir",
        action="append",
        default=None,
        metavar="DIR",
        help="watch DIR, recursively (repeatable; implies --reload; default: the app dir)",
    )
    run.add_argument(
        "--reload-include",
        action="append",
        default=None,
        metavar="GLOB",
        help=f"restart on files matching GLOB (repeatable; implies --reload; "
        f"default {' '.join(DEFAULT_INCLUDES)})",
    )
    run.add_argument(
        "--reload-exclude",
        action="append",
        default=None,
        metavar="GLOB",
        help=f"never restart on files matching GLOB (repeatable; implies --reload; "
        f"default {' '.join(DEFAULT_EXCLUDES)})",
    )
    run.add_argument(
        "--log-level",
        choices=("critical", "error", "warning", "info", "debug", "trace"),
        default=None,
        help="the wsserver loggers' level (default info; trace is debug)",
    )
    run.add_argument(
        "--log-config",
        default=None,
        metavar="FILE",
        help="logging configuration: .json or .yaml (dictConfig), else .ini (fileConfig)",
    )
    run.add_argument(
        "--log-format",
        choices=("text", "json"),
        default="text",
        help="text lines, or one JSON object per line with the access and connection "
        "fields (default text; --log-config overrides it)",
    )
    # What plugins add (wsserver.server.plugin_options).
    for option in plugin_options() if options is None else options:
        run.add_argument(option.flag, default=None, metavar=option.metavar, help=option.help)
    return parser


def load_app(
    target: object, interface: str = "auto", *, path: str = "/", lifespan: str = "auto"
) -> Application:
    """The application to serve for ``target`` and ``--interface``.

    ``auto`` serves an ASGI 3 application (``is_asgi_app``) through
    ``ASGIApp`` and anything else natively (``as_app``).

    Raises:
        TypeError: ``target`` is not what ``interface`` says.
    """
    if interface == "asgi" or (interface == "auto" and is_asgi_app(target)):
        if not callable(target):
            raise TypeError(f"{target!r} is not an ASGI application: it is not callable")
        return ASGIApp(target, lifespan=lifespan)
    try:
        return as_app(target, path=path)
    except TypeError as error:
        if interface == "auto":
            raise TypeError(f"{error}, nor an ASGI 3 application") from None
        raise


def build_config(args: argparse.Namespace) -> ServerConfig:
    """Turn parsed arguments into a ``ServerConfig``.

    Raises:
        ValueError, LocalProtocolError: a setting out of range.
        OSError, ssl.SSLError: the TLS certificate or key cannot be loaded.
    """
    ssl_context = None
    if args.ssl_certfile:
        ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ssl_context.load_cert_chain(
            args.ssl_certfile, args.ssl_keyfile, password=args.ssl_keyfile_password
        )
        if args.ssl_ca_certs:
            ssl_context.load_verify_locations(args.ssl_ca_certs)
        ssl_context.verify_mode = ssl.VerifyMode(args.ssl_cert_reqs)
    elif args.ssl_keyfile or args.ssl_ca_certs or args.ssl_keyfile_password:
        raise ValueError(
            "--ssl-keyfile, --ssl-keyfile-password and --ssl-ca-certs need --ssl-certfile"
        )
    return _from_arguments(ServerConfig, args, ssl_context=ssl_context)


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


#: ``--log-level`` names as uvicorn's; ``trace`` (uvicorn's own level) is debug here.
_LOG_LEVELS = {
    "critical": logging.CRITICAL,
    "error": logging.ERROR,
    "warning": logging.WARNING,
    "info": logging.INFO,
    "debug": logging.DEBUG,
    "trace": logging.DEBUG,
}


def load_log_config(path: str) -> None:
    """Configure logging from a file, as uvicorn's ``--log-config``.

    ``.json``, ``.yaml`` and ``.yml`` hold a ``logging.config.dictConfig``
    dictionary (YAML needs PyYAML); any other file is read by
    ``logging.config.fileConfig`` (the INI format), keeping the loggers that
    exist already.

    Raises:
        ValueError: the file cannot be read or does not configure logging.
    """
    import logging.config

    yaml: Any = None
    if path.endswith((".yaml", ".yml")):
        try:
            import yaml
        except ImportError:
            raise ValueError(
                "a YAML logging configuration needs PyYAML: pip install 'wsserver[standard]'"
            ) from None
    try:
        if path.endswith(".json"):
            with open(path, encoding="utf-8") as file:
                logging.config.dictConfig(json.load(file))
        elif yaml is not None:
            with open(path, encoding="utf-8") as file:
                logging.config.dictConfig(yaml.safe_load(file))
        else:
            logging.config.fileConfig(path, disable_existing_loggers=False)
    except Exception as error:
        raise ValueError(f"{path}: {type(error).__name__}: {error}") from error


def load_env_file(path: str) -> None:
    """Set environment variables from a ``.env`` file (python-dotenv), keeping those set.

    Raises:
        ValueError: python-dotenv is missing or the file cannot be read.
    """
    try:
        import dotenv
    except ImportError:
        raise ValueError(
            "--env-file needs python-dotenv: pip install 'wsserver[standard]'"
        ) from None
    if not os.path.isfile(path):
        raise ValueError(f"{path}: no such file")
    dotenv.load_dotenv(path, override=False)


def reload_settings(args: argparse.Namespace, app_dir: str) -> ReloadSettings | None:
    """What ``--reload`` and the ``--reload-*`` options ask for; ``None``: no reloading.

    Raises:
        ValueError: a directory to watch is not one.
    """
    if not (args.reload or args.reload_dir or args.reload_include or args.reload_exclude):
        return None
    dirs = tuple(os.path.abspath(d) for d in args.reload_dir or [app_dir])
    includes = (*DEFAULT_INCLUDES, *(args.reload_include or ()))
    # Including a glob that is excluded by default takes it off the excludes
    # (as uvicorn does): --reload-include ".*" watches hidden files.
    excludes = tuple(
        g for g in (*DEFAULT_EXCLUDES, *(args.reload_exclude or ())) if g not in includes[1:]
    )
    return ReloadSettings(dirs=tuple(dict.fromkeys(dirs)), includes=includes, excludes=excludes)


def _configure_logging(
    level: str | None,
    worker: str | None,
    workers: int,
    log_config: str | None = None,
    log_format: str = "text",
    *,
    reloader: bool = False,
) -> None:
    if log_config is not None:
        load_log_config(log_config)
        if level is not None:
            logging.getLogger("wsserver").setLevel(_LOG_LEVELS[level])
        return
    level = "info" if level is None else level
    if log_format == "json":
        handler = logging.StreamHandler()
        handler.setFormatter(JsonFormatter(worker=worker))
        logging.basicConfig(level=_LOG_LEVELS[level], handlers=[handler])
        return
    if worker is not None:
        fmt = f"%(asctime)s %(levelname)s [worker {worker} %(process)d] %(name)s: %(message)s"
    elif workers > 1:
        fmt = "%(asctime)s %(levelname)s [supervisor %(process)d] %(name)s: %(message)s"
    elif reloader:
        fmt = "%(asctime)s %(levelname)s [reloader %(process)d] %(name)s: %(message)s"
    else:
        fmt = "%(asctime)s %(levelname)s %(name)s: %(message)s"
    logging.basicConfig(level=_LOG_LEVELS[level], format=fmt)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``wsserver`` command; returns the exit status."""
    options = plugin_options()
    parser = _parser(options)
    arguments = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(arguments)
    worker = os.environ.get(WORKER_ENV)
    link = worker_link()
    app_dir = os.path.abspath(args.app_dir) if args.app_dir else os.getcwd()
    try:
        # A reloader's child is a worker (it has the link): it serves.
        reload = None if link is not None else reload_settings(args, app_dir)
    except ValueError as error:
        print(f"wsserver: error: {error}", file=sys.stderr)
        return 2
    if reload is not None and args.workers > 1:
        print(
            "wsserver: error: --reload runs one server process: it cannot be combined "
            "with --workers",
            file=sys.stderr,
        )
        return 2
    try:
        _configure_logging(
            args.log_level,
            worker,
            args.workers,
            args.log_config,
            args.log_format,
            reloader=reload is not None,
        )
        if args.env_file is not None:
            load_env_file(args.env_file)
    except ValueError as error:
        print(f"wsserver: error: {error}", file=sys.stderr)
        return 2
    if reload is not None:
        # The reloader never imports the application: its children do.
        try:
            config = build_config(args)
        except (ValueError, LocalProtocolError, OSError, ssl.SSLError) as error:
            print(f"wsserver: error: {error}", file=sys.stderr)
            return 2
        return run_reloader(config, reload, partial(_worker_command, arguments))
    if app_dir not in sys.path:
        sys.path.insert(0, app_dir)
    for option in options:
        value = getattr(args, option.dest)
        if value is None:
            continue
        if option.check is not None:
            try:
                option.check(value)
            except ValueError as error:
                print(f"wsserver: error: {option.flag}: {error}", file=sys.stderr)
                return 2
        # Before the import: plugin objects built at import time read it.
        os.environ[option.env_var] = value
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
        app = load_app(target, args.interface, path=args.path, lifespan=args.lifespan)
    except (ImportFromStringError, TypeError) as error:
        print(f"wsserver: error: {error}", file=sys.stderr)
        return 2
    try:
        config = build_config(args)
    except (ValueError, LocalProtocolError, OSError, ssl.SSLError) as error:
        print(f"wsserver: error: {error}", file=sys.stderr)
        return 2
    if isinstance(app, ASGIApp):
        app.shutdown_timeout = config.shutdown_timeout
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
    except ApplicationStartupError as error:
        print(f"wsserver: error: {error}", file=sys.stderr)
        return 3
    except OSError as error:
        # Binding failed (port in use, no permission, bad address): nothing
        # was served.  Connection-level errors never reach here.
        where = config.uds if config.uds is not None else f"{config.host}:{config.port}"
        print(f"wsserver: error: cannot listen on {where}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
