"""``Connection``: an asyncio protocol driving one ``ServerConnection``.

It follows docs/protocol.md's drive loop: bytes from the transport go into
the core, events come out and go to the application, and whatever the core
wants to write goes to the transport.  Around that it adds what needs a
clock or a task: timeouts, heartbeats, backpressure, the application's task.

Backpressure, receiving: events are pulled from the core only while the
WebSocket's queue has fewer than ``max_queue`` messages; bytes the core has
not parsed stay in its buffer, and reading from the socket pauses once that
buffer passes ``read_limit``.  Sending: the transport's write buffer has a
high-water mark of ``write_limit``; a send above it waits in ``drain``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, cast

from ..protocol import (
    BinaryMessage,
    CloseCode,
    CloseReceived,
    ConnectionFailed,
    ConnectionLost,
    HTTPRequest,
    LocalProtocolError,
    Pong,
    RequestRejected,
    ServerConnection,
    State,
    TextMessage,
    WebSocketRequest,
)
from .access import log_access
from .datastructures import Address
from .mistakes import ApplicationMistake
from .requests import Request
from .responses import PlainTextResponse, Response
from .websocket import Disconnect, WebSocket, WebSocketDisconnect, WebSocketState

if TYPE_CHECKING:
    from .server import Server

__all__ = ["Connection"]

# States as module constants for the pump (an attribute of an Enum class
# costs a descriptor call on Python 3.11).
_CONNECTING = State.CONNECTING
_OPEN = State.OPEN

#: A chunk at least this large is written on its own rather than joined with
#: its neighbours (its frame header, other replies): copying 256 KiB costs
#: more than the extra system call saves.
_WRITE_ALONE = 256 * 1024

logger = logging.getLogger("wsserver")


class Connection(asyncio.BufferedProtocol):
    """One accepted socket, from its first byte to its closing."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.config = server.config
        self.loop = server.loop
        self.id = server.next_connection_id()
        self.protocol = ServerConnection(self.config.protocol, deflate=self.config.deflate)
        self.transport: asyncio.Transport | None = None
        self.websocket: WebSocket | None = None
        self.client: Address | None = None
        self.server_host: str | None = None
        self._scheme = "https" if self.config.ssl_context is not None else "http"
        self._opened_at = time.monotonic()
        self._bytes_in = 0
        self._bytes_out = 0
        self._path = "-"
        self._task: asyncio.Task[None] | None = None
        self._reading_paused = False
        self._writing_paused = False
        self._drain_waiters: list[asyncio.Future[None]] = []
        self._closing_transport = False
        self._closed = False
        self._failed_by_peer = False
        # Timers are call_later handles, not tasks: an idle connection then
        # costs a heap entry, not a coroutine frame.
        self._open_timer: asyncio.TimerHandle | None = None
        self._close_timer: asyncio.TimerHandle | None = None
        self._hold_timer: asyncio.TimerHandle | None = None
        self._write_timer: asyncio.TimerHandle | None = None
        self._releasing_hold = False
        self._queue_blocked = False
        # Bytes the application sent that wait for the end of this loop
        # iteration, so that replies to a burst of messages go out in one
        # write (one system call) instead of one each.
        self._unflushed = 0
        self._flush_scheduled = False
        # Set when the application took the last queued message: its next
        # send is the reply a waiting peer needs, and nothing is left to
        # join it, so it is written at once (one loop iteration sooner).
        self._reply_now = False
        self._pong_timers: dict[bytes, asyncio.TimerHandle] = {}
        self._ping_timer: asyncio.TimerHandle | None = None
        self._receive_timer: asyncio.TimerHandle | None = None
        self._last_message = 0.0
        # Heartbeat and application pings: payload -> (time sent, waiter).
        self._pings: dict[bytes, tuple[float, asyncio.Future[float] | None]] = {}
        self._ping_counter = 0
        # Set by accept(): only an accepted WebSocket gets the "open" log
        # line, and so only it gets the matching "closed" line.
        self._accepted = False
        # The WebSocket handshake's target and arrival, for its access line.
        self._target: str | None = None
        self._request_started = 0.0

    # -- transport callbacks -------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A cast, not an isinstance check: uvloop's transports implement the
        # interface without subclassing asyncio.Transport.
        transport = cast(asyncio.Transport, transport)
        self.transport = transport
        transport.set_write_buffer_limits(high=self.config.write_limit)
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple) and len(peer) >= 2:
            self.client = Address(str(peer[0]), int(peer[1]))
        sock = transport.get_extra_info("sockname")
        if isinstance(sock, tuple) and len(sock) >= 2:
            self.server_host = f"{sock[0]}:{sock[1]}"
        self.server.connection_opened(self)
        self._start_open_timer()

    # The transport reads into the server's one receive buffer
    # (asyncio.BufferedProtocol).  A plain Protocol would get a new bytes
    # object per read, which asyncio allocates at 256 KiB and shrinks to
    # what arrived: for a small message glibc serves that with mmap,
    # mremap and munmap, three system calls per read (strace of the
    # round-trip benchmark: 7 per round trip, 3 of them those).  Sharing
    # one buffer is safe: the transport calls buffer_updated() right after
    # reading into it, on the loop's thread, and the core copies what it
    # keeps out of a buffer it does not own (ServerConnection.receive_data
    # takes memoryviews on that contract).

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.server.receive_buffer

    def buffer_updated(self, nbytes: int) -> None:
        self.data_received(self.server.receive_buffer[:nbytes])

    def data_received(self, data: bytes | memoryview) -> None:
        self._bytes_in += len(data)
        self.protocol.receive_data(data)
        self.pump()

    def eof_received(self) -> bool:
        self.protocol.receive_eof()
        if self._closing_transport:
            # The peer finished after our half-close: the lingering close is
            # over.
            self._abort_or_close(abort=False)
            return False
        self.pump()
        # Keep the transport: the response or close frame may still be going out.
        # A TLS transport ignores this and closes itself after flushing what
        # was written; asyncio then logs a warning for every such connection
        # if we return True, so don't.
        return self._scheme != "https"

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        for timer in (
            self._open_timer,
            self._close_timer,
            self._hold_timer,
            self._write_timer,
            self._ping_timer,
            self._receive_timer,
        ):
            if timer is not None:
                timer.cancel()
        for timer in self._pong_timers.values():
            timer.cancel()
        self._pong_timers.clear()
        websocket = self.websocket
        code: int = CloseCode.ABNORMAL_CLOSURE
        if websocket is not None:
            if websocket._ended is None:
                websocket._ended = Disconnect(CloseCode.ABNORMAL_CLOSURE)
            code = websocket._ended.code
            websocket._wake_receiver()
            websocket.client_state = websocket.client_state.__class__.DISCONNECTED
        for _, waiter in self._pings.values():
            if waiter is not None and not waiter.done():
                waiter.set_exception(WebSocketDisconnect(code))
        self._pings.clear()
        for drain in self._drain_waiters:
            if not drain.done():
                drain.set_result(None)
        self._drain_waiters.clear()
        self.server.connection_closed(self)
        # (Was ``websocket.application_state is not None``, always true: a
        # refused handshake logged a "closed" line without an "open" one.)
        if websocket is not None and self._accepted:
            logger.info(
                "conn %d closed path=%s code=%s duration=%.3fs in=%d out=%d",
                self.id,
                self._path,
                code,
                time.monotonic() - self._opened_at,
                self._bytes_in,
                self._bytes_out,
            )

    def pause_writing(self) -> None:
        # The peer reads slower than we write.  Stop reading from it too:
        # otherwise a peer that sends pings and never reads the pongs would
        # grow this buffer without bound, since pongs need no send() to wait.
        self._writing_paused = True
        timeout = self.config.write_timeout
        if timeout is not None and self._write_timer is None:
            self._write_timer = self.loop.call_later(timeout, self._write_timed_out)
        self._update_reading()

    def resume_writing(self) -> None:
        self._writing_paused = False
        if self._write_timer is not None:
            self._write_timer.cancel()
            self._write_timer = None
        waiters, self._drain_waiters = self._drain_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)
        self.pump()

    def _write_timed_out(self) -> None:
        # Nothing we wrote was read for write_timeout: a Close frame would
        # not get through either, so drop the connection (1008 for the
        # application, which sees a policy decision, not a network fault).
        self._write_timer = None
        logger.info(
            "conn %d: peer not reading for %ss, closing", self.id, self.config.write_timeout
        )
        if self.websocket is not None and self.websocket._ended is None:
            self.websocket._ended = Disconnect(CloseCode.POLICY_VIOLATION, "peer not reading")
        self._abort_or_close(abort=True)

    # -- the drive loop --------------------------------------------------

    def pump(self) -> None:
        """Pull events from the core as far as the application's queue allows.

        A Close frame or protocol error from the peer is held back while the
        application has messages it has not consumed, or is busy with the
        one it just received: its replies to them must go out before our
        Close (RFC 6455 section 5.5.1 forbids data after it).  The hold
        lasts at most ``close_timeout``.  Only while OPEN: once our own
        Close is out (CLOSING) the core answers nothing, so holding the
        peer's Close would only keep the connection up, for up to
        ``close_timeout``, whenever the application closed (or the server
        shut down) while busy with a message.
        """
        if self._closed:
            return
        protocol = self.protocol
        websocket = self.websocket
        while True:
            if protocol.state is _CONNECTING:
                if self._task is not None and not self._task.done():
                    break  # the application is answering the current request
                if self._writing_paused:
                    break  # no more answers for a peer that does not read them
                http_event = protocol.next_event()
                if http_event is None:
                    break
                self._handle_http_event(http_event)
                continue
            if websocket is None:
                break
            if self._writing_paused:
                break  # parsed pings would queue more pongs for a peer not reading
            messages = websocket._messages
            releasing = self._releasing_hold and protocol.reply_held
            if len(messages) >= self.config.max_queue and not releasing:
                self._queue_blocked = True
                break
            hold = (bool(messages) or websocket._busy) and not releasing
            event = protocol.next_event(hold_replies=hold and protocol.state is _OPEN)
            if event is None:
                break
            if isinstance(event, TextMessage | BinaryMessage):
                messages.append(event)
                self._last_message = self.loop.time()
            elif isinstance(event, Pong):
                self._pong_received(event)
            elif isinstance(event, CloseReceived | ConnectionFailed | ConnectionLost):
                self._failed_by_peer = isinstance(event, ConnectionFailed)
                if self._failed_by_peer:
                    logger.info("conn %d failed by peer: %d %s", self.id, event.code, event.reason)
                websocket._ended = Disconnect(event.code, event.reason)
            # A Ping needs nothing here: the core has queued the pong.
        self._releasing_hold = False
        if websocket is not None:
            if websocket._messages or websocket._ended is not None:
                websocket._wake_receiver()
            self._update_hold_timer()
        if protocol.must_close_transport:
            self.flush()
            self._update_reading()
            self._close_transport()
            return
        # Pongs and the like join the application's replies in one write at
        # the end of this loop iteration.
        self._schedule_flush()
        self._update_reading()

    def receiver_ready(self) -> None:
        """The application waits for a message and has none queued.

        A Close or error held for ordering can be answered now (the
        application has replied to everything before it).  Nothing else is
        waiting: the pump parsed all that arrived when it arrived.
        """
        if self.protocol.reply_held or self._queue_blocked:
            self._queue_blocked = False
            self.pump()

    def message_consumed(self) -> None:
        """The application took a message: if the queue had stopped the pump,
        there may be room again.

        The pump resumes once the queue is down to half of ``max_queue``,
        not at the first free slot: refilling a nearly full queue one
        message at a time would run the whole pump (and a write) per message.
        If the queue had not stopped it, the pump already parsed everything
        received.

        Taking the last queued message arms ``_reply_now``: see
        ``flush_and_drain``.
        """
        websocket = self.websocket
        if websocket is not None and not websocket._messages:
            self._reply_now = True
        if (
            self._queue_blocked
            and websocket is not None
            and len(websocket._messages) <= self.config.max_queue // 2
        ):
            self._queue_blocked = False
            self.pump()

    def _update_reading(self) -> None:
        transport = self.transport
        if transport is None or self._closing_transport:
            return
        websocket = self.websocket
        if self.protocol.state is _CONNECTING:
            # While the application answers a request, the core keeps what
            # arrives (bounded by its own limits); stop reading once anything
            # does.  (Not before: a client waits for its answer, and pausing
            # and resuming every connection costs two epoll_ctl calls.)
            full = self._writing_paused or (
                self._task is not None and not self._task.done() and self.protocol.buffered > 0
            )
        else:
            full = self._writing_paused or (
                websocket is not None
                and len(websocket._messages) >= self.config.max_queue
                and self.protocol.buffered >= self.config.read_limit
            )
        if full and not self._reading_paused:
            self._reading_paused = True
            transport.pause_reading()
        elif not full and self._reading_paused:
            self._reading_paused = False
            transport.resume_reading()

    def _update_hold_timer(self) -> None:
        if self.protocol.reply_held:
            if self._hold_timer is None:
                self._hold_timer = self.loop.call_later(
                    self.config.close_timeout, self._release_hold
                )
        elif self._hold_timer is not None:
            self._hold_timer.cancel()
            self._hold_timer = None

    def _release_hold(self) -> None:
        # The application did not come back within close_timeout: answer
        # the held Close (or failure) now.  Messages it has not read stay
        # queued, readable before the disconnect: nothing accepted is lost.
        self._hold_timer = None
        self._releasing_hold = True
        self.pump()

    def flush(self) -> None:
        """Write whatever the core has to send, now."""
        self._unflushed = 0
        data = self.protocol.data_to_send()
        if not data or self.transport is None or self._closed:
            return
        transport = self.transport
        if len(data) == 1:
            self._bytes_out += len(data[0])
            transport.write(data[0])
            return
        # writelines() joins its chunks into one buffer: a copy that costs
        # more than a system call once a chunk is large.  Large payloads go
        # out on their own; the small chunks between them are joined.
        small: list[bytes] = []
        for chunk in data:
            size = len(chunk)
            self._bytes_out += size
            if size < _WRITE_ALONE:
                small.append(chunk)
                continue
            if small:
                transport.writelines(small)
                small = []
            transport.write(chunk)
        if small:
            transport.writelines(small)

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self._flush_soon)

    def _flush_soon(self) -> None:
        self._flush_scheduled = False
        self.flush()

    def flush_soon(self, size: int) -> None:
        """Write what the core holds at the end of this loop iteration.

        Whatever else is sent until then joins it in one write: a burst of
        small messages costs one system call.  Once ``write_limit`` bytes
        wait, they are written at once, so that the transport's buffer (and
        ``writing_paused``) always reflects what is pending.

        Args:
            size: the bytes just queued in the core.
        """
        self._unflushed += size
        if self._unflushed >= self.config.write_limit:
            self.flush()
        else:
            self._schedule_flush()

    async def flush_and_drain(self, size: int = 0) -> None:
        """Write what the application sent, then wait while the transport's
        buffer is over ``write_limit``.

        Small messages are written at the end of the current loop iteration,
        together with whatever else is sent until then; once ``write_limit``
        bytes are waiting they are written at once, so that a task sending
        in a tight loop meets backpressure instead of growing memory.

        After ``write_timeout`` with nothing read, the peer is taken as not
        reading: the connection is dropped (``_write_timed_out``) and this
        raises ``WebSocketDisconnect(1008)``.

        The first send after the application took the last queued message
        is written at once instead: it is most likely the reply a peer
        waits for, and no other message remains whose reply could join it.
        Deferring it would cost the round trip a loop iteration (and an
        ``epoll_wait``).  Replies to a burst of messages still leave in one
        write: while messages remain queued, their replies wait, and the
        last one carries them all.

        Args:
            size: the bytes just queued in the core.
        """
        if self._reply_now:
            self._reply_now = False
            self.flush()
        else:
            self.flush_soon(size)
        if not self._writing_paused or self._closed:
            return
        waiter = self.loop.create_future()
        self._drain_waiters.append(waiter)
        await waiter  # resolved by resume_writing() or connection_lost()
        if self.closed and self.websocket is not None:
            ended = self.websocket._ended or Disconnect(CloseCode.ABNORMAL_CLOSURE)
            raise WebSocketDisconnect(ended.code, ended.reason)

    # -- HTTP phase ------------------------------------------------------

    def _handle_http_event(self, event: object) -> None:
        if isinstance(event, HTTPRequest):
            self._cancel_open_timer()
            self._task = self.loop.create_task(self._serve_http(event, time.perf_counter()))
            self.server.task_started(self._task)
        elif isinstance(event, WebSocketRequest):
            self._cancel_open_timer()
            self._request_started = time.perf_counter()
            self._target = event.target
            self._path = event.target.split("?", 1)[0][:200]
            if self.server.refuses_new_websockets():
                self._reject_now(503, "server at capacity or shutting down")
                return
            origins = self.config.origins
            if origins is not None:
                sent = [value for name, value in event.headers if name == "origin"]
                # Several Origin fields cannot all be the page's: refuse.
                if len(sent) > 1 or not origins.allows(sent[0] if sent else None):
                    logger.info("conn %d: origin refused: %r", self.id, sent[:1])
                    self._reject_now(403, "origin not allowed")
                    return
            websocket = WebSocket(
                self,
                event,
                scheme="wss" if self._scheme == "https" else "ws",
                server_host=self.server_host,
                client=self.client,
            )
            try:
                websocket.url  # noqa: B018 - parse now, so a bad request gets 400
            except ValueError as error:
                self._reject_now(400, f"Bad request: {error}")
                return
            self.websocket = websocket
            self.server.websocket_attached()
            self._task = self.loop.create_task(self._serve_websocket(websocket))
            self.server.task_started(self._task)
        elif isinstance(event, RequestRejected):
            logger.info("conn %d: rejected request: %d %s", self.id, event.status, event.reason)
            if self.config.access_log:
                # The core refused the head before it could be read: no
                # request line to show.
                log_access(
                    client=self.client,
                    method=None,
                    path=None,
                    http_version=None,
                    status_code=event.status,
                    started=time.perf_counter(),
                    connection_id=self.id,
                )

    async def _serve_http(self, event: HTTPRequest, started: float) -> None:
        try:
            response = await self._respond(event)
        except asyncio.CancelledError:
            # Cancelled from inside the application (it awaited a cancelled
            # future) or by shutdown once the grace period is over: a client
            # still there must not wait for an answer that never comes.
            if not self._closed:
                logger.error(
                    "conn %d: %s %s: the HTTP handler was cancelled; answered 500",
                    self.id,
                    event.method,
                    event.target,
                )
                self._send_response(event, _internal_error(), started)
            raise
        if not self._closed:
            self._send_response(event, response, started)

    async def _respond(self, event: HTTPRequest) -> Response:
        """The application's response to ``event``, or the error response."""
        try:
            request = Request(
                event.method,
                event.target,
                event.headers,
                event.body,
                scheme=self._scheme,
                client=self.client,
                server_host=self.server_host,
            )
        except ValueError as error:
            return PlainTextResponse(f"Bad request: {error}\n", status_code=400)
        app = self.server.app
        try:
            response = await app.handle_http(request)
            if not isinstance(response, Response):
                raise ApplicationMistake("HTTP handler", app.handle_http, response, "a Response")
        except ApplicationMistake as mistake:
            # The value came back from the application without an error:
            # a traceback would show only the server's frames.
            logger.error(
                "conn %d: %s %s: %s; answered 500", self.id, event.method, event.target, mistake
            )
            return _internal_error()
        except Exception:
            logger.exception("conn %d: error in HTTP handler for %s", self.id, event.target)
            return _internal_error()
        return response

    def _send_response(self, event: HTTPRequest, response: Response, started: float) -> None:
        try:
            self._write_response(response)
        except LocalProtocolError as error:
            # A Response the core cannot send (a 1xx status, a header h11
            # refuses): nothing was written, answer 500 instead.
            logger.error(
                "conn %d: %s %s: the HTTP handler's response %r cannot be sent (%s); answered 500",
                self.id,
                event.method,
                event.target,
                response,
                error,
            )
            response = _internal_error()
            self._write_response(response)
        self.flush()
        self._task = None
        if self.config.access_log:
            log_access(
                client=self.client,
                method=event.method,
                path=event.target,
                http_version=event.http_version,
                status_code=response.status_code,
                started=started,
                connection_id=self.id,
            )
        if not self.protocol.must_close_transport:
            self._start_open_timer()
        self.pump()

    def _write_response(self, response: Response) -> None:
        headers = list(response.header_pairs())
        if self.server.shutting_down:
            headers.append(("connection", "close"))
        self.protocol.send_response(response.status_code, tuple(headers), response.body)

    def _reject_now(self, status: int, reason: str) -> None:
        self.protocol.reject(
            status,
            (("content-type", "text/plain; charset=utf-8"),),
            f"{reason}\n".encode(),
        )
        self.flush()
        self._handshake_answered(status)
        self._close_transport()

    def _handshake_answered(self, status: int) -> None:
        """Write the handshake's access line (101, or the refusal's status)."""
        if self.config.access_log:
            log_access(
                client=self.client,
                # The core passes on only GET HTTP/1.1 handshakes (RFC 6455
                # section 4.1: "The method of the request MUST be GET, and
                # the HTTP version MUST be at least 1.1"); it answers other
                # methods 405 and other versions 505 itself.
                method="GET",
                path=self._target,
                http_version="1.1",
                status_code=status,
                started=self._request_started,
                connection_id=self.id,
            )

    # -- WebSocket phase ---------------------------------------------------

    async def _serve_websocket(self, websocket: WebSocket) -> None:
        app = self.server.app
        # Typed as returning a value: what it returns is checked.
        handle: Callable[[WebSocket], Awaitable[object]] = app.handle_websocket
        try:
            returned = await handle(websocket)
            if returned is not None:
                raise ApplicationMistake("WebSocket handler", handle, returned, "None")
        except WebSocketDisconnect:
            pass
        except ApplicationMistake as mistake:
            # As in _respond: one line, without the server's frames.
            logger.error(
                "conn %d: %s: %s; %s",
                self.id,
                self._path,
                mistake,
                self._failure_outcome(websocket),
            )
            self._application_failed(websocket)
            return
        except Exception:
            logger.exception("conn %d: error in WebSocket handler for %s", self.id, self._path)
            self._application_failed(websocket)
            return
        except asyncio.CancelledError:
            # See _serve_http: a client still there gets an answer.
            if not self._closed:
                logger.error(
                    "conn %d: %s: the WebSocket handler was cancelled; %s",
                    self.id,
                    self._path,
                    self._failure_outcome(websocket),
                )
                self._application_failed(websocket)
            raise
        finally:
            websocket._busy = False
        if self._closed:
            return
        if websocket.application_state is WebSocketState.CONNECTING:
            # The endpoint returned without answering: refuse, as Starlette.
            websocket.application_state = WebSocketState.DISCONNECTED
            self._reject_now(403, "Forbidden")
        elif self.protocol.state is State.OPEN:
            websocket.application_state = WebSocketState.DISCONNECTED
            self.close(CloseCode.NORMAL_CLOSURE, "")
        else:
            self.pump()

    def _failure_outcome(self, websocket: WebSocket) -> str:
        """What ``_application_failed`` will do, for its log line."""
        if self._closed:
            return "the client had gone"
        if websocket.application_state is WebSocketState.CONNECTING:
            return "answered 500"
        if self.protocol.state is State.OPEN:
            return "closed with 1011"
        return "the connection was already ending"

    def _application_failed(self, websocket: WebSocket) -> None:
        """Answer 500 before the handshake is answered, close 1011 after."""
        if websocket.application_state is WebSocketState.CONNECTING:
            websocket.application_state = WebSocketState.DISCONNECTED
            if not self._closed:
                self._reject_now(500, "Internal Server Error")
            return
        # The details stay in the log: a close reason is visible to the peer.
        self.fail(CloseCode.INTERNAL_ERROR, "internal error")

    def accept(
        self, websocket: WebSocket, subprotocol: str | None, headers: tuple[tuple[str, str], ...]
    ) -> None:
        """Send the 101 for ``websocket`` (called by ``WebSocket.accept``)."""
        self.protocol.accept(subprotocol, headers)
        self._accepted = True
        self._handshake_answered(101)
        logger.info(
            "conn %d open path=%s client=%s",
            self.id,
            self._path,
            f"{self.client[0]}:{self.client[1]}" if self.client else "-",
        )
        self._last_message = self.loop.time()
        if self.config.ping_interval is not None:
            self._ping_timer = self.loop.call_later(self.config.ping_interval, self._heartbeat)
        if self.config.receive_timeout is not None:
            self._receive_timer = self.loop.call_later(
                self.config.receive_timeout, self._check_receive_timeout
            )
        if self.server.shutting_down:
            # The handshake was pending when shutdown began, so
            # Server.shutdown() could not close it then: it would stay open
            # until the grace period ends and be aborted.  Start its closing
            # handshake now instead; close() pumps.
            self.close(CloseCode.GOING_AWAY, "server shutting down")
            return
        self.pump()

    def reject(self, response: Response) -> None:
        """Answer the handshake with ``response`` (``send_denial_response``)."""
        self.protocol.reject(response.status_code, tuple(response.header_pairs()), response.body)
        self.flush()
        self._handshake_answered(response.status_code)
        self._close_transport()

    def close(self, code: int, reason: str) -> None:
        """Start the closing handshake; abort if the peer does not finish it."""
        if self.protocol.state is not State.OPEN:
            return
        self.protocol.send_close(code, reason)
        self.flush()
        if self._close_timer is None and not self._closed:
            self._close_timer = self.loop.call_later(self.config.close_timeout, self._abort)
        self.pump()

    def fail(self, code: int, reason: str) -> None:
        """Fail the connection from our side and close the transport."""
        if self.protocol.state in (State.OPEN, State.CLOSING):
            self.protocol.fail(code, reason)
        if self.websocket is not None and self.websocket._ended is None:
            self.websocket._ended = Disconnect(code, reason)
            self.websocket._wake_receiver()
        self.flush()
        self._close_transport()

    def send_ping(self, data: bytes | None) -> asyncio.Future[float]:
        """Send a ping whose pong resolves the returned future with the RTT."""
        payload = data if data is not None else self._next_ping_payload()
        waiter: asyncio.Future[float] = self.loop.create_future()
        self.protocol.send_ping(payload)
        self._pings[payload] = (self.loop.time(), waiter)
        self.flush()
        return waiter

    def _next_ping_payload(self) -> bytes:
        # A counter keeps payloads unique per connection; the random prefix
        # keeps a peer from guessing and forging pongs for future pings.
        self._ping_counter += 1
        return os.urandom(4) + self._ping_counter.to_bytes(4, "big")

    def _pong_received(self, event: Pong) -> None:
        now = self.loop.time()
        for payload in event.acknowledged:
            timer = self._pong_timers.pop(payload, None)
            if timer is not None:
                timer.cancel()
            sent, waiter = self._pings.pop(payload, (now, None))
            rtt = now - sent
            if self.websocket is not None:
                self.websocket.latency = rtt
            if waiter is not None and not waiter.done():
                waiter.set_result(rtt)

    def _heartbeat(self) -> None:
        self._ping_timer = None
        if self.protocol.state is not State.OPEN or self._closed:
            return
        payload = self._next_ping_payload()
        self.protocol.send_ping(payload)
        self._pings[payload] = (self.loop.time(), None)
        self.flush()
        interval = self.config.ping_interval
        assert interval is not None
        timeout = self.config.ping_timeout
        if timeout is not None:
            self._pong_timers[payload] = self.loop.call_later(timeout, self._check_pong, payload)
        self._ping_timer = self.loop.call_later(interval, self._heartbeat)

    def _check_pong(self, payload: bytes) -> None:
        self._pong_timers.pop(payload, None)
        if payload not in self._pings or self._closed:
            return
        websocket = self.websocket
        if websocket is not None and len(websocket._messages) >= self.config.max_queue:
            # Backpressure: while the application's queue is full nothing is
            # parsed, so the pong may well be in our own buffer, unread.  The
            # peer is not to blame for a slow application (this failed
            # healthy connections with 1011): look again later.
            assert self.config.ping_timeout is not None
            self._pong_timers[payload] = self.loop.call_later(
                self.config.ping_timeout, self._check_pong, payload
            )
            return
        logger.info("conn %d: no pong within %ss, closing", self.id, self.config.ping_timeout)
        self.fail(CloseCode.INTERNAL_ERROR, "keepalive ping timeout")

    def _check_receive_timeout(self) -> None:
        self._receive_timer = None
        timeout = self.config.receive_timeout
        if timeout is None or self._closed or self.protocol.state is not State.OPEN:
            return
        idle = self.loop.time() - self._last_message
        if idle >= timeout:
            logger.info("conn %d: no message for %ss, closing", self.id, timeout)
            self.close(CloseCode.GOING_AWAY, "idle timeout")
        else:
            self._receive_timer = self.loop.call_later(timeout - idle, self._check_receive_timeout)

    # -- timers and closing ------------------------------------------------

    def _start_open_timer(self) -> None:
        timeout = self.config.open_timeout
        if timeout is not None and not self._closed:
            self._cancel_open_timer()
            self._open_timer = self.loop.call_later(timeout, self._open_timed_out)

    def _cancel_open_timer(self) -> None:
        if self._open_timer is not None:
            self._open_timer.cancel()
            self._open_timer = None

    def _open_timed_out(self) -> None:
        self._open_timer = None
        if self.protocol.state is State.CONNECTING and (self._task is None or self._task.done()):
            logger.info(
                "conn %d: no complete request within %ss, closing",
                self.id,
                self.config.open_timeout,
            )
            self._abort_or_close(abort=False)

    def _close_transport(self) -> None:
        """Close the transport once everything written has gone out.

        After a completed closing handshake the server closes TCP first
        (RFC 6455 section 7.1.1).  Otherwise, if the peer may still be
        sending (we failed the connection, or refused a request), half-close
        and read until its end of file, up to ``close_timeout``: closing a
        socket with unread input makes the kernel send a reset, which could
        destroy the Close frame or error response before the peer reads it.
        """
        if self._closing_transport or self._closed or self.transport is None:
            return
        self._closing_transport = True
        transport = self.transport
        clean = self.protocol.close_code is not None and not self._failed_by_peer
        if not clean and transport.can_write_eof() and not self.protocol.eof_received:
            if self._reading_paused:
                self._reading_paused = False
                transport.resume_reading()
            transport.write_eof()
            if self._close_timer is not None:
                self._close_timer.cancel()
            self._close_timer = self.loop.call_later(self.config.close_timeout, self._abort)
        else:
            transport.close()

    def _abort(self) -> None:
        self._close_timer = None
        self._abort_or_close(abort=True)

    def _abort_or_close(self, *, abort: bool) -> None:
        transport = self.transport
        if transport is None or self._closed:
            return
        self._closing_transport = True
        if abort:
            transport.abort()
        else:
            transport.close()

    # -- server shutdown -----------------------------------------------------

    def shutdown(self) -> None:
        """Close with 1001 (going away), or finish the HTTP exchange."""
        if self.protocol.state is State.OPEN:
            self.close(CloseCode.GOING_AWAY, "server shutting down")
        elif self.protocol.state is State.CONNECTING and (self._task is None or self._task.done()):
            self._abort_or_close(abort=False)

    def abort(self) -> None:
        """Drop the connection now (end of the shutdown grace period)."""
        self._abort_or_close(abort=True)

    @property
    def writing_paused(self) -> bool:
        """Whether the transport's write buffer is above ``write_limit``."""
        return self._writing_paused

    @property
    def closed(self) -> bool:
        """Whether the transport is gone."""
        return self._closed

    def __repr__(self) -> str:
        return f"<Connection {self.id} {self.protocol.state.name} {self._path}>"


def _internal_error() -> Response:
    # The details stay in the log: the body is visible to the client.
    return PlainTextResponse("Internal Server Error\n", status_code=500)
