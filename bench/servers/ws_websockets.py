"""websockets (asyncio implementation) echo + broadcast server."""

from __future__ import annotations

import sys

from websockets.asyncio.server import ServerConnection, broadcast, serve

from bench.servers._common import MAX_MESSAGE_SIZE, Options, parse_broadcast, parse_options, run
from bench.servers._common import stop_event as make_stop_event

CONNECTED: set[ServerConnection] = set()


async def handler(websocket: ServerConnection) -> None:
    CONNECTED.add(websocket)
    try:
        async for message in websocket:
            if isinstance(message, str):
                command = parse_broadcast(message)
                if command is not None:
                    count, size = command
                    text = "x" * size
                    for _ in range(count):
                        broadcast(CONNECTED, text)
                    continue
            await websocket.send(message)
    finally:
        CONNECTED.discard(websocket)


async def main(options: Options) -> None:
    stop = make_stop_event()
    async with serve(
        handler,
        "127.0.0.1",
        options.port,
        max_size=MAX_MESSAGE_SIZE,
        compression="deflate" if options.deflate else None,
    ):
        await stop.wait()


if __name__ == "__main__":
    sys.exit(run(main, parse_options("websockets", sys.argv[1:])))
