"""Fuzz target: a whole ``ServerConnection``, driven as a server drives it.

INVARIANT: events or a documented failure, never any other exception, never
unbounded memory.  A fixed valid handshake is accepted, then the fuzzer's
bytes arrive as frames, in pieces, optionally followed by EOF.  Events are
drained after each piece, with or without ``hold_replies`` (a held Close or
error is released once the messages before it are answered), and the
harness answers each event as an application would (echoes, fragmented
echoes, pings, pongs, a close, a failure), only through calls the API allows
in the state at hand.  Then:

* nothing raises: the peer's errors are ``ConnectionFailed`` events, and
  ``LocalProtocolError`` would mean the core blamed a correct caller;
* what the server writes is exactly what the events and the answers call
  for, as a client reads it: the 101, then the echoed messages (inflated
  with the window agreed, RSV1 where compression was asked for), a pong per
  ping received while open, the echo of the peer's Close, the Close of a
  failure with its code and reason, and nothing after the connection closed;
* ``Pong.acknowledged`` lists the pings it answers, oldest first;
* once a terminal event is out the connection is CLOSED, stays quiet and
  must be closed; after EOF it always ends; and while it is open, at most one
  unfinished frame prefix stays buffered.

Input: byte 0 picks the offer, the server's deflate settings, the
subprotocol, how the first piece arrives, EOF and the hold mode; bytes 1-4
choose the answers; the bytes at the end say where to split the rest, which
is the client's byte stream after the handshake.

Run: ``python fuzz/fuzz_connection.py [libFuzzer args] [corpus dirs]``.
"""

from __future__ import annotations

import sys
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["wsserver", "h11"]):
    from wsserver.protocol.codes import CloseCode, Opcode
    from wsserver.protocol.connection import ServerConnection
    from wsserver.protocol.events import (
        BinaryMessage,
        CloseReceived,
        ConnectionFailed,
        ConnectionLost,
        Ping,
        Pong,
        TextMessage,
        WebSocketRequest,
    )
    from wsserver.protocol.extensions.permessage_deflate import DeflateSettings
    from wsserver.protocol.headers import parse_extension_offers
    from wsserver.protocol.settings import ProtocolSettings
    from wsserver.protocol.state import State

# The repository's root, for ``fuzz.cuts`` when run as a script (python fuzz/...).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from fuzz.cuts import Case, decode, encode

# The client's bytes: outside the instrumented block, like the fuzzer's own code.
from wsserver.testing import wire

SETTINGS = ProtocolSettings(max_message_size=2048, max_frame_size=1024, max_fragments=16)
#: See fuzz_frames.MAX_PENDING.
MAX_PENDING = 6 + 124
ANSWER_BYTES = 4

OFFERS = (
    None,
    "permessage-deflate",
    "permessage-deflate; client_max_window_bits",
    "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
    "server_max_window_bits=8",
)

LONG_REASON = "handler failed: " + "\u00e9" * 80

_FAILURE_CODES = frozenset(
    {
        CloseCode.PROTOCOL_ERROR,
        CloseCode.INVALID_PAYLOAD_DATA,
        CloseCode.POLICY_VIOLATION,
        CloseCode.MESSAGE_TOO_BIG,
    }
)


def handshake(config: int) -> bytes:
    return wire.client_handshake(
        "/chat",
        host="example.com",
        key="dGhlIHNhbXBsZSBub25jZQ==",
        subprotocols=["chat"],
        extensions=OFFERS[config & 0x03],
    )


# What the client should read, frame by frame (messages reassembled):
# ("TEXT" | "BINARY", payload, compressed) or (control opcode name, payload).
Expected = tuple[str, bytes, bool] | tuple[str, bytes]


@dataclass
class Harness:
    case: Case
    conn: ServerConnection
    compressing: bool
    min_size: int
    expected: list[Expected] = field(default_factory=list)
    output: list[bytes] = field(default_factory=list)
    pending_pings: list[bytes] = field(default_factory=list)
    pings_sent: int = 0
    events: int = 0
    terminal: bool = False

    def choice(self) -> int:
        answers = self.case.answers
        return answers[self.events % len(answers)] if answers else 0

    def collect(self) -> None:
        for chunk in self.conn.data_to_send():
            self.output.append(bytes(chunk))

    # -- sending, with what the client must see -------------------------

    def _message(self, opcode: str, payload: bytes, compress: bool | None) -> None:
        compressed = self.compressing and (
            compress if compress is not None else len(payload) >= self.min_size
        )
        self.expected.append((opcode, payload, compressed))

    def echo(self, event: TextMessage | BinaryMessage, how: int) -> None:
        conn = self.conn
        compress = (None, False, True)[how % 3] if how < 3 else None
        if isinstance(event, TextMessage):
            if how == 3:
                half = len(event.data) // 2
                conn.send_fragment(event.data[:half], fin=False)
                self.ping()
                conn.send_fragment(event.data[half:], fin=True)
                self._message("TEXT", event.data.encode("utf-8"), self.compressing)
                return
            conn.send_text(event.data, compress=compress)
            self._message("TEXT", event.data.encode("utf-8"), compress)
        else:
            if how == 3:
                half = len(event.data) // 2
                conn.send_fragment(event.data[:half], fin=False, compress=False)
                self.ping()
                conn.send_fragment(event.data[half:], fin=True)
                self._message("BINARY", event.data, False)
                return
            conn.send_bytes(event.data, compress=compress)
            self._message("BINARY", event.data, compress)

    def ping(self) -> None:
        payload = b"p%d" % self.pings_sent
        self.pings_sent += 1
        self.conn.send_ping(payload)
        self.pending_pings.append(payload)
        self.expected.append(("PING", payload))

    def close(self) -> None:
        self.conn.send_close(CloseCode.NORMAL_CLOSURE, "bye")
        self.expected.append(("CLOSE", b"\x03\xe8bye"))

    def fail(self) -> None:
        self.conn.fail(CloseCode.INTERNAL_ERROR, LONG_REASON)
        self.expected.append(("CLOSE", b"\x03\xf3" + _truncated(LONG_REASON)))

    # -- receiving --------------------------------------------------------

    def handle(self, event: object, before: State) -> None:
        """Check ``event`` (returned in state ``before``) and answer it."""
        conn = self.conn
        assert not self.terminal, f"{event!r} after the connection ended"
        choice = self.choice()
        self.events += 1
        if isinstance(event, TextMessage | BinaryMessage):
            assert before in (State.OPEN, State.CLOSING)
            if conn.state is State.OPEN:
                action = choice & 0x07
                if action < 4:
                    self.echo(event, action)
                elif action == 4:
                    self.echo(event, 0)
                    self.close()
                elif action == 5:
                    self.echo(event, 0)
                    self.ping()
                elif action == 6:
                    self.fail()
        elif isinstance(event, Ping):
            assert len(event.payload) <= 125
            if before is State.OPEN:
                self.expected.append(("PONG", event.payload))
            if conn.state is State.OPEN and choice & 0x07 == 6:
                conn.send_pong(b"unsolicited")
                self.expected.append(("PONG", b"unsolicited"))
            elif conn.state is State.OPEN and choice & 0x07 == 7:
                self.ping()
        elif isinstance(event, Pong):
            if event.payload in self.pending_pings:
                index = self.pending_pings.index(event.payload)
                answered = tuple(self.pending_pings[: index + 1])
                del self.pending_pings[: index + 1]
            else:
                answered = ()
            assert event.acknowledged == answered, f"{event} should acknowledge {answered}"
        elif isinstance(event, CloseReceived):
            self.terminal = True
            assert conn.close_code == event.code and conn.close_reason == event.reason
            if before is State.OPEN:
                # Section 5.5.1: echo the code (none for a Close without one).
                no_code = event.code == CloseCode.NO_STATUS_RECEIVED
                payload = b"" if no_code else event.code.to_bytes(2, "big")
                self.expected.append(("CLOSE", payload))
        elif isinstance(event, ConnectionFailed):
            self.terminal = True
            assert event.code in _FAILURE_CODES, f"failed with {event.code}"
            if before is State.OPEN:
                payload = event.code.to_bytes(2, "big") + _truncated(event.reason)
                self.expected.append(("CLOSE", payload))
        elif isinstance(event, ConnectionLost):
            self.terminal = True
            assert conn.eof_received, "ConnectionLost before EOF"
            assert event.code == CloseCode.ABNORMAL_CLOSURE
        else:
            raise AssertionError(f"unexpected event {event!r}")
        if self.terminal:
            assert conn.state is State.CLOSED, f"{conn.state} after {event!r}"
            assert conn.must_close_transport
            assert conn.next_event() is None and conn.next_event(hold_replies=True) is None
        self.collect()

    def hold(self) -> bool:
        mode = self.case.config >> 6
        if mode == 0:
            return False
        if mode == 2:
            return bool(self.choice() & 0x80)
        return True

    def drain(self) -> None:
        conn = self.conn
        while True:
            hold = self.hold()
            before = conn.state
            event = conn.next_event(hold_replies=hold)
            if event is None:
                if not conn.reply_held:
                    break
                assert hold, "a reply is held without hold_replies"
                # The application answered what came before: release it.
                before = conn.state
                event = conn.next_event()
                assert event is not None, "a held reply produced no event"
            self.handle(event, before)
        self.collect()
        if conn.state is not State.CLOSED:
            assert conn.buffered <= MAX_PENDING, f"{conn.buffered} bytes buffered after draining"


def _state(conn: ServerConnection) -> State:
    # Read afresh: mypy would keep an earlier ``assert conn.state is ...``.
    return conn.state


def _truncated(reason: str) -> bytes:
    return reason.encode("utf-8")[:123].decode("utf-8", "ignore").encode("utf-8")


def read_frames(data: bytes, inflater_bits: int) -> list[Expected]:
    """What a client reads in the server's bytes after the 101."""
    head, separator, data = data.partition(b"\r\n\r\n")
    assert separator and head.startswith(b"HTTP/1.1 101 "), f"no 101 response: {head[:40]!r}"
    inflater = zlib.decompressobj(wbits=-inflater_bits)
    found: list[Expected] = []
    message: tuple[str, bool] | None = None
    parts: list[bytes] = []
    position = 0
    while position < len(data):
        header = wire.read_frame_header(data, position)
        assert header is not None, "truncated frame header"
        fin, rsv1, opcode, length = header.fin, header.rsv1, header.opcode, header.length
        assert not (header.rsv2 or header.rsv3), "RSV2/RSV3 set"
        assert header.mask is None, "a server frame is masked"
        assert header.length_bits == wire.minimal_length_bits(length), "length not minimal"
        position += header.size
        payload = data[position : position + length]
        assert len(payload) == length, "truncated frame payload"
        position += length
        if opcode >= 0x8:
            assert fin and not rsv1 and length <= 125, "bad control frame"
            found.append((Opcode(opcode).name, payload))
            continue
        if opcode == Opcode.CONTINUATION:
            assert message is not None and not rsv1, "bad continuation frame"
        else:
            assert message is None, "a new message inside a fragmented one"
            assert opcode in (Opcode.TEXT, Opcode.BINARY), f"opcode {opcode}"
            message = (Opcode(opcode).name, rsv1)
        parts.append(payload)
        if fin:
            kind, compressed = message
            body = b"".join(parts)
            if compressed:
                body = inflater.decompress(body + b"\x00\x00\xff\xff")
            found.append((kind, body, compressed))
            message, parts = None, []
    assert message is None, "the last message was left unfinished"
    return found


def TestOneInput(data: bytes) -> None:
    case = decode(data, ANSWER_BYTES)
    config = case.config
    deflate = DeflateSettings() if config & 0x04 else None
    conn = ServerConnection(SETTINGS, deflate=deflate)
    pieces = list(case.pieces)
    opening = handshake(config)
    if config & 0x10:
        opening += pieces.pop(0)
    conn.receive_data(opening)
    request = conn.next_event()
    assert isinstance(request, WebSocketRequest), f"handshake gave {request!r}"
    assert conn.next_event() is None
    conn.accept("chat" if config & 0x08 else None)
    assert conn.state is State.OPEN
    compressing = conn.extensions is not None
    assert compressing == (deflate is not None and OFFERS[config & 0x03] is not None)
    server_bits = 15
    if conn.extensions is not None:
        (agreed,) = parse_extension_offers([conn.extensions])
        server_bits = int(dict(agreed.params).get("server_max_window_bits") or 15)
    harness = Harness(case, conn, compressing, deflate.min_size if deflate else 0)
    harness.collect()
    harness.drain()
    for piece in pieces:
        conn.receive_data(piece)
        harness.drain()
    if config & 0x20:
        conn.receive_eof()
        harness.drain()
        assert _state(conn) is State.CLOSED, f"{conn.state} after EOF"
    assert conn.data_to_send() == []
    written = read_frames(b"".join(harness.output), server_bits)
    assert written == harness.expected, f"wrote {written!r}, expected {harness.expected!r}"


# -- seeds ------------------------------------------------------------------


def frame(opcode: int, payload: bytes, *, fin: bool = True, rsv1: bool = False) -> bytes:
    """A client frame, masked with RFC 6455 section 5.7's key."""
    return wire.client_frame(opcode, payload, fin=fin, rsv1=rsv1, mask=b"\x37\xfa\x21\x3d")


def seeds() -> dict[str, bytes]:
    text, binary, cont = Opcode.TEXT, Opcode.BINARY, Opcode.CONTINUATION
    hello = frame(text, b"Hello")
    close = frame(Opcode.CLOSE, b"\x03\xe8")
    big = frame(binary, bytes(range(256)) * 2)
    compressed = frame(text, b"\xf2\x48\xcd\xc9\xc9\x07\x00", rsv1=True)
    chatter = (
        frame(text, "caf\u00e9 ".encode() * 30, fin=False)
        + frame(Opcode.PING, b"are you there")
        + frame(cont, b"end")
        + frame(Opcode.PONG, b"p0")
        + frame(binary, b"\x00" * 70)
    )
    deflate, hold, mixed, eof = 0x04, 0x40, 0x80, 0x20
    return {
        "echo-close": encode(0, hello + close, answers=b"\x00\x00\x00\x00"),
        "echo-close-held": encode(
            hold, hello + hello + close, (3, 11), answers=b"\x00\x00\x00\x00"
        ),
        "deflate-echo": encode(
            1 | deflate, compressed + hello + close, answers=b"\x02\x00\x01\x00"
        ),
        "deflate-no-takeover": encode(
            3 | deflate | 0x08, compressed + chatter + close, (20, 40), answers=b"\x03\x05\x00\x00"
        ),
        "deflate-window": encode(2 | deflate | 0x10, chatter + big, answers=b"\x00\x01\x02\x03"),
        "ping-pong": encode(mixed, chatter + hello, (1, 2, 3, 4, 5), answers=b"\x87\x05\x06\x00"),
        "close-after-ours": encode(0, hello + hello + close, answers=b"\x04\x00\x00\x00"),
        "fail": encode(0, hello + hello, answers=b"\x06\x00\x00\x00"),
        "eof": encode(eof, hello + hello[:3], answers=b"\x00\x00\x00\x00"),
        "protocol-error-held": encode(hold, hello + frame(0x3, b""), answers=b"\x00\x00\x00\x00"),
        "bad-close": encode(0, frame(Opcode.CLOSE, b"\x03\xed"), answers=b"\x00\x00\x00\x00"),
        "too-big": encode(0, frame(binary, bytes(2000)), answers=b"\x00\x00\x00\x00"),
    }


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
