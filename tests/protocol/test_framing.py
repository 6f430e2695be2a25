"""Tests for the strict request framing rules (RFC 9112), one function at a time.

The raw-byte tests through the HTTP phase, with the connection's answer, are
in test_http.py (``TestSmuggling``).
"""

from __future__ import annotations

import itertools

import h11
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wsserver.protocol.exceptions import HandshakeError
from wsserver.protocol.framing import ChunkedBodyChecker, check_head, check_target, is_host

from ._mutations import mutate

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


def bytewise(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


def checker_end(body: bytes, pieces: list[bytes] | None = None) -> int | None:
    """Where the checker says the body ends, or ``None`` if it has not ended.

    Fed in ``pieces``, the end is only known to be in the piece that ended
    the body: the position returned is that piece's end.

    Raises:
        HandshakeError: the checker refused the body.
    """
    checker = ChunkedBodyChecker(LIMIT, 1 << 16)
    fed = 0
    for piece in bytewise(body) if pieces is None else pieces:
        checker.feed(piece)
        fed += len(piece)
        if checker.done:
            return fed
    return None


class TestChunkedBodyChecker:
    def test_body_ends_at_the_empty_line(self) -> None:
        body = b"5;a=b\r\nhello\r\n1\r\n!\r\n0\r\nT: y\r\n\r\n"
        assert checker_end(body + b"GET / HTTP/1.1\r\n") == len(body)

    def test_one_feed_ignores_what_follows(self) -> None:
        checker = ChunkedBodyChecker(LIMIT, 100)
        checker.feed(b"0\r\n\r\n\x00 not HTTP at all\n")
        assert checker.done
        checker.feed(b"\n\n")
        assert checker.done

    def test_not_done_before_the_end(self) -> None:
        checker = ChunkedBodyChecker(LIMIT, 100)
        checker.feed(b"0\r\n\r")
        assert not checker.done

    def test_declared_size_over_the_limit_is_413_at_once(self) -> None:
        checker = ChunkedBodyChecker(10, 100)
        checker.feed(b"5\r\nhello\r\n5\r\nworld\r\n")  # exactly the limit
        with pytest.raises(HandshakeError) as info:
            checker.feed(b"1\r\n")
        assert (info.value.status, info.value.reason) == (413, "request body too large")

    def test_line_over_max_line_is_431(self) -> None:
        checker = ChunkedBodyChecker(LIMIT, 10)
        checker.feed(b"1;" + b"e" * 8)  # 10 bytes, unfinished
        with pytest.raises(HandshakeError) as info:
            checker.feed(b"e")
        assert info.value.status == 431

    def test_a_line_of_max_line_bytes_with_its_crlf_is_fine(self) -> None:
        checker = ChunkedBodyChecker(LIMIT, 10)
        checker.feed(b"1;" + b"e" * 6 + b"\r\n")
        checker.feed(b"x\r\n0\r\n\r\n")
        assert checker.done

    @pytest.mark.parametrize(
        ("body", "reason"),
        [
            (b"5\nhello", "bare LF in the chunked body: lines end with CRLF"),
            (b"\n", "bare LF in the chunked body: lines end with CRLF"),
            (b"5\r\nhello\r\n0\r\n\n", "bare LF in the chunked body: lines end with CRLF"),
            (b"5 \r\n", "malformed chunk-size line"),
            (b"5 ;a\r\n", "malformed chunk-size line"),
            (b"5;a \r\n", "malformed chunk-size line"),
            (b"5;a=\r\n", "malformed chunk-size line"),
            (b'5;a="\x01"\r\n', "malformed chunk-size line"),
            (b"g\r\n", "malformed chunk-size line"),
            (b"5\r\nhello\rX", "chunk data not followed by CRLF"),
            (b"5\r\nhelloX", "chunk data not followed by CRLF"),
            (b"0\r\nT: y\r\n\tz\r\n", "obsolete line folding in the trailer section"),
            (b"0\r\nT y\r\n", "malformed trailer field"),
            (b"0\r\n: y\r\n", "malformed trailer field"),
            (b"0\r\nT: \x7f\r\n", "malformed trailer field"),
            (
                b"0\r\ncontent-LENGTH: 1\r\n",
                "Content-Length or Transfer-Encoding in the trailer section",
            ),
        ],
    )
    def test_refusals(self, body: bytes, reason: str) -> None:
        with pytest.raises(HandshakeError) as info:
            checker_end(body)
        assert (info.value.status, info.value.reason) == (400, reason)
        # The same in one piece.
        with pytest.raises(HandshakeError) as info:
            checker_end(body, [body])
        assert info.value.reason == reason

    @pytest.mark.parametrize(
        "line",
        [
            b"1;" + b";".join([b"aaaa"] * 6000) + b"@",
            b"1;a" + b" " * 30000 + b"@",
            b'1;a="' + b'\\"' * 15000 + b"\x00",
            b"1" + b'; a\t=\t"x"' * 4000 + b";",
        ],
    )
    def test_long_malformed_extensions_are_refused(self, line: bytes) -> None:
        # Lines built to make a backtracking expression take quadratic or
        # exponential time; pytest-timeout would catch one that does.
        with pytest.raises(HandshakeError):
            checker_end(line + b"\r\n", [line + b"\r\n"])

    def test_long_malformed_trailer_is_refused(self) -> None:
        line = b"T:" + b" " * 60000 + b"\x01"
        with pytest.raises(HandshakeError):
            checker_end(b"0\r\n" + line + b"\r\n", [b"0\r\n" + line + b"\r\n"])


# -- the checker accepts nothing h11 refuses ---------------------------------

_CHUNKED_HEAD = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"


def h11_end(body: bytes) -> int | None:
    """Where h11 says the body ends, or ``None`` if it refuses it or wants more."""
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=1 << 16)
    conn.receive_data(_CHUNKED_HEAD)
    assert isinstance(conn.next_event(), h11.Request)
    conn.receive_data(body)
    while True:
        try:
            event = conn.next_event()
        except h11.RemoteProtocolError:
            return None
        if isinstance(event, h11.EndOfMessage):
            return len(body) - len(conn.trailing_data[0])
        if not isinstance(event, h11.Data):
            return None


@st.composite
def chunked_bodies(draw: st.DrawFn) -> bytes:
    """A valid chunked body (extensions, trailers), a few bytes mutated."""
    token = st.text("abcXYZ09!#$%&'*+-.^_`|~", min_size=1, max_size=4).map(str.encode)
    value = st.one_of(
        token,
        st.text('ab \t"\\\x7f\u00e9', max_size=4).map(
            lambda text: (
                b'"' + text.replace("\\", "\\\\").replace('"', '\\"').encode("latin-1") + b'"'
            )
        ),
    )
    extension = st.tuples(
        st.sampled_from([b"", b" ", b"\t "]),
        token,
        st.one_of(st.just(b""), st.tuples(st.sampled_from([b"=", b" = "]), value).map(b"".join)),
    ).map(lambda parts: parts[0] + b";" + parts[1] + parts[2])
    body = b""
    for data in draw(st.lists(st.binary(min_size=1, max_size=12), max_size=3)):
        size = draw(st.sampled_from(["%x", "%X", "%03x"])) % len(data)
        extensions = b"".join(draw(st.lists(extension, max_size=2))).lstrip(b" \t")
        body += size.encode() + extensions + b"\r\n" + data + b"\r\n"
    body += b"0" * draw(st.integers(1, 3)) + b"\r\n"
    trailers = draw(st.lists(st.sampled_from([b"T: y", b"U:", b"V: a b\t", b"W:\t x"]), max_size=2))
    body += b"".join(trailer + b"\r\n" for trailer in trailers) + b"\r\n"
    alphabet = b'\r\n ;="\\\t0aF:\x00\x7f\x80'
    return mutate(draw, body + b"GET / HTTP/1.1\r\n", alphabet, edits=(0, 3), run=3)


@settings(max_examples=500, deadline=None)
@given(chunked_bodies(), st.lists(st.integers(min_value=0), max_size=8))
def test_h11_accepts_what_the_checker_accepts(body: bytes, points: list[int]) -> None:
    # The HTTP phase relies on it: the checker sees each piece first, and
    # if it accepted something h11 refuses, the split could decide which of
    # the two answers.
    cuts = sorted({point % (len(body) + 1) for point in points} | {0, len(body)})
    pieces = [body[a:b] for a, b in itertools.pairwise(cuts)]
    try:
        end = checker_end(body)
    except HandshakeError as exc:
        # The split does not matter.
        with pytest.raises(HandshakeError) as info:
            checker_end(body, pieces)
        assert info.value.reason == exc.reason
        return
    assert (checker_end(body, pieces) is None) == (end is None)
    if end is not None:
        assert h11_end(body) == end
