"""Tests for wsserver.server.metric_sources: what plugins add to the metrics."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from wsserver.server import metric_sources as module
from wsserver.server.metric_sources import MetricSource, add_metric_source, metric_sources
from wsserver.server.metrics import Metrics


@pytest.fixture
def isolated() -> Iterator[None]:
    """Sources registered by the test are forgotten after it."""
    saved = dict(module._sources)
    try:
        yield
    finally:
        module._sources.clear()
        module._sources.update(saved)


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
