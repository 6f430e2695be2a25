"""Tests for wsserver.plugins.channels.history: positions, entries, the in-process store.

Offsets count from 1 per topic in one epoch; the store keeps at most
``size`` messages for at most ``ttl`` seconds (on a clock the test moves);
``recover`` replays exactly what a subscriber missed, or says why it cannot.
"""

from __future__ import annotations

import pytest

from wsserver.plugins.channels import HistoryEntry, HistoryLost, Position
from wsserver.plugins.channels.history import (
    HistoryRange,
    MemoryHistory,
    check_history,
    new_epoch,
    recover,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_offsets_count_from_one_per_topic_in_one_epoch() -> None:
    history = MemoryHistory()
    first = history.append("a", "x", None, size=10, ttl=60)
    assert (first.offset, first.epoch, first.message) == (1, history.epoch, "x")
    assert history.append("a", "y", "c1", size=10, ttl=60).offset == 2
    assert history.append("b", "z", None, size=10, ttl=60).offset == 1
    found = history.range("a", 0, ttl=60)
    assert [(e.offset, e.message, e.ignore) for e in found.entries] == [
        (1, "x", None),
        (2, "y", "c1"),
    ]
    assert (found.epoch, found.top) == (history.epoch, 2)
    assert history.range("a", None, ttl=60) == HistoryRange(history.epoch, 2)
    assert history.range("unknown", 0, ttl=60) == HistoryRange(history.epoch, 0)
    assert history.topics() == 2
    # Every store is an epoch of its own: a restarted process is another.
    assert MemoryHistory().epoch != history.epoch


def test_history_is_trimmed_by_count() -> None:
    history = MemoryHistory()
    for n in range(10):
        history.append("t", n, None, size=3, ttl=60)
    found = history.range("t", 0, ttl=60)
    assert [e.offset for e in found.entries] == [8, 9, 10] and found.top == 10
    assert [e.offset for e in history.range("t", 8, ttl=60).entries] == [9, 10]


def test_history_is_trimmed_by_age() -> None:
    clock = Clock()
    history = MemoryHistory(clock)
    history.append("t", "old", None, size=10, ttl=5)
    clock.now += 3
    history.append("t", "newer", None, size=10, ttl=5)
    clock.now += 3  # "old" is 6 s old now
    found = history.range("t", 0, ttl=5)
    assert [e.message for e in found.entries] == ["newer"] and found.top == 2
    clock.now += 10
    assert history.range("t", 0, ttl=5).entries == ()


def test_recover_replays_exactly_what_was_missed() -> None:
    history = MemoryHistory()
    for n in range(5):
        history.append("t", n, None, size=10, ttl=60)
    found = history.range("t", 2, ttl=60)
    entries, lost = recover("t", Position(history.epoch, 2), found)
    assert lost is None and [e.offset for e in entries] == [3, 4, 5]
    # Up to date: nothing to replay, nothing lost.
    assert recover("t", Position(history.epoch, 5), history.range("t", 5, ttl=60)) == ((), None)


def test_recover_says_why_it_cannot() -> None:
    history = MemoryHistory()
    for n in range(10):
        history.append("t", n, None, size=3, ttl=60)
    entries, lost = recover("t", Position(history.epoch, 2), history.range("t", 2, ttl=60))
    assert entries == () and lost is not None
    assert (lost.topic, lost.reason, lost.position) == ("t", "trimmed", Position(history.epoch, 10))
    _, lost = recover("t", Position("another", 2), history.range("t", 2, ttl=60))
    assert lost is not None and lost.reason == "epoch"
    # An offset this epoch has not reached comes from a lost history too.
    _, lost = recover("t", Position(history.epoch, 99), history.range("t", 99, ttl=60))
    assert lost is not None and lost.reason == "epoch"
    assert "t" in str(lost)
    assert isinstance(HistoryLost("t", None, "overflow"), Exception)


def test_entries_travel_as_payloads() -> None:
    entry = HistoryEntry("t", "e1", 7, {"a": [1]}, "c1")
    payload = entry.to_payload()
    assert payload == {
        "op": "hist",
        "ep": "e1",
        "off": 7,
        "p": {"topic": "t", "msg": {"a": [1]}, "ignore": "c1"},
    }
    assert HistoryEntry.from_payload(payload) == entry
    assert entry.position == Position("e1", 7)
    for bad in ({**payload, "off": 0}, {**payload, "off": True}, {**payload, "p": []}):
        with pytest.raises((TypeError, ValueError)):
            HistoryEntry.from_payload(bad)
    with pytest.raises(KeyError):
        HistoryEntry.from_payload({"op": "hist"})


@pytest.mark.parametrize(
    ("epoch", "offset"),
    [("", 1), ("x" * 65, 1), (3, 1), ("e", -1), ("e", True), ("e", 1.5), ("e", 2**53)],
)
def test_positions_are_checked(epoch: object, offset: object) -> None:
    with pytest.raises(ValueError):
        Position(epoch, offset)  # type: ignore[arg-type]


def test_limits_are_checked() -> None:
    assert check_history(0, 1) == (0, 1.0)
    for size, ttl in ((-1, 1.0), (True, 1.0), (1, 0), (1, float("inf"))):
        with pytest.raises(ValueError):
            check_history(size, ttl)
    assert len(new_epoch()) == 16
