"""``ComponentApp``: an ``App`` whose pages are components.

::

    app = ComponentApp({"/": TodoList}, title="To-do")

    @app.page("/items/{id:int}")
    class Item(Component): ...

``wsserver run module:app`` serves it.  A ``GET`` of a page renders its
root component to HTML (it shows before any script runs, ``template.py``),
stores the page's state as a snapshot under a new random page id, and loads
the browser runtime and ``components.js`` (``assets.py``).  The runtime
connects the WebSocket (``view.py``), where a ``PageConnection`` runs the
page from then on (``connection.py``).  The app's options are one
``PageSettings`` (``settings.py``).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, TypeVar, Unpack

from ...server import App, HTMLResponse, PlainTextResponse, Request, Response
from ..runtime import install, script_tag
from ..runtime.assets import install_asset
from .assets import components_asset, components_script_tag
from .component import Component, render_tree
from .connection import PageConnection, page_snapshot
from .html import render_html
from .navigation import History, PageRequest, PageRouter, PageSpec
from .settings import PageOptions, PageSettings
from .store import InMemoryStore, SnapshotCodec, Snapshots, SnapshotTooLarge, StoreUnavailable
from .template import Markup, render_page_html
from .uploads import UploadDirectory
from .view import PageView

__all__ = ["ComponentApp"]

logger = logging.getLogger("wsserver.plugins.components")

# 18 random bytes: 24 characters of URL-safe base64, 144 bits, not guessable.
_PAGE_ID_BYTES = 18

_ComponentT = TypeVar("_ComponentT", bound=type[Component])


class ComponentApp(App):
    """An ``App`` whose pages are components.

    Args:
        pages: ``{path template: root component class}``.
        settings: the app's options (default: ``PageSettings()``).
        **options: ``PageSettings`` fields, overriding ``settings``'s
            (``title=``, ``csp=``, ``secret=``...).

    Attributes:
        settings: the options in force.
        snapshots: where the pages' snapshots are kept.
        pages: the pages' routes.
        connections: the live page connections, by page id.
        view: the pages' WebSocket endpoint (a ``PageView`` subclass).
        upload_directory: where uploads are written (``settings.upload_dir``).
    """

    def __init__(
        self,
        pages: Mapping[str, type[Component]] | None = None,
        *,
        settings: PageSettings | None = None,
        **options: Unpack[PageOptions],
    ) -> None:
        settings = replace(settings if settings is not None else PageSettings(), **options)
        super().__init__(health_path=settings.health_path, authenticate=settings.authenticate)
        self._settings = settings
        self.snapshots = Snapshots(
            settings.store if settings.store is not None else InMemoryStore(),
            SnapshotCodec(
                settings.secret if settings.secret is not None else secrets.token_bytes(32),
                max_size=settings.max_snapshot_size,
            ),
            ttl=settings.snapshot_ttl,
        )
        self.pages = PageRouter()
        self.connections: dict[str, PageConnection] = {}
        self.upload_directory = UploadDirectory(settings.upload_dir)
        self._scripts = Markup(
            script_tag(
                settings.ws_path,
                prefix=settings.prefix,
                reconnect_attempts=settings.reconnect_attempts,
                reconnect_base=settings.reconnect_base,
                reconnect_max=settings.reconnect_max,
                connect_timeout=settings.connect_timeout,
            )
            + components_script_tag(prefix=settings.prefix, reload_delay=settings.reload_delay)
        )
        install(self, prefix=settings.prefix)
        install_asset(self, components_asset(), prefix=settings.prefix)
        self.view = PageView.for_app(self)
        self.add_websocket_route(settings.ws_path, self.view)
        for path, component in (pages or {}).items():
            self.page(path, component)

    @property
    def settings(self) -> PageSettings:
        """The options in force (fixed when the app is made)."""
        return self._settings

    # The settings under the names they had as attributes.

    @property
    def title(self) -> str:
        """``settings.title``."""
        return self._settings.title

    @property
    def head(self) -> str:
        """``settings.head``."""
        return self._settings.head

    @property
    def lang(self) -> str:
        """``settings.lang``."""
        return self._settings.lang

    @property
    def csp(self) -> str | None:
        """``settings.csp``."""
        return self._settings.csp

    @property
    def expired_message(self) -> str:
        """``settings.expired_message``."""
        return self._settings.expired_message

    @property
    def reload_delay(self) -> float:
        """``settings.reload_delay``."""
        return self._settings.reload_delay

    @property
    def history_limit(self) -> int:
        """``settings.history_limit``."""
        return self._settings.history_limit

    @property
    def prefix(self) -> str:
        """``settings.prefix``."""
        return self._settings.prefix

    @property
    def ws_path(self) -> str:
        """``settings.ws_path``."""
        return self._settings.ws_path

    # -- pages -------------------------------------------------------------

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
            spec = PageSpec(path, cls, title, self._settings.head if head is None else head)
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
        try:
            page_request = PageRequest.from_http(request, request.path_params)
        except ValueError as exc:
            # A posted form of too many fields: the client's mistake, one
            # line, not a 500 with a traceback (found by fuzz/fuzz_navigation.py).
            logger.info("page %s: 400, %s", request.url.raw_path, exc)
            return PlainTextResponse(f"Bad request: {exc}\n", status_code=400)
        root = spec.component.for_request(page_request)
        rendered = render_tree(root)
        title = root.page_title()
        if title is None:
            title = spec.title if spec.title is not None else self._settings.title
        page_id = secrets.token_urlsafe(_PAGE_ID_BYTES)
        if request.method != "HEAD":
            data = page_snapshot(
                page=spec.path,
                url=page_request.url,
                seq=0,
                root=root,
                history=History(self._settings.history_limit),
                loaded=False,
            )
            try:
                await self.snapshots.save(page_id, data)
            except SnapshotTooLarge as exc:
                # Not interactive rather than a reload loop.
                logger.error("page %s is served static: %s", page_request.url, exc)
                page_id = ""
            except StoreUnavailable as exc:
                # A page that could never be resumed would reload in a loop
                # at its first reconnect: say the service is briefly away.
                logger.error("page %s: 503, the snapshot store is away: %s", page_request.url, exc)
                return PlainTextResponse(
                    "Service unavailable: try again in a moment.\n",
                    status_code=503,
                    headers={"retry-after": "1", "cache-control": "no-store"},
                )
        body = render_page_html(
            lang=self._settings.lang,
            title=title,
            page_id=page_id,
            head=Markup(spec.head),  # trusted: the application's own HTML
            body=Markup(render_html(rendered.tree)),
            scripts=self._scripts if page_id else Markup(""),
        )
        headers = {"cache-control": "no-store", "x-content-type-options": "nosniff"}
        if self._settings.csp:
            headers["content-security-policy"] = self._settings.csp
        return HTMLResponse(body, headers=headers)
