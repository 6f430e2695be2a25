"""``ChannelView``: the WebSocket endpoint whose every connection gets a channel."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from ...server import WebSocket
from ..runtime.session import Session
from ..runtime.view import RuntimeView
from .channel import Channel, Identity

if TYPE_CHECKING:
    from .manager import ChannelManager

__all__ = ["ChannelView"]


class ChannelView(RuntimeView):
    """A ``RuntimeView`` whose every connection gets a channel of ``manager``.

    Set ``manager`` (or use ``manager.view()`` / ``manager.install``), and
    override ``identify`` to say who the connection belongs to.  The hooks
    ``on_channel_start`` (after ``ch/init`` is queued, beside the receive
    loop) and ``on_channel_end`` (after the channel is cleaned up) replace
    ``on_session_start`` / ``on_session_end``.

    Attributes:
        manager: the ``ChannelManager`` (a class attribute).
        channel: this connection's channel, once accepted.
    """

    manager: ClassVar[ChannelManager | None] = None

    def __init__(self, websocket: WebSocket) -> None:
        super().__init__(websocket)
        self.channel: Channel | None = None

    def get_manager(self) -> ChannelManager:
        """The manager; raises ``RuntimeError`` if none is set."""
        manager = type(self).manager
        if manager is None:
            raise RuntimeError(f"{type(self).__name__}.manager is not set")
        return manager

    def identify(self, websocket: WebSocket) -> Identity:
        """Who the connection belongs to; by default from ``websocket.state``.

        ``state.user_id`` (or ``state.user``, when a string) and
        ``state.session_id``, as an ``App(authenticate=...)`` hook may set
        them; anonymous otherwise.
        """
        state = websocket.state
        user = getattr(state, "user_id", None)
        if user is None:
            user = getattr(state, "user", None)
        session = getattr(state, "session_id", None)
        return Identity(
            user if isinstance(user, str) else None,
            session if isinstance(session, str) else None,
        )

    def create_session(self, websocket: WebSocket) -> Session:
        """The runtime's session, with its channel attached."""
        session = super().create_session(websocket)
        self.channel = self.get_manager().attach(session, self.identify(websocket))
        return session

    async def on_session_start(self, session: Session) -> None:
        """Open the channel (``ch/init``), then run ``on_channel_start``."""
        channel = self.channel
        assert channel is not None
        await self.get_manager().open(channel)
        await self.on_channel_start(channel)

    async def on_session_end(self, session: Session) -> None:
        """Run ``on_channel_end``."""
        if self.channel is not None:
            await self.on_channel_end(self.channel)

    async def on_channel_start(self, channel: Channel) -> None:
        """Called once the channel is open; may last as long as the connection."""

    async def on_channel_end(self, channel: Channel) -> None:
        """Called once the channel is gone (``channel.topics`` are its last ones)."""
