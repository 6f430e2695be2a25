"""ClientLimiter: per-client open WebSockets and handshake rate, bounded memory."""

from __future__ import annotations

import logging
import tracemalloc

import pytest

from wsserver.server.limits import LOG_INTERVAL, ClientLimiter, ClientSlot, Refusal, client_key


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
    assert refused == Refusal(429, 1, "too many open WebSockets from one client (3)")
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
    assert refusal == Refusal(429, 1, "too many handshakes from one client (2/s)")
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
