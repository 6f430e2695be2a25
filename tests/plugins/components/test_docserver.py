"""Tests for wsserver.plugins.components.docserver: a domsync-style server,
documents edited from Python, seen in two Chromium browsers."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest

from wsserver.plugins.components import DocumentServer, PageConnection, Select, Table

from ..._live import http_get, in_memory
from .._fakes import fake_session
from ._harness import WAIT, AppHarness, fast_app, wait_until

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(120)]


async def wait_text(page: Page, selector: str, expected: str) -> None:
    await page.wait_for_function(
        "([sel, want]) => { const e = document.querySelector(sel);"
        " return e !== null && e.textContent === want; }",
        arg=[selector, expected],
        timeout=WAIT * 1000,
    )


async def rows(page: Page) -> list[list[str]]:
    result = await page.evaluate(
        "() => [...document.querySelectorAll('tbody tr')]"
        ".map(tr => [...tr.children].map(td => td.textContent))"
    )
    assert isinstance(result, list)
    return result


async def test_documents_edited_from_python_are_seen_in_two_browsers(browser: Browser) -> None:
    arrived: list[PageConnection] = []

    async def on_client(server: DocumentServer, client: PageConnection) -> None:
        arrived.append(client)
        doc = server.document(client)
        doc.getRootElement().appendChild(
            doc.createElement("p", id="me", innerText=f"client {len(arrived)}")
        )
        assert await server.flush(client) > 0

    live = DocumentServer(on_client, app=fast_app(), title="Prices")
    prices = live.shared()
    table = Table(prices.getRootElement(), ["Symbol", "Price"])
    table.add_row("ACME", ["ACME", "1.00"], sort_key="ACME")
    picked: list[str] = []
    Select(prices.getRootElement(), [("a", "Alpha"), ("b", "Beta")], picked.append, id="pick")
    async with AppHarness(live.app) as harness:
        first = await harness.open(browser)
        await wait_until(lambda: len(arrived) == 1)
        second = await harness.open(browser)
        await wait_until(lambda: len(arrived) == 2)
        for page, name in ((first, "client 1"), (second, "client 2")):
            await wait_text(page, "#me", name)
            assert await rows(page) == [["ACME", "1.00"]]
        one, two = arrived
        assert live.clients == [one, two]
        assert live.is_connected(one) and live.is_connected(two)
        assert prices.clients == [one, two]

        # The shared document, edited from Python: one batch, both browsers.
        table.update_cell("ACME", "Price", "2.00")
        table.add_row("ZED", ["ZED", "<b>9</b>"], sort_key="ZED")
        table.add_row("BETA", ["BETA", "3.00"], sort_key="BETA")
        assert await prices.flush() > 0
        want = [["ACME", "2.00"], ["BETA", "3.00"], ["ZED", "<b>9</b>"]]
        for page in (first, second):
            await page.wait_for_function(
                "(n) => document.querySelectorAll('tbody tr').length === n", arg=3
            )
            assert await rows(page) == want
            assert await page.locator("tbody b").count() == 0  # text, not markup

        # One client's own document: only that browser changes.
        live.document(one).getElementById("me").innerText = "only the first"  # type: ignore[union-attr]
        await live.flush(one)
        await wait_text(first, "#me", "only the first")
        assert await second.text_content("#me") == "client 2"

        # An event in one browser reaches the shared document's handler.
        await second.select_option("#pick", "b")
        await wait_until(lambda: picked == ["b"])

        # A client that leaves is no longer a client.
        await harness.contexts[1].close()
        await wait_until(lambda: live.clients == [one])
        assert not live.is_connected(two) and prices.clients == [one]
        table.remove_row("ZED")
        await live.flush_all()
        await first.wait_for_function("() => document.querySelectorAll('tbody tr').length === 2")
        assert harness.errors == []


async def test_a_failing_client_handler_is_logged_and_clients_are_tracked(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def on_client(server: DocumentServer, client: PageConnection) -> None:
        raise RuntimeError("a bug in on_client")

    live = DocumentServer(on_client)
    shared = live.shared()
    assert (
        repr(live) == "<DocumentServer clients=0>" and repr(shared) == "<SharedDocument clients=0>"
    )
    shared.getRootElement().appendChild(shared.createElement("p", innerText="x"))
    assert await shared.flush() > 0  # nobody to send to: dropped, shown whole later
    assert await shared.flush() == 0
    assert live.shared_documents == [shared]
    async with in_memory(live.app) as served:
        body = (await http_get(served, "/")).body.decode()
    page_id = body.split('data-cv-page="', 1)[1].split('"', 1)[0]
    session, websocket = fake_session()
    client = PageConnection(live.app, session)
    run = asyncio.gather(session.run(), client.run())
    await websocket.next_sent("rt", "init")
    websocket.feed(
        {"p": "cv", "k": "attach", "page": page_id, "seq": 0, "count": body.count('data-k="')}
    )
    await websocket.next_sent("cv", "ready")
    cleared = await websocket.next_sent("cv", "patch")  # the client's own document
    assert cleared["ops"] == [{"o": "txt", "k": live.host_key, "x": ""}]
    shown = await websocket.next_sent("cv", "patch")  # the shared document, whole
    assert [op["o"] for op in shown["ops"]] == ["txt", "ins"]
    await wait_until(lambda: "a bug in on_client" in caplog.text)
    assert live.clients == [client] and shared.clients == [client]
    await live.flush_all()
    websocket.disconnect()
    with pytest.raises(asyncio.CancelledError):
        run.cancel()
        await run
    assert live.clients == [] and not live.is_connected(client) and shared.clients == []
