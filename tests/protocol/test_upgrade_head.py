"""The upgrade-head fast path, and its differential proof against the general path.

The HTTP phase takes the fast path only when a whole head arrives in one
read with nothing after it; fed the same head in two pieces, it takes the
general path (head scanner, ``framing.check_head``, h11).  So every property
here compares one phase fed ``head`` at once with one fed ``head[:1]``,
``head[1:]``: same event, same bytes out, same answers to ``accept`` and
``reject``.  And wherever ``parse_upgrade_head`` does not decline, the
general path must have seen a WebSocket handshake (accepted or rejected by
the same RFC 6455 section 4.2.1 rules), never a plain request.
"""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.protocol._mutations import mutate
from wsserver.protocol.events import HTTPRequest, RequestRejected, WebSocketRequest
from wsserver.protocol.http import HTTPPhase
from wsserver.protocol.settings import ProtocolSettings
from wsserver.protocol.upgrade_head import parse_upgrade_head

DEFAULT = ProtocolSettings()
SMALL = ProtocolSettings(
    max_request_line=40, max_header_line=60, max_headers=8, max_head_size=400, max_body_size=16
)

KEY = base64.b64encode(b"0123456789abcdef").decode()

USUAL = (
    b"GET /chat?room=1 HTTP/1.1\r\n"
    b"Host: example.com:8000\r\n"
    b"Upgrade: websocket\r\n"
    b"Connection: Upgrade\r\n"
    b"Sec-WebSocket-Key: " + KEY.encode() + b"\r\n"
    b"Sec-WebSocket-Version: 13\r\n"
    b"Sec-WebSocket-Protocol: chat, superchat\r\n"
    b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
    b"Origin: http://example.com\r\n"
    b"User-Agent: Mozilla/5.0 (X11; Linux x86_64)\r\n"
    b"\r\n"
)


def replace(old: bytes, new: bytes, head: bytes = USUAL) -> bytes:
    assert old in head
    return head.replace(old, new, 1)


# -- the two paths ----------------------------------------------------------


def run(head: bytes, limits: ProtocolSettings, *, split: bool) -> tuple[HTTPPhase, object, bytes]:
    phase = HTTPPhase(limits)
    if split:
        phase.receive_data(head[:1])
        phase.receive_data(head[1:])
    else:
        phase.receive_data(head)
    event = phase.next_event()
    return phase, event, b"".join(phase.data_to_send())


def answers(head: bytes, limits: ProtocolSettings, *, split: bool) -> list[object]:
    """Everything the phase tells and writes for ``head``, and for its answers."""
    phase, event, out = run(head, limits, split=split)
    seen: list[object] = [event, out, phase.must_close, phase.awaiting_answer]
    if isinstance(event, WebSocketRequest):
        subprotocol = event.subprotocols[0] if event.subprotocols else None
        seen += [
            phase.accept(subprotocol, None, (("X-Extra", "1"),)),
            b"".join(phase.data_to_send()),
            phase.must_close,
        ]
        phase, _, _ = run(head, limits, split=split)
        phase.reject(403, (("Content-Type", "text/plain"),), b"no\n")
        seen += [b"".join(phase.data_to_send()), phase.must_close]
    elif isinstance(event, HTTPRequest):
        phase.send_response(200, (), b"ok")
        seen += [b"".join(phase.data_to_send()), phase.must_close]
    return seen


def assert_same(head: bytes, limits: ProtocolSettings) -> None:
    fast = answers(head, limits, split=False)
    general = answers(head, limits, split=True)
    assert fast == general
    parsed = parse_upgrade_head(head, limits)
    if parsed is not None:
        # Taken by the fast path: the general path saw a handshake too, and
        # any refusal came from the handshake rules, not from HTTP parsing.
        event = general[0]
        assert isinstance(event, WebSocketRequest | RequestRejected)
        if isinstance(event, RequestRejected):
            assert event.status in (400, 426)
            assert not event.reason.startswith("malformed request")


# -- fixtures, both ways ------------------------------------------------------

TAKEN = {
    "usual": USUAL,
    "no space after the colon": replace(b"Upgrade: websocket", b"Upgrade:websocket"),
    "lowercase names": replace(b"Sec-WebSocket-Key:", b"sec-websocket-key:"),
    "root target": replace(b"/chat?room=1", b"/"),
    "host without port": replace(b"example.com:8000", b"example.com"),
    "wrong version (426)": replace(b"Version: 13", b"Version: 8"),
    "short key (400)": replace(KEY.encode(), b"c2hvcnQ="),
    "two keys (400)": replace(b"Origin:", b"Sec-WebSocket-Key: " + KEY.encode() + b"\r\nOrigin:"),
    "no Connection upgrade (400)": replace(b"Connection: Upgrade", b"Connection: keep-alive"),
    "subprotocol with a slash (400)": replace(b"chat, superchat", b"chat/1"),
    "Expect": replace(b"Origin:", b"Expect: 100-continue\r\nOrigin:"),
    "only a version field": (b"GET / HTTP/1.1\r\nHost: x\r\nSec-WebSocket-Version: 13\r\n\r\n"),
}

DECLINED = {
    "POST": replace(b"GET ", b"POST "),
    "HEAD": replace(b"GET ", b"HEAD "),
    "lowercase method": replace(b"GET ", b"get "),
    "HTTP/1.0": replace(b"HTTP/1.1\r\n", b"HTTP/1.0\r\n"),
    "HTTP/2.0": replace(b"HTTP/1.1\r\n", b"HTTP/2.0\r\n"),
    "absolute-form target": replace(b"/chat?room=1", b"http://example.com:8000/chat"),
    "asterisk target": replace(b"/chat?room=1", b"*"),
    "obs-fold": replace(b"Origin: http://example.com", b"Origin: http://\r\n example.com"),
    "tab after the colon": replace(b"Upgrade: ", b"Upgrade:\t"),
    "two spaces after the colon": replace(b"Upgrade: ", b"Upgrade:  "),
    "trailing space": replace(b"websocket\r\n", b"websocket \r\n"),
    "space before the colon": replace(b"Upgrade:", b"Upgrade :"),
    "two spaces inside a value": replace(b"(X11; Linux", b"(X11;  Linux"),
    "empty Host": replace(b"Host: example.com:8000", b"Host:"),
    "empty value": replace(b"Origin: http://example.com", b"Origin: "),
    "Transfer-Encoding": replace(b"Origin:", b"Transfer-Encoding: chunked\r\nOrigin:"),
    "Content-Length": replace(b"Origin:", b"Content-Length: 0\r\nOrigin:"),
    "no Host": replace(b"Host: example.com:8000\r\n", b""),
    "duplicate Host": replace(b"Origin:", b"Host: example.com\r\nOrigin:"),
    "invalid Host": replace(b"example.com:8000", b"user@example.com"),
    "non-token name": replace(b"User-Agent:", b"User(Agent):"),
    "obs-text": replace(b"Linux x86_64", b"Linux \xe9"),
    "control character": replace(b"Linux x86_64", b"Linux\x01x86_64"),
    "bare LF": replace(b"Upgrade: websocket\r\n", b"Upgrade: websocket\n"),
    "bare CR": replace(b"Linux x86_64", b"Linux\rx86_64"),
    "empty line first": b"\r\n" + USUAL,
    "pipelined request": USUAL + b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    "not an upgrade": b"GET / HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n",
}


@pytest.mark.parametrize("head", TAKEN.values(), ids=TAKEN.keys())
def test_taken_by_the_fast_path(head: bytes) -> None:
    assert parse_upgrade_head(head, DEFAULT) is not None
    assert_same(head, DEFAULT)


@pytest.mark.parametrize("head", DECLINED.values(), ids=DECLINED.keys())
def test_declined_and_left_to_the_general_path(head: bytes) -> None:
    assert parse_upgrade_head(head, DEFAULT) is None
    assert_same(head, DEFAULT)


def test_the_usual_head_reads_as_h11_reads_it() -> None:
    parsed = parse_upgrade_head(USUAL, DEFAULT)
    assert parsed is not None
    target, headers = parsed
    assert target == b"/chat?room=1"
    assert headers[0] == ("host", "example.com:8000")
    assert ("sec-websocket-protocol", "chat, superchat") in headers
    _, event, out = run(USUAL, DEFAULT, split=False)
    assert out == b""
    assert isinstance(event, WebSocketRequest)
    assert event.subprotocols == ("chat", "superchat")
    assert event.extensions[0].name == "permessage-deflate"


def test_a_head_split_over_two_reads_takes_the_general_path() -> None:
    # The fast path is only tried on a head that starts a read's buffer and
    # ends it; the general path gets the rest, with the same result.
    _, whole, _ = run(USUAL, DEFAULT, split=False)
    _, split, _ = run(USUAL, DEFAULT, split=True)
    assert whole == split


REQUEST_LINE = len(USUAL.split(b"\r\n")[0])
LONGEST_FIELD_LINE = max(len(line) for line in USUAL.split(b"\r\n")[1:])
FIELDS = USUAL.count(b"\r\n") - 2


@pytest.mark.parametrize(
    ("limits", "declined"),
    [
        (ProtocolSettings(max_head_size=len(USUAL)), False),
        (ProtocolSettings(max_head_size=len(USUAL) - 1), True),
        (ProtocolSettings(max_headers=FIELDS), False),
        (ProtocolSettings(max_headers=FIELDS - 1), True),
        (ProtocolSettings(max_request_line=REQUEST_LINE), False),
        (ProtocolSettings(max_request_line=REQUEST_LINE - 1), True),
        (ProtocolSettings(max_header_line=LONGEST_FIELD_LINE), False),
        (ProtocolSettings(max_header_line=LONGEST_FIELD_LINE - 1), True),
    ],
)
def test_a_head_beyond_a_limit_is_left_to_the_scanner(
    limits: ProtocolSettings, declined: bool
) -> None:
    assert (parse_upgrade_head(USUAL, limits) is None) is declined
    assert_same(USUAL, limits)
    _, event, _ = run(USUAL, limits, split=False)
    if declined:
        assert isinstance(event, RequestRejected)
        assert event.status in (414, 431)
    else:
        assert isinstance(event, WebSocketRequest)


# -- the differential properties ---------------------------------------------

NAMES = [
    "Host",
    "host",
    "HOST",
    "Upgrade",
    "Connection",
    "Sec-WebSocket-Key",
    "Sec-WebSocket-Version",
    "Sec-WebSocket-Protocol",
    "Sec-WebSocket-Extensions",
    "Origin",
    "User-Agent",
    "Content-Length",
    "Transfer-Encoding",
    "Expect",
    "X-Forwarded-For",
]
VALUES = [
    "example.com",
    "example.com:80",
    "[::1]:8000",
    "a,b",
    "",
    "websocket",
    "WebSocket, h2c",
    "Upgrade",
    "keep-alive, Upgrade",
    "close",
    KEY,
    "c2hvcnQ=",
    "13",
    "8",
    "chat, superchat",
    "chat/1",
    "permessage-deflate; client_max_window_bits",
    "permessage-deflate; server_max_window_bits=20",
    "0",
    "5",
    "chunked",
    "100-continue",
    "http://example.com",
]
SEPARATORS = [": ", ":", ":  ", ":\t", " : ", ": \t"]
TAILS = ["", "", "", " ", "\t"]


BENIGN_NAMES = ["Origin", "User-Agent", "Sec-WebSocket-Protocol", "Sec-WebSocket-Extensions"]
BENIGN_VALUES = [
    "chat, superchat",
    "permessage-deflate; client_max_window_bits",
    "http://example.com",
    "x",
]


@st.composite
def heads(draw: st.DrawFn) -> bytes:
    # Half of the heads are tidy (the fast path's shape, though the values
    # may still break the handshake rules); the rest vary every part.
    tidy = draw(st.booleans())
    if tidy:
        method, version = "GET", "HTTP/1.1"
        target = draw(st.sampled_from(["/", "/chat?x=1", "/a%20b", "//x"]))
        names, values = BENIGN_NAMES, BENIGN_VALUES
    else:
        method = draw(st.sampled_from(["GET", "POST", "HEAD", "get", "CONNECT"]))
        target = draw(st.sampled_from(["/", "/chat?x=1", "*", "http://x/", "/\x7f"]))
        version = draw(st.sampled_from(["HTTP/1.1", "HTTP/1.0", "HTTP/2.0", "HTTP/1.10"]))
        names, values = NAMES, VALUES
    lines = [f"{method} {target} {version}"]
    usual = [
        ("Host", "example.com"),
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", KEY),
        ("Sec-WebSocket-Version", "13"),
    ]
    fields = draw(st.lists(st.tuples(st.sampled_from(names), st.sampled_from(values)), max_size=5))
    if tidy or draw(st.booleans()):
        fields = usual + fields
    fields = draw(st.permutations(fields))
    for name, value in fields:
        separator, tail = ": ", ""
        if not tidy:
            separator = draw(st.sampled_from(SEPARATORS))
            tail = draw(st.sampled_from(TAILS))
        lines.append(f"{name}{separator}{value}{tail}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    if draw(st.integers(0, 2)) == 0:
        head = mutate(draw, head, b"\r\n\t :,;/=-aGZ0\x00\x7f\x80\xff", edits=(1, 3), run=3)
    return head


@settings(max_examples=600, deadline=None)
@given(head=heads(), small=st.booleans())
def test_the_fast_path_declines_or_agrees_with_the_general_path(head: bytes, small: bool) -> None:
    assert_same(head, SMALL if small else DEFAULT)


@st.composite
def mutated_usual(draw: st.DrawFn) -> bytes:
    return mutate(draw, USUAL, bytes(range(256)), edits=(1, 4), run=4)


@settings(max_examples=300, deadline=None)
@given(head=mutated_usual())
def test_mutations_of_the_usual_head_agree(head: bytes) -> None:
    assert_same(head, DEFAULT)


def test_the_generator_reaches_both_paths() -> None:
    # Without this, a generator that only ever produced declined heads
    # would make the properties above vacuous.
    taken = declined = 0

    @settings(max_examples=200, deadline=None, database=None)
    @given(head=heads())
    def count(head: bytes) -> None:
        nonlocal taken, declined
        if parse_upgrade_head(head, DEFAULT) is None:
            declined += 1
        else:
            taken += 1

    count()
    assert taken >= 10
    assert declined >= 10


def test_pipelined_requests_are_not_searched_again_and_again() -> None:
    # Each keep-alive cycle may try the fast path on what is left in the
    # buffer; the search for the head's end stops at the first one, so the
    # work stays linear in the bytes received however many requests wait.
    one = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    data = one * 500
    phase = HTTPPhase(DEFAULT)
    phase.receive_data(data)
    answered = 0
    while isinstance(phase.next_event(), HTTPRequest):
        phase.send_response(204)
        answered += 1
    assert answered == 500
    assert phase.bytes_examined <= 4 * len(data)
