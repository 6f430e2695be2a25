"""``ChannelView``: the WebSocket endpoint whose every connection gets a channel."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, ClassVar

from ...protocol.codes import CloseCode
from ...server import PlainTextResponse, WebSocket
from ..runtime.session import Session
from ..runtime.view import RuntimeView
from .channel import Channel, Identity
from .context import bound
from .errors import HandlerError

if TYPE_CHECKING:
    from .manager import ChannelManager

__all__ = ["ChannelView"]


class ChannelView(RuntimeView):
    """A ``RuntimeView`` whose every connection gets a channel of ``manager``.

    Set ``manager`` (or use ``manager.view()`` / ``manager.install``), and
    override ``identify`` to say who the connection belongs to, and
    ``verify_token`` to let a page refresh it without reconnecting.  A user
    with ``max_user_channels`` channels open on this node is refused (429).  The hooks
    ``on_channel_start`` (after ``ch/init`` is queued, beside the receive
    loop) and ``on_channel_end`` (after the channel is cleaned up) replace
    ``on_session_start`` / ``on_session_end``.

    Attributes:
        manager: the ``ChannelManager`` (a class attribute).
        channel: this connection's channel, once accepted.
    """

    manager: ClassVar[ChannelManager | None] = None
    #: Seconds a client refused at its user's cap is told to wait (429's
    #: ``Retry-After``): long enough for a tab to close.
    retry_after: ClassVar[int] = 10

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

    async def verify_token(self, channel: Channel, token: str) -> Identity:
        """Whom the connection belongs to now, from a token its page sent.

        The page calls ``wsserverChannels.updateToken(token)`` (a refreshed
        login, an SSO token renewed); what this returns becomes the
        channel's identity without a reconnection (``manager.set_identity``).
        Raise ``HandlerError`` to refuse the token: the page's promise
        rejects with its text, and the connection keeps its identity.  By
        default every token update is refused: accepting one is the
        application's decision, as checking the first token is.
        """
        raise HandlerError("this endpoint does not accept token updates")

    async def on_connect(self, websocket: WebSocket) -> None:
        """Accept, unless the user has ``max_user_channels`` channels here (429)."""
        if self._over_cap(self.identify(websocket).user_id, 0):
            await websocket.send_denial_response(
                PlainTextResponse(
                    "too many connections for this user\n",
                    status_code=429,
                    headers={"Retry-After": str(self.retry_after)},
                )
            )
            return
        await websocket.accept()

    def _over_cap(self, user_id: str | None, counting_self: int) -> bool:
        """Whether ``user_id`` has more than its cap (``counting_self``: this channel
        is among its channels already); logs the refusal."""
        manager = type(self).manager
        if manager is None:
            return False  # create_session says so, after the accept (1011)
        cap = manager.max_user_channels
        if user_id is None or cap is None:
            return False
        if len(manager.registry.user_channels(user_id)) - counting_self < cap:
            return False
        manager.limits.refused_connection(user_id, cap, asyncio.get_running_loop().time())
        return True

    def create_session(self, websocket: WebSocket) -> Session:
        """The runtime's session, with its channel attached."""
        session = super().create_session(websocket)
        self.channel = self.get_manager().attach(
            session, self.identify(websocket), verify_token=self.verify_token
        )
        return session

    async def on_session_start(self, session: Session) -> None:
        """Open the channel (``ch/init``), then run ``on_channel_start``."""
        channel = self.channel
        assert channel is not None
        if self._over_cap(channel.user_id, 1):
            # Two handshakes of the user raced past on_connect's check.
            await session.close(CloseCode.POLICY_VIOLATION, "too many connections for this user")
            return
        await self.get_manager().open(channel)
        with bound(channel):
            await self.on_channel_start(channel)

    async def on_session_end(self, session: Session) -> None:
        """Run ``on_channel_end``."""
        if self.channel is not None:
            with bound(self.channel):
                await self.on_channel_end(self.channel)

    async def on_channel_start(self, channel: Channel) -> None:
        """Called once the channel is open; may last as long as the connection."""

    async def on_channel_end(self, channel: Channel) -> None:
        """Called once the channel is gone (``channel.topics`` are its last ones)."""
