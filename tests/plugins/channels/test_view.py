"""Tests for wsserver.plugins.channels.view: ChannelView, the endpoint.

``identify`` overridden, the hooks around the channel, a view without a
manager.
"""

from __future__ import annotations

import pytest
from websockets.exceptions import ConnectionClosed

from wsserver.plugins.channels import Channel, ChannelManager, ChannelView, Identity
from wsserver.server import App, WebSocket

from ._helpers import ChannelClient, connected, serve_manager, wait_until

pytestmark = pytest.mark.timeout(30)


async def test_identify_can_be_overridden() -> None:
    class View(ChannelView):
        def identify(self, websocket: WebSocket) -> Identity:
            return Identity(user_id="fixed", session_id="sess")

    manager = ChannelManager()
    async with connected(manager, view=View) as (_, client):
        assert client.init["user"] == "fixed"
        assert manager.registry.session_channels("sess") == {client.channel}


async def test_hooks_run_around_the_channel() -> None:
    seen: list[tuple[str, str, bool]] = []

    class View(ChannelView):
        async def on_channel_start(self, channel: Channel) -> None:
            seen.append(("start", channel.id, channel.closed))

        async def on_channel_end(self, channel: Channel) -> None:
            seen.append(("end", channel.id, channel.closed))

    manager = ChannelManager()
    async with serve_manager(manager, view=View) as server:
        client = await ChannelClient.connect(server.port)
        await client.close()
        await wait_until(lambda: len(seen) == 2)
    assert seen == [("start", client.channel, False), ("end", client.channel, True)]


async def test_a_view_needs_a_manager() -> None:
    app = App()
    app.add_websocket_route("/bare", ChannelView)
    async with serve_manager(ChannelManager(), app=app) as server:
        client = await ChannelClient.connect(server.port)  # the installed view works
        await client.close()
        with pytest.raises(ConnectionClosed) as caught:
            await ChannelClient.connect(server.port, "/bare")
        assert caught.value.rcvd is not None and caught.value.rcvd.code == 1011
    view = ChannelView.__new__(ChannelView)
    with pytest.raises(RuntimeError, match="manager is not set"):
        view.get_manager()
