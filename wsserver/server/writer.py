"""``Writer``: what the protocol core has to send, onto the transport, in few writes.

Every byte a connection sends passes through its ``Writer``: the HTTP
response or the 101, the application's messages, broadcasts, pongs, pings,
Close frames.  Four rules decide when bytes leave:

- **Batching.**  What is produced during one event loop iteration leaves at
  its end, in one ``writelines`` (one system call): replies to a burst of
  messages, the pongs parsed meanwhile, a burst of broadcasts.  The
  end-of-iteration write is scheduled (``call_soon``) once per iteration,
  and only when there is something to write.
- **write_limit.**  Once ``write_limit`` bytes wait, they are written at
  once, so that the transport's buffer (and with it ``pause_writing``, the
  backpressure signal) always reflects what is pending, and so that a long
  burst leaves in slices the peer can start on while the rest is produced.
  The application's messages count as their payloads are encoded (UTF-8
  for text) before compression, the size the core's ``send_*`` returns:
  the data the application produced, so that a burst of well-compressed
  messages is sliced as an uncompressed one is (counting the compressed
  bytes cut the 1 KiB JSON deflate echo at one connection by 15%: the peer
  idled until the whole burst was done), and the core is not drained per
  message.
  What the core writes on its own (pongs, Close frames) is counted as it
  is, by ``collect``.  The transport itself sees the real bytes.
- **Reply now.**  The first message the application sends after it took
  the last queued one is written at once (``sent``): it is most likely the
  reply a waiting peer needs, and no other message remains whose reply
  could join it.  Deferring it would cost the round trip a loop iteration
  (an ``epoll_wait``).  The ``Inbox`` arms ``reply_now`` when the
  application takes the last queued message.
- **One write per read.**  While the pump runs a view's handlers in the
  read callback itself (``wsserver.server.dispatch``), their replies are
  held (``batch``) and written together by the ``flush`` that ends the
  pump: one system call for all the messages of a read, made before the
  callback returns, so in the read's own loop iteration.  ``write_limit``
  still cuts a long batch into slices.
- **Write alone.**  A chunk of ``WRITE_ALONE`` bytes or more is written on
  its own, not joined with its neighbours: ``writelines`` copies what it
  joins, and copying 256 KiB costs more than the system call it saves.
"""

from __future__ import annotations

import asyncio

from ..protocol import ServerConnection

__all__ = ["WRITE_ALONE", "Writer"]

#: A chunk at least this large is written on its own rather than joined with
#: its neighbours (its frame header, other replies).
WRITE_ALONE = 256 * 1024


class Writer:
    """Batches one connection's writes (see the module's rules).

    Args:
        core: the connection's protocol core, whose ``data_to_send`` it drains.
        loop: the event loop, for the end-of-iteration write.
        write_limit: bytes that may wait for the end of the iteration.

    Attributes:
        transport: where bytes go; set when the connection is made, ``None``
            once it is lost (what is left is then dropped).
        reply_now: write the application's next message at once (armed by
            the ``Inbox``, consumed by ``sent``).
        unflushed: bytes waiting for the end-of-iteration write.
        bytes_out: bytes handed to the transport so far (for the log).
    """

    __slots__ = (
        "_core",
        "_limit",
        "_loop",
        "_pending",
        "_scheduled",
        "_scheduled_before",
        "bytes_out",
        "reply_now",
        "transport",
        "unflushed",
    )

    def __init__(
        self, core: ServerConnection, loop: asyncio.AbstractEventLoop, write_limit: int
    ) -> None:
        self._core = core
        self._loop = loop
        self._limit = write_limit
        self.transport: asyncio.Transport | None = None
        self.reply_now = False
        self.unflushed = 0
        self.bytes_out = 0
        # Chunks taken from the core to count their size, waiting for the
        # end-of-iteration write; they precede whatever the core holds now.
        # None while idle (no list per idle connection).  The list is the
        # first one the core handed over (it starts a new one each time),
        # extended in place: a burst of n replies costs O(n), not O(n^2).
        self._pending: list[bytes] | None = None
        self._scheduled = False
        # Whether an end-of-iteration write was scheduled before a batch
        # began (the batch sets _scheduled so that none is scheduled in it).
        self._scheduled_before = False

    def flush(self) -> None:
        """Write everything waiting, and whatever the core holds, now."""
        self.unflushed = 0
        data = self._core.data_to_send()
        pending = self._pending
        if pending is not None:
            self._pending = None
            pending.extend(data)
            data = pending
        transport = self.transport
        if not data or transport is None:
            return
        if len(data) == 1:
            chunk = data[0]
            self.bytes_out += len(chunk)
            transport.write(chunk)
            return
        small: list[bytes] = []
        for chunk in data:
            size = len(chunk)
            self.bytes_out += size
            if size < WRITE_ALONE:
                small.append(chunk)
                continue
            if small:
                transport.writelines(small)
                small = []
            transport.write(chunk)
        if small:
            transport.writelines(small)

    def collect(self) -> None:
        """Take what the core holds for the end-of-iteration write.

        Written at once instead if that makes ``write_limit`` bytes.  When
        the core holds nothing, nothing is scheduled.
        """
        data = self._core.data_to_send()
        if not data:
            return
        pending = self._pending
        if pending is None:
            self._pending = data
        else:
            pending.extend(data)
        size = 0
        for chunk in data:
            size += len(chunk)
        self.queued(size)

    def queued(self, size: int) -> None:
        """``size`` bytes wait to be written (in the core, or taken by ``collect``).

        They leave with the end-of-iteration write, or at once once
        ``write_limit`` bytes wait.  The caller knows the size, so the core
        is not drained here: a broadcast to many connections pays one
        addition per connection.
        """
        size += self.unflushed
        self.unflushed = size
        if size >= self._limit:
            self.flush()
        elif not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self._flush_scheduled)

    def sent(self, size: int) -> None:
        """The application just queued a message of ``size`` bytes in the core.

        The reply a waiting peer needs (``reply_now``) is written at once;
        anything else joins the end-of-iteration write (``queued``).
        """
        if self.reply_now:
            self.reply_now = False
            self.flush()
        else:
            self.queued(size)

    def batch(self) -> None:
        """Hold what is sent from now on for the caller's ``end_batch``.

        Nothing is scheduled for the end of the iteration meanwhile (the
        caller writes before its callback returns), and ``reply_now`` is
        off: the batch's own end is the reply's write.
        """
        self.reply_now = False
        self._scheduled_before = self._scheduled
        self._scheduled = True

    def end_batch(self) -> None:
        """End a ``batch``: write everything waiting, now (one write)."""
        self._scheduled = self._scheduled_before
        self.flush()

    def _flush_scheduled(self) -> None:
        self._scheduled = False
        self.flush()
