"""Soak-test server: echo WebSocket at ``/``, process figures at ``GET /stats``.

    python examples/soak_server.py [--port 0] [--ping-interval 5]

prints ``listening on 127.0.0.1:<port>`` once it accepts connections, then
serves until SIGTERM or SIGINT.  ``GET /stats`` answers JSON about this
process::

    {"rss_kib": 41234, "fds": 17, "tasks": 2, "connections": 0, "transports": 1}

``rss_kib`` is the resident set size (``VmRSS``), ``fds`` the open file
descriptors, ``tasks`` the asyncio tasks alive, ``connections`` the open
WebSocket connections and ``transports`` every accepted socket (the one
asking for the stats included).  With ``?trim=1`` the garbage collector runs
and the C allocator returns its free pages first (``malloc_trim``, where
glibc has it), so that the RSS shows what is held rather than what the
allocator keeps for later.  ``bench/soak.py`` drives it.

The server raises the soft ``RLIMIT_NOFILE`` to the hard limit when it
starts (``Server.start``), so that thousands of connections fit; heartbeats
run every ``--ping-interval`` seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import ctypes.util
import gc
import logging
import os
import signal
import sys
from collections.abc import Sequence

from wsserver import (
    App,
    JSONResponse,
    Request,
    Route,
    Server,
    ServerConfig,
    WebSocket,
    WebSocketRoute,
    WebSocketView,
)

#: The server being measured (set by ``run``), for ``/stats``.
_SERVER: list[Server] = []


class Echo(WebSocketView):
    """Send every message back unchanged."""

    async def on_receive(self, websocket: WebSocket, data: str | bytes) -> None:
        if isinstance(data, str):
            await websocket.send_text(data)
        else:
            await websocket.send_bytes(data)


def rss_kib() -> int:
    """This process's resident set size in KiB (``VmRSS``; 0 if unknown)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def trim_memory() -> None:
    """Collect garbage and hand the C allocator's free pages back to the OS."""
    gc.collect()
    name = ctypes.util.find_library("c")
    if name is None:
        return
    libc = ctypes.CDLL(name)
    malloc_trim = getattr(libc, "malloc_trim", None)
    if malloc_trim is not None:
        malloc_trim(0)


def open_fds() -> int:
    """File descriptors open in this process."""
    return len(os.listdir("/proc/self/fd"))


async def stats(request: Request) -> JSONResponse:
    """The process's figures, as JSON."""
    if request.query_params.get("trim") == "1":
        trim_memory()
    server = _SERVER[0] if _SERVER else None
    return JSONResponse(
        {
            "rss_kib": rss_kib(),
            "fds": open_fds(),
            "tasks": len(asyncio.all_tasks()),
            "connections": len(server.websockets) if server is not None else 0,
            "transports": len(server.connections) if server is not None else 0,
        }
    )


app = App([WebSocketRoute("/", Echo), Route("/stats", stats)])


async def run(port: int, ping_interval: float) -> None:
    """Serve until SIGTERM or SIGINT."""
    config = ServerConfig(
        host="127.0.0.1",
        port=port,
        ping_interval=ping_interval,
        ping_timeout=ping_interval,
        max_connections=None,
        backlog=4096,
    )
    server = Server(app, config)
    _SERVER[:] = [server]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await server.start()
    print(f"listening on 127.0.0.1:{server.port}", flush=True)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await server.shutdown()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="wsserver soak-test server: echo plus /stats")
    parser.add_argument("--port", type=int, default=0, help="TCP port (0: a free one)")
    parser.add_argument(
        "--ping-interval", type=float, default=5.0, help="heartbeat interval and timeout (s)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(run(args.port, args.ping_interval))
    return 0


if __name__ == "__main__":
    sys.exit(main())
