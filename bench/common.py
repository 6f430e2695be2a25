"""What the runner and the load generator share: scenarios, payloads, limits."""

from __future__ import annotations

import contextlib
import json
import random
import resource
from dataclasses import dataclass, replace
from typing import Literal

__all__ = [
    "ASGI_SCENARIOS",
    "ASGI_SERVERS",
    "HTTP_SERVERS",
    "SCENARIOS",
    "SERVERS",
    "SHAPES",
    "VARIANTS",
    "WINDOW32",
    "Scenario",
    "ShapeChoice",
    "json_messages",
    "quick_scenario",
    "raise_open_file_limit",
    "scenario_by_name",
    "scenarios_for_shape",
]

KiB = 1024
MiB = 1024 * 1024

#: The servers, in table order.  wsserver first: the ratios are wsserver/peer.
SERVERS = ("wsserver", "websockets", "aiohttp", "picows")
#: Variants of a server, run only when named in ``--servers`` and left out
#: of the tables: ``wsserver-metrics`` is wsserver with ``--metrics-path``
#: on, to measure what the metrics cost (docs/benchmarks.md).
VARIANTS = ("wsserver-metrics",)

#: The ASGI rows (``python -m bench.asgi``): the same application
#: (bench/servers/asgi_echo.py) on each ASGI server, wsserver first.
ASGI_SERVERS = ("wsserver-asgi", "uvicorn-websockets", "uvicorn-wsproto", "hypercorn", "granian")
#: The servers of the HTTP "hello" row: uvicorn with either of its parsers.
HTTP_SERVERS = ("wsserver-asgi", "uvicorn-h11", "uvicorn-httptools")

Kind = Literal["latency", "echo", "handshake", "rss", "broadcast", "http"]

#: How an echo scenario's load generator keeps messages in flight (see
#: bench/client.py and "Load shapes" in docs/benchmarks.md):
#: ``deep``: a deep window (up to 256 per connection), replacements sent in
#: quarter-window batches; ``window32``: at most 32 per connection, the client
#: woken by ``SO_RCVLOWAT`` once half of its window's replies have arrived.
Shape = Literal["deep", "window32"]
SHAPES: tuple[Shape, ...] = ("deep", "window32")
#: What ``--shape`` accepts: one shape, or both side by side.
ShapeChoice = Shape | Literal["both"]
#: Messages in flight per connection in the ``window32`` shape.
WINDOW32 = 32


@dataclass(frozen=True)
class Scenario:
    """One measurement.

    Attributes:
        name: identifier on the command line and in the results.
        kind: what the load generator does (see bench/client.py).
        title: the row label in docs/benchmarks.md, a format string
            (``label`` fills in ``{connections}``).
        connections: connections opened by the load generator.
        size: message size in bytes.
        window: messages in flight per connection (pipelining depth).
        text: send text (JSON) instead of binary messages.
        deflate: start the server with permessage-deflate and offer it.
        broadcast_count: messages per ``broadcast:`` command.
        shape: how the echo load keeps its window full (``SHAPES``).
    """

    name: str
    kind: Kind
    title: str
    connections: int = 1
    size: int = 16
    window: int = 1
    text: bool = False
    deflate: bool = False
    broadcast_count: int = 10
    shape: Shape = "deep"

    @property
    def label(self) -> str:
        return self.title.format(connections=self.connections)


def _size_label(size: int) -> str:
    if size >= MiB:
        return f"{size // MiB} MiB"
    if size >= KiB:
        return f"{size // KiB} KiB"
    return f"{size} B"


def _window(connections: int, size: int) -> int:
    # Pipelining depth: enough messages in flight that the server never waits
    # for the next one (a single connection needs more: the two processes
    # take turns), bounded in bytes for large messages, at least 2.
    if connections == 1:
        return max(2, min(256, 4 * MiB // size))
    return max(2, min(64, MiB // size))


def _echo(connections: int, size: int) -> Scenario:
    label = {16: "16", KiB: "1k", 64 * KiB: "64k", MiB: "1m"}[size]
    return Scenario(
        name=f"echo_c{connections}_{label}",
        kind="echo",
        title=f"echo {_size_label(size)}, {{connections}} conn, pipelined",
        connections=connections,
        size=size,
        window=_window(connections, size),
    )


def _echo_window32(connections: int, size: int) -> Scenario:
    # The load shape of issue 16: the same echo, a window of at most 32.
    deep = _echo(connections, size)
    return replace(
        deep,
        name=f"{deep.name}@w32",
        title=f"echo {_size_label(size)}, {{connections}} conn, window 32",
        window=WINDOW32,
        shape="window32",
    )


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("latency_16", "latency", "round trip 16 B, 1 conn", size=16),
    *(_echo(c, s) for c in (1, 64) for s in (16, KiB, 64 * KiB, MiB)),
    *(_echo_window32(c, s) for c in (1, 64) for s in (16, KiB, 64 * KiB)),
    Scenario(
        "deflate_json_c1",
        "echo",
        "deflate echo JSON 1 KiB, {connections} conn, pipelined",
        size=KiB,
        window=_window(1, KiB),
        text=True,
        deflate=True,
    ),
    Scenario(
        "deflate_json_c64",
        "echo",
        "deflate echo JSON 1 KiB, {connections} conn, pipelined",
        connections=64,
        size=KiB,
        window=_window(64, KiB),
        text=True,
        deflate=True,
    ),
    Scenario(
        "handshake_c32", "handshake", "handshakes (open + close), {connections} concurrent", 32
    ),
    Scenario(
        "rss_5000",
        "rss",
        "RSS per idle connection, {connections:,} conn",
        5000,
        size=KiB,
        text=True,
    ),
    Scenario(
        "rss_5000_deflate",
        "rss",
        "RSS per idle connection, {connections:,} conn, deflate",
        5000,
        size=KiB,
        text=True,
        deflate=True,
    ),
    Scenario(
        "broadcast_1000", "broadcast", "broadcast 16 B to {connections:,} conn", 1000, size=16
    ),
)


#: The scenarios of the ASGI rows: echo, handshakes and broadcast as above,
#: plus plain HTTP requests (``http``: ``connections`` keep-alive
#: connections, one ``GET`` in flight on each; requests per second).
ASGI_SCENARIOS: tuple[Scenario, ...] = (
    *(s for s in SCENARIOS if s.name in ("echo_c1_16", "echo_c64_1k", "handshake_c32")),
    *(s for s in SCENARIOS if s.name == "broadcast_1000"),
    Scenario("http_hello_c16", "http", "HTTP GET hello, {connections} conn, keep-alive", 16),
)


def scenario_by_name(name: str) -> Scenario:
    for scenario in (*SCENARIOS, *ASGI_SCENARIOS):
        if scenario.name == name:
            return scenario
    known = ", ".join(dict.fromkeys(s.name for s in (*SCENARIOS, *ASGI_SCENARIOS)))
    raise KeyError(f"unknown scenario {name!r}; known: {known}")


def scenarios_for_shape(
    scenarios: tuple[Scenario, ...], shape: ShapeChoice
) -> tuple[Scenario, ...]:
    """``scenarios`` under one load shape, or both side by side.

    An echo scenario with a ``window32`` twin (``echo_c1_16`` and
    ``echo_c1_16@w32``) is replaced by its twin for ``window32`` and followed
    by it for ``both``; a twin named on its own is dropped for ``deep`` and
    kept otherwise.  Every other scenario has one shape and is kept as it is.
    Duplicates are dropped, the order is kept.
    """
    twins = {s.name.removesuffix("@w32"): s for s in SCENARIOS if s.shape == "window32"}
    chosen: list[Scenario] = []
    for scenario in scenarios:
        if scenario.shape == "window32":
            candidates = [] if shape == "deep" else [scenario]
        elif scenario.name in twins:
            twin = twins[scenario.name]
            candidates = {"deep": [scenario], "window32": [twin], "both": [scenario, twin]}[shape]
        else:
            candidates = [scenario]
        chosen += [c for c in candidates if c not in chosen]
    return tuple(chosen)


def quick_scenario(scenario: Scenario) -> Scenario:
    """A scaled-down copy for ``--quick``: fewer connections, same shape."""
    if scenario.kind == "rss":
        return replace(scenario, connections=50)
    if scenario.kind == "broadcast":
        return replace(scenario, connections=20, broadcast_count=5)
    if scenario.kind == "echo":
        return replace(scenario, connections=min(scenario.connections, 4))
    if scenario.kind in ("handshake", "http"):
        return replace(scenario, connections=4)
    return scenario


def json_messages(count: int = 64, size: int = KiB, seed: int = 7692) -> list[bytes]:
    """``count`` different JSON objects of exactly ``size`` bytes each.

    Compressible as real application JSON is (repeated keys, small
    vocabulary, numbers), but not identical to one another, so that
    compression with context takeover does not reduce them to a reference
    to the previous message.
    """
    rng = random.Random(seed)
    users = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi"]
    events = ["click", "view", "scroll", "purchase", "login", "logout"]
    messages = []
    for index in range(count):
        record: dict[str, object] = {
            "id": index,
            "type": "event",
            "user": rng.choice(users),
            "event": rng.choice(events),
            "ts": 1_750_000_000_000 + rng.randrange(10**6),
            "items": [],
        }
        items: list[dict[str, object]] = []
        record["items"] = items
        while len(json.dumps(record, separators=(",", ":"))) < size - 64:
            items.append(
                {
                    "sku": f"SKU-{rng.randrange(10_000):04d}",
                    "qty": rng.randrange(1, 5),
                    "price": round(rng.uniform(1, 200), 2),
                    "tags": rng.sample(["new", "sale", "eco", "gift", "bulk"], 2),
                }
            )
        encoded = json.dumps(record, separators=(",", ":"))
        while len(encoded) > size - 16:
            items.pop()
            encoded = json.dumps(record, separators=(",", ":"))
        record["pad"] = ""
        encoded = json.dumps(record, separators=(",", ":"))
        record["pad"] = "x" * (size - len(encoded))
        data = json.dumps(record, separators=(",", ":")).encode()
        assert len(data) == size, (len(data), size)
        messages.append(data)
    return messages


def raise_open_file_limit() -> None:
    """Raise the soft ``RLIMIT_NOFILE`` to the hard limit (5,000 connections
    need more than the usual 1,024); quietly keep it where the system refuses."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
