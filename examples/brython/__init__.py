"""The Brython seed's three WebSocket clients, served by wsserver.

``wsserver run examples.brython.app:app --port 8080``.  Each page runs
Python in the browser with Brython and talks to a plain ``WebSocketView``
through the browser's own WebSocket, as the seed writes it
(``from browser.websocket import WebSocket``, ``ws.bind("open" | "message" |
"close" | "error", handler)``): a chat (``chat.py``), a stock ticker
(``ticker.py``) and a connection that reconnects with exponential backoff and
keeps a heartbeat (``reliable.py``).  ``app.py`` puts them on one ``App``.
"""
