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
import inspect
import logging
import secrets
from collections.abc import Coroutine, Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal
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
    rendered_node,
    set_connection,
)
from .document import Document
from .events import DocumentEvent, Event, EventMessage, call_handler, parse_event_message
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
from .patches import Patch, Replace, node_to_wire, patches_to_wire
from .store import SnapshotError, SnapshotExpired, SnapshotTooLarge, StoreUnavailable
from .uploads import (
    UPLOAD_EVENT,
    Transfer,
    UploadEvent,
    UploadHandler,
    UploadRefused,
    decode_chunk,
    parse_upload_request,
)
from .vdom import VNode, count_nodes, diff

if TYPE_CHECKING:
    from .app import ComponentApp

__all__ = ["PLUGIN", "PageConnection", "page_snapshot"]

logger = logging.getLogger("wsserver.plugins.components")

#: The plugin name on the wire.
PLUGIN = "cv"

# Compression (with permessage-deflate agreed), chosen per kind of message:
# - control messages (ready, expired, load, the uploads' up_*) are a few
#   dozen bytes that deflate cannot shrink and whose latency is the point:
#   never compressed;
# - a whole page (mount) is large, repetitive JSON that shrinks several
#   times over: always compressed;
# - a patch batch is compressed from PageSettings.compress_min_size bytes
#   (1 KiB): the answer to a click is a few hundred bytes, sent as is; a
#   table re-rendered is tens of kilobytes, compressed.
# The snapshot format's version.
_SNAPSHOT_VERSION = 1

# Page attaches by outcome, for the metrics (docs/operations.md), counted in
# _attach.  A page's first connection (the one that delivers its ``load``
# document event: its snapshot says it was not loaded yet) counts as
# "first", whether the browser's page matched or was sent whole; "resumed"
# and "remounted" count only the attaches after a reconnection.  So a page
# loaded once and resumed once is first 1, resumed 1, however the first
# attach went.  The failures (expired, refused, unavailable) count the
# same on any attach.
_ATTACH_OUTCOMES = {
    "first": "pages attached on their first connection (the one that delivers their load event)",
    "resumed": "pages attached to their snapshot after a reconnection, the browser's page "
    "as it was",
    "remounted": "pages attached to their snapshot after a reconnection and sent whole again "
    "(the browser missed a batch)",
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
    *,
    page: str | None,
    url: str,
    seq: int,
    root: Component,
    history: History,
    loaded: bool = True,
) -> dict[str, Any]:
    """What a page's snapshot holds (``Snapshots.save`` signs and stores it).

    Args:
        page: the page's path template (``PageSpec.path``), if known.
        url: the page's URL (path and query).
        seq: the number of the last batch sent.
        root: the root component (``dump_component``).
        history: the states kept for back and forward.
        loaded: whether the page's ``load`` document event was delivered
            (``False`` until its first attach).

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
        "loaded": loaded,
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
        #: Documents shown by many connections (``docserver.SharedDocument``):
        #: their handlers are found here, their patches sent by their flush.
        self.shared_documents: list[Document] = []
        self.stale_events = 0
        self.uploads: dict[str, Transfer] = {}
        self.loaded = True
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
        session.on(PLUGIN, "up", self._on_upload_request)
        session.on(PLUGIN, "up_data", self._on_upload_data)
        session.on(PLUGIN, "up_cancel", self._on_upload_cancel)
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

    async def update_now(self, *components: Component, force: bool = False) -> None:
        """Re-render and push now (Duck's ``update_now``): from a handler,
        mid-way (the browser shows the change before the handler ends), or
        from a background job (serialised with events).

        Args:
            components: the components to render again (none: the page's
                root, so the whole page is checked).
            force: send the components' whole subtrees as ``Replace``
                patches even where the diff finds nothing (the browser's
                copy was changed behind the server's back: a script, an
                extension).
        """
        targets = list(components)
        if not targets and self.root is not None:
            targets = [self.root]
        for component in targets:
            component.update()

        async def push() -> None:
            await self._flush_changes(forced=targets if force else ())

        await self._jobs.call(push)

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

    async def cancel_upload(self, transfer_id: str, message: str = "Cancelled.") -> bool:
        """Stop an upload in progress: its partial files are removed, the
        browser stops sending, and the handler gets ``cancelled``.

        Returns:
            Whether there was such an upload.
        """
        transfer = self.uploads.pop(transfer_id, None)
        if transfer is None:
            return False
        transfer.abort()
        await self.session.send(
            PLUGIN, "up_cancel", compress=False, id=transfer_id, message=message
        )
        # Queued, not called: from a handler (this upload's, typically) the
        # handler hears of it once it has returned, not re-entered.
        self._jobs.submit(self._upload_job(transfer, transfer.event("cancelled", message=message)))
        return True

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
        # Partial files do not outlive the connection that was sending them.
        for transfer in self.uploads.values():
            transfer.abort()
        self.uploads.clear()

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
        nav_type = message.get("nav")
        if not page_id or len(page_id) > 64:
            raise MalformedMessage("cv/attach: bad page id")
        if nav_type is not None and not isinstance(nav_type, str):
            raise MalformedMessage("cv/attach: 'nav' must be a string")
        if self.page_id is not None:
            raise MalformedMessage("cv/attach: a page is attached already")
        self.page_id = page_id

        async def attach() -> None:
            await self._attach(page_id, seq, count, nav_type)

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

    # -- uploads (``uploads.py``) -------------------------------------------

    def _on_upload_request(self, message: Envelope) -> None:
        ref, key, infos = parse_upload_request(message)

        async def start() -> None:
            await self._start_upload(ref, key, infos)

        self._jobs.submit(start)

    def _chunk_size(self) -> int:
        # A chunk travels as base64 (4 characters per 3 bytes) in an
        # envelope: it must fit the session's message limit.
        room = (self.session.max_message_size - 512) * 3 // 4
        return max(1, min(self.app.settings.upload_chunk_size, room))

    async def _start_upload(self, ref: int, key: str, infos: list[Any]) -> None:
        found = self._find(key, UPLOAD_EVENT) if self.root is not None else None
        handler = None if found is None else found[1].handler
        if found is None or not isinstance(handler, UploadHandler):
            await self.session.send(
                PLUGIN,
                "up_err",
                compress=False,
                ref=ref,
                message="This upload is no longer on the page.",
            )
            return
        component = found[0]
        try:
            if len(self.uploads) >= self.app.settings.max_uploads:
                raise UploadRefused(
                    f"Too many uploads at once: at most {self.app.settings.max_uploads}."
                )
            handler.spec.check(infos)
        except UploadRefused as exc:
            logger.info("conn %d: upload refused: %s", self.session.connection_id, exc)
            await self.session.send(PLUGIN, "up_err", compress=False, ref=ref, message=str(exc))
            refused = UploadEvent(
                "error",
                "",
                0,
                sum(info.size for info in infos),
                0,
                tuple(info.name for info in infos),
                message=str(exc),
            )
            await self._deliver_upload(handler, component, refused)
            return
        transfer_id = secrets.token_urlsafe(9)
        try:
            transfer = Transfer(
                transfer_id, key, handler, component, infos, self.app.upload_directory
            )
        except OSError as exc:
            logger.error("conn %d: cannot store an upload: %s", self.session.connection_id, exc)
            await self.session.send(
                PLUGIN,
                "up_err",
                compress=False,
                ref=ref,
                message="The server cannot store files now.",
            )
            return
        self.uploads[transfer_id] = transfer
        await self.session.send(
            PLUGIN,
            "up_go",
            compress=False,
            ref=ref,
            id=transfer_id,
            chunk=self._chunk_size(),
            window=self.app.settings.upload_window,
        )
        await self._deliver_upload(handler, component, transfer.event("start"))
        if transfer.complete:  # only empty files
            await self._complete_upload(transfer)

    async def _on_upload_data(self, message: Envelope) -> None:
        # In the receive loop: the chunk is written before the next message
        # is read, so a transfer holds one chunk and the browser waits for
        # acknowledgements (back-pressure).
        transfer_id, index, offset, data = decode_chunk(message, self._chunk_size())
        transfer = self.uploads.get(transfer_id)
        if transfer is None:
            return  # cancelled while this chunk was on its way
        try:
            transfer.write(index, offset, data)
        except (UploadRefused, OSError) as exc:
            if isinstance(exc, OSError):
                logger.error(
                    "conn %d: writing an upload failed: %s", self.session.connection_id, exc
                )
                reason = "The server could not store the file."
            else:
                logger.info("conn %d: upload stopped: %s", self.session.connection_id, exc)
                reason = str(exc)
            del self.uploads[transfer_id]
            transfer.abort()
            await self.session.send(
                PLUGIN, "up_cancel", compress=False, id=transfer_id, message=reason
            )
            self._jobs.submit(self._upload_job(transfer, transfer.event("error", message=reason)))
            return
        await self.session.send(
            PLUGIN, "up_ack", compress=False, id=transfer_id, received=transfer.received
        )
        if transfer.complete:
            self._jobs.submit(self._completion_job(transfer))
        elif transfer.percent > transfer.reported and not transfer.pending_progress:
            # One progress job queued at a time: when the handlers run
            # behind, the next one reports the latest figure.
            transfer.pending_progress = True
            self._jobs.submit(self._progress_job(transfer))

    def _progress_job(self, transfer: Transfer) -> Any:
        async def progress() -> None:
            transfer.pending_progress = False
            if transfer.done or transfer.percent <= transfer.reported:
                return
            transfer.reported = transfer.percent
            # Not saved per percent: the snapshot is saved at the end.
            await self._deliver_upload(
                transfer.handler, transfer.component, transfer.event("progress"), save=False
            )

        return progress

    def _completion_job(self, transfer: Transfer) -> Any:
        async def complete() -> None:
            await self._complete_upload(transfer)

        return complete

    async def _complete_upload(self, transfer: Transfer) -> None:
        if self.uploads.pop(transfer.id, None) is None:
            return  # cancelled meanwhile
        try:
            files = transfer.finish()
        except OSError as exc:
            logger.error("conn %d: finishing an upload failed: %s", self.session.connection_id, exc)
            transfer.done = False
            transfer.abort()
            reason = "The server could not store the file."
            await self.session.send(
                PLUGIN, "up_cancel", compress=False, id=transfer.id, message=reason
            )
            await self._deliver_upload(
                transfer.handler, transfer.component, transfer.event("error", message=reason)
            )
            return
        await self.session.send(PLUGIN, "up_done", compress=False, id=transfer.id)
        if transfer.reported < 100:
            transfer.reported = 100
            await self._deliver_upload(
                transfer.handler, transfer.component, transfer.event("progress")
            )
        await self._deliver_upload(
            transfer.handler, transfer.component, transfer.event("complete", files=files)
        )

    def _on_upload_cancel(self, message: Envelope) -> None:
        transfer_id = message.require("id", str)
        transfer = self.uploads.pop(transfer_id, None)
        if transfer is None:
            return
        transfer.abort()
        logger.info("conn %d: upload cancelled by the browser", self.session.connection_id)
        self._jobs.submit(
            self._upload_job(transfer, transfer.event("cancelled", message="Cancelled."))
        )

    def _upload_job(self, transfer: Transfer, event: UploadEvent) -> Any:
        async def deliver() -> None:
            await self._deliver_upload(transfer.handler, transfer.component, event)

        return deliver

    async def _deliver_upload(
        self, handler: UploadHandler, target: Any, event: UploadEvent, *, save: bool = True
    ) -> None:
        """Call an upload handler (in a job), then send what it changed."""
        if self.root is None:
            return
        try:
            result = handler(event)
            if inspect.isawaitable(result):
                await result
        except SessionClosed:
            raise
        except Exception:
            if self.session.closed:
                return
            logger.exception(
                "conn %d: error in the upload handler (%s)", self.session.connection_id, event.kind
            )
        if isinstance(target, Component):
            target.update()
        await self._flush_changes(save=save)

    # -- the work --------------------------------------------------------------

    async def _expire(self, reason: str) -> None:
        await self.session.send(
            PLUGIN,
            "expired",
            compress=False,
            reason=reason,
            message=self.app.settings.expired_message,
            reload_ms=round(self.app.settings.reload_delay * 1000),
        )

    async def _attach(self, page_id: str, seq: int, count: int, nav_type: str | None) -> None:
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
        # Snapshots from before the flag existed are of pages loaded long ago.
        self.loaded = data.get("loaded", True) is not False
        rendered = render_tree(root)
        self.tree, self.bindings = rendered.tree, rendered.bindings
        self._title_sent = self._title()
        in_step = seq == last_seq and count == count_nodes(rendered.tree)
        _attaches["first" if not self.loaded else "resumed" if in_step else "remounted"] += 1
        if in_step:
            await self.session.send(PLUGIN, "ready", compress=False, seq=self.seq)
        else:
            await self._mount()
        await self._connect_hooks(rendered.components)
        # Duck's rule: DOMContentLoaded once per page; a page the browser
        # shows again through back or forward hears of it as history.
        first = not self.loaded
        if first:
            self.loaded = True
            await self._document_event("history" if nav_type == "back_forward" else "load")
        elif nav_type == "back_forward":
            await self._document_event("history")
        saved_at = self.seq
        await self._flush_changes(save=True)
        if first and self.seq == saved_at and in_step:
            # Nothing was sent, so nothing saved: save now that the page is
            # loaded, so that its next attach (a reconnection, maybe on
            # another worker before this connection's end is noticed) is a
            # resume, counted as one, and does not hear of ``load`` again.
            await self._save()

    async def _document_event(
        self, kind: Literal["load", "history"], direction: Literal["back", "forward"] | None = None
    ) -> None:
        """Deliver a ``DocumentEvent`` to every component of the page."""
        if self.root is None:
            return
        event = DocumentEvent(kind, self.url, direction, self)
        for component in render_tree(self.root).components:
            try:
                result = component.on_document(event)
                if result is not None:
                    await result
            except SessionClosed:
                raise
            except Exception:
                logger.exception("error in %s.on_document", type(component).__name__)

    async def _mount(self) -> None:
        """Send the whole page (the browser's DOM is not what we think)."""
        if self.root is None or self.tree is None:
            return
        self.seq += 1
        title = self._title()
        self._title_sent = title
        self.documents.clear()
        await self.session.send(
            PLUGIN, "mount", compress=True, seq=self.seq, node=node_to_wire(self.tree), title=title
        )
        # The shared documents' content went with the old DOM: send it again.
        shared = [patch for doc in self.shared_documents for patch in doc.snapshot_patches()]
        if shared:
            await self._send_batch(shared, save=False)
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
        for document in (*self.documents.values(), *self.shared_documents):
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
        forced: Sequence[Component] = (),
    ) -> None:
        """Re-render, diff, add the documents' patches: one batch, if any;
        the ``forced`` components' subtrees are sent whole."""
        if self.root is None or self.tree is None:
            return
        rendered = render_tree(self.root)
        patches = diff(self.tree, rendered.tree, live=live)
        self.tree, self.bindings = rendered.tree, rendered.bindings
        in_page = {id(component) for component in rendered.components}
        for component in forced:
            node = rendered_node(component)
            if node is not None and id(component) in in_page:
                patches.append(Replace(node.key, node))
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
            await self.session.send(
                PLUGIN,
                "patch",
                compress_min_size=self.app.settings.compress_min_size,
                **fields,
            )
        except MessageTooLarge as exc:
            # One batch per message: a batch that cannot be sent is a page
            # that must be loaded again.
            logger.warning("conn %d: %s; reloading the page", self.session.connection_id, exc)
            await self.session.send(
                PLUGIN, "load", compress=False, url=self.url, method="GET", replace=True
            )
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
            PLUGIN,
            "load",
            compress=False,
            url=request.href,
            method=request.method,
            replace=request.pop,
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
        direction: Literal["back", "forward"] | None = None
        if request.pop and request.entry is not None:
            # Entries are numbered in the order they were made.
            direction = "back" if request.entry < self.history.current else "forward"
            self.history.current = request.entry
            entry = request.entry
        elif replace:
            entry = self.history.current
        else:
            entry = self.history.push()
        self.documents.clear()
        self.shared_documents.clear()
        patches = diff(self.tree, rendered.tree)
        self.tree, self.bindings = rendered.tree, rendered.bindings
        nav = {"url": request.href, "push": not request.pop and not replace, "entry": entry}
        await self._send_batch(patches, nav=nav, title=self._title(), save=False)
        await self._connect_hooks(rendered.components)
        if request.pop:
            await self._document_event("history", direction)
        else:
            await self._document_event("load")
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
