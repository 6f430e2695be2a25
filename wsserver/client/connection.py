"""``ClientWebSocket``: one open client connection on asyncio.

An ``asyncio.Protocol`` driving the sans-I/O ``ClientConnection`` (the
server's ``Connection`` does the same for ``ServerConnection``), and the
object the application holds: ``send``, ``recv``, ``async for``, ``ping``,
``close``.  ``connect.py`` opens it.

Flow control both ways:

* received messages wait in a queue of at most ``max_queue``; past it the
  transport stops reading, so a server cannot fill our memory faster than
  the application reads (websockets' ``max_queue``, 16 by default);
* ``send`` waits while the transport's write buffer is above its high-water
  mark (``pause_writing``), so a fast sender cannot fill ours.

Ordering: a message followed at once by the server's Close or by a
protocol error must not lose the application's answer to that message
(RFC 6455 section 5.5.1: nothing after our Close), so the core holds the
Close or the error (``next_event(hold_replies=True)``, as the server does)
while messages wait to be read or the application is busy with the last
one it took, that is until it comes back to ``recv()``; at most
``close_timeout`` seconds.

The end: after the closing handshake (or a failure) the server is to close
TCP first (RFC 6455 section 7.1.1); we wait ``close_timeout`` for it, then
abort the transport.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Iterable

from wsserver.protocol import (
    BinaryMessage,
    ClientConnection,
    CloseCode,
    CloseReceived,
    ConnectionFailed,
    ConnectionLost,
    Event,
    HandshakeAccepted,
    HandshakeFailed,
    Headers,
    LocalProtocolError,
    Pong,
    State,
    TextMessage,
)

from .exceptions import ConnectionClosed, ConnectionClosedError, ConnectionClosedOK

__all__ = ["ClientWebSocket", "Data"]

logger = logging.getLogger("wsserver.client")

Data = str | bytes
Sendable = str | bytes | bytearray | memoryview

#: Above this many bytes to write at once, pieces are written one by one
#: rather than joined (``_flush``); below, one joined write is one system call.
_JOIN_LIMIT = 64 * 1024

#: Close codes of a connection that ended as it should.
_OK_CODES = frozenset(
    {CloseCode.NORMAL_CLOSURE, CloseCode.GOING_AWAY, CloseCode.NO_STATUS_RECEIVED}
)


class ClientWebSocket(asyncio.Protocol):
    """One client connection: the transport's protocol and the application's API.

    Made by ``connect()``; not meant to be built by hand.
    """

    def __init__(
        self,
        core: ClientConnection,
        *,
        max_queue: int,
        ping_interval: float | None,
        ping_timeout: float | None,
        close_timeout: float,
    ) -> None:
        self._core = core
        self._loop = asyncio.get_running_loop()
        self._max_queue = max_queue
        self._ping_interval = ping_interval
        self._ping_timeout = ping_timeout
        self._close_timeout = close_timeout
        self._transport: asyncio.Transport | None = None
        self._handshake: asyncio.Future[HandshakeAccepted | HandshakeFailed] = (
            self._loop.create_future()
        )
        self._lost: asyncio.Future[None] = self._loop.create_future()
        self._messages: deque[Data] = deque()
        self._receiver: asyncio.Future[None] | None = None
        self._reading_paused = False
        self._writing_paused = False
        self._drained: asyncio.Future[None] | None = None
        self._pings: dict[bytes, tuple[asyncio.Future[float], float]] = {}
        self._send_lock = asyncio.Lock()
        self._closing = False  # close() was called: stop bounding the queue
        self._abort_timer: asyncio.TimerHandle | None = None
        self._keepalive: asyncio.Task[None] | None = None
        # The application took a message and has not come back to recv().
        self._busy = False
        self._release_timer: asyncio.TimerHandle | None = None
        #: Round-trip time of the last pong answering one of our pings, seconds.
        self.latency = 0.0
        #: The 101's headers, ``(name, value)``, lowercase names.
        self.response_headers: Headers = ()

    # -- what the application reads ------------------------------------

    @property
    def subprotocol(self) -> str | None:
        """The subprotocol the server chose among ours, or ``None``."""
        return self._core.subprotocol

    @property
    def extensions(self) -> str | None:
        """The ``Sec-WebSocket-Extensions`` value agreed, or ``None``."""
        return self._core.extensions

    @property
    def state(self) -> State:
        """The protocol state: OPEN, CLOSING or CLOSED."""
        return self._core.state

    @property
    def close_code(self) -> int | None:
        """The close code received; 1006 once closed without one; ``None`` while open."""
        if self._core.close_code is not None:
            return self._core.close_code
        return CloseCode.ABNORMAL_CLOSURE if self._core.state is State.CLOSED else None

    @property
    def close_reason(self) -> str:
        """The close reason received."""
        return self._core.close_reason

    # -- asyncio.Protocol ----------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._flush()

    def data_received(self, data: bytes) -> None:
        self._core.receive_data(data)
        self._process()

    def eof_received(self) -> bool | None:
        self._core.receive_eof()
        self._process()
        return None  # let the transport close

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._core.eof_received:
            self._core.receive_eof()
            with contextlib.suppress(Exception):
                self._process()
        if self._abort_timer is not None:
            self._abort_timer.cancel()
        if self._release_timer is not None:
            self._release_timer.cancel()
        if self._keepalive is not None:
            self._keepalive.cancel()
        if not self._handshake.done():
            self._handshake.set_exception(
                exc if exc is not None else ConnectionResetError("connection lost")
            )
        for future, _ in self._pings.values():
            if not future.done():
                future.set_exception(self._closed_error())
        self._pings.clear()
        self._wake_receiver()
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)
        if not self._lost.done():
            self._lost.set_result(None)

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    # -- the drive loop ------------------------------------------------

    def _process(self, *, hold: bool | None = None) -> None:
        core = self._core
        if hold is None:
            # Once close() was called, nothing more is read for an answer:
            # the server's Close is taken at once (its code is close_code).
            hold = not self._closing and (self._busy or bool(self._messages))
        while (event := core.next_event(hold_replies=hold)) is not None:
            self._handle(event)
            if not hold and not self._closing and (self._busy or self._messages):
                hold = True
        self._flush()
        if core.reply_held and self._release_timer is None:
            self._release_timer = self._loop.call_later(self._close_timeout, self._release)
        if core.state is State.CLOSED:
            self._wake_receiver()
            transport = self._transport
            if transport is None or transport.is_closing():
                return
            if core.must_close_transport:
                transport.close()
            elif self._abort_timer is None:
                # Section 7.1.1: the server closes TCP first; not forever.
                self._abort_timer = self._loop.call_later(self._close_timeout, transport.abort)

    def _handle(self, event: Event) -> None:
        if isinstance(event, TextMessage | BinaryMessage):
            self._messages.append(event.data)
            self._wake_receiver()
            if (
                len(self._messages) >= self._max_queue
                and not self._closing
                and not self._reading_paused
                and self._transport is not None
            ):
                self._reading_paused = True
                self._transport.pause_reading()
        elif isinstance(event, Pong):
            now = self._loop.time()
            for payload in event.acknowledged:
                future, sent = self._pings.pop(payload)
                self.latency = now - sent
                if not future.done():
                    future.set_result(now - sent)
        elif isinstance(event, HandshakeAccepted | HandshakeFailed):
            self.response_headers = event.headers
            if not self._handshake.done():
                self._handshake.set_result(event)
        elif isinstance(event, ConnectionFailed):
            logger.info("connection failed: %d %s", event.code, event.reason)
        elif isinstance(event, CloseReceived | ConnectionLost):
            pass  # the state says it; recv() raises once the queue is empty
        # Ping: the core queued the pong already.

    def _release(self) -> None:
        # The application did not come back in time: answer the held Close
        # or error now, whatever is left unread.
        self._release_timer = None
        if self._core.reply_held:
            self._process(hold=False)

    def _flush(self) -> None:
        data = self._core.data_to_send()
        transport = self._transport
        if not data or transport is None or transport.is_closing():
            return
        if len(data) > 1 and sum(map(len, data)) > _JOIN_LIMIT:
            # writelines() joins into one new buffer before writing (Python
            # 3.11): for a large payload that is a copy of it, a third of
            # the client's CPU time on 1 MiB round trips.  Written piece by
            # piece, the payload goes to the socket as it is.
            for piece in data:
                transport.write(piece)
        else:
            transport.writelines(data)

    def _wake_receiver(self) -> None:
        receiver = self._receiver
        if receiver is not None and not receiver.done():
            receiver.set_result(None)

    def _closed_error(self) -> ConnectionClosed:
        core = self._core
        code = core.close_code
        if code is None:
            code = CloseCode.ABNORMAL_CLOSURE
        sent = core.sent_close_code
        cls = (
            ConnectionClosedOK if code in _OK_CODES and sent in _OK_CODES else ConnectionClosedError
        )
        return cls(code, core.close_reason, sent)

    # -- opening (connect.py) ------------------------------------------

    async def wait_handshake(self) -> HandshakeAccepted | HandshakeFailed:
        """The handshake's outcome; starts the heartbeat when accepted."""
        event = await self._handshake
        if isinstance(event, HandshakeAccepted) and self._ping_interval is not None:
            self._keepalive = self._loop.create_task(self._heartbeat())
        return event

    def abort(self) -> None:
        """Close the transport now, without a closing handshake."""
        if self._transport is not None:
            self._transport.abort()

    # -- receiving -------------------------------------------------------

    async def recv(self) -> Data:
        """The next message: ``str`` for text, ``bytes`` for binary.

        Raises:
            ConnectionClosedOK: the connection ended normally and every
                message was taken.
            ConnectionClosedError: it ended otherwise.
            RuntimeError: another coroutine is waiting in ``recv()``.
        """
        if self._receiver is not None:
            # Which of two waiting coroutines gets the next message would be
            # a race: refuse the second, as websockets does.
            raise RuntimeError("another coroutine is already waiting for the next message")
        self._busy = False
        while not self._messages:
            if self._core.reply_held:
                # Every message before the held Close or error was taken
                # and answered: answer it now.
                if self._release_timer is not None:
                    self._release_timer.cancel()
                    self._release_timer = None
                self._process(hold=False)
                continue
            if self._core.state is State.CLOSED or self._lost.done():
                raise self._closed_error()
            receiver = self._receiver = self._loop.create_future()
            try:
                await receiver
            finally:
                self._receiver = None
        message = self._messages.popleft()
        self._busy = True
        if self._reading_paused and len(self._messages) <= self._max_queue // 4:
            self._reading_paused = False
            if self._transport is not None:
                self._transport.resume_reading()
        return message

    def __aiter__(self) -> AsyncIterator[Data]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Data]:
        # websockets' semantics: a normal end stops the loop, an error raises.
        try:
            while True:
                yield await self.recv()
        except ConnectionClosedOK:
            return

    # -- sending -------------------------------------------------------

    def _write_message(self, message: str | bytes | bytearray | memoryview) -> None:
        """Queue ``message`` as one whole text or binary message and write it."""
        self._check_open()
        if isinstance(message, str):
            self._core.send_text(message)
        else:
            self._core.send_bytes(message)
        self._flush()

    async def send(self, message: Sendable | Iterable[Sendable] | AsyncIterable[Sendable]) -> None:
        """Send a message: ``str`` as text, bytes-like as binary.

        An iterable or async iterable of ``str`` (or of bytes-like) is sent
        as one fragmented message, a frame per item (RFC 6455 section 5.4),
        for a message whose size is not known ahead.  An empty iterable
        sends nothing.

        Raises:
            ConnectionClosed: the connection is closing or closed.
            TypeError: not a message, or an iterable mixing str and bytes.
        """
        if not self._send_lock.locked() and isinstance(
            message, str | bytes | bytearray | memoryview
        ):
            # The common case, no fragmented message in progress: the frame
            # is written at once, with no await, so the lock (a coroutine
            # call per send) is only taken if the write must wait for room.
            self._write_message(message)
            if self._writing_paused:
                async with self._send_lock:
                    await self._drain()
            return
        async with self._send_lock:
            if isinstance(message, str | bytes | bytearray | memoryview):
                self._write_message(message)
                await self._drain()
            elif isinstance(message, AsyncIterable):
                await self._send_fragments(_aiter(message))
            elif isinstance(message, Iterable):
                await self._send_fragments(_aiter_sync(message))
            else:
                raise TypeError(f"cannot send {type(message).__name__}")

    async def _send_fragments(self, chunks: AsyncIterator[Sendable]) -> None:
        try:
            previous = await anext(chunks)
        except StopAsyncIteration:
            return
        try:
            async for chunk in chunks:
                self._send_fragment(previous, fin=False)
                await self._drain()
                previous = chunk
            self._send_fragment(previous, fin=True)
        except BaseException:
            # A message cut in the middle cannot be finished: the connection
            # cannot go on (websockets does the same).
            if self._core.state is State.OPEN:
                self._core.fail(CloseCode.INTERNAL_ERROR, "fragmented message not finished")
                self._process()
            raise
        await self._drain()

    def _send_fragment(self, chunk: Sendable, *, fin: bool) -> None:
        if not isinstance(chunk, str | bytes | bytearray | memoryview):
            raise TypeError(f"cannot send a fragment of type {type(chunk).__name__}")
        self._check_open()
        try:
            self._core.send_fragment(chunk, fin=fin)
        except LocalProtocolError as error:
            raise TypeError(str(error)) from None
        self._flush()

    def _check_open(self) -> None:
        if self._core.state is not State.OPEN or self._lost.done():
            raise self._closed_error()

    async def _drain(self) -> None:
        if not self._writing_paused:
            return
        if self._lost.done():
            raise self._closed_error()
        drained = self._drained = self._loop.create_future()
        await drained
        if self._lost.done():
            raise self._closed_error()

    async def ping(self, data: bytes | None = None) -> float:
        """Send a ping and wait for its pong: the round-trip time, in seconds.

        Args:
            data: the payload (at most 125 bytes); 4 random bytes by default.

        Raises:
            ConnectionClosed: the connection closed before the pong.
        """
        self._check_open()
        payload = data if data is not None else os.urandom(4)
        while data is None and payload in self._pings:
            payload = os.urandom(4)
        future: asyncio.Future[float] = self._loop.create_future()
        self._core.send_ping(payload)
        self._pings[payload] = (future, self._loop.time())
        self._flush()
        return await future

    async def _heartbeat(self) -> None:
        assert self._ping_interval is not None
        while True:
            await asyncio.sleep(self._ping_interval)
            if self._core.state is not State.OPEN:
                return
            try:
                async with asyncio.timeout(self._ping_timeout):
                    await self.ping()
            except TimeoutError:
                logger.info("no pong within %s s: closing the connection", self._ping_timeout)
                if self._core.state is State.OPEN:
                    self._core.fail(CloseCode.INTERNAL_ERROR, "keepalive ping timeout")
                    self._process()
                self.abort()
                return
            except ConnectionClosed:
                return

    # -- closing -------------------------------------------------------

    async def close(self, code: int = CloseCode.NORMAL_CLOSURE, reason: str = "") -> None:
        """Close the connection: the closing handshake, then TCP.

        Waits at most ``close_timeout`` for the server's Close and for it to
        close TCP, then aborts the transport.  Calling it again, or on a
        closed connection, does nothing.
        """
        self._closing = True
        if self._reading_paused and self._transport is not None:
            # The server's Close may be behind messages nobody will read.
            self._reading_paused = False
            self._transport.resume_reading()
        if self._core.state is State.OPEN:
            self._core.send_close(code, reason)
        self._process(hold=False)
        try:
            async with asyncio.timeout(self._close_timeout):
                await asyncio.shield(self._lost)
        except TimeoutError:
            self.abort()
            await asyncio.shield(self._lost)

    async def wait_closed(self) -> None:
        """Wait until the transport is closed."""
        await asyncio.shield(self._lost)


async def _aiter(iterable: AsyncIterable[Sendable]) -> AsyncIterator[Sendable]:
    async for item in iterable:
        yield item


async def _aiter_sync(iterable: Iterable[Sendable]) -> AsyncIterator[Sendable]:
    for item in iterable:
        yield item
