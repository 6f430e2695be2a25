"""To-do list: server-side components in a live page.

    wsserver run examples.todo:TodoPage

then open http://127.0.0.1:8000/.  The page is rendered on the server and
shows before any script runs; then the WebSocket takes over.  Every click
runs a Python handler, and what it changed comes back as one batch of DOM
patches: adding, ticking, editing, removing and reordering to-dos (a
reorder moves the existing DOM nodes, it does not rebuild them).

When only the connection drops (a laptop asleep, a flaky network), the page
reconnects and resumes where it was, text typed into the form included.
By default the pages' snapshots live in the server's memory: when it
restarts they are gone, and each page says it has expired and reloads.
With a Redis store they survive restarts, deploys and other workers::

    WSSERVER_SNAPSHOT_STORE=redis://127.0.0.1:6379/0 \
    WSSERVER_SNAPSHOT_SECRET=$(python -c "import secrets; print(secrets.token_hex(32))") \
    wsserver run examples.todo:TodoPage --workers 2

(every worker and every restart must share the secret that signs them).

``TodoPage`` is a ``ComponentApp``, which is an ``App``, so ``wsserver
run`` serves it as it is.
"""

from __future__ import annotations

import os
from typing import Any

from wsserver.plugins.components import (
    Component,
    ComponentApp,
    Element,
    Event,
    PageRequest,
    RedisStore,
    State,
    h,
)

STYLE = """<style>
  body { font: 16px/1.5 system-ui, sans-serif; margin: 2rem auto; max-width: 34rem; }
  h1 { font-weight: 300; font-size: 2.5rem; margin: 0 0 1rem; }
  form.new { display: flex; gap: .5rem; }
  form.new input { flex: 1; font: inherit; padding: .4rem .6rem; }
  ul.todos { list-style: none; padding: 0; }
  li.todo { display: flex; align-items: center; gap: .5rem; padding: .3rem 0;
            border-bottom: 1px solid #eee; }
  li.todo .title { flex: 1; }
  li.todo.done .title { text-decoration: line-through; color: #999; }
  li.todo form.edit { flex: 1; display: flex; }
  li.todo form.edit input { flex: 1; font: inherit; }
  button { font: inherit; cursor: pointer; }
  footer { display: flex; gap: .5rem; align-items: center; color: #666; }
  footer .count { flex: 1; }
  html[data-wsserver-status="reconnecting"] body::before,
  html[data-wsserver-status="offline"] body::before {
    content: "reconnecting\\2026"; position: fixed; top: .5rem; right: .5rem;
    background: #fff3cd; padding: .2rem .6rem; }
</style>"""


class TodoItem(Component):
    """One to-do: a title, done or not, being edited or not."""

    title = State("")
    done = State(False)
    editing = State(False)

    def render(self) -> Element:
        if self.editing:
            label: Element = h.form(
                h.input(name="title", value=self.title, aria_label="Title", autofocus=True),
                h.button("Save", type="submit"),
                class_="edit",
            ).bind("submit", self.rename)
        else:
            label = h.span(self.title, class_="title").bind("dblclick", self.edit)
        return h.li(
            h.input(type="checkbox", class_="toggle", checked=self.done, aria_label="Done").bind(
                "change", self.toggle
            ),
            label,
            not self.editing
            and h.button("Edit", class_="edit", type="button").bind("click", self.edit),
            h.button("\u2191", class_="up", title="Move up", type="button").bind("click", self.up),
            h.button("\u2193", class_="down", title="Move down", type="button").bind(
                "click", self.down
            ),
            h.button("\u00d7", class_="remove", title="Remove", type="button").bind(
                "click", self.remove
            ),
            class_=["todo", self.done and "done"],
        )

    def _list(self) -> TodoList:
        owner = self.find_parent(TodoList)
        assert owner is not None, "a TodoItem lives in a TodoList"
        return owner

    def toggle(self, event: Event) -> None:
        self.done = bool(event.value)

    def edit(self) -> None:
        self.editing = True

    def rename(self, event: Event) -> None:
        title = str((event.value or {}).get("title", "")).strip()
        if title:
            self.title = title
        self.editing = False

    def up(self) -> None:
        self._list().shift(self, -1)

    def down(self) -> None:
        self._list().shift(self, +1)

    def remove(self) -> None:
        self._list().discard(self)


class TodoList(Component):
    """The page: a form to add to-dos, the list, and a few list actions."""

    items: State[list[TodoItem]] = State(factory=list)
    next_id = State(1)

    @classmethod
    def for_request(cls, request: PageRequest) -> TodoList:
        page = cls()
        for title in ("Try the to-do list", "Reorder me"):
            page.append(title)
        return page

    def page_title(self) -> str:
        left = sum(not item.done for item in self.items)
        return f"To-do ({left})" if left else "To-do"

    def render(self) -> Element:
        left = sum(not item.done for item in self.items)
        return h.main(
            h.h1("To-do"),
            h.form(
                # value="" is *controlled*: after each add, the browser's
                # text is compared with "" and cleared.
                h.input(
                    name="title",
                    value="",
                    placeholder="What needs doing?",
                    aria_label="New to-do",
                    autocomplete="off",
                    required=True,
                ),
                h.button("Add", type="submit"),
                class_="new",
            ).bind("submit", self.add),
            h.ul(*self.items, class_="todos", key="items"),
            h.footer(
                h.span(f"{left} item{'' if left == 1 else 's'} left", class_="count"),
                h.button("Sort", class_="sort", type="button").bind("click", self.sort),
                h.button("Reverse", class_="reverse", type="button").bind("click", self.reverse),
                h.button("Clear done", class_="clear", type="button").bind("click", self.clear),
            ),
        )

    def append(self, title: str) -> None:
        self.items.append(TodoItem(key=f"t{self.next_id}", title=title))
        self.next_id += 1

    def add(self, event: Event) -> None:
        title = str((event.value or {}).get("title", "")).strip()
        if title:
            self.append(title)

    def shift(self, item: TodoItem, step: int) -> None:
        index = self.items.index(item)
        target = index + step
        if 0 <= target < len(self.items):
            self.items[index], self.items[target] = self.items[target], self.items[index]

    def discard(self, item: TodoItem) -> None:
        self.items.remove(item)

    def sort(self) -> None:
        self.items.sort(key=lambda item: (item.done, item.title.casefold()))

    def reverse(self) -> None:
        self.items.reverse()

    def clear(self) -> None:
        self.items = [item for item in self.items if not item.done]


def store_from_environment(environ: Any = os.environ) -> dict[str, Any]:
    """``store`` and ``secret`` from ``WSSERVER_SNAPSHOT_STORE`` and ``..._SECRET``, if set."""
    url = environ.get("WSSERVER_SNAPSHOT_STORE")
    if not url:
        return {}
    secret = environ.get("WSSERVER_SNAPSHOT_SECRET")
    if not secret:
        raise RuntimeError("WSSERVER_SNAPSHOT_STORE needs WSSERVER_SNAPSHOT_SECRET")
    return {"store": RedisStore(url), "secret": secret.encode()}


def make_todo_page(**options: Any) -> ComponentApp:
    """The to-do application, with ``ComponentApp`` options (a store, a secret)."""
    return ComponentApp({"/": TodoList}, title="To-do", head=STYLE, **options)


#: What ``wsserver run examples.todo:TodoPage`` serves.
TodoPage = make_todo_page(**store_from_environment())
