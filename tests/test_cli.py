"""Tests for wsserver.cli: ``wsserver run`` and its flags.

Start-up errors and serving run ``python -m wsserver`` as a subprocess, as
a user would; the server is found ready by its "listening on" log line
(``--port 0`` picks a free port, which that line names).  The echo example
is tested here too: it is the target ``wsserver run`` is documented with,
and the test layout maps only ``wsserver/`` modules.  The options of the
settings come from their dataclass fields' metadata; the tests of that
mechanism use dataclasses of their own.  ``--workers`` hands over to the
supervisor, tested in tests/test_supervisor.py.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator, Coroutine, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, fields
from functools import partial
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidMessage, InvalidStatus

import wsserver
from wsserver.cli import (
    ImportFromStringError,
    _add_options,
    _from_arguments,
    _parser,
    _worker_command,
    build_config,
    import_from_string,
    load_app,
    main,
)
from wsserver.protocol import DeflateSettings, ProtocolSettings
from wsserver.server import App, ServerConfig
from wsserver.server.config import CLI_OPTION, cli_option

from ._live import TIMEOUT, handshake_headers, http_get
from .server.helpers import make_certificate

ROOT = Path(__file__).resolve().parent.parent
#: Subprocesses start a fresh interpreter: give them more time than a reply.
START_TIMEOUT = 4 * TIMEOUT


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------


def run_cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wsserver", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT,
        check=False,
    )


def assert_one_error_line(result: subprocess.CompletedProcess[str], status: int = 2) -> str:
    """The run failed with ``status`` and one clear line, no traceback."""
    assert result.returncode == status, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("wsserver: error: ")
    return lines[0].removeprefix("wsserver: error: ")


@dataclass
class Running:
    port: int
    returncode: int | None = None
    stderr: str = ""
    log: list[str] = field(default_factory=list)


@asynccontextmanager
async def running(
    *args: str, cwd: Path = ROOT, python_flags: Sequence[str] = ()
) -> AsyncIterator[Running]:
    """``python -m wsserver run *args --port 0``, stopped with SIGTERM on exit."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *python_flags,
        "-m",
        "wsserver",
        "run",
        *args,
        "--port",
        "0",
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stderr is not None
    log: list[str] = []
    try:
        while True:
            line = await asyncio.wait_for(process.stderr.readline(), START_TIMEOUT)
            assert line, f"the server exited before listening: {b''.join(map(str.encode, log))!r}"
            log.append(line.decode())
            found = re.search(r"wsserver listening on 127\.0\.0\.1:(\d+)", log[-1])
            if found:
                break
        state = Running(int(found.group(1)), log=log)
        yield state
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(process.communicate(), START_TIMEOUT)
    state.returncode = process.returncode
    state.stderr = "".join(log) + err.decode()


# ---------------------------------------------------------------------------
# --version and the entry point
# ---------------------------------------------------------------------------


def test_version_flag_prints_the_version() -> None:
    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout == f"wsserver {wsserver.__version__}\n"


def test_console_script_points_at_main() -> None:
    (script,) = entry_points(group="console_scripts", name="wsserver")
    assert script.load() is main


def test_no_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main([])
    assert caught.value.code == 2
    assert "the following arguments are required: command" in capsys.readouterr().err


# ---------------------------------------------------------------------------
# start-up errors: one line, exit 2, no traceback
# ---------------------------------------------------------------------------


def test_no_such_module() -> None:
    message = assert_one_error_line(run_cli("run", "no_such_module_xyz:app"))
    assert message == 'could not import module "no_such_module_xyz"'


def test_no_such_submodule() -> None:
    message = assert_one_error_line(run_cli("run", "examples.no_such_example:app"))
    assert message == 'could not import module "examples.no_such_example"'


def test_no_such_attribute() -> None:
    message = assert_one_error_line(run_cli("run", "examples.echo:NoSuchView"))
    assert message == 'attribute "NoSuchView" not found in module "examples.echo"'


def test_not_module_colon_attr() -> None:
    message = assert_one_error_line(run_cli("run", "examples.echo"))
    assert message == 'import string "examples.echo" must be in the form "module:attr"'


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (
            'raise RuntimeError("database not configured")\n',
            'error importing "broken": RuntimeError: database not configured',
        ),
        (
            "import missing_dependency_xyz\n",
            'error importing "broken": no module named "missing_dependency_xyz"',
        ),
        ("x = (1 +\n", 'error importing "broken": SyntaxError: '),
    ],
    ids=["raises", "missing-dependency", "syntax-error"],
)
def test_module_failing_to_import(tmp_path: Path, source: str, expected: str) -> None:
    (tmp_path / "broken.py").write_text(source)
    message = assert_one_error_line(run_cli("run", "broken:app", cwd=tmp_path))
    assert message.startswith(expected)


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("examples.echo:WebSocket", "is not a WebSocketView subclass, an App"),
        ("examples.echo:annotations", "is not a WebSocketView subclass, an App"),
        ("wsserver:App", "(a class: pass an instance)"),
    ],
)
def test_attribute_that_is_not_a_view_or_app(target: str, expected: str) -> None:
    message = assert_one_error_line(run_cli("run", target))
    assert expected in message


def test_factory_that_is_not_callable(tmp_path: Path) -> None:
    (tmp_path / "apps.py").write_text("value = 42\n")
    message = assert_one_error_line(run_cli("run", "apps:value", "--factory", cwd=tmp_path))
    assert message == '"apps:value" is not callable (--factory)'


def test_factory_that_raises(tmp_path: Path) -> None:
    (tmp_path / "apps.py").write_text("def create():\n    raise KeyError('SECRET_KEY')\n")
    message = assert_one_error_line(run_cli("run", "apps:create", "--factory", cwd=tmp_path))
    assert message == "factory \"apps:create\" failed: KeyError: 'SECRET_KEY'"


def test_missing_certificate_file(tmp_path: Path) -> None:
    message = assert_one_error_line(
        run_cli("run", "examples.echo:EchoView", "--ssl-certfile", str(tmp_path / "none.pem"))
    )
    assert "No such file or directory" in message


def test_invalid_setting_value() -> None:
    message = assert_one_error_line(
        run_cli("run", "examples.echo:EchoView", "--max-connections", "0")
    )
    assert message == "max_connections must be at least 1"


def test_port_in_use_is_one_line_and_exit_1() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("run", "examples.echo:EchoView", "--port", str(port))
    assert "Traceback" not in result.stderr
    assert result.returncode == 1
    assert f"wsserver: error: cannot listen on 127.0.0.1:{port}: " in result.stderr


@pytest.mark.parametrize("value", ["abc", "nan", "-1"])
def test_timeouts_must_be_positive_numbers(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    for flag in ("--close-timeout", "--ws-ping-interval", "--open-timeout"):
        with pytest.raises(SystemExit) as caught:
            _parser().parse_args(["run", "m:a", flag, value])
        assert caught.value.code == 2
        assert re.search(f"argument {flag}(/--[a-z-]+)?: must be", capsys.readouterr().err)


# ---------------------------------------------------------------------------
# serving
# ---------------------------------------------------------------------------


async def test_run_serves_the_echo_example_until_sigterm() -> None:
    async with (
        running("examples.echo:EchoView") as server,
        connect(f"ws://127.0.0.1:{server.port}/") as client,
    ):
        assert handshake_headers(client)["Sec-WebSocket-Extensions"].startswith(
            "permessage-deflate"
        )
        await client.send("text stays text")
        assert await asyncio.wait_for(client.recv(), TIMEOUT) == "text stays text"
        await client.send(b"\x00binary\xff")
        assert await asyncio.wait_for(client.recv(), TIMEOUT) == b"\x00binary\xff"
        await client.send("é" * 100_000)
        assert await asyncio.wait_for(client.recv(), TIMEOUT) == "é" * 100_000
    # SIGTERM is a graceful shutdown, not a crash.
    assert server.returncode == 0
    assert "shutting down" in server.stderr
    assert "Traceback" not in server.stderr


async def test_sigterm_closes_open_connections_with_1001() -> None:
    async with running("examples.echo:EchoView") as server:
        client = await connect(f"ws://127.0.0.1:{server.port}/")
        await client.send("hi")
        assert await asyncio.wait_for(client.recv(), TIMEOUT) == "hi"
    # The context sent SIGTERM and waited for the exit; the client's
    # connection was closed by the server, going away.
    await asyncio.wait_for(client.wait_closed(), TIMEOUT)
    assert client.close_code == 1001
    assert server.returncode == 0


async def test_run_with_factory_path_and_no_compression_from_the_current_directory(
    tmp_path: Path,
) -> None:
    (tmp_path / "myapp.py").write_text(
        "from wsserver import WebSocketView\n"
        "class Upper(WebSocketView):\n"
        "    encoding = 'text'\n"
        "    async def on_receive(self, websocket, data):\n"
        "        await websocket.send_text(data.upper())\n"
        "def create():\n"
        "    return Upper\n"
    )
    # -P: Python does not put the current directory on sys.path itself, so
    # finding myapp shows that the command does.
    async with running(
        "myapp:create",
        "--factory",
        "--path",
        "/upper",
        "--no-compression",
        cwd=tmp_path,
        python_flags=["-P"],
    ) as server:
        async with connect(f"ws://127.0.0.1:{server.port}/upper") as client:
            assert "Sec-WebSocket-Extensions" not in handshake_headers(client)
            await client.send("shout")
            assert await asyncio.wait_for(client.recv(), TIMEOUT) == "SHOUT"
        with pytest.raises(InvalidStatus) as caught:
            async with connect(f"ws://127.0.0.1:{server.port}/"):
                pass
        assert caught.value.response.status_code == 404
    assert server.returncode == 0


async def test_run_with_uvloop() -> None:
    async with (
        running("examples.echo:EchoView", "--loop", "uvloop") as server,
        connect(f"ws://127.0.0.1:{server.port}/") as client,
    ):
        await client.send("on uvloop")
        assert await asyncio.wait_for(client.recv(), TIMEOUT) == "on uvloop"
    assert server.returncode == 0


# ---------------------------------------------------------------------------
# import_from_string
# ---------------------------------------------------------------------------


def test_import_from_string_resolves_dotted_attributes() -> None:
    assert import_from_string("wsserver.server:App.handle_http") is wsserver.App.handle_http
    assert import_from_string("examples.echo:EchoView").__name__ == "EchoView"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "spec", [":App", "wsserver:", "wsserver", "wsserver:App.nope", "no_such_xyz:a"]
)
def test_import_from_string_errors(spec: str) -> None:
    with pytest.raises(ImportFromStringError):
        import_from_string(spec)


# ---------------------------------------------------------------------------
# build_config
# ---------------------------------------------------------------------------


def parse(*flags: str) -> argparse.Namespace:
    return _parser().parse_args(["run", "m:a", *flags])


def test_defaults_match_server_config_defaults() -> None:
    config = build_config(parse())
    defaults = ServerConfig()
    assert config.host == "127.0.0.1"
    assert config.port == 8000
    assert config.protocol == defaults.protocol
    assert config.deflate == defaults.deflate
    for name in (
        "uds",
        "max_queue",
        "ping_interval",
        "ping_timeout",
        "receive_timeout",
        "open_timeout",
        "handshake_timeout",
        "close_timeout",
        "max_connections",
        "write_timeout",
        "shutdown_timeout",
        "origins",
        "ssl_context",
        "reuse_port",
        "access_log",
    ):
        assert getattr(config, name) == getattr(defaults, name), name


#: Every option of ``wsserver run`` that is not a setting of the server.
NOT_CONFIG = {
    "target",
    "factory",
    "path",
    "interface",
    "lifespan",
    "loop",
    "log_level",
    "log_config",
    "log_format",
    "app_dir",
    "env_file",
    "ssl_keyfile",
    "ssl_keyfile_password",
    "ssl_ca_certs",
    "ssl_cert_reqs",
    "help",
    "command",
    # Process-level: the supervisor, the reloader and the channel manager's backend.
    "workers",
    "reload",
    "reload_dir",
    "reload_include",
    "reload_exclude",
    "channels_backend",
    "pid_file",
}


def test_build_config_maps_every_flag() -> None:
    args = parse(
        "--host", "0.0.0.0",
        "--port", "9001",
        "--uds", "/tmp/ws.sock",
        "--ws-max-size", "1000",
        "--ws-max-frame-size", "500",
        "--ws-max-fragments", "7",
        "--http-max-body-size", "2048",
        "--ws-max-queue", "3",
        "--ws-ping-interval", "5",
        "--ws-ping-timeout", "none",
        "--receive-timeout", "30",
        "--open-timeout", "off",
        "--handshake-timeout", "7",
        "--close-timeout", "2.5",
        "--max-connections", "12",
        "--write-timeout", "3",
        "--shutdown-timeout", "4",
        "--origin", "https://example.com",
        "--origin", "https://*.example.org",
        "--deflate-server-max-window-bits", "10",
        "--deflate-client-max-window-bits", "11",
        "--deflate-server-no-context-takeover",
        "--deflate-client-no-context-takeover",
        "--deflate-level", "2",
        "--deflate-mem-level", "4",
        "--reuse-port",
        "--no-access-log",
        "--backlog", "77",
        "--no-proxy-headers",
        "--forwarded-allow-ips", "10.0.0.0/8, 192.0.2.1",
        "--root-path", "/api",
        "--header", "Server: edge-1",
        "--header", "x-frame-options:DENY",
        "--max-connections-per-client", "none",
        "--handshake-rate-per-client", "2.5",
        "--handshake-burst-per-client", "5",
        "--client-ipv6-prefix", "56",
        "--client-table-size", "99",
        "--message-rate-per-connection", "none",
        "--message-burst-per-connection", "7",
        "--byte-rate-per-connection", "1048576",
        "--byte-burst-per-connection", "2097152",
        "--rate-limit-policy", "close",
        "--metrics-path", "/metrics",
        "--readiness-path", "/ready",
        "--drain-delay", "5",
    )  # fmt: skip
    config = build_config(args)
    assert config.max_connections_per_client is None
    assert config.handshake_rate_per_client == 2.5
    assert config.handshake_burst_per_client == 5
    assert config.client_ipv6_prefix == 56
    assert config.client_table_size == 99
    assert config.message_rate_per_connection is None
    assert config.message_burst_per_connection == 7
    assert config.byte_rate_per_connection == 1048576
    assert config.byte_burst_per_connection == 2097152
    assert config.rate_limit_policy == "close"
    assert config.backlog == 77
    assert config.proxy_headers is False
    assert config.trusted_proxies is None
    assert config.forwarded_allow_ips == "10.0.0.0/8, 192.0.2.1"
    assert config.root_path == "/api"
    assert config.headers == (("server", "edge-1"), ("x-frame-options", "DENY"))
    assert (config.metrics_path, config.readiness_path) == ("/metrics", "/ready")
    assert config.drain_delay == 5.0
    assert config.host == "0.0.0.0"
    assert config.port == 9001
    assert config.uds == "/tmp/ws.sock"
    assert config.protocol == ProtocolSettings(
        max_message_size=1000, max_frame_size=500, max_fragments=7, max_body_size=2048
    )
    assert config.max_queue == 3
    assert config.ping_interval == 5.0
    assert config.ping_timeout is None
    assert config.receive_timeout == 30.0
    assert config.open_timeout is None
    assert config.handshake_timeout == 7.0
    assert config.close_timeout == 2.5
    assert config.max_connections == 12
    assert config.write_timeout == 3.0
    assert config.shutdown_timeout == 4.0
    assert config.reuse_port is True
    assert config.access_log is False
    assert config.origins is not None
    assert config.origins.allows("https://example.com")
    assert config.origins.allows("https://app.example.org")
    assert not config.origins.allows("https://evil.test")
    assert config.deflate == DeflateSettings(
        server_max_window_bits=10,
        client_max_window_bits=11,
        server_no_context_takeover=True,
        client_no_context_takeover=True,
        compression_level=2,
        mem_level=4,
    )
    # The flags above are all the settings flags there are: a new flag
    # must be added here (and to build_config).
    every_option = {action.dest for action in run_subparser()._actions}
    # --compression and the TLS files have tests of their own below.
    assert every_option - NOT_CONFIG - {"compression", "ssl_certfile"} == {
        "host",
        "port",
        "uds",
        "ws_max_size",
        "ws_max_frame_size",
        "ws_max_fragments",
        "http_max_body_size",
        "ws_max_queue",
        "ws_ping_interval",
        "ws_ping_timeout",
        "receive_timeout",
        "open_timeout",
        "handshake_timeout",
        "close_timeout",
        "max_connections",
        "write_timeout",
        "shutdown_timeout",
        "origin",
        "deflate_server_max_window_bits",
        "deflate_client_max_window_bits",
        "deflate_server_no_context_takeover",
        "deflate_client_no_context_takeover",
        "deflate_level",
        "deflate_mem_level",
        "reuse_port",
        "access_log",
        "backlog",
        "proxy_headers",
        "forwarded_allow_ips",
        "root_path",
        "header",
        "max_connections_per_client",
        "handshake_rate_per_client",
        "handshake_burst_per_client",
        "client_ipv6_prefix",
        "client_table_size",
        "message_rate_per_connection",
        "message_burst_per_connection",
        "byte_rate_per_connection",
        "byte_burst_per_connection",
        "rate_limit_policy",
        "metrics_path",
        "readiness_path",
        "drain_delay",
    }


@pytest.mark.parametrize(
    ("uvicorn", "ours", "value", "setting", "expected"),
    [
        ("--timeout-keep-alive", "--open-timeout", "5", "open_timeout", 5.0),
        ("--limit-concurrency", "--max-connections", "3", "max_connections", 3),
        ("--timeout-graceful-shutdown", "--shutdown-timeout", "2", "shutdown_timeout", 2.0),
    ],
)
def test_uvicorns_names_are_aliases(
    uvicorn: str, ours: str, value: str, setting: str, expected: object
) -> None:
    assert getattr(build_config(parse(uvicorn, value)), setting) == expected
    assert getattr(build_config(parse(ours, value)), setting) == expected


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (("--header", "no-colon"), "--header 'no-colon': expected NAME:VALUE"),
        (("--header", "bad name:x"), "headers: 'bad name' is not a lower-case header field name"),
        (("--forwarded-allow-ips", "10.0.0.0/33"), "forwarded_allow_ips: '10.0.0.0/33' is not"),
        (("--root-path", "api"), "root_path must start with '/'"),
    ],
)
def test_bad_proxy_and_header_values_are_refused(flags: tuple[str, ...], message: str) -> None:
    with pytest.raises(ValueError) as caught:
        build_config(parse(*flags))
    assert str(caught.value).startswith(message)


def run_subparser() -> argparse.ArgumentParser:
    parser = _parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            run: argparse.ArgumentParser = action.choices["run"]
            return run
    raise AssertionError("no run command")


def test_no_compression_turns_deflate_off() -> None:
    assert build_config(parse("--no-compression")).deflate is None
    assert build_config(parse("--compression")).deflate == DeflateSettings()


def test_ssl_flags_build_a_server_context(tmp_path: Path) -> None:
    files = make_certificate(tmp_path)
    config = build_config(parse("--ssl-certfile", str(files.cert), "--ssl-keyfile", str(files.key)))
    assert isinstance(config.ssl_context, ssl.SSLContext)
    # A server-side context: it does not ask clients for certificates.
    assert config.ssl_context.verify_mode == ssl.CERT_NONE
    assert build_config(parse()).ssl_context is None


async def test_run_over_tls(tmp_path: Path) -> None:
    files = make_certificate(tmp_path)
    client_context = ssl.create_default_context(cafile=str(files.ca))
    async with (
        running(
            "examples.echo:EchoView",
            "--ssl-certfile",
            str(files.cert),
            "--ssl-keyfile",
            str(files.key),
        ) as server,
        connect(f"wss://localhost:{server.port}/", ssl=client_context) as client,
    ):
        await client.send("secret")
        assert await asyncio.wait_for(client.recv(), TIMEOUT) == "secret"
    assert server.returncode == 0


def test_invalid_values_raise_value_error() -> None:
    with pytest.raises(ValueError, match="max_queue"):
        build_config(parse("--ws-max-queue", "0"))


@pytest.mark.parametrize(
    ("flag", "value", "expected"),
    [
        ("--ws-max-size", "0", "max_message_size must be at least 1"),
        ("--deflate-level", "42", "compression_level must be between -1 and 9, not 42"),
    ],
)
def test_invalid_protocol_values_are_one_line_errors(flag: str, value: str, expected: str) -> None:
    # The protocol core raises LocalProtocolError, not ValueError.
    message = assert_one_error_line(run_cli("run", "examples.echo:EchoView", flag, value))
    assert message == expected


@pytest.mark.parametrize(
    ("flag", "value", "expected"),
    [
        ("--handshake-rate-per-client", "0", "must be a positive number, or 'none'"),
        ("--handshake-rate-per-client", "nan", "must be a positive number, or 'none'"),
        ("--handshake-rate-per-client", "fast", "must be a positive number, or 'none'"),
        ("--max-connections-per-client", "0", "must be a whole number >= 1, or 'none'"),
        ("--max-connections-per-client", "lots", "must be a whole number >= 1, or 'none'"),
    ],
)
def test_rates_and_counts_are_checked_by_the_parser(
    flag: str, value: str, expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        parse(flag, value)
    assert exit_.value.code == 2
    assert f"argument {flag}: {expected}" in capsys.readouterr().err


def test_the_per_client_limits_turn_off_with_none() -> None:
    config = build_config(
        parse("--max-connections-per-client", "off", "--handshake-rate-per-client", "none")
    )
    assert config.client_limiter() is None


def test_access_log_is_on_unless_turned_off() -> None:
    assert build_config(parse()).access_log is True
    assert build_config(parse("--no-access-log")).access_log is False
    assert build_config(parse("--no-access-log", "--access-log")).access_log is True


# ---------------------------------------------------------------------------
# options from the settings' field metadata
# ---------------------------------------------------------------------------


def settings_fields(cls: type) -> list[tuple[type, str, dict[str, object]]]:
    """``(class, field name, cli metadata)`` of every field of ``cls`` that has an option."""
    found = []
    for f in fields(cls):
        if CLI_OPTION in f.metadata:
            found.append((cls, f.name, f.metadata[CLI_OPTION]))
    return found


@pytest.mark.parametrize(
    ("cls", "name", "option"),
    [
        entry
        for cls in (ServerConfig, ProtocolSettings, DeflateSettings)
        for entry in settings_fields(cls)
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_every_declared_option_is_an_option_of_run(
    cls: type, name: str, option: dict[str, object]
) -> None:
    # Declared once, next to the setting: the flag, its help and its default.
    actions = run_subparser()._option_string_actions
    flags = option["flags"]
    assert isinstance(flags, tuple)
    for flag in flags:
        assert flag in actions, flag
        assert actions[flag].help == option.get("help")
    (f,) = [f for f in fields(cls) if f.name == name]
    default = f.default_factory() if callable(f.default_factory) else f.default
    action = actions[flags[0]]
    if option.get("repeat"):
        # Not given: the setting keeps its own default (see _from_arguments).
        assert action.default is None
    elif cls is ServerConfig and name == "deflate":
        assert action.default is (default is not None)
    else:
        assert action.default == default


def test_protocol_core_declares_its_options_as_plain_data() -> None:
    # The core may not import the server's cli_option(): only strings,
    # tuples and booleans.
    for cls in (ProtocolSettings, DeflateSettings):
        for _, _, option in settings_fields(cls):
            for value in option.values():
                items = value if isinstance(value, tuple) else (value,)
                assert all(isinstance(item, str | bool) for item in items), option


@dataclass(frozen=True, kw_only=True)
class Section:
    level: int = field(default=3, metadata=cli_option("--demo-level", kind="int"))


@dataclass(frozen=True, kw_only=True)
class DemoConfig:
    """Settings as later issues will add them: one declaration per option."""

    backlog: int = field(default=1024, metadata=cli_option("--backlog", kind="int"))
    root_path: str = field(default="", metadata=cli_option("--root-path", "--prefix"))
    limit: int | None = field(default=None, metadata=cli_option("--limit-concurrency", kind="int"))
    keep_alive: float = field(default=5.0, metadata=cli_option("--keep-alive", kind="seconds"))
    lifespan: str = field(
        default="auto", metadata=cli_option("--lifespan", choices=("auto", "on", "off"))
    )
    proxy_headers: bool = field(default=True, metadata=cli_option("--proxy-headers", kind="switch"))
    tags: tuple[str, ...] = field(
        default=("a",), metadata=cli_option("--tag", repeat=True, convert=tuple)
    )
    upper: str | None = field(default=None, metadata=cli_option("--upper", convert=str.upper))
    section: Section | None = field(
        default=None, metadata=cli_option("--demo", kind="switch", help="the demo section")
    )
    hidden: int = 7  # no metadata: no option


def demo_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="demo", exit_on_error=False)
    _add_options(parser, DemoConfig)
    return parser


def demo(*flags: str) -> DemoConfig:
    return _from_arguments(DemoConfig, demo_parser().parse_args(flags))


def test_options_default_to_the_settings_defaults() -> None:
    # convert is not applied to a missing value (None stays None).
    assert demo() == DemoConfig()


def test_one_declaration_makes_a_working_option() -> None:
    config = demo(
        "--backlog", "5", "--root-path", "/api", "--limit-concurrency", "9",
        "--keep-alive", "2.5", "--lifespan", "off", "--no-proxy-headers",
        "--tag", "x", "--tag", "y", "--upper", "loud", "--demo", "--demo-level", "8",
    )  # fmt: skip
    assert config == DemoConfig(
        backlog=5,
        root_path="/api",
        limit=9,
        keep_alive=2.5,
        lifespan="off",
        proxy_headers=False,
        tags=("x", "y"),
        upper="LOUD",
        section=Section(level=8),
        hidden=7,
    )


def test_aliases_set_the_same_setting() -> None:
    assert demo("--prefix", "/p").root_path == "/p"
    assert demo("--root-path", "/a", "--prefix", "/b").root_path == "/b"


def test_a_setting_without_metadata_has_no_option() -> None:
    assert "--hidden" not in demo_parser()._option_string_actions
    with pytest.raises(SystemExit):
        demo_parser().parse_args(["--hidden", "1"])


def test_an_optional_section_is_off_unless_switched_on() -> None:
    assert demo("--demo-level", "8").section is None
    assert demo("--demo").section == Section()


def test_option_values_are_checked_by_kind() -> None:
    with pytest.raises(argparse.ArgumentError, match="invalid int value"):
        demo_parser().parse_args(["--backlog", "many"])
    with pytest.raises(argparse.ArgumentError, match="must be a positive number of seconds"):
        demo_parser().parse_args(["--keep-alive", "0"])
    with pytest.raises(argparse.ArgumentError, match="invalid choice"):
        demo_parser().parse_args(["--lifespan", "maybe"])


@pytest.mark.parametrize(
    ("metadata", "default", "message"),
    [
        ({CLI_OPTION: {"flags": ("--x",), "type": "int"}}, 0, "unknown 'cli' metadata"),
        ({CLI_OPTION: {"flags": ("--x",), "kind": "float"}}, 0, "unknown kind 'float'"),
        ({CLI_OPTION: {"flags": (), "kind": "int"}}, 0, "'flags' must be a tuple"),
        ({CLI_OPTION: {"flags": "--x", "kind": "int"}}, 0, "'flags' must be a tuple"),
        ({CLI_OPTION: "--x"}, 0, "must be a mapping"),
        (cli_option("--x", kind="flag"), True, "a 'flag' option is for a setting off by default"),
    ],
)
def test_a_bad_declaration_names_the_setting(
    metadata: dict[str, object], default: object, message: str
) -> None:
    @dataclass
    class Bad:
        x: object = field(default=default, metadata=metadata)

    with pytest.raises(TypeError, match=message) as caught:
        _add_options(argparse.ArgumentParser(), Bad)
    assert str(caught.value).startswith("Bad.x: ")


def test_a_section_takes_only_a_switch() -> None:
    @dataclass
    class Bad:
        section: Section = field(default_factory=Section, metadata=cli_option("--s", kind="int"))

    with pytest.raises(TypeError, match=r"Bad\.section: a section of settings takes only a"):
        _add_options(argparse.ArgumentParser(), Bad)


def test_an_option_needs_a_default() -> None:
    @dataclass
    class Bad:
        x: int = field(metadata=cli_option("--x", kind="int"))

    with pytest.raises(TypeError, match=r"Bad\.x: a setting with an option needs a default"):
        _add_options(argparse.ArgumentParser(), Bad)


# ---------------------------------------------------------------------------
# --workers and --channels-backend: checked before anything starts
# (the supervisor itself: tests/test_supervisor.py)
# ---------------------------------------------------------------------------


def test_channels_backend_must_be_a_known_url() -> None:
    message = assert_one_error_line(
        run_cli("run", "examples.echo:EchoView", "--channels-backend", "kafka://x")
    )
    assert message.startswith("--channels-backend: unknown channels backend 'kafka://x'")


def test_workers_need_tcp() -> None:
    message = assert_one_error_line(
        run_cli("run", "examples.echo:EchoView", "--workers", "2", "--uds", "/tmp/x.sock")
    )
    assert message == "--workers needs TCP: it cannot share --uds"


@pytest.mark.parametrize("value", ["0", "-2", "two"])
def test_workers_must_be_a_positive_count(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        _parser().parse_args(["run", "m:a", "--workers", value])
    assert caught.value.code == 2
    assert "argument --workers: must be a whole number >= 1" in capsys.readouterr().err


def test_worker_command_runs_this_command_as_one_worker_on_the_port() -> None:
    command = _worker_command(["run", "app:App", "--workers", "4", "--port", "0"], 8123)
    assert command[:3] == [sys.executable, "-m", "wsserver"]
    # argparse keeps the last value: the worker serves on the reserved port, alone.
    args = _parser().parse_args(command[3:])
    assert (args.target, args.workers, args.port, args.reuse_port) == ("app:App", 1, 8123, True)


def test_the_readme_synopsis_lists_exactly_the_run_flags() -> None:
    help_text = run_cli("run", "--help").stdout
    usage = help_text.split("positional arguments:")[0]
    offered = set(re.findall(r"--[a-z][a-z0-9-]*", usage)) - {"--help"}
    readme = (ROOT / "README.md").read_text()
    synopsis = readme.split("```\nwsserver run module:attr", 1)[1].split("```", 1)[0]
    documented = set(re.findall(r"--[a-z][a-z0-9-]*", synopsis)) - {"--version"}
    # The usage line shows an option's first name; uvicorn's names are
    # aliases listed in the options below it.
    aliases = set(re.findall(r"--[a-z][a-z0-9-]*", help_text)) - offered - {"--help"}
    assert offered <= documented <= offered | aliases, (
        f"missing from README.md: {sorted(offered - documented)}; "
        f"not in `wsserver run --help`: {sorted(documented - offered - aliases)}"
    )


# ---------------------------------------------------------------------------
# Plugin options (wsserver.server.plugin_options): the CLI knows no plugin
# ---------------------------------------------------------------------------


def test_the_cli_imports_no_plugin() -> None:
    import ast

    tree = ast.parse((ROOT / "wsserver" / "cli.py").read_text())
    imported = [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported += [alias.name for alias in node.names]
    assert imported
    assert [name for name in imported if "plugins" in name] == []


def test_a_plugin_option_is_checked_and_set_before_the_import(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from wsserver.server.plugin_options import plugin_options

    from .server.test_plugin_options import GOOD, GROUP, install_distribution

    install_distribution(tmp_path, "demo", {"colour": "tests.server.test_plugin_options:GOOD"})
    (tmp_path / "colour_app.py").write_text(
        "import os\n"
        "COLOUR = os.environ.get('WSSERVER_TEST_DEMO_COLOUR')\n"
        "async def app(websocket):\n"
        "    await websocket.close()\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr("wsserver.cli.plugin_options", partial(plugin_options, GROUP))
    served: list[object] = []

    def run(coroutine: Coroutine[Any, Any, None]) -> None:
        served.append(coroutine)
        coroutine.close()

    monkeypatch.setattr("wsserver.cli.asyncio.run", run)
    assert GOOD.env_var not in os.environ
    try:
        assert main(["run", "colour_app:app", "--demo-colour", "red"]) == 2  # odd length
        assert GOOD.env_var not in os.environ
        assert "colour_app" not in sys.modules
        assert main(["run", "colour_app:app", "--demo-colour", "teal"]) == 0
        assert sys.modules["colour_app"].COLOUR == "teal"
        assert len(served) == 1
    finally:
        os.environ.pop(GOOD.env_var, None)
        sys.modules.pop("colour_app", None)


# ---------------------------------------------------------------------------
# uvicorn's process options: --log-config, --env-file, --app-dir, TLS client
# certificates and an encrypted key
# ---------------------------------------------------------------------------

LOG_CONFIGS = {
    "json": json.dumps(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "formatters": {"plain": {"format": "CUSTOM %(levelname)s %(name)s: %(message)s"}},
            "handlers": {
                "err": {
                    "class": "logging.StreamHandler",
                    "formatter": "plain",
                    "stream": "ext://sys.stderr",
                }
            },
            "root": {"level": "INFO", "handlers": ["err"]},
        }
    ),
    "yaml": """
version: 1
disable_existing_loggers: false
formatters:
  plain: {format: "CUSTOM %(levelname)s %(name)s: %(message)s"}
handlers:
  err: {class: logging.StreamHandler, formatter: plain, stream: "ext://sys.stderr"}
root: {level: INFO, handlers: [err]}
""",
    "ini": """
[loggers]
keys=root
[handlers]
keys=err
[formatters]
keys=plain
[logger_root]
level=INFO
handlers=err
[handler_err]
class=StreamHandler
formatter=plain
args=(sys.stderr,)
[formatter_plain]
format=CUSTOM %(levelname)s %(name)s: %(message)s
""",
}


@pytest.mark.parametrize("kind", sorted(LOG_CONFIGS))
async def test_log_config_formats_the_servers_lines(tmp_path: Path, kind: str) -> None:
    path = tmp_path / f"logging.{kind}"
    path.write_text(LOG_CONFIGS[kind])
    async with (
        running("examples.echo:EchoView", "--log-config", str(path)) as server,
        connect(f"ws://127.0.0.1:{server.port}/") as client,
    ):
        await client.send("x")
        assert await asyncio.wait_for(client.recv(), TIMEOUT) == "x"
    listening = [line for line in server.log if "listening on" in line]
    assert listening and listening[0].startswith("CUSTOM INFO wsserver: wsserver listening on")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "JSONDecodeError"),
        ('{"version": 99}', "ValueError"),
    ],
)
def test_a_bad_log_config_is_one_line(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "logging.json"
    path.write_text(content)
    error = assert_one_error_line(
        run_cli("run", "examples.echo:EchoView", "--log-config", str(path))
    )
    assert error.startswith(f"{path}: ") and message in error


def test_a_missing_log_config_is_one_line(tmp_path: Path) -> None:
    error = assert_one_error_line(
        run_cli("run", "examples.echo:EchoView", "--log-config", str(tmp_path / "none.ini"))
    )
    assert error.startswith(str(tmp_path / "none.ini"))


def test_log_level_names_as_uvicorn(capsys: pytest.CaptureFixture[str]) -> None:
    for level in ("critical", "error", "warning", "info", "debug", "trace"):
        assert _parser().parse_args(["run", "m:a", "--log-level", level]).log_level == level
    with pytest.raises(SystemExit):
        _parser().parse_args(["run", "m:a", "--log-level", "loud"])
    assert "invalid choice: 'loud'" in capsys.readouterr().err


APP_READING_ENV = """
import os
from wsserver.server import App, PlainTextResponse

app = App()

@app.route("/")
async def home(request):
    return PlainTextResponse(os.environ.get("GREETING", "unset") + "|" + os.environ.get("KEPT", ""))
"""


async def test_env_file_is_read_before_the_app_from_app_dir(tmp_path: Path) -> None:
    (tmp_path / "apps").mkdir()
    (tmp_path / "apps" / "greeter.py").write_text(APP_READING_ENV)
    (tmp_path / ".env").write_text("GREETING=hello from .env\nKEPT=overridden\n")
    os.environ["KEPT"] = "from the environment"
    try:
        async with running(
            "greeter:app",
            "--app-dir",
            str(tmp_path / "apps"),
            "--env-file",
            str(tmp_path / ".env"),
            cwd=tmp_path,
        ) as server:
            result = await http_get(server.port, "/")
    finally:
        del os.environ["KEPT"]
    # Variables already set win, as python-dotenv and uvicorn do.
    assert result.body == b"hello from .env|from the environment"


def test_a_missing_env_file_is_one_line(tmp_path: Path) -> None:
    error = assert_one_error_line(
        run_cli("run", "examples.echo:EchoView", "--env-file", str(tmp_path / "none.env"))
    )
    assert error == f"{tmp_path / 'none.env'}: no such file"


def test_without_app_dir_the_module_is_not_found_elsewhere(tmp_path: Path) -> None:
    (tmp_path / "apps").mkdir()
    (tmp_path / "apps" / "greeter.py").write_text(APP_READING_ENV)
    error = assert_one_error_line(run_cli("run", "greeter:app", cwd=tmp_path))
    assert "greeter" in error


def test_tls_options_need_a_certificate(tmp_path: Path) -> None:
    files = make_certificate(tmp_path)
    for flags in (("--ssl-keyfile", str(files.key)), ("--ssl-ca-certs", str(files.ca))):
        with pytest.raises(ValueError, match="need --ssl-certfile"):
            build_config(parse(*flags))


def test_an_encrypted_key_needs_its_password(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization

    files = make_certificate(tmp_path)
    key = serialization.load_pem_private_key(files.key.read_bytes(), password=None)
    encrypted = tmp_path / "encrypted.pem"
    encrypted.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"sesame"),
        )
    )
    flags = ("--ssl-certfile", str(files.cert), "--ssl-keyfile", str(encrypted))
    config = build_config(parse(*flags, "--ssl-keyfile-password", "sesame"))
    assert isinstance(config.ssl_context, ssl.SSLContext)
    with pytest.raises(ssl.SSLError):
        build_config(parse(*flags, "--ssl-keyfile-password", "wrong"))


async def test_client_certificates_are_required_when_asked(tmp_path: Path) -> None:
    import trustme

    authority = trustme.CA()
    leaf = authority.issue_cert("localhost", "127.0.0.1")
    leaf.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "server.pem"))
    authority.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    member = authority.issue_cert("client@example.com")
    anonymous = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
    with_certificate = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
    member.configure_cert(with_certificate)
    async with running(
        "examples.echo:EchoView",
        "--ssl-certfile",
        str(tmp_path / "server.pem"),
        "--ssl-ca-certs",
        str(tmp_path / "ca.pem"),
        "--ssl-cert-reqs",
        "2",
    ) as server:
        url = f"wss://localhost:{server.port}/"
        async with connect(url, ssl=with_certificate) as client:
            await client.send("member")
            assert await asyncio.wait_for(client.recv(), TIMEOUT) == "member"
        with pytest.raises((ssl.SSLError, ConnectionError, EOFError, InvalidMessage)):
            async with connect(url, ssl=anonymous) as client:
                await client.send("anonymous")
                await asyncio.wait_for(client.recv(), TIMEOUT)


def test_the_optional_libraries_are_named_when_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from wsserver.cli import load_env_file, load_log_config

    monkeypatch.setitem(sys.modules, "dotenv", None)
    monkeypatch.setitem(sys.modules, "yaml", None)
    with pytest.raises(ValueError) as caught:
        load_env_file(str(tmp_path / ".env"))
    assert str(caught.value) == "--env-file needs python-dotenv: pip install 'wsserver[standard]'"
    with pytest.raises(ValueError) as caught:
        load_log_config(str(tmp_path / "logging.yaml"))
    assert str(caught.value) == (
        "a YAML logging configuration needs PyYAML: pip install 'wsserver[standard]'"
    )


# ---------------------------------------------------------------------------
# ASGI applications (--interface)
# ---------------------------------------------------------------------------


async def test_run_serves_a_starlette_application_detected_as_asgi() -> None:
    async with running("examples.starlette_app:app") as server:
        async with httpx.AsyncClient(trust_env=False, timeout=TIMEOUT) as client:
            response = await client.get(f"http://127.0.0.1:{server.port}/")
        assert response.text == "hello (started=True)\n"
        async with connect(f"ws://127.0.0.1:{server.port}/rooms/blue") as websocket:
            await websocket.send('{"n": 1}')
            reply = await asyncio.wait_for(websocket.recv(), TIMEOUT)
        assert json.loads(reply) == {"room": "blue", "echo": {"n": 1}}
    assert server.returncode == 0
    assert "Traceback" not in server.stderr


async def test_the_asgi_echo_example_echoes_text_and_bytes() -> None:
    async with (
        running("examples.asgi_echo:app", "--interface", "asgi") as server,
        connect(f"ws://127.0.0.1:{server.port}/") as client,
    ):
        await client.send("text")
        assert await asyncio.wait_for(client.recv(), TIMEOUT) == "text"
        await client.send(b"\x00\xff")
        assert await asyncio.wait_for(client.recv(), TIMEOUT) == b"\x00\xff"


def test_a_failing_lifespan_startup_is_one_line_and_exit_3(tmp_path: Path) -> None:
    (tmp_path / "apps.py").write_text(
        "import contextlib\n"
        "from starlette.applications import Starlette\n"
        "@contextlib.asynccontextmanager\n"
        "async def lifespan(app):\n"
        "    raise ConnectionRefusedError('database at db:5432 refused')\n"
        "    yield\n"
        "app = Starlette(lifespan=lifespan)\n"
    )
    result = run_cli("run", "apps:app", "--port", "0", cwd=tmp_path)
    assert result.returncode == 3, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last == (
        "wsserver: error: the application's lifespan startup failed: "
        "ConnectionRefusedError: database at db:5432 refused"
    )
    assert "listening" not in result.stderr


def test_interface_native_refuses_an_asgi_application() -> None:
    message = assert_one_error_line(
        run_cli("run", "examples.asgi_echo:app", "--interface", "native")
    )
    assert "is not a WebSocketView subclass, an App, or an async WebSocket endpoint" in message
    assert "ASGI" not in message


def test_interface_asgi_needs_a_callable() -> None:
    message = assert_one_error_line(
        run_cli("run", "examples.echo:annotations", "--interface", "asgi")
    )
    assert message.endswith("is not an ASGI application: it is not callable")


def test_load_app_by_interface() -> None:
    from examples.asgi_echo import app as starlette_app
    from examples.echo import EchoView
    from wsserver.server.asgi import ASGIApp

    assert isinstance(load_app(starlette_app), ASGIApp)
    assert isinstance(load_app(starlette_app, "asgi"), ASGIApp)
    assert isinstance(load_app(EchoView), App)
    assert isinstance(load_app(EchoView, "native"), App)
    with pytest.raises(TypeError, match="nor an ASGI 3 application"):
        load_app(42)
    off = load_app(starlette_app, lifespan="off")
    assert isinstance(off, ASGIApp)
    assert off.lifespan is None


def test_lifespan_on_refuses_an_application_without_it(tmp_path: Path) -> None:
    (tmp_path / "apps.py").write_text(
        "async def app(scope, receive, send):\n    assert scope['type'] == 'http', 'http only'\n"
    )
    # (--lifespan auto serves it: see tests/server/asgi/test_lifespan.py.)
    result = run_cli("run", "apps:app", "--lifespan", "on", "--port", "0", cwd=tmp_path)
    assert result.returncode == 3, result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "wsserver: error: the application's lifespan startup failed: AssertionError: http only"
    )


# ---------------------------------------------------------------------------
# --pid-file and `wsserver restart` (SIGHUP)
# ---------------------------------------------------------------------------


async def test_sighup_to_one_process_closes_websockets_with_1012_and_exits(tmp_path: Path) -> None:
    """Without --workers, `wsserver restart` is a graceful exit with 1012.

    Its process manager starts it again; meanwhile the clients, told 1012,
    reconnect at once and retry.
    """
    pid_file = tmp_path / "server.pid"
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "wsserver", "run", "examples.echo:EchoView", "--port", "0",
        "--pid-file", str(pid_file), "--ws-ping-interval", "none",
        cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert process.stderr is not None
    try:
        while True:
            line = (await asyncio.wait_for(process.stderr.readline(), START_TIMEOUT)).decode()
            assert line, "the server exited before listening"
            if found := re.search(r"listening on 127\.0\.0\.1:(\d+)", line):
                break
        assert int(pid_file.read_text()) == process.pid
        client = await connect(f"ws://127.0.0.1:{found.group(1)}/")
        result = await asyncio.to_thread(run_cli, "restart", str(process.pid))
        assert result.returncode == 0, result.stderr
        assert result.stderr == f"wsserver: sent SIGHUP to {process.pid}\n"
        await asyncio.wait_for(client.wait_closed(), TIMEOUT)
        assert client.close_code == 1012
        assert client.close_reason == "server restarting"
        _, err = await asyncio.wait_for(process.communicate(), START_TIMEOUT)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    log = err.decode()
    assert process.returncode == 0, log
    assert "SIGHUP: shutting down for a restart (1012)" in log
    assert "Traceback" not in log
    assert not pid_file.exists()


def test_restart_of_a_stale_pid_file_is_one_line_and_exit_1(tmp_path: Path) -> None:
    # A process that has exited and been reaped: its pid names nobody.
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    pid_file = tmp_path / "stale.pid"
    pid_file.write_text(gone.stdout)
    result = run_cli("restart", "--pid-file", str(pid_file))
    message = assert_one_error_line(result, status=1)
    assert message == f"no process {gone.stdout.strip()} (a stale pid file?)"
    missing = run_cli("restart", "--pid-file", str(tmp_path / "missing.pid"))
    assert assert_one_error_line(missing, status=1).startswith("[Errno 2] No such file")
    pid_file.write_text("not a pid\n")
    garbage = assert_one_error_line(run_cli("restart", "--pid-file", str(pid_file)), status=1)
    assert garbage == f"{pid_file} does not hold a process id: 'not a pid'"


def test_restart_needs_a_pid_or_a_pid_file(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["restart"])
    assert caught.value.code == 2
    assert "one of the arguments --pid-file pid is required" in capsys.readouterr().err
    with pytest.raises(SystemExit) as caught:
        main(["restart", "12", "--pid-file", "x"])
    assert caught.value.code == 2


def test_an_unwritable_pid_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    where = tmp_path / "no-such-dir" / "server.pid"
    result = run_cli("run", "examples.echo:EchoView", "--pid-file", str(where), "--port", "0")
    assert assert_one_error_line(result).startswith("cannot write --pid-file: [Errno 2]")
