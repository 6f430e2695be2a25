"""Instructions per WebSocket handshake, counted by callgrind.

    python -m bench.callgrind --face native   # examples/bench_server.py
    python -m bench.callgrind --face asgi     # bench.servers.asgi_echo via ``--interface asgi``

Instruction counts rather than wall-clock time, so that a shared, busy
machine does not disturb the figure.  The server runs under ``valgrind
--tool=callgrind --instr-atstart=no``; ``--warmup`` handshakes warm it up
(imports, caches), then instrumentation is switched on
(``callgrind_control -i on``) for ``--count`` sequential handshakes and off
again, and the total is divided by ``--count``.  Each handshake: open with a
permessage-deflate offer, a ``User-Agent`` and an ``Origin`` (the
``websockets`` client), client Close, server Close, TCP close.  This is the
procedure docs/asgi.md ("The handshake's cost") describes.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from websockets.sync.client import connect
from websockets.typing import Origin

ROOT = Path(__file__).resolve().parent.parent

__all__ = ["main"]


def _server_command(face: str, port: int) -> list[str]:
    if face == "native":
        return [sys.executable, str(ROOT / "examples" / "bench_server.py"), "--port", str(port)]
    return [
        sys.executable,
        "-m",
        "bench.servers.asgi_run",
        "--server",
        "wsserver-asgi",
        "--port",
        str(port),
    ]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_for(port: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"the server did not listen on port {port} in time")


def _handshakes(port: int, count: int) -> None:
    for _ in range(count):
        with connect(
            f"ws://127.0.0.1:{port}/",
            compression="deflate",
            user_agent_header="bench-callgrind/1",
            origin=Origin("http://127.0.0.1"),
            open_timeout=60,
            close_timeout=60,
        ):
            pass


def _control(option: str, *args: object) -> None:
    command = ["callgrind_control", option, *map(str, args)]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)


def measure(face: str, warmup: int, count: int) -> int:
    """Instructions the server executes per handshake."""
    port = _free_port()
    with tempfile.TemporaryDirectory() as directory:
        out = Path(directory) / "callgrind.out"
        server = subprocess.Popen(
            [
                "valgrind",
                "--tool=callgrind",
                "--instr-atstart=no",
                f"--callgrind-out-file={out}.%p",
                *_server_command(face, port),
            ],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait_for(port, time.monotonic() + 300)
            _handshakes(port, warmup)
            _control("-i", "on", server.pid)
            _handshakes(port, count)
            _control("-i", "off", server.pid)
            # The counts are written by an explicit dump: the one valgrind
            # writes at exit comes after instrumentation went off.
            _control("-d", server.pid)
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(120)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        total = 0
        for dump in Path(directory).iterdir():
            match = re.search(rb"^totals: (\d+)", dump.read_bytes(), re.MULTILINE)
            if match:
                total += int(match.group(1))
    return total // count


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.callgrind", description=__doc__)
    parser.add_argument("--face", choices=("native", "asgi"), default="native")
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--count", type=int, default=200)
    args = parser.parse_args(argv)
    os.environ.setdefault("PYTHONHASHSEED", "0")
    per_handshake = measure(args.face, args.warmup, args.count)
    print(f"{args.face}: {per_handshake:,} instructions per handshake")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
