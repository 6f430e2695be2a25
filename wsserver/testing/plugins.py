"""The browser's side of the plugins' wire messages, for tests without a browser.

A ``BrowserSession`` plays the browser runtime (``wsserver.js``) on a
``TestClient`` WebSocket (or any ``wsserver.client`` one): it reads the
runtime's ``rt/init``, sends and reads the ``{"p": plugin, "k": kind,
...}`` envelopes (docs/plugins/js.md), and answers the server's requests:

* ``answer_js``: the answer to an ``execute_js`` / ``get_js_result``
  (``js/exec`` → ``js/result``);
* ``ChannelSession.answer_send_and_wait``: the page's answer to a channel's
  ``send_and_wait`` (``ch/msg`` with ``rchan`` → ``ch/reply``);
* ``ComponentPage``: a component page loaded over HTTP and attached over
  the WebSocket (``cv/attach``), whose ``event`` sends a ``cv/ev`` and
  returns the patches the server answers with (``cv/patch``).

It imports ``wsserver.plugins`` (for the plugins' names and settings), so
that ``wsserver.testing`` itself does not: import it by name,
``from wsserver.testing.plugins import ComponentPage``.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any

from wsserver.client import ClientWebSocket
from wsserver.plugins.channels.addresses import PLUGIN as CHANNELS
from wsserver.plugins.components import ComponentApp
from wsserver.plugins.components.connection import PLUGIN as COMPONENTS
from wsserver.plugins.runtime.js import PLUGIN as JS
from wsserver.plugins.runtime.messages import RUNTIME_PLUGIN, encode

from .client import TestClient

__all__ = [
    "BrowserSession",
    "ChannelSession",
    "ComponentPage",
    "PageElement",
]

Message = dict[str, Any]


class BrowserSession:
    """The browser runtime's end of one connection: envelopes in and out.

    Messages read while waiting for another kind are kept, in order, for
    the next ``receive`` that asks for them: nothing the server sends is
    lost to a helper that was looking for something else.

    Attributes:
        websocket: the connection.
        init: the ``rt/init`` message's fields (``sid``, ``max_message_size``...).
    """

    def __init__(self, websocket: ClientWebSocket) -> None:
        self.websocket = websocket
        self.init: Message = {}
        self._held: deque[Message] = deque()
        self._pings = 0

    @classmethod
    async def start(cls, websocket: ClientWebSocket) -> BrowserSession:
        """A session whose ``rt/init`` was read."""
        session = cls(websocket)
        await session.read_init()
        return session

    async def read_init(self) -> Message:
        """Wait for the runtime's ``rt/init`` (its first message)."""
        self.init = await self.receive(RUNTIME_PLUGIN, "init")
        return self.init

    async def send(self, plugin: str, kind: str, /, **fields: Any) -> None:
        """Send one envelope, as the browser runtime does."""
        await self.websocket.send(encode(plugin, kind, fields, limit=None))

    async def receive(
        self,
        plugin: str | None = None,
        kind: str | None = None,
        where: Callable[[Message], bool] | None = None,
    ) -> Message:
        """The next message from the server, or the next of ``plugin`` (and
        ``kind``, and for which ``where`` is true).

        Raises:
            ConnectionClosed: the connection ended first.
            ValueError: the server sent a binary message, or text that is
                not an envelope.
        """
        for message in self._held:
            if _matches(message, plugin, kind) and (where is None or where(message)):
                self._held.remove(message)
                return message
        while True:
            data = await self.websocket.recv()
            if not isinstance(data, str):
                raise ValueError(f"the server sent a binary message: {data[:40]!r}")
            message = json.loads(data)
            if not isinstance(message, dict) or "p" not in message or "k" not in message:
                raise ValueError(f"not an envelope: {data[:200]!r}")
            if _matches(message, plugin, kind) and (where is None or where(message)):
                return message
            self._held.append(message)

    @property
    def held(self) -> list[Message]:
        """Messages read while waiting for others, not taken yet."""
        return list(self._held)

    async def ping(self) -> Message:
        """The runtime's heartbeat: ``rt/ping``, and the server's ``rt/pong``."""
        self._pings += 1
        await self.send(RUNTIME_PLUGIN, "ping", n=self._pings)
        return await self.receive(RUNTIME_PLUGIN, "pong")

    async def answer_js(
        self, value: Any = None, *, error: Mapping[str, Any] | None = None
    ) -> Message:
        """Wait for the next ``js/exec`` and answer it as the page would.

        Args:
            value: the code's (or the expression's) value, when it worked;
                ``None`` stands for ``undefined`` (no ``value`` field).
            error: ``{"name": ..., "message": ..., "stack": ...}`` for code
                that threw; the answer is then ``ok: false``.

        Returns:
            The ``js/exec`` message (``code``, ``expr``, ``reply``, ``id``,
            ``timeout_ms``); nothing is answered when ``reply`` is false.
        """
        request = await self.receive(JS, "exec")
        if not request.get("reply"):
            return request
        fields: Message = {"id": request["id"]}
        if error is not None:
            fields |= {"ok": False, "error": {"stack": None, **error}}
        else:
            fields["ok"] = True
            if value is not None:
                fields["value"] = value
        await self.send(JS, "result", **fields)
        return request


class ChannelSession(BrowserSession):
    """A page using the channels plugin (``channels.js``'s side of ``ch/...``).

    Attributes:
        channel: the ``ch/init`` message once ``ready`` was said.
    """

    channel: Message

    @classmethod
    async def open(cls, websocket: ClientWebSocket) -> ChannelSession:
        """Read ``rt/init``, say ``ch/ready``, read ``ch/init``."""
        session = cls(websocket)
        await session.read_init()
        await session.ready()
        return session

    async def ready(self, **fields: Any) -> Message:
        """Say ``ch/ready`` (``pos`` to recover topics) and wait for ``ch/init``."""
        await self.send(CHANNELS, "ready", **fields)
        self.channel = await self.receive(CHANNELS, "init")
        return self.channel

    async def message(self) -> Message:
        """The next ``ch/msg``: ``data``, and ``topic``, ``rchan``... when set."""
        return await self.receive(CHANNELS, "msg")

    async def answer_send_and_wait(
        self, data: Any = None, *, error: tuple[str, str] | None = None
    ) -> Message:
        """Wait for the next ``ch/msg`` with an ``rchan`` and answer it (``ch/reply``).

        Args:
            data: the answer ``send_and_wait`` returns.
            error: ``(name, message)``: the page failed; ``send_and_wait``
                raises ``ReplyError`` with them.

        Returns:
            The request (its ``data``, ``rchan``...).
        """
        request = await self.receive(CHANNELS, "msg", lambda message: "rchan" in message)
        fields: Message = {"response_for": request["rchan"]}
        if error is not None:
            fields |= {"ok": False, "error": {"name": error[0], "message": error[1]}}
        else:
            fields |= {"ok": True, "data": data}
        await self.send(CHANNELS, "reply", **fields)
        return request

    async def custom(self, kind: str, data: Any = None, *, rchan: str | None = None) -> None:
        """Send a custom message to the handler of ``kind`` (``ch/custom``)."""
        fields: Message = {"kind": kind, "data": data}
        if rchan is not None:
            fields["rchan"] = rchan
        await self.send(CHANNELS, "custom", **fields)


@dataclass(frozen=True)
class PageElement:
    """An element of the page as the server rendered it (those with a ``data-k`` key)."""

    key: str
    tag: str
    attributes: Mapping[str, str | None]
    #: The element's text, its descendants' included.
    text: str


class ComponentPage(BrowserSession):
    """A component page: loaded over HTTP, attached over the WebSocket.

    ``await ComponentPage.open(client, "/")`` does what ``components.js``
    does when the page loads: ``GET`` the page, open the WebSocket, read
    ``rt/init``, send ``cv/attach`` with the page's id, and wait for
    ``cv/ready`` (or ``cv/mount``).  Then ``event`` sends what a click or
    an input sends, and returns the patches.

    Attributes:
        page_id: the page's id (``data-cv-page``).
        html: the page as served.
        elements: its keyed elements, in document order, as served (the
            patches are not applied to them).
        seq: the last batch received.
        mounted: the last ``cv/mount``'s whole tree, if one came.
    """

    page_id: str
    html: str
    elements: list[PageElement]
    seq: int
    mounted: Message | None

    @classmethod
    async def open(
        cls,
        client: TestClient,
        url: str = "/",
        *,
        ws_path: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> ComponentPage:
        """Load and attach the page at ``url``.

        Args:
            client: serving the ``ComponentApp``.
            ws_path: the pages' WebSocket path; the app's ``ws_path`` when
                the client serves a ``ComponentApp``.
            headers: sent with both the page's request and the WebSocket's
                (a cookie, an authorization).

        Raises:
            AssertionError: the page did not load (its status), or has no
                page id.
        """
        response = await client.get(url, headers=headers)
        if response.status_code != 200:
            raise AssertionError(f"GET {url} answered {response.status_code}: {response.text}")
        parser = _PageParser()
        parser.feed(response.text)
        parser.close()
        if not parser.page_id:
            raise AssertionError(f"GET {url}: no data-cv-page in the page")
        if ws_path is None:
            app = client.app
            if not isinstance(app, ComponentApp):
                raise TypeError("ws_path is needed when the client does not serve a ComponentApp")
            ws_path = app.ws_path
        websocket = await client.websocket_connect(ws_path, headers=headers)
        page = cls(websocket)
        page.page_id = parser.page_id
        page.html = response.text
        page.elements = parser.elements
        page.seq = 0
        page.mounted = None
        await page.read_init()
        await page.send(
            COMPONENTS, "attach", page=page.page_id, seq=0, count=parser.count, nav="navigate"
        )
        message = await page.receive(COMPONENTS, where=lambda m: m["k"] in ("ready", "mount"))
        page._took(message)
        return page

    def find(self, tag: str | None = None, *, text: str | None = None) -> PageElement:
        """The first served element with this tag (and this text, stripped).

        Raises:
            LookupError: none.
        """
        for element in self.elements:
            if (tag is None or element.tag == tag) and (
                text is None or element.text.strip() == text
            ):
                return element
        raise LookupError(f"no <{tag or '*'}> with text {text!r} in the page")

    async def send_event(
        self,
        key: str,
        type: str = "click",
        value: Any = None,
        *,
        live: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        """Send a ``cv/ev`` (what the browser sends for an event bound on ``key``)."""
        await self.send(COMPONENTS, "ev", key=key, type=type, value=value, live=dict(live or {}))

    async def next_patch(self) -> Message:
        """The next ``cv/patch`` (or ``cv/mount``): its ``seq``, ``ops``, ``title``..."""
        message = await self.receive(COMPONENTS, where=lambda m: m["k"] in ("patch", "mount"))
        self._took(message)
        return message

    async def event(
        self,
        key: str,
        type: str = "click",
        value: Any = None,
        *,
        live: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> list[Message]:
        """Send an event and return the patches of the batch that answers it.

        It waits for that batch: for an event that changes nothing, use
        ``send_event``.
        """
        await self.send_event(key, type, value, live=live)
        message = await self.next_patch()
        ops: list[Message] = message.get("ops", [])
        return ops

    async def resync(self, reason: str = "test") -> Message:
        """Ask for the whole page again (``cv/resync``, what the browser sends when a
        patch does not fit its DOM); the ``cv/mount`` that answers it."""
        await self.send(COMPONENTS, "resync", reason=reason)
        return await self.next_patch()

    def _took(self, message: Message) -> None:
        self.seq = int(message.get("seq", self.seq))
        if message["k"] == "mount":
            self.mounted = message.get("node")


def _matches(message: Message, plugin: str | None, kind: str | None) -> bool:
    return (plugin is None or message.get("p") == plugin) and (
        kind is None or message.get("k") == kind
    )


# Elements that never have children or an end tag (HTML's void elements).
_VOID = frozenset(
    [
        "area",
        "base",
        "br",
        "col",
        "embed",
        "hr",
        "img",
        "input",
        "link",
        "meta",
        "param",
        "source",
        "track",
        "wbr",
    ]
)


class _PageParser(HTMLParser):
    """The page id, and the keyed elements with their text, from the served HTML."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.page_id = ""
        self.elements: list[PageElement] = []
        # Open elements: (key or None, tag, attributes, text parts).
        self._open: list[tuple[str | None, str, dict[str, str | None], list[str]]] = []
        self.count = 0
        self._order: dict[str, int] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if attributes.get("id") == "cv-root":
            self.page_id = attributes.get("data-cv-page") or ""
        key = attributes.get("data-k")
        if key is not None:
            self._order.setdefault(key, len(self._order))
        if tag in _VOID:
            if key is not None:
                self.count += 1
                self.elements.append(PageElement(key, tag, attributes, ""))
            return
        self._open.append((key, tag, attributes, []))

    def handle_endtag(self, tag: str) -> None:
        # Close up to the matching tag (HTML forgives unclosed elements); an
        # end tag with nothing open to match is ignored, as browsers do.
        if all(open_tag != tag for _, open_tag, _, _ in self._open):
            return
        while True:
            key, open_tag, attributes, parts = self._open.pop()
            text = "".join(parts)
            if self._open:
                self._open[-1][3].append(text)
            if key is not None:
                self.count += 1
                self.elements.append(PageElement(key, open_tag, attributes, text))
            if open_tag == tag:
                return

    def handle_data(self, data: str) -> None:
        if self._open:
            self._open[-1][3].append(data)

    def close(self) -> None:
        super().close()
        # In document order: elements were appended as they closed.
        self.elements.sort(key=lambda element: self._order[element.key])
