"""The WebSocket opening handshake, as a server reads it (RFC 6455 section 4).

Which requests are handshakes, the checks of section 4.2.1 in the RFC's
order with the HTTP status each failure calls for, and the
``Sec-WebSocket-Accept`` computation of section 4.2.2.  The HTTP phase
(``http.py``) calls these on each parsed request head; nothing here parses
HTTP or holds state.
"""

from __future__ import annotations

import base64
import binascii
import hashlib

from .events import Headers, WebSocketRequest
from .exceptions import HandshakeError
from .headers import parse_extension_offers, parse_token_list

__all__ = [
    "ACCEPT_GUID",
    "accept_token",
    "header_values",
    "is_upgrade_attempt",
    "validate_handshake",
]

#: RFC 6455 section 1.3: the GUID the server appends to the client's key.
ACCEPT_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def accept_token(key: str) -> str:
    """Compute ``Sec-WebSocket-Accept`` for a ``Sec-WebSocket-Key``.

    RFC 6455 section 4.2.2, step 5.4: "concatenating /key/ ... with the
    string "258EAFA5-E914-47DA-95CA-C5AB0DC85B11", taking the SHA-1 hash of
    this concatenated value to obtain a 20-byte value and base64-encoding
    ... this 20-byte hash."

    Args:
        key: the ``Sec-WebSocket-Key`` value, as sent.

    Returns:
        The base64 text of the digest.
    """
    # SHA-1 proves here that the server read the handshake, nothing more:
    # say so, or FIPS-mode builds refuse the algorithm.
    digest = hashlib.sha1((key + ACCEPT_GUID).encode("latin-1"), usedforsecurity=False).digest()
    return base64.b64encode(digest).decode("ascii")


def header_values(headers: Headers, name: str) -> list[str]:
    """Every value of the header ``name`` (lowercase), in order."""
    return [value for field, value in headers if field == name]


def is_upgrade_attempt(headers: Headers) -> bool:
    """Whether a request is to be judged as a WebSocket opening handshake."""
    # A request that names WebSocket anywhere is judged as a handshake, so
    # that a broken one gets a precise error rather than a page.  The split
    # is lenient on purpose: a malformed Upgrade header still classifies,
    # and the strict parse in validate_handshake then rejects it.
    for name, value in headers:
        if name in ("sec-websocket-key", "sec-websocket-version"):
            return True
        if name == "upgrade" and any(
            token.strip().lower() == "websocket" for token in value.split(",")
        ):
            return True
    return False


def validate_handshake(
    method: bytes, http_version: bytes, target: bytes, headers: Headers
) -> tuple[WebSocketRequest, str]:
    """Validate an opening handshake: RFC 6455 section 4.2.1, in order.

    Args:
        method: the request method, as parsed.
        http_version: ``b"1.0"``, ``b"1.1"``...
        target: the request-target.
        headers: the request headers (names lowercase).

    Returns:
        The event, and the ``Sec-WebSocket-Key`` to answer.

    Raises:
        HandshakeError: the first requirement the request misses.
    """
    # Every field's values by name, in one pass over the headers.
    fields: dict[str, list[str]] = {}
    for name, value in headers:
        values = fields.get(name)
        if values is None:
            fields[name] = [value]
        else:
            values.append(value)
    none: list[str] = []
    # 1. "An HTTP/1.1 or higher GET request".  RFC 9110 section 15.5.6: a
    # 405 "MUST generate an Allow header field".
    if method != b"GET":
        raise HandshakeError(
            405, "a WebSocket handshake must use the GET method", (("Allow", "GET"),)
        )
    if http_version < b"1.1":
        raise HandshakeError(505, "a WebSocket handshake needs HTTP/1.1")
    # 2. "A |Host| header field containing the server's authority."  (h11
    # already insists on it for HTTP/1.1; this keeps the rule visible.)
    if not fields.get("host", none):
        raise HandshakeError(400, "missing Host header")
    # 3. "An |Upgrade| header field containing the value "websocket",
    # treated as an ASCII case-insensitive value."
    upgrade = parse_token_list(fields.get("upgrade", none))
    if not any(token.lower() == "websocket" for token in upgrade):
        raise HandshakeError(400, "missing 'websocket' in the Upgrade header")
    # 4. "A |Connection| header field that includes the token "Upgrade",
    # treated as an ASCII case-insensitive value."
    connection = parse_token_list(fields.get("connection", none))
    if not any(token.lower() == "upgrade" for token in connection):
        raise HandshakeError(400, "missing 'Upgrade' in the Connection header")
    # 5. "A |Sec-WebSocket-Key| header field with a base64-encoded ... value
    # that, when decoded, is 16 bytes in length."  Section 11.3.1: the
    # header "MUST NOT appear more than once in an HTTP request."
    keys = fields.get("sec-websocket-key", none)
    if len(keys) != 1:
        raise HandshakeError(400, "expected exactly one Sec-WebSocket-Key header")
    key = keys[0]
    try:
        raw_key = base64.b64decode(key, validate=True)
    except (binascii.Error, ValueError):
        raw_key = b""
    if len(raw_key) != 16:
        raise HandshakeError(400, "Sec-WebSocket-Key is not the base64 of 16 bytes")
    # 6. "A |Sec-WebSocket-Version| header field, with a value of 13."
    # Section 4.4: otherwise the server "MUST abort the WebSocket handshake
    # ... and instead send an appropriate HTTP error code (such as 426
    # Upgrade Required) and a |Sec-WebSocket-Version| header field
    # indicating the version(s) the server is capable of understanding."
    if fields.get("sec-websocket-version", none) != ["13"]:
        raise HandshakeError(
            426,
            "unsupported WebSocket version: this server speaks version 13",
            (("Sec-WebSocket-Version", "13"),),
        )
    # The handshake is a GET: a body would be read as the first frames.
    content_length = fields.get("content-length", none)
    if fields.get("transfer-encoding", none) or (content_length and int(content_length[0])):
        raise HandshakeError(400, "a WebSocket handshake has no body")
    # 7. "Optionally, an |Origin| header field": the application's to judge,
    # in the event's headers.
    # 8. "Optionally, a |Sec-WebSocket-Protocol| header field, with a list
    # of values indicating which protocols the client would like to speak".
    # Section 4.1: each "MUST be ... characters in the range U+0021 to U+007E
    # not including separator characters", so a token, and not the
    # "name/version" form parse_token_list keeps for Upgrade.
    subprotocols = parse_token_list(fields.get("sec-websocket-protocol", none))
    if any("/" in subprotocol for subprotocol in subprotocols):
        raise HandshakeError(400, "invalid Sec-WebSocket-Protocol header: '/' in a subprotocol")
    # 9. "Optionally, a |Sec-WebSocket-Extensions| header field".
    extensions = parse_extension_offers(fields.get("sec-websocket-extensions", none))
    event = WebSocketRequest(
        target=target.decode("latin-1"),
        headers=headers,
        subprotocols=tuple(subprotocols),
        extensions=tuple(extensions),
    )
    return event, key
