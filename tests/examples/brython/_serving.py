"""The Brython examples' app on a real server, and pages in Chromium.

Not a test module.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from examples.brython.app import create_app
from wsserver import App, Server, ServerConfig

from ...plugins._browser import WAIT

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page

__all__ = ["WAIT", "open_page", "serving", "texts"]


@asynccontextmanager
async def serving(app: App | None = None, port: int = 0) -> AsyncIterator[Server]:
    """``app`` (default: a new ``create_app()``) served on loopback, on ``port``."""
    server = Server(app if app is not None else create_app(), ServerConfig(port=port))
    await server.start()
    try:
        yield server
    finally:
        await server.shutdown()


@asynccontextmanager
async def open_page(browser: Browser, url: str) -> AsyncIterator[Page]:
    """A new page, in a context of its own, at ``url``; closed after."""
    context = await browser.new_context()
    try:
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        await page.goto(url)
        yield page
        assert not errors, f"the page raised: {errors}"
    finally:
        await context.close()


async def texts(page: Page, selector: str) -> list[str]:
    """The text of every element ``selector`` matches, in document order."""
    found: list[str] = await page.eval_on_selector_all(
        selector, "(elements) => elements.map((e) => e.textContent)"
    )
    return found


async def wait_text(page: Page, selector: str, text: str) -> None:
    """Wait until an element ``selector`` matches has ``text`` as its text."""
    await page.wait_for_function(
        "([s, t]) => [...document.querySelectorAll(s)].some((e) => e.textContent === t)",
        arg=[selector, text],
        timeout=WAIT * 1000,
    )
