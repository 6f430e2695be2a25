"""The listener's accept failures: one short log line per interval."""

from __future__ import annotations

import errno
import logging
import sys

from wsserver.server.descriptors import AcceptFailureFilter, limit_accept_failure_logs


def accept_failure() -> logging.LogRecord:
    """A record as asyncio's default exception handler writes it on EMFILE."""
    error = OSError(errno.EMFILE, "Too many open files")
    try:
        raise error
    except OSError:
        exc_info = sys.exc_info()
    return logging.LogRecord(
        "asyncio",
        logging.ERROR,
        __file__,
        1,
        "socket.accept() out of system resource\nsocket: <TransportSocket fd=6>",
        None,
        exc_info,
    )


def test_the_first_failure_is_logged_short_and_the_rest_counted() -> None:
    quiet = AcceptFailureFilter(interval=3600)
    first = accept_failure()
    assert quiet.filter(first)
    assert first.exc_info is None and first.exc_text is None
    assert first.getMessage().startswith(
        "socket.accept() out of system resource: [Errno 24] Too many open files;"
    )
    assert [quiet.filter(accept_failure()) for _ in range(500)] == [False] * 500
    assert quiet.suppressed == 500


def test_after_the_interval_the_next_failure_says_how_many_were_dropped() -> None:
    quiet = AcceptFailureFilter(interval=3600)
    assert quiet.filter(accept_failure())
    assert not quiet.filter(accept_failure())
    assert not quiet.filter(accept_failure())
    quiet.interval = 0.0
    quiet._next_log = float("-inf")  # the interval has passed
    later = accept_failure()
    assert quiet.filter(later)
    assert "2 more failures not logged" in later.getMessage()
    assert quiet.suppressed == 0


def test_other_asyncio_records_pass_untouched() -> None:
    quiet = AcceptFailureFilter(interval=3600)
    assert quiet.filter(accept_failure())
    other = logging.LogRecord(
        "asyncio", logging.ERROR, __file__, 1, "Task was destroyed", None, None
    )
    assert quiet.filter(other)
    assert other.getMessage() == "Task was destroyed"


def test_installed_once_per_process() -> None:
    asyncio_logger = logging.getLogger("asyncio")
    before = list(asyncio_logger.filters)
    try:
        limit_accept_failure_logs()
        limit_accept_failure_logs()
        installed = [f for f in asyncio_logger.filters if isinstance(f, AcceptFailureFilter)]
        assert len(installed) == 1
    finally:
        asyncio_logger.filters[:] = before
