"""python-socketio's side of ``python -m bench.channels`` (not a test).

Served by ``uvicorn bench.servers.socketio_app:app`` in each of the two
processes: an ``AsyncServer`` (ASGI mode) with ``AsyncRedisManager`` on
``BENCH_REDIS_URL``, as its documentation shows for several processes.  The
same two events as bench/servers/channels_app.py: ``sub`` enters the room
``bench`` and is acknowledged, ``pub`` emits ``m`` to the room, which the
Redis manager publishes to every process (this one included), and each
delivers to its own members of the room.
"""

from __future__ import annotations

import os
from typing import Any

import socketio

__all__ = ["ROOM", "app", "sio"]

#: The one room of the benchmark.
ROOM = "bench"

sio = socketio.AsyncServer(
    async_mode="asgi",
    client_manager=socketio.AsyncRedisManager(os.environ["BENCH_REDIS_URL"]),
    cors_allowed_origins=[],
)
app = socketio.ASGIApp(sio)


@sio.on("sub")
async def subscribe(sid: str, *args: Any) -> bool:
    await sio.enter_room(sid, ROOM)
    return True


@sio.on("pub")
async def publish(sid: str, data: Any) -> None:
    await sio.emit("m", data, room=ROOM)
