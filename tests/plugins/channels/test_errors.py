"""Tests for wsserver.plugins.channels.errors: the error family and its codec.

``describe_error`` then ``rebuild_error`` gives the same class and message
back (what another node raised is raised here); anything else becomes a
plain ``ChannelError``.
"""

from __future__ import annotations

import json

import pytest

from wsserver.plugins.channels import (
    BackendUnavailable,
    ChannelDisconnected,
    ChannelError,
    ChannelNotFound,
    HandlerError,
    ReplyError,
    ReplyTimeout,
)
from wsserver.plugins.channels.errors import describe_error, rebuild_error


@pytest.mark.parametrize(
    "error",
    [
        ChannelNotFound("no channel 'x'"),
        ChannelDisconnected("channel x disconnected"),
        ReplyTimeout("no answer from channel x within 5 s"),
        BackendUnavailable("redis is down"),
        ChannelError("something else"),
    ],
)
def test_errors_travel_between_nodes_unchanged(error: ChannelError) -> None:
    description = json.loads(json.dumps(describe_error(error)))  # what the backend carries
    rebuilt = rebuild_error(description)
    assert type(rebuilt) is type(error)
    assert str(rebuilt) == str(error)


def test_a_reply_error_keeps_the_pages_name_and_message() -> None:
    description = describe_error(ReplyError("RangeError", "unknown op"))
    assert description == {"type": "reply", "name": "RangeError", "message": "unknown op"}
    rebuilt = rebuild_error(description)
    assert isinstance(rebuilt, ReplyError)
    assert (rebuilt.name, rebuilt.message, str(rebuilt)) == (
        "RangeError",
        "unknown op",
        "RangeError: unknown op",
    )
    assert isinstance(rebuild_error({"type": "reply"}), ReplyError)  # name defaults to Error


@pytest.mark.parametrize(
    "description", [None, "timeout", ["timeout"], {"type": "martian", "message": "?"}, {}]
)
def test_what_is_no_known_description_becomes_a_channel_error(description: object) -> None:
    rebuilt = rebuild_error(description)
    assert type(rebuilt) is ChannelError


def test_the_family() -> None:
    assert issubclass(ReplyTimeout, TimeoutError)  # "except TimeoutError" catches it
    for cls in (ChannelNotFound, ChannelDisconnected, ReplyTimeout, ReplyError):
        assert issubclass(cls, ChannelError)
    assert not issubclass(HandlerError, ChannelError)  # raised by applications
