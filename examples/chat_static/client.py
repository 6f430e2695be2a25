# mypy: ignore-errors
# ruff: noqa: B015
# This file runs in the browser under Brython: its `browser` module exists
# there only, so the type checker has nothing to check it against; and
# `parent <= child` is Brython's idiom for appending a child element, not a
# comparison.
"""The chat page's client, in Python, run by Brython.

It follows the seed's ``ChatApp`` (``setup_ui``, ``connect``,
``send_message``, ``handle_server_message``, ``add_chat_message``,
``add_system_message``), with one difference: instead of a bare
``browser.websocket.WebSocket`` it talks through the wsserver browser
runtime (``window.wsserver``: reconnection with backoff, heartbeat, status)
and its channels module (``window.wsserverChannels``: requests whose answers
come back, messages of the rooms joined).  After a reconnection the page is
a new channel, so it joins its room again.

Every text from the server (or another user) goes into the page as text,
through the ``text`` property (``textContent``), never as markup: Brython's
``html.SPAN("...")`` would parse its string argument as HTML.
"""

from browser import bind, document, html, window

channels = window.wsserverChannels


def text_element(tag, text, **attributes):
    """An element holding ``text`` as text, whatever characters it has."""
    element = tag(**attributes)
    element.text = text
    return element


class ChatApp:
    """One chat page: a name, one room at a time, the messages."""

    def __init__(self):
        self.username = None
        self.room = None
        # The runtime reports every reconnection attempt; the reader wants
        # one notice per outage, and one when it is over.
        self.disconnected = False
        self.setup_ui()
        self.connect()

    def setup_ui(self):
        """Create the chat interface."""
        app = document["app"]
        self.name_input = html.INPUT(id="name", placeholder="Your name", maxlength="32")
        self.room_input = html.INPUT(id="room", value="lobby", maxlength="32")
        join_button = html.BUTTON("Join", id="join")
        self.messages_area = html.DIV(
            id="messages",
            style={
                "height": "20rem",
                "overflow-y": "auto",
                "border": "1px solid #ccc",
                "padding": "0.5rem",
                "background": "#f9f9f9",
                "margin": "0.5rem 0",
            },
        )
        self.message_input = html.INPUT(
            id="text", placeholder="Type a message...", style={"width": "75%"}
        )
        send_button = html.BUTTON("Send", id="send")
        app <= html.DIV([self.name_input, " in ", self.room_input, " ", join_button])
        app <= self.messages_area
        app <= html.DIV([self.message_input, " ", send_button])

        @bind(join_button, "click")
        def handle_join(event):
            self.join()

        @bind(send_button, "click")
        def handle_send(event):
            self.send_message()

        @bind(self.message_input, "keypress")
        def handle_keypress(event):
            if event.key == "Enter":
                self.send_message()

        document.body.setAttribute("data-chat", "ready")

    def connect(self):
        """Listen to the rooms' messages and to the connection's status."""
        channels.on(self.on_message)
        channels.onLost(self.on_lost)
        window.addEventListener("wsserver:status", self.on_status)
        window.addEventListener("wsserver:channel", self.on_channel)
        if channels.channel is not None:
            # Connected before Brython ran this script.
            self.add_system_message("Connected to chat server")

    def on_status(self, event):
        status = event.detail.status
        if status == "reconnecting" and not self.disconnected:
            self.disconnected = True
            self.add_system_message("Disconnected from server, reconnecting...")
        elif status == "offline":
            self.disconnected = True
            self.add_system_message("Server unreachable: reload the page to try again")

    def on_channel(self, event):
        self.disconnected = False
        self.add_system_message("Connected to chat server")
        if self.room is not None:
            self.join()  # a new connection is a new channel: join again

    def on_lost(self, detail):
        # History no longer covered the gap: say so rather than pretend.
        self.add_system_message("Some messages were missed while disconnected")

    def join(self):
        """Join the room in the room box, under the name in the name box."""
        name = self.name_input.value.strip()
        room = self.room_input.value.strip()
        if not name:
            self.add_system_message("Error: choose a name first")
            return
        previous = self.room
        if previous is not None and previous != room:
            channels.request("leave", {"room": previous})
            channels.forget("room:" + previous)  # nothing to recover there

        def joined(answer):
            self.username = answer.username
            self.room = answer.room
            document.body.setAttribute("data-room", self.room)

        channels.request("join", {"username": name, "room": room}).then(joined, self.failed)

    def send_message(self):
        """Send the message box's text to the room."""
        text = self.message_input.value.strip()
        if not text:
            return
        if self.room is None:
            self.add_system_message("Error: join a room first")
            return
        self.message_input.value = ""
        channels.request("message", {"room": self.room, "text": text}).then(None, self.failed)

    def failed(self, error):
        self.add_system_message(f"Error: {error.message}")

    def on_message(self, data, meta):
        self.handle_server_message(data)

    def handle_server_message(self, data):
        """Handle a message of a room."""
        message_type = data.type
        if message_type == "message":
            self.add_chat_message(data.username, data.text)
        elif message_type == "join":
            self.add_system_message(f"{data.username} joined {data.room}")
        elif message_type == "leave":
            self.add_system_message(f"{data.username} left {data.room}")

    def add_chat_message(self, username, text):
        """Add a chat message to the display."""
        message_div = html.DIV(Class="chat", style={"margin": "5px 0"})
        message_div <= text_element(html.B, f"{username}: ", Class="user")
        message_div <= text_element(html.SPAN, text, Class="text")
        self.messages_area <= message_div
        self.messages_area.scrollTop = self.messages_area.scrollHeight

    def add_system_message(self, text):
        """Add a system message (a notice, an error) to the display."""
        self.messages_area <= text_element(
            html.DIV, text, Class="system", style={"margin": "5px 0"}
        )
        self.messages_area.scrollTop = self.messages_area.scrollHeight


chat_app = ChatApp()
