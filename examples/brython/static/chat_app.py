# mypy: ignore-errors
# ruff: noqa: B015
# This file runs in the browser under Brython: its `browser` module exists
# there only, so the type checker has nothing to check it against; and
# `parent <= child` is Brython's idiom for appending a child element, not a
# comparison.
"""The seed's ``ChatApp``, on the browser's own WebSocket, against wsserver.

It is the Brython seed's chat, method for method (``setup_ui``, ``connect``,
``send_message``, ``handle_server_message``, ``add_chat_message``,
``add_system_message``), with three changes a real page needs:

- the server's URL is this page's own host (``ws://`` or ``wss://``), not
  ``localhost:8080``;
- the user name comes from the query string (``chat.html?name=alice``), not
  the fixed ``"User"``;
- text from the server (or another user) goes into the page as text, through
  the ``text`` property (``textContent``), never as markup: Brython's
  ``DIV("...")`` would parse its string argument as HTML, and the seed's
  page would run any ``<img onerror=...>`` another user sends.
"""

import json

from browser import bind, document, window
from browser.html import BUTTON, DIV, INPUT
from browser.websocket import WebSocket, supported


def server_url(path):
    """The WebSocket URL of ``path`` on this page's own server."""
    scheme = "wss" if window.location.protocol == "https:" else "ws"
    return f"{scheme}://{window.location.host}{path}"


def text_div(text, style, class_name):
    """A ``DIV`` holding ``text`` as text, whatever characters it has."""
    element = DIV(style=style, Class=class_name)
    element.text = text
    return element


class ChatApp:
    def __init__(self):
        self.ws = None
        name = window.URLSearchParams.new(window.location.search).get("name")
        self.username = name or "User"
        self.setup_ui()
        self.connect()

    def setup_ui(self):
        """Create chat interface."""
        self.chat_container = DIV(
            style={
                "width": "400px",
                "height": "500px",
                "border": "1px solid #ccc",
                "display": "flex",
                "flex-direction": "column",
            }
        )
        self.messages_area = DIV(
            id="messages",
            style={"flex": "1", "overflow-y": "auto", "padding": "10px", "background": "#f9f9f9"},
        )
        input_area = DIV(
            style={"display": "flex", "padding": "10px", "border-top": "1px solid #ccc"}
        )
        self.message_input = INPUT(
            id="message",
            placeholder="Type a message...",
            maxlength="2000",
            style={"flex": "1", "margin-right": "10px"},
        )
        send_button = BUTTON("Send", id="send")

        input_area <= self.message_input
        input_area <= send_button
        self.chat_container <= self.messages_area
        self.chat_container <= input_area
        document.body <= self.chat_container

        @bind(send_button, "click")
        def handle_send(event):
            self.send_message()

        @bind(self.message_input, "keypress")
        def handle_keypress(event):
            if event.key == "Enter":
                self.send_message()

    def connect(self):
        """Connect to WebSocket server."""
        self.ws = WebSocket(server_url("/chat"))

        def on_open(event):
            self.add_system_message("Connected to chat server")
            self.ws.send(json.dumps({"type": "join", "username": self.username}))

        def on_message(event):
            try:
                data = json.loads(event.data)
            except Exception:
                self.add_system_message(f"Received: {event.data}")
                return
            self.handle_server_message(data)

        def on_close(event):
            self.add_system_message("Disconnected from server")

        def on_error(event):
            self.add_system_message("Connection error")

        self.ws.bind("open", on_open)
        self.ws.bind("message", on_message)
        self.ws.bind("close", on_close)
        self.ws.bind("error", on_error)

    def send_message(self):
        """Send chat message."""
        message = self.message_input.value.strip()
        if message and self.ws and self.ws.readyState == 1:
            self.ws.send(
                json.dumps({"type": "message", "username": self.username, "text": message})
            )
            self.message_input.value = ""

    def handle_server_message(self, data):
        """Handle messages from server."""
        message_type = data.get("type")
        if message_type == "message":
            self.add_chat_message(data["username"], data["text"])
        elif message_type == "join":
            self.add_system_message(f"{data['username']} joined the chat")
        elif message_type == "leave":
            self.add_system_message(f"{data['username']} left the chat")
        elif message_type == "error":
            self.add_system_message(f"Error: {data['message']}")

    def add_chat_message(self, username, text):
        """Add chat message to display."""
        message_div = DIV(style={"margin": "5px 0"}, Class="chat")
        bold = {"font-weight": "bold", "display": "inline"}
        message_div <= text_div(f"{username}: ", bold, "user")
        message_div <= text_div(text, {"display": "inline"}, "text")
        self.messages_area <= message_div
        self.messages_area.scrollTop = self.messages_area.scrollHeight

    def add_system_message(self, text):
        """Add system message to display."""
        style = {"margin": "5px 0", "font-style": "italic", "color": "#666"}
        self.messages_area <= text_div(text, style, "system")
        self.messages_area.scrollTop = self.messages_area.scrollHeight


if not supported:
    document.body <= text_div("WebSocket not supported in this browser", {}, "system")
else:
    chat_app = ChatApp()
