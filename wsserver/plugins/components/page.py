"""Pages: server-side rendering over HTTP, then a live WebSocket session.

``ComponentApp`` is an ``App`` (so ``wsserver run module:app`` serves it)
whose pages are components::

    app = ComponentApp({"/": TodoList}, title="To-do")

    @app.page("/items/{id:int}")
    class Item(Component): ...

A ``GET`` of a page renders its root component to HTML (it shows before any
script runs), stores the page's state as a snapshot under a new random page
id, and loads the browser runtime and ``components.js``.  The runtime
connects the WebSocket; ``components.js`` sends ``cv/attach`` with the page
id, and from then on one ``PageConnection`` runs the page: events from the
browser call handlers, whose effects go back as one patch batch per event;
links and forms navigate without reloads (``navigation.py``).

**Resume.**  The snapshot is saved after every batch.  When the connection
drops, the runtime reconnects and attaches again with the number of the
last batch it applied: the server restores the component tree from the
snapshot and, if the browser is up to date, only confirms (the page, form
fields the user typed in included, is untouched); if it missed a batch,
it gets the whole page again (``cv/mount``).  A page whose snapshot expired
or fails its signature gets ``cv/expired``: a message, and a reload.

Events, attaches and navigations of one connection are handled one at a
time, in order, by a task of their own (``on_session_start``), so a handler
may await the browser (``execute_js(..., wait_for_result=True)``): the
receive loop stays free for the answer.
"""

from __future__ import annotations

import asyncio
import html
import logging
import secrets
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from functools import cache
from importlib import resources
from types import MappingProxyType
from typing import Any, ClassVar, TypeVar
from urllib.parse import unquote

from ... import CloseCode
from ...server import (
    App,
    Authenticator,
    HTMLResponse,
    QueryParams,
    Request,
    Response,
    WebSocket,
)
from ..js import JSBridge
from ..runtime import RuntimeView, Session, SessionClosed, install, script_tag
from ..runtime.assets import DEFAULT_PREFIX, RuntimeAsset, asset_path, install_asset
from ..runtime.messages import Envelope, MalformedMessage, MessageTooLarge
from .component import (
    BoundHandler,
    Component,
    dump_component,
    load_component,
    render_tree,
)
from .document import Document
from .events import Event, EventMessage, call_handler, parse_event_message
from .html import Binding, render_html
from .navigation import (
    History,
    NavRequest,
    PageRequest,
    PageRouter,
    PageSpec,
    parse_nav_message,
    split_href,
)
from .patches import Patch, node_to_wire, patches_to_wire
from .store import (
    DEFAULT_MAX_SNAPSHOT_SIZE,
    DEFAULT_SNAPSHOT_TTL,
    InMemoryStore,
    SessionStore,
    SnapshotCodec,
    SnapshotError,
    SnapshotExpired,
    Snapshots,
    SnapshotTooLarge,
)
from .vdom import VNode, count_nodes, diff

__all__ = [
    "DEFAULT_CSP",
    "DEFAULT_WS_PATH",
    "PLUGIN",
    "ComponentApp",
    "PageConnection",
    "PageView",
    "components_asset",
    "components_script_tag",
]

logger = logging.getLogger("wsserver.plugins.components")

#: The plugin name on the wire.
PLUGIN = "cv"
#: Where the pages' WebSocket endpoint is, unless told otherwise.
DEFAULT_WS_PATH = "/_wsserver/cv"
#: The default Content-Security-Policy of pages: scripts from this origin
#: only (the runtime needs no inline script and no eval), no plugins, no
#: <base>.  Defence in depth: the rendering escapes everything anyway.
DEFAULT_CSP = "script-src 'self'; object-src 'none'; base-uri 'none'"
# The snapshot format's version.
_SNAPSHOT_VERSION = 1
# Jobs waiting for a connection's worker: beyond this the browser sends
# faster than handlers run, and the connection is closed.
_MAX_PENDING_JOBS = 256
_PAGE_ID_BYTES = 18

_ComponentT = TypeVar("_ComponentT", bound=type[Component])

_PAGE = """<!doctype html>
<html lang="{lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
{head}
</head>
<body>
<div id="cv-root" data-cv-page="{page_id}" data-cv-seq="0">{body}</div>
{scripts}
</body>
</html>
"""


@cache
def components_asset() -> RuntimeAsset:
    """The packaged ``static/components.js``, read (and compressed) once."""
    body = resources.files(__package__).joinpath("static", "components.js").read_bytes()
    return RuntimeAsset.from_bytes(body, name="components")


def components_script_tag(
    *, prefix: str = DEFAULT_PREFIX, reload_delay: float = 1.5, integrity: bool = True
) -> str:
    """The ``<script>`` element loading ``components.js`` (after the runtime's).

    Args:
        prefix: the prefix the assets are served under.
        reload_delay: seconds between the "page expired" message and the
            reload.
        integrity: add the Subresource Integrity attribute.
    """
    asset = components_asset()
    attributes = {
        "src": asset_path(prefix, asset),
        "data-reload-ms": str(max(0, round(reload_delay * 1000))),
    }
    if integrity:
        attributes["integrity"] = asset.integrity
    rendered = " ".join(f'{n}="{html.escape(v, quote=True)}"' for n, v in attributes.items())
    return f"<script {rendered}></script>"


class PageConnection:
    """One page, attached over one WebSocket connection.

    Made by ``PageView`` for each connection; the page is known once the
    browser attaches.  Handlers reach it as ``event.connection`` (and
    components as ``self.connection``).

    Attributes:
        app: the application.
        session: the runtime session (``execute_js`` runs through it).
        page_id: the page's id, once attached.
        root: the page's root component, once attached.
        url: the page's URL (path and query).
        seq: the number of the last batch sent.
        stale_events: events received for elements that are gone.
    """

    def __init__(self, app: ComponentApp, session: Session) -> None:
        self.app = app
        self.session = session
        self.page_id: str | None = None
        self.root: Component | None = None
        self.spec: PageSpec | None = None
        self.url = "/"
        self.seq = 0
        self.tree: VNode | None = None
        self.bindings: dict[tuple[str, str], BoundHandler] = {}
        self.history = History(app.history_limit)
        self.documents: dict[str, Document] = {}
        self.stale_events = 0
        self._title_sent: str | None = None
        self._superseded = False
        self._flooded = False
        self._queue: asyncio.Queue[
            tuple[Callable[[], Awaitable[None]], asyncio.Future[None] | None]
        ]
        self._queue = asyncio.Queue(_MAX_PENDING_JOBS)
        self._worker: asyncio.Task[None] | None = None
        self._waiting: set[asyncio.Future[None]] = set()
        session.plugins[PLUGIN] = self
        session.on(PLUGIN, "attach", self._on_attach)
        session.on(PLUGIN, "ev", self._on_event)
        session.on(PLUGIN, "nav", self._on_nav)
        session.on(PLUGIN, "resync", self._on_resync)
        session.add_close_callback(self._on_close)

    def __repr__(self) -> str:
        return f"<PageConnection page={self.page_id} url={self.url!r} seq={self.seq}>"

    @property
    def closed(self) -> bool:
        """Whether the connection has ended."""
        return self.session.closed

    @property
    def attached(self) -> bool:
        """Whether a page is attached."""
        return self.root is not None

    # -- the public API ----------------------------------------------------

    def document(self, host_key: str) -> Document:
        """The imperative ``Document`` inside the element keyed ``host_key``
        (made on first use, one per host and connection)."""
        document = self.documents.get(host_key)
        if document is None:
            document = Document(host_key, connection=self)
            self.documents[host_key] = document
        return document

    async def refresh(self) -> None:
        """Re-render what changed and send it (for changes made outside an
        event handler: a timer, a broadcast).  Serialised with events."""
        await self._call(self._flush_changes)

    async def send_patches(self, patches: Sequence[Patch]) -> None:
        """Send ``patches`` as one batch (``Document.flush`` uses this)."""
        patch_list = list(patches)

        async def send() -> None:
            await self._send_batch(patch_list)

        await self._call(send)

    async def navigate(self, href: str, *, replace: bool = False) -> None:
        """Show the page at ``href`` (a path on this app) as if a link was
        followed; with ``replace``, without a new history entry."""
        raw_path, query = split_href(href)
        request = NavRequest(raw_path + (f"?{query}" if query else ""), raw_path, query)

        async def go() -> None:
            await self._navigate(request, replace=replace)

        await self._call(go)

    async def execute_js(
        self, code: str, timeout: float | None = None, wait_for_result: bool = False
    ) -> Any:
        """``wsserver.plugins.js.execute_js`` in this page."""
        return await JSBridge.of(self.session).execute_js(code, timeout, wait_for_result)

    # -- jobs, one at a time -------------------------------------------------

    def _submit(self, job: Callable[[], Awaitable[None]]) -> None:
        if self._flooded:
            return
        try:
            self._queue.put_nowait((job, None))
        except asyncio.QueueFull:
            # The browser sends faster than the handlers run.
            self._flooded = True
            _background(self.session.close(CloseCode.POLICY_VIOLATION, "too many pending events"))

    async def _call(self, job: Callable[[], Awaitable[None]]) -> None:
        if self._worker is not None and asyncio.current_task() is self._worker:
            await job()  # already in the worker (a handler): run it now
            return
        if self.session.closed:
            raise SessionClosed("the page's connection is closed")
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.add(waiter)
        try:
            await self._queue.put((job, waiter))
            await waiter
        finally:
            self._waiting.discard(waiter)

    async def run(self) -> None:
        """Run the jobs until cancelled (``PageView.on_session_start``)."""
        self._worker = asyncio.current_task()
        while True:
            job, waiter = await self._queue.get()
            if waiter is not None and waiter.done():
                continue  # its caller gave up
            try:
                await job()
            except SessionClosed as exc:
                if waiter is not None and not waiter.done():
                    waiter.set_exception(exc)
                return
            except Exception as exc:
                if waiter is not None and not waiter.done():
                    waiter.set_exception(exc)
                    continue
                logger.exception(
                    "conn %d: error on page %s", self.session.connection_id, self.page_id
                )
                await self.session.close(CloseCode.INTERNAL_ERROR, "internal error")
                return
            else:
                if waiter is not None and not waiter.done():
                    waiter.set_result(None)

    def _on_close(self, session: Session) -> None:
        for waiter in list(self._waiting):
            if not waiter.done():
                waiter.set_exception(SessionClosed("the page's connection closed"))
        while not self._queue.empty():
            _, queued = self._queue.get_nowait()
            if queued is not None and not queued.done():
                queued.set_exception(SessionClosed("the page's connection closed"))

    async def finish(self) -> None:
        """Save the page a last time and let it go (``on_session_end``)."""
        if self.page_id is not None and self.app.connections.get(self.page_id) is self:
            del self.app.connections[self.page_id]
        if self.root is not None:
            # From now on the snapshot's time to live counts from here.
            await self._save()
            self.root._cv_connection = None

    # -- messages from the browser (in the receive loop: validate, queue) ---

    def _on_attach(self, message: Envelope) -> None:
        page_id = message.require("page", str)
        seq = message.require("seq", int)
        count = message.require("count", int)
        if not page_id or len(page_id) > 64:
            raise MalformedMessage("cv/attach: bad page id")
        if self.page_id is not None:
            raise MalformedMessage("cv/attach: a page is attached already")
        self.page_id = page_id

        async def attach() -> None:
            await self._attach(page_id, seq, count)

        self._submit(attach)

    def _on_event(self, message: Envelope) -> None:
        event = parse_event_message(message)

        async def handle() -> None:
            await self._event(event)

        self._submit(handle)

    def _on_nav(self, message: Envelope) -> None:
        request = parse_nav_message(message)

        async def go() -> None:
            await self._navigate(request)

        self._submit(go)

    def _on_resync(self, message: Envelope) -> None:
        self._submit(self._mount)

    # -- the work --------------------------------------------------------------

    async def _expire(self, reason: str) -> None:
        await self.session.send(
            PLUGIN,
            "expired",
            reason=reason,
            message=self.app.expired_message,
            reload_ms=round(self.app.reload_delay * 1000),
        )

    async def _attach(self, page_id: str, seq: int, count: int) -> None:
        try:
            data = await self.app.snapshots.load(page_id)
            root = load_component(data["root"])
            url, last_seq = data["url"], data["seq"]
            if not isinstance(url, str) or not isinstance(last_seq, int):
                raise ValueError("malformed snapshot")
        except SnapshotExpired:
            logger.info("conn %d: page %s has expired", self.session.connection_id, page_id)
            await self._expire("expired")
            return
        except (SnapshotError, LookupError, ValueError, TypeError) as exc:
            logger.warning(
                "conn %d: snapshot of page %s refused: %s", self.session.connection_id, page_id, exc
            )
            await self._expire("invalid")
            return
        previous = self.app.connections.get(page_id)
        if previous is not None and previous is not self:
            # The same page attached twice (a duplicated tab, or a resume the
            # server has not yet seen the old connection drop for): the newer
            # one wins, and the older must not save over it.
            previous._superseded = True
            # In a task: the old connection may be a dead one, slow to write to.
            _background(previous._expire("moved"))
        self.app.connections[page_id] = self
        self.root = root
        root._cv_connection = self
        self.spec = self.app.page_spec(data.get("page"))
        self.url = url
        self.seq = last_seq
        self.history = History.from_json(data.get("hist"), self.app.history_limit)
        rendered = render_tree(root)
        self.tree, self.bindings = rendered.tree, rendered.bindings
        self._title_sent = self._title()
        if seq == last_seq and count == count_nodes(rendered.tree):
            await self.session.send(PLUGIN, "ready", seq=self.seq)
        else:
            await self._mount()
        await self._connect_hooks(rendered.components)
        await self._flush_changes(save=True)

    async def _mount(self) -> None:
        """Send the whole page (the browser's DOM is not what we think)."""
        if self.root is None or self.tree is None:
            return
        self.seq += 1
        title = self._title()
        self._title_sent = title
        self.documents.clear()
        await self.session.send(
            PLUGIN, "mount", seq=self.seq, node=node_to_wire(self.tree), title=title
        )
        await self._save()

    async def _connect_hooks(self, components: Sequence[Component]) -> None:
        for component in components:
            try:
                result = component.on_connect(self)
                if result is not None:
                    await result
            except SessionClosed:
                raise
            except Exception:
                logger.exception("error in %s.on_connect", type(component).__name__)

    def _find(self, key: str, name: str) -> tuple[Any, Binding] | None:
        bound = self.bindings.get((key, name))
        if bound is not None:
            return bound.component, bound.binding
        for document in self.documents.values():
            found = document.find_handler(key, name)
            if found is not None:
                return found
        return None

    async def _event(self, message: EventMessage) -> None:
        if self.root is None:
            return  # not attached (expired): nothing to run
        found = self._find(message.key, message.name)
        if found is None:
            # Typically a click on an element a batch in flight removes.
            self.stale_events += 1
            logger.debug(
                "conn %d: event %s on %r: no handler",
                self.session.connection_id,
                message.name,
                message.key,
            )
            return
        target, binding = found
        event = Event(message.name, message.value, target, self, message.key)
        try:
            await call_handler(binding.handler, binding.arity, event)
        except SessionClosed:
            raise
        except Exception:
            if self.session.closed:
                # Typically an execute_js that failed because the page left.
                logger.debug(
                    "conn %d: handler ended with the connection",
                    self.session.connection_id,
                    exc_info=True,
                )
                return
            # The state is what the handler left; the page goes on showing it.
            logger.exception(
                "conn %d: error in the %s handler on %r",
                self.session.connection_id,
                message.name,
                message.key,
            )
        if isinstance(target, Component):
            target.update()
        await self._flush_changes(live=message.live, save=True)

    def _title(self) -> str:
        if self.root is not None:
            title = self.root.page_title()
            if title is not None:
                return title
        if self.spec is not None and self.spec.title is not None:
            return self.spec.title
        return self.app.title

    async def _flush_changes(
        self,
        *,
        live: Mapping[str, Mapping[str, str | bool]] | None = None,
        nav: dict[str, Any] | None = None,
        save: bool = True,
    ) -> None:
        """Re-render, diff, add the documents' patches: one batch, if any."""
        if self.root is None or self.tree is None:
            return
        rendered = render_tree(self.root)
        patches = diff(self.tree, rendered.tree, live=live)
        self.tree, self.bindings = rendered.tree, rendered.bindings
        for document in self.documents.values():
            patches.extend(document.take_patches())
        title = self._title()
        if patches or nav is not None or title != self._title_sent:
            await self._send_batch(patches, nav=nav, title=title, save=save)

    async def _send_batch(
        self,
        patches: Sequence[Patch],
        *,
        nav: dict[str, Any] | None = None,
        title: str | None = None,
        save: bool = True,
    ) -> None:
        self.seq += 1
        fields: dict[str, Any] = {"seq": self.seq, "ops": patches_to_wire(patches)}
        if title is not None and title != self._title_sent:
            fields["title"] = title
            self._title_sent = title
        if nav is not None:
            fields["nav"] = nav
        try:
            await self.session.send(PLUGIN, "patch", **fields)
        except MessageTooLarge as exc:
            # One batch per message: a batch that cannot be sent is a page
            # that must be loaded again.
            logger.warning("conn %d: %s; reloading the page", self.session.connection_id, exc)
            await self.session.send(PLUGIN, "load", url=self.url, method="GET", replace=True)
        if save:
            await self._save()

    def _snapshot_data(self) -> dict[str, Any]:
        assert self.root is not None
        return {
            "v": _SNAPSHOT_VERSION,
            "page": None if self.spec is None else self.spec.path,
            "url": self.url,
            "seq": self.seq,
            "root": dump_component(self.root),
            "hist": self.history.to_json(),
        }

    async def _save(self) -> None:
        if self.page_id is None or self.root is None or self._superseded:
            return
        try:
            await self.app.snapshots.save(self.page_id, self._snapshot_data())
        except SnapshotTooLarge as exc:
            logger.warning("page %s cannot be resumed: %s", self.page_id, exc)
        except TypeError as exc:
            logger.error("page %s cannot be resumed: %s", self.page_id, exc)
        except Exception:
            logger.exception("page %s: saving its snapshot failed", self.page_id)

    async def _load(self, request: NavRequest) -> None:
        """Have the browser load ``request``'s URL for real (a back or forward
        replaces the entry it is on)."""
        await self.session.send(
            PLUGIN, "load", url=request.href, method=request.method, replace=request.pop
        )

    async def _navigate(self, request: NavRequest, *, replace: bool = False) -> None:
        if self.root is None or self.tree is None:
            return
        match = self.app.pages.match(request.raw_path)
        current_head = None if self.spec is None else self.spec.head
        if match is None or match[0].head != current_head:
            await self._load(request)
            return
        spec, params = match
        old_root, old_spec, old_url = self.root, self.spec, self.url
        try:
            self.history.stash(
                self.history.current,
                {
                    "url": old_url,
                    "page": None if old_spec is None else old_spec.path,
                    "root": dump_component(old_root),
                },
            )
        except TypeError as exc:
            logger.info("page %s: state not kept for back/forward: %s", self.page_id, exc)
        new_root: Component | None = None
        if request.pop and request.entry is not None:
            stashed = self.history.take(request.entry)
            if stashed is not None and stashed.get("url") == request.href:
                try:
                    new_root = load_component(stashed["root"])
                except (LookupError, ValueError, TypeError, KeyError):
                    new_root = None
        try:
            if new_root is None:
                page_request = PageRequest(
                    path=_decoded(request.raw_path),
                    raw_path=request.raw_path,
                    query=QueryParams(request.query),
                    query_string=request.query,
                    path_params=MappingProxyType(params),
                    method=request.method,
                    form=request.form,
                    cookies=MappingProxyType(dict(self.session.websocket.cookies)),
                )
                new_root = spec.component.for_request(page_request)
            old_root._cv_connection = None
            new_root._cv_connection = self
            self.root, self.spec, self.url = new_root, spec, request.href
            rendered = render_tree(new_root)
        except SessionClosed:
            raise
        except Exception:
            logger.exception(
                "conn %d: rendering %s failed", self.session.connection_id, request.href
            )
            new_root_failed = self.root
            if new_root_failed is not None:
                new_root_failed._cv_connection = None
            self.root, self.spec, self.url = old_root, old_spec, old_url
            old_root._cv_connection = self
            # The page the server cannot render here is loaded for real.
            await self._load(request)
            return
        if request.pop and request.entry is not None:
            self.history.current = request.entry
            entry = request.entry
        elif replace:
            entry = self.history.current
        else:
            entry = self.history.push()
        self.documents.clear()
        patches = diff(self.tree, rendered.tree)
        self.tree, self.bindings = rendered.tree, rendered.bindings
        nav = {"url": request.href, "push": not request.pop and not replace, "entry": entry}
        await self._send_batch(patches, nav=nav, title=self._title(), save=False)
        await self._connect_hooks(rendered.components)
        await self._flush_changes(save=False)
        await self._save()


def _decoded(raw_path: str) -> str:
    return unquote(raw_path, errors="replace")


# Tasks started and not awaited: referenced until done (the event loop keeps
# only weak references to tasks).
_TASKS: set[asyncio.Task[Any]] = set()


def _background(coroutine: Coroutine[Any, Any, Any]) -> None:
    task = asyncio.get_running_loop().create_task(coroutine)
    _TASKS.add(task)
    task.add_done_callback(_log_failure)


def _log_failure(task: asyncio.Task[Any]) -> None:
    _TASKS.discard(task)
    if not task.cancelled() and task.exception() is not None:
        logger.debug("a page connection's background task failed", exc_info=task.exception())


class PageView(RuntimeView):
    """The WebSocket endpoint of a ``ComponentApp``'s pages (one subclass per
    app, made by the app)."""

    app: ClassVar[ComponentApp]

    def __init__(self, websocket: WebSocket) -> None:
        super().__init__(websocket)
        self.connection: PageConnection | None = None

    def create_session(self, websocket: WebSocket) -> Session:
        """The session, with the page's handlers registered before ``init``."""
        session = super().create_session(websocket)
        self.connection = PageConnection(self.app, session)
        return session

    async def on_session_start(self, session: Session) -> None:
        """Run the connection's jobs."""
        assert self.connection is not None
        await self.connection.run()

    async def on_session_end(self, session: Session) -> None:
        """Save the page a last time."""
        if self.connection is not None:
            await self.connection.finish()


class ComponentApp(App):
    """An ``App`` whose pages are components.

    Args:
        pages: ``{path template: root component class}``.
        title: the default ``<title>``.
        head: extra HTML for every page's ``<head>`` (trusted: not escaped).
        lang: the ``<html lang>``.
        store: where page snapshots live (default: an ``InMemoryStore``).
        secret: the snapshot signing key (default: random per app object, so
            snapshots do not survive a restart; give the same secret to
            every server sharing a store).
        snapshot_ttl: seconds a page can be resumed after its last change
            (or its connection's end).
        max_snapshot_size: the largest snapshot, in bytes of JSON.
        ws_path: the WebSocket endpoint's path.
        prefix: where the scripts are served.
        csp: the pages' ``Content-Security-Policy`` (``None``: none).
        expired_message: shown when a page cannot be resumed, before reload.
        reload_delay: seconds the message shows.
        history_limit: page states kept for back and forward.
        max_message_size, ping_interval, ping_timeout: the sessions'
            (``RuntimeView``).
        reconnect_attempts, reconnect_base, reconnect_max, connect_timeout:
            the browser runtime's (``script_tag``).
        health_path, authenticate: as ``App`` (``authenticate`` vets the
            pages' WebSocket handshakes).
    """

    def __init__(
        self,
        pages: Mapping[str, type[Component]] | None = None,
        *,
        title: str = "wsserver",
        head: str = "",
        lang: str = "en",
        store: SessionStore | None = None,
        secret: bytes | None = None,
        snapshot_ttl: float = DEFAULT_SNAPSHOT_TTL,
        max_snapshot_size: int = DEFAULT_MAX_SNAPSHOT_SIZE,
        ws_path: str = DEFAULT_WS_PATH,
        prefix: str = DEFAULT_PREFIX,
        csp: str | None = DEFAULT_CSP,
        expired_message: str = "This page has expired. Reloading\u2026",
        reload_delay: float = 1.5,
        history_limit: int = 16,
        max_message_size: int | None = None,
        ping_interval: float | None = 15.0,
        ping_timeout: float = 10.0,
        reconnect_attempts: int = 8,
        reconnect_base: float = 0.5,
        reconnect_max: float = 15.0,
        connect_timeout: float = 10.0,
        health_path: str | None = "/healthz",
        authenticate: Authenticator | None = None,
    ) -> None:
        super().__init__(health_path=health_path, authenticate=authenticate)
        self.title = title
        self.head = head
        self.lang = lang
        self.csp = csp
        self.expired_message = expired_message
        self.reload_delay = reload_delay
        self.history_limit = history_limit
        self.prefix = prefix
        self.ws_path = ws_path
        self.snapshots = Snapshots(
            store if store is not None else InMemoryStore(),
            SnapshotCodec(
                secret if secret is not None else secrets.token_bytes(32),
                max_size=max_snapshot_size,
            ),
            ttl=snapshot_ttl,
        )
        self.pages = PageRouter()
        #: The live page connections, by page id.
        self.connections: dict[str, PageConnection] = {}
        self._scripts = script_tag(
            ws_path,
            prefix=prefix,
            reconnect_attempts=reconnect_attempts,
            reconnect_base=reconnect_base,
            reconnect_max=reconnect_max,
            connect_timeout=connect_timeout,
        ) + components_script_tag(prefix=prefix, reload_delay=reload_delay)
        install(self, prefix=prefix)
        install_asset(self, components_asset(), prefix=prefix)
        self.view: type[PageView] = type(
            "PageView",
            (PageView,),
            {
                "app": self,
                "max_message_size": max_message_size,
                "ping_interval": ping_interval,
                "ping_timeout": ping_timeout,
            },
        )
        self.add_websocket_route(ws_path, self.view)
        for path, component in (pages or {}).items():
            self.page(path, component)

    def page(
        self,
        path: str,
        component: _ComponentT | None = None,
        *,
        title: str | None = None,
        head: str | None = None,
    ) -> Any:
        """Add a page: ``app.page("/", Home)``, or as a class decorator.

        Args:
            path: the route's template (``/items/{id:int}``).
            component: the root component's class.
            title: the page's ``<title>`` (``None``: the app's).
            head: the page's extra ``<head>`` HTML (``None``: the app's).

        Returns:
            ``component``, or a decorator.
        """

        def register(cls: _ComponentT) -> _ComponentT:
            candidate: object = cls  # checked at run time: callers may not be typed
            if not (isinstance(candidate, type) and issubclass(candidate, Component)):
                raise TypeError(f"a page's root must be a Component subclass, not {cls!r}")
            spec = PageSpec(path, cls, title, self.head if head is None else head)
            self.pages.add(spec)

            async def endpoint(request: Request) -> Response:
                return await self.render_page(spec, request)

            self.add_route(path, endpoint, methods=("GET", "HEAD", "POST"))
            return cls

        if component is None:
            return register
        return register(component)

    def page_spec(self, path: object) -> PageSpec | None:
        """The page whose template is ``path``, or ``None``."""
        for spec in self.pages.specs:
            if spec.path == path:
                return spec
        return None

    async def render_page(self, spec: PageSpec, request: Request) -> Response:
        """Render a page for an HTTP request, and keep its snapshot."""
        page_request = PageRequest.from_http(request, request.path_params)
        root = spec.component.for_request(page_request)
        rendered = render_tree(root)
        title = root.page_title()
        if title is None:
            title = spec.title if spec.title is not None else self.title
        page_id = secrets.token_urlsafe(_PAGE_ID_BYTES)
        if request.method != "HEAD":
            data = {
                "v": _SNAPSHOT_VERSION,
                "page": spec.path,
                "url": page_request.url,
                "seq": 0,
                "root": dump_component(root),
                "hist": History(self.history_limit).to_json(),
            }
            try:
                await self.snapshots.save(page_id, data)
            except SnapshotTooLarge as exc:
                # Not interactive rather than a reload loop.
                logger.error("page %s is served static: %s", page_request.url, exc)
                page_id = ""
        body = _PAGE.format(
            lang=html.escape(self.lang, quote=True),
            title=html.escape(title, quote=False),
            head=spec.head,
            page_id=page_id,
            body=render_html(rendered.tree),
            scripts=self._scripts if page_id else "",
        )
        headers = {"cache-control": "no-store", "x-content-type-options": "nosniff"}
        if self.csp:
            headers["content-security-policy"] = self.csp
        return HTMLResponse(body, headers=headers)
