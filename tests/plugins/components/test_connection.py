"""Tests for wsserver.plugins.components.connection: PageConnection.

Over a fake WebSocket: the protocol's edge cases.  Then in headless
Chromium against a real server: a counter (one message per batch, async
handlers awaiting the browser), the to-do example (add, remove, edit,
reorder -- DOM nodes moved, not recreated), a form with every input type, a
drop on the server's side and the resume with form state intact, expired
and tampered snapshots, and XSS payloads rendered inert.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any, cast

import pytest

from wsserver.plugins.components import Component, ComponentApp, DocumentEvent, Event, State, h
from wsserver.plugins.components.component import dump_component
from wsserver.plugins.components.connection import PageConnection, page_snapshot
from wsserver.plugins.components.html import Element
from wsserver.plugins.components.navigation import History
from wsserver.plugins.components.store import SnapshotExpired, SnapshotInvalid
from wsserver.plugins.runtime.session import Session
from wsserver.server import HTMLResponse, Request, Response

from ..._live import http_get, in_memory
from .._fakes import FakeWebSocket, fake_session
from ._harness import (
    WAIT,
    AppHarness,
    after,
    fast_app,
    seq,
    text,
    wait_attached,
    wait_seq,
    wait_until,
)
from ._pages import Counter

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(90)]


# ---------------------------------------------------------------------------
# Over a fake WebSocket: the protocol's edges
# ---------------------------------------------------------------------------


async def test_a_snapshot_holds_the_page_as_json() -> None:
    root = Counter(count=3)
    history = History(4)
    history.stash(history.push(), {"url": "/a", "page": "/a", "root": dump_component(root)})
    data = page_snapshot(page="/", url="/?q=1", seq=2, root=root, history=history)
    assert data == {
        "v": 1,
        "page": "/",
        "url": "/?q=1",
        "seq": 2,
        "root": dump_component(root),
        "hist": history.to_json(),
        "loaded": True,
    }
    assert json.loads(json.dumps(data)) == data


async def attached(app: ComponentApp, path: str = "/") -> tuple[PageConnection, FakeWebSocket, Any]:
    """A PageConnection on a fake socket, attached to a fresh page of ``app``."""
    async with in_memory(app) as served:
        body = (await http_get(served, path)).body.decode()
    page_id = body.split('data-cv-page="', 1)[1].split('"', 1)[0]
    session, websocket = fake_session()
    connection = PageConnection(app, session)
    run = asyncio.gather(session.run(), connection.run())
    await websocket.next_sent("rt", "init")
    count = body.count('data-k="')
    websocket.feed({"p": "cv", "k": "attach", "page": page_id, "seq": 0, "count": count})
    assert await websocket.next_sent("cv", "ready") == {"p": "cv", "k": "ready", "seq": 0}
    return connection, websocket, run


async def finish(websocket: FakeWebSocket, run: Any) -> None:
    websocket.disconnect()
    with pytest.raises(asyncio.CancelledError):
        run.cancel()
        await run


async def test_one_event_is_one_batch_in_one_message() -> None:
    app = ComponentApp({"/": Counter})
    connection, websocket, run = await attached(app)
    websocket.feed({"p": "cv", "k": "ev", "key": "r/0", "type": "click", "value": None})
    batch = await websocket.next_sent("cv", "patch")
    assert batch == {
        "p": "cv",
        "k": "patch",
        "seq": 1,
        "ops": [{"o": "txt", "k": "r/2", "x": "1"}],
        "title": "Count 1",
    }
    assert (await app.snapshots.load(connection.page_id or ""))["seq"] == 1
    # An event for an element that is gone is counted and ignored.
    websocket.feed({"p": "cv", "k": "ev", "key": "r/9", "type": "click"})
    websocket.feed({"p": "cv", "k": "ev", "key": "r/0", "type": "click"})
    assert (await websocket.next_sent("cv", "patch"))["seq"] == 2
    assert connection.stale_events == 1
    await finish(websocket, run)


async def test_attach_with_a_stale_seq_gets_the_whole_page() -> None:
    app = ComponentApp({"/": Counter})
    connection, websocket, run = await attached(app)
    page_id = connection.page_id
    await finish(websocket, run)
    session, websocket = fake_session()
    connection = PageConnection(app, session)
    run = asyncio.gather(session.run(), connection.run())
    websocket.feed({"p": "cv", "k": "attach", "page": page_id, "seq": 7, "count": 4})
    mount = await websocket.next_sent("cv", "mount")
    assert mount["seq"] == 1 and mount["node"]["k"] == "r" and mount["title"] == "Count 0"
    await finish(websocket, run)


@pytest.mark.parametrize("damage", ["missing", "tampered"])
async def test_attach_to_a_lost_page_says_it_expired(damage: str) -> None:
    app = ComponentApp({"/": Counter}, expired_message="Gone <b>!", reload_delay=2)
    connection, websocket, run = await attached(app)
    page_id = connection.page_id or ""
    await finish(websocket, run)
    if damage == "missing":
        await app.snapshots.delete(page_id)
    else:
        key = app.snapshots.prefix + page_id
        blob = await app.snapshots.store.get(key)
        assert blob is not None
        await app.snapshots.store.set(key, blob[:-1] + bytes([blob[-1] ^ 0x40]), ttl=60)
    session, websocket = fake_session()
    connection = PageConnection(app, session)
    run = asyncio.gather(session.run(), connection.run())
    websocket.feed({"p": "cv", "k": "attach", "page": page_id, "seq": 0, "count": 4})
    expired = await websocket.next_sent("cv", "expired")
    assert expired == {
        "p": "cv",
        "k": "expired",
        "reason": "expired" if damage == "missing" else "invalid",
        "message": "Gone <b>!",
        "reload_ms": 2000,
    }
    # Events after that run nothing.
    websocket.feed({"p": "cv", "k": "ev", "key": "r/0", "type": "click"})
    await asyncio.sleep(0.05)
    assert not [m for m in websocket.sent if m.get("k") == "patch"]
    await finish(websocket, run)


async def test_attaches_are_counted_by_outcome_for_the_metrics() -> None:
    from wsserver.plugins.components.store import InMemoryStore, StoreUnavailable
    from wsserver.server.metric_sources import metric_sources

    def counts() -> dict[str, float]:
        prefix = "wsserver_components_attaches_"
        return {
            s.name.removeprefix(prefix): s.read()
            for s in metric_sources()
            if s.name.startswith(prefix)
        }

    class Flaky(InMemoryStore):
        away = False

        async def get(self, key: str) -> bytes | None:
            if self.away:
                raise StoreUnavailable("the store is away")
            return await super().get(key)

    store = Flaky()
    app = ComponentApp({"/": Counter}, store=store)
    before = counts()
    connection, websocket, run = await attached(app)  # first
    page_id = connection.page_id or ""
    # Nothing changed, yet the page is saved as loaded before its connection
    # ends: a reconnection that comes first is a resume.
    assert (await app.snapshots.load(page_id))["loaded"] is True
    await finish(websocket, run)

    async def attach(seq: int, answer: str) -> dict[str, Any]:
        session, websocket = fake_session()
        run = asyncio.gather(session.run(), PageConnection(app, session).run())
        websocket.feed({"p": "cv", "k": "attach", "page": page_id, "seq": seq, "count": 4})
        message = await websocket.next_sent("cv", answer)
        await finish(websocket, run)
        return message

    assert (await attach(0, "ready"))["seq"] == 0  # resumed
    await attach(7, "mount")  # remounted
    store.away = True
    assert (await attach(0, "expired"))["reason"] == "invalid"  # unavailable
    store.away = False
    key = app.snapshots.prefix + page_id
    blob = await store.get(key)
    assert blob is not None
    await store.set(key, blob[:-1] + bytes([blob[-1] ^ 0x40]), ttl=60)
    assert (await attach(0, "expired"))["reason"] == "invalid"  # refused
    await app.snapshots.delete(page_id)
    assert (await attach(0, "expired"))["reason"] == "expired"  # expired
    after = counts()
    assert {name: after[name] - before[name] for name in after} == {
        "first": 1,
        "resumed": 1,
        "remounted": 1,
        "unavailable": 1,
        "refused": 1,
        "expired": 1,
    }


async def test_a_pages_first_attach_counts_as_first_whether_it_matched_or_not() -> None:
    from wsserver.server.metric_sources import metric_sources

    def counts() -> dict[str, float]:
        prefix = "wsserver_components_attaches_"
        return {
            s.name.removeprefix(prefix): s.read()
            for s in metric_sources()
            if s.name.startswith(prefix)
        }

    app = ComponentApp({"/": Counter})
    before = counts()
    async with in_memory(app) as served:
        body = (await http_get(served, "/")).body.decode()
    page_id = body.split('data-cv-page="', 1)[1].split('"', 1)[0]

    async def attach(count: int, answer: str) -> None:
        session, websocket = fake_session()
        run = asyncio.gather(session.run(), PageConnection(app, session).run())
        websocket.feed({"p": "cv", "k": "attach", "page": page_id, "seq": 0, "count": count})
        await websocket.next_sent("cv", answer)
        await finish(websocket, run)

    # The browser's page did not map (count -1): sent whole, still its first.
    await attach(-1, "mount")
    assert (await app.snapshots.load(page_id))["loaded"] is True
    # Its next connection is a resume: the mount moved the page to seq 1.
    await attach(-1, "mount")
    after = counts()
    changed = {name: after[name] - before[name] for name in after if after[name] != before[name]}
    assert changed == {"first": 1, "remounted": 1}


@pytest.mark.parametrize(
    "message",
    [
        {"p": "cv", "k": "attach", "page": "", "seq": 0, "count": 1},
        {"p": "cv", "k": "attach", "page": "x", "seq": "0", "count": 1},
        {"p": "cv", "k": "ev", "key": "r", "type": "on click"},
        {"p": "cv", "k": "nav", "href": "//evil.example/"},
        {"p": "cv", "k": "nav", "href": "javascript:alert(1)"},
        {"p": "cv", "k": "nav", "href": "/", "method": "DELETE"},
    ],
)
async def test_malformed_messages_close_with_1007(message: dict[str, Any]) -> None:
    app = ComponentApp({"/": Counter})
    session, websocket = fake_session()
    PageConnection(app, session)
    run = asyncio.create_task(session.run())
    websocket.feed(message)
    assert await asyncio.wait_for(run, WAIT) == 1007


async def test_a_second_attach_supersedes_the_first() -> None:
    app = ComponentApp({"/": Counter})
    first, first_socket, first_run = await attached(app)
    page_id = first.page_id or ""
    session, websocket = fake_session()
    second = PageConnection(app, session)
    run = asyncio.gather(session.run(), second.run())
    websocket.feed({"p": "cv", "k": "attach", "page": page_id, "seq": 0, "count": 4})
    await websocket.next_sent("cv", "ready")
    assert (await first_socket.next_sent("cv", "expired"))["reason"] == "moved"
    assert app.connections[page_id] is second
    await finish(first_socket, first_run)
    await first.finish()  # must not save over the newer connection's state
    websocket.feed({"p": "cv", "k": "ev", "key": "r/0", "type": "click"})
    await websocket.next_sent("cv", "patch")
    await second.finish()
    assert (await app.snapshots.load(page_id))["root"]["s"]["count"] == 1
    await finish(websocket, run)


@pytest.mark.parametrize(("limit", "events"), [(256, 300), (4, 6)])
async def test_a_flood_of_events_closes_with_1008(limit: int, events: int) -> None:
    gate = asyncio.Event()

    class Stuck(Component):
        def render(self) -> Element:
            return h.button("x").bind("click", self.wait)

        async def wait(self) -> None:
            await gate.wait()  # the worker is busy: events queue up

    app = ComponentApp({"/": Stuck}, max_pending_jobs=limit)
    _, websocket, run = await attached(app)
    for _ in range(limit):
        websocket.feed({"p": "cv", "k": "ev", "key": "r", "type": "click"})
    # The first event is running, the others wait: still under the limit.
    await asyncio.sleep(0)
    assert websocket.closed_with is None
    for _ in range(events - limit):
        websocket.feed({"p": "cv", "k": "ev", "key": "r", "type": "click"})
    await wait_until(lambda: websocket.closed_with is not None)
    assert websocket.closed_with == (1008, "too many pending events")
    gate.set()
    await finish(websocket, run)


async def test_refresh_from_outside_a_handler() -> None:
    app = ComponentApp({"/": Counter})
    connection, websocket, run = await attached(app)
    root = cast(Counter, connection.root)
    root.count = 41
    await connection.refresh()
    batch = await websocket.next_sent("cv", "patch")
    assert batch["ops"] == [{"o": "txt", "k": "r/2", "x": "41"}]
    await connection.refresh()  # nothing changed: nothing sent
    await asyncio.sleep(0.02)
    assert not [m for m in websocket.sent if m.get("k") == "patch"]
    await finish(websocket, run)
    with pytest.raises(ConnectionError):
        await connection.refresh()


# ---------------------------------------------------------------------------
# In Chromium
# ---------------------------------------------------------------------------


def frames_of(page: Page, into: list[dict[str, Any]]) -> None:
    """Record every cv message the page receives."""

    def on_socket(socket: Any) -> None:
        def on_frame(payload: str | bytes) -> None:
            if isinstance(payload, str):
                message = json.loads(payload)
                if message.get("p") == "cv":
                    into.append(message)

        socket.on("framereceived", on_frame)

    page.on("websocket", on_socket)


async def test_counter(browser: Browser) -> None:
    async with AppHarness(fast_app(pages={"/": Counter})) as harness:
        received: list[dict[str, Any]] = []
        page = await harness.open(browser, setup=lambda p: frames_of(p, received))
        assert await text(page, "#count") == "0"
        assert await page.title() == "Count 0"
        for n in range(1, 4):
            await after(page, lambda: page.click("#inc"))
            assert await text(page, "#count") == str(n)
        # One message per batch, each with its whole batch.
        patches = [m for m in received if m["k"] == "patch"]
        assert [m["seq"] for m in patches] == [1, 2, 3]
        assert all(len(m["ops"]) == 1 for m in patches)
        await after(page, lambda: page.click("#slow"))
        assert await text(page, "#count") == "5"
        assert await page.title() == "Count 5"
        assert harness.errors == [] and harness.dialogs == []


async def test_the_todo_example(browser: Browser) -> None:
    from examples.todo import TodoPage

    async with AppHarness(TodoPage) as harness:
        received: list[dict[str, Any]] = []
        page = await harness.open(browser, setup=lambda p: frames_of(p, received))

        async def labels() -> list[str]:
            found = await page.eval_on_selector_all(
                "li.todo .title", "(spans) => spans.map((s) => s.textContent)"
            )
            return cast(list[str], found)

        async def same_nodes() -> bool:
            # Each <li> still carries the JS property set on it before the
            # reorders: the very same DOM nodes, moved.
            found = await page.eval_on_selector_all(
                "li.todo",
                "(items) => items.every("
                "(li) => li.__title === li.querySelector('.title').textContent)",
            )
            return cast(bool, found)

        def last_ops() -> list[str]:
            return [op["o"] for op in [m for m in received if m["k"] == "patch"][-1]["ops"]]

        assert await labels() == ["Try the to-do list", "Reorder me"]
        new = page.locator("form.new input")
        for title in ("Buy milk", "Walk dog", "Answer mail"):
            await new.fill(title)
            await after(page, lambda: new.press("Enter"))
            assert await new.input_value() == ""  # cleared: the input is controlled
        assert await labels() == [
            "Try the to-do list",
            "Reorder me",
            "Buy milk",
            "Walk dog",
            "Answer mail",
        ]
        assert await page.title() == "To-do (5)"
        await page.eval_on_selector_all(
            "li.todo",
            "(items) => items.forEach("
            "(li) => { li.__title = li.querySelector('.title').textContent; })",
        )
        await after(page, lambda: page.click("button.reverse"))
        assert await labels() == [
            "Answer mail",
            "Walk dog",
            "Buy milk",
            "Reorder me",
            "Try the to-do list",
        ]
        assert await same_nodes()
        assert last_ops() == ["mv"] * 4  # n - LIS = 5 - 1 moves, nothing else
        await after(page, lambda: page.click("button.sort"))
        assert await labels() == [
            "Answer mail",
            "Buy milk",
            "Reorder me",
            "Try the to-do list",
            "Walk dog",
        ]
        assert await same_nodes()
        assert set(last_ops()) == {"mv"}
        item = page.locator("li.todo", has_text="Reorder me")
        await after(page, lambda: item.locator("button.up").click())
        assert (await labels())[1] == "Reorder me"
        assert last_ops() == ["mv"]
        await after(page, lambda: item.locator("button.down").click())
        await after(page, lambda: item.locator("button.down").click())
        assert (await labels())[3] == "Reorder me"
        assert await same_nodes()
        # Tick one: its class, the count and the title change.
        milk = page.locator("li.todo", has_text="Buy milk")
        await after(page, lambda: milk.locator("input.toggle").check())
        assert "done" in (await milk.get_attribute("class") or "")
        assert await text(page, "footer .count") == "4 items left"
        assert await page.title() == "To-do (4)"
        # Edit one.
        dog = page.locator("li.todo", has_text="Walk dog")
        await after(page, lambda: dog.locator("button.edit").click())
        editor = page.locator("li.todo form.edit input")
        assert await editor.input_value() == "Walk dog"
        await editor.fill("Walk the dog")
        await after(page, lambda: editor.press("Enter"))
        assert await labels() == [
            "Answer mail",
            "Buy milk",
            "Try the to-do list",
            "Reorder me",
            "Walk the dog",
        ]
        # Remove one, then the done ones; the others stay the same nodes.
        answer = page.locator("li.todo", has_text="Answer mail")
        await after(page, lambda: answer.locator("button.remove").click())
        assert last_ops() == ["rm", "txt"]  # the item, and the count
        await after(page, lambda: page.click("button.clear"))
        assert await labels() == ["Try the to-do list", "Reorder me", "Walk the dog"]
        assert await page.eval_on_selector_all(
            "li.todo",
            "(items) => items.slice(0, 2).every("
            "(li) => li.__title === li.querySelector('.title').textContent)",
        )
        assert harness.errors == [] and harness.dialogs == []


class Table(Component):
    clicks = State(0)

    def render(self) -> Element:
        # The parser adds a <tbody> the server never rendered: the page's DOM
        # is not the server's tree (a node count that differs), so the first
        # attach mounts the page again.
        return h.table(
            h.tr(h.td(str(self.clicks), id="cell"), h.td(h.button("+1", id="inc"))),
        ).bind("click", self.increment)

    def increment(self) -> None:
        self.clicks += 1


class Paragraph(Table):
    def render(self) -> Element:
        # Same count of nodes, but the parser moved the <div> out of the <p>.
        return h.div(
            h.p(h.div("in a paragraph", id="inner"), id="para"),
            h.button("+1", id="inc").bind("click", self.increment),
            h.output(str(self.clicks), id="cell"),
        )


@pytest.mark.parametrize("root", [Table, Paragraph])
async def test_a_page_the_parser_changed_is_mounted_on_attach(
    browser: Browser, root: type[Component]
) -> None:
    async with AppHarness(fast_app(pages={"/": root})) as harness:
        received: list[dict[str, Any]] = []
        page = await harness.open(browser, setup=lambda p: frames_of(p, received))
        assert [m["k"] for m in received] == ["mount"]
        assert await page.evaluate("document.querySelectorAll('tbody').length") == 0
        if root is Paragraph:
            assert await page.evaluate("document.getElementById('inner').parentNode.id") == "para"
        await after(page, lambda: page.click("#inc"))
        assert await text(page, "#cell") == "1"


class Everything(Component):
    """A form with every kind of input, uncontrolled: the values are the user's."""

    submitted: State[Any] = State(None)
    changes: State[list[Any]] = State(factory=list)

    def render(self) -> Element:
        def record(event: Event) -> None:
            self.changes = [*self.changes, [event.name, event.value]]

        return h.div(
            h.form(
                h.input(name="text", id="text"),
                h.input(name="email", type="email", id="email"),
                h.input(name="password", type="password", id="password"),
                h.input(name="number", type="number", id="number"),
                h.input(name="search", type="search", id="search"),
                h.input(name="tel", type="tel", id="tel"),
                h.input(name="url", type="url", id="url"),
                h.input(name="date", type="date", id="date"),
                h.input(name="time", type="time", id="time"),
                h.input(name="local", type="datetime-local", id="local"),
                h.input(name="month", type="month", id="month"),
                h.input(name="week", type="week", id="week"),
                h.input(name="color", type="color", id="color"),
                h.input(name="range", type="range", id="range", min=0, max=10),
                h.input(name="hidden", type="hidden", value="h"),
                h.textarea(name="notes", id="notes"),
                h.input(type="checkbox", name="agree", id="agree"),
                [h.input(type="checkbox", name="tags", value=v, id=f"tag-{v}") for v in "abc"],
                [h.input(type="radio", name="size", value=v, id=f"size-{v}") for v in "sml"],
                h.select(
                    h.option("Red", value="red"),
                    h.option("Green", value="green"),
                    name="colour",
                    id="colour",
                ).bind("change", record),
                h.select(
                    [h.option(lang, value=lang) for lang in ("py", "js", "rs")],
                    name="langs",
                    id="langs",
                    multiple=True,
                ).bind("change", record),
                h.input(type="file", name="upload", id="upload", multiple=True).bind(
                    "change", record
                ),
                h.input(name="off", disabled=True, value="x"),
                h.button("Send", type="submit", name="action", value="send", id="send"),
                id="form",
            ).bind("submit", self.submit),
            h.input(type="checkbox", id="solo").bind("change", record),
            h.input(type="radio", name="alone", value="only", id="alone").bind("change", record),
            h.input(id="typed").bind("input", record, debounce=0.05),
            h.button("key", id="keyed", data_item="42").bind("click", record, value="data:item"),
            h.pre(json.dumps(self.submitted, sort_keys=True), id="submitted"),
            h.pre(json.dumps(self.changes), id="changes"),
        )

    def submit(self, event: Event) -> None:
        self.submitted = event.value


async def test_a_form_with_every_input_type(browser: Browser) -> None:
    async with AppHarness(fast_app(pages={"/": Everything})) as harness:
        page = await harness.open(browser)
        await page.evaluate("window.__marker = 'no reload'")
        for selector, value in [
            ("#text", "plain <b>text</b>"),
            ("#email", "a@example.com"),
            ("#password", "s3cret"),
            ("#number", "42"),
            ("#search", "query"),
            ("#tel", "+1 555"),
            ("#url", "https://example.com/"),
            ("#date", "2024-02-29"),
            ("#time", "13:45"),
            ("#local", "2024-02-29T13:45"),
            ("#month", "2024-02"),
            ("#week", "2024-W09"),
            ("#color", "#ff8800"),
            ("#range", "7"),
            ("#notes", "line 1\nline 2"),
        ]:
            await page.fill(selector, value)
        await page.check("#agree")
        await page.check("#tag-a")
        await page.check("#tag-c")
        await page.check("#size-m")
        await after(page, lambda: page.select_option("#colour", "green"))
        await after(page, lambda: page.select_option("#langs", ["py", "rs"]))
        files = [
            {"name": "a.txt", "mimeType": "text/plain", "buffer": b"hello"},
            {"name": "b.json", "mimeType": "application/json", "buffer": b"{}"},
        ]
        await after(page, lambda: page.set_input_files("#upload", files))  # type: ignore[arg-type]
        await after(page, lambda: page.click("#send"))
        submitted = json.loads(await text(page, "#submitted"))
        uploads = submitted.pop("upload")
        assert submitted == {
            "text": "plain <b>text</b>",
            "email": "a@example.com",
            "password": "s3cret",
            "number": "42",
            "search": "query",
            "tel": "+1 555",
            "url": "https://example.com/",
            "date": "2024-02-29",
            "time": "13:45",
            "local": "2024-02-29T13:45",
            "month": "2024-02",
            "week": "2024-W09",
            "color": "#ff8800",
            "range": "7",
            "hidden": "h",
            "notes": "line 1\nline 2",
            "agree": True,  # a lone checkbox: a bool
            "tags": ["a", "c"],  # checkboxes sharing a name: the checked values
            "size": "m",  # a radio group: the checked value
            "colour": "green",
            "langs": ["py", "rs"],
            "action": "send",  # the submitter; the disabled field is left out
        }
        assert [(u["name"], u["size"], u["type"]) for u in uploads] == [
            ("a.txt", 5, "text/plain"),
            ("b.json", 2, "application/json"),
        ]
        assert all(isinstance(u["lastModified"], int) for u in uploads)
        # Submitted without a reload, and the (uncontrolled) fields are kept.
        assert await page.evaluate("window.__marker") == "no reload"
        assert await page.input_value("#text") == "plain <b>text</b>"
        await after(page, lambda: page.check("#solo"))
        await after(page, lambda: page.check("#alone"))
        await page.type("#typed", "abc")  # debounced: one event
        await page.wait_for_function(
            "() => JSON.parse(document.getElementById('changes').textContent).length === 6",
            timeout=WAIT * 1000,
        )
        await after(page, lambda: page.click("#keyed"))
        changes = json.loads(await text(page, "#changes"))
        assert changes[:2] == [["change", "green"], ["change", ["py", "rs"]]]
        assert changes[2][0] == "change" and [f["name"] for f in changes[2][1]] == [
            "a.txt",
            "b.json",
        ]
        assert changes[3:] == [
            ["change", True],
            ["change", "only"],
            ["input", "abc"],
            ["click", "42"],
        ]
        assert harness.errors == [] and harness.dialogs == []


class Resumable(Component):
    count = State(0)

    def render(self) -> Element:
        return h.div(
            h.button("+1", id="inc").bind("click", self.increment),
            h.output(str(self.count), id="count"),
            h.form(
                h.input(name="note", id="note"),
                h.textarea(name="body", id="body"),
                h.input(type="checkbox", name="flag", id="flag"),
                h.select(h.option("a"), h.option("b"), name="pick", id="pick"),
            ),
        )

    def increment(self) -> None:
        self.count += 1


async def ready_count(page: Page) -> int:
    return cast(int, await page.evaluate("window.__cv.filter((e) => e.kind === 'ready').length"))


async def test_resume_after_a_drop_keeps_state_and_form(browser: Browser) -> None:
    async with AppHarness(fast_app(pages={"/": Resumable})) as harness:
        page = await harness.open(browser)
        for _ in range(2):
            await after(page, lambda: page.click("#inc"))
        await page.fill("#note", "typed before the drop")
        await page.fill("#body", "a longer\ntext")
        await page.check("#flag")
        await page.select_option("#pick", "b")
        await page.focus("#note")
        await page.evaluate("window.__marker = 'same document'")
        first = harness.connection()
        assert await ready_count(page) == 1
        harness.abort(first)  # TCP gone from the server's side, no Close
        await page.wait_for_function(
            "() => window.__cv.filter((e) => e.kind === 'ready').length === 2"
        )
        second = harness.connection()
        assert second is not first and second.page_id == first.page_id
        # Same document, same DOM: the form state is intact...
        assert await page.evaluate("window.__marker") == "same document"
        assert await page.input_value("#note") == "typed before the drop"
        assert await page.input_value("#body") == "a longer\ntext"
        assert await page.is_checked("#flag")
        assert await page.input_value("#pick") == "b"
        # ... and so is the component's state, restored from the snapshot.
        assert await text(page, "#count") == "2"
        await after(page, lambda: page.click("#inc"))
        assert await text(page, "#count") == "3"
        assert harness.errors == []


async def test_resume_after_a_lost_batch_mounts_the_page_again(browser: Browser) -> None:
    async with AppHarness(fast_app(pages={"/": Resumable})) as harness:
        page = await harness.open(browser)
        await page.evaluate("window.__marker = 'same document'")
        connection = harness.connection()
        # As if a batch was sent and lost with the connection: the server's
        # state and seq are ahead of the page.
        root = cast(Resumable, connection.root)
        root.count = 7
        connection.seq += 1
        await connection._save()
        harness.abort(connection)
        await page.wait_for_function("() => window.__cv.some((e) => e.kind === 'mount')")
        assert await text(page, "#count") == "7"
        assert await page.evaluate("window.__marker") == "same document"
        await after(page, lambda: page.click("#inc"))
        assert await text(page, "#count") == "8"


@pytest.mark.parametrize("damage", ["expired", "tampered"])
async def test_a_lost_page_says_so_and_reloads(browser: Browser, damage: str) -> None:
    app = fast_app(
        pages={"/": Resumable}, expired_message="Page expired: reloading", reload_delay=0.5
    )
    async with AppHarness(app) as harness:
        page = await harness.open(browser)
        connection = harness.connection()
        page_id = connection.page_id or ""
        await connection.finish()  # its final save, before the damage
        if damage == "expired":
            await app.snapshots.delete(page_id)
        else:
            key = app.snapshots.prefix + page_id
            blob = await app.snapshots.store.get(key)
            assert blob is not None
            await app.snapshots.store.set(key, blob[:40] + bytes([blob[40] ^ 1]) + blob[41:], 60)
        connection._superseded = True  # nothing may save over the damage
        harness.abort(connection)
        banner = page.locator("#cv-expired")
        await banner.wait_for(timeout=WAIT * 1000)
        assert await banner.text_content() == "Page expired: reloading"
        assert await banner.get_attribute("role") == "alert"
        # Then the page reloads: a new page, live again.
        await page.wait_for_function(
            "(old) => document.getElementById('cv-root').dataset.cvPage !== old",
            arg=page_id,
            timeout=WAIT * 1000,
        )
        await wait_attached(page)
        assert await text(page, "#count") == "0"
        # The lost page stays lost (the damaged entry is left to expire).
        with pytest.raises(SnapshotExpired if damage == "expired" else SnapshotInvalid):
            await app.snapshots.load(page_id)


XSS_TEXT = [
    '<img src=x onerror="window.__xss=1">',
    '"><script>window.__xss=1</script>',
    "'><svg onload=window.__xss=1>",
    "</textarea><script>window.__xss=1</script>",
    "<style>body{display:none}</style>",
    "&lt;script&gt;window.__xss=1&lt;/script&gt;",
    "${window.__xss=1}`; window.__xss=1; `",
]
XSS_URLS = [
    "javascript:window.__xss=1",
    "JaVaScRiPt:window.__xss=1",
    " \tjava\nscript:window.__xss=1",
    "\x01javascript:window.__xss=1",
    "data:text/html,<script>window.__xss=1</script>",
    "vbscript:window.__xss=1",
]


class Xss(Component):
    extra: State[list[str]] = State(factory=list)

    def render(self) -> Element:
        payloads = [*XSS_TEXT, *XSS_URLS, *self.extra]
        return h.div(
            [
                h.div(
                    h.span(payload, class_="t"),
                    h.a("link", href=payload, class_="l"),
                    h.img(alt=payload, title=payload, src=payload, class_="i"),
                    h.textarea(value=payload, class_="ta"),
                    h.input(value=payload, class_="in"),
                    h.p(payload, h.b(payload), class_="mixed"),
                    h.iframe(src=payload, class_="f"),
                    h.form(h.button("go", formaction=payload), action=payload),
                    class_="case",
                    data_payload=payload,
                    style={"font-family": payload},
                    key=str(index),
                )
                for index, payload in enumerate(payloads)
            ],
            h.button("more", id="more").bind("click", self.more),
        )

    def more(self) -> None:
        self.extra = [f"{p} (patched)" for p in XSS_TEXT] + [f"javascript:x{n}" for n in range(2)]


async def check_inert(page: Page, payloads: list[str]) -> None:
    assert await page.evaluate("window.__xss") is None
    texts = await page.eval_on_selector_all("span.t", "(s) => s.map((e) => e.textContent)")
    assert texts == payloads
    values = await page.eval_on_selector_all("textarea.ta", "(s) => s.map((e) => e.value)")
    assert values == payloads
    values = await page.eval_on_selector_all("input.in", "(s) => s.map((e) => e.value)")
    assert values == [p.replace("\n", "").replace("\r", "") for p in payloads]
    mixed = await page.eval_on_selector_all("p.mixed", "(s) => s.map((e) => e.textContent)")
    assert mixed == [p + p for p in payloads]
    titles = await page.eval_on_selector_all("img.i", "(s) => s.map((e) => e.title)")
    assert titles == payloads
    # No element the payloads tried to create, no handler attribute.
    assert (
        await page.evaluate(
            "document.querySelectorAll('#cv-root script, #cv-root svg, #cv-root style').length"
        )
        == 0
    )
    assert (
        await page.evaluate(
            "[...document.querySelectorAll('#cv-root *')]"
            ".some((e) => [...e.attributes].some((a) => a.name.startsWith('on')))"
        )
        is False
    )
    # Script URLs were left out, never set.
    hrefs = await page.eval_on_selector_all(
        "[href], [src], [action], [formaction]",
        "(s) => s.flatMap((e) => ['href', 'src', 'action', 'formaction']"
        ".map((n) => e.getAttribute(n)).filter((v) => v !== null))",
    )
    assert hrefs and not any(
        "script:" in h.lower().replace("\t", "").replace("\n", "") or h.startswith("data:text")
        for h in hrefs
    )


async def test_xss_payloads_are_inert(browser: Browser) -> None:
    async with AppHarness(fast_app(pages={"/": Xss})) as harness:
        page = await harness.open(browser)
        payloads = [*XSS_TEXT, *XSS_URLS]
        await check_inert(page, payloads)  # server-side rendered
        # Click the links whose script URL was left out: inert.  (The others
        # are relative URLs: they would navigate.)
        links = await page.query_selector_all("a.l:not([href])")
        assert len(links) == len(XSS_URLS)
        for link in links:
            await link.click()
        await after(page, lambda: page.click("#more"))
        extra = [f"{p} (patched)" for p in XSS_TEXT] + [f"javascript:x{n}" for n in range(2)]
        await check_inert(page, payloads + extra)  # inserted by patches
        for link in await page.query_selector_all("a.l:not([href])"):
            await link.click()
        # A patch that breaks the rules (a server bug, a forged message) is
        # refused by the browser too.
        connection = harness.connection()
        await connection.session.send(
            "cv",
            "patch",
            seq=connection.seq + 1,
            ops=[
                {
                    "o": "attr",
                    "k": "r",
                    "a": {"onclick": "window.__xss=1", "ONMOUSEOVER": "window.__xss=1"},
                },
                {"o": "attr", "k": "r/.0/1", "a": {"href": " java\tscript:window.__xss=1"}},
                {"o": "css", "k": "r", "s": {"background": "url(javascript:window.__xss=1)"}},
            ],
        )
        connection.seq += 1
        await wait_seq(page, connection.seq)
        await page.click("#cv-root > div > div.case >> nth=0")
        await page.click("a.l >> nth=0")
        assert await page.evaluate("document.querySelector('a.l').getAttribute('href')") is None
        assert (
            await page.evaluate(
                "document.getElementById('cv-root').firstElementChild.getAttribute('onclick')"
            )
            is None
        )
        await connection.session.send(
            "cv",
            "patch",
            seq=connection.seq + 1,
            ops=[
                {
                    "o": "ins",
                    "k": "r",
                    "b": None,
                    "n": {"t": "script", "k": "r/.x", "x": "window.__xss=1"},
                }
            ],
        )
        # Refused: the page asks for a resync and is mounted again.
        await page.wait_for_function("() => window.__cv.some((e) => e.kind === 'mount')")
        assert await page.evaluate("window.__xss") is None
        assert harness.dialogs == []


class Many(Component):
    rows: State[list[str]] = State(factory=list)

    def render(self) -> Element:
        return h.div(
            h.button("fill", id="fill").bind("click", self.fill),
            h.ul([h.li(row, key=n) for n, row in enumerate(self.rows)], id="rows"),
        )

    def fill(self) -> None:
        self.rows = [f"row {n} " + "\u00e9\u4e16\U0001f600" * 5 for n in range(3000)]


async def test_a_large_batch_arrives_whole(browser: Browser) -> None:
    # Hundreds of kilobytes in one message: compressed (permessage-deflate)
    # and fragmented on the way, one batch still.
    async with AppHarness(fast_app(pages={"/": Many})) as harness:
        received: list[dict[str, Any]] = []
        page = await harness.open(browser, setup=lambda p: frames_of(p, received))
        await after(page, lambda: page.click("#fill"))
        assert await page.evaluate("document.querySelectorAll('#rows li').length") == 3000
        assert await page.evaluate("document.querySelector('#rows li:last-child').textContent") == (
            "row 2999 " + "\u00e9\u4e16\U0001f600" * 5
        )
        (batch,) = [m for m in received if m["k"] == "patch"]
        assert len(batch["ops"]) == 3000
        assert len(json.dumps(batch)) > 200_000
        assert harness.errors == []


async def test_a_batch_over_the_message_limit_reloads_the_page(browser: Browser) -> None:
    async with AppHarness(fast_app(pages={"/": Many}, max_message_size=50_000)) as harness:
        page = await harness.open(browser)
        old = await page.evaluate("document.getElementById('cv-root').dataset.cvPage")
        async with page.expect_navigation():
            await page.click("#fill")
        await wait_attached(page)
        assert await page.evaluate("document.getElementById('cv-root').dataset.cvPage") != old


async def test_a_session_plugin_registry_entry(browser: Browser) -> None:
    # The page's connection is reachable from the session, as other plugins'.
    async with AppHarness(fast_app(pages={"/": Counter})) as harness:
        await harness.open(browser)
        connection = harness.connection()
        session: Session = connection.session
        assert session.plugins["cv"] is connection
        assert connection.attached and not connection.closed
        assert "PageConnection" in repr(connection)


# -- forced updates and document events ------------------------------------------

RELEASE: list[asyncio.Event] = []


class DocPage(Component):
    seen: State[list[str]] = State(factory=list)
    step = State("")

    def render(self) -> Element:
        return h.div(
            h.a("to b", href="/b", id="tob"),
            h.button("work", id="work").bind("click", self.work),
            h.span(self.step, id="step"),
            h.ul(*[h.li(item) for item in self.seen], id="seen"),
        )

    def on_document(self, event: DocumentEvent) -> None:
        assert event.connection is self.connection
        self.seen = [*self.seen, f"{event.kind} {event.direction} {event.url}"]

    async def work(self) -> None:
        self.step = "halfway"
        await self.update_now()  # the browser shows it while we wait
        await RELEASE[0].wait()
        self.step = "done"


async def seen(page: Page) -> list[str]:
    return cast(
        list[str], await page.eval_on_selector_all("#seen li", "e => e.map(x => x.textContent)")
    )


async def wait_seen(page: Page, expected: list[str]) -> None:
    await page.wait_for_function(
        "(want) => JSON.stringify([...document.querySelectorAll('#seen li')]"
        ".map(x => x.textContent)) === JSON.stringify(want)",
        arg=expected,
        timeout=WAIT * 1000,
    )


async def test_update_now_pushes_mid_handler_from_a_job_and_by_force(browser: Browser) -> None:
    RELEASE[:] = [asyncio.Event()]
    app = fast_app()
    app.page("/", DocPage)
    async with AppHarness(app) as harness:
        page = await harness.open(browser)
        await page.click("#work")
        await page.wait_for_function(
            "() => document.getElementById('step').textContent === 'halfway'",
            timeout=WAIT * 1000,
        )
        RELEASE[0].set()
        await page.wait_for_function(
            "() => document.getElementById('step').textContent === 'done'", timeout=WAIT * 1000
        )
        # From outside any handler (a background job).
        connection = harness.connection()
        root = connection.root
        assert isinstance(root, DocPage)
        root.step = "from a job"
        await connection.update_now()
        await page.wait_for_function(
            "() => document.getElementById('step').textContent === 'from a job'",
            timeout=WAIT * 1000,
        )
        # The browser's copy changed behind our back: only force repairs it.
        await page.evaluate("() => { document.getElementById('step').textContent = 'tampered'; }")
        before = await seq(page)
        await root.update_now()
        assert await seq(page) == before  # nothing changed on the server: nothing sent
        await root.update_now(force=True)
        await page.wait_for_function(
            "() => document.getElementById('step').textContent === 'from a job'",
            timeout=WAIT * 1000,
        )
        assert harness.errors == []


async def test_document_events_load_once_and_history_reaches_the_component(
    browser: Browser,
) -> None:
    app = fast_app()
    app.page("/", DocPage)
    app.page("/b", DocPage)

    async def plain(request: Request) -> Response:
        return HTMLResponse("<!doctype html><title>plain</title><p id=plain>plain</p>")

    app.add_route("/plain", plain)
    async with AppHarness(app) as harness:
        page = await harness.open(browser)
        await wait_seen(page, ["load None /"])
        # A reconnect (a resume) is not a load.
        harness.abort(harness.connection())
        await wait_until(lambda: len(app.connections) == 1 and harness.connection().attached)
        await page.click("#tob")
        await wait_seen(page, ["load None /b"])
        await page.go_back()
        await wait_seen(page, ["load None /", "history back /"])
        await page.go_forward()
        await wait_seen(page, ["load None /b", "history forward /b"])
        # Out of the app and back: the browser loads the page again.
        await page.goto(harness.url("/plain"))
        await page.go_back()
        await wait_attached(page)
        await wait_seen(page, ["history None /b"])
        assert await seen(page) == ["history None /b"]
        assert harness.errors == []


# -- compression, per kind of message ------------------------------------------


class Big(Component):
    rows = State(1)

    def render(self) -> Element:
        return h.div(
            h.button("more", key="more").bind("click", self.more),
            h.ul(*[h.li(f"row number {n}", key=n) for n in range(self.rows)]),
        )

    def more(self) -> None:
        self.rows = 2 if self.rows == 1 else 200


def compression_of(websocket: FakeWebSocket, kind: str) -> list[bool | None]:
    return [compress for sent, compress in websocket.compressed if sent == kind]


async def test_small_patches_go_as_is_big_ones_and_pages_compressed() -> None:
    app = ComponentApp({"/": Big}, compress_min_size=1024)
    _connection, websocket, run = await attached(app)
    websocket.feed({"p": "cv", "k": "ev", "key": "r/.more", "type": "click"})  # a row
    await websocket.next_sent("cv", "patch")
    websocket.feed({"p": "cv", "k": "ev", "key": "r/.more", "type": "click"})  # 198
    big = await websocket.next_sent("cv", "patch")
    assert len(json.dumps(big)) > 1024
    websocket.feed({"p": "cv", "k": "resync", "reason": "test"})
    await websocket.next_sent("cv", "mount")
    assert compression_of(websocket, "ready") == [False]
    assert compression_of(websocket, "patch") == [False, True]
    assert compression_of(websocket, "mount") == [True]
    await finish(websocket, run)
