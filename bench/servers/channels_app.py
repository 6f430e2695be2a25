"""The channel manager's side of ``python -m bench.channels`` (not a test).

Served by ``python -m wsserver run bench.servers.channels_app:app
--channels-backend redis://...`` in each of the two workers.  One topic,
``bench``; a page subscribes with the custom message ``sub`` (answered, so
that the harness knows the subscription is in place) and publishes with
``pub`` (not answered: the delivery is the answer).  With
``BENCH_CHANNELS_HISTORY`` set to a count, the topic has history of that
many messages (numbered by Redis, delivered once numbered).

The per-user limits are off: the harness's 1,001 connections are anonymous
and its publisher sends far more than the default 50 custom messages per
second a user may.  Everything else is the manager's default.
"""

from __future__ import annotations

import os
from typing import Any

from wsserver import App
from wsserver.plugins.channels import Channel, ChannelManager

__all__ = ["TOPIC", "app", "manager"]

#: The one topic of the benchmark.
TOPIC = "bench"

manager = ChannelManager(
    history_size=int(os.environ.get("BENCH_CHANNELS_HISTORY", "0")),
    user_rate=None,
    max_user_channels=None,
)
app = App()
manager.install(app, "/ws")


@manager.handler("sub")
async def subscribe(channel: Channel, data: Any) -> bool:
    await manager.subscribe(channel.id, TOPIC)
    return True


@manager.handler("pub")
async def publish(channel: Channel, data: Any) -> None:
    await manager.publish(TOPIC, data)
