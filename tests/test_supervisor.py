"""Tests for wsserver.supervisor: ``wsserver run --workers N``.

End to end, as a user runs it: ``python -m wsserver run ... --workers 2``
starts a supervisor and workers sharing the port (SO_REUSEPORT); the tests
find the workers' pids in their log lines and check signals, crashes and
restarts.  The supervisor's own contract (start-up checks, the worker
command it is given, its errors) is tested by calling it directly.
"""

from __future__ import annotations

import asyncio
import re
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from websockets.asyncio.client import ClientConnection, connect

from wsserver.server import App, ServerConfig
from wsserver.server.startup import (
    StartupContext,
    add_startup_check,
    remove_startup_check,
    startup_warnings,
)
from wsserver.supervisor import WORKER_FD_ENV, run_supervisor, worker_link

from ._live import TIMEOUT
from .server.test_metrics import scrape, value
from .test_cli import ROOT, START_TIMEOUT, run_cli

# ---------------------------------------------------------------------------
# End to end: the command with --workers
# ---------------------------------------------------------------------------

PID_APP = """
import os
from wsserver import WebSocketView

class Pid(WebSocketView):
    async def on_connect(self, websocket):
        await websocket.accept()
        await websocket.send_text(str(os.getpid()))

    async def on_receive(self, websocket, data):
        if data == "die":
            os._exit(3)
"""


@dataclass
class Supervised:
    process: asyncio.subprocess.Process
    port: int
    workers: dict[int, int]  # index -> pid
    log: list[str]

    async def read_until(self, pattern: str) -> re.Match[str]:
        assert self.process.stderr is not None
        while True:
            line = await asyncio.wait_for(self.process.stderr.readline(), START_TIMEOUT)
            assert line, f"the supervisor exited: {''.join(self.log)}"
            self.log.append(line.decode())
            worker = re.search(r"\[worker (\d+) (\d+)\]", self.log[-1])
            if worker:
                self.workers[int(worker.group(1))] = int(worker.group(2))
            found = re.search(pattern, self.log[-1])
            if found:
                return found

    async def stop(self, sig: int = signal.SIGTERM) -> str:
        if self.process.returncode is None:
            self.process.send_signal(sig)
        _, err = await asyncio.wait_for(self.process.communicate(), 4 * START_TIMEOUT)
        return "".join(self.log) + err.decode()


@asynccontextmanager
async def supervised(*args: str, cwd: Path = ROOT) -> AsyncIterator[Supervised]:
    """``wsserver run *args --port 0`` with workers, up once they all listen."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "wsserver",
        "run",
        *args,
        "--port",
        "0",
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    state = Supervised(process, 0, {}, [])
    try:
        found = await state.read_until(r"supervisor: \d+ workers listening on 127\.0\.0\.1:(\d+)")
        state.port = int(found.group(1))
        yield state
    finally:
        await state.stop(signal.SIGKILL if process.returncode is None else signal.SIGTERM)


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not reaped, does not count)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status


async def pids_seen(port: int, wanted: int, attempts: int = 64) -> set[str]:
    seen: set[str] = set()
    for _ in range(attempts):
        async with connect(f"ws://127.0.0.1:{port}/") as client:
            seen.add(str(await asyncio.wait_for(client.recv(), TIMEOUT)))
        if len(seen) >= wanted:
            break
    return seen


async def test_two_workers_share_the_port_and_stop_gracefully_on_sigterm(tmp_path: Path) -> None:
    (tmp_path / "pidapp.py").write_text(PID_APP)
    async with supervised("pidapp:Pid", "--workers", "2", cwd=tmp_path) as server:
        assert len(server.workers) == 2 and server.process.pid not in server.workers.values()
        # SO_REUSEPORT spreads connections: both workers accept some.
        seen = await pids_seen(server.port, 2)
        assert seen == {str(pid) for pid in server.workers.values()}
        client = await connect(f"ws://127.0.0.1:{server.port}/")
        await asyncio.wait_for(client.recv(), TIMEOUT)
        log = await server.stop(signal.SIGTERM)
        assert server.process.returncode == 0, log
    # The supervisor forwarded SIGTERM: each worker shut down gracefully,
    # closing its connections with 1001.
    await asyncio.wait_for(client.wait_closed(), TIMEOUT)
    assert client.close_code == 1001
    assert log.count("wsserver: shutting down\n") == 2
    assert "Traceback" not in log
    assert not any(alive(pid) for pid in server.workers.values())


async def test_metrics_cover_every_worker(tmp_path: Path) -> None:
    """Whichever worker a scrape reaches, it counts the connections of both."""
    (tmp_path / "pidapp.py").write_text(PID_APP)
    args = ("pidapp:Pid", "--workers", "2", "--metrics-path", "/metrics")
    async with supervised(*args, cwd=tmp_path) as server:
        clients: list[ClientConnection] = []
        pids: set[str] = set()
        # SO_REUSEPORT spreads connections: open them until both workers
        # hold some (bounded), so that one worker alone cannot be right.
        while len(clients) < 8 or (len(pids) < 2 and len(clients) < 64):
            client = await connect(f"ws://127.0.0.1:{server.port}/")
            pids.add(str(await asyncio.wait_for(client.recv(), TIMEOUT)))
            clients.append(client)
        assert len(pids) == 2
        count = len(clients)
        deadline = asyncio.get_running_loop().time() + TIMEOUT
        # A worker's snapshot lags by up to a second: poll, bounded.
        while value(samples := await scrape(server.port), "wsserver_websockets_open") != count:
            assert asyncio.get_running_loop().time() < deadline, samples
            await asyncio.sleep(0.05)
        # Each of the next scrapes reaches either worker and sees them all.
        for _ in range(6):
            samples = await scrape(server.port)
            assert value(samples, "wsserver_websockets_open") == count
            assert value(samples, "wsserver_websocket_messages_sent_total", type="text") == count
            handshakes = value(
                samples, "wsserver_websocket_handshakes_total", outcome="accepted", status="101"
            )
            assert handshakes == count
        for client in clients:
            await client.close()
        log = await server.stop(signal.SIGTERM)
        assert server.process.returncode == 0, log
    assert "Traceback" not in log


async def test_sigint_is_forwarded_too(tmp_path: Path) -> None:
    (tmp_path / "pidapp.py").write_text(PID_APP)
    async with supervised("pidapp:Pid", "--workers", "2", cwd=tmp_path) as server:
        log = await server.stop(signal.SIGINT)
        assert server.process.returncode == 0, log
    assert log.count("wsserver: shutting down\n") == 2


async def test_a_worker_crashing_at_start_fails_the_supervisor(tmp_path: Path) -> None:
    (tmp_path / "flaky.py").write_text(
        "import os\n"
        "if os.environ.get('WSSERVER_WORKER') == '2':\n"
        "    raise RuntimeError('worker 2 cannot start')\n"
        "from wsserver import WebSocketView\n"
        "class View(WebSocketView):\n"
        "    pass\n"
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "wsserver", "run", "flaky:View", "--workers", "2", "--port", "0",
        cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    _, err = await asyncio.wait_for(process.communicate(), 4 * START_TIMEOUT)
    log = err.decode()
    assert process.returncode == 1, log
    assert re.search(
        r"wsserver: error: worker 2 \(pid \d+\) exited with status 2 during start-up", log
    ), log
    # The worker's own one-line error is there too; the other worker was stopped.
    assert "RuntimeError: worker 2 cannot start" in log
    assert "Traceback" not in log
    pids = [int(p) for p in re.findall(r"\[worker 1 (\d+)\]", log)]
    assert not any(alive(pid) for pid in pids)


async def test_a_worker_that_crashes_later_is_restarted(tmp_path: Path) -> None:
    (tmp_path / "pidapp.py").write_text(PID_APP)
    async with supervised("pidapp:Pid", "--workers", "2", cwd=tmp_path) as server:
        before = dict(server.workers)
        victim = await connect(f"ws://127.0.0.1:{server.port}/")
        pid = int(await asyncio.wait_for(victim.recv(), TIMEOUT))
        await victim.send("die")
        await server.read_until(r"exited with status 3; restarting it")
        await server.read_until(r"wsserver listening on")
        assert set(server.workers.values()) != set(before.values())
        assert not alive(pid)
        seen = await pids_seen(server.port, 2)
        assert str(pid) not in seen
        log = await server.stop()
        assert server.process.returncode == 0, log


async def test_workers_stop_when_the_supervisor_is_killed(tmp_path: Path) -> None:
    (tmp_path / "pidapp.py").write_text(PID_APP)
    async with supervised("pidapp:Pid", "--workers", "2", cwd=tmp_path) as server:
        server.process.kill()
        await server.process.wait()
        async with asyncio.timeout(4 * TIMEOUT):
            while any(alive(pid) for pid in server.workers.values()):
                await asyncio.sleep(0.05)


CHANNELS_APP = """
from wsserver import App
from wsserver.plugins.channels import ChannelManager

manager = ChannelManager()
app = App()
manager.install(app, "/ws")
"""


async def test_several_workers_with_the_in_process_channel_backend_are_warned(
    tmp_path: Path,
) -> None:
    (tmp_path / "chapp.py").write_text(CHANNELS_APP)
    async with supervised("chapp:app", "--workers", "2", cwd=tmp_path) as server:
        log = await server.stop()
    assert "cross-worker delivery needs Redis" in log
    assert log.count("wsserver: warning:") == 1  # the supervisor says it, once
    # With Redis named, nothing to warn about (nothing connects to it until
    # a manager is used).
    async with supervised(
        "chapp:app", "--workers", "2", "--channels-backend", "redis://127.0.0.1:1/0", cwd=tmp_path
    ) as server:
        log = await server.stop()
    assert "warning" not in log
    assert server.process.returncode == 0


def test_workers_on_a_port_in_use_is_one_line_and_exit_1() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("run", "examples.echo:EchoView", "--workers", "2", "--port", str(port))
    assert result.returncode == 1, result.stderr
    assert f"wsserver: error: cannot listen on 127.0.0.1:{port}: " in result.stderr
    assert "Traceback" not in result.stderr


# ---------------------------------------------------------------------------
# The channel manager's start-up check (registered when it is imported)
# ---------------------------------------------------------------------------


def test_one_worker_or_no_channels_means_no_warning() -> None:
    from wsserver.plugins.channels import ChannelManager, InProcessBackend

    def warnings(workers: int) -> list[str]:
        return startup_warnings(StartupContext(app=App(), config=ServerConfig(), workers=workers))

    manager = ChannelManager(InProcessBackend())
    assert warnings(1) == []
    # Not vacuous: the same manager with two workers is warned about.
    (warning,) = [w for w in warnings(2) if "channel manager" in w]
    assert warning.startswith("2 workers, and the application's channel manager uses the ")
    assert "cross-worker delivery needs Redis" in warning
    del manager


# ---------------------------------------------------------------------------
# run_supervisor and worker_link, called directly
# ---------------------------------------------------------------------------


@pytest.fixture
def contexts() -> Iterator[list[StartupContext]]:
    """Registers a check that records its contexts and warns once per call."""
    seen: list[StartupContext] = []

    def check(context: StartupContext) -> list[str]:
        seen.append(context)
        return [f"checked for {context.workers} workers"]

    add_startup_check(check)
    try:
        yield seen
    finally:
        remove_startup_check(check)


def test_start_up_checks_run_once_for_all_workers_before_the_port_is_bound(
    contexts: list[StartupContext], capsys: pytest.CaptureFixture[str]
) -> None:
    app = App()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        config = ServerConfig(port=taken.getsockname()[1])
        status = run_supervisor(app, config, 3, lambda port: ["false"])
    assert status == 1
    assert [(c.app, c.config, c.workers) for c in contexts] == [(app, config, 3)]
    # Other checks may be registered too (importing the channels plugin
    # registers one, which warns while an in-process manager is alive).
    lines = capsys.readouterr().err.splitlines()
    warning = lines.index("wsserver: warning: checked for 3 workers")
    assert lines[-1].startswith(f"wsserver: error: cannot listen on 127.0.0.1:{config.port}: ")
    assert warning < len(lines) - 1


def test_workers_are_started_with_the_command_given(capsys: pytest.CaptureFixture[str]) -> None:
    ports: list[int] = []

    def command(port: int) -> list[str]:
        ports.append(port)
        return [sys.executable, "-c", "raise SystemExit(5)"]

    status = run_supervisor(App(), ServerConfig(port=0), 2, command)
    assert status == 1
    # Every worker gets the one port reserved (a free one, for port 0).
    assert len(ports) == 2 and ports[0] == ports[1] and ports[0] > 0
    err = capsys.readouterr().err
    assert re.search(
        r"wsserver: error: worker 1 \(pid \d+\) exited with status 5 during start-up", err
    )


def test_worker_link_is_taken_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(WORKER_FD_ENV, raising=False)
    assert worker_link() is None
    monkeypatch.setenv(WORKER_FD_ENV, "7")
    assert worker_link() == 7
    # Taken out: processes the application starts are not workers.
    assert worker_link() is None
