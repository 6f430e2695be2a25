"""Tests for wsserver.server.readiness: /readyz while starting, serving and
draining (in process and as a real process sent SIGTERM), the application's
checks."""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator

import pytest

from wsserver.server import App, Server, ServerConfig
from wsserver.server.readiness import Readiness, ServerPhase

from ..test_cli import ROOT, START_TIMEOUT
from .helpers import TIMEOUT, FunctionApp, Harness, harness
from .test_metrics import http_get


@pytest.fixture
async def h() -> AsyncIterator[Harness]:
    async with harness() as h:
        yield h


def test_not_ready_while_starting_or_draining() -> None:
    readiness = Readiness()
    assert readiness.not_ready_because() == "starting"
    readiness.phase = ServerPhase.SERVING
    assert readiness.ready
    readiness.phase = ServerPhase.DRAINING
    assert readiness.not_ready_because() == "draining"
    assert readiness.response().status_code == 503


def test_a_failing_check_says_why_and_a_raising_one_is_not_ready(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app_checks: list[object] = []
    readiness = Readiness(app_checks)  # type: ignore[arg-type]
    readiness.phase = ServerPhase.SERVING
    readiness.add_check(lambda: True)
    assert readiness.response().status_code == 200
    # A check the application adds later counts too.
    app_checks.append(lambda: "redis away")
    response = readiness.response()
    assert (response.status_code, response.body) == (503, b"not ready: redis away\n")
    app_checks[:] = [lambda: False]
    assert readiness.not_ready_because() == "not ready"

    def broken() -> bool:
        raise ConnectionError("boom")

    app_checks[:] = [broken]
    assert readiness.not_ready_because() == "check failed: ConnectionError"
    assert "readiness check" in caplog.text
    with pytest.raises(TypeError):
        readiness.add_check("not callable")  # type: ignore[arg-type]
    app_checks.clear()

    def never() -> bool:
        return False

    readiness.add_check(never)
    assert not readiness.ready
    readiness.remove_check(never)
    assert readiness.ready


async def test_readyz_follows_the_servers_life_and_the_apps_checks(h: Harness) -> None:
    app = App()
    redis_up = False
    app.add_readiness_check(lambda: redis_up or "redis away")
    server = Server(app, ServerConfig(port=0))
    assert server.readiness.not_ready_because() == "starting"
    await server.start()
    try:
        status, _, body = await http_get(server.port, "/readyz")
        assert (status, body) == (503, b"not ready: redis away\n")
        redis_up = True
        assert (await http_get(server.port, "/readyz"))[:3:2] == (200, b"ready\n")
        # Liveness is the application's /healthz, unaffected.
        assert (await http_get(server.port, "/healthz"))[0] == 200
    finally:
        await server.shutdown()
    assert server.readiness.not_ready_because() == "draining"


async def test_readyz_is_503_while_draining_before_the_listener_closes(h: Harness) -> None:
    # The drain delay is far longer than the polls need, so that a busy
    # machine cannot make the listener close first.
    server = await h.serve(FunctionApp(), drain_delay=30.0)
    assert (await http_get(server.port, "/readyz"))[0] == 200
    shutdown = asyncio.create_task(server.shutdown())
    await asyncio.sleep(0)
    # Each poll is a new connection: the listener is still open.
    status, headers, _ = await http_get(server.port, "/readyz")
    assert status == 503
    assert headers["cache-control"] == "no-store"
    # Everything else is still served meanwhile.
    assert (await http_get(server.port, "/healthz"))[0] == 200
    # A second shutdown() (a second signal) ends the drain delay at once.
    await asyncio.wait_for(server.shutdown(), TIMEOUT)
    await asyncio.wait_for(shutdown, TIMEOUT)


async def test_the_probe_can_be_moved_or_turned_off(h: Harness) -> None:
    moved = await h.serve(FunctionApp(), readiness_path="/ready")
    assert (await http_get(moved.port, "/ready"))[0] == 200
    assert (await http_get(moved.port, "/readyz"))[0] == 404  # the application's
    off = await h.serve(FunctionApp(), readiness_path="")
    assert (await http_get(off.port, "/readyz"))[0] == 404


async def test_sigterm_turns_readyz_to_503_within_one_poll_before_the_port_closes() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "wsserver",
        "run",
        "examples.echo:EchoView",
        "--port",
        "0",
        "--drain-delay",
        "30",
        "--shutdown-timeout",
        "1",
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert process.stderr is not None
    try:
        while True:
            line = (await asyncio.wait_for(process.stderr.readline(), START_TIMEOUT)).decode()
            assert line, "the server exited before listening"
            found = re.search(r"wsserver listening on 127\.0\.0\.1:(\d+)", line)
            if found:
                port = int(found.group(1))
                break
        assert (await http_get(port, "/readyz"))[0] == 200
        process.send_signal(signal.SIGTERM)
        # The signal is handled at the server's next loop iteration; poll
        # until it was (bounded), each poll a new connection that the
        # listener, still open, accepts.
        deadline = asyncio.get_running_loop().time() + TIMEOUT
        while (status := (await http_get(port, "/readyz"))[0]) == 200:
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.01)
        assert status == 503
        line = (await asyncio.wait_for(process.stderr.readline(), START_TIMEOUT)).decode()
        while "draining" not in line:
            line = (await asyncio.wait_for(process.stderr.readline(), START_TIMEOUT)).decode()
            assert line
    finally:
        process.kill()
        await process.wait()
