"""The current channel, user and session, as context variables inside handlers.

Dara sets ``WS_CHANNEL``, ``USER`` and ``SESSION_ID`` for the code that
handles a connection's messages; these are wsserver's::

    from wsserver.plugins.channels import current_channel, current_user, current_session

    @manager.handler("whoami")
    async def whoami(channel, data):
        return {"user": current_user.get(), "session": current_session.get()}

    def audit(action: str) -> None:            # deep in the application's code
        logger.info("%s by %s", action, current_user.get())

They are set (``bound``) around every custom message handler, around a
view's ``verify_token`` and its ``on_channel_start`` and ``on_channel_end``
hooks, from the channel's identity *when the handler starts*; code outside
them sees ``None``.  A token update (``verify_token``) changes the identity
for the messages handled after it, as Dara's token update changes the
identity context of the messages that follow.  A task the handler starts
(``asyncio.create_task``) copies the values, as every context variable.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .channel import Channel

__all__ = ["bound", "current_channel", "current_session", "current_user"]

#: The channel whose message is being handled.
current_channel: ContextVar[Channel | None] = ContextVar("wsserver_channels_channel", default=None)
#: Its user (``Identity.user_id``), or ``None`` for an anonymous channel.
current_user: ContextVar[str | None] = ContextVar("wsserver_channels_user", default=None)
#: Its session (``Identity.session_id``), or ``None``.
current_session: ContextVar[str | None] = ContextVar("wsserver_channels_session", default=None)


@contextmanager
def bound(channel: Channel) -> Iterator[None]:
    """Set the three variables from ``channel`` for the ``with`` block, then restore them."""
    channel_token = current_channel.set(channel)
    user_token = current_user.set(channel.user_id)
    session_token = current_session.set(channel.session_id)
    try:
        yield
    finally:
        current_session.reset(session_token)
        current_user.reset(user_token)
        current_channel.reset(channel_token)
