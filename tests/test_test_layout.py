"""One test module per source module, in a mirrored tree.

* For every ``wsserver/<sub>/x.py`` (``__init__.py`` and ``__main__.py``
  aside) the test module ``tests/<sub>/test_x.py`` exists.  A private module
  ``_x.py`` may be tested by ``test__x.py`` or ``test_x.py``.
* Every ``tests/**/test_*.py`` maps back to a source module, except the
  project-wide checks in ``ALLOWED`` below, each with its reason.
* The examples' tests mirror ``examples/`` under ``tests/examples/``:
  ``tests/examples/brython/test_chat.py`` tests ``examples/brython/chat.py``
  (an example need not have tests; a test must have its example).
* Every folder under ``tests/`` that holds test modules is a package
  (``__init__.py``): test module names repeat across folders
  (``tests/protocol/test_x.py``, ``tests/server/test_x.py``), and pytest
  imports them as ``tests.protocol.test_x`` only if they are packages.

The first check fails until every module has its tests: that is intended.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCE_DIR = ROOT / "wsserver"
TESTS_DIR = ROOT / "tests"
#: tests/examples/... mirrors examples/...: the runnable programs, beside the package.
EXAMPLES = PurePosixPath("examples")

#: Source files that need no test module of their own.
UNTESTED_SOURCES = frozenset({"__init__.py", "__main__.py"})

#: Test modules (paths relative to tests/) that check the project as a whole
#: rather than one source module.  Every entry says why.
ALLOWED: dict[str, str] = {
    "test_layering.py": "import rules between the layers, over every module",
    "test_fuzz_targets.py": "runs the fuzz harnesses in fuzz/ on their seeds and random inputs",
    "test_test_layout.py": "this file: the source <-> test module mapping",
    "test_exports.py": "every module's __all__, over the whole package",
    "test_main.py": (
        "wsserver/__main__.py (python -m wsserver); dunder modules map to no test name"
    ),
    "test_hostile_input.py": (
        "end-to-end threat scenarios of the hostile-input issue, across layers"
    ),
    "test_bench_clients.py": (
        "bench/clients.py, the client rows of the benchmark: the harness's counts and checks"
    ),
    "test_examples_bench_server.py": (
        "examples are runnable programs; their behaviour is tested end to end"
        " (examples/bench_server.py, with the benchmark harness in bench/ that drives it)"
    ),
}


def expected_tests(source: PurePosixPath) -> list[PurePosixPath]:
    """Test paths (relative to tests/) that cover ``source`` (relative to wsserver/)."""
    stem = source.stem
    names = [f"test_{stem}.py"]
    if stem.startswith("_") and stem.lstrip("_"):
        names.append(f"test_{stem.lstrip('_')}.py")
    return [source.parent / name for name in names]


def candidate_sources(test: PurePosixPath) -> list[PurePosixPath]:
    """Source paths (relative to wsserver/) that ``test`` (relative to tests/) may cover."""
    stem = test.stem.removeprefix("test_")
    return [test.parent / f"{stem}.py", test.parent / f"_{stem}.py"]


def _relative(root: Path, files: list[Path]) -> list[PurePosixPath]:
    return sorted(PurePosixPath(p.relative_to(root).as_posix()) for p in files)


def _python_files(root: Path, pattern: str) -> list[Path]:
    return [p for p in root.rglob(pattern) if "__pycache__" not in p.parts]


SOURCES = [
    s
    for s in _relative(SOURCE_DIR, _python_files(SOURCE_DIR, "*.py"))
    if s.name not in UNTESTED_SOURCES
]
TESTS = _relative(TESTS_DIR, _python_files(TESTS_DIR, "test_*.py"))


def test_there_are_source_modules() -> None:
    assert any(s.parts[0] == "protocol" for s in SOURCES), f"no modules under {SOURCE_DIR}"


@pytest.mark.parametrize("source", SOURCES, ids=str)
def test_source_module_has_test_module(source: PurePosixPath) -> None:
    wanted = expected_tests(source)
    assert any((TESTS_DIR / t).is_file() for t in wanted), (
        f"wsserver/{source} has no test module: add tests/{wanted[0]}"
    )


@pytest.mark.parametrize("test", TESTS, ids=str)
def test_test_module_has_source_module(test: PurePosixPath) -> None:
    if str(test) in ALLOWED:
        return
    candidates = candidate_sources(test)
    if test.parts[0] == EXAMPLES.name:
        assert any((ROOT / s).is_file() for s in candidates), (
            f"tests/{test} tests no example: expected {candidates[0]} to exist"
        )
        return
    assert any((SOURCE_DIR / s).is_file() for s in candidates), (
        f"tests/{test} tests no module: expected wsserver/{candidates[0]} to exist; "
        "a project-wide check goes into ALLOWED in tests/test_test_layout.py, with its reason"
    )


@pytest.mark.parametrize("entry", sorted(ALLOWED))
def test_allowed_entry_is_live(entry: str) -> None:
    assert (TESTS_DIR / entry).is_file(), f"ALLOWED lists tests/{entry}, which does not exist"
    assert ALLOWED[entry].strip(), f"ALLOWED entry tests/{entry} gives no reason"


@pytest.mark.parametrize("test", TESTS, ids=str)
def test_test_folder_is_package(test: PurePosixPath) -> None:
    folder = TESTS_DIR / test.parent
    while True:
        assert (folder / "__init__.py").is_file(), (
            f"{folder.relative_to(ROOT)}/__init__.py is missing: test folders are packages"
        )
        if folder == TESTS_DIR:
            break
        folder = folder.parent


# ---------------------------------------------------------------------------
# The mapping itself
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "tests"),
    [
        ("cli.py", ["test_cli.py"]),
        ("protocol/frames.py", ["protocol/test_frames.py"]),
        (
            "protocol/extensions/permessage_deflate.py",
            ["protocol/extensions/test_permessage_deflate.py"],
        ),
        ("_importer.py", ["test__importer.py", "test_importer.py"]),
    ],
)
def test_expected_tests(source: str, tests: list[str]) -> None:
    assert expected_tests(PurePosixPath(source)) == [PurePosixPath(t) for t in tests]


@pytest.mark.parametrize(
    ("test", "source"),
    [
        ("test_cli.py", "cli.py"),
        ("server/test_websocket.py", "server/websocket.py"),
        ("plugins/view/test_vdom.py", "plugins/view/vdom.py"),
        ("test__importer.py", "_importer.py"),
        ("test_importer.py", "_importer.py"),
        # Relative to the repository, not wsserver/: an example's tests.
        ("examples/brython/test_chat.py", "examples/brython/chat.py"),
    ],
)
def test_candidate_sources(test: str, source: str) -> None:
    assert PurePosixPath(source) in candidate_sources(PurePosixPath(test))
