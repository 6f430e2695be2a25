"""Tests for wsserver.server.datastructures."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wsserver.server.datastructures import (
    MAX_QUERY_PAIRS,
    URL,
    Address,
    Headers,
    MutableHeaders,
    QueryParams,
    State,
    parse_cookies,
)

# --- Headers ---------------------------------------------------------------


def make_headers() -> Headers:
    return Headers(
        [
            ("host", "example.com"),
            ("Accept", "text/html"),
            ("accept", "*/*"),
            ("x-empty", ""),
        ]
    )


def test_headers_lookup_is_case_insensitive_and_returns_first_value() -> None:
    h = make_headers()
    assert h["ACCEPT"] == "text/html"
    assert h.get("Accept") == "text/html"
    assert h.get("missing") is None
    assert h.get("missing", "d") == "d"
    assert h["x-empty"] == ""
    assert "HOST" in h
    assert "missing" not in h
    key: object = 1
    assert key not in h  # non-str keys are simply absent


def test_headers_missing_key_raises_key_error() -> None:
    with pytest.raises(KeyError):
        make_headers()["nope"]


def test_headers_getlist_and_multi_items_keep_duplicates() -> None:
    h = make_headers()
    assert h.getlist("accept") == ["text/html", "*/*"]
    assert h.getlist("missing") == []
    assert h.multi_items() == [
        ("host", "example.com"),
        ("accept", "text/html"),
        ("accept", "*/*"),
        ("x-empty", ""),
    ]
    # getlist returns a copy.
    h.getlist("accept").append("x")
    assert h.getlist("accept") == ["text/html", "*/*"]


def test_headers_mapping_view_has_each_name_once() -> None:
    h = make_headers()
    assert list(h) == ["host", "accept", "x-empty"]
    assert len(h) == 3
    assert list(h.items()) == [("host", "example.com"), ("accept", "text/html"), ("x-empty", "")]
    assert dict(h) == {"host": "example.com", "accept": "text/html", "x-empty": ""}


def test_headers_raw_is_protocol_shaped_tuple() -> None:
    h = Headers((("host", "a"), ("accept", "b")))
    assert h.raw == (("host", "a"), ("accept", "b"))
    assert isinstance(h.raw, tuple)


def test_headers_from_mapping_and_from_headers() -> None:
    assert Headers({"Host": "a"}).raw == (("host", "a"),)
    original = make_headers()
    assert Headers(original).raw == original.raw  # duplicates survive
    assert Headers().raw == ()
    assert len(Headers(None)) == 0


def test_headers_equality() -> None:
    a = Headers([("a", "1"), ("b", "2"), ("a", "3")])
    # Order across different names does not matter...
    assert a == Headers([("b", "2"), ("A", "1"), ("a", "3")])
    # ...but order of the values of one name does.
    assert a != Headers([("a", "3"), ("b", "2"), ("a", "1")])
    assert a != Headers([("a", "1"), ("b", "2")])
    assert a == MutableHeaders(a)
    assert MutableHeaders(a) == a
    # Different kinds of multi-dict never compare equal.
    assert Headers([("a", "1")]) != QueryParams("a=1")
    assert Headers([("a", "1")]) != {"a": "1"}


def test_headers_repr_redacts_credentials() -> None:
    h = Headers([("host", "x"), ("cookie", "session=secret"), ("authorization", "Bearer t")])
    text = repr(h)
    assert text.startswith("Headers([")
    assert "('host', 'x')" in text
    assert "secret" not in text
    assert "Bearer" not in text
    assert "<redacted>" in text


def test_headers_are_immutable() -> None:
    h = make_headers()
    with pytest.raises(TypeError):
        h["host"] = "x"  # type: ignore[index]
    assert not hasattr(h, "append")


# --- MutableHeaders --------------------------------------------------------


def test_mutable_headers_set_replaces_all_values_in_place() -> None:
    h = MutableHeaders([("a", "1"), ("b", "2"), ("A", "3")])
    h["a"] = "x"
    assert h.multi_items() == [("a", "x"), ("b", "2")]
    h["C"] = "new"
    assert h.multi_items() == [("a", "x"), ("b", "2"), ("c", "new")]
    h.set("b", "y")
    assert h["B"] == "y"


def test_mutable_headers_append_and_delete() -> None:
    h = MutableHeaders()
    h.append("Set-Cookie", "a=1")
    h.append("set-cookie", "b=2")
    assert h.getlist("set-cookie") == ["a=1", "b=2"]
    assert len(h) == 1
    del h["SET-COOKIE"]
    assert "set-cookie" not in h
    assert h.multi_items() == []
    with pytest.raises(KeyError):
        del h["set-cookie"]


def test_mutable_headers_mutable_mapping_helpers() -> None:
    h = MutableHeaders({"a": "1"})
    assert h.setdefault("a", "2") == "1"
    assert h.setdefault("b", "2") == "2"
    h.update({"c": "3"})
    assert h.pop("c") == "3"
    assert dict(h) == {"a": "1", "b": "2"}


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("x-a", "evil\r\nset-cookie: a=b"),
        ("x-a", "line\nbreak"),
        ("x-a", "nul\x00"),
        ("x-a", "del\x7f"),
        ("x-a", "snow\u2603man"),  # outside ISO-8859-1
        ("bad name", "v"),
        ("bad:name", "v"),
        ("", "v"),
        ("x\r\ny", "v"),
    ],
)
def test_mutable_headers_refuse_injection(name: str, value: str) -> None:
    with pytest.raises(ValueError):
        MutableHeaders([(name, value)])
    h = MutableHeaders()
    with pytest.raises(ValueError):
        h[name] = value
    with pytest.raises(ValueError):
        h.append(name, value)
    assert h.multi_items() == []


def test_mutable_headers_accept_tab_and_latin1() -> None:
    h = MutableHeaders([("x-a", "a\tb caf\xe9")])
    assert h["x-a"] == "a\tb caf\xe9"


def test_mutable_headers_refuse_non_str() -> None:
    h = MutableHeaders()
    with pytest.raises(TypeError):
        h["content-length"] = 5  # type: ignore[assignment]


# --- URL -------------------------------------------------------------------


def test_url_from_origin_form() -> None:
    url = URL.from_target("/a%20b/%C3%A9?x=1&y=2", "http", "Example.COM")
    assert url.scheme == "http"
    assert url.host == "example.com"
    assert url.port is None
    assert url.raw_path == "/a%20b/%C3%A9"
    assert url.path == "/a b/é"
    assert url.query == "x=1&y=2"
    assert str(url) == "http://example.com/a%20b/%C3%A9?x=1&y=2"
    assert not url.is_secure


@pytest.mark.parametrize(
    ("scheme", "host", "port"),
    [
        ("http", "h:80", None),
        ("ws", "h:80", None),
        ("https", "h:443", None),
        ("wss", "h:443", None),
        ("http", "h:8080", 8080),
        ("https", "h:80", 80),
        ("http", "h:", None),  # RFC 3986 allows an empty port
    ],
)
def test_url_default_port_is_none(scheme: str, host: str, port: int | None) -> None:
    url = URL.from_target("/", scheme, host)
    assert url.port == port
    assert url.netloc == ("h" if port is None else f"h:{port}")


def test_url_explicit_default_port() -> None:
    url = URL.from_target("/", "http", "h:8080", 8080)
    assert url.port is None
    assert URL.from_target("/", "http", "h:80", 8080).port == 80


def test_url_ipv6_host() -> None:
    url = URL.from_target("/p", "https", "[::1]:8443")
    assert url.host == "::1"
    assert url.port == 8443
    assert url.netloc == "[::1]:8443"
    assert str(url) == "https://[::1]:8443/p"
    assert url.is_secure


def test_url_absolute_form_overrides_host_header() -> None:
    url = URL.from_target("http://Other.example:81/x?q", "http", "ignored.example")
    assert (url.host, url.port, url.raw_path, url.query) == ("other.example", 81, "/x", "q")
    assert URL.from_target("http://h", "http", None).raw_path == "/"
    assert URL.from_target("http://h?a=1", "http", None).query == "a=1"


def test_url_drops_fragment() -> None:
    url = URL.from_target("/p?q=1#frag", "http", "h")
    assert url.query == "q=1"
    assert "#" not in str(url)


def test_url_percent_encodes_raw_octets() -> None:
    # The core decodes octets as ISO-8859-1: raw UTF-8 "é" arrives as "Ã©".
    url = URL.from_target("/caf\xc3\xa9", "http", "h")
    assert url.raw_path == "/caf%C3%A9"
    assert url.path == "/café"


def test_url_server_host_fallback() -> None:
    with pytest.raises(ValueError, match="Host"):
        URL.from_target("/", "http", None)
    with pytest.raises(ValueError, match="Host"):
        URL.from_target("/", "http", "")
    url = URL.from_target("/", "http", None, server_host="127.0.0.1:8000")
    assert url.netloc == "127.0.0.1:8000"


@pytest.mark.parametrize(
    ("target", "host"),
    [
        ("*", "h"),
        ("example.com:443", "h"),
        ("", "h"),
        ("relative/path", "h"),
        ("/a b", "h"),
        ("/a\tb", "h"),
        ("/a\x00b", "h"),
        ("/a\x7fb", "h"),
        ("/a\r\nb", "h"),
        ("/%FF", "h"),  # not UTF-8 once decoded
        ("/%C3", "h"),
        ("ftp://h/x", "h"),
        ("http://user@h/x", "h"),
        ("http://[::1/x", "h"),
        ("http:/x", "h"),
        ("/", "bad host"),
        ("/", "h:port"),
        ("/", "h:99999"),
        ("/", "h:0"),
        ("/", "h:123456"),
        ("/", "[::1"),
        ("/", "[nonsense]"),
        ("/", "[::1]x"),
        ("/", "[fe80::1%25eth0]"),
        ("/", "a@b"),
        ("/", "a/b"),
    ],
)
def test_url_from_target_rejects_garbage(target: str, host: str) -> None:
    with pytest.raises(ValueError):
        URL.from_target(target, "http", host)


def test_url_from_target_rejects_unknown_scheme() -> None:
    with pytest.raises(ValueError):
        URL.from_target("/", "gopher", "h")


@given(target=st.text(max_size=60), host=st.one_of(st.none(), st.text(max_size=30)))
def test_url_from_target_raises_only_value_error(target: str, host: str | None) -> None:
    try:
        url = URL.from_target(target, "http", host)
    except ValueError:
        return
    # Whatever was accepted prints back as a URL that parses to itself.
    assert url.raw_path.startswith("/")
    again = URL.from_target(
        url.raw_path + (f"?{url.query}" if url.query else ""), "http", url.netloc
    )
    assert again == url


def test_url_replace() -> None:
    url = URL.from_target("/a?x=1", "http", "h:8080")
    assert str(url.replace(scheme="https", port=None)) == "https://h/a?x=1"
    changed = url.replace(path="/b c/é")
    assert changed.raw_path == "/b%20c/%C3%A9"
    assert changed.path == "/b c/é"
    assert str(url.replace(raw_path="/r%20", query="")) == "http://h:8080/r%20"
    assert url.replace(host="other").host == "other"
    with pytest.raises(ValueError):
        url.replace(path="/a", raw_path="/b")
    with pytest.raises(ValueError):
        url.replace(port=70000)
    with pytest.raises(ValueError):
        url.replace(scheme="ftp")
    # The original is untouched (frozen).
    assert str(url) == "http://h:8080/a?x=1"


def test_url_constructor_validates() -> None:
    assert URL("ws", "h", None, "/chat").path == "/chat"
    for bad in ("chat", "/a b", "/a?b", "/é"):
        with pytest.raises(ValueError):
            URL("ws", "h", None, bad)
    with pytest.raises(ValueError):
        URL("ws", "h", None, "/", "a#b")


# --- QueryParams -----------------------------------------------------------


def test_query_params_parse() -> None:
    q = QueryParams("a=1&b=&c&a=2&d=x+y%20z&e=%E2%82%AC")
    assert q["a"] == "1"
    assert q.getlist("a") == ["1", "2"]
    assert q["b"] == ""
    assert q["c"] == ""
    assert q["d"] == "x y z"
    assert q["e"] == "€"
    assert "A" not in q  # case-sensitive, unlike headers
    assert list(q) == ["a", "b", "c", "d", "e"]
    assert q.multi_items()[:4] == [("a", "1"), ("b", ""), ("c", ""), ("a", "2")]


def test_query_params_lenient_on_bad_encoding() -> None:
    q = QueryParams("a=%FF&b=%zz&&=v")
    assert q["a"] == "\ufffd"
    assert q["b"] == "%zz"
    assert q[""] == "v"


def test_query_params_limit() -> None:
    ok = QueryParams("&".join(f"k{i}=v" for i in range(MAX_QUERY_PAIRS)))
    assert len(ok) == MAX_QUERY_PAIRS
    with pytest.raises(ValueError, match="1000"):
        QueryParams("&".join(f"k{i}=v" for i in range(MAX_QUERY_PAIRS + 1)))


def test_query_params_other_sources_and_str() -> None:
    assert QueryParams().multi_items() == []
    assert QueryParams("").multi_items() == []
    q = QueryParams([("a", "1 2"), ("a", "é")])
    assert str(q) == "a=1+2&a=%C3%A9"
    assert QueryParams(str(q)) == q
    assert QueryParams({"x": "y"})["x"] == "y"
    assert repr(QueryParams("a=1")) == "QueryParams('a=1')"


# --- cookies ---------------------------------------------------------------


def test_parse_cookies_browser_forms() -> None:
    cookies = parse_cookies(['session=abc; theme="dark"; ;  spaced =  v ; novalue; empty='])
    assert cookies == {
        "session": "abc",
        "theme": "dark",
        "spaced": "v",
        "": "novalue",
        "empty": "",
    }


def test_parse_cookies_first_wins_across_headers() -> None:
    assert parse_cookies(["a=1; a=2", "a=3; b=4"]) == {"a": "1", "b": "4"}
    assert parse_cookies([]) == {}
    assert parse_cookies([""]) == {}


def test_parse_cookies_keeps_equals_and_decodes_utf8() -> None:
    cookies = parse_cookies(["token=a=b==; name=caf\xc3\xa9; raw=\xff"])
    assert cookies["token"] == "a=b=="
    assert cookies["name"] == "café"
    assert cookies["raw"] == "\xff"  # not UTF-8: left as the octet


@given(st.lists(st.text(max_size=40), max_size=4))
def test_parse_cookies_never_raises(values: list[str]) -> None:
    result = parse_cookies(values)
    assert isinstance(result, dict)
    # Every value comes from the input: no value longer than the longest header.
    assert all(len(v) <= max(map(len, values)) for v in result.values())


# --- Address and State -----------------------------------------------------


def test_address() -> None:
    addr = Address("127.0.0.1", 5000)
    assert addr.host == "127.0.0.1"
    assert addr.port == 5000
    host, port = addr
    assert (host, port) == ("127.0.0.1", 5000)


def test_state_attribute_bag() -> None:
    state = State({"a": 1})
    assert state.a == 1
    state.user = "bob"
    assert state.user == "bob"
    assert "user" in state
    assert getattr(state, "missing", None) is None
    with pytest.raises(AttributeError, match="missing"):
        _ = state.missing
    del state.user
    assert "user" not in state
    with pytest.raises(AttributeError):
        del state.user
    assert repr(state) == "State({'a': 1})"
