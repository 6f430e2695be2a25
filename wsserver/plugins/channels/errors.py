"""The channel manager's errors, and how they travel between nodes.

Every failure of a channel operation is a ``ChannelError`` (defined with the
backends, whose outage is one: ``BackendUnavailable``).  ``HandlerError`` is
not one: an application raises it in a custom handler to answer the page
with an error message.

A ``send_and_wait`` served by another node fails there; the node describes
the error as a small dict (``describe_error``) and the asking node raises
the same class again (``rebuild_error``)::

    {"type": "timeout", "message": "no answer from channel ... within 5 s"}
    {"type": "reply", "name": "RangeError", "message": "unknown op"}
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .backends import BackendUnavailable, ChannelError

if TYPE_CHECKING:
    from .history import Position

__all__ = [
    "BackendUnavailable",
    "ChannelDisconnected",
    "ChannelError",
    "ChannelNotFound",
    "HandlerError",
    "HistoryLost",
    "ReplyError",
    "ReplyTimeout",
    "TooManyWaits",
    "describe_error",
    "rebuild_error",
]


class ChannelNotFound(ChannelError):
    """No connection has this channel id (any more)."""


class ChannelDisconnected(ChannelError):
    """The channel's connection ended while waiting for its answer."""


class ReplyTimeout(ChannelError, TimeoutError):
    """The page did not answer within the timeout."""


class TooManyWaits(ChannelError):
    """The user on whose behalf ``send_and_wait`` was called already has
    ``max_user_waits`` calls waiting on this node (see ``limits``); raised at
    once, before anything is sent."""


class ReplyError(ChannelError):
    """The page's request handler failed (or there was none).

    Attributes:
        name: the JavaScript error's name (``"Error"``, ``"NoHandler"``...).
        message: its message.
    """

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"{name}: {message}")
        self.name = name
        self.message = message


class HistoryLost(ChannelError):
    """History does not cover what a subscriber missed.

    The subscriber goes on receiving from ``position`` on; what came between
    its old position and this one is gone: reload your state.

    Attributes:
        topic: the topic.
        position: where the subscriber continues from (the current one).
        reason: ``"epoch"`` (the history was lost: another epoch),
            ``"trimmed"`` (the missed messages were dropped by
            ``history_size`` or ``history_ttl``), ``"overflow"`` (a Python
            listener did not keep up with its queue).
    """

    def __init__(self, topic: str, position: Position | None, reason: str) -> None:
        super().__init__(f"history of topic {topic!r} lost ({reason}); continuing from {position}")
        self.topic = topic
        self.position = position
        self.reason = reason


class HandlerError(Exception):
    """Raise it in a custom handler to answer the page with an error message.

    The message is sent to the page as is (``{"name": "HandlerError",
    "message": ...}``); any other exception is logged and the page gets
    ``"internal error"``, so that server details do not leak.
    """


# Error descriptions between nodes: type tag -> exception class.
_ERROR_TYPES: dict[str, type[ChannelError]] = {
    "notfound": ChannelNotFound,
    "disconnected": ChannelDisconnected,
    "timeout": ReplyTimeout,
    "unavailable": BackendUnavailable,
}


def describe_error(exc: ChannelError) -> dict[str, Any]:
    """``exc`` as JSON-ready data for another node (``rebuild_error`` reads it)."""
    if isinstance(exc, ReplyError):
        return {"type": "reply", "name": exc.name, "message": exc.message}
    for tag, cls in _ERROR_TYPES.items():
        if isinstance(exc, cls):
            return {"type": tag, "message": str(exc)}
    return {"type": "error", "message": str(exc)}


def rebuild_error(error: object) -> ChannelError:
    """The exception another node described; a plain ``ChannelError`` for
    a type this node does not know, or for data that is no description."""
    if not isinstance(error, dict):
        return ChannelError("the other node sent a malformed error")
    message = str(error.get("message", ""))
    tag = error.get("type")
    if tag == "reply":
        return ReplyError(str(error.get("name", "Error")), message)
    cls = _ERROR_TYPES.get(str(tag), ChannelError)
    return cls(message)
