"""Tests for WebSocket URIs (RFC 6455 section 3)."""

from __future__ import annotations

import pytest

from wsserver.client import InvalidURI, WebSocketURI, parse_uri


@pytest.mark.parametrize(
    ("uri", "parsed", "host_header"),
    [
        (
            "ws://example.com",
            WebSocketURI(secure=False, host="example.com", port=80, target="/"),
            "example.com",
        ),
        (
            "wss://example.com/chat?x=1",
            WebSocketURI(secure=True, host="example.com", port=443, target="/chat?x=1"),
            "example.com",
        ),
        (
            "ws://example.com:8080/a",
            WebSocketURI(secure=False, host="example.com", port=8080, target="/a"),
            "example.com:8080",
        ),
        (
            "wss://example.com:80/",
            WebSocketURI(secure=True, host="example.com", port=80, target="/"),
            "example.com:80",
        ),
        (
            "WS://[::1]:9000/",
            WebSocketURI(secure=False, host="::1", port=9000, target="/"),
            "[::1]:9000",
        ),
    ],
)
def test_valid(uri: str, parsed: WebSocketURI, host_header: str) -> None:
    assert parse_uri(uri) == parsed
    assert parsed.host_header == host_header


@pytest.mark.parametrize(
    "uri",
    [
        "http://example.com/",
        "example.com",
        "ws://",
        "ws://example.com/#frag",
        "ws://example.com/#",
        "ws://user:pw@example.com/",
        "ws://example.com:99999/",
        "ws://example.com:x/",
    ],
)
def test_invalid(uri: str) -> None:
    with pytest.raises(InvalidURI):
        parse_uri(uri)


def test_str_round_trip() -> None:
    for uri in ("ws://example.com/", "wss://example.com:8443/a?b=c", "ws://[::1]:9000/"):
        assert str(parse_uri(uri)) == uri
