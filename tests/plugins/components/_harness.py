"""Browser-test helpers for the component view: a served ``ComponentApp``
and Chromium pages attached to it.

Not a test module.  The browser itself comes from tests/plugins/conftest.py
(one per test module).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any

from wsserver.plugins.components import ComponentApp, PageConnection
from wsserver.server import Request, Response, Server, ServerConfig

from .._browser import CHROMIUM, WAIT, wait_until

if TYPE_CHECKING:
    from playwright.async_api import Browser, BrowserContext, Page

__all__ = ["CHROMIUM", "WAIT", "AppHarness", "fast_app", "wait_until"]

# Records what must never happen in a test page: a dialog, an uncaught
# error; and the component view's events.
RECORDER = """
window.__cv = [];
window.addEventListener("wsserver:cv", (e) => window.__cv.push(e.detail));
"""


def fast_app(**options: Any) -> ComponentApp:
    """A ``ComponentApp`` with quick reconnects and no CSP (tests check
    escaping, not the CSP's backstop)."""
    options.setdefault("reconnect_base", 0.05)
    options.setdefault("reconnect_max", 0.2)
    options.setdefault("connect_timeout", 3.0)
    options.setdefault("csp", None)
    options.setdefault("reload_delay", 0.2)
    app = ComponentApp(**options)
    app.add_route("/favicon.ico", _no_favicon)  # no 404 in the console
    return app


async def _no_favicon(request: Request) -> Response:
    return Response(b"", status_code=204)


class AppHarness:
    """Serve ``app`` on loopback and open pages of it.

    Attributes:
        dialogs: every dialog any page opened (``alert`` and friends).
        errors: uncaught page errors and ``console.error`` texts.
    """

    def __init__(self, app: ComponentApp, **config: Any) -> None:
        self.app = app
        self.config = config
        self.server: Server | None = None
        self.contexts: list[BrowserContext] = []
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        self.console: list[str] = []

    async def __aenter__(self) -> AppHarness:
        self.config.setdefault("ping_interval", None)
        self.server = Server(self.app, ServerConfig(port=0, **self.config))
        await self.server.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        for context in self.contexts:
            await context.close()
        if self.server is not None:
            await self.server.shutdown()

    @property
    def port(self) -> int:
        assert self.server is not None
        return self.server.port

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def new_page(self, browser: Browser) -> Page:
        context = await browser.new_context()
        self.contexts.append(context)
        page = await context.new_page()
        await page.add_init_script(RECORDER)
        page.on("dialog", self._on_dialog)
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.on("console", self._on_console)
        return page

    async def open(
        self, browser: Browser, path: str = "/", setup: Callable[[Page], Any] | None = None
    ) -> Page:
        """A new page showing ``path``, attached (``setup(page)`` runs first)."""
        page = await self.new_page(browser)
        if setup is not None:
            setup(page)
        await page.goto(self.url(path))
        await wait_attached(page)
        return page

    def _on_dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        asyncio.get_running_loop().create_task(dialog.dismiss())

    def _on_console(self, message: Any) -> None:
        self.console.append(f"{message.type}: {message.text}")
        # A favicon's 404 is the browser's business, not a page error.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.errors.append(message.text)

    def connection(self, page_id: str | None = None) -> PageConnection:
        """The live connection of ``page_id`` (or the only one)."""
        if page_id is None:
            (connection,) = self.app.connections.values()
            return connection
        return self.app.connections[page_id]

    def abort(self, connection: PageConnection) -> None:
        """Drop a page's TCP connection from the server's side, without a Close."""
        assert self.server is not None
        websocket = connection.session.websocket
        (raw,) = [c for c in self.server.connections if c.websocket is websocket]
        raw.abort()


async def wait_attached(page: Page, timeout: float = WAIT) -> None:
    """Wait until the page is attached (``data-cv-state="ready"``)."""
    await page.wait_for_function(
        "() => document.getElementById('cv-root').getAttribute('data-cv-state') === 'ready'",
        timeout=timeout * 1000,
    )


async def seq(page: Page) -> int:
    """The number of the last batch the page applied."""
    return int(await page.evaluate("document.getElementById('cv-root').dataset.cvSeq"))


async def wait_seq(page: Page, at_least: int, timeout: float = WAIT) -> None:
    """Wait until the page has applied batch ``at_least``."""
    await page.wait_for_function(
        "(n) => Number(document.getElementById('cv-root').dataset.cvSeq) >= n",
        arg=at_least,
        timeout=timeout * 1000,
    )


async def after(page: Page, action: Callable[[], Any], batches: int = 1) -> None:
    """Do ``action`` (a coroutine function) and wait for its patch batch(es)."""
    before = await seq(page)
    await action()
    await wait_seq(page, before + batches)


async def text(page: Page, selector: str) -> str:
    """The text content of the first element matching ``selector``."""
    value = await page.text_content(selector)
    assert value is not None, selector
    return value


__all__ += ["after", "seq", "text", "wait_attached", "wait_seq"]
