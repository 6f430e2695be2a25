"""The WebSocket opening handshake's rules, both sides (RFC 6455 section 4).

For a server: which requests are handshakes, the checks of section 4.2.1 in
the RFC's order with the HTTP status each failure calls for, and the
``Sec-WebSocket-Accept`` computation of section 4.2.2.  The HTTP phase
(``http.py``) calls these on each parsed request head.

For a client: the key (section 4.1) and the checks of a 101 response in the
RFC's order (``validate_response``), which ``ClientConnection`` calls.
Nothing here parses HTTP or holds state.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Sequence

from .codes import HandshakeFailure
from .events import Headers, WebSocketRequest
from .exceptions import HandshakeError, InvalidResponse
from .extensions.permessage_deflate import (
    ClientDeflateSettings,
    PerMessageDeflate,
    accept_response,
)
from .headers import ExtensionOffer, parse_extension_offers, parse_token_list

__all__ = [
    "ACCEPT_GUID",
    "accept_token",
    "client_key",
    "header_values",
    "is_upgrade_attempt",
    "validate_handshake",
    "validate_response",
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


# -- the client's side ------------------------------------------------------


def client_key(nonce: bytes) -> str:
    """``Sec-WebSocket-Key`` for 16 random bytes.

    Section 4.1: "The value of this header field MUST be a nonce consisting
    of a randomly selected 16-byte value that has been base64-encoded ...
    The nonce MUST be selected randomly for each connection."  The caller
    draws the bytes (``os.urandom`` by default), so that tests can fix them.
    """
    if len(nonce) != 16:
        raise ValueError(f"the nonce is 16 bytes, not {len(nonce)}")
    return base64.b64encode(nonce).decode("ascii")


def _fail(failure: HandshakeFailure, reason: str) -> InvalidResponse:
    return InvalidResponse(failure, reason)


def validate_response(
    headers: Headers,
    key: str,
    subprotocols: Sequence[str],
    deflate: ClientDeflateSettings | None,
) -> tuple[str | None, str | None, PerMessageDeflate | None]:
    """Check a 101 response to our handshake: RFC 6455 section 4.1, in order.

    (Step 1, "If the status code received from the server is not 101, the
    client handles the response per HTTP procedures", is the caller's.)

    Args:
        headers: the response headers (names lowercase).
        key: the ``Sec-WebSocket-Key`` we sent.
        subprotocols: the subprotocols we offered.
        deflate: the permessage-deflate settings we offered with, if any.

    Returns:
        ``(subprotocol, extensions, codec)``: the subprotocol chosen, the
        ``Sec-WebSocket-Extensions`` value agreed, and our codec.

    Raises:
        InvalidResponse: the first rule the response breaks.
    """
    fields: dict[str, list[str]] = {}
    for name, value in headers:
        fields.setdefault(name, []).append(value)
    none: list[str] = []
    try:
        upgrade = parse_token_list(fields.get("upgrade", none))
        connection = parse_token_list(fields.get("connection", none))
    except HandshakeError as error:
        raise _fail(HandshakeFailure.INVALID_UPGRADE, error.reason) from None
    # 2. "If the response lacks an |Upgrade| header field or the |Upgrade|
    # header field contains a value that is not an ASCII case-insensitive
    # match for the value "websocket", the client MUST _Fail the WebSocket
    # Connection_."
    if [token.lower() for token in upgrade] != ["websocket"]:
        raise _fail(HandshakeFailure.INVALID_UPGRADE, "the response's Upgrade is not websocket")
    # 3. "If the response lacks a |Connection| header field or the
    # |Connection| header field doesn't contain a token that is an ASCII
    # case-insensitive match for the value "Upgrade", the client MUST _Fail
    # the WebSocket Connection_."
    if not any(token.lower() == "upgrade" for token in connection):
        raise _fail(HandshakeFailure.INVALID_UPGRADE, "the response's Connection lacks 'upgrade'")
    # 4. "If the response lacks a |Sec-WebSocket-Accept| header field or the
    # |Sec-WebSocket-Accept| contains a value other than the base64-encoded
    # SHA-1 of the concatenation of the |Sec-WebSocket-Key| (as a string,
    # not base64-decoded) with the string "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
    # but ignoring any leading and trailing whitespace, the client MUST
    # _Fail the WebSocket Connection_."
    accepts = fields.get("sec-websocket-accept", none)
    if len(accepts) != 1 or accepts[0].strip() != accept_token(key):
        raise _fail(HandshakeFailure.INVALID_ACCEPT, "Sec-WebSocket-Accept does not match our key")
    # 5. "If the response includes a |Sec-WebSocket-Extensions| header field
    # and this header field indicates the use of an extension that was not
    # present in the client's handshake ..., the client MUST _Fail the
    # WebSocket Connection_."  (RFC 7692 section 7's rules in
    # accept_response.)
    try:
        extensions: list[ExtensionOffer] = parse_extension_offers(
            fields.get("sec-websocket-extensions", none)
        )
    except HandshakeError as error:
        raise _fail(HandshakeFailure.INVALID_EXTENSION, error.reason) from None
    codec = None
    if extensions:
        if deflate is None:
            raise _fail(
                HandshakeFailure.INVALID_EXTENSION,
                f"the server accepted an extension we did not offer: {extensions[0].name}",
            )
        codec = accept_response(extensions, deflate)
    agreed = ", ".join(fields["sec-websocket-extensions"]) if codec is not None else None
    # 6. "If the response includes a |Sec-WebSocket-Protocol| header field
    # and this header field indicates the use of a subprotocol that was not
    # present in the client's handshake ..., the client MUST _Fail the
    # WebSocket Connection_."  Section 4.2.2: the server answers with "a
    # single value", so a list is refused as well.
    chosen = fields.get("sec-websocket-protocol", none)
    subprotocol = None
    if chosen:
        if len(chosen) != 1 or chosen[0].strip() not in subprotocols:
            raise _fail(
                HandshakeFailure.INVALID_SUBPROTOCOL,
                f"the server chose a subprotocol we did not offer: {', '.join(chosen)[:60]}",
            )
        subprotocol = chosen[0].strip()
    return subprotocol, agreed, codec
