"""Tests for wsserver.plugins.components.widgets: domsync's table and
select helpers on a Document, checked through the patches they make."""

from __future__ import annotations

import pytest

from wsserver.plugins.components.document import Document
from wsserver.plugins.components.events import Event, call_handler
from wsserver.plugins.components.patches import Insert, Remove, SetProps, SetText, apply_patches
from wsserver.plugins.components.vdom import VNode
from wsserver.plugins.components.widgets import Select, Table

pytestmark = pytest.mark.asyncio


def fresh() -> Document:
    document = Document("r/.doc")
    document.take_patches()
    return document


def texts(node: VNode) -> list[str]:
    """The text of every leaf, in document order."""
    if not node.children:
        return [node.text or ""]
    return [text for child in node.children for text in texts(child)]


async def test_rows_are_kept_in_sort_order_and_cells_change_alone() -> None:
    doc = fresh()
    table = Table(doc.getRootElement(), ["Symbol", "Price"], attributes={"class": "prices"})
    table.add_row("m", ["M", 2], sort_key="m")
    table.add_row("z", ["Z", 3], sort_key="z")
    table.add_row("a", ["A", 1], sort_key="a")
    table.add_row("x", ["X", 0])  # no key: after the keyed rows
    table.add_or_update_row("b", ["B", 5], sort_key="b")
    assert table.row_ids() == ["a", "b", "m", "z", "x"]
    host = VNode("div", "r/.doc")
    tree = apply_patches(host, doc.take_patches())
    assert texts(tree) == ["Symbol", "Price", "A", "1", "B", "5", "M", "2", "Z", "3", "X", "0"]
    table.update_cell("m", "Price", "2.5")
    table.add_or_update_row("b", ["B", 5])  # unchanged: nothing
    (patch,) = doc.take_patches()
    assert patch == SetText(table.cell_element("m", "Price").key, "2.5")
    row_a = table.row_element("a")
    table.remove_row("a")
    assert doc.take_patches() == [Remove(row_a.key)]
    assert table.row_ids() == ["b", "m", "z", "x"] and not table.has_row("a")
    assert table.columns == ["Symbol", "Price"] and table.element.getAttribute("class") == "prices"
    with pytest.raises(ValueError, match="exists"):
        table.add_row("b", ["B", 5])
    with pytest.raises(ValueError, match="3 values for 2 columns"):
        table.update_row("b", [1, 2, 3])
    with pytest.raises(KeyError):
        table.cell_element("b", "Volume")
    with pytest.raises(KeyError):
        table.row_element("nope")
    with pytest.raises(ValueError, match="same name"):
        Table(doc.getRootElement(), ["a", "a"])
    table.remove()
    table.remove()
    assert table.has_been_removed and table.parent is doc.getRootElement()
    assert isinstance(doc.take_patches()[-1], Remove)


async def test_cell_text_is_data_never_markup() -> None:
    doc = fresh()
    table = Table(doc.getRootElement(), ["Name"])
    doc.take_patches()
    table.add_row("1", ["<img src=x onerror=alert(1)>"])
    (insert,) = doc.take_patches()
    assert isinstance(insert, Insert)
    assert "<img src=x onerror=alert(1)>" in texts(insert.node)


async def test_a_select_calls_back_with_known_values_only() -> None:
    doc = fresh()
    picked: list[str] = []

    async def on_change(value: str) -> None:
        picked.append(value)

    select = Select(
        doc.getRootElement(), [("eur", "Euro"), "usd"], on_change, selected="usd", id="cur"
    )
    (insert,) = doc.take_patches()
    assert isinstance(insert, Insert) and insert.node.props == {"id": "cur", "value": "usd"}
    assert texts(insert.node) == ["Euro", "usd"]
    assert select.value == "usd" and select.options == ["eur", "usd"]
    binding = select.element.binding("change")
    assert binding is not None and binding.spec.value == "value"
    for value in ("eur", "gbp"):
        await call_handler(
            binding.handler, 1, Event("change", value, select.element, None, select.element.key)
        )
    assert picked == ["eur"] and select.value == "eur"
    select.value = "usd"
    assert doc.take_patches()[-1] == SetProps(select.element.key, {"value": "usd"})
    plain = Select(doc.getRootElement(), ["a", "b"])
    assert plain.value == "a"
    plain_binding = plain.element.binding("change")
    assert plain_binding is not None
    await call_handler(
        plain_binding.handler, 1, Event("change", "b", plain.element, None, plain.element.key)
    )
    assert plain.value == "b"
