"""Several worker processes on one port, and the supervisor that runs them.

``wsserver run --workers N`` (N > 1) runs a supervisor and N worker
processes that share one TCP port with SO_REUSEPORT, so that the kernel
spreads connections between them.  The command imports the application
first (to report errors once) and hands over to ``run_supervisor``, which
runs the start-up checks once for all the workers
(``wsserver.server.startup``), reserves the port (so that ``--port 0`` gives
every worker the same one), starts the workers with the command it is
given, and waits until each says it is listening; a worker that exits
before that makes the supervisor stop the others and exit with status 1.
SIGINT and SIGTERM are forwarded to every worker (once, as SIGTERM) for a
graceful shutdown; the supervisor exits 0 when they all did.  A worker that
crashes later is restarted.  Workers run in their own process group (a
terminal's Ctrl-C reaches the supervisor alone, which forwards it) and stop
by themselves if the supervisor disappears.

A worker learns that it is one from its environment: ``WORKER_ENV`` holds
its index and ``WORKER_FD_ENV`` its end of a socket pair to the supervisor
(``worker_link()``); ``serve_worker`` serves, writes one byte on the link
once listening, and shuts down when the link reaches end of file.

This module knows nothing of the command line: the command that starts a
worker comes from ``wsserver.cli``.  The reloader (``wsserver.reloader``)
runs its one child with the same helpers: ``reserve_port``,
``start_worker``, ``wait_ready`` and ``stop_workers``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .server import Application, Server, ServerConfig
from .server.startup import StartupContext, startup_warnings

#: Where the workers' metrics snapshots go (``wsserver.server.metrics``);
#: the same name, without importing prometheus_client when metrics are off.
METRICS_DIR_ENV = "WSSERVER_METRICS_DIR"

__all__ = [
    "WORKER_ENV",
    "WORKER_FD_ENV",
    "WORKER_START_TIMEOUT",
    "Worker",
    "WorkerCommand",
    "describe_exit",
    "report_unbindable",
    "reserve_port",
    "run_supervisor",
    "serve_worker",
    "start_worker",
    "stop_workers",
    "wait_ready",
    "worker_link",
]

logger = logging.getLogger("wsserver")

#: Set in a worker's environment: its index (1 to N).
WORKER_ENV = "WSSERVER_WORKER"
#: Set in a worker's environment: the file descriptor of its end of the
#: socket pair to the supervisor (it writes one byte once listening; end of
#: file means that the supervisor is gone).
WORKER_FD_ENV = "WSSERVER_WORKER_FD"
#: Seconds a worker may take from its start until it listens.
WORKER_START_TIMEOUT = 60.0
# Seconds added to shutdown_timeout before the supervisor kills a worker
# that has not finished its graceful shutdown.
_KILL_MARGIN = 5.0
# The byte a worker sends when it is listening.
_READY = b"R"

#: The command line of a worker, given the port every worker binds: it must
#: serve the same application with SO_REUSEPORT, in one process.
WorkerCommand = Callable[[int], Sequence[str]]


# ---------------------------------------------------------------------------
# The worker's side
# ---------------------------------------------------------------------------


def worker_link() -> int | None:
    """The link to the supervisor, if this process is a worker.

    Takes ``WORKER_FD_ENV`` out of the environment, so that processes the
    application starts do not believe they are workers too.
    """
    fd = os.environ.pop(WORKER_FD_ENV, None)
    return None if fd is None else int(fd)


async def serve_worker(app: Application, config: ServerConfig, fd: int) -> None:
    """A worker: serve, tell the supervisor when listening, stop with it."""
    loop = asyncio.get_running_loop()
    link = socket.socket(fileno=fd)
    link.setblocking(False)
    stop = asyncio.Event()
    server = Server(app, config)
    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)

    def supervisor_gone() -> None:
        try:
            data = link.recv(16)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            logger.warning("the supervisor is gone: shutting down")
            loop.remove_reader(link)
            stop.set()

    try:
        await server.start()
        await loop.sock_sendall(link, _READY)
        loop.add_reader(link, supervisor_gone)
        await stop.wait()
    finally:
        with contextlib.suppress(ValueError, OSError):
            loop.remove_reader(link)
        for sig in installed:
            loop.remove_signal_handler(sig)
        logger.info("shutting down")
        await server.shutdown()
        link.close()


# ---------------------------------------------------------------------------
# The supervisor
# ---------------------------------------------------------------------------


def run_supervisor(
    app: Application, config: ServerConfig, workers: int, worker_command: WorkerCommand
) -> int:
    """Run ``workers`` worker processes until SIGINT or SIGTERM; the exit status.

    ``app`` is what the workers will serve, for the start-up checks: the
    supervisor itself serves nothing.  Errors are one ``wsserver: error:``
    line on stderr: status 2 where SO_REUSEPORT is missing, 1 when the port
    cannot be bound or a worker fails to start.
    """
    for warning in startup_warnings(StartupContext(app=app, config=config, workers=workers)):
        print(f"wsserver: warning: {warning}", file=sys.stderr)
    if not hasattr(socket, "SO_REUSEPORT"):
        print("wsserver: error: --workers needs SO_REUSEPORT (Linux, BSD)", file=sys.stderr)
        return 2
    try:
        reserved, port = reserve_port(config)
    except OSError as error:
        report_unbindable(config, error)
        return 1
    metrics_dir = _metrics_directory(config)
    try:
        return asyncio.run(_supervise(worker_command, workers, port, config))
    finally:
        reserved.close()
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)


def _metrics_directory(config: ServerConfig) -> str | None:
    """With metrics on, where every worker writes its snapshot (``METRICS_DIR_ENV``).

    Any worker may be scraped (SO_REUSEPORT picks one); it answers with
    the figures of all, read from this directory (``wsserver.server.metrics``).
    A directory the environment already names is used and kept; otherwise
    a private one is made, and removed when the supervisor exits.

    Returns:
        The directory to remove at exit, if one was made.
    """
    if not config.metrics_path or os.environ.get(METRICS_DIR_ENV):
        return None
    directory = tempfile.mkdtemp(prefix="wsserver-metrics-")
    # Inherited by every worker (_start_worker copies the environment).
    os.environ[METRICS_DIR_ENV] = directory
    return directory


def report_unbindable(config: ServerConfig, error: OSError) -> None:
    """The one error line for a port that ``reserve_port`` could not bind."""
    where = f"{config.host}:{config.port}"
    print(f"wsserver: error: cannot listen on {where}: {error}", file=sys.stderr)


def reserve_port(config: ServerConfig) -> tuple[socket.socket, int]:
    """Bind (without listening) a SO_REUSEPORT socket: the workers' port.

    With ``port=0`` this picks the free port every worker then binds; the
    socket is held open so that no other program takes the port meanwhile.
    It never listens, so the kernel never hands it a connection.
    """
    family, kind, proto, _, address = socket.getaddrinfo(
        config.host, config.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    port: int = sock.getsockname()[1]
    return sock, port


@dataclass
class Worker:
    """One child process: its link, and tasks for its ready byte and its exit."""

    index: int
    process: asyncio.subprocess.Process
    link: socket.socket
    ready: asyncio.Task[bytes]
    exited: asyncio.Task[int]
    started: float = 0.0
    restarts: int = 0


async def start_worker(command: WorkerCommand, index: int, port: int) -> Worker:
    """Start ``command(port)`` as worker ``index``, in its own process group."""
    loop = asyncio.get_running_loop()
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    env = dict(os.environ)
    env[WORKER_ENV] = str(index)
    env[WORKER_FD_ENV] = str(theirs.fileno())
    program, *arguments = command(port)
    try:
        process = await asyncio.create_subprocess_exec(
            program,
            *arguments,
            stdin=subprocess.DEVNULL,
            env=env,
            pass_fds=(theirs.fileno(),),
            # Its own process group: a terminal's Ctrl-C reaches only the
            # supervisor, which forwards it once.
            process_group=0,
        )
    finally:
        theirs.close()
    return Worker(
        index,
        process,
        ours,
        asyncio.create_task(loop.sock_recv(ours, 1)),
        asyncio.create_task(process.wait()),
        started=loop.time(),
    )


async def wait_ready(worker: Worker, stop: asyncio.Event) -> bool:
    """Wait until ``worker`` listens; ``False`` if it exits (or hangs) first."""
    stopping = asyncio.create_task(stop.wait())
    try:
        done, _ = await asyncio.wait(
            {worker.ready, worker.exited, stopping},
            timeout=WORKER_START_TIMEOUT,
            return_when=asyncio.FIRST_COMPLETED,
        )
    finally:
        stopping.cancel()
    if worker.ready in done and worker.ready.result() == _READY:
        return True
    if stopping in done:
        return True  # not a start-up failure: we are stopping anyway
    if worker.exited not in done:
        # The worker closed its end before listening: its exit follows.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(worker.exited), 5.0)
    return False


def describe_exit(worker: Worker) -> str:
    """How a worker that did not start ended, for an error message."""
    if not worker.exited.done():
        return f"did not listen within {WORKER_START_TIMEOUT:g} s"
    code = worker.exited.result()
    if code < 0:
        return f"was killed by signal {-code}"
    return f"exited with status {code}"


async def _supervise(command: WorkerCommand, count: int, port: int, config: ServerConfig) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals = 0

    def on_signal() -> None:
        nonlocal signals
        signals += 1
        stop.set()
        if signals > 1:
            # A second Ctrl-C: do not wait for the grace period.
            for worker in workers.values():
                if worker.process.returncode is None:
                    worker.process.kill()

    workers: dict[int, Worker] = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    status = 0
    try:
        for index in range(1, count + 1):
            workers[index] = await start_worker(command, index, port)
        for worker in list(workers.values()):
            if not await wait_ready(worker, stop):
                print(
                    f"wsserver: error: worker {worker.index} (pid {worker.process.pid}) "
                    f"{describe_exit(worker)} during start-up",
                    file=sys.stderr,
                )
                status = 1
                stop.set()
                break
        if not stop.is_set():
            logger.info(
                "supervisor: %d workers listening on %s:%d (SO_REUSEPORT)",
                count,
                config.host,
                port,
            )
        while not stop.is_set():
            stopping = asyncio.create_task(stop.wait())
            exits = {worker.exited: worker for worker in workers.values()}
            done, _ = await asyncio.wait({stopping, *exits}, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            for task in done:
                crashed = exits.get(task)
                if crashed is None or stop.is_set():
                    continue
                logger.error(
                    "worker %d (pid %d) %s; restarting it (restart %d)",
                    crashed.index,
                    crashed.process.pid,
                    describe_exit(crashed),
                    crashed.restarts + 1,
                )
                crashed.link.close()
                # At most one restart a second: a worker that keeps crashing
                # must not make the supervisor spin.
                await asyncio.sleep(max(0.0, crashed.started + 1.0 - loop.time()))
                replacement = await start_worker(command, crashed.index, port)
                replacement.restarts = crashed.restarts + 1
                workers[crashed.index] = replacement
                if not await wait_ready(replacement, stop):
                    print(
                        f"wsserver: error: worker {replacement.index} (pid "
                        f"{replacement.process.pid}) {describe_exit(replacement)} "
                        "during start-up",
                        file=sys.stderr,
                    )
                    status = 1
                    stop.set()
    finally:
        status = max(status, await stop_workers(list(workers.values()), config))
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    return status


async def stop_workers(workers: list[Worker], config: ServerConfig) -> int:
    """SIGTERM every worker, wait for the graceful shutdowns, kill stragglers."""
    for worker in workers:
        if worker.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                worker.process.send_signal(signal.SIGTERM)
    grace = config.shutdown_timeout + config.close_timeout + _KILL_MARGIN
    exits = [worker.exited for worker in workers]
    _, late = await asyncio.wait(exits, timeout=grace)
    for worker in workers:
        if worker.exited in late:
            logger.error(
                "worker %d (pid %d) did not stop: killing it", worker.index, worker.process.pid
            )
            with contextlib.suppress(ProcessLookupError):
                worker.process.kill()
    if late:
        await asyncio.wait(late)
    status = 0
    for worker in workers:
        worker.ready.cancel()
        worker.link.close()
        if worker.exited.result() != 0:
            status = 1
    await asyncio.gather(*(worker.ready for worker in workers), return_exceptions=True)
    return status
