"""Tests for the strict request framing rules (RFC 9112), one function at a time.

The raw-byte tests through the HTTP phase, with the connection's answer, are
in test_http.py (``TestSmuggling``).
"""

from __future__ import annotations

import pytest

from wsserver.protocol.exceptions import HandshakeError
from wsserver.protocol.framing import check_head, check_target, is_host

LIMIT = 1 << 20


def head(*fields: bytes, request_line: bytes = b"POST / HTTP/1.1") -> bytes:
    return b"".join(line + b"\r\n" for line in (request_line, b"Host: x", *fields)) + b"\r\n"


def refusal(call, *args) -> tuple[int, str]:
    with pytest.raises(HandshakeError) as info:
        call(*args)
    return info.value.status, info.value.reason


class TestCheckHead:
    def test_no_framing_field_is_no_body(self) -> None:
        assert check_head(head(b"Upgrade: websocket", b"X: a\tb \x80\xff"), LIMIT) == 0

    def test_chunked(self) -> None:
        assert check_head(head(b"Transfer-Encoding: chunked"), LIMIT) is None
        assert check_head(head(b"transfer-encoding:CHUNKED \t"), LIMIT) is None

    @pytest.mark.parametrize(("value", "length"), [(b"0", 0), (b" 5 ", 5), (b"007", 7)])
    def test_content_length(self, value: bytes, length: int) -> None:
        assert check_head(head(b"Content-Length:" + value), LIMIT) == length

    def test_content_length_at_the_limit(self) -> None:
        assert check_head(head(b"Content-Length: 16"), 16) == 16
        assert refusal(check_head, head(b"Content-Length: 17"), 16) == (
            413,
            "request body too large",
        )
        assert refusal(check_head, head(b"Content-Length: 00000000000000000000017"), 16)[0] == 413

    def test_content_length_of_5000_digits(self) -> None:
        # int() would raise ValueError beyond 4,300 digits.
        assert refusal(check_head, head(b"Content-Length: " + b"1" * 5000), LIMIT)[0] == 413

    @pytest.mark.parametrize(
        ("fields", "status", "reason"),
        [
            (
                [b"Transfer-Encoding: chunked", b"Content-Length: 0"],
                400,
                "both Content-Length and Transfer-Encoding",
            ),
            ([b"Transfer-Encoding: gzip"], 400, "Transfer-Encoding does not end with chunked"),
            (
                [b"Transfer-Encoding: chunked, gzip"],
                400,
                "Transfer-Encoding does not end with chunked",
            ),
            (
                [b"Transfer-Encoding: chunked;q=1"],
                400,
                "Transfer-Encoding does not end with chunked",
            ),
            (
                [b"Transfer-Encoding: chunked", b"Transfer-Encoding: chunked"],
                400,
                "chunked applied more than once in Transfer-Encoding",
            ),
            ([b"Transfer-Encoding:"], 400, "empty element in Transfer-Encoding"),
            ([b"Transfer-Encoding: , chunked"], 400, "empty element in Transfer-Encoding"),
            (
                [b"Transfer-Encoding: gzip", b"Transfer-Encoding: chunked"],
                501,
                "transfer codings other than chunked are not supported",
            ),
            (
                [b"Transfer-Encoding: x-custom;a=1, chunked"],
                501,
                "transfer codings other than chunked are not supported",
            ),
            (
                [b"Content-Length: 1", b"Content-Length: 1"],
                400,
                "more than one Content-Length field",
            ),
            ([b"Content-Length: 1, 1"], 400, "Content-Length is a list"),
            ([b"Content-Length: +1"], 400, "Content-Length is not a decimal number"),
            ([b"Content-Length: \xd9\xa1"], 400, "Content-Length is not a decimal number"),
            (
                [b"Content-Length: 000000000000000000001"],
                400,
                "Content-Length has too many leading zeros",
            ),
            (
                [b"X: a", b" b"],
                400,
                "obsolete line folding (a field line starting with whitespace)",
            ),
            (
                [b"\tX: a"],
                400,
                "obsolete line folding (a field line starting with whitespace)",
            ),
            ([b"X: a\x7f"], 400, "control character 0x7f in the request head"),
            ([b"X: a\rb"], 400, "bare CR in the request head"),
            ([b"X: a\r"], 400, "bare CR in the request head"),
        ],
    )
    def test_refusals(self, fields: list[bytes], status: int, reason: str) -> None:
        assert refusal(check_head, head(*fields), LIMIT) == (status, reason)

    def test_whitespace_before_the_first_field(self) -> None:
        data = b"GET / HTTP/1.1\r\n Host: x\r\n\r\n"
        assert refusal(check_head, data, LIMIT) == (
            400,
            "whitespace between the request line and the first field",
        )

    @pytest.mark.parametrize("version", [b"HTTP/1.0", b"HTTP/0.9"])
    def test_chunked_before_http_1_1(self, version: bytes) -> None:
        data = head(b"Transfer-Encoding: chunked", request_line=b"POST / " + version)
        assert refusal(check_head, data, LIMIT) == (
            400,
            "Transfer-Encoding in a request older than HTTP/1.1",
        )

    def test_content_length_in_http_1_0(self) -> None:
        assert check_head(head(b"Content-Length: 3", request_line=b"POST / HTTP/1.0"), LIMIT) == 3

    def test_the_first_control_character_is_named(self) -> None:
        data = head(b"X: \x01", b"Y: \x00")
        assert refusal(check_head, data, LIMIT) == (
            400,
            "control character 0x01 in the request head",
        )

    def test_field_names_like_framing_fields_are_not_framing_fields(self) -> None:
        data = head(b"X-Content-Length: 5, 6", b"Transfer-Encoding-X: gzip")
        assert check_head(data, LIMIT) == 0


class TestIsHost:
    @pytest.mark.parametrize(
        "value",
        ["", "example.com", "EXAMPLE.com:8080", "127.0.0.1:1", "[::1]", "[::1]:80", "a%41b", "x:"],
    )
    def test_valid(self, value: str) -> None:
        assert is_host(value)

    @pytest.mark.parametrize(
        "value",
        ["a, b", "a,b", "u@a", "a/b", "a b", "a:8o", "a:80:80", "[::1", "a%4", "a\u00e9", "a?b"],
    )
    def test_invalid(self, value: str) -> None:
        assert not is_host(value)


class TestCheckTarget:
    @pytest.mark.parametrize(
        ("target", "host"),
        [
            (b"http://a/b?c", "a"),
            (b"https://A:443", "a:443"),
            (b"ws://a.example/chat", "A.example"),
            (b"http://a", None),
        ],
    )
    def test_absolute_form_matching_host(self, target: bytes, host: str | None) -> None:
        check_target(b"GET", target, host)

    def test_asterisk_form_for_options(self) -> None:
        check_target(b"OPTIONS", b"*", "a")

    @pytest.mark.parametrize(
        ("method", "target", "host", "reason"),
        [
            (b"GET", b"*", "a", "the asterisk-form target is only for OPTIONS"),
            (b"GET", b"a:80", "a", "invalid request-target"),
            (b"GET", b"a/b", "a", "invalid request-target"),
            (b"GET", b"http:/a", "a", "invalid request-target"),
            (b"GET", b"http://u@a/", "a", "userinfo in the request-target"),
            (b"GET", b"http:///x", "", "invalid authority in the request-target"),
            (b"GET", b"http://a,b/x", "a,b", "invalid authority in the request-target"),
            (b"GET", b"http://a/", "b", "the Host field differs from the request-target's host"),
            (b"GET", b"http://a/", "a:80", "the Host field differs from the request-target's host"),
        ],
    )
    def test_refusals(self, method: bytes, target: bytes, host: str, reason: str) -> None:
        assert refusal(check_target, method, target, host) == (400, reason)
