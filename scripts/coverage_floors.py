"""Check the coverage of each wsserver package against its floor.

    python scripts/coverage_floors.py [DATA_FILE]

Reads the coverage data pytest-cov wrote (``.coverage`` by default, line and
branch), adds up statements and branches per package (``wsserver.protocol``,
``wsserver.server``, ...: each folder's own modules, its subfolders counted in
their own rows), prints one row per package, and exits 1 if any package is
below its floor.  The floors live in pyproject.toml, table
``[tool.wsserver.coverage-floors]``, with the reason for each; a package with
no floor there is a failure too, so that new code cannot arrive unmeasured.

Coverage is coverage.py's: (covered lines + covered branches) / (lines +
branches), the figure ``coverage report`` prints.
"""

from __future__ import annotations

import json
import sys
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

import coverage

REPO = Path(__file__).resolve().parent.parent
PACKAGE_ROOT = REPO / "wsserver"


@dataclass
class Tally:
    statements: int = 0
    missing: int = 0
    branches: int = 0
    partial_missing: int = 0

    @property
    def percent(self) -> float:
        total = self.statements + self.branches
        covered = total - self.missing - self.partial_missing
        return 100.0 * covered / total if total else 100.0


def package_of(path: Path) -> str:
    """``wsserver/server/app.py`` -> ``wsserver.server``."""
    return ".".join(path.resolve().relative_to(REPO).parent.parts)


def tally(data_file: str) -> dict[str, Tally]:
    cov = coverage.Coverage(data_file=data_file)
    cov.load()
    with tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / "coverage.json"
        cov.json_report(outfile=str(report), include=[f"{PACKAGE_ROOT}/*"])
        files = json.loads(report.read_text())["files"]
    tallies: dict[str, Tally] = {}
    for filename, measured in sorted(files.items()):
        summary = measured["summary"]
        row = tallies.setdefault(package_of(Path(filename)), Tally())
        row.statements += summary["num_statements"]
        row.missing += summary["missing_lines"]
        row.branches += summary.get("num_branches", 0)
        row.partial_missing += summary.get("missing_branches", 0)
    return tallies


def main(argv: list[str]) -> int:
    data_file = argv[0] if argv else ".coverage"
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    floors: dict[str, float] = config["tool"]["wsserver"]["coverage-floors"]
    failed = False
    print(f"{'package':<34} {'cover':>7} {'floor':>7}")
    for package, row in sorted(tally(data_file).items()):
        floor = floors.get(package)
        verdict = ""
        if floor is None:
            verdict = "  NO FLOOR (add one to [tool.wsserver.coverage-floors])"
            failed = True
        elif row.percent < floor:
            verdict = "  BELOW THE FLOOR"
            failed = True
        shown = "-" if floor is None else f"{floor:.1f}%"
        print(f"{package:<34} {row.percent:6.2f}% {shown:>7}{verdict}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
