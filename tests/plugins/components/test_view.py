"""Tests for wsserver.plugins.components.view: the pages' WebSocket endpoint,
over the real server in memory (``wsserver.testing``), wsserver's client role
speaking the browser's messages by hand."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from wsserver.client import ClientWebSocket
from wsserver.client import ConnectionClosed as ClientConnectionClosed
from wsserver.plugins.components import ComponentApp
from wsserver.plugins.components.component import render_tree
from wsserver.plugins.components.connection import PageConnection
from wsserver.plugins.components.vdom import count_nodes
from wsserver.plugins.components.view import PageView

from ..._live import TIMEOUT, http_get, in_memory
from ._harness import wait_until
from ._pages import Greeting

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(90)]


async def receive(client: ClientWebSocket) -> dict[str, Any]:
    message = await asyncio.wait_for(client.recv(), TIMEOUT)
    assert isinstance(message, str)
    result: dict[str, Any] = json.loads(message)
    return result


async def test_each_app_gets_a_view_with_its_session_settings() -> None:
    app = ComponentApp({"/": Greeting}, max_message_size=4096, ping_interval=2.5, ping_timeout=1.25)
    assert app.view is not PageView and app.view.__mro__[1] is PageView
    assert app.view.app is app
    other = ComponentApp()
    assert other.view.app is other and other.view.max_message_size is None
    async with in_memory(app) as served, served.websocket_connect(app.ws_path) as client:
        init = await receive(client)
        assert (init["k"], init["max_message_size"]) == ("init", 4096)
        assert (init["ping_interval_ms"], init["ping_timeout_ms"]) == (2500, 1250)


async def test_a_connection_runs_the_page_and_is_finished_at_its_end() -> None:
    app = ComponentApp({"/": Greeting})
    async with in_memory(app) as served:
        body = (await http_get(served, "/")).body.decode()
        page_id = body.split('data-cv-page="', 1)[1].split('"', 1)[0]
        async with served.websocket_connect(app.ws_path) as client:
            assert (await receive(client))["k"] == "init"
            count = count_nodes(render_tree(Greeting()).tree)  # as the browser counts
            attach = {"p": "cv", "k": "attach", "page": page_id, "seq": 0, "count": count}
            await client.send(json.dumps(attach))
            assert await receive(client) == {"p": "cv", "k": "ready", "seq": 0}
            connection = app.connections[page_id]
            assert type(connection) is PageConnection
            assert connection.attached
        # The end of the connection lets the page go (on_session_end).
        await wait_until(lambda: page_id not in app.connections, TIMEOUT)
        assert connection.root is not None and connection.root.connection is None
        assert (await app.snapshots.load(page_id))["seq"] == 0


async def test_the_view_gives_its_connections_their_own_receive_timeout() -> None:
    # The server has no receive timeout; the pages' view closes a page that
    # stays silent for 0.3 s (with the runtime's own pings off).
    app = ComponentApp({"/": Greeting}, receive_timeout=0.3, ping_interval=None)
    assert app.view.receive_timeout == 0.3 and app.view.server_ping_interval is None
    async with in_memory(app) as served, served.websocket_connect(app.ws_path) as client:
        assert (await receive(client))["k"] == "init"
        with pytest.raises(ClientConnectionClosed) as caught:
            await asyncio.wait_for(client.recv(), TIMEOUT)
    # (1006 if no Close had come.)
    assert (caught.value.code, caught.value.reason) == (1001, "idle timeout")


async def test_the_view_gives_its_connections_their_own_ping_interval() -> None:
    app = ComponentApp({"/": Greeting}, server_ping_interval=0.05, ping_interval=None)
    async with in_memory(app) as served, served.websocket_connect(app.ws_path) as client:
        assert (await receive(client))["k"] == "init"
        # The server (whose own interval is off) pings; the client library
        # answers, and the round trip is measured.
        (connection,) = served.server.connections
        await wait_until(lambda: connection.latency is not None)
