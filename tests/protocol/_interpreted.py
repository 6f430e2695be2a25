"""The protocol core run from its ``.py`` source, whichever build is installed.

Not a test module.  Some tests count the work of an algorithm by watching
Python run it: the lines it executes (``sys.settrace``), the reads a ``str``
subclass sees.  Code compiled by mypyc (the compiled build, docs/development.md)
runs no Python lines and indexes a ``str`` directly, so those counters see
nothing there.  The algorithm is the source's in both builds, so such tests
count on a copy of ``wsserver/protocol`` loaded from its ``.py`` files as a
package of its own, ``wsserver_protocol_interpreted`` (the core imports
nothing from the rest of wsserver), and time the build under test.
"""

from __future__ import annotations

import functools
import importlib
import shutil
import sys
import tempfile
from pathlib import Path
from types import ModuleType

import wsserver.protocol

NAME = "wsserver_protocol_interpreted"


@functools.cache
def interpreted() -> ModuleType:
    """The interpreted copy of ``wsserver.protocol``, loaded once per process."""
    source = Path(wsserver.protocol.__file__ or "").parent
    root = Path(tempfile.mkdtemp(prefix="wsserver-interpreted-"))
    # Only the .py files: no compiled module, no C accelerator (masking
    # falls back to its pure-Python functions).
    shutil.copytree(source, root / NAME, ignore=shutil.ignore_patterns("*.so", "__pycache__"))
    sys.path.insert(0, str(root))
    try:
        package = importlib.import_module(NAME)
    finally:
        sys.path.remove(str(root))
    return package


def module(name: str) -> ModuleType:
    """``wsserver.protocol.<name>``, interpreted."""
    interpreted()
    return importlib.import_module(f"{NAME}.{name}")
