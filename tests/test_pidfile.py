"""Tests for wsserver.pidfile: the pid file and the restart signal.

The commands that use them (``wsserver run --pid-file``, ``wsserver
restart``) are tested end to end in tests/test_cli.py and
tests/test_supervisor.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from wsserver.pidfile import (
    RESTART_SIGNAL,
    read_pid_file,
    remove_pid_file,
    send_restart,
    write_pid_file,
)


def test_the_pid_is_written_whole_read_back_and_removed(tmp_path: Path) -> None:
    path = tmp_path / "server.pid"
    write_pid_file(str(path))
    assert path.read_text() == f"{os.getpid()}\n"
    assert read_pid_file(str(path)) == os.getpid()
    assert os.listdir(tmp_path) == ["server.pid"]  # no temporary file left
    remove_pid_file(str(path))
    assert not path.exists()
    remove_pid_file(str(path))  # already gone: nothing to do


def test_a_pid_file_another_run_owns_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "server.pid"
    path.write_text(f"{os.getpid() + 1}\n")
    remove_pid_file(str(path))
    assert path.read_text() == f"{os.getpid() + 1}\n"


@pytest.mark.parametrize("text", ["", "abc", "-5", "0", "12 13"])
def test_a_pid_file_without_one_pid_is_refused(tmp_path: Path, text: str) -> None:
    path = tmp_path / "server.pid"
    path.write_text(text)
    with pytest.raises(ValueError, match="does not hold a process id"):
        read_pid_file(str(path))


def test_an_unwritable_place_raises_and_leaves_nothing(tmp_path: Path) -> None:
    tmp_path.chmod(0o500)
    try:
        if os.access(tmp_path, os.W_OK):  # root ignores the mode
            (tmp_path / "server.pid").mkdir()  # a directory cannot be replaced by a file
        with pytest.raises(OSError):
            write_pid_file(str(tmp_path / "server.pid"))
        assert [p for p in os.listdir(tmp_path) if p.endswith(".tmp")] == []
    finally:
        tmp_path.chmod(0o700)


def test_send_restart_sends_sighup() -> None:
    assert RESTART_SIGNAL is signal.SIGHUP
    with subprocess.Popen(
        [sys.executable, "-c", "import signal, sys; print('ready', flush=True); signal.pause()"],
        stdout=subprocess.PIPE,
        text=True,
    ) as child:
        try:
            assert child.stdout is not None and child.stdout.readline() == "ready\n"
            send_restart(child.pid)
            assert child.wait(timeout=10) == -signal.SIGHUP
        finally:
            child.kill()
    with pytest.raises(ProcessLookupError):
        send_restart(child.pid)  # reaped: no such process
