"""Tests for wsserver.plugins.runtime.replies: requests waiting for answers.

Every way a request ends (answered, failed, timed out, cancelled, its send
failing, the connection ending) leaves nothing pending; answers nobody waits
for are counted and logged, one line each; ``on_abandon`` runs exactly when
the request ended unanswered.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from typing import Any

import pytest

from wsserver.plugins.runtime.replies import PendingReplies

logger = logging.getLogger("tests.replies")


class Refused(Exception):
    """An answer that is an error."""


def replies(level: int = logging.INFO) -> PendingReplies[int]:
    return PendingReplies(logger=logger, label="conn 3: answer", level=level)


async def sent() -> None:
    """A send that succeeds at once."""


def timed_out() -> TimeoutError:
    return TimeoutError("no answer in time")


async def next_turns(count: int = 3) -> None:
    for _ in range(count):
        await asyncio.sleep(0)


async def test_an_answer_reaches_its_request() -> None:
    pending = replies()
    call = asyncio.create_task(pending.request(1, sent, timeout=None, on_timeout=timed_out))
    await next_turns()
    assert pending.pending_count == 1 and pending.expects(1)
    assert pending.resolve(1, {"v": 2}) is True
    assert await call == {"v": 2}
    assert pending.pending_count == 0 and not pending.expects(1)
    assert pending.unknown_answers == 0


async def test_answers_may_come_in_any_order() -> None:
    pending = replies()
    calls = [
        asyncio.create_task(pending.request(key, sent, timeout=10, on_timeout=timed_out))
        for key in (1, 2, 3)
    ]
    await next_turns()
    assert pending.pending_count == 3
    pending.resolve(3, "three")
    pending.reject(1, Refused("one"))
    pending.resolve(2, "two")
    outcomes = await asyncio.gather(*calls, return_exceptions=True)
    assert outcomes[1:] == ["two", "three"]
    assert isinstance(outcomes[0], Refused) and str(outcomes[0]) == "one"
    assert pending.pending_count == 0


async def test_a_rejected_request_raises_the_error() -> None:
    pending = replies()
    call = asyncio.create_task(pending.request(5, sent, timeout=10, on_timeout=timed_out))
    await next_turns()
    error = Refused("no")
    assert pending.reject(5, error) is True
    with pytest.raises(Refused) as caught:
        await call
    assert caught.value is error
    assert pending.pending_count == 0


async def test_a_timeout_raises_on_timeouts_error_and_abandons_the_request(
    caplog: pytest.LogCaptureFixture,
) -> None:
    pending = replies()
    abandoned: list[int] = []
    with pytest.raises(TimeoutError, match="no answer in time") as caught:
        await pending.request(
            7, sent, timeout=0.05, on_timeout=timed_out, on_abandon=lambda: abandoned.append(7)
        )
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    assert abandoned == [7]
    assert pending.pending_count == 0
    # The late answer, and one never asked for: ignored, counted, logged.
    with caplog.at_level(logging.INFO, logger="tests.replies"):
        assert pending.resolve(7, "late") is False
        assert pending.reject(99, Refused("never asked")) is False
    assert pending.unknown_answers == 2
    assert [r.getMessage() for r in caplog.records] == [
        "conn 3: answer for unknown id 7 ignored",
        "conn 3: answer for unknown id 99 ignored",
    ]
    assert {r.levelno for r in caplog.records} == {logging.INFO}


async def test_the_deadline_covers_the_send_too() -> None:
    pending = replies()
    abandoned: list[str] = []

    async def slow_send() -> None:
        await asyncio.sleep(10)  # a slow reader: the send waits

    with pytest.raises(TimeoutError):
        await pending.request(
            1,
            slow_send,
            timeout=0.05,
            on_timeout=timed_out,
            on_abandon=lambda: abandoned.append("x"),
        )
    assert abandoned == ["x"] and pending.pending_count == 0


async def test_ignored_answers_are_logged_at_the_given_level_with_a_bounded_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    pending: PendingReplies[str] = PendingReplies(
        logger=logger, label="conn 4: reply", level=logging.DEBUG
    )
    with caplog.at_level(logging.DEBUG, logger="tests.replies"):
        pending.ignore("x" * 10_000)
    (record,) = caplog.records
    assert record.levelno == logging.DEBUG
    message = record.getMessage()
    assert message.startswith("conn 4: reply for unknown id 'xxx")
    assert message.endswith("... ignored")
    assert len(message) < 150
    assert pending.unknown_answers == 1


async def test_fail_all_fails_every_pending_request_at_once() -> None:
    pending = replies()
    abandoned: list[int] = []
    calls = [
        asyncio.create_task(
            pending.request(
                key,
                sent,
                timeout=None if key == 1 else 60,
                on_timeout=timed_out,
                on_abandon=lambda: abandoned.append(1),
            )
        )
        for key in (1, 2, 3)
    ]
    await next_turns()
    assert pending.fail_all(lambda: Refused("the connection closed")) == 3
    assert pending.pending_count == 0  # forgotten at once
    outcomes = await asyncio.gather(*calls, return_exceptions=True)
    assert all(type(o) is Refused and str(o) == "the connection closed" for o in outcomes)
    assert len({id(o) for o in outcomes}) == 3  # one exception each
    assert abandoned == []  # they were answered: with an error
    # Nothing is pending any more; answers now are unknown ones.
    assert pending.fail_all(lambda: Refused("again")) == 0
    assert pending.resolve(2, "late") is False and pending.unknown_answers == 1


async def test_a_cancelled_request_leaves_nothing_pending_and_is_abandoned() -> None:
    pending = replies()
    abandoned: list[int] = []
    call = asyncio.create_task(
        pending.request(
            1, sent, timeout=60, on_timeout=timed_out, on_abandon=lambda: abandoned.append(1)
        )
    )
    await next_turns()
    assert pending.pending_count == 1
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    assert pending.pending_count == 0 and abandoned == [1]


async def test_a_send_that_fails_ends_the_request() -> None:
    pending = replies()
    abandoned: list[int] = []

    async def broken_send() -> None:
        raise ConnectionError("gone")

    with pytest.raises(ConnectionError, match="gone"):
        await pending.request(
            1,
            broken_send,
            timeout=None,
            on_timeout=timed_out,
            on_abandon=lambda: abandoned.append(1),
        )
    assert pending.pending_count == 0 and abandoned == [1]


async def test_a_failure_set_while_sending_is_not_reported_as_never_retrieved() -> None:
    loop = asyncio.get_running_loop()
    reported: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _, context: reported.append(context))
    try:
        pending = replies()
        gate = asyncio.Event()
        abandoned: list[int] = []

        async def slow_send() -> None:
            await gate.wait()
            raise ConnectionError("the send failed too")

        call = asyncio.create_task(
            pending.request(
                1,
                slow_send,
                timeout=None,
                on_timeout=timed_out,
                on_abandon=lambda: abandoned.append(1),
            )
        )
        await next_turns()
        pending.fail_all(lambda: Refused("closed"))  # while the send waits
        gate.set()
        with pytest.raises(ConnectionError):
            await call
        assert abandoned == []  # settled (with the failure): nothing to abandon
        del call
        gc.collect()
        await next_turns()
    finally:
        loop.set_exception_handler(previous)
    assert reported == []


async def test_ids_are_unique_among_pending_requests() -> None:
    pending = replies()
    first = asyncio.create_task(pending.request(1, sent, timeout=60, on_timeout=timed_out))
    await next_turns()
    with pytest.raises(ValueError, match="already pending"):
        await pending.request(1, sent, timeout=60, on_timeout=timed_out)
    assert pending.pending_count == 1  # the first one is untouched
    pending.resolve(1, "first")
    assert await first == "first"
    # Once it is over, the id may be used again.
    second = asyncio.create_task(pending.request(1, sent, timeout=60, on_timeout=timed_out))
    await next_turns()
    pending.resolve(1, "second")
    assert await second == "second"


async def test_a_second_answer_for_the_same_id_is_unknown() -> None:
    pending = replies()
    call = asyncio.create_task(pending.request(1, sent, timeout=60, on_timeout=timed_out))
    await next_turns()
    assert pending.resolve(1, "first") is True
    assert pending.resolve(1, "again") is False  # settled, not yet awaited
    assert await call == "first"
    assert pending.unknown_answers == 1
    assert "pending=0" in repr(pending)
