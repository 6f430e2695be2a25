"""examples/bench_server.py end to end, and the benchmark harness (bench/).

The server runs as a subprocess on a free loopback port and is driven with
the websockets client.  The harness is checked on synthetic results (medians,
ratios, rendering) and with one ``--quick`` run against wsserver.  Nothing
here measures or asserts speed.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect

from bench.asgi import servers_for
from bench.channels import (
    ROWS,
    ChannelsDialect,
    SocketIODialect,
    render_channels,
    run_row,
    stamp_of,
    write_channels_section,
)
from bench.channels import summarize as summarize_channels
from bench.client import MAX_RCVLOWAT, reply_frame_size, run_scenario, wake_threshold
from bench.common import (
    SCENARIOS,
    WINDOW32,
    ShapeChoice,
    json_messages,
    quick_scenario,
    scenario_by_name,
    scenarios_for_shape,
)
from bench.run import (
    ASGI_END,
    ASGI_START,
    CHANNELS_END,
    CHANNELS_START,
    Executor,
    Plan,
    existing_block,
    render_markdown,
    summarize,
)
from examples.bench_server import parse_broadcast

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 5.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONASYNCIODEBUG"}
    env["PYTHONPATH"] = str(ROOT)
    return env


@contextmanager
def bench_server(*args: str) -> Iterator[str]:
    """examples/bench_server.py in a subprocess; yields its URL; SIGTERM after."""
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "examples" / "bench_server.py"), "--port", str(port), *args],
        cwd=ROOT,
        env=_environment(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            assert process.poll() is None, "the server exited at start"
            try:
                socket.create_connection(("127.0.0.1", port), 0.5).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "the server is not listening"
                time.sleep(0.05)
        yield f"ws://127.0.0.1:{port}/"
        process.send_signal(signal.SIGTERM)
        assert process.wait(10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        assert process.stderr is not None
        process.stderr.close()


# ---------------------------------------------------------------------------
# The broadcast command
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("broadcast:3", (3, 16)),
        ("broadcast:0:5", (0, 5)),
        ("broadcast:10:1024", (10, 1024)),
        ("broadcast:", None),
        ("broadcast:x", None),
        ("broadcast:1:2:3", None),
        ("broadcast:-1", None),
        ("broadcast:\u0661", None),  # ARABIC-INDIC DIGIT ONE: a digit, but not ASCII
        ("broadcast:1000001", None),
        (f"broadcast:1:{64 * 1024 * 1024 + 1}", None),
        ("hello", None),
    ],
)
def test_parse_broadcast(text, expected):
    assert parse_broadcast(text) == expected


# ---------------------------------------------------------------------------
# The server, end to end
# ---------------------------------------------------------------------------


async def test_echo_and_broadcast():
    with bench_server() as url:
        async with (
            connect(url, compression=None, open_timeout=TIMEOUT, max_size=None) as a,
            connect(url, compression=None, open_timeout=TIMEOUT, max_size=None) as b,
        ):
            await a.send("hello")
            assert await asyncio.wait_for(a.recv(), TIMEOUT) == "hello"
            await a.send(b"\x00\x01\x02")
            assert await asyncio.wait_for(a.recv(), TIMEOUT) == b"\x00\x01\x02"
            big = os.urandom(2 * 1024 * 1024)  # above wsserver's default 1 MiB limit
            await b.send(big)
            assert await asyncio.wait_for(b.recv(), TIMEOUT) == big
            # Not a command: echoed.
            await a.send("broadcast:x")
            assert await asyncio.wait_for(a.recv(), TIMEOUT) == "broadcast:x"

            await a.send("broadcast:3:5")
            for client in (a, b):
                for _ in range(3):
                    assert await asyncio.wait_for(client.recv(), TIMEOUT) == "xxxxx"
            await a.send("broadcast:2")
            for client in (a, b):
                for _ in range(2):
                    assert await asyncio.wait_for(client.recv(), TIMEOUT) == "x" * 16
            # The command itself was not echoed: the next message is the echo.
            await a.send("after")
            assert await asyncio.wait_for(a.recv(), TIMEOUT) == "after"


async def test_broadcast_skips_closed_connections():
    with bench_server() as url:
        async with connect(url, compression=None, open_timeout=TIMEOUT) as a:
            async with connect(url, compression=None, open_timeout=TIMEOUT) as b:
                await b.send("ready")
                assert await asyncio.wait_for(b.recv(), TIMEOUT) == "ready"
            await a.send("broadcast:1:4")
            assert await asyncio.wait_for(a.recv(), TIMEOUT) == "xxxx"


@pytest.mark.parametrize("deflate", [False, True])
async def test_compression_only_with_deflate(deflate):
    args = ["--deflate"] if deflate else []
    with bench_server(*args) as url:
        async with connect(url, compression="deflate", open_timeout=TIMEOUT) as client:
            assert client.response is not None
            agreed = client.response.headers.get("Sec-WebSocket-Extensions") or ""
            assert ("permessage-deflate" in agreed) is deflate
            message = json_messages(1)[0].decode()
            await client.send(message)
            assert await asyncio.wait_for(client.recv(), TIMEOUT) == message


@pytest.mark.parametrize("metrics", [False, True])
async def test_metrics_only_with_metrics(metrics):
    from bench.run import server_command

    from .server.test_metrics import http_get

    args = ["--metrics"] if metrics else []
    with bench_server(*args) as url:
        port = int(url.rsplit(":", 1)[1].strip("/"))
        async with connect(url, compression=None, open_timeout=TIMEOUT) as client:
            await client.send("hi")
            assert await asyncio.wait_for(client.recv(), TIMEOUT) == "hi"
            status, _, body = await http_get(port, "/metrics")
    assert status == (200 if metrics else 404)
    if metrics:
        assert b'wsserver_websocket_messages_received_total{type="text"} 1.0' in body
    # The benchmark runner's variant runs the same server with --metrics.
    command = server_command("wsserver-metrics", port, deflate=False, uvloop=False)
    assert command[1:3] == [str(ROOT / "examples" / "bench_server.py"), "--metrics"]


# ---------------------------------------------------------------------------
# The harness
# ---------------------------------------------------------------------------


def test_json_messages_are_distinct_json_of_the_exact_size():
    messages = json_messages(16, 1024)
    assert len(set(messages)) == 16
    for message in messages:
        assert len(message) == 1024
        assert isinstance(json.loads(message), dict)


def test_scenarios_are_named_uniquely_and_quick_copies_are_small():
    names = [s.name for s in SCENARIOS]
    assert len(names) == len(set(names))
    for scenario in SCENARIOS:
        assert scenario_by_name(scenario.name) is scenario
        assert quick_scenario(scenario).connections <= min(scenario.connections, 50)
    assert scenario_by_name("rss_5000").label == "RSS per idle connection, 5,000 conn"
    with pytest.raises(KeyError):
        scenario_by_name("nope")


def _record(server: str, scenario: str, run: int, **figures: float) -> dict[str, Any]:
    base: dict[str, Any] = {"loop": "asyncio", "scenario": scenario, "server": server, "run": run}
    base.update(server_cpu_pct=99.0, client_cpu_pct=40.0, other_cpu_pct=1.0)
    base.update(figures)
    return base


def _results(
    records: list[dict[str, Any]], servers: list[str], scenarios: list[str]
) -> dict[str, Any]:
    return {
        "started": "2026-01-01 00:00 UTC",
        "machine": {
            "cpu_model": "Test CPU",
            "cpus": 2,
            "threads_per_core": "1",
            "hypervisor": "none",
            "memory_gib": 1.0,
            "kernel": "Linux test",
            "python": "CPython 3.11",
            "packages": {"wsserver": "0.1.0"},
        },
        "loadavg": {"start": 0.1, "end": 0.2},
        "plan": {
            "servers": servers,
            "scenarios": scenarios,
            "loops": ["asyncio"],
            "runs": 3,
            "warmup": 1.0,
            "duration": 3.0,
            "quick": False,
            "server_cpu": 0,
            "client_cpu": 1,
        },
        "records": records,
        "summary": summarize(records),
    }


def test_summary_takes_medians_and_skips_failed_runs():
    records = [
        _record("wsserver", "echo_c1_16", 0, msgs_per_s=10.0),
        _record("wsserver", "echo_c1_16", 1, msgs_per_s=30.0),
        _record("wsserver", "echo_c1_16", 2, msgs_per_s=20.0),
        {"loop": "asyncio", "scenario": "echo_c1_16", "server": "wsserver", "run": 3, "error": "x"},
    ]
    cell = summarize(records)["asyncio"]["echo_c1_16"]["wsserver"]
    assert cell["msgs_per_s"] == 20.0
    assert (cell["msgs_per_s_min"], cell["msgs_per_s_max"]) == (10.0, 30.0)
    assert cell["runs"] == 3
    assert cell["errors"] == ["x"]


def test_render_shows_figures_ratios_cpu_and_keeps_the_profile():
    records = []
    for run in range(3):
        records += [
            _record(
                "wsserver", "echo_c64_16", run, msgs_per_s=200_000.0, messages=1e5, server_cpu_s=0.5
            ),
            _record(
                "websockets", "echo_c64_16", run, msgs_per_s=100_000.0, messages=1e5, server_cpu_s=2
            ),
            _record(
                "picows",
                "echo_c64_16",
                run,
                msgs_per_s=400_000.0,
                client_cpu_pct=97.0,
                server_cpu_pct=60.0,
            ),
            _record("wsserver", "deflate_json_c1", run, msgs_per_s=5_000.0),
            _record("websockets", "deflate_json_c1", run, msgs_per_s=10_000.0),
            _record("wsserver", "rss_5000", run, kib_per_conn=5.0),
            _record("websockets", "rss_5000", run, kib_per_conn=20.0),
            _record("picows", "rss_5000", run, kib_per_conn=10.0),
        ]
    data = _results(
        records,
        ["wsserver", "websockets", "picows"],
        ["echo_c64_16", "deflate_json_c1", "rss_5000"],
    )
    text = render_markdown(data, profile="Measured: most time in the parser.")
    assert (
        "| echo 16 B, 64 conn, pipelined | messages/s echoed | 200,000 | 100,000 | 400,000 |"
        in text
    )
    assert "| messages/s echoed | higher | 2.00x | 0.50x |" in text
    assert "| KiB per connection | lower | 0.25x | 0.50x |" in text
    # picows has no permessage-deflate.
    assert (
        "| deflate echo JSON 1 KiB, 1 conn, pipelined | messages/s echoed | 5,000 | 10,000 | n/a |"
        in text
    )
    # The load generator was the bottleneck for picows: flagged.
    assert "60 / 97 / 1 ⚠" in text
    assert "Test CPU, 2 CPUs" in text
    assert "python -m bench.run" in text
    assert "Measured: most time in the parser." in text
    assert "## Profile" in text
    # CPU time per operation (5 and 20 µs), computed from the records.
    assert "| server CPU µs per message | 5.00 | 20.0 | - |" in text
    assert "| server CPU µs per message | lower | 0.25x | - |" in text


@pytest.mark.timeout(180)
def test_quick_run_end_to_end(tmp_path):
    # --retries 0: a run disturbed by other work on the machine is kept as it
    # is instead of being repeated (the repeat logic has its own test below),
    # so the file holds exactly one record however busy the machine is.  The
    # subprocess timeout only guards against a hang; it is not a speed check.
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.run",
            "--quick",
            "--retries",
            "0",
            "--results-dir",
            str(tmp_path),
            "--doc",
            str(tmp_path / "benchmarks.md"),
        ],
        cwd=ROOT,
        env=_environment(),
        capture_output=True,
        timeout=150,
    )
    assert done.returncode == 0, done.stderr.decode()
    (results,) = tmp_path.glob("*.json")
    data = json.loads(results.read_text())
    (record,) = data["records"]
    assert record["server"] == "wsserver"
    assert record["scenario"] == "echo_c1_16"
    assert "error" not in record
    assert record["messages"] > 0
    assert record["server_cpu_pct"] >= 0
    assert record["client_cpu_pct"] >= 0
    doc = (tmp_path / "benchmarks.md").read_text()
    assert "| echo 16 B, 1 conn, pipelined | messages/s echoed |" in doc


def test_disturbed_runs_are_repeated_and_discarded(tmp_path):
    plan = Plan(
        servers=("wsserver", "picows"),
        scenarios=(scenario_by_name("echo_c1_16"), scenario_by_name("deflate_json_c1")),
        loops=("asyncio",),
        runs=1,
        warmup=0.0,
        duration=0.0,
        quick=True,
        server_cpu=None,
        client_cpu=None,
        max_other=25.0,
        retries=2,
    )
    busy = iter([90.0, 10.0, 95.0, 50.0, 20.0, 60.0])
    # retries=2: the third attempt is kept, disturbed or not.

    class Fake(Executor):
        def step(self, label, loop, scenario, server, run):
            return {
                "loop": loop,
                "scenario": scenario.name,
                "server": server,
                "run": run,
                "other_cpu_pct": next(busy),
            }

    records = Fake(plan, tmp_path).execute()
    # picows has no deflate: three steps.  The 1st and 3rd were disturbed;
    # the 3rd's repeat was clean, the 1st's was not and was repeated again.
    kept = [
        (r["scenario"], r["server"], r["other_cpu_pct"]) for r in records if not r.get("discarded")
    ]
    assert sorted(kept) == [
        ("deflate_json_c1", "wsserver", 20.0),
        ("echo_c1_16", "picows", 10.0),
        ("echo_c1_16", "wsserver", 60.0),
    ]
    assert len(records) == 6


# ---------------------------------------------------------------------------
# The window32 load shape
# ---------------------------------------------------------------------------


def test_window32_scenarios_twin_the_small_and_medium_echo_rows():
    twins = [s for s in SCENARIOS if s.shape == "window32"]
    assert sorted(s.name for s in twins) == sorted(
        f"echo_c{c}_{size}@w32" for c in (1, 64) for size in ("16", "1k", "64k")
    )
    for twin in twins:
        deep = scenario_by_name(twin.name.removesuffix("@w32"))
        assert (twin.kind, twin.size, twin.connections) == (deep.kind, deep.size, deep.connections)
        assert twin.window == WINDOW32 == 32
        assert not twin.text and not twin.deflate
    assert scenario_by_name("echo_c64_16@w32").label == "echo 16 B, 64 conn, window 32"


def test_shapes_select_deep_twin_or_both_side_by_side():
    named = tuple(
        scenario_by_name(n) for n in ("latency_16", "echo_c1_16", "echo_c1_1m", "handshake_c32")
    )

    def names(shape: ShapeChoice) -> list[str]:
        return [s.name for s in scenarios_for_shape(named, shape)]

    assert names("deep") == ["latency_16", "echo_c1_16", "echo_c1_1m", "handshake_c32"]
    # 1 MiB has no window32 twin: it stays as it is.
    assert names("window32") == ["latency_16", "echo_c1_16@w32", "echo_c1_1m", "handshake_c32"]
    assert names("both") == [
        "latency_16",
        "echo_c1_16",
        "echo_c1_16@w32",
        "echo_c1_1m",
        "handshake_c32",
    ]
    # All scenarios, as the runner's default: each twin once, right after its row.
    both = [s.name for s in scenarios_for_shape(SCENARIOS, "both")]
    assert len(both) == len(set(both)) == len(SCENARIOS)
    assert both.index("echo_c64_64k@w32") == both.index("echo_c64_64k") + 1
    assert "echo_c1_16@w32" not in [s.name for s in scenarios_for_shape(SCENARIOS, "deep")]


@pytest.mark.parametrize(("size", "frame"), [(16, 18), (125, 127), (126, 130), (65536, 65546)])
def test_reply_frame_size_follows_the_length_encoding(size, frame):
    assert reply_frame_size(size) == frame


@pytest.mark.parametrize("size", [16, 1024, 65536])
def test_wake_threshold_never_asks_for_more_than_can_arrive(size):
    frame = reply_frame_size(size)
    target = min(MAX_RCVLOWAT, WINDOW32 * frame // 2)
    # A full window: half of its replies (or the cap).
    assert wake_threshold(WINDOW32, frame, target) == target
    for in_flight in range(WINDOW32 + 1):
        threshold = wake_threshold(in_flight, frame, target)
        assert 1 <= threshold <= target
        # Up to frame - 1 bytes of the outstanding replies may already have
        # been read (a partial frame); the rest is sure to come.
        assert threshold <= max(1, in_flight * frame - (frame - 1))
    # The last reply: woken by its first byte still missing.
    assert wake_threshold(1, frame, target) == 1
    assert wake_threshold(0, frame, target) == 1


@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", ["echo_c1_16@w32", "echo_c64_1k@w32", "echo_c64_64k@w32"])
async def test_window32_client_against_the_server(name):
    # A short run of the real client against the real server on loopback.
    # What is checked is the shape, never the speed: every message sent came
    # back with the right size (run_echo raises otherwise), the drain ended
    # (a wake-up threshold above what can still arrive would hang it, and
    # run_echo would raise after its bound), and no connection ever had more
    # than 32 messages in flight, but some did reach 32.
    scenario = quick_scenario(scenario_by_name(name))
    with bench_server() as url:
        result = await run_scenario(url, scenario, server_pid=None, warmup=0.1, duration=0.3)
    assert result["messages"] > 0
    assert result["sent_total"] == result["received_total"] >= result["messages"]
    assert result["max_in_flight"] == WINDOW32
    assert result["echoes_per_wakeup"] >= 1


def test_render_puts_both_shapes_side_by_side_and_explains_them():
    records = [
        _record("wsserver", name, run, msgs_per_s=rate)
        for run in range(3)
        for name, rate in (("echo_c1_16", 200_000.0), ("echo_c1_16@w32", 100_000.0))
    ]
    data = _results(records, ["wsserver"], ["echo_c1_16", "echo_c1_16@w32"])
    text = render_markdown(data)
    deep = "| echo 16 B, 1 conn, pipelined | messages/s echoed | 200,000 |"
    window32 = "| echo 16 B, 1 conn, window 32 | messages/s echoed | 100,000 |"
    assert deep in text and window32 in text
    assert text.index(window32) == text.index(deep) + len(deep) + 1  # the next row
    assert "- **Load shapes.**" in text and "SO_RCVLOWAT" in text


@pytest.mark.timeout(240)
def test_asgi_rows_run_end_to_end_and_keep_their_section(tmp_path):
    # The ASGI rows (python -m bench.asgi): wsserver's ASGI face and uvicorn
    # on the HTTP row, wsserver alone on an echo row (uvicorn-h11 belongs
    # to the HTTP row only).  A smoke test: that every step runs and the
    # figures land in the doc's own section, not how fast anything is.
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\nkept\n")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.asgi",
            "--quick",
            "--servers",
            "wsserver-asgi,uvicorn-h11",
            "--scenarios",
            "echo_c1_16,http_hello_c16",
            "--results-dir",
            str(tmp_path),
            "--doc",
            str(doc),
        ],
        cwd=ROOT,
        env=_environment(),
        capture_output=True,
        timeout=200,
    )
    assert done.returncode == 0, done.stderr.decode()
    (results,) = tmp_path.glob("*-asgi.json")
    records = json.loads(results.read_text())["records"]
    assert sorted((r["scenario"], r["server"]) for r in records) == [
        ("echo_c1_16", "wsserver-asgi"),
        ("http_hello_c16", "uvicorn-h11"),
        ("http_hello_c16", "wsserver-asgi"),
    ]
    assert all("error" not in r and r["messages"] > 0 for r in records)
    text = doc.read_text()
    assert text.startswith("# Benchmarks\n\nkept\n")
    section = existing_block(doc, ASGI_START, ASGI_END)
    assert section is not None
    assert "Provisional figures" in section
    assert "| HTTP GET hello, 4 conn, keep-alive, requests/s |" in section
    assert "python -m bench.asgi" in section
    # A full bench.run rewrites the doc around the section, keeping it.
    data = _results(
        [_record("wsserver", "echo_c1_16", 0, msgs_per_s=1.0)], ["wsserver"], ["echo_c1_16"]
    )
    kept = f"## ASGI servers\n\n{ASGI_START}\n{section}\n{ASGI_END}\n"
    assert kept in render_markdown(data, sections=kept)


def test_the_asgi_rows_pick_their_servers():
    http = scenario_by_name("http_hello_c16")
    echo = scenario_by_name("echo_c64_1k")
    everyone = ("wsserver-asgi", "uvicorn-h11", "uvicorn-wsproto", "granian")
    assert servers_for(http, everyone) == ["wsserver-asgi", "uvicorn-h11"]
    assert servers_for(echo, everyone) == ["wsserver-asgi", "uvicorn-wsproto", "granian"]
    assert quick_scenario(http).connections == 4


# ---------------------------------------------------------------------------
# The channels rows (python -m bench.channels)
# ---------------------------------------------------------------------------


def test_the_channels_rows_find_the_publish_stamp():
    assert stamp_of(b'{"p":"ch","k":"msg","data":{"t":123456789,"pad":"x"}}') == 123456789
    assert stamp_of(b'42["m",{"t":42,"pad":""}]') == 42
    assert stamp_of(b'{"p":"ch","k":"pos"}') is None
    assert stamp_of(b'{"t":}') is None


def test_the_channels_dialect_subscribes_with_a_reply_channel():
    dialect = ChannelsDialect()
    first, sub = dialect.opening(subscribe=True)
    assert json.loads(first) == {"p": "ch", "k": "ready"}
    assert json.loads(sub) == {"p": "ch", "k": "custom", "kind": "sub", "data": None, "rchan": "s"}
    assert dialect.opening(subscribe=False) == [first]
    assert dialect.answer(b'{"p":"ch","k":"res","response_for":"s","ok":true,"data":true}', True)[1]
    assert not dialect.answer(b'{"p":"ch","k":"res","ok":false}', True)[1]
    assert not dialect.answer(b'{"p":"ch","k":"init"}', True)[1]
    published = json.loads(dialect.publish('{"t":1,"pad":""}'))
    assert published == {"p": "ch", "k": "custom", "kind": "pub", "data": {"t": 1, "pad": ""}}
    assert dialect.is_delivery(b'{"p":"ch","k":"msg","data":{},"topic":"bench"}')


def test_the_socketio_dialect_speaks_engineio_4_and_socketio_5():
    dialect = SocketIODialect()
    assert dialect.path == "/socket.io/?EIO=4&transport=websocket"
    assert dialect.opening(subscribe=True) == []
    opened = b'0{"sid":"abc","upgrades":[],"pingInterval":25000,"pingTimeout":20000}'
    assert dialect.answer(opened, True) == ([b"40"], False)
    assert dialect.answer(b'40{"sid":"def"}', True) == ([b'421["sub"]'], False)
    assert dialect.answer(b'40{"sid":"def"}', False) == ([], False)
    assert dialect.answer(b"431[true]", True) == ([], True)
    assert dialect.answer(b"2", True) == ([b"3"], False)
    with pytest.raises(ConnectionError):
        dialect.answer(b'44{"message":"refused"}', True)
    assert dialect.publish('{"t":1}') == b'42["pub",{"t":1}]'
    assert dialect.is_delivery(b'42["m",{"t":1}]')
    assert not dialect.is_delivery(b'42["other",{}]')


@pytest.mark.parametrize("row", [r for r in ROWS if r.server == "wsserver"], ids=lambda r: r.name)
def test_a_tiny_channels_run_delivers_every_message_to_every_subscriber(row, tmp_path):
    # Real redis-server, two real wsserver workers, six subscribers: the
    # counts and the shape of the result, not the speed.
    result = run_row(row, tmp_path, subscribers=6, window=2, warmup=0.1, duration=0.3, size=64)
    assert result["published"] > 0
    assert result["lost"] == 0
    assert result["per_subscriber_min"] == result["per_subscriber_max"] == result["published"]
    assert result["closed_by_server"] == 0
    assert 0 <= result["p50_ms"] <= result["p99_ms"]


def test_the_channels_section_renders_medians_and_the_ratio(tmp_path):
    records = [
        {"row": "wsserver", "run": 0, "deliveries_per_s": 300.0, "p50_ms": 1.0, "p99_ms": 3.0},
        {"row": "wsserver", "run": 1, "deliveries_per_s": 500.0, "p50_ms": 2.0, "p99_ms": 5.0},
        {"row": "wsserver", "run": 2, "deliveries_per_s": 400.0, "p50_ms": 9.0, "p99_ms": 4.0},
        {"row": "socketio", "run": 0, "deliveries_per_s": 100.0, "p50_ms": 4.0, "p99_ms": 8.0},
        {"row": "wsserver-history", "run": 0, "error": "TimeoutError: boom"},
    ]
    summary = summarize_channels(records)
    assert summary["wsserver"]["deliveries_per_s"] == 400.0
    assert summary["wsserver"]["runs"] == 3
    assert summary["wsserver-history"] == {"runs": 0, "errors": 1, "lost": 0}
    data = {
        "started": "2026-12-05 12:00 UTC",
        "machine": {"cpus": 2, "cpu_model": "test", "channels_packages": {"redis": "8"}},
        "loadavg": {"start": 1.0, "end": 2.0},
        "plan": {"runs": 3, "duration": 5, "warmup": 2, "subscribers": 1000, "window": 4,
                 "size": 64},
        "summary": summary,
    }  # fmt: skip
    text = render_channels(data)
    assert "| wsserver channels, pub/sub (no history) | 400 | 2.0 | 4.0 |" in text
    assert "| wsserver channels, history 100 (Redis Streams) | failed |" in text
    assert "wsserver channels, pub/sub (no history): 4.0x" in text
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\nkept\n")
    write_channels_section(data, doc)
    write_channels_section(data, doc)
    section = existing_block(doc, CHANNELS_START, CHANNELS_END)
    assert section == text
    assert doc.read_text().count("## Channels on Redis") == 1
    # A full bench.run rewrites the doc around the section, keeping it.
    full = _results(
        [_record("wsserver", "echo_c1_16", 0, msgs_per_s=1.0)], ["wsserver"], ["echo_c1_16"]
    )
    after = doc.read_text().split("\n", 3)[3]  # what follows the title and "kept"
    rendered = render_markdown(full, sections=after)
    assert f"{CHANNELS_START}\n{section}\n{CHANNELS_END}" in rendered
