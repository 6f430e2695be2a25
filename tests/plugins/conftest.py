"""The headless browser the plugin tests drive: one per test module.

Chromium is Debian's ``/usr/bin/chromium``, driven by Playwright's Python
package; ``playwright install`` is never used.  If either is missing or the
browser does not start, the tests that need it fail, saying why: a browser
test that is skipped proves nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import pytest
import pytest_asyncio

from ._browser import CHROMIUM, CHROMIUM_ARGS

if TYPE_CHECKING:
    from playwright.async_api import Browser


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Browser]:
    """A headless Chromium shared by the tests of one module."""
    try:
        from playwright.async_api import async_playwright
    except ImportError as exc:
        pytest.fail(
            f"the browser tests need Playwright's Python package ({exc}): "
            "pip install playwright (the browser itself is Debian's chromium package)",
            pytrace=False,
        )
    async with async_playwright() as playwright:
        try:
            browser = await playwright.chromium.launch(
                executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=20_000
            )
        except Exception as exc:
            pytest.fail(
                f"cannot launch Chromium from {CHROMIUM} (apt-get install chromium): {exc}",
                pytrace=False,
            )
        try:
            yield browser
        finally:
            await browser.close()
