"""Parsers for the header values the handshake reads (RFC 6455 section 9.1,
RFC 9110 section 5.6), and the serialiser for the one it writes.

Both parsers are hand-written scanners that walk each value once, index by
index, and never step back: their running time is linear in the input
whatever the peer sends.  A regular expression with nested quantifiers would
be shorter, and a ``"\\`` repeated a hundred thousand times would make it
backtrack for minutes; that is the whole reason this module exists.

A value the grammar rejects raises ``HandshakeError(400, ...)``: RFC 6455
section 4.2.1 asks for "an HTTP response with an appropriate error code (such
as 400 Bad Request)" on "any violations of the ABNF grammar specified for the
components of the handshake".
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypeVar

from .exceptions import HandshakeError, LocalProtocolError

_T = TypeVar("_T")

__all__ = [
    "ExtensionOffer",
    "format_extension",
    "is_token",
    "parse_extension_offers",
    "parse_token_list",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class ExtensionOffer:
    """One extension offer from ``Sec-WebSocket-Extensions``.

    Attributes:
        name: the extension token, as sent (compare case-insensitively).
        params: ``(name, value)`` pairs in order; ``value`` is ``None`` for a
            parameter without a value, and quoted-string values are unquoted.
            Duplicates are kept: judging them is the extension's business.
    """

    name: str
    params: tuple[tuple[str, str | None], ...] = ()


# RFC 9110 section 5.6.2:
#   token = 1*tchar
#   tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." /
#           "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA
# Spelled out rather than str.isalnum(), which accepts every Unicode letter.
_TCHAR = frozenset("!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")

# RFC 9110 section 5.6.3: OWS = *( SP / HTAB ).
_OWS = frozenset(" \t")

# RFC 9110 section 5.6.4, the characters a quoted-string may hold:
#   qdtext      = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text
#   quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text )
# Values are decoded as ISO-8859-1, so obs-text (%x80-FF) is U+0080-U+00FF.
# Whatever is unquoted must then be a token (RFC 6455 section 9.1), so only
# the framing matters here; the token check comes after.
_VCHAR = "".join(map(chr, range(0x21, 0x7F)))
_OBS_TEXT = "".join(map(chr, range(0x80, 0x100)))
_QUOTED_PAIR = frozenset("\t " + _VCHAR + _OBS_TEXT)
_QDTEXT = _QUOTED_PAIR - {'"', "\\"}


def is_token(value: str) -> bool:
    """Tell whether ``value`` is an RFC 9110 token (one or more tchars)."""
    return bool(value) and all(char in _TCHAR for char in value)


def _skip_ows(value: str, index: int) -> int:
    end = len(value)
    while index < end and value[index] in _OWS:
        index += 1
    return index


def _skip_token(value: str, index: int) -> int:
    end = len(value)
    while index < end and value[index] in _TCHAR:
        index += 1
    return index


def _describe(value: str, index: int) -> str:
    # Say where the scanner stopped without echoing the peer's whole header
    # back: one character is enough to find the mistake.
    if index >= len(value):
        return "at the end"
    return f"{value[index]!r} at position {index}"


def parse_token_list(values: list[str]) -> list[str]:
    """Parse comma-separated token lists spread over several header values.

    RFC 9110 section 5.6.1 defines ``#element`` lists: elements separated by
    commas with optional whitespace around them, where "a recipient MUST
    accept empty list elements" (``"a, , b"``, a leading or trailing comma);
    they are skipped.  Several header fields with the same name form one list
    (section 5.3).

    Each element is a token, or ``token "/" token``, so that the same
    function reads ``Upgrade`` (RFC 9110 section 7.8: ``protocol-name ["/"
    protocol-version]``, e.g. ``HTTP/2.0``), kept whole, as well as
    ``Connection`` and ``Sec-WebSocket-Protocol``.

    Args:
        values: the header values, in order.

    Returns:
        The elements, in order, as sent (compare case-insensitively where
        the header calls for it).

    Raises:
        HandshakeError: 400, on a character that fits nowhere in the grammar.
    """
    result: list[str] = []
    for value in values:
        elements = _TOKEN_LISTS.get(value)
        if elements is None:
            elements = _parse_token_value(value)
            _remember(_TOKEN_LISTS, value, elements)
        result += elements
    return result


# Handshakes repeat the same few header values (every client of one kind
# sends the same Upgrade, Connection and Sec-WebSocket-Extensions), and
# parsing one is a walk over its characters in Python.  So the parse of a
# short value is remembered: at most _MEMO_SIZE values of at most
# _MEMO_VALUE characters per parser, forgotten all at once when full (a
# client sending ever new values only makes every parse a miss).  Errors
# are not remembered: the value is parsed again, and refused again.
_MEMO_SIZE = 256
_MEMO_VALUE = 256
_TOKEN_LISTS: dict[str, tuple[str, ...]] = {}


def _remember(memo: dict[str, _T], value: str, parsed: _T) -> None:
    if len(value) <= _MEMO_VALUE:
        if len(memo) >= _MEMO_SIZE:
            memo.clear()
        memo[value] = parsed


def _parse_token_value(value: str) -> tuple[str, ...]:
    result: list[str] = []
    end = len(value)
    index = 0
    while True:
        index = _skip_ows(value, index)
        if index == end:
            break
        if value[index] == ",":
            # An empty element, or the separator after the last one.
            index += 1
            continue
        start = index
        index = _skip_token(value, index)
        if index == start:
            raise HandshakeError(
                400, f"invalid token list: expected a token, found {_describe(value, index)}"
            )
        if index < end and value[index] == "/":
            after_slash = index + 1
            index = _skip_token(value, after_slash)
            if index == after_slash:
                raise HandshakeError(
                    400,
                    "invalid token list: expected a token after '/', "
                    f"found {_describe(value, index)}",
                )
        result.append(value[start:index])
        index = _skip_ows(value, index)
        if index < end and value[index] != ",":
            raise HandshakeError(
                400, f"invalid token list: expected ',', found {_describe(value, index)}"
            )
    return tuple(result)


def _extension_error(value: str, index: int, expected: str) -> HandshakeError:
    return HandshakeError(
        400,
        f"invalid Sec-WebSocket-Extensions header: expected {expected}, "
        f"found {_describe(value, index)}",
    )


def _scan_quoted_string(value: str, index: int) -> tuple[str, int]:
    """Unquote the quoted-string opening at ``value[index]`` (a ``"``).

    Returns the unquoted text and the index just past the closing quote.
    """
    end = len(value)
    index += 1
    chars: list[str] = []
    while index < end:
        char = value[index]
        if char == '"':
            return "".join(chars), index + 1
        if char == "\\":
            index += 1
            if index == end or value[index] not in _QUOTED_PAIR:
                raise _extension_error(value, index, "a character after '\\'")
            chars.append(value[index])
        elif char in _QDTEXT:
            chars.append(char)
        else:
            raise _extension_error(value, index, "a quoted-string character")
        index += 1
    raise _extension_error(value, index, "a closing '\"'")


def _parse_extension_value(value: str) -> list[ExtensionOffer]:
    # RFC 6455 section 9.1, in RFC 2616 notation where implied *LWS may sit
    # between any two tokens or separators:
    #   extension-list  = 1#extension
    #   extension       = extension-token *( ";" extension-param )
    #   extension-param = token [ "=" (token | quoted-string) ]
    #       ;When using the quoted-string syntax variant, the value
    #       ;after quoted-string unescaping MUST conform to the
    #       ;'token' ABNF.
    offers: list[ExtensionOffer] = []
    end = len(value)
    index = 0
    while True:
        index = _skip_ows(value, index)
        if index == end:
            break
        if value[index] == ",":
            # RFC 9110 section 5.6.1: empty list elements are accepted and
            # do not count towards the 1# minimum.
            index += 1
            continue
        start = index
        index = _skip_token(value, index)
        if index == start:
            raise _extension_error(value, index, "an extension name")
        name = value[start:index]
        params: list[tuple[str, str | None]] = []
        index = _skip_ows(value, index)
        while index < end and value[index] == ";":
            index = _skip_ows(value, index + 1)
            start = index
            index = _skip_token(value, index)
            if index == start:
                raise _extension_error(value, index, "a parameter name")
            param_name = value[start:index]
            param_value: str | None = None
            index = _skip_ows(value, index)
            if index < end and value[index] == "=":
                index = _skip_ows(value, index + 1)
                if index < end and value[index] == '"':
                    quoted_at = index
                    param_value, index = _scan_quoted_string(value, index)
                    if not is_token(param_value):
                        raise HandshakeError(
                            400,
                            "invalid Sec-WebSocket-Extensions header: the quoted value at "
                            f"position {quoted_at} is not a token once unquoted "
                            "(RFC 6455 section 9.1)",
                        )
                else:
                    start = index
                    index = _skip_token(value, index)
                    if index == start:
                        raise _extension_error(value, index, "a parameter value")
                    param_value = value[start:index]
                index = _skip_ows(value, index)
            params.append((param_name, param_value))
        if index < end and value[index] != ",":
            raise _extension_error(value, index, "';' or ','")
        offers.append(ExtensionOffer(name=name, params=tuple(params)))
    # An empty value breaks section 9.1's "1#extension", but it offers
    # nothing, and real clients send it (websockets' client with an empty
    # extension list): taken as no offer, which is what it means.  RFC 9110
    # section 5.6.1.2 asks recipients to be lenient with empty list elements.
    return offers


def parse_extension_offers(values: list[str]) -> list[ExtensionOffer]:
    """Parse every ``Sec-WebSocket-Extensions`` header of a request.

    RFC 6455 section 9.1: each value is a non-empty comma-separated list of
    offers; each offer is a name followed by ``;``-separated parameters,
    each with an optional token or quoted-string value.  Section 9.1 also
    allows the header to be split: "the |Sec-WebSocket-Extensions| header
    field MAY appear multiple times in an HTTP request (which is logically
    the same as a single |Sec-WebSocket-Extensions| header field that
    contains all values".

    Args:
        values: the header values, in order.

    Returns:
        The offers, in the client's order of preference.

    Raises:
        HandshakeError: 400, when a value does not follow the grammar
            (including a quoted value that is not a token once unquoted).
            A value with no offer at all (empty, or only commas) is taken
            as no offer.
    """
    offers: list[ExtensionOffer] = []
    for value in values:
        parsed = _EXTENSION_LISTS.get(value)
        if parsed is None:
            # Offers are frozen: one tuple of them serves every request.
            parsed = tuple(_parse_extension_value(value))
            _remember(_EXTENSION_LISTS, value, parsed)
        offers += parsed
    return offers


_EXTENSION_LISTS: dict[str, tuple[ExtensionOffer, ...]] = {}


def format_extension(name: str, params: Iterable[tuple[str, str | None]] = ()) -> str:
    """Serialise one extension for a ``Sec-WebSocket-Extensions`` response.

    Values are written as bare tokens: section 9.1 requires every value to
    be a token anyway, so quoting would never be needed.

    Args:
        name: the extension name.
        params: ``(name, value)`` pairs; ``None`` writes the name alone.

    Returns:
        For example ``"permessage-deflate; server_no_context_takeover"``.

    Raises:
        LocalProtocolError: a name or a value is not a token.
    """
    if not is_token(name):
        raise LocalProtocolError(f"extension name {name!r} is not a token")
    parts = [name]
    for param_name, param_value in params:
        if not is_token(param_name):
            raise LocalProtocolError(f"extension parameter name {param_name!r} is not a token")
        if param_value is None:
            parts.append(param_name)
        elif is_token(param_value):
            parts.append(f"{param_name}={param_value}")
        else:
            raise LocalProtocolError(
                f"extension parameter value {param_value!r} is not a token (RFC 6455 section 9.1)"
            )
    return "; ".join(parts)
