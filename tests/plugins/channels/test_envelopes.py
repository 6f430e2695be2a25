"""Tests for wsserver.plugins.channels.envelopes: typed custom envelopes.

The forms ``custom=True`` accepts, the flag matching the envelope, and the
kind carried between nodes.
"""

from __future__ import annotations

from typing import Any

import pytest

from wsserver.plugins.channels import CustomServerMessage
from wsserver.plugins.channels.envelopes import (
    message_fields,
    remote_compress,
    remote_fields,
    remote_kind,
)


def test_plain_messages_are_data() -> None:
    assert message_fields({"x": 1}, False) == {"data": {"x": 1}}
    # A dict that looks like an envelope is still data without the flag.
    loose = {"kind": "toast", "data": 1}
    assert message_fields(loose, False) == {"data": loose}
    assert message_fields(None, False) == {"data": None}


@pytest.mark.parametrize(
    "message",
    [
        CustomServerMessage("toast", {"text": "hi"}),
        {"kind": "toast", "data": {"text": "hi"}},
        # Dara's serialised CustomServerMessage: unwrapped, not wrapped again.
        {"type": "custom", "message": {"kind": "toast", "data": {"text": "hi"}}},
    ],
)
def test_the_three_custom_forms(message: Any) -> None:
    assert message_fields(message, True) == {"data": {"text": "hi"}, "kind": "toast"}


def test_a_custom_envelope_without_data() -> None:
    assert message_fields({"kind": "ping"}, True) == {"data": None, "kind": "ping"}
    assert CustomServerMessage("ping").data is None


@pytest.mark.parametrize(
    "message",
    [
        "text",
        {"data": 1},
        {"kind": "toast", "data": 1, "extra": 2},
        {"kind": 3},
        {"type": "custom", "message": "no"},
        ["toast", 1],
    ],
)
def test_custom_needs_an_envelope(message: Any) -> None:
    with pytest.raises(TypeError, match="custom=True sends a CustomServerMessage"):
        message_fields(message, True)


def test_the_flag_must_match_the_envelope() -> None:
    with pytest.raises(TypeError, match="is sent with custom=True"):
        message_fields(CustomServerMessage("toast", 1), False)


@pytest.mark.parametrize("kind", ["", "Toast", "1x", "a" * 33, "with space"])
def test_kinds_are_names(kind: str) -> None:
    with pytest.raises(ValueError, match="invalid custom message kind"):
        CustomServerMessage(kind, 1)
    with pytest.raises(ValueError, match="invalid custom message kind"):
        message_fields({"kind": kind, "data": 1}, True)


def test_between_nodes() -> None:
    custom = message_fields(CustomServerMessage("toast", 1), True)
    assert remote_kind(custom) == {"kind": "toast"}
    assert remote_kind({"data": 1}) == {}
    assert remote_fields({"op": "send", "msg": 1, "kind": "toast"}) == custom
    assert remote_fields({"op": "send", "msg": 1}) == {"data": 1}
    with pytest.raises(ValueError):
        remote_fields({"msg": 1, "kind": "Bad Kind"})
    with pytest.raises(ValueError):
        remote_fields({"msg": 1, "kind": 5})


def test_the_compress_choice_between_nodes() -> None:
    assert remote_kind({"data": 1}, True) == {"z": True}
    assert remote_kind({"data": 1, "kind": "k"}, False) == {"kind": "k", "z": False}
    assert remote_compress({"z": True}) is True
    assert remote_compress({"z": False}) is False
    assert remote_compress({}) is None
    assert remote_compress({"z": "yes"}) is None  # not a choice: the default
