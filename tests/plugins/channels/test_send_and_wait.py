"""Tests for wsserver.plugins.channels.send_and_wait: ask a page, await its answer.

Correlation by reply channel, the page's errors, the timeout and the late
answer, the failure at once on disconnect, the argument checks; then the
same across two nodes joined by a ``Hub``: the node holding the channel is
told to stop waiting exactly when the asking node gave up; and a closed
manager.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from wsserver.plugins.channels import (
    ChannelDisconnected,
    ChannelManager,
    ChannelNotFound,
    Hub,
    InProcessBackend,
    ReplyError,
    ReplyTimeout,
)

from ._helpers import (
    TIMEOUT,
    ChannelClient,
    RecordingBackend,
    connected,
    serve_manager,
    two_nodes,
    wait_until,
)

pytestmark = pytest.mark.timeout(30)


async def test_send_and_wait_correlates_the_answer() -> None:
    manager = ChannelManager()
    async with connected(manager) as (_, client):
        first = asyncio.create_task(manager.send_and_wait(client.channel, 1, timeout=TIMEOUT))
        second = asyncio.create_task(manager.send_and_wait(client.channel, 2, timeout=TIMEOUT))
        q1 = await client.next("msg", lambda m: m["data"] == 1)
        q2 = await client.next("msg", lambda m: m["data"] == 2)
        assert q1["rchan"] != q2["rchan"]
        # Answered out of order: each reaches its own caller.
        await client.send("reply", response_for=q2["rchan"], ok=True, data="two")
        await client.send("reply", response_for=q1["rchan"], ok=True, data="one")
        assert (await first, await second) == ("one", "two")
        channel = manager.channel(client.channel)
        assert channel is not None and channel.pending_requests == 0


async def test_send_and_wait_reports_the_pages_error() -> None:
    manager = ChannelManager()
    async with connected(manager) as (_, client):
        call = asyncio.create_task(manager.send_and_wait(client.channel, "q", timeout=TIMEOUT))
        question = await client.next()
        error = {"name": "TypeError", "message": "x is undefined"}
        await client.send("reply", response_for=question["rchan"], ok=False, error=error)
        with pytest.raises(ReplyError) as caught:
            await call
        assert (caught.value.name, caught.value.message) == ("TypeError", "x is undefined")


async def test_send_and_wait_times_out_and_a_late_answer_is_ignored() -> None:
    manager = ChannelManager()
    async with connected(manager) as (_, client):
        started = time.monotonic()
        with pytest.raises(ReplyTimeout) as caught:
            await manager.send_and_wait(client.channel, "q", timeout=0.2)
        assert 0.15 < time.monotonic() - started < 2
        assert isinstance(caught.value, TimeoutError)
        question = await client.next()
        channel = manager.channel(client.channel)
        assert channel is not None and channel.pending_requests == 0
        await client.send("reply", response_for=question["rchan"], ok=True, data=1)
        await wait_until(lambda: channel.unknown_replies == 1)


async def test_send_and_wait_fails_at_once_when_the_channel_disconnects() -> None:
    manager = ChannelManager()
    async with serve_manager(manager) as server:
        client = await ChannelClient.connect(server.port)
        call = asyncio.create_task(manager.send_and_wait(client.channel, "q", timeout=30))
        await client.next()
        started = time.monotonic()
        await client.close()
        with pytest.raises(ChannelDisconnected, match="disconnected"):
            await asyncio.wait_for(call, TIMEOUT)
        assert time.monotonic() - started < 1.0  # not at the 30 s timeout
        with pytest.raises(ChannelNotFound):
            await manager.send_and_wait(client.channel, "q", timeout=1)


async def test_send_and_wait_argument_checks() -> None:
    manager = ChannelManager(request_timeout=0.1)
    async with connected(manager) as (_, client):
        for bad in (0, -1, float("nan"), float("inf"), True):
            with pytest.raises(ValueError, match="timeout"):
                await manager.send_and_wait(client.channel, "q", timeout=bad)
        with pytest.raises(ReplyTimeout):  # the default timeout, 0.1 s
            await manager.send_and_wait(client.channel, "q")
        with pytest.raises(ChannelNotFound):
            await manager.send_and_wait("not-a-channel", "q", timeout=1)


# ---------------------------------------------------------------------------
# Across nodes (a Hub)
# ---------------------------------------------------------------------------


async def test_send_and_wait_across_nodes_fails_like_a_local_one() -> None:
    async with two_nodes() as (a, b, _, server_b):
        there = await ChannelClient.connect(server_b.port)
        # The page's error.
        call = asyncio.create_task(a.send_and_wait(there.channel, "q", timeout=TIMEOUT))
        question = await there.next()
        error = {"name": "RangeError", "message": "no"}
        await there.send("reply", response_for=question["rchan"], ok=False, error=error)
        with pytest.raises(ReplyError, match="RangeError: no"):
            await call
        # A timeout: the other node stops waiting too.
        with pytest.raises(ReplyTimeout):
            await a.send_and_wait(there.channel, "q", timeout=0.2)
        channel = b.channel(there.channel)
        assert channel is not None
        await wait_until(lambda: channel.pending_requests == 0 and b._requests.serving_count == 0)
        # A channel gone on a live node, and a node that does not exist.
        with pytest.raises(ChannelNotFound):
            await a.send_and_wait(b.node_id + ".gone", "q", timeout=TIMEOUT)
        with pytest.raises(ChannelNotFound, match="node is gone"):
            await a.send_and_wait("deadbeef0000.x", "q", timeout=TIMEOUT)
        assert await a.send_message("deadbeef0000.x", "lost") is False
        # A disconnect: at once.
        call = asyncio.create_task(a.send_and_wait(there.channel, "last", timeout=30))
        await there.next("msg", lambda m: m["data"] == "last")
        started = time.monotonic()
        await there.close()
        with pytest.raises(ChannelDisconnected):
            await asyncio.wait_for(call, TIMEOUT)
        assert time.monotonic() - started < 1.0


async def test_a_closed_manager_fails_its_waiting_requests() -> None:
    async with two_nodes() as (a, _, _, server_b):
        there = await ChannelClient.connect(server_b.port)
        call = asyncio.create_task(a.send_and_wait(there.channel, "q", timeout=30))
        await there.next()
        await a.close()
        with pytest.raises(Exception, match="closed"):
            await asyncio.wait_for(call, TIMEOUT)
        await there.close()


async def test_the_other_node_is_told_to_stop_only_when_the_asker_gave_up() -> None:
    hub = Hub()
    backend = RecordingBackend(hub)
    a = ChannelManager(backend)
    b = ChannelManager(InProcessBackend(hub))

    def sent(op: str) -> list[tuple[str, dict[str, Any]]]:
        return [(subject, payload) for subject, payload in backend.published if payload["op"] == op]

    async with serve_manager(a), serve_manager(b) as server_b:
        there = await ChannelClient.connect(server_b.port)
        # No such node: nobody to tell.
        with pytest.raises(ChannelNotFound, match="node is gone"):
            await a.send_and_wait("deadbeef0000.x", "q", timeout=TIMEOUT)
        # Answered: nothing to cancel.
        call = asyncio.create_task(a.send_and_wait(there.channel, "q1", timeout=TIMEOUT))
        question = await there.next("msg", lambda m: m["data"] == "q1")
        await there.send("reply", response_for=question["rchan"], ok=True, data="a1")
        assert await call == "a1"
        # Timed out: the other node is told, and stops serving.
        with pytest.raises(ReplyTimeout):
            await a.send_and_wait(there.channel, "q2", timeout=0.2)
        await wait_until(lambda: len(sent("cancel")) == 1)
        requests = sent("req")
        assert [payload["msg"] for _, payload in requests] == ["q", "q1", "q2"]
        assert sent("cancel") == [
            (f"node:{b.node_id}", {"op": "cancel", "rid": requests[2][1]["rid"], "o": a.node_id})
        ]
        # Cancelled: told too.
        call = asyncio.create_task(a.send_and_wait(there.channel, "q3", timeout=TIMEOUT))
        await there.next("msg", lambda m: m["data"] == "q3")
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        await wait_until(lambda: len(sent("cancel")) == 2)
        await wait_until(lambda: b._requests.serving_count == 0)
        assert a._requests.pending_count == 0
        await there.close()
