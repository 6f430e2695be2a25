"""The stock ticker's server: a simulated market and a plain view that streams it.

The Brython seed's ``StockTicker`` (``static/stock_ticker.py``) opens a
WebSocket, sends ``{"action": "subscribe", "symbols": ["AAPL", ...]}`` and
renders every ``{"type": "quote", "symbol", "price", "change", "volume"}``
it receives into a table row per symbol.  This view answers that:

- ``subscribe``: the connection follows the symbols; their current quotes
  are sent at once (the table fills without waiting for a trade), then one
  quote per symbol per tick.
- ``unsubscribe`` ``{"symbols": [...]}``: it stops following them.
- Anything else, or a symbol the market does not list, is answered with
  ``{"type": "error", "message": "..."}``; the connection stays open.

The market is simulated, and plausible rather than random noise: each
symbol's price takes a small step of a geometric random walk per tick
(a normal step of ``volatility`` relative size, so a price never reaches
zero); ``change`` is the price against the session's opening price, as a
ticker shows it; ``volume`` is the session's cumulative traded shares,
which only grows (every tick adds the shares of that tick's trades).

One feed task per application ticks the market and sends each quote to the
connections that follow the symbol with ``broadcast()`` (encoded once).  A
connection that cannot keep up is skipped for that quote (``on_slow="skip"``)
rather than closed: only the latest price matters.  The task runs while
someone follows a symbol, and stops with the last one.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from wsserver import WebSocket, WebSocketView, broadcast

__all__ = ["SYMBOLS", "Market", "Quote", "StockFeed", "StockView"]

#: The symbols the market lists, and their opening prices.
SYMBOLS: dict[str, float] = {
    "AAPL": 190.0,
    "AMZN": 180.0,
    "GOOGL": 140.0,
    "MSFT": 410.0,
    "TSLA": 240.0,
}
#: The most symbols one subscribe may name: bounds the work a message asks for.
MAX_SYMBOLS = 100


@dataclass(frozen=True, slots=True)
class Quote:
    """One symbol's last trade, as the seed's page renders it."""

    symbol: str
    price: float
    change: float
    volume: int

    def message(self) -> dict[str, Any]:
        """The seed's quote message."""
        return {
            "type": "quote",
            "symbol": self.symbol,
            "price": self.price,
            "change": self.change,
            "volume": self.volume,
        }


class Market:
    """A simulated trading session.

    Args:
        opening: each symbol's opening price.
        volatility: the standard deviation of one tick's relative price step.
        seed: the random generator's seed (a test's market is reproducible).
    """

    def __init__(
        self,
        opening: Mapping[str, float] = SYMBOLS,
        *,
        volatility: float = 0.002,
        seed: int | None = None,
    ) -> None:
        if not opening or any(not (p > 0 and math.isfinite(p)) for p in opening.values()):
            raise ValueError("opening prices must be positive numbers")
        self.opening = dict(opening)
        self.volatility = volatility
        self._random = random.Random(seed)
        self._price = dict(opening)
        self._volume = dict.fromkeys(opening, 0)
        self.quotes: dict[str, Quote] = {s: self._quote(s) for s in opening}

    def _quote(self, symbol: str) -> Quote:
        price = round(self._price[symbol], 2)
        change = round(price - self.opening[symbol], 2)
        return Quote(symbol, price, change, self._volume[symbol])

    def tick(self) -> list[Quote]:
        """Trade every symbol once; the new quotes."""
        quotes = []
        for symbol in self.opening:
            step = self._random.gauss(0.0, self.volatility)
            self._price[symbol] *= math.exp(step)
            # Busier when the price moves more, as markets are; at least one
            # round lot (100 shares) trades per tick, so volume only grows.
            lots = 1 + int(self._random.expovariate(1.0) * 20 * (1 + abs(step) / self.volatility))
            self._volume[symbol] += 100 * lots
            quote = self._quote(symbol)
            self.quotes[symbol] = quote
            quotes.append(quote)
        return quotes


class StockFeed:
    """Ticks ``market`` every ``interval`` seconds for the connections that follow it.

    Args:
        market: the market to tick.
        interval: seconds between ticks.
    """

    def __init__(self, market: Market, interval: float = 1.0) -> None:
        if not (interval > 0 and math.isfinite(interval)):
            raise ValueError("interval must be a positive number of seconds")
        self.market = market
        self.interval = interval
        self.followers: dict[WebSocket, set[str]] = {}
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        """Whether the feed task runs."""
        return self._task is not None and not self._task.done()

    def follow(self, websocket: WebSocket, symbols: list[str]) -> None:
        """``websocket`` follows ``symbols`` too; starts the feed if it was idle."""
        self.followers.setdefault(websocket, set()).update(symbols)
        if not self.running:
            self._task = asyncio.create_task(self._run(), name="stock-feed")

    def unfollow(self, websocket: WebSocket, symbols: list[str] | None = None) -> None:
        """``websocket`` stops following ``symbols`` (``None``: all of them)."""
        followed = self.followers.get(websocket)
        if followed is None:
            return
        if symbols is None:
            followed.clear()
        else:
            followed.difference_update(symbols)
        if not followed:
            del self.followers[websocket]
        if not self.followers and self._task is not None:
            self._task.cancel()
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            for quote in self.market.tick():
                targets = [ws for ws, symbols in self.followers.items() if quote.symbol in symbols]
                if targets:
                    broadcast(targets, json.dumps(quote.message()), on_slow="skip")


class StockError(ValueError):
    """A request the ticker refuses; its text goes back to the sender."""


def _symbols(data: dict[str, Any], market: Market) -> list[str]:
    symbols = data.get("symbols")
    if not isinstance(symbols, list) or not symbols or len(symbols) > MAX_SYMBOLS:
        raise StockError(f"symbols is a list of 1 to {MAX_SYMBOLS} symbols")
    unknown = [s for s in symbols if s not in market.opening]
    if unknown:
        raise StockError(f"unknown symbol {unknown[0]!r}; listed: {', '.join(market.opening)}")
    return list(dict.fromkeys(symbols))


class StockView(WebSocketView):
    """One ticker connection.  ``feed`` is shared by every connection of the
    class; ``create_app`` gives each application a subclass with its own."""

    encoding = "json"
    feed = StockFeed(Market())

    async def on_receive(self, websocket: WebSocket, data: Any) -> None:
        try:
            if not isinstance(data, dict):
                raise StockError("a request is a JSON object")
            action = data.get("action")
            if action == "subscribe":
                symbols = _symbols(data, self.feed.market)
                self.feed.follow(websocket, symbols)
                for symbol in symbols:
                    await websocket.send_json(self.feed.market.quotes[symbol].message())
            elif action == "unsubscribe":
                self.feed.unfollow(websocket, _symbols(data, self.feed.market))
            else:
                raise StockError(f"unknown action {action!r}: subscribe or unsubscribe")
        except StockError as refused:
            await websocket.send_json({"type": "error", "message": str(refused)})

    async def on_disconnect(self, websocket: WebSocket, close_code: int) -> None:
        self.feed.unfollow(websocket)
