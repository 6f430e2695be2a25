"""``MessageDecoder``: decode each message an endpoint receives, or close.

An endpoint that takes one kind of message answers the others the same
way, with the close code RFC 6455 section 7.4.1 gives for it:

- a message of the wrong type (binary for a text endpoint, or the reverse):
  1003, "a type of data it cannot accept (e.g., an endpoint that
  understands only text data MAY send this if it receives a binary
  message)";
- a message its decode function refuses (``ValueError``: invalid JSON):
  1007, "data within a message that was not consistent with the type of
  the message";
- any other code a decode function names by raising ``MessageRefused``
  itself (1009 for a message over an application's own size limit).

``WebSocketView.dispatch`` receives this way, and so can any receive loop::

    decoder = MessageDecoder(json.loads, expect="text", invalid_reason="invalid JSON")
    while True:
        message = await websocket.receive()
        if isinstance(message, Disconnect):
            break
        try:
            data = decoder.decode(message)
        except MessageRefused as refused:
            await decoder.refuse(websocket, refused)
            break
        ...

``decode`` is a plain call and ``refuse`` runs once, so a loop written so
costs nothing per message over ``receive()`` alone; where one more
coroutine per message does not matter, ``await decoder.receive(websocket)``
does all of it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, Literal, TypeVar, cast, overload

from ..protocol import BinaryMessage, CloseCode, TextMessage
from ..protocol.frames import MAX_CLOSE_REASON
from .inbox import Disconnect
from .websocket import WebSocket

__all__ = ["MessageDecoder", "MessageRefused"]

T = TypeVar("T")

MessageType = Literal["text", "binary"]


def _fit_close_reason(reason: str) -> str:
    """``reason`` cut to what a Close frame holds, on a character boundary.

    RFC 6455 section 5.5: a control frame's payload is at most 125 bytes,
    two of which are the close code.
    """
    data = reason.encode("utf-8", "replace")  # a lone surrogate has no UTF-8 form
    return data[:MAX_CLOSE_REASON].decode("utf-8", "ignore")


class MessageRefused(Exception):
    """A message the endpoint cannot take: the connection closes with ``code``.

    A decode function raises it to choose the code; ``MessageDecoder``
    raises it for the wrong type (1003) and for a ``ValueError`` (1007).

    Attributes:
        code: the close code.
        reason: why, in full; ``refuse`` cuts it to fit a Close frame.
    """

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(code, reason)
        self.code = code
        self.reason = reason

    def __str__(self) -> str:
        return f"message refused with {self.code}" + (f": {self.reason}" if self.reason else "")


class MessageDecoder(Generic[T]):
    """The type of message an endpoint takes, and how it decodes them.

    Args:
        decode: called with each message's data (``str`` or ``bytes``);
            returns the decoded value.  A ``ValueError`` it raises refuses
            the message with 1007; ``MessageRefused`` with its own code.
            ``None`` passes the data as it is.
        expect: ``"text"`` or ``"binary"`` to refuse the other type with
            1003; ``None`` takes both.
        wrong_type_reason: the close reason for the wrong type (default
            ``expected text messages`` / ``expected binary messages``).
        invalid_reason: the close reason for a ``ValueError`` from
            ``decode`` (default: the error's message).
    """

    __slots__ = ("_decode", "_invalid_reason", "_takes_binary", "_takes_text", "_wrong_type")

    @overload
    def __init__(
        self: MessageDecoder[str | bytes],
        decode: None = None,
        *,
        expect: MessageType | None = None,
        wrong_type_reason: str | None = None,
        invalid_reason: str | None = None,
    ) -> None: ...

    @overload
    def __init__(
        self,
        decode: Callable[[Any], T],
        *,
        expect: MessageType | None = None,
        wrong_type_reason: str | None = None,
        invalid_reason: str | None = None,
    ) -> None: ...

    def __init__(
        self,
        decode: Callable[[Any], T] | None = None,
        *,
        expect: MessageType | None = None,
        wrong_type_reason: str | None = None,
        invalid_reason: str | None = None,
    ) -> None:
        if expect not in (None, "text", "binary"):
            raise ValueError('expect must be "text", "binary" or None')
        self._decode = decode
        self._takes_text = expect != "binary"
        self._takes_binary = expect != "text"
        self._wrong_type = wrong_type_reason or f"expected {expect} messages"
        self._invalid_reason = invalid_reason

    def decode(self, message: TextMessage | BinaryMessage) -> T:
        """The decoded data of ``message``.

        Raises:
            MessageRefused: the wrong type (1003), data ``decode`` refused
                (1007), or the code ``decode`` chose.
        """
        if not (self._takes_text if isinstance(message, TextMessage) else self._takes_binary):
            raise MessageRefused(CloseCode.UNSUPPORTED_DATA, self._wrong_type)
        decode = self._decode
        if decode is None:
            return cast(T, message.data)
        try:
            return decode(message.data)
        except ValueError as error:
            raise MessageRefused(
                CloseCode.INVALID_PAYLOAD_DATA, self._invalid_reason or str(error)
            ) from None

    async def refuse(self, websocket: WebSocket, refused: MessageRefused) -> Disconnect:
        """Close ``websocket`` for a refused message.

        The reason is cut to what a Close frame holds (123 bytes of UTF-8).

        Returns:
            The end to report, as though the peer had left: the refusal's
            code and the reason sent.
        """
        reason = _fit_close_reason(refused.reason)
        await websocket.close(refused.code, reason)
        return Disconnect(refused.code, reason)

    async def receive(self, websocket: WebSocket) -> T | Disconnect:
        """The next message, decoded; or how the connection ended.

        A refused message closes the connection (``refuse``) and returns
        its ``Disconnect``; the peer's own end is returned as ``receive()``
        gives it.
        """
        message = await websocket.receive()
        if isinstance(message, Disconnect):
            return message
        try:
            return self.decode(message)
        except MessageRefused as refused:
            return await self.refuse(websocket, refused)
