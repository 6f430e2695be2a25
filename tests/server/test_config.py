"""Tests for wsserver.server.config: defaults, their documentation, validation."""

from __future__ import annotations

import dataclasses
import math
import re
import ssl
from typing import Any

import pytest

from wsserver.protocol import DeflateSettings, ProtocolSettings
from wsserver.server.config import CLI_OPTION, ServerConfig, cli_option

#: Every setting's default, as the class docstring states it.
DEFAULTS: dict[str, Any] = {
    "host": "127.0.0.1",
    "port": 8000,
    "uds": None,
    "protocol": ProtocolSettings(),
    "deflate": DeflateSettings(),
    "max_queue": 16,
    "read_limit": 64 * 1024,
    "write_limit": 64 * 1024,
    "write_timeout": 60.0,
    "ping_interval": 20.0,
    "ping_timeout": 20.0,
    "open_timeout": 10.0,
    "handshake_timeout": 10.0,
    "receive_timeout": None,
    "close_timeout": 10.0,
    "max_connections": 10_000,
    "shutdown_timeout": 10.0,
    "ssl_context": None,
    "backlog": 1024,
    "reuse_port": False,
    "origins": None,
    "access_log": True,
    "proxy_headers": True,
    "forwarded_allow_ips": "127.0.0.1",
    "root_path": "",
    "headers": (),
    "max_connections_per_client": 256,
    "handshake_rate_per_client": 20.0,
    "handshake_burst_per_client": 40,
    "client_ipv6_prefix": 64,
    "client_table_size": 10_000,
    "message_rate_per_connection": 1000.0,
    "message_burst_per_connection": 2000,
    "byte_rate_per_connection": 4 * 1024 * 1024,
    "byte_burst_per_connection": 16 * 1024 * 1024,
    "rate_limit_policy": "pause",
    "metrics_path": None,
    "readiness_path": "/readyz",
    "drain_delay": None,
}


def documented_settings() -> dict[str, str]:
    """The ``Attributes:`` section of the docstring: name -> its text."""
    doc = ServerConfig.__doc__
    assert doc is not None
    section = doc.split("Attributes:", 1)[1]
    entries: dict[str, str] = {}
    name = None
    for line in section.splitlines():
        match = re.match(r"^        (\w+): (.*)$", line)
        if match:
            name = match[1]
            entries[name] = match[2]
        elif name is not None and line.strip():
            entries[name] += " " + line.strip()
    return entries


def test_defaults() -> None:
    config = ServerConfig()
    actual = {f.name: getattr(config, f.name) for f in dataclasses.fields(ServerConfig)}
    assert actual == DEFAULTS


def test_every_setting_is_documented() -> None:
    documented = documented_settings()
    assert set(documented) == {f.name for f in dataclasses.fields(ServerConfig)}
    assert all(text.strip() for text in documented.values())


@pytest.mark.parametrize(
    ("name", "stated"),
    [
        ("host", "127.0.0.1"),
        ("port", "8000"),
        ("uds", "``None``"),
        ("max_queue", "16"),
        ("read_limit", "64 KiB"),
        ("write_limit", "64 KiB"),
        ("write_timeout", "60 s"),
        ("ping_interval", "20 s"),
        ("ping_timeout", "20 s"),
        ("open_timeout", "10 s"),
        ("handshake_timeout", "10 s"),
        ("receive_timeout", "``None``"),
        ("close_timeout", "10 s"),
        ("max_connections", "10,000"),
        ("max_connections_per_client", "256"),
        ("handshake_burst_per_client", "40"),
        ("client_ipv6_prefix", "64"),
        ("client_table_size", "10,000"),
        ("message_rate_per_connection", "1,000"),
        ("message_burst_per_connection", "2,000"),
        ("byte_rate_per_connection", "4 MiB"),
        ("byte_burst_per_connection", "16 MiB"),
        ("rate_limit_policy", '``"pause"``'),
        ("shutdown_timeout", "10 s"),
        ("backlog", "1024"),
        ("origins", "``None``"),
        ("access_log", "True"),
        ("proxy_headers", "True"),
        ("forwarded_allow_ips", "``127.0.0.1``"),
        ("root_path", '``""``'),
        ("headers", "None by default"),
    ],
)
def test_documented_defaults_match(name: str, stated: str) -> None:
    # The docstring states these defaults in words; DEFAULTS (checked above
    # against the code) is what they must say.
    assert stated in documented_settings()[name]
    value = DEFAULTS[name]
    if name.startswith("byte_"):
        assert stated == f"{value // (1024 * 1024)} MiB"
    elif name == "message_rate_per_connection":
        assert stated.replace(",", "") == f"{value:g}"  # per second, not seconds
    elif name == "rate_limit_policy":
        assert stated == f'``"{value}"``'
    elif isinstance(value, float):
        assert stated == f"{value:g} s"
    elif name in ("read_limit", "write_limit"):
        assert stated == f"{value // 1024} KiB"
    elif isinstance(value, int):
        assert stated.replace(",", "") == str(value)


def test_frozen_and_keyword_only() -> None:
    config = ServerConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.port = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        ServerConfig("0.0.0.0")  # type: ignore[call-arg]


def test_replace_validates_again() -> None:
    config = ServerConfig(port=0)
    assert dataclasses.replace(config, max_queue=1).max_queue == 1
    with pytest.raises(ValueError, match="max_queue"):
        dataclasses.replace(config, max_queue=0)


def test_good_values_are_accepted() -> None:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    config = ServerConfig(
        host="::1",
        port=0,
        uds="/tmp/x.sock",
        deflate=None,
        max_queue=1,
        read_limit=1,
        write_limit=1,
        write_timeout=None,
        ping_interval=None,
        ping_timeout=None,
        open_timeout=None,
        handshake_timeout=None,
        receive_timeout=0.001,
        close_timeout=0.001,
        max_connections=None,
        shutdown_timeout=0,
        ssl_context=context,
        backlog=0,
        reuse_port=True,
        max_connections_per_client=None,
        handshake_rate_per_client=None,
        handshake_burst_per_client=1,
        client_ipv6_prefix=128,
        client_table_size=1,
    )
    assert config.ssl_context is context
    assert config.client_limiter() is None
    limiter = ServerConfig(max_connections_per_client=None).client_limiter()
    assert limiter is not None
    assert (limiter.max_open, limiter.rate, limiter.burst) == (None, 20.0, 40)
    assert ServerConfig(port=65535).port == 65535
    assert ServerConfig(write_timeout=math.inf).write_timeout == math.inf


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"port": -1}, "port must be between 0 and 65535"),
        ({"port": 65536}, "port must be between 0 and 65535"),
        ({"backlog": -1}, "backlog must not be negative"),
        ({"max_queue": 0}, "max_queue must be at least 1"),
        ({"max_queue": -5}, "max_queue must be at least 1"),
        ({"read_limit": 0}, "read_limit and write_limit must be at least 1"),
        ({"write_limit": 0}, "read_limit and write_limit must be at least 1"),
        ({"max_connections": 0}, "max_connections must be at least 1"),
        ({"write_timeout": 0}, "write_timeout must be positive"),
        ({"write_timeout": -1.0}, "write_timeout must be positive"),
        ({"write_timeout": math.nan}, "write_timeout must be positive"),
        ({"ping_interval": 0}, "ping_interval must be positive"),
        ({"ping_interval": -0.5}, "ping_interval must be positive"),
        ({"ping_timeout": 0}, "ping_timeout must be positive"),
        ({"ping_timeout": math.nan}, "ping_timeout must be positive"),
        ({"open_timeout": 0}, "open_timeout must be positive"),
        ({"open_timeout": -10}, "open_timeout must be positive"),
        ({"handshake_timeout": 0}, "handshake_timeout must be positive"),
        ({"handshake_timeout": math.nan}, "handshake_timeout must be positive"),
        ({"receive_timeout": 0}, "receive_timeout must be positive"),
        ({"receive_timeout": -1}, "receive_timeout must be positive"),
        ({"close_timeout": 0}, "close_timeout must be positive"),
        ({"close_timeout": -1}, "close_timeout must be positive"),
        ({"close_timeout": math.nan}, "close_timeout must be positive"),
        ({"shutdown_timeout": -1}, "shutdown_timeout not negative"),
        ({"shutdown_timeout": math.nan}, "shutdown_timeout not negative"),
        ({"max_connections_per_client": 0}, "max_connections_per_client must be at least 1"),
        ({"handshake_rate_per_client": 0.0}, "handshake_rate_per_client must be a positive"),
        ({"handshake_rate_per_client": math.inf}, "handshake_rate_per_client must be a positive"),
        ({"handshake_rate_per_client": math.nan}, "handshake_rate_per_client must be a positive"),
        ({"handshake_burst_per_client": 0}, "handshake_burst_per_client must be at least 1"),
        ({"client_ipv6_prefix": 0}, "client_ipv6_prefix must be between 1 and 128"),
        ({"client_ipv6_prefix": 129}, "client_ipv6_prefix must be between 1 and 128"),
        ({"client_table_size": 0}, "client_table_size must be at least 1"),
        ({"message_rate_per_connection": 0.0}, "message_rate_per_connection must be a positive"),
        ({"byte_rate_per_connection": math.inf}, "byte_rate_per_connection must be a positive"),
        ({"message_burst_per_connection": 0}, "message_burst_per_connection must be at least 1"),
        ({"byte_burst_per_connection": 0}, "byte_burst_per_connection must be at least 1"),
        ({"rate_limit_policy": "drop"}, "rate_limit_policy must be 'pause' or 'close'"),
    ],
    ids=lambda value: str(value) if isinstance(value, dict) else "",
)
def test_bad_values_are_refused(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        ServerConfig(**settings)


def test_cli_option_is_plain_metadata() -> None:
    # The same mapping the protocol core writes out: wsserver.cli reads both.
    assert cli_option("--ws-max-queue", kind="int") == {
        CLI_OPTION: {"flags": ("--ws-max-queue",), "kind": "int"}
    }
    assert cli_option(
        "--origin", "--allow-origin", help="h", metavar="O", choices=["a"], repeat=True, convert=str
    ) == {
        CLI_OPTION: {
            "flags": ("--origin", "--allow-origin"),
            "kind": "text",
            "help": "h",
            "metavar": "O",
            "choices": ("a",),
            "repeat": True,
            "convert": str,
        }
    }


def test_cli_option_needs_a_flag() -> None:
    with pytest.raises(TypeError, match="at least one flag"):
        cli_option()


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"metrics_path": "metrics"}, "metrics_path must start with '/'"),
        ({"readiness_path": "readyz"}, "readiness_path must start with '/'"),
        ({"metrics_path": "/readyz"}, "metrics_path and readiness_path must differ"),
        ({"drain_delay": -1.0}, "drain_delay must not be negative"),
    ],
)
def test_operations_settings_are_checked(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ServerConfig(**settings)


def test_an_empty_readiness_path_turns_the_probe_off() -> None:
    assert ServerConfig(readiness_path="").readiness_path == ""
    ServerConfig(readiness_path=None, metrics_path="/metrics")
