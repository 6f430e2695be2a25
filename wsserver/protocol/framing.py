"""Where a request ends and what it addresses, read strictly (RFC 9112).

A proxy in front of wsserver and wsserver itself must agree on where each
request ends: if they do not, the bytes one of them takes for the body of a
request the other takes for a new request, which is request smuggling (RFC
9112 section 11.2).  They must also agree on which host a request is for.
h11 parses requests, but it is lenient where a stricter reading is the safe
one for a server behind proxies: it accepts obsolete line folding, control
characters in field values, the same Content-Length twice, any chunk
extension and trailer sections ended by bare LFs.  The rules here are
applied to the bytes before h11 sees them, so that h11 only ever parses
requests every conforming parser frames the same way:

* ``check_head``: a complete request head (the head scanner in ``http.py``
  has already required CRLF line ends): control characters, whitespace at
  the start of a field line, and the framing fields Transfer-Encoding and
  Content-Length;
* ``check_target``: a request-target other than origin-form, and whether
  its host is the ``Host`` field's;
* ``is_host``: the ``Host`` field's grammar;
* ``ChunkedBodyChecker``: a chunked body, followed ahead of h11.

Every refusal raises ``HandshakeError`` with status 400 (413 for a body over
the limit, 431 for an over-long chunk line, 501 for a transfer coding other
than chunked), after which the
HTTP phase answers and closes the connection: nothing after such a request
is read.  docs/security.md, section "HTTP request smuggling (RFC 9112)",
lists every shape with the answer and the RFC's words.
"""

from __future__ import annotations

import enum
import re

from .exceptions import HandshakeError

__all__ = ["ChunkedBodyChecker", "check_head", "check_target", "is_host"]

# RFC 9110 section 5.5: field-vchar = VCHAR / obs-text, with SP and HTAB
# between; "Field values containing CR, LF, or NUL characters are invalid
# and dangerous ... Field values containing other CTL characters are also
# invalid".  HTAB is whitespace, and CR and LF may only end lines: the head
# scanner has checked that each LF follows a CR.  Every other control
# character, and CR, maps to 0 here: one C-speed pass over the head, and the
# head is valid when the zeros are as many as the LFs.
_CONTROLS = frozenset([*range(0x20), 0x7F]) - {0x09, 0x0A, 0x0D}
_SUSPECT_TO_NUL = bytes(0 if byte in _CONTROLS or byte == 0x0D else 1 for byte in range(256))

# The field lines that need a closer look: one starting with whitespace, or
# one of the two fields that frame the body.  Rare in a WebSocket handshake,
# so one regular-expression pass (the "\n" prefix is searched in C) keeps
# the common request on the fast path.
_UNUSUAL_FIELD_LINE = re.compile(rb"\n(?:[ \t]|(?i:transfer-encoding|content-length):)")

# h11 takes at most 20 digits of Content-Length; with leading zeros a length
# within the body limit can be longer.  Refused here, so that h11 never
# refuses a length this module accepted.
_MAX_CONTENT_LENGTH_DIGITS = 20

# RFC 9110 section 7.2: Host = uri-host [ ":" port ], and RFC 3986 section
# 3.2.2: uri-host = IP-literal / IPv4address / reg-name, reg-name =
# *( unreserved / pct-encoded / sub-delims ).  The comma, a sub-delim, is left
# out: no DNS name holds one, and "a, b" reads as a list to a proxy that
# takes Host for one, or the first of several.  Userinfo ("@") and a path
# have no place in Host.
_HOST = re.compile(
    r"(?:\[[0-9A-Za-z:._~!$&'()*+;=-]+\]|(?:[0-9A-Za-z._~!$&'()*+;=-]|%[0-9A-Fa-f]{2})*)"
    r"(?::[0-9]*)?"
)

# RFC 9112 section 3.2.2: absolute-form = absolute-URI, and RFC 3986 section
# 3: scheme ":" "//" authority path-abempty [ "?" query ] for the
# hierarchical URIs HTTP uses.  h11 has checked every byte is a VCHAR.
_ABSOLUTE_FORM = re.compile(rb"[A-Za-z][A-Za-z0-9+.-]*://([^/?#]*)(?:[/?#].*)?")

_TOKEN = rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
# RFC 9110 section 5.6.4: quoted-string = DQUOTE *( qdtext / quoted-pair )
# DQUOTE.  The two alternatives differ in their first byte (a backslash
# starts only quoted-pair), so matching never backtracks.
_QUOTED_STRING = rb'"(?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*"'

# RFC 9112 section 7.1: chunk = chunk-size [ chunk-ext ] CRLF ..., chunk-size
# = 1*HEXDIG; section 7.1.1: chunk-ext = *( BWS ";" BWS chunk-ext-name
# [ BWS "=" BWS chunk-ext-val ] ), chunk-ext-val = token / quoted-string.
# Stricter than the RFC in two ways, both so that h11 (``HEXDIG{1,20}``,
# then ";" at once) accepts every line accepted here: at most 20 digits, and
# no whitespace between the size and the first ";".  No whitespace after the
# last extension either: nothing in the grammar puts it there.
_CHUNK_EXTENSION = (
    rb"[ \t]*" + _TOKEN + rb"(?:[ \t]*=[ \t]*(?:" + _TOKEN + rb"|" + _QUOTED_STRING + rb"))?"
)
_CHUNK_LINE = re.compile(
    rb"([0-9A-Fa-f]{1,20})(?:;" + _CHUNK_EXTENSION + rb"(?:[ \t]*;" + _CHUNK_EXTENSION + rb")*)?"
)

# RFC 9112 section 5: field-line = field-name ":" OWS field-value OWS, and
# RFC 9110 section 5.5: field-value = *field-content, field-content =
# field-vchar [ 1*( SP / HTAB / field-vchar ) field-vchar ].  Once the OWS
# is stripped, that is any run of VCHAR, obs-text, SP and HTAB.  (Written as
# one expression, the two OWS and the inner whitespace make it backtrack:
# quadratic time over a line of spaces.)
_FIELD_NAME = re.compile(_TOKEN)
_FIELD_VALUE = re.compile(rb"[\t \x21-\x7e\x80-\xff]*")

_CR = 0x0D
_LF = 0x0A


def check_head(head: bytes, max_body_size: int) -> int | None:
    """Check a complete request head; tell how its body is framed.

    Args:
        head: the request line, the field lines and the empty line, each
            ended by CRLF.
        max_body_size: the largest body accepted.

    Returns:
        ``None`` for a chunked body, else its length (0 without
        Content-Length).

    Raises:
        HandshakeError: 400, or 413 for a Content-Length over
            ``max_body_size``, or 501 for a transfer coding other than
            chunked.
    """
    if head.translate(_SUSPECT_TO_NUL).count(0) != head.count(b"\n"):
        _refuse_characters(head)
    if _UNUSUAL_FIELD_LINE.search(head) is None:
        return 0
    return _check_field_lines(head, max_body_size)


def _refuse_characters(head: bytes) -> None:
    for index, byte in enumerate(head):
        if byte in _CONTROLS:
            raise HandshakeError(400, f"control character 0x{byte:02x} in the request head")
        if byte == _CR and head[index + 1 : index + 2] != b"\n":
            # RFC 9112 section 2.2: "A recipient of such a bare CR MUST
            # consider that element to be invalid or replace each bare CR
            # with SP".  (h11 refuses it too, after a regular-expression
            # search that backtracks over the whitespace before it.)
            raise HandshakeError(400, "bare CR in the request head")
    raise AssertionError("unreachable: a control character or a bare CR was counted")


def _check_field_lines(head: bytes, max_body_size: int) -> int | None:
    lines = head.split(b"\r\n")
    # The head ends with CRLF CRLF: the last two pieces are empty.
    transfer_encoding: list[bytes] = []
    content_length: list[bytes] = []
    for index in range(1, len(lines) - 2):
        line = lines[index]
        if line[:1] in (b" ", b"\t"):
            if index == 1:
                # RFC 9112 section 2.2: "A recipient that receives
                # whitespace between the start-line and the first header
                # field MUST either reject the message as invalid or consume
                # each whitespace-preceded line without further processing of
                # it".
                raise HandshakeError(400, "whitespace between the request line and the first field")
            # RFC 9112 section 5.2: "A server that receives an obs-fold in a
            # request message ... MUST either reject the message by sending a
            # 400 (Bad Request), preferably with a representation explaining
            # that obsolete line folding is unacceptable, or replace each
            # received obs-fold with one or more SP octets".
            raise HandshakeError(
                400, "obsolete line folding (a field line starting with whitespace)"
            )
        name, _, value = line.partition(b":")
        name = name.lower()
        if name == b"transfer-encoding":
            transfer_encoding.append(value.strip(b" \t"))
        elif name == b"content-length":
            content_length.append(value.strip(b" \t"))
    if transfer_encoding:
        if content_length:
            # RFC 9112 section 6.3: such a message "might indicate an attempt
            # to perform request smuggling ... and ought to be handled as an
            # error", and section 6.1: "Regardless, the server MUST close the
            # connection after responding to such a request".
            raise HandshakeError(400, "both Content-Length and Transfer-Encoding")
        _check_transfer_encoding(transfer_encoding)
        # RFC 9112 section 6.1: "A server or client that receives an HTTP/1.0
        # message containing a Transfer-Encoding header field MUST treat the
        # message as if the framing is faulty, even if a Content-Length is
        # present, and close the connection after processing the message."
        # Versions above 1.1 were answered 505 already; one that is not a
        # version is h11's to refuse.
        version = lines[0].rpartition(b" ")[2]
        if version == b"HTTP/1.0" or version.startswith(b"HTTP/0."):
            raise HandshakeError(400, "Transfer-Encoding in a request older than HTTP/1.1")
        return None
    if content_length:
        return _content_length(content_length, max_body_size)
    return 0


def _check_transfer_encoding(values: list[bytes]) -> None:
    # Transfer-Encoding = #transfer-coding: the fields, joined, form one
    # list.  Only the exact list "chunked" (in any case) is accepted: that
    # is also all h11 accepts.
    codings = [coding.strip(b" \t").lower() for value in values for coding in value.split(b",")]
    if codings == [b"chunked"]:
        return
    if b"" in codings:
        # RFC 9110 section 5.6.1 asks recipients to skip empty list elements;
        # h11 does not, and a proxy that splits differently could see a
        # different last coding.
        raise HandshakeError(400, "empty element in Transfer-Encoding")
    if codings.count(b"chunked") > 1:
        # RFC 9112 section 6.1: "A sender MUST NOT apply the chunked transfer
        # coding more than once to a message body".
        raise HandshakeError(400, "chunked applied more than once in Transfer-Encoding")
    if codings[-1] != b"chunked":
        # RFC 9112 section 6.3: "If a Transfer-Encoding header field is
        # present in a request and the chunked transfer coding is not the
        # final encoding, the message body length cannot be determined
        # reliably; the server MUST respond with the 400 (Bad Request) status
        # code and then close the connection."  (Parameters on chunked, as
        # in "chunked;x=1", make it another coding: section 7, "The chunked
        # coding does not define any parameters. Their presence SHOULD be
        # treated as an error.")
        raise HandshakeError(400, "Transfer-Encoding does not end with chunked")
    # Framed by chunked, but coded before it with something wsserver does
    # not decode.  RFC 9112 section 6.1: "A server that receives a request
    # message with a transfer coding it does not understand SHOULD respond
    # with 501 (Not Implemented)."
    raise HandshakeError(501, "transfer codings other than chunked are not supported")


def _content_length(values: list[bytes], max_body_size: int) -> int:
    if len(values) > 1:
        # Also when the values are equal: RFC 9110 section 8.6 lets a
        # recipient "either reject the message as invalid or replace that
        # invalid field value with a single instance".  No client sends it,
        # and a proxy could keep either field.
        raise HandshakeError(400, "more than one Content-Length field")
    value = values[0]
    if not value.isdigit():
        # RFC 9110 section 8.6: Content-Length = 1*DIGIT.  RFC 9112 section
        # 6.3: "If a message is received without Transfer-Encoding and with
        # an invalid Content-Length header field, then the message framing
        # is invalid ... the server MUST respond with a 400 (Bad Request)
        # status code and then close the connection."  That includes the
        # list "5, 5", which the same section allows to be read as 5: see
        # above.
        if b"," in value:
            raise HandshakeError(400, "Content-Length is a list")
        raise HandshakeError(400, "Content-Length is not a decimal number")
    # Compared as text first: int() refuses more than 4,300 digits.
    significant = value.lstrip(b"0")
    if len(significant) > len(str(max_body_size)) or int(value) > max_body_size:
        raise HandshakeError(413, "request body too large")
    if len(value) > _MAX_CONTENT_LENGTH_DIGITS:
        raise HandshakeError(400, "Content-Length has too many leading zeros")
    return int(value)


def is_host(value: str) -> bool:
    """Tell whether ``value`` is a valid ``Host`` field value (RFC 9110 section 7.2).

    The empty value is valid (RFC 9112 section 3.2: a client sends it when
    the target URI has no authority).  A comma is not, although RFC 3986
    would allow one in a registered name: see ``_HOST``.
    """
    return _HOST.fullmatch(value) is not None


def check_target(method: bytes, target: bytes, host: str | None) -> None:
    """Check a request-target that is not in origin-form (not ``/...``).

    RFC 9112 section 3.2: origin-form for most requests, absolute-form
    (``http://host/path``), asterisk-form (``*``) for ``OPTIONS``, and
    authority-form for ``CONNECT`` (which the HTTP phase answers 501 before
    this is called).

    Args:
        method: the request method.
        target: the request-target, as h11 parsed it (VCHARs only).
        host: the ``Host`` field's value, or ``None`` if there is none.

    Raises:
        HandshakeError: 400 for any other target, and for an absolute-form
            target whose authority is not the ``Host`` field's.
    """
    if target == b"*":
        # RFC 9112 section 3.2.4: "The asterisk-form of request-target is
        # only used for a server-wide OPTIONS request".
        if method != b"OPTIONS":
            raise HandshakeError(400, "the asterisk-form target is only for OPTIONS")
        return
    match = _ABSOLUTE_FORM.fullmatch(target)
    if match is None:
        raise HandshakeError(400, "invalid request-target")
    authority = match[1].decode("latin-1")
    if "@" in authority:
        # RFC 9110 section 4.2.4: a recipient "SHOULD parse for userinfo and
        # treat its presence as an error".
        raise HandshakeError(400, "userinfo in the request-target")
    if not authority or not is_host(authority):
        # RFC 9110 section 4.2.1: "A sender MUST NOT generate an "http" URI
        # with an empty host identifier.  A recipient that processes such a
        # URI reference MUST reject it as invalid."
        raise HandshakeError(400, "invalid authority in the request-target")
    # RFC 9112 section 3.2.2: "When an origin server receives a request with
    # an absolute-form of request-target, the origin server MUST ignore the
    # received Host header field (if any) and instead use the host
    # information of the request-target."  wsserver hands the application
    # the Host field as received, and a proxy may have routed (or checked)
    # the request by either one: when they differ, refuse it rather than
    # pass on a request two parties read differently.
    if host is not None and host.lower() != authority.lower():
        raise HandshakeError(400, "the Host field differs from the request-target's host")


class _Part(enum.Enum):
    """Where a ``ChunkedBodyChecker`` is in the body."""

    #: A chunk-size line, up to its LF.
    SIZE_LINE = enum.auto()
    #: Chunk data, skipped.
    DATA = enum.auto()
    #: The CR after chunk data.
    DATA_CR = enum.auto()
    #: The LF after chunk data.
    DATA_LF = enum.auto()
    #: A trailer field line, or the final empty line.
    TRAILER_LINE = enum.auto()
    #: The body has ended: later bytes belong to the next request.
    DONE = enum.auto()


class ChunkedBodyChecker:
    """Follow a chunked request body (RFC 9112 section 7.1) ahead of h11.

    ``feed`` each piece of the body before h11 gets it: the piece is checked
    against the grammar, and a refusal comes before h11 parses anything in
    it.  Everything accepted here, h11 accepts too (its grammar is wider),
    so how the body is split into pieces never changes which of the two
    refuses it.  The chunk data is skipped, never copied; an unfinished line
    is kept until its LF arrives.

    Trailer fields are accepted and dropped, as h11 drops them, but only in
    the strict form of the request head: CRLF line ends, no obs-fold, no
    control character, and neither Content-Length nor Transfer-Encoding.

    Args:
        max_body_size: the largest body accepted: a chunk size that takes the
            body past it is refused (413) from the size line alone.
        max_line: the longest unfinished line kept (431 beyond).  The HTTP
            phase passes one byte more than h11's own limit, which h11
            enforces first.
    """

    def __init__(self, max_body_size: int, max_line: int) -> None:
        self._max_body_size = max_body_size
        self._max_line = max_line
        self._state = _Part.SIZE_LINE
        self._line = bytearray()
        self._body_size = 0
        self._data_left = 0

    @property
    def done(self) -> bool:
        """Whether the body's final empty line has been fed."""
        return self._state is _Part.DONE

    def feed(self, data: bytes) -> None:
        """Check the next piece of the body; bytes after its end are ignored.

        Raises:
            HandshakeError: the body breaks the grammar (400), the declared
                sizes exceed ``max_body_size`` (413), or a line exceeds
                ``max_line`` (431).
        """
        index = 0
        end = len(data)
        while index < end:
            state = self._state
            if state is _Part.DATA:
                taken = min(self._data_left, end - index)
                index += taken
                self._data_left -= taken
                if not self._data_left:
                    self._state = _Part.DATA_CR
            elif state is _Part.DATA_CR or state is _Part.DATA_LF:
                expected = _CR if state is _Part.DATA_CR else _LF
                if data[index] != expected:
                    # RFC 9112 section 7.1: chunk = chunk-size [ chunk-ext ]
                    # CRLF chunk-data CRLF.
                    raise HandshakeError(400, "chunk data not followed by CRLF")
                index += 1
                self._state = _Part.DATA_LF if state is _Part.DATA_CR else _Part.SIZE_LINE
            elif state is _Part.DONE:
                return
            else:
                newline = data.find(b"\n", index)
                stop = end if newline < 0 else newline + 1
                self._line += data[index:stop]
                index = stop
                if len(self._line) > self._max_line:
                    raise HandshakeError(431, "chunk-size line or trailer field too long")
                if newline >= 0:
                    line = bytes(self._line)
                    self._line.clear()
                    if len(line) < 2 or line[-2] != _CR:
                        # As in the head (see http.py): a bare LF ends a
                        # line for some parsers and not for others.
                        raise HandshakeError(
                            400, "bare LF in the chunked body: lines end with CRLF"
                        )
                    if state is _Part.SIZE_LINE:
                        self._size_line(line[:-2])
                    else:
                        self._trailer_line(line[:-2])

    def _size_line(self, line: bytes) -> None:
        match = _CHUNK_LINE.fullmatch(line)
        if match is None:
            raise HandshakeError(400, "malformed chunk-size line")
        size = int(match[1], 16)
        self._body_size += size
        if self._body_size > self._max_body_size:
            raise HandshakeError(413, "request body too large")
        if size:
            self._data_left = size
            self._state = _Part.DATA
        else:
            self._state = _Part.TRAILER_LINE

    def _trailer_line(self, line: bytes) -> None:
        if not line:
            self._state = _Part.DONE
            return
        if line[:1] in (b" ", b"\t"):
            raise HandshakeError(400, "obsolete line folding in the trailer section")
        name, colon, value = line.partition(b":")
        if not (
            colon and _FIELD_NAME.fullmatch(name) and _FIELD_VALUE.fullmatch(value.strip(b" \t"))
        ):
            raise HandshakeError(400, "malformed trailer field")
        # RFC 9110 section 6.5.1: "Many fields cannot be processed outside
        # the header section because their evaluation is necessary prior to
        # receiving the content, such as those that describe message
        # framing".  (h11 would judge these two as header fields.)
        if name.lower() in (b"content-length", b"transfer-encoding"):
            raise HandshakeError(400, "Content-Length or Transfer-Encoding in the trailer section")
