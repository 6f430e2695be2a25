"""Helpers for the channel manager's tests (not a test module).

- ``RedisServer``: a real ``redis-server`` (Debian's) on loopback, on a free
  port, in a temporary directory, without persistence; it can be stopped and
  started again on the same port (the outage tests);
- ``serve_manager``: an ``App`` with a ``ChannelManager`` installed, served
  on a free port (``connected``: with one client; ``two_nodes``: two
  managers joined by a ``Hub``, each served);
- ``ChannelClient``: a WebSocket client that speaks the runtime's and the
  channel manager's messages, without a browser;
- ``NodeProcess``: ``python -m wsserver run`` of ``_node_app`` (or of an
  example), a server in a process of its own, for the cross-process tests;
- ``chat_between_two_pages``: the chat example driven in two browser pages.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from wsserver.plugins.channels import ChannelManager, ChannelView, Hub, InProcessBackend
from wsserver.protocol import ProtocolSettings
from wsserver.server import App, Response, Server, ServerConfig, WebSocket

from .._browser import WAIT

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page

#: Every wait is bounded by this, so that a bug fails quickly.
TIMEOUT = 5.0
ROOT = Path(__file__).resolve().parents[3]
REDIS_SERVER = "/usr/bin/redis-server"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def find_redis_server() -> str | None:
    """Debian's redis-server (or one on PATH)."""
    if os.access(REDIS_SERVER, os.X_OK):
        return REDIS_SERVER
    return shutil.which("redis-server")


class RedisServer:
    """One redis-server process on 127.0.0.1.

    Args:
        executable: the redis-server binary.
        directory: its working directory (a temporary one).
        port: the port (default: a free one).
        persistent: keep the data across a stop (append-only file, written
            before each reply), as a production Redis with persistence does.
        cluster_port: with it, a Redis Cluster node (its cluster bus on
            that port); see ``redis_cluster``.
    """

    def __init__(
        self,
        executable: str,
        directory: Path,
        port: int | None = None,
        *,
        persistent: bool = False,
        cluster_port: int | None = None,
    ) -> None:
        self.persistent = persistent
        self.cluster_port = cluster_port
        self.executable = executable
        self.directory = directory
        self.port = port if port is not None else free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start it and wait until it answers PING."""
        assert self.process is None, "already running"
        self.process = subprocess.Popen(
            [
                self.executable,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                # Persistent: every write on disk before it is acknowledged,
                # so a SIGKILL loses nothing (a Redis that keeps its data).
                "yes" if self.persistent else "no",
                "--appendfsync",
                "always",
                "--dir",
                str(self.directory),
                "--daemonize",
                "no",
                "--loglevel",
                "warning",
                *self._cluster_args(),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + TIMEOUT
        while True:
            if self.process.poll() is not None:
                err = self.process.stderr.read() if self.process.stderr else b""
                self.process = None
                raise RuntimeError(f"redis-server exited at start: {err.decode(errors='replace')}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"redis-server did not answer on port {self.port}")
            time.sleep(0.02)

    def _cluster_args(self) -> list[str]:
        if self.cluster_port is None:
            return []
        return [
            "--cluster-enabled",
            "yes",
            "--cluster-port",
            str(self.cluster_port),
            "--cluster-config-file",
            f"nodes-{self.port}.conf",
        ]

    def stop(self) -> None:
        """Stop it (SIGKILL: an outage, not a maintenance window)."""
        process, self.process = self.process, None
        if process is None:
            return
        process.kill()
        process.wait(TIMEOUT)
        if process.stderr is not None:
            process.stderr.close()

    def command(self, *args: str) -> bytes:
        """Run one command with the inline protocol; the raw reply."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=TIMEOUT) as sock:
            sock.sendall(" ".join(args).encode() + b"\r\n")
            return sock.recv(65536)

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


@contextmanager
def redis_cluster(executable: str, directory: Path, nodes: int = 3) -> Iterator[list[int]]:
    """A Redis Cluster of ``nodes`` masters on loopback (``redis-cli --cluster
    create``), each a ``RedisServer`` in its own folder; yields their ports."""
    servers: list[RedisServer] = []
    try:
        for index in range(nodes):
            folder = directory / f"node{index}"
            folder.mkdir()
            server = RedisServer(executable, folder, cluster_port=free_port())
            servers.append(server)
            server.start()
        cli = str(Path(executable).with_name("redis-cli"))
        subprocess.run(
            [cli, "--cluster", "create", *(f"127.0.0.1:{s.port}" for s in servers),
             "--cluster-replicas", "0", "--cluster-yes"],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while not all(b"cluster_state:ok" in s.command("CLUSTER", "INFO") for s in servers):
            assert time.monotonic() < deadline, "the cluster did not reach cluster_state:ok"
            time.sleep(0.05)
        yield [s.port for s in servers]
    finally:
        for server in servers:
            server.stop()


async def wait_until(predicate: Callable[[], bool], timeout: float = TIMEOUT) -> None:
    """Poll ``predicate`` until it holds."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


class RecordingBackend(InProcessBackend):
    """An ``InProcessBackend`` that counts its starts and keeps what it publishes."""

    def __init__(self, hub: Hub | None = None, *, node_id: str | None = None) -> None:
        super().__init__(hub, node_id=node_id)
        self.starts = 0
        self.closes = 0
        self.published: list[tuple[str, dict[str, Any]]] = []

    async def start(self, *args: Any, **kwargs: Any) -> None:
        self.starts += 1
        await asyncio.sleep(0)  # concurrent callers meet here
        await super().start(*args, **kwargs)

    async def close(self) -> None:
        self.closes += 1
        await super().close()

    async def publish(
        self, subject: str, payload: Mapping[str, Any], *, wait: bool = False
    ) -> int | None:
        self.published.append((subject, dict(payload)))
        return await super().publish(subject, payload, wait=wait)


@asynccontextmanager
async def serve_manager(
    manager: ChannelManager,
    *,
    view: type[ChannelView] | None = None,
    app: App | None = None,
    **config: Any,
) -> AsyncIterator[Server]:
    """Serve ``manager`` at /ws on a free port; close both on exit."""
    if app is None:
        app = App()
    manager.install(app, "/ws", view=view)
    config.setdefault("ping_interval", None)
    server = Server(app, ServerConfig(port=0, **config))
    await server.start()
    try:
        yield server
    finally:
        await server.shutdown()
        await manager.close()


class ChannelClient:
    """A client of the channels protocol over the websockets library.

    ``init`` is the ``ch/init`` message; ``inbox`` holds every other
    message received, decoded, for ``next``.
    """

    def __init__(self, connection: ClientConnection, init: dict[str, Any]) -> None:
        self.connection = connection
        self.init = init
        self.inbox: list[dict[str, Any]] = []
        self._requests = 0

    @property
    def channel(self) -> str:
        return str(self.init["channel"])

    @classmethod
    async def connect(
        cls,
        port: int,
        path: str = "/ws",
        *,
        ready: bool = True,
        positions: dict[str, Any] | None = None,
        **options: Any,
    ) -> ChannelClient:
        """Connect, say ``ch/ready`` (the page's channels module would), get ``ch/init``.

        ``positions`` go in ``ready`` as ``pos``, as channels.js sends those
        it reached before reconnecting.
        """
        connection = await connect(f"ws://127.0.0.1:{port}{path}", **options)
        try:
            first = json.loads(await asyncio.wait_for(connection.recv(), TIMEOUT))
            assert (first["p"], first["k"]) == ("rt", "init"), first
            if ready:
                fields = {} if positions is None else {"pos": positions}
                await connection.send(json.dumps({"p": "ch", "k": "ready", **fields}))
            second = json.loads(await asyncio.wait_for(connection.recv(), TIMEOUT))
            assert (second["p"], second["k"]) == ("ch", "init"), second
        except BaseException:
            await connection.close()
            raise
        return cls(connection, second)

    async def send(self, message_kind: str, /, **fields: Any) -> None:
        """Send ``{"p": "ch", "k": message_kind, ...fields}``."""
        await self.connection.send(json.dumps({"p": "ch", "k": message_kind, **fields}))

    async def next(
        self,
        kind: str = "msg",
        predicate: Callable[[dict[str, Any]], bool] | None = None,
        timeout: float = TIMEOUT,
    ) -> dict[str, Any]:
        """The next ch message of ``kind`` (and matching ``predicate``)."""
        async with asyncio.timeout(timeout):
            while True:
                for message in self.inbox:
                    if message.get("k") == kind and (predicate is None or predicate(message)):
                        self.inbox.remove(message)
                        return message
                self.inbox.append(json.loads(await self.connection.recv()))

    async def nothing(self, kind: str = "msg", wait: float = 0.2) -> None:
        """Assert that no message of ``kind`` arrives within ``wait`` seconds."""
        try:
            message = await self.next(kind, timeout=wait)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected message {message}")

    async def request(self, kind: str, data: Any = None) -> dict[str, Any]:
        """A custom message with a reply channel; its ``ch/res`` answer."""
        self._requests += 1
        rchan = f"r{self._requests}"
        await self.send("custom", kind=kind, data=data, rchan=rchan)
        return await self.next("res", lambda m: m.get("response_for") == rchan)

    async def answer(self, data: Any = None) -> dict[str, Any]:
        """Wait for a request (``ch/msg`` with ``rchan``) and answer it with ``data``."""
        message = await self.next("msg", lambda m: "rchan" in m)
        await self.send("reply", response_for=message["rchan"], ok=True, data=data)
        return message

    async def close(self) -> None:
        await self.connection.close()

    async def __aenter__(self) -> ChannelClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


@asynccontextmanager
async def connected(
    manager: ChannelManager, **options: Any
) -> AsyncIterator[tuple[Server, ChannelClient]]:
    """``serve_manager(manager, **options)`` and one client connected to it."""
    async with serve_manager(manager, **options) as server:
        client = await ChannelClient.connect(server.port)
        try:
            yield server, client
        finally:
            await client.close()


def small_frames(limit: int = 65536) -> dict[str, Any]:
    """Server settings with a small message limit, so that chunking starts early."""
    return {"protocol": ProtocolSettings(max_message_size=limit)}


async def closed_with(client: ChannelClient) -> int | None:
    with pytest.raises(ConnectionClosed):
        while True:
            await asyncio.wait_for(client.connection.recv(), TIMEOUT)
    return client.connection.close_code


@asynccontextmanager
async def two_nodes(
    **options: Any,
) -> AsyncIterator[tuple[ChannelManager, ChannelManager, Server, Server]]:
    async def authenticate(websocket: WebSocket) -> Response | None:
        websocket.state.user_id = websocket.query_params.get("user")
        return None

    hub = Hub()
    a = ChannelManager(InProcessBackend(hub), **options)
    b = ChannelManager(InProcessBackend(hub), **options)
    async with (
        serve_manager(a, app=App(authenticate=authenticate)) as server_a,
        serve_manager(b, app=App(authenticate=authenticate)) as server_b,
    ):
        yield a, b, server_a, server_b


class NodeProcess:
    """``python -m wsserver run <target> --channels-backend <url>`` on a free port.

    The default target is ``_node_app``, a test application.
    """

    def __init__(
        self,
        backend_url: str,
        target: str = "tests.plugins.channels._node_app:app",
        *extra: str,
    ) -> None:
        self.backend_url = backend_url
        self.target = target
        self.extra = extra
        self.process: asyncio.subprocess.Process | None = None
        self.port = 0
        self.log: list[str] = []
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "wsserver",
            "run",
            self.target,
            "--port",
            "0",
            "--channels-backend",
            self.backend_url,
            "--ws-ping-interval",
            "none",
            *self.extra,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        assert self.process.stderr is not None
        async with asyncio.timeout(4 * TIMEOUT):
            while True:
                line = (await self.process.stderr.readline()).decode()
                assert line, f"the node exited before listening: {''.join(self.log)}"
                self.log.append(line)
                found = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
                if found:
                    self.port = int(found.group(1))
                    break
        self._reader = asyncio.create_task(self._read_log())

    async def _read_log(self) -> None:
        assert self.process is not None and self.process.stderr is not None
        while line := await self.process.stderr.readline():
            self.log.append(line.decode())

    async def stop(self) -> int:
        process = self.process
        if process is None:
            return 0
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(process.wait(), 4 * TIMEOUT)
        if self._reader is not None:
            await asyncio.wait_for(self._reader, TIMEOUT)
        return code

    async def __aenter__(self) -> NodeProcess:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


# ---------------------------------------------------------------------------
# The chat example in the browser
# ---------------------------------------------------------------------------


async def open_chat(browser: Browser, port: int, name: str) -> Page:
    context = await browser.new_context()
    page = await context.new_page()
    await page.goto(f"http://127.0.0.1:{port}/")
    await page.wait_for_selector("body[data-chat=ready]", timeout=WAIT * 2000)
    await page.fill("#name", name)
    await page.click("#join")
    await page.wait_for_selector("body[data-room=lobby]", timeout=WAIT * 1000)
    return page


async def texts(page: Page, selector: str) -> list[str]:
    found: list[str] = await page.eval_on_selector_all(
        selector, "(nodes) => nodes.map((n) => n.textContent)"
    )
    return found


async def chat_between_two_pages(browser: Browser, port_a: int, port_b: int) -> None:
    """Ann on ``port_a``, Bob on ``port_b``: notices, messages, escaping."""
    ann = await open_chat(browser, port_a, "Ann")
    bob = await open_chat(browser, port_b, "Bob")
    try:
        await ann.wait_for_function(
            "() => [...document.querySelectorAll('#messages .system')]"
            ".some((n) => n.textContent === 'Bob joined lobby')",
            timeout=WAIT * 1000,
        )
        await ann.fill("#text", "hello <b>Bob</b>")
        await ann.press("#text", "Enter")
        await bob.wait_for_selector("#messages .chat", timeout=WAIT * 1000)
        assert await texts(bob, "#messages .chat") == ["Ann: hello <b>Bob</b>"]
        assert await bob.evaluate("document.querySelectorAll('#messages .chat b b').length") == 0
        await bob.fill("#text", "hi Ann")
        await bob.click("#send")
        await ann.wait_for_function(
            "() => document.querySelectorAll('#messages .chat').length === 2", timeout=WAIT * 1000
        )
        assert await texts(ann, "#messages .chat") == ["Ann: hello <b>Bob</b>", "Bob: hi Ann"]
        # A refusal shows as an error.
        await bob.fill("#room", "Not A Room")
        await bob.click("#join")
        await bob.wait_for_function(
            "() => [...document.querySelectorAll('#messages .system')]"
            ".some((n) => n.textContent.startsWith('Error: a room name'))",
            timeout=WAIT * 1000,
        )
        # Bob closes his tab: Ann sees him leave.
        await bob.context.close()
        await ann.wait_for_function(
            "() => [...document.querySelectorAll('#messages .system')]"
            ".some((n) => n.textContent === 'Bob left lobby')",
            timeout=WAIT * 1000,
        )
    finally:
        await ann.context.close()
        if not bob.is_closed():
            await bob.context.close()
