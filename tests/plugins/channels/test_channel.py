"""Tests for wsserver.plugins.channels.channel: Channel and Identity.

The shortcuts over a real connection; then, over a fake session, the
channel's own state: ready to send only once the page is ready and the
channel open, and what ``end`` does.
"""

from __future__ import annotations

import asyncio

import pytest

from wsserver.plugins.channels import ChannelDisconnected, ChannelManager, Identity

from .._fakes import fake_session
from ._helpers import TIMEOUT, connected

pytestmark = pytest.mark.timeout(30)


async def test_channel_shortcuts() -> None:
    manager = ChannelManager()
    async with connected(manager) as (_, client):
        channel = manager.channel(client.channel)
        assert channel is not None
        await channel.subscribe("t")
        assert channel.topics == {"t"}
        assert await channel.send("direct")
        assert (await client.next())["data"] == "direct"
        request = asyncio.create_task(channel.request("q", timeout=TIMEOUT))
        await client.answer(42)
        assert await request == 42
        await channel.unsubscribe("t")
        assert channel.topics == frozenset()
        assert "open" in repr(channel)


async def test_a_channel_sends_once_the_page_is_ready_and_it_is_open() -> None:
    manager = ChannelManager()
    session, _ = fake_session()
    channel = manager.attach(session, Identity("ann", "s1"))
    assert (channel.user_id, channel.session_id, channel.session) == ("ann", "s1", session)
    assert channel.manager is manager and channel.state == {}
    assert not channel.ready_to_send
    assert channel.mark_ready() is True
    assert channel.mark_ready() is False  # said twice
    assert not channel.ready_to_send
    channel.mark_opened()
    assert channel.ready_to_send
    channel.end(frozenset())
    assert not channel.ready_to_send


async def test_ending_a_channel_fails_what_waits_on_the_page_at_once() -> None:
    manager = ChannelManager()
    session, _ = fake_session()
    channel = manager.attach(session)
    assert (channel.user_id, channel.session_id) == (None, None)  # Identity(): anonymous
    call = asyncio.create_task(manager.send_and_wait(channel.id, "q", timeout=TIMEOUT))
    await asyncio.sleep(0)
    assert channel.pending_requests == 1  # queued while the page is not ready
    channel.end(frozenset({"news"}))
    with pytest.raises(ChannelDisconnected, match=r"disconnected .* before answering"):
        await call
    assert channel.closed and channel.queue.closed
    assert channel.pending_requests == 0
    assert channel.topics == {"news"}  # its last ones
    assert "closed" in repr(channel)
