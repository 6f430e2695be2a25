"""``broadcast``: one message to many connections, encoded once.

A message is turned into frame bytes once (``frames.prepare_message``) and
those bytes are queued on every open connection: no per-connection encoding,
no task, no await.  They are written at the end of the event loop's
iteration, together with anything else sent to that connection meanwhile
(a burst of broadcasts costs one system call per connection), or at once
when ``write_limit`` bytes wait.  Compression is off by default for that reason
(each compressed connection would need its own encoding, since compression
contexts are per connection); ``compress=True`` compresses per connection
where permessage-deflate was agreed.

A connection that cannot keep up (its transport's write buffer is above
``write_limit``) must not slow everyone else, and must not lose a message
silently.  The policy ``on_slow`` decides:

- ``"close"`` (the default): fail it with 1013 (try again later), so that the
  client knows it missed messages and can reconnect and resynchronise;
- ``"skip"``: leave it out of this message, for feeds where only the latest
  value matters (a ticker).

A connection in the middle of sending a streamed (fragmented) message cannot
take a frame in between its fragments; it gets the message through a task
that waits for the stream to end.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Literal

from ..protocol.frames import prepare_message
from .websocket import QueueOutcome, WebSocket, WebSocketDisconnect

__all__ = ["broadcast"]

logger = logging.getLogger("wsserver")

# Module constants: an Enum attribute costs a descriptor call per connection.
_QUEUED = QueueOutcome.QUEUED
_STREAMING = QueueOutcome.STREAMING

# Tasks for connections that were streaming: referenced until done.
_pending: set[asyncio.Task[None]] = set()


def broadcast(
    websockets: Iterable[WebSocket],
    message: str | bytes,
    *,
    compress: bool = False,
    on_slow: Literal["close", "skip"] = "close",
) -> int:
    """Send ``message`` (text for ``str``, binary for bytes) to every open connection.

    Returns:
        The number of connections the message was written or queued for.
    """
    if on_slow not in ("close", "skip"):
        raise ValueError('on_slow must be "close" or "skip"')
    prepared = prepare_message(message)
    size = len(prepared.frame)
    sent = 0
    close_if_slow = on_slow == "close"
    for websocket in websockets:
        outcome = websocket.queue_prepared(
            prepared, size, compress=compress, close_if_slow=close_if_slow
        )
        if outcome is _QUEUED:
            sent += 1
        elif outcome is _STREAMING:
            task = asyncio.get_running_loop().create_task(_send_later(websocket, message))
            _pending.add(task)
            task.add_done_callback(_pending.discard)
            sent += 1
    return sent


async def _send_later(websocket: WebSocket, message: str | bytes) -> None:
    try:
        if isinstance(message, str):
            await websocket.send_text(message)
        else:
            await websocket.send_bytes(message)
    except (WebSocketDisconnect, RuntimeError):
        pass  # the connection ended meanwhile: nothing to deliver to
