"""``Metrics``: the server's figures in the Prometheus text format.

Off by default (``ServerConfig.metrics_path``); this module, and
``prometheus_client`` with it, is imported only when it is on.

Nothing here runs per message.  Each ``Connection`` keeps plain integer
counters of its own (messages in and out by type, payload bytes out by
type; it already counted the bytes read and written), incremented inline
in its drive loop and its sends.  This module adds them up twice: once when
a connection ends (``connection_ended``, into the totals kept here), and at
scrape time over the connections still open (``Collector.collect``).  What
happens once per connection or less (a handshake, an HTTP response, a
close, a pong, a limit hit) is counted here directly, in plain dicts.

``prometheus_client`` provides the registry, the metric families and the
exposition; the figures are plain numbers so that a worker can write them
to a file and any worker can add up all of them (``--workers N``): each
worker writes its snapshot into the directory ``METRICS_DIR_ENV`` names,
every ``SNAPSHOT_INTERVAL`` seconds and when it stops, and the worker that
is scraped writes its own first, then answers with the sum of every
snapshot.  Counters of workers that have exited are kept (a restarted
worker does not make a counter go back); their gauges are not.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from .metric_sources import limit_sources, metric_sources
from .responses import Response

__all__ = [
    "METRICS",
    "METRICS_DIR_ENV",
    "PING_RTT_BUCKETS",
    "SNAPSHOT_INTERVAL",
    "Metered",
    "MetricSpec",
    "Metrics",
]

#: The environment variable naming the directory where each worker of
#: ``--workers N`` writes its snapshot (set by the supervisor).
METRICS_DIR_ENV = "WSSERVER_METRICS_DIR"
#: Seconds between two snapshots of a worker: the most another worker's
#: figures can lag behind in a scrape.
SNAPSHOT_INTERVAL = 1.0
#: Upper bounds of the ping round-trip-time histogram, in seconds: from a
#: loopback or same-datacentre peer (1 ms) to a phone on a poor network.
PING_RTT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """One metric: its name (without ``_total``), kind, meaning and labels."""

    name: str
    kind: str  # "counter", "gauge" or "histogram"
    help: str
    labels: tuple[str, ...] = ()


#: Every metric, in the order of the exposition (docs/operations.md).
METRICS = (
    MetricSpec("wsserver_ready", "gauge", "1 while /readyz answers 200, else 0"),
    MetricSpec("wsserver_connections_open", "gauge", "Open TCP connections (HTTP and WebSocket)"),
    MetricSpec("wsserver_websockets_open", "gauge", "Open WebSocket connections (accepted)"),
    MetricSpec(
        "wsserver_websocket_handshakes",
        "counter",
        "WebSocket handshakes answered, by outcome (accepted, refused, error) and status",
        ("outcome", "status"),
    ),
    MetricSpec(
        "wsserver_http_requests", "counter", "Plain HTTP responses sent, by status", ("status",)
    ),
    MetricSpec(
        "wsserver_websocket_messages_received",
        "counter",
        "WebSocket messages received, by type (text, binary)",
        ("type",),
    ),
    MetricSpec(
        "wsserver_websocket_messages_sent",
        "counter",
        "WebSocket messages sent, by type (text, binary)",
        ("type",),
    ),
    MetricSpec(
        "wsserver_websocket_payload_bytes_sent",
        "counter",
        "Payload bytes of the WebSocket messages sent, by type, before compression",
        ("type",),
    ),
    MetricSpec(
        "wsserver_received_bytes",
        "counter",
        "Bytes read from client sockets (HTTP and WebSocket, frames included)",
    ),
    MetricSpec(
        "wsserver_sent_bytes",
        "counter",
        "Bytes written to client sockets (HTTP and WebSocket, frames included)",
    ),
    MetricSpec(
        "wsserver_websocket_closes",
        "counter",
        "WebSocket connections ended, by close code and the side that closed first",
        ("code", "side"),
    ),
    MetricSpec(
        "wsserver_websocket_ping_rtt_seconds",
        "histogram",
        "Round-trip time of pings (heartbeats and the application's), by their pongs",
    ),
    MetricSpec(
        "wsserver_broadcast_drops",
        "counter",
        "Broadcast messages not queued for a peer that was not keeping up",
    ),
    MetricSpec(
        "wsserver_slow_consumer_closes",
        "counter",
        "Connections closed because the peer did not read, by cause",
        ("cause",),
    ),
    MetricSpec(
        "wsserver_limit_hits",
        "counter",
        "Requests or connections refused or closed by a limit, by limit",
        ("limit",),
    ),
)

logger = logging.getLogger("wsserver")


class Metered(Protocol):
    """What a connection counts for the metrics (``Connection``)."""

    text_in: int
    binary_in: int
    text_out: int
    binary_out: int
    text_bytes_out: int
    binary_bytes_out: int

    @property
    def bytes_in(self) -> int:
        """Bytes read from the socket."""
        ...

    @property
    def bytes_out(self) -> int:
        """Bytes handed to the transport."""
        ...

    @property
    def is_websocket(self) -> bool:
        """Whether the handshake was accepted and the connection not ended."""
        ...


class Live(Protocol):
    """What the collector asks of the server at scrape time (``Server``)."""

    @property
    def metered(self) -> Iterable[Metered]:
        """The connections still open."""
        ...

    @property
    def ready(self) -> bool:
        """Whether /readyz would answer 200."""
        ...


# A snapshot: every figure as plain data, JSON-ready.  Label values are
# strings; a histogram is its bucket counts (not cumulative) and its sum.
Figures = dict[str, dict[str, float]]


def _key(*labels: object) -> str:
    """Label values as one dict key (JSON objects want string keys)."""
    return "\x1f".join(str(label) for label in labels)


def _labels(key: str) -> list[str]:
    return key.split("\x1f") if key else []


class Metrics:
    """The figures of one server process, and their exposition.

    Args:
        path: where they are served (``ServerConfig.metrics_path``).
        snapshot_dir: with ``--workers N``, the directory every worker
            writes its snapshot to, and reads the others' from.

    The counters of the per-event metrics are plain dicts keyed by label
    values: a handshake costs a dict update, not a lock.
    """

    def __init__(self, path: str, snapshot_dir: str | None = None) -> None:
        self.path = path
        self.snapshot_dir = snapshot_dir
        self.registry = CollectorRegistry(auto_describe=False)
        self._live: Live | None = None
        # Totals of the connections that ended, and the per-event counters.
        self._counters: dict[str, dict[str, float]] = {
            spec.name: {} for spec in METRICS if spec.kind == "counter"
        }
        self._rtt_buckets = [0] * (len(PING_RTT_BUCKETS) + 1)
        self._rtt_sum = 0.0
        self._snapshot_name = f"worker-{os.getpid()}.json"

    def attach(self, live: Live) -> None:
        """Collect from ``live`` (the server) from now on."""
        self._live = live
        self.registry.register(_Collector(self))

    # -- per-event counters (once per connection or less) ------------------

    def _add(self, name: str, key: str = "", amount: float = 1) -> None:
        counter = self._counters[name]
        counter[key] = counter.get(key, 0) + amount

    def handshake(self, status: int) -> None:
        """A WebSocket handshake was answered with ``status``."""
        outcome = "accepted" if status == 101 else "error" if status >= 500 else "refused"
        self._add("wsserver_websocket_handshakes", _key(outcome, status))

    def http_response(self, status: int) -> None:
        """A plain HTTP request was answered with ``status``."""
        self._add("wsserver_http_requests", _key(status))

    def limit_hit(self, limit: str) -> None:
        """A limit refused a request or ended a connection."""
        self._add("wsserver_limit_hits", limit)

    def slow_consumer_closed(self, cause: str) -> None:
        """A connection was closed because its peer did not read."""
        self._add("wsserver_slow_consumer_closes", cause)

    def broadcast_dropped(self) -> None:
        """A broadcast skipped a peer that was not keeping up."""
        self._add("wsserver_broadcast_drops")

    def ping_rtt(self, seconds: float) -> None:
        """A pong measured a round trip."""
        index = 0
        for bound in PING_RTT_BUCKETS:
            if seconds <= bound:
                break
            index += 1
        self._rtt_buckets[index] += 1
        self._rtt_sum += seconds

    def connection_ended(self, connection: Metered) -> None:
        """Add an ended connection's own counters to the totals."""
        self._add_traffic(self._counters, connection)

    def websocket_closed(self, code: int, side: str) -> None:
        """A WebSocket connection ended with ``code``, closed first by ``side``."""
        self._add("wsserver_websocket_closes", _key(code, side))

    @staticmethod
    def _add_traffic(into: dict[str, dict[str, float]], connection: Metered) -> None:
        def add(name: str, key: str, amount: int) -> None:
            if amount:
                counter = into[name]
                counter[key] = counter.get(key, 0) + amount

        add("wsserver_websocket_messages_received", "text", connection.text_in)
        add("wsserver_websocket_messages_received", "binary", connection.binary_in)
        add("wsserver_websocket_messages_sent", "text", connection.text_out)
        add("wsserver_websocket_messages_sent", "binary", connection.binary_out)
        add("wsserver_websocket_payload_bytes_sent", "text", connection.text_bytes_out)
        add("wsserver_websocket_payload_bytes_sent", "binary", connection.binary_bytes_out)
        add("wsserver_received_bytes", "", connection.bytes_in)
        add("wsserver_sent_bytes", "", connection.bytes_out)

    # -- snapshots ---------------------------------------------------------------

    def snapshot(self) -> dict[str, object]:
        """This process's figures now, ended and live connections together."""
        counters = {name: dict(values) for name, values in self._counters.items()}
        gauges: Figures = {}
        live = self._live
        if live is not None:
            opened = websockets = 0
            for connection in live.metered:
                opened += 1
                websockets += connection.is_websocket
                self._add_traffic(counters, connection)
            gauges["wsserver_ready"] = {"": 1 if live.ready else 0}
            gauges["wsserver_connections_open"] = {"": opened}
            gauges["wsserver_websockets_open"] = {"": websockets}
        # What plugins registered (wsserver.server.metric_sources).
        for source in metric_sources():
            try:
                reading = float(source.read())
            except Exception as error:
                logger.warning("metric source %s failed: %r", source.name, error)
                continue
            (counters if source.kind == "counter" else gauges)[source.name] = {"": reading}
        # The plugins' limits, with the server's (``add_limit_source``).
        hits = counters["wsserver_limit_hits"]
        for limit, read in limit_sources():
            try:
                reading = float(read())
            except Exception as error:
                logger.warning("limit source %s failed: %r", limit, error)
                continue
            if reading:
                hits[limit] = hits.get(limit, 0) + reading
        return {
            "pid": os.getpid(),
            "counters": counters,
            "gauges": gauges,
            "rtt": {"buckets": list(self._rtt_buckets), "sum": self._rtt_sum},
        }

    def write_snapshot(self) -> None:
        """Write this worker's snapshot for the others (``snapshot_dir``).

        Written to a temporary file and renamed: a reader sees the previous
        snapshot or this one, never half of one.
        """
        directory = self.snapshot_dir
        if directory is None:
            return
        data = json.dumps(self.snapshot()).encode()
        fd, temporary = tempfile.mkstemp(dir=directory, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(data)
            os.replace(temporary, os.path.join(directory, self._snapshot_name))
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise

    def _all_snapshots(self) -> list[dict[str, object]]:
        """Every worker's snapshot, this one's fresh; only this one without workers."""
        own = self.snapshot()
        directory = self.snapshot_dir
        if directory is None:
            return [own]
        self.write_snapshot()
        found = [own]
        for name in sorted(os.listdir(directory)):
            if not name.startswith("worker-") or name == self._snapshot_name:
                continue
            with contextlib.suppress(OSError, ValueError):
                with open(os.path.join(directory, name), "rb") as file:
                    snapshot = json.load(file)
                if not isinstance(snapshot, dict):
                    continue
                if not _alive(snapshot.get("pid")):
                    # An exited worker's counters still count; its gauges
                    # (open connections, readiness) no longer do.
                    snapshot["gauges"] = {}
                found.append(snapshot)
        return found

    # -- the exposition ------------------------------------------------------------

    def families(self) -> Iterator[Metric]:
        """The metric families, every worker's figures added up."""
        snapshots = self._all_snapshots()
        counters: dict[str, dict[str, float]] = {}
        gauges: dict[str, dict[str, float]] = {}
        buckets = [0.0] * (len(PING_RTT_BUCKETS) + 1)
        rtt_sum = 0.0
        for snapshot in snapshots:
            for into, part in ((counters, "counters"), (gauges, "gauges")):
                section = snapshot.get(part)
                if not isinstance(section, dict):
                    continue
                for name, values in section.items():
                    total = into.setdefault(name, {})
                    for key, value in values.items():
                        total[key] = total.get(key, 0) + value
            rtt = snapshot.get("rtt")
            if isinstance(rtt, dict) and len(rtt.get("buckets", ())) == len(buckets):
                for index, count in enumerate(rtt["buckets"]):
                    buckets[index] += count
                rtt_sum += rtt.get("sum", 0.0)
        # Gauges are summed over the live workers; readiness is 1 only when
        # every live worker is ready.
        ready = [
            section["wsserver_ready"].get("", 0)
            for section in (snapshot.get("gauges") for snapshot in snapshots)
            if isinstance(section, dict) and isinstance(section.get("wsserver_ready"), dict)
        ]
        gauges["wsserver_ready"] = {"": 1 if ready and all(ready) else 0}
        sources = tuple(
            MetricSpec(source.name, source.kind, source.help) for source in metric_sources()
        )
        for spec in (*METRICS, *sources):
            if spec.kind == "histogram":
                cumulative = 0.0
                points = []
                for bound, count in zip((*PING_RTT_BUCKETS, math.inf), buckets, strict=True):
                    cumulative += count
                    points.append(("+Inf" if bound == math.inf else repr(bound), cumulative))
                family = HistogramMetricFamily(spec.name, spec.help)
                family.add_metric([], points, rtt_sum)
                yield family
                continue
            values = (counters if spec.kind == "counter" else gauges).get(spec.name, {})
            metric: CounterMetricFamily | GaugeMetricFamily
            if spec.kind == "counter":
                metric = CounterMetricFamily(spec.name, spec.help, labels=spec.labels)
            else:
                metric = GaugeMetricFamily(spec.name, spec.help, labels=spec.labels)
            if not values and spec in sources:
                continue  # its reader failed (logged): no figure rather than a false 0
            if not spec.labels and not values:
                values = {"": 0}
            for key, value in sorted(values.items()):
                metric.add_metric(_labels(key), value)
            yield metric

    def response(self) -> Response:
        """The exposition, as the answer to a scrape."""
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)


class _Collector(Collector):
    """Hands ``prometheus_client`` the families of one ``Metrics``."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterable[Metric]:
        return self._metrics.families()


def _alive(pid: object) -> bool:
    """Whether process ``pid`` still runs (a worker's snapshot is current)."""
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - another user's process
        return True
    return True
