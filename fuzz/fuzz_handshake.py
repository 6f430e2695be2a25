"""Fuzz target: the HTTP phase (``wsserver.protocol.http.HTTPPhase``).

INVARIANT: events or a documented failure, never any other exception, never
unbounded memory.  Here:

* ``receive_data``, ``receive_eof`` and ``next_event`` never raise on
  anything the peer sends: its errors become a ``RequestRejected`` event and
  a queued response.  The harness answers every ``WebSocketRequest`` and
  ``HTTPRequest`` as the API allows (accept/reject/send_response, with
  arguments it never gets wrong), so a ``LocalProtocolError`` is a finding
  too: the core blamed a correct caller;
* how the bytes are split does not matter: the events, the answers' bytes
  (but for ``100 Continue``, which is sent only while the body is awaited),
  ``must_close`` and the bytes left for the WebSocket stream after
  ``accept()`` are those of the whole input fed at once;
* the head scanner looks at each byte a bounded number of times
  (``bytes_examined``), however the input is split.

With late answers (the harness answers after every fourth piece only), the
bytes the phase keeps while a request waits are bounded, and the split
checks are off: what is dropped then depends on when bytes arrive.

Input: byte 0 picks the limits, EOF and late answers; bytes
1-4 choose the answers; the bytes at the end say where to split the rest,
which is the client's byte stream.

Run: ``python fuzz/fuzz_handshake.py [libFuzzer args] [corpus dirs]``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["wsserver", "h11"]):
    from wsserver.protocol.events import Headers, HTTPRequest, RequestRejected, WebSocketRequest
    from wsserver.protocol.extensions.permessage_deflate import DeflateSettings, negotiate
    from wsserver.protocol.http import HTTPPhase
    from wsserver.protocol.settings import ProtocolSettings

# The repository's root, for ``fuzz.cuts`` when run as a script (python fuzz/...).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from fuzz.cuts import Case, decode, encode

# The client's bytes: outside the instrumented block, like the fuzzer's own code.
from wsserver.testing import wire

#: Byte 0, bit 0: tight limits, so that every one is reached by short
#: inputs; or the defaults.
LIMITS = (
    ProtocolSettings(
        max_request_line=64,
        max_header_line=96,
        max_headers=8,
        max_head_size=512,
        max_body_size=64,
    ),
    ProtocolSettings(),
)

ANSWER_BYTES = 4

#: The head scanner looks at each byte once, and at the request line once
#: more (``_check_version``); chunked bodies are handed back to it only past
#: their end.  A head that arrived whole is looked at twice more by the
#: upgrade fast path (the search for its end, then the parse) when the fast
#: path declines it to the scanner.  Allow a little slack over four times
#: the input.
EXAMINED_FACTOR = 4
EXAMINED_SLACK = 64

_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"

_DEFLATE = DeflateSettings()


@dataclass
class Outcome:
    events: list[object]
    output: bytes = b""
    must_close: bool = False
    #: Bytes after the request head once accepted (the WebSocket stream).
    switched: bytes | None = None


_RESPONSE_STATUSES = (200, 204, 304, 404, 500, 301, 413, 599)
_REJECT_STATUSES = (400, 403, 404, 426, 500, 503)


def _answer(phase: HTTPPhase, event: object, choice: int) -> bytes | None:
    """Answer ``event`` as an application may.

    Returns:
        What ``accept()`` returned if the event was accepted, else ``None``.
    """
    if isinstance(event, WebSocketRequest):
        if choice & 0x03 == 0:
            return phase.accept(None, None)
        if choice & 0x03 == 1:
            subprotocol = event.subprotocols[-1] if event.subprotocols else None
            negotiated = negotiate(event.extensions, _DEFLATE)
            extensions = negotiated[0] if negotiated is not None else None
            return phase.accept(subprotocol, extensions, (("X-Fuzz", "1"),))
        status = _REJECT_STATUSES[(choice >> 2) % len(_REJECT_STATUSES)]
        extra: Headers = (("Content-Type", "text/plain"),) if choice & 0x01 else ()
        phase.reject(status, extra, b"go away" if choice & 0x80 else b"")
        return None
    if isinstance(event, HTTPRequest):
        status = _RESPONSE_STATUSES[choice % len(_RESPONSE_STATUSES)]
        body = b"" if status in (204, 304) or choice & 0x10 else b"hello"
        headers: Headers = ()
        if choice & 0x20:
            headers = (("Connection", "close"),)
        elif choice & 0x40:
            headers = (("Content-Type", "text/plain"), ("Connection", "keep-alive"))
        phase.send_response(status, headers, body)
        return None
    assert isinstance(event, RequestRejected), f"unexpected event {event!r}"
    assert 400 <= event.status <= 599, f"rejected with status {event.status}"
    return None


def run(settings: ProtocolSettings, case: Case, pieces: list[bytes]) -> Outcome:
    phase = HTTPPhase(settings)
    outcome = Outcome(events=[])
    output: list[bytes] = []
    eof = bool(case.config & 0x02)
    fed = 0

    def drain() -> bytes | None:
        # Answer every event; stop at an accept(), after which the phase
        # takes no more bytes.
        while (event := phase.next_event()) is not None:
            outcome.events.append(event)
            number = len(outcome.events) - 1
            choice = case.answers[number % len(case.answers)] if case.answers else 0
            remainder = _answer(phase, event, choice)
            output.extend(phase.data_to_send())
            if remainder is not None:
                return remainder
        output.extend(phase.data_to_send())
        return None

    # Late answers: the application takes its time, and bytes arrive while
    # a request waits for its answer (kept up to a limit, then dropped).
    late = bool(case.config & 0x04)
    for index, piece in enumerate(pieces):
        phase.receive_data(piece)
        fed += len(piece)
        if late and index % 4 != 3 and index != len(pieces) - 1:
            continue
        remainder = drain()
        if remainder is not None:
            # What the phase keeps while waiting is bounded, but for the
            # whole chunk that completed the request (a transport read).
            kept = settings.max_head_size + settings.max_body_size + max(map(len, pieces))
            assert len(remainder) <= kept, f"{len(remainder)} bytes kept past the head"
            # The WebSocket stream: what the phase kept, then what it was
            # not given.
            outcome.switched = remainder + b"".join(pieces[index + 1 :])
            break
    else:
        if eof:
            phase.receive_eof()
            remainder = drain()
            if remainder is not None:
                outcome.switched = remainder
    assert phase.bytes_examined <= EXAMINED_FACTOR * fed + EXAMINED_SLACK, (
        f"the head scanner examined {phase.bytes_examined} bytes of {fed}"
    )
    outcome.output = b"".join(output).replace(_CONTINUE, b"")
    outcome.must_close = phase.must_close
    return outcome


def TestOneInput(data: bytes) -> None:
    case = decode(data, ANSWER_BYTES)
    settings = LIMITS[case.config & 0x01]
    split = run(settings, case, case.pieces)
    whole = run(settings, case, [b"".join(case.pieces)])
    if case.config & 0x04 and len(case.pieces) > 1:
        return  # late answers: what is dropped while waiting depends on the split
    assert split.events == whole.events, "the split changed the events"
    assert split.output == whole.output, "the split changed the responses"
    assert split.must_close == whole.must_close, "the split changed must_close"
    assert split.switched == whole.switched, "the split changed the WebSocket stream"


# -- seeds ------------------------------------------------------------------

_HANDSHAKE = wire.client_handshake(
    "/chat?room=1",
    host="example.com",
    key="dGhlIHNhbXBsZSBub25jZQ==",
    subprotocols=["chat", "superchat"],
    extensions="permessage-deflate; client_max_window_bits, x-foo",
    connection="keep-alive, Upgrade",
    headers=[("Origin", "http://example.com")],
)


def seeds() -> dict[str, bytes]:
    """Small valid (and a few invalid) inputs to start the corpus from."""
    accept, accept_more, reject = b"\x00", b"\x01", b"\x86"
    get = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"
    post = b"POST /form HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"
    chunked = (
        b"POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
        b"Expect: 100-continue\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
    )
    frame = b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58"
    return {
        "handshake-accept": encode(0, _HANDSHAKE + frame, answers=accept * 4),
        "handshake-accept-negotiate": encode(1, _HANDSHAKE, (40, 1, 100), answers=accept_more * 4),
        "handshake-reject": encode(2, _HANDSHAKE, answers=reject * 4),
        "handshake-bad-key": encode(
            0, _HANDSHAKE.replace(b"dGhlIHNhbXBsZSBub25jZQ==", b"short"), answers=accept * 4
        ),
        "handshake-version": encode(
            1, _HANDSHAKE.replace(b"Version: 13", b"Version: 8"), answers=accept * 4
        ),
        "pipelined": encode(1, get + post + get, (10, 30), answers=b"\x00\x21\x02\x03"),
        "keep-alive-then-handshake": encode(1, get + _HANDSHAKE, (3,), answers=b"\x40\x01\x00\x00"),
        "chunked-continue": encode(3, chunked, (60, 1, 1, 5), answers=b"\x00\x00\x00\x00"),
        "http10": encode(1, b"HEAD / HTTP/1.0\r\n\r\n", answers=b"\x00\x00\x00\x00"),
        "http2": encode(1, b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", answers=b"\x00\x00\x00\x00"),
        "leading-blank-lines-eof": encode(
            3, b"\r\n\r\nGET / HTTP/1.1\r\n", answers=b"\x00\x00\x00\x00"
        ),
        "too-long": encode(
            0, b"GET /" + b"a" * 100 + b" HTTP/1.1\r\n", answers=b"\x00\x00\x00\x00"
        ),
        "late-accept-overflow": encode(
            0x04, _HANDSHAKE + bytes(1000), (200, 255, 255, 255, 10), answers=accept * 4
        ),
        "late-pipelined": encode(0x05, get * 6, (20, 20, 20, 20, 20), answers=b"\x00\x01\x40\x03"),
        "tls": encode(
            1, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", answers=b"\x00\x00\x00\x00"
        ),
    }


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
