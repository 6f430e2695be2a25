"""The message layer every browser-facing plugin shares.

Each message is one JSON text frame holding an object::

    {"p": "<plugin>", "k": "<kind>", ...fields}

``p`` names the plugin that owns the message (``"rt"`` for the runtime
itself, ``"js"`` for JS execution), ``k`` the kind of message within it, and
every other key is a field of that kind.  Handlers are registered by
``(plugin, kind)`` on both sides; see ``docs/plugins/js.md`` for every kind.

This module is pure: encoding, decoding, size limits, the handler registry
and the once-per-kind report of unknown kinds.  The I/O is in ``session``.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, TypeVar, overload

__all__ = [
    "DEFAULT_MAX_MESSAGE_SIZE",
    "PROTOCOL_VERSION",
    "RUNTIME_PLUGIN",
    "Envelope",
    "Handler",
    "HandlerRegistry",
    "MalformedMessage",
    "MessageTooLarge",
    "UnknownKindLog",
    "decode",
    "encode",
    "utf8_length",
    "validate_name",
]

logger = logging.getLogger("wsserver.plugins.runtime")

#: The wire protocol's version, sent in the ``init`` message.  The browser
#: runtime warns when it meets a version it was not written for.
PROTOCOL_VERSION = 1
#: The plugin name of the runtime's own messages (init, ping, pong).
RUNTIME_PLUGIN = "rt"
#: The server's default message limit (``ProtocolSettings.max_message_size``),
#: used when a session is not told the connection's own limit.
DEFAULT_MAX_MESSAGE_SIZE = 1 << 20

# Plugin and kind names: short, lowercase identifiers, so that they are cheap
# to compare, safe to log, and cannot collide with the "p"/"k" keys' meaning.
_NAME_RE = re.compile(r"[a-z][a-z0-9_.-]{0,31}")
_RESERVED_FIELDS = frozenset({"p", "k"})
# How much of a peer-supplied name goes into a log line.
_LOG_NAME_LIMIT = 64

_T = TypeVar("_T")

#: A message handler: called with the decoded message; may be a coroutine
#: function.  It runs inside the session's receive loop, so messages are
#: handled in order; long work belongs in a task of its own.
Handler = Callable[["Envelope"], Awaitable[None] | None]


class MalformedMessage(ValueError):
    """A message that is not a valid envelope, or a field of the wrong type.

    The session closes the connection with 1007 (invalid payload data) when
    the browser sends one; a handler raises it for a bad field.
    """


class MessageTooLarge(ValueError):
    """A message larger than the connection's limit.

    Attributes:
        size: the encoded size in bytes.
        limit: the limit in bytes.
    """

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"message of {size} bytes exceeds the limit of {limit} bytes")
        self.size = size
        self.limit = limit


def validate_name(name: object, what: str = "name") -> str:
    """Return ``name`` if it is a valid plugin or kind name.

    Names are 1 to 32 characters: a lowercase letter, then lowercase letters,
    digits, ``_``, ``.`` or ``-``.

    Raises:
        ValueError: ``name`` is not such a string.
    """
    if not isinstance(name, str) or _NAME_RE.fullmatch(name) is None:
        raise ValueError(f"invalid {what} {name!r}: expected [a-z][a-z0-9_.-]{{0,31}}")
    return name


def utf8_length(text: str) -> int:
    """The UTF-8 encoded length of ``text``.

    Raises:
        UnicodeEncodeError: ``text`` holds a lone surrogate, which no
            UTF-8 text (so no text frame) can carry.
    """
    # ASCII is one byte per character: no need to encode a large message.
    return len(text) if text.isascii() else len(text.encode("utf-8"))


@dataclass(frozen=True, slots=True)
class Envelope:
    """One message: its plugin, its kind and its other fields.

    Attributes:
        plugin: the ``p`` key.
        kind: the ``k`` key.
        fields: every other key, read-only.
    """

    plugin: str
    kind: str
    fields: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        if not isinstance(self.fields, MappingProxyType):
            # Frozen means frozen: a caller's dict must not change under us.
            object.__setattr__(self, "fields", MappingProxyType(dict(self.fields)))

    def __getitem__(self, name: str) -> Any:
        return self.fields[name]

    def __contains__(self, name: object) -> bool:
        return name in self.fields

    def __iter__(self) -> Iterator[str]:
        return iter(self.fields)

    def get(self, name: str, default: Any = None) -> Any:
        """A field's value, or ``default`` when absent."""
        return self.fields.get(name, default)

    @overload
    def require(self, name: str, expected: type[_T]) -> _T: ...

    @overload
    def require(self, name: str, expected: tuple[type[_T], ...]) -> _T: ...

    def require(self, name: str, expected: type[_T] | tuple[type[_T], ...]) -> _T:
        """A field that must be present and of type ``expected``.

        ``bool`` is not accepted where ``int`` or ``float`` is expected
        (JSON's ``true`` is not a number), and an ``int`` is accepted where
        ``float`` is (JSON does not tell ``1`` from ``1.0``).

        Raises:
            MalformedMessage: the field is missing or of another type.
        """
        if name not in self.fields:
            raise MalformedMessage(f"{self.plugin}/{self.kind}: missing field {name!r}")
        value = self.fields[name]
        types = expected if isinstance(expected, tuple) else (expected,)
        if _is_instance(value, types):
            return value  # type: ignore[no-any-return]
        wanted = " or ".join(t.__name__ for t in types)
        raise MalformedMessage(
            f"{self.plugin}/{self.kind}: field {name!r} must be {wanted},"
            f" not {type(value).__name__}"
        )

    def to_dict(self) -> dict[str, Any]:
        """The message as the JSON object sent on the wire."""
        return {"p": self.plugin, "k": self.kind, **self.fields}

    def encode(self, *, limit: int | None = None) -> str:
        """The JSON text of this message; see ``encode``."""
        return encode(self.plugin, self.kind, self.fields, limit=limit)


def _is_instance(value: object, types: tuple[type[Any], ...]) -> bool:
    if isinstance(value, bool):
        return bool in types
    if isinstance(value, int) and float in types:
        return True
    return isinstance(value, types)


def encode(
    plugin: str, kind: str, fields: Mapping[str, Any] | None = None, *, limit: int | None = None
) -> str:
    """Encode a message as compact JSON text.

    Args:
        plugin: the plugin name (``validate_name``).
        kind: the kind name (``validate_name``).
        fields: the other keys; ``p`` and ``k`` are reserved.
        limit: the largest encoded size in bytes, or ``None``.

    Raises:
        ValueError: a bad name, a reserved field, or a value JSON cannot hold
            (``NaN`` and infinities included: the browser's ``JSON.parse``
            refuses them).
        TypeError: a value ``json.dumps`` cannot encode.
        MessageTooLarge: the text is longer than ``limit`` bytes.
    """
    validate_name(plugin, "plugin")
    validate_name(kind, "kind")
    body: dict[str, Any] = {"p": plugin, "k": kind}
    if fields:
        clash = _RESERVED_FIELDS.intersection(fields)
        if clash:
            raise ValueError(f"reserved field names: {sorted(clash)}")
        body.update(fields)
    text = json.dumps(body, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    if limit is not None:
        size = utf8_length(text)
        if size > limit:
            raise MessageTooLarge(size, limit)
    return text


def _refuse_constant(name: str) -> Any:
    raise MalformedMessage(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    # ``1e400`` is valid JSON that Python reads as infinity, which ``encode``
    # (and the browser's ``JSON.stringify``, as null) cannot give back: a
    # handler echoing it would fail far from the cause.  Refused here, with
    # NaN and Infinity (found by fuzz/fuzz_runtime.py).
    value = float(text)
    if not math.isfinite(value):
        raise MalformedMessage(f"number out of range: {text[:40]}")
    return value


# A JSON escape of a UTF-16 surrogate (``\\ud800``-``\\udfff``): the only
# way a lone surrogate, which no UTF-8 text holds, gets into a decoded string.
_SURROGATE_ESCAPE_RE = re.compile(r"\\u[dD][89a-fA-F]")
# What is left once the parser has joined the valid pairs.
_LONE_SURROGATE_RE = re.compile("[\ud800-\udfff]")


def _well_formed(value: Any) -> Any:
    """``value`` with every lone surrogate in its strings replaced by U+FFFD."""
    if isinstance(value, str):
        return _LONE_SURROGATE_RE.sub("\ufffd", value)
    if isinstance(value, list):
        return [_well_formed(item) for item in value]
    if isinstance(value, dict):
        return {_well_formed(name): _well_formed(item) for name, item in value.items()}
    return value


def decode(text: str, *, limit: int | None = None) -> Envelope:
    """Decode one message received from the browser.

    Args:
        text: the text frame's content.
        limit: the largest size in bytes, or ``None``.

    A lone surrogate escaped in a string (``"\\ud800"``, which a browser's
    ``JSON.stringify`` writes for a broken UTF-16 string) is replaced by
    U+FFFD, as the browser's own UTF-8 encoder would have done had the
    character been sent unescaped: every string of a decoded message can
    then be encoded as UTF-8 again (its size counted, sent back, logged).

    Raises:
        MessageTooLarge: ``text`` is longer than ``limit`` bytes.
        MalformedMessage: not JSON (``NaN``, ``Infinity``, numbers too
            large for a float such as ``1e400``, and nesting too deep for
            the parser included), not an object, or without string
            ``p`` and ``k`` keys.
    """
    if limit is not None:
        size = utf8_length(text)
        if size > limit:
            raise MessageTooLarge(size, limit)
    try:
        data = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
        if _SURROGATE_ESCAPE_RE.search(text) is not None:
            # Found by fuzz/fuzz_chunks.py: a chunk's data holding one made
            # the reassembler's size count raise UnicodeEncodeError.
            data = _well_formed(data)
    except MalformedMessage:
        raise
    except RecursionError:
        # "[[[[..." a few thousand deep exhausts the parser's stack.
        raise MalformedMessage("JSON nested too deeply") from None
    except ValueError as exc:
        raise MalformedMessage(f"invalid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise MalformedMessage(f"expected a JSON object, got {type(data).__name__}")
    plugin = data.pop("p", None)
    kind = data.pop("k", None)
    if not isinstance(plugin, str) or not isinstance(kind, str) or not plugin or not kind:
        raise MalformedMessage('a message needs string "p" (plugin) and "k" (kind) keys')
    return Envelope(plugin, kind, MappingProxyType(data))


class HandlerRegistry:
    """Handlers by ``(plugin, kind)``: at most one per pair."""

    def __init__(self) -> None:
        self._handlers: dict[tuple[str, str], Handler] = {}

    def register(self, plugin: str, kind: str, handler: Handler, *, replace: bool = False) -> None:
        """Register ``handler`` for messages of ``kind`` from ``plugin``.

        Args:
            plugin: the plugin name.
            kind: the kind name.
            handler: called with each such message.
            replace: replace an existing handler instead of failing.

        Raises:
            ValueError: a bad name, or a handler is already registered and
                ``replace`` is false (two plugins claiming one kind is a bug
                that should not be decided by import order).
        """
        key = (validate_name(plugin, "plugin"), validate_name(kind, "kind"))
        if key in self._handlers and not replace:
            raise ValueError(f"a handler for {plugin}/{kind} is already registered")
        self._handlers[key] = handler

    def unregister(self, plugin: str, kind: str) -> Handler | None:
        """Remove and return the handler of ``(plugin, kind)``, if any."""
        return self._handlers.pop((plugin, kind), None)

    def lookup(self, plugin: str, kind: str) -> Handler | None:
        """The handler of ``(plugin, kind)``, or ``None``."""
        return self._handlers.get((plugin, kind))

    def __contains__(self, key: object) -> bool:
        return key in self._handlers

    def __len__(self) -> int:
        return len(self._handlers)

    def kinds(self) -> list[tuple[str, str]]:
        """Every registered ``(plugin, kind)``, sorted."""
        return sorted(self._handlers)


class UnknownKindLog:
    """Logs each unknown ``(plugin, kind)`` once per connection.

    A page that sends an unknown kind usually sends it again and again (a
    plugin missing on the server); one line per kind says what is wrong
    without flooding the log.  The set of kinds seen is bounded, since the
    names come from the peer.

    Args:
        connection_id: the connection's id, for the log lines.
        limit: how many distinct kinds to remember; beyond it one more line
            says that further unknown kinds are not logged.
    """

    def __init__(self, connection_id: int | str, *, limit: int = 32) -> None:
        self.connection_id = connection_id
        self.limit = limit
        self._seen: set[tuple[str, str]] = set()
        self._overflowed = False
        #: Unknown messages received, all kinds together.
        self.count = 0

    def report(self, plugin: str, kind: str) -> bool:
        """Count one unknown message; log it if its kind is new.

        Returns:
            Whether a line was logged.
        """
        self.count += 1
        key = (plugin[:_LOG_NAME_LIMIT], kind[:_LOG_NAME_LIMIT])
        if key in self._seen:
            return False
        if len(self._seen) >= self.limit:
            if not self._overflowed:
                self._overflowed = True
                logger.warning(
                    "conn %s: more than %d unknown message kinds; no longer logging them",
                    self.connection_id,
                    self.limit,
                )
                return True
            return False
        self._seen.add(key)
        logger.warning(
            "conn %s: unknown message kind %r/%r ignored (logged once per kind)",
            self.connection_id,
            key[0],
            key[1],
        )
        return True
