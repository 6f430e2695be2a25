"""Tests for wsserver.server.logformat: ``--log-format json``, end to end as a
user runs it, and the formatter alone."""

from __future__ import annotations

import json
import logging
import sys

from websockets.asyncio.client import connect

from wsserver.server.logformat import JsonFormatter

from ..test_cli import running
from .test_metrics import http_get


def record(message: str, *args: object, **extra: object) -> logging.LogRecord:
    made = logging.LogRecord("wsserver", logging.INFO, __file__, 1, message, args, None)
    for name, value in extra.items():
        setattr(made, name, value)
    return made


def test_one_line_of_json_with_the_extra_fields() -> None:
    line = JsonFormatter(worker="2").format(
        record("conn %d\nclosed", 7, connection_id=7, client=None, odd=object())
    )
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["message"] == "conn 7\nclosed"
    assert (entry["level"], entry["logger"], entry["worker"]) == ("INFO", "wsserver", "2")
    assert entry["connection_id"] == 7 and entry["client"] is None
    assert entry["odd"].startswith("<object object")  # repr of what JSON cannot hold
    assert entry["time"].endswith("+00:00")
    assert "args" not in entry and "msg" not in entry


def test_a_traceback_stays_on_the_line() -> None:
    try:
        raise ValueError("bad")
    except ValueError:
        failed = record("failed")
        failed.exc_info = sys.exc_info()
    entry = json.loads(JsonFormatter().format(failed))
    assert "ValueError: bad" in entry["exception"]
    assert "worker" not in entry


async def test_every_line_of_the_server_is_json_with_the_access_and_end_fields() -> None:
    async with running("examples.echo:EchoView", "--log-format", "json") as server:
        async with connect(f"ws://127.0.0.1:{server.port}/", compression=None) as client:
            await client.send("hello")
            assert await client.recv() == "hello"
        assert (await http_get(server.port, "/healthz"))[0] == 200
        client_address = f"127.0.0.1:{client.local_address[1]}"
    # The server closed the TCP connection first, so its end line was due
    # before the SIGTERM that stopped it.
    entries = [json.loads(line) for line in server.stderr.splitlines() if line.strip()]
    assert all({"time", "level", "logger", "message"} <= entry.keys() for entry in entries)
    accesses = [e for e in entries if e["logger"] == "wsserver.access"]
    handshake = next(e for e in accesses if e["status_code"] == 101)
    assert handshake["client"] == client_address
    assert (handshake["method"], handshake["path"]) == ("GET", "/")
    assert isinstance(handshake["duration_ms"], float)
    assert isinstance(handshake["connection_id"], int)
    assert any(e["path"] == "/healthz" and e["status_code"] == 200 for e in accesses)
    (end,) = [e for e in entries if "closed_by" in e]
    assert end["connection_id"] == handshake["connection_id"]
    assert (end["client"], end["path"], end["close_code"]) == (client_address, "/", 1000)
    assert (end["closed_by"], end["close_reason"]) == ("client", "")
    assert end["bytes_in"] > len("hello") and end["bytes_out"] > len("hello")
    assert end["duration_ms"] >= 0


def test_a_cached_traceback_and_a_stack_stay_on_the_line() -> None:
    cached = record("failed")
    cached.exc_text = "Traceback (most recent call last):\n  ...\nValueError: cached"
    cached.stack_info = "Stack (most recent call last):\n  here"
    entry = json.loads(JsonFormatter().format(cached))
    assert entry["exception"].endswith("ValueError: cached")
    assert entry["stack"].endswith("here")
