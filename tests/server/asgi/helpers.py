"""Serving an ASGI application in-process for the tests of this package.

Not a test module (no ``test_`` prefix).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from wsserver.server import Server, ServerConfig
from wsserver.server.asgi import ASGIApp


@asynccontextmanager
async def serving_asgi(app: Any, **config: Any) -> AsyncIterator[Server]:
    """Serve ``app`` through ``ASGIApp`` on a free loopback port."""
    config.setdefault("ping_interval", None)
    config.setdefault("shutdown_timeout", 2.0)
    server = Server(ASGIApp(app), ServerConfig(port=0, **config))
    await server.start()
    try:
        yield server
    finally:
        await server.shutdown()
