"""A fake ``WebSocket`` for unit tests of sessions and plugins, without I/O.

Not a test module: shared by tests/plugins/runtime/test_session.py and
tests/plugins/runtime/test_js.py.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, cast

from wsserver.plugins.runtime.session import Session
from wsserver.protocol import BinaryMessage, TextMessage
from wsserver.server import Disconnect, WebSocket, WebSocketDisconnect, WebSocketState

TIMEOUT = 5.0


class FakeWebSocket:
    """What a ``Session`` uses of a ``WebSocket``: send, receive, close.

    ``feed`` queues what the browser "sends"; ``sent`` holds what the
    session sent, decoded from JSON.
    """

    def __init__(self, connection_id: int = 7, max_message_size: int = 1 << 20) -> None:
        self.connection_id = connection_id
        self.max_message_size = max_message_size
        self.application_state = WebSocketState.CONNECTED
        self.sent: list[dict[str, Any]] = []
        #: ``(kind, compress=)`` of each message sent (``next_sent`` leaves it).
        self.compressed: list[tuple[str, bool | None]] = []
        self.closed_with: tuple[int, str] | None = None
        self.incoming: asyncio.Queue[TextMessage | BinaryMessage | Disconnect] = asyncio.Queue()
        self.gone: int | None = None  # sends fail with this close code
        self.sent_event = asyncio.Event()

    async def send_text(self, text: str, *, compress: bool | None = None) -> None:
        if self.gone is not None:
            raise WebSocketDisconnect(self.gone)
        if self.application_state is WebSocketState.DISCONNECTED:
            raise RuntimeError("send after close()")
        message = json.loads(text)
        self.sent.append(message)
        self.compressed.append((message.get("k"), compress))
        self.sent_event.set()

    async def receive(self) -> TextMessage | BinaryMessage | Disconnect:
        return await self.incoming.get()

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if self.closed_with is None:
            self.closed_with = (code, reason)
        self.application_state = WebSocketState.DISCONNECTED

    # -- test side -----------------------------------------------------------

    def feed(self, message: dict[str, Any] | str | bytes) -> None:
        if isinstance(message, bytes):
            self.incoming.put_nowait(BinaryMessage(data=message))
        elif isinstance(message, str):
            self.incoming.put_nowait(TextMessage(data=message))
        else:
            self.incoming.put_nowait(TextMessage(data=json.dumps(message)))

    def disconnect(self, code: int = 1001, reason: str = "") -> None:
        self.gone = code
        self.incoming.put_nowait(Disconnect(code, reason))

    async def next_sent(self, plugin: str, kind: str) -> dict[str, Any]:
        """Wait for the session to send a message of this kind; return it."""

        async def wait() -> dict[str, Any]:
            seen = 0
            while True:
                for message in self.sent[seen:]:
                    if message.get("p") == plugin and message.get("k") == kind:
                        self.sent.remove(message)
                        return message
                seen = 0
                self.sent_event.clear()
                await self.sent_event.wait()

        return await asyncio.wait_for(wait(), TIMEOUT)


def fake_session(**options: Any) -> tuple[Session, FakeWebSocket]:
    """A ``Session`` over a ``FakeWebSocket``."""
    websocket = FakeWebSocket()
    return Session(cast(WebSocket, websocket), **options), websocket


async def start(session: Session) -> asyncio.Task[int]:
    """Run ``session`` in a task; return once ``init`` is out."""
    task = asyncio.create_task(session.run())
    websocket = cast(FakeWebSocket, session.websocket)
    await websocket.next_sent("rt", "init")
    return task
