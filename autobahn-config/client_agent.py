#!/usr/bin/env python3
"""wsserver's client as the agent of Autobahn's fuzzingserver.

usage::

    python autobahn-config/client_agent.py ws://127.0.0.1:9002 [--agent wsserver-client]

The shape of Autobahn's own client examples: ask ``/getCaseCount``, run each
case as an echo client on ``/runCase?case=N&agent=A`` (every message sent
back as it came, text as text, binary as binary), then ``/updateReports``
so that the fuzzing server writes ``index.json``.  The limits are raised to
what the suite sends (16 MiB messages, a million fragments); heartbeats are
off, since the suite counts every frame.  ``autobahn-config/run_client.py``
runs this against ``wstest -m fuzzingserver`` and judges the reports.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Sequence

from wsserver.client import ConnectionClosed, InvalidHandshake, connect

#: The suite's largest message (case 9.1.6, 9.2.6: 16 MiB) and most
#: fragments (9.4.1 and 9.6.1: a 4 MiB message in 64-byte frames).
MAX_SIZE = 16 * 1024 * 1024
MAX_FRAGMENTS = 1_000_000


async def case_count(base: str) -> int:
    async with connect(f"{base}/getCaseCount", ping_interval=None) as ws:
        message = await ws.recv()
    return int(message)


async def run_case(base: str, case: int, agent: str) -> None:
    uri = f"{base}/runCase?case={case}&agent={agent}"
    try:
        async with connect(
            uri,
            max_size=MAX_SIZE,
            max_fragments=MAX_FRAGMENTS,
            max_queue=1024,
            ping_interval=None,
            close_timeout=5.0,
        ) as ws:
            async for message in ws:
                await ws.send(message)
    except ConnectionClosed:
        pass  # the case closed or failed the connection: its report says how
    except (InvalidHandshake, OSError) as exc:
        print(f"case {case}: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)


async def update_reports(base: str, agent: str) -> None:
    async with connect(f"{base}/updateReports?agent={agent}", ping_interval=None) as ws:
        async for _ in ws:
            pass


async def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("base", help="the fuzzing server's URI, ws://HOST:PORT")
    parser.add_argument("--agent", default="wsserver-client")
    parser.add_argument("--cases", type=int, help="run only the first N cases")
    parser.add_argument("--first", type=int, default=1, help="start at case N (default 1)")
    args = parser.parse_args(argv)
    base = args.base.rstrip("/")
    count = await case_count(base)
    if args.cases is not None:
        count = min(count, args.cases)
    print(f"[agent] {count} cases", flush=True)
    started = time.monotonic()
    for case in range(args.first, count + 1):
        await run_case(base, case, args.agent)
        if case % 50 == 0:
            print(f"[agent] {case}/{count} in {time.monotonic() - started:.0f} s", flush=True)
    await update_reports(base, args.agent)
    print(f"[agent] done: {count} cases in {time.monotonic() - started:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
