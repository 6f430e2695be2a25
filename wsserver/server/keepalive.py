"""``Keepalive``: heartbeat pings, their pongs, and the receive timeout.

One per open WebSocket, started when the handshake is accepted:

- every ``ping_interval`` it sends a ping with a payload of its own; if no
  pong acknowledges it within ``ping_timeout``, the connection is failed
  with 1011 (RFC 6455 section 7.4.1: "an unexpected condition that
  prevented it from fulfilling the request").  Pings keep NAT and proxy
  mappings alive, and find peers that vanished without a FIN.
- a pong for one of its pings, or for the application's (``ping``),
  measures the round-trip time (``latency``) and resolves the
  application's future.
- with ``receive_timeout`` set, a connection that receives no message for
  that long is closed with 1001 (going away: the server leaves, the peer
  did nothing wrong).

Timers are ``call_later`` handles, not tasks: an idle connection costs heap
entries, not coroutine frames.  The heartbeat at the server's own
``ping_interval`` is an entry in the server's sweep instead
(``wsserver.server.deadlines``: one timer for every connection, a ping up to
a tenth of the interval late, at most 1 s); an interval the endpoint chose
(``configure``) keeps a handle of its own.
"""

from __future__ import annotations

import asyncio
import logging
import os
from types import EllipsisType
from typing import TYPE_CHECKING, Protocol

from ..protocol import CloseCode, Pong, ServerConnection, State
from .config import ServerConfig
from .deadlines import DeadlineSweep
from .inbox import Inbox
from .websocket import WebSocketDisconnect
from .writer import Writer

if TYPE_CHECKING:
    from .metrics import Metrics

__all__ = ["Keepalive"]

logger = logging.getLogger("wsserver")


class Closing(Protocol):
    """What the keepalive does to its connection when the peer is silent."""

    def close(self, code: int, reason: str) -> None:
        """Start the closing handshake."""
        ...

    def fail(self, code: int, reason: str) -> None:
        """Fail the connection and close the transport."""
        ...


class Keepalive:
    """The heartbeat and the receive timeout of one WebSocket connection.

    Args:
        connection_id: the connection's id, for log lines.
        config: the server's settings (``ping_interval``, ``ping_timeout``,
            ``receive_timeout``).
        loop: the event loop, for its timers and clock.
        core: the connection's protocol core, which sends the pings.
        writer: writes each ping at once.
        inbox: tells when the last message arrived, and whether the queue
            is full (then an unanswered ping is not the peer's fault).
        connection: closed with 1001 after the receive timeout, failed
            with 1011 when a pong does not come.
        metrics: where round-trip times and timeouts are counted, if on.
        heartbeats: the server's sweep of heartbeats at ``ping_interval``,
            if any; without it every heartbeat is a ``call_later`` handle.

    Attributes:
        latency: the last measured round-trip time, in seconds, or ``None``.
    """

    __slots__ = (
        "_config",
        "_connection",
        "_core",
        "_heartbeats",
        "_id",
        "_inbox",
        "_loop",
        "_metrics",
        "_ping_counter",
        "_ping_interval",
        "_ping_timer",
        "_pings",
        "_pong_timers",
        "_receive_timeout",
        "_receive_timer",
        "_started",
        "_started_at",
        "_stopped",
        "_writer",
        "latency",
    )

    def __init__(
        self,
        *,
        connection_id: int,
        config: ServerConfig,
        loop: asyncio.AbstractEventLoop,
        core: ServerConnection,
        writer: Writer,
        inbox: Inbox,
        connection: Closing,
        metrics: Metrics | None = None,
        heartbeats: DeadlineSweep[Keepalive] | None = None,
    ) -> None:
        self._id = connection_id
        self._config = config
        self._loop = loop
        self._core = core
        self._writer = writer
        self._inbox = inbox
        self._connection = connection
        self._metrics = metrics
        self._heartbeats = heartbeats
        self.latency: float | None = None
        # The server's settings unless the endpoint chose its own (configure).
        self._ping_interval = config.ping_interval
        self._receive_timeout = config.receive_timeout
        self._started = False
        self._started_at = 0.0
        self._stopped = False
        self._ping_timer: asyncio.TimerHandle | None = None
        self._receive_timer: asyncio.TimerHandle | None = None
        self._pong_timers: dict[bytes, asyncio.TimerHandle] = {}
        # Heartbeat and application pings: payload -> (time sent, waiter).
        self._pings: dict[bytes, tuple[float, asyncio.Future[float] | None]] = {}
        self._ping_counter = 0

    def start(self) -> None:
        """Arm the heartbeat and the receive timeout (the handshake is accepted)."""
        self._started = True
        self._started_at = self._loop.time()
        self._arm()

    def _arm(self) -> None:
        self._arm_heartbeat()
        if self._receive_timeout is not None:
            self._receive_timer = self._loop.call_later(
                self._receive_timeout, self._check_receive_timeout
            )

    def _arm_heartbeat(self) -> None:
        interval = self._ping_interval
        if interval is None:
            return
        heartbeats = self._heartbeats
        if heartbeats is not None and interval == heartbeats.timeout:
            heartbeats.start(self)
        else:
            self._ping_timer = self._loop.call_later(interval, self._heartbeat)

    def _disarm_heartbeat(self) -> None:
        if self._ping_timer is not None:
            self._ping_timer.cancel()
            self._ping_timer = None
        if self._heartbeats is not None:
            self._heartbeats.cancel(self)

    def heartbeat_due(self) -> None:
        """Send the next heartbeat ping (called by the server's sweep)."""
        self._heartbeat()

    def configure(
        self,
        *,
        ping_interval: float | EllipsisType | None = ...,
        receive_timeout: float | EllipsisType | None = ...,
    ) -> None:
        """This connection's heartbeat interval and receive timeout, over the
        server's (``None``: none; ``...``: unchanged); timers already armed
        are armed again."""
        if ping_interval is not ...:
            self._ping_interval = ping_interval
        if receive_timeout is not ...:
            self._receive_timeout = receive_timeout
        if not self._started or self._stopped:
            return
        self._disarm_heartbeat()
        if self._receive_timer is not None:
            self._receive_timer.cancel()
            self._receive_timer = None
        self._arm()

    def stop(self, code: int) -> None:
        """The transport is gone: cancel every timer; pings fail with ``code``."""
        self._stopped = True
        self._disarm_heartbeat()
        for timer in (self._receive_timer, *self._pong_timers.values()):
            if timer is not None:
                timer.cancel()
        self._receive_timer = None
        self._pong_timers.clear()
        for _, waiter in self._pings.values():
            if waiter is not None and not waiter.done():
                waiter.set_exception(WebSocketDisconnect(code))
        self._pings.clear()

    def ping(self, data: bytes | None) -> asyncio.Future[float]:
        """Send a ping whose pong resolves the returned future with the RTT.

        Raises:
            LocalProtocolError: a ping with the same payload is unanswered,
                or the payload is over 125 bytes.
        """
        payload = data if data is not None else self._next_payload()
        waiter: asyncio.Future[float] = self._loop.create_future()
        self._core.send_ping(payload)
        self._pings[payload] = (self._loop.time(), waiter)
        self._writer.flush()
        return waiter

    def pong_received(self, event: Pong) -> None:
        """A pong: settle every ping it acknowledges.

        RFC 6455 section 5.5.3: "an endpoint MAY elect to send a Pong frame
        for only the most recently processed Ping frame", so the core lists
        the pong's ping and every older one.
        """
        now = self._loop.time()
        for payload in event.acknowledged:
            timer = self._pong_timers.pop(payload, None)
            if timer is not None:
                timer.cancel()
            sent, waiter = self._pings.pop(payload, (now, None))
            rtt = now - sent
            self.latency = rtt
            if self._metrics is not None:
                self._metrics.ping_rtt(rtt)
            if waiter is not None and not waiter.done():
                waiter.set_result(rtt)

    def _next_payload(self) -> bytes:
        # A counter keeps payloads unique per connection; the random prefix
        # keeps a peer from guessing and forging pongs for future pings.
        self._ping_counter += 1
        return os.urandom(4) + self._ping_counter.to_bytes(4, "big")

    def _heartbeat(self) -> None:
        self._ping_timer = None
        if self._core.state is not State.OPEN or self._stopped:
            return
        payload = self._next_payload()
        self._core.send_ping(payload)
        self._pings[payload] = (self._loop.time(), None)
        self._writer.flush()
        timeout = self._config.ping_timeout
        if timeout is not None:
            self._pong_timers[payload] = self._loop.call_later(timeout, self._check_pong, payload)
        self._arm_heartbeat()

    def _check_pong(self, payload: bytes) -> None:
        self._pong_timers.pop(payload, None)
        if payload not in self._pings or self._stopped:
            return
        if self._inbox.full:
            # Backpressure: while the application's queue is full nothing is
            # parsed, so the pong may well be in our own buffer, unread.  The
            # peer is not to blame for a slow application (this failed
            # healthy connections with 1011): look again later.
            assert self._config.ping_timeout is not None
            self._pong_timers[payload] = self._loop.call_later(
                self._config.ping_timeout, self._check_pong, payload
            )
            return
        logger.info("conn %d: no pong within %ss, closing", self._id, self._config.ping_timeout)
        if self._metrics is not None:
            self._metrics.limit_hit("ping_timeout")
        self._connection.fail(CloseCode.INTERNAL_ERROR, "keepalive ping timeout")

    def _check_receive_timeout(self) -> None:
        self._receive_timer = None
        timeout = self._receive_timeout
        if timeout is None or self._stopped or self._core.state is not State.OPEN:
            return
        last = max(self._started_at, self._inbox.last_received)
        idle = self._loop.time() - last
        if idle >= timeout:
            logger.info("conn %d: no message for %ss, closing", self._id, timeout)
            if self._metrics is not None:
                self._metrics.limit_hit("receive_timeout")
            self._connection.close(CloseCode.GOING_AWAY, "idle timeout")
        else:
            self._receive_timer = self._loop.call_later(timeout - idle, self._check_receive_timeout)
