"""``WebSocket``: what an application holds for one connection.

Names follow Starlette's and Lilya's ``WebSocket`` so that their users feel
at home: ``accept``, ``receive_text``, ``send_json``, ``close``,
``WebSocketDisconnect``.  The object is a thin async face over the
connection that drives the protocol core, which it meets at two narrow
interfaces: it takes what arrived from an ``Inbox``, and answers, sends
and closes through a ``Sender``.  Every send writes complete frames
synchronously, so messages from several tasks never interleave.
"""

from __future__ import annotations

import asyncio
import enum
import json
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from functools import cached_property
from types import EllipsisType, TracebackType
from typing import Any, Literal, NoReturn

from ..protocol import BinaryMessage, CloseCode, TextMessage, WebSocketRequest
from ..protocol import Headers as HeaderPairs
from ..protocol.frames import PreparedMessage
from .datastructures import URL, Address, Headers, QueryParams, parse_cookies
from .datastructures import State as StateBag
from .dispatch import MessageHandler, Suspended, direct_dispatch
from .inbox import Disconnect, Inbox
from .mistakes import describe_value
from .responses import Response
from .sender import Sender

__all__ = [
    "Disconnect",
    "Message",
    "MessageStream",
    "QueueOutcome",
    "WebSocket",
    "WebSocketDisconnect",
    "WebSocketState",
]

logger = logging.getLogger("wsserver")


class WebSocketState(enum.Enum):
    """Starlette's three states, for ``client_state`` and ``application_state``."""

    CONNECTING = 0
    CONNECTED = 1
    DISCONNECTED = 2


# Constants for the per-message paths (an attribute of an Enum class costs a
# descriptor call on Python 3.11).
_APP_CONNECTING = WebSocketState.CONNECTING
_APP_CONNECTED = WebSocketState.CONNECTED


class QueueOutcome(enum.Enum):
    """What ``WebSocket.queue_prepared`` did with a message."""

    QUEUED = "queued"
    #: Not accepted yet, closed, or closing: nothing to deliver to.
    NOT_OPEN = "not open"
    #: In the middle of a streamed message: send it with a method that waits.
    STREAMING = "streaming"
    #: The peer is not keeping up: left out (and failed if asked to).
    SLOW = "slow"


class WebSocketDisconnect(Exception):
    """The peer has gone: raised by ``receive_*`` and by sends after it left.

    Attributes:
        code: the close code (1005 when the peer's Close had none, 1006 when
            the connection ended without a closing handshake).
        reason: the close reason, if any.
    """

    def __init__(self, code: int = CloseCode.NORMAL_CLOSURE, reason: str = "") -> None:
        super().__init__(code, reason)
        self.code = code
        self.reason = reason

    def __str__(self) -> str:
        return f"WebSocket disconnected with code {self.code}" + (
            f": {self.reason}" if self.reason else ""
        )


Message = TextMessage | BinaryMessage | Disconnect
JSONMode = Literal["text", "binary"]


class WebSocket:
    """One WebSocket connection, as the application sees it.

    Created by the server for each upgrade request and handed to the route's
    endpoint, which must ``accept()`` it (or reject it) first.
    """

    def __init__(
        self,
        sender: Sender,
        inbox: Inbox,
        request: WebSocketRequest,
        *,
        connection_id: int,
        max_message_size: int,
        scheme: str,
        server_host: str | None,
        client: Address | None,
        path_params: Mapping[str, Any] | None = None,
        root_path: str = "",
        server: Address | None = None,
    ) -> None:
        self._sender = sender
        self._inbox = inbox
        self._request = request
        self._connection_id = connection_id
        self._max_message_size = max_message_size
        self._scheme = scheme
        self._server_host = server_host
        self.client = client
        #: The prefix a proxy serves the application under (``ServerConfig.root_path``).
        self.root_path = root_path
        #: The local address the connection arrived on (ASGI's ``server``).
        self.server = server
        self.path_params: dict[str, Any] = dict(path_params or {})
        self.state = StateBag()
        self._client_state = WebSocketState.CONNECTING
        self.application_state = WebSocketState.CONNECTING
        self._subprotocol: str | None = None
        self._extensions: str | None = None
        self._disconnect_delivered = False
        self._stream_owner: asyncio.Task[Any] | None = None
        self._stream_done: asyncio.Event | None = None

    # -- states ----------------------------------------------------------

    @property
    def client_state(self) -> WebSocketState:
        """Where the client is: connecting, connected, or gone.

        ``DISCONNECTED`` once ``receive()`` returned the disconnect, the
        handshake was refused, or the transport is gone.
        """
        if self._sender.closed:
            return WebSocketState.DISCONNECTED
        return self._client_state

    @client_state.setter
    def client_state(self, state: WebSocketState) -> None:
        self._client_state = state

    @property
    def latency(self) -> float | None:
        """Last measured round-trip time in seconds (from pings), or ``None``."""
        return self._sender.latency

    # -- request information -------------------------------------------

    @cached_property
    def headers(self) -> Headers:
        """The request headers, case-insensitive and multi-valued."""
        return Headers(self._request.headers)

    @property
    def raw_headers(self) -> HeaderPairs:
        """The request headers as the core gave them: ``(name, value)`` pairs in order.

        Names lowercase, both decoded as ISO-8859-1.  Without building the
        ``headers`` multidict (the ASGI scope wants the pairs).
        """
        return self._request.headers

    @cached_property
    def url(self) -> URL:
        """The URL the client asked for (``ws`` or ``wss`` scheme).

        Raises:
            ValueError: a malformed target or ``Host``; the server checks
                this before the endpoint runs and answers 400.
        """
        # Straight from the raw fields (names are lowercase): the headers
        # multidict is built only if the application asks for it.
        hosts = [value for name, value in self._request.headers if name == "host"]
        if len(hosts) > 1:
            # RFC 9112 section 3.2: several Host fields make a request invalid.
            raise ValueError("more than one Host header")
        return URL.from_target(
            self._request.target,
            self._scheme,
            hosts[0] if hosts else None,
            server_host=self._server_host,
        )

    @cached_property
    def query_params(self) -> QueryParams:
        """The query string's parameters."""
        return QueryParams(self.url.query)

    @cached_property
    def cookies(self) -> dict[str, str]:
        """Cookies sent with the handshake."""
        return parse_cookies(self.headers.getlist("cookie"))

    @property
    def subprotocols(self) -> tuple[str, ...]:
        """The subprotocols the client offered, in its order of preference."""
        return self._request.subprotocols

    @property
    def subprotocol(self) -> str | None:
        """The subprotocol agreed in ``accept``."""
        return self._subprotocol

    @property
    def extensions(self) -> str | None:
        """The ``Sec-WebSocket-Extensions`` value agreed, if any."""
        return self._extensions

    @property
    def max_message_size(self) -> int:
        """The largest message this connection accepts, in bytes.

        Plugins tell the browser, so that it refuses to send what the server
        would close the connection over (1009).
        """
        return self._max_message_size

    @property
    def connection_id(self) -> int:
        """The connection's id, as the server's log lines show it."""
        return self._connection_id

    # -- handshake -----------------------------------------------------

    async def accept(
        self,
        subprotocol: str | None = None,
        headers: Sequence[tuple[str, str]] | Mapping[str, str] | None = None,
    ) -> None:
        """Complete the opening handshake with a 101 response.

        Args:
            subprotocol: one of ``subprotocols`` to agree on.
            headers: extra response headers (``Set-Cookie``, for example).

        Raises:
            RuntimeError: if already accepted or closed.
        """
        if self.application_state is not WebSocketState.CONNECTING:
            raise RuntimeError("accept() called twice, or after close()")
        pairs = tuple(headers.items() if isinstance(headers, Mapping) else headers or ())
        self._extensions = self._sender.accept(subprotocol, pairs)
        self._subprotocol = subprotocol
        self.application_state = WebSocketState.CONNECTED
        self._client_state = WebSocketState.CONNECTED

    async def send_denial_response(self, response: Response) -> None:
        """Refuse the handshake with any HTTP response instead of a 101.

        Raises:
            RuntimeError: after ``accept()`` or ``close()``.
            TypeError: ``response`` is not a ``Response``.
            LocalProtocolError: the response cannot answer a handshake (a
                1xx status).

        After an error the handshake is still unanswered: if the exception
        reaches the server, the client gets 500.
        """
        if self.application_state is not WebSocketState.CONNECTING:
            raise RuntimeError("send_denial_response() after accept() or close()")
        if not isinstance(response, Response):
            raise TypeError(
                f"send_denial_response() takes a Response, not {describe_value(response)}"
            )
        self._sender.reject(response)
        self.application_state = WebSocketState.DISCONNECTED
        self._client_state = WebSocketState.DISCONNECTED

    # -- receiving -----------------------------------------------------

    async def receive(self, timeout: float | None = None) -> Message:
        """The next message, or ``Disconnect`` once the peer has gone.

        Args:
            timeout: seconds to wait; ``TimeoutError`` after that (the
                connection stays open).

        Raises:
            RuntimeError: before ``accept()``, after ``Disconnect`` was
                already returned, or while another task is receiving.
        """
        if self.application_state is _APP_CONNECTING:
            raise RuntimeError("receive() before accept()")
        inbox = self._inbox
        if inbox.receiver is not None:
            raise RuntimeError("receive() is already waiting in another task")
        messages = inbox.messages
        if not messages and inbox.ended is None:
            waiter = inbox.waiter()
            if waiter is not None:
                try:
                    if timeout is None:
                        await waiter
                    else:
                        await asyncio.wait_for(asyncio.shield(waiter), timeout)
                finally:
                    inbox.receiver = None
        if messages:
            return inbox.take()
        ended = inbox.ended
        assert ended is not None
        if self._disconnect_delivered:
            raise RuntimeError("receive() after the disconnect was already received")
        self._disconnect_delivered = True
        self._client_state = WebSocketState.DISCONNECTED
        return ended

    async def handle_messages(self, handler: MessageHandler) -> Disconnect:
        """Handle every message with ``handler``, until the peer goes.

        ``await handler.start(message)`` handles one message; the messages are
        handled one at a time, in order, as a loop over ``receive()``
        would.  In the connection's own task (a view's ``dispatch``), a
        message that arrives while the loop waits is handled in the
        connection's read callback instead, without waking the task: if the
        handler returns without suspending, its replies leave in the same
        loop iteration, with those of the other messages of the read.  A
        handler that suspends is finished here, in the task, and what
        arrived meanwhile waits for it (``wsserver.server.dispatch``).

        Args:
            handler: its ``start(message)`` returns the awaitable that
                handles a message (typically the coroutine of ``on_receive``,
                not awaited yet); its ``check(returned)`` is called with what
                a handler returned, when it is not ``None``, and what it
                raises ends the loop.

        Returns:
            How the peer went, as ``receive()`` returns it.

        Raises:
            RuntimeError: before ``accept()``, or while another task is
                receiving.
            Exception: what a handler (or ``handler.check``) raised.
        """
        if self.application_state is _APP_CONNECTING:
            raise RuntimeError("handle_messages() before accept()")
        inbox = self._inbox
        dispatch = direct_dispatch(inbox, handler)
        messages = inbox.messages
        while True:
            if dispatch is not None and not messages and inbox.ended is None:
                if inbox.receiver is not None:
                    raise RuntimeError("receive() is already waiting in another task")
                waiter = inbox.waiter()
                if waiter is not None:
                    inbox.dispatch = dispatch
                    thrown: BaseException | None = None
                    try:
                        await waiter
                    except BaseException as error:
                        # Cancelled just after a handler was handed over:
                        # the handler is what the task runs, so it gets the
                        # cancellation.
                        if not isinstance(dispatch.handoff, Suspended):
                            raise
                        thrown = error
                    finally:
                        inbox.stop_waiting(waiter)
                    handoff = dispatch.handoff
                    if handoff is None:
                        continue  # woken for queued messages, or the end
                    dispatch.handoff = None
                    if isinstance(handoff, BaseException):
                        raise handoff
                    if thrown is not None:
                        assert isinstance(handoff, Suspended)
                        handoff = handoff.throwing(thrown)
                    returned = await handoff
                    if returned is not None:
                        handler.check(returned)
                    continue
            message = await self.receive()
            if isinstance(message, Disconnect):
                return message
            returned = await handler.start(message)
            if returned is not None:
                handler.check(returned)

    async def _receive_message(self, timeout: float | None) -> TextMessage | BinaryMessage:
        message = await self.receive(timeout)
        if isinstance(message, Disconnect):
            self.application_state = WebSocketState.DISCONNECTED
            raise WebSocketDisconnect(message.code, message.reason)
        return message

    async def receive_text(self, timeout: float | None = None) -> str:
        """The next message, which must be text.

        A binary message instead closes the connection with 1003 (RFC 6455
        section 7.4.1: "a type of data it cannot accept") and raises
        ``WebSocketDisconnect``.
        """
        message = await self._receive_message(timeout)
        if isinstance(message, TextMessage):
            return message.data
        await self._refuse("expected a text message")

    async def receive_bytes(self, timeout: float | None = None) -> bytes:
        """The next message, which must be binary (else 1003, as above)."""
        message = await self._receive_message(timeout)
        if isinstance(message, BinaryMessage):
            return message.data
        await self._refuse("expected a binary message")

    async def receive_json(self, mode: JSONMode = "text", timeout: float | None = None) -> Any:
        """The next message decoded as JSON, from a text or binary message.

        Invalid JSON closes with 1007 ("data ... not consistent with the
        type of the message") and raises ``WebSocketDisconnect``.
        """
        raw: str | bytes
        raw = (
            await self.receive_text(timeout)
            if mode == "text"
            else await self.receive_bytes(timeout)
        )
        try:
            return json.loads(raw)
        except ValueError:
            await self.close(CloseCode.INVALID_PAYLOAD_DATA, "invalid JSON")
            raise WebSocketDisconnect(CloseCode.INVALID_PAYLOAD_DATA, "invalid JSON") from None

    async def _refuse(self, reason: str) -> NoReturn:
        await self.close(CloseCode.UNSUPPORTED_DATA, reason)
        raise WebSocketDisconnect(CloseCode.UNSUPPORTED_DATA, reason)

    async def iter_text(self) -> AsyncIterator[str]:
        """Text messages until the peer disconnects."""
        try:
            while True:
                yield await self.receive_text()
        except WebSocketDisconnect:
            pass

    async def iter_bytes(self) -> AsyncIterator[bytes]:
        """Binary messages until the peer disconnects."""
        try:
            while True:
                yield await self.receive_bytes()
        except WebSocketDisconnect:
            pass

    async def iter_json(self, mode: JSONMode = "text") -> AsyncIterator[Any]:
        """JSON messages until the peer disconnects."""
        try:
            while True:
                yield await self.receive_json(mode)
        except WebSocketDisconnect:
            pass

    # -- sending -------------------------------------------------------

    async def send_text(self, data: str, *, compress: bool | None = None) -> None:
        """Send a text message.

        ``compress``: ``None`` (the default) compresses when permessage-deflate
        was agreed and the message is at least ``DeflateSettings.min_size``
        bytes; ``False`` sends it uncompressed (data that does not compress,
        or a message whose latency matters more than its size); ``True``
        compresses it whatever its size.  Without permessage-deflate it does
        nothing.  The same on every send.
        """
        if self._stream_owner is not None:  # checked here: no coroutine per send
            await self._wait_for_stream()
        self._check_can_send()
        await self._sender.send_text(data, compress)

    async def send_bytes(
        self, data: bytes | bytearray | memoryview, *, compress: bool | None = None
    ) -> None:
        """Send a binary message; ``compress`` as ``send_text`` (``False`` for
        data already compressed: images, archives)."""
        if self._stream_owner is not None:  # checked here: no coroutine per send
            await self._wait_for_stream()
        self._check_can_send()
        await self._sender.send_bytes(data, compress)

    async def send_json(
        self, data: Any, mode: JSONMode = "text", *, compress: bool | None = None
    ) -> None:
        """Send ``data`` as compact JSON, in a text or binary message;
        ``compress`` as ``send_text``."""
        encoded = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
        if mode == "text":
            await self.send_text(encoded, compress=compress)
        else:
            await self.send_bytes(encoded.encode("utf-8"), compress=compress)

    def stream(self, *, binary: bool = False, compress: bool | None = None) -> MessageStream:
        """Send one message in fragments, of a size not known in advance::

            async with websocket.stream(binary=True) as stream:
                async for chunk in source:
                    await stream.write(chunk)

        Other tasks' messages wait until the stream ends, so fragments of
        different messages never interleave.  A streamed message is
        compressed as a whole or not at all (RFC 7692 section 6.1): with
        permessage-deflate agreed it is compressed unless ``compress`` is
        ``False`` (its size is not known in advance, so ``min_size`` cannot
        apply).
        """
        return MessageStream(self, binary, compress)

    def ping(self, data: bytes | None = None) -> asyncio.Future[float]:
        """Send a ping; the returned future gives the round-trip time in seconds.

        The future fails with ``WebSocketDisconnect`` if the connection ends
        first.
        """
        self._check_can_send()
        return self._sender.ping(data)

    def configure_keepalive(
        self,
        *,
        ping_interval: float | EllipsisType | None = ...,
        receive_timeout: float | EllipsisType | None = ...,
    ) -> None:
        """Give this connection its own heartbeat and receive timeout, over
        the server's ``ping_interval`` and ``receive_timeout`` (an endpoint
        whose clients idle longer or shorter than the rest: Duck gives its
        component connections 240 s).  ``None`` turns either off; one left out stays.  The
        ``ping_timeout`` stays the server's.

        Raises:
            ValueError: a value that is not positive.
        """
        for name, value in (("ping_interval", ping_interval), ("receive_timeout", receive_timeout)):
            if value is not None and value is not ... and not value > 0:
                raise ValueError(f"{name} must be positive (or None), not {value!r}")
        self._sender.configure_keepalive(
            ping_interval=ping_interval, receive_timeout=receive_timeout
        )

    async def close(self, code: int = CloseCode.NORMAL_CLOSURE, reason: str = "") -> None:
        """Close the connection.

        Before ``accept()`` this refuses the handshake with 403, as Starlette
        does.  After it, it starts the closing handshake; the server waits up
        to ``close_timeout`` for the peer's answer.  Closing twice is
        harmless.
        """
        if self.application_state is WebSocketState.CONNECTING:
            await self.send_denial_response(
                Response(b"Forbidden\n", status_code=403, media_type="text/plain")
            )
            return
        # Close first: an invalid code or reason raises here, and the
        # connection is then still open and usable.  (Once the closing
        # handshake has started, this does nothing.)
        self._sender.close(code, reason)
        self.application_state = WebSocketState.DISCONNECTED

    def queue_prepared(
        self, message: PreparedMessage, size: int, *, compress: bool, close_if_slow: bool
    ) -> QueueOutcome:
        """Queue an encoded message without waiting: how ``broadcast`` sends.

        No coroutine and no await: the frame is written at the end of the
        loop's iteration with whatever else this connection is sent.  It is
        not queued when the connection is not open, in the middle of a
        streamed message (a frame cannot go between fragments: the caller
        sends it with ``send_text``/``send_bytes``, which wait), or when the
        peer is not keeping up (``write_limit`` bytes wait); then, with
        ``close_if_slow``, the connection is failed with 1013 (try again
        later), so that the client knows it missed messages.

        Args:
            message: from ``wsserver.protocol.frames.prepare_message``.
            size: the payload size, counted toward ``write_limit``.
        """
        sender = self._sender
        if self.application_state is not _APP_CONNECTED or not sender.is_open:
            return QueueOutcome.NOT_OPEN
        if self._stream_owner is not None:
            return QueueOutcome.STREAMING
        if sender.writing_paused:
            sender.message_dropped(closing=close_if_slow)
            if close_if_slow:
                logger.info("conn %d: too slow for a broadcast, closing", self.connection_id)
                sender.fail(CloseCode.TRY_AGAIN_LATER, "too slow to keep up")
            return QueueOutcome.SLOW
        sender.send_prepared(message, size, compress=compress)
        return QueueOutcome.QUEUED

    # -- helpers for the connection and the stream ---------------------

    def _check_can_send(self) -> None:
        """Refuse a send the application may not make, or to a peer that left.

        The sender checks the rest (the closing handshake has started) as
        it sends: one check of the core per message, not two.
        """
        state = self.application_state
        if state is not _APP_CONNECTED:
            if state is _APP_CONNECTING:
                raise RuntimeError("send before accept()")
            raise RuntimeError("send after close()")
        # A connection dropped without a closing handshake (a reset, an
        # abort) leaves the core OPEN: only ``ended`` says the peer is gone.
        ended = self._inbox.ended
        if ended is not None:
            raise WebSocketDisconnect(ended.code, ended.reason)

    def _check_open(self) -> None:
        """``_check_can_send``, and the connection is still open (before a
        stream starts, where nothing is sent yet)."""
        self._check_can_send()
        if not self._sender.is_open:
            raise WebSocketDisconnect(CloseCode.ABNORMAL_CLOSURE)

    async def _wait_for_stream(self) -> None:
        while self._stream_owner is not None and self._stream_owner is not asyncio.current_task():
            assert self._stream_done is not None
            await self._stream_done.wait()


class MessageStream:
    """A message sent fragment by fragment; see ``WebSocket.stream``."""

    def __init__(self, websocket: WebSocket, binary: bool, compress: bool | None) -> None:
        self._websocket = websocket
        self._binary = binary
        self._compress = compress
        self._started = False

    async def __aenter__(self) -> MessageStream:
        websocket = self._websocket
        await websocket._wait_for_stream()
        websocket._check_open()
        websocket._stream_owner = asyncio.current_task()
        websocket._stream_done = asyncio.Event()
        return self

    async def write(self, chunk: str | bytes) -> None:
        """Send the next fragment (an empty chunk sends nothing)."""
        if isinstance(chunk, str) == self._binary:
            raise TypeError("write bytes to a binary stream and str to a text stream")
        if not chunk:
            return
        websocket = self._websocket
        websocket._check_can_send()
        # Started before the send: if the wait for a slow peer that follows
        # is cancelled, half a message may be out (see __aexit__).
        self._started = True
        await websocket._sender.send_fragment(chunk, fin=False, compress=self._compress)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        websocket = self._websocket
        try:
            if exc_type is None:
                websocket._check_can_send()
                # The final fragment may be empty: RFC 6455 section 5.4
                # allows zero-length fragments.
                await websocket._sender.send_fragment(
                    b"" if self._binary else "", fin=True, compress=self._compress
                )
            elif self._started and websocket._sender.is_open:
                # Half a message is out and cannot be taken back: the peer
                # must not mistake it for a whole one.
                websocket._sender.fail(CloseCode.INTERNAL_ERROR, "message stream failed")
        finally:
            done = websocket._stream_done
            websocket._stream_owner = None
            websocket._stream_done = None
            if done is not None:
                done.set()
