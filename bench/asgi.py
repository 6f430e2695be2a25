"""The ASGI rows: one ASGI application on wsserver and on the other ASGI servers.

    python -m bench.asgi                      # every row, 3 runs
    python -m bench.asgi --quick              # every row once, scaled down, short
    python -m bench.asgi --servers wsserver-asgi,uvicorn-websockets --scenarios echo_c64_1k

The application is bench/servers/asgi_echo.py, a raw ASGI 3 application
(no framework); bench/servers/asgi_run.py starts each server on it.  The
WebSocket rows (echo, handshakes, broadcast) compare wsserver's ASGI face
with uvicorn (websockets and wsproto), hypercorn and granian; the HTTP
"hello" row compares it with uvicorn on h11 and on httptools.  Servers,
load generator, pinning and the repeat of disturbed runs are bench/run.py's
(``Executor``); the medians go to the "ASGI servers" section of
docs/benchmarks.md (``--no-doc`` to leave it), which a full ``bench.run``
keeps as it is.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import (
    ASGI_SCENARIOS,
    ASGI_SERVERS,
    HTTP_SERVERS,
    Scenario,
    quick_scenario,
    scenario_by_name,
)
from bench.run import (
    ASGI_END,
    ASGI_START,
    DOC,
    RESULTS_DIR,
    Executor,
    Plan,
    log,
    machine_info,
    metrics_for,
    package_version,
    replace_section,
    split_names,
    summarize,
    write_results,
)

__all__ = ["main", "render_asgi", "servers_for"]

#: Servers that cannot run a scenario here, and why.
NOT_APPLICABLE: dict[tuple[str, str], str] = {
    ("granian", "deflate"): "granian has no permessage-deflate",
}


def servers_for(scenario: Scenario, servers: Sequence[str]) -> list[str]:
    """The servers of ``servers`` that belong in ``scenario``'s row."""
    row = HTTP_SERVERS if scenario.kind == "http" else ASGI_SERVERS
    return [server for server in row if server in servers]


def _cell(summary: dict[str, Any], scenario: str, server: str, key: str) -> str:
    cell = summary.get("asyncio", {}).get(scenario, {}).get(server)
    if cell is None:
        return "-"
    if key not in cell:
        return "failed" if cell.get("errors") else "-"
    value = cell[key]
    text = f"{value:,.0f}" if value >= 100 else f"{value:,.1f}"
    cpu = cell.get("server_cpu_us_per_op")
    return f"{text} ({cpu:,.1f} µs)" if cpu is not None else text


def render_asgi(data: dict[str, Any]) -> str:
    """The "ASGI servers" section of docs/benchmarks.md, from a results file."""
    plan = data["plan"]
    summary = data["summary"]
    machine = data["machine"]
    load = data.get("loadavg", {})
    scenarios = [scenario_by_name(name) for name in plan["scenarios"]]
    if plan.get("quick"):
        scenarios = [quick_scenario(s) for s in scenarios]
    lines = [
        f"_Run {data['started']}: {plan['runs']} run(s) of {plan['duration']} s after "
        f"{plan['warmup']} s of warm-up{', scaled down (--quick)' if plan.get('quick') else ''}; "
        f"load average {load.get('start', 0):.2f} at the start, {load.get('end', 0):.2f} at "
        f"the end; {machine['cpus']} CPUs, {machine['cpu_model']}; "
        + ", ".join(f"{name} {version}" for name, version in machine["asgi_packages"].items())
        + "._",
        "",
        (
            "**Provisional figures.** Short, scaled-down runs (--quick): they show that "
            "every row runs, not how the servers rank.  Reproduce them with "
            "`python -m bench.asgi` (3 runs of 3 s) before quoting any ratio."
            if plan.get("quick")
            else "Medians of the runs.  Before each run the runner checks the other work on "
            "the machine; a run during which it used more than a quarter of a CPU is "
            "repeated (the results file keeps both).  The servers take turns, so a busy "
            "moment lowers every server's figures alike."
        ),
        "",
        "Each cell: the median figure, and in brackets the server's CPU time per "
        "operation (message echoed, handshake, delivery or request), which depends "
        "less on how much of its core a server got.  The application is "
        "`bench/servers/asgi_echo.py`, a raw ASGI application; "
        "`bench/servers/asgi_run.py` says how each server is configured.",
        "",
    ]
    for kind_is_http in (False, True):
        rows = [s for s in scenarios if (s.kind == "http") == kind_is_http]
        if not rows:
            continue
        servers = [
            s for s in (HTTP_SERVERS if kind_is_http else ASGI_SERVERS) if s in plan["servers"]
        ]
        if not servers:
            continue
        lines += [
            "| scenario | " + " | ".join(servers) + " |",
            "|---|" + "---|" * len(servers),
        ]
        for scenario in rows:
            metric = metrics_for(scenario)[0]
            cells = []
            for server in servers:
                reason = NOT_APPLICABLE.get((server, "deflate")) if scenario.deflate else None
                cells.append(reason or _cell(summary, scenario.name, server, metric.key))
            lines.append(f"| {scenario.label}, {metric.label} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += [
        "```sh",
        'pip install -e ".[bench]"   # uvicorn, hypercorn, granian, httptools, ...',
        "python -m bench.asgi         # add --quick for a short smoke run",
        "```",
    ]
    return "\n".join(lines)


def write_asgi_section(data: dict[str, Any], doc: Path) -> None:
    """Replace the "ASGI servers" section of ``doc`` (appended if missing)."""
    text = replace_section(
        doc.read_text(encoding="utf-8"), "ASGI servers", ASGI_START, ASGI_END, render_asgi(data)
    )
    doc.write_text(text, encoding="utf-8")
    log(f"wrote {doc}")


def asgi_packages() -> dict[str, str]:
    """The versions of the ASGI servers and their parts, for the record."""
    names = ("uvicorn", "websockets", "wsproto", "httptools", "h11", "hypercorn", "granian")
    return {name: package_version(name) for name in names}


def main(argv: Sequence[str] | None = None) -> int:
    all_servers = tuple(dict.fromkeys((*ASGI_SERVERS, *HTTP_SERVERS)))
    names = [s.name for s in ASGI_SCENARIOS]
    parser = argparse.ArgumentParser(
        prog="python -m bench.asgi", description="ASGI servers on one ASGI application"
    )
    parser.add_argument("--servers", default=",".join(all_servers))
    parser.add_argument("--scenarios", default=",".join(names))
    parser.add_argument("--runs", type=int, default=None, help="default 3 (1 with --quick)")
    parser.add_argument("--warmup", type=float, default=None, help="default 1 s")
    parser.add_argument("--duration", type=float, default=None, help="default 3 s")
    parser.add_argument("--quick", action="store_true", help="scaled-down scenarios, short runs")
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--client-cpu", type=int, default=1)
    parser.add_argument("--no-pin", action="store_true")
    parser.add_argument("--max-other", type=float, default=25.0, metavar="PCT")
    parser.add_argument("--retries", type=int, default=2)
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    parser.add_argument("--doc", type=Path, default=DOC)
    parser.add_argument("--no-doc", action="store_true")
    args = parser.parse_args(argv)
    quick: bool = args.quick
    servers = split_names(args.servers, all_servers, "server")
    scenarios = tuple(scenario_by_name(n) for n in split_names(args.scenarios, names, "scenario"))
    pin = not args.no_pin and (os.cpu_count() or 1) >= 2
    plan = Plan(
        servers=servers,
        scenarios=scenarios,
        loops=("asyncio",),
        runs=args.runs if args.runs is not None else (1 if quick else 3),
        warmup=args.warmup if args.warmup is not None else (0.3 if quick else 1.0),
        duration=args.duration if args.duration is not None else (0.7 if quick else 3.0),
        quick=quick,
        server_cpu=args.server_cpu if pin else None,
        client_cpu=args.client_cpu if pin else None,
        max_other=args.max_other if args.max_other >= 0 else None,
        # A smoke run is not worth repeating: its figures are not quoted.
        retries=0 if quick else args.retries,
    )
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    log_dir = args.results_dir / f"{stamp}-asgi-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    load_start = os.getloadavg()[0]
    records = Executor(plan, log_dir, servers_for=servers_for).execute()
    data = {
        "started": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": {**machine_info(), "asgi_packages": asgi_packages()},
        "loadavg": {"start": load_start, "end": os.getloadavg()[0]},
        "plan": {
            "servers": list(servers),
            "scenarios": [s.name for s in scenarios],
            "runs": plan.runs,
            "warmup": plan.warmup,
            "duration": plan.duration,
            "quick": quick,
        },
        "records": records,
        "summary": summarize(records),
    }
    write_results(data, args.results_dir / f"{stamp}-asgi.json", log_dir)
    if not args.no_doc:
        write_asgi_section(data, args.doc)
    print(render_asgi(data))
    failed = sum(1 for r in records if "error" in r and not r.get("discarded"))
    if failed:
        log(f"{failed} of {len(records)} runs failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
