"""Build configuration that pyproject.toml cannot express: compiled extensions.

Everything else about the package lives in pyproject.toml.  Two kinds of
extension, both optional, both built from sources that stay the only source:

* ``wsserver.protocol._speedups``, the C accelerator for masking.  It is
  ``optional``: where no C compiler (or no Python headers) is available, the
  build prints a warning and goes on without it, and wsserver falls back to
  pure Python (``wsserver.protocol.masking``).

* The sans-I/O core, ``wsserver/protocol/**.py``, compiled ahead of time by
  mypyc from the same Python source (issue 16: the per-message cost).  The
  ``.py`` files are installed beside the compiled modules either way.

``WSSERVER_COMPILE`` chooses whether mypyc runs (docs/development.md):

* unset or ``auto``: compile for a wheel or a regular ``pip install .``;
  *not* for an editable install (``pip install -e .``), whose in-place
  compiled modules would shadow a developer's later edits to the ``.py``
  files;
* ``1``: compile, also in place for an editable install (then
  ``wsserver.protocol`` refuses to import a compiled module older than its
  ``.py``: see ``wsserver.protocol.build_info``);
* ``0``: never compile: the pure-Python build.

Without a C compiler, or when mypyc is not installed, the build falls back to
pure Python and still installs, with a warning.
"""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig
from pathlib import Path
from typing import Any

from setuptools import Extension, setup

COMPILE_VARIABLE = "WSSERVER_COMPILE"

#: The protocol modules mypyc compiles: all of them but these.
#: ``__init__.py`` (re-exports only; it runs the stale-module check, so it
#: must never be stale itself), ``build_info.py`` (that check, and the answer
#: to "is the core compiled?", which a compiled copy could not give about an
#: edited tree), ``masking.py`` (its hot functions are replaced by the C
#: accelerator in any build that has a compiler, and its pure fallbacks take
#: any bytes-like object, which compiled type checks would narrow to the
#: declared ``bytes | bytearray | memoryview``).  ``extensions/__init__.py``
#: is empty.
NOT_COMPILED = {
    "wsserver/protocol/__init__.py",
    "wsserver/protocol/build_info.py",
    "wsserver/protocol/masking.py",
    "wsserver/protocol/extensions/__init__.py",
}


def _warn(message: str) -> None:
    print(f"wsserver setup.py: {message}", file=sys.stderr)


def _compiled_sources() -> list[str]:
    here = Path(__file__).parent
    return sorted(
        str(path.relative_to(here))
        for path in (here / "wsserver" / "protocol").rglob("*.py")
        if str(path.relative_to(here)) not in NOT_COMPILED
    )


#: The setup.py commands that build extensions; the others (metadata,
#: sdist) need no mypyc.
_BUILDING_COMMANDS = {
    "bdist_wheel",
    "build",
    "build_ext",
    "develop",
    "editable_wheel",
    "install",
}


def _have_c_compiler() -> bool:
    compiler = (sysconfig.get_config_var("CC") or "cc").split()[0]
    return shutil.which(compiler) is not None


def _mypyc_extensions() -> list[Any]:
    choice = os.environ.get(COMPILE_VARIABLE, "auto").strip().lower() or "auto"
    if choice not in ("auto", "0", "1"):
        _warn(f"{COMPILE_VARIABLE}={choice!r} is not one of auto, 0, 1: taken as auto")
        choice = "auto"
    if choice == "0":
        return []
    # pip asks for metadata first (``egg_info``, ``dist_info``): no command
    # of that step builds an extension, so mypyc (whose type check of the
    # core needs h11, absent from an isolated build environment) is not run.
    if not any(arg in _BUILDING_COMMANDS for arg in sys.argv):
        return []
    # setuptools' PEP 660 backend runs this file with the ``editable_wheel``
    # command; ``python setup.py develop`` is the legacy editable install.
    editable = any(arg in ("editable_wheel", "develop") for arg in sys.argv)
    if choice == "auto" and editable:
        _warn(
            "editable install: the protocol core stays pure Python "
            f"({COMPILE_VARIABLE}=1 compiles it in place)"
        )
        return []
    if not _have_c_compiler():
        _warn("no C compiler found: the protocol core stays pure Python")
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:
        _warn("mypyc is not installed: the protocol core stays pure Python")
        return []
    try:
        extensions: list[Any] = _mypycify(mypycify)
    except (Exception, SystemExit) as error:  # mypyc exits on a type error
        _warn(
            f"mypyc could not compile the protocol core ({error!r}; in an isolated "
            "build environment the core's dependencies, h11 first, are missing: "
            "scripts/build_compiled builds without isolation): it stays pure Python"
        )
        return []
    return extensions


def _mypycify(mypycify: Any) -> list[Any]:
    extensions: list[Any] = mypycify(
        _compiled_sources(),
        opt_level="3",
        # One shared library for the whole core, so that calls between its
        # modules stay native; named rather than hashed, and dotted so that
        # it lands inside the package (wsserver/protocol/_core__mypyc.*.so),
        # where an editable install's finder also finds it, not at the top
        # level of site-packages or of the checkout.
        group_name="wsserver.protocol._core",
    )
    return extensions


setup(
    ext_modules=[
        Extension(
            "wsserver.protocol._speedups",
            sources=["wsserver/protocol/_speedups.c"],
            optional=True,
        ),
        *_mypyc_extensions(),
    ]
)
