"""Tests for the client's exceptions: the tree the module docstring draws."""

from __future__ import annotations

import pytest

from wsserver.client import exceptions
from wsserver.client.exceptions import (
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    HandshakeTimeout,
    InvalidAccept,
    InvalidExtension,
    InvalidHandshake,
    InvalidMessage,
    InvalidStatus,
    InvalidSubprotocol,
    InvalidUpgrade,
    InvalidURI,
    NegotiationError,
    TooManyRedirects,
    handshake_error,
)
from wsserver.protocol import HandshakeFailed, HandshakeFailure

TREE: dict[type[Exception], tuple[type[Exception], ...]] = {
    InvalidURI: (ValueError,),
    InvalidHandshake: (Exception,),
    InvalidMessage: (InvalidHandshake,),
    InvalidStatus: (InvalidHandshake,),
    InvalidUpgrade: (InvalidHandshake,),
    InvalidAccept: (InvalidHandshake,),
    NegotiationError: (InvalidHandshake,),
    InvalidSubprotocol: (NegotiationError,),
    InvalidExtension: (NegotiationError,),
    HandshakeTimeout: (InvalidHandshake, TimeoutError),
    TooManyRedirects: (InvalidHandshake,),
    ConnectionClosed: (Exception,),
    ConnectionClosedOK: (ConnectionClosed,),
    ConnectionClosedError: (ConnectionClosed,),
}


def test_exports() -> None:
    assert set(exceptions.__all__) == {cls.__name__ for cls in TREE} | {"handshake_error"}


@pytest.mark.parametrize(("cls", "parents"), TREE.items(), ids=lambda c: getattr(c, "__name__", ""))
def test_hierarchy(cls: type[Exception], parents: tuple[type[Exception], ...]) -> None:
    assert cls.__bases__ == parents


def test_invalid_status_carries_the_response() -> None:
    error = InvalidStatus(404, (("x", "y"),), b"nope")
    assert (error.status, error.headers, error.body) == (404, (("x", "y"),), b"nope")
    assert "404" in str(error)


def test_connection_closed_carries_the_codes() -> None:
    error = ConnectionClosedError(1011, "oops", 1011)
    assert (error.code, error.reason, error.sent_code) == (1011, "oops", 1011)
    assert str(error) == "connection closed: 1011 oops"
    assert str(ConnectionClosedOK(1000, "", 1000)) == "connection closed: 1000"


@pytest.mark.parametrize(
    ("failure", "cls"),
    [
        (HandshakeFailure.INVALID_MESSAGE, InvalidMessage),
        (HandshakeFailure.INVALID_UPGRADE, InvalidUpgrade),
        (HandshakeFailure.INVALID_ACCEPT, InvalidAccept),
        (HandshakeFailure.INVALID_EXTENSION, InvalidExtension),
        (HandshakeFailure.INVALID_SUBPROTOCOL, InvalidSubprotocol),
    ],
)
def test_handshake_error_names_each_failure(
    failure: HandshakeFailure, cls: type[InvalidHandshake]
) -> None:
    error = handshake_error(
        HandshakeFailed(failure=failure, reason="the reason", status=101, headers=(), body=b"")
    )
    assert type(error) is cls
    assert str(error) == "the reason"


def test_handshake_error_of_a_status_keeps_the_response() -> None:
    event = HandshakeFailed(
        failure=HandshakeFailure.INVALID_STATUS,
        reason="HTTP 302",
        status=302,
        headers=(("location", "/x"),),
        body=b"moved",
    )
    error = handshake_error(event)
    assert isinstance(error, InvalidStatus)  # a redirect too: connect() follows those
    assert (error.status, error.headers, error.body) == (302, (("location", "/x"),), b"moved")
