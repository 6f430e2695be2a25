"""Tests for wsserver.protocol.build_info: which build runs, and the stale-build guard."""

from __future__ import annotations

import importlib.machinery
import os
from pathlib import Path

import pytest

from wsserver.protocol import build_info
from wsserver.protocol import connection as connection_module

SUFFIX = importlib.machinery.EXTENSION_SUFFIXES[0]

#: scripts/test sets this in each of its runs: 1 for the compiled build, 0
#: for the pure-Python one, so that a build that silently came out the other
#: way fails here instead of passing for the wrong reason.
EXPECT = os.environ.get("WSSERVER_EXPECT_COMPILED", "")


def test_compiled_matches_the_running_module() -> None:
    on_disk = (connection_module.__file__ or "").endswith(SUFFIX)
    assert build_info.compiled() is on_disk
    assert build_info.describe() == ("compiled (mypyc)" if on_disk else "pure Python")
    assert EXPECT in ("", "0", "1")
    if EXPECT:
        assert on_disk is (EXPECT == "1"), build_info.describe()


def make_package(root: Path, *, source_tree: bool) -> Path:
    package = root / "wsserver" / "protocol"
    (package / "extensions").mkdir(parents=True)
    if source_tree:
        (root / "setup.py").write_text("")
    return package


def write(path: Path, mtime: float) -> None:
    path.write_bytes(b"")
    os.utime(path, (mtime, mtime))


def test_a_compiled_module_older_than_its_source_is_stale(tmp_path: Path) -> None:
    package = make_package(tmp_path, source_tree=True)
    write(package / f"reader{SUFFIX}", 1000)
    write(package / "reader.py", 2000)  # edited after the build
    write(package / f"state{SUFFIX}", 2000)
    write(package / "state.py", 1000)
    write(package / "extensions" / f"permessage_deflate{SUFFIX}", 1000)
    write(package / "extensions" / "permessage_deflate.py", 2000)
    assert build_info.stale_modules(package) == sorted(
        [str(package / "reader.py"), str(package / "extensions" / "permessage_deflate.py")]
    )
    with pytest.raises(ImportError, match=r"reader\.py.*WSSERVER_COMPILE=1"):
        build_info.check_not_stale(package)


def test_modules_never_compiled_are_not_checked(tmp_path: Path) -> None:
    package = make_package(tmp_path, source_tree=True)
    # The C accelerator has no .py; a compiled module without its source
    # (removed by hand) has nothing to be stale against.
    write(package / f"_speedups{SUFFIX}", 1000)
    write(package / f"orphan{SUFFIX}", 1000)
    write(package / "plain.py", 2000)
    assert build_info.stale_modules(package) == []
    build_info.check_not_stale(package)


def test_an_installed_copy_is_not_checked(tmp_path: Path) -> None:
    # A wheel's files are written in any order; nobody edits them.
    package = make_package(tmp_path, source_tree=False)
    write(package / f"reader{SUFFIX}", 1000)
    write(package / "reader.py", 2000)
    assert not build_info.in_source_tree(package)
    build_info.check_not_stale(package)


def test_this_checkout_is_not_stale() -> None:
    assert build_info.stale_modules() == []
