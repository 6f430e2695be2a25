"""The page connection: one page, attached over one WebSocket connection.

``PageView`` makes one ``PageConnection`` per WebSocket connection;
``components.js`` sends ``cv/attach`` with the page id, and from then on the
connection runs the page: events from the browser call handlers, whose
effects go back as one patch batch per event; links and forms navigate
without reloads (``navigation.py``).

**Resume.**  The snapshot is saved after every batch.  When the connection
drops, the runtime reconnects and attaches again with the number of the
last batch it applied: the server restores the component tree from the
snapshot and, if the browser is up to date, only confirms (the page, form
fields the user typed in included, is untouched); if it missed a batch,
it gets the whole page again (``cv/mount``).  A page whose snapshot expired
or fails its signature gets ``cv/expired``: a message, and a reload.

Events, attaches and navigations of one connection are handled one at a
time, in order, by the connection's ``JobQueue`` (``jobs.py``), whose worker
runs in a task of its own (``PageView.on_session_start``).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Coroutine, Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from ... import CloseCode
from ...server import QueryParams
from ...server.metric_sources import MetricSource, add_metric_source
from ..runtime import Session, SessionClosed
from ..runtime.js import JSBridge
from ..runtime.messages import Envelope, MalformedMessage, MessageTooLarge
from .component import (
    BoundHandler,
    Component,
    dump_component,
    load_component,
    render_tree,
    set_connection,
)
from .document import Document
from .events import Event, EventMessage, call_handler, parse_event_message
from .html import Binding
from .jobs import JobQueue
from .navigation import (
    History,
    NavRequest,
    PageRequest,
    PageSpec,
    parse_nav_message,
    split_href,
)
from .patches import Patch, node_to_wire, patches_to_wire
from .store import SnapshotError, SnapshotExpired, SnapshotTooLarge, StoreUnavailable
from .vdom import VNode, count_nodes, diff

if TYPE_CHECKING:
    from .app import ComponentApp

__all__ = ["PLUGIN", "PageConnection", "page_snapshot"]

logger = logging.getLogger("wsserver.plugins.components")

#: The plugin name on the wire.
PLUGIN = "cv"
# The snapshot format's version.
_SNAPSHOT_VERSION = 1

# Page attaches (a first connection, or a resume after a reconnection) by
# outcome, for the metrics (docs/operations.md), counted in _attach.
_ATTACH_OUTCOMES = {
    "resumed": "pages attached to their snapshot with the browser's page as it was",
    "remounted": "pages attached to their snapshot and sent whole again (their DOM differed)",
    "expired": "pages whose snapshot was gone (expired or evicted): told to reload",
    "refused": "pages whose snapshot was refused (bad signature, malformed): told to reload",
    "unavailable": "pages not attached because the snapshot store was away: told to reload",
}
_attaches = dict.fromkeys(_ATTACH_OUTCOMES, 0)
for _outcome, _meaning in _ATTACH_OUTCOMES.items():
    add_metric_source(
        MetricSource(
            f"wsserver_components_attaches_{_outcome}",
            "counter",
            _meaning,
            functools.partial(_attaches.__getitem__, _outcome),
        )
    )


def page_snapshot(
    *, page: str | None, url: str, seq: int, root: Component, history: History
) -> dict[str, Any]:
    """What a page's snapshot holds (``Snapshots.save`` signs and stores it).

    Args:
        page: the page's path template (``PageSpec.path``), if known.
        url: the page's URL (path and query).
        seq: the number of the last batch sent.
        root: the root component (``dump_component``).
        history: the states kept for back and forward.

    Raises:
        TypeError: a state field holds what a snapshot cannot.
    """
    return {
        "v": _SNAPSHOT_VERSION,
        "page": page,
        "url": url,
        "seq": seq,
        "root": dump_component(root),
        "hist": history.to_json(),
    }


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
        self.history = History(app.settings.history_limit)
        self.documents: dict[str, Document] = {}
        self.stale_events = 0
        self._title_sent: str | None = None
        self._superseded = False
        self._jobs = JobQueue(
            app.settings.max_pending_jobs, on_flood=self._on_flood, on_failure=self._on_job_failure
        )
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
        await self._jobs.call(self._flush_changes)

    async def send_patches(self, patches: Sequence[Patch]) -> None:
        """Send ``patches`` as one batch (``Document.flush`` uses this)."""
        patch_list = list(patches)

        async def send() -> None:
            await self._send_batch(patch_list)

        await self._jobs.call(send)

    async def navigate(self, href: str, *, replace: bool = False) -> None:
        """Show the page at ``href`` (a path on this app) as if a link was
        followed; with ``replace``, without a new history entry."""
        raw_path, query = split_href(href)
        request = NavRequest(raw_path + (f"?{query}" if query else ""), raw_path, query)

        async def go() -> None:
            await self._navigate(request, replace=replace)

        await self._jobs.call(go)

    async def execute_js(
        self, code: str, timeout: float | None = None, wait_for_result: bool = False
    ) -> Any:
        """``wsserver.plugins.runtime.js.execute_js`` in this page."""
        return await JSBridge.of(self.session).execute_js(code, timeout, wait_for_result)

    # -- jobs, one at a time (``jobs.py``) ------------------------------------

    async def run(self) -> None:
        """Run the jobs until cancelled (``PageView.on_session_start``)."""
        await self._jobs.run()

    def _on_flood(self) -> None:
        # The browser sends faster than the handlers run.
        _background(self.session.close(CloseCode.POLICY_VIOLATION, "too many pending events"))

    async def _on_job_failure(self, exc: Exception) -> None:
        logger.error(
            "conn %d: error on page %s",
            self.session.connection_id,
            self.page_id,
            exc_info=exc,
        )
        await self.session.close(CloseCode.INTERNAL_ERROR, "internal error")

    def _on_close(self, session: Session) -> None:
        self._jobs.close()

    async def finish(self) -> None:
        """Save the page a last time and let it go (``on_session_end``)."""
        if self.page_id is not None and self.app.connections.get(self.page_id) is self:
            del self.app.connections[self.page_id]
        if self.root is not None:
            # From now on the snapshot's time to live counts from here.
            await self._save()
            set_connection(self.root, None)

    def supersede(self) -> None:
        """Another connection attached to this page and runs it now: save no
        more (not to overwrite the newer state), and tell the browser, in a
        task (this connection may be a dead one, slow to write to)."""
        self._superseded = True
        _background(self._expire("moved"))

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

        self._jobs.submit(attach)

    def _on_event(self, message: Envelope) -> None:
        event = parse_event_message(message)

        async def handle() -> None:
            await self._event(event)

        self._jobs.submit(handle)

    def _on_nav(self, message: Envelope) -> None:
        request = parse_nav_message(message)

        async def go() -> None:
            await self._navigate(request)

        self._jobs.submit(go)

    def _on_resync(self, message: Envelope) -> None:
        self._jobs.submit(self._mount)

    # -- the work --------------------------------------------------------------

    async def _expire(self, reason: str) -> None:
        await self.session.send(
            PLUGIN,
            "expired",
            reason=reason,
            message=self.app.settings.expired_message,
            reload_ms=round(self.app.settings.reload_delay * 1000),
        )

    async def _attach(self, page_id: str, seq: int, count: int) -> None:
        try:
            data = await self.app.snapshots.load(page_id)
            root = load_component(data["root"])
            url, last_seq = data["url"], data["seq"]
            if not isinstance(url, str) or not isinstance(last_seq, int):
                raise ValueError("malformed snapshot")
        except SnapshotExpired:
            _attaches["expired"] += 1
            logger.info("conn %d: page %s has expired", self.session.connection_id, page_id)
            await self._expire("expired")
            return
        except (SnapshotError, LookupError, ValueError, TypeError) as exc:
            _attaches["unavailable" if isinstance(exc, StoreUnavailable) else "refused"] += 1
            logger.warning(
                "conn %d: snapshot of page %s refused: %s", self.session.connection_id, page_id, exc
            )
            await self._expire("invalid")
            return
        previous = self.app.connections.get(page_id)
        if previous is not None and previous is not self:
            # The same page attached twice (a duplicated tab, or a resume the
            # server has not yet seen the old connection drop for): the newer
            # one wins.
            previous.supersede()
        self.app.connections[page_id] = self
        self.root = root
        set_connection(root, self)
        self.spec = self.app.page_spec(data.get("page"))
        self.url = url
        self.seq = last_seq
        self.history = History.from_json(data.get("hist"), self.app.settings.history_limit)
        rendered = render_tree(root)
        self.tree, self.bindings = rendered.tree, rendered.bindings
        self._title_sent = self._title()
        if seq == last_seq and count == count_nodes(rendered.tree):
            _attaches["resumed"] += 1
            await self.session.send(PLUGIN, "ready", seq=self.seq)
        else:
            _attaches["remounted"] += 1
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
        return self.app.settings.title

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
        return page_snapshot(
            page=None if self.spec is None else self.spec.path,
            url=self.url,
            seq=self.seq,
            root=self.root,
            history=self.history,
        )

    async def _save(self) -> None:
        if self.page_id is None or self.root is None or self._superseded:
            return
        try:
            await self.app.snapshots.save(self.page_id, self._snapshot_data())
        except (SnapshotTooLarge, StoreUnavailable) as exc:
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
            set_connection(old_root, None)
            set_connection(new_root, self)
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
                set_connection(new_root_failed, None)
            self.root, self.spec, self.url = old_root, old_spec, old_url
            set_connection(old_root, self)
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
