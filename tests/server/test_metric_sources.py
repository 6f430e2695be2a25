"""Tests for wsserver.server.metric_sources: what plugins add to the metrics."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from wsserver.server import metric_sources as module
from wsserver.server.metric_sources import (
    MetricSource,
    add_limit_source,
    add_metric_source,
    limit_sources,
    metric_sources,
)
from wsserver.server.metrics import Metrics


@pytest.fixture
def isolated() -> Iterator[None]:
    """Sources registered by the test are forgotten after it."""
    saved = dict(module._sources)
    saved_limits = dict(module._limit_sources)
    try:
        yield
    finally:
        module._sources.clear()
        module._sources.update(saved)
        module._limit_sources.clear()
        module._limit_sources.update(saved_limits)


def samples(metrics: Metrics) -> dict[str, tuple[str, float]]:
    return {
        sample.name: (family.type, sample.value)
        for family in metrics.families()
        for sample in family.samples
    }


def test_a_source_is_read_at_each_scrape(isolated: None) -> None:
    value = [3.0]
    add_metric_source(MetricSource("wsserver_test_things", "counter", "things", lambda: value[0]))
    add_metric_source(MetricSource("wsserver_test_level", "gauge", "level", lambda: 7))
    metrics = Metrics("/metrics")
    assert samples(metrics)["wsserver_test_things_total"] == ("counter", 3.0)
    assert samples(metrics)["wsserver_test_level"] == ("gauge", 7.0)
    value[0] = 5.0
    assert samples(metrics)["wsserver_test_things_total"] == ("counter", 5.0)
    # The same name again replaces the first.
    add_metric_source(MetricSource("wsserver_test_level", "gauge", "level", lambda: 1))
    assert [s.name for s in metric_sources()].count("wsserver_test_level") == 1
    assert samples(metrics)["wsserver_test_level"] == ("gauge", 1.0)


def test_a_failing_source_is_left_out_with_a_warning(
    isolated: None, caplog: pytest.LogCaptureFixture
) -> None:
    def broken() -> float:
        raise RuntimeError("gone")

    add_metric_source(MetricSource("wsserver_test_broken", "gauge", "broken", broken))
    with caplog.at_level(logging.WARNING, logger="wsserver"):
        found = samples(Metrics("/metrics"))
    assert "wsserver_test_broken" not in found
    assert "wsserver_websockets_open" in found
    assert "metric source wsserver_test_broken failed" in caplog.text


@pytest.mark.parametrize(
    "source",
    [
        MetricSource("wsserver_x", "histogram", "no", lambda: 0),  # type: ignore[arg-type]
        MetricSource("other_x", "gauge", "no", lambda: 0),
        MetricSource("wsserver_x_total", "counter", "no", lambda: 0),
    ],
)
def test_bad_sources_are_refused(isolated: None, source: MetricSource) -> None:
    with pytest.raises(ValueError):
        add_metric_source(source)


def test_a_limit_source_adds_to_the_servers_limit_hits(
    isolated: None, caplog: pytest.LogCaptureFixture
) -> None:
    hits = [2.0]
    metrics = Metrics("/metrics")
    metrics.limit_hit("max_connections")
    metrics.limit_hit("test_limit")  # the server's count and the plugin's add up
    add_limit_source("test_limit", lambda: hits[0])
    add_limit_source("test_unused", lambda: 0)

    def broken() -> float:
        raise RuntimeError("gone")

    add_limit_source("test_broken", broken)
    assert [limit for limit, _ in limit_sources()][-3:] == [
        "test_limit",
        "test_unused",
        "test_broken",
    ]

    def limit_hits() -> dict[str, float]:
        return {
            sample.labels["limit"]: sample.value
            for family in metrics.families()
            for sample in family.samples
            if sample.name == "wsserver_limit_hits_total"
        }

    with caplog.at_level(logging.WARNING, logger="wsserver"):
        found = limit_hits()
    assert found["test_limit"] == 3.0 and found["max_connections"] == 1.0
    assert "test_unused" not in found  # a label appears with its first hit
    assert "test_broken" not in found and "limit source test_broken failed" in caplog.text
    hits[0] = 5.0
    assert limit_hits()["test_limit"] == 6.0
    # The server's own counter is not changed by a scrape.
    assert limit_hits()["test_limit"] == 6.0
    for bad in ("", "Max", "two words", "a-b"):
        with pytest.raises(ValueError, match="lower_snake_case"):
            add_limit_source(bad, lambda: 0)
