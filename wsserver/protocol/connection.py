"""``BaseConnection``, the engine both roles share, and ``ServerConnection``.

``ClientConnection`` (``client.py``) is the other role on the same engine.

The drive loop (docs/protocol.md walks through it):

1. Bytes from the socket go to ``receive_data``; end of file to
   ``receive_eof``.
2. ``next_event`` returns what those bytes meant, one event at a time, until
   it returns ``None``.
3. The caller answers: ``accept``/``reject`` a ``WebSocketRequest``,
   ``send_response`` to an ``HTTPRequest``, ``send_text``/``send_bytes``/...
   once open.
4. Everything to write is in ``data_to_send``; write it in order.
5. When ``must_close_transport`` is true, flush and close the socket.

The connection answers pings and echoes a peer's Close by itself (RFC 6455
sections 5.5.2 and 5.5.1), so an application never writes a pong.  A peer's
error never raises: it becomes a Close frame in ``data_to_send`` (or an HTTP
error response) and a terminal ``ConnectionFailed`` (or ``RequestRejected``)
event.  Misuse by the caller raises ``LocalProtocolError``.

Ordering.  With ``next_event(hold_replies=True)`` the connection stops in
front of a Close frame or a protocol error instead of answering it, so that
a server can first let its application reply to the messages that came
before (Autobahn cases 3.2, 5.15, 7.1.1 check that those replies are not
lost).  Call ``next_event()`` without it once the application has caught up.
"""

from __future__ import annotations

from .codes import CloseCode, Opcode
from .events import (
    CloseReceived,
    ConnectionFailed,
    ConnectionLost,
    Event,
    Headers,
    Ping,
    Pong,
    RequestRejected,
    WebSocketRequest,
)
from .exceptions import FrameError, LocalProtocolError
from .extensions.permessage_deflate import DeflateSettings, PerMessageDeflate, negotiate
from .frames import (
    MAX_CLOSE_REASON,
    MAX_CONTROL_PAYLOAD,
    PreparedMessage,
    encode_close_payload,
    frame_header,
    parse_close_payload,
)
from .http import HTTPPhase
from .reader import ControlFrame, MessageReader
from .settings import ProtocolSettings
from .state import TRANSITION_TABLE, State, Trigger, refusal, transition

__all__ = ["BaseConnection", "ServerConnection"]

#: Payloads up to this size are joined to their header before writing: one
#: small copy is cheaper than a second buffer in the transport.
_JOIN_BELOW = 1024

_DEFAULT_DEFLATE = DeflateSettings()

# States, triggers and opcodes as module constants: the per-message paths
# use them, and an attribute of an Enum class costs a descriptor call on
# Python 3.11.
_CONNECTING = State.CONNECTING
_CLOSED = State.CLOSED
_ACCEPT = Trigger.ACCEPT
_REJECT = Trigger.REJECT
_SEND_MESSAGE = Trigger.SEND_MESSAGE
_SEND_FRAGMENT = Trigger.SEND_FRAGMENT
_SEND_PING = Trigger.SEND_PING
_SEND_PONG = Trigger.SEND_PONG
_SEND_CLOSE = Trigger.SEND_CLOSE
_FAIL = Trigger.FAIL
_HTTP_CLOSED = Trigger.HTTP_CLOSED
_CLOSE_RECEIVED = Trigger.CLOSE_RECEIVED
_PROTOCOL_ERROR = Trigger.PROTOCOL_ERROR
_EOF = Trigger.EOF
_PING = Opcode.PING
_PONG = Opcode.PONG
_CLOSE = Opcode.CLOSE


class BaseConnection:
    """One WebSocket connection, either role: everything but the handshake.

    Everything after the opening handshake is the same for a server and a
    client but for the masking (RFC 6455 section 5.1), so it is written
    once, here: the reader, the state machine, the replies to pings and
    Close frames, the send calls.  ``ServerConnection`` (below) and
    ``ClientConnection`` (``client.py``) add their side of the handshake
    through four hooks: ``_receive_handshake_data``, ``_handshake_eof``,
    ``_next_handshake_event`` and ``_handshake_buffered``; the client
    overrides ``_write_frame`` to mask what it sends.

    Args:
        settings: limits; ``ProtocolSettings()`` when omitted.
    """

    def __init__(self, settings: ProtocolSettings | None = None) -> None:
        self.settings = settings if settings is not None else ProtocolSettings()
        self._state = _CONNECTING
        # The current state's row of the transition table: the triggers
        # allowed now, and the state each leads to.
        self._moves = TRANSITION_TABLE[_CONNECTING]
        self._reader: MessageReader | None = None
        self._deflate: PerMessageDeflate | None = None
        self._output: list[bytes] = []
        self._eof = False
        # A Close frame or a protocol error held back by hold_replies.
        self._held: ControlFrame | FrameError | None = None
        # The terminal event of a connection failed as it opened, for the
        # next next_event().
        self._failed_on_accept: ConnectionFailed | None = None
        # Payloads of pings sent and not answered yet, oldest first.
        self._pending_pings: dict[bytes, None] = {}
        # The type of a streamed message being sent (TEXT or BINARY), if any.
        self._streaming: Opcode | None = None
        self._streaming_compressed = False

        #: Subprotocol agreed in the handshake.
        self.subprotocol: str | None = None
        #: ``Sec-WebSocket-Extensions`` value agreed in the handshake.
        self.extensions: str | None = None
        #: Code and reason of the Close frame received (1005 for none).
        self.close_code: int | None = None
        self.close_reason: str = ""
        #: Code and reason of the Close frame sent, if any.
        self.sent_close_code: int | None = None
        self.sent_close_reason: str = ""

    # -- the role's handshake (overridden) -----------------------------

    def _receive_handshake_data(self, data: bytes | bytearray | memoryview) -> None:
        raise NotImplementedError  # pragma: no cover

    def _handshake_eof(self) -> None:
        raise NotImplementedError  # pragma: no cover

    def _next_handshake_event(self) -> Event | None:
        raise NotImplementedError  # pragma: no cover

    def _handshake_buffered(self) -> int:
        raise NotImplementedError  # pragma: no cover

    # -- state ---------------------------------------------------------

    @property
    def state(self) -> State:
        """The connection's state; see ``state.TRANSITION_TABLE``."""
        return self._state

    def _transition(self, trigger: Trigger) -> None:
        """Move to the state the table gives for ``trigger``.

        The only place the state changes.  Raises ``LocalProtocolError``
        (the application's call) or ``RemoteProtocolError`` (the peer's
        doing) when the table has no such move from the current state.
        """
        new = transition(self._state, trigger)
        self._state = new
        self._moves = TRANSITION_TABLE[new]

    def _require(self, trigger: Trigger) -> None:
        """Raise unless the table allows ``trigger`` now, changing nothing.

        For a call to check before its side effects, and for the calls the
        table keeps in the same state (sending while OPEN).
        """
        if trigger not in self._moves:
            raise refusal(self._state, trigger)

    @property
    def reply_held(self) -> bool:
        """Whether ``next_event(hold_replies=True)`` is holding a Close or error."""
        return self._held is not None

    @property
    def eof_received(self) -> bool:
        """Whether ``receive_eof`` was called."""
        return self._eof

    @property
    def buffered(self) -> int:
        """Bytes received and not parsed yet, for the caller's backpressure.

        While CONNECTING, the bytes the HTTP phase keeps after the request
        that waits for an answer (a pipelined request, early frames).
        """
        if self._reader is not None:
            return self._reader.buffered
        return self._handshake_buffered()

    # -- receiving -----------------------------------------------------

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Take bytes read from the transport.  Never raises for bad input."""
        if self._state is _CONNECTING:
            self._receive_handshake_data(data)
        elif self._reader is not None and self._state is not _CLOSED:
            self._reader.feed(data)

    def receive_eof(self) -> None:
        """The transport reached end of file."""
        self._eof = True
        self._handshake_eof()

    def events(self) -> list[Event]:
        """All events the received bytes allow, without holding anything back."""
        found = []
        while (event := self.next_event()) is not None:
            found.append(event)
        return found

    def next_event(self, *, hold_replies: bool = False) -> Event | None:
        """The next event, or ``None`` when more bytes are needed.

        Args:
            hold_replies: stop in front of a Close frame or a protocol error
                (returning ``None``) rather than answering it now.
        """
        if self._state is _CONNECTING:
            return self._next_handshake_event()
        if self._failed_on_accept is not None:
            event, self._failed_on_accept = self._failed_on_accept, None
            return event
        if self._state is _CLOSED:
            return None
        if self._held is not None:
            if hold_replies:
                return None
            held, self._held = self._held, None
            if isinstance(held, FrameError):
                return self._fail_by_peer(held)
            return self._receive_close(held.payload)
        reader = self._reader
        if reader is None:  # pragma: no cover - OPEN and CLOSING have one
            return None
        try:
            item = reader.read()
        except FrameError as error:
            if hold_replies:
                self._held = error
                return None
            return self._fail_by_peer(error)
        if item is None:
            if self._eof:
                self._transition(_EOF)
                return ConnectionLost(code=CloseCode.ABNORMAL_CLOSURE, reason="")
            return None
        if isinstance(item, ControlFrame):
            opcode = item.opcode
            payload = item.payload
            if opcode is _PING:
                # Section 5.5.2: "Upon receipt of a Ping frame, an endpoint
                # MUST send a Pong frame in response ... [with] identical
                # Application data".  Not once our Close is out (5.5.1):
                # the table allows a pong in OPEN only.
                if _SEND_PONG in self._moves:
                    self._write_frame(_PONG, payload)
                return Ping(payload=payload)
            if opcode is _PONG:
                return Pong(payload=payload, acknowledged=self._acknowledge(payload))
            if hold_replies:
                self._held = item
                return None
            return self._receive_close(payload)
        return item

    def _acknowledge(self, payload: bytes) -> tuple[bytes, ...]:
        # Section 5.5.3: "an endpoint MAY elect to send a Pong frame for only
        # the most recently processed Ping frame", so a pong answers its
        # ping and every older one.
        if payload not in self._pending_pings:
            return ()
        answered = []
        for pending in self._pending_pings:
            answered.append(pending)
            if pending == payload:
                break
        for pending in answered:
            del self._pending_pings[pending]
        return tuple(answered)

    def _receive_close(self, payload: bytes) -> Event:
        try:
            code, reason = parse_close_payload(payload)
        except FrameError as error:
            return self._fail_by_peer(error)
        self.close_code, self.close_reason = code, reason
        if _SEND_CLOSE in self._moves:
            # Section 5.5.1: "If an endpoint receives a Close frame and did
            # not previously send a Close frame, the endpoint MUST send a
            # Close frame in response ... typically echoing the status code
            # it received."  (The table allows a Close until one is sent.)
            echoed = None if code == CloseCode.NO_STATUS_RECEIVED else code
            self._write_close(echoed, "")
        self._transition(_CLOSE_RECEIVED)
        return CloseReceived(code=code, reason=reason)

    def _fail_by_peer(self, error: FrameError) -> ConnectionFailed:
        # Section 7.1.7, _Fail the WebSocket Connection_: send a Close frame
        # with the status code (if none was sent yet), then close the TCP
        # connection.
        if _SEND_CLOSE in self._moves:
            self._write_close(error.code, _truncate_reason(error.reason))
        self._transition(_PROTOCOL_ERROR)
        return ConnectionFailed(code=error.code, reason=error.reason)

    # -- sending -------------------------------------------------------

    def send_text(self, text: str, *, compress: bool | None = None) -> int:
        """Send a text message.

        Args:
            compress: ``None`` compresses when permessage-deflate was agreed
                and the message is not smaller than the codec's threshold;
                ``False`` sends it uncompressed.

        Returns:
            The payload's size in bytes, UTF-8 encoded, before compression
            (what the I/O layer counts to batch its writes).
        """
        return self._send_message(Opcode.TEXT, text.encode("utf-8"), compress)

    def send_bytes(
        self, data: bytes | bytearray | memoryview, *, compress: bool | None = None
    ) -> int:
        """Send a binary message.  ``compress`` and the result as for
        ``send_text``; pass ``False`` for data that is already compressed."""
        return self._send_message(Opcode.BINARY, bytes(data), compress)

    def _send_message(self, opcode: Opcode, payload: bytes, compress: bool | None) -> int:
        self._require(_SEND_MESSAGE)
        if self._streaming is not None:
            raise LocalProtocolError("a streamed message is being sent: finish it first")
        codec = self._deflate
        size = len(payload)
        if codec is not None and self._should_compress(codec, size, compress):
            self._write_frame(opcode, codec.compress(payload, True), rsv1=True)
        else:
            self._write_frame(opcode, payload)
        return size

    def send_fragment(
        self, data: str | bytes | bytearray | memoryview, *, fin: bool, compress: bool | None = None
    ) -> int:
        """Send one fragment of a message whose size need not be known ahead.

        RFC 6455 section 5.4.  The first fragment's type (``str`` for text,
        bytes for binary) decides the message's type and whether it is
        compressed; the following ones must have the same type and go out as
        continuation frames, until one with ``fin=True`` ends the message.
        Control frames may be sent in between.  Returns the fragment's size
        as ``send_text`` does.
        """
        self._require(_SEND_FRAGMENT)
        is_text = isinstance(data, str)
        payload = data.encode("utf-8") if isinstance(data, str) else bytes(data)
        size = len(payload)
        codec = self._deflate
        if self._streaming is None:
            opcode = Opcode.TEXT if is_text else Opcode.BINARY
            self._streaming = opcode
            # The whole message is compressed or not, so a streamed message
            # decides on its first fragment (RFC 7692 section 6.1).
            self._streaming_compressed = codec is not None and compress is not False
            first = True
        else:
            if is_text != (self._streaming is Opcode.TEXT):
                raise LocalProtocolError("a streamed message's fragments must all be str or bytes")
            opcode = Opcode.CONTINUATION
            first = False
        if self._streaming_compressed:
            assert codec is not None
            payload = codec.compress(payload, fin)
        self._write_frame(opcode, payload, fin=fin, rsv1=first and self._streaming_compressed)
        if fin:
            self._streaming = None
            self._streaming_compressed = False
        return size

    @staticmethod
    def _should_compress(codec: PerMessageDeflate, size: int, compress: bool | None) -> bool:
        if compress is None:
            return size >= codec.min_size
        return compress

    def send_ping(self, payload: bytes | bytearray | memoryview = b"") -> None:
        """Send a ping.  A later ``Pong`` event lists it in ``acknowledged``.

        Raises:
            LocalProtocolError: not open; payload over 125 bytes; or a ping
                with the same payload is still unanswered (the pong could not
                tell them apart).
        """
        self._require(_SEND_PING)
        payload = bytes(payload)  # a bytearray cannot be looked up
        if len(payload) > MAX_CONTROL_PAYLOAD:
            raise LocalProtocolError("a ping payload is at most 125 bytes")
        if payload in self._pending_pings:
            raise LocalProtocolError("a ping with this payload is already waiting for its pong")
        self._pending_pings[payload] = None
        self._write_frame(Opcode.PING, payload)

    def send_pong(self, payload: bytes | bytearray | memoryview = b"") -> None:
        """Send an unsolicited pong (section 5.5.3: a unidirectional heartbeat)."""
        self._require(_SEND_PONG)
        payload = bytes(payload)
        if len(payload) > MAX_CONTROL_PAYLOAD:
            raise LocalProtocolError("a pong payload is at most 125 bytes")
        self._write_frame(Opcode.PONG, payload)

    def send_close(self, code: int = CloseCode.NORMAL_CLOSURE, reason: str = "") -> None:
        """Start the closing handshake (section 7.1.2).

        Messages can still arrive until the peer's Close; then the state is
        CLOSED and the transport must be closed.
        """
        self._require(_SEND_CLOSE)
        self._write_close(code, reason)
        self._transition(_SEND_CLOSE)

    def fail(self, code: int, reason: str = "") -> None:
        """Fail the connection from our side (section 7.1.7).

        Sends a Close frame if none was sent yet, and does not wait for the
        peer's: the transport must be closed now.  For local errors such as
        a handler crash (1011) or a missing pong.
        """
        # Refused before the handshake (use reject()), a no-op once CLOSED.
        self._require(_FAIL)
        if _SEND_CLOSE in self._moves:
            self._write_close(code, _truncate_reason(reason))
        self._transition(_FAIL)
        # A held Close or error will not be answered now.
        self._held = None

    def _write_close(self, code: int | None, reason: str) -> None:
        payload = encode_close_payload(code, reason)
        self.sent_close_code = CloseCode.NO_STATUS_RECEIVED if code is None else code
        self.sent_close_reason = reason
        self._write_frame(_CLOSE, payload)

    def _write_frame(
        self, opcode: Opcode, payload: bytes, *, fin: bool = True, rsv1: bool = False
    ) -> None:
        header = frame_header(opcode, len(payload), fin=fin, rsv1=rsv1)
        if len(payload) < _JOIN_BELOW:
            self._output.append(header + payload)
        else:
            self._output.append(header)
            self._output.append(payload)

    def data_to_send(self) -> list[bytes]:
        """Bytes to write to the transport, in order; drained by this call."""
        output = self._output
        if output:
            self._output = []
        return output


class ServerConnection(BaseConnection):
    """The server side of one connection, from the HTTP request to the end.

    Args:
        settings: limits; ``ProtocolSettings()`` when omitted.
        deflate: permessage-deflate settings, or ``None`` to never negotiate
            compression.
        stream_bodies: give plain requests' bodies as ``RequestBody``
            events, read as the caller asks, rather than whole with the
            ``HTTPRequest`` (see ``HTTPPhase``).
    """

    def __init__(
        self,
        settings: ProtocolSettings | None = None,
        *,
        deflate: DeflateSettings | None = _DEFAULT_DEFLATE,
        stream_bodies: bool = False,
    ) -> None:
        super().__init__(settings)
        self._deflate_settings = deflate
        self._http: HTTPPhase | None = HTTPPhase(self.settings, stream_bodies=stream_bodies)
        self._request: WebSocketRequest | None = None

    @property
    def must_close_transport(self) -> bool:
        """Whether the transport must be closed once ``data_to_send`` is written.

        RFC 6455 section 7.1.1: "the server ... SHOULD close the underlying
        TCP connection" first once the closing handshake is done.
        """
        if self._state is _CLOSED:
            return True
        return self._http is not None and self._http.must_close

    def _receive_handshake_data(self, data: bytes | bytearray | memoryview) -> None:
        assert self._http is not None
        self._http.receive_data(bytes(data))

    def _handshake_eof(self) -> None:
        if self._http is not None:
            self._http.receive_eof()

    def _handshake_buffered(self) -> int:
        return self._http.buffered if self._http is not None else 0

    def _next_handshake_event(self) -> Event | None:
        return self._next_http_event()

    def _next_http_event(self) -> Event | None:
        http = self._http
        assert http is not None
        event = http.next_event()
        if isinstance(event, WebSocketRequest):
            self._request = event
        elif isinstance(event, RequestRejected) or (
            event is None and http.must_close and not http.awaiting_answer
        ):
            self._transition(_HTTP_CLOSED)
        return event

    # -- the HTTP phase ------------------------------------------------

    def accept(self, subprotocol: str | None = None, headers: Headers = ()) -> None:
        """Accept the pending ``WebSocketRequest`` with a 101 response.

        permessage-deflate is negotiated here (RFC 7692 section 5) when the
        connection has deflate settings and the client offered it.

        If the client did not wait for the answer and sent more than the
        HTTP phase keeps meanwhile (``max_head_size + max_body_size``), the
        excess was dropped and the frames cannot be read: the connection is
        failed right after the 101 (a Close 1009 follows it, the state is
        CLOSED, and ``next_event`` returns ``ConnectionFailed``).

        Raises:
            LocalProtocolError: no handshake is pending, or ``subprotocol`` is
                not one the client offered.
        """
        request = self._pending_request("accept", _ACCEPT)
        http = self._http
        assert http is not None
        codec = None
        header = None
        if self._deflate_settings is not None and request.extensions:
            negotiated = negotiate(request.extensions, self._deflate_settings)
            if negotiated is not None:
                header, codec = negotiated
        remainder = http.accept(subprotocol, header, headers)
        self._output.extend(http.data_to_send())
        self._http = None  # free the HTTP parser: an open connection keeps no HTTP state
        self._request = None
        self._deflate = codec
        self.subprotocol = subprotocol
        self.extensions = header
        self._reader = MessageReader(self.settings, codec)
        self._transition(_ACCEPT)
        if http.dropped_data:
            # RFC 6455 section 4.1: "Once the client's opening handshake has
            # been sent, the client MUST wait for a response from the server
            # before sending any further data."  This one sent more than the
            # HTTP phase keeps meanwhile, and the excess was dropped: the
            # frame stream has a hole, so fail the connection after the 101.
            self._failed_on_accept = self._fail_by_peer(
                FrameError(
                    CloseCode.MESSAGE_TOO_BIG, "too much data before the handshake completed"
                )
            )
            return
        self._reader.feed(remainder)

    def reject(self, status: int, headers: Headers = (), body: bytes = b"") -> None:
        """Answer the pending ``WebSocketRequest`` with another HTTP response.

        The transport is closed after it (``must_close_transport``).
        """
        self._pending_request("reject", _REJECT)
        assert self._http is not None
        self._http.reject(status, headers, body)
        self._request = None
        self._transition(_REJECT)

    def send_response(self, status: int, headers: Headers = (), body: bytes = b"") -> None:
        """Answer the pending plain ``HTTPRequest``.

        The connection then reads the next request, unless either side asked
        to close it (``must_close_transport``).
        """
        if self._http is None:
            raise LocalProtocolError("send_response() after the WebSocket handshake")
        self._http.send_response(status, headers, body)

    def start_response(self, status: int, headers: Headers = ()) -> None:
        """Answer the pending ``HTTPRequest`` with a streamed body.

        The head is queued now; send the body with ``send_body`` and end it
        with ``end_response`` (see ``HTTPPhase.start_response``).
        """
        self._http_phase("start_response").start_response(status, headers)

    def send_body(self, data: bytes) -> None:
        """Queue the next piece of a body begun with ``start_response``."""
        self._http_phase("send_body").send_body(data)

    def end_response(self) -> None:
        """End a body begun with ``start_response``; then as ``send_response``."""
        self._http_phase("end_response").end_response()

    def _http_phase(self, action: str) -> HTTPPhase:
        if self._http is None:
            raise LocalProtocolError(f"{action}() after the WebSocket handshake")
        return self._http

    def _pending_request(self, action: str, trigger: Trigger) -> WebSocketRequest:
        # A WebSocketRequest is pending only while CONNECTING; the table is
        # asked as well, before the call writes anything.
        if self._request is None:
            raise LocalProtocolError(f"{action}() needs a pending WebSocketRequest")
        self._require(trigger)
        return self._request

    def send_prepared(self, message: PreparedMessage, *, compress: bool = False) -> None:
        """Send a message encoded once by ``frames.prepare_message``.

        The prepared frame's bytes are written as they are, which is what
        makes broadcasting cheap.  With ``compress=True`` and
        permessage-deflate agreed, the payload is compressed for this
        connection instead (each connection has its own compression context).
        """
        self._require(_SEND_MESSAGE)
        if self._streaming is not None:
            raise LocalProtocolError("a streamed message is being sent: finish it first")
        codec = self._deflate
        if compress and codec is not None and len(message.payload) >= codec.min_size:
            self._write_frame(message.opcode, codec.compress(message.payload, True), rsv1=True)
        else:
            self._output.append(message.frame)

    def data_to_send(self) -> list[bytes]:
        """Bytes to write to the transport, in order; drained by this call."""
        if self._http is not None:
            http_output = self._http.data_to_send()
            if http_output:
                return http_output
        output = self._output
        if output:
            self._output = []
        return output


def _truncate_reason(reason: str) -> str:
    """Cut a reason to what a Close frame holds, on a character boundary."""
    encoded = reason.encode("utf-8")
    if len(encoded) <= MAX_CLOSE_REASON:
        return reason
    return encoded[:MAX_CLOSE_REASON].decode("utf-8", "ignore")
