"""Fuzz target: what the server reads from a request's fields (``wsserver/server``).

INVARIANT: a value or a documented failure, never any other exception,
never unbounded memory.  Here, on any request-target, ``Host``, ``Cookie``,
``Content-Type``, ``X-Forwarded-*`` value and body:

* ``Request(...)`` builds, or raises ``ValueError`` (answered 400); once
  built, its ``url`` prints back as a URL that parses to itself, its
  ``query_params`` holds at most ``MAX_QUERY_PAIRS`` pairs, its ``cookies``
  never raise, ``text()`` returns or raises ``UnicodeDecodeError`` /
  ``LookupError`` (documented) and ``json()`` returns or raises
  ``ValueError``;
* a WebSocket handshake the server lets through (it reads
  ``WebSocket.query_params``, so the URL and its query, at the handshake)
  never raises later, when the application reads ``url``, ``query_params``,
  ``cookies`` or ``headers``;
* ``forwarded_client`` never raises, believes ``X-Forwarded-*`` only from a
  trusted peer, and gives an address in canonical form; ``client_key``
  never raises, and gives one key for one address however it is written;
* the router's ``match_http`` / ``match_websocket`` never raise on the
  path.

Input: byte 0 picks the scheme, the trusted proxies and whether the peer is
trusted; the rest, decoded as ISO-8859-1 (as the HTTP phase decodes heads),
is split at NUL bytes into: target, Host, Cookie, Content-Type,
X-Forwarded-For, X-Forwarded-Proto, body.

Run: ``python fuzz/fuzz_http_fields.py [libFuzzer args] [corpus dirs]``.
"""

from __future__ import annotations

import contextlib
import ipaddress
import sys
from typing import Any, cast

import atheris

with atheris.instrument_imports(include=["wsserver", "h11"]):
    from wsserver.protocol.events import WebSocketRequest
    from wsserver.server import Response, Router
    from wsserver.server.datastructures import (
        MAX_QUERY_PAIRS,
        URL,
        Address,
        QueryParams,
        parse_cookies,
    )
    from wsserver.server.limits import client_key
    from wsserver.server.proxy import TrustedProxies, forwarded_client
    from wsserver.server.requests import Request
    from wsserver.server.websocket import WebSocket

SCHEMES = ("http", "https")
PROXIES = (
    TrustedProxies("127.0.0.1"),
    TrustedProxies("10.0.0.0/8, ::1, fd00::/8"),
    TrustedProxies("*"),
    TrustedProxies("/run/proxy.sock"),
)
PEERS = (Address("127.0.0.1", 5000), Address("10.1.2.3", 5000), Address("192.0.2.7", 5000))
FIELDS = 7


async def _page(request: Request) -> Response:  # pragma: no cover - never run
    return Response(b"")


async def _endpoint(websocket: WebSocket) -> None:  # pragma: no cover - never run
    return None


def _router() -> Router:
    router = Router()
    router.add_route("/", _page, name="home")
    router.add_route("/items/{id:int}", _page)
    router.add_route("/files/{rest:path}", _page)
    router.add_websocket_route("/ws/{room}", _endpoint)
    return router


_ROUTER = _router()


def _check_request(
    target: str, headers: list[tuple[str, str]], body: bytes, scheme: str
) -> Request | None:
    try:
        request = Request("POST", target, headers, body, scheme=scheme, server_host="localhost")
    except ValueError:
        return None
    url = request.url
    again = URL.from_target(str(url), scheme, None)
    assert again == url, f"{url} does not parse back to itself"
    assert len(request.query_params.multi_items()) <= MAX_QUERY_PAIRS
    assert isinstance(request.cookies, dict)
    with contextlib.suppress(UnicodeDecodeError, LookupError):
        request.text()
    with contextlib.suppress(ValueError):
        request.json()
    _ROUTER.match_http(url.raw_path, "GET")
    _ROUTER.match_websocket(url.raw_path)
    return request


def _check_websocket(target: str, headers: list[tuple[str, str]], scheme: str) -> None:
    event = WebSocketRequest(target=target, headers=tuple(headers), subprotocols=(), extensions=())
    # The request properties read only the request: no sender or inbox needed.
    websocket = WebSocket(
        cast(Any, None),
        cast(Any, None),
        event,
        connection_id=1,
        max_message_size=1 << 20,
        scheme="wss" if scheme == "https" else "ws",
        server_host="localhost",
        client=None,
    )
    try:
        websocket.query_params  # noqa: B018 - what the server checks at the handshake (400)
    except ValueError:
        return
    # Let through: nothing the application reads may fail now.
    _ = websocket.url, websocket.cookies, websocket.headers


def _check_forwarded(config: int, headers: list[tuple[str, str]], scheme: str) -> None:
    trusted = PROXIES[(config >> 1) & 0x03]
    peer = PEERS[(config >> 3) % len(PEERS)] if config & 0x20 == 0 else None
    for websocket in (False, True):
        client, seen_scheme = forwarded_client(trusted, peer, headers, scheme, websocket=websocket)
        if peer is not None and not trusted.trusts(peer.host):
            assert client == peer, "a header from an untrusted peer was believed"
        if client is not None and client is not peer:
            assert client.port == 0
            assert str(ipaddress.ip_address(client.host)) == client.host, client.host
            key = client_key(client.host, 64)
            # Another spelling of the address.  Without its zone (fe80::1%eth0),
            # which client_key ignores and ``exploded`` cannot spell (CPython
            # 3.11 raises AddressValueError on a scoped address).
            other = ipaddress.ip_address(client.host.partition("%")[0]).exploded
            assert key == client_key(other, 64), key
        assert seen_scheme in (("ws", "wss") if websocket else ("http", "https"))


def TestOneInput(data: bytes) -> None:
    if not data:
        return
    config = data[0]
    fields = data[1:].decode("latin-1").split("\x00", FIELDS - 1)
    fields += [""] * (FIELDS - len(fields))
    target, host, cookie, content_type, forwarded_for, forwarded_proto, body = fields
    scheme = SCHEMES[config & 0x01]
    headers = [("host", host)] if host else []
    headers += [("cookie", cookie), ("content-type", content_type)]
    if forwarded_for:
        headers.append(("x-forwarded-for", forwarded_for))
    if forwarded_proto:
        headers.append(("x-forwarded-proto", forwarded_proto))
    parse_cookies([cookie, cookie[::-1]])
    try:
        QueryParams(target)
    except ValueError as exc:
        assert "fields" in str(exc), exc
    _check_request(target, headers, body.encode("latin-1"), scheme)
    _check_websocket(target, headers, scheme)
    _check_forwarded(config, headers, scheme)


# -- seeds ------------------------------------------------------------------


def _case(config: int, *fields: str) -> bytes:
    return bytes([config]) + "\x00".join(fields).encode("latin-1")


def seeds() -> dict[str, bytes]:
    """Requests as browsers and proxies send them, and hostile ones."""
    cookie = 'sid=abc; theme="dark"; empty=; flag; sid=second; caf\xc3\xa9=\xc3\xa9'
    return {
        "plain": _case(0, "/items/3?x=1&y=%20", "example.com", cookie, "text/plain"),
        "json": _case(
            0,
            "/?a",
            "example.com:8080",
            "",
            "application/json; charset=latin-1",
            "",
            "",
            '{"a":[1]}',
        ),
        "absolute": _case(1, "https://Example.COM:443/a%2Fb?q#f", "example.com", "", ""),
        "ipv6-host": _case(0, "/ws/room?x", "[2001:db8::1]:8443", "", ""),
        "proxied": _case(0x02, "/", "a", "", "", "203.0.113.9, 10.0.0.2", "https", ""),
        "proxied-ipv6": _case(
            0x04, "/", "a", "", "", "[2001:db8::7]:4711, ::ffff:192.0.2.1", "wss, http"
        ),
        "untrusted-peer": _case(0x10, "/", "a", "", "", "1.2.3.4", "https"),
        "unix-socket": _case(0x26, "/", "a", "", "", "1.2.3.4"),
        "bad-host": _case(0, "/", "exa mple.com:99999", "", ""),
        "bad-target": _case(0, "*", "a", "", ""),
        "non-ascii": _case(0, "/caf\xe9/\xff?\xe9=1", "a", "", ""),
        "many-fields": _case(0, "/?" + "a&" * 1000, "a", "", ""),
        "charset": _case(0, "/", "a", "", "text/plain; charset=idna", "", "", "\xff."),
        "deep-json": _case(0, "/", "a", "", "", "", "", "[" * 5000),
    }


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
