"""Tests for wsserver.plugins.runtime.js: JS execution futures.

First the Python side alone, over a fake session: the messages sent, the
bookkeeping of pending futures (counted: nothing may stay pending), timeouts
in seconds against ``timeout_ms`` on the wire, answers for unknown ids,
failures at disconnect.  Then the real thing: headless Chromium running the
browser runtime against a real server, for every JSON type, promises,
thenables, errors, timeouts, a page closed mid-call, a reconnect, and the
``examples/js_console.py`` application.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from typing import TYPE_CHECKING, Any, cast

import pytest

from wsserver.plugins.runtime.js import (
    JavascriptExecutionError,
    JavascriptExecutionTimedOut,
    JSBridge,
    execute_js,
    get_js_result,
)
from wsserver.plugins.runtime.messages import MessageTooLarge
from wsserver.plugins.runtime.session import Session
from wsserver.server import WebSocketDisconnect
from wsserver.server.metric_sources import MetricSource, metric_sources

from .._browser import WAIT, Harness, wait_status, wait_until
from .._fakes import FakeWebSocket, fake_session, start

if TYPE_CHECKING:
    from playwright.async_api import Browser

# One browser for the module (conftest.py), so one event loop for it too.
pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(60)]


def fake(session: Session) -> FakeWebSocket:
    return cast(FakeWebSocket, session.websocket)


async def answer(session: Session, call_id: int, **fields: Any) -> None:
    """Deliver a js/result message as if from the browser."""
    fake(session).feed({"p": "js", "k": "result", "id": call_id, **fields})


# ---------------------------------------------------------------------------
# The Python side, over a fake session
# ---------------------------------------------------------------------------


async def test_fire_and_forget_sends_code_without_id_and_returns_none() -> None:
    session, websocket = fake_session()
    assert await execute_js(session, "console.log(1)") is None
    assert websocket.sent == [
        {"p": "js", "k": "exec", "code": "console.log(1)", "reply": False, "timeout_ms": None}
    ]
    assert JSBridge.of(session).pending_count == 0


async def test_timeout_without_wait_for_result_is_a_value_error() -> None:
    session, websocket = fake_session()
    with pytest.raises(ValueError, match="wait_for_result"):
        await execute_js(session, "1", timeout=1)
    assert websocket.sent == []


@pytest.mark.parametrize("timeout", [0, -1, math.nan, math.inf, True])
async def test_bad_timeouts_are_value_errors(timeout: float) -> None:
    session, websocket = fake_session()
    with pytest.raises(ValueError, match="timeout"):
        await execute_js(session, "1", timeout=timeout, wait_for_result=True)
    with pytest.raises(ValueError, match="timeout"):
        await get_js_result(session, "", "1", timeout=timeout)
    assert websocket.sent == []


async def test_bad_arguments_are_refused() -> None:
    session, _ = fake_session()
    with pytest.raises(TypeError):
        await execute_js(session, 1)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await get_js_result(session, 1, "x")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await get_js_result(session, "", None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="expression"):
        await get_js_result(session, "", "  ")


async def test_waiting_call_sends_an_id_and_milliseconds_and_returns_the_value() -> None:
    session, websocket = fake_session()
    run = await start(session)
    bridge = JSBridge.of(session)
    call = asyncio.create_task(execute_js(session, "1+1", timeout=1.5, wait_for_result=True))
    message = await websocket.next_sent("js", "exec")
    # Seconds in Python, milliseconds on the wire, in a field that says so.
    assert message == {
        "p": "js",
        "k": "exec",
        "id": 1,
        "reply": True,
        "timeout_ms": 1500,
        "code": "1+1",
    }
    assert bridge.pending_count == 1
    await answer(session, 1, ok=True, value={"a": [1, None]})
    assert await call == {"a": [1, None]}
    assert bridge.pending_count == 0
    websocket.disconnect()
    await run


async def test_small_timeouts_round_up_to_a_whole_millisecond() -> None:
    session, websocket = fake_session()
    run = await start(session)
    call = asyncio.create_task(get_js_result(session, "", "x", timeout=0.0001))
    message = await websocket.next_sent("js", "exec")
    assert message["timeout_ms"] == 1
    with pytest.raises(JavascriptExecutionTimedOut):
        await call
    websocket.disconnect()
    await run


async def test_undefined_arrives_as_none() -> None:
    session, websocket = fake_session()
    run = await start(session)
    call = asyncio.create_task(execute_js(session, "undefined", wait_for_result=True))
    message = await websocket.next_sent("js", "exec")
    assert message["timeout_ms"] is None
    await answer(session, message["id"], ok=True)  # JSON.stringify drops undefined
    assert await call is None
    websocket.disconnect()
    await run


async def test_get_js_result_sends_code_and_expression() -> None:
    session, websocket = fake_session()
    run = await start(session)
    call = asyncio.create_task(get_js_result(session, "var x = 2", "x * 3"))
    message = await websocket.next_sent("js", "exec")
    assert (message["code"], message["expr"], message["reply"]) == ("var x = 2", "x * 3", True)
    await answer(session, message["id"], ok=True, value=6)
    assert await call == 6
    websocket.disconnect()
    await run


async def test_ids_are_unique_per_connection_and_answers_may_come_in_any_order() -> None:
    session, websocket = fake_session()
    run = await start(session)
    calls = [
        asyncio.create_task(execute_js(session, f"{n}", wait_for_result=True)) for n in range(5)
    ]
    ids = [(await websocket.next_sent("js", "exec"))["id"] for _ in calls]
    assert ids == [1, 2, 3, 4, 5]
    for call_id in reversed(ids):
        await answer(session, call_id, ok=True, value=call_id * 10)
    assert await asyncio.gather(*calls) == [10, 20, 30, 40, 50]
    # Another session counts on its own: ids are per connection.
    other, other_socket = fake_session()
    other_run = await start(other)
    other_call = asyncio.create_task(execute_js(other, "1", wait_for_result=True))
    assert (await other_socket.next_sent("js", "exec"))["id"] == 1
    await answer(other, 1, ok=True, value=1)
    assert await other_call == 1
    for socket, task in ((websocket, run), (other_socket, other_run)):
        socket.disconnect()
        await task


async def test_a_javascript_error_carries_name_message_and_stack() -> None:
    session, websocket = fake_session()
    run = await start(session)
    call = asyncio.create_task(execute_js(session, "x()", wait_for_result=True))
    message = await websocket.next_sent("js", "exec")
    error = {"name": "ReferenceError", "message": "x is not defined", "stack": "at <anonymous>"}
    await answer(session, message["id"], ok=False, error=error)
    with pytest.raises(JavascriptExecutionError) as caught:
        await call
    exc = caught.value
    assert type(exc) is JavascriptExecutionError
    assert (exc.name, exc.message, exc.stack) == (
        "ReferenceError",
        "x is not defined",
        "at <anonymous>",
    )
    assert str(exc) == "ReferenceError: x is not defined"
    assert JSBridge.of(session).pending_count == 0
    websocket.disconnect()
    await run


async def test_timeout_raises_timed_out_and_a_late_answer_is_ignored_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    session, websocket = fake_session()
    run = await start(session)
    bridge = JSBridge.of(session)
    timeouts_before = source("wsserver_js_call_timeouts").read()
    started = time.monotonic()
    call = asyncio.ensure_future(
        execute_js(session, "new Promise(() => {})", timeout=0.1, wait_for_result=True)
    )
    # While it waits, the metrics see it pending.
    await wait_until(lambda: source("wsserver_js_pending_calls").read() >= 1)
    with pytest.raises(JavascriptExecutionTimedOut) as caught:
        await call
    assert source("wsserver_js_call_timeouts").read() == timeouts_before + 1
    # Not before the timeout; the upper bound only catches a unit mistake
    # (0.1 read as milliseconds or minutes), with room for a busy machine.
    assert 0.09 < time.monotonic() - started < 10.0
    assert isinstance(caught.value, JavascriptExecutionError)
    assert caught.value.name is None
    assert "0.1 s" in str(caught.value)
    assert bridge.pending_count == 0
    with caplog.at_level(logging.INFO, logger="wsserver.plugins.js"):
        await answer(session, 1, ok=True, value="late")
        await answer(session, 99, ok=True, value="never asked")
        await wait_until(lambda: bridge.unknown_answers == 2)
    lines = [r.getMessage() for r in caplog.records]
    assert "conn 7: JS answer for unknown id 1 ignored" in lines
    assert "conn 7: JS answer for unknown id 99 ignored" in lines
    assert not session.closed
    websocket.disconnect()
    await run


async def test_disconnect_fails_every_pending_call_at_once() -> None:
    session, websocket = fake_session()
    run = await start(session)
    bridge = JSBridge.of(session)
    calls = [
        asyncio.create_task(execute_js(session, "new Promise(() => {})", wait_for_result=True)),
        asyncio.create_task(get_js_result(session, "", "x", timeout=60)),
        asyncio.create_task(execute_js(session, "1", timeout=60, wait_for_result=True)),
    ]
    for _ in calls:
        await websocket.next_sent("js", "exec")
    assert bridge.pending_count == 3
    started = time.monotonic()
    websocket.disconnect(1001)
    outcomes = await asyncio.gather(*calls, return_exceptions=True)
    # At once: long before the 60 s timeouts (the bound leaves room for a
    # busy machine and still tells the two apart).
    assert time.monotonic() - started < 30.0
    for outcome in outcomes:
        assert type(outcome) is JavascriptExecutionError
        assert "closed (code 1001)" in str(outcome)
    assert bridge.pending_count == 0
    assert await run == 1001
    # And later calls fail at once, without sending anything.
    with pytest.raises(JavascriptExecutionError, match="closed"):
        await execute_js(session, "1", wait_for_result=True)
    with pytest.raises(JavascriptExecutionError, match="closed"):
        await execute_js(session, "1")
    assert bridge.pending_count == 0


async def test_a_cancelled_call_leaves_nothing_pending() -> None:
    session, websocket = fake_session()
    run = await start(session)
    bridge = JSBridge.of(session)
    call = asyncio.create_task(execute_js(session, "1", wait_for_result=True))
    await websocket.next_sent("js", "exec")
    assert bridge.pending_count == 1
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    assert bridge.pending_count == 0
    websocket.disconnect()
    await run


async def test_a_send_that_fails_leaves_nothing_pending() -> None:
    session, websocket = fake_session()
    bridge = JSBridge.of(session)
    websocket.gone = 1006  # the connection died; the session has not noticed yet
    with pytest.raises(JavascriptExecutionError, match="closed"):
        await execute_js(session, "1", wait_for_result=True)
    assert bridge.pending_count == 0
    with pytest.raises(MessageTooLarge):
        await execute_js(session, "x" * (2 << 20), wait_for_result=True)
    assert bridge.pending_count == 0


async def test_a_session_closed_while_sending_fails_the_call_without_warnings() -> None:
    session, websocket = fake_session()
    bridge = JSBridge.of(session)
    gate = asyncio.Event()

    async def slow_send(text: str) -> None:
        await gate.wait()  # a slow reader: the send waits
        raise WebSocketDisconnect(1006)

    websocket.send_text = slow_send  # type: ignore[method-assign]
    call = asyncio.create_task(execute_js(session, "1", wait_for_result=True))
    await asyncio.sleep(0.01)
    await session.close(1001)  # fails the pending future while send waits
    gate.set()
    with pytest.raises(JavascriptExecutionError):
        await call
    assert bridge.pending_count == 0


@pytest.mark.parametrize(
    "fields",
    [
        {"id": "1", "ok": True},
        {"id": True, "ok": True},
        {"ok": True},
        {"id": 1},
        {"id": 1, "ok": "yes"},
        {"id": 1, "ok": False},
        {"id": 1, "ok": False, "error": "boom"},
        {"id": 1, "ok": False, "error": {"message": "no name"}},
    ],
)
async def test_malformed_answers_close_with_1007(fields: dict[str, Any]) -> None:
    session, websocket = fake_session()
    run = await start(session)
    call = asyncio.create_task(execute_js(session, "1", wait_for_result=True))
    await websocket.next_sent("js", "exec")
    websocket.feed({"p": "js", "k": "result", **fields})
    assert await run == 1007
    assert websocket.closed_with is not None and websocket.closed_with[0] == 1007
    with pytest.raises(JavascriptExecutionError, match="code 1007"):
        await call
    assert JSBridge.of(session).pending_count == 0


async def test_long_error_texts_are_cut() -> None:
    session, websocket = fake_session()
    run = await start(session)
    call = asyncio.create_task(execute_js(session, "1", wait_for_result=True))
    await websocket.next_sent("js", "exec")
    error = {"name": "E" * 1000, "message": "m" * 100_000, "stack": 5}
    await answer(session, 1, ok=False, error=error)
    with pytest.raises(JavascriptExecutionError) as caught:
        await call
    assert caught.value.name == "E" * 200
    assert len(caught.value.message) == 4096
    assert caught.value.stack is None
    websocket.disconnect()
    await run


async def test_one_bridge_per_session() -> None:
    session, _ = fake_session()
    bridge = JSBridge.of(session)
    assert JSBridge.of(session) is bridge
    assert session.plugins["js"] is bridge
    with pytest.raises(ValueError, match="already has"):
        JSBridge(session)


# ---------------------------------------------------------------------------
# In Chromium
# ---------------------------------------------------------------------------

VALUES: list[tuple[str, Any]] = [
    ("null", None),
    ("true", True),
    ("false", False),
    ("0", 0),
    ("-17", -17),
    ("2 ** 53 - 1", 2**53 - 1),
    ("1.5", 1.5),
    ("-0.1", -0.1),
    ("1e300", 1e300),
    ("''", ""),
    ("'h\\u00e9llo \\u{1F600} \"q\" \\\\ \\n'", 'héllo 😀 "q" \\ \n'),
    ("[]", []),
    ("({})", {}),
    ("[1, 'a', null, [true, {b: 2}]]", [1, "a", None, [True, {"b": 2}]]),
    ("({a: {b: {c: [1, 2, 3]}}, 'k y': 'v'})", {"a": {"b": {"c": [1, 2, 3]}}, "k y": "v"}),
    ("undefined", None),
    ("NaN", None),  # JSON.stringify's choices
    ("[undefined, () => 1]", [None, None]),
    ("({u: undefined, f() {}})", {}),
    ("new Date(0)", "1970-01-01T00:00:00.000Z"),
    ("new Map([[1, 2]])", {}),
    ("let q = 4; q * 2", 8),  # the value of the last expression statement
    ("if (true) { 'then' } else { 'else' }", "then"),
    ("var declared = 1", None),
]


async def test_values_of_every_json_type(browser: Browser) -> None:
    async with Harness() as harness:
        await harness.open_page(browser)
        session = await harness.next_session()
        for code, expected in VALUES:
            got = await execute_js(session, code, wait_for_result=True, timeout=WAIT)
            assert got == expected and type(got) is type(expected), code


async def test_promises_and_thenables_are_awaited(browser: Browser) -> None:
    async with Harness() as harness:
        await harness.open_page(browser)
        session = await harness.next_session()
        assert (
            await execute_js(
                session,
                "new Promise((r) => setTimeout(() => r('later'), 50))",
                wait_for_result=True,
            )
            == "later"
        )
        assert await execute_js(session, "(async () => [1, 2])()", wait_for_result=True) == [1, 2]
        assert await execute_js(session, "({then(r) { r(5); }})", wait_for_result=True) == 5
        assert await execute_js(
            session,
            "({then(r) { setTimeout(() => r({ok: 'thenable'}), 20); }})",
            wait_for_result=True,
        ) == {"ok": "thenable"}
        # A promise of a promise of a thenable.
        assert (
            await execute_js(
                session,
                "Promise.resolve(Promise.resolve({then(r) { r('deep'); }}))",
                wait_for_result=True,
            )
            == "deep"
        )
        assert (
            await execute_js(
                session, "fetch('/healthz').then((r) => r.text())", wait_for_result=True
            )
            == "ok\n"
        )


async def test_get_js_result(browser: Browser) -> None:
    async with Harness() as harness:
        page = await harness.open_page(browser)
        session = await harness.next_session()
        assert await get_js_result(session, "var x = 21", "x * 2") == 42
        assert await get_js_result(session, "window.y = 'w'", "y") == "w"
        assert await get_js_result(session, "", "document.title") == "t"
        # The code's promise is awaited before the expression is evaluated.
        assert (
            await get_js_result(
                session,
                "new Promise((r) => setTimeout(() => { window.z = 'set'; r(); }, 30))",
                "window.z",
            )
            == "set"
        )
        assert await get_js_result(session, "", "Promise.resolve(7)") == 7
        # Fire and forget runs too.
        await execute_js(session, "window.fired = 'yes'")
        assert await get_js_result(session, "", "window.fired") == "yes"
        assert await page.evaluate("window.fired") == "yes"
        # let/const stay inside their own evaluation (documented).
        with pytest.raises(JavascriptExecutionError) as caught:
            await get_js_result(session, "let hidden = 1", "hidden")
        assert caught.value.name == "ReferenceError"


async def test_javascript_errors_carry_name_and_message(browser: Browser) -> None:
    async with Harness() as harness:
        await harness.open_page(browser)
        session = await harness.next_session()
        cases = [
            ("throw new TypeError('bad type')", "TypeError", "bad type"),
            ("undefinedFunction()", "ReferenceError", "undefinedFunction is not defined"),
            ("if (", "SyntaxError", None),
            ("Promise.reject(new RangeError('out'))", "RangeError", "out"),
            ("(async () => { throw new URIError('async') })()", "URIError", "async"),
            ("({then(_, reject) { reject(new EvalError('thenable')); }})", "EvalError", "thenable"),
            (
                "class MyError extends Error {"
                " constructor(m) { super(m); this.name = 'MyError'; } };"
                " throw new MyError('custom')",
                "MyError",
                "custom",
            ),
            ("throw 'a string'", "Error", "a string"),
            ("Promise.reject(42)", "Error", "42"),
            ("throw {name: 'Plain', message: 'object'}", "Plain", "object"),
            ("throw null", "Error", "null"),
        ]
        for code, name, message in cases:
            with pytest.raises(JavascriptExecutionError) as caught:
                await execute_js(session, code, wait_for_result=True, timeout=WAIT)
            exc = caught.value
            assert type(exc) is JavascriptExecutionError, code
            assert exc.name == name, code
            if message is not None:
                assert exc.message == message, code
        with pytest.raises(JavascriptExecutionError) as caught:
            await execute_js(session, "throw new Error('with stack')", wait_for_result=True)
        assert caught.value.stack is not None and "with stack" in caught.value.stack
        # Errors in fire-and-forget code are logged in the page, not sent.
        await execute_js(session, "throw new Error('nobody waits')")
        await wait_until(lambda: any("nobody waits" in text for _, text in harness.console))
        assert JSBridge.of(session).unknown_answers == 0


async def test_results_that_cannot_be_sent_become_errors(browser: Browser) -> None:
    async with Harness(max_message_size=2000) as harness:
        await harness.open_page(browser)
        session = await harness.next_session()
        with pytest.raises(JavascriptExecutionError) as caught:
            await execute_js(session, "10n", wait_for_result=True)
        assert caught.value.name == "TypeError"
        assert "not JSON-serialisable" in caught.value.message
        with pytest.raises(JavascriptExecutionError) as caught:
            await execute_js(session, "const o = {}; o.self = o; o", wait_for_result=True)
        assert caught.value.name == "TypeError"
        # The browser knows the limit from init, and says so instead of sending.
        with pytest.raises(JavascriptExecutionError) as caught:
            await execute_js(session, "'x'.repeat(5000)", wait_for_result=True)
        assert caught.value.name == "ResultTooLarge"
        assert "2000 bytes" in caught.value.message
        # Even an error whose own answer is too large gets through, shortened.
        with pytest.raises(JavascriptExecutionError) as caught:
            await execute_js(session, "throw new Error('e'.repeat(10000))", wait_for_result=True)
        assert caught.value.name in ("ResultTooLarge", "Error")
        # Just under the limit is fine.
        assert len(await execute_js(session, "'y'.repeat(1900)", wait_for_result=True)) == 1900
        assert not session.closed


async def test_timeouts_are_seconds_here_and_milliseconds_there(browser: Browser) -> None:
    async with Harness() as harness:
        await harness.open_page(browser)
        session = await harness.next_session()
        bridge = JSBridge.of(session)
        # A 2 s timeout gives the page 2000 ms, not 2 ms: a 300 ms promise makes it.
        assert (
            await execute_js(
                session,
                "new Promise((r) => setTimeout(() => r('in time'), 300))",
                timeout=2,
                wait_for_result=True,
            )
            == "in time"
        )
        # A 0.4 s timeout: the server gives up at 0.4 s ...
        started = time.monotonic()
        with pytest.raises(JavascriptExecutionTimedOut):
            await execute_js(
                session,
                "new Promise((r) => setTimeout(() => r('too late'), 1000))",
                timeout=0.4,
                wait_for_result=True,
            )
        # (Raising at all shows the server gave up before the 1 s answer.)
        assert 0.35 < time.monotonic() - started < 10.0
        assert bridge.pending_count == 0
        # ... and so does the page (400 ms, not 400 s): no late answer comes.
        await asyncio.sleep(1.0)
        assert bridge.unknown_answers == 0
        # A promise that never settles: the same, and the page still works.
        with pytest.raises(JavascriptExecutionTimedOut):
            await get_js_result(session, "", "new Promise(() => {})", timeout=0.2)
        assert await execute_js(session, "'alive'", wait_for_result=True) == "alive"


async def test_a_page_closed_mid_call_fails_the_call_at_once(browser: Browser) -> None:
    async with Harness() as harness:
        page = await harness.open_page(browser)
        session = await harness.next_session()
        bridge = JSBridge.of(session)
        calls = [
            asyncio.create_task(execute_js(session, "new Promise(() => {})", wait_for_result=True)),
            asyncio.create_task(get_js_result(session, "", "new Promise(() => {})", timeout=30)),
        ]
        await wait_until(lambda: bridge.pending_count == 2)
        started = time.monotonic()
        await page.close()
        outcomes = await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), WAIT)
        assert time.monotonic() - started < 2.0
        for outcome in outcomes:
            assert type(outcome) is JavascriptExecutionError, outcome
            assert "closed" in str(outcome)
        assert bridge.pending_count == 0
        await wait_until(lambda: session in harness.ended)


async def test_reconnect_after_the_server_drops_the_connection(browser: Browser) -> None:
    async with Harness() as harness:
        page = await harness.open_page(browser)
        session = await harness.next_session()
        pending = asyncio.create_task(
            execute_js(session, "new Promise(() => {})", wait_for_result=True)
        )
        await wait_until(lambda: JSBridge.of(session).pending_count == 1)
        harness.abort(session)  # TCP gone, no closing handshake
        with pytest.raises(JavascriptExecutionError):
            await asyncio.wait_for(pending, WAIT)
        assert JSBridge.of(session).pending_count == 0
        fresh = await harness.next_session()
        await wait_status(page, "open")
        assert fresh.id != session.id
        assert await page.evaluate("wsserver.sessionId") == fresh.id
        assert (
            await execute_js(fresh, "'after reconnect'", wait_for_result=True) == "after reconnect"
        )
        # The old session is finished, with nothing left pending.
        await wait_until(lambda: session in harness.ended)
        assert session.close_code == 1006
        reconnecting = await page.evaluate(
            "window.__statuses.filter((e) => e.status === 'reconnecting').length"
        )
        assert reconnecting >= 1


async def test_the_js_console_example(browser: Browser) -> None:
    from examples import js_console

    harness = Harness()
    harness.app = js_console.app
    async with harness:
        context = await browser.new_context()
        harness.contexts.append(context)
        pages = [await context.new_page() for _ in range(2)]
        for page in pages:
            await page.goto(harness.url)
            await wait_status(page, "open")
        await wait_until(lambda: len(js_console.console.pages) == 2)
        assert "connected" in await pages[0].evaluate(
            "getComputedStyle(document.getElementById('status'), '::after').content"
        )
        plain = await context.request.post(harness.url + "eval", data="document.title")
        assert plain.status == 200
        body = await plain.json()
        assert body["pages"] == 2
        assert {r["session"] for r in body["results"]} == set(js_console.console.pages)
        assert all(r == {**r, "ok": True, "value": "wsserver JS console"} for r in body["results"])
        typed = await context.request.post(
            harness.url + "eval",
            data='{"expr": "Promise.resolve([location.pathname, 1 + 1])", "timeout": 2}',
            headers={"content-type": "application/json"},
        )
        assert [r["value"] for r in (await typed.json())["results"]] == [["/", 2], ["/", 2]]
        failing = await context.request.post(harness.url + "eval", data="nope.nope")
        errors = [r["error"] for r in (await failing.json())["results"]]
        assert errors == [{"name": "ReferenceError", "message": "nope is not defined"}] * 2
        for data, headers in [
            ("  ", {}),
            ("{bad", {"content-type": "application/json"}),
            ('{"expr": 1}', {"content-type": "application/json"}),
            ('{"expr": "1", "timeout": 0}', {"content-type": "application/json"}),
        ]:
            bad = await context.request.post(harness.url + "eval", data=data, headers=headers)
            assert bad.status == 400, data
        await pages[0].close()
        await wait_until(lambda: len(js_console.console.pages) == 1)
        await context.close()
        harness.contexts.clear()
        await wait_until(lambda: not js_console.console.pages)
        empty = await browser.new_context()
        try:
            response = await empty.request.post(harness.url + "eval", data="1")
            assert await response.json() == {"pages": 0, "results": []}
        finally:
            await empty.close()


def source(name: str) -> MetricSource:
    """The metric source the JS bridge registered under ``name``."""
    (found,) = [s for s in metric_sources() if s.name == name]
    return found
