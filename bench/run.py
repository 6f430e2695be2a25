"""Run the benchmarks: wsserver and its peers, side by side, same scenarios.

    python -m bench.run                      # everything, 3 runs, ~35 minutes
    python -m bench.run --servers wsserver,picows --scenarios echo_c64_1k
    python -m bench.run --quick              # one tiny scenario, wsserver only
    python -m bench.run --shape window32     # echo under the shallow window only
    python -m bench.run --render bench/results/20260101-120000.json

For every run, scenario and server: start a fresh server pinned to one CPU,
wait until it listens, run the load generator (bench/client.py) pinned to
another CPU, stop the server with SIGTERM.  Servers are interleaved (their
order rotates from run to run) so that background load is spread evenly.
The raw figures go to bench/results/<timestamp>.json (gitignored); the
medians, ratios and CPU use are rendered into docs/benchmarks.md.

Every figure is from 127.0.0.1; every wait is bounded.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import (
    ASGI_SERVERS,
    HTTP_SERVERS,
    SCENARIOS,
    SERVERS,
    SHAPES,
    VARIANTS,
    Scenario,
    ShapeChoice,
    quick_scenario,
    raise_open_file_limit,
    scenario_by_name,
    scenarios_for_shape,
)
from wsserver.protocol import build_info

__all__ = ["main", "render_markdown", "summarize"]

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "bench" / "results"
DOC = ROOT / "docs" / "benchmarks.md"
PYTHON = sys.executable

SERVER_READY_TIMEOUT = 20.0
SERVER_STOP_TIMEOUT = 15.0
#: Beyond warm-up + duration, for connecting and closing 5,000 connections.
CLIENT_SLACK = 240.0

#: Servers that cannot run a scenario, and why (shown in the tables).
NOT_APPLICABLE: dict[tuple[str, str], str] = {
    ("picows", "deflate"): "picows has no permessage-deflate",
}

#: The Method section's note on the two echo loads (``--shape``).
LOAD_SHAPES = (
    "- **Load shapes.** Echo rows come in two load shapes, both from the same "
    'client.  *deep* ("pipelined" rows, scenarios such as `echo_c1_16`): the window above, '
    "replacements in batches of a quarter window; the server always has work "
    "queued, so the figure is its throughput when it never waits.  *window32* "
    '("window 32" rows, `echo_c1_16@w32`): at most 32 messages in flight per connection; '
    "the client sets `SO_RCVLOWAT` so that the kernel wakes it once half of its "
    "window's reply bytes have arrived (at most 256 KiB, and never more than the "
    "replies still outstanding can fill, or the last batch would never wake it), "
    "and sends every wake-up's replacements in one write.  Here a server that "
    "holds a reply back for a later loop iteration, or does not use its whole "
    "core, stalls the window, which a deep window hides.  The two shapes have "
    "ranked the servers differently (issue 16), so both are reported: a result "
    "that holds under only one load shape is not a result.  `--shape "
    "deep|window32|both` picks them (default both)."
)

PROFILE_START = "<!-- profile:start -->"
PROFILE_END = "<!-- profile:end -->"
#: The ASGI rows' section (``python -m bench.asgi`` writes it; a full run
#: here keeps it as it is).
ASGI_START = "<!-- asgi:start -->"
ASGI_END = "<!-- asgi:end -->"
#: The channels rows' section (``python -m bench.channels`` writes it; a full
#: run here keeps it as it is).
CHANNELS_START = "<!-- channels:start -->"
CHANNELS_END = "<!-- channels:end -->"
PROFILE_PLACEHOLDER = (
    "_To be written: where wsserver spends its time in the echo and broadcast\n"
    "scenarios (py-spy or cProfile of `examples/bench_server.py` under\n"
    "`python -m bench.client`), and what was changed because of it._"
)


# ---------------------------------------------------------------------------
# Processes
# ---------------------------------------------------------------------------


def server_command(server: str, port: int, *, deflate: bool, uvloop: bool) -> list[str]:
    if server == "wsserver":
        command = [PYTHON, str(ROOT / "examples" / "bench_server.py")]
    elif server == "wsserver-metrics":
        command = [PYTHON, str(ROOT / "examples" / "bench_server.py"), "--metrics"]
    elif server in ASGI_SERVERS or server in HTTP_SERVERS:
        command = [PYTHON, "-m", "bench.servers.asgi_run", "--server", server]
    else:
        command = [PYTHON, "-m", f"bench.servers.ws_{server}"]
    command += ["--port", str(port)]
    if deflate:
        command.append("--deflate")
    if uvloop:
        command.append("--uvloop")
    return command


#: Debugging aids that would slow the servers or the load generator down.
_DEBUG_VARIABLES = ("PYTHONASYNCIODEBUG", "PYTHONDEVMODE", "PYTHONTRACEMALLOC", "PYTHONMALLOC")


def child_environment() -> dict[str, str]:
    """The environment for servers and load generator: without debug modes."""
    return {k: v for k, v in os.environ.items() if k not in _DEBUG_VARIABLES}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def pinned(cpu: int | None) -> Callable[[], None]:
    """A preexec_fn: raise the open-files limit, pin to ``cpu``."""

    def setup() -> None:
        raise_open_file_limit()
        if cpu is not None:
            os.sched_setaffinity(0, {cpu})

    return setup


def wait_listening(port: int, process: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with status {process.returncode} at start")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.05)
    raise RuntimeError(f"server not listening on port {port} after {timeout}s")


@contextlib.contextmanager
def running_server(
    server: str, *, deflate: bool, uvloop: bool, cpu: int | None, log: Path
) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """A fresh server on a free port; stopped with SIGTERM (then SIGKILL) after."""
    port = free_port()
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            server_command(server, port, deflate=deflate, uvloop=uvloop),
            cwd=ROOT,
            env=child_environment(),
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            preexec_fn=pinned(cpu),
        )
        try:
            wait_listening(port, process, SERVER_READY_TIMEOUT)
            yield port, process
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(SERVER_STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(SERVER_STOP_TIMEOUT)


def run_client(
    port: int,
    scenario: Scenario,
    server_pid: int,
    *,
    warmup: float,
    duration: float,
    quick: bool,
    cpu: int | None,
) -> dict[str, Any]:
    command = [
        PYTHON,
        "-m",
        "bench.client",
        "--url",
        f"ws://127.0.0.1:{port}/",
        "--scenario",
        scenario.name,
        "--server-pid",
        str(server_pid),
        "--warmup",
        str(warmup),
        "--duration",
        str(duration),
    ]
    if quick:
        command.append("--quick")
    return run_measuring_child(
        command, timeout=warmup + duration + CLIENT_SLACK, cpu=cpu, what="load generator"
    )


def run_measuring_child(
    command: list[str], *, timeout: float, cpu: int | None, what: str
) -> dict[str, Any]:
    """Run a measuring process pinned to ``cpu``: the JSON object of its last
    line of output, or ``{"error": ...}`` naming ``what`` failed and how."""
    try:
        done = subprocess.run(
            command,
            cwd=ROOT,
            env=child_environment(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            preexec_fn=pinned(cpu),
        )
    except subprocess.TimeoutExpired:
        return {"error": f"{what} timed out"}
    lines = done.stdout.decode(errors="replace").strip().splitlines()
    try:
        result: dict[str, Any] = json.loads(lines[-1])
    except (IndexError, ValueError):
        tail = done.stderr.decode(errors="replace").strip().splitlines()[-5:]
        return {"error": f"{what} failed ({done.returncode}): {' | '.join(tail)}"}
    return result


# ---------------------------------------------------------------------------
# Machine
# ---------------------------------------------------------------------------


def _busy_and_total() -> tuple[int, int]:
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:9]]
    total = sum(fields)
    return total - fields[3] - fields[4], total


def background_cpu_pct(interval: float = 0.5) -> float:
    """How busy the machine is without us, in % of one CPU (no server runs now)."""
    busy0, total0 = _busy_and_total()
    time.sleep(interval)
    busy1, total1 = _busy_and_total()
    if total1 == total0:
        return 0.0
    return 100.0 * (os.cpu_count() or 1) * (busy1 - busy0) / (total1 - total0)


def wait_for_quiet(threshold: float | None, budget: float) -> tuple[float, float]:
    """Wait (up to ``budget`` seconds) until other work uses less than ``threshold``.

    Returns the last background reading and the seconds waited.
    """
    reading = background_cpu_pct()
    started = time.monotonic()
    while threshold is not None and reading > threshold:
        if time.monotonic() - started >= budget:
            log(f"  still {reading:.0f} % busy after waiting {budget:.0f}s: running anyway")
            break
        time.sleep(2.0)
        reading = background_cpu_pct()
    return reading, time.monotonic() - started


def _lscpu() -> dict[str, str]:
    try:
        output = subprocess.run(
            ["lscpu"], capture_output=True, text=True, timeout=10, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    info = {}
    for line in output.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            info[key.strip()] = value.strip()
    return info


def _mem_total_gib() -> float:
    with contextlib.suppress(OSError), open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / (1024 * 1024)
    return float("nan")


def package_version(package: str) -> str:
    """The installed version of ``package``, or ``not installed``."""
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _revision() -> str:
    try:
        return subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def machine_info() -> dict[str, Any]:
    lscpu = _lscpu()
    return {
        "wsserver_revision": _revision(),
        # The build of the protocol core this checkout runs (the server is
        # started from it): mypyc-compiled or pure Python.
        "wsserver_core": build_info.describe(),
        "cpu_model": lscpu.get("Model name", platform.processor() or "unknown"),
        "cpus": os.cpu_count(),
        "threads_per_core": lscpu.get("Thread(s) per core", "?"),
        "hypervisor": lscpu.get("Hypervisor vendor", "none"),
        "memory_gib": round(_mem_total_gib(), 1),
        "kernel": f"{platform.system()} {platform.release()}",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "packages": {
            name: package_version(name)
            for name in ("wsserver", "websockets", "aiohttp", "picows", "uvloop", "h11")
        },
    }


# ---------------------------------------------------------------------------
# Running everything
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    servers: tuple[str, ...]
    scenarios: tuple[Scenario, ...]
    loops: tuple[str, ...]
    runs: int
    warmup: float
    duration: float
    quick: bool
    server_cpu: int | None
    client_cpu: int | None
    quiet_below: float | None = None
    quiet_wait: float = 120.0
    quiet_budget: float = 1800.0
    max_other: float | None = 25.0
    retries: int = 2


def not_applicable(server: str, scenario: Scenario) -> str | None:
    if scenario.deflate:
        return NOT_APPLICABLE.get((server, "deflate"))
    return None


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


class Executor:
    """Runs the plan's steps, then repeats the ones other work disturbed.

    ``servers_for(scenario, servers)``, if given, picks the servers that run
    a scenario (the ASGI rows: the HTTP row has servers of its own).
    """

    def __init__(
        self,
        plan: Plan,
        log_dir: Path,
        *,
        servers_for: Callable[[Scenario, Sequence[str]], Sequence[str]] | None = None,
    ) -> None:
        self.plan = plan
        self.log_dir = log_dir
        self.waited_total = 0.0
        self.servers_for = servers_for

    def step(
        self, label: str, loop: str, scenario: Scenario, server: str, run: int
    ) -> dict[str, Any]:
        plan = self.plan
        budget = min(plan.quiet_wait, max(0.0, plan.quiet_budget - self.waited_total))
        background, waited = wait_for_quiet(plan.quiet_below, budget)
        self.waited_total += waited
        load = os.getloadavg()
        log(
            f"{label} run {run + 1} {loop} {scenario.name} {server} "
            f"(load {load[0]:.2f}, others using {background:.0f} % of a CPU)"
        )
        record: dict[str, Any] = {
            "run": run,
            "loop": loop,
            "scenario": scenario.name,
            "server": server,
            "loadavg_1m": load[0],
            "background_cpu_pct": background,
            "waited_for_quiet_s": waited,
        }
        name = f"{loop}-{scenario.name}-{server}-{run}.log"
        try:
            with running_server(
                server,
                deflate=scenario.deflate,
                uvloop=loop == "uvloop",
                cpu=plan.server_cpu,
                log=self.log_dir / name,
            ) as (port, process):
                result = run_client(
                    port,
                    scenario,
                    process.pid,
                    warmup=plan.warmup,
                    duration=plan.duration,
                    quick=plan.quick,
                    cpu=plan.client_cpu,
                )
                if process.poll() is not None:
                    result = {"error": f"server died ({process.returncode})"}
        except RuntimeError as error:
            result = {"error": str(error)}
        if "error" in result:
            log(f"  error: {result['error']} (server log: {self.log_dir / name})")
        record.update(result)
        return record

    def disturbed(self, record: dict[str, Any]) -> bool:
        limit = self.plan.max_other
        return limit is not None and record.get("other_cpu_pct", 0.0) > limit

    def execute(self) -> list[dict[str, Any]]:
        plan = self.plan
        steps = [
            (loop, scenario, server, run)
            for run in range(plan.runs)
            for loop in plan.loops
            for scenario in plan.scenarios
            # Rotate the order so that no server always goes first.
            for server in plan.servers[run % len(plan.servers) :]
            + plan.servers[: run % len(plan.servers)]
            if not not_applicable(server, scenario)
            and (self.servers_for is None or server in self.servers_for(scenario, plan.servers))
        ]
        records = [
            self.step(f"{number}/{len(steps)}", *step) for number, step in enumerate(steps, 1)
        ]
        # Runs during which other work took a share of the machine are
        # repeated (the first attempt is kept, marked discarded).
        for attempt in range(1, plan.retries + 1):
            again = [r for r in records if not r.get("discarded") and self.disturbed(r)]
            if not again:
                break
            log(f"repeating {len(again)} disturbed run(s), attempt {attempt}/{plan.retries}")
            for number, old in enumerate(again, 1):
                old["discarded"] = True
                scenario = scenario_by_name(old["scenario"])
                records.append(
                    self.step(
                        f"repeat {number}/{len(again)}",
                        old["loop"],
                        scenario,
                        old["server"],
                        old["run"],
                    )
                )
        return records


# ---------------------------------------------------------------------------
# Summaries
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    higher_is_better: bool


def metrics_for(scenario: Scenario) -> list[Metric]:
    if scenario.kind == "latency":
        return [
            Metric("p50_us", "p50 round trip, µs", False),
            Metric("p99_us", "p99 round trip, µs", False),
        ]
    if scenario.kind == "echo":
        if scenario.size >= 64 * 1024:
            return [Metric("mib_per_s", "MiB/s echoed", True)]
        return [Metric("msgs_per_s", "messages/s echoed", True)]
    if scenario.kind == "handshake":
        return [Metric("handshakes_per_s", "handshakes/s", True)]
    if scenario.kind == "rss":
        return [Metric("kib_per_conn", "KiB per connection", False)]
    if scenario.kind == "http":
        return [Metric("requests_per_s", "requests/s", True)]
    return [Metric("deliveries_per_s", "deliveries/s", True)]


def summarize(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Medians per (loop, scenario, server) over the successful runs."""
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for record in records:
        if record.get("discarded"):
            continue
        operations = record.get("messages") or record.get("handshakes") or record.get("deliveries")
        if operations and "server_cpu_us_per_op" not in record and "server_cpu_s" in record:
            # Results written before the load generator reported it.
            record = {**record, "server_cpu_us_per_op": 1e6 * record["server_cpu_s"] / operations}
        group_key = (record["loop"], record["scenario"], record["server"])
        groups.setdefault(group_key, []).append(record)
    summary: dict[str, Any] = {}
    for (loop, scenario, server), group in groups.items():
        ok = [r for r in group if "error" not in r]
        errors = [r["error"] for r in group if "error" in r]
        cell: dict[str, Any] = {"runs": len(ok), "errors": errors}
        keys = {k for r in ok for k, v in r.items() if isinstance(v, int | float)}
        for key in sorted(keys - {"run"}):
            values = [float(r[key]) for r in ok if key in r]
            cell[key] = statistics.median(values)
            if len(values) > 1:
                cell[f"{key}_min"] = min(values)
                cell[f"{key}_max"] = max(values)
        summary.setdefault(loop, {}).setdefault(scenario, {})[server] = cell
    return summary


def _fmt(value: float | None) -> str:
    if value is None or value != value:
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _ratio(ours: float | None, theirs: float | None) -> str:
    if ours is None or theirs is None or not theirs:
        return "-"
    return f"{ours / theirs:.2f}x"


def _cell(summary: dict[str, Any], loop: str, scenario: str, server: str) -> dict[str, Any] | None:
    cell = summary.get(loop, {}).get(scenario, {}).get(server)
    if cell is None or not cell.get("runs"):
        return None
    result: dict[str, Any] = cell
    return result


#: A process counts as saturated (the bottleneck) above this share of its core.
BUSY_PCT = 90.0


def bottleneck(cell: dict[str, Any]) -> str:
    """Which process was saturated: "server", "client", "both" or "neither"."""
    server = cell.get("server_cpu_pct", 0.0) >= BUSY_PCT
    client = cell.get("client_cpu_pct", 0.0) >= BUSY_PCT
    if server and client:
        return "both"
    return "server" if server else "client" if client else "neither"


def cost_metric(scenario: Scenario) -> Metric | None:
    """Server CPU time per operation; none for the memory scenarios."""
    unit = {
        "latency": "round trip",
        "echo": "message",
        "handshake": "handshake",
        "broadcast": "delivery",
    }.get(scenario.kind)
    if unit is None:
        return None
    return Metric("server_cpu_us_per_op", f"server CPU µs per {unit}", False)


def _table(
    summary: dict[str, Any],
    loop: str,
    servers: Sequence[str],
    scenarios: Sequence[Scenario],
    metrics: Callable[[Scenario], list[Metric]],
) -> tuple[list[str], list[str]]:
    """Rows of the absolute table and of the ratio table for ``metrics``."""
    peers = [s for s in servers if s != "wsserver"]
    absolute = [
        "| scenario | figure | " + " | ".join(servers) + " |",
        "|---|---|" + "---:|" * len(servers),
    ]
    ratios = [
        "| scenario | figure | better | " + " | ".join(f"wsserver / {p}" for p in peers) + " |",
        "|---|---|---|" + "---:|" * len(peers),
    ]
    for scenario in scenarios:
        cells = {s: _cell(summary, loop, scenario.name, s) for s in servers}
        if not summary.get(loop, {}).get(scenario.name):
            continue
        for metric in metrics(scenario):
            values: dict[str, float | None] = {}
            row = []
            for server in servers:
                cell = cells[server]
                values[server] = None if cell is None else cell.get(metric.key)
                if cell is None and not_applicable(server, scenario):
                    row.append("n/a")
                else:
                    row.append(_fmt(values[server]))
            absolute.append(f"| {scenario.label} | {metric.label} | " + " | ".join(row) + " |")
            better = "higher" if metric.higher_is_better else "lower"
            ratio_cells = " | ".join(_ratio(values.get("wsserver"), values[p]) for p in peers)
            ratios.append(f"| {scenario.label} | {metric.label} | {better} | {ratio_cells} |")
    return absolute, ratios


def _cpu_use(
    summary: dict[str, Any], loop: str, servers: Sequence[str], scenarios: Sequence[Scenario]
) -> tuple[list[str], list[str]]:
    """The CPU-use table, and notes on bottlenecks, losses and failures."""
    rows = [
        "| scenario | " + " | ".join(servers) + " |",
        "|---|" + "---:|" * len(servers),
    ]
    notes: list[str] = []
    for scenario in scenarios:
        if not summary.get(loop, {}).get(scenario.name):
            continue
        row = []
        for server in servers:
            raw = summary.get(loop, {}).get(scenario.name, {}).get(server)
            if raw is not None and raw.get("errors"):
                notes.append(
                    f"- {scenario.label}, {server}: {len(raw['errors'])} failed run(s): "
                    f"{raw['errors'][0]}"
                )
            cell = _cell(summary, loop, scenario.name, server)
            if cell is None:
                row.append("n/a" if not_applicable(server, scenario) else "-")
                continue
            saturated = bottleneck(cell)
            mark = {"client": " ⚠", "both": " *"}.get(saturated, "")
            row.append(
                f"{cell.get('server_cpu_pct', 0):.0f} / {cell.get('client_cpu_pct', 0):.0f}"
                f" / {cell.get('other_cpu_pct', 0):.0f}{mark}"
            )
            if saturated == "client":
                notes.append(
                    f"- {scenario.label}, {server}: the load generator was at "
                    f"{cell.get('client_cpu_pct', 0):.0f} % of its core and the server at "
                    f"{cell.get('server_cpu_pct', 0):.0f} %: this figure is a lower bound "
                    "for the server."
                )
            elif saturated == "both":
                notes.append(
                    f"- {scenario.label}, {server}: the load generator was saturated too "
                    f"({cell.get('client_cpu_pct', 0):.0f} %); the server was at "
                    f"{cell.get('server_cpu_pct', 0):.0f} %, so the figure is the server's, "
                    "but a faster load generator might show a little more."
                )
            if cell.get("failures"):
                notes.append(
                    f"- {scenario.label}, {server}: {cell['failures']:.0f} handshakes failed "
                    "(median over runs)."
                )
            if cell.get("lost"):
                notes.append(
                    f"- {scenario.label}, {server}: {cell['lost']:.0f} deliveries never "
                    "arrived (median over runs)."
                )
        rows.append(f"| {scenario.label} | " + " | ".join(row) + " |")
    return rows, notes


def render_tables(
    summary: dict[str, Any], loop: str, servers: Sequence[str], scenarios: Sequence[Scenario]
) -> str:
    has_peers = any(s != "wsserver" for s in servers)
    absolute, ratios = _table(summary, loop, servers, scenarios, metrics_for)
    cost, cost_ratios = _table(
        summary,
        loop,
        servers,
        scenarios,
        lambda sc: [m for m in (cost_metric(sc),) if m is not None],
    )
    cpu, notes = _cpu_use(summary, loop, servers, scenarios)
    ratio_intro = (
        'wsserver / peer: for "higher" rows a ratio above 1 means wsserver is ahead; '
        'for "lower" rows, below 1.'
    )
    parts = ["### Figures", "", "Medians over the runs.", "", *absolute, ""]
    if has_peers:
        parts += [ratio_intro, "", *ratios, ""]
    parts += [
        "### Server CPU time per operation",
        "",
        "The server's CPU time over the measurement window divided by the "
        "operations completed in it.  Rates depend on how much of its core a "
        "process gets; CPU time per operation hardly does, so this is the "
        "figure to trust when the machine was shared.",
        "",
        *cost,
        "",
    ]
    if has_peers:
        parts += [ratio_intro, "", *cost_ratios, ""]
    parts += [
        "### CPU use",
        "",
        f"During the measurement window, in % of one CPU: server / load generator / "
        f"everything else on the machine (medians).  ⚠ marks a cell where the load "
        f"generator, not the server, was saturated (at least {BUSY_PCT:.0f} %), "
        f"* one where both were.",
        "",
        *cpu,
        "",
    ]
    if notes:
        parts += ["Notes:", "", *notes, ""]
    return "\n".join(parts)


def existing_block(path: Path, start_marker: str, end_marker: str) -> str | None:
    """What ``path`` holds between two markers, if it has them."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return None
    start = text.find(start_marker)
    end = text.find(end_marker)
    if start < 0 or end < start:
        return None
    return text[start + len(start_marker) : end].strip("\n")


def write_results(data: dict[str, Any], out: Path, log_dir: Path) -> None:
    """Write a run's results file, and drop the server logs nothing was written to."""
    out.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    log(f"wrote {out}")
    # Server logs are only worth keeping when something was written to them.
    for path in log_dir.iterdir():
        if path.stat().st_size == 0:
            path.unlink()
    with contextlib.suppress(OSError):
        log_dir.rmdir()


def replace_section(text: str, heading: str, start: str, end: str, block: str) -> str:
    """``text`` with ``block`` between the ``start`` and ``end`` markers.

    A harness's section of docs/benchmarks.md: what lies around the markers
    (prose written by hand) is kept; a document without them gets the
    section appended, under ``## heading``.
    """
    block = block.strip("\n")
    first, last = text.find(start), text.find(end)
    if first >= 0 and last > first:
        return f"{text[: first + len(start)]}\n{block}\n{text[last:]}"
    return f"{text.rstrip()}\n\n## {heading}\n\n{start}\n{block}\n{end}\n"


def _existing_profile(path: Path) -> str | None:
    return existing_block(path, PROFILE_START, PROFILE_END)


def _after_profile(path: Path) -> str | None:
    """What ``path`` holds after its Profile section: the other harnesses' sections."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return None
    end = text.find(PROFILE_END)
    return text[end + len(PROFILE_END) :] if end >= 0 else None


def render_markdown(
    data: dict[str, Any],
    *,
    profile: str | None = None,
    sections: str | None = None,
) -> str:
    """docs/benchmarks.md from a results file's contents.

    ``profile`` is the hand-written Profile section; ``sections`` what follows
    it, kept as it is: the sections the other harnesses write
    (``bench.asgi``, ``bench.channels``, ``bench.clients``), each with its
    own prose around its markers.
    """
    machine = data["machine"]
    plan = data["plan"]
    summary = data["summary"]
    servers = [s for s in SERVERS if s in plan["servers"]]
    scenarios = [scenario_by_name(name) for name in plan["scenarios"]]
    if plan.get("quick"):
        scenarios = [quick_scenario(s) for s in scenarios]
    packages = machine["packages"]
    load = data.get("loadavg", {})
    records = data.get("records", [])
    before = [r["background_cpu_pct"] for r in records if "background_cpu_pct" in r]
    during = [r["other_cpu_pct"] for r in records if "other_cpu_pct" in r]
    others = (
        f"median {statistics.median(before):.0f} % of one CPU just before each step, "
        f"{statistics.median(during):.0f} % during the measurements"
        if before and during
        else "not recorded"
    )
    lines = [
        "# Benchmarks",
        "",
        "wsserver against the Python WebSocket servers people choose instead: "
        "websockets, aiohttp and picows, all installed from PyPI, measured in one "
        "run with the same scenarios and the same load generator.  Generated by "
        "`python -m bench.run`; edit only the Profile section by hand (it is kept "
        "when the file is regenerated).",
        "",
        "## Machine",
        "",
        "| | |",
        "|---|---|",
        f"| CPU | {machine['cpu_model']}, {machine['cpus']} CPUs, "
        f"{machine['threads_per_core']} thread(s) per core, hypervisor: {machine['hypervisor']} |",
        f"| memory | {machine['memory_gib']} GiB |",
        f"| OS | {machine['kernel']} |",
        f"| Python | {machine['python']} |",
        "| packages | "
        + ", ".join(f"{name} {version}" for name, version in packages.items())
        + " |",
        f"| date | {data['started']} |",
        f"| wsserver revision | {machine.get('wsserver_revision', 'unknown')} |",
        f"| wsserver protocol core | {machine.get('wsserver_core', 'unknown')} |",
        f"| load average (1 min) | {load.get('start', float('nan')):.2f} at start, "
        f"{load.get('end', float('nan')):.2f} at the end |",
        f"| other work on the machine | {others}; per run in the results file |",
        "",
        "The machine may be shared: other work can run at the same time.  The "
        "rows above and the third figure of the CPU table below say how much; "
        "figures from a busy machine are lower, for every server alike since the "
        "servers are interleaved, but noisier.",
        "",
        "## Method",
        "",
        f"- **Runs.** Every scenario {plan['runs']} times for every server; the "
        f"tables show medians.  Each run starts a fresh server, warms up for "
        f"{plan['warmup']} s and measures for {plan['duration']} s.  The order of "
        "the servers rotates from run to run."
        + (
            f"  A run during which other work used more than {plan['max_other']:.0f} % "
            f"of one CPU is repeated (up to {plan.get('retries', 0)} times); the "
            "results file keeps the discarded attempts."
            if plan.get("max_other") is not None
            else ""
        ),
        "- **Servers.** `examples/bench_server.py` for wsserver; "
        "`bench/servers/ws_{websockets,aiohttp,picows}.py` for the peers: the same "
        "echo (text as text, binary as binary) and the same `broadcast:<n>[:<size>]` "
        "command, 64 MiB message limit, compression off except in the deflate "
        "scenarios (then each library's default permessage-deflate settings), every "
        "other setting at the library's default, plain asyncio event loop.  "
        "Broadcast uses `wsserver.broadcast` and `websockets.asyncio.server.broadcast` "
        "(frame encoded once); aiohttp has no broadcast helper, so a loop of "
        "`await send_str()`; picows a loop of `transport.send()`.",
        "- **Load generator.** `bench/client.py`: picows' Cython client on uvloop, "
        "one process.  Echo scenarios keep a window of messages in flight per "
        "connection (one connection: 256 messages up to 1 KiB, 64 of 64 KiB, 4 of "
        "1 MiB; 64 connections: 64, 16 and 2 per connection) and "
        "check every echo's size; the latency scenario keeps one.  To stay cheaper "
        "than the servers, it masks its frames once in advance (a random key per "
        "connection; servers still unmask every byte) and sends the replacements "
        "for all the echoes one read delivered in one write.  Binary messages "
        "except for the JSON and broadcast scenarios.  For deflate it compresses "
        "every message and decompresses every echo itself (context takeover as "
        "agreed).",
        LOAD_SHAPES,
        f"- **Pinning.** Server on CPU {plan['server_cpu']}, load generator on CPU "
        f"{plan['client_cpu']} (`sched_setaffinity`).  Both processes' CPU time "
        "(utime + stime from /proc) is recorded over the measurement window; a "
        "server-bound figure shows the server near 100 % of its core.",
        "- **Handshakes.** 32 concurrent tasks, each: TCP connect, upgrade (the "
        "101 and its `Sec-WebSocket-Accept` are checked), client Close, server "
        "Close, server closes TCP; repeat.  The client side is a bare asyncio "
        "protocol, cheaper than any WebSocket client library.",
        "- **Memory.** 5,000 connections, each exchanges one 1 KiB JSON text message "
        "(compressed when deflate was agreed, so that both zlib contexts exist) and "
        "then idles; (VmRSS after - VmRSS before) / 5,000, after a 1 s pause.",
        "- **Broadcast.** 1,000 connections; one sends `broadcast:10:16` whenever the "
        "deliveries of all but its last command have arrived (two commands in "
        "flight); deliveries per second over all connections, sender included.",
        "",
    ]
    for loop in plan["loops"]:
        title = "asyncio event loop" if loop == "asyncio" else "uvloop"
        lines += [f"## Results: {title}", "", render_tables(summary, loop, servers, scenarios)]
    lines += [
        "## Reproduce",
        "",
        "```sh",
        'pip install -e ".[bench]"     # websockets, aiohttp, picows, uvloop',
        "python -m bench.run             # about 35 minutes, both load shapes; "
        "add --uvloop for a second table",
        "```",
        "",
        "`python -m bench.run --help` lists the options (servers, scenarios, runs, "
        "durations, CPUs).  Raw results, per run, land in `bench/results/`.",
        "",
        "An editable install runs the protocol core as pure Python.  For the "
        'mypyc-compiled core, `pip install ".[bench]"` (not editable), or '
        "`bash scripts/build_compiled` and `cd build/compiled && "
        "PYTHONPATH=$PWD python -m bench.run ...`; the machine table names the "
        'build that ran (docs/development.md, "The compiled build").',
        "",
        "## Profile",
        "",
        PROFILE_START,
        profile if profile is not None else PROFILE_PLACEHOLDER,
        PROFILE_END,
        "",
    ]
    if sections:
        lines += [sections.strip("\n"), ""]
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------


def split_names(text: str, known: Sequence[str], what: str) -> tuple[str, ...]:
    """The comma-separated names of ``text``; an unknown one ends the run, naming it."""
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SystemExit(f"unknown {what}: {', '.join(unknown)}; known: {', '.join(known)}")
    return names


def write_doc(data: dict[str, Any], doc: Path) -> None:
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(
        render_markdown(data, profile=_existing_profile(doc), sections=_after_profile(doc)),
        encoding="utf-8",
    )
    log(f"wrote {doc}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run", description="wsserver benchmarks against its peers"
    )
    scenario_names = [s.name for s in SCENARIOS]
    parser.add_argument("--servers", default=None, help=f"comma-separated: {','.join(SERVERS)}")
    parser.add_argument(
        "--scenarios", default=None, help=f"comma-separated: {','.join(scenario_names)}"
    )
    parser.add_argument(
        "--shape",
        choices=(*SHAPES, "both"),
        default=None,
        help="load shape of the echo scenarios: deep window, at most 32 in flight, or both "
        "side by side (default both; deep with --quick)",
    )
    parser.add_argument("--runs", type=int, default=None, help="runs per scenario (default 3)")
    parser.add_argument("--warmup", type=float, default=None, help="seconds (default 1)")
    parser.add_argument("--duration", type=float, default=None, help="seconds (default 3)")
    parser.add_argument("--uvloop", action="store_true", help="also run every server on uvloop")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke test: wsserver, echo_c1_16, 1 short run, scaled-down scenarios, no doc",
    )
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--client-cpu", type=int, default=1)
    parser.add_argument("--no-pin", action="store_true", help="do not pin the processes")
    parser.add_argument(
        "--quiet-below",
        type=float,
        default=None,
        metavar="PCT",
        help="before each step, wait until other work uses less than PCT %% of one CPU",
    )
    parser.add_argument(
        "--quiet-wait", type=float, default=120.0, help="most seconds to wait per step"
    )
    parser.add_argument(
        "--quiet-budget", type=float, default=1800.0, help="most seconds to wait in all"
    )
    parser.add_argument(
        "--max-other",
        type=float,
        default=25.0,
        metavar="PCT",
        help="repeat a run during which other work used more than PCT %% of one CPU",
    )
    parser.add_argument("--retries", type=int, default=2, help="repeats per disturbed run")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    parser.add_argument("--doc", type=Path, default=None, help=f"default {DOC.relative_to(ROOT)}")
    parser.add_argument("--no-doc", action="store_true", help="do not write the doc")
    parser.add_argument("--render", type=Path, default=None, help="only render this results file")
    args = parser.parse_args(argv)

    doc: Path | None = args.doc
    if doc is None and not args.quick and not args.no_doc:
        doc = DOC
    if args.no_doc:
        doc = None
    if args.render is not None:
        data = json.loads(args.render.read_text(encoding="utf-8"))
        data["summary"] = summarize(data["records"])
        write_doc(data, doc or DOC)
        return 0

    quick = args.quick
    default_servers = "wsserver" if quick else ",".join(SERVERS)
    servers = split_names(args.servers or default_servers, SERVERS + VARIANTS, "server")
    names = split_names(
        args.scenarios or ("echo_c1_16" if quick else ",".join(scenario_names)),
        scenario_names,
        "scenario",
    )
    cpus = os.cpu_count() or 1
    pin = not args.no_pin and cpus >= 2
    shape: ShapeChoice = args.shape or ("deep" if quick else "both")
    scenarios = scenarios_for_shape(tuple(scenario_by_name(n) for n in names), shape)
    if not scenarios:
        parser.error(f"none of the scenarios has the {shape} load shape")
    plan = Plan(
        servers=servers,
        scenarios=scenarios,
        loops=("asyncio", "uvloop") if args.uvloop else ("asyncio",),
        runs=args.runs if args.runs is not None else (1 if quick else 3),
        warmup=args.warmup if args.warmup is not None else (0.2 if quick else 1.0),
        duration=args.duration if args.duration is not None else (0.5 if quick else 3.0),
        quick=quick,
        server_cpu=args.server_cpu if pin else None,
        client_cpu=args.client_cpu if pin else None,
        quiet_below=args.quiet_below,
        quiet_wait=args.quiet_wait,
        quiet_budget=args.quiet_budget,
        max_other=args.max_other if args.max_other >= 0 else None,
        retries=args.retries,
    )
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    results_dir: Path = args.results_dir
    log_dir = results_dir / f"{stamp}-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    load_start = os.getloadavg()[0]
    log(f"load average at start: {load_start:.2f}")
    records = Executor(plan, log_dir).execute()
    data = {
        "started": started,
        "machine": machine_info(),
        "loadavg": {"start": load_start, "end": os.getloadavg()[0]},
        "plan": {
            "servers": list(plan.servers),
            "scenarios": [s.name for s in plan.scenarios],
            "shape": shape,
            "loops": list(plan.loops),
            "runs": plan.runs,
            "warmup": plan.warmup,
            "duration": plan.duration,
            "quick": plan.quick,
            "server_cpu": plan.server_cpu,
            "client_cpu": plan.client_cpu,
            "quiet_below": plan.quiet_below,
            "max_other": plan.max_other,
            "retries": plan.retries,
        },
        "records": records,
        "summary": summarize(records),
    }
    write_results(data, results_dir / f"{stamp}.json", log_dir)
    if doc is not None:
        write_doc(data, doc)
    failed = sum(1 for r in records if "error" in r)
    if failed:
        log(f"{failed} of {len(records)} runs failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
