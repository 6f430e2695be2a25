"""Run every fuzz target for a while and report what each one did.

    python fuzz/run_all.py [--seconds N] [TARGET ...]

Each target (``fuzz/fuzz_<target>.py``) runs under libFuzzer (atheris) for N
seconds (20 by default) with ``-rss_limit_mb=2048 -timeout=10``, starting
from its checked-in seeds (``fuzz/seeds/<target>/``, read only) and from the
corpus earlier runs grew (``fuzz/corpus-<target>/``, gitignored, where new
inputs go).  ``fuzz/dicts/<target>.dict`` is passed with ``-dict`` when it
exists.  Crashing inputs and the full log of each run are written under
``fuzz/artifacts/<target>/`` (gitignored).

Prints, per target: executions, final coverage (libFuzzer's ``cov:``),
features, corpus size and crashes (with the start of the traceback).  Exits
non-zero if any target crashed or could not run.

Needs ``pip install -e .[fuzz]``.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

FUZZ_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(FUZZ_DIR.parent))  # for the fuzz package, when run as a script
from fuzz.targets import TARGETS

#: libFuzzer names the inputs it saves for each kind of failure this way.
_FAILURE_PREFIXES = ("crash-", "timeout-", "oom-", "leak-")


@dataclass
class Report:
    target: str
    returncode: int = 0
    executions: int | None = None
    coverage: int | None = None
    features: int | None = None
    corpus: int | None = None
    seconds: float = 0.0
    crashes: list[Path] = field(default_factory=list)
    excerpt: str = ""
    log: Path | None = None

    @property
    def failed(self) -> bool:
        return bool(self.crashes) or self.returncode != 0 or self.executions is None


def _last_int(pattern: str, text: str) -> int | None:
    found = re.findall(pattern, text)
    return int(found[-1]) if found else None


def _excerpt(log: str) -> str:
    """The part of a failing run's log that says what went wrong."""
    for marker in ("=== Uncaught Python exception: ===", "==ERROR:", "ERROR: libFuzzer"):
        start = log.find(marker)
        if start >= 0:
            lines = log[start:].splitlines()
            return "\n".join(lines[:40])
    return "\n".join(log.splitlines()[-20:])


def run_target(target: str, seconds: int) -> Report:
    script = FUZZ_DIR / f"fuzz_{target}.py"
    corpus = FUZZ_DIR / f"corpus-{target}"
    seeds = FUZZ_DIR / "seeds" / target
    artifacts = FUZZ_DIR / "artifacts" / target
    dictionary = FUZZ_DIR / "dicts" / f"{target}.dict"
    corpus.mkdir(parents=True, exist_ok=True)
    artifacts.mkdir(parents=True, exist_ok=True)
    before = {path.name for path in artifacts.iterdir()}

    command = [
        sys.executable,
        str(script),
        f"-max_total_time={seconds}",
        "-rss_limit_mb=2048",
        "-timeout=10",
        "-print_final_stats=1",
        f"-artifact_prefix={artifacts}/",
    ]
    if dictionary.is_file():
        command.append(f"-dict={dictionary}")
    command.append(str(corpus))
    if seeds.is_dir():
        command.append(str(seeds))

    report = Report(target)
    started = time.monotonic()
    try:
        completed = subprocess.run(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            # libFuzzer stops itself; this only guards against a wedged run.
            timeout=seconds + 120,
            check=False,
        )
        output, report.returncode = completed.stdout, completed.returncode
    except subprocess.TimeoutExpired as expired:
        # Always bytes, whatever ``text`` says.
        output = (expired.stdout or b"").decode(errors="replace")
        report.returncode = -1
    report.seconds = time.monotonic() - started

    report.log = artifacts / "last-run.log"
    report.log.write_text(output, encoding="utf-8")
    report.executions = _last_int(r"stat::number_of_executed_units:\s*(\d+)", output)
    report.coverage = _last_int(r"\bcov: (\d+)", output)
    report.features = _last_int(r"\bft: (\d+)", output)
    report.corpus = _last_int(r"\bcorp: (\d+)/", output)
    report.crashes = sorted(
        path
        for path in artifacts.iterdir()
        if path.name not in before and path.name.startswith(_FAILURE_PREFIXES)
    )
    if report.failed:
        report.excerpt = _excerpt(output)
    return report


def _show(value: int | None) -> str:
    return "?" if value is None else f"{value:,}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=20, help="run time per target (default: 20)")
    parser.add_argument(
        "targets",
        nargs="*",
        metavar="TARGET",
        help=f"targets to run (default: all of {', '.join(TARGETS)})",
    )
    args = parser.parse_args(argv)
    if args.seconds < 1:
        parser.error("--seconds must be at least 1")
    unknown = [target for target in args.targets if target not in TARGETS]
    if unknown:
        parser.error(f"unknown target(s) {', '.join(unknown)}: choose from {', '.join(TARGETS)}")
    targets = args.targets or list(TARGETS)

    reports = []
    for target in targets:
        print(f"[fuzz] {target}: {args.seconds}s ...", flush=True)
        report = run_target(target, args.seconds)
        reports.append(report)
        status = "CRASHED" if report.failed else "ok"
        print(
            f"[fuzz] {target}: {status}, {_show(report.executions)} executions, "
            f"cov {_show(report.coverage)}, ft {_show(report.features)}, "
            f"corpus {_show(report.corpus)}, {report.seconds:.0f}s",
            flush=True,
        )
        if report.failed:
            for crash in report.crashes:
                print(f"[fuzz]   input saved as {crash.relative_to(FUZZ_DIR.parent)}")
            print(f"[fuzz]   full log: {report.log}")
            print("\n".join(f"[fuzz]   | {line}" for line in report.excerpt.splitlines()))

    print()
    header = f"{'target':<12} {'executions':>12} {'cov':>6} {'ft':>7} {'corpus':>7}  crashes"
    print(header)
    print("-" * len(header))
    for report in reports:
        crashes = str(len(report.crashes))
        if report.failed and not report.crashes:
            crashes = f"run failed (exit {report.returncode})"
        print(
            f"{report.target:<12} {_show(report.executions):>12} {_show(report.coverage):>6} "
            f"{_show(report.features):>7} {_show(report.corpus):>7}  {crashes}"
        )
    failed = [report.target for report in reports if report.failed]
    if failed:
        print(f"\nFAILED: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
