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
would start a second heartbeat timer if ``on_open`` ran twice.  The seed's
``ReliableWebSocket`` interface is here too: ``set_heartbeat(interval,
message="ping")`` and ``enable_auto_reconnect(max_retries=-1,
backoff=True)`` (-1: no limit; without backoff every retry waits the first
interval); the page below configures its connection through them.
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
    def __init__(self, url, heartbeat=30000, interval=1000, retries=5, connect=True):
        self.url = url
        self.ws = None
        self.reconnect_attempts = 0
        self.max_reconnect_attempts = retries
        self.backoff = True
        self.base_interval = interval
        self.reconnect_interval = interval
        self.heartbeat_period = heartbeat
        self.heartbeat_message = "ping"
        self.heartbeat_interval = None
        if connect:
            self.connect()

    def set_heartbeat(self, interval, message="ping"):
        """Send ``message`` every ``interval`` ms while connected."""
        self.heartbeat_period = interval
        self.heartbeat_message = message
        if self.ws and self.ws.readyState == 1:
            self.start_heartbeat()

    def enable_auto_reconnect(self, max_retries=-1, backoff=True):
        """Reconnect after an abnormal close, ``max_retries`` times (-1: always)."""
        self.max_reconnect_attempts = max_retries
        self.backoff = backoff

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
            if event.data == "pong" and self.heartbeat_message == "ping":
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
                self.ws.send(self.heartbeat_message)

        self.heartbeat_interval = set_interval(send_ping, self.heartbeat_period)

    def stop_heartbeat(self):
        """Stop heartbeat."""
        if self.heartbeat_interval:
            clear_interval(self.heartbeat_interval)
            self.heartbeat_interval = None

    def attempt_reconnect(self):
        """Attempt to reconnect with exponential backoff."""
        limit = self.max_reconnect_attempts
        if limit >= 0 and self.reconnect_attempts >= limit:
            log("gave-up", "Max reconnection attempts reached")
            return
        self.reconnect_attempts += 1
        factor = 2 ** (self.reconnect_attempts - 1) if self.backoff else 1
        delay = self.reconnect_interval * factor
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
    server_url("/api"), interval=option(params, "interval", 1000), connect=False
)
reliable_ws.set_heartbeat(option(params, "heartbeat", 30000))
reliable_ws.enable_auto_reconnect(
    max_retries=option(params, "retries", 5), backoff=params.get("backoff") != "0"
)
reliable_ws.connect()
send_button.bind("click", lambda event: reliable_ws.send(message_input.value))
close_button.bind("click", lambda event: reliable_ws.close())
