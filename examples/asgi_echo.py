"""An echo server written for Starlette, served through wsserver's ASGI face.

    wsserver run examples.asgi_echo:app --port 9001

serves it at ws://127.0.0.1:9001/: text comes back as text, binary as
binary.  It is the Autobahn|Testsuite target for the ASGI face
(``autobahn-config/run.py --server-cmd``), beside ``examples.echo:EchoView``
for the native one.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect


async def echo(websocket: WebSocket) -> None:
    """Send every message back unchanged, until the peer leaves."""
    await websocket.accept()
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("text") is not None:
                await websocket.send_text(message["text"])
            else:
                await websocket.send_bytes(message["bytes"])
    except WebSocketDisconnect:
        pass


app = Starlette(routes=[WebSocketRoute("/", echo)])
