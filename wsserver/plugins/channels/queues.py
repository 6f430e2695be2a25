"""A bounded send queue per connection, and what happens when it is full.

Producers (a broadcast, a topic publish, a reply) never wait for a slow
browser: ``SendQueue.put`` is synchronous.  When the connection's transport
has room and nothing is queued, the message is written at once, without a
task or an await (through the server's ``broadcast``, which writes a
prepared frame synchronously or reports that it could not).  Otherwise it is
queued, and one writer task per connection sends the queue in order,
waiting for the transport to drain between messages.

The queue is bounded in messages (``max_messages``) and in bytes
(``max_bytes``).  A connection that cannot keep up is handled by the
``policy``, never by unbounded memory (the seed's send queue had no bound):

- ``"close"`` (the default): close the connection with 1013 (try again
  later).  The browser runtime reconnects, and the page knows it may have
  missed messages: right for chat-like streams where every message counts.
- ``"drop_oldest"``: drop the oldest queued messages to make room, and count
  them (``dropped``).  Right for feeds where only the latest values matter
  (a price ticker).

An item is one message: one text, or the chunks of one chunked message,
which are queued, sent and dropped together, so that a chunked message is
never cut in the middle.

A queue may start *held*: it queues (within the same bounds) and sends
nothing until ``release``, which can put a first message in front.  The
channel manager holds a connection's queue until the page's ``ch/ready``,
so that nothing reaches the page before its channels module can handle it.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Sequence
from typing import Literal

from ...protocol.codes import CloseCode
from ...server import WebSocket, WebSocketDisconnect, WebSocketState, broadcast
from ...server.metric_sources import MetricSource, add_metric_source
from ..runtime.messages import utf8_length

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_MESSAGES",
    "OverflowPolicy",
    "SendQueue",
    "direct_writer",
]

logger = logging.getLogger("wsserver.plugins.channels")

#: What a full queue does: close the connection with 1013, or drop the oldest.
OverflowPolicy = Literal["close", "drop_oldest"]
#: Messages queued per connection.
DEFAULT_MAX_MESSAGES = 256
#: Bytes queued per connection: 4 MiB, four default-sized messages.
DEFAULT_MAX_BYTES = 4 * 1024 * 1024
_POLICIES = ("close", "drop_oldest")
# Close reason sent with 1013.
_SLOW_REASON = "too slow to keep up"


def direct_writer(websocket: WebSocket) -> Callable[[str, bool], bool]:
    """A function writing one text message now if the transport has room.

    ``write(text, compress)`` returns ``True`` if the message was written,
    ``False`` if the transport is full (or the connection closing) and
    nothing was written.
    """

    def write(text: str, compress: bool) -> bool:
        # on_slow="skip": report a full transport instead of closing.
        return broadcast((websocket,), text, compress=compress, on_slow="skip") == 1

    return write


class SendQueue:
    """The bounded, ordered send queue of one connection.

    Args:
        websocket: the connection.
        max_messages: messages queued at most (a chunked message counts once).
        max_bytes: bytes queued at most; one message larger than this is
            still accepted into an empty queue (it was within the message
            limits, and must get through).
        policy: ``"close"`` or ``"drop_oldest"`` (see the module).
        compress: compress messages where permessage-deflate was agreed
            (the default of ``put``'s own ``compress``).
        try_write: ``try_write(text, compress)`` writes one message at once
            if possible (``direct_writer`` by default; tests and other
            transports pass their own).
        on_overflow: called once when the ``close`` policy closes the
            connection.
        held: queue without sending until ``release``.

    Attributes:
        sent: messages written.
        dropped: messages dropped by ``drop_oldest`` or because the
            connection ended with them queued.
        overflowed: whether the ``close`` policy closed the connection.
    """

    def __init__(
        self,
        websocket: WebSocket,
        *,
        max_messages: int = DEFAULT_MAX_MESSAGES,
        max_bytes: int = DEFAULT_MAX_BYTES,
        policy: OverflowPolicy = "close",
        compress: bool = False,
        try_write: Callable[[str, bool], bool] | None = None,
        on_overflow: Callable[[], None] | None = None,
        held: bool = False,
    ) -> None:
        if policy not in _POLICIES:
            raise ValueError(f"policy must be one of {_POLICIES}, not {policy!r}")
        if max_messages < 1 or max_bytes < 1:
            raise ValueError("max_messages and max_bytes must be at least 1")
        self.websocket = websocket
        self.max_messages = max_messages
        self.max_bytes = max_bytes
        self.policy: OverflowPolicy = policy
        self.compress = compress
        self._try_write = try_write or direct_writer(websocket)
        self._on_overflow = on_overflow
        # (texts, bytes, compress) per message.
        self._items: deque[tuple[tuple[str, ...], int, bool]] = deque()
        self._bytes = 0
        self._writer: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self._closed = False
        self._held = held
        self.sent = 0
        self.dropped = 0
        self.overflowed = False

    def __len__(self) -> int:
        """Messages queued (not counting one being written)."""
        return len(self._items)

    @property
    def queued_bytes(self) -> int:
        """Bytes queued (not counting a message being written)."""
        return self._bytes

    @property
    def closed(self) -> bool:
        """Whether the queue accepts no more messages."""
        return self._closed

    @property
    def held(self) -> bool:
        """Whether the queue is held (queueing, not sending)."""
        return self._held

    def release(self, first: str | Sequence[str] | None = None) -> None:
        """Start sending a held queue, ``first`` (if given) before the rest.

        ``first`` is not held to the bounds: it is the one message that must
        go out before everything queued meanwhile.
        """
        if not self._held:
            raise RuntimeError("the queue is not held")
        self._held = False
        if self._closed:
            return
        if first is not None:
            texts = (first,) if isinstance(first, str) else tuple(first)
            size = sum(utf8_length(text) for text in texts)
            self._items.appendleft((texts, size, self.compress))
            self._bytes += size
        if self._items:
            self._start_writer()

    def put(self, item: str | Sequence[str], compress: bool | None = None) -> bool:
        """Send one message (a text, or a chunked message's texts) in order.

        ``compress``: whether to compress it where permessage-deflate was
        agreed; ``None``, the queue's ``compress``.

        Returns:
            ``False`` if the queue is closed (the connection ended, or the
            ``close`` policy closed it now); ``True`` otherwise, including
            when ``drop_oldest`` made room by dropping older messages.
        """
        if self._closed:
            _totals["dropped"] += 1
            return False
        texts = (item,) if isinstance(item, str) else tuple(item)
        if not texts:
            return True
        if compress is None:
            compress = self.compress
        if self._writer is None and not self._items and not self._held:
            # The fast path: nothing queued, so writing now keeps the order.
            written = 0
            for text in texts:
                if not self._try_write(text, compress):
                    break
                written += 1
            if written == len(texts):
                self.sent += 1
                _totals["sent"] += 1
                return True
            if self.websocket.application_state is not WebSocketState.CONNECTED:
                self.close()
                _totals["dropped"] += 1
                return False
            texts = texts[written:]  # the rest of a chunked message, in order
        return self._enqueue(texts, compress)

    def _enqueue(self, texts: tuple[str, ...], compress: bool) -> bool:
        size = sum(utf8_length(text) for text in texts)
        while self._items and (
            len(self._items) >= self.max_messages or self._bytes + size > self.max_bytes
        ):
            if self.policy == "close":
                self._overflow()
                _totals["dropped"] += 1
                return False
            _, old_size, _ = self._items.popleft()
            self._bytes -= old_size
            self.dropped += 1
            _totals["dropped"] += 1
        self._items.append((texts, size, compress))
        self._bytes += size
        self._idle.clear()
        if self._writer is None and not self._held:
            self._start_writer()
        return True

    def _start_writer(self) -> None:
        self._idle.clear()
        self._writer = asyncio.get_running_loop().create_task(
            self._drain(), name=f"send-queue-{self.websocket.connection_id}"
        )

    def _overflow(self) -> None:
        logger.info(
            "conn %d: %d messages (%d bytes) queued, closing with 1013: %s",
            self.websocket.connection_id,
            len(self._items),
            self._bytes,
            _SLOW_REASON,
        )
        self.overflowed = True
        self.close()
        # WebSocket.close() queues the Close frame and returns; the server
        # aborts the connection if the peer never answers.
        close = self.websocket.close(CloseCode.TRY_AGAIN_LATER, _SLOW_REASON)
        task = asyncio.get_running_loop().create_task(close)
        _closing.add(task)
        task.add_done_callback(_closed)
        if self._on_overflow is not None:
            self._on_overflow()

    async def _drain(self) -> None:
        websocket = self.websocket
        try:
            while self._items:
                texts, size, compress = self._items.popleft()
                self._bytes -= size
                for text in texts:
                    await websocket.send_text(text, compress=compress)
                self.sent += 1
                _totals["sent"] += 1
        except (WebSocketDisconnect, RuntimeError):
            # The connection ended ("send after close()" is a RuntimeError);
            # what is left can never be delivered.
            self.close()
        finally:
            self._writer = None
            self._idle.set()

    async def join(self) -> None:
        """Wait until everything queued has been written (or dropped).

        A held queue with messages waits for ``release``.
        """
        await self._idle.wait()

    def close(self) -> None:
        """Accept no more messages and drop what is queued.

        A message being written is finished; the writer then stops.
        """
        self._closed = True
        self.dropped += len(self._items)
        _totals["dropped"] += len(self._items)
        self._items.clear()
        self._bytes = 0
        if self._writer is None:
            self._idle.set()


# Close tasks in flight: referenced until done (the loop keeps weak ones).
_closing: set[asyncio.Task[None]] = set()


def _closed(task: asyncio.Task[None]) -> None:
    _closing.discard(task)
    if not task.cancelled() and task.exception() is not None:
        # The connection may already be gone: nothing to report.
        logger.debug("closing a slow connection failed", exc_info=task.exception())


# Every queue's messages together, for the metrics (docs/operations.md).
_totals = {"sent": 0, "dropped": 0}
add_metric_source(
    MetricSource(
        "wsserver_channels_deliveries",
        "counter",
        "channel messages written to their connection (one per channel reached)",
        lambda: _totals["sent"],
    )
)
add_metric_source(
    MetricSource(
        "wsserver_channels_drops",
        "counter",
        "channel messages never written: refused by a closed or overflowing queue, "
        "dropped by drop_oldest, or left queued when the connection ended",
        lambda: _totals["dropped"],
    )
)
