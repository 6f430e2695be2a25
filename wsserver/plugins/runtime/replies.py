"""Requests waiting for their answers: one future per request id.

A plugin that asks the browser (or another node) something sends a message
carrying an id, and waits for the answer carrying the same id.
``PendingReplies`` is that bookkeeping, for the JS bridge
(``execute_js(..., wait_for_result=True)``) and the channel manager
(``send_and_wait``, to a page or through another node)::

    replies: PendingReplies[int] = PendingReplies(logger=logger, label="conn 7: JS answer")

    async def send() -> None:
        await session.send("js", "exec", id=call_id, code=code)

    value = await replies.request(call_id, send, timeout=5, on_timeout=lambda: TimeoutError())

    # in the handler of the answers:
    if not replies.expects(call_id):
        replies.ignore(call_id)            # late, or never asked: counted, logged
    elif ok:
        replies.resolve(call_id, value)
    else:
        replies.reject(call_id, SomeError(...))

    # when the connection ends:
    replies.fail_all(lambda: SomeError("the connection closed"))

Every request ends with its id forgotten, whatever happens (answer,
timeout, cancellation, a send that fails), so nothing stays pending; the
counts (``pending_count``, ``unknown_answers``) let tests check it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Generic, TypeVar

__all__ = ["PendingReplies"]

_K = TypeVar("_K", bound=Hashable)

# How much of a peer-supplied id an "ignored" log line shows: ids are short
# when they are ours, and a peer must not write long lines into the log.
_MAX_LOGGED_ID = 80


class PendingReplies(Generic[_K]):
    """The requests of one connection (or one node) waiting for an answer.

    Args:
        logger: where answers nobody waits for are logged (one line each).
        label: how that line names the answer: ``"conn 7: JS answer"``
            gives ``"conn 7: JS answer for unknown id 1 ignored"``.
        level: the level of that line.
    """

    def __init__(self, *, logger: logging.Logger, label: str, level: int = logging.INFO) -> None:
        self._logger = logger
        self._label = label
        self._level = level
        self._futures: dict[_K, asyncio.Future[Any]] = {}
        self._unknown_answers = 0

    def __repr__(self) -> str:
        return f"<PendingReplies {self._label!r} pending={len(self._futures)}>"

    @property
    def pending_count(self) -> int:
        """Requests waiting for their answer."""
        return len(self._futures)

    @property
    def unknown_answers(self) -> int:
        """Answers received for ids not (or no longer) waited for."""
        return self._unknown_answers

    async def request(
        self,
        key: _K,
        send: Callable[[], Awaitable[object]],
        *,
        timeout: float | None,
        on_timeout: Callable[[], BaseException],
        on_abandon: Callable[[], None] | None = None,
    ) -> Any:
        """Wait for ``key``'s answer after ``send()`` sent the question.

        One deadline covers both the sending (which may wait for a slow
        reader) and the answer.

        Args:
            key: the request's id; unique among the pending ones.
            send: sends the question; what it raises ends the request.
            timeout: seconds for sending and answering; ``None``: no limit
                (``fail_all`` still ends the wait when the connection does).
            on_timeout: makes the exception raised when the deadline passes.
            on_abandon: called when the request ends without an answer
                (timed out, cancelled, or its ``send`` failed), to tell the
                other side to stop working on it.

        Returns:
            The value given to ``resolve``.

        Raises:
            ValueError: ``key`` is already pending.
            The error given to ``reject`` or made by ``fail_all``'s factory,
            ``on_timeout()``'s, or whatever ``send`` raises.
        """
        if key in self._futures:
            raise ValueError(f"a request with id {key!r} is already pending")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._futures[key] = future
        try:
            async with asyncio.timeout(timeout):
                await send()
                return await future
        except TimeoutError:
            raise on_timeout() from None
        finally:
            if self._futures.get(key) is future:
                del self._futures[key]
            if future.done() and not future.cancelled():
                # Mark a failure set while we were not awaiting (sending
                # failed, or we were cancelled) as retrieved, so that asyncio
                # does not log "exception was never retrieved".
                future.exception()
            else:
                future.cancel()
                if on_abandon is not None:
                    on_abandon()

    def expects(self, key: _K) -> bool:
        """Whether an answer for ``key`` would reach a waiting request."""
        future = self._futures.get(key)
        return future is not None and not future.done()

    def resolve(self, key: _K, value: Any) -> bool:
        """Answer ``key`` with ``value``; ``ignore`` it when nobody waits.

        Returns:
            Whether a request got it.
        """
        if not self.expects(key):
            self.ignore(key)
            return False
        self._futures[key].set_result(value)
        return True

    def reject(self, key: _K, error: BaseException) -> bool:
        """Fail ``key``'s request with ``error``; ``ignore`` it when nobody waits.

        Returns:
            Whether a request got it.
        """
        if not self.expects(key):
            self.ignore(key)
            return False
        self._futures[key].set_exception(error)
        return True

    def ignore(self, key: _K) -> None:
        """Count and log an answer nobody waits for (late, or never asked)."""
        self._unknown_answers += 1
        shown = repr(key)
        if len(shown) > _MAX_LOGGED_ID:
            shown = shown[: _MAX_LOGGED_ID - 3] + "..."
        self._logger.log(self._level, "%s for unknown id %s ignored", self._label, shown)

    def fail_all(self, make_error: Callable[[], BaseException]) -> int:
        """Fail every pending request at once, each with a new ``make_error()``.

        For the end of the connection (or of the link to the other nodes):
        nobody waits for an answer that cannot come.  The requests are
        forgotten at once.

        Returns:
            How many requests were failed.
        """
        futures, self._futures = self._futures, {}
        failed = 0
        for future in futures.values():
            if not future.done():
                future.set_exception(make_error())
                failed += 1
        return failed
