"""A live price ticker: per-symbol subscriptions, a table that updates.

    wsserver run examples.ticker:app

then open http://127.0.0.1:8000/ and tick the symbols to follow.  Each
symbol is a topic of the channel manager (``ticker:AAPL``...); the page
subscribes and unsubscribes with two custom messages:

- ``subscribe`` ``{"symbols": [...]}``: subscribe the channel to each
  symbol's topic; the answer is the current quotes, so the table fills at
  once;
- ``unsubscribe`` ``{"symbols": [...]}``.

Quotes arrive as topic messages ``{"type": "quote", "symbol", "price",
"change", "volume", "tick"}``.

The prices are simulated: a deterministic function of the symbol and the
tick number, and the tick number of the wall clock (``time() /
interval``).  So every worker of ``wsserver run --workers N`` computes the
same quote for the same tick without talking to the others, and publishes it
to its own subscribers only (``publish(..., local_only=True)``): no Redis
traffic, and no quote delivered twice.  A real feed would run once, in one
process, and publish through the Redis backend to every worker.  The feed
runs while this worker has subscribers, and stops when the last one leaves.

The manager uses the ``drop_oldest`` queue policy: a page that cannot keep
up loses old quotes, not its connection, since only the latest ones matter.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import time
from typing import Any

from wsserver import App, HTMLResponse, Request, Response
from wsserver.plugins.channels import (
    Channel,
    ChannelManager,
    HandlerError,
    channels_script_tag,
)
from wsserver.plugins.runtime import script_tag

__all__ = ["SYMBOLS", "PriceFeed", "app", "create_app", "quote", "topic"]

#: The symbols and their base prices.
SYMBOLS: dict[str, float] = {
    "AAPL": 190.0,
    "AMZN": 180.0,
    "GOOGL": 140.0,
    "MSFT": 410.0,
    "TSLA": 240.0,
}


def topic(symbol: str) -> str:
    """The topic of a symbol's quotes."""
    return f"ticker:{symbol}"


def _noise(symbol: str, tick: int) -> float:
    """A number in [-1, 1), the same for the same symbol and tick everywhere."""
    digest = hashlib.blake2b(f"{symbol}:{tick}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**63 - 1.0


def _price(symbol: str, tick: int) -> float:
    base = SYMBOLS[symbol]
    phase = (_noise(symbol, -1) + 1.0) * math.pi
    drift = 0.03 * math.sin(tick / 40 + phase) + 0.01 * math.sin(tick / 7.3 + 2 * phase)
    return round(base * math.exp(drift + 0.002 * _noise(symbol, tick)), 2)


def quote(symbol: str, tick: int) -> dict[str, Any]:
    """The simulated quote of ``symbol`` at ``tick``."""
    price = _price(symbol, tick)
    volume = 1_000_000 + (tick % 100_000) * 137 + int((_noise(symbol, tick) + 1) * 5_000)
    return {
        "type": "quote",
        "symbol": symbol,
        "price": price,
        "change": round(price - _price(symbol, tick - 1), 2),
        "volume": volume,
        "tick": tick,
    }


class PriceFeed:
    """Publishes a quote per subscribed symbol every ``interval`` seconds.

    Args:
        manager: the channel manager.
        interval: seconds between ticks.
    """

    def __init__(self, manager: ChannelManager, interval: float) -> None:
        if not (interval > 0 and math.isfinite(interval)):
            raise ValueError("interval must be a positive number of seconds")
        self.manager = manager
        self.interval = interval
        self._task: asyncio.Task[None] | None = None

    def tick(self) -> int:
        """The current tick number (from the wall clock: equal on every worker)."""
        return math.floor(time.time() / self.interval)

    @property
    def running(self) -> bool:
        """Whether the feed task runs."""
        return self._task is not None and not self._task.done()

    def ensure_running(self) -> None:
        """Start the feed unless it runs."""
        if not self.running:
            self._task = asyncio.create_task(self._run(), name="ticker-feed")

    def _subscribed(self) -> list[str]:
        return [s for s in SYMBOLS if self.manager.topic_subscribers(topic(s))]

    async def _run(self) -> None:
        last = self.tick()
        while True:
            # Sleep until the next tick boundary of the wall clock.
            await asyncio.sleep(max(0.0, (last + 1) * self.interval - time.time()))
            symbols = self._subscribed()
            if not symbols:
                return  # nobody listens here: stop until the next subscribe
            last = max(last + 1, self.tick())
            for symbol in symbols:
                await self.manager.publish(topic(symbol), quote(symbol, last), local_only=True)


def _symbols(data: Any) -> list[str]:
    symbols = data.get("symbols") if isinstance(data, dict) else None
    if not isinstance(symbols, list) or not all(s in SYMBOLS for s in symbols):
        raise HandlerError(f"symbols must be a list of {', '.join(SYMBOLS)}")
    return list(dict.fromkeys(symbols))


PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>wsserver ticker</title>
<style>
  body {{ font: 16px/1.4 system-ui, sans-serif; margin: 2rem auto; max-width: 36rem; }}
  table {{ border-collapse: collapse; width: 100%; }}
  th, td {{ border: 1px solid #ccc; padding: .4rem .6rem; text-align: right; }}
  th:first-child, td:first-child {{ text-align: left; }}
  .up {{ color: green; }} .down {{ color: red; }}
  #status::after {{ content: "starting"; font-weight: bold; }}
  html[data-wsserver-status="open"] #status::after {{ content: "live"; color: green; }}
  html[data-wsserver-status="reconnecting"] #status::after {{ content: "reconnecting"; }}
  html[data-wsserver-status="offline"] #status::after {{ content: "offline"; color: red; }}
</style>
{scripts}
</head>
<body>
<h1>Live prices</h1>
<p>Status: <span id="status"></span></p>
<p id="symbols">{checkboxes}</p>
<table>
  <thead><tr><th>Symbol</th><th>Price</th><th>Change</th><th>Volume</th></tr></thead>
  <tbody id="quotes"></tbody>
</table>
<script>
(function () {{
  "use strict";
  var ch = window.wsserverChannels;
  var body = document.getElementById("quotes");
  var boxes = Array.from(document.querySelectorAll("#symbols input"));

  function cell(row, index) {{ return row.children[index]; }}

  function show(q) {{
    var row = document.getElementById("row-" + q.symbol);
    if (row === null) {{
      row = document.createElement("tr");
      row.id = "row-" + q.symbol;
      row.dataset.updates = "0";
      for (var i = 0; i < 4; i++) row.appendChild(document.createElement("td"));
      cell(row, 0).textContent = q.symbol;
      body.appendChild(row);
    }}
    if (Number(row.dataset.tick || -1) >= q.tick) return;  // an older quote
    row.dataset.tick = String(q.tick);
    row.dataset.updates = String(Number(row.dataset.updates) + 1);
    cell(row, 1).textContent = q.price.toFixed(2);
    cell(row, 2).textContent = (q.change >= 0 ? "+" : "") + q.change.toFixed(2);
    cell(row, 2).className = q.change >= 0 ? "up" : "down";
    cell(row, 3).textContent = q.volume.toLocaleString("en-US");
  }}

  function checked() {{
    return boxes
      .filter(function (b) {{ return b.checked; }})
      .map(function (b) {{ return b.value; }});
  }}

  function subscribe(symbols) {{
    if (symbols.length === 0) return;
    ch.request("subscribe", {{ symbols: symbols }}).then(function (quotes) {{
      quotes.forEach(show);
    }}, function (err) {{ console.error("subscribe failed:", err); }});
  }}

  ch.on(function (data) {{
    var box = data && data.type === "quote" ? document.getElementById("box-" + data.symbol) : null;
    if (box !== null && box.checked) show(data);
  }});
  boxes.forEach(function (box) {{
    box.addEventListener("change", function () {{
      if (box.checked) {{
        subscribe([box.value]);
      }} else {{
        ch.request("unsubscribe", {{ symbols: [box.value] }});
        var row = document.getElementById("row-" + box.value);
        if (row !== null) row.remove();
      }}
    }});
  }});
  // Every connection is a new channel: subscribe (again) whenever one opens.
  window.addEventListener("wsserver:channel", function () {{ subscribe(checked()); }});
  if (ch.channel !== null) subscribe(checked());
}})();
</script>
</body>
</html>
"""


def create_app(
    *,
    interval: float = 1.0,
    manager: ChannelManager | None = None,
    default_symbols: tuple[str, ...] = ("AAPL", "MSFT", "TSLA"),
) -> App:
    """The ticker application.

    Args:
        interval: seconds between quotes.
        manager: the channel manager (default: a new one, with the
            ``drop_oldest`` queue policy).
        default_symbols: the symbols ticked when the page opens.
    """
    channels = manager if manager is not None else ChannelManager(queue_policy="drop_oldest")
    feed = PriceFeed(channels, interval)
    app = App()
    app.state.channels = channels
    app.state.feed = feed
    channels.install(app, "/ws")

    @app.route("/")
    async def home(request: Request) -> Response:
        boxes = " ".join(
            f'<label><input type="checkbox" id="box-{s}" value="{s}"'
            f"{' checked' if s in default_symbols else ''}> {s}</label>"
            for s in SYMBOLS
        )
        scripts = script_tag("/ws", reconnect_base=0.25, reconnect_max=5.0) + channels_script_tag()
        return HTMLResponse(PAGE.format(scripts=scripts, checkboxes=boxes))

    @app.route("/favicon.ico")
    async def favicon(request: Request) -> Response:
        return Response(b"", status_code=204)

    @channels.handler("subscribe")
    async def subscribe(channel: Channel, data: Any) -> list[dict[str, Any]]:
        symbols = _symbols(data)
        for symbol in symbols:
            await channels.subscribe(channel.id, topic(symbol))
        feed.ensure_running()
        tick = feed.tick()
        return [quote(symbol, tick) for symbol in symbols]

    @channels.handler("unsubscribe")
    async def unsubscribe(channel: Channel, data: Any) -> None:
        for symbol in _symbols(data):
            await channels.unsubscribe(channel.id, topic(symbol))

    return app


app = create_app()
