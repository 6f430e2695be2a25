"""The fast path for the usual WebSocket upgrade request head.

Almost every opening handshake a server sees is the same shape: a
``GET /path HTTP/1.1`` request line, a dozen ``Name: value`` fields with one
space after the colon, nothing after the empty line, all of it in one read.
The general path walks such a head three times (the head scanner of
``http.py``, the strict checks of ``framing.check_head``, h11's parser) and
builds h11's objects for a connection that leaves HTTP at once.
``parse_upgrade_head`` reads that shape directly, in one decode and one
regular-expression match per line, and returns exactly the request line and
fields the general path would have produced.

It is strict, and it declines (returns ``None``) rather than judge anything
outside that shape: the general path, with its precise errors, stays the only
parser of plain HTTP requests and of everything unusual.  So it never
refuses a request itself; a rejection is only ever decided by the handshake
rules (``handshake.validate_handshake``), which both paths share.  What it
declines:

- a method other than ``GET``, a request-target not in origin-form, an
  HTTP version other than ``HTTP/1.1`` (HTTP/1.0, 505 cases, garbage);
- any byte outside printable ASCII (obs-text, control characters), a bare
  CR or LF, empty lines before the request line;
- whitespace other than at most one SP after a field's colon and single
  SPs inside its value (obs-fold, HTAB, OWS before the line end, two
  spaces), an empty field value, a name that is not a token;
- ``Content-Length`` and ``Transfer-Encoding`` (body framing is the general
  path's: ``framing.py``), a missing or repeated ``Host``, or an invalid one;
- a request that is not an upgrade attempt (``handshake.is_upgrade_attempt``);
- a head at or beyond any of ``ProtocolSettings``' limits, whose status
  (414, 431) the head scanner decides.

``tests/protocol/test_upgrade_head.py`` holds the differential proof: for
generated and mutated heads, the fast path either declines or leads the HTTP
phase to the same event, the same rejection and the same bytes as the
general path.
"""

from __future__ import annotations

import re

from .events import Headers
from .framing import is_host
from .handshake import is_upgrade_attempt
from .settings import ProtocolSettings

__all__ = ["parse_upgrade_head"]

# RFC 9112 section 3: request-line = method SP request-target SP
# HTTP-version; section 3.2.1: origin-form = absolute-path [ "?" query ],
# whose characters h11 takes as any VCHAR (``request_target``), as the
# general path does.  RFC 6455 section 4.2.1, step 1: the handshake is "An
# HTTP/1.1 or higher GET request, including a "Request-URI"": only the
# method and version the RFC names are taken here.
_REQUEST_LINE = re.compile(r"GET (/[\x21-\x7e]*) HTTP/1\.1")

# RFC 9112 section 5 (RFC 7230 section 3.2 before it): field-line =
# field-name ":" OWS field-value OWS;
# RFC 9110 section 5.1: field-name = token; section 5.5: field-value =
# *field-content, field-content = field-vchar [ 1*( SP / HTAB / field-vchar )
# field-vchar ].  The usual shape only: one SP or none after the colon, no
# OWS at the end, single SPs inside, VCHAR only (no obs-text), not empty.
# Every line this matches, h11 reads as the same name and value.
_FIELD_LINE = re.compile(r"([!#$%&'*+.^_`|~0-9A-Za-z-]+): ?([\x21-\x7e]+(?: [\x21-\x7e]+)*)")

# The fields that frame a body (RFC 9112 section 6): the general path's
# strict checks (framing.check_head) judge them.
_FRAMING_FIELDS = frozenset(("content-length", "transfer-encoding"))


def parse_upgrade_head(head: bytes, settings: ProtocolSettings) -> tuple[bytes, Headers] | None:
    """Read a complete upgrade request head of the usual shape.

    Args:
        head: the bytes received, which end with the empty line (CRLF CRLF);
            nothing may follow the head (a pipelined request is declined).
        settings: the limits the head must be within.

    Returns:
        ``(target, headers)`` as the general path reads them (names
        lowercase, values as sent), or ``None`` when the fast path declines:
        the general path then parses the same bytes.
    """
    # RFC 9112 section 2.2 and the head scanner's limits, decided there:
    # decline anything at a limit rather than re-derive its status here.
    if len(head) > settings.max_head_size or not head.isascii():
        return None
    lines = head.decode("ascii").split("\r\n")
    # The head ends with CRLF CRLF: the last two pieces are empty, and no
    # other may be (an empty line would end an earlier head).
    if len(lines) < 4 or lines[-1] or lines[-2]:
        return None
    del lines[-2:]
    request_line = lines[0]
    if len(request_line) > settings.max_request_line:
        return None
    match = _REQUEST_LINE.fullmatch(request_line)
    if match is None:
        return None
    if len(lines) - 1 > settings.max_headers:
        return None
    max_line = settings.max_header_line
    fields: list[tuple[str, str]] = []
    hosts = 0
    host = ""
    for index in range(1, len(lines)):
        line = lines[index]
        field = _FIELD_LINE.fullmatch(line)
        if field is None or len(line) > max_line:
            return None
        name = field[1].lower()
        if name == "host":
            hosts += 1
            host = field[2]
        elif name in _FRAMING_FIELDS:
            return None
        fields.append((name, field[2]))
    # RFC 9112 section 3.2: "A server MUST respond with a 400 (Bad Request)
    # status code to any HTTP/1.1 request message that lacks a Host header
    # field and to any request message that contains more than one Host
    # header field line or a Host header field with an invalid field
    # value."  Those 400s are the general path's to give.
    if hosts != 1 or not is_host(host):
        return None
    headers = tuple(fields)
    if not is_upgrade_attempt(headers):
        return None
    return match[1].encode("ascii"), headers
