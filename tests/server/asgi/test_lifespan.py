"""The lifespan protocol: startup, shutdown, state, failures, apps without it."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from wsserver.server.asgi import LifespanFailed
from wsserver.server.asgi.lifespan import Lifespan
from wsserver.server.startup import ApplicationStartupError

Message = dict[str, Any]


class Recorder:
    """A lifespan-speaking application that records what it was sent."""

    def __init__(self, *, startup: str = "complete", shutdown: str = "complete") -> None:
        self.startup = startup
        self.shutdown = shutdown
        self.events: list[str] = []

    async def __call__(self, scope: Message, receive: Any, send: Any) -> None:
        assert scope["type"] == "lifespan"
        assert scope["asgi"]["version"] == "3.0"
        event = await receive()
        self.events.append(event["type"])
        scope["state"]["db"] = "connected"
        await send({"type": f"lifespan.startup.{self.startup}", "message": "no database"})
        event = await receive()
        self.events.append(event["type"])
        await send({"type": f"lifespan.shutdown.{self.shutdown}", "message": "stuck"})


async def test_startup_and_shutdown_in_order_with_state() -> None:
    app = Recorder()
    lifespan = Lifespan(app)
    await lifespan.startup()
    assert lifespan.state == {"db": "connected"}
    assert lifespan.supported
    await lifespan.shutdown()
    assert app.events == ["lifespan.startup", "lifespan.shutdown"]


async def test_startup_failed_raises_with_the_applications_message() -> None:
    lifespan = Lifespan(Recorder(startup="failed"))
    with pytest.raises(LifespanFailed, match="lifespan startup failed: no database"):
        await lifespan.startup()
    assert issubclass(LifespanFailed, ApplicationStartupError)


async def test_shutdown_failed_raises() -> None:
    lifespan = Lifespan(Recorder(shutdown="failed"))
    await lifespan.startup()
    with pytest.raises(LifespanFailed, match="lifespan shutdown failed: stuck"):
        await lifespan.shutdown()


async def test_an_exception_after_answering_is_a_failure_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def app(scope: Message, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "lifespan.startup.complete"})
        await receive()
        raise ValueError("disk full")

    lifespan = Lifespan(app)
    await lifespan.startup()
    with (
        caplog.at_level(logging.ERROR, logger="wsserver"),
        pytest.raises(LifespanFailed, match="ValueError: disk full"),
    ):
        await lifespan.shutdown()
    assert [r.getMessage() for r in caplog.records] == ["the ASGI application's lifespan failed"]


async def test_failed_then_raising_is_not_logged_twice(caplog: pytest.LogCaptureFixture) -> None:
    # Starlette's way: send startup.failed with the traceback, then re-raise.
    async def app(scope: Message, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "Traceback: boom"})
        raise RuntimeError("boom")

    with caplog.at_level(logging.ERROR, logger="wsserver"), pytest.raises(LifespanFailed):
        await Lifespan(app).startup()
    assert caplog.records == []


@pytest.mark.parametrize("raises", [True, False])
async def test_an_application_without_lifespan_is_served_without_it(
    raises: bool, caplog: pytest.LogCaptureFixture
) -> None:
    async def app(scope: Message, receive: Any, send: Any) -> None:
        if raises:
            assert scope["type"] == "http", "http only"

    lifespan = Lifespan(app)
    with caplog.at_level(logging.DEBUG, logger="wsserver"):
        await lifespan.startup()
        await lifespan.shutdown()
    assert not lifespan.supported
    assert lifespan.state == {}
    assert len(caplog.records) == 1
    assert caplog.records[0].levelno == logging.DEBUG
    assert "does not support lifespan" in caplog.text or "returned from lifespan" in caplog.text


async def test_an_application_returning_early_after_startup_is_fine() -> None:
    async def app(scope: Message, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "lifespan.startup.complete"})

    lifespan = Lifespan(app)
    await lifespan.startup()
    await lifespan.shutdown()
    assert lifespan.supported


async def test_an_unknown_lifespan_message_is_an_error() -> None:
    async def app(scope: Message, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "lifespan.startup.complete"})
        await receive()
        await send({"type": "lifespan.bogus"})

    lifespan = Lifespan(app)
    await lifespan.startup()
    with pytest.raises(LifespanFailed, match=r"unexpected ASGI lifespan message 'lifespan\.bogus'"):
        await lifespan.shutdown()


async def test_an_application_that_never_returns_after_shutdown_is_cancelled() -> None:
    cancelled = asyncio.Event()

    async def app(scope: Message, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "lifespan.startup.complete"})
        await receive()
        await send({"type": "lifespan.shutdown.complete"})
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    lifespan = Lifespan(app)
    await lifespan.startup()
    await lifespan.shutdown()
    await asyncio.wait_for(cancelled.wait(), 5)


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        ({"type": "lifespan.startup.failed"}, "startup failed: (no message)"),
        (
            {"type": "lifespan.startup.failed", "message": "line one\n  line two"},
            "startup failed: line one line two",
        ),
        ({"type": "lifespan.shutdown.complete"}, "startup failed: lifespan.shutdown.complete"),
    ],
)
async def test_startup_answers_other_than_complete_fail(answer: Message, error: str) -> None:
    async def app(scope: Message, receive: Any, send: Any) -> None:
        await receive()
        await send(answer)
        await receive()

    with pytest.raises(LifespanFailed) as caught:
        await Lifespan(app).startup()
    assert str(caught.value).endswith(error)


async def test_a_traceback_message_is_logged_and_summed_up_in_one_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    traceback_text = 'Traceback (most recent call last):\n  File "app.py"\nOSError: no disk\n'

    async def app(scope: Message, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "lifespan.startup.failed", "message": traceback_text})

    with (
        caplog.at_level(logging.ERROR, logger="wsserver"),
        pytest.raises(LifespanFailed) as caught,
    ):
        await Lifespan(app).startup()
    assert str(caught.value) == "the application's lifespan startup failed: OSError: no disk"
    assert 'File "app.py"' in caplog.text
