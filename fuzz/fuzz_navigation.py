"""Fuzz target: navigation messages and posted forms (``plugins/components/navigation.py``).

INVARIANT: a request or a documented failure, never any other exception,
never unbounded memory.  Here:

* ``parse_nav_message`` on any decoded ``cv/nav`` message returns a
  ``NavRequest`` or raises ``MalformedMessage`` (Close 1007); what it
  returns is a same-origin path (one leading ``/``, no ``//`` or ``/\\``,
  printable ASCII, at most 8 KiB) whose query parses (``QueryParams``);
* what ``PageConnection._navigate`` then does with it never raises: the
  page router matches the raw path or not; the path decodes;
* ``form_from_body`` returns the form, or raises ``ValueError`` for more
  fields than it takes (answered 400), on any body and content type;
* ``History`` keeps at most its limit of states whatever entries the
  browser names, and ``from_json(to_json())`` gives it back.

Input: byte 0 is unused but for the seeds' sake; the rest is split at the
first NUL: a ``cv/nav`` message (UTF-8, invalid bytes replaced), then a
posted body, whose first byte picks the content type.

Run: ``python fuzz/fuzz_navigation.py [libFuzzer args] [corpus dirs]``.
"""

from __future__ import annotations

import sys
from typing import Any
from urllib.parse import unquote

import atheris

with atheris.instrument_imports(include=["wsserver"]):
    from wsserver.plugins.components import Component
    from wsserver.plugins.components.navigation import (
        History,
        PageRouter,
        PageSpec,
        form_from_body,
        parse_nav_message,
    )
    from wsserver.plugins.runtime.messages import MalformedMessage, decode
    from wsserver.server import QueryParams

_CONTENT_TYPES = (
    "application/x-www-form-urlencoded",
    "Application/X-WWW-Form-Urlencoded; charset=utf-8",
    "multipart/form-data; boundary=x",
    "",
)
HISTORY_LIMIT = 4


class _Root(Component):
    __module__ = "fuzz_navigation"


def _router() -> PageRouter:
    router = PageRouter()
    for path in ("/", "/items/{id:int}", "/files/{rest:path}", "/u/{name}", "/{a}/{b:int}/x"):
        router.add(PageSpec(path, _Root))
    return router


_ROUTER = _router()


def _check_nav(text: str) -> None:
    try:
        request = parse_nav_message(decode(text))
    except MalformedMessage:
        return
    assert request.raw_path.startswith("/") and request.raw_path[1:2] not in ("/", "\\")
    assert request.href.isascii() and request.href.isprintable() and len(request.href) <= 8192
    assert request.href == request.raw_path + (f"?{request.query}" if request.query else "")
    assert "#" not in request.href
    # What _navigate does with it.
    QueryParams(request.query)
    _ROUTER.match(request.raw_path)
    unquote(request.raw_path, errors="replace")
    history = History(HISTORY_LIMIT)
    if request.entry is not None:
        history.stash(request.entry, {"url": request.href})
        history.take(request.entry)
        history.stash(request.entry, {"url": request.href})
    for _ in range(HISTORY_LIMIT + 2):
        history.stash(history.push(), {})
    assert len(history) <= HISTORY_LIMIT
    again = History.from_json(history.to_json(), HISTORY_LIMIT)
    assert again.to_json() == history.to_json()


def _check_form(body: bytes) -> None:
    content_type = _CONTENT_TYPES[body[0] % len(_CONTENT_TYPES)] if body else ""
    try:
        form: dict[str, Any] = form_from_body(content_type, body[1:])
    except ValueError as exc:
        assert "fields" in str(exc), exc
        return
    for name, value in form.items():
        assert isinstance(name, str)
        assert isinstance(value, str) or (
            isinstance(value, list) and all(isinstance(v, str) for v in value)
        )


def TestOneInput(data: bytes) -> None:
    if not data:
        return
    message, _, body = data[1:].partition(b"\x00")
    _check_nav(message.decode("utf-8", "replace"))
    _check_form(body)


# -- seeds ------------------------------------------------------------------


def seeds() -> dict[str, bytes]:
    """Links, forms, back and forward, and what a hostile page may send."""

    def nav(fields: str) -> bytes:
        return ('{"p":"cv","k":"nav",' + fields + "}").encode()

    form = b"\x00a=1&b=%C3%A9&a=2&flag&x=+y+"
    return {
        "link": b"\x00" + nav('"href":"/items/3?x=1&y=%20#top"') + form,
        "post": b"\x00" + nav('"href":"/u/bob","method":"POST","form":{"a":"1"}') + form,
        "pop": b"\x00" + nav('"href":"/","pop":true,"entry":2'),
        "other-origin": b"\x00" + nav('"href":"//evil.example/"'),
        "backslash": b"\x00" + nav('"href":"/\\\\evil.example/"'),
        "scheme": b"\x00" + nav('"href":"javascript:alert(1)"'),
        "bad-fields": b"\x00" + nav('"href":"/","method":"PUT","pop":1,"entry":true'),
        "path-param": b"\x00" + nav('"href":"/files/a/%2e%2e/b?q=%ff"'),
        "two-params": b"\x00" + nav('"href":"/a%2Fb/0099/x"'),
        "many-fields": b"\x00" + nav('"href":"/?' + "a&" * 999 + 'a"') + b"\x00\x00" + b"a&" * 999,
        "too-many-fields": b"\x00"
        + nav('"href":"/?' + "a&" * 1000 + 'a"')
        + b"\x00\x00"
        + b"a&" * 1001,
        "multipart": b"\x00" + nav('"href":"/"') + b"\x00\x02--x\r\n",
    }


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
