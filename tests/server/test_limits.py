"""ClientLimiter: per-client open WebSockets and handshake rate, bounded memory;
then the limits end to end, over loopback from two addresses."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tracemalloc

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from wsserver.server import Server, WebSocket
from wsserver.server.limits import LOG_INTERVAL, ClientLimiter, ClientSlot, Refusal, client_key
from wsserver.server.websocket import WebSocketDisconnect

from .._live import serving


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def limiter(clock: Clock, **options: object) -> ClientLimiter:
    settings: dict[str, object] = {"max_open": 3, "rate": 2.0, "burst": 4}
    settings.update(options)
    return ClientLimiter(clock=clock, **settings)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("host", "prefix", "key"),
    [
        ("192.0.2.7", 64, "192.0.2.7"),
        ("2001:db8:1:2:aaaa::1", 64, "2001:db8:1:2::/64"),
        ("2001:db8:1:2:bbbb::9", 64, "2001:db8:1:2::/64"),
        ("2001:db8:1:2:bbbb::9", 48, "2001:db8:1::/48"),
        ("2001:db8::9", 128, "2001:db8::9"),
        ("::ffff:192.0.2.7", 64, "192.0.2.7"),
        ("/run/proxy.sock", 64, "/run/proxy.sock"),
    ],
)
def test_a_client_is_an_ipv4_address_or_an_ipv6_network(host: str, prefix: int, key: str) -> None:
    assert client_key(host, prefix) == key


def test_open_websockets_are_capped_per_client_and_given_back() -> None:
    clock = Clock()
    limits = limiter(clock, rate=None)
    slots = [limits.admit("192.0.2.1") for _ in range(3)]
    assert all(isinstance(slot, ClientSlot) for slot in slots)
    refused = limits.admit("192.0.2.1")
    assert refused == Refusal(
        429, 1, "too many open WebSockets from one client (3)", "max_connections_per_client"
    )
    # Another client is not affected.
    assert isinstance(limits.admit("192.0.2.2"), ClientSlot)
    first = slots[0]
    assert isinstance(first, ClientSlot)
    first.release()
    first.release()  # twice is harmless: one slot back, not two
    assert isinstance(limits.admit("192.0.2.1"), ClientSlot)
    assert isinstance(limits.admit("192.0.2.1"), Refusal)


def test_ipv6_addresses_of_one_network_share_their_limit() -> None:
    limits = limiter(Clock(), max_open=2, rate=None)
    assert isinstance(limits.admit("2001:db8:0:1::1"), ClientSlot)
    assert isinstance(limits.admit("2001:db8:0:1::2"), ClientSlot)
    assert isinstance(limits.admit("2001:db8:0:1:ffff::3"), Refusal)
    assert isinstance(limits.admit("2001:db8:0:2::1"), ClientSlot)


def test_handshakes_follow_a_token_bucket() -> None:
    clock = Clock()
    limits = limiter(clock, max_open=None, rate=2.0, burst=4)
    for _ in range(4):
        slot = limits.admit("192.0.2.1")
        assert isinstance(slot, ClientSlot)
        slot.release()
    refusal = limits.admit("192.0.2.1")
    assert refusal == Refusal(
        429, 1, "too many handshakes from one client (2/s)", "handshake_rate_per_client"
    )
    clock.now += 0.5  # one token back at 2 per second
    assert isinstance(limits.admit("192.0.2.1"), ClientSlot)
    assert isinstance(limits.admit("192.0.2.1"), Refusal)
    clock.now += 100  # never more than the burst
    assert sum(isinstance(limits.admit("192.0.2.1"), ClientSlot) for _ in range(10)) == 4


def test_retry_after_is_the_wait_for_the_next_token_rounded_up() -> None:
    clock = Clock()
    limits = limiter(clock, max_open=None, rate=0.25, burst=1)
    assert isinstance(limits.admit("192.0.2.1"), ClientSlot)
    refusal = limits.admit("192.0.2.1")
    assert isinstance(refusal, Refusal)
    assert refusal.retry_after == 4
    clock.now += 3.5
    refusal = limits.admit("192.0.2.1")
    assert isinstance(refusal, Refusal)
    assert refusal.retry_after == 1


def test_an_unknown_address_is_not_limited() -> None:
    limits = limiter(Clock(), max_open=1, rate=None)
    assert [limits.admit(None) for _ in range(5)] == [None] * 5
    assert len(limits) == 0


def test_refusals_are_logged_once_per_client_and_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    limits = limiter(clock, max_open=1, rate=None)
    assert isinstance(limits.admit("192.0.2.1"), ClientSlot)
    with caplog.at_level(logging.WARNING, logger="wsserver"):
        for _ in range(50):
            assert isinstance(limits.admit("192.0.2.1"), Refusal)
        clock.now += LOG_INTERVAL
        assert isinstance(limits.admit("192.0.2.1"), Refusal)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2
    assert lines[0].startswith("client 192.0.2.1: too many open WebSockets from one client (1)")
    assert "(1 refused since the last line" in lines[0]
    assert "(50 refused since the last line" in lines[1]


def test_idle_clients_are_evicted_oldest_first_and_active_ones_kept() -> None:
    clock = Clock()
    limits = limiter(clock, max_open=None, rate=1.0, burst=1, table_size=3)
    held = limits.admit("10.0.0.1")  # active: never evicted
    assert isinstance(held, ClientSlot)
    for n in range(2, 6):
        slot = limits.admit(f"10.0.0.{n}")
        assert isinstance(slot, ClientSlot)
        slot.release()
    assert len(limits) == 4  # 1 active + 3 idle
    # 10.0.0.2 was evicted: it is new again, with a full bucket; 10.0.0.5
    # is remembered with its bucket spent.
    again = limits.admit("10.0.0.2")
    assert isinstance(again, ClientSlot)
    again.release()
    assert isinstance(limits.admit("10.0.0.5"), Refusal)
    assert isinstance(limits.admit("10.0.0.1"), Refusal)
    held.release()
    # 10.0.0.1 is idle now: it joins the idle table, which evicts its oldest.
    assert len(limits) == 3


def test_memory_stays_bounded_under_100_000_distinct_addresses() -> None:
    # The flood of docs/security.md: every handshake from a new address.
    # What the limiter holds after it is measured against the bound stated
    # there: 400 bytes per remembered client, table_size of them.
    table_size = 10_000
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        limits = limiter(Clock(), max_open=4, rate=5.0, burst=10, table_size=table_size)
        for n in range(100_000):
            slot = limits.admit(f"2001:db8:{n >> 16:x}:{n & 0xFFFF:x}::1")
            assert isinstance(slot, ClientSlot)
            slot.release()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(limits) == table_size
    assert held < 400 * table_size


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_open": 0}, "max_connections_per_client must be at least 1"),
        ({"rate": 0.0}, "handshake_rate_per_client must be a positive number"),
        ({"rate": float("inf")}, "handshake_rate_per_client must be a positive number"),
        ({"burst": 0}, "handshake_burst_per_client must be at least 1"),
        ({"ipv6_prefix": 0}, "client_ipv6_prefix must be between 1 and 128"),
        ({"table_size": 0}, "client_table_size must be at least 1"),
    ],
)
def test_settings_are_checked(options: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        limiter(Clock(), **options)


# ---------------------------------------------------------------------------
# End to end: a real server on loopback, real clients (websockets) from two
# addresses, 127.0.0.1 and 127.0.0.2 (Linux routes all of 127/8 to lo).
# ---------------------------------------------------------------------------

SECOND = "127.0.0.2"
# No proxy on loopback: 127.0.0.1, trusted by default, would not be limited.
NO_LOCAL_PROXY = "192.0.2.1"


async def echo(websocket: WebSocket) -> None:
    await websocket.accept()
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            await websocket.send_text(await websocket.receive_text())


def client(server: Server, source: str = "127.0.0.1", forwarded_for: str | None = None) -> connect:
    headers = [("X-Forwarded-For", forwarded_for)] if forwarded_for is not None else []
    return connect(
        f"ws://127.0.0.1:{server.port}/",
        local_addr=(source, 0),
        additional_headers=headers,
        open_timeout=10,
        compression=None,
    )


async def refused(connecting: connect) -> tuple[int, str | None, bytes]:
    """Status, ``Retry-After`` and body of a handshake the server refuses."""
    with pytest.raises(InvalidStatus) as caught:
        async with connecting:
            pass
    response = caught.value.response
    return response.status_code, response.headers.get("Retry-After"), bytes(response.body)


async def echoes(connection: ClientConnection, text: str = "ping") -> bool:
    await connection.send(text)
    return await asyncio.wait_for(connection.recv(), 10) == text


async def test_a_client_past_its_connection_cap_gets_429_while_another_connects() -> None:
    async with (
        serving(echo, max_connections_per_client=2, forwarded_allow_ips=NO_LOCAL_PROXY) as server,
        contextlib.AsyncExitStack() as stack,
    ):
        first = await stack.enter_async_context(client(server))
        second = await stack.enter_async_context(client(server))
        status, retry_after, body = await refused(client(server))
        assert (status, retry_after) == (429, "1")
        assert b"too many open WebSockets from one client (2)" in body
        # Another address has its own count, and is served as usual.
        other = await stack.enter_async_context(client(server, SECOND))
        assert await echoes(other) and await echoes(first) and await echoes(second)
        # A slot is given back when its WebSocket ends (when the server has
        # seen it end: polled, not slept on).
        await first.close()
        deadline = asyncio.get_running_loop().time() + 10
        while True:
            try:
                again = await stack.enter_async_context(client(server))
                break
            except InvalidStatus as error:
                assert error.response.status_code == 429
                assert asyncio.get_running_loop().time() < deadline, "the slot never came back"
                await asyncio.sleep(0.05)
        assert await echoes(again)


async def test_a_client_past_its_handshake_rate_gets_429_while_another_connects() -> None:
    # One token per 100 s: however slow the machine, no token comes back
    # during the test, so the third handshake is refused for certain.
    async with serving(
        echo,
        handshake_rate_per_client=0.01,
        handshake_burst_per_client=2,
        forwarded_allow_ips=NO_LOCAL_PROXY,
    ) as server:
        for _ in range(2):
            async with client(server) as connection:
                assert await echoes(connection)
        status, retry_after, body = await refused(client(server))
        assert status == 429 and b"too many handshakes from one client" in body
        assert retry_after is not None and 1 <= int(retry_after) <= 100
        async with client(server, SECOND) as other:
            assert await echoes(other)


async def test_x_forwarded_for_names_the_client_only_from_a_trusted_proxy() -> None:
    async with (
        serving(echo, max_connections_per_client=1, forwarded_allow_ips="127.0.0.1") as server,
        contextlib.AsyncExitStack() as stack,
    ):
        # From the trusted proxy (127.0.0.1): each forwarded address is a
        # client of its own, capped on its own.
        held = await stack.enter_async_context(client(server, forwarded_for="203.0.113.5"))
        status, _, _ = await refused(client(server, forwarded_for="203.0.113.5"))
        assert status == 429
        # The proxy's own address is not the client: the hops are read
        # from the right, and a client's own entries on the left ignored.
        other = await stack.enter_async_context(
            client(server, forwarded_for="203.0.113.5, 203.0.113.6")
        )
        assert await echoes(held) and await echoes(other)
        # A trusted proxy that names no client is not limited (every client
        # behind it would share its count).
        for _ in range(3):
            assert await echoes(await stack.enter_async_context(client(server)))
        # From an untrusted peer (127.0.0.2) the header is ignored: it is
        # counted as itself whatever address it claims, new ones included.
        mine = await stack.enter_async_context(client(server, SECOND, "198.51.100.1"))
        for claimed in ("198.51.100.2", "203.0.113.77", None):
            status, _, _ = await refused(client(server, SECOND, claimed))
            assert status == 429
        assert await echoes(mine)
