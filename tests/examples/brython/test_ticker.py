"""examples/brython/ticker.py: the seed's StockTicker in Chromium; the market; the view.

The table is read from the page as the seed renders it (``row_<symbol>``,
cells Symbol, Price, Change, Volume); the view is also driven with a
websockets client, and the simulated market checked on its own.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

from examples.brython.app import create_app
from examples.brython.ticker import SYMBOLS, Market, Quote, StockFeed
from wsserver import App

from ...plugins._browser import wait_until
from ._serving import WAIT, open_page, serving

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(90)]

SEED_SYMBOLS = ["AAPL", "GOOGL", "MSFT", "TSLA", "AMZN"]


async def table(page: Page) -> dict[str, list[str]]:
    """Each row's cells, by symbol."""
    found: dict[str, list[str]] = await page.evaluate(
        "Object.fromEntries([...document.querySelectorAll('tr[id^=row_]')]"
        ".map((r) => [r.id.slice(4), [...r.cells].map((c) => c.textContent)]))"
    )
    return found


def feed_of(app: App) -> StockFeed:
    feed: StockFeed = app.state.feed
    return feed


def volume(text: str) -> int:
    return int(text.replace(",", ""))


async def test_the_table_updates(browser: Browser) -> None:
    app = create_app(market=Market(seed=1), tick_interval=0.05)
    async with (
        serving(app) as server,
        open_page(browser, f"http://127.0.0.1:{server.port}/ticker.html") as page,
    ):
        await page.wait_for_function(
            "() => document.querySelectorAll('tr[id^=row_]').length === 5",
            timeout=WAIT * 1000,
        )
        first = await table(page)
        assert sorted(first) == sorted(SEED_SYMBOLS)
        # Each row changes, and volume only grows.
        for symbol in SEED_SYMBOLS:
            await page.wait_for_function(
                "([s, v]) => Number(document.getElementById('row_' + s)"
                ".cells[3].textContent.replaceAll(',', '')) > v",
                arg=[symbol, volume(first[symbol][3])],
                timeout=WAIT * 1000,
            )
        later = await table(page)
        for symbol, (name, price, change, shares) in later.items():
            assert name == symbol
            assert price.startswith("$") and float(price[1:]) > 0
            assert change[0] in "+-" and math.isfinite(float(change))
            assert volume(shares) > volume(first[symbol][3])
        assert await page.inner_text("#status") == "Connected"


async def _quotes(ws: ClientConnection, count: int) -> list[dict[str, Any]]:
    return [json.loads(await ws.recv()) for _ in range(count)]


async def test_subscribe_and_unsubscribe() -> None:
    app = create_app(market=Market(seed=2), tick_interval=0.02)
    async with serving(app) as server, connect(f"ws://127.0.0.1:{server.port}/stocks") as ws:
        await ws.send(json.dumps({"action": "subscribe", "symbols": ["MSFT", "AAPL"]}))
        # The current quotes at once, then only the symbols followed.
        now = await _quotes(ws, 2)
        assert [q["symbol"] for q in now] == ["MSFT", "AAPL"]
        assert now[0] == {
            "type": "quote",
            "symbol": "MSFT",
            "price": SYMBOLS["MSFT"],
            "change": 0.0,
            "volume": 0,
        }
        stream = await _quotes(ws, 10)
        assert {q["symbol"] for q in stream} == {"MSFT", "AAPL"}
        await ws.send(json.dumps({"action": "unsubscribe", "symbols": ["MSFT"]}))
        # Once the unsubscribe is read, MSFT stops: a run of AAPL alone
        # follows (within a bound, whatever the machine's pace).
        symbols: list[str] = []
        while symbols[-10:] != ["AAPL"] * 10:
            symbols.append((await _quotes(ws, 1))[0]["symbol"])
            assert len(symbols) < 1000, "MSFT quotes went on after the unsubscribe"
        assert feed_of(app).followers and set(*feed_of(app).followers.values()) == {"AAPL"}


async def test_refusals_keep_the_connection() -> None:
    async with serving() as server, connect(f"ws://127.0.0.1:{server.port}/stocks") as ws:
        for request, message in [
            ({"action": "subscribe", "symbols": ["NOPE"]}, "unknown symbol 'NOPE'"),
            ({"action": "subscribe", "symbols": "AAPL"}, "symbols is a list"),
            ({"action": "subscribe", "symbols": []}, "symbols is a list"),
            ({"action": "buy"}, "unknown action 'buy'"),
            ([1, 2], "a request is a JSON object"),
        ]:
            await ws.send(json.dumps(request))
            answer = json.loads(await ws.recv())
            assert answer["type"] == "error"
            assert message in answer["message"]


async def test_the_market_is_plausible() -> None:
    market = Market(seed=3)
    assert market.quotes["AAPL"] == Quote("AAPL", 190.0, 0.0, 0)
    previous = dict(market.quotes)
    for _ in range(2000):
        for quote in market.tick():
            before = previous[quote.symbol]
            assert quote.volume > before.volume  # volume only grows
            assert quote.price > 0
            assert quote.change == round(quote.price - SYMBOLS[quote.symbol], 2)
            # One tick moves a price by well under 2% (the step is 0.2%).
            assert abs(quote.price / before.price - 1) < 0.02
            previous[quote.symbol] = quote
    # The same seed, the same session.
    assert Market(seed=3).tick() == Market(seed=3).tick()
    with pytest.raises(ValueError):
        Market({"X": 0.0})


async def test_the_feed_stops_with_the_last_follower() -> None:
    market = Market(seed=5)
    app = create_app(market=market, tick_interval=0.01)
    async with serving(app) as server:
        url = f"ws://127.0.0.1:{server.port}/stocks"
        async with connect(url) as one, connect(url) as two:
            for ws in (one, two):
                await ws.send(json.dumps({"action": "subscribe", "symbols": ["TSLA"]}))
                await ws.recv()
            feed = feed_of(app)
            assert feed.running
            assert len(feed.followers) == 2
        # Both gone: the feed stops, and nobody is left in its table.
        await wait_until(lambda: not feed.running)
        assert feed.followers == {}
    with pytest.raises(ValueError):
        StockFeed(Market(), 0)
