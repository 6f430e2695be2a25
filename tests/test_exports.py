"""Every name a module of wsserver exports in ``__all__`` exists and imports.

A stale ``__all__`` entry breaks ``from wsserver import *`` and misleads
readers and type checkers; this checks every module and package at once.
"""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import wsserver


def _modules() -> list[str]:
    names = ["wsserver"]
    for info in pkgutil.walk_packages(wsserver.__path__, "wsserver."):
        # __main__ runs the command when imported.
        if info.name.rsplit(".", 1)[-1] != "__main__":
            names.append(info.name)
    return sorted(names)


MODULES = _modules()
PACKAGES = [name for name in MODULES if hasattr(importlib.import_module(name), "__path__")]


def test_the_packages_are_found() -> None:
    assert {"wsserver", "wsserver.protocol", "wsserver.server"} <= set(PACKAGES)


@pytest.mark.parametrize("package", PACKAGES)
def test_every_package_declares_all(package: str) -> None:
    exported = getattr(importlib.import_module(package), "__all__", None)
    assert isinstance(exported, list), f"{package} has no __all__ list"


@pytest.mark.parametrize("name", MODULES)
def test_every_name_in_all_exists_and_imports(name: str) -> None:
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", [])
    assert len(exported) == len(set(exported)), f"{name}.__all__ repeats a name"
    missing = [item for item in exported if not hasattr(module, item)]
    assert missing == [], f"{name}.__all__ names what it does not define: {missing}"
    namespace: dict[str, object] = {}
    exec(f"from {name} import *", namespace)
    assert set(exported) <= set(namespace)


def test_top_level_reexports_are_the_same_objects() -> None:
    from wsserver import server

    for item in wsserver.__all__:
        if hasattr(server, item):
            assert getattr(wsserver, item) is getattr(server, item), item
