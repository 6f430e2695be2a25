"""One WebSocket connection's ASGI cycle, on the native ``WebSocket``.

Every event becomes a call on the ``WebSocket`` object a native endpoint
holds, so both faces share the same handshake, flow control, limits and
closing rules:

- ``receive()``: ``websocket.connect`` first; after ``websocket.accept``,
  ``websocket.receive`` (``text`` or ``bytes``) per message, from the same
  bounded inbox (``max_queue``), and ``websocket.disconnect`` (``code``,
  ``reason``) when the peer has gone, again on every later call;
- ``send()``: ``websocket.accept`` (``subprotocol``, ``headers``);
  ``websocket.send`` (``text`` or ``bytes``; ``wsserver.compress``, see
  ``scope.COMPRESS_KEY``), which waits while the transport is backed up as
  a native send does; ``websocket.close`` (``code``, ``reason``; before the
  handshake is accepted it is a 403 denial); ``websocket.http.response.start``
  and ``.body`` (the denial-response extension: any status, headers and
  body).

An event out of order raises ``RuntimeError`` naming it and the state.  A
send to a peer that has gone raises ``ClientDisconnected`` (an
``OSError``, as ASGI 2.4 asks).  What the application leaves unanswered
the connection answers as for a native endpoint: 403 for a handshake
neither accepted nor denied, 1000 for a connection left open, 500 or 1011
for an exception.
"""

from __future__ import annotations

import enum
from typing import Any

from ...protocol import BinaryMessage, CloseCode, TextMessage
from ..responses import Response
from ..websocket import WebSocket, WebSocketDisconnect
from .http import ClientDisconnected, decode_headers
from .scope import COMPRESS_KEY

__all__ = ["WebSocketCycle"]

Message = dict[str, Any]


class _Stage(enum.Enum):
    CONNECTING = "before the handshake was answered"
    RESPONDING = "after websocket.http.response.start"
    CONNECTED = "after websocket.accept"
    CLOSED = "after the application closed the connection or denied the handshake"


class WebSocketCycle:
    """``receive`` and ``send`` for one WebSocket connection."""

    def __init__(self, websocket: WebSocket) -> None:
        self._websocket = websocket
        self._stage = _Stage.CONNECTING
        self._connect_sent = False
        self._accepted = False
        self._disconnect: Message | None = None
        self._status = 403
        self._headers: list[tuple[str, str]] = []
        self._chunks: list[bytes] = []

    async def receive(self) -> Message:
        """The next event for the application.

        Raises:
            RuntimeError: a second ``receive()`` before the handshake was
                answered (nothing can arrive before it), or one while
                another task is receiving.
        """
        disconnect = self._disconnect
        if disconnect is not None:
            return disconnect
        if self._accepted:
            # Also after the application's own websocket.close: the peer's
            # answer to it ends the connection with a disconnect.
            message = await self._websocket.receive()
            if isinstance(message, TextMessage):
                return {"type": "websocket.receive", "text": message.data}
            if isinstance(message, BinaryMessage):
                return {"type": "websocket.receive", "bytes": message.data}
            # Disconnect: the peer closed (its code), or the transport ended (1006).
            self._disconnect = disconnect = {
                "type": "websocket.disconnect",
                "code": message.code,
                "reason": message.reason,
            }
            return disconnect
        if not self._connect_sent:
            self._connect_sent = True
            return {"type": "websocket.connect"}
        stage = self._stage
        if stage is _Stage.CLOSED:
            # The handshake was denied: the client is gone without a
            # WebSocket connection (ASGI: 1006 for a closed handshake).
            self._disconnect = disconnect = {
                "type": "websocket.disconnect",
                "code": CloseCode.ABNORMAL_CLOSURE,
                "reason": "",
            }
            return disconnect
        raise RuntimeError(
            f"receive() {stage.value}: send websocket.accept (or refuse the handshake) first"
        )

    async def send(self, message: Message) -> None:
        """Carry out the application's next event.

        Raises:
            RuntimeError: an event out of order, or a ``websocket.send``
                with neither or both of ``text`` and ``bytes``.
            ClientDisconnected: the peer has gone.
            TypeError, ValueError: a field of the wrong type or value (an
                invalid close code or denial status).
        """
        kind = message.get("type")
        stage = self._stage
        websocket = self._websocket
        if stage is _Stage.CONNECTED:
            if kind == "websocket.send":
                text = message.get("text")
                data = message.get("bytes")
                compress = message.get(COMPRESS_KEY)
                try:
                    if text is not None and data is None:
                        await websocket.send_text(text, compress=compress)
                    elif data is not None and text is None:
                        await websocket.send_bytes(data, compress=compress)
                    else:
                        raise RuntimeError("websocket.send: give exactly one of text and bytes")
                except WebSocketDisconnect as gone:
                    raise ClientDisconnected(f"websocket.send: the peer left ({gone})") from None
                return
            if kind == "websocket.close":
                code = message.get("code")
                await websocket.close(
                    CloseCode.NORMAL_CLOSURE if code is None else code,
                    message.get("reason") or "",
                )
                self._stage = _Stage.CLOSED
                return
        elif stage is _Stage.CONNECTING:
            if kind == "websocket.accept":
                headers = decode_headers(message.get("headers") or (), "websocket.accept")
                await websocket.accept(message.get("subprotocol"), headers)
                self._stage = _Stage.CONNECTED
                self._accepted = True
                return
            if kind == "websocket.close":
                # ASGI: closing before accepting denies the handshake with 403.
                await websocket.close()
                self._stage = _Stage.CLOSED
                return
            if kind == "websocket.http.response.start":
                status = message.get("status")
                if not isinstance(status, int) or isinstance(status, bool):
                    raise TypeError(
                        f"websocket.http.response.start: status must be an int, not {status!r}"
                    )
                self._status = status
                self._headers = decode_headers(
                    message.get("headers") or (), "websocket.http.response.start"
                )
                self._stage = _Stage.RESPONDING
                return
        elif stage is _Stage.RESPONDING and kind == "websocket.http.response.body":
            chunk = message.get("body", b"")
            if not isinstance(chunk, bytes | bytearray | memoryview):
                raise TypeError(
                    f"websocket.http.response.body: body must be bytes, not {type(chunk)}"
                )
            # A denial's body is small and the application's own: no limit
            # beyond the one on HTTP responses would buy anything here.
            self._chunks.append(bytes(chunk))
            if not message.get("more_body", False):
                response = Response(b"".join(self._chunks), self._status, self._headers)
                self._chunks = []
                await websocket.send_denial_response(response)
                self._stage = _Stage.CLOSED
            return
        raise RuntimeError(f"unexpected ASGI message {kind!r} {stage.value}")
