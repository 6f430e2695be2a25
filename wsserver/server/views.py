"""``WebSocketView``: a class per endpoint, as Starlette's WebSocketEndpoint.

The server creates one instance per connection and calls ``dispatch``::

    class Echo(WebSocketView):
        encoding = "text"

        async def on_receive(self, websocket, data):
            await websocket.send_text(data)

``on_connect`` accepts by default; override it to choose a subprotocol,
check credentials, or refuse with ``reject``.  ``encoding`` decides what
``on_receive`` gets: ``"text"`` (str), ``"bytes"``, ``"json"`` (decoded from
a text message), or ``None`` (the default) for str or bytes as they come.
A message of the wrong type closes the connection with 1003; invalid JSON
with 1007 (``MessageDecoder``, which any receive loop can use).  An
exception in a handler reaches the server, which closes the connection with
1011 and logs the traceback; ``WebSocketDisconnect`` from a handler (the
peer left) passes its own code to ``on_disconnect``.

Messages are handled one at a time, in order.  While the view waits for
one, the connection runs ``on_receive`` as soon as the message is parsed,
in its read callback, as the connection's task and in its context
(``WebSocket.handle_messages``, ``wsserver.server.dispatch``): a handler
that sends its reply and returns without suspending costs no task
wake-up, and its reply leaves in the same loop iteration, in one write
with the replies to the rest of the read.  A handler that suspends is
finished by the task, and the messages that arrive meanwhile wait for it.

Every hook returns ``None``.  A hook that returns a value is mistaken about
what the value does (``False`` does not refuse, a string is not sent): the
server answers 500 before the handshake is answered, or closes with 1011
after, and logs one line naming the hook and the value.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any, ClassVar, Literal, NoReturn

from ..protocol import BinaryMessage, CloseCode, TextMessage
from .decoding import MessageDecoder, MessageRefused
from .mistakes import ApplicationMistake, awaited
from .responses import PlainTextResponse
from .websocket import WebSocket, WebSocketDisconnect, WebSocketState

__all__ = ["WebSocketView"]


class WebSocketView:
    """Base class of class-based WebSocket endpoints."""

    encoding: ClassVar[Literal["text", "bytes", "json"] | None] = None

    def __init__(self, websocket: WebSocket) -> None:
        self.websocket = websocket

    async def dispatch(self) -> None:
        """Run the connection: connect, receive until disconnect, clean up."""
        websocket = self.websocket
        returned = await awaited(_HOOK, self.on_connect, self.on_connect(websocket))
        if returned is not None:
            raise ApplicationMistake(_HOOK, self.on_connect, returned, "None", _REFUSE_HINT)
        if websocket.application_state is not WebSocketState.CONNECTED:
            return  # refused, or closed at once
        close_code: int = CloseCode.NORMAL_CLOSURE
        failed = False
        try:
            try:
                ended = await websocket.handle_messages(_ViewHandler(self))
                close_code = ended.code
            except _Refused as refused:
                close_code = refused.code
        except WebSocketDisconnect as disconnect:
            # The peer left while a handler was receiving or sending: that
            # is its close code, not an internal error.
            close_code = disconnect.code
            raise
        except Exception:
            close_code = CloseCode.INTERNAL_ERROR
            failed = True
            raise
        finally:
            ending = self.on_disconnect(websocket, close_code)
            if failed:
                # An exception is on its way: its traceback is the one to
                # log, not replaced by a mistake found here.
                if inspect.isawaitable(ending):
                    await ending
            else:
                returned = await awaited(_HOOK, self.on_disconnect, ending)
                if returned is not None:
                    raise ApplicationMistake(_HOOK, self.on_disconnect, returned, "None")

    async def reject(self, status: int = 403, reason: str = "") -> None:
        """Refuse the handshake with an HTTP status and a plain-text body."""
        if not reason:
            try:
                reason = HTTPStatus(status).phrase
            except ValueError:  # a status Python has no name for, such as 499
                reason = f"HTTP {status}"
        await self.websocket.send_denial_response(
            PlainTextResponse(reason + "\n", status_code=status)
        )

    async def on_connect(self, websocket: WebSocket) -> None:
        """Called first; accepts the connection unless overridden."""
        await websocket.accept()

    async def on_receive(self, websocket: WebSocket, data: Any) -> None:
        """Called for each message, decoded as ``encoding`` says."""

    async def on_disconnect(self, websocket: WebSocket, close_code: int) -> None:
        """Called once at the end, with the close code."""


class _ViewHandler:
    """How a view handles each message (``WebSocket.handle_messages``).

    One small object per connection, not closures: an idle connection
    holds it for as long as it is open.
    """

    __slots__ = ("_decode", "_decoder", "_on_receive", "_websocket")

    def __init__(self, view: WebSocketView) -> None:
        self._websocket = view.websocket
        # Typed as returning a value: what it returns is checked.
        self._on_receive: Callable[[WebSocket, Any], Awaitable[object]] = view.on_receive
        decoder = _DECODERS.get(view.encoding, _DECODERS["json"])
        self._decoder = decoder
        self._decode = decoder.decode

    def start(self, message: TextMessage | BinaryMessage) -> Awaitable[object]:
        # One call per message, most often in the connection's read
        # callback (wsserver.server.dispatch).
        try:
            data = self._decode(message)
        except MessageRefused as refused:
            return _refuse(self._decoder, self._websocket, refused)
        return self._on_receive(self._websocket, data)

    def check(self, returned: object) -> None:
        raise ApplicationMistake(
            _HOOK, self._on_receive, returned, "None", "send replies with websocket.send_*()"
        )


class _Refused(Exception):
    """A message of the wrong type or invalid JSON was answered with a Close.

    Ends the receive loop from inside ``handle_messages`` (the refusal is a
    handler of its own); the view reports ``code`` to ``on_disconnect``.
    """

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


async def _refuse(
    decoder: MessageDecoder[Any], websocket: WebSocket, refused: MessageRefused
) -> NoReturn:
    raise _Refused((await decoder.refuse(websocket, refused)).code)


#: How each ``encoding`` takes messages (RFC 6455 section 7.4.1: the wrong
#: type closes with 1003, invalid JSON with 1007).
_DECODERS: dict[str | None, MessageDecoder[Any]] = {
    None: MessageDecoder(),
    "text": MessageDecoder(expect="text"),
    "bytes": MessageDecoder(expect="binary"),
    "json": MessageDecoder(json.loads, expect="text", invalid_reason="invalid JSON"),
}
_HOOK = "WebSocketView hook"
_REFUSE_HINT = "accept with websocket.accept(), refuse with self.reject()"
