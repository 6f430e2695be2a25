"""One HTTP request's ASGI cycle: ``receive`` and ``send`` and their order.

``receive()`` gives the request body as it arrives, one ``http.request``
event per call with what came since the last (``more_body: True`` until the
last piece), from the request's ``Upload``: nothing of the body is read
before the application asks for it, so a client that uploads faster than
the application reads is held back by TCP (see ``wsserver.server.uploads``),
and a client that sent ``Expect: 100-continue`` is told to go on at the
first ``receive()``.  A request without a body gives one event with an
empty body.  Then ``receive()`` waits, as it would for a client that sends
nothing more, until the response is complete or the client has gone, and
gives ``http.disconnect`` (ASGI: "if receive is called after a response has
been sent", or the client disconnected): an application streaming a
response, or waiting for an event, learns at once that its client left.

``send()`` takes ``http.response.start`` and then ``http.response.body``
events.  A body sent in one event (``more_body`` false: Starlette's
``Response``) is answered as one response with a ``Content-Length``.  A
body in several events (``StreamingResponse``, server-sent events) is
streamed: the connection gets a ``StreamingResponse`` at the first
piece and sends each piece as it comes, chunked; ``send()`` waits while
the client does not read (one piece in hand at most), and raises
``ClientDisconnected`` once it has gone.  Either way the response goes out
as soon as it is complete, while the application may go on running (a
background task after the response).  An event out of order raises a
``RuntimeError`` naming it and the state of the cycle.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import AsyncIterator, Iterable
from typing import Any

from ..responses import Response, StreamingResponse
from ..uploads import Upload

__all__ = ["ClientDisconnected", "HTTPCycle", "decode_headers"]

Message = dict[str, Any]


class ClientDisconnected(OSError):
    """A ``send()`` to a client that has gone.

    ASGI 2.4 asks a server to raise a subclass of ``OSError`` there;
    Starlette turns it into its own ``WebSocketDisconnect``.
    """


class _Stage(enum.Enum):
    START = "before http.response.start"
    BODY = "after http.response.start"
    DONE = "after the last http.response.body"


def decode_headers(headers: Iterable[Any], event: str) -> list[tuple[str, str]]:
    """An event's ``headers`` (byte-string pairs) as ``str`` pairs.

    Raises:
        TypeError: a pair is not two byte strings.
    """
    pairs = []
    for pair in headers:
        try:
            name, value = pair
        except (TypeError, ValueError):
            raise TypeError(f"{event}: a header must be a (name, value) pair: {pair!r}") from None
        if not isinstance(name, bytes | bytearray) or not isinstance(value, bytes | bytearray):
            raise TypeError(f"{event}: header names and values must be bytes: {pair!r}")
        # ISO-8859-1 maps every byte to one character: the core encodes the
        # same way, so what the application sent is what goes out.
        pairs.append((bytes(name).decode("latin-1").lower(), bytes(value).decode("latin-1")))
    return pairs


class _Failed:
    """What the stream's consumer raises: the application failed mid-body."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


#: The end of a streamed body.
_END = None


class HTTPCycle:
    """``receive`` and ``send`` for one request, and the response they make.

    Args:
        upload: the request's body, whole or arriving, and whether its
            client is still there.
    """

    def __init__(self, upload: Upload) -> None:
        self._upload = upload
        self._stage = _Stage.START
        self._status = 200
        self._headers: list[tuple[str, str]] = []
        loop = asyncio.get_running_loop()
        #: Resolved with the ``Response`` (a ``StreamingResponse`` at the
        #: first of several pieces).
        self.response: asyncio.Future[Response] = loop.create_future()
        # Set once the response is over: sent whole, streamed to its end,
        # abandoned by the client, or the request cancelled.
        self._over: asyncio.Future[None] = loop.create_future()
        # A streamed body's pieces, one at a time: the producer waits for
        # the connection to take each before it makes the next.
        self._pieces: asyncio.Queue[bytes | _Failed | None] = asyncio.Queue(maxsize=1)
        self._streaming = False
        # Set when the client has gone, or has stopped taking the pieces
        # of a streamed response: sends fail from then on.
        self._gone = False
        upload.gone.add_done_callback(self._client_left)

    @property
    def started(self) -> bool:
        """Whether ``http.response.start`` was sent."""
        return self._stage is not _Stage.START

    @property
    def complete(self) -> bool:
        """Whether the last ``http.response.body`` was sent."""
        return self._stage is _Stage.DONE

    @property
    def streaming(self) -> bool:
        """Whether the body is being streamed (sent in several events)."""
        return self._streaming

    def abandon(self) -> None:
        """The request is given up (the connection's task was cancelled)."""
        self.response.cancel()
        self._end()

    def fail(self, error: BaseException) -> None:
        """The application failed in the middle of a streamed body."""
        if self._pieces.full():
            # The connection takes the piece in hand, then finds this.
            self._failure = _Failed(error)
        else:
            self._pieces.put_nowait(_Failed(error))

    _failure: _Failed | None = None

    def _end(self) -> None:
        if not self._over.done():
            self._over.set_result(None)

    @property
    def client_left(self) -> bool:
        """Whether the client has gone (or its body failed) before the end."""
        return self._upload.gone.done()

    def _client_left(self, _: object) -> None:
        # The transport is gone, or the body failed and the connection
        # ends: a receive() waiting learns it, and a streamed response
        # waiting for its next piece ends (the connection drops it rather
        # than finishing it).
        if self._streaming and not self._gone and self._pieces.empty():
            self._pieces.put_nowait(_END)
        self._gone = True
        self._end()

    async def receive(self) -> Message:
        """The body's next ``http.request``, then ``http.disconnect``."""
        upload = self._upload
        if not upload.complete and not self._over.done():
            piece = await upload.read()
            if piece is not None:
                return {"type": "http.request", "body": piece[0], "more_body": piece[1]}
            return {"type": "http.disconnect"}
        if not self._over.done():
            # Nothing more arrives before the response is over or the
            # client has gone.  ``wait`` rather than awaiting the future:
            # cancelling this receive (Starlette cancels its disconnect
            # listener) must not cancel it.
            await asyncio.wait((self._over,))
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        """Take the next response event.

        Raises:
            RuntimeError: an event out of order.
            ClientDisconnected: the client has gone (or the request was
                given up).
            TypeError, ValueError: an event with a field of the wrong type
                or value (a status outside 100-599).
        """
        gone = self._gone or self._upload.gone.done()
        if self.response.cancelled() or (gone and self._stage is not _Stage.DONE):
            raise ClientDisconnected(f"{message.get('type')}: the client has gone")
        kind = message.get("type")
        stage = self._stage
        if kind == "http.response.start" and stage is _Stage.START:
            status = message.get("status")
            if not isinstance(status, int) or isinstance(status, bool):
                raise TypeError(f"http.response.start: status must be an int, not {status!r}")
            if message.get("trailers"):
                raise RuntimeError("http.response.start: trailers are not supported")
            self._status = status
            self._headers = decode_headers(message.get("headers", ()), "http.response.start")
            self._stage = _Stage.BODY
            return
        if kind == "http.response.body" and stage is _Stage.BODY:
            chunk = message.get("body", b"")
            if not isinstance(chunk, bytes | bytearray | memoryview):
                raise TypeError(f"http.response.body: body must be bytes, not {type(chunk)}")
            more = bool(message.get("more_body", False))
            if not self._streaming:
                if not more:
                    # The whole body in one event: one response, with its length.
                    self._stage = _Stage.DONE
                    self.response.set_result(Response(bytes(chunk), self._status, self._headers))
                    self._end()
                    return
                self._streaming = True
                self.response.set_result(
                    StreamingResponse(self._stream(), self._status, self._headers)
                )
            if not more:
                self._stage = _Stage.DONE
            if chunk:
                await self._pieces.put(bytes(chunk))
            if not more:
                await self._pieces.put(_END)
            elif self._gone:
                # The connection stopped taking pieces: this one was dropped.
                raise ClientDisconnected(f"{kind}: the client has gone")
            return
        raise RuntimeError(f"unexpected ASGI message {kind!r} {stage.value}")

    async def _stream(self) -> AsyncIterator[bytes]:
        """The streamed body's pieces, for the connection to send."""
        pieces = self._pieces
        try:
            while True:
                if self._failure is not None and pieces.empty():
                    raise self._failure.error
                piece = await pieces.get()
                if piece is _END:
                    return
                if isinstance(piece, _Failed):
                    raise piece.error
                yield piece
        finally:
            # Ended, failed, or the client left: a producer waiting to put
            # a piece must not wait for ever, and learns it at its next send.
            self._gone = True
            while not pieces.empty():
                pieces.get_nowait()
            self._end()
