"""Start one ASGI server on ``bench.servers.asgi_echo:app``.

    python -m bench.servers.asgi_run --server uvicorn-wsproto --port 9001

Each server is configured alike, as far as each allows: one process, no
access log, warnings only, the same largest message as the other benchmark
servers (64 MiB), no heartbeat pings (none would fall inside a run, and not
every server can turn them off the same way), permessage-deflate only with
``--deflate``.

- ``wsserver-asgi``: ``wsserver run ... --interface asgi``, through the
  command line a user types, with the per-connection message and byte rates
  off (as in ``examples/bench_server.py``): the peers have no such limit,
  and with it the rows would measure wsserver's default of 1,000 messages a
  second per connection instead of the server.
- ``uvicorn-websockets``, ``uvicorn-wsproto``: uvicorn with its WebSocket
  layer on websockets (its sans-I/O implementation, the one uvicorn is moving
  to) or on wsproto; HTTP on httptools (uvicorn's ``auto``).
- ``uvicorn-h11``, ``uvicorn-httptools``: uvicorn with either HTTP parser,
  for the HTTP "hello" row.
- ``hypercorn``: hypercorn's asyncio worker (h11 and wsproto underneath).
- ``granian``: granian's ASGI interface, one worker (a Rust server: its
  worker is a child process, whose CPU time the load generator counts).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from typing import Any, cast

from bench.servers._common import MAX_MESSAGE_SIZE

__all__ = ["ASGI_SERVERS", "main"]

APP = "bench.servers.asgi_echo:app"

#: Every server this module starts.
ASGI_SERVERS = (
    "wsserver-asgi",
    "uvicorn-websockets",
    "uvicorn-wsproto",
    "uvicorn-h11",
    "uvicorn-httptools",
    "hypercorn",
    "granian",
)


def _wsserver(port: int, deflate: bool, uvloop: bool) -> None:
    from wsserver.cli import main as wsserver_main

    argv = [
        "run",
        APP,
        "--interface",
        "asgi",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--ws-max-size",
        str(MAX_MESSAGE_SIZE),
        "--ws-ping-interval",
        "none",
        "--no-access-log",
        "--log-level",
        "warning",
        "--message-rate-per-connection",
        "none",
        "--byte-rate-per-connection",
        "none",
        "--compression" if deflate else "--no-compression",
        "--loop",
        "uvloop" if uvloop else "asyncio",
    ]
    sys.exit(wsserver_main(argv))


def _uvicorn(port: int, deflate: bool, uvloop: bool, *, ws: str, http: str) -> None:
    import uvicorn

    uvicorn.run(
        APP,
        host="127.0.0.1",
        port=port,
        ws=ws,
        http=http,
        loop="uvloop" if uvloop else "asyncio",
        ws_max_size=MAX_MESSAGE_SIZE,
        ws_ping_interval=None,
        ws_per_message_deflate=deflate,
        access_log=False,
        log_level="warning",
        lifespan="on",
    )


def _hypercorn(port: int, deflate: bool, uvloop: bool) -> None:
    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    from bench.servers.asgi_echo import app

    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.websocket_max_message_size = MAX_MESSAGE_SIZE
    config.accesslog = None
    config.loglevel = "WARNING"
    # hypercorn offers permessage-deflate whenever the client asks (wsproto);
    # it has no switch to turn it off: the load generator only offers it
    # with --deflate.
    del deflate
    # (hypercorn's precise ASGI types against a plain callable: Any.)
    coro = serve(cast(Any, app), config)
    if uvloop:
        import uvloop as uvloop_module

        uvloop_module.run(coro)
    else:
        asyncio.run(coro)


def _granian(port: int, deflate: bool, uvloop: bool) -> None:
    from granian import Granian
    from granian.constants import Interfaces, Loops

    del deflate  # granian negotiates no permessage-deflate
    Granian(
        APP,
        address="127.0.0.1",
        port=port,
        interface=Interfaces.ASGI,
        workers=1,
        loop=Loops.uvloop if uvloop else Loops.asyncio,
        websockets=True,
        log_access=False,
    ).serve()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="start one ASGI benchmark server")
    parser.add_argument("--server", choices=ASGI_SERVERS, required=True)
    parser.add_argument("--port", type=int, default=9001)
    parser.add_argument("--deflate", action="store_true", help="offer permessage-deflate")
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop")
    args = parser.parse_args(argv)
    server: str = args.server
    if server == "wsserver-asgi":
        _wsserver(args.port, args.deflate, args.uvloop)
    elif server.startswith("uvicorn-"):
        flavour = server.removeprefix("uvicorn-")
        ws = {"websockets": "websockets-sansio", "wsproto": "wsproto"}.get(flavour, "none")
        http = flavour if flavour in ("h11", "httptools") else "httptools"
        _uvicorn(args.port, args.deflate, args.uvloop, ws=ws, http=http)
    elif server == "hypercorn":
        _hypercorn(args.port, args.deflate, args.uvloop)
    else:
        _granian(args.port, args.deflate, args.uvloop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
