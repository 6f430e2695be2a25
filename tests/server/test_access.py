"""Tests for wsserver.server.access: one access line per HTTP request and per
WebSocket handshake outcome, end to end over loopback, and its switches."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import AsyncIterator

import pytest
from websockets.asyncio.client import connect

from wsserver.server import (
    App,
    OriginPolicy,
    PlainTextResponse,
    Request,
    Response,
    Server,
    WebSocket,
)
from wsserver.server import connection as connection_module
from wsserver.server.access import ACCESS_FIELDS, access_logger, log_access
from wsserver.server.datastructures import Address

from .helpers import TIMEOUT, Harness, handshake_request, harness, wait_until

#: uvicorn's shape, with the duration added.
LINE = re.compile(r'^127\.0\.0\.1:(\d+) - "(.*)" (\d{3}) (\d+\.\d)ms$')


@pytest.fixture
async def h() -> AsyncIterator[Harness]:
    async with harness() as h:
        yield h


def make_app() -> App:
    async def authenticate(ws: WebSocket) -> Response | None:
        if ws.query_params.get("token") != "good":
            return PlainTextResponse("token required\n", status_code=401)
        return None

    app = App(authenticate=authenticate)

    @app.route("/page")
    async def page(request: Request) -> Response:
        return PlainTextResponse("page\n")

    @app.websocket("/chat")
    async def chat(ws: WebSocket) -> None:
        await ws.accept()
        async for text in ws.iter_text():
            await ws.send_text(text)

    return app


def access_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "wsserver.access"]


def only_access_line(caplog: pytest.LogCaptureFixture) -> tuple[logging.LogRecord, re.Match[str]]:
    (record,) = access_records(caplog)
    assert record.levelno == logging.INFO
    match = LINE.match(record.getMessage())
    assert match is not None, record.getMessage()
    return record, match


async def exchange(h: Harness, server: Server, request: bytes) -> tuple[int, int]:
    """Send ``request`` on a new connection; the answer's status and the client port."""
    raw = await h.raw(server)
    await raw.send(request)
    status, _ = await raw.response_head(timeout=TIMEOUT)
    return status, raw.sock.getsockname()[1]


def get(target: str, version: str = "1.1") -> bytes:
    return f"GET {target} HTTP/{version}\r\nHost: 127.0.0.1\r\n\r\n".encode()


# ---------------------------------------------------------------------------
# plain HTTP
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "version", "status"),
    [("/page?a=1&b=2", "1.1", 200), ("/nowhere", "1.1", 404), ("/page", "1.0", 200)],
)
async def test_an_http_request_gets_one_access_line_with_its_fields(
    h: Harness, caplog: pytest.LogCaptureFixture, target: str, version: str, status: int
) -> None:
    server = await h.serve(make_app())
    with caplog.at_level(logging.INFO, logger="wsserver"):
        answered, port = await exchange(h, server, get(target, version))
    assert answered == status
    record, match = only_access_line(caplog)
    assert match.group(2) == f"GET {target} HTTP/{version}"
    assert (int(match.group(1)), int(match.group(3))) == (port, status)
    # The same fields as attributes, for a structured formatter.
    fields = {name: record.__dict__[name] for name in ACCESS_FIELDS}
    duration = fields.pop("duration_ms")
    assert isinstance(duration, float) and 0 <= duration < TIMEOUT * 1000
    assert isinstance(fields.pop("connection_id"), int)
    assert fields == {
        "client": f"127.0.0.1:{port}",
        "method": "GET",
        "path": target,
        "http_version": version,
        "status_code": status,
    }


async def test_keep_alive_requests_get_a_line_each(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    server = await h.serve(make_app())
    with caplog.at_level(logging.INFO, logger="wsserver"):
        raw = await h.raw(server)
        for target in ("/page", "/missing"):
            await raw.send(get(target))
            _, headers = await raw.response_head()
            await raw.read_exactly(int(headers["content-length"]))
    lines = [LINE.match(r.getMessage()) for r in access_records(caplog)]
    assert [(m.group(2), m.group(3)) for m in lines if m] == [
        ("GET /page HTTP/1.1", "200"),
        ("GET /missing HTTP/1.1", "404"),
    ]
    ids = {r.__dict__["connection_id"] for r in access_records(caplog)}
    assert len(ids) == 1


# ---------------------------------------------------------------------------
# WebSocket handshakes
# ---------------------------------------------------------------------------


async def test_an_accepted_handshake_gets_one_line_at_the_101_and_none_per_message(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    server = await h.serve(make_app())
    with caplog.at_level(logging.INFO, logger="wsserver"):
        async with connect(
            f"ws://127.0.0.1:{server.port}/chat?token=good", open_timeout=TIMEOUT
        ) as client:
            # Written at the 101, while the connection is open.
            record, match = only_access_line(caplog)
            for text in ("a", "b", "c"):
                await client.send(text)
                assert await asyncio.wait_for(client.recv(), TIMEOUT) == text
            port = client.local_address[1]
        await wait_until(lambda: not server.connections)
    assert access_records(caplog) == [record]
    assert match.group(2) == "GET /chat?token=good HTTP/1.1"
    assert (int(match.group(1)), match.group(3)) == (port, "101")
    assert record.__dict__["status_code"] == 101
    # The connection's own open and closed lines are still there.
    others = [r.getMessage() for r in caplog.records if r.name == "wsserver"]
    conn = record.__dict__["connection_id"]
    assert [line.split(" ")[2] for line in others if line.startswith(f"conn {conn} ")] == [
        "open",
        "closed",
    ]


async def test_a_handshake_refused_by_the_application_gets_its_status(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    server = await h.serve(make_app())
    with caplog.at_level(logging.INFO, logger="wsserver"):
        status, port = await exchange(h, server, handshake_request("/chat?token=bad"))
    assert status == 401
    record, match = only_access_line(caplog)
    assert match.group(2) == "GET /chat?token=bad HTTP/1.1"
    assert (int(match.group(1)), match.group(3)) == (port, "401")
    assert record.__dict__["path"] == "/chat?token=bad"


async def test_a_handshake_to_no_route_gets_404(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    server = await h.serve(make_app())
    with caplog.at_level(logging.INFO, logger="wsserver"):
        assert (await exchange(h, server, handshake_request("/nowhere")))[0] == 404
    _, match = only_access_line(caplog)
    assert (match.group(2), match.group(3)) == ("GET /nowhere HTTP/1.1", "404")


async def test_a_handshake_refused_for_its_origin_gets_403(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    server = await h.serve(make_app(), origins=OriginPolicy(["https://good.example"]))
    request = handshake_request("/chat?token=good", extra="Origin: https://evil.example\r\n")
    with caplog.at_level(logging.INFO, logger="wsserver"):
        assert (await exchange(h, server, request))[0] == 403
    _, match = only_access_line(caplog)
    assert (match.group(2), match.group(3)) == ("GET /chat?token=good HTTP/1.1", "403")


async def test_a_handshake_over_max_connections_gets_503(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    server = await h.serve(make_app(), max_connections=1)
    first = await h.raw(server)
    await first.handshake("/chat?token=good")
    with caplog.at_level(logging.INFO, logger="wsserver"):
        assert (await exchange(h, server, handshake_request("/chat?token=good")))[0] == 503
    _, match = only_access_line(caplog)
    assert (match.group(2), match.group(3)) == ("GET /chat?token=good HTTP/1.1", "503")


async def test_a_request_refused_by_the_protocol_core_has_no_request_line(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    server = await h.serve(make_app())
    bad_key = (
        b"GET /chat HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Key: too-short\r\n"
        b"Sec-WebSocket-Version: 13\r\n\r\n"
    )
    with caplog.at_level(logging.INFO, logger="wsserver"):
        status, port = await exchange(h, server, bad_key)
    assert status == 400
    record, match = only_access_line(caplog)
    # The core gives the status, not the request it could not accept.
    assert (int(match.group(1)), match.group(2), match.group(3)) == (port, "-", "400")
    assert [record.__dict__[name] for name in ("method", "path", "http_version")] == [
        None,
        None,
        None,
    ]
    assert record.__dict__["status_code"] == 400


# ---------------------------------------------------------------------------
# switches: access_log=False, a logger above INFO
# ---------------------------------------------------------------------------


async def test_access_log_false_writes_no_line_and_formats_nothing(
    h: Harness, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[object] = []
    monkeypatch.setattr(connection_module, "log_access", lambda **fields: calls.append(fields))
    server = await h.serve(make_app(), access_log=False)
    with caplog.at_level(logging.INFO, logger="wsserver"):
        assert (await exchange(h, server, get("/page")))[0] == 200
        assert (await exchange(h, server, handshake_request("/chat?token=bad")))[0] == 401
        raw = await h.raw(server)
        await raw.handshake("/chat?token=good")
        assert (await exchange(h, server, b"NOT HTTP\r\n\r\n"))[0] == 400
    assert access_records(caplog) == []
    assert calls == []


async def test_nothing_is_formatted_when_the_access_logger_is_above_info(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def must_not_run(*args: object, **kwargs: object) -> None:
        raise AssertionError("formatted while the logger is off for INFO")

    monkeypatch.setattr(access_logger, "info", must_not_run)
    with caplog.at_level(logging.WARNING, logger="wsserver.access"):
        log_access(
            client=Address("127.0.0.1", 1),
            method="GET",
            path="/",
            http_version="1.1",
            status_code=200,
            started=time.perf_counter(),
            connection_id=1,
        )
    assert access_records(caplog) == []


def test_an_unknown_client_is_a_dash(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="wsserver.access"):
        log_access(
            client=None,
            method="GET",
            path="/chat",
            http_version="1.1",
            status_code=101,
            started=time.perf_counter(),
            connection_id=7,
        )
    (record,) = access_records(caplog)
    assert re.fullmatch(r'- - "GET /chat HTTP/1\.1" 101 \d+\.\dms', record.getMessage())
    assert record.__dict__["client"] is None
    assert record.__dict__["connection_id"] == 7
