"""Tests for wsserver.plugins.components.events: specs, value getters,
handler signatures, sync and async calls, and ``cv/ev`` validation.

Value extraction in the browser is tested in Chromium by test_page.py (the
form with every input type).
"""

from __future__ import annotations

from typing import Any

import pytest

from wsserver.plugins.components.events import (
    DOMSYNC_ALIASES,
    Event,
    EventSpec,
    call_handler,
    check_event_name,
    check_value_getter,
    handler_arity,
    make_spec,
    parse_event_message,
)
from wsserver.plugins.runtime.messages import Envelope, MalformedMessage


@pytest.mark.parametrize("name", ["click", "input", "keydown", "my-widget:changed", "online"])
def test_event_names(name: str) -> None:
    assert check_event_name(name) == name


@pytest.mark.parametrize("name", ["", "onclick", "onClick", "a b", 'x"', 3, "1click", "a" * 65])
def test_bad_event_names(name: Any) -> None:
    with pytest.raises(ValueError):
        check_event_name(name)


def test_value_getters_are_names_never_code() -> None:
    for getter in ("auto", "none", "value", "checked", "form", "files", "text", "key", "detail"):
        assert check_value_getter(getter) == getter
    assert check_value_getter("attr:href") == "attr:href"
    assert check_value_getter("data:itemId") == "data:itemId"
    # domsync's expressions are mapped to names.
    assert check_value_getter("this.value") == "value"
    assert check_value_getter("this.options[this.selectedIndex].value") == "value"
    assert set(DOMSYNC_ALIASES.values()) <= {
        "value",
        "checked",
        "files",
        "text",
        "key",
        "detail",
        "none",
    }
    for code in ("this.value + 1", "alert(1)", "attr:", "attr:a b", "fetch('/x')", 1):
        with pytest.raises(ValueError):
            check_value_getter(code)


def test_spec_wire_form() -> None:
    assert EventSpec().to_wire() == {}  # the defaults are left out
    assert EventSpec.from_wire({}) == EventSpec()
    spec = EventSpec("form", True, True, 300)
    assert spec.to_wire() == {"v": "form", "p": 1, "s": 1, "d": 300}
    assert EventSpec.from_wire(spec.to_wire()) == spec
    bad: object
    for bad in (None, [], {"v": "auto", "q": 1}, {"d": "5"}, {"d": True}, {"v": "alert(1)"}):
        with pytest.raises(ValueError):
            EventSpec.from_wire(bad)
    with pytest.raises(ValueError):
        EventSpec(debounce_ms=-1)
    with pytest.raises(ValueError):
        EventSpec(debounce_ms=True)


def test_make_spec_defaults() -> None:
    assert make_spec("submit").prevent_default
    assert make_spec("click", tag="a").prevent_default
    assert not make_spec("click", tag="button").prevent_default
    assert not make_spec("submit", prevent_default=False).prevent_default
    assert make_spec("input", debounce=0.1).debounce_ms == 100
    for bad in (-1, float("inf"), float("nan"), True):
        with pytest.raises(ValueError):
            make_spec("input", debounce=bad)


class Thing:
    def method0(self) -> None: ...

    def method1(self, event: Event) -> None: ...

    def method4(self, component: Any, event: Event, value: Any, connection: Any) -> None: ...


def test_handler_arity() -> None:
    thing = Thing()
    assert handler_arity(thing.method0) == 0
    assert handler_arity(thing.method1) == 1
    assert handler_arity(thing.method4) == 4
    assert handler_arity(lambda: None) == 0
    assert handler_arity(lambda e=None: None) == 1
    assert handler_arity(lambda *args: None) == 1
    assert handler_arity(lambda a, b, c=1, d=2: None) == 4
    assert handler_arity(print) == 1  # a builtin: given the event
    with pytest.raises(TypeError, match="four"):
        handler_arity(lambda a, b: None)
    with pytest.raises(TypeError, match="callable"):
        handler_arity("nope")  # type: ignore[arg-type]


async def test_call_handler_sync_and_async() -> None:
    calls: list[Any] = []
    event = Event("click", "v", None, None, "r/0")

    def sync0() -> None:
        calls.append("sync0")

    async def async1(e: Event) -> None:
        calls.append(("async1", e.value))

    def four(component: Any, e: Event, value: Any, connection: Any) -> None:
        calls.append(("four", component, e.name, value, connection))

    await call_handler(sync0, 0, event)
    await call_handler(async1, 1, event)
    await call_handler(four, 4, event)
    assert calls == ["sync0", ("async1", "v"), ("four", None, "click", "v", None)]


def envelope(**fields: Any) -> Envelope:
    return Envelope("cv", "ev", fields)


def test_parse_event_message() -> None:
    message = parse_event_message(
        envelope(
            key="r/0",
            type="click",
            value={"a": [1]},
            live={"r/1": {"value": "x"}, "r/2": {"checked": True}},
        )
    )
    assert (message.key, message.name, message.value) == ("r/0", "click", {"a": [1]})
    assert message.live == {"r/1": {"value": "x"}, "r/2": {"checked": True}}
    assert parse_event_message(envelope(key="k", type="input")).live == {}


@pytest.mark.parametrize(
    "fields",
    [
        {"type": "click"},
        {"key": "r", "type": "onclick"},
        {"key": 1, "type": "click"},
        {"key": "r" * 5000, "type": "click"},
        {"key": "r", "type": "click", "live": []},
        {"key": "r", "type": "click", "live": {"r": "x"}},
        {"key": "r", "type": "click", "live": {"r": {"innerHTML": "x"}}},
        {"key": "r", "type": "click", "live": {"r": {"value": 1}}},
        {"key": "r", "type": "click", "live": {"r": {"checked": "yes"}}},
        {"key": "r", "type": "click", "live": {str(i): {} for i in range(3000)}},
    ],
)
def test_malformed_event_messages(fields: dict[str, Any]) -> None:
    with pytest.raises(MalformedMessage):
        parse_event_message(envelope(**fields))
