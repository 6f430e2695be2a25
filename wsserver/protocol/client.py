"""``ClientConnection``: one client-side WebSocket connection, sans I/O.

The same engine as ``ServerConnection`` (``connection.BaseConnection``), in
the other role.  The drive loop is the server's (docs/protocol.md):

1. ``ClientConnection(host, target, ...)`` queues the opening handshake
   (RFC 6455 section 4.1) in ``data_to_send``: write it.
2. Bytes from the socket go to ``receive_data``, end of file to
   ``receive_eof``; ``next_event`` returns what they meant.  The first
   event is ``HandshakeAccepted`` (OPEN) or ``HandshakeFailed`` (CLOSED).
3. Once open, the send calls and events are the server's: ``send_text``,
   ``send_bytes``, ``send_fragment``, ``send_ping``, ``send_close``,
   ``fail``; ``TextMessage``, ``Ping`` (answered already), ``CloseReceived``...
4. ``must_close_transport``: after a failed handshake at once; after the
   closing handshake (or a failure) once the server has closed its side,
   since section 7.1.1 has the server close TCP first: "the client SHOULD
   wait for the server to close the connection but MAY close the connection
   at any time after sending and receiving a Close message, e.g., if it has
   not received a TCP Close from the server in a reasonable time period."
   The driver keeps that period (its close timeout).

What differs from the server, all of it here:

* every frame sent is masked with a fresh key (section 5.3: "The masking
  key is a 32-bit value chosen at random by the client ... MUST be derived
  from a strong source of entropy"): ``os.urandom`` per frame;
* frames from the server must not be masked (section 5.1), checked by the
  reader built with ``masked=False``: 1002 otherwise;
* permessage-deflate is offered (``ClientDeflateSettings``) and the
  response checked against the offer (RFC 7692 section 7).

The response is parsed by h11 in its client role, whose single limit on an
incomplete event is ``ProtocolSettings.max_head_size``; a non-101 response's
body is kept up to ``max_body_size``, for the caller to show.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from operator import attrgetter

import h11

from .codes import HandshakeFailure, Opcode
from .connection import _JOIN_BELOW, BaseConnection
from .events import Event, HandshakeAccepted, HandshakeFailed, Headers
from .exceptions import InvalidResponse, LocalProtocolError
from .extensions.permessage_deflate import ClientDeflateSettings, client_offer
from .frames import masked_frame_header
from .handshake import client_key, validate_response
from .headers import is_token
from .masking import apply_mask
from .reader import MessageReader
from .settings import ProtocolSettings
from .state import State, Trigger

# h11.Data.data, read untyped: h11 declares bytes and hands a bytearray, and
# the compiled build (mypyc) checks a declared type where it is read.
_h11_data: Callable[[h11.Data], bytes | bytearray] = attrgetter("data")

__all__ = ["ClientConnection"]

_DEFAULT_DEFLATE = ClientDeflateSettings()

# Headers the core writes itself: a caller who passes one has a bug (two
# keys, or an Upgrade the server could read either way).
_HANDSHAKE_HEADERS = frozenset(
    {
        "host",
        "upgrade",
        "connection",
        "sec-websocket-key",
        "sec-websocket-version",
        "sec-websocket-protocol",
        "sec-websocket-extensions",
        "content-length",
        "transfer-encoding",
    }
)

RandomBytes = Callable[[int], bytes]


class ClientConnection(BaseConnection):
    """The client side of one connection, from the request to the end.

    Args:
        host: the ``Host`` header: the server's name, with ``:port`` when it
            is not the scheme's default (RFC 9110 section 7.2).
        target: the request-target, path and query (``"/chat?room=1"``).
        settings: limits; ``ProtocolSettings()`` when omitted.
            ``max_head_size`` bounds the response head, ``max_body_size``
            how much of a refusal's body is kept.
        subprotocols: offered in ``Sec-WebSocket-Protocol``, in order of
            preference.
        headers: more request headers (``Origin``, ``Authorization``,
            ``User-Agent``...); not the ones the handshake itself writes.
        deflate: permessage-deflate to offer, or ``None`` not to.
        random_bytes: the source of the key and of every masking key,
            ``os.urandom`` (the operating system's CSPRNG); tests pass a
            fixed one to compare bytes.

    Raises:
        LocalProtocolError: a subprotocol that is not a token, a header the
            handshake writes itself, or a header h11 refuses.
    """

    def __init__(
        self,
        host: str,
        target: str = "/",
        *,
        settings: ProtocolSettings | None = None,
        subprotocols: Sequence[str] = (),
        headers: Headers = (),
        deflate: ClientDeflateSettings | None = _DEFAULT_DEFLATE,
        random_bytes: RandomBytes = os.urandom,
    ) -> None:
        super().__init__(settings)
        self._random_bytes = random_bytes
        self._offered_subprotocols = tuple(subprotocols)
        self._deflate_settings = deflate
        self._key = client_key(random_bytes(16))
        self._aborted = False
        self._response: h11.Response | None = None
        self._body = bytearray()
        self._h11: h11.Connection | None = h11.Connection(
            h11.CLIENT, max_incomplete_event_size=self.settings.max_head_size
        )
        fields: list[tuple[str, str]] = [
            ("Host", host),
            # Section 4.1: "The request MUST contain an |Upgrade| header
            # field whose value MUST include the "websocket" keyword", "a
            # |Connection| header field whose value MUST include the
            # "Upgrade" token", the key, and "a header field with the name
            # |Sec-WebSocket-Version|. The value of this header field MUST
            # be 13."
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", self._key),
            ("Sec-WebSocket-Version", "13"),
        ]
        if subprotocols:
            # Section 4.1: each "MUST be ... characters in the range U+0021
            # to U+007E not including separator characters".
            for subprotocol in subprotocols:
                if not is_token(subprotocol):
                    raise LocalProtocolError(f"subprotocol {subprotocol!r} is not a token")
            fields.append(("Sec-WebSocket-Protocol", ", ".join(subprotocols)))
        if deflate is not None:
            fields.append(("Sec-WebSocket-Extensions", client_offer(deflate)))
        for name, value in headers:
            if name.lower() in _HANDSHAKE_HEADERS:
                raise LocalProtocolError(f"the handshake writes the {name} header itself")
            fields.append((name, value))
        try:
            request = self._h11.send(h11.Request(method="GET", target=target, headers=fields))
        except h11.LocalProtocolError as exc:
            raise LocalProtocolError(f"invalid request: {exc}") from None
        # A GET has no body: ending it now lets h11 wait for the 101.
        end = self._h11.send(h11.EndOfMessage())
        assert request is not None
        assert end is not None
        self._output.append(request + end)

    @property
    def key(self) -> str:
        """The ``Sec-WebSocket-Key`` sent."""
        return self._key

    @property
    def must_close_transport(self) -> bool:
        """Whether the transport must be closed once ``data_to_send`` is written.

        After a failed handshake, at once.  After the closing handshake or a
        failure, once the server closed its side (``receive_eof``): RFC 6455
        section 7.1.1 has the server close TCP first; the driver closes on
        its own after a timeout.
        """
        return self._state is State.CLOSED and (self._eof or self._aborted)

    # -- the handshake -------------------------------------------------

    def _receive_handshake_data(self, data: bytes | bytearray | memoryview) -> None:
        assert self._h11 is not None
        if data:  # to h11, b"" means end of file
            self._h11.receive_data(bytes(data))

    def _handshake_eof(self) -> None:
        if self._h11 is not None and self._state is State.CONNECTING:
            self._h11.receive_data(b"")

    def _handshake_buffered(self) -> int:
        return 0 if self._h11 is None else len(self._h11.trailing_data[0])

    def _next_handshake_event(self) -> Event | None:
        http = self._h11
        assert http is not None
        while True:
            try:
                event = http.next_event()
            except h11.RemoteProtocolError as exc:
                return self._failed(HandshakeFailure.INVALID_MESSAGE, f"invalid response: {exc}")
            if event is h11.NEED_DATA:
                return None
            if isinstance(event, h11.InformationalResponse | h11.Response) and not self._fits(
                event.headers
            ):
                return self._failed(
                    HandshakeFailure.INVALID_MESSAGE,
                    "response head over the limits (max_headers, max_head_size)",
                )
            if isinstance(event, h11.InformationalResponse):
                if event.status_code == 101:
                    return self._switch(event)
                # RFC 9110 section 15.2: "A client MUST be able to parse one
                # or more 1xx responses received prior to a final response,
                # even if the client does not expect one."
                continue
            if isinstance(event, h11.Response):
                self._response = event
                continue
            if isinstance(event, h11.Data):
                room = self.settings.max_body_size - len(self._body)
                data = _h11_data(event)
                self._body += data[:room]
                if len(data) > room:
                    return self._refused()  # enough to show: the rest is dropped
                continue
            if isinstance(event, h11.EndOfMessage):
                return self._refused()
            # h11.ConnectionClosed (h11 reports an end of file before a
            # whole response as an error, above, so this is defensive).
            return self._failed(  # pragma: no cover
                HandshakeFailure.INVALID_MESSAGE, "connection closed before the handshake's end"
            )

    def _fits(self, fields: Iterable[tuple[bytes, bytes]]) -> bool:
        # h11 bounds a head that arrives in pieces (max_incomplete_event_size);
        # one that arrives whole is bounded here, with the server's limits.
        count = size = 0
        for name, value in fields:
            count += 1
            size += len(name) + len(value) + 4
        return count <= self.settings.max_headers and size <= self.settings.max_head_size

    def _switch(self, response: h11.InformationalResponse) -> Event:
        headers = _decode_headers(response.headers)
        try:
            subprotocol, extensions, codec = validate_response(
                headers, self._key, self._offered_subprotocols, self._deflate_settings
            )
        except InvalidResponse as error:
            return self._failed(error.failure, error.reason, 101, headers)
        assert self._h11 is not None
        remainder, _closed = self._h11.trailing_data
        self._h11 = None  # an open connection keeps no HTTP state
        self._deflate = codec
        self.subprotocol = subprotocol
        self.extensions = extensions
        self._reader = MessageReader(self.settings, codec, masked=False)
        self._transition(Trigger.HANDSHAKE_COMPLETED)
        if remainder:
            self._reader.feed(remainder)
        return HandshakeAccepted(headers=headers, subprotocol=subprotocol, extensions=extensions)

    def _refused(self) -> Event:
        # Section 4.1, step 1: "If the status code received from the server
        # is not 101, the client handles the response per HTTP procedures":
        # the driver's to follow a redirect, or to report.
        response = self._response
        assert response is not None
        return self._failed(
            HandshakeFailure.INVALID_STATUS,
            f"the server answered {response.status_code}, not 101",
            response.status_code,
            _decode_headers(response.headers),
            bytes(self._body),
        )

    def _failed(
        self,
        failure: HandshakeFailure,
        reason: str,
        status: int | None = None,
        headers: Headers = (),
        body: bytes = b"",
    ) -> HandshakeFailed:
        # Section 4.1: "the client MUST _Fail the WebSocket Connection_";
        # before the connection is established that is closing TCP (7.1.7),
        # so the transport is to be closed at once.
        self._h11 = None
        self._aborted = True
        self._transition(Trigger.HTTP_CLOSED)
        return HandshakeFailed(
            failure=failure, reason=reason, status=status, headers=headers, body=body
        )

    # -- sending -------------------------------------------------------

    def _write_frame(
        self, opcode: Opcode, payload: bytes, *, fin: bool = True, rsv1: bool = False
    ) -> None:
        # Section 5.3: a fresh key per frame, "derived from a strong source
        # of entropy", so that the bytes on the wire cannot be chosen by a
        # script to look like something else to a proxy (section 10.3).
        key = self._random_bytes(4)
        header = masked_frame_header(opcode, len(payload), key, fin=fin, rsv1=rsv1)
        masked = apply_mask(payload, key)
        if len(payload) < _JOIN_BELOW:
            self._output.append(header + masked)
        else:
            self._output.append(header)
            self._output.append(masked)


def _decode_headers(fields: Iterable[tuple[bytes, bytes]]) -> Headers:
    # h11 lowercases names; both decoded as ISO-8859-1, as the server's.
    return tuple((name.decode("latin-1"), value.decode("latin-1")) for name, value in fields)
