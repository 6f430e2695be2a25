"""The three Brython apps on one plain wsserver ``App``.

    wsserver run examples.brython.app:app --port 8080

then open http://localhost:8080/.  The WebSocket endpoints are the seed's
URLs (``ws://localhost:8080/chat``, ``/stocks``, ``/api``), each a plain
``WebSocketView``; the pages and their Python are static files
(``static/``), and ``brython.js`` and ``brython_stdlib.js`` are served from
the ``brython`` package on PyPI (``pip install brython``, or wsserver's
``examples`` extra) with ``StaticFiles``: nothing of Brython is copied into
this repository.

Routes:

=====================  =========================================================
``/``                  the index: a link to each page
``/chat.html``         ``ChatApp`` (``static/chat_app.py``), WebSocket ``/chat``
``/ticker.html``       ``StockTicker`` (``static/stock_ticker.py``), ``/stocks``
``/reliable.html``     ``ReliableConnection`` (``static/reliable_websocket.py``),
                       ``/api``; its query string sets the heartbeat and the
                       backoff (``?heartbeat=30000&interval=1000&retries=5``,
                       the seed's values, in milliseconds)
``/brython/...``       Brython's two scripts, from the installed package
=====================  =========================================================
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from wsserver import App, StaticFiles

from .chat import ChatRoom, ChatView
from .reliable import ApiView
from .ticker import Market, StockFeed, StockView

__all__ = ["STATIC", "app", "brython_directory", "create_app"]

#: The pages and the Python they run in the browser.
STATIC = Path(__file__).resolve().parent / "static"


def brython_directory() -> Path:
    """Where the ``brython`` package keeps ``brython.js`` (its ``data`` folder).

    Raises:
        RuntimeError: the package is not installed, or is missing its scripts.
    """
    try:
        directory = Path(str(resources.files("brython").joinpath("data")))
    except ModuleNotFoundError:
        raise RuntimeError("the Brython examples need Brython: pip install brython") from None
    for name in ("brython.js", "brython_stdlib.js"):
        if not (directory / name).is_file():
            raise RuntimeError(f"{name} is not in {directory}: reinstall the brython package")
    return directory


def create_app(*, market: Market | None = None, tick_interval: float = 1.0) -> App:
    """The three apps, with a chat room and a market of their own.

    Args:
        market: the ticker's market (default: a new session at ``SYMBOLS``).
        tick_interval: seconds between the market's ticks.
    """
    feed = StockFeed(market if market is not None else Market(), tick_interval)
    room = ChatRoom()
    app = App()
    app.state.room = room
    app.state.feed = feed
    # Subclasses, so that two applications (two tests) share no room or feed.
    app.add_websocket_route("/chat", type("Chat", (ChatView,), {"room": room}))
    app.add_websocket_route("/stocks", type("Stocks", (StockView,), {"feed": feed}))
    app.add_websocket_route("/api", ApiView)
    app.mount("/brython", StaticFiles(brython_directory()))
    app.mount("/", StaticFiles(STATIC))
    return app


app = create_app()
