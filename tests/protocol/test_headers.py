"""Tests for the handshake's header parsers (RFC 9110 section 5.6, RFC 6455 section 9.1)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.headers import parse_connection, parse_extension

from wsserver.protocol.exceptions import HandshakeError, LocalProtocolError
from wsserver.protocol.headers import (
    ExtensionOffer,
    format_extension,
    is_token,
    parse_extension_offers,
    parse_token_list,
)

from ._interpreted import module as interpreted_module

TCHARS = "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


class CountingStr(str):
    """A str that counts how often it is indexed: the parsers' unit of work."""

    reads = 0

    def __getitem__(self, key):
        CountingStr.reads += 1
        return super().__getitem__(key)


# Counted on the source run by the interpreter: CountingStr sees no reads
# made by compiled code (tests/protocol/_interpreted.py).
INTERPRETED = interpreted_module("headers")
INTERPRETED_ERROR = interpreted_module("exceptions").HandshakeError


def count_reads(parse: Callable[..., object], value: str) -> int:
    """Index operations the source of ``parse`` makes on ``value``, errors included."""
    CountingStr.reads = 0
    with contextlib.suppress(HandshakeError, INTERPRETED_ERROR):
        getattr(INTERPRETED, parse.__name__)([CountingStr(value)])
    return CountingStr.reads


# --------------------------------------------------------------------------
# parse_token_list


class TestTokenList:
    """RFC 9110 section 5.6.1 lists of tokens (Connection, Upgrade, subprotocols)."""

    def test_single_token(self) -> None:
        assert parse_token_list(["websocket"]) == ["websocket"]

    def test_commas_and_optional_whitespace(self) -> None:
        assert parse_token_list(["keep-alive,Upgrade , \tclose"]) == [
            "keep-alive",
            "Upgrade",
            "close",
        ]

    def test_empty_elements_are_skipped(self) -> None:
        # "a recipient MUST accept empty list elements"
        assert parse_token_list([", a, , b,,", ",", ""]) == ["a", "b"]

    def test_several_header_values_form_one_list(self) -> None:
        assert parse_token_list(["chat, superchat", "v2.chat"]) == ["chat", "superchat", "v2.chat"]

    def test_no_values(self) -> None:
        assert parse_token_list([]) == []

    def test_case_is_kept(self) -> None:
        assert parse_token_list(["WebSocket"]) == ["WebSocket"]

    def test_protocol_version_kept_whole(self) -> None:
        # RFC 9110 section 7.8: protocol = protocol-name ["/" protocol-version]
        assert parse_token_list(["HTTP/2.0, SHTTP/1.3, IRC/6.9, RTA/x11, websocket"]) == [
            "HTTP/2.0",
            "SHTTP/1.3",
            "IRC/6.9",
            "RTA/x11",
            "websocket",
        ]

    def test_every_tchar(self) -> None:
        assert parse_token_list([TCHARS]) == [TCHARS]

    @pytest.mark.parametrize(
        "value",
        [
            "a b",  # two tokens without a comma
            "a;b",
            "a=b",
            '"quoted"',
            "caf\u00e9",  # obs-text is not a tchar
            "a/",  # "/" needs a token on both sides
            "/b",
            "a/b/c",
            "a\x00",
            "(comment)",
        ],
    )
    def test_non_token_characters_are_400(self, value: str) -> None:
        with pytest.raises(HandshakeError) as info:
            parse_token_list([value])
        assert info.value.status == 400
        assert "invalid token list" in info.value.reason

    def test_error_in_a_later_value(self) -> None:
        with pytest.raises(HandshakeError):
            parse_token_list(["fine", "not fine"])

    @settings(max_examples=200, deadline=None)
    @given(
        st.lists(
            st.tuples(
                st.text(" \t", max_size=2),
                st.text(TCHARS, min_size=1, max_size=8),
                st.text(" \t", max_size=2),
            ),
            min_size=1,
            max_size=6,
        )
    )
    def test_agrees_with_websockets(self, items: list[tuple[str, str, str]]) -> None:
        # h11 strips OWS around a whole field value, and so does websockets.
        value = ",".join(before + token + after for before, token, after in items).strip(" \t")
        assert parse_token_list([value]) == parse_connection(value)

    def test_linear_time_on_commas(self) -> None:
        small = count_reads(parse_token_list, ", " * 25_000)
        large = count_reads(parse_token_list, ", " * 100_000)
        assert small > 50_000  # the counter does see the reads
        assert large <= 4.5 * small


# --------------------------------------------------------------------------
# parse_extension_offers


class TestExtensionOffers:
    """RFC 6455 section 9.1: Sec-WebSocket-Extensions."""

    def test_name_only(self) -> None:
        assert parse_extension_offers(["permessage-deflate"]) == [
            ExtensionOffer(name="permessage-deflate")
        ]

    def test_chrome_offer(self) -> None:
        assert parse_extension_offers(["permessage-deflate; client_max_window_bits"]) == [
            ExtensionOffer(name="permessage-deflate", params=(("client_max_window_bits", None),))
        ]

    def test_token_values_and_whitespace(self) -> None:
        assert parse_extension_offers(["x ;a=1;  b = two\t;c"]) == [
            ExtensionOffer(name="x", params=(("a", "1"), ("b", "two"), ("c", None)))
        ]

    def test_quoted_value_is_unquoted(self) -> None:
        assert parse_extension_offers(['x; client_max_window_bits="10"']) == [
            ExtensionOffer(name="x", params=(("client_max_window_bits", "10"),))
        ]

    def test_quoted_value_with_escapes(self) -> None:
        # quoted-pair = "\" CHAR: the backslash goes, the character stays.
        assert parse_extension_offers([r'x; a="\1\0", b; c="\a\-b"']) == [
            ExtensionOffer(name="x", params=(("a", "10"),)),
            ExtensionOffer(name="b", params=(("c", "a-b"),)),
        ]

    def test_several_offers_in_one_value(self) -> None:
        value = (
            "permessage-deflate; client_max_window_bits=10, "
            "permessage-deflate; client_max_window_bits, x-webkit-deflate-frame"
        )
        assert parse_extension_offers([value]) == [
            ExtensionOffer(name="permessage-deflate", params=(("client_max_window_bits", "10"),)),
            ExtensionOffer(name="permessage-deflate", params=(("client_max_window_bits", None),)),
            ExtensionOffer(name="x-webkit-deflate-frame"),
        ]

    def test_several_headers(self) -> None:
        assert parse_extension_offers(["a; p", "b", "c, d"]) == [
            ExtensionOffer(name="a", params=(("p", None),)),
            ExtensionOffer(name="b"),
            ExtensionOffer(name="c"),
            ExtensionOffer(name="d"),
        ]

    def test_empty_elements_are_skipped(self) -> None:
        assert parse_extension_offers([", a ,, b ,"]) == [
            ExtensionOffer(name="a"),
            ExtensionOffer(name="b"),
        ]

    def test_duplicates_and_case_are_kept(self) -> None:
        assert parse_extension_offers(["X; A=1; a=2"]) == [
            ExtensionOffer(name="X", params=(("A", "1"), ("a", "2")))
        ]

    def test_no_header(self) -> None:
        assert parse_extension_offers([]) == []

    @pytest.mark.parametrize("value", ["", "  ", " , ,"])
    def test_a_value_with_no_offer_offers_nothing(self, value: str) -> None:
        # Breaks section 9.1's 1#extension, but websockets' client sends an
        # empty value when it has no extension to offer: refusing it with 400
        # would refuse a real client for offering nothing.
        assert parse_extension_offers([value]) == []
        assert parse_extension_offers([value, "a"]) == [ExtensionOffer(name="a")]

    @pytest.mark.parametrize(
        "value",
        [
            ";",
            "a;",
            "a; ;b",
            "a b",
            "a=1",
            "a; b=",
            "a; b=,",
            "a; =1",
            "a; b==1",
            "a; b=1 2",
            'a; b="1',  # unterminated
            'a; b="1\\',  # unterminated escape
            'a; b="a b"',  # unquoted value is not a token
            'a; b=""',  # nor is an empty one
            'a; b="a,b"',
            'a; b="\x01"',  # control character inside quotes
            '"a"',  # the name cannot be quoted
            "a; b=1; c=\u00e9",
            "a; b=\x00",
            "a, b c",
        ],
    )
    def test_bad_syntax_is_400(self, value: str) -> None:
        with pytest.raises(HandshakeError) as info:
            parse_extension_offers([value])
        assert info.value.status == 400
        assert info.value.reason.startswith("invalid Sec-WebSocket-Extensions header: ")

    def test_error_in_second_header(self) -> None:
        with pytest.raises(HandshakeError):
            parse_extension_offers(["a", "b;"])

    def test_error_does_not_echo_the_value(self) -> None:
        with pytest.raises(HandshakeError) as info:
            parse_extension_offers(["a" * 5000 + " b"])
        assert len(info.value.reason) < 200

    @settings(max_examples=300, deadline=None)
    @given(
        st.lists(
            st.tuples(
                st.text(TCHARS, min_size=1, max_size=6),
                st.lists(
                    st.tuples(
                        st.text(TCHARS, min_size=1, max_size=6),
                        st.one_of(
                            st.none(),
                            st.text(TCHARS, min_size=1, max_size=6),
                            st.text(TCHARS, min_size=1, max_size=6).map(
                                lambda v: '"' + "".join("\\" + c for c in v) + '"'
                            ),
                        ),
                    ),
                    max_size=4,
                ),
            ),
            min_size=1,
            max_size=4,
        ),
        st.sampled_from(["", " ", "\t "]),
    )
    def test_agrees_with_websockets(self, offers, space: str) -> None:
        value = f"{space},{space}".join(
            name
            + "".join(
                f"{space};{space}{param}" + ("" if arg is None else f"{space}={space}{arg}")
                for param, arg in params
            )
            for name, params in offers
        )
        expected = [
            ExtensionOffer(name=name, params=tuple(params))
            for name, params in parse_extension(value)
        ]
        assert parse_extension_offers([value]) == expected


class TestExtensionParserIsLinear:
    """100 KB of pathological input costs a bounded number of reads per character.

    Counted, not timed: ``CountingStr`` counts every index operation.
    """

    @pytest.mark.parametrize(
        ("prefix", "unit"),
        [
            ("", "a;"),  # an endless parameter list, then a missing name
            ("", '"\\'),  # `"\` * n: refused at once (a name cannot be quoted)
            ("x; y=", '"\\'),  # one quoted-string of escaped quotes, never closed
            ('x; y="', "\\a"),  # escape after escape, never closed
            ("", "a;b="),
            ("", ", "),
            ("", " "),
            ("", "a,"),
            ("a", ";b=c"),
            ("a", ';b="c"'),
        ],
    )
    def test_pathological_input(self, prefix: str, unit: str) -> None:
        value = prefix + unit * (100_000 // len(unit))
        reads = count_reads(parse_extension_offers, value)
        assert reads > 0
        # Each character is read a small, fixed number of times.
        assert reads <= 8 * len(value)

    @pytest.mark.parametrize(
        ("prefix", "unit"),
        [("", "a;"), ("x; y=", '"\\'), ('x; y="', "\\a"), ("", "a; b=c, "), ("", ", ")],
    )
    def test_work_grows_linearly(self, prefix: str, unit: str) -> None:
        small = count_reads(parse_extension_offers, prefix + unit * 10_000)
        large = count_reads(parse_extension_offers, prefix + unit * 40_000)
        assert small >= 10_000  # these inputs are read to the end
        assert 3.5 * small <= large <= 4.5 * small

    def test_long_valid_input(self) -> None:
        value = "a" + "; b" * 30_000
        offers = parse_extension_offers([value])
        assert len(offers) == 1
        assert len(offers[0].params) == 30_000


# --------------------------------------------------------------------------
# format_extension and is_token


class TestFormatExtension:
    def test_name_only(self) -> None:
        assert format_extension("permessage-deflate") == "permessage-deflate"

    def test_params(self) -> None:
        assert (
            format_extension(
                "permessage-deflate",
                [("server_no_context_takeover", None), ("client_max_window_bits", "10")],
            )
            == "permessage-deflate; server_no_context_takeover; client_max_window_bits=10"
        )

    def test_round_trip(self) -> None:
        params = (("a", None), ("b", "1"), ("c", "x-y"))
        value = format_extension("ext", params)
        assert parse_extension_offers([value]) == [ExtensionOffer(name="ext", params=params)]

    @pytest.mark.parametrize(
        ("name", "params"),
        [
            ("", ()),
            ("a b", ()),
            ("ext", (("", None),)),
            ("ext", (("p q", None),)),
            ("ext", (("p", "needs quoting"),)),
            ("ext", (("p", ""),)),
        ],
    )
    def test_non_tokens_are_local_errors(self, name, params) -> None:
        with pytest.raises(LocalProtocolError):
            format_extension(name, params)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("websocket", True), (TCHARS, True), ("", False), ("a b", False), ("\u00e9", False)],
)
def test_is_token(value: str, expected: bool) -> None:
    assert is_token(value) is expected


# -- remembered parses ---------------------------------------------------------


def test_a_remembered_parse_is_the_same_and_not_shared() -> None:
    first = parse_token_list(["keep-alive, Upgrade"])
    first.append("mutated by the caller")
    assert parse_token_list(["keep-alive, Upgrade"]) == ["keep-alive", "Upgrade"]
    value = "permessage-deflate; client_max_window_bits, x-other"
    offers = parse_extension_offers([value])
    offers.clear()
    again = parse_extension_offers([value, value])
    assert [offer.name for offer in again] == ["permessage-deflate", "x-other"] * 2


def test_errors_are_not_remembered() -> None:
    for _ in range(2):
        with pytest.raises(HandshakeError):
            parse_token_list(["a b"])
        with pytest.raises(HandshakeError):
            parse_extension_offers(["x; ="])


def test_the_memory_of_parses_is_bounded() -> None:
    from wsserver.protocol import headers

    for index in range(3 * headers._MEMO_SIZE):
        assert parse_token_list([f"t{index}"]) == [f"t{index}"]
        assert parse_extension_offers([f"e{index}"])[0].name == f"e{index}"
    assert len(headers._TOKEN_LISTS) <= headers._MEMO_SIZE
    assert len(headers._EXTENSION_LISTS) <= headers._MEMO_SIZE
    long_value = "t" * (headers._MEMO_VALUE + 1)
    assert parse_token_list([long_value]) == [long_value]
    assert long_value not in headers._TOKEN_LISTS
