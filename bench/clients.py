"""The client rows: WebSocket clients side by side against one fixed, fast server.

    python -m bench.clients                    # every client and size, 3 s each
    python -m bench.clients --quick            # short runs, for a try
    python -m bench.clients --clients wsserver,picows --sizes 256

The shape of tarasko's websocket-benchmark for clients: one connection, one
binary message in flight, echoed by the server; round trips per second, for
256 B, 64 KiB and 1 MiB messages.  The server is always picows' echo server
(bench/servers/ws_picows.py, Cython, on uvloop) pinned to one core, so that
the client, pinned to the other, is what is measured.  Each client runs in a
process of its own (``--one``) on the standard asyncio loop (``--uvloop``
for uvloop), without compression (picows has none) and without heartbeats;
every echo's length is checked.

Clients: ``wsserver`` (``wsserver.client.connect``), ``websockets``
(``websockets.asyncio.client.connect``), ``aiohttp``
(``ClientSession.ws_connect``) and ``picows`` (``ws_connect`` with a
``WSListener``).  The medians of ``--runs`` go to the "Clients" section of
docs/benchmarks.md (``--no-doc`` to leave it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["CLIENTS", "SIZES", "main", "measure", "render_clients"]

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"
RESULTS_DIR = ROOT / "bench" / "results"
CLIENTS_START = "<!-- clients:start -->"
CLIENTS_END = "<!-- clients:end -->"

CLIENTS = ("wsserver", "websockets", "aiohttp", "picows")
#: tarasko's sizes: a small message, a medium one, a large one.
SIZES = (256, 64 * 1024, 1024 * 1024)
#: Above the largest message: no client refuses an echo for its size.
MAX_SIZE = 4 * 1024 * 1024
#: A client process that takes longer than its runs plus this is stopped.
CLIENT_SLACK = 60.0

RoundTrip = Callable[[], Awaitable[None]]


class EchoMismatch(AssertionError):
    """The server's echo is not the message sent (its length differs)."""


def _check(sent: int, received: int) -> None:
    if sent != received:
        raise EchoMismatch(f"sent {sent} bytes, the echo has {received}")


# -- one client ------------------------------------------------------------------------


async def _open_wsserver(url: str, payload: bytes, stack: AsyncExitStack) -> RoundTrip:
    from wsserver.client import connect

    ws = await stack.enter_async_context(
        connect(url, compression=None, max_size=MAX_SIZE, ping_interval=None)
    )

    async def round_trip() -> None:
        await ws.send(payload)
        echo = await ws.recv()
        _check(len(payload), len(echo))

    return round_trip


async def _open_websockets(url: str, payload: bytes, stack: AsyncExitStack) -> RoundTrip:
    from websockets.asyncio.client import connect

    ws = await stack.enter_async_context(
        connect(url, compression=None, max_size=MAX_SIZE, ping_interval=None)
    )

    async def round_trip() -> None:
        await ws.send(payload)
        echo = await ws.recv()
        _check(len(payload), len(echo))

    return round_trip


async def _open_aiohttp(url: str, payload: bytes, stack: AsyncExitStack) -> RoundTrip:
    import aiohttp

    session = await stack.enter_async_context(aiohttp.ClientSession())
    ws = await stack.enter_async_context(
        session.ws_connect(url, compress=0, max_msg_size=MAX_SIZE, autoping=True, heartbeat=None)
    )

    async def round_trip() -> None:
        await ws.send_bytes(payload)
        message = await ws.receive()
        _check(len(payload), len(message.data))

    return round_trip


async def _open_picows(url: str, payload: bytes, stack: AsyncExitStack) -> RoundTrip:
    from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

    loop = asyncio.get_running_loop()

    class Listener(WSListener):
        def __init__(self) -> None:
            self.waiter: asyncio.Future[int] | None = None

        def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
            # The server echoes each message in one frame (none is fragmented).
            if frame.msg_type is WSMsgType.BINARY and self.waiter is not None:
                self.waiter.set_result(len(frame.get_payload_as_memoryview()))

    transport, opened = await ws_connect(Listener, url, max_frame_size=MAX_SIZE)
    assert isinstance(opened, Listener)
    listener = opened
    stack.callback(transport.disconnect)

    async def round_trip() -> None:
        waiter = listener.waiter = loop.create_future()
        transport.send(WSMsgType.BINARY, payload)
        _check(len(payload), await waiter)

    return round_trip


OPENERS: dict[str, Callable[[str, bytes, AsyncExitStack], Awaitable[RoundTrip]]] = {
    "wsserver": _open_wsserver,
    "websockets": _open_websockets,
    "aiohttp": _open_aiohttp,
    "picows": _open_picows,
}


async def measure(
    client: str, url: str, size: int, *, duration: float, warmup: float
) -> dict[str, Any]:
    """Round trips of ``size`` bytes over one connection of ``client``, for ``duration``.

    Returns ``{"client", "size", "round_trips", "seconds", "per_second",
    "cpu_pct"}`` (the client process's CPU time over the measured time).
    """
    payload = os.urandom(size)
    async with AsyncExitStack() as stack:
        round_trip = await OPENERS[client](url, payload, stack)
        deadline = time.perf_counter() + warmup
        while time.perf_counter() < deadline:
            await round_trip()
        count = 0
        cpu = time.process_time()
        start = time.perf_counter()
        deadline = start + duration
        while True:
            await round_trip()
            count += 1
            now = time.perf_counter()
            if now >= deadline:
                break
        seconds = now - start
        cpu = time.process_time() - cpu
    return {
        "client": client,
        "size": size,
        "round_trips": count,
        "seconds": seconds,
        "per_second": count / seconds,
        "cpu_pct": 100.0 * cpu / seconds,
    }


# -- the harness ----------------------------------------------------------------------


def run_one(
    client: str,
    port: int,
    size: int,
    *,
    duration: float,
    warmup: float,
    uvloop: bool,
    cpu: int | None,
) -> dict[str, Any]:
    """``measure`` in a process of its own (``--one``); its JSON, or ``{"error": ...}``."""
    from bench.run import PYTHON, run_measuring_child

    command = [
        PYTHON,
        "-m",
        "bench.clients",
        "--one",
        client,
        "--port",
        str(port),
        "--sizes",
        str(size),
        "--duration",
        str(duration),
        "--warmup",
        str(warmup),
    ]
    if uvloop:
        command.append("--uvloop")
    result = run_measuring_child(
        command, timeout=warmup + duration + CLIENT_SLACK, cpu=cpu, what="client"
    )
    if "error" in result:
        return {"client": client, "size": size, **result}
    return result


def summarize(records: Sequence[dict[str, Any]]) -> dict[tuple[str, int], dict[str, Any]]:
    """The median round trips per second (and client CPU) per ``(client, size)``."""
    groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for record in records:
        groups.setdefault((record["client"], record["size"]), []).append(record)
    summary = {}
    for key, group in groups.items():
        good = [r for r in group if "error" not in r]
        summary[key] = {
            "per_second": statistics.median(r["per_second"] for r in good) if good else None,
            "cpu_pct": statistics.median(r["cpu_pct"] for r in good) if good else None,
            # The client's CPU time per round trip: what a busy machine
            # disturbs least (waiting for a core is not counted).
            "cpu_us": (
                statistics.median(1e4 * r["cpu_pct"] / r["per_second"] for r in good)
                if good
                else None
            ),
            "runs": len(good),
            "errors": [r["error"] for r in group if "error" in r],
        }
    return summary


def _size_label(size: int) -> str:
    if size >= 1024 * 1024:
        return f"{size // (1024 * 1024)} MiB"
    if size >= 1024:
        return f"{size // 1024} KiB"
    return f"{size} B"


def render_clients(
    summary: dict[tuple[str, int], dict[str, Any]],
    clients: Sequence[str],
    sizes: Sequence[int],
    note: str,
) -> str:
    """The Markdown tables: round trips per second, then the client's CPU time per
    round trip; a row per client, a column per size; ``(x)``: picows' figure over
    the client's for time, the client's over picows' for rates (higher is better)."""
    header = "| client | " + " | ".join(_size_label(size) for size in sizes) + " |"
    blocks = []
    for title, field, fmt, higher_is_better in (
        ("Round trips per second", "per_second", "{:,.0f}", True),
        ("Client CPU time per round trip, µs", "cpu_us", "{:,.0f}", False),
    ):
        lines = [f"**{title}**", "", header, "|---|" + "--:|" * len(sizes)]
        for client in clients:
            cells = []
            for size in sizes:
                cell = summary.get((client, size))
                ours = cell[field] if cell else None
                if ours is None:
                    cells.append("error" if cell and cell["errors"] else "-")
                    continue
                text = fmt.format(ours)
                reference = summary.get(("picows", size))
                theirs = reference[field] if reference else None
                if client != "picows" and theirs:
                    ratio = ours / theirs if higher_is_better else theirs / ours
                    text += f" ({ratio:.2f}x)"
                cells.append(text)
            lines.append(f"| {client} | " + " | ".join(cells) + " |")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n\n" + note + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.clients", description=__doc__)
    parser.add_argument("--clients", default=",".join(CLIENTS))
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--warmup", type=float, default=0.5)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="one short run of each")
    parser.add_argument("--uvloop", action="store_true", help="the clients on uvloop")
    parser.add_argument("--no-doc", action="store_true", help="leave docs/benchmarks.md")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # a client process: measure()
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    clients = [c for c in args.clients.split(",") if c]
    sizes = [int(s) for s in args.sizes.split(",") if s]
    unknown = set(clients) - set(CLIENTS)
    if unknown:
        parser.error(f"unknown clients: {', '.join(sorted(unknown))}")

    if args.one:
        if args.uvloop:
            import uvloop

            uvloop.install()
        result = asyncio.run(
            measure(
                args.one,
                f"ws://127.0.0.1:{args.port}/",
                sizes[0],
                duration=args.duration,
                warmup=args.warmup,
            )
        )
        print(json.dumps(result))
        return 0

    from bench.run import log, machine_info, replace_section, running_server

    if args.quick:
        args.duration, args.warmup, args.runs = min(args.duration, 1.0), 0.2, 1
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    records: list[dict[str, Any]] = []
    two_cores = (os.cpu_count() or 1) >= 2
    with running_server(
        "picows",
        deflate=False,
        uvloop=True,
        cpu=0 if two_cores else None,
        log=RESULTS_DIR / "clients-server.log",
    ) as (port, _):
        for run in range(args.runs):
            for size in sizes:
                for client in clients:
                    record = run_one(
                        client,
                        port,
                        size,
                        duration=args.duration,
                        warmup=args.warmup,
                        uvloop=args.uvloop,
                        cpu=1 if two_cores else None,
                    )
                    record["run"] = run
                    records.append(record)
                    log(
                        f"{client} {_size_label(size)} run {run + 1}: "
                        + (
                            record["error"]
                            if "error" in record
                            else f"{record['per_second']:,.0f} round trips/s"
                        )
                    )
    summary = summarize(records)
    machine = machine_info()
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    note = (
        f"Round trips per second over one connection (median of {args.runs} runs of "
        f"{args.duration:g} s), against picows' echo server on uvloop; the client on "
        f"{'uvloop' if args.uvloop else 'the asyncio loop'}, pinned to the other core; "
        "(x): as fast as picows' client is 1.00x, higher is better. "
        f"`python -m bench.clients`, {when}, "
        f"{machine['cpu_model']}, {machine['cpus']} CPUs, shared with other work."
    )
    table = render_clients(summary, clients, sizes, note)
    print(table)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    (RESULTS_DIR / f"clients-{stamp}.json").write_text(
        json.dumps({"machine": machine, "records": records}, indent=1)
    )
    if not args.no_doc:
        DOC.write_text(
            replace_section(DOC.read_text(), "Clients", CLIENTS_START, CLIENTS_END, table)
        )
    return 0 if all("error" not in r for r in records) else 1


if __name__ == "__main__":
    sys.exit(main())
