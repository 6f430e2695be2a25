"""``RuntimeView``: the WebSocket endpoint the browser runtime connects to.

Subclass it and override the hooks::

    class Page(RuntimeView):
        async def on_session_start(self, session: Session) -> None:
            title = await get_js_result(session, "", "document.title")
            ...

        async def on_session_end(self, session: Session) -> None:
            ...

    app.add_websocket_route("/ws", Page)

``on_connect`` (inherited from ``WebSocketView``) decides whether to accept;
then a ``Session`` is created, its ``init`` message sent, and the receive
loop runs for the life of the connection.  ``on_session_start`` runs in a
task of its own beside the receive loop, so it may await answers from the
browser (which arrive through that loop) and may run as long as the
connection does: it is cancelled when the connection ends.
``on_session_end`` runs last, after every close callback (pending JS futures
have failed by then).  ``on_receive`` and ``on_disconnect`` are not called:
messages go to the session's handlers instead.
"""

from __future__ import annotations

import asyncio
import logging
from typing import ClassVar

from ...protocol.codes import CloseCode
from ...server import WebSocket, WebSocketState, WebSocketView
from .session import Session, SessionClosed

__all__ = ["RuntimeView"]

logger = logging.getLogger("wsserver.plugins.runtime")


class RuntimeView(WebSocketView):
    """A class-based endpoint running one ``Session`` per connection.

    Attributes:
        max_message_size: the session's message limit in bytes (``None``:
            the connection's own limit, ``WebSocket.max_message_size``; a
            larger value is lowered to it).
        ping_interval: seconds between the browser's application-level
            pings (``None``: none).
        ping_timeout: seconds the browser waits for a pong.
        session: the connection's session, once accepted.
    """

    max_message_size: ClassVar[int | None] = None
    ping_interval: ClassVar[float | None] = 15.0
    ping_timeout: ClassVar[float] = 10.0

    def __init__(self, websocket: WebSocket) -> None:
        super().__init__(websocket)
        self.session: Session | None = None

    def create_session(self, websocket: WebSocket) -> Session:
        """Make the session for an accepted connection (override to customise)."""
        return Session(
            websocket,
            max_message_size=self.max_message_size,
            ping_interval=self.ping_interval,
            ping_timeout=self.ping_timeout,
        )

    async def dispatch(self) -> None:
        """Accept, run the session and the hooks, and clean up."""
        websocket = self.websocket
        await self.on_connect(websocket)
        if websocket.application_state is not WebSocketState.CONNECTED:
            return  # refused, or closed at once
        session = self.create_session(websocket)
        self.session = session
        hook: asyncio.Task[None] | None = None
        try:
            try:
                await session.send_init()
            except SessionClosed:
                pass  # gone already: run() sees the disconnect
            else:
                hook = asyncio.create_task(
                    self._run_start_hook(session), name=f"session-start-{session.id}"
                )
            await session.run()
        finally:
            if hook is not None:
                if not hook.done():
                    hook.cancel()
                # The hook ends before on_session_end starts, so that the two
                # never run at once.
                await asyncio.wait({hook})
            await self.on_session_end(session)

    async def _run_start_hook(self, session: Session) -> None:
        try:
            await self.on_session_start(session)
        except Exception:
            if session.closed:
                # Typically an execute_js that failed because the page left:
                # the end of the connection, not a bug worth a traceback.
                logger.debug(
                    "conn %d: on_session_start ended with the session",
                    session.connection_id,
                    exc_info=True,
                )
                return
            logger.exception("conn %d: error in on_session_start", session.connection_id)
            await session.close(CloseCode.INTERNAL_ERROR, "internal error")

    async def on_session_start(self, session: Session) -> None:
        """Called once ``init`` is sent; runs beside the receive loop."""

    async def on_session_end(self, session: Session) -> None:
        """Called once at the end; ``session.close_code`` says how it ended."""
