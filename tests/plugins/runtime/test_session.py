"""Tests for wsserver.plugins.runtime.session, and the browser runtime it talks to.

The first half drives a ``Session`` over a fake WebSocket: the init
message, dispatch, heartbeat answers, the close codes for bad input, close
callbacks.  The second half runs the real runtime (``static/runtime.js``) in
headless Chromium against a real server: status events, the message layer
both ways, unknown kinds, malformed JSON, the heartbeat, bounded reconnect
attempts and the offline state.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

import pytest

from wsserver.plugins.runtime.messages import Envelope, MalformedMessage, MessageTooLarge
from wsserver.plugins.runtime.session import Session, SessionClosed
from wsserver.server import Disconnect, WebSocketState

from .._browser import WAIT, Harness, statuses, wait_status, wait_until
from .._fakes import FakeWebSocket, fake_session, start

if TYPE_CHECKING:
    from playwright.async_api import Browser

# One browser for the module (conftest.py), so one event loop for it too.
pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(60)]


# ---------------------------------------------------------------------------
# Construction and init
# ---------------------------------------------------------------------------


async def test_init_carries_the_session_and_its_limits_in_milliseconds() -> None:
    session, websocket = fake_session(max_message_size=5000, ping_interval=1.5, ping_timeout=0.25)
    await session.send_init()
    await session.send_init()  # once only
    assert websocket.sent == [
        {
            "p": "rt",
            "k": "init",
            "v": 1,
            "sid": session.id,
            "max_message_size": 5000,
            "ping_interval_ms": 1500,
            "ping_timeout_ms": 250,
        }
    ]


async def test_init_without_heartbeat_and_with_default_limit() -> None:
    session, websocket = fake_session(ping_interval=None)
    await session.send_init()
    assert websocket.sent[0]["ping_interval_ms"] is None
    assert websocket.sent[0]["max_message_size"] == 1 << 20


async def test_session_ids_are_random_and_the_connection_id_is_kept() -> None:
    first, websocket = fake_session()
    second, _ = fake_session()
    assert first.id != second.id
    assert len(first.id) >= 16
    assert first.connection_id == websocket.connection_id == 7
    assert "open" in repr(first)


@pytest.mark.parametrize(
    "options",
    [
        {"max_message_size": 0},
        {"ping_interval": 0},
        {"ping_interval": float("nan")},
        {"ping_timeout": 0},
        {"ping_timeout": -1},
    ],
)
async def test_session_refuses_bad_settings(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        fake_session(**options)


# ---------------------------------------------------------------------------
# Dispatch
# ---------------------------------------------------------------------------


async def test_messages_reach_their_handlers_in_order() -> None:
    session, websocket = fake_session()
    got: list[tuple[str, Any]] = []

    @session.on("demo", "sync")
    def sync_handler(message: Envelope) -> None:
        got.append(("sync", message["n"]))

    async def async_handler(message: Envelope) -> None:
        await asyncio.sleep(0.01)
        got.append(("async", message["n"]))

    session.on("demo", "async", async_handler)
    task = await start(session)
    for n in range(3):
        websocket.feed({"p": "demo", "k": "async", "n": n})
        websocket.feed({"p": "demo", "k": "sync", "n": n})
    websocket.disconnect(1000)
    assert await task == 1000
    assert got == [(kind, n) for n in range(3) for kind in ("async", "sync")]


async def test_handlers_can_be_replaced_but_not_doubled() -> None:
    session, _ = fake_session()
    session.on("demo", "x", lambda message: None)
    with pytest.raises(ValueError, match="already registered"):
        session.on("demo", "x", lambda message: None)
    session.on("demo", "x", lambda message: None, replace=True)
    with pytest.raises(ValueError, match="already registered"):
        session.on("rt", "ping", lambda message: None)


async def test_ping_is_answered_with_the_same_number() -> None:
    session, websocket = fake_session()
    task = await start(session)
    websocket.feed({"p": "rt", "k": "ping", "n": 41})
    assert await websocket.next_sent("rt", "pong") == {"p": "rt", "k": "pong", "n": 41}
    websocket.feed({"p": "rt", "k": "ping"})
    assert await websocket.next_sent("rt", "pong") == {"p": "rt", "k": "pong", "n": None}
    websocket.disconnect()
    await task


async def test_unknown_kinds_are_logged_once_and_ignored(caplog: pytest.LogCaptureFixture) -> None:
    session, websocket = fake_session()
    got: list[Envelope] = []
    session.on("demo", "known", got.append)
    task = await start(session)
    with caplog.at_level(logging.WARNING, logger="wsserver.plugins.runtime"):
        websocket.feed({"p": "demo", "k": "unknown"})
        websocket.feed({"p": "demo", "k": "unknown"})
        websocket.feed({"p": "other", "k": "x"})
        websocket.feed({"p": "demo", "k": "known"})
        websocket.disconnect(1000)
        assert await task == 1000
    assert len(got) == 1  # the session went on after the unknown ones
    assert session.unknown.count == 3
    lines = [r.getMessage() for r in caplog.records if "unknown message kind" in r.getMessage()]
    assert lines == [
        "conn 7: unknown message kind 'demo'/'unknown' ignored (logged once per kind)",
        "conn 7: unknown message kind 'other'/'x' ignored (logged once per kind)",
    ]


@pytest.mark.parametrize(
    ("incoming", "code"),
    [
        ("{not json", 1007),
        ("[1, 2]", 1007),
        ('{"p": "demo"}', 1007),
        ('{"p": "rt", "k": "ping", "n": NaN}', 1007),
        ('{"p": "rt", "k": "ping", "n": "one"}', 1007),  # a bad field, found by the handler
        (b'{"p": "rt", "k": "ping"}', 1003),
        ('{"p": "rt", "k": "ping", "pad": "' + "x" * 200 + '"}', 1009),
    ],
    ids=["not-json", "array", "no-kind", "nan", "bad-field", "binary", "too-large"],
)
async def test_bad_input_closes_with_the_matching_code(incoming: str | bytes, code: int) -> None:
    session, websocket = fake_session(max_message_size=100)
    closed: list[int | None] = []
    session.add_close_callback(lambda s: closed.append(s.close_code))
    task = await start(session)
    websocket.feed(incoming)
    assert await asyncio.wait_for(task, WAIT) == code
    assert websocket.closed_with is not None
    assert websocket.closed_with[0] == code
    assert len(websocket.closed_with[1].encode()) <= 123
    assert closed == [code]
    assert session.closed


async def test_a_handler_raising_malformed_message_closes_with_1007() -> None:
    session, websocket = fake_session()

    def handler(message: Envelope) -> None:
        raise MalformedMessage("demo/x: field 'y' must be int")

    session.on("demo", "x", handler)
    task = await start(session)
    websocket.feed({"p": "demo", "k": "x"})
    assert await task == 1007
    assert websocket.closed_with == (1007, "demo/x: field 'y' must be int")


async def test_a_handler_error_propagates_after_the_session_finished() -> None:
    session, websocket = fake_session()
    closed: list[Session] = []
    session.add_close_callback(closed.append)

    def handler(message: Envelope) -> None:
        raise KeyError("bug")

    session.on("demo", "x", handler)
    task = await start(session)
    websocket.feed({"p": "demo", "k": "x"})
    with pytest.raises(KeyError):
        await task
    assert closed == [session]
    assert session.close_code == 1011


async def test_a_reply_to_a_gone_connection_does_not_end_the_loop() -> None:
    session, websocket = fake_session()
    task = await start(session)
    websocket.gone = 1006  # sends now fail, but the Disconnect is not read yet
    websocket.feed({"p": "rt", "k": "ping", "n": 1})
    websocket.feed({"p": "demo", "k": "after"})
    websocket.incoming.put_nowait(Disconnect(1006))
    assert await task == 1006
    assert session.unknown.count == 1  # the message after the failed reply was handled


async def test_run_twice_is_an_error() -> None:
    session, websocket = fake_session()
    task = await start(session)
    with pytest.raises(RuntimeError, match="twice"):
        await session.run()
    websocket.disconnect()
    await task


async def test_run_sends_init_itself_and_copes_with_a_gone_peer() -> None:
    session, websocket = fake_session()
    websocket.disconnect(1001)
    assert await session.run() == 1001
    assert websocket.sent == []


# ---------------------------------------------------------------------------
# Sending and closing
# ---------------------------------------------------------------------------


async def test_send_encodes_an_envelope() -> None:
    session, websocket = fake_session()
    await session.send("demo", "x", plugin=1, kind=2)  # field names are free
    assert websocket.sent == [{"p": "demo", "k": "x", "plugin": 1, "kind": 2}]


async def test_send_checks_the_limit_and_names() -> None:
    session, websocket = fake_session(max_message_size=50)
    with pytest.raises(MessageTooLarge):
        await session.send("demo", "x", data="y" * 50)
    with pytest.raises(ValueError):
        await session.send("Demo", "x")
    assert websocket.sent == []


async def test_send_after_the_end_raises_session_closed() -> None:
    session, websocket = fake_session()
    websocket.gone = 1006
    with pytest.raises(SessionClosed):
        await session.send("demo", "x")
    session2, websocket2 = fake_session()
    await websocket2.close()  # someone closed the WebSocket directly
    with pytest.raises(SessionClosed):
        await session2.send("demo", "x")
    session3, _ = fake_session()
    await session3.close()
    with pytest.raises(SessionClosed):
        await session3.send("demo", "x")


async def test_send_lets_other_runtime_errors_through() -> None:
    session, websocket = fake_session()
    websocket.application_state = WebSocketState.CONNECTING

    async def refuse(text: str, *, compress: bool | None = None) -> None:
        raise RuntimeError("send before accept()")

    websocket.send_text = refuse  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="before accept"):
        await session.send("demo", "x")


async def test_close_runs_callbacks_at_once_and_closes_the_websocket() -> None:
    session, websocket = fake_session()
    calls: list[tuple[str, int | None]] = []
    session.add_close_callback(lambda s: calls.append(("a", s.close_code)))

    def failing(s: Session) -> None:
        raise RuntimeError("cleanup bug")

    session.add_close_callback(failing)
    session.add_close_callback(lambda s: calls.append(("b", s.close_code)))
    session.add_close_callback(cb := lambda s: calls.append(("removed", None)))
    session.remove_close_callback(cb)
    session.remove_close_callback(cb)  # harmless
    await session.close(4001, "é" * 100)
    assert calls == [("a", 4001), ("b", 4001)]  # the failing one did not stop "b"
    assert session.closed and "closed" in repr(session)
    assert websocket.closed_with is not None
    code, reason = websocket.closed_with
    assert code == 4001 and len(reason.encode()) <= 123 and set(reason) == {"é"}
    assert session.close_reason == "é" * 100
    await session.close()  # twice: harmless, callbacks not run again
    assert len(calls) == 2
    late: list[Session] = []
    session.add_close_callback(late.append)  # after the end: runs at once
    assert late == [session]


async def test_close_from_another_task_drains_until_the_disconnect() -> None:
    session, websocket = fake_session()
    got: list[Envelope] = []
    session.on("demo", "x", got.append)
    task = await start(session)
    await session.close(1000)
    websocket.feed({"p": "demo", "k": "x"})  # arrives after our Close: ignored
    websocket.disconnect(1000)
    assert await task == 1000
    assert got == []
    assert session.close_code == 1000


# ---------------------------------------------------------------------------
# The browser runtime, in Chromium
# ---------------------------------------------------------------------------


async def test_runtime_adds_one_global_and_reports_open(browser: Browser) -> None:
    async with Harness() as harness:
        page = await harness.open_page(browser, record=False)
        session = await harness.next_session()
        info = await page.evaluate(
            """() => {
                "use strict";
                const fresh = document.createElement("iframe");
                document.body.appendChild(fresh);
                const standard = new Set(Object.getOwnPropertyNames(fresh.contentWindow));
                // (Numeric names are the frames, the iframe above included.)
                const extra = Object.getOwnPropertyNames(window).filter(
                    (name) => !standard.has(name) && !/^[0-9]+$/.test(name));
                const api = window.wsserver;
                let assigned = true;
                try { api.status = "x"; } catch (e) { assigned = false; }
                return {
                    extra,
                    frozen: Object.isFrozen(api),
                    assigned,
                    status: api.status,
                    sessionId: api.sessionId,
                    max: api.maxMessageSize,
                    url: api.url,
                    protocol: api.protocol,
                };
            }"""
        )
        assert info["extra"] == ["wsserver"], info["extra"]
        assert info["frozen"] and not info["assigned"]
        assert info["status"] == "open"
        assert info["sessionId"] == session.id
        assert info["max"] == 1 << 20
        assert info["url"] == harness.ws_url
        assert info["protocol"] == 1


async def test_status_events_go_connecting_then_open(browser: Browser) -> None:
    async with Harness() as harness:
        page = await harness.open_page(browser)
        await harness.next_session()
        events = await statuses(page)
        assert [e["status"] for e in events] == ["connecting", "open"]
        assert events[1]["previous"] == "connecting"
        assert events[1]["sessionId"]


async def test_messages_flow_both_ways_through_registered_handlers(browser: Browser) -> None:
    async with Harness() as harness:
        page = await harness.open_page(browser)
        session = await harness.next_session()
        got: asyncio.Queue[Envelope] = asyncio.Queue()
        session.on("demo", "hello", got.put_nowait)
        await page.evaluate(
            """() => {
                window.__got = [];
                wsserver.on("demo", "cmd", (message, context) => {
                    window.__got.push(message);
                    // An own "__proto__" field (as JSON.parse makes) stays a field.
                    const fields = JSON.parse('{"__proto__": 1}');
                    fields.echo = message.n;
                    context.send("demo", "hello", fields);
                });
                wsserver.on("demo", "boom", () => { throw new Error("handler bug"); });
            }"""
        )
        await session.send("demo", "boom")  # a failing handler must not stop the runtime
        await session.send("demo", "cmd", n=5)
        message = await asyncio.wait_for(got.get(), WAIT)
        assert dict(message.fields) == {"__proto__": 1, "echo": 5}
        assert await page.evaluate("window.__got") == [{"p": "demo", "k": "cmd", "n": 5}]
        assert any("handler bug" in text for kind, text in harness.console if kind == "error")
        sent = await page.evaluate("wsserver.send('demo', 'hello', {echo: 6})")
        assert sent is True
        assert (await asyncio.wait_for(got.get(), WAIT))["echo"] == 6


async def test_runtime_api_refuses_misuse(browser: Browser) -> None:
    async with Harness(max_message_size=200) as harness:
        page = await harness.open_page(browser)
        await harness.next_session()
        errors = await page.evaluate(
            """() => {
                const attempt = (f) => { try { f(); return null; } catch (e) {
                    return e.name + ": " + e.message; } };
                return {
                    badName: attempt(() => wsserver.send("Demo", "x")),
                    reserved: attempt(() => wsserver.send("demo", "x", {p: 1})),
                    notObject: attempt(() => wsserver.send("demo", "x", [1])),
                    tooLarge: attempt(() => wsserver.send("demo", "x", {s: "y".repeat(300)})),
                    bigint: attempt(() => wsserver.send("demo", "x", {n: 1n})),
                    runtimeName: attempt(() => wsserver.on("rt", "x", () => {})),
                    twice: attempt(() => { wsserver.on("demo", "y", () => {});
                                           wsserver.on("demo", "y", () => {}); }),
                    offInternal: attempt(() => wsserver.off("js", "exec")),
                    notFunction: attempt(() => wsserver.on("demo", "z", 3)),
                };
            }"""
        )
        assert errors["badName"].startswith("TypeError")
        assert errors["reserved"].startswith("TypeError")
        assert errors["notObject"].startswith("TypeError")
        assert errors["tooLarge"].startswith("MessageTooLarge: message of ")
        assert errors["tooLarge"].endswith("exceeds the limit of 200 bytes")
        assert errors["bigint"].startswith("TypeError")
        assert "'rt'" in errors["runtimeName"]
        assert "exists" in errors["twice"]
        assert "runtime's own" in errors["offInternal"]
        assert errors["notFunction"].startswith("TypeError")
        off = await page.evaluate(
            "() => { const off = wsserver.on('demo', 'w', () => {}); off();"
            " return wsserver.off('demo', 'w'); }"
        )
        assert off is False


async def test_unknown_kinds_from_the_server_are_reported_in_the_page(browser: Browser) -> None:
    async with Harness() as harness:
        page = await harness.open_page(browser)
        session = await harness.next_session()
        await session.send("nope", "thing", x=1)
        await session.send("nope", "thing", x=2)
        await session.send("nope", "other")
        await page.wait_for_function("() => window.__unknown.length === 3", timeout=WAIT * 1000)
        assert await page.evaluate("window.__unknown") == [
            {"plugin": "nope", "kind": "thing"},
            {"plugin": "nope", "kind": "thing"},
            {"plugin": "nope", "kind": "other"},
        ]
        warnings = [text for kind, text in harness.console if kind == "warning"]
        assert sum("nope/thing" in text for text in warnings) == 1  # warned once per kind
        assert sum("nope/other" in text for text in warnings) == 1
        assert await page.evaluate("wsserver.status") == "open"


async def test_unknown_kinds_from_the_page_are_logged_once_by_the_server(
    browser: Browser, caplog: pytest.LogCaptureFixture
) -> None:
    async with Harness() as harness:
        page = await harness.open_page(browser)
        session = await harness.next_session()
        got: asyncio.Queue[Envelope] = asyncio.Queue()
        session.on("demo", "known", got.put_nowait)
        with caplog.at_level(logging.WARNING, logger="wsserver.plugins.runtime"):
            await page.evaluate(
                "wsserver.send('nope', 'thing'); wsserver.send('nope', 'thing');"
                " wsserver.send('demo', 'known')"
            )
            await asyncio.wait_for(got.get(), WAIT)
        assert session.unknown.count == 2
        lines = [r.getMessage() for r in caplog.records if "unknown message kind" in r.getMessage()]
        assert lines == [
            f"conn {session.connection_id}: unknown message kind 'nope'/'thing' ignored"
            " (logged once per kind)"
        ]
        assert not session.closed


async def test_malformed_json_from_a_browser_closes_with_1007(browser: Browser) -> None:
    async with Harness() as harness:
        page = await harness.open_page(browser)
        await harness.next_session()
        code = await page.evaluate(
            """(url) => new Promise((resolve) => {
                const ws = new WebSocket(url);
                ws.onopen = () => ws.send("{not json");
                ws.onclose = (event) => resolve([event.code, event.reason]);
            })""",
            harness.ws_url,
        )
        assert code[0] == 1007
        assert code[1].startswith("invalid JSON")
        session = await harness.next_session()  # the raw socket's session
        await wait_until(lambda: session.closed)
        assert session.close_code == 1007


async def test_heartbeat_loss_makes_the_page_reconnect(browser: Browser) -> None:
    # A ping timeout well above a loaded machine's stalls, so that only the
    # connection that really stops answering misses it.
    async with Harness(ping_interval=0.5, ping_timeout=2.0) as harness:
        page = await harness.open_page(browser)
        session = await harness.next_session()
        pings: list[Envelope] = []
        # This connection stops answering the runtime's pings.
        session.on("rt", "ping", pings.append, replace=True)
        await wait_status(page, "reconnecting")
        assert pings, "the page sent no app-level ping"
        fresh = await harness.next_session()  # it came back, with a new session
        await wait_status(page, "open")
        assert fresh.id != session.id
        await wait_until(lambda: session.closed)
        assert session.close_code == 4000
        assert session.close_reason == "heartbeat timeout"
        # The new session answers pings: the page stays open for a few rounds.
        await asyncio.sleep(1.5)
        assert await page.evaluate("wsserver.status") == "open"
        assert harness.sessions.empty()


async def test_offline_after_bounded_attempts_then_resume_when_online(browser: Browser) -> None:
    async with Harness(reconnect_attempts=3, reconnect_base=0.05, reconnect_max=0.1) as harness:
        page = await harness.open_page(browser)
        await harness.next_session()
        port = harness.port
        await harness.stop_server()  # 1001, then every attempt is refused
        await wait_status(page, "offline")
        events = await statuses(page)
        retries = [e for e in events if e["status"] == "reconnecting"]
        assert [e["attempt"] for e in retries] == [1, 2, 3]
        assert all(0 < e["delayMs"] <= 100 for e in retries)
        assert events[-1]["status"] == "offline"
        assert events[-1]["attempts"] == 3
        # The page stays offline: no further attempts.
        await asyncio.sleep(0.5)
        assert (await statuses(page))[-1]["status"] == "offline"
        # Back online: the runtime tries again by itself.
        await harness.start(port)
        await page.evaluate("window.dispatchEvent(new Event('online'))")
        await wait_status(page, "open")
        await harness.next_session()


async def test_visibility_change_resumes_an_offline_page(browser: Browser) -> None:
    async with Harness(reconnect_attempts=0) as harness:
        page = await harness.open_page(browser)
        session = await harness.next_session()
        harness.abort(session)
        await wait_status(page, "offline")
        await page.evaluate("document.dispatchEvent(new Event('visibilitychange'))")
        await wait_status(page, "open")
        await harness.next_session()


async def test_policy_close_goes_offline_without_retrying(browser: Browser) -> None:
    async with Harness() as harness:
        page = await harness.open_page(browser)
        session = await harness.next_session()
        await session.close(1008, "not allowed")
        await wait_status(page, "offline")
        last = (await statuses(page))[-1]
        assert (last["code"], last["reason"]) == (1008, "not allowed")
        await asyncio.sleep(0.3)
        assert harness.sessions.empty()


async def test_close_and_connect_from_the_page(browser: Browser) -> None:
    async with Harness() as harness:
        page = await harness.open_page(browser)
        session = await harness.next_session()
        await page.evaluate("wsserver.close()")
        await wait_status(page, "offline")
        await wait_until(lambda: session.closed)
        assert session.close_code == 1000
        await page.evaluate("wsserver.connect()")
        await wait_status(page, "open")
        assert (await harness.next_session()).id == await page.evaluate("wsserver.sessionId")


async def test_message_limit_follows_the_connections_own() -> None:

    # None takes the connection's limit; a larger one is lowered to it,
    # since the server would fail bigger messages with 1009 anyway.
    small = FakeWebSocket(max_message_size=2048)
    assert Session(small).max_message_size == 2048  # type: ignore[arg-type]
    assert Session(small, max_message_size=10_000).max_message_size == 2048  # type: ignore[arg-type]
    assert Session(small, max_message_size=100).max_message_size == 100  # type: ignore[arg-type]


async def test_send_passes_the_compression_choice_on() -> None:
    session, websocket = fake_session()
    await session.send("demo", "a")
    await session.send("demo", "b", compress=False)
    await session.send("demo", "c", compress=True)
    await session.send("demo", "d", compress_min_size=10_000, data="x" * 100)
    await session.send("demo", "e", compress=False, compress_min_size=10, data="x" * 100)
    assert websocket.compressed == [
        ("a", None),
        ("b", False),
        ("c", True),
        ("d", False),
        ("e", True),
    ]
    assert [m["k"] for m in websocket.sent] == ["a", "b", "c", "d", "e"]
    assert "compress" not in websocket.sent[2]
