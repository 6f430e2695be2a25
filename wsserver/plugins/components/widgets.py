"""domsync's component helpers on a ``Document``: a table and a select.

::

    table = Table(doc.getRootElement(), ["Symbol", "Price"])
    table.add_or_update_row("ACME", ["ACME", "12.50"], sort_key="ACME")
    table.update_cell("ACME", "Price", "12.75")

    choice = Select(doc.getRootElement(), [("eur", "Euro"), ("usd", "Dollar")],
                    on_change, selected="eur")

Every change is a ``Document`` change: it becomes patches, sent by the
document's ``flush``.  Names, from domsync's ``TableComponent`` and
``SelectComponent``: ``addRow`` -> ``add_row``, ``updateRow`` ->
``update_row``, ``addOrUpdateRow`` -> ``add_or_update_row``, ``hasRow`` ->
``has_row``, ``removeRow`` -> ``remove_row``, ``getRowIds`` -> ``row_ids``,
``updateCell`` -> ``update_cell``, ``getTableElement`` -> ``element``,
``getRowElement`` -> ``row_element``, ``getCellElement`` ->
``cell_element``; ``sort_order`` -> ``sort_key``; ``remove()`` and
``has_been_removed`` as in domsync.
"""

from __future__ import annotations

import bisect
import inspect
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from .document import DocElement
from .events import Event

__all__ = ["Select", "Table"]


class _Widget:
    def __init__(self, parent: DocElement, element: DocElement) -> None:
        self._parent = parent
        self._element = element
        parent.appendChild(element)
        self._removed = False

    @property
    def element(self) -> DocElement:
        """The widget's element (domsync's ``getTableElement``...)."""
        return self._element

    @property
    def parent(self) -> DocElement:
        """The element the widget was added to."""
        return self._parent

    @property
    def has_been_removed(self) -> bool:
        """Whether ``remove`` was called."""
        return self._removed

    def remove(self) -> None:
        """Take the widget out of the document."""
        if not self._removed:
            self._element.remove()
            self._removed = True


class Table(_Widget):
    """A ``<table>`` with a header row and rows found by id.

    Args:
        parent: where the table goes (appended).
        columns: the header cells' texts (and the columns' names).
        attributes: the table element's attributes (``class``...).

    Raises:
        ValueError: two columns with one name.
    """

    def __init__(
        self,
        parent: DocElement,
        columns: Sequence[str],
        *,
        attributes: dict[str, str] | None = None,
    ) -> None:
        if len(set(columns)) != len(columns):
            raise ValueError("two columns have the same name")
        doc = parent.getDocument()
        table = doc.createElement("table", attributes=attributes)
        head = table.appendChild(doc.createElement("thead"))
        header = head.appendChild(doc.createElement("tr"))
        for column in columns:
            header.appendChild(doc.createElement("th", innerText=column))
        self._body = table.appendChild(doc.createElement("tbody"))
        self._columns = list(columns)
        self._rows: dict[str, DocElement] = {}
        # (sort key, insertion number, row id), sorted: where a row goes.
        self._order: list[tuple[Any, int, str]] = []
        self._added = 0
        super().__init__(parent, table)

    @property
    def columns(self) -> list[str]:
        """The columns' names."""
        return list(self._columns)

    def _cells(self, values: Sequence[Any]) -> list[str]:
        if len(values) != len(self._columns):
            raise ValueError(f"{len(values)} values for {len(self._columns)} columns")
        return [str(value) for value in values]

    def add_row(self, row_id: str, values: Sequence[Any], sort_key: Any = None) -> DocElement:
        """Add a row; rows are kept in ``sort_key`` order (``None``: after
        the rows there are).

        Raises:
            ValueError: the row exists, or the values do not fit the columns.
        """
        if row_id in self._rows:
            raise ValueError(f"the row {row_id!r} exists")
        doc = self._element.getDocument()
        row = doc.createElement("tr")
        for text in self._cells(values):
            row.appendChild(doc.createElement("td", innerText=text))
        self._added += 1
        if sort_key is None:
            entry: tuple[Any, int, str] = (_Last(), self._added, row_id)
        else:
            entry = (_First(sort_key), self._added, row_id)
        index = bisect.bisect(self._order, entry)
        self._order.insert(index, entry)
        following = self._order[index + 1][2] if index + 1 < len(self._order) else None
        self._body.insertBefore(row, None if following is None else self._rows[following])
        self._rows[row_id] = row
        return row

    def update_row(self, row_id: str, values: Sequence[Any]) -> None:
        """Set a row's cells (unchanged cells send nothing).

        Raises:
            KeyError: no such row.
        """
        row = self.row_element(row_id)
        for cell, text in zip(row.children, self._cells(values), strict=True):
            cell.innerText = text

    def add_or_update_row(self, row_id: str, values: Sequence[Any], sort_key: Any = None) -> None:
        """``update_row`` if the row exists, else ``add_row``."""
        if row_id in self._rows:
            self.update_row(row_id, values)
        else:
            self.add_row(row_id, values, sort_key)

    def has_row(self, row_id: str) -> bool:
        """Whether the row exists."""
        return row_id in self._rows

    def remove_row(self, row_id: str) -> None:
        """Remove a row.

        Raises:
            KeyError: no such row.
        """
        row = self._rows.pop(row_id)
        self._order = [entry for entry in self._order if entry[2] != row_id]
        row.remove()

    def row_ids(self) -> list[str]:
        """The rows' ids, in the table's order."""
        return [entry[2] for entry in self._order]

    def row_element(self, row_id: str) -> DocElement:
        """A row's ``<tr>``.

        Raises:
            KeyError: no such row.
        """
        try:
            return self._rows[row_id]
        except KeyError:
            raise KeyError(f"no row {row_id!r}") from None

    def cell_element(self, row_id: str, column: str) -> DocElement:
        """A cell's ``<td>``.

        Raises:
            KeyError: no such row or column.
        """
        if column not in self._columns:
            raise KeyError(f"no column {column!r}")
        return self.row_element(row_id).children[self._columns.index(column)]

    def update_cell(self, row_id: str, column: str, value: Any) -> None:
        """Set one cell's text."""
        self.cell_element(row_id, column).innerText = str(value)


class _First:
    """A sort key before every ``_Last``; compares by its value."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __lt__(self, other: object) -> bool:
        if isinstance(other, _First):
            return bool(self.value < other.value)
        return True

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _First) and bool(self.value == other.value)

    __hash__ = None  # type: ignore[assignment]


class _Last:
    """The sort key of rows added without one: after every keyed row."""

    __slots__ = ()

    def __lt__(self, other: object) -> bool:
        return False

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Last)

    __hash__ = None  # type: ignore[assignment]


#: ``on_change(value)``: the new value of a ``Select``, sync or async.
SelectCallback = Callable[[str], Awaitable[None] | None]


class Select(_Widget):
    """A ``<select>`` whose choice calls back on the server.

    Args:
        parent: where it goes (appended).
        options: ``(value, label)`` pairs, or values that are their labels.
        on_change: ``on_change(value)`` when the user picks (``None``: none).
        selected: the value selected at first (``None``: the first).
        id: the element's id (``None``: automatic).
    """

    def __init__(
        self,
        parent: DocElement,
        options: Sequence[tuple[str, str] | str],
        on_change: SelectCallback | None = None,
        selected: str | None = None,
        id: str | None = None,
    ) -> None:
        doc = parent.getDocument()
        select = doc.createElement("select", id=id)
        self._on_change = on_change
        self._values: list[str] = []
        for option in options:
            value, label = (option, option) if isinstance(option, str) else option
            self._values.append(value)
            select.appendChild(doc.createElement("option", innerText=label, value=value))
        if selected is not None:
            select.value = selected
        select.addEventListener("change", self._changed, "value")
        super().__init__(parent, select)

    @property
    def value(self) -> str:
        """The value selected (as last set or picked)."""
        return self._element.value or (self._values[0] if self._values else "")

    @value.setter
    def value(self, value: str) -> None:
        self._element.value = value

    @property
    def options(self) -> list[str]:
        """The options' values."""
        return list(self._values)

    async def _changed(self, event: Event) -> None:
        value = event.value
        if not isinstance(value, str) or value not in self._values:
            return  # not one of ours: ignore (the browser is not trusted)
        # Recorded, so that a render for a new client shows it (the patch
        # to this browser changes nothing: it shows the value already).
        self._element.value = value
        if self._on_change is not None:
            result = self._on_change(value)
            if inspect.isawaitable(result):
                await result
