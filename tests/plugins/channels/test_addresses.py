"""Tests for wsserver.plugins.channels.addresses: channel ids, topics, subjects."""

from __future__ import annotations

import pytest

from wsserver.plugins.channels.addresses import (
    ALL_NODES,
    MAX_TOPIC_LENGTH,
    PLUGIN,
    check_topic,
    new_channel_id,
    node_of,
    node_subject,
    topic_subject,
    user_subject,
)


def test_a_channel_id_names_its_node() -> None:
    first, second = new_channel_id("node1"), new_channel_id("node1")
    assert first != second
    assert first.startswith("node1.") and len(first) == len("node1.") + 16
    assert node_of(first) == "node1"
    assert node_of("a.b.c") == "a"


@pytest.mark.parametrize("text", ["no-dot", ".x", "x.", "", "."])
def test_what_names_no_node(text: str) -> None:
    assert node_of(text) is None


def test_topic_names() -> None:
    assert check_topic("room:1") == "room:1"
    assert check_topic("x" * MAX_TOPIC_LENGTH) == "x" * 256
    for bad in ("", "x" * 257, 5, None):
        with pytest.raises(ValueError, match="topic"):
            check_topic(bad)


def test_names_on_the_wire_and_the_backend() -> None:
    assert PLUGIN == "ch"
    assert ALL_NODES == "all"
    assert node_subject("n1") == "node:n1"
    assert user_subject("ann") == "user:ann"
    assert topic_subject("news") == "topic:news"
