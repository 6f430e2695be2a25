"""Figures that plugins (or applications) add to the metrics: ``add_metric_source``.

A plugin cannot reach the server's ``Metrics`` (it may not even know the
server, and ``prometheus_client`` may not be installed), so it registers a
source here once, at import: a name, a kind, a meaning, and a function that
reads the current value from the plugin's own plain counters::

    add_metric_source(MetricSource(
        "wsserver_js_call_timeouts", "counter", "JS calls that timed out",
        lambda: _stats.timeouts,
    ))

When metrics are on, every scrape (and every worker's snapshot) reads each
source; when they are off, nothing reads them, and registering costs a dict
entry.  A counter's name is given without ``_total`` (the exposition adds
it).  A reader must be quick and must not block: it runs on the event loop.

A plugin's own limits are counted with the server's, in
``wsserver_limit_hits_total{limit=...}``: ``add_limit_source(limit, read)``
registers the reader of one ``limit`` label (the setting's name), added at
each scrape to what the server counted under the same label::

    add_limit_source("max_user_waits", lambda: _hits["max_user_waits"])
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "MetricSource",
    "add_limit_source",
    "add_metric_source",
    "limit_sources",
    "metric_sources",
]


@dataclass(frozen=True, slots=True)
class MetricSource:
    """One figure read at scrape time: a counter or a gauge, without labels."""

    name: str
    kind: Literal["counter", "gauge"]
    help: str
    read: Callable[[], float]


_sources: dict[str, MetricSource] = {}
_limit_sources: dict[str, Callable[[], float]] = {}


def add_metric_source(source: MetricSource) -> None:
    """Register ``source``; one of the same name registered before is replaced."""
    if source.kind not in ("counter", "gauge"):
        raise ValueError(f"a metric source is a counter or a gauge, not {source.kind!r}")
    if not source.name.startswith("wsserver_") or source.name.endswith("_total"):
        raise ValueError(
            f"{source.name!r}: a source's name starts with 'wsserver_' and has no '_total'"
        )
    _sources[source.name] = source


def metric_sources() -> tuple[MetricSource, ...]:
    """Every registered source, in registration order."""
    return tuple(_sources.values())


def add_limit_source(limit: str, read: Callable[[], float]) -> None:
    """Register the reader of ``wsserver_limit_hits_total{limit="<limit>"}``'s
    share of a plugin; one registered before under the same ``limit`` is
    replaced."""
    if not limit or not limit.replace("_", "").isalnum() or not limit.islower():
        raise ValueError(f"{limit!r}: a limit is named by its setting, in lower_snake_case")
    _limit_sources[limit] = read


def limit_sources() -> tuple[tuple[str, Callable[[], float]], ...]:
    """Every registered limit reader, ``(limit, read)``, in registration order."""
    return tuple(_limit_sources.items())
