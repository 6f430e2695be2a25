"""Tests for wsserver.plugins.components.settings: PageSettings and the
keyword arguments that mirror it."""

from __future__ import annotations

from dataclasses import FrozenInstanceError, asdict, fields
from typing import get_type_hints

import pytest

from wsserver.plugins.components.settings import (
    DEFAULT_CSP,
    DEFAULT_EXPIRED_MESSAGE,
    DEFAULT_WS_PATH,
    PageOptions,
    PageSettings,
)


def test_the_defaults_are_those_componentapp_always_had() -> None:
    assert asdict(PageSettings()) == {
        "title": "wsserver",
        "head": "",
        "lang": "en",
        "store": None,
        "secret": None,
        "snapshot_ttl": 1800.0,
        "max_snapshot_size": 262144,
        "ws_path": "/_wsserver/cv",
        "prefix": "/_wsserver",
        "csp": "script-src 'self'; object-src 'none'; base-uri 'none'",
        "expired_message": "This page has expired. Reloading\u2026",
        "reload_delay": 1.5,
        "history_limit": 16,
        "max_message_size": None,
        "ping_interval": 15.0,
        "ping_timeout": 10.0,
        "reconnect_attempts": 8,
        "reconnect_base": 0.5,
        "reconnect_max": 15.0,
        "connect_timeout": 10.0,
        "max_pending_jobs": 256,
        "receive_timeout": None,
        "server_ping_interval": None,
        "upload_dir": None,
        "upload_chunk_size": 65536,
        "upload_window": 4,
        "max_uploads": 4,
        "compress_min_size": 1024,
        "health_path": "/healthz",
        "authenticate": None,
    }
    assert PageSettings().ws_path == DEFAULT_WS_PATH
    assert PageSettings().csp == DEFAULT_CSP
    assert PageSettings().expired_message == DEFAULT_EXPIRED_MESSAGE


def test_settings_are_frozen() -> None:
    settings = PageSettings(title="Shop")
    with pytest.raises(FrozenInstanceError):
        settings.title = "Other"  # type: ignore[misc]
    assert settings.title == "Shop"


def test_the_keyword_arguments_name_every_setting_with_its_type() -> None:
    assert list(PageOptions.__annotations__) == [f.name for f in fields(PageSettings)]
    assert get_type_hints(PageOptions) == get_type_hints(PageSettings)
    assert not PageOptions.__required_keys__  # each one optional


def test_every_setting_is_documented() -> None:
    doc = PageSettings.__doc__ or ""
    for field in fields(PageSettings):
        assert f"\n        {field.name}: " in doc, field.name


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"snapshot_ttl": 0}, "PageSettings.snapshot_ttl must be positive, not 0"),
        ({"history_limit": -1}, "PageSettings.history_limit must be positive, not -1"),
        ({"max_pending_jobs": 0}, "PageSettings.max_pending_jobs must be positive, not 0"),
        ({"max_message_size": 0}, "PageSettings.max_message_size must be positive, not 0"),
        ({"ping_interval": 0.0}, "PageSettings.ping_interval must be positive, not 0.0"),
        (
            {"connect_timeout": float("nan")},
            "PageSettings.connect_timeout must be positive, not nan",
        ),
        ({"reload_delay": -1.0}, "PageSettings.reload_delay must not be negative, not -1.0"),
        (
            {"reconnect_attempts": -1},
            "PageSettings.reconnect_attempts must not be negative, not -1",
        ),
        ({"reconnect_base": 20.0}, "PageSettings.reconnect_base must not exceed reconnect_max"),
        ({"ws_path": "cv"}, "PageSettings.ws_path must start with '/', not 'cv'"),
        ({"prefix": ""}, "PageSettings.prefix must start with '/', not ''"),
    ],
)
def test_a_setting_out_of_range_is_refused_at_once(options: PageOptions, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        PageSettings(**options)
    assert str(caught.value) == message


def test_the_edges_of_the_ranges_are_accepted() -> None:
    settings = PageSettings(
        reload_delay=0,
        reconnect_attempts=0,
        reconnect_base=0,
        max_message_size=None,
        ping_interval=None,
        max_pending_jobs=1,
    )
    assert settings.max_pending_jobs == 1
