"""The pages' WebSocket endpoint: a ``RuntimeView`` running one
``PageConnection`` per connection.

``ComponentApp`` routes its ``ws_path`` to a subclass of ``PageView`` made
for it (``PageView.for_app``): the app, and its sessions' settings.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from ...server import WebSocket
from ..runtime import RuntimeView, Session
from .connection import PageConnection

if TYPE_CHECKING:
    from .app import ComponentApp

__all__ = ["PageView"]


class PageView(RuntimeView):
    """The WebSocket endpoint of a ``ComponentApp``'s pages (one subclass per
    app, made by the app)."""

    app: ClassVar[ComponentApp]

    @classmethod
    def for_app(cls, app: ComponentApp) -> type[PageView]:
        """A subclass serving ``app``'s pages, with its sessions' settings
        (``max_message_size``, ``ping_interval``, ``ping_timeout``)."""
        settings = app.settings
        return type(
            cls.__name__,
            (cls,),
            {
                "app": app,
                "max_message_size": settings.max_message_size,
                "ping_interval": settings.ping_interval,
                "ping_timeout": settings.ping_timeout,
            },
        )

    def __init__(self, websocket: WebSocket) -> None:
        super().__init__(websocket)
        self.connection: PageConnection | None = None

    def create_session(self, websocket: WebSocket) -> Session:
        """The session, with the page's handlers registered before ``init``."""
        session = super().create_session(websocket)
        self.connection = PageConnection(self.app, session)
        return session

    async def on_session_start(self, session: Session) -> None:
        """Run the connection's jobs."""
        assert self.connection is not None
        await self.connection.run()

    async def on_session_end(self, session: Session) -> None:
        """Save the page a last time."""
        if self.connection is not None:
            await self.connection.finish()
