"""``send_and_wait``: ask a page and wait for its answer, on any node.

The question is a ``ch/msg`` carrying a reply channel id (``rchan``); the
page's ``ch/reply`` carries it back in ``response_for``, and the channel's
``PendingReplies`` hands the answer to the caller.

A channel on another node is asked through that node: this node publishes
``{"op": "req", "rid": ..., "channel": ..., "msg": ..., "timeout": ...}`` on
the node's subject; the node asks its page as above and publishes the
outcome back, ``{"op": "rep", "rid": ..., "ok": ..., "data" | "error": ...}``
(errors travel through ``errors.describe_error``).  When this node stops
waiting first (a timeout, a cancellation), it publishes ``{"op": "cancel"}``
so that the other node stops waiting too.  Every wait has a timeout, and the
other node caps what it is asked for at ``max_request_timeout``.

A call made on behalf of a user (``current_user`` is set: a handler of one
of its pages, or a task it started) counts against the user's
``max_user_waits`` on this node (``limits``) from its start to its end;
past it the call raises ``TooManyWaits`` at once.  It is counted on the node
that calls, where the user is known, whichever node holds the page asked.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from typing import TYPE_CHECKING, Any

from ..runtime.replies import PendingReplies
from .addresses import node_of, node_subject
from .backends import BackendUnavailable, ChannelError
from .context import current_user
from .envelopes import remote_fields, remote_kind
from .errors import (
    ChannelDisconnected,
    ChannelNotFound,
    ReplyTimeout,
    TooManyWaits,
    describe_error,
    rebuild_error,
)
from .settings import ChannelSettings, check_timeout

if TYPE_CHECKING:
    from .channel import Channel
    from .delivery import Delivery
    from .limits import UserLimits
    from .nodes import NodeLink
    from .registry import Registry

__all__ = ["Requests"]

logger = logging.getLogger("wsserver.plugins.channels")

# Random bytes of reply channel ids and request ids: unguessable by a page.
_ID_BYTES = 12


class Requests:
    """The ``send_and_wait`` calls of a manager, and those it serves for other nodes.

    Args:
        registry: this node's channels.
        link: the link to the other nodes.
        delivery: sends the questions.
        settings: ``request_timeout`` and ``max_request_timeout``.
        limits: each user's waits (``max_user_waits``).
    """

    def __init__(
        self,
        *,
        registry: Registry[Channel],
        link: NodeLink,
        delivery: Delivery,
        settings: ChannelSettings,
        limits: UserLimits,
    ) -> None:
        self._registry = registry
        self._limits = limits
        self._link = link
        self._delivery = delivery
        self._settings = settings
        # Ours, to channels of other nodes, by request id.
        self._replies: PendingReplies[str] = PendingReplies(
            logger=logger, label="channels: answer from another node", level=logging.DEBUG
        )
        # Theirs, for channels of this node, by request id.
        self._serving: dict[str, asyncio.Task[None]] = {}

    @property
    def pending_count(self) -> int:
        """Requests to other nodes waiting for their answer."""
        return self._replies.pending_count

    @property
    def serving_count(self) -> int:
        """Requests of other nodes this node is serving."""
        return len(self._serving)

    async def send_and_wait(
        self, channel_id: str, fields: dict[str, Any], timeout: float | None = None
    ) -> Any:
        """See ``ChannelManager.send_and_wait``; ``fields`` are the question's
        ``ch/msg`` fields (``data``, and ``kind`` for a custom envelope)."""
        timeout = self._settings.request_timeout if timeout is None else check_timeout(timeout)
        user = current_user.get()
        if not self._limits.begin_wait(user, asyncio.get_running_loop().time()):
            raise TooManyWaits(
                f"user {user!r} has {self._limits.max_waits} send_and_wait calls "
                "waiting (max_user_waits)"
            )
        try:
            return await self._ask(channel_id, fields, timeout)
        finally:
            self._limits.end_wait(user)

    async def _ask(self, channel_id: str, fields: dict[str, Any], timeout: float) -> Any:
        channel = self._registry.get(channel_id)
        if channel is not None:
            return await self._ask_here(channel, fields, timeout)
        node = node_of(channel_id)
        if node is None or node == self._link.node_id:
            raise ChannelNotFound(f"no channel {channel_id!r}")
        return await self._ask_through(node, channel_id, fields, timeout)

    async def _ask_here(self, channel: Channel, fields: dict[str, Any], timeout: float) -> Any:
        if channel.closed:
            raise ChannelNotFound(f"channel {channel.id} is closed")
        rchan = secrets.token_urlsafe(_ID_BYTES)

        async def send() -> None:
            if not self._delivery.send(channel, "msg", fields | {"rchan": rchan}):
                raise ChannelDisconnected(f"channel {channel.id} disconnected")

        def timed_out() -> ReplyTimeout:
            return ReplyTimeout(f"no answer from channel {channel.id} within {timeout:g} s")

        return await channel.replies.request(rchan, send, timeout=timeout, on_timeout=timed_out)

    async def _ask_through(
        self, node: str, channel_id: str, fields: dict[str, Any], timeout: float
    ) -> Any:
        request_id = secrets.token_urlsafe(_ID_BYTES)
        subject = node_subject(node)
        nobody_there = False

        async def send() -> None:
            nonlocal nobody_there
            question = {
                "op": "req",
                "rid": request_id,
                "channel": channel_id,
                "msg": fields["data"],
                "timeout": timeout,
            } | remote_kind(fields)
            if not await self._link.publish(subject, question, wait=True):
                nobody_there = True
                raise ChannelNotFound(f"no channel {channel_id!r}: its node is gone")

        def timed_out() -> ReplyTimeout:
            return ReplyTimeout(f"no answer from channel {channel_id} within {timeout:g} s")

        def abandon() -> None:
            # Timed out or cancelled: the other node stops waiting too.
            if not nobody_there:
                self._link.spawn(
                    self._link.publish_quietly(subject, {"op": "cancel", "rid": request_id}),
                    "channels-cancel",
                )

        return await self._replies.request(
            request_id, send, timeout=timeout, on_timeout=timed_out, on_abandon=abandon
        )

    # -- what the other nodes send ---------------------------------------------------------

    def serve(self, payload: dict[str, Any]) -> None:
        """Another node's ``req``: ask our page, in the background, and answer."""
        request_id = str(payload["rid"])
        task = self._link.spawn(self._serve(payload), "channels-serve-request")
        self._serving[request_id] = task

    async def _serve(self, payload: dict[str, Any]) -> None:
        request_id = str(payload["rid"])
        origin = str(payload["o"])
        reply: dict[str, Any] = {"op": "rep", "rid": request_id}
        try:
            channel = self._registry.get(str(payload["channel"]))
            if channel is None:
                raise ChannelNotFound(f"no channel {payload['channel']!r}")
            timeout = min(float(payload["timeout"]), self._settings.max_request_timeout)
            data = await self._ask_here(channel, remote_fields(payload), timeout)
            reply.update(ok=True, data=data)
        except ChannelError as exc:
            reply.update(ok=False, error=describe_error(exc))
        except (TypeError, ValueError) as exc:
            # The message is too large for this node's limits.
            reply.update(ok=False, error={"type": "error", "message": str(exc)})
        finally:
            self._serving.pop(request_id, None)
        await self._link.publish_quietly(node_subject(origin), reply)

    def settle(self, payload: dict[str, Any]) -> None:
        """Another node's ``rep``: the answer to one of our requests."""
        request_id = str(payload["rid"])
        if not self._replies.expects(request_id):
            self._replies.ignore(request_id)  # a late answer: the request timed out
            return
        if payload.get("ok") is True:
            self._replies.resolve(request_id, payload.get("data"))
        else:
            self._replies.reject(request_id, rebuild_error(payload.get("error")))

    def cancel(self, request_id: str) -> None:
        """Another node's ``cancel``: it stopped waiting, so do we."""
        serving = self._serving.pop(request_id, None)
        if serving is not None:
            serving.cancel()

    # -- ending --------------------------------------------------------------------------------

    def backend_down(self) -> None:
        """The other nodes cannot be reached: fail our requests at once
        rather than at their timeout."""
        self._replies.fail_all(
            lambda: BackendUnavailable("lost the connection to the other nodes while waiting")
        )

    def close(self) -> None:
        """Stop serving the other nodes, and fail our requests."""
        for task in list(self._serving.values()):
            task.cancel()
        self._replies.fail_all(lambda: ChannelError("the channel manager is closed"))
