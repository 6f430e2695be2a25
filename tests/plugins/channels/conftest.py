"""Fixtures of the channel manager's tests: a real Redis server.

``redis_server`` is Debian's ``redis-server``, started once per test session
on loopback, on a free port, in a temporary directory, with persistence off
(``--save '' --appendonly no``).  ``private_redis`` makes another one for a
test that stops and restarts it (the outage tests), so that the shared one
never goes away under other tests.  Without redis-server these tests fail,
saying what to install: a Redis test that is skipped proves nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ._helpers import RedisServer, find_redis_server


def _executable() -> str:
    executable = find_redis_server()
    if executable is None:
        pytest.fail(
            "the channel manager's tests need redis-server: apt-get install redis-server",
            pytrace=False,
        )
    return executable


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One redis-server for the whole session."""
    server = RedisServer(_executable(), tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test's own, which it may stop and start."""
    server = RedisServer(_executable(), tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def persistent_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A private redis-server that keeps its data when stopped and started."""
    server = RedisServer(_executable(), tmp_path, persistent=True)
    server.start()
    try:
        yield server
    finally:
        server.stop()
