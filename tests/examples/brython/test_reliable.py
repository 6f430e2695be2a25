"""examples/brython/reliable.py: the seed's ReliableConnection in Chromium.

The page keeps a heartbeat, and when the server goes away it reconnects
with exponential backoff; the server is shut down and started again on the
same port, and the page's log (one ``<li>`` per event, numbers in ``data-``
attributes) shows the attempts and their delays.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosedError

from examples.brython.app import create_app
from examples.brython.reliable import HEARTBEAT
from wsserver import Server, ServerConfig

from ._serving import WAIT, open_page, serving

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(90)]

#: Short, so that the test is quick: 100 ms heartbeat, backoff from 100 ms.
OPTIONS = "?heartbeat=100&interval=100&retries=10"


async def events(page: Page) -> list[dict[str, Any]]:
    """The page's log: each item's class (the event), text and data- numbers."""
    found: list[dict[str, Any]] = await page.eval_on_selector_all(
        "#log li",
        "(items) => items.map((i) => ({kind: i.className, text: i.textContent, ...i.dataset}))",
    )
    return found


async def wait_for(page: Page, condition: str) -> None:
    """Wait until ``condition`` holds over ``log``, the page's log items."""
    await page.wait_for_function(
        f"() => {{ const log = [...document.querySelectorAll('#log li')]; return {condition}; }}",
        timeout=WAIT * 1000,
    )


def count(kind: str) -> str:
    return f"log.filter((i) => i.className === '{kind}').length"


def after_last_open(kind: str) -> str:
    return (
        f"log.slice(log.map((i) => i.className).lastIndexOf('open'))"
        f".some((i) => i.className === '{kind}')"
    )


async def test_reconnects_with_backoff_after_a_restart(browser: Browser) -> None:
    app = create_app()
    async with serving(app) as first:
        port = first.port
        async with open_page(browser, f"http://127.0.0.1:{port}/reliable.html{OPTIONS}") as page:
            await wait_for(page, f"{count('open')} === 1 && {count('pong')} >= 2")
            # Data is echoed; the heartbeat's answers are not data.
            await page.fill("#data", "hello")
            await page.click("#send")
            await wait_for(page, "log.some((i) => i.textContent === 'Received: hello')")

            # The server goes away (1001): the page retries, each delay
            # twice the last, while nobody listens on the port.
            await first.shutdown()
            await wait_for(page, f"{count('reconnect')} >= 3")
            second = Server(app, ServerConfig(port=port))
            await second.start()
            try:
                await wait_for(page, f"{count('open')} === 2")
                # The heartbeat runs again on the new connection.
                await wait_for(page, after_last_open("pong"))
                log = await events(page)
                closes = [int(e["code"]) for e in log if e["kind"] == "close"]
                assert closes[0] == 1001
                assert set(closes[1:]) == {1006}  # refused while the server was down
                retries = [e for e in log if e["kind"] == "reconnect"]
                assert len(retries) == len(closes) >= 3
                for n, retry in enumerate(retries, start=1):
                    assert int(retry["attempt"]) == n
                    assert int(retry["delay"]) == 100 * 2 ** (n - 1)
                assert [e["kind"] for e in log].count("gave-up") == 0

                # A close with 1000 is final: no retry is scheduled.
                await page.click("#close")
                await wait_for(page, "log.at(-1).dataset.code === '1000'")
                assert (await events(page))[-1]["kind"] == "close"
            finally:
                await second.shutdown()


async def test_gives_up_after_its_retries(browser: Browser) -> None:
    # enable_auto_reconnect(max_retries=2, backoff=False): the same delay each time.
    async with serving() as server:
        url = f"http://127.0.0.1:{server.port}/reliable.html?interval=20&retries=2&backoff=0"
        async with open_page(browser, url) as page:
            await wait_for(page, f"{count('open')} === 1")
            await server.shutdown()
            await wait_for(page, f"{count('gave-up')} === 1")
            log = await events(page)
            assert [int(e["delay"]) for e in log if e["kind"] == "reconnect"] == [20, 20]


async def test_the_view_answers_the_heartbeat_and_echoes() -> None:
    async with serving() as server, connect(f"ws://127.0.0.1:{server.port}/api") as ws:
        await ws.send(HEARTBEAT[0])
        assert await ws.recv() == HEARTBEAT[1]
        await ws.send("pong")
        assert await ws.recv() == "pong"
        await ws.send("data")
        assert await ws.recv() == "data"
        await ws.send(b"binary")
        with pytest.raises(ConnectionClosedError) as closed:
            await ws.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1003
