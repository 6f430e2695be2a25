"""bench/clients.py, the client rows: the harness counts and checks, not speed.

Against an in-process wsserver echo server on loopback (the harness talks to
a real socket: that is its point).  aiohttp is in the ``bench`` extra, not in
the test lock, so its opener runs only in ``python -m bench.clients``; the
three other clients' openers are tested here.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from bench import clients
from bench.run import replace_section
from wsserver.protocol import BinaryMessage, ProtocolSettings, TextMessage
from wsserver.server import Server, ServerConfig, WebSocket

TESTED_CLIENTS = ("wsserver", "websockets", "picows")


async def echo(websocket: WebSocket) -> None:
    await websocket.accept()
    while True:
        message = await websocket.receive()
        if isinstance(message, BinaryMessage):
            await websocket.send_bytes(message.data)
        elif isinstance(message, TextMessage):
            await websocket.send_text(message.data)
        else:
            return


async def short_echo(websocket: WebSocket) -> None:
    await websocket.accept()
    while True:
        message = await websocket.receive()
        if not isinstance(message, BinaryMessage):
            return
        await websocket.send_bytes(message.data[:-1])


@asynccontextmanager
async def serving(handler: object) -> AsyncIterator[str]:
    from wsserver.server import as_app

    config = ServerConfig(
        port=0, ping_interval=None, protocol=_settings(), deflate=None, shutdown_timeout=1.0
    )
    server = Server(as_app(handler), config)
    await server.start()
    try:
        yield f"ws://127.0.0.1:{server.port}/"
    finally:
        await server.shutdown()


def _settings() -> ProtocolSettings:
    return ProtocolSettings(max_message_size=clients.MAX_SIZE)


@pytest.mark.parametrize("client", TESTED_CLIENTS)
@pytest.mark.parametrize("size", [256, 70_000])
async def test_measure_counts_checked_round_trips(client: str, size: int) -> None:
    async with serving(echo) as url:
        result = await clients.measure(client, url, size, duration=0.05, warmup=0.0)
    assert result["client"] == client
    assert result["size"] == size
    assert result["round_trips"] >= 1
    assert result["seconds"] >= 0.05
    assert result["per_second"] == pytest.approx(result["round_trips"] / result["seconds"])
    assert result["cpu_pct"] >= 0.0


@pytest.mark.parametrize("client", TESTED_CLIENTS)
async def test_a_wrong_echo_is_an_error(client: str) -> None:
    async with serving(short_echo) as url:
        with pytest.raises(clients.EchoMismatch, match="sent 256 bytes, the echo has 255"):
            await clients.measure(client, url, 256, duration=0.05, warmup=0.0)


async def test_run_one_measures_in_a_process_of_its_own() -> None:
    async with serving(echo) as url:
        port = int(url.rsplit(":", 1)[1].strip("/"))
        result = await asyncio.to_thread(
            clients.run_one,
            "wsserver",
            port,
            256,
            duration=0.2,
            warmup=0.0,
            uvloop=False,
            cpu=None,
        )
    assert "error" not in result, result
    assert (result["client"], result["size"]) == ("wsserver", 256)
    assert result["round_trips"] >= 1


async def test_run_one_reports_a_failing_client() -> None:
    # Nothing listens on the port: the client process fails, the harness says so.
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = await asyncio.to_thread(
        clients.run_one, "wsserver", port, 256, duration=0.1, warmup=0.0, uvloop=False, cpu=None
    )
    assert result["client"] == "wsserver"
    assert "Error" in result["error"] or "refused" in result["error"].lower()


def test_summary_is_the_median_and_keeps_errors() -> None:
    records = [
        {"client": "wsserver", "size": 256, "per_second": 10.0, "cpu_pct": 50.0},
        {"client": "wsserver", "size": 256, "per_second": 30.0, "cpu_pct": 70.0},
        {"client": "wsserver", "size": 256, "per_second": 20.0, "cpu_pct": 60.0},
        {"client": "picows", "size": 256, "per_second": 40.0, "cpu_pct": 90.0},
        {"client": "aiohttp", "size": 256, "error": "boom"},
    ]
    summary = clients.summarize(records)
    assert summary[("wsserver", 256)] == {
        "per_second": 20.0,
        "cpu_pct": 60.0,
        "cpu_us": pytest.approx(30_000.0),  # 0.6 s of CPU per 20 round trips
        "runs": 3,
        "errors": [],
    }
    assert summary[("aiohttp", 256)]["per_second"] is None
    assert summary[("aiohttp", 256)]["errors"] == ["boom"]
    table = clients.render_clients(
        summary, ["wsserver", "aiohttp", "websockets", "picows"], [256], "note"
    )
    assert table.splitlines()[:17] == [
        "**Round trips per second**",
        "",
        "| client | 256 B |",
        "|---|--:|",
        "| wsserver | 20 (0.50x) |",
        "| aiohttp | error |",
        "| websockets | - |",
        "| picows | 40 |",
        "",
        "**Client CPU time per round trip, µs**",
        "",
        "| client | 256 B |",
        "|---|--:|",
        "| wsserver | 30,000 (0.75x) |",  # picows: 22,500 µs
        "| aiohttp | error |",
        "| websockets | - |",
        "| picows | 22,500 |",
    ]
    assert table.endswith("\nnote\n")


def test_the_doc_block_is_replaced_or_added() -> None:
    def place(text: str, table: str) -> str:
        return replace_section(text, "Clients", clients.CLIENTS_START, clients.CLIENTS_END, table)

    added = place("# Benchmarks\n", "TABLE\n")
    assert added.endswith(f"## Clients\n\n{clients.CLIENTS_START}\nTABLE\n{clients.CLIENTS_END}\n")
    prose = added.replace("## Clients\n\n", "## Clients\n\nWritten by hand.\n\n")
    replaced = place(prose, "NEW\n")
    assert replaced.count("## Clients") == 1
    assert "Written by hand." in replaced
    assert f"{clients.CLIENTS_START}\nNEW\n{clients.CLIENTS_END}" in replaced
    assert "TABLE" not in replaced


def test_sizes_are_labelled() -> None:
    assert [clients._size_label(s) for s in clients.SIZES] == ["256 B", "64 KiB", "1 MiB"]


def test_unknown_clients_are_refused() -> None:
    with pytest.raises(SystemExit):
        clients.main(["--clients", "curl"])
