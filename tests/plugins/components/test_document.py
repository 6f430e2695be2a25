"""Tests for wsserver.plugins.components.document: the domsync-style
imperative DOM and the patches it produces; then a document in Chromium,
built again after a resume."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from wsserver.plugins.components import Component, Event, PageConnection, h
from wsserver.plugins.components.document import Document
from wsserver.plugins.components.events import EventSpec
from wsserver.plugins.components.html import Element
from wsserver.plugins.components.patches import (
    Insert,
    Move,
    Remove,
    SetEvents,
    SetProps,
    SetStyle,
    SetText,
    apply_patches,
)
from wsserver.plugins.components.vdom import TEXT, VNode

from ._harness import WAIT, AppHarness, after, fast_app, text

if TYPE_CHECKING:
    from playwright.async_api import Browser

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(90)]


def noop() -> None:
    pass


def fresh() -> Document:
    document = Document("r/.host")
    assert document.take_patches() == [SetText("r/.host", "")]  # clears its host first
    return document


async def test_detached_elements_send_nothing_until_inserted() -> None:
    document = fresh()
    ul = document.createElement("ul", id="list", attributes={"class": "items"})
    li = document.createElement("LI", innerText="one")
    ul.appendChild(li)
    li.setAttribute("title", "first")
    li.addEventListener("click", noop, "this.innerText")
    assert document.pending == []
    assert not ul.attached
    document.getRootElement().appendChild(ul)
    (insert,) = document.take_patches()
    assert insert == Insert("r/.host", None, ul.to_vnode())
    assert insert.node == VNode(
        "ul",
        "r/.host/@list",
        {"id": "list", "class": "items"},
        children=(
            VNode("li", "r/.host/@e1", {"title": "first"}, {}, {"click": EventSpec("text")}, "one"),
        ),
    )
    assert ul.attached and li.attached
    assert li.tagName == "LI" and li.parentElement is ul and ul.firstElementChild is li


async def test_changes_to_attached_elements_become_patches() -> None:
    document = fresh()
    root = document.getRootElement()
    a = root.appendChild(document.createElement("p", id="a"))
    b = root.appendChild(document.createElement("p", id="b"))
    field = root.appendChild(document.createElement("input", id="f", value="v"))
    document.take_patches()
    a.innerText = "hello"
    a.innerText = "hello"  # unchanged: nothing
    a.setAttribute("class", "x")
    a.setAttribute("class", "x")
    a.setAttribute("style", "color: red; margin: 0")
    a.removeAttribute("class")
    a.removeAttribute("class")
    field.value = "w"
    field.value = "w"
    a.addEventListener("click", noop)
    a.removeEventListener("click")
    root.insertBefore(b, a)  # a move within the parent
    b.remove()
    assert document.take_patches() == [
        SetText(a.key, "hello"),
        SetProps(a.key, {"class": "x"}),
        SetStyle(a.key, {"color": "red", "margin": "0"}),
        SetProps(a.key, {"class": None}),
        SetProps(field.key, {"value": "w"}),
        SetEvents(a.key, {"click": EventSpec()}),
        SetEvents(a.key, {"click": None}),
        Move(b.key, a.key),
        Remove(b.key),
    ]
    assert document.getElementById("b", strict=False) is None  # removed: forgotten
    with pytest.raises(KeyError):
        document.getElementById("b")
    assert a.getAttribute("style") == "color: red; margin: 0"
    assert a.attributes == {"id": "a", "style": "color: red; margin: 0"}


async def test_text_then_children_keeps_both() -> None:
    document = fresh()
    root = document.getRootElement()
    div = root.appendChild(document.createElement("div", innerText="Label: "))
    before = VNode("div", "r/.host", children=(div.to_vnode(),))
    document.take_patches()
    span = div.appendChild(document.createElement("span", innerText="value"))
    patches = document.take_patches()
    assert patches[:2] == [
        SetText(div.key, ""),
        Insert(div.key, None, VNode(TEXT, div.key + "/#t", text="Label: ")),
    ]
    after_tree = apply_patches(before, patches)
    assert after_tree.children[0] == div.to_vnode()
    assert [c.key for c in after_tree.children[0].children] == [div.key + "/#t", span.key]
    # Setting the text again replaces the children (and forgets them).
    div.innerText = "plain"
    assert document.take_patches() == [SetText(div.key, "plain")]
    assert document.element_for_key(span.key) is None


async def test_patches_replay_to_the_documents_own_tree() -> None:
    document = fresh()
    root = document.getRootElement()
    start = document.to_vnode()
    table = root.appendChild(document.createElement("table", id="t"))
    rows = [table.appendChild(document.createElement("tr", id=f"row{n}")) for n in range(4)]
    for n, row in enumerate(rows):
        row.appendChild(document.createElement("td", innerText=str(n)))
    table.insertBefore(rows[3], rows[0])
    table.appendChild(rows[1])
    rows[2].remove()
    other = root.appendChild(document.createElement("div", id="other"))
    other.appendChild(rows[0])  # another parent: removed and inserted
    rows[0].setAttribute("class", "moved")
    patches = document.take_patches()
    assert apply_patches(start, patches) == document.to_vnode()


async def test_domsync_rules() -> None:
    document = fresh()
    root = document.getRootElement()
    element = document.createElement("div", id="x")
    with pytest.raises(ValueError, match="exists"):
        document.createElement("div", id="x")
    with pytest.raises(ValueError, match="invalid element id"):
        document.createElement("div", id="a b")
    with pytest.raises(ValueError, match="id"):
        element.setAttribute("id", "y")
    with pytest.raises(ValueError, match="bind the event"):
        element.setAttribute("onclick", "alert(1)")
    with pytest.raises(ValueError, match="not allowed"):
        document.createElement("script")
    with pytest.raises(ValueError, match="getter"):
        element.addEventListener("click", noop, "fetch('/steal')")
    with pytest.raises(ValueError, match="root"):
        root.setAttribute("class", "x")
    with pytest.raises(ValueError, match="root"):
        root.remove()
    with pytest.raises(ValueError, match="itself"):
        element.appendChild(element)
    with pytest.raises(ValueError, match="not a child"):
        root.insertBefore(element, document.createElement("p"))
    with pytest.raises(ValueError, match="another document"):
        root.appendChild(Document("r/.other").createElement("p"))
    with pytest.raises(ValueError, match="children"):
        document.createElement("input").appendChild(document.createElement("p"))
    element.setAttribute("href", "javascript:alert(1)")  # refused quietly: left out
    assert element.getAttribute("href") is None
    assert document.getElementsByTagName("div") == []  # not attached yet
    root.appendChild(element)
    element.setAttribute("class", "a b")
    assert document.getElementsByTagName("div") == [element]
    assert document.getElementsByTagName("") == [element]
    assert document.getElementsByClassName("b") == [element]
    assert element.getDocument() is document
    with pytest.raises(RuntimeError, match="no connection"):
        await document.flush()
    assert "Document r/.host" in repr(document) and "DocElement div#x" in repr(element)


class Board(Component):
    """A component hosting an imperative document, built on every connection."""

    def render(self) -> Element:
        return h.div(h.h1("Board"), h.div(key="board", id="board"))

    async def on_connect(self, connection: PageConnection) -> None:
        document = connection.document("r/.board")
        root = document.getRootElement()
        items = document.createElement("ul", id="items")
        root.appendChild(items)
        field = document.createElement("input", id="field", attributes={"placeholder": "type"})
        root.appendChild(field)
        button = document.createElement("button", id="add", innerText="Add")
        root.appendChild(button)

        def remember(event: Event) -> None:
            field.value = event.value  # the server's copy of what was typed

        def typed(element: Any, event: Event, value: Any, conn: Any) -> None:
            button.setAttribute("data-value", value)  # the four-argument form

        def add() -> None:
            item = document.createElement("li", innerText=field.value or "(empty)")
            items.insertBefore(item, items.firstElementChild)
            count.innerText = str(len(items.children))

        field.addEventListener("change", remember, "this.value")
        field.addEventListener("input", typed, "this.value")
        button.addEventListener("click", add)
        count = document.createElement("output", id="count", innerText="0")
        root.appendChild(count)
        await document.flush()


async def test_a_document_in_chromium(browser: Browser) -> None:
    async with AppHarness(fast_app(pages={"/": Board})) as harness:
        page = await harness.open(browser)
        await page.wait_for_selector("#add", timeout=WAIT * 1000)
        for value in ("<b>first</b>", "second"):

            async def fill(v: str = value) -> None:
                await page.fill("#field", v)

            await after(page, fill)  # input: one batch
            assert await page.get_attribute("#add", "data-value") == value
            await after(page, lambda: page.press("#field", "Tab"))  # change: one batch
            await after(page, lambda: page.click("#add"))
        items = await page.eval_on_selector_all("#items li", "(s) => s.map((e) => e.textContent)")
        assert items == ["second", "<b>first</b>"]  # text, never markup
        assert await text(page, "#count") == "2"
        # After a drop, on_connect builds the document again in a cleared host.
        harness.abort(harness.connection())
        await page.wait_for_function(
            "() => window.__cv.filter((e) => e.kind === 'ready').length === 2"
        )
        await page.wait_for_function("() => document.querySelectorAll('#items li').length === 0")
        assert await page.evaluate("document.querySelectorAll('#board > ul').length") == 1
        assert harness.errors == []
