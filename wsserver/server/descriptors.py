"""One log line per interval when the listener runs out of file descriptors.

When ``accept()`` fails with EMFILE (or ENFILE, ENOBUFS, ENOMEM), asyncio's
listener logs "socket.accept() out of system resource" with a traceback,
stops accepting for a second and tries again.  It logs once per failed
``accept()`` of its backlog loop, so a connection flood past the
descriptor limit writes thousands of tracebacks a second: the log fills,
and formatting them takes the CPU the server needs to serve the
connections it already holds and to free their descriptors.

``limit_accept_failure_logs()`` puts a filter on the ``asyncio`` logger that
lets the first such record of every ``ACCEPT_FAILURE_LOG_INTERVAL`` through,
without its traceback (the cause is the errno, already in the message) and
with the number of failures suppressed since the last one; every other
asyncio record passes untouched.
"""

from __future__ import annotations

import logging
import time

__all__ = ["ACCEPT_FAILURE_LOG_INTERVAL", "AcceptFailureFilter", "limit_accept_failure_logs"]

#: Seconds between two logged accept failures: often enough to see that the
#: flood goes on, rarely enough that logging it costs nothing.
ACCEPT_FAILURE_LOG_INTERVAL = 10.0

#: The start of the message asyncio logs (asyncio/selector_events.py).
_ACCEPT_FAILURE = "socket.accept() out of system resource"


class AcceptFailureFilter(logging.Filter):
    """Lets one accept-failure record an interval through, shortened."""

    def __init__(self, interval: float = ACCEPT_FAILURE_LOG_INTERVAL) -> None:
        super().__init__()
        self.interval = interval
        self.suppressed = 0
        self._next_log = float("-inf")

    def filter(self, record: logging.LogRecord) -> bool:
        if not (isinstance(record.msg, str) and record.msg.startswith(_ACCEPT_FAILURE)):
            return True
        now = time.monotonic()
        if now < self._next_log:
            self.suppressed += 1
            return False
        self._next_log = now + self.interval
        error = record.exc_info[1] if record.exc_info else None
        record.msg = (
            f"{_ACCEPT_FAILURE}: {error or 'no descriptor'}; new connections wait "
            f"(accept retried every second; {self.suppressed} more failures not logged, "
            f"at most one line per {self.interval:g} s)"
        )
        record.args = None
        record.exc_info = None
        record.exc_text = None
        self.suppressed = 0
        return True


def limit_accept_failure_logs() -> None:
    """Install ``AcceptFailureFilter`` on the ``asyncio`` logger, once per process."""
    asyncio_logger = logging.getLogger("asyncio")
    if not any(isinstance(f, AcceptFailureFilter) for f in asyncio_logger.filters):
        asyncio_logger.addFilter(AcceptFailureFilter())
