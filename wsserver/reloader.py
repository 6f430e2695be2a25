"""``--reload``: run the server in a child process, restart it when files change.

For development, as uvicorn's ``--reload``: the reloader itself serves
nothing and never imports the application (its code would go stale, and a
syntax error in it must not stop the reloader).  It runs this command again
as one child, with the supervisor's helpers (``wsserver.supervisor``): the
child is a worker of one, in its own process group, that writes one byte
once it listens and stops by itself if the reloader disappears (so it is
never left behind, even when the reloader is killed).  ``watchfiles``
watches the directories; a change that passes ``ChangeFilter`` stops the
child gracefully (SIGTERM) and starts a new one.  A child that fails to
start, or exits later, is reported in one line and restarted at the next
change: fixing the file is enough.  SIGINT and SIGTERM stop the child and
then the reloader (a second one kills the child at once).

The port is reserved once with SO_REUSEPORT (as for ``--workers``), so that
``--port 0`` keeps the same port across restarts and no other program takes
it while the child restarts.  With ``--uds`` the child binds the socket file
itself; the old child removes it when it stops.

``watchfiles`` is in the ``standard`` extra; without it, ``--reload`` is one
error line naming the extra.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

from .server import ServerConfig
from .supervisor import (
    Worker,
    WorkerCommand,
    describe_exit,
    report_unbindable,
    reserve_port,
    start_worker,
    stop_workers,
    wait_ready,
)

__all__ = [
    "DEFAULT_EXCLUDES",
    "DEFAULT_INCLUDES",
    "ChangeFilter",
    "ReloadSettings",
    "run_reloader",
]

logger = logging.getLogger("wsserver")

#: What a change must touch to restart the server (uvicorn's default).
DEFAULT_INCLUDES: tuple[str, ...] = ("*.py",)
#: What never restarts it, even when included (uvicorn's default): hidden
#: files, compiled Python, editors' swap and backup files.
DEFAULT_EXCLUDES: tuple[str, ...] = (".*", ".py[cod]", ".sw.*", "~*")
#: The watcher's debounce, in milliseconds: an editor saving a file in
#: several steps (write a temporary file, rename it) restarts once.
_DEBOUNCE_MS = 200


@dataclass(frozen=True)
class ReloadSettings:
    """What ``--reload`` watches.

    Attributes:
        dirs: directories watched, recursively (``--reload-dir``; default the
            application's directory).
        includes: globs a changed file must match (``--reload-include``).
        excludes: globs that rule a changed file out (``--reload-exclude``).
    """

    dirs: tuple[str, ...]
    includes: tuple[str, ...] = DEFAULT_INCLUDES
    excludes: tuple[str, ...] = DEFAULT_EXCLUDES

    def __post_init__(self) -> None:
        if not self.dirs:
            raise ValueError("--reload needs at least one directory to watch")
        for directory in self.dirs:
            if not os.path.isdir(directory):
                raise ValueError(f"--reload-dir {directory}: not a directory")


def _matches(path: PurePath, patterns: Sequence[str]) -> bool:
    # A glob matches the file name ("*.py") or the end of the path
    # ("templates/*.html").
    return any(fnmatch.fnmatchcase(path.name, p) or path.match(p) for p in patterns)


class ChangeFilter:
    """Which changed paths restart the server.

    ``ignore`` first (watchfiles' ``DefaultFilter`` in practice: ``.git``,
    ``__pycache__``, virtualenvs...), then the path must match an include
    glob and no exclude glob.
    """

    def __init__(
        self,
        includes: Sequence[str],
        excludes: Sequence[str],
        ignore: Callable[[Any, str], bool] | None = None,
    ) -> None:
        self.includes = tuple(includes)
        self.excludes = tuple(excludes)
        self.ignore = ignore

    def __call__(self, change: Any, path: str) -> bool:
        if self.ignore is not None and not self.ignore(change, path):
            return False
        pure = PurePath(path)
        return _matches(pure, self.includes) and not _matches(pure, self.excludes)


def run_reloader(config: ServerConfig, settings: ReloadSettings, command: WorkerCommand) -> int:
    """Serve through a reloaded child until SIGINT or SIGTERM; the exit status.

    ``command(port)`` is the child's command line.  Errors are one
    ``wsserver: error:`` line on stderr: status 2 when watchfiles is
    missing, 1 when the port cannot be bound.
    """
    try:
        import watchfiles
    except ImportError:
        print(
            "wsserver: error: --reload needs watchfiles: pip install 'wsserver[standard]'",
            file=sys.stderr,
        )
        return 2
    changes = ChangeFilter(settings.includes, settings.excludes, watchfiles.DefaultFilter())
    reserved: socket.socket | None = None
    port = config.port
    if config.uds is None:
        try:
            reserved, port = reserve_port(config)
        except OSError as error:
            report_unbindable(config, error)
            return 1
    try:
        return asyncio.run(_reload(command, port, config, settings, changes))
    finally:
        if reserved is not None:
            reserved.close()


async def _watch(
    settings: ReloadSettings,
    changes: ChangeFilter,
    stop: asyncio.Event,
    found: asyncio.Queue[list[str]],
) -> None:
    import watchfiles

    async for batch in watchfiles.awatch(
        *settings.dirs,
        watch_filter=changes,
        stop_event=stop,
        debounce=_DEBOUNCE_MS,
    ):
        found.put_nowait(sorted(path for _, path in batch))


async def _reload(
    command: WorkerCommand,
    port: int,
    config: ServerConfig,
    settings: ReloadSettings,
    changes: ChangeFilter,
) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals = 0
    child: Worker | None = None

    def on_signal() -> None:
        nonlocal signals
        signals += 1
        stop.set()
        if signals > 1 and child is not None and child.process.returncode is None:
            # A second Ctrl-C: do not wait for the grace period.
            child.process.kill()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    found: asyncio.Queue[list[str]] = asyncio.Queue()
    watcher = asyncio.create_task(_watch(settings, changes, stop, found))
    logger.info(
        "reloader (pid %d): watching %s for %s",
        os.getpid(),
        ", ".join(settings.dirs),
        ", ".join(settings.includes),
    )
    status = 0
    try:
        child = await _start(command, port, stop)
        while not stop.is_set():
            waits: dict[asyncio.Task[Any], str] = {
                asyncio.create_task(stop.wait()): "stop",
                asyncio.create_task(found.get()): "change",
                watcher: "watcher",
            }
            if child.process.returncode is None:
                waits[child.exited] = "exit"
            done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            for task in waits:
                if task is not watcher and task is not child.exited and task not in done:
                    task.cancel()
            reasons = {waits[task]: task for task in done}
            if stop.is_set():
                break
            if "watcher" in reasons:
                # The watcher failed (a directory removed...): say why, stop.
                error = watcher.exception() or "it ended"
                print(f"wsserver: error: --reload: the watcher stopped: {error}", file=sys.stderr)
                status = 1
                break
            if "change" in reasons:
                paths = reasons["change"].result()
                shown = ", ".join(os.path.relpath(p) for p in paths[:3])
                more = f" and {len(paths) - 3} more" if len(paths) > 3 else ""
                logger.warning("changes in %s%s: restarting the server", shown, more)
                await stop_workers([child], config)
                child = await _start(command, port, stop)
            elif "exit" in reasons:
                logger.error(
                    "the server (pid %d) exited with status %d; restarting it at the next change",
                    child.process.pid,
                    child.exited.result(),
                )
    finally:
        stop.set()
        if child is not None:
            # A child that had already exited was reported then; only one
            # that does not stop cleanly now fails the reloader.
            running = child.process.returncode is None
            stopped = await stop_workers([child], config)
            if running:
                status = max(status, stopped)
        if not watcher.done():
            watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await watcher
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    return status


async def _start(command: WorkerCommand, port: int, stop: asyncio.Event) -> Worker:
    """A new child; its failure to start is logged, not fatal: a fix restarts it."""
    child = await start_worker(command, 1, port)
    if not await wait_ready(child, stop):
        logger.error(
            "the server (pid %d) %s; restarting it at the next change",
            child.process.pid,
            describe_exit(child),
        )
    return child
