"""Tests for wsserver.plugins.components.redis_store: snapshots in a real Redis.

The Redis is Debian's ``redis-server`` on loopback (see
``tests/plugins/channels/_helpers.py``); without it these tests fail,
saying what to install.  The last test restarts the to-do example's server
under a page open in Chromium: with the Redis store the page resumes with
its items and its half-typed input.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, cast

import pytest
import pytest_asyncio

from wsserver.plugins.components import ComponentApp, PageSettings, RedisStore, StoreUnavailable
from wsserver.server import Server, ServerConfig

from ..._live import http_get
from ..channels._helpers import RedisServer, find_redis_server
from ._harness import AppHarness, after
from ._pages import Counter

if TYPE_CHECKING:
    from playwright.async_api import Browser

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(90)]

SECRET = b"s" * 32


def _executable() -> str:
    executable = find_redis_server()
    if executable is None:
        pytest.fail(
            "the Redis store's tests need redis-server: apt-get install redis-server",
            pytrace=False,
        )
    return executable


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(_executable(), tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest_asyncio.fixture(loop_scope="module")
async def store(redis_server: RedisServer) -> AsyncIterator[RedisStore]:
    store = RedisStore(redis_server.url, prefix=f"test-{time.monotonic_ns()}:")
    try:
        yield store
    finally:
        await store.close()


async def test_values_round_trip_under_the_prefix(
    store: RedisStore, redis_server: RedisServer
) -> None:
    assert await store.get("cv:page") is None
    await store.set("cv:page", b"\x00snapshot\xff", 60)
    assert await store.get("cv:page") == b"\x00snapshot\xff"
    assert redis_server.command("EXISTS", f"{store.prefix}cv:page").strip() == b":1"
    await store.set("cv:page", b"newer", 60)
    assert await store.get("cv:page") == b"newer"
    await store.delete("cv:page")
    assert await store.get("cv:page") is None
    await store.delete("cv:page")  # absent: no error


async def test_entries_expire_with_redis_own_clock(
    store: RedisStore, redis_server: RedisServer
) -> None:
    await store.set("short", b"x", 0.05)
    await store.set("long", b"y", 600)
    ttl = int(redis_server.command("PTTL", f"{store.prefix}long").strip()[1:])
    assert 590_000 < ttl <= 600_000
    deadline = time.monotonic() + 5
    while await store.get("short") is not None:
        assert time.monotonic() < deadline, "the entry did not expire"
        await asyncio.sleep(0.02)
    assert await store.get("long") == b"y"


async def test_a_store_that_cannot_reach_redis_says_so_quickly(tmp_path: Path) -> None:
    server = RedisServer(_executable(), tmp_path)
    server.start()
    store = RedisStore(server.url, connect_timeout=0.5, command_timeout=0.5)
    try:
        await store.set("k", b"v", 60)
        server.stop()
        for action in (store.get("k"), store.set("k", b"v", 60), store.delete("k")):
            started = time.monotonic()
            with pytest.raises(StoreUnavailable) as caught:
                await action
            assert time.monotonic() - started < 3.0
            assert f"at {server.url} failed: " in str(caught.value)
        await store.close()
        with pytest.raises(StoreUnavailable, match="GET: the store is closed"):
            await store.get("k")
    finally:
        await store.close()
        server.stop()


async def test_settings_and_messages_never_show_the_password() -> None:
    store = RedisStore("redis://:hunter2@127.0.0.1:1/0")
    await store.close()
    assert "hunter2" not in repr(store)
    assert repr(store) == "RedisStore('redis://:***@127.0.0.1:1/0', prefix='wsserver:')"
    for bad in (0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="command_timeout must be a positive"):
            RedisStore(command_timeout=bad)


async def test_a_shared_store_needs_a_secret() -> None:
    store = RedisStore("redis://127.0.0.1:1/0")
    await store.close()
    with pytest.raises(ValueError, match=r"PageSettings\.secret is needed with a shared store"):
        PageSettings(store=store)
    assert PageSettings(store=store, secret=SECRET).store is store


async def test_a_page_is_503_while_the_store_is_away(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    redis = RedisServer(_executable(), tmp_path)
    redis.start()
    redis.stop()  # a port where nothing answers
    store = RedisStore(redis.url, connect_timeout=0.5, command_timeout=0.5)
    app = ComponentApp({"/": Counter}, store=store, secret=SECRET)
    server = Server(app, ServerConfig(port=0, ping_interval=None))
    await server.start()
    try:
        with caplog.at_level(logging.ERROR, logger="wsserver.plugins.components"):
            result = await http_get(server.port, "/")
    finally:
        await server.shutdown()
        await store.close()
    assert result.status == 503
    assert result.header("retry-after") == "1"
    (record,) = caplog.records
    assert record.getMessage().startswith(
        f"page /: 503, the snapshot store is away: SET at {redis.url} failed: ConnectionError"
    )


async def test_the_todo_page_survives_a_server_restart(
    browser: Browser, redis_server: RedisServer
) -> None:
    from examples.todo import make_todo_page

    def todo_app() -> ComponentApp:
        # A new application each time, as a restarted process has: only
        # Redis and the secret are shared.
        return make_todo_page(
            store=RedisStore(redis_server.url, prefix="todo-restart:"),
            secret=SECRET,
            reconnect_base=0.05,
            reconnect_max=0.2,
            reconnect_attempts=30,
            csp=None,
        )

    first = todo_app()
    async with AppHarness(first) as harness:
        page = await harness.open(browser)
        new = page.locator("form.new input")
        await new.fill("Buy milk")
        await after(page, lambda: new.press("Enter"))
        await new.fill("half typ")
        await page.evaluate("window.__marker = 'same document'")
        page_id = harness.connection().page_id
        port = harness.port
        assert harness.server is not None
        await harness.server.shutdown()
        # As the process would at exit; a page saving late is refused.
        await cast(RedisStore, first.settings.store).close()
        second = todo_app()
        harness.server = Server(second, ServerConfig(port=port, ping_interval=None))
        await harness.server.start()
        await page.wait_for_function(
            "() => window.__cv.filter((e) => e.kind === 'ready').length === 2"
        )
        # Resumed, not reloaded: the same page id, on the new application.
        assert list(second.connections) == [page_id]
        labels = await page.eval_on_selector_all(
            "li.todo .title", "(spans) => spans.map((s) => s.textContent)"
        )
        assert labels == ["Try the to-do list", "Reorder me", "Buy milk"]
        assert await page.input_value("form.new input") == "half typ"
        assert await page.evaluate("window.__marker") == "same document"
        # The resumed page is live on the new server.
        await new.fill("Walk dog")
        await after(page, lambda: new.press("Enter"))
        labels = await page.eval_on_selector_all(
            "li.todo .title", "(spans) => spans.map((s) => s.textContent)"
        )
        assert labels[-1] == "Walk dog"
        assert harness.errors == []
    await cast(RedisStore, second.settings.store).close()
