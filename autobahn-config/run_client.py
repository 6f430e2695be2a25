#!/usr/bin/env python3
"""Run the Autobahn|Testsuite fuzzing server against wsserver's client and judge it.

usage::

    python autobahn-config/run_client.py                  # all 517 cases
    python autobahn-config/run_client.py --cases 20       # the first 20

Steps, the mirror of ``run.py`` (which tests the server):

1. find ``wstest`` as ``run.py`` does (``--wstest``, else ``--wstest-prefix``,
   installed there when missing);
2. start ``wstest -m fuzzingserver`` with a copy of ``fuzzingserver.json``
   (every case, the chosen port, reports in
   ``autobahn-config/reports/clients/``, emptied first) and wait for its port;
3. run ``client_agent.py`` with this interpreter: the case count, each case
   as an echo client, then ``/updateReports``;
4. stop the fuzzing server, whatever happened;
5. judge ``reports/clients/index.json`` with ``run.py``'s strict gate: every
   case's ``behavior`` and ``behaviorClose`` OK or INFORMATIONAL
   (NON-STRICT fails), and a full run is exactly 517 cases.

Exit status as ``run.py``: 0 pass, 1 failing cases, 2 the run could not be
done.  Needs wsserver importable by this interpreter (the agent is its
client); run it with the project's virtualenv.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import run  # noqa: E402  (run.py beside this file: the shared judging and process helpers)

CONFIG = HERE / "fuzzingserver.json"
AGENT_SCRIPT = HERE / "client_agent.py"
AGENT = "wsserver-client"
REPORTS = HERE / "reports" / "clients"
AGENT_TIMEOUT = 30 * 60.0


def write_config(directory: Path, port: int, outdir: Path) -> Path:
    config: dict[str, Any] = json.loads(CONFIG.read_text(encoding="utf-8"))
    config["url"] = f"ws://{run.HOST}:{port}"
    config["outdir"] = str(outdir)
    config["cases"] = ["*"]
    path = directory / "fuzzingserver.json"
    path.write_text(json.dumps(config, indent=2), encoding="utf-8")
    return path


def run_agent(port: int, cases: int | None, log_path: Path) -> None:
    command = [sys.executable, str(AGENT_SCRIPT), f"ws://{run.HOST}:{port}", "--agent", AGENT]
    if cases is not None:
        command += ["--cases", str(cases)]
    print(f"[autobahn-client] running the agent: {' '.join(command)}", flush=True)
    started = time.monotonic()
    try:
        completed = subprocess.run(
            command, cwd=run.REPO, stdin=subprocess.DEVNULL, timeout=AGENT_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired:
        raise run.RunError(f"the agent did not finish within {AGENT_TIMEOUT:.0f} s") from None
    print(f"[autobahn-client] agent finished in {time.monotonic() - started:.0f} s", flush=True)
    if completed.returncode != 0:
        raise run.RunError(f"the agent exited with status {completed.returncode}")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, help="run only the first N cases (default: all)")
    parser.add_argument("--port", type=int, default=9002, help="fuzzing server port (9002)")
    parser.add_argument("--wstest", metavar="PATH", help="the wstest executable to use")
    parser.add_argument(
        "--wstest-prefix",
        type=Path,
        default=run.DEFAULT_PREFIX,
        help=f"where wstest is found or installed (default: {run.DEFAULT_PREFIX})",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        wstest = run.find_wstest(args.wstest, args.wstest_prefix)
        shutil.rmtree(REPORTS, ignore_errors=True)
        REPORTS.mkdir(parents=True)
        with tempfile.TemporaryDirectory(prefix="wsserver-autobahn-client-") as tmp:
            directory = Path(tmp)
            config = write_config(directory, args.port, REPORTS)
            # --webport 0: no report web server on 8080 (it would collide
            # with anything else listening there, another run included).
            command = [wstest, "-m", "fuzzingserver", "-s", str(config), "--webport", "0"]
            with run.running_server(command, args.port, directory / "fuzzingserver.log"):
                run_agent(args.port, args.cases, directory / "agent.log")
        results = run.load_results(run.find_index(REPORTS), AGENT)
    except run.RunError as exc:
        print(f"[autobahn-client] error: {exc}", file=sys.stderr, flush=True)
        return 2
    return run.summarise(results, REPORTS, full_run=args.cases is None, markdown=None)


if __name__ == "__main__":
    sys.exit(main())
