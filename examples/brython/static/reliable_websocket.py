# mypy: ignore-errors
# ruff: noqa: B015, SIM300
# This file runs in the browser under Brython (see chat_app.py for why it is
# not type-checked, and what `parent <= child` means).
"""The seed's ``ReliableConnection``, on the browser's own WebSocket, against wsserver.

The seed's reconnection and heartbeat, unchanged in substance:

- on open: the attempt counter and the interval are reset, the heartbeat
  starts (the text ``"ping"`` every ``heartbeat`` ms; the server answers
  ``"pong"``);
- on close with any code but 1000: the heartbeat stops and, unless
  ``retries`` attempts have been made, the page reconnects after
  ``interval * 2 ** (attempt - 1)`` ms (exponential backoff);
- ``close()`` closes with 1000, so it does not reconnect.

What the seed prints, this page also lists (``<ol id="log">``, one item per
event, with its numbers in ``data-`` attributes).  The seed's values are the
defaults (30 s heartbeat, 1 s first interval, 5 retries); the query string
may change them (``reliable.html?heartbeat=200&interval=100&retries=8``).
Two fixes: the seed calls ``set_timeout`` without importing it, and it
would start a second heartbeat timer if ``on_open`` ran twice.
"""

from browser import document, window
from browser.html import BUTTON, DIV, INPUT, LI, OL
from browser.timer import clear_interval, set_interval, set_timeout
from browser.websocket import WebSocket


def server_url(path):
    """The WebSocket URL of ``path`` on this page's own server."""
    scheme = "wss" if window.location.protocol == "https:" else "ws"
    return f"{scheme}://{window.location.host}{path}"


def option(params, name, default):
    value = params.get(name)
    return int(value) if value else default


LOG = OL(id="log")


def log(kind, text, **data):
    """Print ``text``, as the seed does, and list it in the page."""
    print(text)
    item = LI(Class=kind)
    item.text = text
    for key, value in data.items():
        item.attrs[f"data-{key}"] = str(value)
    LOG <= item


class ReliableConnection:
    def __init__(self, url, heartbeat=30000, interval=1000, retries=5):
        self.url = url
        self.ws = None
        self.reconnect_attempts = 0
        self.max_reconnect_attempts = retries
        self.base_interval = interval
        self.reconnect_interval = interval
        self.heartbeat_period = heartbeat
        self.heartbeat_interval = None
        self.connect()

    def connect(self):
        """Establish WebSocket connection."""
        log("connecting", f"Connecting to {self.url}...")
        self.ws = WebSocket(self.url)

        def on_open(event):
            log("open", "Connected successfully")
            self.reconnect_attempts = 0
            self.reconnect_interval = self.base_interval  # Reset interval
            self.start_heartbeat()

        def on_message(event):
            if event.data == "pong":
                log("pong", "Heartbeat response received")
            else:
                log("data", f"Received: {event.data}")

        def on_close(event):
            log("close", f"Connection closed ({event.code})", code=event.code)
            self.stop_heartbeat()
            if event.code != 1000:  # Not normal closure
                self.attempt_reconnect()

        def on_error(event):
            log("error", "Connection error")

        self.ws.bind("open", on_open)
        self.ws.bind("message", on_message)
        self.ws.bind("close", on_close)
        self.ws.bind("error", on_error)

    def start_heartbeat(self):
        """Start sending heartbeat messages."""
        self.stop_heartbeat()

        def send_ping():
            if self.ws and self.ws.readyState == 1:
                self.ws.send("ping")

        self.heartbeat_interval = set_interval(send_ping, self.heartbeat_period)

    def stop_heartbeat(self):
        """Stop heartbeat."""
        if self.heartbeat_interval:
            clear_interval(self.heartbeat_interval)
            self.heartbeat_interval = None

    def attempt_reconnect(self):
        """Attempt to reconnect with exponential backoff."""
        if self.reconnect_attempts >= self.max_reconnect_attempts:
            log("gave-up", "Max reconnection attempts reached")
            return
        self.reconnect_attempts += 1
        delay = self.reconnect_interval * (2 ** (self.reconnect_attempts - 1))
        log(
            "reconnect",
            f"Reconnecting in {delay}ms (attempt {self.reconnect_attempts})",
            delay=delay,
            attempt=self.reconnect_attempts,
        )
        set_timeout(self.connect, delay)

    def send(self, data):
        """Send data if connected."""
        if self.ws and self.ws.readyState == 1:
            self.ws.send(data)
        else:
            log("error", "Cannot send - not connected")

    def close(self):
        """Close connection."""
        self.stop_heartbeat()
        if self.ws:
            self.ws.close(1000, "Client closing")


params = window.URLSearchParams.new(window.location.search)
message_input = INPUT(id="data", placeholder="Text to send")
send_button = BUTTON("Send", id="send")
close_button = BUTTON("Close", id="close")
document.body <= DIV([message_input, send_button, close_button])
document.body <= LOG

reliable_ws = ReliableConnection(
    server_url("/api"),
    heartbeat=option(params, "heartbeat", 30000),
    interval=option(params, "interval", 1000),
    retries=option(params, "retries", 5),
)
send_button.bind("click", lambda event: reliable_ws.send(message_input.value))
close_button.bind("click", lambda event: reliable_ws.close())
