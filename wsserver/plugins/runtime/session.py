"""``Session``: the runtime's side of one browser connection.

A session wraps an accepted ``WebSocket``.  It sends the ``init`` message
(the session id, the message size limit and the heartbeat settings the
browser runtime should use), then receives until the peer leaves: each text
frame is decoded as an envelope (``messages``) and handed to the handler
registered for its ``(plugin, kind)``.  It answers the runtime's
application-level ``ping`` itself, since browsers neither show WebSocket
pings to pages nor let them send any.

What the browser sends wrong ends the connection with the matching close
code: a binary frame 1003, a message over the limit 1009, invalid JSON or a
field of the wrong type 1007.  An unknown ``(plugin, kind)`` is only logged,
once per kind.

Plugins keep per-connection objects in ``Session.plugins`` and register
close callbacks, which run synchronously the moment the session learns that
the connection is gone, so that nothing waits on a dead connection.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import secrets
from collections.abc import Callable
from typing import Any, overload

from ...protocol.codes import CloseCode
from ...server import (
    Disconnect,
    MessageDecoder,
    MessageRefused,
    WebSocket,
    WebSocketDisconnect,
    WebSocketState,
)
from .messages import (
    PROTOCOL_VERSION,
    RUNTIME_PLUGIN,
    Envelope,
    Handler,
    HandlerRegistry,
    MalformedMessage,
    MessageTooLarge,
    UnknownKindLog,
    decode,
    encode,
)

__all__ = ["CloseCallback", "Session", "SessionClosed"]

logger = logging.getLogger("wsserver.plugins.runtime")

#: Called once, synchronously, when the session's connection is gone.
CloseCallback = Callable[["Session"], None]

# RFC 6455 section 5.5: a control frame's payload is at most 125 bytes, two
# of which are the close code.
_MAX_REASON_BYTES = 123


def _close_reason(text: str) -> str:
    """``text`` cut to fit a Close frame, on a character boundary."""
    data = text.encode("utf-8")
    if len(data) <= _MAX_REASON_BYTES:
        return text
    return data[:_MAX_REASON_BYTES].decode("utf-8", "ignore")


class SessionClosed(ConnectionError):
    """The session's connection has ended (or is ending): nothing can be sent."""


class Session:
    """One browser runtime connected over one ``WebSocket``.

    Args:
        websocket: an accepted connection.
        max_message_size: the largest message, in bytes, in either
            direction; the browser learns it from ``init``.  ``None`` (the
            default) takes the connection's own limit
            (``WebSocket.max_message_size``); a larger value is lowered to it,
            since the server would fail bigger messages with 1009 anyway.
        ping_interval: seconds between the browser's application-level
            pings; ``None`` turns them off.
        ping_timeout: seconds the browser waits for each pong before it
            drops the connection and reconnects.

    Attributes:
        websocket: the connection.
        id: a random id for this session, sent to the browser in ``init``.
        connection_id: the server's id of the connection, as in its logs.
        handlers: the message handlers by ``(plugin, kind)``.
        plugins: per-connection objects of plugins, by plugin name (the JS
            bridge keeps itself under ``"js"``).
        unknown: the once-per-kind log of unknown messages (``count`` says
            how many arrived).
        close_code: how the connection ended, once it has.
    """

    def __init__(
        self,
        websocket: WebSocket,
        *,
        max_message_size: int | None = None,
        ping_interval: float | None = 15.0,
        ping_timeout: float = 10.0,
    ) -> None:
        limit = websocket.max_message_size
        max_message_size = limit if max_message_size is None else min(max_message_size, limit)
        if max_message_size < 1:
            raise ValueError("max_message_size must be at least 1")
        # "not x > 0" rather than "x <= 0": NaN is refused too.
        if ping_interval is not None and not ping_interval > 0:
            raise ValueError("ping_interval must be positive (or None)")
        if not ping_timeout > 0:
            raise ValueError("ping_timeout must be positive")
        self.websocket = websocket
        self.id = secrets.token_urlsafe(12)
        self.connection_id = websocket.connection_id
        self.max_message_size = max_message_size
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.handlers = HandlerRegistry()
        self.plugins: dict[str, Any] = {}
        self.unknown = UnknownKindLog(self.connection_id)
        self.close_code: int | None = None
        self.close_reason = ""
        self._closed = False
        self._init_sent = False
        self._running = False
        self._close_callbacks: list[CloseCallback] = []
        # The server's decode-or-close rule: text only (1003), then the
        # envelope (1007 when malformed, 1009 when over the limit).
        self._decoder = MessageDecoder(
            self._decode_envelope, expect="text", wrong_type_reason="expected JSON text messages"
        )
        self.handlers.register(RUNTIME_PLUGIN, "ping", self._answer_ping)

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<Session {self.id} conn={self.connection_id} {state}>"

    @property
    def closed(self) -> bool:
        """Whether the connection has ended (or the session began closing it)."""
        return self._closed

    # -- handlers and callbacks ------------------------------------------

    @overload
    def on(
        self, plugin: str, kind: str, handler: None = None, *, replace: bool = False
    ) -> Callable[[Handler], Handler]: ...

    @overload
    def on(self, plugin: str, kind: str, handler: Handler, *, replace: bool = False) -> Handler: ...

    def on(
        self, plugin: str, kind: str, handler: Handler | None = None, *, replace: bool = False
    ) -> Handler | Callable[[Handler], Handler]:
        """Register a handler for ``(plugin, kind)``; usable as a decorator.

        Raises:
            ValueError: a bad name, or a handler is already registered and
                ``replace`` is false.
        """
        if handler is not None:
            self.handlers.register(plugin, kind, handler, replace=replace)
            return handler

        def decorator(function: Handler) -> Handler:
            self.handlers.register(plugin, kind, function, replace=replace)
            return function

        return decorator

    def add_close_callback(self, callback: CloseCallback) -> None:
        """Call ``callback(session)`` once when the connection is gone.

        If it is gone already, the callback runs at once.
        """
        if self._closed:
            self._run_callback(callback)
        else:
            self._close_callbacks.append(callback)

    def remove_close_callback(self, callback: CloseCallback) -> None:
        """Forget a callback given to ``add_close_callback`` (if still pending)."""
        with contextlib.suppress(ValueError):
            self._close_callbacks.remove(callback)

    # -- sending -----------------------------------------------------------

    async def send(
        self,
        plugin: str,
        kind: str,
        /,
        *,
        compress: bool | None = None,
        compress_min_size: int | None = None,
        **fields: Any,
    ) -> None:
        """Send one message to the browser.

        Args:
            plugin, kind: the message's address.
            compress: as ``WebSocket.send_text`` (``None``: the server's
                rule, by size; ``False``: not compressed; ``True``:
                compressed), when permessage-deflate was agreed.
            compress_min_size: if given, overrides ``compress``: compressed
                when the encoded message is at least this many bytes, sent
                as is below (the caller's idea of "small").
            **fields: the message's fields (``compress`` and
                ``compress_min_size`` are not field names).

        Raises:
            ValueError, TypeError: see ``messages.encode``.
            MessageTooLarge: the message exceeds ``max_message_size``.
            SessionClosed: the connection has ended.
        """
        text = encode(plugin, kind, fields, limit=self.max_message_size)
        if compress_min_size is not None:
            # Characters, not bytes: a lower bound, good enough for a choice.
            compress = len(text) >= compress_min_size
        await self._send_text(text, compress)

    async def _send_text(self, text: str, compress: bool | None = None) -> None:
        if self._closed:
            raise SessionClosed(f"session {self.id} is closed")
        websocket = self.websocket
        try:
            await websocket.send_text(text, compress=compress)
        except WebSocketDisconnect as exc:
            raise SessionClosed(f"session {self.id}: {exc}") from exc
        except RuntimeError as exc:
            # "send after close()": someone closed the WebSocket directly.
            if websocket.application_state is WebSocketState.DISCONNECTED:
                raise SessionClosed(f"session {self.id}: {exc}") from exc
            raise

    async def send_init(self) -> None:
        """Send the ``init`` message, once (``run`` sends it if not done yet).

        Raises:
            SessionClosed: the connection has ended.
        """
        if self._init_sent:
            return
        self._init_sent = True
        fields = {
            "v": PROTOCOL_VERSION,
            "sid": self.id,
            "max_message_size": self.max_message_size,
            "ping_interval_ms": None if self.ping_interval is None else _ms(self.ping_interval),
            "ping_timeout_ms": _ms(self.ping_timeout),
        }
        # Not held to max_message_size: without it the browser knows no
        # limit at all, and its size does not depend on the peer.
        await self._send_text(encode(RUNTIME_PLUGIN, "init", fields))

    # -- receiving -------------------------------------------------------

    def _decode_envelope(self, text: str) -> Envelope:
        try:
            return decode(text, limit=self.max_message_size)
        except MessageTooLarge as exc:  # a ValueError, but 1009, not 1007
            raise MessageRefused(CloseCode.MESSAGE_TOO_BIG, str(exc)) from None

    async def run(self) -> int:
        """Receive and dispatch until the connection ends.

        Sends ``init`` first if ``send_init`` was not called.  When the
        connection ends (or the session closes it), the close callbacks run
        at once.

        Returns:
            The close code.

        Raises:
            RuntimeError: ``run`` called twice.
            Exception: whatever a handler raised (other than
                ``MalformedMessage``); the session is finished first, with
                ``close_code`` 1011, as the server then fails the connection.
        """
        if self._running:
            raise RuntimeError("Session.run() called twice")
        self._running = True
        websocket = self.websocket
        code: int = CloseCode.ABNORMAL_CLOSURE
        reason = ""
        try:
            with contextlib.suppress(SessionClosed):
                await self.send_init()  # if gone, receive() reports how it ended
            while True:
                message = await websocket.receive()
                if isinstance(message, Disconnect):
                    code, reason = message.code, message.reason
                    break
                if self._closed:
                    continue  # closing: drain until the peer's Close
                try:
                    await self.handle(self._decoder.decode(message))
                except MessageRefused as refused:
                    code, reason = refused.code, refused.reason
                except MessageTooLarge as exc:  # raised by a handler
                    code, reason = CloseCode.MESSAGE_TOO_BIG, str(exc)
                except MalformedMessage as exc:  # raised by a handler
                    code, reason = CloseCode.INVALID_PAYLOAD_DATA, str(exc)
                except SessionClosed:
                    continue  # a handler's answer found the connection gone
                else:
                    continue
                if code != CloseCode.UNSUPPORTED_DATA:
                    logger.info("conn %d: closing with %d: %s", self.connection_id, code, reason)
                await self.close(code, reason)
                break
        except Exception:
            # The server fails the connection with 1011 when this propagates.
            code, reason = CloseCode.INTERNAL_ERROR, "internal error"
            raise
        finally:
            self._finish(code, reason)
        return code

    async def handle(self, envelope: Envelope) -> None:
        """Dispatch one decoded message to its handler.

        An unknown ``(plugin, kind)`` is reported (``unknown``) and ignored.
        """
        handler = self.handlers.lookup(envelope.plugin, envelope.kind)
        if handler is None:
            self.unknown.report(envelope.plugin, envelope.kind)
            return
        result = handler(envelope)
        if inspect.isawaitable(result):
            await result

    async def _answer_ping(self, message: Envelope) -> None:
        seq = message.get("n")
        if seq is not None and (isinstance(seq, bool) or not isinstance(seq, int)):
            raise MalformedMessage("rt/ping: field 'n' must be an integer")
        await self.send(RUNTIME_PLUGIN, "pong", n=seq)

    # -- closing -----------------------------------------------------------

    async def close(self, code: int = CloseCode.NORMAL_CLOSURE, reason: str = "") -> None:
        """Close the connection; the close callbacks run at once.

        Closing twice is harmless.
        """
        self._finish(code, reason)
        await self.websocket.close(code, _close_reason(reason))

    def _finish(self, code: int, reason: str) -> None:
        if self._closed:
            return
        self._closed = True
        self.close_code = code
        self.close_reason = reason
        callbacks, self._close_callbacks = self._close_callbacks, []
        for callback in callbacks:
            self._run_callback(callback)

    def _run_callback(self, callback: CloseCallback) -> None:
        try:
            callback(self)
        except Exception:
            # One plugin's failing cleanup must not skip the others'.
            logger.exception("conn %d: error in a session close callback", self.connection_id)


def _ms(seconds: float) -> int:
    """Seconds (Python's unit) as whole milliseconds (the wire's), at least 1."""
    return max(1, round(seconds * 1000))
