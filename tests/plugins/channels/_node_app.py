"""An application for the cross-process tests (not a test module).

Served by ``python -m wsserver run tests.plugins.channels._node_app:app
--channels-backend redis://...``: a ``ChannelManager()`` at ``/ws`` (its
backend comes from ``--channels-backend``), a custom handler ``whoami``, and
HTTP endpoints that make this process act:

- ``GET /status``: ``{"node", "available", "channels"}``;
- ``POST /broadcast``: the JSON body, broadcast;
- ``POST /ask?channel=<id>``: ``send_and_wait`` of the JSON body to a
  channel; the answer (or the error's class name) as JSON.
"""

from __future__ import annotations

from typing import Any

from wsserver import App, JSONResponse, Request, Response
from wsserver.plugins.channels import Channel, ChannelError, ChannelManager

manager = ChannelManager()
app = App()
manager.install(app, "/ws")


@manager.handler("whoami")
def whoami(channel: Channel, data: Any) -> dict[str, Any]:
    return {"node": manager.node_id, "channel": channel.id}


@app.route("/status")
async def status(request: Request) -> Response:
    await manager.start()
    return JSONResponse(
        {
            "node": manager.node_id,
            "available": manager.backend.available,
            "channels": manager.channels,
        }
    )


@app.route("/broadcast", methods=("POST",))
async def broadcast(request: Request) -> Response:
    delivered = await manager.broadcast(request.json())
    return JSONResponse({"local": delivered})


@app.route("/ask", methods=("POST",))
async def ask(request: Request) -> Response:
    channel = request.query_params["channel"]
    try:
        answer = await manager.send_and_wait(channel, request.json(), 5.0)
    except ChannelError as exc:
        return JSONResponse({"error": type(exc).__name__, "message": str(exc)})
    return JSONResponse({"answer": answer})
