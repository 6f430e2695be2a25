"""Typed custom envelopes: what ``custom=True`` sends, as Dara's ``CustomServerMessage``.

The manager's sending methods (``send_message``, ``send_message_to_user``,
``broadcast``, ``send_and_wait``) take ``custom=``, as Dara's
``WebsocketManager`` does:

- ``custom=False`` (the default): ``message`` is the data, any JSON value,
  and the page's ``on(fn)`` listeners get it (``ch/msg`` with ``data``).
- ``custom=True``: ``message`` is a typed envelope, a ``CustomServerMessage``
  ``(kind, data)``, and the page's ``onCustom(kind, fn)`` handlers get
  ``data`` (``ch/msg`` with ``kind`` and ``data``); ``on(fn)`` listeners do
  not.  Two loose forms are accepted too, as Dara's ``_construct_message``
  accepts them: the payload ``{"kind": ..., "data": ...}``, and a serialised
  envelope ``{"type": "custom", "message": {"kind": ..., "data": ...}}``,
  which is unwrapped, never wrapped a second time.

The flag must match the envelope: a ``CustomServerMessage`` sent with
``custom=False``, or anything but the three forms above with
``custom=True``, raises ``TypeError`` before anything is sent (Dara's rule:
a typed envelope and the flag disagree is a bug, not a message).  Kinds
follow the custom handlers' rule, ``[a-z][a-z0-9_.-]{0,31}``.

Between nodes the kind travels beside the data (``"kind"`` in the ``send``,
``user``, ``bcast`` and ``req`` payloads), checked again on arrival.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..runtime.messages import validate_name

__all__ = [
    "CustomServerMessage",
    "message_fields",
    "remote_compress",
    "remote_fields",
    "remote_kind",
]


@dataclass(frozen=True, slots=True)
class CustomServerMessage:
    """A custom message for the page's ``onCustom(kind, fn)`` handlers.

    Attributes:
        kind: what it is, ``[a-z][a-z0-9_.-]{0,31}``.
        data: any JSON-serialisable value.

    Raises:
        ValueError: an invalid kind.
    """

    kind: str
    data: Any = None

    def __post_init__(self) -> None:
        validate_name(self.kind, "custom message kind")


def _custom(message: Any) -> CustomServerMessage:
    if isinstance(message, CustomServerMessage):
        return message
    if isinstance(message, dict):
        # Dara's serialised CustomServerMessage: unwrapped once.
        if message.get("type") == "custom" and isinstance(message.get("message"), dict):
            message = message["message"]
        if isinstance(message.get("kind"), str) and set(message) <= {"kind", "data"}:
            return CustomServerMessage(message["kind"], message.get("data"))
    raise TypeError(
        "custom=True sends a CustomServerMessage(kind, data), {'kind': ..., 'data': ...} "
        f"or {{'type': 'custom', 'message': {{...}}}}, not {type(message).__name__}"
    )


def message_fields(message: Any, custom: bool) -> dict[str, Any]:
    """The ``ch/msg`` fields of ``message``: ``{"data"}``, plus ``"kind"`` when custom.

    Raises:
        TypeError: the flag and the envelope disagree (see the module).
        ValueError: an invalid kind.
    """
    if not custom:
        if isinstance(message, CustomServerMessage):
            raise TypeError(f"a CustomServerMessage ({message.kind!r}) is sent with custom=True")
        return {"data": message}
    envelope = _custom(message)
    return {"data": envelope.data, "kind": envelope.kind}


def remote_fields(payload: dict[str, Any]) -> dict[str, Any]:
    """The ``ch/msg`` fields of another node's payload (``msg``, and ``kind`` if custom).

    Raises:
        ValueError: a kind that is not a valid name.
    """
    fields = {"data": payload.get("msg")}
    kind = payload.get("kind")
    if kind is not None:
        fields["kind"] = validate_name(kind, "custom message kind")
    return fields


def remote_kind(fields: dict[str, Any], compress: bool | None = None) -> dict[str, Any]:
    """What a payload to another node carries besides ``msg``: ``kind`` for a
    custom envelope, ``z`` for a ``compress`` choice other than the default."""
    extra: dict[str, Any] = {"kind": fields["kind"]} if "kind" in fields else {}
    if compress is not None:
        extra["z"] = compress
    return extra


def remote_compress(payload: dict[str, Any]) -> bool | None:
    """The ``compress`` choice another node's payload carries (``None``: the default)."""
    value = payload.get("z")
    return value if isinstance(value, bool) else None
