#!/usr/bin/env python3
"""Run the Autobahn|Testsuite fuzzing client against wsserver and judge it.

usage::

    python autobahn-config/run.py                     # all 517 cases
    python autobahn-config/run.py --cases "1.*,2.*"   # some sections
    python autobahn-config/run.py --report-only autobahn-config/reports
    python autobahn-config/run.py --markdown docs/conformance-table.md

Steps:

1. find ``wstest``: ``--wstest PATH`` if given; else ``PREFIX/wstest``, where
   PREFIX is ``--wstest-prefix`` (default ``$HOME/.cache/autobahn-wstest``),
   installing it there with ``autobahn-config/install-wstest.sh`` (pinned by
   ``autobahn-config/wstest-requirements.txt``) when it does not run;
2. start the server, ``python -m wsserver run examples.echo:EchoView ...``, from
   the repository root, and wait until its port accepts TCP connections;
3. write a copy of ``fuzzingclient.json`` with the chosen cases and port to a
   temporary directory and run ``wstest -m fuzzingclient -s <copy>``; reports
   land in ``autobahn-config/reports/servers/`` (gitignored, emptied first);
4. stop the server (SIGTERM, then SIGKILL after 10 s), whatever happened;
5. read ``reports/servers/index.json``, print a table per section (the first
   number of the case id) and every case that did not pass.

Exit status: 0 only if every case's ``behavior`` and ``behaviorClose`` are OK
or INFORMATIONAL, at least one case ran, and a full run ran exactly 517 cases;
1 if the results say otherwise; 2 if the run itself could not be done (no
wstest, the server did not start, wstest timed out, no index.json).

Standard library only, so that it runs before anything is installed.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
CONFIG = HERE / "fuzzingclient.json"
REPORTS = HERE / "reports"
AGENT = "wsserver"
HOST = "127.0.0.1"

DEFAULT_PREFIX = Path(os.environ.get("HOME") or "/root") / ".cache" / "autobahn-wstest"
INSTALLER = HERE / "install-wstest.sh"

# What a full run of wstest 0.8 ("cases": ["*"]) executes.
EXPECTED_TOTAL = 517

#: Results that count as a pass, for both ``behavior`` and ``behaviorClose``.
PASSING = frozenset({"OK", "INFORMATIONAL"})
#: Table columns, in the order printed.
CATEGORIES = (
    "OK",
    "NON-STRICT",
    "FAILED",
    "INFORMATIONAL",
    "UNIMPLEMENTED",
    "WRONG CODE",
    "UNCLEAN",
)
#: Worst first: a case is counted once, under the worse of its two results.
_SEVERITY = (
    "FAILED",
    "WRONG CODE",
    "UNCLEAN",
    "UNIMPLEMENTED",
    "NON-STRICT",
    "INFORMATIONAL",
    "OK",
)
OTHER = "OTHER"  # a result string this script does not know (counted as failing)

SERVER_STARTUP_TIMEOUT = 20.0
SERVER_STOP_GRACE = 10.0
WSTEST_TIMEOUT = 30 * 60.0
PROGRESS_EVERY = 30.0


class RunError(Exception):
    """The run could not be carried out (as opposed to: cases failed)."""


# ---------------------------------------------------------------------------
# Reading results
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class CaseResult:
    """One entry of ``index.json``."""

    case_id: str
    behavior: str
    behavior_close: str
    duration_ms: int
    remote_close_code: int | None
    reportfile: str | None

    @property
    def section(self) -> int:
        return case_key(self.case_id)[0]

    @property
    def passed(self) -> bool:
        return self.behavior in PASSING and self.behavior_close in PASSING

    @property
    def verdict(self) -> str:
        """The worse of ``behavior`` and ``behaviorClose``, as a table column."""
        ranks = [
            _SEVERITY.index(value) if value in _SEVERITY else -1
            for value in (self.behavior, self.behavior_close)
        ]
        worst = min(ranks)
        return OTHER if worst < 0 else _SEVERITY[worst]


def case_key(case_id: str) -> tuple[int, ...]:
    """``"12.1.10"`` -> ``(12, 1, 10)``, so that cases sort as the suite numbers them."""
    try:
        return tuple(int(part) for part in case_id.split("."))
    except ValueError:
        raise RunError(f"unexpected case id in index.json: {case_id!r}") from None


def find_index(directory: Path) -> Path:
    """The ``index.json`` in a reports directory, given it or its parent."""
    for candidate in (directory / "index.json", directory / "servers" / "index.json"):
        if candidate.is_file():
            return candidate
    raise RunError(f"no index.json in {directory} or {directory / 'servers'}")


def load_results(index: Path, agent: str = AGENT) -> list[CaseResult]:
    """Parse wstest's ``index.json`` (``{agent: {case_id: {...}}}``) for one agent."""
    try:
        data: Any = json.loads(index.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RunError(f"cannot read {index}: {exc}") from exc
    if not isinstance(data, dict) or not data:
        raise RunError(f"{index}: expected a non-empty object of agents")
    if agent in data:
        cases: Any = data[agent]
    elif len(data) == 1:
        (cases,) = data.values()
    else:
        raise RunError(f"{index}: no agent {agent!r} among {sorted(data)}")
    if not isinstance(cases, dict):
        raise RunError(f"{index}: expected an object of cases")
    results = []
    for case_id, entry in cases.items():
        if not isinstance(entry, dict):
            raise RunError(f"{index}: case {case_id}: expected an object")
        code = entry.get("remoteCloseCode")
        report = entry.get("reportfile")
        results.append(
            CaseResult(
                case_id=str(case_id),
                behavior=str(entry.get("behavior", "MISSING")),
                behavior_close=str(entry.get("behaviorClose", "MISSING")),
                duration_ms=int(entry.get("duration") or 0),
                remote_close_code=code if isinstance(code, int) else None,
                reportfile=report if isinstance(report, str) else None,
            )
        )
    results.sort(key=lambda result: case_key(result.case_id))
    return results


# ---------------------------------------------------------------------------
# Summarising
# ---------------------------------------------------------------------------


@dataclass(slots=True)
class SectionRow:
    label: str
    total: int
    counts: dict[str, int]
    seconds: float


def section_rows(results: Sequence[CaseResult]) -> list[SectionRow]:
    """One row per section, in order, then a ``total`` row."""
    rows: dict[int, SectionRow] = {}
    total = SectionRow("total", 0, {}, 0.0)
    for result in results:
        row = rows.setdefault(result.section, SectionRow(str(result.section), 0, {}, 0.0))
        for target in (row, total):
            target.total += 1
            target.counts[result.verdict] = target.counts.get(result.verdict, 0) + 1
            target.seconds += result.duration_ms / 1000
    return [rows[section] for section in sorted(rows)] + [total]


def _columns(rows: Sequence[SectionRow]) -> list[str]:
    columns = list(CATEGORIES)
    if any(OTHER in row.counts for row in rows):
        columns.append(OTHER)
    return columns


def format_table(rows: Sequence[SectionRow]) -> str:
    columns = _columns(rows)
    header = ["section", "cases", *columns, "time (s)"]
    body = [
        [
            row.label,
            str(row.total),
            *(str(row.counts.get(c, 0)) for c in columns),
            f"{row.seconds:.1f}",
        ]
        for row in rows
    ]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]

    def render(cells: Sequence[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = (cell.rjust(width) for cell, width in zip(cells[1:], widths[1:], strict=True))
        return "  ".join([first, *rest])

    rule = "  ".join("-" * width for width in widths)
    return "\n".join(
        [render(header), rule, *(render(line) for line in body[:-1]), rule, render(body[-1])]
    )


def format_failures(results: Sequence[CaseResult], reports_dir: Path) -> str:
    failing = [result for result in results if not result.passed]
    if not failing:
        return "every case passed (behavior and behaviorClose OK or INFORMATIONAL)"
    lines = [f"{len(failing)} case(s) did not pass:"]
    width = max(len(result.case_id) for result in failing)
    for result in failing:
        report = _display_path(reports_dir / result.reportfile) if result.reportfile else "-"
        lines.append(
            f"  {result.case_id.ljust(width)}  behavior={result.behavior:<13} "
            f"behaviorClose={result.behavior_close:<10} "
            f"remoteCloseCode={result.remote_close_code}  {report}"
        )
    return "\n".join(lines)


def format_markdown(results: Sequence[CaseResult]) -> str:
    rows = section_rows(results)
    columns = _columns(rows)
    header = ["Section", "Cases", *columns, "Time (s)"]
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join(["---", *(["---:"] * (len(header) - 1))]) + "|",
    ]
    for row in rows:
        label = f"**{row.label}**" if row.label == "total" else row.label
        cells = [label, str(row.total), *(str(row.counts.get(c, 0)) for c in columns)]
        lines.append("| " + " | ".join([*cells, f"{row.seconds:.1f}"]) + " |")
    failing = [result for result in results if not result.passed]
    if failing:
        lines += [
            "",
            "| Case | behavior | behaviorClose | remoteCloseCode |",
            "|---|---|---|---:|",
        ]
        lines += [
            f"| {r.case_id} | {r.behavior} | {r.behavior_close} | {r.remote_close_code} |"
            for r in failing
        ]
    return "\n".join(lines) + "\n"


def judge(results: Sequence[CaseResult], *, full_run: bool) -> list[str]:
    """Every reason the results fail the gate (empty: they pass)."""
    problems = []
    if not results:
        problems.append("no cases ran")
    elif full_run and len(results) != EXPECTED_TOTAL:
        problems.append(
            f"a full run should have {EXPECTED_TOTAL} cases, index.json has {len(results)}"
        )
    failing = sum(1 for result in results if not result.passed)
    if failing:
        problems.append(f"{failing} case(s) not OK/INFORMATIONAL")
    return problems


def summarise(
    results: Sequence[CaseResult], reports_dir: Path, *, full_run: bool, markdown: Path | None
) -> int:
    """Print the summary, write the markdown if asked; return the exit status."""
    print()
    print(format_table(section_rows(results)))
    print()
    print(format_failures(results, reports_dir))
    if markdown is not None:
        markdown.parent.mkdir(parents=True, exist_ok=True)
        markdown.write_text(format_markdown(results), encoding="utf-8")
        print(f"\nmarkdown table written to {_display_path(markdown)}")
    problems = judge(results, full_run=full_run)
    print()
    if problems:
        print("AUTOBAHN: FAIL: " + "; ".join(problems))
        return 1
    print(f"AUTOBAHN: PASS ({len(results)} cases)")
    return 0


def _display_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


# ---------------------------------------------------------------------------
# Running
# ---------------------------------------------------------------------------


def _runs(wstest: str) -> bool:
    try:
        probe = subprocess.run(
            [wstest, "--help"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=120,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


def find_wstest(explicit: str | None, prefix: Path) -> str:
    """A ``wstest`` that runs: ``explicit``, else ``prefix/wstest``, installed if needed."""
    if explicit is not None:
        if not _runs(explicit):
            raise RunError(f"--wstest {explicit}: does not run (`{explicit} --help` failed)")
        return explicit
    wstest = prefix / "wstest"
    if _runs(str(wstest)):
        return str(wstest)
    print(f"[autobahn] installing wstest: sh {INSTALLER} {prefix}", flush=True)
    installed = subprocess.run(
        ["sh", str(INSTALLER), str(prefix)], stdin=subprocess.DEVNULL, check=False
    )
    if installed.returncode != 0 or not _runs(str(wstest)):
        raise RunError(f"{INSTALLER} failed (exit {installed.returncode})")
    return str(wstest)


def port_accepts(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=1.0):
            return True
    except OSError:
        return False


def server_command(port: int, template: str | None) -> list[str]:
    if template is not None:
        return shlex.split(template.replace("{port}", str(port)))
    return [
        sys.executable,
        "-m",
        "wsserver",
        "run",
        "examples.echo:EchoView",
        "--host",
        HOST,
        "--port",
        str(port),
        "--ws-max-size",
        "16777216",
        "--ws-max-fragments",
        "1000000",
        # The performance cases (9.x) send 64 MiB and more on one
        # connection: the per-connection rates would only slow them down.
        "--message-rate-per-connection",
        "none",
        "--byte-rate-per-connection",
        "none",
        "--log-level",
        "warning",
    ]


def _tail(path: Path, lines: int = 60) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no output)"
    kept = text.splitlines()[-lines:]
    return "\n".join(kept) if kept else "(no output)"


def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with suppress(ProcessLookupError):
        os.killpg(process.pid, sig)


def _stop(process: subprocess.Popen[bytes], name: str) -> None:
    """SIGTERM the process group, SIGKILL it if still alive after the grace period."""
    if process.poll() is not None:
        return
    _signal_group(process, signal.SIGTERM)
    try:
        process.wait(timeout=SERVER_STOP_GRACE)
    except subprocess.TimeoutExpired:
        print(
            f"[autobahn] {name} ignored SIGTERM for {SERVER_STOP_GRACE:.0f} s: SIGKILL", flush=True
        )
        _signal_group(process, signal.SIGKILL)
        process.wait()


@contextmanager
def running_server(command: Sequence[str], port: int, log_path: Path) -> Iterator[None]:
    """Start the server, wait for its port, and always stop it on the way out."""
    if port_accepts(port):
        raise RunError(f"something already listens on {HOST}:{port}; pick another --port")
    print(f"[autobahn] starting server: {shlex.join(command)}", flush=True)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, killed as one
        )
    try:
        deadline = time.monotonic() + SERVER_STARTUP_TIMEOUT
        while not port_accepts(port):
            if process.poll() is not None:
                raise RunError(
                    f"the server exited with status {process.returncode} before listening; "
                    f"its output ({_display_path(log_path)}):\n{_tail(log_path)}"
                )
            if time.monotonic() > deadline:
                raise RunError(
                    f"the server did not accept connections on {HOST}:{port} within "
                    f"{SERVER_STARTUP_TIMEOUT:.0f} s; its output:\n{_tail(log_path)}"
                )
            time.sleep(0.1)
        print(f"[autobahn] server is listening on {HOST}:{port} (pid {process.pid})", flush=True)
        yield
        if process.poll() is not None:
            print(
                f"[autobahn] warning: the server exited with status {process.returncode} "
                f"during the run; its output:\n{_tail(log_path)}",
                flush=True,
            )
    finally:
        _stop(process, "server")


def write_config(directory: Path, cases: Sequence[str], port: int, outdir: Path) -> Path:
    config: dict[str, Any] = json.loads(CONFIG.read_text(encoding="utf-8"))
    config["cases"] = list(cases)
    config["outdir"] = str(outdir)
    config["servers"] = [{"agent": AGENT, "url": f"ws://{HOST}:{port}"}]
    path = directory / "fuzzingclient.json"
    path.write_text(json.dumps(config, indent=2), encoding="utf-8")
    return path


def _count_started(log_path: Path) -> int:
    try:
        with log_path.open("rb") as log:
            return sum(1 for line in log if b"Running test case ID" in line)
    except OSError:
        return 0


def run_wstest(wstest: str, config: Path, log_path: Path, timeout: float) -> None:
    command = [wstest, "-m", "fuzzingclient", "-s", str(config)]
    print(
        f"[autobahn] running: {shlex.join(command)}  (output: {_display_path(log_path)})",
        flush=True,
    )
    started = time.monotonic()
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            cwd=HERE,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        while True:
            try:
                process.wait(timeout=PROGRESS_EVERY)
                break
            except subprocess.TimeoutExpired:
                elapsed = time.monotonic() - started
                print(
                    f"[autobahn] {elapsed:5.0f} s: {_count_started(log_path)} case(s) started",
                    flush=True,
                )
                if elapsed > timeout:
                    raise RunError(
                        f"wstest did not finish within {timeout:.0f} s; the end of its output:\n"
                        f"{_tail(log_path)}"
                    ) from None
    finally:
        _stop(process, "wstest")
    print(f"[autobahn] wstest finished in {time.monotonic() - started:.0f} s", flush=True)
    if process.returncode != 0:
        raise RunError(f"wstest exited with status {process.returncode}:\n{_tail(log_path)}")


def parse_cases(text: str) -> list[str]:
    cases = [case.strip() for case in text.split(",") if case.strip()]
    if not cases:
        raise argparse.ArgumentTypeError("expected a comma-separated list of case patterns")
    return cases


def _raise_on_sigterm(signum: int, frame: FrameType | None) -> NoReturn:
    # Make `finally` blocks (which stop the server) run when CI terminates us.
    print(f"[autobahn] terminated by signal {signum}: stopping wstest and the server", flush=True)
    raise SystemExit(128 + signum)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python autobahn-config/run.py",
        description="Run Autobahn|Testsuite (wstest fuzzingclient) against wsserver and "
        "summarise the results. Exits 0 only if every case is OK or INFORMATIONAL.",
    )
    parser.add_argument(
        "--cases",
        type=parse_cases,
        default=["*"],
        metavar="PATTERNS",
        help='comma-separated case patterns, e.g. "1.*,2.*" (default: all)',
    )
    parser.add_argument("--port", type=int, default=9001, help="server port (default: 9001)")
    parser.add_argument("--wstest", metavar="PATH", help="the wstest executable to use")
    parser.add_argument(
        "--wstest-prefix",
        metavar="DIR",
        type=Path,
        default=DEFAULT_PREFIX,
        help="where wstest is installed when missing (default: %(default)s)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=WSTEST_TIMEOUT,
        metavar="SECONDS",
        help=f"overall limit for wstest (default: {WSTEST_TIMEOUT:.0f})",
    )
    parser.add_argument(
        "--server-cmd",
        metavar="COMMAND",
        help="run this server instead of the wsserver CLI ({port} is substituted), "
        "e.g. to compare with another implementation",
    )
    parser.add_argument(
        "--markdown",
        type=Path,
        metavar="PATH",
        help="also write the section table as markdown (for docs/conformance.md)",
    )
    parser.add_argument(
        "--report-only",
        type=Path,
        metavar="DIR",
        help="run nothing: summarise an existing reports directory "
        "(the one holding index.json, or its parent)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    full_run = args.cases == ["*"]
    signal.signal(signal.SIGTERM, _raise_on_sigterm)
    try:
        if args.report_only is not None:
            index = find_index(args.report_only)
            return summarise(
                load_results(index), index.parent, full_run=full_run, markdown=args.markdown
            )

        wall = time.monotonic()
        wstest = find_wstest(args.wstest, args.wstest_prefix)
        outdir = REPORTS / "servers"
        shutil.rmtree(outdir, ignore_errors=True)
        outdir.mkdir(parents=True)
        with tempfile.TemporaryDirectory(prefix="wsserver-autobahn-") as tmp:
            config = write_config(Path(tmp), args.cases, args.port, outdir)
            command = server_command(args.port, args.server_cmd)
            with running_server(command, args.port, REPORTS / "server.log"):
                run_wstest(wstest, config, REPORTS / "wstest.log", args.timeout)
        results = load_results(find_index(outdir))
        print(f"[autobahn] wall time {time.monotonic() - wall:.0f} s")
        return summarise(results, outdir, full_run=full_run, markdown=args.markdown)
    except RunError as exc:
        print(f"AUTOBAHN: ERROR: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
