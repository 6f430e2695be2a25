"""Tests for wsserver/__main__.py: ``python -m wsserver`` is the command."""

from __future__ import annotations

import runpy
import subprocess
import sys
from pathlib import Path

import pytest

import wsserver

ROOT = Path(__file__).resolve().parent.parent


def run_module(monkeypatch: pytest.MonkeyPatch, *argv: str) -> int | str | None:
    monkeypatch.setattr(sys, "argv", ["wsserver", *argv])
    with pytest.raises(SystemExit) as caught:
        runpy.run_module("wsserver", run_name="__main__")
    return caught.value.code


def test_version(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_module(monkeypatch, "--version") == 0
    assert capsys.readouterr().out == f"wsserver {wsserver.__version__}\n"


def test_exit_status_of_main_is_the_process_status(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # main() returns 2 for a target it cannot import; __main__ exits with it.
    assert run_module(monkeypatch, "run", "no_such_module_xyz:app") == 2
    error = capsys.readouterr().err
    assert error == 'wsserver: error: could not import module "no_such_module_xyz"\n'


def test_python_dash_m_runs_the_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "wsserver", "run", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert result.returncode == 0
    assert result.stdout.startswith("usage: wsserver run ")
    assert "--no-compression" in result.stdout
