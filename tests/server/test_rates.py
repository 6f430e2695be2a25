"""Per-connection message and byte rates: the token buckets, then the policy
end to end (pause reading, or close with 1008) over loopback, and what a
flooding connection can cost its neighbour on the same worker."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
import threading

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from wsserver.server import WebSocket
from wsserver.server.config import ServerConfig
from wsserver.server.rates import ConnectionRates, TokenBucket, check_rates
from wsserver.server.server import RECEIVE_BUFFER_SIZE
from wsserver.server.websocket import WebSocketDisconnect
from wsserver.testing import wire

from .._live import http_get, serving
from .helpers import wait_until

# -- the buckets (time passed in: no clock, no sleeping) ------------------------


def test_a_bucket_starts_full_and_refills_at_its_rate_up_to_its_burst() -> None:
    bucket = TokenBucket(rate=10.0, burst=5, now=100.0)
    assert [bucket.take(1, 100.0) for _ in range(5)] == [False] * 5
    assert bucket.take(1, 100.0) is True  # the sixth at once: in debt
    assert bucket.wait(100.0) == pytest.approx(0.1)  # one token at 10/s
    assert bucket.wait(100.1) == pytest.approx(0.0)
    # Quiet for a long time: back to the burst, never beyond it.
    assert bucket.wait(1000.0) == 0.0
    assert [bucket.take(1, 1000.0) for _ in range(6)] == [False] * 5 + [True]


def test_a_read_is_counted_whole_and_repaid_at_the_rate() -> None:
    # A 1 MiB read against a 64 KiB burst at 64 KiB/s: the average is
    # held by waiting until the debt is repaid, whatever the read size.
    bucket = TokenBucket(rate=65536.0, burst=65536, now=0.0)
    assert bucket.take(1 << 20, 0.0) is True
    assert bucket.wait(0.0) == pytest.approx(15.0)
    assert bucket.wait(15.0) == pytest.approx(0.0)


def test_connection_rates_report_the_longer_wait_and_which_rate() -> None:
    rates = ConnectionRates(
        message_rate=2.0, message_burst=1, byte_rate=100.0, byte_burst=100, now=0.0
    )
    assert rates.overdrawn(0.0) == (0.0, "")
    assert rates.received_message(0.0) is False
    assert rates.received_message(0.0) is True
    wait, which = rates.overdrawn(0.0)
    assert (wait, which) == (0.5, "message")
    assert rates.received_bytes(400, 0.0) is True
    wait, which = rates.overdrawn(0.0)
    assert (wait, which) == (3.0, "byte")
    assert rates.overdrawn(3.0) == (0.0, "")


def test_a_rate_set_to_none_is_not_counted() -> None:
    rates = ConnectionRates(
        message_rate=None, message_burst=1, byte_rate=None, byte_burst=1, now=0.0
    )
    assert not any(rates.received_message(0.0) for _ in range(1000))
    assert not rates.received_bytes(1 << 30, 0.0)
    assert rates.overdrawn(0.0) == (0.0, "")
    off = ServerConfig(message_rate_per_connection=None, byte_rate_per_connection=None)
    assert off.connection_rates(0.0) is None
    on = ServerConfig().connection_rates(0.0)
    assert on is not None and on.messages is not None and on.bytes is not None
    assert (on.messages.rate, on.messages.burst) == (1000.0, 2000)
    assert (on.bytes.rate, on.bytes.burst) == (4 * 1024 * 1024, 16 * 1024 * 1024)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"message_rate": 0.0}, "message_rate_per_connection must be a positive"),
        ({"message_rate": float("nan")}, "message_rate_per_connection must be a positive"),
        ({"byte_rate": -1.0}, "byte_rate_per_connection must be a positive"),
        ({"byte_rate": float("inf")}, "byte_rate_per_connection must be a positive"),
        ({"message_burst": 0}, "message_burst_per_connection must be at least 1"),
        ({"byte_burst": 0}, "byte_burst_per_connection must be at least 1"),
        ({"policy": "drop"}, "rate_limit_policy must be 'pause' or 'close'"),
    ],
)
def test_settings_are_checked(options: dict[str, object], message: str) -> None:
    settings: dict[str, object] = {
        "message_rate": 1.0,
        "message_burst": 1,
        "byte_rate": 1.0,
        "byte_burst": 1,
        "policy": "pause",
    }
    settings.update(options)
    with pytest.raises(ValueError, match=message):
        check_rates(**settings)  # type: ignore[arg-type]


# -- end to end ---------------------------------------------------------------


async def limit_hits(port: int) -> float:
    """``wsserver_limit_hits_total{limit="message_rate_per_connection"}``."""
    result = await http_get(port, "/metrics")
    assert result.status == 200
    for line in result.body.decode().splitlines():
        if line.startswith('wsserver_limit_hits_total{limit="message_rate_per_connection"}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


class Recorder:
    """An echo endpoint that notes when the application got each message."""

    def __init__(self) -> None:
        self.received: list[tuple[float, str]] = []
        self.ended: list[int] = []

    async def endpoint(self, websocket: WebSocket) -> None:
        await websocket.accept()
        loop = asyncio.get_running_loop()
        try:
            while True:
                text = await websocket.receive_text()
                self.received.append((loop.time(), text))
                await websocket.send_text(text)
        except WebSocketDisconnect as disconnect:
            self.ended.append(disconnect.code)


async def test_past_its_message_rate_a_connection_is_slowed_and_loses_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # 60 messages at once against a burst of 10 and 50 a second: the last
    # 50 take at least a second to get in; a slower machine only makes it
    # longer, so the lower bound holds however busy the machine is.
    recorder = Recorder()
    count, burst, rate = 60, 10, 50.0
    async with serving(
        recorder.endpoint,
        message_rate_per_connection=rate,
        message_burst_per_connection=burst,
        byte_rate_per_connection=None,
        metrics_path="/metrics",
    ) as server:
        url = f"ws://127.0.0.1:{server.port}/"
        with caplog.at_level(logging.INFO, logger="wsserver"):
            async with connect(url) as flooder, connect(url) as other:
                for number in range(count):
                    await flooder.send(f"flood {number}")
                # The second connection is served meanwhile.
                await other.send("ping")
                assert await asyncio.wait_for(other.recv(), 10) == "ping"
                echoes = [await asyncio.wait_for(flooder.recv(), 30) for _ in range(count)]
        assert echoes == [f"flood {number}" for number in range(count)]  # nothing lost
        times = [at for at, text in recorder.received if text.startswith("flood")]
        assert len(times) == count
        # Timer callbacks may fire up to a clock tick early: 10% slack.
        assert times[-1] - times[0] >= 0.9 * (count - burst) / rate
        assert await limit_hits(server.port) == 1  # once per connection
    paused = [r for r in caplog.records if "over its message_rate_per_connection" in r.message]
    assert len(paused) == 1, "logged once per connection, not once per pause"


async def test_past_its_byte_rate_a_connection_is_slowed() -> None:
    # A read is counted whole when it arrives and what it holds is parsed:
    # the average is held over the reads that follow.  1.5 MiB against a
    # 64 KiB burst at 1 MiB/s: all but the burst and the first read (at
    # most RECEIVE_BUFFER_SIZE) wait for tokens.
    recorder = Recorder()
    piece, count, rate, burst = "x" * 16384, 96, 1024 * 1024, 65536
    async with (
        serving(
            recorder.endpoint,
            message_rate_per_connection=None,
            byte_rate_per_connection=rate,
            byte_burst_per_connection=burst,
        ) as server,
        connect(f"ws://127.0.0.1:{server.port}/", compression=None) as flooder,
    ):
        for _ in range(count):
            await flooder.send(piece)
        for _ in range(count):
            assert await asyncio.wait_for(flooder.recv(), 30) == piece
    times = [at for at, _ in recorder.received]
    assert len(times) == count
    waited = (count * len(piece) - burst - RECEIVE_BUFFER_SIZE) / rate
    assert times[-1] - times[0] >= 0.9 * waited


async def test_with_the_close_policy_a_connection_past_its_rate_is_closed_with_1008(
    caplog: pytest.LogCaptureFixture,
) -> None:
    recorder = Recorder()
    async with serving(
        recorder.endpoint,
        message_rate_per_connection=1.0,
        message_burst_per_connection=3,
        rate_limit_policy="close",
        metrics_path="/metrics",
    ) as server:
        url = f"ws://127.0.0.1:{server.port}/"
        with caplog.at_level(logging.INFO, logger="wsserver"):
            async with connect(url) as flooder, connect(url) as other:
                with contextlib.suppress(ConnectionClosed):
                    for number in range(10):
                        await flooder.send(f"flood {number}")
                with pytest.raises(ConnectionClosed) as closed:
                    while True:
                        await asyncio.wait_for(flooder.recv(), 10)
                assert closed.value.rcvd is not None
                assert closed.value.rcvd.code == 1008
                assert closed.value.rcvd.reason == "message rate exceeded"
                # The other connection, under its own rate, stays open.
                await other.send("ping")
                assert await asyncio.wait_for(other.recv(), 10) == "ping"
        assert await limit_hits(server.port) == 1
    assert 1008 in recorder.ended
    assert len([r for r in recorder.received if r[1].startswith("flood")]) <= 4
    assert [r for r in caplog.records if "closing with 1008" in r.message]


# -- what a flood costs its neighbour -------------------------------------------
#
# The issue asked for "a second connection keeps its round-trip time within
# 2x of an idle server's" while one floods.  A ratio of two wall-clock
# timings fails at random on a shared 2-core machine, so the test measures
# the same property in work instead of time: how many flood messages the
# worker took in (parsed and handed to the application) while the neighbour
# made its round trips.  That is what the neighbour waits behind on the
# event loop, and the message bucket bounds it whatever the machine's pace:
# in a window of T seconds (on the server's own clock) the application gets
# at most
#
#     burst (tokens saved)  +  rate * T (refill)  +  1 (the message that
#     goes into debt; parsing stops right after it)  +  max_queue (parsed
#     before the window, still queued for the application)
#
# flood messages.  A busy machine makes T longer and the bound with it, so
# it never fails for being slow; without the rate the flood is limited only
# by how fast the worker parses (measured on this machine: about 17,000
# flood messages, 30 times the bound, during the neighbour's 40 round trips;
# the test then fails).


class Flooder:
    """A raw client in a thread, sending small text frames as fast as the
    socket takes them (it never reads: the server's answers are not asked
    for).  Cheap, and off the event loop, so that the flood does not depend
    on the test's loop giving it turns."""

    def __init__(self, port: int) -> None:
        self.port = port
        # 64 KiB of whole frames, sent again and again.
        frame = wire.client_frame(wire.OP_TEXT, b"f" * 16)
        self.chunk = frame * (65536 // len(frame))
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.cut_off = False
        self.thread = threading.Thread(target=self._run, name="flooder", daemon=True)

    def _run(self) -> None:
        # Everything blocking happens here, off the event loop the server runs on.
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=10) as sock:
                # Closed with a reset at the end: the server, paused by the
                # rate, learns at once that the peer is gone.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.sendall(wire.client_handshake("/", key=wire.random_key()))
                head = b""
                while b"\r\n\r\n" not in head:
                    chunk = sock.recv(4096)
                    assert chunk, "the server closed during the handshake"
                    head += chunk
                assert head.startswith(b"HTTP/1.1 101 "), head[:100]
                self._flood(sock)
        except BaseException as error:  # reported by the test
            self.error = error

    def _flood(self, sock: socket.socket) -> None:
        # A timeout, so that a send blocked by the paused server sees the stop
        # flag; the offset keeps frames whole across partial sends.
        sock.settimeout(0.2)
        view = memoryview(self.chunk)
        offset = 0
        while not self.stop.is_set():
            try:
                offset += sock.send(view[offset:])
            except TimeoutError:
                continue
            except OSError:
                # The server went away: fine at the end, a failure before.
                self.cut_off = not self.stop.is_set()
                return
            if offset == len(view):
                offset = 0

    def __enter__(self) -> Flooder:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(10)
        assert not self.thread.is_alive()
        if self.error is not None:
            raise AssertionError("the flooder failed") from self.error
        assert not self.cut_off, "the server closed the flooding connection"


class Neighbourhood:
    """An endpoint that counts flood messages and echoes the neighbour's,
    noting the order (and, for the neighbour, the time) the application got
    them in."""

    def __init__(self) -> None:
        self.log: list[tuple[str, float]] = []
        self.flood = 0

    async def endpoint(self, websocket: WebSocket) -> None:
        await websocket.accept()
        loop = asyncio.get_running_loop()
        with contextlib.suppress(WebSocketDisconnect):
            while True:
                text = await websocket.receive_text()
                if text.startswith("n"):
                    self.log.append(("neighbour", loop.time()))
                    await websocket.send_text(text)
                else:
                    self.flood += 1
                    self.log.append(("flood", 0.0))


async def test_a_flood_costs_its_neighbour_at_most_its_rate_in_work() -> None:
    rate, burst, trips = 100.0, 50, 40
    neighbourhood = Neighbourhood()
    async with serving(
        neighbourhood.endpoint,
        message_rate_per_connection=rate,
        message_burst_per_connection=burst,
        byte_rate_per_connection=None,
    ) as server:
        max_queue = server.config.max_queue
        with Flooder(server.port):
            # The flood is under way, its burst spent, before the neighbour starts.
            await wait_until(lambda: neighbourhood.flood > burst, timeout=30)
            async with connect(f"ws://127.0.0.1:{server.port}/") as neighbour:
                # Fewer messages than the burst: the neighbour is never slowed by
                # its own bucket, only (if at all) by the flood.
                for number in range(trips):
                    await neighbour.send(f"n{number}")
                    assert await asyncio.wait_for(neighbour.recv(), 30) == f"n{number}"
    log = neighbourhood.log
    positions = [i for i, (kind, _) in enumerate(log) if kind == "neighbour"]
    assert len(positions) == trips
    first, last = positions[0], positions[-1]
    window = log[last][1] - log[first][1]
    flood_in_window = sum(kind == "flood" for kind, _ in log[first:last])
    bound = burst + rate * window + 1 + max_queue
    assert flood_in_window <= bound, (
        f"{flood_in_window} flood messages taken in while the neighbour made {trips} round "
        f"trips in {window:.3f} s: more than the rate allows ({bound:.0f})"
    )
