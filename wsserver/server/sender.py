"""``Sender``: what a ``WebSocket`` asks of the connection under it.

The sending half of the interface between the ``WebSocket`` an application
holds and its ``Connection`` (the receiving half is ``Inbox``).  The
WebSocket never touches the protocol core or the connection's fields: it
answers the handshake, sends, pings, closes and fails through these
methods, and reads four facts.  ``Connection`` implements it; a test can
give a ``WebSocket`` any object that does.

Every send writes complete frames into the core synchronously, so messages
from several tasks never interleave; the coroutines only wait while the
transport's buffer is above ``write_limit`` (backpressure).  They account
the bytes as encoded: a text message counts its UTF-8 bytes, not its
characters.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from ..protocol.frames import PreparedMessage
from .responses import Response

__all__ = ["Sender"]


class Sender(Protocol):
    """The connection's side of a ``WebSocket``."""

    @property
    def closed(self) -> bool:
        """Whether the transport is gone."""
        ...

    @property
    def is_open(self) -> bool:
        """Whether messages can be sent: the core is OPEN and the transport up."""
        ...

    @property
    def writing_paused(self) -> bool:
        """Whether the transport's write buffer is above ``write_limit``."""
        ...

    @property
    def latency(self) -> float | None:
        """The last measured round-trip time (from pings), in seconds."""
        ...

    def accept(self, subprotocol: str | None, headers: tuple[tuple[str, str], ...]) -> str | None:
        """Answer the handshake with a 101; the ``Sec-WebSocket-Extensions`` agreed."""
        ...

    def reject(self, response: Response) -> None:
        """Answer the handshake with ``response`` instead of a 101."""
        ...

    async def send_text(self, data: str, compress: bool | None = None) -> None:
        """Send a text message (``WebSocketDisconnect`` if the connection is not open)."""
        ...

    async def send_bytes(
        self, data: bytes | bytearray | memoryview, compress: bool | None = None
    ) -> None:
        """Send a binary message (as ``send_text``)."""
        ...

    async def send_fragment(
        self, data: str | bytes, *, fin: bool, compress: bool | None = None
    ) -> None:
        """Send one fragment of a streamed message; ``fin`` ends the message.

        ``compress`` counts on the first fragment only: the message is
        compressed as a whole or not at all."""
        ...

    def send_prepared(self, message: PreparedMessage, size: int, *, compress: bool) -> None:
        """Queue a message encoded once for many connections (``broadcast``).

        ``size`` is ``len(message.frame)``, computed once by the caller.
        Never waits: written with the end-of-iteration write.
        """
        ...

    def message_dropped(self, *, closing: bool) -> None:
        """A broadcast skipped this peer, which is not keeping up (for the metrics)."""
        ...

    def ping(self, data: bytes | None) -> asyncio.Future[float]:
        """Send a ping; the future resolves with the round-trip time."""
        ...

    def close(self, code: int, reason: str) -> None:
        """Start the closing handshake (nothing if it has started)."""
        ...

    def fail(self, code: int, reason: str) -> None:
        """Fail the connection with ``code`` and close the transport."""
        ...
