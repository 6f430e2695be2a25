"""A Starlette application on wsserver: HTTP routes, a WebSocket room, lifespan.

    wsserver run examples.starlette_app:app --port 8000

- ``GET /`` says hello; ``GET /items/{id}`` answers JSON;
- ``ws://127.0.0.1:8000/rooms/{room}`` echoes JSON messages with the room's
  name; a room called ``private`` refuses the handshake with 403 and a body
  (the ASGI denial-response extension);
- the lifespan sets ``state.started``, which every request sees.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[dict[str, object]]:
    """What every request and connection finds in ``request.state``."""
    yield {"started": True}


async def home(request: Request) -> Response:
    return PlainTextResponse(f"hello (started={request.state.started})\n")


async def item(request: Request) -> Response:
    return JSONResponse({"id": request.path_params["item_id"]})


async def room(websocket: WebSocket) -> None:
    name = websocket.path_params["room"]
    if name == "private":
        await websocket.send_denial_response(PlainTextResponse("private room\n", status_code=403))
        return
    await websocket.accept()
    try:
        async for message in websocket.iter_json():
            await websocket.send_json({"room": name, "echo": message})
    except WebSocketDisconnect:
        pass


app = Starlette(
    routes=[
        Route("/", home),
        Route("/items/{item_id:int}", item),
        WebSocketRoute("/rooms/{room}", room),
    ],
    lifespan=lifespan,
)
