"""The ASGI face: any ASGI 3 application served on the native engine.

``ASGIApp(app)`` adapts an ASGI callable (Starlette, FastAPI, Lilya...) to
the ``Application`` protocol the server drives, so that an ASGI application
runs on the same sans-I/O core, the same ``Connection`` and the same
``WebSocket`` object as a native one: one engine, two faces.  Each module
has one job:

- ``scope``: the HTTP and WebSocket scopes, from a ``Request`` or a
  ``WebSocket``;
- ``http``: one HTTP request's ``receive`` and ``send``;
- ``websocket``: one WebSocket connection's ``receive`` and ``send``;
- ``lifespan``: the lifespan protocol (startup, shutdown, ``state``);
- ``app``: ``ASGIApp`` and ``is_asgi_app``.

What is supported, buffered and limited is in docs/asgi.md.
"""

from .app import ASGIApp, is_asgi_app
from .http import ClientDisconnected
from .lifespan import LifespanFailed

__all__ = ["ASGIApp", "ClientDisconnected", "LifespanFailed", "is_asgi_app"]
