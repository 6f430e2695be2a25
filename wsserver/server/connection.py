"""``Connection``: an asyncio protocol driving one ``ServerConnection``.

It follows docs/protocol.md's drive loop: bytes from the transport go into
the core, events come out and go to the application, and whatever the core
wants to write goes to the transport.  Around that it adds what needs a
clock or a task: timeouts, backpressure, the application's task.  Three
helpers have a job of their own: the ``Writer`` decides when bytes are
written, the ``Keepalive`` pings and watches for silence, and the ``Inbox``
holds what was received until the application takes it.

The application's ``WebSocket`` meets the connection at two interfaces
only: it takes messages from the ``Inbox`` and sends through the ``Sender``
methods this class implements (``send_text``, ``close``...).

Backpressure, receiving: events are pulled from the core only while the
inbox holds fewer than ``max_queue`` messages; bytes the core has not
parsed stay in its buffer, and reading from the socket pauses once that
buffer passes ``read_limit``.  Sending: the transport's write buffer has a
high-water mark of ``write_limit``; a send above it waits for
``resume_writing``.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections.abc import Awaitable, Callable
from types import EllipsisType
from typing import TYPE_CHECKING, Any, Protocol, cast

from ..protocol import (
    BinaryMessage,
    CloseCode,
    CloseReceived,
    ConnectionFailed,
    ConnectionLost,
    Headers,
    HTTPRequest,
    LocalProtocolError,
    Opcode,
    Pong,
    RequestBody,
    RequestRejected,
    ServerConnection,
    State,
    TextMessage,
    WebSocketRequest,
)
from ..protocol.frames import PreparedMessage
from .access import log_access
from .app import Application
from .config import ServerConfig
from .datastructures import Address
from .deadlines import DeadlineSweep
from .inbox import Delivery, Disconnect, Inbox
from .keepalive import Keepalive
from .limits import ClientLimiter, ClientSlot, Refusal
from .mistakes import ApplicationMistake, qualified_name
from .proxy import TrustedProxies, forwarded_client
from .rates import ConnectionRates
from .requests import Request
from .responses import PlainTextResponse, Response, StreamingResponse
from .uploads import Upload
from .websocket import WebSocket, WebSocketDisconnect
from .writer import Writer

if TYPE_CHECKING:
    from .metrics import Metrics

__all__ = ["Connection", "ConnectionOwner"]

_current_task = asyncio.current_task

# States as module constants for the pump (an attribute of an Enum class
# costs a descriptor call on Python 3.11).
_CONNECTING = State.CONNECTING
_OPEN = State.OPEN
_TEXT_OPCODE = Opcode.TEXT

logger = logging.getLogger("wsserver")


class ConnectionOwner(Protocol):
    """What a ``Connection`` needs of the server that accepted it (``Server``)."""

    app: Application
    config: ServerConfig
    shutting_down: bool
    #: The close code and reason shutdown() sends every WebSocket: 1001
    #: (going away), or 1012 (service restart) in a rolling restart.
    shutdown_close: tuple[CloseCode, str]
    #: Where every connection's transport reads into (see ``get_buffer``).
    receive_buffer: memoryview
    #: Whose forwarding headers are believed (``ServerConfig.proxy_headers``).
    trusted_proxies: TrustedProxies | None
    #: The per-client limits (``wsserver.server.limits``), ``None`` when off.
    client_limiter: ClientLimiter | None
    #: The Prometheus figures, or ``None`` when metrics are off.
    metrics: Metrics | None
    #: Whether the application reads request bodies as they arrive
    #: (``Request.upload``) rather than whole.
    streams_request_bodies: bool
    #: The ``open_timeout`` and ``handshake_timeout`` deadlines of every
    #: connection, one timer each (``wsserver.server.deadlines``); ``None``
    #: when the timeout is off.
    open_deadlines: DeadlineSweep[Connection] | None
    handshake_deadlines: DeadlineSweep[Connection] | None
    #: The heartbeats at ``ping_interval`` of every WebSocket, one timer.
    heartbeats: DeadlineSweep[Keepalive] | None

    @property
    def loop(self) -> asyncio.AbstractEventLoop: ...

    def next_connection_id(self) -> int: ...

    def connection_opened(self, connection: Connection) -> None: ...

    def connection_closed(self, connection: Connection) -> None: ...

    def task_started(self, task: asyncio.Task[None]) -> None: ...

    def websocket_attached(self) -> None: ...

    def refuses_new_websockets(self) -> bool: ...

    def operations_response(self, request: Request) -> Response | None: ...


class Connection(asyncio.BufferedProtocol):
    """One accepted socket, from its first byte to its closing.

    It implements ``Sender`` for the ``WebSocket`` it creates.
    """

    # Slots, not a __dict__: an idle server holds one Connection per client,
    # and its 30-odd fields in a dict cost about a kilobyte more each.
    __slots__ = (
        "_accepted",
        "_bytes_in",
        "_client_slot",
        "_close_timer",
        "_closed",
        "_closing_transport",
        "_drain_waiters",
        "_failed_by_peer",
        "_handshake_expired",
        "_hold_timer",
        "_inbox",
        "_keepalive",
        "_opened_at",
        "_path",
        "_rate_timer",
        "_rates",
        "_reading_paused",
        "_releasing_hold",
        "_request_started",
        "_scheme",
        "_server_closed",
        "_target",
        "_task",
        "_upload",
        "_write_timer",
        "_writer",
        "_writing_paused",
        "binary_bytes_out",
        "binary_in",
        "binary_out",
        "client",
        "config",
        "id",
        "local",
        "loop",
        "peer",
        "protocol",
        "server",
        "server_host",
        "text_bytes_out",
        "text_in",
        "text_out",
        "transport",
        "websocket",
    )

    def __init__(self, server: ConnectionOwner) -> None:
        self.server = server
        self.config = server.config
        self.loop = server.loop
        self.id = server.next_connection_id()
        self.protocol = ServerConnection(
            self.config.protocol,
            deflate=self.config.deflate,
            stream_bodies=server.streams_request_bodies,
        )
        self.transport: asyncio.Transport | None = None
        self.websocket: WebSocket | None = None
        # The transport's peer, and the client of the current request: the
        # same unless a trusted proxy forwarded it (wsserver.server.proxy).
        self.peer: Address | None = None
        self.client: Address | None = None
        self.server_host: str | None = None
        # The local address the transport was accepted on (ASGI's ``server``).
        self.local: Address | None = None
        self._writer = Writer(self.protocol, self.loop, self.config.write_limit)
        # Set with the WebSocket, when a handshake request arrives.
        self._inbox: Inbox | None = None
        self._keepalive: Keepalive | None = None
        self._scheme = "https" if self.config.ssl_context is not None else "http"
        self._opened_at = time.monotonic()
        self._bytes_in = 0
        self._path = "-"
        self._task: asyncio.Task[None] | None = None
        # The current request's body, for an application that streams them.
        self._upload: Upload | None = None
        self._reading_paused = False
        self._writing_paused = False
        self._drain_waiters: list[asyncio.Future[None]] = []
        self._closing_transport = False
        self._closed = False
        self._failed_by_peer = False
        # Timers are call_later handles, not tasks: an idle connection then
        # costs a heap entry, not a coroutine frame.  The open_timeout and
        # handshake_timeout deadlines are the server's sweeps' (see
        # ConnectionOwner): one timer for all connections.
        self._close_timer: asyncio.TimerHandle | None = None
        self._hold_timer: asyncio.TimerHandle | None = None
        self._write_timer: asyncio.TimerHandle | None = None
        # Set when the endpoint's answer to the handshake did not come
        # within handshake_timeout, and the server answered 503 in its place.
        self._handshake_expired = False
        self._releasing_hold = False
        # Set by accept(): only an accepted WebSocket gets the "open" log
        # line, and so only it gets the matching "closed" line.
        self._accepted = False
        self._client_slot: ClientSlot | None = None
        # The WebSocket's message and byte buckets (wsserver.server.rates),
        # from accept(); the timer runs while it is over a rate and paused.
        self._rates: ConnectionRates | None = None
        self._rate_timer: asyncio.TimerHandle | None = None
        # The WebSocket handshake's target and arrival, for its access line.
        self._target: str | None = None
        self._request_started = 0.0
        # Whether this side started the end of the WebSocket (a Close sent
        # first, a failure, a drop): the "side" of the close line and metric.
        self._server_closed = False
        # The traffic the metrics add up (wsserver.server.metrics): plain
        # integers incremented inline, read only when the connection ends
        # and at scrape time.  Counted whether or not metrics are on: an
        # addition costs less than the test that would skip it.
        self.text_in = self.binary_in = 0
        self.text_out = self.binary_out = 0
        self.text_bytes_out = self.binary_bytes_out = 0

    # -- transport callbacks -------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A cast, not an isinstance check: uvloop's transports implement the
        # interface without subclassing asyncio.Transport.
        transport = cast(asyncio.Transport, transport)
        self.transport = transport
        self._writer.transport = transport
        transport.set_write_buffer_limits(high=self.config.write_limit)
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple) and len(peer) >= 2:
            self.peer = self.client = Address(str(peer[0]), int(peer[1]))
        sock = transport.get_extra_info("sockname")
        if isinstance(sock, tuple) and len(sock) >= 2:
            self.server_host = f"{sock[0]}:{sock[1]}"
            self.local = Address(str(sock[0]), int(sock[1]))
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
        if self._rates is not None:
            self._rates.received_bytes(len(data), self.loop.time())
        self.protocol.receive_data(data)
        self.pump()

    def eof_received(self) -> bool:
        self.protocol.receive_eof()
        upload = self._upload
        if upload is not None and upload.complete:
            # The client has sent all it will and closed its side while its
            # request is answered: an application that streams bodies takes
            # it as gone, as uvicorn does (an unfinished body fails instead,
            # in the core: 400).
            upload.client_gone()
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
        self._writer.transport = None
        for timer in (
            self._close_timer,
            self._hold_timer,
            self._write_timer,
            self._rate_timer,
        ):
            if timer is not None:
                timer.cancel()
        self._cancel_open_timer()
        self._cancel_handshake_timer()
        code: int = CloseCode.ABNORMAL_CLOSURE
        inbox = self._inbox
        if inbox is not None:
            if inbox.ended is None:
                inbox.ended = Disconnect(CloseCode.ABNORMAL_CLOSURE)
            code = inbox.ended.code
            inbox.wake()
        if self._keepalive is not None:
            self._keepalive.stop(code)
        if self._upload is not None:
            self._upload.client_gone()
        websocket = self.websocket
        for drain in self._drain_waiters:
            if not drain.done():
                drain.set_result(None)
        self._drain_waiters.clear()
        self.server.connection_closed(self)
        if self._client_slot is not None:
            self._client_slot.release()
            self._client_slot = None
        metrics = self.server.metrics
        if metrics is not None:
            metrics.connection_ended(self)
        # Only an accepted WebSocket logged an "open" line.
        if websocket is not None and self._accepted:
            self._log_end(code, inbox.ended.reason if inbox and inbox.ended else "", metrics)

    def _log_end(self, code: int, reason: str, metrics: Metrics | None) -> None:
        """The WebSocket's end: its metric and its log line (once per connection)."""
        protocol = self.protocol
        if self._server_closed or self._failed_by_peer:
            # Our Close (or drop) came first: its code is the one to count.
            side = "server"
            if protocol.sent_close_code is not None:
                code, reason = protocol.sent_close_code, protocol.sent_close_reason
        else:
            side = "client"
        if metrics is not None:
            metrics.websocket_closed(code, side)
        if not logger.isEnabledFor(logging.INFO):
            return  # (the line's fields cost more than the test, per connection)
        client = f"{self.client[0]}:{self.client[1]}" if self.client else None
        duration = time.monotonic() - self._opened_at
        logger.info(
            "conn %d closed path=%s client=%s code=%s reason=%r by=%s duration=%.3fs in=%d out=%d",
            self.id,
            self._path,
            client or "-",
            code,
            reason,
            side,
            duration,
            self._bytes_in,
            self._writer.bytes_out,
            extra={
                "connection_id": self.id,
                "client": client,
                "path": self._path,
                "close_code": code,
                "close_reason": reason,
                "closed_by": side,
                "duration_ms": round(duration * 1000.0, 3),
                "bytes_in": self._bytes_in,
                "bytes_out": self._writer.bytes_out,
            },
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
        self._server_closed = True
        if self.server.metrics is not None:
            self.server.metrics.slow_consumer_closed("write_timeout")
        inbox = self._inbox
        if inbox is not None and inbox.ended is None:
            # Not woken here: the receiver learns it when the transport is
            # gone, a moment later (connection_lost).
            inbox.ended = Disconnect(CloseCode.POLICY_VIOLATION, "peer not reading")
        self._abort_or_close(abort=True)

    # -- the drive loop --------------------------------------------------

    def pump(self) -> None:
        """Pull events from the core as far as the application's inbox allows.

        A Close frame or protocol error from the peer is held back while the
        application has messages it has not taken, or is busy with the one
        it just took: its replies to them must go out before our Close
        (RFC 6455 section 5.5.1 forbids data after it).  The hold lasts at
        most ``close_timeout``.  Only while OPEN: once our own Close is out
        (CLOSING) the core answers nothing, so holding the peer's Close
        would only keep the connection up, for up to ``close_timeout``,
        whenever the application closed (or the server shut down) while
        busy with a message.
        """
        if self._closed:
            return
        inbox = self._inbox
        if inbox is not None:
            # A view waiting for its next message takes it here, in this
            # callback (wsserver.server.dispatch), unless this pump runs
            # inside a task (a handler's own close(), the application's
            # receive()).  The pump then runs as the application's task and
            # in its context, entered once for all the messages of the read.
            dispatch = inbox.dispatch
            if dispatch is not None and _current_task(self.loop) is None:
                dispatch.run(self._pump)
                return
        self._pump(None)

    def _pump(self, dispatch: Delivery | None) -> None:
        """``pump``'s loop; ``dispatch`` runs a parked view's handler directly."""
        protocol = self.protocol
        inbox = self._inbox
        rates = self._rates
        now = self.loop.time() if rates is not None else 0.0
        received = False
        batched = False
        while True:
            if protocol.state is _CONNECTING:
                if self._task is not None and not self._task.done():
                    # The application is answering the current request; the
                    # rest of a streamed body waits for it to ask.
                    if self._upload is not None:
                        self._upload.wake()
                    break
                if self._writing_paused:
                    break  # no more answers for a peer that does not read them
                http_event = protocol.next_event()
                if http_event is None:
                    break
                self._handle_http_event(http_event)
                continue
            if inbox is None:
                break
            if self._writing_paused:
                break  # parsed pings would queue more pongs for a peer not reading
            if self._rate_timer is not None:
                break  # over its rate: nothing more parsed until it is under
            messages = inbox.messages
            releasing = self._releasing_hold and protocol.reply_held
            if len(messages) >= self.config.max_queue and not releasing:
                inbox.blocked = True
                break
            hold = (bool(messages) or inbox.busy) and not releasing
            event = protocol.next_event(hold_replies=hold and protocol.state is _OPEN)
            if event is None:
                break
            # One class per test rather than a union (which isinstance walks):
            # no dearer, and it tells the type for the counters.
            if isinstance(event, TextMessage):
                received = True
                self.text_in += 1
                if dispatch is not None and not messages:
                    if not batched:
                        batched = True
                        self._writer.batch()
                    if not dispatch.deliver(event):
                        dispatch = None  # in the task now: what follows queues behind it
                else:
                    messages.append(event)
                if rates is not None and rates.received_message(now):
                    break
            elif isinstance(event, BinaryMessage):
                received = True
                self.binary_in += 1
                if dispatch is not None and not messages:
                    if not batched:
                        batched = True
                        self._writer.batch()
                    if not dispatch.deliver(event):
                        dispatch = None
                else:
                    messages.append(event)
                if rates is not None and rates.received_message(now):
                    break
            elif isinstance(event, Pong):
                if self._keepalive is not None:
                    self._keepalive.pong_received(event)
            elif isinstance(event, CloseReceived | ConnectionFailed | ConnectionLost):
                self._failed_by_peer = isinstance(event, ConnectionFailed)
                if self._failed_by_peer:
                    logger.info("conn %d failed by peer: %d %s", self.id, event.code, event.reason)
                    if event.code == CloseCode.MESSAGE_TOO_BIG and self.server.metrics is not None:
                        self.server.metrics.limit_hit(
                            "fragments" if "fragments" in event.reason else "message_size"
                        )
                inbox.ended = Disconnect(event.code, event.reason)
            # A Ping needs nothing here: the core has queued the pong.
        if batched:
            # The replies of every handler run above, with the pongs parsed
            # meanwhile, in one write, before this callback returns.
            self._writer.end_batch()
        self._releasing_hold = False
        if rates is not None and self._rate_timer is None and self._over_rate(rates, now):
            return
        if inbox is not None:
            if received:
                inbox.last_received = self.loop.time()
            if inbox.messages or inbox.ended is not None:
                inbox.wake()
            held = inbox.held = protocol.reply_held
            if held:
                if self._hold_timer is None:
                    self._hold_timer = self.loop.call_later(
                        self.config.close_timeout, self._release_hold
                    )
            elif self._hold_timer is not None:
                self._hold_timer.cancel()
                self._hold_timer = None
        if protocol.must_close_transport:
            self._writer.flush()
            self._update_reading()
            self._close_transport()
            return
        # Pongs and the like join the application's replies in one write at
        # the end of this loop iteration; nothing is scheduled if there are
        # none.
        self._writer.collect()
        self._update_reading()

    def _update_reading(self) -> None:
        transport = self.transport
        if transport is None or self._closing_transport:
            return
        inbox = self._inbox
        if self.protocol.state is _CONNECTING:
            # While the application answers a request, the core keeps what
            # arrives (bounded by its own limits); stop reading once anything
            # does.  (Not before: a client waits for its answer, and pausing
            # and resuming every connection costs two epoll_ctl calls.)  A
            # body the application streams may wait up to read_limit bytes
            # for it to ask for more: the next piece is then at hand.
            upload = self._upload
            allowed = self.config.read_limit if upload is not None and not upload.complete else 0
            full = self._writing_paused or (
                self._task is not None
                and not self._task.done()
                and self.protocol.buffered > allowed
            )
        else:
            full = (
                self._writing_paused
                or self._rate_timer is not None
                or (
                    inbox is not None
                    and len(inbox.messages) >= self.config.max_queue
                    and self.protocol.buffered >= self.config.read_limit
                )
            )
        if full and not self._reading_paused:
            self._reading_paused = True
            transport.pause_reading()
        elif not full and self._reading_paused:
            self._reading_paused = False
            transport.resume_reading()

    def _over_rate(self, rates: ConnectionRates, now: float) -> bool:
        """Past a rate: pause reading until back under it, or fail with 1008
        (``rate_limit_policy``).  Returns whether the connection was failed."""
        wait, which = rates.overdrawn(now)
        if wait <= 0.0:
            return False
        limit = f"{which}_rate_per_connection"
        metrics = self.server.metrics
        if self.config.rate_limit_policy == "close" and self.protocol.state is State.OPEN:
            logger.info("conn %d: over its %s; closing with 1008", self.id, limit)
            rates.logged = True  # what is read until the end is paused, not counted again
            if metrics is not None:
                metrics.limit_hit(limit)
            self.fail(CloseCode.POLICY_VIOLATION, f"{which} rate exceeded")
            return True
        if not rates.logged:
            rates.logged = True
            if metrics is not None:
                metrics.limit_hit(limit)
            logger.info(
                "conn %d: over its %s; reading paused for %.3f s (logged once per connection)",
                self.id,
                limit,
                wait,
            )
        self._rate_timer = self.loop.call_later(wait, self._rate_refilled)
        return False

    def _rate_refilled(self) -> None:
        self._rate_timer = None
        self.pump()

    def _release_hold(self) -> None:
        # The application did not come back within close_timeout: answer
        # the held Close (or failure) now.  Messages it has not read stay
        # queued, readable before the disconnect: nothing accepted is lost.
        self._hold_timer = None
        self._releasing_hold = True
        self.pump()

    def flush(self) -> None:
        """Write whatever the core has to send, now."""
        self._writer.flush()

    # -- the Sender interface: what the WebSocket asks ----------------------

    @property
    def is_open(self) -> bool:
        """Whether messages can be sent: the core is OPEN and the transport up."""
        return self.protocol.state is _OPEN and not self._closed

    @property
    def latency(self) -> float | None:
        """The last round-trip time a pong measured, in seconds."""
        return self._keepalive.latency if self._keepalive is not None else None

    # The three sends below are the per-message path: each is one coroutine
    # with everything inline (one check of the core, the core's send, the
    # writer), and it suspends only for backpressure.  After write_timeout
    # with nothing read, the peer is taken as not reading: the connection
    # is dropped (_write_timed_out) and the waiting send raises
    # WebSocketDisconnect(1008).

    async def send_text(self, data: str, compress: bool | None = None) -> None:
        """Send a text message; wait while the transport's buffer is full."""
        protocol = self.protocol
        if protocol.state is not _OPEN:
            raise self._disconnected()
        size = protocol.send_text(data, compress=compress)
        self.text_out += 1
        self.text_bytes_out += size
        self._writer.sent(size)
        if self._writing_paused and not self._closed:
            await self._drain()

    async def send_bytes(
        self, data: bytes | bytearray | memoryview, compress: bool | None = None
    ) -> None:
        """Send a binary message; wait while the transport's buffer is full."""
        protocol = self.protocol
        if protocol.state is not _OPEN:
            raise self._disconnected()
        size = protocol.send_bytes(data, compress=compress)
        self.binary_out += 1
        self.binary_bytes_out += size
        self._writer.sent(size)
        if self._writing_paused and not self._closed:
            await self._drain()

    async def send_fragment(
        self, data: str | bytes, *, fin: bool, compress: bool | None = None
    ) -> None:
        """Send a fragment of a streamed message (RFC 6455 section 5.4)."""
        protocol = self.protocol
        if protocol.state is not _OPEN:
            raise self._disconnected()
        size = protocol.send_fragment(data, fin=fin, compress=compress)
        # A streamed message counts once, at its last fragment; its bytes
        # as they go.
        if isinstance(data, str):
            self.text_out += fin
            self.text_bytes_out += size
        else:
            self.binary_out += fin
            self.binary_bytes_out += size
        self._writer.sent(size)
        if self._writing_paused and not self._closed:
            await self._drain()

    def send_prepared(self, message: PreparedMessage, size: int, *, compress: bool) -> None:
        """Queue a message encoded once for many connections (``broadcast``).

        ``size`` is ``len(message.frame)``, which the caller computes once
        for all its connections.  Written with the end-of-iteration write,
        together with whatever else this connection is sent meanwhile (the
        next broadcasts of a burst): one system call per connection, not
        one per message.
        """
        self.protocol.send_prepared(message, compress=compress)
        if message.opcode is _TEXT_OPCODE:
            self.text_out += 1
            self.text_bytes_out += len(message.payload)
        else:
            self.binary_out += 1
            self.binary_bytes_out += len(message.payload)
        self._writer.queued(size)

    def message_dropped(self, *, closing: bool) -> None:
        """A broadcast skipped this slow peer (and closes it, with ``closing``)."""
        metrics = self.server.metrics
        if metrics is not None:
            metrics.broadcast_dropped()
            if closing:
                metrics.slow_consumer_closed("broadcast")

    def ping(self, data: bytes | None) -> asyncio.Future[float]:
        """Send a ping whose pong resolves the returned future with the RTT."""
        keepalive = self._keepalive
        if self.protocol.state is not _OPEN or keepalive is None:
            raise self._disconnected()
        return keepalive.ping(data)

    def configure_keepalive(
        self,
        *,
        ping_interval: float | EllipsisType | None = ...,
        receive_timeout: float | EllipsisType | None = ...,
    ) -> None:
        """``WebSocket.configure_keepalive``: this connection's own settings."""
        if self._keepalive is not None:
            self._keepalive.configure(ping_interval=ping_interval, receive_timeout=receive_timeout)

    async def _drain(self) -> None:
        # Resolved by resume_writing() or connection_lost().
        waiter = self.loop.create_future()
        self._drain_waiters.append(waiter)
        await waiter
        if self._closed:
            raise self._disconnected()

    def _disconnected(self) -> WebSocketDisconnect:
        """What a send raises once the peer is gone or the closing handshake began."""
        inbox = self._inbox
        ended = inbox.ended if inbox is not None else None
        if ended is None:
            return WebSocketDisconnect(CloseCode.ABNORMAL_CLOSURE)
        return WebSocketDisconnect(ended.code, ended.reason)

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
                if self.server.metrics is not None and not self.server.shutting_down:
                    self.server.metrics.limit_hit("max_connections")
                self._reject_now(503, "server at capacity or shutting down")
                return
            scheme = "wss" if self._scheme == "https" else "ws"
            if self.server.trusted_proxies is not None:
                self.client, scheme = forwarded_client(
                    self.server.trusted_proxies,
                    self.peer,
                    event.headers,
                    self._scheme,
                    websocket=True,
                )
            limiter = self.server.client_limiter
            if limiter is not None and self._limited_client():
                assert self.client is not None
                admitted = limiter.admit(self.client.host)
                if isinstance(admitted, Refusal):
                    if self.server.metrics is not None:
                        self.server.metrics.limit_hit(admitted.limit)
                    self._reject_now(
                        admitted.status,
                        admitted.reason,
                        (("retry-after", str(admitted.retry_after)),),
                    )
                    return
                # Given back when the connection ends, however it ends.
                self._client_slot = admitted
            origins = self.config.origins
            if origins is not None:
                sent = [value for name, value in event.headers if name == "origin"]
                # Several Origin fields cannot all be the page's: refuse.
                if len(sent) > 1 or not origins.allows(sent[0] if sent else None):
                    logger.info("conn %d: origin refused: %r", self.id, sent[:1])
                    self._reject_now(403, "origin not allowed")
                    return
            inbox = Inbox(self.loop, self.config.max_queue, self._writer, self)
            websocket = WebSocket(
                self,
                inbox,
                event,
                connection_id=self.id,
                max_message_size=self.protocol.settings.max_message_size,
                scheme=scheme,
                server_host=self.server_host,
                client=self.client,
                root_path=self.config.root_path,
                server=self.local,
            )
            try:
                # The URL and its query, parsed now: a bad one gets 400, and
                # the application's reads cannot fail later (the query's
                # field count was found by fuzz/fuzz_http_fields.py).
                websocket.query_params  # noqa: B018
            except ValueError as error:
                self._reject_now(400, f"Bad request: {error}")
                return
            self.websocket = websocket
            self._inbox = inbox
            self._keepalive = Keepalive(
                connection_id=self.id,
                config=self.config,
                loop=self.loop,
                core=self.protocol,
                writer=self._writer,
                inbox=inbox,
                connection=self,
                metrics=self.server.metrics,
                heartbeats=self.server.heartbeats,
            )
            self.server.websocket_attached()
            # In a context the inbox keeps: a view's handler the pump runs
            # outside the task runs in the task's own (wsserver.server.dispatch).
            context = contextvars.copy_context()
            self._task = self.loop.create_task(self._serve_websocket(websocket), context=context)
            inbox.task = self._task
            inbox.context = context
            self.server.task_started(self._task)
            deadlines = self.server.handshake_deadlines
            if deadlines is not None:
                deadlines.start(self)
        elif isinstance(event, RequestRejected):
            logger.info("conn %d: rejected request: %d %s", self.id, event.status, event.reason)
            metrics = self.server.metrics
            if metrics is not None:
                metrics.http_response(event.status)
                if event.status in _LIMIT_STATUSES:
                    metrics.limit_hit(_LIMIT_STATUSES[event.status])
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

    def _limited_client(self) -> bool:
        """Whether the per-client limits count this request's client.

        Not a peer without an address (a Unix socket), nor a trusted proxy
        that forwarded no client address: every client behind it would
        share its count, and one busy proxy would lock them all out.
        """
        client = self.client
        if client is None:
            return False
        trusted = self.server.trusted_proxies
        return not (client == self.peer and trusted is not None and trusted.trusts(client.host))

    async def _serve_http(self, event: HTTPRequest, started: float) -> None:
        try:
            response = await self._respond(event)
        except asyncio.CancelledError:
            # Cancelled from inside the application (it awaited a cancelled
            # future) or by shutdown once the grace period is over: a client
            # still there must not wait for an answer that never comes.
            if not self._closed and not self._closing_transport:
                logger.error(
                    "conn %d: %s %s: the HTTP handler was cancelled; answered 500",
                    self.id,
                    event.method,
                    event.target,
                )
                self._send_response(event, _internal_error(), started)
            raise
        if self._closed or self._closing_transport:
            return  # the client has gone, or its streamed body failed
        if isinstance(response, StreamingResponse):
            await self._stream_response(event, response, started)
        else:
            self._send_response(event, response, started)

    async def _stream_response(
        self, event: HTTPRequest, response: StreamingResponse, started: float
    ) -> None:
        """Send the head, then each piece of the body as the application makes it.

        Waits while the transport is backed up, as a WebSocket send does.
        Once the head is out there is no taking it back: if the content
        fails or is cancelled, the connection is dropped without the end of
        the body, so that the client does not take a part for the whole.
        """
        try:
            self.protocol.start_response(response.status_code, self._response_headers(response))
        except LocalProtocolError as error:
            # As in _send_response: nothing was written, answer 500.
            self._log_unsendable(event, response, error)
            await _close_content(response)
            self._send_response(event, _internal_error(), started)
            return
        self.flush()
        charset = response.charset
        finished = False
        try:
            async for piece in response.content:
                data = piece.encode(charset) if isinstance(piece, str) else bytes(piece)
                self.protocol.send_body(data)
                self.flush()
                while self._writing_paused and not self._closed:
                    waiter = self.loop.create_future()
                    self._drain_waiters.append(waiter)
                    await waiter
                if self._closed:
                    break  # not one piece more for a client that has gone
            else:
                finished = True
        except Exception:
            logger.exception(
                "conn %d: error in the streamed body of %s %s; connection dropped",
                self.id,
                event.method,
                event.target,
            )
        except asyncio.CancelledError:
            self._abort_or_close(abort=True)
            raise
        finally:
            await _close_content(response)
        if not finished or self._closed or self._closing_transport:
            self._abort_or_close(abort=True)
            return
        self.protocol.end_response()
        self._response_sent(event, response.status_code, started)

    async def _respond(self, event: HTTPRequest) -> Response:
        """The application's response to ``event``, or the error response."""
        scheme = self._scheme
        if self.server.trusted_proxies is not None:
            self.client, scheme = forwarded_client(
                self.server.trusted_proxies, self.peer, event.headers, scheme, websocket=False
            )
        upload = None
        if self.server.streams_request_bodies:
            upload = self._upload = (
                Upload(self.loop, self) if event.streamed else Upload(self.loop, body=event.body)
            )
        try:
            request = Request(
                event.method,
                event.target,
                event.headers,
                event.body,
                scheme=scheme,
                client=self.client,
                server_host=self.server_host,
                root_path=self.config.root_path,
                server=self.local,
                http_version=event.http_version,
                upload=upload,
            )
        except ValueError as error:
            return PlainTextResponse(f"Bad request: {error}\n", status_code=400)
        operations = self.server.operations_response(request)
        if operations is not None:
            return operations
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

    def next_body_piece(self) -> RequestBody | None:
        """The next piece of the streamed body, for its ``Upload`` (``BodySource``).

        The core parses what has arrived only now; a client waiting for
        ``100 (Continue)`` gets it now (RFC 9110 section 10.1.1: the server
        may send it once it means to read the body).  A body the core
        refuses (malformed, over ``max_body_size``, cut short) was answered
        by the core if the response had not begun, and ends the connection.
        """
        upload = self._upload
        if self._closed or upload is None:
            return None
        event = self.protocol.next_event()
        if isinstance(event, RequestRejected):
            self._handle_http_event(event)  # its log line, metric and access line
            self.flush()
            self._close_transport()
            upload.client_gone()
            return None
        self.flush()
        self._update_reading()
        return event if isinstance(event, RequestBody) else None

    def _log_unsendable(
        self, event: HTTPRequest, response: Response, error: LocalProtocolError
    ) -> None:
        logger.error(
            "conn %d: %s %s: the HTTP handler's response %r cannot be sent (%s); answered 500",
            self.id,
            event.method,
            event.target,
            response,
            error,
        )

    def _send_response(self, event: HTTPRequest, response: Response, started: float) -> None:
        try:
            self._write_response(response)
        except LocalProtocolError as error:
            # A Response the core cannot send (a 1xx status, a header h11
            # refuses): nothing was written, answer 500 instead.
            self._log_unsendable(event, response, error)
            response = _internal_error()
            self._write_response(response)
        self._response_sent(event, response.status_code, started)

    def _response_sent(self, event: HTTPRequest, status: int, started: float) -> None:
        """Write what is left of a response; log it; wait for the next request."""
        self.flush()
        self._task = None
        upload, self._upload = self._upload, None
        if upload is not None and not upload.complete:
            # The rest of the body will not be read (the core closes the
            # connection): a receive() still waiting for it ends.
            upload.client_gone()
        if self.server.metrics is not None:
            self.server.metrics.http_response(status)
        if self.config.access_log:
            log_access(
                client=self.client,
                method=event.method,
                path=event.target,
                http_version=event.http_version,
                status_code=status,
                started=started,
                connection_id=self.id,
            )
        if not self.protocol.must_close_transport:
            self._start_open_timer()
        self.pump()

    def _response_headers(self, response: Response) -> tuple[tuple[str, str], ...]:
        headers = list(response.header_pairs())
        headers += self.config.headers
        if self.server.shutting_down:
            headers.append(("connection", "close"))
        return tuple(headers)

    def _write_response(self, response: Response) -> None:
        self.protocol.send_response(
            response.status_code, self._response_headers(response), response.body
        )

    def _reject_now(self, status: int, reason: str, headers: Headers = ()) -> None:
        self.protocol.reject(
            status,
            (("content-type", "text/plain; charset=utf-8"), *headers, *self.config.headers),
            f"{reason}\n".encode(),
        )
        self.flush()
        self._handshake_answered(status)
        self._close_transport()

    def handshake_deadline_passed(self) -> None:
        """The endpoint neither accepted nor refused within ``handshake_timeout``.

        Called by the server's sweep (``wsserver.server.deadlines``), up to
        its resolution after the deadline.

        503, not 500: nothing in the application failed that the server
        can see, it only did not answer in time (a slow service it waits
        for, most often), and the client may well succeed if it tries again
        later (RFC 9110 section 15.6.4: "unable to handle the request due to
        a temporary overload ... which will likely be alleviated after some
        delay").  500 would also read as a crash in the logs and metrics,
        where a timeout is what to look for.  The answer goes out before the
        task is cancelled, so that the client is answered even if the
        endpoint swallows the cancellation.
        """
        task = self._task
        if self._closed or self.protocol.state is not _CONNECTING or task is None or task.done():
            return
        self._handshake_expired = True
        if self.server.metrics is not None:
            self.server.metrics.limit_hit("handshake_timeout")
        where = _suspended_in(task) or qualified_name(self.server.app.handle_websocket)
        logger.error(
            "conn %d: %s: the WebSocket endpoint %s neither accepted nor refused the "
            "handshake within %ss (handshake_timeout); answered 503 and cancelled it",
            self.id,
            self._path,
            where,
            self.config.handshake_timeout,
        )
        self._reject_now(503, "Service Unavailable")
        task.cancel()

    def _handshake_answered(self, status: int) -> None:
        """Write the handshake's access line (101, or the refusal's status)."""
        self._cancel_handshake_timer()
        if self.server.metrics is not None:
            self.server.metrics.handshake(status)
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
                self._failure_outcome(),
            )
            await self._application_failed(websocket)
            return
        except Exception:
            logger.exception("conn %d: error in WebSocket handler for %s", self.id, self._path)
            await self._application_failed(websocket)
            return
        except asyncio.CancelledError:
            # See _serve_http: a client still there gets an answer (unless
            # the handshake timeout answered it and cancelled the task).
            if not self._closed and not self._handshake_expired:
                logger.error(
                    "conn %d: %s: the WebSocket handler was cancelled; %s",
                    self.id,
                    self._path,
                    self._failure_outcome(),
                )
                await self._application_failed(websocket)
            raise
        finally:
            if self._inbox is not None:
                self._inbox.busy = False
        if self._closed:
            return
        state = self.protocol.state
        if state is _CONNECTING or state is _OPEN:
            # The endpoint returned without answering the handshake (403, as
            # Starlette), or without closing (1000): the server does it on
            # its behalf, as the application would have.
            await websocket.close()
        else:
            self.pump()

    def _failure_outcome(self) -> str:
        """What ``_application_failed`` will do, for its log line."""
        if self._closed:
            return "the client had gone"
        state = self.protocol.state
        if state is _CONNECTING:
            return "answered 500"
        if state is _OPEN:
            return "closed with 1011"
        return "the connection was already ending"

    async def _application_failed(self, websocket: WebSocket) -> None:
        """Answer 500 before the handshake is answered, close 1011 after."""
        if self.protocol.state is _CONNECTING:
            if not self._closed:
                # Through the WebSocket, as the application would refuse.
                await websocket.send_denial_response(_internal_error())
            return
        # The details stay in the log: a close reason is visible to the peer.
        self.fail(CloseCode.INTERNAL_ERROR, "internal error")

    def accept(self, subprotocol: str | None, headers: tuple[tuple[str, str], ...]) -> str | None:
        """Send the 101 (``WebSocket.accept``); the extensions agreed."""
        self.protocol.accept(subprotocol, headers + self.config.headers)
        extensions = self.protocol.extensions
        self._accepted = True
        self._rates = self.config.connection_rates(self.loop.time())
        self._handshake_answered(101)
        if logger.isEnabledFor(logging.INFO):
            logger.info(
                "conn %d open path=%s client=%s",
                self.id,
                self._path,
                f"{self.client[0]}:{self.client[1]}" if self.client else "-",
            )
        if self._keepalive is not None:
            self._keepalive.start()
        if self.server.shutting_down:
            # The handshake was pending when shutdown began, so
            # Server.shutdown() could not close it then: it would stay open
            # until the grace period ends and be aborted.  Start its closing
            # handshake now instead; close() pumps.
            self.close(*self.server.shutdown_close)
            return extensions
        self.pump()
        return extensions

    def reject(self, response: Response) -> None:
        """Answer the handshake with ``response`` (``send_denial_response``)."""
        self.protocol.reject(
            response.status_code,
            (*response.header_pairs(), *self.config.headers),
            response.body,
        )
        self.flush()
        self._handshake_answered(response.status_code)
        self._close_transport()

    def close(self, code: int, reason: str) -> None:
        """Start the closing handshake; abort if the peer does not finish it."""
        if self.protocol.state is not State.OPEN:
            return
        self._server_closed = True
        self.protocol.send_close(code, reason)
        self.flush()
        if self._close_timer is None and not self._closed:
            self._close_timer = self.loop.call_later(self.config.close_timeout, self._abort)
        self.pump()

    def fail(self, code: int, reason: str) -> None:
        """Fail the connection from our side and close the transport."""
        if self.protocol.state is State.OPEN:
            self._server_closed = True
        if self.protocol.state in (State.OPEN, State.CLOSING):
            self.protocol.fail(code, reason)
        inbox = self._inbox
        if inbox is not None and inbox.ended is None:
            inbox.end(Disconnect(code, reason))
        self.flush()
        self._close_transport()

    # -- timers and closing ------------------------------------------------

    def _start_open_timer(self) -> None:
        deadlines = self.server.open_deadlines
        if deadlines is not None and not self._closed:
            deadlines.start(self)

    def _cancel_open_timer(self) -> None:
        deadlines = self.server.open_deadlines
        if deadlines is not None:
            deadlines.cancel(self)

    def _cancel_handshake_timer(self) -> None:
        deadlines = self.server.handshake_deadlines
        if deadlines is not None:
            deadlines.cancel(self)

    def open_deadline_passed(self) -> None:
        """No complete request within ``open_timeout``: close the connection.

        Called by the server's sweep (``wsserver.server.deadlines``), up to
        its resolution after the deadline.
        """
        if self.protocol.state is State.CONNECTING and (self._task is None or self._task.done()):
            logger.info(
                "conn %d: no complete request within %ss, closing",
                self.id,
                self.config.open_timeout,
            )
            if self.server.metrics is not None:
                self.server.metrics.limit_hit("open_timeout")
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
        """Close with the server's ``shutdown_close``, or finish the HTTP exchange."""
        if self.protocol.state is State.OPEN:
            self.close(*self.server.shutdown_close)
        elif self.protocol.state is State.CONNECTING and (self._task is None or self._task.done()):
            if self._bytes_in == 0 and self.server.shutdown_close[0] == CloseCode.SERVICE_RESTART:
                # Accepted just before a restart closed the listener, its
                # request still on its way: answer it (a handshake gets 101,
                # then 1012, "reconnect now") rather than drop it.  The open
                # timeout and the grace period bound the wait.
                return
            self._abort_or_close(abort=False)

    def abort(self) -> None:
        """Drop the connection now (end of the shutdown grace period)."""
        self._abort_or_close(abort=True)

    # -- what the metrics read (wsserver.server.metrics.Metered) ------------

    @property
    def bytes_in(self) -> int:
        """Bytes read from the socket so far."""
        return self._bytes_in

    @property
    def bytes_out(self) -> int:
        """Bytes handed to the transport so far."""
        return self._writer.bytes_out

    @property
    def is_websocket(self) -> bool:
        """Whether the handshake was accepted (and the transport is up)."""
        return self._accepted and not self._closed

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


def _suspended_in(task: asyncio.Task[None]) -> str | None:
    """The application's function ``task`` is suspended in, if it can be told.

    Follows the chain of awaits from the task's coroutine down, past the
    server's own frames (``Connection``, ``App``, ``WebSocketView``...), to
    the first frame of the application: the endpoint, its ``on_connect``
    or its ``authenticate`` hook.
    """
    awaitable: Any = task.get_coro()
    while awaitable is not None:
        frame = getattr(awaitable, "cr_frame", None) or getattr(awaitable, "gi_frame", None)
        if frame is None:
            return None
        module = frame.f_globals.get("__name__", "")
        if not module.startswith(_SERVER_PACKAGE):
            return f"{module}.{frame.f_code.co_qualname}"
        awaitable = getattr(awaitable, "cr_await", None) or getattr(awaitable, "gi_yieldfrom", None)
    return None


_SERVER_PACKAGE = __name__.rpartition(".")[0] + "."

#: The statuses with which the core refuses a request over a limit, and
#: the limit's name in the metrics.
_LIMIT_STATUSES = {413: "request_body", 414: "request_target", 431: "request_headers"}


async def _close_content(response: StreamingResponse) -> None:
    """Close a streamed body's producer (an async generator's ``finally`` runs)."""
    aclose = getattr(response.content, "aclose", None)
    if aclose is not None:
        try:
            await aclose()
        except Exception:
            logger.exception("error closing the streamed body of %r", response)


def _internal_error() -> Response:
    # The details stay in the log: the body is visible to the client.
    return PlainTextResponse("Internal Server Error\n", status_code=500)
