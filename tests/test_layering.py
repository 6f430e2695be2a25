"""The package's layers import only downwards.

::

    wsserver.cli  ->  wsserver.plugins     ->  wsserver.server  ->  wsserver.protocol  ->  stdlib
                  ->  wsserver.supervisor  ->
                  ->  wsserver.reloader  ->  wsserver.supervisor
                  ->  wsserver.client  ------------------------>  wsserver.protocol

* ``wsserver.protocol`` (the sans-I/O core) imports only the standard library,
  ``h11`` and ``wsserver.protocol.*``; and of the standard library never a
  module that does I/O or keeps time or threads (``asyncio``, ``socket``,
  ``selectors``, ``threading``, ``time``, ``ssl`` and their kin below).
* ``wsserver.server`` never imports ``wsserver.plugins``, ``wsserver.supervisor``
  or ``wsserver.cli``.
* ``wsserver.client`` (the WebSocket client) sits at the server's level,
  beside it: it imports ``wsserver.protocol`` and the standard library, never
  ``wsserver.server`` nor anything above; the server does not import it.
* ``wsserver.plugins`` and ``wsserver.supervisor`` (the ``--workers`` processes)
  sit side by side: neither imports the other, nor ``wsserver.cli``.
* ``wsserver.reloader`` (``--reload``) runs its child with the supervisor's
  helpers, above it: it imports neither ``wsserver.plugins`` nor
  ``wsserver.cli``, and nothing below it imports it.
* ``wsserver.testing`` (tools for tests) sits above the server and the
  client, beside the plugins: the test client (``TestClient``) runs the real
  server against the real client role, so it imports ``wsserver.server``,
  ``wsserver.client`` and ``wsserver.protocol``, never ``wsserver.plugins``
  nor anything above.  Two of its modules have rules of their own:
  ``wsserver.testing.wire`` (the client's bytes) imports only the standard
  library, so that it stays an independent reference for the protocol core;
  ``wsserver.testing.plugins`` (the plugins' helpers) may import
  ``wsserver.plugins`` too, which is why the package does not import it.
  Nothing else in ``wsserver`` imports ``wsserver.testing`` (test tools are
  no part of the server).

The check reads the source with :mod:`ast`, so it sees every import statement
wherever it is: at module level, inside functions, under ``if TYPE_CHECKING:``
or ``try:``.  Relative imports are resolved against the importing module, and
``importlib.import_module("...")`` / ``__import__("...")`` with a literal name
count as imports too.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "wsserver"
PACKAGE_DIR = ROOT / PACKAGE

PROTOCOL = f"{PACKAGE}.protocol"
SERVER = f"{PACKAGE}.server"
PLUGINS = f"{PACKAGE}.plugins"
SUPERVISOR = f"{PACKAGE}.supervisor"
RELOADER = f"{PACKAGE}.reloader"
CLI = f"{PACKAGE}.cli"
CLIENT = f"{PACKAGE}.client"
TESTING = f"{PACKAGE}.testing"
TESTING_WIRE = f"{TESTING}.wire"
TESTING_PLUGINS = f"{TESTING}.plugins"
MAIN = f"{PACKAGE}.__main__"  # runs the CLI: as high as the CLI itself

STDLIB = frozenset(sys.stdlib_module_names)
#: The third-party distributions the protocol core may import.
PROTOCOL_THIRD_PARTY = frozenset({"h11"})
#: Standard-library modules the protocol core must not import: I/O, clocks,
#: threads and processes belong to the layers above (the private ``_x`` twins
#: too, so that the rule cannot be side-stepped).
PROTOCOL_FORBIDDEN_STDLIB = frozenset(
    {
        "asyncio",
        "socket",
        "selectors",
        "threading",
        "time",
        "ssl",
        "_asyncio",
        "_socket",
        "_ssl",
        "_thread",
        "concurrent",
        "multiprocessing",
        "socketserver",
        "subprocess",
    }
)
#: Layers above each layer: importing any of them (or below them) is an error.
FORBIDDEN_UPWARDS: dict[str, tuple[str, ...]] = {
    SERVER: (PLUGINS, SUPERVISOR, RELOADER, CLI, MAIN, CLIENT),
    CLIENT: (SERVER, PLUGINS, SUPERVISOR, RELOADER, CLI, MAIN),
    PLUGINS: (SUPERVISOR, RELOADER, CLI, MAIN),
    SUPERVISOR: (PLUGINS, RELOADER, CLI, MAIN),
    RELOADER: (PLUGINS, CLI, MAIN),
    # The plugins' helpers first: the longest prefix of a module wins.
    TESTING_PLUGINS: (SUPERVISOR, RELOADER, CLI, MAIN),
    TESTING: (PLUGINS, SUPERVISOR, RELOADER, CLI, MAIN),
}


@dataclass(frozen=True)
class Violation:
    path: str
    line: int
    module: str
    target: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.module} imports {self.target}: {self.reason}"


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def _top(name: str) -> str:
    return name.partition(".")[0]


def _resolve_relative(module: str, is_package: bool, level: int, name: str | None) -> str | None:
    """The absolute name of ``from <level dots><name> import ...`` in ``module``."""
    parts = module.split(".")
    if not is_package:
        parts = parts[:-1]  # a module's imports are relative to its package
    if level - 1 >= len(parts):
        return None  # beyond the top-level package
    base = parts[: len(parts) - (level - 1)]
    return ".".join([*base, name] if name else base)


def imported_names(module: str, source: str, *, is_package: bool) -> list[tuple[int, str]]:
    """Every ``(line, absolute module name)`` that ``source`` imports.

    For ``from X import a`` inside this package the target is ``X.a``, since
    ``a`` may be a submodule (``from wsserver import cli``); prefix matching
    makes that right for attributes too.  An unresolvable relative import
    gives the target ``"<beyond top-level package>"``.
    """
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = _resolve_relative(module, is_package, node.level, node.module)
                if base is None:
                    found.append((node.lineno, "<beyond top-level package>"))
                    continue
            else:
                base = node.module or ""
            if _top(base) == PACKAGE:
                found.extend(
                    (node.lineno, base if alias.name == "*" else f"{base}.{alias.name}")
                    for alias in node.names
                )
            else:
                found.append((node.lineno, base))
        elif isinstance(node, ast.Call) and _is_dynamic_import(node.func) and node.args:
            name = node.args[0].value if isinstance(node.args[0], ast.Constant) else None
            if isinstance(name, str) and not name.startswith("."):
                found.append((node.lineno, name))
    return found


def _is_dynamic_import(func: ast.expr) -> bool:
    if isinstance(func, ast.Name):
        return func.id in {"__import__", "import_module"}
    return isinstance(func, ast.Attribute) and func.attr == "import_module"


def check_imports(
    module: str, source: str, *, is_package: bool = False, path: str = "<string>"
) -> list[Violation]:
    """Every layering rule that ``source`` (the code of ``module``) breaks."""
    violations = []
    for line, target in imported_names(module, source, is_package=is_package):
        reason = _judge(module, target)
        if reason is not None:
            violations.append(Violation(path, line, module, target, reason))
    return violations


def _judge(module: str, target: str) -> str | None:
    if target.startswith("<"):
        return "relative import beyond the top-level package"
    if _within(module, TESTING_WIRE):
        top = _top(target)
        if top == PACKAGE:
            return (
                "wsserver.testing.wire is an independent reference: it imports nothing of wsserver"
            )
        if top in STDLIB:
            return None
        return "wsserver.testing.wire imports only the standard library"
    if _within(target, TESTING) and not _within(module, TESTING):
        return "nothing in wsserver imports wsserver.testing (a tool for tests)"
    if _within(module, PROTOCOL):
        top = _top(target)
        if top == PACKAGE:
            if _within(target, PROTOCOL):
                return None
            return "the protocol core may import only wsserver.protocol.* from wsserver"
        if top in PROTOCOL_FORBIDDEN_STDLIB:
            return "the protocol core is sans-I/O: no I/O, clocks, threads or processes"
        if top in STDLIB or top in PROTOCOL_THIRD_PARTY:
            return None
        return "the protocol core may import only the standard library and h11"
    for layer, above in FORBIDDEN_UPWARDS.items():
        if _within(module, layer):
            for upper in above:
                if _within(target, upper):
                    return f"{layer} must not import {upper} (layers import only downwards)"
            return None  # the first (most specific) layer holding the module rules
    return None


def module_name(path: Path) -> tuple[str, bool]:
    """``wsserver/protocol/events.py`` -> ``("wsserver.protocol.events", False)``."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    is_package = parts[-1] == "__init__"
    if is_package:
        parts.pop()
    return ".".join(parts), is_package


SOURCE_FILES = sorted(p for p in PACKAGE_DIR.rglob("*.py") if "__pycache__" not in p.parts)


def _id(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


# ---------------------------------------------------------------------------
# The real check
# ---------------------------------------------------------------------------


def test_the_check_has_something_to_check() -> None:
    protocol = [p for p in SOURCE_FILES if _within(module_name(p)[0], PROTOCOL)]
    assert protocol, f"no modules found under {PACKAGE_DIR / 'protocol'}: is ROOT right?"


@pytest.mark.parametrize("path", SOURCE_FILES, ids=_id)
def test_module_respects_the_layers(path: Path) -> None:
    module, is_package = module_name(path)
    source = path.read_text(encoding="utf-8")
    violations = check_imports(module, source, is_package=is_package, path=_id(path))
    assert not violations, "\n".join(map(str, violations))


# ---------------------------------------------------------------------------
# The checker itself
# ---------------------------------------------------------------------------


def _targets(module: str, source: str, *, is_package: bool = False) -> list[str]:
    return [v.target for v in check_imports(module, source, is_package=is_package)]


@pytest.mark.parametrize(
    ("module", "source", "target"),
    [
        ("wsserver.protocol.frames", "import asyncio", "asyncio"),
        ("wsserver.protocol.frames", "import asyncio.streams", "asyncio.streams"),
        ("wsserver.protocol.frames", "from time import monotonic", "time"),
        ("wsserver.protocol.frames", "import socket, struct", "socket"),
        ("wsserver.protocol.frames", "from concurrent import futures", "concurrent"),
        ("wsserver.protocol.frames", "import wsproto", "wsproto"),
        ("wsserver.protocol.frames", "from wsserver.server import serve", "wsserver.server.serve"),
        ("wsserver.protocol.frames", "from wsserver import server", "wsserver.server"),
        ("wsserver.protocol.frames", "from wsserver import serve", "wsserver.serve"),
        ("wsserver.protocol.frames", "import wsserver.cli", "wsserver.cli"),
        ("wsserver.protocol.frames", "from ..server import websocket", "wsserver.server.websocket"),
        ("wsserver.protocol.frames", "from .. import plugins", "wsserver.plugins"),
        ("wsserver.protocol.extensions.base", "from ...cli import main", "wsserver.cli.main"),
        (
            "wsserver.protocol.frames",
            "def f():\n    import threading\n",
            "threading",
        ),
        (
            "wsserver.protocol.frames",
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import ssl\n",
            "ssl",
        ),
        (
            "wsserver.protocol.frames",
            "import importlib\nimportlib.import_module('selectors')",
            "selectors",
        ),
        ("wsserver.protocol.frames", "__import__('time')", "time"),
        ("wsserver.server.listener", "from wsserver.plugins import view", "wsserver.plugins.view"),
        (
            "wsserver.server.listener",
            "import wsserver.plugins.channels",
            "wsserver.plugins.channels",
        ),
        ("wsserver.server.listener", "from ..cli import main", "wsserver.cli.main"),
        ("wsserver.server.listener", "from .. import cli", "wsserver.cli"),
        ("wsserver.server.listener", "from wsserver import __main__", "wsserver.__main__"),
        ("wsserver.plugins.view.session", "from ...cli import main", "wsserver.cli.main"),
        ("wsserver.plugins.view.session", "from wsserver import cli", "wsserver.cli"),
        ("wsserver.server.server", "from .. import supervisor", "wsserver.supervisor"),
        (
            "wsserver.plugins.channels.manager",
            "from ...supervisor import WORKER_ENV",
            "wsserver.supervisor.WORKER_ENV",
        ),
        ("wsserver.supervisor", "from .cli import main", "wsserver.cli.main"),
        (
            "wsserver.supervisor",
            "from .plugins.channels import managers",
            "wsserver.plugins.channels.managers",
        ),
        ("wsserver.protocol.frames", "from .... import x", "<beyond top-level package>"),
        (
            "wsserver.testing.wire",
            "from wsserver.protocol import masking",
            "wsserver.protocol.masking",
        ),
        (
            "wsserver.testing.wire",
            "from ..protocol.codes import Opcode",
            "wsserver.protocol.codes.Opcode",
        ),
        ("wsserver.testing.wire", "from wsserver import server", "wsserver.server"),
        ("wsserver.testing.wire", "import h11", "h11"),
        ("wsserver.testing.wire", "from ..server import x", "wsserver.server.x"),
        ("wsserver.protocol.frames", "from wsserver.testing import wire", "wsserver.testing.wire"),
        (
            "wsserver.server.connection",
            "from ..testing.wire import client_frame",
            "wsserver.testing.wire.client_frame",
        ),
        ("wsserver.cli", "import wsserver.testing", "wsserver.testing"),
        ("wsserver.testing.client", "from ..plugins import runtime", "wsserver.plugins.runtime"),
        ("wsserver.testing", "from wsserver.plugins.js import x", "wsserver.plugins.js.x"),
        ("wsserver.testing.client", "from ..cli import main", "wsserver.cli.main"),
        ("wsserver.testing.plugins", "from .. import cli", "wsserver.cli"),
        ("wsserver.testing.plugins", "import wsserver.supervisor", "wsserver.supervisor"),
        (
            "wsserver.testing.wire",
            "from .client import TestClient",
            "wsserver.testing.client.TestClient",
        ),
        ("wsserver.testing.wire", "from wsserver.client import connect", "wsserver.client.connect"),
        ("wsserver.plugins.js", "from ..testing import TestClient", "wsserver.testing.TestClient"),
        (
            "wsserver.server.app",
            "from wsserver.testing.client import x",
            "wsserver.testing.client.x",
        ),
        ("wsserver.supervisor", "from . import testing", "wsserver.testing"),
        (
            "wsserver.supervisor",
            "from .reloader import run_reloader",
            "wsserver.reloader.run_reloader",
        ),
        ("wsserver.reloader", "from .cli import main", "wsserver.cli.main"),
        ("wsserver.reloader", "from .plugins import view", "wsserver.plugins.view"),
        ("wsserver.client.connect", "from wsserver.server import serve", "wsserver.server.serve"),
        ("wsserver.client.connect", "from ..server.config import x", "wsserver.server.config.x"),
        ("wsserver.client.connect", "from .. import cli", "wsserver.cli"),
        ("wsserver.client.connect", "from ..plugins import js", "wsserver.plugins.js"),
        ("wsserver.server.connection", "from ..client import connect", "wsserver.client.connect"),
        ("wsserver.client.connect", "from wsserver.testing import wire", "wsserver.testing.wire"),
    ],
)
def test_checker_reports_forbidden_import(module: str, source: str, target: str) -> None:
    assert target in _targets(module, source)


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("wsserver.protocol.frames", "from __future__ import annotations"),
        ("wsserver.protocol.frames", "import struct, zlib, codecs, enum, dataclasses, logging"),
        ("wsserver.protocol.frames", "from collections.abc import Iterator"),
        ("wsserver.protocol.frames", "import h11\nfrom h11 import Request"),
        ("wsserver.protocol.frames", "from . import codes\nfrom .codes import Opcode"),
        ("wsserver.protocol.extensions.base", "from ..frames import Frame"),
        ("wsserver.protocol.frames", "from wsserver.protocol.codes import CloseCode"),
        ("wsserver.protocol.frames", "from wsserver import protocol"),
        ("wsserver.server.listener", "import asyncio, socket, ssl, time"),
        ("wsserver.server.listener", "from ..protocol import connection"),
        ("wsserver.server.listener", "from wsserver.protocol.codes import CloseCode"),
        ("wsserver.plugins.js", "from wsserver.server import WebSocket\nimport asyncio"),
        ("wsserver.plugins.view.session", "from ...server import websocket"),
        ("wsserver.cli", "from wsserver.plugins import view\nfrom .server import serve"),
        ("wsserver.cli", "from .supervisor import run_supervisor"),
        ("wsserver.supervisor", "import asyncio, socket\nfrom .server import Server"),
        ("wsserver.supervisor", "from .server.startup import startup_warnings"),
        ("wsserver.testing.wire", "import base64, hashlib, os\nfrom dataclasses import dataclass"),
        ("wsserver.testing.client", "from .wire import client_frame"),
        ("wsserver.testing.client", "from wsserver.testing.wire import client_frame"),
        ("wsserver.testing.client", "import h11\nfrom wsserver.server import Server"),
        ("wsserver.testing.client", "from ..client import ClientWebSocket"),
        ("wsserver.testing.client", "from ..protocol import ClientConnection"),
        ("wsserver.testing.transport", "import asyncio\nfrom collections import deque"),
        ("wsserver.testing.plugins", "from ..plugins.runtime import encode"),
        ("wsserver.testing.plugins", "from .client import TestClient"),
        ("wsserver.client.connect", "import asyncio, ssl\nfrom wsserver.protocol import State"),
        ("wsserver.client.connect", "from ..protocol.client import ClientConnection"),
        ("wsserver.cli", "from .client import connect"),
    ],
)
def test_checker_allows_downward_import(module: str, source: str) -> None:
    assert _targets(module, source) == []


def test_relative_imports_resolve_from_package_init() -> None:
    # In wsserver/protocol/__init__.py, "." is wsserver.protocol itself.
    assert _targets("wsserver.protocol", "from .codes import Opcode", is_package=True) == []
    assert _targets("wsserver.protocol", "from ..server import x", is_package=True) == [
        "wsserver.server.x"
    ]


def test_violation_names_file_and_line() -> None:
    (violation,) = check_imports(
        "wsserver.protocol.frames", "import struct\n\nimport asyncio\n", path="x.py"
    )
    assert str(violation).startswith("x.py:3: wsserver.protocol.frames imports asyncio: ")
