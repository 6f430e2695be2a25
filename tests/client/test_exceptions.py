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
)

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
    assert set(exceptions.__all__) == {cls.__name__ for cls in TREE}


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
