"""Fuzz target: the client role (``wsserver.protocol.ClientConnection``).

The fuzzer plays the server: its bytes are the answer to the client's
opening handshake (the response head, then frames), fed to a
``ClientConnection`` whose key is fixed, so that a valid
``Sec-WebSocket-Accept`` can be in the seeds.

INVARIANT: events or a documented failure, never any other exception, never
unbounded memory.  Here:

* ``receive_data``, ``receive_eof`` and ``next_event`` never raise on
  anything the server sends: a bad response becomes ``HandshakeFailed``, a
  bad frame ``ConnectionFailed`` and a Close queued;
* the first event is ``HandshakeAccepted`` or ``HandshakeFailed``, and
  nothing else comes before it; after ``HandshakeFailed`` nothing comes;
* every frame the client writes is masked (RFC 6455 section 5.1), and the
  client replies to what it reads (a pong, a Close) only once open;
* how the bytes are split does not matter: the events are those of the
  whole input fed at once (but for the wording of an invalid response's
  reason, which is h11's and names what it was reading when it gave up);
* bytes kept unparsed stay under the response head limit and a frame
  header or control frame.

Input: byte 0 picks the limits (bit 0), permessage-deflate offered (bit 1),
EOF at the end (bit 2); the bytes at the end say where to split the rest,
which is the server's byte stream.

Run: ``python fuzz/fuzz_client.py [libFuzzer args] [corpus dirs]``.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["wsserver", "h11"]):
    from wsserver.protocol.client import ClientConnection
    from wsserver.protocol.codes import HandshakeFailure
    from wsserver.protocol.events import Event, HandshakeAccepted, HandshakeFailed
    from wsserver.protocol.extensions.permessage_deflate import ClientDeflateSettings
    from wsserver.protocol.settings import ProtocolSettings

# The server's bytes: outside the instrumented block, like the fuzzer's own code.
from wsserver.testing import wire

# The repository's root, for ``fuzz.cuts`` when run as a script (python fuzz/...).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from fuzz.cuts import decode, encode

#: RFC 6455 section 1.3's nonce, so that the seeds can answer it.
NONCE = b"the sample nonce"
KEY = "dGhlIHNhbXBsZSBub25jZQ=="
MASK = b"\x37\xfa\x21\x3d"

LIMITS = (
    ProtocolSettings(max_message_size=256, max_fragments=8, max_head_size=512, max_headers=8),
    ProtocolSettings(),
)


def _random_bytes(n: int) -> bytes:
    return NONCE if n == 16 else MASK


def run(config: int, pieces: list[bytes]) -> tuple[list[Event], bytes]:
    settings = LIMITS[config & 0x01]
    conn = ClientConnection(
        "example.com",
        "/",
        settings=settings,
        deflate=ClientDeflateSettings() if config & 0x02 else None,
        random_bytes=_random_bytes,
    )
    request = b"".join(conn.data_to_send())
    assert request.startswith(b"GET / HTTP/1.1\r\n")
    events: list[Event] = []
    written: list[bytes] = []
    for piece in pieces:
        conn.receive_data(piece)
        events.extend(conn.events())
        written.extend(conn.data_to_send())
        # Unparsed bytes: a frame header or control frame at most, beyond
        # what the caller stopped taking (it never stops here).
        assert conn.buffered <= 139 or not events, conn.buffered
    if config & 0x04:
        conn.receive_eof()
        events.extend(conn.events())
        written.extend(conn.data_to_send())
    return events, b"".join(written)


def _comparable(events: list[Event]) -> list[Event]:
    return [
        dataclasses.replace(event, reason="")
        if isinstance(event, HandshakeFailed) and event.failure is HandshakeFailure.INVALID_MESSAGE
        else event
        for event in events
    ]


def check_written(data: bytes) -> None:
    position = 0
    while position < len(data):
        header = wire.read_frame_header(data, position)
        assert header is not None, "a truncated frame written"
        assert header.mask == MASK, "section 5.1: a client masks every frame"
        position += header.size + header.length
    assert position == len(data)


def TestOneInput(data: bytes) -> None:
    case = decode(data)
    events, written = run(case.config, case.pieces)
    if events:
        first = events[0]
        assert isinstance(first, HandshakeAccepted | HandshakeFailed), first
        assert not any(isinstance(e, HandshakeAccepted | HandshakeFailed) for e in events[1:])
        if isinstance(first, HandshakeFailed):
            assert len(events) == 1
            assert written == b""
    else:
        assert written == b""
    check_written(written)
    whole, whole_written = run(case.config, [b"".join(case.pieces)])
    assert _comparable(whole) == _comparable(events), (whole, events)
    assert whole_written == written


def response(*fields: str) -> bytes:
    lines = [
        "HTTP/1.1 101 Switching Protocols",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Accept: {wire.accept_for(KEY)}",
        *fields,
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def seeds() -> dict[str, bytes]:
    """Small inputs that reach each part of the client."""
    text = wire.client_frame(wire.OP_TEXT, b"Hello", mask=None)
    ping = wire.client_frame(wire.OP_PING, b"p", mask=None)
    close = wire.close_frame(1000, "bye", mask=None)
    deflated = wire.client_frame(wire.OP_TEXT, b"\xf2H\xcd\xc9\xc9\x07\x00", rsv1=True, mask=None)
    return {
        "accept-messages": encode(0x00, response() + text + ping + close, (10, 3, 120)),
        "accept-deflate": encode(
            0x02, response("Sec-WebSocket-Extensions: permessage-deflate") + deflated
        ),
        "accept-masked-frame": encode(0x01, response() + wire.client_frame(1, b"x", mask=MASK)),
        "refused-404": encode(0x04, b"HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nno!"),
        "redirect": encode(
            0x00, b"HTTP/1.1 302 Found\r\nLocation: /x\r\nContent-Length: 0\r\n\r\n"
        ),
        "bad-accept": encode(0x00, response().replace(b"s3pP", b"AAAA")),
        "bad-extension": encode(0x02, response("Sec-WebSocket-Extensions: permessage-deflate; x")),
        "cut-short": encode(0x04, response()[:30]),
        "fragments": encode(
            0x01,
            response()
            + wire.client_frame(wire.OP_TEXT, b"ab", fin=False, mask=None)
            + ping
            + wire.client_frame(wire.OP_CONTINUATION, b"cd", mask=None),
            (1, 1, 1, 1),
        ),
    }


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
