"""Tests for wsserver.server.mistakes: naming a callable and the value it
returned.  What the server does with a mistake (500, 1011, the log line) is
tested end to end with the modules that find it: ``test_app``,
``test_views``, ``test_websocket`` and ``test_connection``."""

from __future__ import annotations

import functools
from typing import Any

import pytest

from wsserver.server import PlainTextResponse
from wsserver.server.mistakes import (
    ApplicationMistake,
    awaited,
    describe_value,
    qualified_name,
)


async def handler(request: object) -> None:
    return None


class Hooks:
    async def on_receive(self, data: object) -> None:
        return None

    def __call__(self) -> None:
        return None


class BrokenRepr:
    def __repr__(self) -> str:
        raise RuntimeError("no repr")


def test_qualified_name_of_functions_methods_and_callables() -> None:
    assert qualified_name(handler) == f"{__name__}.handler"
    assert qualified_name(Hooks().on_receive) == f"{__name__}.Hooks.on_receive"
    assert qualified_name(Hooks.on_receive) == f"{__name__}.Hooks.on_receive"
    # A callable object is named after its class, a partial after its function.
    assert qualified_name(Hooks()) == f"{__name__}.Hooks"
    assert qualified_name(functools.partial(handler, 1)) == f"{__name__}.handler"

    def local() -> None:
        return None

    assert qualified_name(local) == (
        f"{__name__}.test_qualified_name_of_functions_methods_and_callables.<locals>.local"
    )


@pytest.mark.parametrize(
    ("value", "described"),
    [
        ("text", "str 'text'"),
        (None, "NoneType None"),
        (True, "bool True"),
        (401, "int 401"),
        ({"a": 1}, "dict {'a': 1}"),
    ],
)
def test_describe_value_gives_the_type_and_a_repr(value: object, described: str) -> None:
    assert describe_value(value) == described


def test_describe_value_is_short_and_survives_a_broken_repr() -> None:
    long = describe_value("x" * 10_000)
    assert long.startswith("str 'xxx") and "..." in long and len(long) < 80
    assert describe_value(list(range(1000))) == "list [0, 1, 2, 3, ...]"
    # A __repr__ that raises must not hide the mistake itself.
    assert describe_value(BrokenRepr()).startswith(
        f"{__name__}.BrokenRepr <BrokenRepr instance at 0x"
    )
    # A repr that names its class is not prefixed with it again.
    assert describe_value(PlainTextResponse("hi")) == (
        "PlainTextResponse(status_code=200, body=<2 bytes>)"
    )


def test_application_mistake_names_the_callable_the_value_and_what_was_expected() -> None:
    mistake = ApplicationMistake("HTTP handler", handler, "text", "a Response")
    assert isinstance(mistake, TypeError)
    assert str(mistake) == (
        f"HTTP handler {__name__}.handler returned str 'text', expected a Response"
    )
    assert (mistake.role, mistake.culprit, mistake.value, mistake.expected) == (
        "HTTP handler",
        f"{__name__}.handler",
        "text",
        "a Response",
    )
    hinted = ApplicationMistake("hook", handler, False, "None", "refuse with reject()")
    assert str(hinted).endswith("returned bool False, expected None (refuse with reject())")


async def test_awaited_awaits_a_coroutine() -> None:
    async def give() -> str:
        return "given"

    assert await awaited("hook", give, give()) == "given"


async def test_awaited_refuses_what_a_plain_def_returned() -> None:
    def plain(request: object) -> Any:
        return PlainTextResponse("not awaitable")

    with pytest.raises(ApplicationMistake) as caught:
        await awaited("HTTP handler", plain, plain(None))
    message = str(caught.value)
    assert "HTTP handler" in message and ".plain returned" in message
    assert message.endswith("expected an awaitable (declare it with async def)")
