"""Tests for wsserver.server.responses."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from wsserver.server.datastructures import URL, MutableHeaders
from wsserver.server.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)


def test_plain_response_defaults() -> None:
    r = Response()
    assert r.status_code == 200
    assert r.status_code == 200
    assert r.body == b""
    assert isinstance(r.headers, MutableHeaders)
    assert r.header_pairs() == []


def test_str_body_is_utf8_and_text_gets_charset() -> None:
    r = Response("héllo", media_type="text/plain")
    assert r.body == "héllo".encode()
    assert r.headers["content-type"] == "text/plain; charset=utf-8"


def test_non_text_media_type_has_no_charset() -> None:
    r = Response(b"\x89PNG", media_type="image/png")
    assert r.headers["content-type"] == "image/png"


def test_explicit_charset_is_kept() -> None:
    r = Response(b"x", media_type="text/csv; charset=ISO-8859-1")
    assert r.headers["content-type"] == "text/csv; charset=ISO-8859-1"


def test_content_type_header_wins_over_media_type() -> None:
    r = PlainTextResponse("x", headers={"Content-Type": "text/x-custom"})
    assert r.headers.getlist("content-type") == ["text/x-custom"]


def test_subclass_media_types() -> None:
    assert PlainTextResponse("x").headers["content-type"] == "text/plain; charset=utf-8"
    assert HTMLResponse("<p>").headers["content-type"] == "text/html; charset=utf-8"
    assert HTMLResponse("<p>").body == b"<p>"
    assert (
        PlainTextResponse("x", media_type="text/markdown").headers["content-type"]
        == "text/markdown; charset=utf-8"
    )


def test_json_response_compact_utf8() -> None:
    r = JSONResponse({"a": [1, 2], "name": "é€"}, status_code=201)
    assert r.status_code == 201
    assert r.body == '{"a":[1,2],"name":"é€"}'.encode()
    assert r.headers["content-type"] == "application/json"
    assert json.loads(r.body) == {"a": [1, 2], "name": "é€"}
    assert JSONResponse(None).body == b"null"


def test_json_response_refuses_nan_and_unserialisable() -> None:
    with pytest.raises(ValueError):
        JSONResponse(float("nan"))
    with pytest.raises(TypeError):
        JSONResponse({"s": {1, 2}})


def test_redirect_response() -> None:
    r = RedirectResponse("/next?a=1")
    assert r.status_code == 307
    assert r.body == b""
    assert r.headers["location"] == "/next?a=1"
    assert "content-type" not in r.headers
    assert RedirectResponse("/x", status_code=301).status_code == 301
    url = URL.from_target("/a", "https", "h")
    assert RedirectResponse(url).headers["location"] == "https://h/a"


def test_redirect_encodes_unsafe_characters_and_blocks_injection() -> None:
    r = RedirectResponse("/caf é?q=%20")
    assert r.headers["location"] == "/caf%20%C3%A9?q=%20"
    evil = RedirectResponse("/x\r\nSet-Cookie: a=b")
    assert "\r" not in evil.headers["location"]
    assert "\n" not in evil.headers["location"]
    assert evil.headers.getlist("set-cookie") == []
    with pytest.raises(ValueError):
        RedirectResponse("/x", status_code=200)


def test_headers_argument_forms() -> None:
    pairs = Response(headers=[("X-A", "1"), ("x-a", "2")])
    assert pairs.header_pairs() == [("x-a", "1"), ("x-a", "2")]
    mapping = Response(headers={"X-B": "3"})
    assert mapping.header_pairs() == [("x-b", "3")]


def test_header_pairs_leave_framing_to_the_connection() -> None:
    r = PlainTextResponse(
        "abc", headers=[("content-length", "999"), ("transfer-encoding", "chunked"), ("x", "1")]
    )
    names = [name for name, _ in r.header_pairs()]
    assert "content-length" not in names
    assert "transfer-encoding" not in names
    assert names == ["x", "content-type"]
    r.headers.append("set-cookie", "a=1")
    assert ("set-cookie", "a=1") in r.header_pairs()


def test_invalid_header_in_response_is_refused() -> None:
    with pytest.raises(ValueError):
        Response(headers={"x": "a\r\nb"})


@pytest.mark.parametrize("status", [99, 600, 0, -1, True])
def test_invalid_status(status: int) -> None:
    with pytest.raises(ValueError):
        Response(status_code=status)


@pytest.mark.parametrize("status", [101, 204, 304])
def test_bodiless_statuses(status: int) -> None:
    with pytest.raises(ValueError):
        Response(b"x", status_code=status)
    r = PlainTextResponse("", status_code=status)
    assert "content-type" not in r.headers
    assert r.body == b""


def test_repr() -> None:
    assert repr(PlainTextResponse("abc", status_code=404)) == (
        "PlainTextResponse(status_code=404, body=<3 bytes>)"
    )


def test_streaming_response_takes_an_async_iterable() -> None:
    async def pieces() -> AsyncIterator[str]:
        yield "a"

    content = pieces()
    response = StreamingResponse(content, status_code=201, media_type="text/event-stream")
    assert response.content is content
    assert response.body == b""
    assert response.header_pairs() == [("content-type", "text/event-stream; charset=utf-8")]
    assert repr(response) == "StreamingResponse(status_code=201)"
    with pytest.raises(TypeError, match="must be an async iterable"):
        StreamingResponse([b"a list"])  # type: ignore[arg-type]
