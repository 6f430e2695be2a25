"""Real-browser test helpers: headless Chromium against a real wsserver.

Not a test module.  ``conftest.py`` launches one browser per test module;
``Harness`` serves an ``App`` with the runtime, a ``RuntimeView`` that hands
each session to the test, and a page that loads the runtime, on loopback.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any

from wsserver.plugins.runtime import RuntimeView, Session, install, script_tag
from wsserver.server import App, HTMLResponse, Request, Response, Server, ServerConfig

if TYPE_CHECKING:
    from playwright.async_api import Browser, BrowserContext, Page

#: Debian's Chromium; Playwright's own browser downloads are never used.
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
#: Seconds any single wait in a browser test may take: a hang guard, never a
#: speed check (every use waits for an event and returns as soon as it
#: happens).  Generous, because a page on a busy two-core machine (CI, or
#: the suite beside other work) can take several seconds to load, run
#: Brython or reconnect; 5 s failed there.
WAIT = 15.0

# Every ``page.wait_for_function`` gets a function ("() => ..."), never a bare
# expression: Playwright polls a bare expression through ``eval``, which a
# page's ``Content-Security-Policy: script-src 'self'`` forbids, so the wait
# fails whenever the condition is not already true at the first check (the
# component view's pages send that CSP by default).

# Records the runtime's events in the page, for the test to read.  (Test
# pages only: it adds globals of its own.)
RECORDER = """
window.__statuses = [];
window.__unknown = [];
window.addEventListener("wsserver:status", (e) => window.__statuses.push(e.detail));
window.addEventListener("wsserver:unknown", (e) => window.__unknown.push(
    {plugin: e.detail.plugin, kind: e.detail.kind}));
"""

StartHook = Callable[[Session], Awaitable[None]]


class Harness:
    """A server with the runtime and pages connected to it.

    Args:
        ping_interval, ping_timeout, max_message_size: the view's settings.
        reconnect_attempts, reconnect_base, reconnect_max, connect_timeout:
            the script tag's (short, so that tests are quick).
        on_start: extra work in ``on_session_start``.
        app: add routes to this app instead of a new one.
    """

    def __init__(
        self,
        *,
        ping_interval: float | None = 10.0,
        ping_timeout: float = 10.0,
        max_message_size: int | None = None,
        reconnect_attempts: int = 8,
        reconnect_base: float = 0.05,
        reconnect_max: float = 0.2,
        connect_timeout: float = 3.0,
        on_start: StartHook | None = None,
    ) -> None:
        self.sessions: asyncio.Queue[Session] = asyncio.Queue()
        self.ended: list[Session] = []
        self.server: Server | None = None
        self.port = 0
        self.contexts: list[BrowserContext] = []
        self.console: list[tuple[str, str]] = []
        harness = self

        class View(RuntimeView):
            async def on_session_start(self, session: Session) -> None:
                harness.sessions.put_nowait(session)
                if on_start is not None:
                    await on_start(session)

            async def on_session_end(self, session: Session) -> None:
                harness.ended.append(session)

        View.ping_interval = ping_interval
        View.ping_timeout = ping_timeout
        View.max_message_size = max_message_size
        self.view = View
        tag = script_tag(
            "/ws",
            reconnect_attempts=reconnect_attempts,
            reconnect_base=reconnect_base,
            reconnect_max=reconnect_max,
            connect_timeout=connect_timeout,
        )
        self.page_html = (
            f"<!doctype html><html><head><title>t</title></head><body>{tag}</body></html>"
        )
        self.app = App()
        install(self.app)
        self.app.add_websocket_route("/ws", View)
        self.app.add_route("/", self._page)
        self.app.add_route("/favicon.ico", self._no_favicon)

    async def _page(self, request: Request) -> Response:
        return HTMLResponse(self.page_html)

    async def _no_favicon(self, request: Request) -> Response:
        return Response(b"", status_code=204)

    # -- server ------------------------------------------------------------

    async def start(self, port: int = 0) -> None:
        self.server = Server(self.app, ServerConfig(port=port, ping_interval=None))
        await self.server.start()
        self.port = self.server.port

    async def stop_server(self) -> None:
        if self.server is not None:
            await self.server.shutdown()
            self.server = None

    async def __aenter__(self) -> Harness:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        for context in self.contexts:
            await context.close()
        await self.stop_server()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def abort(self, session: Session) -> None:
        """Drop ``session``'s TCP connection from the server's side, no Close."""
        assert self.server is not None
        (connection,) = [c for c in self.server.connections if c.websocket is session.websocket]
        connection.abort()

    # -- pages -------------------------------------------------------------

    async def open_page(self, browser: Browser, *, record: bool = True, wait: bool = True) -> Page:
        """A new page (in its own context) showing the runtime, connected."""
        context = await browser.new_context()
        self.contexts.append(context)
        page = await context.new_page()
        page.on("console", lambda message: self.console.append((message.type, message.text)))
        if record:
            await page.add_init_script(RECORDER)
        await page.goto(self.url)
        if wait:
            await wait_status(page, "open")
        return page

    async def next_session(self) -> Session:
        return await asyncio.wait_for(self.sessions.get(), WAIT)


async def wait_status(page: Page, status: str, timeout: float = WAIT) -> None:
    """Wait until ``<html data-wsserver-status>`` is ``status``."""
    await page.wait_for_function(
        "(s) => document.documentElement.getAttribute('data-wsserver-status') === s",
        arg=status,
        timeout=timeout * 1000,
    )


async def statuses(page: Page) -> list[dict[str, Any]]:
    """The ``wsserver:status`` events' details so far."""
    result: list[dict[str, Any]] = await page.evaluate("window.__statuses")
    return result


async def wait_until(predicate: Callable[[], bool], timeout: float = WAIT) -> None:
    """Poll ``predicate`` until it holds."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)
