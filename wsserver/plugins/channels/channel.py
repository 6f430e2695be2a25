"""``Channel``, one connection's handle, and ``Identity``, whom it belongs to.

A ``Channel`` is what the application holds (handlers get it, and
``ChannelManager.channel(id)`` finds it): its id, its user, its runtime
``Session`` and send queue, a ``state`` dict, and shortcuts to the manager.
It also holds the per-connection state of the manager's parts, each behind
its own methods: the page's pending answers (``replies``), its custom
messages waiting for their handler (``inbox``) and its chunked messages in
progress (``chunks``).  The manager's lifecycle marks it ready and opened,
and ends it when the connection does (``end``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..runtime.replies import PendingReplies
from ..runtime.session import Session
from .errors import ChannelDisconnected
from .inbound import ChunkAssembly, HandlerInbox
from .queues import SendQueue

if TYPE_CHECKING:
    from .history import Position
    from .manager import ChannelManager

__all__ = ["Channel", "Identity", "TokenVerifier"]

logger = logging.getLogger("wsserver.plugins.channels")


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a connection belongs to.

    Attributes:
        user_id: the user (``None``: anonymous).
        session_id: what groups the user's channels (a login session, a
            cookie); ``None``: none.
    """

    user_id: str | None = None
    session_id: str | None = None


#: Checks a token a page sent (``wsserverChannels.updateToken``) and returns
#: whom the connection belongs to now (or a coroutine of it); raises
#: ``HandlerError`` to refuse it.  ``ChannelView.verify_token`` is one.
TokenVerifier = Callable[["Channel", str], Any]


class Channel:
    """One connection's channel, on the process that holds the connection.

    Attributes:
        id: the channel id (``<node id>.<random>``).
        user_id: its user, or ``None``.
        session_id: its session, or ``None``.
        session: the runtime ``Session`` (the connection).
        manager: the ``ChannelManager``.
        queue: the connection's ``SendQueue``.
        state: free for the application (a chat keeps the user's name here).
        replies: ``send_and_wait`` calls waiting for this page's answer, by
            reply channel id.
        inbox: the page's custom messages waiting for their handler.
        chunks: the page's chunked messages in progress.
        verify_token: checks the page's token updates (``None``: refused).
    """

    def __init__(
        self,
        manager: ChannelManager,
        session: Session,
        channel_id: str,
        identity: Identity,
        queue: SendQueue,
        verify_token: TokenVerifier | None = None,
    ) -> None:
        settings = manager.settings
        self.id = channel_id
        self.user_id = identity.user_id
        self.session_id = identity.session_id
        self.session = session
        self.manager = manager
        self.queue = queue
        self.state: dict[str, Any] = {}
        # Topic positions the page had reached before reconnecting (its
        # ch/ready), used once each when the channel is subscribed again.
        self.recovery: dict[str, Position] = {}
        self.replies: PendingReplies[str] = PendingReplies(
            logger=logger, label=f"conn {session.connection_id}: reply", level=logging.DEBUG
        )
        self.inbox = HandlerInbox(
            settings.max_inbox, session.connection_id, name=f"channels-handlers-{channel_id}"
        )
        self.chunks = ChunkAssembly(settings, session.connection_id)
        self.verify_token = verify_token
        self._closed = False
        # Both must hold before anything is sent: the page's channels module
        # said ch/ready, and the channel is registered on every node (open).
        self._ready = False
        self._opened = False
        self._topics: frozenset[str] = frozenset()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<Channel {self.id} user={self.user_id!r} {state}>"

    @property
    def closed(self) -> bool:
        """Whether the connection has ended."""
        return self._closed

    @property
    def topics(self) -> frozenset[str]:
        """The topics it is subscribed to (its last ones, once closed)."""
        if self._closed:
            return self._topics
        return self.manager.registry.topics_of(self.id)

    @property
    def pending_requests(self) -> int:
        """``send_and_wait`` calls waiting for this page's answer."""
        return self.replies.pending_count

    @property
    def unknown_replies(self) -> int:
        """Answers received for no pending request (late ones)."""
        return self.replies.unknown_answers

    @property
    def ready_to_send(self) -> bool:
        """Whether the page is ready and the channel open, and not yet closed."""
        return self._ready and self._opened and not self._closed

    async def send(
        self, message: Any, *, custom: bool = False, compress: bool | None = None
    ) -> bool:
        """``manager.send_message(self.id, message, custom, compress=compress)``."""
        return await self.manager.send_message(self.id, message, custom, compress=compress)

    async def request(
        self, message: Any, timeout: float | None = None, *, custom: bool = False
    ) -> Any:
        """``manager.send_and_wait(self.id, message, timeout, custom=custom)``."""
        return await self.manager.send_and_wait(self.id, message, timeout, custom=custom)

    async def subscribe(self, topic: str) -> None:
        """``manager.subscribe(self.id, topic)``."""
        await self.manager.subscribe(self.id, topic)

    async def unsubscribe(self, topic: str) -> None:
        """``manager.unsubscribe(self.id, topic)``."""
        await self.manager.unsubscribe(self.id, topic)

    @property
    def identity(self) -> Identity:
        """Whom it belongs to now."""
        return Identity(self.user_id, self.session_id)

    def set_identity(self, identity: Identity) -> None:
        """Note a new identity (the manager's ``set_identity`` re-registers it)."""
        self.user_id = identity.user_id
        self.session_id = identity.session_id

    def mark_ready(self) -> bool:
        """Note the page's ``ch/ready``; ``False`` if it said so already."""
        if self._ready:
            return False
        self._ready = True
        return True

    def mark_opened(self) -> None:
        """Note that the channel is registered on every node."""
        self._opened = True

    def end(self, last_topics: frozenset[str]) -> None:
        """The connection is gone: fail what waits on the page, drop what it sent.

        Args:
            last_topics: its topics when it ended (``topics`` from now on).
        """
        self._topics = last_topics
        self._closed = True
        code = self.session.close_code
        self.replies.fail_all(
            lambda: ChannelDisconnected(
                f"channel {self.id} disconnected (close code {code}) before answering"
            )
        )
        self.inbox.close()
        self.chunks.close()
        self.queue.close()
