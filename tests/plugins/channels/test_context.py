"""Tests for wsserver.plugins.channels.context: the current channel, user and session.

Set around the handlers and the view's hooks, restored after, copied into
the tasks a handler starts, and following a token update.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from wsserver.plugins.channels import (
    Channel,
    ChannelManager,
    ChannelView,
    Identity,
    current_channel,
    current_session,
    current_user,
)
from wsserver.plugins.channels.context import bound
from wsserver.server import WebSocket

from ._helpers import ChannelClient, serve_manager, wait_until

pytestmark = pytest.mark.timeout(30)


def seen() -> tuple[str | None, str | None, str | None]:
    channel = current_channel.get()
    return (None if channel is None else channel.id, current_user.get(), current_session.get())


class Ann(ChannelView):
    def identify(self, websocket: WebSocket) -> Identity:
        return Identity("ann", "s1")

    async def verify_token(self, channel: Channel, token: str) -> Identity:
        # The token's own context: still the old identity.
        assert current_user.get() == "ann"
        return Identity(token, "s2")


async def test_handlers_see_their_channel_user_and_session() -> None:
    manager = ChannelManager()
    hooks: list[tuple[str, tuple[str | None, str | None, str | None]]] = []

    class View(Ann):
        async def on_channel_start(self, channel: Channel) -> None:
            hooks.append(("start", seen()))

        async def on_channel_end(self, channel: Channel) -> None:
            hooks.append(("end", seen()))

    @manager.handler("whoami")
    async def whoami(channel: Channel, data: Any) -> Any:
        assert current_channel.get() is channel
        in_task = await asyncio.create_task(asyncio.sleep(0, result=seen()))
        return [list(seen()), list(in_task)]

    @manager.handler("plain")
    def plain(channel: Channel, data: Any) -> Any:  # a sync handler too
        return current_user.get()

    assert seen() == (None, None, None)
    async with serve_manager(manager, view=View) as server:
        async with await ChannelClient.connect(server.port) as client:
            me = [client.channel, "ann", "s1"]
            assert (await client.request("whoami"))["data"] == [me, me]
            assert (await client.request("plain"))["data"] == "ann"
            # A token update: the messages after it see the new identity.
            await client.send("token", token="bob", rchan="t1")
            answer = await client.next("res", lambda m: m["response_for"] == "t1")
            assert answer["data"] == {"user": "bob"}
            assert (await client.request("whoami"))["data"][0] == [client.channel, "bob", "s2"]
        await wait_until(lambda: len(hooks) == 2)
    assert hooks == [
        ("start", (client.channel, "ann", "s1")),
        ("end", (client.channel, "bob", "s2")),
    ]
    assert seen() == (None, None, None)


async def test_bound_restores_the_outer_values() -> None:
    manager = ChannelManager()
    async with (
        serve_manager(manager, view=Ann) as server,
        await ChannelClient.connect(server.port) as client,
    ):
        channel = manager.channel(client.channel)
        assert channel is not None
        with bound(channel):
            assert seen() == (client.channel, "ann", "s1")
            with pytest.raises(ZeroDivisionError), bound(channel):
                raise ZeroDivisionError
            assert current_user.get() == "ann"
        assert seen() == (None, None, None)
