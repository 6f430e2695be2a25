"""Tests for wsserver.plugins.channels.remote: what the other nodes publish.

Two managers in one process joined by a ``Hub``: every operation reaches
the other node.  Then a bare backend on the same hub publishing by hand:
this node's own publications coming back are ignored, and malformed ones
are logged and dropped without harm.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from wsserver.plugins.channels import (
    ChannelManager,
    ChannelNotFound,
    CustomServerMessage,
    Hub,
    Identity,
    InProcessBackend,
)

from ._helpers import TIMEOUT, ChannelClient, connected, two_nodes, wait_until

pytestmark = pytest.mark.timeout(30)


async def test_every_operation_reaches_the_other_node() -> None:
    async with two_nodes() as (a, b, server_a, server_b):
        here = await ChannelClient.connect(server_a.port, "/ws?user=ann")
        there = await ChannelClient.connect(server_b.port, "/ws?user=ann")
        assert there.channel.startswith(b.node_id + ".")
        # Broadcast: both nodes' channels, once each.
        assert await a.broadcast("all") == 1
        assert (await here.next())["data"] == "all"
        assert (await there.next())["data"] == "all"
        await here.nothing()
        # Send to a channel of the other node.
        assert await a.send_message(there.channel, "direct") is True
        assert (await there.next())["data"] == "direct"
        # Send to a user: every tab on every node, but the ignored one.
        await a.send_message_to_user("ann", "to ann", ignore_channel=here.channel)
        assert (await there.next())["data"] == "to ann"
        await here.nothing()
        assert await a.get_user_channels("ann") == {here.channel, there.channel}
        # Topics: subscribers on the other node.
        await b.subscribe(there.channel, "news")
        assert await a.publish("news", "headline") == 0
        assert await there.next() == {"p": "ch", "k": "msg", "data": "headline", "topic": "news"}
        assert await a.publish("news", "local", local_only=True) == 0
        await there.nothing()
        # Send and wait across nodes.
        call = asyncio.create_task(a.send_and_wait(there.channel, "q", timeout=TIMEOUT))
        assert (await there.answer("a"))["data"] == "q"
        assert await call == "a"
        for client in (here, there):
            await client.close()


async def test_custom_envelopes_and_identities_across_nodes() -> None:
    async with two_nodes() as (a, b, _server_a, server_b):
        there = await ChannelClient.connect(server_b.port, "/ws?user=ann")
        toast = CustomServerMessage("toast", {"n": 1})
        # The kind travels beside the data, on every operation.
        assert await a.send_message(there.channel, toast, custom=True) is True
        assert await there.next() == {"p": "ch", "k": "msg", "data": {"n": 1}, "kind": "toast"}
        await a.send_message_to_user("ann", toast, custom=True)
        assert (await there.next())["kind"] == "toast"
        await a.broadcast({"kind": "alert", "data": 2}, custom=True)
        assert (await there.next())["kind"] == "alert"
        # The compress choice travels too (delivered either way; the
        # frames' RSV1 is checked in test_manager.py).
        assert await a.send_message(there.channel, "z", compress=True) is True
        assert (await there.next())["data"] == "z"
        await a.send_message_to_user("ann", "zz", compress=False)
        assert (await there.next())["data"] == "zz"
        await b.subscribe(there.channel, "t")
        await a.publish("t", "zzz", compress=True)
        assert (await there.next())["data"] == "zzz"
        await a.broadcast("zzzz", compress=True)
        assert (await there.next())["data"] == "zzzz"
        call = asyncio.create_task(a.send_and_wait(there.channel, toast, TIMEOUT, custom=True))
        asked = await there.answer("ok")
        assert (asked["kind"], asked["data"]) == ("toast", {"n": 1})
        assert await call == "ok"
        # The channel moves to another user on its node; the other node
        # reaches it under the new user, and no longer under the old one.
        await b.set_identity(there.channel, Identity("bob"))
        assert await there.next("identity") == {"p": "ch", "k": "identity", "user": "bob"}
        assert await a.get_user_channels("bob") == {there.channel}
        assert await a.get_user_channels("ann") == set()
        await a.send_message_to_user("ann", "old")
        await a.send_message_to_user("bob", "new")
        assert (await there.next())["data"] == "new"
        await there.nothing()
        with pytest.raises(ChannelNotFound):
            await a.set_identity(there.channel, Identity("eve"))  # not a's channel
        with pytest.raises(TypeError):
            await b.set_identity(there.channel, "bob")  # type: ignore[arg-type]
        await there.close()


async def test_own_publications_are_ignored_and_malformed_ones_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    hub = Hub()
    manager = ChannelManager(InProcessBackend(hub))
    bare = InProcessBackend(hub)
    await bare.start(lambda subject, payload: None)
    node = f"node:{manager.node_id}"
    async with connected(manager) as (_, client):
        # What Redis would echo back: this node's own publication.
        await bare.publish("all", {"op": "bcast", "msg": "echo", "o": manager.node_id})
        await bare.publish("all", {"op": "bcast", "msg": "from bare", "o": bare.node_id})
        assert (await client.next())["data"] == "from bare"
        await client.nothing()
        malformed: list[dict[str, Any]] = [
            {"op": "topic", "topic": ""},
            {"op": "user"},
            {"op": "rep"},
            {"op": "cancel"},
        ]
        with caplog.at_level(logging.DEBUG, "wsserver.plugins.channels"):
            for payload in malformed:
                await bare.publish(node, {**payload, "o": bare.node_id})
            await bare.publish(node, {"op": "dance", "o": bare.node_id})
            await bare.publish(node, {"op": "send", "channel": "nope", "msg": 1, "o": bare.node_id})
            await wait_until(lambda: "message for unknown channel 'nope'" in caplog.text)
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert [line.split(":")[1].strip() for line in warnings] == [
            f"malformed {payload['op']!r} payload from node {bare.node_id!r}"
            for payload in malformed
        ]
        assert f"unknown operation 'dance' from node {bare.node_id!r}" in caplog.text
        caplog.clear()
        for bad in ({"op": "hist"}, {"op": "hist", "ep": "e", "off": 1, "p": {"topic": ""}}):
            await bare.publish(node, bad)
        await wait_until(lambda: caplog.text.count("malformed 'hist' payload") == 2)
        # Nothing reached the page, and the node goes on.
        await client.nothing()
        await bare.publish("all", {"op": "bcast", "msg": "still here", "o": bare.node_id})
        assert (await client.next())["data"] == "still here"
    await bare.close()
