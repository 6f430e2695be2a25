"""``Upload``: a body read whole, or read piece by piece from the real core.

The source here is the protocol core itself (a ``ServerConnection`` with
``stream_bodies``), fed by the test as a transport would feed it; the
loopback tests of the ASGI face (tests/server/asgi/test_http.py) drive the
same ``Upload`` through a real ``Connection``.
"""

from __future__ import annotations

import asyncio

import pytest

from wsserver.protocol import HTTPRequest, RequestBody, RequestRejected, ServerConnection
from wsserver.server.uploads import Upload

from .helpers import TIMEOUT


class CoreSource:
    """A ``BodySource`` over the protocol core, as ``Connection`` is one."""

    def __init__(self, head: bytes) -> None:
        self.core = ServerConnection(stream_bodies=True)
        self.core.receive_data(head)
        request = self.core.next_event()
        assert isinstance(request, HTTPRequest) and request.streamed
        self.upload = Upload(asyncio.get_running_loop(), self)
        self.asked = 0

    def next_body_piece(self) -> RequestBody | None:
        self.asked += 1
        event = self.core.next_event()
        if isinstance(event, RequestRejected):
            self.upload.client_gone()
            return None
        assert event is None or isinstance(event, RequestBody)
        return event

    def arrive(self, data: bytes) -> None:
        self.core.receive_data(data)
        self.upload.wake()


def post(length: int) -> bytes:
    return b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % length


async def test_a_whole_body_is_one_read() -> None:
    upload = Upload(asyncio.get_running_loop(), body=b"all")
    assert not upload.streamed
    assert await upload.read() == (b"all", False)
    assert upload.complete
    with pytest.raises(RuntimeError, match="read to its end"):
        await upload.read()


async def test_a_whole_body_is_not_given_once_the_client_has_gone() -> None:
    upload = Upload(asyncio.get_running_loop(), body=b"all")
    upload.client_gone()
    assert await upload.read() is None


async def test_pieces_are_read_as_they_arrive() -> None:
    source = CoreSource(post(6) + b"ab")
    upload = source.upload
    assert upload.streamed
    assert await upload.read() == (b"ab", True)
    # Nothing more has arrived: the read waits for it.
    reading = asyncio.ensure_future(upload.read())
    await asyncio.sleep(0)
    assert not reading.done()
    source.arrive(b"cd")
    assert await asyncio.wait_for(reading, TIMEOUT) == (b"cd", True)
    source.arrive(b"ef")
    assert await upload.read() == (b"ef", False)
    assert upload.complete


async def test_bytes_wait_in_the_core_until_asked_for() -> None:
    source = CoreSource(post(4))
    source.arrive(b"ab")
    source.arrive(b"cd")
    assert source.asked == 0
    assert source.core.buffered == 4
    assert await source.upload.read() == (b"abcd", False)
    assert source.asked == 1


async def test_the_client_leaving_ends_a_waiting_read() -> None:
    source = CoreSource(post(10))
    reading = asyncio.ensure_future(source.upload.read())
    await asyncio.sleep(0)
    source.upload.client_gone()
    assert await asyncio.wait_for(reading, TIMEOUT) is None
    assert source.upload.gone.done()
    assert await source.upload.read() is None


async def test_a_failed_body_ends_the_read() -> None:
    source = CoreSource(post(10) + b"ab")
    assert await source.upload.read() == (b"ab", True)
    reading = asyncio.ensure_future(source.upload.read())
    await asyncio.sleep(0)
    source.core.receive_eof()  # cut short: the core refuses it (400)
    source.upload.wake()
    assert await asyncio.wait_for(reading, TIMEOUT) is None
    assert source.upload.gone.done()


async def test_two_readers_share_the_wait_and_a_cancelled_one_loses_nothing() -> None:
    source = CoreSource(post(4))
    upload = source.upload
    first = asyncio.ensure_future(upload.read())
    second = asyncio.ensure_future(upload.read())
    await asyncio.sleep(0)
    first.cancel()
    await asyncio.sleep(0)
    assert first.cancelled()
    source.arrive(b"abcd")
    # The bytes went to the reader still there.
    assert await asyncio.wait_for(second, TIMEOUT) == (b"abcd", False)
