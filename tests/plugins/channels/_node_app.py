"""An application for the cross-process tests (not a test module).

Served by ``python -m wsserver run tests.plugins.channels._node_app:app
--channels-backend redis://...``: a ``ChannelManager()`` at ``/ws`` (its
backend comes from ``--channels-backend``), a custom handler ``whoami``, and
HTTP endpoints that make this process act:

- ``GET /status``: ``{"node", "available", "channels"}``;
- ``POST /broadcast``: the JSON body, broadcast;
- ``POST /ask?channel=<id>``: ``send_and_wait`` of the JSON body to a
  channel; the answer (or the error's class name) as JSON;
- ``GET /presence?topic=<t>``: ``presence(t)`` as JSON.

With ``WSSERVER_TEST_NODE_TTL`` set (seconds), the Redis backend's node key
lives that long (heartbeats four times as often) and every topic has
presence, so that a killed node's members disappear quickly; the custom
handler ``follow`` subscribes the channel to the topic it is given.
"""

from __future__ import annotations

import os
from typing import Any

from wsserver import App, JSONResponse, Request, Response
from wsserver.plugins.channels import Channel, ChannelError, ChannelManager, RedisBackend
from wsserver.plugins.channels.backends import ENV_VAR

_TTL = os.environ.get("WSSERVER_TEST_NODE_TTL")
if _TTL:
    manager = ChannelManager(
        RedisBackend(os.environ[ENV_VAR], heartbeat_interval=float(_TTL) / 4, node_ttl=float(_TTL)),
        presence_topics=("",),
    )
else:
    manager = ChannelManager()
app = App()
manager.install(app, "/ws")


@manager.handler("whoami")
def whoami(channel: Channel, data: Any) -> dict[str, Any]:
    return {"node": manager.node_id, "channel": channel.id}


@manager.handler("follow")
async def follow(channel: Channel, topic: Any) -> bool:
    await manager.subscribe(channel.id, str(topic))
    return True


@app.route("/presence")
async def presence(request: Request) -> Response:
    return JSONResponse(await manager.presence(request.query_params["topic"]))


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
