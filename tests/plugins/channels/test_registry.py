"""Tests for wsserver.plugins.channels.registry: users, sessions, channels, topics."""

from __future__ import annotations

import pytest

from wsserver.plugins.channels.registry import Registry


def make() -> Registry[str]:
    registry: Registry[str] = Registry()
    registry.add("n.1", "one", user_id="ann", session_id="s1")
    registry.add("n.2", "two", user_id="ann", session_id="s1")  # a second tab
    registry.add("n.3", "three", user_id="ann", session_id="s2")  # another login
    registry.add("n.4", "four", user_id="bob")
    registry.add("n.5", "five")  # anonymous
    return registry


def test_user_sessions_and_channels() -> None:
    registry = make()
    assert len(registry) == 5
    assert registry.users() == {"ann", "bob"}
    assert registry.user_channels("ann") == {"n.1", "n.2", "n.3"}
    assert registry.user_sessions("ann") == {"s1", "s2"}
    assert registry.session_channels("s1") == {"n.1", "n.2"}
    assert registry.user_channels("bob") == {"n.4"}
    assert registry.user_sessions("bob") == set()
    assert registry.user_channels("nobody") == set()
    assert registry.get("n.5") == "five" and registry.user_of("n.5") is None
    assert registry.user_of("n.1") == "ann"
    assert "n.2" in registry and "n.9" not in registry
    assert sorted(registry) == ["n.1", "n.2", "n.3", "n.4", "n.5"]
    assert sorted(registry.items()) == ["five", "four", "one", "three", "two"]


def test_add_reports_the_users_first_channel_and_refuses_duplicates() -> None:
    registry: Registry[int] = Registry()
    assert registry.add("a", 1, user_id="u") is True
    assert registry.add("b", 2, user_id="u") is False
    assert registry.add("c", 3) is False
    with pytest.raises(ValueError, match="already"):
        registry.add("a", 4)


def test_remove_cleans_every_index() -> None:
    registry = make()
    registry.subscribe("n.1", "room")
    registry.subscribe("n.4", "room")
    registry.subscribe("n.1", "solo")
    removed = registry.remove("n.1")
    assert removed is not None
    assert (removed.item, removed.user_id, removed.session_id) == ("one", "ann", "s1")
    assert removed.topics == {"room", "solo"}
    assert removed.emptied_topics == {"solo"}
    assert removed.last_of_user is False
    assert registry.session_channels("s1") == {"n.2"}
    assert registry.subscribers("room") == {"n.4"}
    assert registry.topics() == {"room"}
    for channel in ("n.2", "n.3"):
        assert registry.remove(channel) is not None
    last = registry.remove("n.3")
    assert last is None  # already gone
    assert "ann" not in registry.users()
    assert registry.user_sessions("ann") == set()
    assert registry.session_channels("s1") == set()


def test_the_users_last_channel() -> None:
    registry = make()
    removed = registry.remove("n.4")
    assert removed is not None and removed.last_of_user
    anonymous = registry.remove("n.5")
    assert anonymous is not None and not anonymous.last_of_user


def test_topics_first_and_last_subscriber() -> None:
    registry = make()
    assert registry.subscribe("n.1", "t") is True
    assert registry.subscribe("n.2", "t") is False
    assert registry.subscribe("n.2", "t") is False  # again: no change
    assert registry.subscribers("t") == {"n.1", "n.2"}
    assert registry.topics_of("n.2") == {"t"}
    assert registry.unsubscribe("n.1", "t") is False
    assert registry.unsubscribe("n.1", "t") is False  # not subscribed
    assert registry.unsubscribe("n.2", "t") is True
    assert registry.subscribers("t") == set() and registry.topics() == set()
    assert registry.unsubscribe("n.9", "t") is False
    assert registry.topics_of("n.9") == frozenset()
    with pytest.raises(KeyError):
        registry.subscribe("n.9", "t")


def test_reidentify_moves_a_channel_and_keeps_its_topics() -> None:
    registry = make()
    registry.subscribe("n.4", "news")
    # Bob's only channel becomes Ann's, in a new session: his last one.
    assert registry.reidentify("n.4", user_id="ann", session_id="s3") is True
    assert registry.users() == {"ann"}
    assert registry.user_channels("ann") == {"n.1", "n.2", "n.3", "n.4"}
    assert registry.user_sessions("ann") == {"s1", "s2", "s3"}
    assert registry.user_of("n.4") == "ann"
    assert registry.topics_of("n.4") == frozenset({"news"})
    # One of Ann's tabs changes session only: not her last channel.
    assert registry.reidentify("n.2", user_id="ann", session_id="s2") is False
    assert registry.session_channels("s1") == {"n.1"}
    assert registry.session_channels("s2") == {"n.2", "n.3"}
    # An anonymous channel gets a user, and loses it again.
    assert registry.reidentify("n.5", user_id="cid", session_id=None) is False
    assert registry.user_channels("cid") == {"n.5"}
    assert registry.reidentify("n.5", user_id=None, session_id=None) is True
    assert "cid" not in registry.users()
    # The same user again is not "the last channel of the old user".
    assert registry.reidentify("n.1", user_id="ann", session_id="s1") is False
    removed = registry.remove("n.4")
    assert removed is not None and removed.user_id == "ann" and removed.session_id == "s3"
    assert registry.session_channels("s3") == set()
    with pytest.raises(KeyError):
        registry.reidentify("n.9", user_id="x", session_id=None)
