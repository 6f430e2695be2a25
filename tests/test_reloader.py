"""Tests for wsserver.reloader: ``wsserver run --reload``.

End to end, as a developer runs it: ``python -m wsserver run ... --reload-dir
DIR`` on a temporary directory holding a tiny application; the test reads
the children's pids and port from their log lines, rewrites the module and
polls (with a bounded deadline) until the new code answers.  The change
filter and the options' meaning are tested directly.
"""

from __future__ import annotations

import asyncio
import re
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from wsserver.cli import _parser, reload_settings
from wsserver.reloader import DEFAULT_EXCLUDES, DEFAULT_INCLUDES, ChangeFilter, ReloadSettings

from ._live import TIMEOUT
from .test_cli import START_TIMEOUT, assert_one_error_line, run_cli
from .test_supervisor import alive

APP = """
from wsserver import WebSocketView

VERSION = {version!r}

class Version(WebSocketView):
    async def on_connect(self, websocket):
        await websocket.accept()
        await websocket.send_text(VERSION)

    async def on_receive(self, websocket, data):
        if data == "die":
            import os
            os._exit(3)
"""

#: Bound on how long a change may take to be served (the child restarts: a
#: new interpreter imports wsserver and the application).
RELOAD_DEADLINE = 4 * START_TIMEOUT


def write_app(directory: Path, version: str) -> None:
    (directory / "verapp.py").write_text(APP.format(version=version))


@dataclass
class Reloading:
    process: asyncio.subprocess.Process
    port: int = 0
    children: list[int] = field(default_factory=list)  # pids, in start order
    log: list[str] = field(default_factory=list)

    async def read_until(self, pattern: str, timeout: float = START_TIMEOUT) -> re.Match[str]:
        assert self.process.stderr is not None
        async with asyncio.timeout(timeout):
            while True:
                line = await self.process.stderr.readline()
                assert line, f"the reloader exited: {''.join(self.log)}"
                self.log.append(line.decode())
                listening = re.search(
                    r"\[worker 1 (\d+)\] wsserver: wsserver listening on 127\.0\.0\.1:(\d+)",
                    self.log[-1],
                )
                if listening:
                    self.children.append(int(listening.group(1)))
                    self.port = int(listening.group(2))
                found = re.search(pattern, self.log[-1])
                if found:
                    return found

    async def version(self) -> str:
        async with connect(f"ws://127.0.0.1:{self.port}/", open_timeout=TIMEOUT) as client:
            return str(await asyncio.wait_for(client.recv(), TIMEOUT))

    async def stop(self, sig: int = signal.SIGTERM) -> str:
        if self.process.returncode is None:
            self.process.send_signal(sig)
        _, err = await asyncio.wait_for(self.process.communicate(), 4 * START_TIMEOUT)
        return "".join(self.log) + err.decode()


@asynccontextmanager
async def reloading(directory: Path, *args: str) -> AsyncIterator[Reloading]:
    """``wsserver run verapp:Version --reload-dir directory``, up once a child listens."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "wsserver", "run", "verapp:Version",
        "--reload-dir", str(directory), "--port", "0", *args,
        cwd=directory, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    state = Reloading(process)
    try:
        await state.read_until(r"wsserver listening on")
        yield state
    finally:
        if process.returncode is None:
            process.kill()
            await process.communicate()


async def served_version_becomes(
    server: Reloading, directory: Path, version: str, *, touch: bool = True
) -> None:
    """Poll until ``version`` is served; rewrite the module now and then.

    Rewriting again covers a change made before the watcher was watching
    (it starts in a thread of its own, beside the first child); each
    rewrite only restarts the child once more.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + RELOAD_DEADLINE
    next_touch = loop.time()
    seen = None
    while loop.time() < deadline:
        if touch and loop.time() >= next_touch:
            write_app(directory, version)
            next_touch = loop.time() + START_TIMEOUT / 2
        try:
            seen = await server.version()
        except Exception:
            seen = None  # between two children: nobody listens for a moment
        if seen == version:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"still serving {seen!r} after {RELOAD_DEADLINE} s: {''.join(server.log)}")


@pytest.mark.timeout(180)
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_a_changed_module_is_served_and_the_reloader_stops_cleanly(
    tmp_path: Path, sig: signal.Signals
) -> None:
    write_app(tmp_path, "one")
    async with reloading(tmp_path) as server:
        assert await server.version() == "one"
        first = server.children[0]
        assert first != server.process.pid
        await served_version_becomes(server, tmp_path, "two")
        # Read the log the reloader wrote meanwhile (it is not drained otherwise).
        await server.read_until(r"restarting the server")
        client = await connect(f"ws://127.0.0.1:{server.port}/", open_timeout=TIMEOUT)
        assert await asyncio.wait_for(client.recv(), TIMEOUT) == "two"
        log = await server.stop(sig)
        assert server.process.returncode == 0, log
        children = server.children + [int(p) for p in re.findall(r"\[worker 1 (\d+)\]", log)]
    # The child shut down gracefully: its connection was closed with 1001.
    await asyncio.wait_for(client.wait_closed(), TIMEOUT)
    assert client.close_code == 1001
    assert re.search(r"changes in verapp\.py: restarting the server", log), log
    assert "Traceback" not in log
    assert not alive(first)
    assert not any(alive(pid) for pid in children)


@pytest.mark.timeout(180)
async def test_a_broken_module_waits_for_the_fix(tmp_path: Path) -> None:
    write_app(tmp_path, "one")
    async with reloading(tmp_path) as server:
        (tmp_path / "verapp.py").write_text("this is not Python\n")
        await server.read_until(
            r"the server \(pid \d+\) exited with status 2; restarting it at the next change",
            timeout=RELOAD_DEADLINE,
        )
        assert server.process.returncode is None  # the reloader keeps watching
        await served_version_becomes(server, tmp_path, "fixed")
        log = await server.stop()
        assert server.process.returncode == 0, log


@pytest.mark.timeout(180)
async def test_a_child_that_exits_later_is_restarted_at_the_next_change(tmp_path: Path) -> None:
    write_app(tmp_path, "one")
    async with reloading(tmp_path) as server:
        first = server.children[0]
        async with connect(f"ws://127.0.0.1:{server.port}/", open_timeout=TIMEOUT) as victim:
            assert await asyncio.wait_for(victim.recv(), TIMEOUT) == "one"
            await victim.send("die")
            await server.read_until(
                r"the server \(pid \d+\) exited with status 3; restarting it at the next change"
            )
        assert not alive(first)
        assert server.process.returncode is None
        await served_version_becomes(server, tmp_path, "again")
        log = await server.stop()
        # The child that crashed was reported then: the reloader stops cleanly.
        assert server.process.returncode == 0, log


@pytest.mark.timeout(180)
async def test_the_child_stops_when_the_reloader_is_killed(tmp_path: Path) -> None:
    write_app(tmp_path, "one")
    async with reloading(tmp_path) as server:
        child = server.children[0]
        server.process.kill()
        await server.process.wait()
        # The child sees its link to the reloader close, and shuts down.
        async with asyncio.timeout(4 * TIMEOUT):
            while alive(child):
                await asyncio.sleep(0.05)


def test_files_outside_the_includes_or_in_the_excludes_do_not_restart() -> None:
    changes = ChangeFilter(DEFAULT_INCLUDES, DEFAULT_EXCLUDES)
    assert changes(None, "/app/verapp.py")
    assert changes(None, "/app/pkg/views.py")
    assert not changes(None, "/app/notes.txt")
    assert not changes(None, "/app/.hidden.py")
    assert not changes(None, "/app/verapp.pyc")
    templates = ChangeFilter(("*.py", "templates/*.html"), ("*_test.py",))
    assert templates(None, "/app/templates/index.html")
    assert not templates(None, "/app/static/index.html")
    assert not templates(None, "/app/views_test.py")
    # What ``ignore`` rules out never gets to the globs (watchfiles'
    # DefaultFilter: .git, __pycache__, virtualenvs...).
    ignoring = ChangeFilter(DEFAULT_INCLUDES, (), ignore=lambda _, path: "/.venv/" not in path)
    assert ignoring(None, "/app/verapp.py")
    assert not ignoring(None, "/app/.venv/lib/site.py")


def test_the_reload_options_imply_reload_and_default_to_the_app_dir(tmp_path: Path) -> None:
    def settings(*argv: str) -> ReloadSettings | None:
        return reload_settings(_parser([]).parse_args(["run", "m:a", *argv]), str(tmp_path))

    assert settings() is None
    assert settings("--reload") == ReloadSettings(dirs=(str(tmp_path),))
    other = tmp_path / "src"
    other.mkdir()
    chosen = settings("--reload-dir", str(other), "--reload-dir", str(tmp_path))
    assert chosen is not None and chosen.dirs == (str(other), str(tmp_path))
    globs = settings("--reload-include", "*.html", "--reload-exclude", "*_test.py")
    assert globs is not None and globs.dirs == (str(tmp_path),)
    assert globs.includes == ("*.py", "*.html")
    assert globs.excludes == (*DEFAULT_EXCLUDES, "*_test.py")
    # Including a glob excluded by default takes it off the excludes.
    hidden = settings("--reload-include", ".*")
    assert hidden is not None and ".*" not in hidden.excludes
    with pytest.raises(ValueError, match="not a directory"):
        settings("--reload-dir", str(tmp_path / "missing"))
    with pytest.raises(ValueError, match="at least one directory"):
        ReloadSettings(dirs=())


def test_reload_on_a_port_in_use_is_one_line_and_exit_1(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli(
            "run", "examples.echo:EchoView", "--reload-dir", str(tmp_path), "--port", str(port)
        )
    message = assert_one_error_line(result, status=1)
    assert message.startswith(f"cannot listen on 127.0.0.1:{port}: ")


def test_reload_with_several_workers_is_one_error_line(tmp_path: Path) -> None:
    message = assert_one_error_line(
        run_cli("run", "examples.echo:EchoView", "--reload", "--workers", "2")
    )
    assert message == "--reload runs one server process: it cannot be combined with --workers"
    message = assert_one_error_line(
        run_cli("run", "examples.echo:EchoView", "--reload-dir", str(tmp_path / "nope"))
    )
    assert message == f"--reload-dir {tmp_path / 'nope'}: not a directory"


def test_reload_without_watchfiles_names_the_extra(tmp_path: Path) -> None:
    # ``sys.modules[name] = None`` makes ``import name`` fail, as when the
    # package is not installed.
    code = (
        "import sys; sys.modules['watchfiles'] = None; "
        "from wsserver.cli import main; "
        f"sys.exit(main(['run', 'verapp:Version', '--reload-dir', {str(tmp_path)!r}]))"
    )
    write_app(tmp_path, "one")
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT,
        check=False,
    )
    message = assert_one_error_line(result)
    assert message == "--reload needs watchfiles: pip install 'wsserver[standard]'"
