"""The client's address and scheme as a trusted reverse proxy reports them.

Behind a proxy (nginx, a load balancer), every connection comes from the
proxy: the peer address is the proxy's, and a TLS-terminating proxy talks
plain HTTP to us.  The proxy reports the real client in the de facto
standard ``X-Forwarded-For`` (a comma-separated list, each hop appending the
address it received from) and the client's scheme in ``X-Forwarded-Proto``.

Anyone can send those headers, so they are believed only from a peer in the
trusted set (``--forwarded-allow-ips``, as uvicorn's: addresses, networks
in CIDR notation, or ``*`` for every peer; ``127.0.0.1`` by default, a proxy
on the same host).  ``X-Forwarded-For`` is read from the right: the last
address is the one the trusted peer saw, and addresses are skipped leftward
while they belong to trusted proxies themselves; the first untrusted one is
the client.  Anything to its left was written by the client and is not
believed.  A header that cannot be parsed changes nothing; only the last 32
hops are read.  A peer on a Unix socket (no address) is on this host, so it
is trusted as a local proxy is.

For WebSocket requests the scheme is mapped: ``https``/``wss`` -> ``wss``,
``http``/``ws`` -> ``ws``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from .datastructures import Address

__all__ = ["TrustedProxies", "forwarded_client"]

_IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
_HTTP_SCHEMES = {"http": "http", "https": "https", "ws": "http", "wss": "https"}
_WS_SCHEMES = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}
# X-Forwarded-For longer than this is not read: no proxy chain is that long,
# and parsing it costs per request.
_MAX_HOPS = 32


class TrustedProxies:
    """The peers whose ``X-Forwarded-*`` headers are believed.

    Args:
        spec: comma-separated addresses (``10.0.0.1``), networks
            (``10.0.0.0/8``, ``fd00::/8``) and ``*`` (every peer), or an
            iterable of them.  Non-IP entries (a Unix socket path, which
            uvicorn also accepts) match a peer with that literal name.

    Raises:
        ValueError: an entry that is neither an address, a network, ``*``
            nor a path.
    """

    __slots__ = ("_everyone", "_literals", "_networks", "_verdicts", "spec")

    #: Verdicts remembered, at most: parsing an address costs more than the
    #: rest of the check, and it is asked twice per handshake (the forwarded
    #: client, then the per-client limits) for mostly the same few peers.
    #: Bounded, since the peers of a public port are anyone: the memo is
    #: emptied when full (4,096 short strings: under 0.5 MiB).
    MEMO_SIZE = 4096

    def __init__(self, spec: str | Iterable[str]) -> None:
        entries = spec.split(",") if isinstance(spec, str) else list(spec)
        self.spec = ",".join(entry.strip() for entry in entries if entry.strip())
        self._everyone = False
        self._networks: list[_IPNetwork] = []
        self._literals: set[str] = set()
        self._verdicts: dict[str, bool] = {}
        for raw in entries:
            entry = raw.strip()
            if not entry:
                continue
            if entry == "*":
                self._everyone = True
            elif entry.startswith("/") or entry.startswith("unix:"):
                self._literals.add(entry)
            else:
                try:
                    self._networks.append(ipaddress.ip_network(entry, strict=False))
                except ValueError:
                    raise ValueError(
                        f"forwarded_allow_ips: {entry!r} is not an IP address, a network "
                        "(10.0.0.0/8), '*' or a Unix socket path"
                    ) from None

    def __repr__(self) -> str:
        return f"TrustedProxies({self.spec!r})"

    def trusts(self, host: str) -> bool:
        """Whether ``host`` (a peer or a hop of ``X-Forwarded-For``) is a trusted proxy."""
        verdict = self._verdicts.get(host)
        if verdict is not None:
            return verdict
        if self._everyone or host in self._literals:
            return True
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            verdict = False
        else:
            verdict = any(address in network for network in self._networks)
        if len(self._verdicts) >= self.MEMO_SIZE:
            self._verdicts.clear()
        self._verdicts[host] = verdict
        return verdict


def forwarded_client(
    trusted: TrustedProxies,
    peer: Address | None,
    headers: Iterable[tuple[str, str]],
    scheme: str,
    *,
    websocket: bool,
) -> tuple[Address | None, str]:
    """The client and scheme of a request that came from ``peer``.

    Args:
        trusted: whose headers are believed.
        peer: the transport's peer (``None`` for a Unix socket).
        headers: the request's header fields, names in lower case.
        scheme: the transport's own: ``http`` or ``https``.
        websocket: map the scheme to ``ws``/``wss``.

    Returns:
        ``(client, scheme)``: the peer and the transport's scheme unless a
        trusted peer said otherwise.  A client given by the proxy has port
        0: the proxy does not report it.
    """
    own = _WS_SCHEMES[scheme] if websocket else scheme
    if peer is not None and not trusted.trusts(peer.host):
        return peer, own
    forwarded_for: str | None = None
    proto: str | None = None
    for name, value in headers:
        if name == "x-forwarded-for":
            # Several fields are one list, in order (RFC 9110 section 5.3).
            forwarded_for = value if forwarded_for is None else f"{forwarded_for},{value}"
        elif name == "x-forwarded-proto":
            proto = value
    client = peer
    if forwarded_for is not None:
        hops = [hop.strip() for hop in forwarded_for.rsplit(",", _MAX_HOPS)[-_MAX_HOPS:]]
        found = _client_hop(trusted, hops)
        if found is not None:
            client = Address(found, 0)
    if proto is not None:
        # The first value, if a chain of proxies listed several.
        named = proto.split(",", 1)[0].strip().lower()
        table = _WS_SCHEMES if websocket else _HTTP_SCHEMES
        if named in table:
            own = table[named]
    return client, own


def _client_hop(trusted: TrustedProxies, hops: list[str]) -> str | None:
    """The rightmost hop that is not a trusted proxy (or the leftmost, if all are)."""
    valid = [_host_of(hop) for hop in hops]
    if not valid or any(hop is None for hop in valid):
        return None
    for hop in reversed(valid):
        assert hop is not None
        if not trusted.trusts(hop):
            return hop
    return valid[0]


def _host_of(hop: str) -> str | None:
    """The address in one ``X-Forwarded-For`` entry, or ``None`` if it is not one."""
    candidate = hop
    if candidate.startswith("[") and "]" in candidate:  # [2001:db8::1]:4711
        candidate = candidate[1 : candidate.index("]")]
    elif candidate.count(":") == 1:  # 192.0.2.1:4711
        candidate = candidate.split(":", 1)[0]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return None
