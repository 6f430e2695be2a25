"""Tests for wsserver.plugins.channels.backends: the interface, the in-process backend.

Several ``InProcessBackend`` nodes sharing a ``Hub`` behave as a cluster:
payloads reach the other subscribed nodes (never the publisher), in order,
as JSON copies; presence is shared.  ``backend_from_url`` and
``backend_from_env`` pick backends from URLs.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

import pytest

from wsserver.plugins.channels import RedisBackend
from wsserver.plugins.channels.backends import (
    ENV_VAR,
    Backend,
    BackendUnavailable,
    ChannelError,
    Hub,
    InProcessBackend,
    backend_from_env,
    backend_from_url,
    check_url,
    new_node_id,
)

from ._helpers import wait_until

Received = list[tuple[str, dict[str, Any]]]


async def node(hub: Hub, *subjects: str) -> tuple[InProcessBackend, Received, list[bool]]:
    received: Received = []
    statuses: list[bool] = []
    backend = InProcessBackend(hub)
    await backend.start(lambda s, p: received.append((s, p)), subjects, statuses.append)
    return backend, received, statuses


async def test_a_payload_reaches_the_other_subscribed_nodes_not_the_publisher() -> None:
    hub = Hub()
    a, got_a, status_a = await node(hub, "all")
    _, got_b, _ = await node(hub, "all")
    c, got_c, _ = await node(hub)
    assert status_a == [True] and a.available
    assert await a.publish("all", {"n": 1}, wait=True) == 1
    assert await a.publish("all", {"n": 2}) is None
    await wait_until(lambda: len(got_b) == 2)
    await asyncio.sleep(0.01)
    assert got_b == [("all", {"n": 1}), ("all", {"n": 2})]
    assert got_a == [] and got_c == []
    await c.subscribe("all")
    await a.publish("all", {"n": 3})
    await wait_until(lambda: len(got_c) == 1)


async def test_payloads_are_json_copies() -> None:
    hub = Hub()
    a, _, _ = await node(hub)
    _, got_b, _ = await node(hub, "x")
    payload: dict[str, Any] = {"list": [1, 2], "t": (3, 4)}
    await a.publish("x", payload)
    payload["list"].append(99)  # the sender's later changes do not travel
    await wait_until(lambda: bool(got_b))
    assert got_b == [("x", {"list": [1, 2], "t": [3, 4]})]
    with pytest.raises(TypeError):
        await a.publish("x", {"bad": {1, 2}})
    with pytest.raises(ValueError):
        await a.publish("x", {"nan": math.nan})


async def test_unsubscribing_stops_delivery_even_of_payloads_in_flight() -> None:
    hub = Hub()
    a, _, _ = await node(hub)
    b, got_b, _ = await node(hub, "t")
    assert await a.publish("t", {}, wait=True) == 1
    await b.unsubscribe("t")  # before the delivery ran
    assert await a.publish("t", {}, wait=True) == 0
    await asyncio.sleep(0.01)
    assert got_b == []


async def test_a_receiver_that_raises_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    hub = Hub()
    a, _, _ = await node(hub)
    b = InProcessBackend(hub)

    def broken(subject: str, payload: dict[str, Any]) -> None:
        raise RuntimeError("boom")

    await b.start(broken, ("t",))
    await a.publish("t", {})
    await wait_until(lambda: "error delivering" in caplog.text)


async def test_presence_is_shared_and_leaves_with_the_node() -> None:
    hub = Hub()
    a, _, _ = await node(hub)
    b, _, _ = await node(hub)
    await a.add_presence("ann", "a.1")
    await b.add_presence("ann", "b.1")
    await b.add_presence("bob", "b.2")
    assert await a.user_channels("ann") == {"a.1", "b.1"}
    await a.remove_presence("ann", "a.1")
    await a.remove_presence("ann", "never")
    assert await b.user_channels("ann") == {"b.1"}
    await b.close()
    assert await a.user_channels("ann") == set()
    assert await a.user_channels("bob") == set()
    assert hub.presence == {}


async def test_a_private_hub_is_a_single_node() -> None:
    a = InProcessBackend()
    b = InProcessBackend()
    await a.start(lambda s, p: None, ("all",))
    await b.start(lambda s, p: None, ("all",))
    assert await a.publish("all", {}, wait=True) == 0
    assert not a.cross_process and a.name == "memory"
    assert a.describe() == f"memory (node {a.node_id})"


async def test_node_ids_are_unique_in_a_hub() -> None:
    hub = Hub()
    await InProcessBackend(hub, node_id="n1").start(lambda s, p: None)
    with pytest.raises(ValueError, match="taken"):
        await InProcessBackend(hub, node_id="n1").start(lambda s, p: None)


def test_node_ids_have_no_dots() -> None:
    ids = {new_node_id() for _ in range(100)}
    assert len(ids) == 100 and not any("." in i for i in ids)


def test_backend_unavailable_is_a_channel_error() -> None:
    assert issubclass(BackendUnavailable, ChannelError)


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        (None, "memory"),
        ("", "memory"),
        ("memory", "memory"),
        ("memory://", "memory"),
        ("redis://127.0.0.1:6379/0", "redis"),
        ("rediss://:pw@host:6380/1", "redis"),
        ("unix:///run/redis.sock", "redis"),
    ],
)
def test_check_url(url: str | None, kind: str) -> None:
    assert check_url(url) == kind


@pytest.mark.parametrize("url", ["kafka://x", "redis:/", "redis://", "127.0.0.1:6379"])
def test_check_url_refuses_the_unknown(url: str) -> None:
    with pytest.raises(ValueError, match="unknown channels backend"):
        check_url(url)


def test_backend_from_url_and_env() -> None:
    assert isinstance(backend_from_url(None), InProcessBackend)
    redis = backend_from_url("redis://127.0.0.1:1/0", prefix="app")
    assert isinstance(redis, RedisBackend) and redis.prefix == "app"
    assert isinstance(backend_from_env({}), InProcessBackend)
    assert isinstance(backend_from_env({ENV_VAR: "redis://127.0.0.1:1/0"}), RedisBackend)
    with pytest.raises(ValueError):
        backend_from_env({ENV_VAR: "nope://"})


def test_the_interface_is_abstract() -> None:
    with pytest.raises(TypeError):
        Backend()  # type: ignore[abstract]


async def test_a_backend_keeps_no_history_unless_it_says_so() -> None:
    class Minimal(InProcessBackend):
        keeps_history = False

    backend = Minimal()
    # The base class's methods, as a third-party backend inherits them.
    with pytest.raises(NotImplementedError, match="keeps no topic history"):
        await Backend.append(backend, "topic:t", "t", 1, None, size=1, ttl=1)
    with pytest.raises(NotImplementedError, match="keeps no topic history"):
        await Backend.history(backend, "t", None, ttl=1)
    assert InProcessBackend.keeps_history and RedisBackend.keeps_history
