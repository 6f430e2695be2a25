"""The ASGI scopes, built from the native ``Request`` and ``WebSocket``.

The connection has parsed and checked everything already (a malformed
target or ``Host`` was answered 400 before the application runs); this
module only re-expresses it as the ASGI specification's dictionary: bytes
for ``raw_path``, ``query_string`` and headers (names lowercase), the path
percent-decoded, ``root_path`` in front of both paths as uvicorn does since
0.26 (Starlette strips it again to route).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..datastructures import URL, Address
from ..requests import Request
from ..websocket import WebSocket

__all__ = [
    "ASGI_VERSION",
    "COMPRESS_KEY",
    "Scope",
    "http_scope",
    "lifespan_scope",
    "websocket_scope",
]

Scope = dict[str, Any]

#: The ASGI version and the specification revision implemented.
ASGI_VERSION = {"version": "3.0", "spec_version": "2.4"}

#: The key of wsserver's per-message compression control: advertised in a
#: WebSocket scope's ``extensions``, read from a ``websocket.send`` event
#: (``True``: compress if permessage-deflate was agreed; ``False``: send
#: uncompressed, for data that is compressed already).
COMPRESS_KEY = "wsserver.compress"

# Each scope gets dictionaries of its own (the same ones for every scope
# would let one application change what the next one sees), written out as
# literals below rather than copied from templates: cheaper per handshake
# (docs/asgi.md, "The handshake's cost").  tests/server/asgi/test_scope.py
# holds them to ASGI_VERSION.  A WebSocket scope's extensions: denial
# responses with any status, headers and body (websocket.http.response);
# per-message compression control (COMPRESS_KEY).


def _address(address: Address | None) -> tuple[str, int] | None:
    # A plain tuple, as uvicorn gives (the address is a NamedTuple here).
    return None if address is None else (address[0], address[1])


def _headers(pairs: tuple[tuple[str, str], ...]) -> list[tuple[bytes, bytes]]:
    # The core decoded every octet as ISO-8859-1: encoding back gives the
    # bytes the client sent.  Names are lowercase already.
    return [(name.encode("latin-1"), value.encode("latin-1")) for name, value in pairs]


def _asgi() -> dict[str, str]:
    return {"version": "3.0", "spec_version": "2.4"}


def _paths(url: URL, root_path: str) -> tuple[str, bytes, bytes]:
    return (
        root_path + url.path,
        (root_path + url.raw_path).encode("ascii"),
        url.query.encode("latin-1"),
    )


def http_scope(request: Request, state: Mapping[str, Any]) -> Scope:
    """The ``http`` scope of ``request``; ``state``: the lifespan state (copied)."""
    url = request.url
    path, raw_path, query = _paths(url, request.root_path)
    return {
        "type": "http",
        "asgi": _asgi(),
        "http_version": request.http_version,
        "method": request.method,
        "scheme": url.scheme,
        "path": path,
        "raw_path": raw_path,
        "query_string": query,
        "root_path": request.root_path,
        "headers": _headers(request.headers.raw),
        "client": _address(request.client),
        "server": _address(request.server),
        "state": dict(state),
        "extensions": {},
    }


def websocket_scope(websocket: WebSocket, state: Mapping[str, Any]) -> Scope:
    """The ``websocket`` scope of ``websocket``; ``state`` as above."""
    url = websocket.url
    path, raw_path, query = _paths(url, websocket.root_path)
    return {
        "type": "websocket",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        # RFC 6455 section 4.1: the opening handshake is HTTP/1.1 at least
        # (the core answers older versions 505 itself).
        "http_version": "1.1",
        "scheme": url.scheme,
        "path": path,
        "raw_path": raw_path,
        "query_string": query,
        "root_path": websocket.root_path,
        # The pairs, not the ``headers`` multidict: the application may never
        # ask for it.
        "headers": _headers(websocket.raw_headers),
        "client": _address(websocket.client),
        "server": _address(websocket.server),
        "subprotocols": list(websocket.subprotocols),
        "state": dict(state),
        "extensions": {"websocket.http.response": {}, COMPRESS_KEY: {}},
    }


def lifespan_scope(state: dict[str, Any]) -> Scope:
    """The ``lifespan`` scope; ``state`` is shared, not copied: startup fills it."""
    return {"type": "lifespan", "asgi": _asgi(), "state": state}
