"""Naming the application's mistakes: a callable that returned what the
server cannot use.

A handler that returns ``"text"`` instead of a ``Response``, an
``authenticate`` hook that returns ``True``, a view hook that returns a
value: none of these raise in the application's own code, so a traceback
would only show the server's frames.  The server raises
``ApplicationMistake`` where it finds the value instead, and the connection
logs it as one line without a traceback, naming the callable (qualified
name) and the value (type and a short repr), then answers 500 (before the
handshake is answered) or closes with 1011 (after it).

Exceptions raised *by* application code are not mistakes in this sense:
they keep their traceback (see ``Connection``).
"""

from __future__ import annotations

import functools
import inspect
import reprlib
from typing import Any

__all__ = ["ApplicationMistake", "awaited", "describe_value", "qualified_name"]

# Short enough for one log line, long enough to recognise the value.
_REPR = reprlib.Repr()
_REPR.maxstring = 60
_REPR.maxother = 60
_REPR.maxlevel = 2
_REPR.maxlist = _REPR.maxtuple = _REPR.maxset = _REPR.maxdict = 4


def qualified_name(culprit: object) -> str:
    """``module.Qualified.name`` of a function, bound method or callable object.

    A ``functools.partial`` is named after the function it wraps; a callable
    instance after its class.
    """
    while isinstance(culprit, functools.partial):
        culprit = culprit.func
    target: Any = getattr(culprit, "__func__", culprit)  # a bound method's function
    qualname = getattr(target, "__qualname__", None)
    if not isinstance(qualname, str):
        target = type(culprit)
        qualname = target.__qualname__
    module = getattr(target, "__module__", None)
    return f"{module}.{qualname}" if isinstance(module, str) and module else qualname


def describe_value(value: object) -> str:
    """The value's type and a short repr, e.g. ``str 'text'`` or ``bool True``.

    A repr that already starts with the class name, as
    ``PlainTextResponse(status_code=200, ...)``, is not prefixed again.
    """
    kind = type(value)
    # reprlib also stands in for a __repr__ that raises.
    shown = _REPR.repr(value)
    if kind.__module__ != "builtins" and shown.startswith(f"{kind.__qualname__}("):
        return shown
    name = kind.__qualname__ if kind.__module__ == "builtins" else qualified_name(kind)
    return f"{name} {shown}"


class ApplicationMistake(TypeError):
    """A callable of the application returned something the server cannot use.

    Attributes:
        role: what the callable is to the server ("HTTP handler",
            "authenticate hook"...).
        culprit: its qualified name.
        value: what it returned.
        expected: what it should have returned.
    """

    def __init__(
        self, role: str, culprit: object, value: object, expected: str, hint: str = ""
    ) -> None:
        self.role = role
        self.culprit = qualified_name(culprit)
        self.value = value
        self.expected = expected
        message = f"{role} {self.culprit} returned {describe_value(value)}, expected {expected}"
        super().__init__(f"{message} ({hint})" if hint else message)


async def awaited(role: str, culprit: object, result: object) -> object:
    """Await what calling ``culprit`` returned, which must be awaitable.

    Raises:
        ApplicationMistake: ``result`` is not awaitable (``culprit`` is a
            plain ``def`` where the server needs ``async def``).
    """
    if not inspect.isawaitable(result):
        raise ApplicationMistake(role, culprit, result, "an awaitable", "declare it with async def")
    return await result
