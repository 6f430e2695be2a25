"""Echo server: text comes back as text, binary as binary.

    wsserver run examples.echo:EchoView --port 9001

serves it at ws://127.0.0.1:9001/.  It is the Autobahn|Testsuite target and
the benchmark target.
"""

from __future__ import annotations

from wsserver import WebSocket, WebSocketView


class EchoView(WebSocketView):
    """Send every message back unchanged."""

    async def on_receive(self, websocket: WebSocket, data: str | bytes) -> None:
        if isinstance(data, str):
            await websocket.send_text(data)
        else:
            await websocket.send_bytes(data)
