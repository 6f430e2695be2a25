"""Tests for wsserver.plugins.components.jobs: JobQueue runs jobs one at a
time, in order; callers wait for theirs; a flood, a failure and the end of
the connection each end it the way the page connection relies on."""

from __future__ import annotations

import asyncio

import pytest

from wsserver.plugins.components.jobs import Job, JobQueue
from wsserver.plugins.runtime import SessionClosed

from ..._live import TIMEOUT

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(90)]


class Recorder:
    """A queue whose floods and failures are written down."""

    def __init__(self, limit: int = 8) -> None:
        self.floods = 0
        self.failures: list[Exception] = []
        self.queue = JobQueue(limit, on_flood=self.on_flood, on_failure=self.on_failure)

    def on_flood(self) -> None:
        self.floods += 1

    async def on_failure(self, exc: Exception) -> None:
        self.failures.append(exc)


def step(log: list[str], name: str) -> Job:
    """A job that logs its start, lets others run, and logs its end."""

    async def job() -> None:
        log.append(f"{name}+")
        await asyncio.sleep(0)
        log.append(f"{name}-")

    return job


def running(queue: JobQueue) -> asyncio.Task[None]:
    return asyncio.get_running_loop().create_task(queue.run())


async def stop(worker: asyncio.Task[None]) -> None:
    worker.cancel()
    with pytest.raises(asyncio.CancelledError):
        await worker


async def test_jobs_run_one_at_a_time_in_order() -> None:
    recorder = Recorder()
    log: list[str] = []
    for name in "abc":
        recorder.queue.submit(step(log, name))
    worker = running(recorder.queue)
    await asyncio.wait_for(recorder.queue.call(step(log, "d")), TIMEOUT)
    assert log == ["a+", "a-", "b+", "b-", "c+", "c-", "d+", "d-"]
    await stop(worker)


async def test_a_call_from_inside_a_job_runs_at_once() -> None:
    recorder = Recorder()
    log: list[str] = []

    async def outer() -> None:
        log.append("outer+")
        await recorder.queue.call(step(log, "inner"))  # would wait forever if queued
        log.append("outer-")

    recorder.queue.submit(outer)
    recorder.queue.submit(step(log, "next"))
    worker = running(recorder.queue)
    await asyncio.wait_for(recorder.queue.call(step(log, "last")), TIMEOUT)
    assert log == ["outer+", "inner+", "inner-", "outer-", "next+", "next-", "last+", "last-"]
    await stop(worker)


async def test_a_full_queue_floods_once_and_drops_what_follows() -> None:
    recorder = Recorder(limit=2)
    log: list[str] = []
    for name in "abcd":
        recorder.queue.submit(step(log, name))
    assert recorder.floods == 1 and recorder.queue.flooded
    worker = running(recorder.queue)
    await asyncio.wait_for(recorder.queue.call(step(log, "z")), TIMEOUT)
    assert log == ["a+", "a-", "b+", "b-", "z+", "z-"]
    await stop(worker)


async def test_a_callers_job_fails_for_the_caller_only() -> None:
    recorder = Recorder()
    log: list[str] = []

    async def broken() -> None:
        raise ValueError("broken")

    worker = running(recorder.queue)
    with pytest.raises(ValueError, match="broken"):
        await asyncio.wait_for(recorder.queue.call(broken), TIMEOUT)
    await asyncio.wait_for(recorder.queue.call(step(log, "after")), TIMEOUT)
    assert log == ["after+", "after-"] and recorder.failures == []
    await stop(worker)


async def test_a_failing_job_nobody_waits_for_stops_the_worker() -> None:
    recorder = Recorder()
    log: list[str] = []
    error = ValueError("broken")

    async def broken() -> None:
        raise error

    recorder.queue.submit(broken)
    recorder.queue.submit(step(log, "never"))
    await asyncio.wait_for(recorder.queue.run(), TIMEOUT)  # returns
    assert recorder.failures == [error] and log == []


async def test_a_job_ending_the_connection_stops_the_worker() -> None:
    recorder = Recorder()

    async def gone() -> None:
        raise SessionClosed("gone")

    worker = running(recorder.queue)
    with pytest.raises(SessionClosed, match="gone"):
        await asyncio.wait_for(recorder.queue.call(gone), TIMEOUT)
    await asyncio.wait_for(worker, TIMEOUT)  # returned: no failure to report
    assert recorder.failures == []


async def test_closing_fails_the_waiting_callers_and_later_calls() -> None:
    recorder = Recorder()
    log: list[str] = []
    waiting = asyncio.get_running_loop().create_task(recorder.queue.call(step(log, "a")))
    await asyncio.sleep(0)  # queued, waiting for a worker
    recorder.queue.close()
    with pytest.raises(SessionClosed):
        await asyncio.wait_for(waiting, TIMEOUT)
    with pytest.raises(SessionClosed):
        await recorder.queue.call(step(log, "b"))
    assert log == []


async def test_a_caller_that_gave_up_has_its_job_skipped() -> None:
    recorder = Recorder()
    log: list[str] = []
    waiting = asyncio.get_running_loop().create_task(recorder.queue.call(step(log, "a")))
    await asyncio.sleep(0)  # queued, waiting for a worker
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    worker = running(recorder.queue)
    await asyncio.wait_for(recorder.queue.call(step(log, "b")), TIMEOUT)
    assert log == ["b+", "b-"]
    await stop(worker)
