"""Tests for ``ProtocolSettings``: defaults, validation, and ``frame_limit``."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wsserver.protocol.exceptions import LocalProtocolError
from wsserver.protocol.settings import ProtocolSettings

#: Fields that must be at least 1.
POSITIVE = [
    "max_message_size",
    "max_fragments",
    "max_request_line",
    "max_header_line",
    "max_headers",
    "max_head_size",
]


def test_defaults() -> None:
    settings = ProtocolSettings()
    assert dataclasses.asdict(settings) == {
        "max_message_size": 1024 * 1024,
        "max_frame_size": None,
        "max_fragments": 4096,
        "max_request_line": 8192,
        "max_header_line": 8192,
        "max_headers": 128,
        "max_head_size": 65536,
        "max_body_size": 1024 * 1024,
    }
    assert settings.frame_limit == 1024 * 1024


def test_frozen_slotted_keyword_only() -> None:
    settings = ProtocolSettings(max_headers=5)
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.max_headers = 6  # type: ignore[misc]
    assert not hasattr(settings, "__dict__")
    with pytest.raises(TypeError):
        ProtocolSettings(1 << 20)  # type: ignore[call-arg]
    assert settings == ProtocolSettings(max_headers=5)
    assert settings != ProtocolSettings()
    assert hash(settings) == hash(ProtocolSettings(max_headers=5))
    assert dataclasses.replace(settings, max_headers=7).max_headers == 7


@pytest.mark.parametrize("name", POSITIVE)
@pytest.mark.parametrize("value", [0, -1, -(1 << 40)])
def test_positive_fields(name: str, value: int) -> None:
    with pytest.raises(LocalProtocolError, match=f"{name} must be at least 1"):
        ProtocolSettings(**{name: value})
    assert getattr(ProtocolSettings(**{name: 1}), name) == 1


@pytest.mark.parametrize("value", [0, -5])
def test_max_frame_size(value: int) -> None:
    with pytest.raises(LocalProtocolError, match="max_frame_size must be at least 1"):
        ProtocolSettings(max_frame_size=value)
    assert ProtocolSettings(max_frame_size=1).max_frame_size == 1


def test_max_body_size_may_be_zero() -> None:
    assert ProtocolSettings(max_body_size=0).max_body_size == 0
    with pytest.raises(LocalProtocolError, match="max_body_size must not be negative"):
        ProtocolSettings(max_body_size=-1)


@pytest.mark.parametrize(
    ("message", "frame", "limit"),
    [
        (100, None, 100),
        (100, 10, 10),
        (100, 100, 100),
        (100, 1000, 100),  # a frame larger than a message can never be valid
        (1, 1, 1),
    ],
)
def test_frame_limit(message: int, frame: int | None, limit: int) -> None:
    settings = ProtocolSettings(max_message_size=message, max_frame_size=frame)
    assert settings.frame_limit == limit


@given(st.integers(1, 1 << 40), st.none() | st.integers(1, 1 << 40))
def test_frame_limit_is_never_above_either_limit(message: int, frame: int | None) -> None:
    settings = ProtocolSettings(max_message_size=message, max_frame_size=frame)
    assert settings.frame_limit == (message if frame is None else min(message, frame))
    assert 1 <= settings.frame_limit <= message
