"""Tests for wsserver.plugins.runtime.view: ``RuntimeView`` over a real server.

In memory (``wsserver.testing``: the real server and connection, wsserver's
client role on the other side), the client speaking the runtime's protocol
by hand, so that every message is visible.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest

from wsserver.client import ClientWebSocket
from wsserver.client import ConnectionClosed as ClientConnectionClosed
from wsserver.client import InvalidStatus as ClientInvalidStatus
from wsserver.plugins.runtime import RuntimeView, Session
from wsserver.server import App, WebSocket

from ..._live import TIMEOUT, in_memory


async def recv_json(client: ClientWebSocket) -> dict[str, Any]:
    message = await asyncio.wait_for(client.recv(), TIMEOUT)
    assert isinstance(message, str)
    result: dict[str, Any] = json.loads(message)
    return result


async def closed_with(client: ClientWebSocket) -> tuple[int | None, str | None]:
    with pytest.raises(ClientConnectionClosed):
        while True:
            await asyncio.wait_for(client.recv(), TIMEOUT)
    return client.close_code, client.close_reason


class Events:
    """What the hooks saw, for the test."""

    def __init__(self) -> None:
        self.log: list[str] = []
        self.started: asyncio.Queue[Session] = asyncio.Queue()
        self.ended: asyncio.Queue[Session] = asyncio.Queue()


def app_with(view: type[RuntimeView]) -> App:
    app = App()
    app.add_websocket_route("/ws", view)
    return app


async def test_init_comes_first_with_the_views_settings() -> None:
    class View(RuntimeView):
        max_message_size = 4096
        ping_interval = 2.5
        ping_timeout = 1.25

    async with in_memory(app_with(View)) as served, served.websocket_connect("/ws") as client:
        init = await recv_json(client)
        assert init["p"] == "rt" and init["k"] == "init"
        assert init["v"] == 1
        assert init["max_message_size"] == 4096
        assert init["ping_interval_ms"] == 2500
        assert init["ping_timeout_ms"] == 1250
        await client.send('{"p":"rt","k":"ping","n":1}')
        assert await recv_json(client) == {"p": "rt", "k": "pong", "n": 1}


async def test_hooks_run_in_order_and_the_start_hook_can_await_the_browser() -> None:
    events = Events()

    class View(RuntimeView):
        async def on_session_start(self, session: Session) -> None:
            assert self.session is session
            answer: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            session.on("demo", "answer", lambda message: answer.set_result(message["v"]))
            await session.send("demo", "question")
            # The receive loop runs beside this hook: the answer gets through.
            events.log.append(f"answer {await answer}")
            events.started.put_nowait(session)

        async def on_session_end(self, session: Session) -> None:
            events.log.append(f"end {session.close_code}")
            events.ended.put_nowait(session)

    async with in_memory(app_with(View)) as served:
        async with served.websocket_connect("/ws") as client:
            assert (await recv_json(client))["k"] == "init"
            assert (await recv_json(client))["k"] == "question"
            await client.send('{"p":"demo","k":"answer","v":42}')
            session = await asyncio.wait_for(events.started.get(), TIMEOUT)
        ended = await asyncio.wait_for(events.ended.get(), TIMEOUT)
        assert ended is session
        assert events.log == ["answer 42", "end 1000"]
        assert session.closed


async def test_a_long_start_hook_is_cancelled_when_the_connection_ends() -> None:
    events = Events()

    class View(RuntimeView):
        async def on_session_start(self, session: Session) -> None:
            events.started.put_nowait(session)
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                events.log.append("cancelled")
                raise

        async def on_session_end(self, session: Session) -> None:
            events.log.append("end")
            events.ended.put_nowait(session)

    async with in_memory(app_with(View)) as served:
        async with served.websocket_connect("/ws") as client:
            await recv_json(client)
            await asyncio.wait_for(events.started.get(), TIMEOUT)
        await asyncio.wait_for(events.ended.get(), TIMEOUT)
        assert events.log == ["cancelled", "end"]


async def test_a_failing_start_hook_closes_with_1011_and_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    events = Events()

    class View(RuntimeView):
        async def on_session_start(self, session: Session) -> None:
            raise LookupError("hook bug")

        async def on_session_end(self, session: Session) -> None:
            events.ended.put_nowait(session)

    with caplog.at_level(logging.ERROR, logger="wsserver.plugins.runtime"):
        async with in_memory(app_with(View)) as served, served.websocket_connect("/ws") as client:
            await recv_json(client)
            assert await closed_with(client) == (1011, "internal error")
            session = await asyncio.wait_for(events.ended.get(), TIMEOUT)
    assert session.close_code == 1011
    (record,) = [r for r in caplog.records if "on_session_start" in r.getMessage()]
    assert record.exc_info is not None and isinstance(record.exc_info[1], LookupError)


async def test_a_start_hook_failing_after_the_end_is_not_an_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    events = Events()

    class View(RuntimeView):
        async def on_session_start(self, session: Session) -> None:
            gone: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            session.add_close_callback(lambda s: gone.set_result(None))
            # Shielded from the cancellation at the end: the hook sees the
            # end first and fails, as an execute_js would.
            await asyncio.shield(gone)
            raise RuntimeError("page left")

        async def on_session_end(self, session: Session) -> None:
            events.ended.put_nowait(session)

    with caplog.at_level(logging.ERROR, logger="wsserver.plugins.runtime"):
        async with in_memory(app_with(View)) as served:
            async with served.websocket_connect("/ws") as client:
                await recv_json(client)
            await asyncio.wait_for(events.ended.get(), TIMEOUT)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_a_refused_connection_gets_no_session() -> None:
    events = Events()

    class View(RuntimeView):
        async def on_connect(self, websocket: WebSocket) -> None:
            await self.reject(401, "token required")

        async def on_session_start(self, session: Session) -> None:
            events.log.append("start")

        async def on_session_end(self, session: Session) -> None:
            events.log.append("end")

    async with in_memory(app_with(View)) as served:
        with pytest.raises(ClientInvalidStatus) as caught:
            await served.websocket_connect("/ws")
        assert caught.value.status == 401
    assert events.log == []


async def test_bad_input_ends_the_session_with_its_close_code() -> None:
    events = Events()

    class View(RuntimeView):
        max_message_size = 64

        async def on_session_end(self, session: Session) -> None:
            events.ended.put_nowait(session)

    cases: list[tuple[str | bytes, int]] = [
        ("{oops", 1007),
        (b"\x00", 1003),
        ('{"p":"rt","k":"ping","pad":"' + "x" * 64 + '"}', 1009),
    ]
    async with in_memory(app_with(View)) as served:
        for payload, code in cases:
            async with served.websocket_connect("/ws") as client:
                await recv_json(client)
                await client.send(payload)
                assert (await closed_with(client))[0] == code
            session = await asyncio.wait_for(events.ended.get(), TIMEOUT)
            assert session.close_code == code


async def test_create_session_can_be_overridden() -> None:
    events = Events()

    class View(RuntimeView):
        def create_session(self, websocket: WebSocket) -> Session:
            session = super().create_session(websocket)
            session.on("demo", "x", lambda message: events.log.append(message.kind))
            return session

        async def on_session_end(self, session: Session) -> None:
            events.ended.put_nowait(session)

    async with in_memory(app_with(View)) as served:
        async with served.websocket_connect("/ws") as client:
            await recv_json(client)
            await client.send('{"p":"demo","k":"x"}')
            await client.send('{"p":"rt","k":"ping","n":2}')
            assert (await recv_json(client))["k"] == "pong"
        await asyncio.wait_for(events.ended.get(), TIMEOUT)
    assert events.log == ["x"]


async def test_a_view_without_hooks_just_runs_the_session() -> None:
    async with (
        in_memory(app_with(RuntimeView)) as served,
        served.websocket_connect("/ws") as client,
    ):
        assert (await recv_json(client))["k"] == "init"
        await client.send('{"p":"rt","k":"ping","n":3}')
        assert await recv_json(client) == {"p": "rt", "k": "pong", "n": 3}
