"""The pid file of ``wsserver run --pid-file``, and ``wsserver restart``'s signal.

``wsserver run --pid-file FILE`` writes the pid of the process to signal
(the supervisor with ``--workers``, else the one server process) into
``FILE`` once, before it serves, and removes it when it exits; workers never
write it.  ``wsserver restart --pid-file FILE`` (or ``wsserver restart
PID``) sends that process SIGHUP: a rolling restart of the workers, or for a
single process a shutdown with 1012 for its process manager to restart it
(see docs/operations.md).

The file is written whole or not at all (a temporary file renamed over
it), so that a ``restart`` racing a start never reads half a number.
"""

from __future__ import annotations

import contextlib
import os
import signal

__all__ = ["RESTART_SIGNAL", "read_pid_file", "remove_pid_file", "send_restart", "write_pid_file"]

#: The signal that asks for a restart: SIGHUP, as gunicorn and nginx use it.
RESTART_SIGNAL = signal.SIGHUP


def write_pid_file(path: str) -> None:
    """Write this process's pid (and a newline) to ``path``, atomically.

    Raises:
        OSError: the file cannot be written.
    """
    temporary = f"{path}.{os.getpid()}.tmp"
    try:
        with open(temporary, "w", encoding="ascii") as file:
            file.write(f"{os.getpid()}\n")
        os.replace(temporary, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def remove_pid_file(path: str) -> None:
    """Remove ``path`` if it still names this process (a newer run may own it)."""
    with contextlib.suppress(OSError, ValueError):
        if read_pid_file(path) == os.getpid():
            os.unlink(path)


def read_pid_file(path: str) -> int:
    """The pid in ``path``.

    Raises:
        OSError: the file cannot be read.
        ValueError: it does not hold one positive number.
    """
    with open(path, encoding="ascii", errors="replace") as file:
        text = file.read(64).strip()
    if not text.isdigit() or int(text) <= 0:
        raise ValueError(f"{path} does not hold a process id: {text[:20]!r}")
    return int(text)


def send_restart(pid: int) -> None:
    """Send ``RESTART_SIGNAL`` to ``pid``.

    Raises:
        ProcessLookupError: no such process (a stale pid file).
        PermissionError: the process belongs to another user.
    """
    os.kill(pid, RESTART_SIGNAL)
