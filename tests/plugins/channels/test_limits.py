"""Tests for wsserver.plugins.channels.limits: per-user channels and message rate.

The token bucket with explicit times (no clock, so nothing depends on the
machine's pace), its log line once per interval, its memory; then end to
end: a user past its rate answered ``RateLimited`` while another user is
served, and a user past its channel cap refused with 429 and
``Retry-After`` (or, past the handshake check, closed with 1008); a user's
``send_and_wait`` calls past ``max_user_waits`` refused at once
(``TooManyWaits``, and the page's request answered so) while another user's
are sent, each refusal counted in ``wsserver_limit_hits_total``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from wsserver.plugins.channels import (
    Channel,
    ChannelManager,
    ChannelView,
    TooManyWaits,
    current_user,
)
from wsserver.plugins.channels.limits import (
    LOG_INTERVAL,
    MAX_WAIT_LOG_ENTRIES,
    UserLimits,
    limit_hits,
)
from wsserver.server import App, Response, WebSocket
from wsserver.server.metrics import Metrics

from ._helpers import ChannelClient, closed_with, serve_manager, wait_until

pytestmark = pytest.mark.timeout(30)

LOGGER = "wsserver.plugins.channels"


def test_the_bucket_refills_at_the_rate(caplog: pytest.LogCaptureFixture) -> None:
    limits = UserLimits(rate=2.0, burst=3)
    with caplog.at_level(logging.WARNING, LOGGER):
        assert [limits.allow("ann", 0.0) for _ in range(4)] == [True, True, True, False]
        assert not limits.allow("ann", 0.1)  # 0.2 of a message back: not enough
        assert limits.allow("ann", 0.6)  # one back (2 per second)
        assert not limits.allow("ann", 0.6)
        assert limits.allow("bob", 0.6)  # every user has a bucket of its own
        assert limits.allow(None, 0.6)  # anonymous channels are not counted here
    # One line for the first refusal; the next ones within the interval are
    # counted into the next line.
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and "user 'ann'" in lines[0] and "1 refused" in lines[0]
    # An interval later the bucket is full again; draining it logs the
    # refusals counted meanwhile (two) and this one.
    caplog.clear()
    with caplog.at_level(logging.WARNING, LOGGER):
        assert [limits.allow("ann", LOG_INTERVAL) for _ in range(4)] == [True] * 3 + [False]
    (record,) = caplog.records
    assert "3 refused" in record.getMessage()
    assert len(limits) == 2
    limits.forget("ann")
    limits.forget("nobody")
    assert len(limits) == 1


def test_no_rate_means_no_limit() -> None:
    limits = UserLimits(rate=None, burst=1)
    assert all(limits.allow("ann", 0.0) for _ in range(1000))
    assert len(limits) == 0


def test_refused_connections_are_logged_once_per_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    limits = UserLimits(rate=None, burst=1)
    with caplog.at_level(logging.WARNING, LOGGER):
        for now in (0.0, 1.0, LOG_INTERVAL - 0.1, LOG_INTERVAL):
            limits.refused_connection("ann", 5, now)
    assert len(caplog.records) == 2
    assert "user 'ann' has 5 channels open" in caplog.records[0].getMessage()
    limits.forget("ann")
    with caplog.at_level(logging.WARNING, LOGGER):
        limits.refused_connection("ann", 5, LOG_INTERVAL + 1)
    assert len(caplog.records) == 3


def test_waits_are_counted_per_user_up_to_the_cap(caplog: pytest.LogCaptureFixture) -> None:
    limits = UserLimits(rate=None, burst=1, max_waits=2)
    before = limit_hits()["max_user_waits"]
    with caplog.at_level(logging.WARNING, LOGGER):
        assert limits.begin_wait("ann", 0.0) and limits.begin_wait("ann", 0.0)
        assert [limits.begin_wait("ann", t) for t in (0.0, 1.0, LOG_INTERVAL - 0.1)] == [False] * 3
        assert limits.begin_wait("bob", 0.0)  # every user has a count of its own
        assert limits.begin_wait(None, 0.0)  # calls outside any handler are not counted
    assert (limits.waiting("ann"), limits.waiting("bob"), limits.waiting_users) == (2, 1, 2)
    # One line for the first refusal; the ones within the interval are counted
    # into the next line, an interval later.
    (line,) = [r.getMessage() for r in caplog.records]
    assert "user 'ann' has 2 send_and_wait calls waiting" in line and "1 refused" in line
    caplog.clear()
    with caplog.at_level(logging.WARNING, LOGGER):
        assert not limits.begin_wait("ann", LOG_INTERVAL)
    (record,) = caplog.records
    assert "3 refused" in record.getMessage()
    assert limit_hits()["max_user_waits"] == before + 4  # every refusal, not every line
    # A wait ended makes room; a user with none waiting takes no memory.
    limits.end_wait("ann")
    assert limits.begin_wait("ann", LOG_INTERVAL)
    for user in ("ann", "ann", "bob", None):
        limits.end_wait(user)
    assert limits.waiting_users == 0 and limits.waiting("ann") == 0
    # Forgetting a user (its last channel here ended) leaves running waits counted.
    assert limits.begin_wait("ann", 0.0)
    limits.forget("ann")
    assert limits.waiting("ann") == 1


def test_no_wait_cap_means_no_limit() -> None:
    limits = UserLimits(rate=None, burst=1, max_waits=None)
    assert all(limits.begin_wait("ann", 0.0) for _ in range(1000))
    assert limits.waiting("ann") == 1000


def test_the_log_lines_of_refused_waits_stay_bounded(caplog: pytest.LogCaptureFixture) -> None:
    # Users refused and gone (their channels ended, so never forgotten by
    # forget()): the table of their last log lines keeps the recent ones only.
    limits = UserLimits(rate=None, burst=1, max_waits=1)
    with caplog.at_level(logging.ERROR, LOGGER):  # the lines themselves are not the point
        for n in range(3 * MAX_WAIT_LOG_ENTRIES):
            user = f"user{n}"
            now = n * LOG_INTERVAL / MAX_WAIT_LOG_ENTRIES
            assert limits.begin_wait(user, now) and not limits.begin_wait(user, now)
            limits.end_wait(user)
            assert limits.waiting_users == 0
            assert len(limits._waits_logged) <= MAX_WAIT_LOG_ENTRIES + 1


async def _user_from_query(websocket: WebSocket) -> Response | None:
    websocket.state.user_id = websocket.query_params.get("user")
    return None


async def test_a_user_past_its_rate_is_refused_while_others_are_served() -> None:
    # Almost no refill: exactly the burst gets through, whatever the pace.
    manager = ChannelManager(user_rate=0.001, user_burst=3)

    @manager.handler("echo")
    def echo(channel: Channel, data: Any) -> Any:
        return data

    app = App(authenticate=_user_from_query)
    async with serve_manager(manager, app=app) as server:
        ann1 = await ChannelClient.connect(server.port, "/ws?user=ann")
        ann2 = await ChannelClient.connect(server.port, "/ws?user=ann")
        bob = await ChannelClient.connect(server.port, "/ws?user=bob")
        try:
            # Ann's two tabs share one bucket of 3.
            answers = [await ann1.request("echo", n) for n in range(2)]
            answers.append(await ann2.request("echo", 2))
            assert [a["data"] for a in answers] == [0, 1, 2]
            refused = await ann2.request("echo", 3)
            assert refused["ok"] is False
            assert refused["error"]["name"] == "RateLimited"
            # A send without an answer is dropped; the connection stays open.
            await ann1.send("custom", kind="echo", data="dropped")
            assert (await ann1.request("echo", 4))["error"]["name"] == "RateLimited"
            # Bob is not slowed by Ann.
            assert (await bob.request("echo", "bob"))["data"] == "bob"
            # A token update counts too.
            await ann1.send("token", token="t", rchan="tok")
            token = await ann1.next("res", lambda m: m["response_for"] == "tok")
            assert token["error"]["name"] == "RateLimited"
        finally:
            for client in (ann1, ann2, bob):
                await client.close()
        await wait_until(lambda: not manager.channels)
        assert len(manager.limits) == 0  # forgotten with the users' last channels


async def test_a_user_past_its_channel_cap_gets_429() -> None:
    manager = ChannelManager(max_user_channels=2)
    app = App(authenticate=_user_from_query)
    async with serve_manager(manager, app=app) as server:
        first = await ChannelClient.connect(server.port, "/ws?user=ann")
        second = await ChannelClient.connect(server.port, "/ws?user=ann")
        try:
            with pytest.raises(InvalidStatus) as refused:
                await ChannelClient.connect(server.port, "/ws?user=ann")
            assert refused.value.response.status_code == 429
            assert refused.value.response.headers["Retry-After"] == "10"
            # Another user, and anonymous pages, still connect.
            other = await ChannelClient.connect(server.port, "/ws?user=bob")
            await other.close()
            anonymous = await ChannelClient.connect(server.port)
            await anonymous.close()
        finally:
            await first.close()
        # One of Ann's channels closed: room for another.
        await wait_until(lambda: len(manager.local_user_channels("ann")) == 1)
        third = await ChannelClient.connect(server.port, "/ws?user=ann")
        await third.close()
        await second.close()
        async with httpx.AsyncClient() as http:  # plain HTTP is not counted
            assert (await http.get(f"http://127.0.0.1:{server.port}/healthz")).status_code == 200


async def test_a_race_past_the_handshake_check_is_closed_with_1008() -> None:
    class Racing(ChannelView):
        async def on_connect(self, websocket: WebSocket) -> None:
            await websocket.accept()  # as if two handshakes passed the check at once

    manager = ChannelManager(max_user_channels=1)
    app = App(authenticate=_user_from_query)
    async with serve_manager(manager, app=app, view=Racing) as server:
        first = await ChannelClient.connect(server.port, "/ws?user=ann")
        try:
            # The runtime's init arrives, then the close: no ch/init.
            async with connect(f"ws://127.0.0.1:{server.port}/ws?user=ann") as raw:
                client = ChannelClient(raw, {})
                assert await closed_with(client) == 1008
            assert manager.local_user_channels("ann") == {first.channel}
        finally:
            await first.close()


async def test_a_user_past_its_waits_is_refused_at_once_while_others_are_asked() -> None:
    manager = ChannelManager(max_user_waits=2)

    @manager.handler("ask")
    async def ask(channel: Channel, data: Any) -> Any:
        # Ask the page itself (a confirmation, say): counted against its user.
        return await manager.send_and_wait(channel.id, data, timeout=30)

    app = App(authenticate=_user_from_query)
    before = limit_hits()["max_user_waits"]
    metrics = Metrics("/metrics")
    async with serve_manager(manager, app=app) as server:
        tabs = [await ChannelClient.connect(server.port, "/ws?user=ann") for _ in range(3)]
        bob = await ChannelClient.connect(server.port, "/ws?user=bob")
        try:
            # Two of Ann's tabs are asked a question each; nobody answers yet.
            questions = []
            for n, tab in enumerate(tabs[:2]):
                await tab.send("custom", kind="ask", data=n, rchan="a")
                questions.append(await tab.next("msg", lambda m: "rchan" in m))
                assert questions[-1]["data"] == n
            assert manager.limits.waiting("ann") == 2
            # Her third tab's handler is refused at once, and the page told why.
            refused = await tabs[2].request("ask", 2)
            assert refused["ok"] is False
            assert refused["error"]["name"] == "TooManyWaits"
            assert "max_user_waits" in refused["error"]["message"]
            await tabs[2].nothing()  # nothing was sent to the page
            # Bob is asked as usual.
            await bob.send("custom", kind="ask", data="b", rchan="b")
            await bob.answer("yes")
            assert (await bob.next("res"))["data"] == "yes"
            # The application's own calls (no user) are not counted.
            own = asyncio.create_task(manager.send_and_wait(tabs[2].channel, "own", timeout=30))
            await tabs[2].answer("fine")
            assert await own == "fine"
            # A tab answers: room for another of Ann's waits.
            await tabs[0].send("reply", response_for=questions[0]["rchan"], ok=True, data="ok")
            assert (await tabs[0].next("res"))["data"] == "ok"
            await tabs[2].send("custom", kind="ask", data=3, rchan="c")
            await tabs[2].answer("ok too")
            assert (await tabs[2].next("res"))["data"] == "ok too"
            assert limit_hits()["max_user_waits"] == before + 1
            hits = metrics.snapshot()["counters"]
            assert isinstance(hits, dict)
            assert hits["wsserver_limit_hits"]["max_user_waits"] == before + 1
        finally:
            for client in (*tabs, bob):
                await client.close()
        # The wait of the closed tab ended with its channel (ChannelDisconnected).
        await wait_until(lambda: manager.limits.waiting_users == 0)


async def test_a_call_past_the_cap_raises_before_sending() -> None:
    manager = ChannelManager(max_user_waits=1)
    async with serve_manager(manager) as server:
        client = await ChannelClient.connect(server.port)
        try:
            token = current_user.set("ann")  # as inside a handler of Ann's page
            try:
                first = asyncio.create_task(manager.send_and_wait(client.channel, 1, timeout=30))
                await client.next("msg", lambda m: "rchan" in m)
                with pytest.raises(TooManyWaits, match="user 'ann' has 1 send_and_wait"):
                    await manager.send_and_wait(client.channel, 2, timeout=30)
                await client.nothing()
                # Cancelling a call ends its wait too.
                first.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await first
                assert manager.limits.waiting("ann") == 0
            finally:
                current_user.reset(token)
        finally:
            await client.close()
    with pytest.raises(ValueError, match="max_user_waits"):
        ChannelManager(max_user_waits=0)
    assert ChannelManager(max_user_waits=None).max_user_waits is None
