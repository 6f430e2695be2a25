"""Chat rooms: user names, join and leave notices, a Brython page.

    wsserver run examples.chat:app

then open http://127.0.0.1:8000/ in two tabs (or two browsers), pick a name
and a room in each, and talk.  With several workers, Redis carries the rooms
between them::

    redis-server --port 6379 --save '' --appendonly no &
    wsserver run examples.chat:app --workers 4 \\
        --channels-backend redis://127.0.0.1:6379/0

(Without ``--channels-backend``, ``wsserver run`` warns that each worker
would have rooms of its own.)

The server side is a ``ChannelManager`` with three custom message kinds:

- ``join`` ``{"username", "room"}``: subscribe the channel to the topic
  ``room:<room>`` and publish ``{"type": "join", ...}`` to it;
- ``leave`` ``{"room"}``: publish ``{"type": "leave", ...}``, unsubscribe;
- ``message`` ``{"room", "text"}``: publish ``{"type": "message",
  "username", "text", "room"}``;

and a connection that ends leaves its rooms with a notice.  The rooms have
history (``history_size=100``): a page that reconnects is replayed what it
missed, in order, or shows that it could not be (``onLost``).  Every answer is
the page's ``request()`` result; a refusal (a bad name, a room not joined)
is a ``HandlerError`` whose text the page shows.

The page's client is Python, run in the browser by Brython
(``chat_static/client.py``, following the seed's ``ChatApp``).  It talks
through the browser runtime and ``channels.js`` (reconnection, heartbeat,
requests with answers) rather than a bare ``WebSocket``.  ``brython.js``
comes from the ``brython`` package on PyPI (``pip install brython``),
served from its installed package data with ``StaticFiles``: nothing of it
is copied into this repository.
"""

from __future__ import annotations

import re
import string
import unicodedata
from importlib import metadata, resources
from pathlib import Path
from typing import Any

from wsserver import App, HTMLResponse, Request, Response, StaticFiles
from wsserver.plugins.channels import (
    Channel,
    ChannelManager,
    ChannelView,
    HandlerError,
    channels_script_tag,
)
from wsserver.plugins.runtime import script_tag

__all__ = ["MAX_NAME", "MAX_TEXT", "app", "brython_directory", "create_app"]

STATIC = Path(__file__).resolve().parent / "chat_static"
#: The longest user name and message, in characters.
MAX_NAME = 32
MAX_TEXT = 2000
_ROOM_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
_ROOM_PREFIX = "room:"


def brython_directory() -> Path:
    """Where the ``brython`` package keeps ``brython.js`` (its ``data`` folder).

    Raises:
        RuntimeError: the package is not installed.
    """
    try:
        directory = Path(str(resources.files("brython").joinpath("data")))
    except ModuleNotFoundError:
        raise RuntimeError("the chat example needs Brython: pip install brython") from None
    if not (directory / "brython.js").is_file():
        raise RuntimeError(f"brython.js is not in {directory}: reinstall the brython package")
    return directory


def _clean_name(value: object) -> str:
    if not isinstance(value, str):
        raise HandlerError("a name is text")
    name = " ".join(value.split())
    if not name or len(name) > MAX_NAME:
        raise HandlerError(f"a name has 1 to {MAX_NAME} characters")
    if any(unicodedata.category(c).startswith("C") for c in name):
        raise HandlerError("a name has no control characters")
    return name


def _clean_room(value: object) -> str:
    if not isinstance(value, str) or _ROOM_RE.fullmatch(value) is None:
        raise HandlerError("a room name is 1 to 32 lowercase letters, digits, - or _")
    return value


def _data(value: object) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise HandlerError("expected an object")
    return value


def create_app(manager: ChannelManager | None = None) -> App:
    """The chat application, around ``manager`` (default: a new one).

    The manager's backend comes from ``WSSERVER_CHANNELS_BACKEND``
    (``--channels-backend``) unless a manager is given.
    """
    # History for the rooms: a page that reconnects after a network drop is
    # replayed what was said meanwhile (or told it cannot be).
    channels = (
        manager
        if manager is not None
        else ChannelManager(history_size=100, history_topics=(_ROOM_PREFIX,))
    )
    brython = brython_directory()
    app = App()
    app.state.channels = channels
    page = string.Template((STATIC / "index.html").read_text(encoding="utf-8"))

    class ChatView(ChannelView):
        async def on_channel_end(self, channel: Channel) -> None:
            name = channel.state.get("name")
            for topic in sorted(channel.topics):
                if topic.startswith(_ROOM_PREFIX) and name is not None:
                    room = topic.removeprefix(_ROOM_PREFIX)
                    await channels.publish(topic, {"type": "leave", "room": room, "username": name})

    channels.install(app, "/ws", view=ChatView)
    app.mount("/static", StaticFiles(STATIC))
    # Immutable: the URL names brython.js's version, so the page asks for a
    # new URL whenever the package is upgraded.
    app.mount(f"/brython/{_brython_version()}", StaticFiles(brython, max_age=31536000))

    @app.route("/")
    async def home(request: Request) -> Response:
        scripts = "\n".join(
            [
                script_tag("/ws", reconnect_base=0.25, reconnect_max=5.0),
                channels_script_tag(),
                f'<script src="/brython/{_brython_version()}/brython.js"></script>',
            ]
        )
        return HTMLResponse(page.substitute(scripts=scripts))

    @app.route("/favicon.ico")
    async def favicon(request: Request) -> Response:
        return Response(b"", status_code=204)

    @channels.handler("join")
    async def join(channel: Channel, data: Any) -> dict[str, Any]:
        fields = _data(data)
        name = _clean_name(fields.get("username"))
        room = _clean_room(fields.get("room"))
        channel.state["name"] = name
        topic = _ROOM_PREFIX + room
        if topic not in channel.topics:
            await channels.subscribe(channel.id, topic)
            await channels.publish(topic, {"type": "join", "room": room, "username": name})
        return {"room": room, "username": name, "channel": channel.id}

    @channels.handler("leave")
    async def leave(channel: Channel, data: Any) -> dict[str, Any]:
        room = _clean_room(_data(data).get("room"))
        topic = _ROOM_PREFIX + room
        if topic in channel.topics:
            await channels.publish(
                topic, {"type": "leave", "room": room, "username": channel.state["name"]}
            )
            await channels.unsubscribe(channel.id, topic)
        return {"room": room}

    @channels.handler("message")
    async def message(channel: Channel, data: Any) -> dict[str, Any]:
        fields = _data(data)
        room = _clean_room(fields.get("room"))
        text = fields.get("text")
        if not isinstance(text, str) or not text.strip() or len(text) > MAX_TEXT:
            raise HandlerError(f"a message has 1 to {MAX_TEXT} characters")
        topic = _ROOM_PREFIX + room
        if topic not in channel.topics:
            raise HandlerError(f"join {room} first")
        await channels.publish(
            topic,
            {"type": "message", "room": room, "username": channel.state["name"], "text": text},
        )
        return {"room": room}

    return app


def _brython_version() -> str:
    try:
        return metadata.version("brython")
    except metadata.PackageNotFoundError:  # brython_directory() has said so already
        return "missing"


app = create_app()
