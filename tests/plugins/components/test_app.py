"""Tests for wsserver.plugins.components.app: ComponentApp.

Over HTTP: the server-side rendered page, its headers and snapshot; the
pages' registration; the options, as keywords and as ``PageSettings``.  In
headless Chromium: the page shows before any script runs.
"""

from __future__ import annotations

import logging
from dataclasses import FrozenInstanceError, replace
from typing import TYPE_CHECKING

import pytest

from wsserver.plugins.components import Component, ComponentApp, State, h
from wsserver.plugins.components.assets import components_script_tag
from wsserver.plugins.components.component import dump_component
from wsserver.plugins.components.html import Element
from wsserver.plugins.components.settings import DEFAULT_CSP, PageSettings
from wsserver.plugins.components.store import InMemoryStore, SnapshotInvalid
from wsserver.plugins.runtime.assets import asset_path

from ..._live import http_get, in_memory, serving
from ._harness import AppHarness, fast_app, text
from ._pages import Counter, Greeting

if TYPE_CHECKING:
    from playwright.async_api import Browser

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(90)]


async def test_pages_are_rendered_on_the_server() -> None:
    app = ComponentApp({"/": Greeting}, title="T<&>")
    async with in_memory(app) as served:
        result = await http_get(served, "/")
        assert result.status == 200
        assert result.header("content-type") == "text/html; charset=utf-8"
        assert result.header("cache-control") == "no-store"  # one page id per response
        assert result.header("content-security-policy") == DEFAULT_CSP
        body = result.body.decode()
        assert "<title>T&lt;&amp;&gt;</title>" in body
        assert '<p data-k="r" title="world">Hello, <b data-k="r/1">world</b>!</p>' in body
        assert asset_path(app.prefix) in body and components_script_tag() in body
        page_id = body.split('data-cv-page="', 1)[1].split('"', 1)[0]
        assert len(page_id) >= 20
        snapshot = await app.snapshots.load(page_id)
        assert snapshot["seq"] == 0 and snapshot["url"] == "/" and snapshot["page"] == "/"
        assert snapshot["root"] == dump_component(Greeting())
        # Every response is a new page.
        again = (await http_get(served, "/")).body.decode()
        assert page_id not in again
        # HEAD keeps nothing.
        head = await http_get(served, "/", method="HEAD")
        assert head.status == 200 and head.body == b""


async def test_a_page_too_large_to_snapshot_is_served_static(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Big(Component):
        blob = State("x" * 5000)

        def render(self) -> Element:
            return h.p("big")

    app = ComponentApp({"/": Big}, max_snapshot_size=1000, csp=None)
    async with in_memory(app) as served:
        with caplog.at_level(logging.ERROR, logger="wsserver.plugins.components"):
            body = (await http_get(served, "/")).body.decode()
    assert 'data-cv-page=""' in body and "<script" not in body  # no reload loop
    assert "served static" in caplog.text
    assert "content-security-policy" not in (await _headers(app))


async def _headers(app: ComponentApp) -> dict[str, list[str]]:
    async with in_memory(app) as served:
        return (await http_get(served, "/")).headers


async def test_page_registration() -> None:
    app = ComponentApp()

    @app.page("/g", title="G")
    class Page(Component):
        def render(self) -> Element:
            return h.p()

    assert app.page_spec("/g") is not None and app.page_spec("/g").title == "G"  # type: ignore[union-attr]
    assert app.page_spec("/nope") is None
    with pytest.raises(TypeError, match="Component subclass"):
        app.page("/x", object)  # type: ignore[arg-type]


async def test_the_page_shows_before_any_script_runs(browser: Browser) -> None:
    async with AppHarness(fast_app(pages={"/": Counter})) as harness:
        context = await browser.new_context(java_script_enabled=False)
        harness.contexts.append(context)
        page = await context.new_page()
        await page.goto(harness.url())
        assert await text(page, "#count") == "0"
        assert await page.is_visible("#inc")
        assert await page.title() == "Count 0"


async def test_wsserver_run_accepts_the_todo_example() -> None:
    from examples.todo import TodoPage
    from wsserver.server import as_app

    assert as_app(TodoPage) is TodoPage  # an App instance: served as it is
    async with in_memory(TodoPage) as served:
        body = (await http_get(served, "/")).body.decode()
    assert "Try the to-do list" in body and "<title>To-do (2)</title>" in body


async def test_options_come_as_settings_or_keywords_and_keywords_win() -> None:
    base = PageSettings(title="Base", lang="fr", csp=None, history_limit=3)
    app = ComponentApp({"/": Greeting}, settings=base, title="Keyword")
    assert app.settings == replace(base, title="Keyword")
    assert base.title == "Base"  # the settings given are left alone
    async with in_memory(app) as served:
        result = await http_get(served, "/")
    body = result.body.decode()
    assert "<title>Keyword</title>" in body and '<html lang="fr">' in body
    assert "content-security-policy" not in result.headers
    assert ComponentApp().settings == PageSettings()
    with pytest.raises(TypeError):
        ComponentApp(titel="typo")  # type: ignore[call-arg]
    with pytest.raises(FrozenInstanceError):
        app.settings.title = "changed"  # type: ignore[misc]


async def test_the_old_attributes_read_the_settings() -> None:
    app = ComponentApp(
        title="T",
        head="<meta name=x>",
        lang="de",
        csp="default-src 'none'",
        expired_message="gone",
        reload_delay=0.25,
        history_limit=2,
        prefix="/assets",
        ws_path="/live",
    )
    for name in (
        "title",
        "head",
        "lang",
        "csp",
        "expired_message",
        "reload_delay",
        "history_limit",
        "prefix",
        "ws_path",
    ):
        assert getattr(app, name) == getattr(app.settings, name), name
    assert (app.prefix, app.ws_path, app.history_limit) == ("/assets", "/live", 2)


async def test_apps_given_one_store_and_secret_read_each_others_snapshots() -> None:
    settings = PageSettings(store=InMemoryStore(), secret=b"k" * 32, snapshot_ttl=60.0)
    first = ComponentApp({"/": Greeting}, settings=settings)
    second = ComponentApp({"/": Greeting}, settings=settings)
    stranger = ComponentApp({"/": Greeting}, store=settings.store)  # its own random secret
    async with in_memory(first) as served:
        body = (await http_get(served, "/")).body.decode()
    page_id = body.split('data-cv-page="', 1)[1].split('"', 1)[0]
    assert (await second.snapshots.load(page_id))["root"] == dump_component(Greeting())
    with pytest.raises(SnapshotInvalid):
        await stranger.snapshots.load(page_id)


async def test_a_form_of_too_many_fields_gets_400_and_one_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Found by fuzz/fuzz_navigation.py: form_from_body's ValueError escaped
    # render_page, and the client got a 500 and the log a traceback.
    import httpx

    app = ComponentApp({"/": Greeting})
    form = {"content-type": "application/x-www-form-urlencoded"}
    async with serving(app) as server, httpx.AsyncClient() as client:
        url = f"http://127.0.0.1:{server.port}/"
        with caplog.at_level(logging.INFO, logger="wsserver"):
            refused = await client.post(url, content=b"a=1&" * 1001, headers=form)
        assert refused.status_code == 400
        assert "more than 1000 fields" in refused.text
        assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
        assert [r.getMessage() for r in caplog.records if "400" in r.getMessage()]
        served = await client.post(url, content=b"a=1&" * 999, headers=form)
        assert served.status_code == 200
