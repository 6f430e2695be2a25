"""Tests for wsserver.supervisor: ``wsserver run --workers N``.

End to end, as a user runs it: ``python -m wsserver run ... --workers 2``
starts a supervisor and workers sharing the port (SO_REUSEPORT); the tests
find the workers' pids in their log lines and check signals, crashes and
restarts, and the rolling restart on SIGHUP (under 200 WebSockets and a
component page in Chromium).  The supervisor's own contract (start-up checks, the worker
command it is given, its errors) is tested by calling it directly.
"""

from __future__ import annotations

import asyncio
import os
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
from .server.test_metrics import Samples, scrape, value
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
    # Reading stderr in the background, if a test started one.
    watch: LogWatch | None = None

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
        if self.watch is not None:
            await self.watch.close()  # communicate() reads stderr from here on
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


# ---------------------------------------------------------------------------
# Rolling restart: SIGHUP (wsserver restart)
# ---------------------------------------------------------------------------

RESTART_APP = """
import os

from wsserver.plugins.components import Component, ComponentApp, RedisStore, State, h


class Counter(Component):
    count = State(0)

    def render(self):
        return h.div(
            h.button("+1", id="inc").bind("click", self.increment),
            h.output(str(self.count), id="count"),
        )

    def increment(self):
        self.count += 1


# The snapshot store every worker shares, old and new: a page resumes on
# whichever worker its reconnection reaches.
app = ComponentApp(
    {"/": Counter},
    store=RedisStore(os.environ["RESTART_TEST_REDIS"], prefix="rolling-restart:"),
    secret=b"s" * 32,
    reconnect_base=0.05,
    reconnect_max=0.2,
    reconnect_attempts=30,
    csp=None,
)


async def hold(websocket):
    await websocket.accept()
    await websocket.send_text(str(os.getpid()))
    async for _ in websocket.iter_text():
        pass


app.add_websocket_route("/hold", hold)
"""


class LogWatch:
    """Reads a supervisor's stderr as it comes (so that the pipe never fills)."""

    def __init__(self, server: Supervised) -> None:
        self.server = server
        server.watch = self
        self.changed = asyncio.Condition()
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        stderr = self.server.process.stderr
        assert stderr is not None
        while line := await stderr.readline():
            async with self.changed:
                self.server.log.append(line.decode())
                self.changed.notify_all()

    async def wait_for(self, pattern: str, start: int = 0) -> re.Match[str]:
        """The first line from index ``start`` on that matches ``pattern``."""
        async with asyncio.timeout(4 * START_TIMEOUT), self.changed:
            while True:
                for line in self.server.log[start:]:
                    if found := re.search(pattern, line):
                        return found
                assert not self.task.done(), f"the supervisor exited: {''.join(self.server.log)}"
                await self.changed.wait()

    async def close(self) -> None:
        self.server.watch = None
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


@pytest.mark.timeout(240)
async def test_a_rolling_restart_keeps_every_client(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGHUP with 200 WebSockets and a component page open in Chromium.

    New workers start and listen beside the old ones; then each of the 200
    clients gets 1012 and reconnects at once to a new worker while the old
    ones drain (no handshake refused), and the page, told 1012 too,
    resumes from the shared Redis store with its count.
    """
    from playwright.async_api import async_playwright

    from .plugins._browser import CHROMIUM, CHROMIUM_ARGS, RECORDER, WAIT
    from .plugins.channels._helpers import RedisServer, find_redis_server
    from .plugins.components._harness import RECORDER as CV_RECORDER
    from .plugins.components._harness import after, wait_attached

    executable = find_redis_server()
    assert executable is not None, "this test needs redis-server: apt-get install redis-server"
    redis = RedisServer(executable, tmp_path)
    redis.start()
    monkeypatch.setenv("RESTART_TEST_REDIS", redis.url)
    (tmp_path / "restartapp.py").write_text(RESTART_APP)
    pid_file = tmp_path / "wsserver.pid"
    args = (
        "restartapp:app",
        "--workers",
        "2",
        "--pid-file",
        str(pid_file),
        "--ws-ping-interval",
        "none",
        # 200 clients and their reconnections all come from 127.0.0.1.
        "--max-connections-per-client",
        "none",
        "--handshake-rate-per-client",
        "none",
        "--metrics-path",
        "/metrics",
    )
    clients: list[ClientConnection] = []
    try:
        async with supervised(*args, cwd=tmp_path) as server, async_playwright() as playwright:
            watch = LogWatch(server)
            assert int(pid_file.read_text()) == server.process.pid
            old_pids = set(server.workers.values())
            browser = await playwright.chromium.launch(
                executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=20_000
            )
            page = await browser.new_page()
            await page.add_init_script(RECORDER + CV_RECORDER)
            await page.goto(f"http://127.0.0.1:{server.port}/")
            await wait_attached(page)
            for _ in range(3):
                await after(page, lambda: page.click("#inc"))
            assert await page.text_content("#count") == "3"
            await page.evaluate("window.__marker = 'same document'")

            url = f"ws://127.0.0.1:{server.port}/hold"

            async def open_client() -> tuple[ClientConnection, int]:
                client = await connect(url, open_timeout=WAIT)
                return client, int(await asyncio.wait_for(client.recv(), WAIT))

            opened = await asyncio.gather(*(open_client() for _ in range(200)))
            clients = [client for client, _ in opened]
            assert {pid for _, pid in opened} <= old_pids

            # No prober connecting meanwhile: one whose TCP handshake the
            # kernel completes on an old listener in the instant it closes is
            # reset (docs/operations.md, "A kernel detail"), and one accepted
            # just before gets 101 then 1012 (tests/server/test_server.py).
            mark = len(server.log)
            restart = await asyncio.to_thread(
                run_cli, "restart", "--pid-file", str(pid_file), cwd=tmp_path
            )
            assert restart.returncode == 0, restart.stderr
            found = await watch.wait_for(
                r"supervisor: 2 new workers listening \(pids (.*?)\)", mark
            )
            new_pids = {int(pid) for pid in found.group(1).split()}
            assert len(new_pids) == 2 and not new_pids & old_pids

            async def reconnect(client: ClientConnection) -> tuple[int | None, int]:
                await asyncio.wait_for(client.wait_closed(), WAIT)
                again, pid = await open_client()
                clients.append(again)
                return client.close_code, pid

            results = await asyncio.gather(*(reconnect(client) for client in clients[:200]))
            assert [code for code, _ in results] == [1012] * 200
            assert {pid for _, pid in results} <= new_pids

            # The page: told 1012, reconnected at once, resumed (not reloaded).
            await page.wait_for_function(
                "() => window.__cv.filter((e) => e.kind === 'ready').length === 2",
                timeout=WAIT * 1000,
            )
            assert await page.text_content("#count") == "3"
            assert await page.evaluate("window.__marker") == "same document"
            statuses = await page.evaluate("window.__statuses")
            (told,) = [s for s in statuses if s.get("code") == 1012]
            assert told["status"] == "reconnecting" and told["attempt"] == 0
            await after(page, lambda: page.click("#inc"))
            assert await page.text_content("#count") == "4"
            await browser.close()

            await watch.wait_for(r"rolling restart done: the old workers \(pids .*\) have stopped")
            assert not any(alive(pid) for pid in old_pids)

            # The old workers' last figures outlive them: each 1012 counted
            # once (the 200 clients and the page), and the page attached
            # twice: its first connection (on an old worker) and its resume
            # (on a new one).  The new worker that took the resume may not be
            # the one scraped, and a worker's snapshot lags by up to a second
            # (SNAPSHOT_INTERVAL): poll until the resume is in, bounded.
            outcomes = ("first", "resumed", "remounted", "expired", "refused", "unavailable")

            def attaches(samples: Samples) -> dict[str, float]:
                return {
                    outcome: value(samples, f"wsserver_components_attaches_{outcome}_total")
                    for outcome in outcomes
                }

            deadline = asyncio.get_running_loop().time() + TIMEOUT
            while sum(attaches(samples := await scrape(server.port)).values()) < 2:
                assert asyncio.get_running_loop().time() < deadline, attaches(samples)
                await asyncio.sleep(0.05)
            closes = value(samples, "wsserver_websocket_closes_total", code="1012", side="server")
            assert closes == 201
            assert attaches(samples) == {
                "first": 1,
                "resumed": 1,
                "remounted": 0,
                "expired": 0,
                "refused": 0,
                "unavailable": 0,
            }
            for client in clients:
                await client.close()
            await watch.close()
            log = await server.stop(signal.SIGTERM)
            assert server.process.returncode == 0, log
        assert "Traceback" not in log and " ERROR " not in log and "error:" not in log, log
        assert log.count("replaced by a new worker: closing WebSockets with 1012") == 2
        assert not pid_file.exists()
    finally:
        redis.stop()


async def test_a_restart_whose_new_worker_fails_keeps_the_old_ones(tmp_path: Path) -> None:
    (tmp_path / "pidapp.py").write_text(
        "import os\n"
        "if os.path.exists('broken'):\n"
        "    raise RuntimeError('the new code is broken')\n" + PID_APP
    )
    async with supervised("pidapp:Pid", "--workers", "2", cwd=tmp_path) as server:
        watch = LogWatch(server)
        old = set(server.workers.values())
        # A worker signalled directly leaves the restart to the supervisor.
        first = min(old)
        mark = len(server.log)
        os.kill(first, signal.SIGHUP)
        await watch.wait_for(
            rf"SIGHUP ignored: send it to the supervisor \(pid {server.process.pid}\)", mark
        )
        (tmp_path / "broken").touch()
        mark = len(server.log)
        server.process.send_signal(signal.SIGHUP)
        await watch.wait_for(r"during a restart: the old workers keep serving", mark)
        assert all(alive(pid) for pid in old)
        assert await pids_seen(server.port, 2) == {str(pid) for pid in old}
        # Fixed: the next SIGHUP replaces them.
        (tmp_path / "broken").unlink()
        mark = len(server.log)
        server.process.send_signal(signal.SIGHUP)
        await watch.wait_for(r"rolling restart done", mark)
        assert not any(alive(pid) for pid in old)
        seen = await pids_seen(server.port, 2)
        assert len(seen) == 2 and not seen & {str(pid) for pid in old}
        await watch.close()
        log = await server.stop()
        assert server.process.returncode == 0, log
    assert "RuntimeError: the new code is broken" in log


async def test_sigterm_during_a_restart_lets_the_old_workers_finish_their_drain(
    tmp_path: Path,
) -> None:
    (tmp_path / "stubborn.py").write_text(
        "import asyncio\n"
        "async def app(websocket):\n"
        "    await websocket.accept()\n"
        "    await websocket.send_text('in')\n"
        "    await asyncio.sleep(3600)  # never looks: the grace period ends it\n"
    )
    args = ("stubborn:app", "--workers", "2", "--shutdown-timeout", "4")
    async with supervised(*args, cwd=tmp_path) as server:
        watch = LogWatch(server)
        client = await connect(f"ws://127.0.0.1:{server.port}/")
        assert await asyncio.wait_for(client.recv(), TIMEOUT) == "in"
        mark = len(server.log)
        server.process.send_signal(signal.SIGHUP)
        await watch.wait_for(r"new workers listening", mark)
        await asyncio.wait_for(client.wait_closed(), TIMEOUT)
        assert client.close_code == 1012
        # One old worker still waits for its handler: stop everything now.
        log = await server.stop(signal.SIGTERM)
        assert server.process.returncode == 0, log
    # The draining worker was not signalled again: it ended its grace period
    # itself, and the supervisor waited for it.
    assert "cancelling 1 handlers after the grace period" in log
    assert "did not stop: killing it" not in log and "Traceback" not in log
