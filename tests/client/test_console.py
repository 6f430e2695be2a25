"""Tests for ``wsserver connect URI``: the console loop in-process, and the
command itself with its stdin piped, against our echo server."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

from tests.client._servers import TIMEOUT
from tests.server.helpers import harness
from wsserver.client import connect
from wsserver.client.console import console, format_message

ROOT = Path(__file__).resolve().parent.parent.parent


def test_format_message() -> None:
    assert format_message("hello") == "< hello"
    assert format_message(b"\x00\xff") == "< (binary) 00ff"
    assert format_message(bytes(100)) == "< (binary) " + "00" * 64 + " ... (100 bytes)"


async def test_console_sends_each_line_and_prints_each_message() -> None:
    printed: list[str] = []
    echoed = asyncio.Event()

    def write(text: str) -> None:
        printed.append(text)
        if text == "< second":
            echoed.set()

    async def lines() -> AsyncIterator[str]:
        yield "first"
        yield "second"
        # The next line comes once both echoes are printed: end of input.
        await asyncio.wait_for(echoed.wait(), TIMEOUT)

    async with harness() as h:
        server = await h.serve()
        ws = await connect(f"ws://127.0.0.1:{server.port}/", ping_interval=None)
        await asyncio.wait_for(console(ws, lines(), write), TIMEOUT)
    assert printed == ["< first", "< second", "Connection closed: 1000."]


async def test_the_wsserver_connect_command() -> None:
    async with harness() as h:
        server = await h.serve()
        uri = f"ws://127.0.0.1:{server.port}/"
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "wsserver",
            "connect",
            uri,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=ROOT,
        )
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write(b"hello\n")
        await process.stdin.drain()
        lines = []
        while (line := await asyncio.wait_for(process.stdout.readline(), 4 * TIMEOUT)) != (
            b"< hello\n"
        ):
            assert line, "the command ended before the echo"
            lines.append(line)
        process.stdin.close()
        out, err = await asyncio.wait_for(process.communicate(), 4 * TIMEOUT)
    assert lines == [f"Connected to {uri}.\n".encode()]
    assert out == b"Connection closed: 1000.\n"
    assert process.returncode == 0, err


async def test_the_command_reports_a_failed_connection() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "wsserver",
        "connect",
        "http://example.com/",
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )
    _, err = await asyncio.wait_for(process.communicate(), 4 * TIMEOUT)
    assert process.returncode == 1
    assert b"Failed to connect to http://example.com/" in err
