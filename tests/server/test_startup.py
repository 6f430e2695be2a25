"""Tests for wsserver.server.startup: the start-up checks plugins register.

The checks run once per deployment before anything listens: ``serve()``
for one process here; the ``--workers`` supervisor in tests/test_supervisor.py.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator

import pytest

from wsserver.server import App, Server, ServerConfig, serve
from wsserver.server.startup import (
    StartupCheck,
    StartupContext,
    add_startup_check,
    remove_startup_check,
    startup_warnings,
)

from .._live import TIMEOUT


@pytest.fixture
def register() -> Iterator[list[StartupCheck]]:
    """Checks appended to the list are registered, and removed after the test."""
    added: list[StartupCheck] = []
    yield added
    for check in added:
        remove_startup_check(check)


def context(workers: int = 1) -> StartupContext:
    return StartupContext(app=App(), config=ServerConfig(), workers=workers)


def test_warnings_come_from_every_check_in_registration_order(
    register: list[StartupCheck],
) -> None:
    def first(context: StartupContext) -> list[str]:
        return ["first"]

    def second(context: StartupContext) -> tuple[str, ...]:
        return ("second a", f"second b for {context.workers}")

    register.extend([first, second])
    for check in register:
        add_startup_check(check)
    assert startup_warnings(context(4))[-3:] == ["first", "second a", "second b for 4"]


def test_a_check_registered_twice_runs_once(register: list[StartupCheck]) -> None:
    calls: list[int] = []

    def check(context: StartupContext) -> list[str]:
        calls.append(context.workers)
        return []

    register.append(check)
    # It decorates: the function itself comes back.
    assert add_startup_check(check) is check
    add_startup_check(check)
    startup_warnings(context())
    assert calls == [1]


def test_a_removed_check_runs_no_more(register: list[StartupCheck]) -> None:
    def check(context: StartupContext) -> list[str]:
        return ["still here"]

    register.append(check)
    add_startup_check(check)
    assert "still here" in startup_warnings(context())
    remove_startup_check(check)
    assert "still here" not in startup_warnings(context())
    remove_startup_check(check)  # not registered: nothing happens


def test_a_check_that_raises_is_a_warning_naming_it(register: list[StartupCheck]) -> None:
    def broken(context: StartupContext) -> list[str]:
        raise KeyError("settings")

    def fine(context: StartupContext) -> list[str]:
        return ["fine"]

    register.extend([broken, fine])
    add_startup_check(broken)
    add_startup_check(fine)
    warnings = startup_warnings(context())
    assert (
        "start-up check test_a_check_that_raises_is_a_warning_naming_it.<locals>.broken "
        "failed: KeyError: 'settings'"
    ) in warnings
    # The checks after it still run.
    assert warnings[-1] == "fine"


async def test_serve_runs_the_checks_for_one_process_before_listening(
    register: list[StartupCheck], caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[StartupContext] = []
    checked = asyncio.Event()

    def check(context: StartupContext) -> list[str]:
        seen.append(context)
        checked.set()
        return ["mind the gap"]

    register.append(check)
    add_startup_check(check)
    app = App()
    config = ServerConfig(port=0)
    caplog.set_level(logging.INFO, logger="wsserver")
    serving = asyncio.create_task(serve(app, config))
    try:
        async with asyncio.timeout(TIMEOUT):
            await checked.wait()
            while not any("listening on" in r.getMessage() for r in caplog.records):
                await asyncio.sleep(0.01)
    finally:
        serving.cancel()
        with pytest.raises(asyncio.CancelledError):
            await serving
    assert [(c.app, c.config, c.workers) for c in seen] == [(app, config, 1)]
    messages = [(r.levelno, r.getMessage()) for r in caplog.records]
    warned = messages.index((logging.WARNING, "mind the gap"))
    listening = next(i for i, (_, m) in enumerate(messages) if "listening on" in m)
    assert warned < listening


async def test_server_start_runs_no_check(register: list[StartupCheck]) -> None:
    # A program may start many servers, and a worker's is one of several.
    calls: list[StartupContext] = []

    def check(context: StartupContext) -> list[str]:
        calls.append(context)
        return []

    register.append(check)
    add_startup_check(check)
    async with Server(App(), ServerConfig(port=0)):
        pass
    assert calls == []
