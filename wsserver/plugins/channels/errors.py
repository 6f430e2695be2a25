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

from typing import Any

from .backends import BackendUnavailable, ChannelError

__all__ = [
    "BackendUnavailable",
    "ChannelDisconnected",
    "ChannelError",
    "ChannelNotFound",
    "HandlerError",
    "ReplyError",
    "ReplyTimeout",
    "describe_error",
    "rebuild_error",
]


class ChannelNotFound(ChannelError):
    """No connection has this channel id (any more)."""


class ChannelDisconnected(ChannelError):
    """The channel's connection ended while waiting for its answer."""


class ReplyTimeout(ChannelError, TimeoutError):
    """The page did not answer within the timeout."""


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
