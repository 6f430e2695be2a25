"""Whether the running protocol core is compiled, and a guard against stale builds.

The sans-I/O core (``wsserver/protocol``) can be compiled ahead of time by
mypyc from its own Python source (setup.py, ``WSSERVER_COMPILE``); where no
C compiler is present, or when the build is told not to, it runs as plain
Python.  Both builds behave the same; only speed differs.  This module tells
which one is running (:func:`compiled`, :func:`describe`: the server logs it
at startup and the benchmark records it), and it is never compiled itself, so
that it can inspect the others.

Stale builds.  A compiled module is imported in preference to the ``.py``
beside it.  In a source tree (an editable install with ``WSSERVER_COMPILE=1``,
or ``python setup.py build_ext --inplace``) an edit to the ``.py`` after the
build would be silently ignored; :func:`check_not_stale` (run by
``wsserver.protocol`` before it imports anything else) refuses that with an
:class:`ImportError` that says how to rebuild.  Installed wheels are not
checked: their files are written together, in any order, and nobody edits
them.
"""

from __future__ import annotations

import importlib.machinery
import os
import sys
from pathlib import Path

#: The package directory the core lives in.
PACKAGE_DIR = Path(__file__).resolve().parent

#: The modules that are never compiled (setup.py's ``NOT_COMPILED``), and the
#: hand-written C accelerator, which is not a mypyc build.
_NEVER_COMPILED = frozenset({"__init__", "build_info", "masking", "_speedups"})

#: The module whose form answers "is the core compiled?": the connection
#: state machine, the hot path of every message.
_PROBE_MODULE = "wsserver.protocol.connection"


def compiled() -> bool:
    """Whether the protocol core running in this process was compiled by mypyc."""
    module = sys.modules.get(_PROBE_MODULE)
    if module is None:  # pragma: no cover - imported by wsserver.protocol itself
        import wsserver.protocol.connection as module
    path = getattr(module, "__file__", None) or ""
    return path.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))


def describe() -> str:
    """One line for logs and the benchmark's machine table."""
    if compiled():
        return "compiled (mypyc)"
    return "pure Python"


def _compiled_files(directory: Path) -> list[tuple[Path, Path]]:
    """``(compiled, source)`` pairs of the compiled modules in ``directory``."""
    pairs: list[tuple[Path, Path]] = []
    suffixes = importlib.machinery.EXTENSION_SUFFIXES
    try:
        entries = list(os.scandir(directory))
    except OSError:  # pragma: no cover - the package's own directory
        return pairs
    for entry in entries:
        for suffix in suffixes:
            if entry.name.endswith(suffix):
                stem = entry.name[: -len(suffix)]
                if stem not in _NEVER_COMPILED:
                    pairs.append((Path(entry.path), directory / f"{stem}.py"))
                break
    return pairs


def stale_modules(package_dir: Path = PACKAGE_DIR) -> list[str]:
    """The compiled modules under ``package_dir`` older than their ``.py`` source."""
    stale: list[str] = []
    for directory in (package_dir, package_dir / "extensions"):
        for binary, source in _compiled_files(directory):
            try:
                if source.stat().st_mtime > binary.stat().st_mtime:
                    stale.append(str(source))
            except FileNotFoundError:
                continue
    return sorted(stale)


def in_source_tree(package_dir: Path = PACKAGE_DIR) -> bool:
    """Whether ``package_dir`` is the checkout's own folder (not an installed copy)."""
    return (package_dir.parent.parent / "setup.py").is_file()


def check_not_stale(package_dir: Path = PACKAGE_DIR) -> None:
    """Refuse compiled modules older than their source, in a source tree."""
    if not in_source_tree(package_dir):
        return
    stale = stale_modules(package_dir)
    if stale:
        raise ImportError(
            "wsserver.protocol: these modules were edited after they were compiled, "
            f"and the stale compiled copies would run instead: {', '.join(stale)}. "
            "Rebuild them (WSSERVER_COMPILE=1 pip install --no-build-isolation -e .) "
            "or delete them to run pure Python (find wsserver/protocol -name "
            "'*.cpython-*.so' ! -name '_speedups.*' -delete). See docs/development.md."
        )


check_not_stale()
