"""Tests for the event classes: small, frozen, keyword-only values."""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

import pytest

from wsserver.protocol import events
from wsserver.protocol.codes import HandshakeFailure
from wsserver.protocol.events import (
    BinaryMessage,
    CloseReceived,
    ConnectionFailed,
    ConnectionLost,
    Event,
    HandshakeAccepted,
    HandshakeFailed,
    HTTPRequest,
    Ping,
    Pong,
    RequestBody,
    RequestRejected,
    TextMessage,
    WebSocketRequest,
)
from wsserver.protocol.headers import ExtensionOffer

#: One instance of every event, with every field set.
EXAMPLES: list[Any] = [
    WebSocketRequest(
        target="/chat?x=1",
        headers=(("host", "example.com"), ("x-caf\u00e9", "\u00ff")),
        subprotocols=("chat",),
        extensions=(ExtensionOffer(name="permessage-deflate", params=(("a", None),)),),
    ),
    HTTPRequest(method="GET", target="/", headers=(), http_version="1.1", body=b"x", streamed=True),
    RequestBody(data=b"x", more=True),
    RequestRejected(status=400, reason="bad"),
    HandshakeAccepted(
        headers=(("upgrade", "websocket"),), subprotocol="chat", extensions="permessage-deflate"
    ),
    HandshakeFailed(
        failure=HandshakeFailure.INVALID_STATUS,
        reason="the server answered 302, not 101",
        status=302,
        headers=(("location", "/elsewhere"),),
        body=b"moved",
    ),
    TextMessage(data="caf\u00e9"),
    BinaryMessage(data=b"\x00\xff"),
    Ping(payload=b"p"),
    Pong(payload=b"p", acknowledged=(b"o", b"p")),
    CloseReceived(code=1000, reason="bye"),
    ConnectionFailed(code=1002, reason="bad frame"),
    ConnectionLost(code=1006, reason=""),
]

CLASSES = [type(example) for example in EXAMPLES]


def test_every_event_has_an_example() -> None:
    assert set(CLASSES) == set(typing.get_args(Event))
    assert len(CLASSES) == len(typing.get_args(Event))
    exported = {name for name in events.__all__ if name not in ("Event", "Headers")}
    assert exported == {cls.__name__ for cls in CLASSES}


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: type(e).__name__)
def test_frozen(example: Any) -> None:
    name = dataclasses.fields(example)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(example, name, getattr(example, name))


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: type(e).__name__)
def test_slots(example: Any) -> None:
    # No per-instance dict, and no room for anything but the fields: slots
    # in the pure-Python build, a fixed C struct in the compiled one.
    assert not hasattr(example, "__dict__")
    with pytest.raises(AttributeError):
        object.__setattr__(example, "not_a_field", 1)
    assert {f.name for f in dataclasses.fields(example)} <= set(dir(example))


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: type(e).__name__)
def test_keyword_only(example: Any) -> None:
    values = [getattr(example, f.name) for f in dataclasses.fields(example)]
    with pytest.raises(TypeError):
        type(example)(*values)
    assert all(f.kw_only for f in dataclasses.fields(example))


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: type(e).__name__)
def test_equality_and_hash(example: Any) -> None:
    copy = dataclasses.replace(example)
    assert copy == example
    assert copy is not example
    assert hash(copy) == hash(example)
    for f in dataclasses.fields(example):
        other = dataclasses.replace(example, **{f.name: changed(getattr(example, f.name))})
        assert other != example, f.name


def changed(value: Any) -> Any:
    if isinstance(value, HandshakeFailure):
        return next(member for member in HandshakeFailure if member is not value)
    if isinstance(value, bool):  # before int: a bool field takes a bool
        return not value
    if isinstance(value, str):
        return value + "x"
    if isinstance(value, bytes):
        return value + b"x"
    if isinstance(value, int):
        return value + 1
    assert isinstance(value, tuple)
    return (*value, value[0]) if value else (("x", "y"),)


@pytest.mark.parametrize(
    ("one", "other"),
    [
        (ConnectionFailed(code=1002, reason="x"), ConnectionLost(code=1002, reason="x")),
        (CloseReceived(code=1000, reason=""), ConnectionLost(code=1000, reason="")),
        (TextMessage(data="x"), RequestRejected(status=400, reason="x")),
        (Ping(payload=b"x"), Pong(payload=b"x")),
    ],
)
def test_same_fields_different_class_are_not_equal(one: object, other: object) -> None:
    assert one != other


def test_pong_acknowledges_nothing_by_default() -> None:
    assert Pong(payload=b"x").acknowledged == ()
    assert Pong(payload=b"x") == Pong(payload=b"x", acknowledged=())
    assert Pong(payload=b"x") != Pong(payload=b"x", acknowledged=(b"x",))


def test_a_request_body_comes_with_the_request_by_default() -> None:
    request = HTTPRequest(method="GET", target="/", headers=(), http_version="1.1", body=b"")
    assert request.streamed is False


def test_every_other_field_is_required() -> None:
    for cls in CLASSES:
        for f in dataclasses.fields(cls):
            if (cls, f.name) in ((Pong, "acknowledged"), (HTTPRequest, "streamed")):
                continue
            assert f.default is dataclasses.MISSING, (cls.__name__, f.name)
            assert f.default_factory is dataclasses.MISSING, (cls.__name__, f.name)


def test_repr_names_the_fields() -> None:
    assert repr(TextMessage(data="hi")) == "TextMessage(data='hi')"
    assert repr(CloseReceived(code=1000, reason="")) == "CloseReceived(code=1000, reason='')"
