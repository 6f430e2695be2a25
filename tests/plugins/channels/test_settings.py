"""Tests for wsserver.plugins.channels.settings: the manager's limits, checked."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import pytest

from wsserver.plugins.channels import ChannelManager
from wsserver.plugins.channels.queues import DEFAULT_MAX_MESSAGES
from wsserver.plugins.channels.settings import (
    DEFAULT_REQUEST_TIMEOUT,
    ChannelSettings,
    check_timeout,
)

pytestmark = pytest.mark.timeout(30)


async def test_settings_are_checked() -> None:
    for options in (
        {"queue_policy": "block"},
        {"max_queue": 0},
        {"max_chunked_size": 0},
        {"max_inbox": 0},
        {"max_pending_chunked": 0},
        {"request_timeout": 0},
        {"chunk_timeout": float("nan")},
    ):
        with pytest.raises(ValueError):
            ChannelManager(**options)


def test_settings_keep_their_defaults_and_checked_values() -> None:
    settings = ChannelSettings()
    assert settings.max_queue == DEFAULT_MAX_MESSAGES
    assert settings.queue_policy == "close"
    assert settings.request_timeout == DEFAULT_REQUEST_TIMEOUT == 30.0
    assert settings.max_request_timeout == 600.0
    assert settings.max_inbox == 64
    assert (settings.max_user_channels, settings.user_rate, settings.user_burst) == (100, 50.0, 100)
    assert settings.max_token_length == 8192
    assert ChannelSettings(max_user_channels=None, user_rate=None).user_rate is None
    assert repr(ChannelSettings(user_rate=2).user_rate) == "2.0"
    checked = ChannelSettings(request_timeout=2, chunk_timeout=1)
    # Checked values are floats, as given ints are not.
    assert (repr(checked.request_timeout), repr(checked.chunk_timeout)) == ("2.0", "1.0")
    with pytest.raises(dataclasses.FrozenInstanceError):
        checked.max_queue = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"queue_policy": "block"}, 'queue_policy must be "close" or "drop_oldest"'),
        ({"max_chunks": 0}, "queue and chunk limits must be at least 1"),
        ({"max_inbox": 0}, "max_pending_chunked and max_inbox must be at least 1"),
        ({"max_request_timeout": -1}, "max_request_timeout must be a positive number"),
        ({"chunk_timeout": float("inf")}, "chunk_timeout must be a positive number"),
        ({"request_timeout": True}, "request_timeout must be a positive number"),
        ({"history_size": -1}, "history_size must be an integer >= 0"),
        ({"history_ttl": 0}, "history_ttl must be a positive number of seconds"),
        ({"history_topics": "room:"}, "history_topics must be a tuple of topic prefixes"),
        ({"history_topics": (1,)}, "history_topics must be a tuple of topic prefixes"),
        ({"max_recover_topics": 0}, "max_recover_topics and max_listener_queue must be"),
        ({"max_listener_queue": 0}, "max_recover_topics and max_listener_queue must be"),
        ({"recover_wait": 0}, "recover_wait must be a positive number of seconds"),
        ({"max_waiting_recoveries": -1}, "max_waiting_recoveries must be 0 (never wait) or more"),
        ({"max_waiting_recoveries": True}, "max_waiting_recoveries must be 0 (never wait)"),
        ({"max_token_length": 0}, "max_token_length and user_burst must be at least 1"),
        ({"user_burst": 0}, "max_token_length and user_burst must be at least 1"),
        ({"max_user_channels": 0}, "max_user_channels must be at least 1, or None"),
        ({"user_rate": 0}, "user_rate must be a positive number per second, or None"),
        ({"user_rate": True}, "user_rate must be a positive number per second, or None"),
        ({"user_rate": float("inf")}, "user_rate must be a positive number per second"),
    ],
)
def test_each_setting_says_what_is_wrong(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        ChannelSettings(**options)


def test_check_timeout() -> None:
    assert check_timeout(1) == 1.0
    with pytest.raises(ValueError, match="wait must be a positive number of seconds, not 0"):
        check_timeout(0, "wait")


def test_which_topics_have_history() -> None:
    assert not ChannelSettings().has_history("room:a")  # none by default
    settings = ChannelSettings(history_size=10, history_topics=["room:", "feed:"])  # type: ignore[arg-type]
    assert settings.history_topics == ("room:", "feed:")
    assert settings.has_history("room:a") and settings.has_history("feed:x")
    assert not settings.has_history("ticker:AAPL")
    assert ChannelSettings(history_size=1).has_history("anything")
