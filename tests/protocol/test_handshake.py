"""The opening handshake's rules, called directly (RFC 6455 section 4).

tests/protocol/test_http.py drives the same rules through raw request bytes;
these tests pin each rule and its status to the function that enforces it.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from wsproto.utilities import generate_accept_token

from wsserver.protocol.events import Headers, WebSocketRequest
from wsserver.protocol.exceptions import HandshakeError
from wsserver.protocol.handshake import (
    ACCEPT_GUID,
    accept_token,
    client_key,
    header_values,
    is_upgrade_attempt,
    validate_handshake,
)
from wsserver.protocol.headers import ExtensionOffer

KEY = "dGhlIHNhbXBsZSBub25jZQ=="

VALID: Headers = (
    ("host", "server.example.com"),
    ("upgrade", "websocket"),
    ("connection", "Upgrade"),
    ("sec-websocket-key", KEY),
    ("origin", "http://example.com"),
    ("sec-websocket-protocol", "chat, superchat"),
    ("sec-websocket-version", "13"),
)


def replace(headers: Headers, name: str, *values: str) -> Headers:
    """``headers`` with every ``name`` field replaced by ``values``."""
    kept = tuple(field for field in headers if field[0] != name)
    return kept + tuple((name, value) for value in values)


def status_of(headers: Headers, method: bytes = b"GET", version: bytes = b"1.1") -> int:
    with pytest.raises(HandshakeError) as info:
        validate_handshake(method, version, b"/chat", headers)
    return info.value.status


class TestAcceptToken:
    def test_rfc_section_1_3_example(self) -> None:
        assert accept_token(KEY) == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

    def test_guid_is_the_rfcs(self) -> None:
        assert ACCEPT_GUID == "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

    @given(st.binary(min_size=16, max_size=16))
    def test_agrees_with_wsproto(self, raw: bytes) -> None:
        import base64

        key = base64.b64encode(raw).decode()
        assert accept_token(key) == generate_accept_token(key.encode()).decode()


class TestUpgradeAttempt:
    @pytest.mark.parametrize(
        "headers",
        [
            (("upgrade", "websocket"),),
            (("upgrade", "h2c, WebSocket"),),
            (("sec-websocket-key", "x"),),
            (("sec-websocket-version", "13"),),
            (("upgrade", "x y, websocket"),),  # malformed still classifies
        ],
    )
    def test_anything_naming_websocket_is_an_attempt(self, headers: Headers) -> None:
        assert is_upgrade_attempt(headers)

    @pytest.mark.parametrize(
        "headers", [(), (("host", "x"),), (("upgrade", "h2c"), ("connection", "upgrade"))]
    )
    def test_other_requests_are_plain_http(self, headers: Headers) -> None:
        assert not is_upgrade_attempt(headers)


class TestSection4_2_1:
    def test_valid_request_gives_the_event_and_the_key(self) -> None:
        event, key = validate_handshake(b"GET", b"1.1", b"/chat?x=1", VALID)
        assert key == KEY
        assert event == WebSocketRequest(
            target="/chat?x=1",
            headers=VALID,
            subprotocols=("chat", "superchat"),
            extensions=(),
        )

    def test_extension_offers_are_parsed_in_order(self) -> None:
        headers = (
            *VALID,
            ("sec-websocket-extensions", "permessage-deflate; client_max_window_bits"),
            ("sec-websocket-extensions", "x-other"),
        )
        event, _ = validate_handshake(b"GET", b"1.1", b"/", headers)
        assert event.extensions == (
            ExtensionOffer(name="permessage-deflate", params=(("client_max_window_bits", None),)),
            ExtensionOffer(name="x-other"),
        )

    def test_1_method_must_be_get_with_allow(self) -> None:
        with pytest.raises(HandshakeError) as info:
            validate_handshake(b"POST", b"1.1", b"/", VALID)
        assert info.value.status == 405
        assert ("Allow", "GET") in info.value.headers

    def test_1_http_1_0_is_505(self) -> None:
        assert status_of(VALID, version=b"1.0") == 505

    def test_2_host_is_required(self) -> None:
        assert status_of(replace(VALID, "host")) == 400

    @pytest.mark.parametrize("values", [(), ("h2c",), ("websocket2",)])
    def test_3_upgrade_must_name_websocket(self, values: tuple[str, ...]) -> None:
        assert status_of(replace(VALID, "upgrade", *values)) == 400

    def test_3_upgrade_is_case_insensitive(self) -> None:
        validate_handshake(b"GET", b"1.1", b"/", replace(VALID, "upgrade", "WebSocket"))

    @pytest.mark.parametrize("values", [(), ("keep-alive",), ("upgraded",)])
    def test_4_connection_must_hold_upgrade(self, values: tuple[str, ...]) -> None:
        assert status_of(replace(VALID, "connection", *values)) == 400

    @pytest.mark.parametrize("values", [("keep-alive, Upgrade",), ("keep-alive", "UPGRADE")])
    def test_4_connection_token_anywhere_in_the_list(self, values: tuple[str, ...]) -> None:
        validate_handshake(b"GET", b"1.1", b"/", replace(VALID, "connection", *values))

    @pytest.mark.parametrize(
        "values",
        [
            (),
            (KEY, KEY),  # section 11.3.1: "MUST NOT appear more than once"
            ("AAAAAAAAAAAAAAAAAAAAAA",),  # missing padding
            ("AAAAAAAAAAAAAAAAAAAA",),  # 15 bytes
            ("AAAAAAAAAAAAAAAAAAAAAAAA",),  # 18 bytes
            ("dGhlIHNhbXBsZSBub25jZQ==\x00",),
            ("!GhlIHNhbXBsZSBub25jZQ==",),
        ],
    )
    def test_5_key_is_base64_of_16_bytes_once(self, values: tuple[str, ...]) -> None:
        assert status_of(replace(VALID, "sec-websocket-key", *values)) == 400

    @pytest.mark.parametrize("values", [(), ("8",), ("13, 8",), ("13", "13"), ("14",)])
    def test_6_version_13_else_426_naming_13(self, values: tuple[str, ...]) -> None:
        with pytest.raises(HandshakeError) as info:
            validate_handshake(
                b"GET", b"1.1", b"/", replace(VALID, "sec-websocket-version", *values)
            )
        assert info.value.status == 426
        assert ("Sec-WebSocket-Version", "13") in info.value.headers

    @pytest.mark.parametrize(
        "extra", [(("content-length", "3"),), (("transfer-encoding", "chunked"),)]
    )
    def test_a_body_is_refused(self, extra: Headers) -> None:
        assert status_of(VALID + extra) == 400

    def test_content_length_zero_is_no_body(self) -> None:
        validate_handshake(b"GET", b"1.1", b"/", (*VALID, ("content-length", "0")))

    def test_8_subprotocols_are_tokens_without_slash(self) -> None:
        assert status_of(replace(VALID, "sec-websocket-protocol", "chat/1")) == 400

    def test_9_malformed_extensions_are_400(self) -> None:
        assert status_of((*VALID, ("sec-websocket-extensions", "a; b=1 2"))) == 400


def test_header_values_keeps_order_and_duplicates() -> None:
    headers: Headers = (("a", "1"), ("b", "2"), ("a", "3"))
    assert header_values(headers, "a") == ["1", "3"]
    assert header_values(headers, "c") == []


def test_client_key_is_the_base64_of_16_bytes() -> None:
    # RFC 6455 section 1.3's example nonce and key.
    assert client_key(b"the sample nonce") == "dGhlIHNhbXBsZSBub25jZQ=="
    with pytest.raises(ValueError, match="16 bytes"):
        client_key(b"short")
