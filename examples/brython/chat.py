"""The chat's server: one room, the seed's ``ChatApp`` messages, a plain view.

The Brython seed's ``ChatApp`` (``static/chat_app.py``) sends JSON text
messages and renders what comes back; this view speaks exactly that:

- ``{"type": "join", "username": "alice"}``: the connection takes the name;
  everyone (the joiner too) gets ``{"type": "join", "username": "alice"}``.
- ``{"type": "message", "username": ..., "text": "hi"}``: everyone gets
  ``{"type": "message", "username": "alice", "text": "hi"}``.  The name is
  the one the connection joined with, not the one the message claims: a page
  cannot speak for somebody else.
- ``{"type": "leave"}``, or the connection ending: the others get
  ``{"type": "leave", "username": "alice"}``.
- Anything else (a second join, a message before joining, a name or text
  out of bounds, an unknown type) is answered to the sender alone with
  ``{"type": "error", "message": "..."}``, which the seed's page shows;
  the connection stays open.

Messages reach the room through ``broadcast()``: encoded once, queued on
every connection; a member too slow to keep up is closed with 1013 (try again
later), as ``broadcast`` does by default, so that nobody waits for it.
"""

from __future__ import annotations

import json
import unicodedata
from typing import Any

from wsserver import WebSocket, WebSocketView, broadcast

__all__ = ["MAX_NAME", "MAX_TEXT", "ChatRoom", "ChatView", "clean_name", "clean_text"]

#: The longest user name and message, in characters (a page shows them whole).
MAX_NAME = 32
MAX_TEXT = 2000


class ChatError(ValueError):
    """A message the chat refuses; its text goes back to the sender."""


def clean_name(value: object) -> str:
    """A user name: text, 1 to ``MAX_NAME`` characters, no control characters.

    Raises:
        ChatError: it is not one.
    """
    if not isinstance(value, str):
        raise ChatError("a name is text")
    name = " ".join(value.split())
    if not name or len(name) > MAX_NAME:
        raise ChatError(f"a name has 1 to {MAX_NAME} characters")
    if any(unicodedata.category(c).startswith("C") for c in name):
        raise ChatError("a name has no control characters")
    return name


def clean_text(value: object) -> str:
    """A message's text: 1 to ``MAX_TEXT`` characters, not only blanks.

    Raises:
        ChatError: it is not one.
    """
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_TEXT:
        raise ChatError(f"a message has 1 to {MAX_TEXT} characters")
    return value


class ChatRoom:
    """Who is in the room: each joined connection and its name."""

    def __init__(self) -> None:
        self.members: dict[WebSocket, str] = {}

    def send_all(self, message: dict[str, Any]) -> int:
        """Queue ``message`` for every member; the number it was queued for."""
        return broadcast(self.members, json.dumps(message))


class ChatView(WebSocketView):
    """One chat connection.  ``room`` is shared by every connection of the class;
    ``create_app`` gives each application a subclass with a room of its own."""

    encoding = "json"
    room = ChatRoom()

    async def on_receive(self, websocket: WebSocket, data: Any) -> None:
        try:
            await self._handle(websocket, data)
        except ChatError as refused:
            await websocket.send_json({"type": "error", "message": str(refused)})

    async def _handle(self, websocket: WebSocket, data: Any) -> None:
        if not isinstance(data, dict):
            raise ChatError("a message is a JSON object")
        kind = data.get("type")
        members = self.room.members
        if kind == "join":
            if websocket in members:
                raise ChatError(f"you have joined already, as {members[websocket]}")
            name = clean_name(data.get("username"))
            members[websocket] = name
            self.room.send_all({"type": "join", "username": name})
        elif kind == "message":
            if websocket not in members:
                raise ChatError("join the chat first")
            text = clean_text(data.get("text"))
            self.room.send_all({"type": "message", "username": members[websocket], "text": text})
        elif kind == "leave":
            self._leave(websocket)
        else:
            raise ChatError(f"unknown message type {kind!r}")

    def _leave(self, websocket: WebSocket) -> None:
        name = self.room.members.pop(websocket, None)
        if name is not None:
            self.room.send_all({"type": "leave", "username": name})

    async def on_disconnect(self, websocket: WebSocket, close_code: int) -> None:
        self._leave(websocket)
