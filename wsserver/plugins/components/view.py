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
    #: Seconds of silence before the server closes a page's connection
    #: (1001), over the server's ``receive_timeout``; ``None``: the server's.
    receive_timeout: ClassVar[float | None] = None
    #: Seconds between the server's WebSocket pings on a page's connection,
    #: over the server's ``ping_interval``; ``None``: the server's.
    server_ping_interval: ClassVar[float | None] = None

    @classmethod
    def for_app(cls, app: ComponentApp) -> type[PageView]:
        """A subclass serving ``app``'s pages, with its sessions' settings
        (``max_message_size``, ``ping_interval``, ``ping_timeout``) and its
        connections' (``receive_timeout``, ``server_ping_interval``)."""
        settings = app.settings
        return type(
            cls.__name__,
            (cls,),
            {
                "app": app,
                "max_message_size": settings.max_message_size,
                "ping_interval": settings.ping_interval,
                "ping_timeout": settings.ping_timeout,
                "receive_timeout": settings.receive_timeout,
                "server_ping_interval": settings.server_ping_interval,
            },
        )

    def __init__(self, websocket: WebSocket) -> None:
        super().__init__(websocket)
        self.connection: PageConnection | None = None

    def create_session(self, websocket: WebSocket) -> Session:
        """The session, with the page's handlers registered before ``init``;
        the connection's own keepalive settings, if the view has any."""
        if self.receive_timeout is not None:
            websocket.configure_keepalive(receive_timeout=self.receive_timeout)
        if self.server_ping_interval is not None:
            websocket.configure_keepalive(ping_interval=self.server_ping_interval)
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
