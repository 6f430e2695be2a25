"""Tests for the HTTP phase: the opening handshake (RFC 6455 section 4.2) and plain HTTP/1.1."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator

import h11
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, RejectConnection, RejectData
from wsproto.events import Request as WsprotoRequest
from wsproto.extensions import PerMessageDeflate

from wsserver.protocol.events import (
    HTTPRequest,
    RequestBody,
    RequestRejected,
    WebSocketRequest,
)
from wsserver.protocol.exceptions import LocalProtocolError
from wsserver.protocol.headers import ExtensionOffer
from wsserver.protocol.http import HTTPPhase
from wsserver.protocol.settings import ProtocolSettings
from wsserver.testing import wire

from ._mutations import mutate

Event = WebSocketRequest | HTTPRequest | RequestRejected

KEY = "dGhlIHNhbXBsZSBub25jZQ=="
# RFC 6455 section 1.3 works this example through: the digest is
# 0xb3 0x7a 0x4f 0x2c 0xc0 0x62 0x4f 0x16 0x90 0xf6 0x46 0x06 0xcf 0x38 0x59
# 0x45 0xb2 0xbe 0xc4 0xea, "base64-encoded, to give the value
# "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="".
ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

#: The handshake of RFC 6455 section 1.2, byte for byte.
RFC_REQUEST = (
    b"GET /chat HTTP/1.1\r\n"
    b"Host: server.example.com\r\n"
    b"Upgrade: websocket\r\n"
    b"Connection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Origin: http://example.com\r\n"
    b"Sec-WebSocket-Protocol: chat, superchat\r\n"
    b"Sec-WebSocket-Version: 13\r\n"
    b"\r\n"
)

#: A valid handshake's fields (``wsserver.testing.wire``, written from section 4.1).
HANDSHAKE_FIELDS = tuple(wire.handshake_fields(host="server.example.com", key=KEY))

#: Small limits, so that the limit tests stay small.
SMALL = ProtocolSettings(
    max_request_line=64,
    max_header_line=64,
    max_headers=8,
    max_head_size=256,
    max_body_size=16,
)


def request(
    method: str = "GET",
    target: str = "/chat",
    version: str = "HTTP/1.1",
    fields: Iterable[tuple[str, str]] = (("Host", "example.com"),),
    body: bytes = b"",
    eol: str = "\r\n",
) -> bytes:
    return wire.http_request(method, target, fields, http_version=version, eol=eol, body=body)


def handshake(
    *, without: Iterable[str] = (), extra: Iterable[tuple[str, str]] = (), **kwargs
) -> bytes:
    dropped = set(without)
    fields = [field for field in HANDSHAKE_FIELDS if field[0] not in dropped]
    return request(fields=[*fields, *extra], **kwargs)


def receive(data: bytes, settings: ProtocolSettings | None = None) -> HTTPPhase:
    phase = HTTPPhase(settings or ProtocolSettings())
    phase.receive_data(data)
    return phase


def output(phase: HTTPPhase) -> bytes:
    return b"".join(phase.data_to_send())


def rejection(data: bytes, settings: ProtocolSettings | None = None) -> tuple[int, bytes]:
    """Feed ``data``; check that it is refused; return the status and the response."""
    phase = receive(data, settings)
    event = phase.next_event()
    assert isinstance(event, RequestRejected), event
    response = output(phase)
    assert closes(phase)
    assert not waiting(phase)
    assert phase.next_event() is None
    # The response is what the event says, closes the connection, and
    # explains itself in text/plain.
    head, _, body = response.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0].startswith(b"HTTP/1.1 %d " % event.status)
    assert b"Connection: close" in lines
    assert b"Content-Type: text/plain; charset=utf-8" in lines
    assert body == event.reason.encode() + b"\n"
    assert b"Content-Length: %d" % len(body) in lines
    return event.status, response


def status_of(data: bytes, settings: ProtocolSettings | None = None) -> int:
    return rejection(data, settings)[0]


# mypy keeps a property narrowed across method calls that change it; asking
# through a function keeps `assert not ...` followed by `assert ...` checkable.
def closes(phase: HTTPPhase) -> bool:
    return phase.must_close


def waiting(phase: HTTPPhase) -> bool:
    return phase.awaiting_answer


def response_headers(response: bytes) -> list[bytes]:
    return response.partition(b"\r\n\r\n")[0].split(b"\r\n")[1:]


def accepted(data: bytes, settings: ProtocolSettings | None = None) -> WebSocketRequest:
    phase = receive(data, settings)
    event = phase.next_event()
    assert isinstance(event, WebSocketRequest), event
    return event


def served(data: bytes, settings: ProtocolSettings | None = None) -> HTTPRequest:
    phase = receive(data, settings)
    event = phase.next_event()
    assert isinstance(event, HTTPRequest), event
    return event


# --------------------------------------------------------------------------
# Sec-WebSocket-Accept


# --------------------------------------------------------------------------
# The opening handshake, bytes in and out


class TestHandshake:
    """RFC 6455 section 4.2.1 (reading the request) and 4.2.2 (the answer)."""

    def test_rfc_request_gives_exact_event(self) -> None:
        phase = receive(RFC_REQUEST)
        assert phase.next_event() == WebSocketRequest(
            target="/chat",
            headers=(
                ("host", "server.example.com"),
                ("upgrade", "websocket"),
                ("connection", "Upgrade"),
                ("sec-websocket-key", KEY),
                ("origin", "http://example.com"),
                ("sec-websocket-protocol", "chat, superchat"),
                ("sec-websocket-version", "13"),
            ),
            subprotocols=("chat", "superchat"),
            extensions=(),
        )
        assert waiting(phase)
        assert not closes(phase)
        assert phase.next_event() is None
        assert output(phase) == b""

    def test_accept_gives_exact_response(self) -> None:
        phase = receive(RFC_REQUEST)
        phase.next_event()
        assert phase.accept("chat", None) == b""
        assert output(phase) == (
            b"HTTP/1.1 101 Switching Protocols\r\n"
            b"Upgrade: websocket\r\n"
            b"Connection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
            b"Sec-WebSocket-Protocol: chat\r\n"
            b"\r\n"
        )
        assert not waiting(phase)
        assert not closes(phase)
        assert phase.next_event() is None

    def test_accept_minimal(self) -> None:
        phase = receive(handshake())
        phase.next_event()
        phase.accept(None, None)
        assert output(phase) == (
            b"HTTP/1.1 101 Switching Protocols\r\n"
            b"Upgrade: websocket\r\n"
            b"Connection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
            b"\r\n"
        )

    def test_accept_with_extensions_and_headers(self) -> None:
        phase = receive(handshake(extra=[("Sec-WebSocket-Extensions", "permessage-deflate; a, b")]))
        event = phase.next_event()
        assert isinstance(event, WebSocketRequest)
        assert event.extensions == (
            ExtensionOffer(name="permessage-deflate", params=(("a", None),)),
            ExtensionOffer(name="b"),
        )
        phase.accept(
            None,
            "permessage-deflate; server_no_context_takeover",
            (("Set-Cookie", "id=1"), ("Server", "wsserver")),
        )
        assert output(phase) == (
            b"HTTP/1.1 101 Switching Protocols\r\n"
            b"Upgrade: websocket\r\n"
            b"Connection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
            b"Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\r\n"
            b"Set-Cookie: id=1\r\n"
            b"Server: wsserver\r\n"
            b"\r\n"
        )

    def test_accept_returns_bytes_after_the_head(self) -> None:
        frame = b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58"
        phase = receive(RFC_REQUEST + frame[:4])
        phase.next_event()
        phase.receive_data(frame[4:])  # arrives while the caller decides
        assert phase.accept(None, None) == frame
        with pytest.raises(LocalProtocolError, match="after accept"):
            phase.receive_data(b"more")

    def test_reject_gives_exact_response(self) -> None:
        phase = receive(RFC_REQUEST + b"\x81\x00")
        phase.next_event()
        phase.reject(403, (("Content-Type", "text/plain"),), b"Forbidden\n")
        assert output(phase) == (
            b"HTTP/1.1 403 Forbidden\r\n"
            b"Content-Type: text/plain\r\n"
            b"Content-Length: 10\r\n"
            b"Connection: close\r\n"
            b"\r\n"
            b"Forbidden\n"
        )
        assert closes(phase)
        assert not waiting(phase)
        phase.receive_data(b"ignored")
        assert phase.next_event() is None
        assert output(phase) == b""

    def test_reject_merges_callers_connection_header(self) -> None:
        phase = receive(handshake())
        phase.next_event()
        phase.reject(503, (("Connection", "keep-alive, x-custom"),))
        assert output(phase) == (
            b"HTTP/1.1 503 Service Unavailable\r\n"
            b"Content-Length: 0\r\n"
            b"Connection: x-custom, close\r\n"
            b"\r\n"
        )

    def test_tokens_are_case_insensitive(self) -> None:
        data = handshake(
            without=["Upgrade", "Connection"],
            extra=[("upgrade", "h2c, WebSocket"), ("CONNECTION", "keep-alive, UPGRADE")],
        )
        assert accepted(data).subprotocols == ()

    def test_header_lists_across_several_fields(self) -> None:
        event = accepted(
            handshake(
                without=["Connection"],
                extra=[
                    ("Connection", "keep-alive"),
                    ("Connection", "Upgrade"),
                    ("Sec-WebSocket-Protocol", "a, b"),
                    ("Sec-WebSocket-Protocol", ", c"),
                    ("Sec-WebSocket-Extensions", "x"),
                    ("Sec-WebSocket-Extensions", 'y; p="1"'),
                ],
            )
        )
        assert event.subprotocols == ("a", "b", "c")
        assert event.extensions == (
            ExtensionOffer(name="x"),
            ExtensionOffer(name="y", params=(("p", "1"),)),
        )

    def test_headers_lowercased_and_latin_1(self) -> None:
        data = handshake(extra=[("X-Name", "caf\u00e9")], target="/a?b=c&d")
        event = accepted(data)
        assert ("x-name", "caf\u00e9") in event.headers
        assert event.target == "/a?b=c&d"

    def test_empty_content_length_is_not_a_body(self) -> None:
        assert accepted(handshake(extra=[("Content-Length", "0")])).target == "/chat"

    def test_bare_lf_line_ends_are_refused(self) -> None:
        # RFC 9112 section 2.2 allows a recipient to take a bare LF as a line
        # end; wsserver does not (see TestSmuggling).
        status, response = rejection(handshake(eol="\n"))
        assert status == 400
        assert b"bare LF" in response


class TestHandshakeRejections:
    """Each requirement of section 4.2.1, with the status it calls for."""

    def test_not_get_is_405_with_allow(self) -> None:
        status, response = rejection(handshake(method="POST"))
        assert status == 405
        assert response.startswith(b"HTTP/1.1 405 Method Not Allowed\r\n")
        assert b"Allow: GET" in response_headers(response)

    def test_head_handshake_gets_405_without_a_body(self) -> None:
        phase = receive(handshake(method="HEAD"))
        event = phase.next_event()
        assert isinstance(event, RequestRejected)
        assert event.status == 405
        response = output(phase)
        assert response.endswith(b"\r\n\r\n")  # headers only
        assert b"Content-Length: %d" % (len(event.reason) + 1) in response_headers(response)

    def test_http_1_0_is_505(self) -> None:
        status, response = rejection(handshake(version="HTTP/1.0"))
        assert status == 505
        assert response.startswith(b"HTTP/1.1 505 HTTP Version Not Supported\r\n")

    def test_missing_host_is_400(self) -> None:
        assert status_of(handshake(without=["Host"])) == 400

    @pytest.mark.parametrize("value", ["h2c", "web socket", "websocket/13", "websockets"])
    def test_upgrade_without_websocket_is_400(self, value: str) -> None:
        data = handshake(without=["Upgrade"], extra=[("Upgrade", value)])
        assert status_of(data) == 400

    def test_missing_upgrade_is_400(self) -> None:
        # Still a handshake attempt: it has Sec-WebSocket-Key and -Version.
        assert status_of(handshake(without=["Upgrade"])) == 400

    def test_malformed_upgrade_is_400(self) -> None:
        data = handshake(without=["Upgrade"], extra=[("Upgrade", "websocket;x")])
        assert status_of(data) == 400

    @pytest.mark.parametrize("value", [None, "keep-alive", "close", "upgrade-insecure"])
    def test_connection_without_upgrade_is_400(self, value: str | None) -> None:
        extra = [] if value is None else [("Connection", value)]
        assert status_of(handshake(without=["Connection"], extra=extra)) == 400

    @pytest.mark.parametrize(
        "keys",
        [
            [],
            [KEY, KEY],  # "MUST NOT appear more than once" (section 11.3.1)
            ["not base64!"],
            ["AAAAAAAAAAAAAAAAAAAA"],  # 15 bytes
            ["AAAAAAAAAAAAAAAAAAAAAAA="],  # 17 bytes
            ["dGhlIHNhbXBsZSBub25jZQ"],  # padding missing
            ["dGhlIHNhbXBsZSBub25j ZQ=="],  # whitespace inside
            ["dGhlIHNhbXBsZSBub25jZQ==\u00e9"],
        ],
    )
    def test_bad_key_is_400(self, keys: list[str]) -> None:
        data = handshake(
            without=["Sec-WebSocket-Key"], extra=[("Sec-WebSocket-Key", key) for key in keys]
        )
        assert status_of(data) == 400

    @pytest.mark.parametrize("versions", [[], ["8"], ["14"], ["13, 8"], ["13", "13"], ["013"]])
    def test_bad_version_is_426_with_supported_version(self, versions: list[str]) -> None:
        data = handshake(
            without=["Sec-WebSocket-Version"],
            extra=[("Sec-WebSocket-Version", version) for version in versions],
        )
        status, response = rejection(data)
        assert status == 426
        assert response == (
            b"HTTP/1.1 426 Upgrade Required\r\n"
            b"Sec-WebSocket-Version: 13\r\n"
            b"Content-Type: text/plain; charset=utf-8\r\n"
            b"Content-Length: 61\r\n"
            b"Connection: close\r\n"
            b"\r\n"
            b"unsupported WebSocket version: this server speaks version 13\n"
        )

    @pytest.mark.parametrize(
        "extra",
        [
            [("Content-Length", "5")],
            [("Transfer-Encoding", "chunked")],
        ],
    )
    def test_body_is_400(self, extra: list[tuple[str, str]]) -> None:
        assert status_of(handshake(extra=extra, body=b"hello")) == 400

    @pytest.mark.parametrize("value", ["a b", "chat;v=1", "chat/1", "caf\u00e9"])
    def test_bad_subprotocol_is_400(self, value: str) -> None:
        assert status_of(handshake(extra=[("Sec-WebSocket-Protocol", value)])) == 400

    def test_empty_extensions_header_offers_nothing(self) -> None:
        # websockets' client sends an empty value when it has nothing to offer.
        data = receive(handshake(extra=[("Sec-WebSocket-Extensions", "")])).next_event()
        assert isinstance(data, WebSocketRequest)
        assert data.extensions == ()

    @pytest.mark.parametrize("value", ["a;", 'a; b="c d"', "a b"])
    def test_bad_extensions_is_400(self, value: str) -> None:
        status, response = rejection(handshake(extra=[("Sec-WebSocket-Extensions", value)]))
        assert status == 400
        assert b"invalid Sec-WebSocket-Extensions header" in response

    def test_version_header_alone_makes_an_attempt(self) -> None:
        data = request(fields=[("Host", "x"), ("Sec-WebSocket-Version", "13")])
        assert status_of(data) == 400

    def test_upgrade_to_something_else_is_plain_http(self) -> None:
        data = request(fields=[("Host", "x"), ("Upgrade", "h2c"), ("Connection", "Upgrade")])
        phase = receive(data)
        assert isinstance(phase.next_event(), HTTPRequest)
        phase.send_response(200)
        assert output(phase).startswith(b"HTTP/1.1 200 OK\r\n")
        assert not closes(phase)  # the switch was declined; keep-alive


# --------------------------------------------------------------------------
# Plain HTTP


class TestPlainHTTP:
    def test_exact_event(self) -> None:
        data = (
            b"POST /submit?x=1 HTTP/1.1\r\n"
            b"Host: example.com\r\n"
            b"Content-Type: text/plain\r\n"
            b"Content-Length: 5\r\n"
            b"\r\n"
            b"hello"
        )
        assert served(data) == HTTPRequest(
            method="POST",
            target="/submit?x=1",
            headers=(
                ("host", "example.com"),
                ("content-type", "text/plain"),
                ("content-length", "5"),
            ),
            http_version="1.1",
            body=b"hello",
        )

    def test_chunked_body(self) -> None:
        data = (
            b"PUT / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5\r\nhello\r\n1;ext=1\r\n!\r\n0\r\nTrailer: yes\r\n\r\n"
        )
        assert served(data).body == b"hello!"

    def test_exact_response_and_keep_alive(self) -> None:
        phase = receive(request(target="/"))
        assert isinstance(phase.next_event(), HTTPRequest)
        assert waiting(phase)
        phase.send_response(200, (("Content-Type", "text/plain"),), b"hello")
        assert output(phase) == (
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello"
        )
        assert not waiting(phase)
        assert not closes(phase)
        phase.receive_data(request(target="/second"))
        event = phase.next_event()
        assert isinstance(event, HTTPRequest)
        assert event.target == "/second"

    def test_head_gets_headers_without_body(self) -> None:
        phase = receive(request(method="HEAD", target="/"))
        phase.next_event()
        phase.send_response(200, (), b"hello")
        assert output(phase) == b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"

    @pytest.mark.parametrize(
        ("status", "line"),
        [(204, b"HTTP/1.1 204 No Content"), (304, b"HTTP/1.1 304 Not Modified")],
    )
    def test_no_content_statuses(self, status: int, line: bytes) -> None:
        phase = receive(request(target="/"))
        phase.next_event()
        phase.send_response(status)
        assert output(phase) == line + b"\r\n\r\n"

    def test_unknown_status_has_empty_reason(self) -> None:
        phase = receive(request(target="/"))
        phase.next_event()
        phase.send_response(599)
        assert output(phase) == b"HTTP/1.1 599 \r\nContent-Length: 0\r\n\r\n"

    def test_http_1_0_closes(self) -> None:
        phase = receive(b"GET / HTTP/1.0\r\n\r\n")
        event = phase.next_event()
        assert isinstance(event, HTTPRequest)
        assert event.http_version == "1.0"
        phase.send_response(200, (), b"ok")
        assert output(phase) == (
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
        )
        assert closes(phase)

    def test_connection_close_closes(self) -> None:
        phase = receive(request(fields=[("Host", "x"), ("Connection", "close")]))
        phase.next_event()
        phase.send_response(200)
        assert b"Connection: close" in response_headers(output(phase))
        assert closes(phase)

    def test_caller_connection_close_closes(self) -> None:
        phase = receive(request() + request(target="/next"))
        phase.next_event()
        phase.send_response(200, (("Connection", "close"),))
        assert b"Connection: close" in response_headers(output(phase))
        assert closes(phase)
        assert phase.next_event() is None

    def test_pipelined_requests_already_received(self) -> None:
        data = (
            request(target="/1")
            + request(method="POST", target="/2", fields=[("Host", "x"), ("Content-Length", "3")])
            + b"abc"
            + b"PUT /3 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            + b"2\r\nhi\r\n0\r\n\r\n"
            + request(target="/4")
        )
        phase = receive(data)
        seen = []
        while (event := phase.next_event()) is not None:
            assert isinstance(event, HTTPRequest)
            assert phase.next_event() is None  # one at a time
            seen.append((event.target, event.body))
            phase.send_response(200, (), event.target.encode())
        assert seen == [("/1", b""), ("/2", b"abc"), ("/3", b"hi"), ("/4", b"")]
        assert output(phase).count(b"HTTP/1.1 200 OK\r\n") == 4
        assert not closes(phase)

    def test_pipelined_handshake_after_plain_request(self) -> None:
        phase = receive(request(target="/") + RFC_REQUEST + b"\x88\x80")
        assert isinstance(phase.next_event(), HTTPRequest)
        phase.send_response(200)
        assert isinstance(phase.next_event(), WebSocketRequest)
        assert phase.accept(None, None) == b"\x88\x80"

    def test_expect_100_continue(self) -> None:
        phase = receive(
            request(
                method="POST",
                fields=[("Host", "x"), ("Content-Length", "5"), ("Expect", "100-continue")],
            )
        )
        assert phase.next_event() is None
        assert output(phase) == b"HTTP/1.1 100 Continue\r\n\r\n"
        phase.receive_data(b"hello")
        event = phase.next_event()
        assert isinstance(event, HTTPRequest)
        assert event.body == b"hello"
        assert output(phase) == b""

    def test_expect_100_continue_over_limit_is_413_without_100(self) -> None:
        data = request(
            method="POST",
            fields=[("Host", "x"), ("Content-Length", "17"), ("Expect", "100-continue")],
        )
        status, response = rejection(data, SMALL)
        assert status == 413
        assert b"100 Continue" not in response

    def test_leading_empty_lines_are_ignored(self) -> None:
        # RFC 9112 section 2.2: "SHOULD ignore at least one empty line".
        assert served(b"\r\n\r\n" + request(target="/x")).target == "/x"

    def test_leading_bare_lf_is_refused(self) -> None:
        assert status_of(b"\r\n\n" + request(target="/x")) == 400

    def test_eof_between_requests_closes_quietly(self) -> None:
        phase = receive(request())
        phase.next_event()
        phase.send_response(200)
        output(phase)
        phase.receive_eof()
        assert closes(phase)
        assert phase.next_event() is None
        assert output(phase) == b""

    def test_eof_on_a_fresh_connection(self) -> None:
        phase = HTTPPhase(ProtocolSettings())
        phase.receive_eof()
        phase.receive_eof()  # idempotent
        assert closes(phase)
        assert phase.next_event() is None
        assert output(phase) == b""
        with pytest.raises(LocalProtocolError, match="after receive_eof"):
            phase.receive_data(b"x")

    def test_eof_while_awaiting_answer(self) -> None:
        phase = receive(request() + request(target="/never"))
        phase.next_event()
        phase.receive_eof()
        assert not closes(phase)  # the answer still has to go out
        phase.send_response(200)
        assert b"Connection: close" in response_headers(output(phase))
        assert closes(phase)
        assert phase.next_event() is None

    def test_eof_while_awaiting_handshake_answer(self) -> None:
        phase = receive(RFC_REQUEST)
        phase.next_event()
        phase.receive_eof()
        assert not closes(phase)
        phase.accept(None, None)
        assert output(phase).startswith(b"HTTP/1.1 101 ")
        assert closes(phase)


class TestStreamedResponses:
    """``start_response``, ``send_body``, ``end_response``: a body in pieces."""

    def test_chunked_for_http_1_1_then_keep_alive(self) -> None:
        phase = receive(request(target="/") + request(target="/next"))
        assert isinstance(phase.next_event(), HTTPRequest)
        phase.start_response(200, (("Content-Type", "text/plain"),))
        assert phase.streaming
        assert output(phase) == (
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        phase.send_body(b"hello")
        phase.send_body(b"")  # not a chunk: it would end the body
        phase.send_body(b" world!")
        assert output(phase) == b"5\r\nhello\r\n7\r\n world!\r\n"
        # Nothing is parsed while the response is streaming.
        assert phase.next_event() is None
        phase.end_response()
        assert output(phase) == b"0\r\n\r\n"
        assert not phase.streaming
        assert not closes(phase)
        event = phase.next_event()
        assert isinstance(event, HTTPRequest)
        assert event.target == "/next"

    def test_http_1_0_is_framed_by_closing(self) -> None:
        phase = receive(b"GET / HTTP/1.0\r\n\r\n")
        phase.next_event()
        phase.start_response(200)
        phase.send_body(b"abc")
        phase.end_response()
        assert output(phase) == b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nabc"
        assert closes(phase)

    def test_head_204_and_304_drop_the_body(self) -> None:
        for method, status, head in [
            # The headers a GET would get (RFC 9110 section 9.3.2), no body.
            ("HEAD", 200, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"),
            ("GET", 204, b"HTTP/1.1 204 No Content\r\n\r\n"),
            ("GET", 304, b"HTTP/1.1 304 Not Modified\r\n\r\n"),
        ]:
            phase = receive(request(method=method, target="/"))
            phase.next_event()
            phase.start_response(status)
            phase.send_body(b"dropped")
            phase.end_response()
            assert output(phase) == head
            assert not closes(phase)

    def test_a_closing_request_gets_connection_close(self) -> None:
        phase = receive(request(fields=[("Host", "x")]))
        phase.next_event()
        phase.receive_eof()
        phase.start_response(200)
        phase.end_response()
        assert b"Connection: close" in response_headers(output(phase))
        assert closes(phase)

    def test_caller_mistakes_raise(self) -> None:
        phase = receive(request(target="/"))
        with pytest.raises(LocalProtocolError, match="without a pending HTTPRequest"):
            phase.start_response(200)
        with pytest.raises(LocalProtocolError, match="send_body\\(\\) without start_response"):
            phase.send_body(b"x")
        with pytest.raises(LocalProtocolError, match="end_response\\(\\) without"):
            phase.end_response()
        phase.next_event()
        with pytest.raises(LocalProtocolError, match="not a final status"):
            phase.start_response(101)
        with pytest.raises(LocalProtocolError, match="invalid response header"):
            phase.start_response(200, (("Bad Name", "x"),))
        assert output(phase) == b""
        phase.start_response(200)
        with pytest.raises(LocalProtocolError, match="while a streamed response"):
            phase.start_response(200)
        with pytest.raises(LocalProtocolError, match="while a streamed response"):
            phase.send_response(200)
        with pytest.raises(LocalProtocolError):
            phase.accept(None, None)
        phase.end_response()
        assert output(phase).endswith(b"0\r\n\r\n")


def streaming(data: bytes = b"", settings: ProtocolSettings | None = None) -> HTTPPhase:
    phase = HTTPPhase(settings or ProtocolSettings(), stream_bodies=True)
    phase.receive_data(data)
    return phase


def upload_head(length: int | None = 10, *extra: tuple[str, str]) -> bytes:
    framing = (
        ("Transfer-Encoding", "chunked") if length is None else ("Content-Length", str(length))
    )
    return request(method="POST", target="/up", fields=[("Host", "x"), framing, *extra])


class TestStreamedBodies:
    """``stream_bodies``: the request at its head, its body as the caller asks."""

    def test_pieces_come_as_asked_then_keep_alive(self) -> None:
        phase = streaming(upload_head(10) + b"abcd")
        event = phase.next_event()
        assert isinstance(event, HTTPRequest)
        assert (event.streamed, event.body, event.target) == (True, b"", "/up")
        assert waiting(phase)
        # Bytes that arrive meanwhile wait, unparsed, for the caller to ask.
        phase.receive_data(b"ef")
        assert phase.buffered == 6
        assert phase.next_event() == RequestBody(data=b"abcdef", more=True)
        assert phase.buffered == 0
        assert phase.next_event() is None
        phase.receive_data(b"ghij" + request(target="/next"))
        assert phase.next_event() == RequestBody(data=b"ghij", more=False)
        assert phase.next_event() is None  # the next request waits for the answer
        phase.send_response(200, (), b"ok")
        assert b"Connection: close" not in output(phase)
        event = phase.next_event()
        assert isinstance(event, HTTPRequest)
        assert (event.target, event.streamed) == ("/next", False)

    def test_a_request_without_a_body_is_not_streamed(self) -> None:
        for data in (request(target="/"), upload_head(0)):
            event = streaming(data).next_event()
            assert isinstance(event, HTTPRequest)
            assert (event.streamed, event.body) == (False, b"")

    def test_a_chunked_body_is_streamed_and_its_limit_still_413(self) -> None:
        phase = streaming(upload_head(None) + b"5\r\nhello\r\n", SMALL)
        assert isinstance(phase.next_event(), HTTPRequest)
        assert phase.next_event() == RequestBody(data=b"hello", more=True)
        phase.receive_data(b"c\r\n")  # 5 + 12 > max_body_size (16)
        rejected = phase.next_event()
        assert rejected == RequestRejected(status=413, reason="request body too large")
        assert output(phase).startswith(b"HTTP/1.1 413 ")
        assert closes(phase)
        assert not waiting(phase)

    def test_a_content_length_over_the_limit_is_413_before_the_request(self) -> None:
        phase = streaming(upload_head(17), SMALL)
        assert isinstance(phase.next_event(), RequestRejected)
        assert output(phase).startswith(b"HTTP/1.1 413 ")

    def test_100_continue_only_once_the_caller_asks_for_the_body(self) -> None:
        phase = streaming(upload_head(5, ("Expect", "100-continue")))
        assert isinstance(phase.next_event(), HTTPRequest)
        assert output(phase) == b""  # not before the caller wants the body
        assert phase.next_event() is None
        assert output(phase) == b"HTTP/1.1 100 Continue\r\n\r\n"
        phase.receive_data(b"hello")
        assert phase.next_event() == RequestBody(data=b"hello", more=False)
        assert output(phase) == b""

    def test_an_answer_without_reading_the_body_closes_after_it(self) -> None:
        phase = streaming(upload_head(10, ("Expect", "100-continue")))
        assert isinstance(phase.next_event(), HTTPRequest)
        phase.send_response(417, (), b"no")
        response = output(phase)
        assert b"100 Continue" not in response
        assert b"Connection: close" in response_headers(response)
        assert closes(phase)

    def test_a_streamed_answer_before_the_body_is_read_closes_after_it(self) -> None:
        phase = streaming(upload_head(4) + b"ab")
        assert isinstance(phase.next_event(), HTTPRequest)
        phase.start_response(200)
        assert b"Connection: close" in response_headers(output(phase))
        assert phase.next_event() == RequestBody(data=b"ab", more=True)
        phase.receive_data(b"cd")
        assert phase.next_event() == RequestBody(data=b"cd", more=False)
        phase.send_body(b"x")
        phase.end_response()
        output(phase)
        assert closes(phase)

    def test_the_end_of_the_stream_mid_body_is_400(self) -> None:
        phase = streaming(upload_head(10) + b"ab")
        assert isinstance(phase.next_event(), HTTPRequest)
        phase.receive_eof()
        assert phase.next_event() == RequestRejected(
            status=400, reason="connection closed in the middle of the body"
        )
        assert output(phase).startswith(b"HTTP/1.1 400 ")
        assert closes(phase)

    def test_a_body_failing_while_the_answer_streams_writes_no_second_answer(self) -> None:
        phase = streaming(upload_head(None))
        assert isinstance(phase.next_event(), HTTPRequest)
        phase.start_response(200)
        head = output(phase)
        phase.receive_data(b"zz\r\n")  # not a chunk size
        rejected = phase.next_event()
        assert isinstance(rejected, RequestRejected)
        assert rejected.status == 400
        assert output(phase) == b""  # the 200's head is out: nothing can follow
        assert head.startswith(b"HTTP/1.1 200 ")
        assert closes(phase)


class TestPlainHTTPRejections:
    @pytest.mark.parametrize(
        "data",
        [
            b"GET / HTTP/1.1\r\nBad Header: x\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\n: no name\r\n\r\n",
            b"GET  / HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET /\r\nHost: x\r\n\r\n",
            b"GET / HTTP/1.1\r\n\r\n",  # no Host
            b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            b"G(T / HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            b" GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        ],
    )
    def test_h11_parse_errors_are_400(self, data: bytes) -> None:
        assert status_of(data) == 400

    @pytest.mark.parametrize(
        "version",
        ["HTTP/x.y", "HTTP/1", "HTTP/1.", "HTTP/1.1.1", "http/1.1", "HTTP/1.a", "FTP/1.1"],
    )
    def test_garbage_version_is_400(self, version: str) -> None:
        assert status_of(request(version=version)) == 400

    @pytest.mark.parametrize(
        "version",
        ["HTTP/2.0", "HTTP/2", "HTTP/3", "HTTP/1.2", "HTTP/10.0", "HTTP/" + "9" * 5000 + ".0"],
    )
    def test_version_above_1_1_is_505(self, version: str) -> None:
        assert status_of(request(version=version), ProtocolSettings(max_request_line=6000)) == 505

    def test_505_as_soon_as_the_request_line_ends(self) -> None:
        phase = receive(b"GET / HTTP/2.0\r\n")
        assert isinstance(phase.next_event(), RequestRejected)

    def test_http2_preface_is_505(self) -> None:
        assert status_of(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n") == 505

    def test_tls_client_hello_is_refused_at_once(self) -> None:
        phase = receive(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
        event = phase.next_event()
        assert isinstance(event, RequestRejected)
        assert event.status == 400
        assert closes(phase)

    def test_both_content_length_and_chunked_is_400(self) -> None:
        data = request(
            method="POST",
            fields=[("Host", "x"), ("Content-Length", "3"), ("Transfer-Encoding", "chunked")],
            body=b"0\r\n\r\n",
        )
        assert status_of(data) == 400

    def test_unknown_transfer_coding_before_chunked_is_501(self) -> None:
        # RFC 9112 section 6.1: "SHOULD respond with 501".  Without a final
        # chunked, the answer is 400 (TestSmuggling).
        data = request(
            method="POST", fields=[("Host", "x"), ("Transfer-Encoding", "gzip, chunked")]
        )
        assert status_of(data + b"0\r\n\r\n") == 501

    def test_connect_is_501(self) -> None:
        assert status_of(b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com\r\n\r\n") == 501

    def test_bad_chunk_is_400(self) -> None:
        data = request(method="POST", fields=[("Host", "x"), ("Transfer-Encoding", "chunked")])
        assert status_of(data + b"zz\r\nhello\r\n0\r\n\r\n") == 400

    def test_eof_in_the_middle_of_the_head_is_400(self) -> None:
        phase = receive(b"GET / HTTP/1.1\r\nHost:")
        assert phase.next_event() is None
        phase.receive_eof()
        event = phase.next_event()
        assert isinstance(event, RequestRejected)
        assert event.status == 400
        assert output(phase).startswith(b"HTTP/1.1 400 Bad Request\r\n")
        assert closes(phase)

    def test_eof_in_the_middle_of_the_body_is_400(self) -> None:
        phase = receive(request(method="POST", fields=[("Host", "x"), ("Content-Length", "9")]))
        phase.receive_data(b"abc")
        phase.receive_eof()
        event = phase.next_event()
        assert isinstance(event, RequestRejected)
        assert event.status == 400

    def test_data_after_a_rejection_is_ignored(self) -> None:
        phase = receive(b"GET / HTTP/3\r\n")
        assert isinstance(phase.next_event(), RequestRejected)
        output(phase)
        phase.receive_data(request())
        assert phase.next_event() is None
        assert output(phase) == b""
        assert closes(phase)

    def test_error_after_a_good_pipelined_request(self) -> None:
        phase = receive(request(target="/ok") + b"GET / HTTP/9.9\r\n\r\n")
        assert isinstance(phase.next_event(), HTTPRequest)
        assert phase.next_event() is None  # nothing parsed while waiting
        phase.send_response(200)
        event = phase.next_event()
        assert isinstance(event, RequestRejected)
        assert event.status == 505
        response = output(phase)
        assert response.startswith(b"HTTP/1.1 200 OK\r\n")
        assert b"HTTP/1.1 505 " in response

    def test_long_garbage_is_not_echoed_in_full(self) -> None:
        status, response = rejection(b"GET / HTTP/1.1\r\nX" + b"\x01" * 5000 + b": v\r\n\r\n")
        assert status == 400
        assert len(response) < 400


# --------------------------------------------------------------------------
# Request smuggling (RFC 9112 sections 2.2, 3.2, 5, 6, 7.1 and 11.2): every
# request a proxy could frame, or route, differently from wsserver is
# refused, the connection closes, and nothing after it is read.
# docs/security.md has the table.

#: Sent after each refused request: it would be served if it were parsed.
SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"

CHUNKED_HEAD = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"


def post(fields: bytes, body: bytes = b"", version: bytes = b"HTTP/1.1") -> bytes:
    """A POST with exactly the given field lines (each ending in CRLF) and body."""
    return b"POST / " + version + b"\r\nHost: x\r\n" + fields + b"\r\n" + body


def upgrade(fields: bytes, body: bytes = b"") -> bytes:
    """The RFC's handshake with more field lines, and bytes after its head."""
    return RFC_REQUEST[:-2] + fields + b"\r\n" + body


# (id, the exact bytes, the status)
SMUGGLING_SHAPES: list[tuple[str, bytes, int]] = [
    # RFC 9112 section 6.1 / 6.3: Transfer-Encoding and Content-Length.
    ("te-and-cl", post(b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n", b"0\r\n\r\n"), 400),
    ("cl-and-te", post(b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", b"0\r\n\r\n"), 400),
    (
        "te-and-cl-zero",
        post(b"Transfer-Encoding: chunked\r\nContent-Length: 0\r\n", b"0\r\n\r\n"),
        400,
    ),
    ("te-gzip", post(b"Transfer-Encoding: gzip\r\n", b"hello"), 400),
    ("te-chunked-gzip", post(b"Transfer-Encoding: chunked, gzip\r\n", b"0\r\n\r\n"), 400),
    ("te-identity", post(b"Transfer-Encoding: identity\r\n", b"hello"), 400),
    ("te-xchunked", post(b"Transfer-Encoding: xchunked\r\n", b"0\r\n\r\n"), 400),
    ("te-chunked-twice", post(b"Transfer-Encoding: chunked, chunked\r\n", b"0\r\n\r\n"), 400),
    (
        "te-two-fields",
        post(b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", b"0\r\n\r\n"),
        400,
    ),
    ("te-empty", post(b"Transfer-Encoding: \r\n"), 400),
    ("te-empty-element", post(b"Transfer-Encoding: chunked,\r\n", b"0\r\n\r\n"), 400),
    ("te-parameter", post(b"Transfer-Encoding: chunked;x=1\r\n", b"0\r\n\r\n"), 400),
    ("te-vertical-tab", post(b"Transfer-Encoding: \x0bchunked\r\n", b"0\r\n\r\n"), 400),
    ("te-http-1.0", post(b"Transfer-Encoding: chunked\r\n", b"0\r\n\r\n", b"HTTP/1.0"), 400),
    (
        "te-http-1.0-with-cl",
        post(b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n", b"hello", b"HTTP/1.0"),
        400,
    ),
    ("te-space-before-colon", post(b"Transfer-Encoding : chunked\r\n", b"0\r\n\r\n"), 400),
    ("te-folded", post(b"Transfer-Encoding:\r\n chunked\r\n", b"0\r\n\r\n"), 400),
    # RFC 9110 section 8.6, RFC 9112 section 6.3: Content-Length.
    ("cl-list-differing", post(b"Content-Length: 5, 6\r\n", b"hello!"), 400),
    ("cl-fields-differing", post(b"Content-Length: 5\r\nContent-Length: 6\r\n", b"hello!"), 400),
    ("cl-list-same", post(b"Content-Length: 5, 5\r\n", b"hello"), 400),
    ("cl-fields-same", post(b"Content-Length: 5\r\nContent-Length: 5\r\n", b"hello"), 400),
    ("cl-plus", post(b"Content-Length: +5\r\n", b"hello"), 400),
    ("cl-minus", post(b"Content-Length: -5\r\n", b"hello"), 400),
    ("cl-minus-zero", post(b"Content-Length: -0\r\n"), 400),
    ("cl-hex", post(b"Content-Length: 0x5\r\n", b"hello"), 400),
    ("cl-trailing-junk", post(b"Content-Length: 5x\r\n", b"hello"), 400),
    ("cl-leading-junk", post(b"Content-Length: x5\r\n", b"hello"), 400),
    ("cl-decimal-point", post(b"Content-Length: 5.0\r\n", b"hello"), 400),
    ("cl-inner-space", post(b"Content-Length: 1 2\r\n", b"hello world!"), 400),
    ("cl-empty", post(b"Content-Length: \r\n"), 400),
    ("cl-trailing-comma", post(b"Content-Length: 5,\r\n", b"hello"), 400),
    ("cl-leading-zeros", post(b"Content-Length: 000000000000000000005\r\n", b"hello"), 400),
    ("cl-over-the-limit", post(b"Content-Length: 1048577\r\n"), 413),
    ("cl-over-64-bits", post(b"Content-Length: 18446744073709551621\r\n", b"hello"), 413),
    # RFC 9112 sections 2.2 and 5: field lines.
    ("obs-fold", b"GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n", 400),
    ("obs-fold-tab", b"GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n\tb\r\n\r\n", 400),
    ("space-before-first-field", b"GET / HTTP/1.1\r\n Host: x\r\n\r\n", 400),
    ("tab-before-first-field", b"GET / HTTP/1.1\r\n\tHost: x\r\n\r\n", 400),
    ("space-before-colon", b"GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400),
    ("tab-before-colon", b"GET / HTTP/1.1\r\nHost\t: x\r\n\r\n", 400),
    ("bare-lf-request-line", b"GET / HTTP/1.1\nHost: x\r\n\r\n", 400),
    ("bare-lf-field", b"GET / HTTP/1.1\r\nHost: x\nX: y\r\n\r\n", 400),
    ("bare-lf-end-of-head", b"GET / HTTP/1.1\r\nHost: x\r\n\n", 400),
    ("bare-lf-everywhere", b"GET / HTTP/1.1\nHost: x\n\n", 400),
    ("bare-lf-hides-te", post(b"X: a\nTransfer-Encoding: chunked\r\n", b"0\r\n\r\n"), 400),
    ("bare-lf-leading-empty-line", b"\n" + SMUGGLED, 400),
    ("bare-cr-in-value", b"GET / HTTP/1.1\r\nHost: x\r\nX: a\rb\r\n\r\n", 400),
    ("bare-cr-at-line-end", b"GET / HTTP/1.1\r\nHost: x\r\nX: a\r\r\n\r\n", 400),
    ("bare-cr-as-line-end", b"GET / HTTP/1.1\rHost: x\r\n\r\n", 400),
    ("nul-in-value", b"GET / HTTP/1.1\r\nHost: x\r\nX: a\x00b\r\n\r\n", 400),
    ("soh-in-value", b"GET / HTTP/1.1\r\nHost: x\r\nX: a\x01b\r\n\r\n", 400),
    ("us-in-value", b"GET / HTTP/1.1\r\nHost: x\r\nX: a\x1fb\r\n\r\n", 400),
    ("del-in-value", b"GET / HTTP/1.1\r\nHost: x\r\nX: a\x7fb\r\n\r\n", 400),
    ("form-feed-in-value", b"GET / HTTP/1.1\r\nHost: x\r\nX: a\x0cb\r\n\r\n", 400),
    ("control-in-name", b"GET / HTTP/1.1\r\nHost: x\r\nX\x01Y: a\r\n\r\n", 400),
    # RFC 9112 section 3: the request line.
    ("space-in-target", b"GET /a b HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("tab-in-target", b"GET /a\tb HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("control-in-target", b"GET /a\x01b HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("no-target", b"GET HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("method-not-a-token", b"G@T / HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("method-with-nul", b"GET\x00 / HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("method-missing", b" / HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("tab-separators", b"GET\t/\tHTTP/1.1\r\nHost: x\r\n\r\n", 400),
    # RFC 9112 section 3.2: Host and the request-target.
    ("host-missing", b"GET / HTTP/1.1\r\n\r\n", 400),
    ("host-twice-same", b"GET / HTTP/1.1\r\nHost: x\r\nHost: x\r\n\r\n", 400),
    ("host-twice-differing", b"GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", 400),
    ("host-list", b"GET / HTTP/1.1\r\nHost: x, y\r\n\r\n", 400),
    ("host-userinfo", b"GET / HTTP/1.1\r\nHost: user@x\r\n\r\n", 400),
    ("host-path", b"GET / HTTP/1.1\r\nHost: x/admin\r\n\r\n", 400),
    ("host-space", b"GET / HTTP/1.1\r\nHost: x y\r\n\r\n", 400),
    ("host-bad-port", b"GET / HTTP/1.1\r\nHost: x:8o\r\n\r\n", 400),
    ("absolute-form-other-host", b"GET http://a/ HTTP/1.1\r\nHost: b\r\n\r\n", 400),
    ("absolute-form-userinfo", b"GET http://b@a/ HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    ("absolute-form-no-host", b"GET http:///x HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    ("asterisk-form-not-options", b"GET * HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    ("authority-form-not-connect", b"GET a:80 HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    ("relative-target", b"GET a/b HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    # RFC 9112 section 7.1: chunked framing.
    ("chunk-size-21-digits", CHUNKED_HEAD + b"000000000000000000001\r\nx\r\n0\r\n\r\n", 400),
    ("chunk-size-over-64-bits", CHUNKED_HEAD + b"10000000000000005\r\nhello\r\n0\r\n\r\n", 413),
    ("chunk-size-over-the-limit", CHUNKED_HEAD + b"100001\r\n", 413),
    ("chunk-size-hex-prefix", CHUNKED_HEAD + b"0x5\r\nhello\r\n0\r\n\r\n", 400),
    ("chunk-size-negative", CHUNKED_HEAD + b"-5\r\nhello\r\n0\r\n\r\n", 400),
    ("chunk-size-leading-space", CHUNKED_HEAD + b" 5\r\nhello\r\n0\r\n\r\n", 400),
    ("chunk-size-trailing-space", CHUNKED_HEAD + b"5 \r\nhello\r\n0\r\n\r\n", 400),
    ("chunk-size-missing", CHUNKED_HEAD + b"\r\nhello\r\n0\r\n\r\n", 400),
    ("chunk-ext-bare-semicolon", CHUNKED_HEAD + b"5;\r\nhello\r\n0\r\n\r\n", 400),
    ("chunk-ext-bare-cr", CHUNKED_HEAD + b"5;a\rb\r\nhello\r\n0\r\n\r\n", 400),
    ("chunk-ext-bare-lf", CHUNKED_HEAD + b"5;a\nb\r\nhello\r\n0\r\n\r\n", 400),
    ("chunk-ext-nul", CHUNKED_HEAD + b"5;a\x00\r\nhello\r\n0\r\n\r\n", 400),
    ("chunk-ext-unclosed-quote", CHUNKED_HEAD + b'5;a="b\r\nhello\r\n0\r\n\r\n', 400),
    ("chunk-ext-space-in-value", CHUNKED_HEAD + b"5;a=b c\r\nhello\r\n0\r\n\r\n", 400),
    ("chunk-line-bare-lf", CHUNKED_HEAD + b"5\nhello\r\n0\r\n\r\n", 400),
    ("chunk-data-bare-lf", CHUNKED_HEAD + b"5\r\nhello\n0\r\n\r\n", 400),
    ("chunk-data-no-crlf", CHUNKED_HEAD + b"5\r\nhello0\r\n\r\n", 400),
    ("chunk-data-longer-than-size", CHUNKED_HEAD + b"5\r\nhello!!\r\n0\r\n\r\n", 400),
    ("last-chunk-bare-lf", CHUNKED_HEAD + b"0\n\r\n", 400),
    ("end-of-body-bare-lf", CHUNKED_HEAD + b"0\r\n\n", 400),
    ("trailer-bare-lf", CHUNKED_HEAD + b"0\r\nT: y\n\r\n", 400),
    ("trailer-obs-fold", CHUNKED_HEAD + b"0\r\nT: y\r\n z\r\n\r\n", 400),
    ("trailer-space-before-colon", CHUNKED_HEAD + b"0\r\nT : y\r\n\r\n", 400),
    ("trailer-control", CHUNKED_HEAD + b"0\r\nT: y\x01\r\n\r\n", 400),
    ("trailer-no-colon", CHUNKED_HEAD + b"0\r\nGET /smuggled HTTP/1.1\r\n\r\n", 400),
    ("trailer-content-length", CHUNKED_HEAD + b"0\r\nContent-Length: 5\r\n\r\n", 400),
    ("trailer-transfer-encoding", CHUNKED_HEAD + b"0\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
    # A body on the WebSocket handshake would be read as its first frames.
    ("upgrade-content-length", upgrade(b"Content-Length: 5\r\n", b"hello"), 400),
    ("upgrade-chunked", upgrade(b"Transfer-Encoding: chunked\r\n", b"0\r\n\r\n"), 400),
    ("upgrade-te-gzip", upgrade(b"Transfer-Encoding: gzip\r\n", b"hello"), 400),
    ("upgrade-te-and-cl", upgrade(b"Transfer-Encoding: chunked\r\nContent-Length: 0\r\n"), 400),
    ("upgrade-cl-list", upgrade(b"Content-Length: 0, 0\r\n"), 400),
    ("upgrade-obs-fold", upgrade(b"X: a\r\n b\r\n"), 400),
]


def refused(data: bytes, settings: ProtocolSettings | None = None) -> tuple[int, bytes]:
    """Refuse ``data`` (followed by ``SMUGGLED``): one answer, then the end.

    Returns the status and the response.  Checks, besides what ``rejection``
    does, that the request after it is never answered, even when more bytes
    come, and that feeding the bytes one at a time gives the same answer.
    """
    # rejection() checks that the response ends with its body: one answer.
    status, response = rejection(data + SMUGGLED, settings)
    assert b"/smuggled" not in response
    events, out, websocket = drive(bytewise(data + SMUGGLED), settings or ProtocolSettings())
    assert events == drive([data + SMUGGLED], settings or ProtocolSettings())[0]
    assert [type(event) for event in events] == [RequestRejected, RequestRejected]
    assert out == response
    assert websocket == b""
    return status, response


class TestSmuggling:
    @pytest.mark.parametrize(
        ("data", "status"),
        [pytest.param(data, status, id=name) for name, data, status in SMUGGLING_SHAPES],
    )
    def test_refused_and_closed(self, data: bytes, status: int) -> None:
        assert refused(data)[0] == status

    def test_nothing_after_the_refused_request_is_read(self) -> None:
        phase = receive(post(b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n", b"0\r\n\r\n"))
        event = phase.next_event()
        assert isinstance(event, RequestRejected)
        response = output(phase)
        assert b"Connection: close" in response_headers(response)
        for data in (SMUGGLED, RFC_REQUEST, b"\x81\x85\x37\xfa\x21\x3d\x7f"):
            phase.receive_data(data)
            assert phase.next_event() is None
            assert output(phase) == b""
            assert closes(phase)

    def test_refused_after_a_served_request(self) -> None:
        # Keep-alive: the first request is served; the second is refused,
        # and the third is never read.
        data = request(target="/first") + post(b"Content-Length: 5, 5\r\n", b"hello") + SMUGGLED
        phase = receive(data)
        first = phase.next_event()
        assert isinstance(first, HTTPRequest)
        assert first.target == "/first"
        phase.send_response(200)
        second = phase.next_event()
        assert second == RequestRejected(status=400, reason="Content-Length is a list")
        assert phase.next_event() is None
        assert closes(phase)
        response = output(phase)
        assert response.startswith(b"HTTP/1.1 200 OK\r\n")
        assert response.count(b"HTTP/1.1 400 Bad Request\r\n") == 1
        assert response.endswith(b"\r\n\r\nContent-Length is a list\n")

    def test_refused_in_the_middle_of_a_chunked_body(self) -> None:
        # The body's first chunk is fine, the second line is not: the first
        # chunk is not served as a request, and the rest is never read.
        phase = receive(CHUNKED_HEAD + b"5\r\nhello\r\n")
        assert phase.next_event() is None
        phase.receive_data(b"5;\x00\r\nworld\r\n0\r\n\r\n" + SMUGGLED)
        assert phase.next_event() == RequestRejected(status=400, reason="malformed chunk-size line")
        assert phase.next_event() is None
        assert closes(phase)

    def test_chunk_size_over_the_limit_is_refused_before_its_data(self) -> None:
        # From the size line alone: no byte of data is waited for.
        phase = receive(CHUNKED_HEAD + b"ffffffffffffffff\r\n", SMALL)
        assert phase.next_event() == RequestRejected(status=413, reason="request body too large")
        assert closes(phase)

    def test_failed_upgrade_closes_the_connection(self) -> None:
        # WebSocket smuggling: a proxy that takes any answer to an upgrade
        # for a switch tunnels what follows; after a refused handshake
        # wsserver reads nothing more.
        bad_version = RFC_REQUEST.replace(b"Version: 13", b"Version: 12")
        status, _ = refused(bad_version)
        assert status == 426
        phase = receive(RFC_REQUEST + SMUGGLED)
        assert isinstance(phase.next_event(), WebSocketRequest)
        phase.reject(403)
        assert b"Connection: close" in response_headers(output(phase))
        assert closes(phase)
        assert phase.next_event() is None

    def test_transfer_coding_before_chunked_is_501_and_closes(self) -> None:
        assert refused(post(b"Transfer-Encoding: gzip, chunked\r\n", b"0\r\n\r\n"))[0] == 501

    def test_huge_content_length_is_413_before_int(self) -> None:
        # int() refuses more than 4,300 digits: compared as text first.
        data = post(b"Content-Length: " + b"9" * 5000 + b"\r\n")
        assert refused(data, ProtocolSettings(max_header_line=6000))[0] == 413

    @pytest.mark.parametrize(
        "data",
        [
            pytest.param(
                post(b"Transfer-Encoding: Chunked\r\n", b"5\r\nhello\r\n0\r\n\r\n"), id="te-case"
            ),
            pytest.param(
                post(b"Transfer-Encoding:  chunked \r\n", b"5\r\nhello\r\n0\r\n\r\n"), id="te-ows"
            ),
            pytest.param(post(b"Content-Length:  5 \r\n", b"hello"), id="cl-ows"),
            pytest.param(post(b"Content-Length: 0005\r\n", b"hello"), id="cl-leading-zeros"),
            pytest.param(post(b"content-length: 5\r\n", b"hello"), id="cl-case"),
            pytest.param(
                CHUNKED_HEAD + b'5;a=b; c = "d\\"e"\t;f\r\nhello\r\n0000\r\n\r\n', id="chunk-ext"
            ),
            pytest.param(CHUNKED_HEAD + b"5\r\nhello\r\n0\r\nT: a b\r\nU:\r\n\r\n", id="trailers"),
            pytest.param(CHUNKED_HEAD + b"A\r\nhelloworld\r\n0\r\n\r\n", id="chunk-size-upper"),
            pytest.param(b"GET / HTTP/1.1\r\nHost: x\r\nX: a\tb \x80\xff\r\n\r\n", id="obs-text"),
            pytest.param(b"GET http://x/p?q HTTP/1.1\r\nHost: X\r\n\r\n", id="absolute-form"),
            pytest.param(b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", id="asterisk-form"),
            pytest.param(b"GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n", id="host-ipv6"),
            pytest.param(b"GET / HTTP/1.1\r\nHost:\r\n\r\n", id="host-empty"),
            pytest.param(b"GET / HTTP/1.0\r\n\r\n", id="http-1.0-no-host"),
        ],
    )
    def test_strict_but_valid_requests_are_served(self, data: bytes) -> None:
        phase = receive(data + SMUGGLED)
        event = phase.next_event()
        assert isinstance(event, HTTPRequest), event
        assert event.body in (b"", b"hello", b"helloworld")
        phase.send_response(200)
        if event.http_version == "1.1":
            second = phase.next_event()
            assert isinstance(second, HTTPRequest)
            assert second.target == "/smuggled"

    def test_absolute_form_handshake_with_its_host(self) -> None:
        data = RFC_REQUEST.replace(b"GET /chat", b"GET http://server.example.com/chat")
        assert accepted(data).target == "http://server.example.com/chat"

    def test_connect_is_501_before_its_target_is_judged(self) -> None:
        assert refused(b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com\r\n\r\n")[0] == 501


@st.composite
def smuggling_streams(draw: st.DrawFn) -> tuple[bytes, int]:
    """Valid requests, then one smuggling shape, then a request never read."""
    prefix = b"".join(draw(st.lists(plain_requests(crlf_only=True), max_size=2)))
    _, shape, status = draw(st.sampled_from(SMUGGLING_SHAPES))
    return prefix + shape + SMUGGLED, status


@settings(max_examples=300, deadline=None)
@given(smuggling_streams(), st.lists(st.integers(min_value=0), max_size=20))
def test_any_split_of_a_smuggling_stream_refuses_it(
    stream: tuple[bytes, int], points: list[int]
) -> None:
    data, status = stream
    whole = drive([data], ProtocolSettings())
    events = whole[0]
    assert all(isinstance(event, HTTPRequest) for event in events[:-2])
    refusal = events[-2]
    assert isinstance(refusal, RequestRejected)
    assert refusal.status == status
    assert events[-1] == RequestRejected(status=0, reason="must_close=True")
    assert b"X-Target: /smuggled" not in whole[1]
    assert drive(split(data, points), ProtocolSettings()) == whole


# --------------------------------------------------------------------------
# Limits: exactly at each limit is fine, one byte over is refused


def request_line_of(length: int) -> bytes:
    # "GET " + target + " HTTP/1.1"
    return b"GET /" + b"a" * (length - 14) + b" HTTP/1.1"


def head_of(size: int, settings: ProtocolSettings, eol: bytes = b"\r\n") -> bytes:
    """A valid request head of exactly ``size`` bytes, within every other limit."""
    start = b"GET / HTTP/1.1" + eol + b"Host: x" + eol
    rest = size - len(start) - len(eol)
    lines = []
    longest = settings.max_header_line + len(eol)
    shortest = len(b"X: ") + len(eol)
    while rest > 0:
        take = min(longest, rest)
        if 0 < rest - take < shortest:
            take -= shortest
        lines.append(b"X: " + b"v" * (take - shortest) + eol)
        rest -= take
    assert len(lines) + 1 <= settings.max_headers
    head = start + b"".join(lines) + eol
    assert len(head) == size
    return head


LIMIT_SETTINGS = [pytest.param(ProtocolSettings(), id="default"), pytest.param(SMALL, id="small")]
# Lines end with CRLF only: a bare LF is refused (TestSmuggling).
EOLS = [pytest.param(b"\r\n", id="crlf")]


@pytest.mark.parametrize("limits", LIMIT_SETTINGS)
@pytest.mark.parametrize("eol", EOLS)
class TestLimits:
    def test_request_line(self, limits: ProtocolSettings, eol: bytes) -> None:
        at = request_line_of(limits.max_request_line)
        assert served(at + eol + b"Host: x" + eol + eol, limits).target.startswith("/a")
        over = request_line_of(limits.max_request_line + 1)
        assert status_of(over + eol + b"Host: x" + eol + eol, limits) == 414

    def test_request_line_refused_before_its_end(self, limits: ProtocolSettings, eol: bytes):
        at = request_line_of(limits.max_request_line)
        phase = receive(at + eol[:-1], limits)  # a trailing CR does not count
        assert phase.next_event() is None
        phase = receive(request_line_of(limits.max_request_line + 1), limits)
        event = phase.next_event()
        assert isinstance(event, RequestRejected)
        assert event.status == 414

    def test_header_line(self, limits: ProtocolSettings, eol: bytes) -> None:
        def data(length: int) -> bytes:
            field = b"X: " + b"v" * (length - 3)
            return b"GET / HTTP/1.1" + eol + b"Host: x" + eol + field + eol + eol

        event = served(data(limits.max_header_line), limits)
        assert event.headers[1][1] == "v" * (limits.max_header_line - 3)
        assert status_of(data(limits.max_header_line + 1), limits) == 431

    def test_header_line_refused_before_its_end(self, limits: ProtocolSettings, eol: bytes):
        start = b"GET / HTTP/1.1" + eol + b"X: "
        phase = receive(start + b"v" * (limits.max_header_line - 3) + eol[:-1], limits)
        assert phase.next_event() is None
        phase.receive_data(b"v")
        event = phase.next_event()
        assert isinstance(event, RequestRejected)
        assert event.status == 431

    def test_header_count(self, limits: ProtocolSettings, eol: bytes) -> None:
        def data(count: int) -> bytes:
            fields = b"Host: x" + eol + b"".join(b"X: %d" % i + eol for i in range(count - 1))
            return b"GET / HTTP/1.1" + eol + fields + eol

        assert len(served(data(limits.max_headers), limits).headers) == limits.max_headers
        assert status_of(data(limits.max_headers + 1), limits) == 431

    def test_head_size(self, limits: ProtocolSettings, eol: bytes) -> None:
        at = head_of(limits.max_head_size, limits, eol)
        assert served(at, limits).target == "/"
        over = head_of(limits.max_head_size + 1, limits, eol)
        assert status_of(over, limits) == 431

    def test_head_size_refused_before_its_end(self, limits: ProtocolSettings, eol: bytes):
        over = head_of(limits.max_head_size + 1, limits, eol)
        phase = receive(over[: limits.max_head_size], limits)
        assert phase.next_event() is None
        phase.receive_data(over[limits.max_head_size : limits.max_head_size + 1])
        event = phase.next_event()
        assert isinstance(event, RequestRejected)
        assert event.status == 431

    def test_content_length_body(self, limits: ProtocolSettings, eol: bytes) -> None:
        def data(size: int) -> bytes:
            start = b"POST / HTTP/1.1" + eol + b"Host: x" + eol
            return start + b"Content-Length: %d" % size + eol + eol + b"b" * size

        assert served(data(limits.max_body_size), limits).body == b"b" * limits.max_body_size
        # Refused on the header, before the body arrives.
        head = data(limits.max_body_size + 1)[: -(limits.max_body_size + 1)]
        assert status_of(head, limits) == 413

    def test_chunked_body(self, limits: ProtocolSettings, eol: bytes) -> None:
        def data(size: int) -> bytes:
            start = b"POST / HTTP/1.1" + eol + b"Host: x" + eol
            head = start + b"Transfer-Encoding: chunked" + eol + eol
            half = size // 2
            return head + b"%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n" % (
                half,
                b"c" * half,
                size - half,
                b"c" * (size - half),
            )

        assert served(data(limits.max_body_size), limits).body == b"c" * limits.max_body_size
        assert status_of(data(limits.max_body_size + 1), limits) == 413


def test_h11_limit_covers_chunk_lines() -> None:
    # The scanner does not see chunk-size lines; h11's own limit does.
    data = request(method="POST", fields=[("Host", "x"), ("Transfer-Encoding", "chunked")])
    assert status_of(data + b"1;" + b"e" * 1000, SMALL) == 431


CHUNKED_POST = request(method="POST", fields=[("Host", "x"), ("Transfer-Encoding", "chunked")])


@pytest.mark.parametrize("valid", [True, False], ids=["valid", "malformed"])
def test_chunk_line_limit_does_not_depend_on_the_split(valid: bool) -> None:
    # h11 holds at most max_head_size unfinished bytes.  A chunk-size line
    # (CRLF included) of max_head_size + 1 bytes ends in time; one byte more
    # is 431, even when the line's end arrives in the same read (h11 alone
    # would parse it: 400 for a malformed line, or accept a valid one).
    limit = SMALL.max_head_size
    start = b"1;" if valid else b"z;"
    for extension, status in ((limit - 3, None), (limit - 2, 431)):
        line = start + b"e" * extension + b"\r\n"
        assert len(line) == extension + 4
        data = CHUNKED_POST + line + b"x\r\n0\r\n\r\n"
        whole = drive([data], SMALL)
        assert drive(bytewise(data), SMALL) == whole
        first = whole[0][0]
        if status is not None:
            assert first == RequestRejected(
                status=431, reason="malformed request: Receive buffer too long"
            )
        elif valid:
            assert isinstance(first, HTTPRequest)
            assert first.body == b"x"
        else:
            assert isinstance(first, RequestRejected)
            assert first.status == 400


@st.composite
def chunked_near_the_limit(draw: st.DrawFn) -> bytes:
    """A chunked request whose chunk lines and trailers straddle h11's limit."""
    limit = SMALL.max_head_size
    body = b""
    for _ in range(draw(st.integers(1, 3))):
        extension = b"e" * draw(st.integers(limit - 6, limit + 2))
        size = draw(st.sampled_from([b"1", b"z", b"01"]))
        body += size + b";" + extension + draw(st.sampled_from([b"\r\n", b"\n", b" \r\n"]))
        body += b"x" + draw(st.sampled_from([b"\r\n", b"\r\r"]))
    trailer = b"T: " + b"t" * draw(st.integers(0, limit + 2)) + b"\r\n"
    body += b"0\r\n" + draw(st.sampled_from([b"", trailer])) + b"\r\n"
    return CHUNKED_POST + body + request(target="/next")


@settings(max_examples=100, deadline=None)
@given(chunked_near_the_limit(), st.lists(st.integers(min_value=0), max_size=12))
def test_chunked_limits_do_not_depend_on_the_split(data: bytes, points: list[int]) -> None:
    whole = drive([data], SMALL)
    assert drive(split(data, points), SMALL) == whole
    assert drive(bytewise(data), SMALL) == whole


# --------------------------------------------------------------------------
# Memory while the caller decides


class TestBufferWhileWaiting:
    def test_pipelined_bytes_within_bound_are_kept(self) -> None:
        cap = SMALL.max_head_size + SMALL.max_body_size
        phase = receive(request(), SMALL)
        phase.next_event()
        for byte in request(target="/next"):
            phase.receive_data(bytes([byte]))
        phase.send_response(200)
        assert not closes(phase)
        event = phase.next_event()
        assert isinstance(event, HTTPRequest)
        assert event.target == "/next"
        assert len(request(target="/next")) < cap

    def test_excess_is_dropped_and_the_connection_closed(self) -> None:
        phase = receive(request(), SMALL)
        phase.next_event()
        phase.receive_data(b"x" * 10_000)
        assert phase.dropped_data
        phase.receive_data(b"y" * 10_000)
        phase.send_response(200)
        assert b"Connection: close" in response_headers(output(phase))
        assert closes(phase)
        assert phase.next_event() is None

    def test_excess_before_101(self) -> None:
        # RFC 6455 section 4.1: the client "MUST wait for a response from
        # the server before sending any further data".
        cap = SMALL.max_head_size + SMALL.max_body_size
        phase = receive(handshake(), SMALL)
        phase.next_event()
        phase.receive_data(b"\x00" * (cap - 1))
        assert not phase.dropped_data
        phase.receive_data(b"\x00" * 2)
        assert phase.dropped_data
        assert len(phase.accept(None, None)) == cap
        assert closes(phase)

    def test_exactly_the_bound_before_101_is_kept(self) -> None:
        cap = SMALL.max_head_size + SMALL.max_body_size
        phase = receive(handshake(), SMALL)
        phase.next_event()
        phase.receive_data(b"\x00" * cap)
        assert not phase.dropped_data
        assert len(phase.accept(None, None)) == cap
        assert not closes(phase)

    def test_nothing_is_scanned_while_waiting(self) -> None:
        phase = receive(request())
        phase.next_event()
        before = phase.bytes_examined
        for _ in range(1000):
            phase.receive_data(b"GET / HTTP/1.1\r\n")
        assert phase.bytes_examined == before


# --------------------------------------------------------------------------
# Caller mistakes


class TestLocalErrors:
    def test_send_response_without_request(self) -> None:
        phase = HTTPPhase(ProtocolSettings())
        with pytest.raises(LocalProtocolError, match="without a pending HTTPRequest"):
            phase.send_response(200)

    def test_answer_before_next_event(self) -> None:
        phase = receive(request())
        with pytest.raises(LocalProtocolError, match="without a pending HTTPRequest"):
            phase.send_response(200)
        assert isinstance(phase.next_event(), HTTPRequest)

    def test_send_response_to_handshake(self) -> None:
        phase = receive(handshake())
        phase.next_event()
        with pytest.raises(LocalProtocolError, match="accept\\(\\) or reject\\(\\)"):
            phase.send_response(200)
        assert waiting(phase)

    @pytest.mark.parametrize("method", ["accept", "reject"])
    def test_handshake_answers_for_plain_request(self, method: str) -> None:
        phase = receive(request())
        phase.next_event()
        with pytest.raises(LocalProtocolError, match="send_response"):
            if method == "accept":
                phase.accept(None, None)
            else:
                phase.reject(400)

    @pytest.mark.parametrize("method", ["accept", "reject"])
    def test_handshake_answers_without_request(self, method: str) -> None:
        phase = receive(handshake())  # not taken with next_event() yet
        with pytest.raises(LocalProtocolError, match="without a pending WebSocketRequest"):
            if method == "accept":
                phase.accept(None, None)
            else:
                phase.reject(400)

    def test_answering_twice(self) -> None:
        phase = receive(handshake())
        phase.next_event()
        phase.reject(400)
        with pytest.raises(LocalProtocolError):
            phase.reject(400)

    def test_subprotocol_not_offered(self) -> None:
        phase = receive(RFC_REQUEST)
        phase.next_event()
        with pytest.raises(LocalProtocolError, match="not offered"):
            phase.accept("Chat", None)  # subprotocols are compared exactly
        assert phase.accept("superchat", None) == b""

    @pytest.mark.parametrize(
        ("name", "value"),
        [
            ("X-Bad\r\nInjected", "1"),
            ("", "1"),
            ("Bad Name", "1"),
            ("X-Split", "a\r\nInjected: 1"),
            ("X-Newline", "a\nb"),
            ("X-Nul", "a\x00b"),
            ("X-Leading-Space", " a"),
        ],
    )
    def test_accept_refuses_malformed_headers(self, name: str, value: str) -> None:
        phase = receive(handshake())
        phase.next_event()
        with pytest.raises(LocalProtocolError, match="invalid response header"):
            phase.accept(None, None, ((name, value),))
        assert output(phase) == b""
        assert waiting(phase)
        phase.accept(None, None, (("X-Fine", "a \tb, c\xe9"),))  # still answerable
        assert b"X-Fine: a \tb, c\xe9\r\n" in output(phase)

    @pytest.mark.parametrize(
        ("subprotocol", "extensions", "headers"),
        [
            (None, None, ()),
            ("chat", None, (("Server", "wsserver"),)),
            (None, "permessage-deflate; client_max_window_bits=10", ()),
            ("chat", "permessage-deflate", (("Set-Cookie", "a=b; Path=/"), ("X-A", ""))),
        ],
    )
    def test_accept_writes_what_h11_would(
        self, subprotocol: str | None, extensions: str | None, headers: tuple[tuple[str, str], ...]
    ) -> None:
        # The 101 is serialised by the phase itself (see accept()); h11,
        # which writes every other response, must agree byte for byte.
        phase = receive(handshake(extra=[("Sec-WebSocket-Protocol", "chat")]))
        phase.next_event()
        phase.accept(subprotocol, extensions, headers)
        fields = [
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
        ]
        if subprotocol is not None:
            fields.append(("Sec-WebSocket-Protocol", subprotocol))
        if extensions is not None:
            fields.append(("Sec-WebSocket-Extensions", extensions))
        fields += headers
        reference = h11.Connection(h11.SERVER)
        reference.receive_data(handshake())
        reference.next_event()
        expected = reference.send(
            h11.InformationalResponse(
                status_code=101, headers=fields, reason=b"Switching Protocols"
            )
        )
        assert output(phase) == expected

    def test_buffered_counts_what_waits_for_the_answer(self) -> None:
        phase = receive(handshake())
        assert phase.buffered == 0
        phase.next_event()
        phase.receive_data(b"\x81\x85early")
        assert phase.buffered == 7
        assert phase.accept(None, None) == b"\x81\x85early"
        assert phase.buffered == 0

    @pytest.mark.parametrize("value", ["", "a b", 'x; y="not token"'])
    def test_bad_extensions_value(self, value: str) -> None:
        phase = receive(handshake())
        phase.next_event()
        with pytest.raises(LocalProtocolError, match="extensions"):
            phase.accept(None, value)

    @pytest.mark.parametrize(
        "name", ["Upgrade", "connection", "Sec-WebSocket-Accept", "Content-Length"]
    )
    def test_accept_refuses_handshake_headers(self, name: str) -> None:
        phase = receive(handshake())
        phase.next_event()
        with pytest.raises(LocalProtocolError, match="set by the protocol core"):
            phase.accept(None, None, ((name, "x"),))
        assert output(phase) == b""
        assert waiting(phase)

    @pytest.mark.parametrize("name", ["Content-Length", "transfer-encoding"])
    def test_send_response_refuses_framing_headers(self, name: str) -> None:
        phase = receive(request())
        phase.next_event()
        with pytest.raises(LocalProtocolError, match="set by the protocol core"):
            phase.send_response(200, ((name, "1"),))

    @pytest.mark.parametrize("status", [100, 101, 199, 600, 1000, True])
    def test_bad_status(self, status: int) -> None:
        phase = receive(request())
        phase.next_event()
        with pytest.raises(LocalProtocolError, match="final status"):
            phase.send_response(status)
        phase.send_response(200)  # still answerable

    def test_bad_reject_status(self) -> None:
        phase = receive(handshake())
        phase.next_event()
        with pytest.raises(LocalProtocolError, match="final status"):
            phase.reject(101)

    @pytest.mark.parametrize("status", [204, 304])
    def test_body_on_bodiless_status(self, status: int) -> None:
        phase = receive(request())
        phase.next_event()
        with pytest.raises(LocalProtocolError, match="no body"):
            phase.send_response(status, (), b"x")

    @pytest.mark.parametrize(
        "header", [("X-A", "caf\u20ac"), ("Bad Name", "x"), ("X-A", "line\r\nbreak")]
    )
    def test_invalid_headers(self, header: tuple[str, str]) -> None:
        phase = receive(request())
        phase.next_event()
        with pytest.raises(LocalProtocolError):
            phase.send_response(200, (header,))
        phase.send_response(200)
        assert output(phase).startswith(b"HTTP/1.1 200 OK\r\n")


# --------------------------------------------------------------------------
# Splitting: any split of the input gives the same events


def drive(
    chunks: Iterable[bytes], limits: ProtocolSettings, *, streamed: bool = False
) -> tuple[list[Event], bytes, bytes]:
    """Feed ``chunks``, answering every request; return events, output, WebSocket bytes.

    With ``streamed``, the phase streams bodies (``stream_bodies``) and each
    is read piece by piece; a request whose body arrived whole is recorded
    as without (its pieces joined), and one whose body failed only by its
    rejection: the two modes must tell the same story.
    """
    phase = HTTPPhase(limits, stream_bodies=streamed)
    events: list[Event] = []
    out = bytearray()
    websocket = bytearray()
    switched = False
    reading: HTTPRequest | None = None
    pieces: list[bytes] = []

    def whole(event: Event | RequestBody) -> Event | None:
        """The event as an unstreamed phase gives it, or None while a body is read."""
        nonlocal reading
        if isinstance(event, HTTPRequest) and event.streamed:
            assert reading is None and event.body == b""
            reading = event
            pieces.clear()
            return None
        if isinstance(event, RequestBody):
            assert reading is not None
            pieces.append(event.data)
            if event.more:
                return None
            event = HTTPRequest(
                method=reading.method,
                target=reading.target,
                headers=reading.headers,
                http_version=reading.http_version,
                body=b"".join(pieces),
            )
            reading = None
        elif isinstance(event, RequestRejected):
            reading = None
        return event

    def answer() -> None:
        nonlocal switched
        while (event := phase.next_event()) is not None:
            if not streamed:
                assert not isinstance(event, RequestBody)  # bodies come whole here
            elif (event := whole(event)) is None:
                continue
            events.append(event)
            if isinstance(event, HTTPRequest):
                phase.send_response(200, (("X-Target", event.target),), event.body)
            elif isinstance(event, WebSocketRequest):
                websocket.extend(phase.accept(None, None))
                switched = True
        out.extend(b"".join(phase.data_to_send()))

    for chunk in chunks:
        if switched:
            websocket.extend(chunk)
            continue
        phase.receive_data(chunk)
        answer()
    if not switched:
        phase.receive_eof()
        answer()
    events.append(RequestRejected(status=0, reason=f"must_close={closes(phase)}"))
    return events, bytes(out), bytes(websocket)


def split(data: bytes, points: Iterable[int]) -> list[bytes]:
    cuts = sorted({p % (len(data) + 1) for p in points} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(cuts)]


@st.composite
def plain_requests(draw: st.DrawFn, *, crlf_only: bool = False) -> bytes:
    # Mostly CRLF: a bare LF is refused at the first line end.
    eols = [b"\r\n"] if crlf_only else [b"\r\n", b"\r\n", b"\r\n", b"\n"]
    eol = draw(st.sampled_from(eols))
    method = draw(st.sampled_from([b"GET", b"POST", b"HEAD", b"PUT"]))
    target = b"/" + draw(st.text("abc/?=&%", max_size=12)).encode()
    fields = [b"Host: example.com"]
    fields += [
        b"X-%d: %s" % (i, value.encode())
        for i, value in enumerate(draw(st.lists(st.text("xyz ,;", max_size=8), max_size=3)))
    ]
    body = draw(st.binary(max_size=40))
    framing = draw(st.sampled_from(["length", "chunked"] if body else ["none", "length"]))
    payload = b""
    if framing == "length":
        fields.append(b"Content-Length: %d" % len(body))
        payload = body
    elif framing == "chunked":
        fields.append(b"Transfer-Encoding: chunked")
        pieces = [piece for piece in split(body, draw(st.lists(st.integers(0, 40)))) if piece]
        payload = b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces)
        payload += b"0\r\n\r\n"
    leading = draw(st.sampled_from([b"", b"", b"\r\n"]))
    head = method + b" " + target + b" HTTP/1.1" + eol + b"".join(f + eol for f in fields) + eol
    return leading + head + payload


@st.composite
def streams(draw: st.DrawFn) -> bytes:
    data = b"".join(draw(st.lists(plain_requests(), min_size=1, max_size=4)))
    tail = draw(
        st.sampled_from(
            [
                b"",
                RFC_REQUEST,
                RFC_REQUEST + b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58",
                b"GET / HTTP/3\r\n\r\n",
                b"\x16\x03\x01",
                b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\ntruncated",
                b"POST / HTTP/1.1\r\nHost: x\r\n" + b"X: " + b"v" * 70 + b"\r\n\r\n",
                request(method="POST", fields=[("Host", "x"), ("Content-Length", "17")]),
            ]
        )
    )
    return data + tail


@settings(max_examples=300, deadline=None)
@given(streams(), st.lists(st.integers(min_value=0), max_size=30))
def test_any_split_gives_the_same_events(data: bytes, points: list[int]) -> None:
    whole = drive([data], SMALL)
    assert whole[0][:-1], "every stream holds at least one event"
    assert drive(split(data, points), SMALL) == whole


@settings(max_examples=200, deadline=None)
@given(streams(), st.lists(st.integers(min_value=0), max_size=30))
def test_streamed_bodies_tell_the_same_story_whatever_the_split(
    data: bytes, points: list[int]
) -> None:
    assert drive(split(data, points), SMALL, streamed=True) == drive([data], SMALL)


@st.composite
def mutated_streams(draw: st.DrawFn) -> bytes:
    """A valid stream with a few bytes replaced, inserted or deleted."""
    alphabet = b'\r\n :;,/"\\\t0aZ\x00\x80\xffGETHP1.-='
    return mutate(draw, draw(streams()), alphabet, edits=(1, 6), run=5)


@settings(max_examples=300, deadline=None)
@given(mutated_streams(), st.lists(st.integers(min_value=0), max_size=30))
def test_any_split_of_broken_input_gives_the_same_events(data: bytes, points: list[int]):
    # Errors too: the same status and reason, whatever the split.
    assert drive(split(data, points), SMALL) == drive([data], SMALL)
    assert drive(split(data, points), SMALL, streamed=True) == drive([data], SMALL)


def test_first_broken_limit_wins_whatever_the_split() -> None:
    # The 9th field line breaks max_headers (8) at its LF, but the head
    # grew past max_head_size (256) earlier in that same line: fed whole or
    # byte by byte, the answer names the head size.
    head = b"GET / HTTP/1.1\r\n" + b"".join(b"X: %s\r\n" % (b"v" * 24) for _ in range(8))
    head += b"Y: " + b"w" * 30 + b"\r\n\r\n"
    assert len(head) > SMALL.max_head_size
    whole = drive([head], SMALL)
    assert whole[0][0] == RequestRejected(status=431, reason="request head too large")
    assert drive(bytewise(head), SMALL) == whole


@settings(max_examples=25, deadline=None)
@given(streams())
def test_byte_by_byte_gives_the_same_events(data: bytes) -> None:
    assert drive([data[i : i + 1] for i in range(len(data))], SMALL) == drive([data], SMALL)


# --------------------------------------------------------------------------
# Linear time: work is counted, never timed


def bytewise(data: bytes) -> Iterator[bytes]:
    return (data[i : i + 1] for i in range(len(data)))


class H11Spy:
    """Counts what h11 is given: it must see each head once, whole."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.fed: list[int] = []
        self.next_event_calls = 0
        receive_data = h11.Connection.receive_data
        next_event = h11.Connection.next_event

        def spy_receive(conn: h11.Connection, data: bytes) -> None:
            self.fed.append(len(data))
            receive_data(conn, data)

        def spy_next(conn: h11.Connection):
            self.next_event_calls += 1
            return next_event(conn)

        monkeypatch.setattr(h11.Connection, "receive_data", spy_receive)
        monkeypatch.setattr(h11.Connection, "next_event", spy_next)


def test_60k_head_fed_byte_by_byte_is_scanned_once(monkeypatch: pytest.MonkeyPatch) -> None:
    limits = ProtocolSettings()
    head = head_of(60 * 1024, limits)
    spy = H11Spy(monkeypatch)
    phase = HTTPPhase(limits)
    for byte in bytewise(head):
        phase.receive_data(byte)
    event = phase.next_event()
    assert isinstance(event, HTTPRequest)
    assert len(event.headers) > 1
    # Every byte is searched once for a line end, and the request line once
    # more for its version.
    assert phase.bytes_examined <= len(head) + limits.max_request_line
    assert phase.bytes_examined >= len(head)
    # h11 is handed the head once, in one piece, and asked about it twice
    # (the request, then the end of its empty body).
    assert spy.fed == [len(head)]
    assert spy.next_event_calls <= 3


@pytest.mark.parametrize("eol", EOLS)
def test_scanning_work_grows_linearly(eol: bytes) -> None:
    limits = ProtocolSettings(max_head_size=1 << 20, max_header_line=1 << 20, max_headers=100_000)

    def work(size: int, lines: bool) -> int:
        # One long header line, or many short ones: both must be linear.
        if lines:
            count = size // 8
            head = b"GET / HTTP/1.1" + eol + b"Host: x" + eol + (b"X: 1" + eol) * count + eol
        else:
            head = b"GET / HTTP/1.1" + eol + b"X: " + b"v" * size + eol + b"Host: x" + eol + eol
        phase = HTTPPhase(limits)
        for byte in bytewise(head):
            phase.receive_data(byte)
        assert isinstance(phase.next_event(), HTTPRequest)
        return phase.bytes_examined

    for lines in (False, True):
        small, large = work(16 * 1024, lines), work(64 * 1024, lines)
        assert 3.5 * small <= large <= 4.5 * small


def test_chunked_body_fed_byte_by_byte(monkeypatch: pytest.MonkeyPatch) -> None:
    # Bytes given to h11 stay proportional to the input: nothing is handed
    # over twice except what h11 read past the end of a chunked body.
    limits = ProtocolSettings()
    body = b"".join(b"10\r\n" + b"z" * 16 + b"\r\n" for _ in range(1000)) + b"0\r\n\r\n"
    head = request(method="POST", fields=[("Host", "x"), ("Transfer-Encoding", "chunked")])
    spy = H11Spy(monkeypatch)
    phase = HTTPPhase(limits)
    for byte in bytewise(head + body + request(target="/next")):
        phase.receive_data(byte)
    event = phase.next_event()
    assert isinstance(event, HTTPRequest)
    assert event.body == b"z" * 16_000
    assert sum(spy.fed) == len(head) + len(body)
    phase.send_response(200)
    assert isinstance(phase.next_event(), HTTPRequest)


# --------------------------------------------------------------------------
# Differential: a real client


class TestAgainstWsproto:
    def client_request(self) -> tuple[WSConnection, bytes]:
        client = WSConnection(ConnectionType.CLIENT)
        data = client.send(
            WsprotoRequest(
                host="example.com",
                target="/chat?room=1",
                subprotocols=["chat", "superchat"],
                extensions=[PerMessageDeflate()],
                extra_headers=[(b"Origin", b"https://example.com")],
            )
        )
        return client, data

    def test_wsproto_request_is_accepted_and_our_101_accepted_back(self) -> None:
        client, data = self.client_request()
        phase = receive(data)
        event = phase.next_event()
        assert isinstance(event, WebSocketRequest)
        assert event.target == "/chat?room=1"
        assert event.subprotocols == ("chat", "superchat")
        assert [offer.name for offer in event.extensions] == ["permessage-deflate"]
        assert ("origin", "https://example.com") in event.headers
        assert phase.accept("superchat", "permessage-deflate") == b""
        client.receive_data(output(phase))
        events = list(client.events())
        assert len(events) == 1
        assert isinstance(events[0], AcceptConnection)
        assert events[0].subprotocol == "superchat"
        assert [ext.name for ext in events[0].extensions] == ["permessage-deflate"]

    def test_split_byte_by_byte(self) -> None:
        client, data = self.client_request()
        phase = HTTPPhase(ProtocolSettings())
        for byte in bytewise(data):
            phase.receive_data(byte)
        assert isinstance(phase.next_event(), WebSocketRequest)
        phase.accept(None, None)
        client.receive_data(output(phase))
        assert isinstance(next(client.events()), AcceptConnection)

    def test_wsproto_reads_our_rejection(self) -> None:
        client, data = self.client_request()
        phase = receive(data)
        phase.next_event()
        phase.reject(403, (("Content-Type", "text/plain"),), b"go away")
        client.receive_data(output(phase))
        events = list(client.events())
        assert isinstance(events[0], RejectConnection)
        assert events[0].status_code == 403
        assert b"".join(e.data for e in events if isinstance(e, RejectData)) == b"go away"

    def test_wsproto_reads_our_automatic_rejection(self) -> None:
        client, data = self.client_request()
        phase = receive(data.replace(b"Sec-WebSocket-Version: 13", b"Sec-WebSocket-Version: 8"))
        assert isinstance(phase.next_event(), RequestRejected)
        client.receive_data(output(phase))
        events = list(client.events())
        assert isinstance(events[0], RejectConnection)
        assert events[0].status_code == 426
        assert (b"sec-websocket-version", b"13") in events[0].headers
