"""Tests for wsserver.server.proxy: the client and scheme a trusted proxy forwards."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wsserver.server import proxy
from wsserver.server.datastructures import Address
from wsserver.server.proxy import TrustedProxies, forwarded_client

PROXY = Address("127.0.0.1", 50000)
STRANGER = Address("203.0.113.9", 40000)
LOCAL = TrustedProxies("127.0.0.1")


def forwarded(
    headers: list[tuple[str, str]],
    *,
    peer: Address | None = PROXY,
    trusted: TrustedProxies = LOCAL,
    scheme: str = "http",
    websocket: bool = False,
) -> tuple[Address | None, str]:
    return forwarded_client(trusted, peer, headers, scheme, websocket=websocket)


@pytest.mark.parametrize(
    ("spec", "host", "trusted"),
    [
        ("127.0.0.1", "127.0.0.1", True),
        ("127.0.0.1", "127.0.0.2", False),
        ("10.0.0.0/8", "10.200.3.4", True),
        ("10.0.0.0/8", "11.0.0.1", False),
        ("10.0.0.1/8", "10.9.9.9", True),  # host bits are ignored, as uvicorn
        ("fd00::/8", "fd12::1", True),
        ("::1", "::1", True),
        ("*", "198.51.100.7", True),
        (" 192.0.2.1 , 192.0.2.2 ", "192.0.2.2", True),
        ("/run/proxy.sock", "/run/proxy.sock", True),
        ("127.0.0.1", "not-an-address", False),
        ("", "127.0.0.1", False),
    ],
)
def test_which_peers_are_trusted(spec: str, host: str, trusted: bool) -> None:
    assert TrustedProxies(spec).trusts(host) is trusted


def test_verdicts_are_remembered_and_stay_right_past_the_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(proxy, "_MAX_VERDICTS", 4)
    trusted = TrustedProxies("10.0.0.0/8")
    hosts = [f"10.0.0.{n}" for n in range(6)] + [f"11.0.0.{n}" for n in range(6)] + ["x"]
    for _ in range(3):  # asked again, after the memory was cleared in between
        assert [trusted.trusts(host) for host in hosts] == [True] * 6 + [False] * 7


def test_a_list_of_entries_is_the_same_as_their_text() -> None:
    assert TrustedProxies(["10.0.0.0/8", "127.0.0.1"]).spec == "10.0.0.0/8,127.0.0.1"
    assert repr(TrustedProxies(" 10.0.0.0/8 ,")) == "TrustedProxies('10.0.0.0/8')"


@pytest.mark.parametrize("entry", ["10.0.0.0/33", "localhost", "1.2.3.4.5", "*.example.com"])
def test_an_entry_that_is_no_address_is_refused(entry: str) -> None:
    with pytest.raises(ValueError) as caught:
        TrustedProxies(f"127.0.0.1,{entry}")
    assert str(caught.value).startswith(f"forwarded_allow_ips: {entry!r} is not an IP address")


def test_headers_from_an_untrusted_peer_change_nothing() -> None:
    headers = [("x-forwarded-for", "192.0.2.1"), ("x-forwarded-proto", "https")]
    assert forwarded(headers, peer=STRANGER) == (STRANGER, "http")
    assert forwarded(headers, peer=STRANGER, websocket=True) == (STRANGER, "ws")


def test_a_trusted_peer_reports_the_client_and_scheme() -> None:
    headers = [("x-forwarded-for", "192.0.2.1"), ("x-forwarded-proto", "https")]
    assert forwarded(headers) == (Address("192.0.2.1", 0), "https")
    assert forwarded(headers, websocket=True) == (Address("192.0.2.1", 0), "wss")


def test_without_forwarding_headers_the_peer_stays() -> None:
    assert forwarded([("host", "x")]) == (PROXY, "http")
    assert forwarded([], scheme="https", websocket=True) == (PROXY, "wss")


@pytest.mark.parametrize(
    ("chain", "trusted", "client"),
    [
        # The client wrote the leftmost entries itself: only the hop the
        # trusted proxy appended is believed.
        ("6.6.6.6, 192.0.2.1", "127.0.0.1", "192.0.2.1"),
        # Hops through further trusted proxies are skipped.
        ("192.0.2.1, 10.0.0.5, 10.0.0.6", "127.0.0.1,10.0.0.0/8", "192.0.2.1"),
        ("6.6.6.6, 192.0.2.1, 10.0.0.6", "127.0.0.1,10.0.0.0/8", "192.0.2.1"),
        # Every hop a trusted proxy: the leftmost is the client.
        ("10.0.0.5, 10.0.0.6", "127.0.0.1,10.0.0.0/8", "10.0.0.5"),
        ("192.0.2.1", "*", "192.0.2.1"),
        ("6.6.6.6, 192.0.2.1", "*", "6.6.6.6"),
        # Ports and brackets, as some proxies write them.
        ("192.0.2.1:4711", "127.0.0.1", "192.0.2.1"),
        ("[2001:db8::1]:4711", "127.0.0.1", "2001:db8::1"),
        ("2001:db8::1", "127.0.0.1", "2001:db8::1"),
    ],
)
def test_the_client_is_the_rightmost_untrusted_hop(chain: str, trusted: str, client: str) -> None:
    result = forwarded([("x-forwarded-for", chain)], trusted=TrustedProxies(trusted))
    assert result == (Address(client, 0), "http")


def test_several_forwarded_for_fields_are_one_list() -> None:
    headers = [("x-forwarded-for", "6.6.6.6"), ("x-forwarded-for", "192.0.2.1")]
    assert forwarded(headers) == (Address("192.0.2.1", 0), "http")


@pytest.mark.parametrize("chain", ["unknown", "192.0.2.1, garbage", "", " , "])
def test_a_chain_that_cannot_be_read_changes_nothing(chain: str) -> None:
    assert forwarded([("x-forwarded-for", chain)]) == (PROXY, "http")


@pytest.mark.parametrize(
    ("proto", "http", "ws"),
    [
        ("https", "https", "wss"),
        ("HTTPS", "https", "wss"),
        ("http", "http", "ws"),
        ("wss", "https", "wss"),
        ("ws", "http", "ws"),
        ("https, http", "https", "wss"),
        ("gopher", "http", "ws"),  # unknown: the transport's own
    ],
)
def test_the_forwarded_scheme(proto: str, http: str, ws: str) -> None:
    headers = [("x-forwarded-proto", proto)]
    assert forwarded(headers) == (PROXY, http)
    assert forwarded(headers, websocket=True) == (PROXY, ws)


def test_a_unix_socket_peer_is_a_trusted_local_proxy() -> None:
    # No peer address (a Unix socket): only a local proxy can be there.
    headers = [("x-forwarded-for", "192.0.2.1"), ("x-forwarded-proto", "https")]
    assert forwarded(headers, peer=None) == (Address("192.0.2.1", 0), "https")


@given(st.text(max_size=300))
def test_any_forwarded_for_value_gives_the_peer_or_an_address(chain: str) -> None:
    client, scheme = forwarded([("x-forwarded-for", chain)], trusted=TrustedProxies("*"))
    assert scheme == "http"
    assert client == PROXY or (client is not None and client.port == 0)


def test_a_very_long_chain_is_read_from_its_last_hops_only() -> None:
    chain = ", ".join(["6.6.6.6"] * 1000 + ["192.0.2.1"])
    assert forwarded([("x-forwarded-for", chain)]) == (Address("192.0.2.1", 0), "http")
