"""aiohttp (web.WebSocketResponse) echo + broadcast server."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable

from aiohttp import WSMsgType, web

from bench.servers._common import MAX_MESSAGE_SIZE, Options, parse_broadcast, parse_options, run
from bench.servers._common import stop_event as make_stop_event

CONNECTED: set[web.WebSocketResponse] = set()


def make_handler(deflate: bool) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handler(request: web.Request) -> web.StreamResponse:
        websocket = web.WebSocketResponse(max_msg_size=MAX_MESSAGE_SIZE, compress=deflate)
        await websocket.prepare(request)
        CONNECTED.add(websocket)
        try:
            async for message in websocket:
                if message.type is WSMsgType.TEXT:
                    command = parse_broadcast(message.data)
                    if command is None:
                        await websocket.send_str(message.data)
                        continue
                    count, size = command
                    text = "x" * size
                    for _ in range(count):
                        # aiohttp has no broadcast helper: a loop of sends.
                        for peer in list(CONNECTED):
                            if not peer.closed:
                                await peer.send_str(text)
                elif message.type is WSMsgType.BINARY:
                    await websocket.send_bytes(message.data)
        finally:
            CONNECTED.discard(websocket)
        return websocket

    return handler


async def main(options: Options) -> None:
    stop = make_stop_event()
    app = web.Application(client_max_size=MAX_MESSAGE_SIZE)
    app.router.add_get("/", make_handler(options.deflate))
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", options.port)
    await site.start()
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    sys.exit(run(main, parse_options("aiohttp", sys.argv[1:])))
