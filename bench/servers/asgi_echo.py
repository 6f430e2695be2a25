"""The ASGI benchmark application: echo, broadcast and an HTTP "hello".

A raw ASGI 3 application, no framework, so that the rows measure the
servers and not a framework's routing: every ASGI server in bench/ serves
this same application (``bench/servers/asgi_run.py`` starts them).

- WebSocket: accept, then send every message back as it came (text as
  text, bytes as bytes); ``broadcast:<n>[:<size>]`` sends ``n`` messages of
  ``size`` characters to every connection, one ``send`` each, as an ASGI
  application has to (ASGI has no broadcast).
- HTTP: ``hello`` with a ``Content-Length`` (the body, if any, is read and
  dropped).
- Lifespan: answered, so that no server logs that it is unsupported.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from bench.servers._common import parse_broadcast

__all__ = ["app"]

Message = dict[str, Any]
Send = Callable[[Message], Awaitable[None]]
Receive = Callable[[], Awaitable[Message]]

#: The ``send`` of every open WebSocket, for broadcasts.
CONNECTED: set[Send] = set()

_HELLO_START: Message = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", b"text/plain"), (b"content-length", b"5")],
}
_HELLO_BODY: Message = {"type": "http.response.body", "body": b"hello"}


async def app(scope: Message, receive: Receive, send: Send) -> None:
    kind = scope["type"]
    if kind == "websocket":
        await websocket(receive, send)
    elif kind == "http":
        while (await receive()).get("more_body"):
            pass
        await send(_HELLO_START)
        await send(_HELLO_BODY)
    elif kind == "lifespan":
        while True:
            event = await receive()
            if event["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return


async def websocket(receive: Receive, send: Send) -> None:
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    CONNECTED.add(send)
    try:
        while True:
            event = await receive()
            if event["type"] != "websocket.receive":
                return
            text = event.get("text")
            if text is not None:
                command = parse_broadcast(text)
                if command is not None:
                    await broadcast(*command)
                    continue
                await send({"type": "websocket.send", "text": text})
            else:
                await send({"type": "websocket.send", "bytes": event["bytes"]})
    finally:
        CONNECTED.discard(send)


async def broadcast(count: int, size: int) -> None:
    message = {"type": "websocket.send", "text": "x" * size}
    for _ in range(count):
        for peer in list(CONNECTED):
            try:
                await peer(message)
            except OSError:  # ClientDisconnected (ASGI 2.4) and the like
                CONNECTED.discard(peer)
