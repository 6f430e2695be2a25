"""The reliable connection's server: the seed's heartbeat, answered.

The Brython seed's ``ReliableConnection`` (``static/reliable_websocket.py``)
sends the text ``"ping"`` every heartbeat interval and expects ``"pong"``;
everything else it receives is data.  It reconnects with exponential
backoff when the connection closes with any code but 1000, as it does when
this server shuts down (1001, going away) or cannot be reached (1006).

This view answers ``"ping"`` with ``"pong"`` and echoes every other text
message back, so that the page has data to show.  A binary message is
refused with 1003 (``encoding = "text"``): the seed's client sends text only.

The application-level heartbeat is the seed's, and it is what a browser can
see: a browser's WebSocket answers the server's protocol pings (wsserver's
``ping_interval``) without telling the page, so a page that wants to know its
connection is alive must ask, as this one does.
"""

from __future__ import annotations

from wsserver import WebSocket, WebSocketView

__all__ = ["HEARTBEAT", "ApiView"]

#: The seed's heartbeat message and its answer.
HEARTBEAT = ("ping", "pong")


class ApiView(WebSocketView):
    """Answer the heartbeat, echo the rest."""

    encoding = "text"

    async def on_receive(self, websocket: WebSocket, data: str) -> None:
        await websocket.send_text(HEARTBEAT[1] if data == HEARTBEAT[0] else data)
