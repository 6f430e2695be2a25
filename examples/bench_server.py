"""Benchmark server: echo (as examples/echo.py) plus broadcast.

    python examples/bench_server.py --port 9001 [--deflate] [--uvloop] [--metrics]

serves ws://127.0.0.1:9001/.  Every message comes back unchanged (text as
text, binary as binary), except a text message ``broadcast:<n>[:<size>]``:
it is not echoed; instead the server sends ``n`` text messages of ``size``
bytes (default 16) to every connected client, the sender included, each
with ``wsserver.broadcast`` (the frame is encoded once for all clients).

Messages up to 64 MiB are accepted, compression is off unless ``--deflate``,
Prometheus metrics are served at ``/metrics`` with ``--metrics`` (to measure
what they cost), and the server stops on SIGTERM or SIGINT.  ``bench/run.py`` uses it as the
wsserver side of the benchmarks; ``wsserver run examples.bench_server:app``
serves the same application with the command line's settings instead.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence

from wsserver import (
    App,
    DeflateSettings,
    ProtocolSettings,
    ServerConfig,
    WebSocket,
    WebSocketRoute,
    WebSocketView,
    broadcast,
    serve,
)

#: Largest message accepted, and the largest broadcast ``size``.
MAX_MESSAGE_SIZE = 64 * 1024 * 1024
#: Most messages one ``broadcast:`` command may ask for.
MAX_BROADCAST_COUNT = 1_000_000
DEFAULT_BROADCAST_SIZE = 16

#: The open connections, for broadcasting.
CONNECTED: set[WebSocket] = set()


def parse_broadcast(text: str) -> tuple[int, int] | None:
    """``(n, size)`` for a ``broadcast:<n>[:<size>]`` command, else ``None``.

    Anything malformed or out of bounds is not a command (it is echoed).
    """
    if not text.startswith("broadcast:"):
        return None
    fields = text[len("broadcast:") :].split(":")
    if len(fields) > 2 or not all(f.isdigit() and f.isascii() for f in fields):
        return None
    count = int(fields[0])
    size = int(fields[1]) if len(fields) == 2 else DEFAULT_BROADCAST_SIZE
    if count > MAX_BROADCAST_COUNT or size > MAX_MESSAGE_SIZE:
        return None
    return count, size


class BenchView(WebSocketView):
    """Echo every message, or broadcast on ``broadcast:<n>[:<size>]``."""

    async def on_connect(self, websocket: WebSocket) -> None:
        await websocket.accept()
        CONNECTED.add(websocket)

    async def on_receive(self, websocket: WebSocket, data: str | bytes) -> None:
        if isinstance(data, str):
            command = parse_broadcast(data)
            if command is None:
                await websocket.send_text(data)
                return
            count, size = command
            message = "x" * size
            for _ in range(count):
                broadcast(CONNECTED, message)
        else:
            await websocket.send_bytes(data)

    async def on_disconnect(self, websocket: WebSocket, close_code: int) -> None:
        CONNECTED.discard(websocket)


app = App([WebSocketRoute("/", BenchView)])


def build_config(port: int, *, deflate: bool, metrics: bool = False) -> ServerConfig:
    """The server's settings: 64 MiB messages, compression and metrics only if asked."""
    return ServerConfig(
        host="127.0.0.1",
        port=port,
        protocol=ProtocolSettings(max_message_size=MAX_MESSAGE_SIZE),
        deflate=DeflateSettings() if deflate else None,
        metrics_path="/metrics" if metrics else None,
        # The benchmarks measure what one connection can push through a
        # worker: the per-connection rates (fairness between neighbours)
        # would measure the limits instead.  Production keeps them.
        message_rate_per_connection=None,
        byte_rate_per_connection=None,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="wsserver benchmark server: echo plus broadcast")
    parser.add_argument("--port", type=int, default=9001)
    parser.add_argument("--deflate", action="store_true", help="offer permessage-deflate")
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop")
    parser.add_argument("--metrics", action="store_true", help="serve /metrics (Prometheus)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    config = build_config(args.port, deflate=args.deflate, metrics=args.metrics)
    if args.uvloop:
        import uvloop

        uvloop.run(serve(app, config))
    else:
        asyncio.run(serve(app, config))
    return 0


if __name__ == "__main__":
    sys.exit(main())
