"""Components shared by the component view's test modules.

Not a test module.
"""

from __future__ import annotations

from wsserver.plugins.components import Component, Event, State, h
from wsserver.plugins.components.html import Element

from ._harness import WAIT


class Counter(Component):
    count = State(0)

    def render(self) -> Element:
        return h.div(
            h.button("+1", id="inc").bind("click", self.increment),
            h.button("+2 (async)", id="slow").bind("click", self.slow),
            h.output(str(self.count), id="count"),
        )

    def increment(self) -> None:
        self.count += 1

    async def slow(self, event: Event) -> None:
        # An async handler that waits for the browser: the receive loop must
        # stay free for the answer.
        assert event.connection is not None
        two = await event.connection.execute_js("1 + 1", wait_for_result=True, timeout=WAIT)
        self.count += two

    def page_title(self) -> str:
        return f"Count {self.count}"


class Greeting(Component):
    name = State("world")

    def render(self) -> Element:
        return h.p("Hello, ", h.b(self.name), "!", title=self.name)
