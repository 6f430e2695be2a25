"""Two asyncio transports joined back to back, in memory: a socket pair without a socket.

What one side writes reaches the other side's protocol on a later turn of
the loop, as bytes from a socket would, never inside the ``write`` call (a
protocol is not written to be re-entered).  The rest follows asyncio's
selector transports where a protocol can tell:

* flow control both ways: ``pause_reading`` holds the bytes that arrive
  until ``resume_reading``; bytes written and not yet taken by the peer
  count in the writer's buffer (``get_write_buffer_size``), which calls
  ``pause_writing`` above its high-water mark and ``resume_writing`` at or
  below its low one, so the server's back-pressure is exercised;
* ``write_eof`` is a half-close: the peer's ``eof_received`` after the
  bytes before it; ``close`` is the same and then ``connection_lost(None)``
  for this side; a peer whose ``eof_received`` returns false is closed too;
* ``abort`` is a reset: the peer's ``connection_lost`` gets a
  ``ConnectionResetError``, without its end of file.

No TLS: ``get_extra_info("ssl_object")`` is ``None``, as on a plain socket.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

__all__ = ["DEFAULT_HIGH_WATER", "MemoryTransport", "transport_pair"]

#: asyncio's default write-buffer high-water mark (64 KiB); the low one is
#: a quarter of it, as in asyncio.
DEFAULT_HIGH_WATER = 64 * 1024


class MemoryTransport(asyncio.Transport):
    """One end of an in-memory connection; ``transport_pair`` makes two and joins them."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        protocol: asyncio.BaseProtocol,
        *,
        peername: tuple[str, int],
        sockname: tuple[str, int],
    ) -> None:
        super().__init__({"peername": peername, "sockname": sockname})
        self._loop = loop
        self._protocol = protocol
        # The other end; itself until transport_pair joins the two.
        self._peer: MemoryTransport = self
        # What the peer wrote and this side's protocol has not taken yet.
        self._incoming: deque[bytes] = deque()
        self._incoming_size = 0
        self._eof_pending = False  # the peer's end of file, after _incoming
        self._reset_pending = False  # the peer aborted
        self._reading = True
        self._delivery_scheduled = False
        self._closing = False  # close() or abort() was called
        self._lost = False  # connection_lost() was called
        self._eof_written = False
        self._high = DEFAULT_HIGH_WATER
        self._low = DEFAULT_HIGH_WATER // 4
        self._writing_paused = False

    # -- asyncio.BaseTransport -----------------------------------------

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return super().get_extra_info(name, default)

    def is_closing(self) -> bool:
        return self._closing or self._lost

    def close(self) -> None:
        if self._closing or self._lost:
            return
        self._closing = True
        # What was written is already with the peer: send the end of file
        # behind it, then end this side (asyncio calls connection_lost once
        # its buffer is flushed; ours always is).
        self._send_eof()
        self._loop.call_soon(self._connection_lost, None)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._protocol = protocol

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._protocol

    # -- asyncio.ReadTransport ------------------------------------------

    def is_reading(self) -> bool:
        return self._reading and not self.is_closing()

    def pause_reading(self) -> None:
        self._reading = False

    def resume_reading(self) -> None:
        if self._reading:
            return
        self._reading = True
        self._schedule_delivery()

    # -- asyncio.WriteTransport -----------------------------------------

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        if high is None:
            high = DEFAULT_HIGH_WATER if low is None else 4 * low
        if low is None:
            low = high // 4
        if not high >= low >= 0:
            raise ValueError(f"high ({high!r}) must be >= low ({low!r}) must be >= 0")
        self._high, self._low = high, low
        self._check_pause()

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._low, self._high

    def get_write_buffer_size(self) -> int:
        peer = self._peer
        return 0 if peer._lost else peer._incoming_size

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._eof_written:
            raise RuntimeError("Cannot call write() after write_eof()")
        if not data or self.is_closing():
            return  # as asyncio: a write after close() goes nowhere
        peer = self._peer
        if peer._lost or peer._closing:
            return  # the peer is gone: a socket would reset; nothing reads it
        chunk = bytes(data)
        peer._incoming.append(chunk)
        peer._incoming_size += len(chunk)
        peer._schedule_delivery()
        self._check_pause()

    def write_eof(self) -> None:
        if self._eof_written or self.is_closing():
            return
        self._eof_written = True
        self._send_eof()

    def can_write_eof(self) -> bool:
        return True

    def abort(self) -> None:
        if self._lost:
            return
        self._closing = True
        peer = self._peer
        if not peer._lost:
            peer._reset_pending = True
            peer._schedule_delivery()
        self._loop.call_soon(self._connection_lost, None)

    # -- between the two ends -------------------------------------------

    def _send_eof(self) -> None:
        peer = self._peer
        if not peer._lost:
            peer._eof_pending = True
            peer._schedule_delivery()

    def _schedule_delivery(self) -> None:
        if self._delivery_scheduled or self._lost:
            return
        if self._reset_pending or (
            self.is_reading() and (bool(self._incoming) or self._eof_pending)
        ):
            self._delivery_scheduled = True
            self._loop.call_soon(self._deliver)

    def _deliver(self) -> None:
        self._delivery_scheduled = False
        if self._lost:
            return
        if self._reset_pending:
            # A reset overtakes what was not read (the kernel drops it).
            self._incoming.clear()
            self._incoming_size = 0
            self._connection_lost(ConnectionResetError("connection reset by peer"))
            return
        if not self.is_reading():
            return  # paused since (resume_reading delivers), or closed by its protocol
        if self._incoming:
            data = b"".join(self._incoming)
            self._incoming.clear()
            self._incoming_size = 0
            self._peer._check_resume()
            self._feed(data)
            # Its protocol may have paused reading or closed meanwhile, and
            # more may have come: the next turn sees to it (the end of file
            # comes after the bytes, in a turn of its own).
            self._schedule_delivery()
            return
        # Scheduled for bytes or the end of file, and the bytes are taken.
        assert self._eof_pending
        self._eof_pending = False
        keep_open = self._protocol.eof_received()  # type: ignore[attr-defined]
        if not keep_open:
            self.close()

    def _feed(self, data: bytes) -> None:
        protocol = self._protocol
        if isinstance(protocol, asyncio.BufferedProtocol):
            # As asyncio does: read into the protocol's buffer, as much as it holds.
            view = memoryview(data)
            while view:
                buffer = memoryview(protocol.get_buffer(len(view)))
                size = min(len(buffer), len(view))
                buffer[:size] = view[:size]
                protocol.buffer_updated(size)
                view = view[size:]
        else:
            protocol.data_received(data)  # type: ignore[attr-defined]

    def _check_pause(self) -> None:
        if not self._writing_paused and self.get_write_buffer_size() > self._high:
            self._writing_paused = True
            self._protocol.pause_writing()

    def _check_resume(self) -> None:
        if self._writing_paused and not self._lost and self.get_write_buffer_size() <= self._low:
            self._writing_paused = False
            self._protocol.resume_writing()

    def _connection_lost(self, exc: Exception | None) -> None:
        if self._lost:
            return
        self._lost = True
        self._closing = True
        self._incoming.clear()
        self._incoming_size = 0
        self._protocol.connection_lost(exc)


def transport_pair(
    loop: asyncio.AbstractEventLoop,
    server_protocol: asyncio.BaseProtocol,
    client_protocol: asyncio.BaseProtocol,
    *,
    client_address: tuple[str, int],
    server_address: tuple[str, int],
) -> tuple[MemoryTransport, MemoryTransport]:
    """Join two protocols with two ``MemoryTransport``: ``(server side, client side)``.

    Each protocol's ``connection_made`` is called, the server's first, as
    when a listener accepts a connection the client has just opened.
    """
    server_side = MemoryTransport(
        loop, server_protocol, peername=client_address, sockname=server_address
    )
    client_side = MemoryTransport(
        loop, client_protocol, peername=server_address, sockname=client_address
    )
    server_side._peer = client_side
    client_side._peer = server_side
    server_protocol.connection_made(server_side)
    client_protocol.connection_made(client_side)
    return server_side, client_side
