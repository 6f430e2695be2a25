"""The HTTP phase of a server connection: from the first byte to the 101.

``HTTPPhase`` reads HTTP/1.1 requests off a byte stream and tells its caller
about each one: a WebSocket opening handshake (RFC 6455 section 4.2.1), a
plain HTTP request, or a request the core answered with an error by itself.
The caller answers the first two; plain requests may be followed by more on
the same connection (keep-alive, pipelining).

h11 parses and serialises the HTTP.  Three things sit in front of it:

* a head scanner, which walks each request head once, line by line, and
  enforces ``ProtocolSettings``' limits with the status each one calls for
  (414, 431) before h11 sees a single byte of it.  h11 only has one limit,
  on the whole incomplete event, and answers 400 or 431 for everything;
* the strict reading of ``framing.py``: where h11 is lenient (bare LF line
  ends, obs-fold, control characters, repeated Content-Length, chunk
  extensions and trailers), a request a proxy could frame differently is
  refused with 400 before h11 parses it (request smuggling, RFC 9112
  section 11.2);
* a fresh ``h11.Connection`` per request.  h11 only ever receives a head the
  scanner has passed, then that request's body; bytes it read past the end of
  a chunked body are handed back, so that the next head goes through the
  scanner too.  ``start_next_cycle`` would keep them inside h11, unscanned.

The usual WebSocket upgrade request, arriving whole with nothing after it,
skips all three: ``upgrade_head.py`` reads it directly into what h11 would
have produced, or declines and leaves it to them.

Peer errors never raise: they become an error response in
``data_to_send()`` and a ``RequestRejected`` event, after which the phase
only waits to be closed.  Mistakes of the caller raise
``LocalProtocolError``.
"""

from __future__ import annotations

import enum
import re
from collections import deque
from collections.abc import Callable, Iterable
from http import HTTPStatus
from operator import attrgetter

import h11

from .events import Headers, HTTPRequest, RequestBody, RequestRejected, WebSocketRequest
from .exceptions import HandshakeError, LocalProtocolError
from .framing import ChunkedBodyChecker, check_head, check_target, is_host
from .handshake import accept_token, is_upgrade_attempt, validate_handshake
from .headers import is_token, parse_extension_offers
from .settings import ProtocolSettings
from .upgrade_head import parse_upgrade_head

# h11.Data.data, read untyped: h11 declares bytes and hands a bytearray, and
# the compiled build (mypyc) checks a declared type where it is read.
_h11_data: Callable[[h11.Data], bytes | bytearray] = attrgetter("data")

__all__ = ["HTTPPhase"]

# A chunked body is handed to h11 at most this many bytes at a time.  h11 may
# read past the end of the body into the next pipelined request; those bytes
# are copied back out (``trailing_data``) and rescanned, so the window bounds
# that copy per request.  Content-Length bodies are fed exactly and never
# overrun.  (``_read_body`` may feed less: see ``_h11_held``.)
_BODY_WINDOW = 16 * 1024

# Error responses explain themselves in at most this many characters: the
# reason is for a developer reading the response, and nothing the peer sent
# is echoed back at length.
_MAX_REASON = 120

_CR = 0x0D
_LF = 0x0A

# RFC 9112 section 3: request-line = method SP request-target SP HTTP-version,
# and method = token.  Anything else in first position is not HTTP at all (a
# TLS ClientHello starts with 0x16), and is refused before its line ends.
_METHOD_START = frozenset(
    b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
)

# Response headers the core writes itself; a caller who passes one has a bug.
_FRAMING_HEADERS = frozenset({"content-length", "transfer-encoding"})
_HANDSHAKE_HEADERS = _FRAMING_HEADERS | {
    "connection",
    "upgrade",
    "sec-websocket-accept",
    "sec-websocket-protocol",
    "sec-websocket-extensions",
}


class _State(enum.Enum):
    #: Reading a request head, or waiting for the next one.
    HEAD = enum.auto()
    #: h11 is reading a plain request's body.
    BODY = enum.auto()
    #: The ``HTTPRequest`` is out, its body still coming: ``next_event``
    #: reads the next piece when the caller asks (``stream_bodies``).
    STREAM = enum.auto()
    #: A request event is out (or queued) and waits for the caller's answer.
    ANSWER = enum.auto()
    #: ``accept()`` queued the 101: the bytes now belong to the framing layer.
    SWITCHED = enum.auto()
    #: The last response is queued: close the transport once it is written.
    CLOSED = enum.auto()


class HTTPPhase:
    """The server side of HTTP/1.1 until the WebSocket handshake completes.

    Feed it with ``receive_data`` / ``receive_eof``; take events with
    ``next_event``; answer each ``HTTPRequest`` with ``send_response`` and
    the ``WebSocketRequest`` with ``accept`` or ``reject``; write what
    ``data_to_send`` returns; close the transport once ``must_close`` is
    true and the data is written.

    While an event waits for its answer, the phase parses nothing more.
    Bytes received meanwhile (a pipelined request, or frames a client sent
    too early) are kept until the buffer holds ``max_head_size +
    max_body_size``; beyond that they are dropped, and the connection is
    closed after the answer (``must_close``, also after ``accept()``).  The
    rest of the chunk that completed the request is always kept: its size is
    the transport's read size.

    With ``stream_bodies``, a request with a body is told at its head
    (``HTTPRequest.streamed``), and its body comes as ``RequestBody``
    events, each read from what has arrived when the caller calls
    ``next_event()``: the caller reads at its own pace, and ``buffered``
    tells it when to stop reading the socket meanwhile (the phase keeps all
    it is given in this state).  A client waiting for ``100 (Continue)`` is
    sent it at the first such call, not before: a caller that answers
    without reading the body spares the client sending it.  A body left
    unread closes the connection after the answer.

    Args:
        settings: the limits to enforce.
        stream_bodies: see above; without it a body is read whole, up to
            ``max_body_size``, before the ``HTTPRequest`` is told.
    """

    def __init__(self, settings: ProtocolSettings, *, stream_bodies: bool = False) -> None:
        self._settings = settings
        self._stream_bodies = stream_bodies
        self._state = _State.HEAD
        # Bytes received and not yet handed to h11 (in BODY, the front
        # ``_body_fed`` bytes were handed over but may come back).
        self._buffer = bytearray()
        self._output: list[bytes] = []
        # At most one event at a time: the phase stops parsing at each one.
        self._events: deque[WebSocketRequest | HTTPRequest | RequestRejected] = deque()
        self._pending: WebSocketRequest | HTTPRequest | None = None
        self._eof = False
        self._overflow = False
        self._max_buffered = settings.max_head_size + settings.max_body_size
        self._bytes_examined = 0
        # A response begun with start_response() and not ended yet, and
        # whether its body is sent at all (not for HEAD, 204, 304).
        self._streaming = False
        self._stream_body = False
        self._new_cycle()

    def _new_cycle(self) -> None:
        # One h11 connection per request: see the module docstring.  h11's
        # own limit covers what the scanner does not see (chunk-size lines
        # and trailers); a head the scanner passed always fits in it.
        self._conn = h11.Connection(
            h11.SERVER, max_incomplete_event_size=self._settings.max_head_size
        )
        # The head scanner's position, as indices into ``_buffer``.  The
        # head starts at 0; ``_request_start`` moves past empty lines that
        # precede the request line.
        self._request_start = 0
        self._line_start = 0
        self._scan_pos = 0
        self._lines = 0  # complete lines of the head: request line + fields
        self._method = b""
        self._key = ""
        self._request: h11.Request | None = None
        self._headers: Headers = ()
        self._body = bytearray()
        self._body_size = 0
        self._body_fed = 0
        self._body_remaining: int | None = None
        # Set for a chunked body: checks each piece before h11 gets it.
        self._chunked: ChunkedBodyChecker | None = None
        # At least as many bytes as h11 holds unparsed (an unfinished
        # chunk-size line or trailer section): see ``_read_body``.
        self._h11_held = 0

    # -- public API ----------------------------------------------------

    @property
    def must_close(self) -> bool:
        """Whether the transport must be closed once ``data_to_send`` is written.

        True after a rejection (``reject()`` or a peer error), after a
        response that ends the connection (``Connection: close``, HTTP/1.0),
        and after the peer's EOF once nothing is left to answer.  Also true
        after ``accept()`` if the peer had already closed its side, or had
        sent more than the phase keeps while waiting (see the class
        docstring): the WebSocket connection cannot go on then.
        """
        if self._state is _State.CLOSED:
            return True
        return self._state is _State.SWITCHED and (self._eof or self._overflow)

    @property
    def buffered(self) -> int:
        """Bytes received and not handed on yet (for the caller's backpressure)."""
        return len(self._buffer)

    @property
    def awaiting_answer(self) -> bool:
        """Whether ``next_event`` returned a request that is not answered yet."""
        return self._pending is not None

    @property
    def dropped_data(self) -> bool:
        """Whether bytes received while a request waited for its answer were dropped.

        The phase keeps ``max_head_size + max_body_size`` bytes meanwhile
        (see the class docstring).  After ``accept()`` this means the
        WebSocket stream has a hole in it: the connection must be failed.
        """
        return self._overflow

    @property
    def bytes_examined(self) -> int:
        """How many bytes the head scanner has looked at, repeats included.

        A regression guard for linear-time parsing: it stays within a small
        multiple of the bytes received, however the input is split.
        """
        return self._bytes_examined

    def receive_data(self, data: bytes) -> None:
        """Take bytes read from the transport.

        Never raises for anything the peer sent: errors become a queued
        response and a ``RequestRejected`` event.

        Raises:
            LocalProtocolError: after ``receive_eof()`` or ``accept()``.
        """
        if self._eof:
            raise LocalProtocolError("receive_data() after receive_eof()")
        if self._state is _State.SWITCHED:
            raise LocalProtocolError(
                "receive_data() after accept(): the bytes belong to the WebSocket connection"
            )
        if self._state is _State.CLOSED or self._overflow or not data:
            return
        if self._state is _State.STREAM:
            # Parsed when the caller asks for the next piece; the caller
            # bounds what waits here by pausing its reads (``buffered``).
            self._buffer += data
            return
        if self._state is _State.ANSWER:
            # Nothing is parsed while the caller decides.  Keep what a
            # pipelined request may legitimately take, drop the rest, and
            # close after the answer.  For a handshake this is generous: RFC
            # 6455 section 4.1, "Once the client's opening handshake has been
            # sent, the client MUST wait for a response from the server
            # before sending any further data."
            room = max(self._max_buffered - len(self._buffer), 0)
            if len(data) > room:
                data = data[:room]
                self._overflow = True
            self._buffer += data
            return
        self._buffer += data
        self._process()

    def receive_eof(self) -> None:
        """The transport reached end of file.

        Between requests the phase ends quietly.  In the middle of one it is
        a peer error (400).  A request already out still gets its answer;
        the connection closes after it.
        """
        if self._eof:
            return
        self._eof = True
        if self._state in (_State.HEAD, _State.BODY):
            self._process()

    def next_event(
        self,
    ) -> WebSocketRequest | HTTPRequest | RequestBody | RequestRejected | None:
        """The next event, or ``None`` if there is none yet.

        ``WebSocketRequest`` and ``HTTPRequest`` must be answered before
        anything else is parsed.
        """
        if not self._events:
            if self._state is _State.STREAM:
                return self._next_piece()
            return None
        event = self._events.popleft()
        if not isinstance(event, RequestRejected):
            self._pending = event
        return event

    def send_response(self, status: int, headers: Headers = (), body: bytes = b"") -> None:
        """Answer the pending ``HTTPRequest``.

        ``Content-Length`` is added (except for 204 and 304, which have no
        body); a response to ``HEAD`` carries the headers of ``body`` but not
        ``body`` itself.  h11 adds ``Connection: close`` when the request
        asked for it or was HTTP/1.0; the phase then closes after the
        response.  Otherwise the next request, if already received, is
        parsed at once.

        Args:
            status: a final status code, 200 to 599.
            headers: response headers, without ``Content-Length`` or
                ``Transfer-Encoding``.
            body: the whole body.

        Raises:
            LocalProtocolError: no ``HTTPRequest`` is waiting for an answer,
                or the status, a header or the body is invalid.
        """
        pending = self._pending
        if not isinstance(pending, HTTPRequest):
            if isinstance(pending, WebSocketRequest):
                raise LocalProtocolError(
                    "send_response() for a WebSocketRequest: answer it with accept() or reject()"
                )
            raise LocalProtocolError(
                "send_response() without a pending HTTPRequest: call it once per "
                "HTTPRequest returned by next_event()"
            )
        self._check_not_streaming("send_response")
        closing = self._closing_after_answer()
        self._answer(status, headers, body, close=closing)
        self._next_request(closing)

    def start_response(self, status: int, headers: Headers = ()) -> None:
        """Answer the pending ``HTTPRequest`` with a body sent piece by piece.

        The head goes out now, without ``Content-Length``: h11 frames the
        body with ``Transfer-Encoding: chunked`` for an HTTP/1.1 client, and
        by closing the connection after it for an HTTP/1.0 one (RFC 9112
        section 6.3).  Send the body with ``send_body`` and end it with
        ``end_response``; nothing else is parsed meanwhile.

        Raises:
            LocalProtocolError: as ``send_response``.
        """
        pending = self._pending
        if not isinstance(pending, HTTPRequest):
            raise LocalProtocolError("start_response() without a pending HTTPRequest")
        self._check_not_streaming("start_response")
        if not 200 <= status <= 599 or isinstance(status, bool):
            raise LocalProtocolError(f"status {status!r} is not a final status code (200-599)")
        fields = _encode_headers(headers, _FRAMING_HEADERS)
        if self._closing_after_answer():
            fields = _with_connection_close(fields)
        try:
            response = h11.Response(status_code=status, headers=fields, reason=_reason(status))
        except h11.LocalProtocolError as exc:
            raise LocalProtocolError(f"invalid response header: {exc}") from None
        self._output.append(self._conn.send(response))
        # RFC 9110 sections 9.3.2, 15.3.5 and 15.4.5: no content for HEAD,
        # 204 and 304 (h11 framed them with a zero length).
        self._stream_body = self._method != b"HEAD" and status not in (204, 304)
        self._streaming = True

    def send_body(self, data: bytes) -> None:
        """Send the next piece of a body begun with ``start_response``.

        An empty piece sends nothing (a zero-length chunk would end the
        body).  The pieces of a response to ``HEAD``, or of a 204 or 304,
        are dropped.

        Raises:
            LocalProtocolError: no streamed response is in progress.
        """
        if not self._streaming:
            raise LocalProtocolError("send_body() without start_response()")
        if data and self._stream_body:
            self._output.append(self._conn.send(h11.Data(data=data)))

    def end_response(self) -> None:
        """End the body begun with ``start_response``; as ``send_response`` after.

        Raises:
            LocalProtocolError: no streamed response is in progress.
        """
        if not self._streaming:
            raise LocalProtocolError("end_response() without start_response()")
        self._streaming = False
        self._output.append(self._conn.send(h11.EndOfMessage()))
        self._next_request(self._closing_after_answer())

    @property
    def streaming(self) -> bool:
        """Whether a response begun with ``start_response`` is not ended yet."""
        return self._streaming

    def _closing_after_answer(self) -> bool:
        # A streamed body not read to its end: what is left of it would be
        # read as the next request.  (h11 also closes after a response
        # that says Connection: close.)
        return self._eof or self._overflow or self._state is _State.STREAM

    def _check_not_streaming(self, action: str) -> None:
        if self._streaming:
            raise LocalProtocolError(f"{action}() while a streamed response is in progress")

    def _next_request(self, closing: bool) -> None:
        self._pending = None
        conn = self._conn
        if not closing and conn.our_state is h11.DONE and conn.their_state is h11.DONE:
            # Keep-alive: the next request may be in the buffer already.
            self._new_cycle()
            self._state = _State.HEAD
            self._process()
        else:
            self._close()

    def reject(self, status: int, headers: Headers = (), body: bytes = b"") -> None:
        """Answer the pending ``WebSocketRequest`` with an HTTP response.

        RFC 6455 section 4.2.2: "If the server does not wish to accept this
        connection, it MUST return an appropriate HTTP error code".  The
        response carries ``Content-Length`` and ``Connection: close``; the
        connection is closed after it.

        Args:
            status: a final status code other than 101, 200 to 599.
            headers: response headers, without ``Content-Length`` or
                ``Transfer-Encoding``.
            body: the whole body.

        Raises:
            LocalProtocolError: no ``WebSocketRequest`` is waiting for an
                answer, or the status, a header or the body is invalid.
        """
        if not isinstance(self._pending, WebSocketRequest):
            raise LocalProtocolError(self._not_a_handshake("reject"))
        self._answer(status, headers, body, close=True)
        self._pending = None
        self._close()

    def accept(
        self, subprotocol: str | None, extensions: str | None, headers: Headers = ()
    ) -> bytes:
        """Answer the pending ``WebSocketRequest`` with 101 Switching Protocols.

        Args:
            subprotocol: the subprotocol chosen among the client's offers, or
                ``None`` for none.
            extensions: the ``Sec-WebSocket-Extensions`` value agreed on,
                already formatted (see ``headers.format_extension``), or
                ``None``.
            headers: more response headers, not ones the handshake sets.

        Returns:
            The bytes received after the request head: they are the start of
            the WebSocket stream.

        Raises:
            LocalProtocolError: no ``WebSocketRequest`` is waiting for an
                answer, the subprotocol was not offered, or the extensions
                value or a header is invalid.
        """
        pending = self._pending
        if not isinstance(pending, WebSocketRequest):
            raise LocalProtocolError(self._not_a_handshake("accept"))
        # RFC 6455 section 4.2.2, /subprotocol/: "The value chosen MUST be
        # derived from the client's handshake, specifically by selecting one
        # of the values from the |Sec-WebSocket-Protocol| field".
        if subprotocol is not None and subprotocol not in pending.subprotocols:
            raise LocalProtocolError(
                f"subprotocol {subprotocol!r} was not offered by the client "
                f"(offers: {list(pending.subprotocols)})"
            )
        if extensions is not None:
            try:
                agreed = parse_extension_offers([extensions])
            except HandshakeError as exc:
                raise LocalProtocolError(f"extensions: {exc.reason}") from None
            if not agreed:
                raise LocalProtocolError("extensions: an empty value agrees on nothing")
        # RFC 6455 section 4.2.2, step 5: "1. A Status-Line with a 101
        # response code ...  2. An |Upgrade| header field with value
        # "websocket" ...  3. A |Connection| header field with value
        # "Upgrade".  4. A |Sec-WebSocket-Accept| header field" and, if
        # chosen, the subprotocol and the extensions.
        #
        # The 101 is written here rather than by h11: it is the last thing
        # this phase sends, so h11's bookkeeping would be thrown away, and
        # building an h11 event (which revalidates every field) was a fifth
        # of the handshake's cost.  The bytes are the ones h11 writes.
        parts = [
            _SWITCHING_PROTOCOLS_HEAD,
            accept_token(self._key).encode("ascii"),
            b"\r\n",
        ]
        if subprotocol is not None:
            # A token the client offered (checked above).
            parts += [b"Sec-WebSocket-Protocol: ", subprotocol.encode("latin-1"), b"\r\n"]
        if extensions is not None:
            # Parsed above: tokens, quoted strings, separators.
            parts += [b"Sec-WebSocket-Extensions: ", extensions.encode("latin-1"), b"\r\n"]
        for name, value in _encode_headers(headers, _HANDSHAKE_HEADERS):
            parts += [_checked_field(name, value), b"\r\n"]
        parts.append(b"\r\n")
        self._output.append(b"".join(parts))
        remainder = bytes(self._buffer)
        self._buffer.clear()
        self._pending = None
        self._state = _State.SWITCHED
        return remainder

    def data_to_send(self) -> list[bytes]:
        """The bytes to write to the transport, in order; drains them."""
        output, self._output = self._output, []
        return output

    # -- parsing -------------------------------------------------------

    def _process(self, *, read_stream: bool = False) -> None:
        """Parse what the buffer holds, up to the next event.

        Args:
            read_stream: read the next piece of a streamed body (only when
                the caller asks for it: ``_next_piece``).
        """
        try:
            while True:
                if self._state is _State.HEAD:
                    # A whole head in one read, nothing after it: the
                    # usual upgrade request takes the fast path.
                    if self._scan_pos == 0 and self._fast_upgrade():
                        break
                    head_end = self._scan_head()
                    if head_end is None:
                        if self._eof:
                            self._end_between_requests()
                        break
                    self._start_request(head_end)
                elif self._state is _State.BODY or (read_stream and self._state is _State.STREAM):
                    self._read_body()
                    break
                else:
                    break
        except HandshakeError as exc:
            self._fail(exc.status, exc.reason, exc.headers)
        except h11.RemoteProtocolError as error:
            # h11 says 400, or 431 for an over-long chunk line or trailer
            # section.  (Its 501 for a transfer coding other than chunked
            # cannot happen: check_head answers those first.)  A name of its
            # own: the compiled build gives ``exc`` the type of the clause
            # above.
            self._fail(error.error_status_hint, _describe_h11_error(error))

    def _fast_upgrade(self) -> bool:
        """Take the buffer as an upgrade request of the usual shape, if it is one.

        ``upgrade_head.parse_upgrade_head`` reads it, or declines (then the
        head scanner and h11 read the same bytes).  What it returns is what
        ``_start_request`` would have got from h11 for the same head, and
        the handshake's rules are applied to it the same way.

        Returns:
            Whether the request was taken (and its event queued).
        """
        buffer = self._buffer
        if len(buffer) > self._settings.max_head_size or not buffer.endswith(b"\r\n\r\n"):
            return False
        # Exactly one head, ending the buffer.  The search stops at the first
        # head's end: with pipelined requests, each cycle looks at its own
        # head only, so the work stays linear in the bytes received.
        end = buffer.find(b"\r\n\r\n") + 4
        self._bytes_examined += end
        if end != len(buffer):
            return False
        head = bytes(buffer)
        self._bytes_examined += len(head)
        parsed = parse_upgrade_head(head, self._settings)
        if parsed is None:
            return False
        target, headers = parsed
        self._buffer.clear()
        self._method = b"GET"
        event, self._key = validate_handshake(b"GET", b"1.1", target, headers)
        # No body: the fast path declined Content-Length and
        # Transfer-Encoding, so by RFC 9112 section 6.3 the message ends
        # with its head.  The h11 connection saw nothing: an error response
        # is written from its IDLE state, byte for byte the same (the
        # differential test compares them).
        self._queue(event)
        return True

    def _scan_head(self) -> int | None:
        """Advance the head scanner over the new bytes.

        Returns:
            The index just past the empty line that ends the head, or
            ``None`` if the head is not complete yet.

        Raises:
            HandshakeError: a limit is exceeded, the version is not
                supported, or the bytes are not an HTTP request.
        """
        buffer = self._buffer
        settings = self._settings
        while True:
            # Lines end with CRLF.  RFC 9112 section 2.2: "a recipient MAY
            # recognize a single LF as a line terminator", and h11 does; but
            # a proxy that does not would read "X: a<LF>Transfer-Encoding:
            # chunked" as one field, and wsserver as two.  A bare LF is
            # refused (400) wherever a line ends, so lines are found by their
            # LF and the CR before it is required.  The search starts where
            # the last one stopped: each byte is looked at once however the
            # input is split.
            newline = buffer.find(b"\n", self._scan_pos)
            stop = len(buffer) if newline < 0 else newline + 1
            self._bytes_examined += stop - self._scan_pos
            if self._lines == 0 and self._line_start < len(buffer):
                first = buffer[self._line_start]
                if first not in _METHOD_START and first not in (_CR, _LF):
                    raise HandshakeError(400, "not an HTTP/1.1 request")
            if newline < 0:
                self._scan_pos = len(buffer)
                # The line is unfinished: it, or the head, may already be
                # too long.  A last byte CR may be the start of the CRLF.
                length = len(buffer) - self._line_start
                if length and buffer[-1] == _CR:
                    length -= 1
                self._check_sizes(length, len(buffer))
                return None
            end = newline
            crlf = end > self._line_start and buffer[end - 1] == _CR
            if crlf:
                end -= 1
            length = end - self._line_start
            self._check_sizes(length, newline + 1)
            if not crlf:
                raise HandshakeError(400, "bare LF as a line end: request lines end with CRLF")
            if self._lines == 0:
                if length == 0:
                    # RFC 9112 section 2.2: "a server that is expecting to
                    # receive and parse a request-line SHOULD ignore at least
                    # one empty line (CRLF) received prior to the
                    # request-line."  They still count towards the head size.
                    self._request_start = newline + 1
                else:
                    self._check_version(self._line_start, end)
                    self._lines = 1
            elif length > 0:
                self._lines += 1
                if self._lines - 1 > settings.max_headers:
                    raise HandshakeError(431, "too many header fields")
            self._line_start = self._scan_pos = newline + 1
            if length == 0 and self._lines > 0:
                return newline + 1

    def _check_sizes(self, length: int, received: int) -> None:
        """Refuse the current line, or the head, if it is already too long.

        The answer must not depend on how the bytes were split: when both
        limits are broken, the error is the one a byte-at-a-time feed would
        have hit first.

        Args:
            length: the current line's length so far, without its line end.
            received: the bytes of the head so far, this line included.
        """
        settings = self._settings
        if self._lines == 0:
            limit, line_error = settings.max_request_line, (414, "request line too long")
        else:
            limit, line_error = settings.max_header_line, (431, "header line too long")
        # (index of the byte that broke the limit, rank for ties, error)
        broken: list[tuple[int, int, tuple[int, str]]] = []
        if length > limit:
            at = self._line_start + limit
            if self._buffer[at] == _CR:
                # Until the next byte, that CR could have ended the line.
                at += 1
            broken.append((at, 0, line_error))
        if received > settings.max_head_size:
            broken.append((settings.max_head_size, 1, (431, "request head too large")))
        if broken:
            status, reason = min(broken)[2]
            raise HandshakeError(status, reason)

    def _check_version(self, start: int, end: int) -> None:
        # h11 reads HTTP-version as "HTTP/" DIGIT "." DIGIT and would take
        # "HTTP/2.0" for a version it can speak.  RFC 9110 section 15.6.6:
        # 505 (HTTP Version Not Supported) "indicates that the server does
        # not support, or refuses to support, the major version of HTTP that
        # was used in the request message."  Answer it as soon as the request
        # line is complete; a version that is not even a number is h11's
        # (400).
        line = bytes(self._buffer[start:end])
        self._bytes_examined += len(line)
        version = line.rpartition(b" ")[2]
        if not version.startswith(b"HTTP/"):
            return
        major, dot, minor = version[5:].partition(b".")
        if not major.isdigit() or (dot and not minor.isdigit()):
            return
        if (_small_int(major), _small_int(minor) if dot else 0) > (1, 1):
            raise HandshakeError(
                505, f"HTTP version {version.decode('ascii')} not supported: use HTTP/1.1"
            )

    def _start_request(self, head_end: int) -> None:
        head = bytes(self._buffer[self._request_start : head_end])
        del self._buffer[:head_end]
        # Before h11: see framing.py.  None for a chunked body.
        body_length = check_head(head, self._settings.max_body_size)
        self._conn.receive_data(head)
        request = self._conn.next_event()
        if not isinstance(request, h11.Request):  # pragma: no cover - scanner and h11 agree
            raise HandshakeError(400, "malformed request head")
        self._method = request.method
        headers = _decode_headers(request)
        # h11 has refused a second Host field, and a missing one in HTTP/1.1.
        host = next((value for name, value in headers if name == "host"), None)
        # RFC 9112 section 3.2: "A server MUST respond with a 400 (Bad
        # Request) status code to any HTTP/1.1 request message that lacks a
        # Host header field and to any request message that contains more
        # than one Host header field line or a Host header field with an
        # invalid field value."
        if host is not None and not is_host(host):
            raise HandshakeError(400, "invalid Host header")
        if request.target[:1] != b"/" and request.method != b"CONNECT":
            check_target(request.method, request.target, host)
        if is_upgrade_attempt(headers):
            event, self._key = validate_handshake(
                request.method, request.http_version, request.target, headers
            )
            # No body: validate_handshake refused Transfer-Encoding and a
            # non-zero Content-Length, so by RFC 9112 section 6.3 the
            # message ends with its head.  h11's EndOfMessage is not asked
            # for: the h11 connection is dropped at accept() or reject().
            self._queue(event)
            return
        if request.method == b"CONNECT":
            # RFC 9110 section 9.3.6: CONNECT asks for a tunnel, which only a
            # proxy provides; and h11 would switch protocols on any 2xx
            # answer, leaving the connection in a state no response fits.
            raise HandshakeError(501, "CONNECT is not supported")
        # check_head refused both Content-Length and Transfer-Encoding, and a
        # Content-Length over the limit (413).
        self._body_remaining = body_length
        if body_length is None:
            self._chunked = ChunkedBodyChecker(
                self._settings.max_body_size, self._settings.max_head_size + 1
            )
        self._request = request
        self._headers = headers
        self._body = bytearray()
        self._state = _State.BODY
        if self._stream_bodies and body_length != 0:
            self._queue(self._http_request(streamed=True))
            self._state = _State.STREAM

    def _read_body(self) -> None:
        conn = self._conn
        while True:
            event = conn.next_event()
            if isinstance(event, h11.Data):
                # h11 hands out chunk data as soon as it has any, so what it
                # held before the last piece was not data, and this event
                # ends inside that piece: what is left is at most its size.
                self._h11_held = min(self._h11_held, self._body_fed)
                data = _h11_data(event)
                self._body += data
                self._body_size += len(data)
                # A safety net: check_head refused a Content-Length over the
                # limit, and the chunked checker a chunk size taking the body
                # over it, before any of the data came.
                if self._body_size > self._settings.max_body_size:  # pragma: no cover
                    raise HandshakeError(413, "request body too large")
                if self._body_remaining is not None:
                    self._body_remaining -= len(data)
            elif isinstance(event, h11.EndOfMessage):
                # h11 may have read past the end of a chunked body: give
                # those bytes back to the scanner.  They can only come from
                # the last piece fed (h11 ends a message as soon as its last
                # byte is in), so they are still at the front of the buffer.
                consumed = self._body_fed - len(conn.trailing_data[0])
                assert consumed >= 0
                # h11 accepts all the checker does: they end the body together.
                assert self._chunked is None or self._chunked.done
                del self._buffer[:consumed]
                self._body_fed = 0
                if self._state is _State.STREAM:
                    # The request is out already: its answer is awaited.
                    self._state = _State.ANSWER
                else:
                    self._queue(self._http_request())
                return
            elif event is h11.NEED_DATA:
                del self._buffer[: self._body_fed]
                self._body_fed = 0
                if not self._buffer:
                    if self._eof:
                        raise HandshakeError(400, "connection closed in the middle of the body")
                    if conn.they_are_waiting_for_100_continue:
                        # RFC 9110 section 10.1.1: the client waits for 100
                        # (Continue) before it sends the body.  The limits
                        # were checked on the headers; let it come.
                        continue_ = h11.InformationalResponse(
                            status_code=100, headers=[], reason=b"Continue"
                        )
                        self._output.append(conn.send(continue_))
                    return
                size = min(len(self._buffer), _BODY_WINDOW, self._h11_room())
                if self._body_remaining is not None:
                    size = min(size, self._body_remaining)
                piece = bytes(self._buffer[:size])
                if self._chunked is not None:
                    # Checked before h11 parses any of it: see framing.py.
                    self._chunked.feed(piece)
                conn.receive_data(piece)
                self._body_fed = size
                self._h11_held += size
            else:  # pragma: no cover - PAUSED or ConnectionClosed mid-body
                raise HandshakeError(400, "malformed request body")

    def _h11_room(self) -> int:
        """How many more bytes h11 may be given now.

        h11 answers 431 when an unfinished event (a chunk-size line, the
        trailer section) outgrows ``max_incomplete_event_size``, but it only
        looks when it runs out of bytes: handed a line longer than the limit
        together with its end, it parses the line instead (400 if the line is
        malformed, or accepts it).  The answer would depend on how the bytes
        were split.  So h11 never holds more than the limit plus one byte:
        a line either ends within that, or h11 holds limit + 1 unfinished
        bytes and says 431, exactly where a byte-at-a-time feed would.

        ``_h11_held`` is an upper bound, kept without copying h11's buffer;
        only when it leaves no room is the exact count asked for (a copy of
        at most limit + 1 bytes, after at least that many were fed).
        """
        limit = self._settings.max_head_size + 1
        if self._h11_held >= limit:
            self._h11_held = len(self._conn.trailing_data[0])
            # h11 raised 431 rather than hold more than the limit.
            assert self._h11_held < limit
        return limit - self._h11_held

    def _next_piece(self) -> RequestBody | RequestRejected | None:
        """The next piece of a streamed body: what arrived since the last one."""
        self._process(read_stream=True)
        if self._state is _State.CLOSED:
            # The body was malformed, too large, or cut short by the end
            # of the stream: answered (if the answer had not begun) by
            # ``_fail``.
            rejected = self._events.popleft()
            assert isinstance(rejected, RequestRejected)
            return rejected
        more = self._state is _State.STREAM
        if more and not self._body:
            return None
        piece = RequestBody(data=bytes(self._body), more=more)
        self._body.clear()
        return piece

    def _http_request(self, *, streamed: bool = False) -> HTTPRequest:
        request = self._request
        assert request is not None  # set by _start_request before BODY
        return HTTPRequest(
            method=request.method.decode("latin-1"),
            target=request.target.decode("latin-1"),
            headers=self._headers,
            http_version=request.http_version.decode("latin-1"),
            body=bytes(self._body),
            streamed=streamed,
        )

    def _queue(self, event: WebSocketRequest | HTTPRequest) -> None:
        self._events.append(event)
        self._state = _State.ANSWER

    def _end_between_requests(self) -> None:
        if len(self._buffer) > self._request_start:
            raise HandshakeError(400, "connection closed in the middle of the request head")
        self._close()

    # -- answering -----------------------------------------------------

    def _answer(self, status: int, headers: Headers, body: bytes, *, close: bool) -> None:
        if not 200 <= status <= 599 or isinstance(status, bool):
            raise LocalProtocolError(f"status {status!r} is not a final status code (200-599)")
        fields = _encode_headers(headers, _FRAMING_HEADERS)
        # RFC 9110 sections 8.6 and 15.3.5 / 15.4.5: 204 and 304 have no
        # content, and a 204 must not carry Content-Length.
        if status in (204, 304):
            if body:
                raise LocalProtocolError(f"a {status} response has no body")
        else:
            fields.append((b"Content-Length", str(len(body)).encode("ascii")))
        if close:
            fields = _with_connection_close(fields)
        self._write_response(self._conn, status, fields, body)

    def _write_response(
        self,
        conn: h11.Connection,
        status: int,
        fields: list[tuple[bytes, bytes]],
        body: bytes,
    ) -> None:
        try:
            response = h11.Response(status_code=status, headers=fields, reason=_reason(status))
        except h11.LocalProtocolError as exc:
            raise LocalProtocolError(f"invalid response header: {exc}") from None
        chunks = [conn.send(response)]
        # RFC 9110 section 9.3.2: "The server SHOULD send the same header
        # fields in response to a HEAD request as it would have sent if the
        # request method had been GET", and no content.
        if body and self._method != b"HEAD":
            chunks.append(conn.send(h11.Data(data=body)))
        chunks.append(conn.send(h11.EndOfMessage()))
        self._output.append(b"".join(chunks))

    def _fail(self, status: int, reason: str, headers: tuple[tuple[str, str], ...] = ()) -> None:
        # A peer error: answer it, tell the caller, and stop.  RFC 6455
        # section 4.2.1: if the request is not a valid handshake, "the server
        # MUST stop processing the client's handshake and return an HTTP
        # response with an appropriate error code".
        if len(reason) > _MAX_REASON:
            reason = reason[: _MAX_REASON - 3] + "..."
        if self._streaming:
            # A streamed body failed while the answer was going out: its
            # head is gone, no error response can follow it.  Just close.
            self._events.append(RequestRejected(status=status, reason=reason))
            self._close()
            return
        body = f"{reason}\n".encode()
        fields = _encode_headers(headers, _FRAMING_HEADERS)
        fields += [
            (b"Content-Type", b"text/plain; charset=utf-8"),
            (b"Content-Length", str(len(body)).encode("ascii")),
            (b"Connection", b"close"),
        ]
        conn = self._conn
        if conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):  # pragma: no cover
            conn = h11.Connection(h11.SERVER)
        self._write_response(conn, status, fields, body)
        self._events.append(RequestRejected(status=status, reason=reason))
        self._close()

    def _close(self) -> None:
        self._state = _State.CLOSED
        # A streamed request that failed is not waiting for an answer.
        self._pending = None
        self._buffer = bytearray()
        self._body = bytearray()

    def _not_a_handshake(self, method: str) -> str:
        if isinstance(self._pending, HTTPRequest):
            return f"{method}() for an HTTPRequest: answer it with send_response()"
        return (
            f"{method}() without a pending WebSocketRequest: call it once for the "
            "WebSocketRequest returned by next_event()"
        )


# -- helpers --------------------------------------------------------------


def _small_int(digits: bytes) -> int:
    # int() refuses strings of more than 4,300 digits (CVE-2020-10735); any
    # version that long is above 1.1 anyway.
    return int(digits) if len(digits) <= 9 else 10**9


def _decode_headers(request: h11.Request) -> Headers:
    return tuple(
        [(name.decode("latin-1"), value.decode("latin-1")) for name, value in request.headers]
    )


def _describe_h11_error(exc: h11.RemoteProtocolError) -> str:
    # h11's messages quote the offending bytes, as many of them as had
    # arrived.  Keep the words, drop the quote: neither the peer's bytes nor
    # the way they were split should show in the answer.
    text = str(exc)
    for marker in ("bytearray(", "b'", 'b"'):
        cut = text.find(marker)
        if cut >= 0:
            text = text[:cut]
    return "malformed request: " + (text.rstrip(" :") or "cannot parse")


def _reason(status: int) -> bytes:
    try:
        return HTTPStatus(status).phrase.encode("ascii")
    except ValueError:
        return b""


def _encode_headers(
    headers: Iterable[tuple[str, str]], forbidden: frozenset[str]
) -> list[tuple[bytes, bytes]]:
    fields = []
    for name, value in headers:
        if name.lower() in forbidden:
            raise LocalProtocolError(f"{name} is set by the protocol core, not by the caller")
        try:
            fields.append((name.encode("latin-1"), value.encode("latin-1")))
        except UnicodeEncodeError:
            raise LocalProtocolError(f"header {name!r} is not ISO-8859-1 text") from None
    return fields


# RFC 9110 section 5.5: field-value = *field-content, field-content =
# field-vchar [ 1*( SP / HTAB / field-vchar ) field-vchar ], field-vchar =
# VCHAR / obs-text.  (The rule h11 applies to the fields it writes; names,
# section 5.1's tokens, are checked with ``headers.is_token``.)
_FIELD_VALUE = re.compile(rb"(?:[\x21-\x7e\x80-\xff]+(?:[ \t]+[\x21-\x7e\x80-\xff]+)*)?")

#: RFC 6455 section 4.2.2, step 5: the fixed part of the 101 response, up to
#: the value of Sec-WebSocket-Accept.
_SWITCHING_PROTOCOLS_HEAD = (
    b"HTTP/1.1 101 Switching Protocols\r\n"
    b"Upgrade: websocket\r\n"
    b"Connection: Upgrade\r\n"
    b"Sec-WebSocket-Accept: "
)


def _checked_field(name: bytes, value: bytes) -> bytes:
    """``name: value`` as written in a response head, or LocalProtocolError."""
    if not is_token(name.decode("latin-1")):
        raise LocalProtocolError(f"invalid response header: illegal header name {name!r}")
    if not _FIELD_VALUE.fullmatch(value):
        raise LocalProtocolError(f"invalid response header: illegal header value {value!r}")
    return name + b": " + value


def _with_connection_close(fields: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    # One Connection header holding "close" and whatever the caller listed
    # (but keep-alive, which it contradicts).
    options: list[bytes] = []
    kept = []
    for name, value in fields:
        if name.lower() == b"connection":
            options += [option.strip() for option in value.split(b",") if option.strip()]
        else:
            kept.append((name, value))
    options = [option for option in options if option.lower() not in (b"close", b"keep-alive")]
    kept.append((b"Connection", b", ".join([*options, b"close"])))
    return kept
