"""Tests for the two families of errors and what each carries."""

from __future__ import annotations

import pytest

from wsserver.protocol import exceptions
from wsserver.protocol.codes import CloseCode, HandshakeFailure
from wsserver.protocol.exceptions import (
    FrameError,
    HandshakeError,
    InvalidResponse,
    LocalProtocolError,
    RemoteProtocolError,
    WebSocketProtocolError,
)

#: class -> its parent, as the module docstring draws the tree.
TREE: dict[type[Exception], type[Exception]] = {
    WebSocketProtocolError: Exception,
    LocalProtocolError: WebSocketProtocolError,
    RemoteProtocolError: WebSocketProtocolError,
    FrameError: RemoteProtocolError,
    HandshakeError: RemoteProtocolError,
    InvalidResponse: RemoteProtocolError,
}


def test_exports() -> None:
    assert set(exceptions.__all__) == {cls.__name__ for cls in TREE}


@pytest.mark.parametrize(("cls", "parent"), TREE.items(), ids=lambda c: c.__name__)
def test_hierarchy(cls: type[Exception], parent: type[Exception]) -> None:
    assert cls.__bases__ == (parent,)


def test_local_and_remote_are_separate_families() -> None:
    assert not issubclass(LocalProtocolError, RemoteProtocolError)
    assert not issubclass(RemoteProtocolError, LocalProtocolError)
    assert not issubclass(FrameError, HandshakeError)
    assert not issubclass(HandshakeError, FrameError)


def test_frame_error() -> None:
    error = FrameError(CloseCode.PROTOCOL_ERROR, "reserved opcode 0x3")
    assert error.code == 1002
    assert error.code is CloseCode.PROTOCOL_ERROR
    assert error.reason == "reserved opcode 0x3"
    assert str(error) == "reserved opcode 0x3"
    assert error.args == ("reserved opcode 0x3",)
    with pytest.raises(RemoteProtocolError) as caught:
        raise error
    assert caught.value is error


def test_handshake_error() -> None:
    error = HandshakeError(426, "unsupported version", (("Sec-WebSocket-Version", "13"),))
    assert error.status == 426
    assert error.reason == "unsupported version"
    assert error.headers == (("Sec-WebSocket-Version", "13"),)
    assert str(error) == "426: unsupported version"
    assert HandshakeError(400, "bad").headers == ()


def test_local_error_carries_its_message() -> None:
    error = LocalProtocolError("send_text() before accept()")
    assert str(error) == "send_text() before accept()"


@pytest.mark.parametrize(
    "error",
    [
        LocalProtocolError("x"),
        FrameError(CloseCode.MESSAGE_TOO_BIG, "x"),
        HandshakeError(400, "x"),
        RemoteProtocolError("x"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_one_except_clause_catches_them_all(error: Exception) -> None:
    with pytest.raises(WebSocketProtocolError):
        raise error


def test_invalid_response_carries_its_failure() -> None:
    error = InvalidResponse(HandshakeFailure.INVALID_ACCEPT, "wrong digest")
    assert error.failure is HandshakeFailure.INVALID_ACCEPT
    assert error.reason == str(error) == "wrong digest"
