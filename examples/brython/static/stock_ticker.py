# mypy: ignore-errors
# ruff: noqa: B015
# This file runs in the browser under Brython (see chat_app.py for why it is
# not type-checked, and what `parent <= child` means).
"""The seed's ``StockTicker``, on the browser's own WebSocket, against wsserver.

The seed's code, with the server's URL taken from the page (not
``localhost:8080``), a line that shows the connection's state, and the row
looked up with ``row_id in document`` (Brython's idiom).  Every cell's
content is set as text.
"""

import json

from browser import document, window
from browser.html import DIV, TABLE, TD, TH, TR
from browser.websocket import WebSocket

CELL = {"border": "1px solid #ccc", "padding": "10px"}


def server_url(path):
    """The WebSocket URL of ``path`` on this page's own server."""
    scheme = "wss" if window.location.protocol == "https:" else "ws"
    return f"{scheme}://{window.location.host}{path}"


def text_cell(text, **style):
    cell = TD(style=dict(CELL, **style))
    cell.text = text
    return cell


class StockTicker:
    def __init__(self):
        self.ws = None
        self.stocks = {}
        self.setup_ui()
        self.connect()

    def setup_ui(self):
        """Create stock ticker UI."""
        self.container = DIV(style={"width": "600px", "margin": "20px auto"})
        title = DIV(
            "Live Stock Prices",
            style={
                "font-size": "24px",
                "font-weight": "bold",
                "text-align": "center",
                "margin-bottom": "20px",
            },
        )
        self.status = DIV("Connecting...", id="status")
        self.table = TABLE(id="quotes", style={"width": "100%", "border-collapse": "collapse"})
        header = TR()
        for name in ("Symbol", "Price", "Change", "Volume"):
            header <= TH(name, style=CELL)
        self.table <= header

        self.container <= title
        self.container <= self.status
        self.container <= self.table
        document.body <= self.container

    def connect(self):
        """Connect to stock data WebSocket."""
        self.ws = WebSocket(server_url("/stocks"))

        def on_open(event):
            print("Connected to stock data stream")
            self.status.text = "Connected"
            symbols = ["AAPL", "GOOGL", "MSFT", "TSLA", "AMZN"]
            self.ws.send(json.dumps({"action": "subscribe", "symbols": symbols}))

        def on_message(event):
            try:
                data = json.loads(event.data)
                if data["type"] == "quote":
                    self.update_stock(data)
                elif data["type"] == "error":
                    self.status.text = f"Error: {data['message']}"
            except Exception as e:
                print(f"Error processing data: {e}")

        def on_close(event):
            print("Stock data stream closed")
            self.status.text = f"Closed ({event.code})"

        self.ws.bind("open", on_open)
        self.ws.bind("message", on_message)
        self.ws.bind("close", on_close)

    def update_stock(self, quote):
        """Update stock display with new quote."""
        symbol = quote["symbol"]
        price = quote["price"]
        change = quote["change"]
        volume = quote["volume"]
        self.stocks[symbol] = quote

        change_color = "green" if change >= 0 else "red"
        change_text = f"+{change:.2f}" if change >= 0 else f"{change:.2f}"
        row_id = f"row_{symbol}"
        if row_id not in document:
            row = TR(id=row_id)
            row <= text_cell(symbol)
            row <= text_cell(f"${price:.2f}")
            row <= text_cell(change_text, color=change_color)
            row <= text_cell(f"{volume:,}")
            self.table <= row
        else:
            cells = document[row_id].select("td")
            cells[1].text = f"${price:.2f}"
            cells[2].text = change_text
            cells[2].style.color = change_color
            cells[3].text = f"{volume:,}"


stock_ticker = StockTicker()
