"""A domsync-style server: documents edited from Python, per client or
shared by many.

::

    live = DocumentServer(on_client, title="Prices")
    prices = live.shared()                   # one document, every client

    async def on_client(server: DocumentServer, client: PageConnection) -> None:
        doc = server.document(client)        # this client's own document
        doc.getRootElement().appendChild(doc.createElement("h1", innerText="Hello"))
        await server.flush(client)           # one batch of patches

    app = live.app                           # serve it: wsserver run module:app

``DocumentServer`` makes a ``ComponentApp`` (or adds a page to one given)
whose page is an empty host; each browser that attaches is a *client* (its
``PageConnection``).  ``on_client(server, client)`` runs in a task of its
own for each client, as domsync's connection handler does, and may run for
as long as the client stays (it is cancelled when the connection ends).

Every document speaks domsync's DOM (``document.py``): its changes become
patches -- data, escaped by construction, never JavaScript -- and
``flush`` sends the pending ones as one batch.  After a browser event
handled by a document's listener, the client's own document is flushed
automatically (as domsync does); a shared document is flushed with
``SharedDocument.flush``, which sends the same batch to every client.

A client that reconnects (a network blip) is a client again: its own
document starts empty and ``on_client`` runs again; a shared document is
shown to it whole.

Names, from domsync's: ``get_document(client)`` -> ``document(client)``;
``flush(client)`` -> ``flush(client)``; ``get_clients()`` -> ``clients``;
``is_connected(client)`` -> ``is_connected(client)``; ``render_js_full()``
-> ``Document.snapshot_patches()`` (sent for you to new clients of a shared
document); ``serve()`` -> ``wsserver run module:live.app`` (or
``Server(live.app, ...)``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

from ..runtime import Session, SessionClosed
from .app import ComponentApp
from .component import Component
from .connection import PageConnection
from .document import Document
from .html import Element, h
from .vdom import ROOT_KEY, child_key, explicit_key

__all__ = ["ClientHandler", "DocumentServer", "SharedDocument"]

logger = logging.getLogger("wsserver.plugins.components")

#: ``on_client(server, client)``: runs for each client, in a task.
ClientHandler = Callable[["DocumentServer", PageConnection], Awaitable[None]]

# The host elements' keys among the page's root's children: the client's
# own document, then the shared ones (shared1, shared2...).  Hosts are
# distinct: a document starts by clearing its host.
_HOST = "doc"
_SHARED = "shared"
_serial = itertools.count(1)


class SharedDocument:
    """One document shown by many clients.

    Made with ``DocumentServer.shared()``; edit ``document`` (or use this
    object's ``createElement`` and ``getRootElement``), then ``flush``.

    Attributes:
        document: the document (its elements' handlers get the client whose
            browser fired the event as ``event.connection``).
    """

    def __init__(self, root_key: str) -> None:
        self.document = Document(root_key)
        self.document.take_patches()  # a client is shown the whole document
        self._clients: list[PageConnection] = []

    def __repr__(self) -> str:
        return f"<SharedDocument clients={len(self.clients)}>"

    def __getattr__(self, name: str) -> Any:
        # createElement, getRootElement, getElementById...: the document's.
        return getattr(self.document, name)

    @property
    def clients(self) -> list[PageConnection]:
        """The clients showing the document now."""
        return [c for c in self._clients if _showing(c, self.document)]

    async def attach(self, client: PageConnection) -> None:
        """Show the document to ``client`` (whole), and send it each flush."""
        # What is pending goes to the clients there first: the new one's
        # snapshot has it already, and must not get it twice.
        await self.flush()
        self._clients = [c for c in self._clients if _showing(c, self.document)]
        if client not in self._clients:
            self._clients.append(client)
        if self.document not in client.shared_documents:
            client.shared_documents.append(self.document)
        await client.send_patches(self.document.snapshot_patches())

    async def flush(self) -> int:
        """Send the pending changes to every client as one batch; return how
        many patches.  A client that left meanwhile is skipped (it gets the
        whole document when it comes back)."""
        patches = self.document.take_patches()
        if not patches:
            return 0
        clients = self.clients
        self._clients = clients
        results = await asyncio.gather(
            *(client.send_patches(patches) for client in clients), return_exceptions=True
        )
        for client, result in zip(clients, results, strict=True):
            if isinstance(result, Exception) and not isinstance(result, SessionClosed):
                logger.error(
                    "conn %d: a shared document's batch failed",
                    client.session.connection_id,
                    exc_info=result,
                )
        return len(patches)


def _showing(client: PageConnection, document: Document) -> bool:
    return not client.closed and document in client.shared_documents


class DocumentServer:
    """Documents edited from Python for the clients of one page.

    Args:
        on_client: ``on_client(server, client)``, run in a task for each
            client that attaches (``None``: nothing runs).
        app: the app to add the page to (``None``: a new ``ComponentApp``,
            given ``options``).
        path: the page's path.
        title: the page's title.
        **options: ``PageSettings`` fields for a new app.

    Attributes:
        app: the application serving the page.
        host_key: the key of the element the clients' own documents live in.
    """

    def __init__(
        self,
        on_client: ClientHandler | None = None,
        *,
        app: ComponentApp | None = None,
        path: str = "/",
        title: str | None = None,
        **options: Any,
    ) -> None:
        self.app = app if app is not None else ComponentApp(**options)
        self.on_client = on_client
        self.host_key = child_key(ROOT_KEY, explicit_key(_HOST))
        self._clients: list[PageConnection] = []
        self._tasks: dict[PageConnection, asyncio.Task[None]] = {}
        self._shared: list[SharedDocument] = []
        server = self
        # One page class per server, named uniquely: snapshots find their
        # class by name, and the class finds its server.
        page = type(
            f"DocumentPage{next(_serial)}",
            (_DocumentPage,),
            {"server": server, "__module__": __name__},
        )
        self.app.page(path, page, title=title)

    def __repr__(self) -> str:
        return f"<DocumentServer clients={len(self.clients)}>"

    # -- domsync's API -------------------------------------------------------

    @property
    def clients(self) -> list[PageConnection]:
        """The connected clients (domsync's ``get_clients()``)."""
        return [client for client in self._clients if not client.closed]

    def is_connected(self, client: PageConnection) -> bool:
        """Whether ``client`` is still connected."""
        return client in self._clients and not client.closed

    def document(self, client: PageConnection) -> Document:
        """``client``'s own document (domsync's ``get_document``)."""
        return client.document(self.host_key)

    async def flush(self, client: PageConnection) -> int:
        """Send ``client``'s pending changes as one batch; return how many
        patches (0: nothing was pending, nothing is sent).

        Raises:
            SessionClosed: the client has gone.
        """
        return await self.document(client).flush()

    async def flush_all(self) -> None:
        """Flush every client's document (domsync left this one commented
        out), and every shared document."""
        for client in self.clients:
            with contextlib.suppress(SessionClosed):  # it left meanwhile
                await self.flush(client)
        for shared in self._shared:
            await shared.flush()

    def shared(self) -> SharedDocument:
        """A new document shown by every client, present and future, in a
        host of its own after the client's own document (and after the
        shared documents made before it).  Make them before clients come:
        a client already there shows one made later from its next attach."""
        shared = SharedDocument(
            child_key(ROOT_KEY, explicit_key(f"{_SHARED}{len(self._shared) + 1}"))
        )
        self._shared.append(shared)
        return shared

    @property
    def shared_documents(self) -> list[SharedDocument]:
        """The shared documents, in the page's order."""
        return list(self._shared)

    # -- the clients' lifecycle (the page's hooks) -----------------------------

    async def _client_attached(self, client: PageConnection) -> None:
        if client not in self._clients:
            self._clients.append(client)
            client.session.add_close_callback(self._closed_callback(client))
        self.document(client)  # a fresh document clears the host first
        # Rendered again now: the hosts of shared documents made since the
        # page was rendered must be there before their content.
        await client.update_now()
        for shared in self._shared:
            await shared.attach(client)
        previous = self._tasks.pop(client, None)
        if previous is not None:
            previous.cancel()
        if self.on_client is not None:
            task = asyncio.get_running_loop().create_task(self._run(client))
            self._tasks[client] = task

    def _closed_callback(self, client: PageConnection) -> Callable[[Session], None]:
        def closed(session: Session) -> None:
            if client in self._clients:
                self._clients.remove(client)
            task = self._tasks.pop(client, None)
            if task is not None:
                task.cancel()

        return closed

    async def _run(self, client: PageConnection) -> None:
        assert self.on_client is not None
        try:
            await self.on_client(self, client)
        except (SessionClosed, asyncio.CancelledError):
            pass  # the client left
        except Exception:
            if not client.closed:
                logger.exception(
                    "conn %d: error in the document server's client handler",
                    client.session.connection_id,
                )
        finally:
            if self._tasks.get(client) is asyncio.current_task():
                del self._tasks[client]


class _DocumentPage(Component):
    """The page of a ``DocumentServer``: a host element for its documents."""

    server: ClassVar[DocumentServer]

    def render(self) -> Element:
        shared = len(type(self).server.shared_documents)
        return h.div(h.div(key=_HOST), *(h.div(key=f"{_SHARED}{n}") for n in range(1, shared + 1)))

    async def on_connect(self, connection: PageConnection) -> None:
        await type(self).server._client_attached(connection)
