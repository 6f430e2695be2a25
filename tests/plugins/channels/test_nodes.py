"""Tests for wsserver.plugins.channels.nodes: the link to the other nodes.

The backend starts once however many callers ask at once, what this node
publishes carries its id, a quiet publication survives an outage, and the
background tasks are logged when they fail and stopped by ``close``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

import pytest

from wsserver.plugins.channels import BackendUnavailable, Hub, InProcessBackend
from wsserver.plugins.channels.nodes import NodeLink

from ._helpers import RecordingBackend, wait_until

pytestmark = pytest.mark.timeout(30)


class Received:
    """The callbacks of a ``NodeLink``, recording what they get."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, dict[str, Any]]] = []
        self.statuses: list[bool] = []

    def link(self, backend: InProcessBackend) -> NodeLink:
        return NodeLink(
            backend,
            receive=lambda subject, payload: self.messages.append((subject, payload)),
            on_status=self.statuses.append,
        )


class DownBackend(InProcessBackend):
    """A backend whose other nodes cannot be reached."""

    async def publish(
        self, subject: str, payload: Mapping[str, Any], *, wait: bool = False
    ) -> int | None:
        raise BackendUnavailable("down")


async def test_the_backend_starts_once_for_concurrent_callers() -> None:
    backend = RecordingBackend()
    received = Received()
    link = received.link(backend)
    assert link.node_id == backend.node_id and link.backend is backend
    await asyncio.gather(link.start(), link.start(), link.start())
    await link.start()
    assert backend.starts == 1
    assert backend.subjects == {"all", f"node:{backend.node_id}"}
    assert received.statuses == [True]
    await link.close()
    assert backend.closes == 1
    # Closed, it starts again on demand.
    await link.start()
    assert backend.starts == 2
    await link.close()


async def test_publications_carry_this_nodes_id() -> None:
    hub = Hub()
    here, there = Received(), Received()
    link = here.link(InProcessBackend(hub))
    other = there.link(InProcessBackend(hub))
    await other.start()  # publish starts this one itself
    assert await link.publish("all", {"op": "x"}, wait=True) == 1
    assert await link.publish("all", {"op": "y"}) is None
    await wait_until(lambda: len(there.messages) == 2)
    assert there.messages == [
        ("all", {"op": "x", "o": link.node_id}),
        ("all", {"op": "y", "o": link.node_id}),
    ]
    assert here.messages == []  # never its own
    await link.close()
    await other.close()


async def test_a_quiet_publication_survives_an_outage() -> None:
    link = Received().link(DownBackend())
    with pytest.raises(BackendUnavailable):
        await link.publish("all", {"op": "x"})
    await link.publish_quietly("all", {"op": "x"})  # no error
    await link.close()


async def test_background_tasks_are_logged_when_they_fail_and_stopped_by_close(
    caplog: pytest.LogCaptureFixture,
) -> None:
    backend = RecordingBackend()
    link = Received().link(backend)

    async def fail() -> None:
        raise RuntimeError("boom")

    forever = asyncio.Event()
    with caplog.at_level(logging.ERROR, "wsserver.plugins.channels"):
        failing = link.spawn(fail(), "channels-failing")
        waiting = link.spawn(forever.wait(), "channels-waiting")
        await asyncio.wait([failing])
        await asyncio.sleep(0)
    assert "channels: task channels-failing failed" in caplog.text
    assert waiting.get_name() == "channels-waiting" and not waiting.done()
    await link.close()
    assert waiting.cancelled()
    assert backend.closes == 0  # never started: nothing to stop
