"""``Upload``: one request's body as it arrives, read at the application's pace.

For an application that reads request bodies as streams (an ASGI
application: ``ASGIApp.streams_request_bodies``), the connection does not
read a body before the application runs.  It hands the application an
``Upload``, and each ``read()`` asks the connection (its ``BodySource``)
for what has arrived since the last one: the protocol core parses body
bytes only then, and the connection stops reading the socket while
``read_limit`` bytes wait unparsed.  A client that uploads faster than the
application reads is held back by TCP, not by memory.

The ``Upload`` is also how the application learns that its client has gone
(``gone``): the connection resolves it when the transport is lost, or when
the body turned out malformed, too large, or cut short (the connection has
answered that itself, when it still could).
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from ..protocol import RequestBody

__all__ = ["BodySource", "Upload"]


class BodySource(Protocol):
    """What an ``Upload`` asks of its connection."""

    def next_body_piece(self) -> RequestBody | None:
        """The body's next piece, or ``None`` while none has arrived.

        ``None`` also when the body failed: the source has then resolved
        the upload's ``gone``.
        """
        ...


class Upload:
    """A request body, whole or arriving, and whether its client is still there.

    Args:
        loop: the connection's event loop.
        source: where the pieces come from; ``None`` for a body read whole
            already (``body``).
        body: the whole body, when there is no ``source``.
    """

    __slots__ = ("_source", "_waiter", "_whole", "complete", "gone", "loop")

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        source: BodySource | None = None,
        body: bytes = b"",
    ) -> None:
        self.loop = loop
        self._source = source
        self._whole: bytes | None = body if source is None else None
        #: Whether the last piece has been read.
        self.complete = False
        #: Resolved when the client has gone, or its body failed.
        self.gone: asyncio.Future[None] = loop.create_future()
        self._waiter: asyncio.Future[None] | None = None

    @property
    def streamed(self) -> bool:
        """Whether the body arrives piece by piece (a ``source``)."""
        return self._source is not None

    async def read(self) -> tuple[bytes, bool] | None:
        """The next piece and whether more is to come; ``None`` once the client has gone.

        Waits until something arrives.  Cancelling a waiting ``read()``
        loses nothing: the bytes stay with the connection for the next.

        Raises:
            RuntimeError: the body was read to its end already.
        """
        if self.complete:
            raise RuntimeError("the request body was read to its end already")
        source = self._source
        if source is None:
            if self.gone.done():
                return None
            body, self._whole = self._whole or b"", None
            self.complete = True
            return body, False
        while not self.gone.done():
            piece = source.next_body_piece()
            if piece is not None:
                self.complete = not piece.more
                return piece.data, piece.more
            if self.gone.done():
                break
            # One waiter for every reader (an application may listen for
            # the disconnect in one task while it reads in another), waited
            # for without being cancelled with either.
            waiter = self._waiter
            if waiter is None:
                waiter = self._waiter = self.loop.create_future()
            await asyncio.wait((waiter,))
        return None

    def wake(self) -> None:
        """More of the body (or its end, or the end of the stream) has arrived."""
        waiter, self._waiter = self._waiter, None
        if waiter is not None:
            waiter.set_result(None)

    def client_gone(self) -> None:
        """The client has gone, or its body failed: nothing more will come."""
        if not self.gone.done():
            self.gone.set_result(None)
        self.wake()
