"""Tests for wsserver.server.requests."""

from __future__ import annotations

import pytest

from wsserver.protocol.events import HTTPRequest
from wsserver.server.datastructures import Address, Headers, State
from wsserver.server.requests import Request

HEADERS = (
    ("host", "example.com:8080"),
    ("cookie", "session=abc; theme=dark"),
    ("content-type", "application/json"),
)


def test_request_attributes() -> None:
    client = Address("10.0.0.1", 51000)
    r = Request(
        "POST",
        "/rooms/1?x=2&x=3",
        HEADERS,
        b'{"a": 1}',
        "https",
        client,
        {"room": "1"},
    )
    assert r.method == "POST"
    assert str(r.url) == "https://example.com:8080/rooms/1?x=2&x=3"
    assert r.url.path == "/rooms/1"
    assert isinstance(r.headers, Headers)
    assert r.headers["Host"] == "example.com:8080"
    assert r.query_params["x"] == "2"
    assert r.query_params.getlist("x") == ["2", "3"]
    assert r.path_params == {"room": "1"}
    assert r.cookies == {"session": "abc", "theme": "dark"}
    assert r.client == client
    assert r.body == b'{"a": 1}'
    assert r.json() == {"a": 1}
    assert isinstance(r.state, State)
    assert repr(r) == "Request('POST', 'https://example.com:8080/rooms/1?x=2&x=3')"


def test_request_defaults() -> None:
    r = Request("GET", "/", [("host", "h")])
    assert r.body == b""
    assert r.client is None
    assert r.path_params == {}
    assert r.cookies == {}
    assert r.url.scheme == "http"
    # path_params is a fresh dict the server may fill after routing.
    r.path_params["id"] = 3
    assert Request("GET", "/", [("host", "h")]).path_params == {}


def test_request_accepts_headers_instance() -> None:
    h = Headers([("host", "h")])
    assert Request("GET", "/", h).headers is h


def test_state_is_per_request() -> None:
    a = Request("GET", "/", [("host", "h")])
    b = Request("GET", "/", [("host", "h")])
    a.state.user = "alice"
    assert "user" not in b.state


def test_text_uses_declared_charset() -> None:
    r = Request(
        "POST", "/", [("host", "h"), ("content-type", 'text/plain; Charset="latin-1"')], b"caf\xe9"
    )
    assert r.text() == "café"
    utf8 = Request("POST", "/", [("host", "h")], "café".encode())
    assert utf8.text() == "café"
    with pytest.raises(UnicodeDecodeError):
        Request("POST", "/", [("host", "h")], b"\xff").text()


def test_json_errors_are_value_errors() -> None:
    with pytest.raises(ValueError):
        Request("POST", "/", [("host", "h")], b"{not json").json()
    deep = b"[" * 100_000 + b"]" * 100_000
    with pytest.raises(ValueError, match="deeply"):
        Request("POST", "/", [("host", "h")], deep).json()


@pytest.mark.parametrize(
    ("target", "headers"),
    [
        ("/", [("host", "a"), ("host", "b")]),  # RFC 9112: several Host fields
        ("/", []),  # no Host and no server_host
        ("/ x", [("host", "a")]),
        ("/%FF", [("host", "a")]),
        ("/?" + "&".join(["a=1"] * 1001), [("host", "a")]),
    ],
)
def test_malformed_requests_raise_value_error(target: str, headers: list[tuple[str, str]]) -> None:
    with pytest.raises(ValueError):
        Request("GET", target, headers)


def test_server_host_for_http10() -> None:
    r = Request("GET", "/x", [], server_host="localhost:8000")
    assert str(r.url) == "http://localhost:8000/x"


def test_cookies_parsed_lazily_and_cached() -> None:
    r = Request("GET", "/", [("host", "h"), ("cookie", "a=1"), ("cookie", "b=2")])
    first = r.cookies
    assert first == {"a": "1", "b": "2"}
    assert r.cookies is first


def test_from_protocol_event() -> None:
    event = HTTPRequest(
        method="GET",
        target="/a?b=1",
        headers=(("host", "example.com"), ("cookie", "c=d")),
        http_version="1.1",
        body=b"",
    )
    client = Address("::1", 1234)
    r = Request.from_event(event, scheme="https", client=client, path_params={"x": 1})
    assert str(r.url) == "https://example.com/a?b=1"
    assert r.headers.raw == event.headers
    assert r.cookies == {"c": "d"}
    assert r.client == client
    assert r.path_params == {"x": 1}
