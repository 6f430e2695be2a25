"""One HTTP request's ASGI cycle: ``receive`` and ``send`` and their order.

The protocol core reads a whole request body (up to ``max_body_size``)
before the application runs, so ``receive()`` gives it as one
``http.request`` event with ``more_body: False``; once the response is
complete, ``receive()`` gives ``http.disconnect`` (ASGI: "if receive is
called after a response has been sent").  Until then a second ``receive()``
waits, as it would for a client that sends nothing more.

``send()`` takes ``http.response.start`` and then ``http.response.body``
events; the body is collected (up to ``max_response_size``) and answered
as one response with a ``Content-Length`` when the last chunk arrives
(``more_body`` false), while the application may go on running (a
background task after the response).  An event out of order raises a
``RuntimeError`` naming it and the state of the cycle.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Iterable
from typing import Any

from ..responses import Response

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


class HTTPCycle:
    """``receive`` and ``send`` for one request, and the response they build.

    Args:
        body: the request's whole body.
        max_response_size: the most body bytes collected for one response;
            a larger one raises ``RuntimeError`` in ``send()`` (and the
            client gets 500): responses are held in memory until complete.
    """

    def __init__(self, body: bytes, max_response_size: int) -> None:
        self._body: bytes | None = body
        self._max_response_size = max_response_size
        self._stage = _Stage.START
        self._status = 200
        self._headers: list[tuple[str, str]] = []
        self._chunks: list[bytes] = []
        self._size = 0
        #: Resolved with the complete ``Response``.
        self.response: asyncio.Future[Response] = asyncio.get_running_loop().create_future()

    @property
    def started(self) -> bool:
        """Whether ``http.response.start`` was sent."""
        return self._stage is not _Stage.START

    async def receive(self) -> Message:
        """``http.request`` with the whole body, then ``http.disconnect``."""
        body = self._body
        if body is not None:
            self._body = None
            return {"type": "http.request", "body": body, "more_body": False}
        if not self.response.done():
            # Nothing more will arrive before the response is complete.
            # ``wait`` rather than awaiting the future itself: cancelling
            # this receive (Starlette cancels its disconnect listener) must
            # not cancel the response.
            await asyncio.wait((self.response,))
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        """Take the next response event.

        Raises:
            RuntimeError: an event out of order, or a body over the limit.
            TypeError, ValueError: an event with a field of the wrong type
                or value (a status outside 100-599).
        """
        if self.response.cancelled():
            # The request was abandoned (its connection is gone, or the
            # server is past its shutdown grace period).
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
            if chunk:
                self._size += len(chunk)
                if self._size > self._max_response_size:
                    raise RuntimeError(
                        f"http.response.body: the response is larger than "
                        f"max_response_size ({self._max_response_size} bytes)"
                    )
                self._chunks.append(bytes(chunk))
            if not message.get("more_body", False):
                self._stage = _Stage.DONE
                response = Response(b"".join(self._chunks), self._status, self._headers)
                self._chunks = []
                if not self.response.done():
                    self.response.set_result(response)
            return
        raise RuntimeError(f"unexpected ASGI message {kind!r} {stage.value}")
