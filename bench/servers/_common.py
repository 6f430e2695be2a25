"""What the peer servers share: options, the broadcast command, the loop."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

__all__ = [
    "MAX_MESSAGE_SIZE",
    "Options",
    "parse_broadcast",
    "parse_options",
    "run",
    "stop_event",
]

#: Largest message accepted (as examples/bench_server.py).
MAX_MESSAGE_SIZE = 64 * 1024 * 1024
MAX_BROADCAST_COUNT = 1_000_000
DEFAULT_BROADCAST_SIZE = 16


class Options(argparse.Namespace):
    port: int
    deflate: bool
    uvloop: bool


def parse_options(name: str, argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(description=f"{name} benchmark server: echo plus broadcast")
    parser.add_argument("--port", type=int, default=9001)
    parser.add_argument("--deflate", action="store_true", help="offer permessage-deflate")
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop")
    return parser.parse_args(argv, namespace=Options())


def parse_broadcast(text: str) -> tuple[int, int] | None:
    """``(n, size)`` for ``broadcast:<n>[:<size>]``, else ``None`` (echo it)."""
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


def stop_event() -> asyncio.Event:
    """An event set by SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    return stop


def run(main: Callable[[Options], Coroutine[Any, Any, None]], options: Options) -> int:
    """Run ``main(options)`` on asyncio, or on uvloop with ``--uvloop``."""
    logging.basicConfig(level=logging.WARNING)
    if options.uvloop:
        import uvloop

        uvloop.run(main(options))
    else:
        asyncio.run(main(options))
    return 0
