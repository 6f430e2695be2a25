"""The browser runtime as an HTTP asset: one file, a versioned URL.

``static/runtime.js`` is served at ``<prefix>/runtime.<version>.js``, where
the version is the start of the file's SHA-256.  The URL changes whenever the
content does, so the response may be cached for a year and marked
``immutable``: a browser never asks twice, and never runs a stale runtime
against a newer server.  ``script_tag`` renders the runtime's ``<script>``
element with that URL, a Subresource Integrity hash, and the WebSocket URL
and reconnect settings as ``data-`` attributes (no inline script, so a
strict Content-Security-Policy can allow it by origin)::

    app = App()
    install(app)

    @app.route("/")
    async def home(request):
        return HTMLResponse(f"<!doctype html>...{script_tag('/ws')}...")

Each asset is compressed once, when it is first loaded (``install`` loads
it): with zstandard when that package is installed, and with gzip.  A
request whose ``Accept-Encoding`` takes one of them gets it, with
``Content-Encoding``; every response says ``Vary: Accept-Encoding``, and
each encoding has its own entity tag (``"<version>-zstd"``), as RFC 9110
asks of different representations.  Other plugins serve their own scripts
the same way: ``RuntimeAsset.from_bytes(body, name="components")``,
``install_asset``, and ``asset_script_tag`` for the element.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import html
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from types import MappingProxyType

from ...server import App, Request, Response, Route, choose_encoding, etag_matches

__all__ = [
    "CACHE_CONTROL",
    "DEFAULT_PREFIX",
    "ENCODINGS",
    "MEDIA_TYPE",
    "RuntimeAsset",
    "asset_path",
    "asset_route",
    "asset_script_tag",
    "install",
    "install_asset",
    "runtime_asset",
    "runtime_route",
    "script_tag",
]

#: Where ``install`` serves the runtime unless told otherwise.
DEFAULT_PREFIX = "/_wsserver"
#: One year, the longest RFC 9111 caches honour in practice; ``immutable``
#: also spares the revalidation a reload would otherwise trigger.
CACHE_CONTROL = "public, max-age=31536000, immutable"
#: RFC 9239: JavaScript is ``text/javascript``.
MEDIA_TYPE = "text/javascript"
#: The content codings assets are precompressed with, best first (zstd only
#: when the zstandard package is installed).
ENCODINGS = ("zstd", "gzip")
# Hex digits of the SHA-256 in the URL: 64 bits, ample against collisions
# between versions of one file.
_VERSION_LENGTH = 16
_NAME_RE = re.compile(r"[a-z][a-z0-9_-]{0,63}")


def _compress(body: bytes) -> dict[str, bytes]:
    """The body in each coding that makes it smaller."""
    encoded: dict[str, bytes] = {}
    try:
        import zstandard
    except ImportError:  # an optional extra: gzip alone then
        pass
    else:
        encoded["zstd"] = zstandard.ZstdCompressor(level=19).compress(body)
    # mtime=0: the same bytes on every start, so the entity tag holds.
    encoded["gzip"] = gzip.compress(body, compresslevel=9, mtime=0)
    return {coding: data for coding, data in encoded.items() if len(data) < len(body)}


@dataclass(frozen=True, slots=True)
class RuntimeAsset:
    """The runtime's bytes and what is derived from them.

    Attributes:
        body: the JavaScript source, as served.
        version: the first 16 hex digits of its SHA-256.
        integrity: the ``integrity`` attribute value (SHA-384, base64; of
            the source, which is what the browser checks after decoding).
        name: the file name's stem (``runtime``).
        encoded: the body precompressed, by content coding (``zstd``,
            ``gzip``); a coding that would not make it smaller is absent.
    """

    body: bytes
    version: str
    integrity: str
    name: str = "runtime"
    encoded: Mapping[str, bytes] = field(default_factory=lambda: MappingProxyType({}))

    @classmethod
    def from_bytes(
        cls, body: bytes, *, name: str = "runtime", compress: bool = True
    ) -> RuntimeAsset:
        """Compute the version and integrity of ``body``, and compress it.

        Raises:
            ValueError: ``name`` is not a lowercase file stem.
        """
        if _NAME_RE.fullmatch(name) is None:
            raise ValueError(f"invalid asset name {name!r}")
        version = hashlib.sha256(body).hexdigest()[:_VERSION_LENGTH]
        integrity = "sha384-" + base64.b64encode(hashlib.sha384(body).digest()).decode("ascii")
        encoded = MappingProxyType(_compress(body) if compress else {})
        return cls(body, version, integrity, name, encoded)

    @property
    def filename(self) -> str:
        """``<name>.<version>.js``."""
        return f"{self.name}.{self.version}.js"

    @property
    def etag(self) -> str:
        """A strong entity tag of the uncompressed body: the version, quoted."""
        return f'"{self.version}"'

    def etag_for(self, coding: str | None) -> str:
        """The entity tag of the body in ``coding`` (``None``: uncompressed)."""
        return self.etag if coding is None else f'"{self.version}-{coding}"'

    def representation(self, accept_encoding: str | None) -> tuple[str | None, bytes]:
        """The coding and the bytes to send for an ``Accept-Encoding``."""
        coding = choose_encoding(accept_encoding, tuple(self.encoded))
        return coding, self.body if coding is None else self.encoded[coding]


@cache
def runtime_asset() -> RuntimeAsset:
    """The packaged ``static/runtime.js``, read once."""
    body = resources.files(__package__).joinpath("static", "runtime.js").read_bytes()
    return RuntimeAsset.from_bytes(body)


def _check_prefix(prefix: str) -> str:
    if not prefix.startswith("/") or (prefix.endswith("/") and prefix != "/"):
        raise ValueError(f"prefix must start with '/' and not end with one: {prefix!r}")
    return "" if prefix == "/" else prefix


def asset_path(prefix: str = DEFAULT_PREFIX, asset: RuntimeAsset | None = None) -> str:
    """An asset's URL path under ``prefix``: ``<prefix>/<name>.<version>.js``.

    Without ``asset``, the runtime's.
    """
    if asset is None:
        asset = runtime_asset()
    return f"{_check_prefix(prefix)}/{asset.filename}"


def asset_route(asset: RuntimeAsset, prefix: str = DEFAULT_PREFIX) -> Route:
    """An HTTP route serving ``asset`` at ``asset_path(prefix, asset)``.

    The response carries ``Cache-Control: public, max-age=31536000,
    immutable``, ``Vary: Accept-Encoding``, a strong ``ETag`` per encoding
    (``If-None-Match`` gets 304), ``X-Content-Type-Options: nosniff``, and
    ``Content-Encoding`` when compressed.  Older versions' URLs are not
    served: a page that asks for one is older than the server, and a 404
    is more honest than a script it was not written for.
    """

    async def serve_asset(request: Request) -> Response:
        coding, body = asset.representation(request.headers.get("accept-encoding"))
        etag = asset.etag_for(coding)
        headers = {
            "cache-control": CACHE_CONTROL,
            "etag": etag,
            "vary": "Accept-Encoding",
            "x-content-type-options": "nosniff",
        }
        if etag_matches(request.headers.get("if-none-match"), etag):
            return Response(b"", status_code=304, headers=headers)
        if coding is not None:
            headers["content-encoding"] = coding
        return Response(body, headers=headers, media_type=MEDIA_TYPE)

    return Route(asset_path(prefix, asset), serve_asset, methods=("GET", "HEAD"))


def runtime_route(prefix: str = DEFAULT_PREFIX) -> Route:
    """An HTTP route serving the runtime at ``asset_path(prefix)``; see ``asset_route``."""
    return asset_route(runtime_asset(), prefix)


def install_asset(app: App, asset: RuntimeAsset, *, prefix: str = DEFAULT_PREFIX) -> str:
    """Serve ``asset`` from ``app``; idempotent.

    Returns:
        The asset's URL path (``asset_path(prefix, asset)``).
    """
    path = asset_path(prefix, asset)
    if not any(isinstance(route, Route) and route.path == path for route in app.router.routes):
        app.router.add_route(path, asset_route(asset, prefix).endpoint, methods=("GET", "HEAD"))
    return path


def install(app: App, *, prefix: str = DEFAULT_PREFIX) -> str:
    """Serve the runtime from ``app``; idempotent.

    Args:
        app: the application.
        prefix: the URL prefix of the asset.

    Returns:
        The runtime's URL path (``asset_path(prefix)``).
    """
    return install_asset(app, runtime_asset(), prefix=prefix)


def _ms(seconds: float, name: str) -> int:
    if not (seconds >= 0 and math.isfinite(seconds)):
        raise ValueError(f"{name} must be a finite number of seconds >= 0")
    return round(seconds * 1000)


def asset_script_tag(
    asset: RuntimeAsset,
    *,
    prefix: str = DEFAULT_PREFIX,
    integrity: bool = True,
    extra_attributes: Mapping[str, str] | None = None,
) -> str:
    """The ``<script>`` element that loads ``asset`` from its versioned URL.

    Args:
        asset: the asset (the runtime, ``channels.js``, ``components.js``...).
        prefix: the prefix it is served under (see ``install_asset``).
        integrity: add the ``integrity`` attribute (Subresource Integrity).
        extra_attributes: more attributes, in order, between ``src`` and
            ``integrity`` (the settings a script reads from its own element,
            as ``data-`` attributes).

    Returns:
        HTML text, every attribute value escaped.  A plain classic script,
        neither ``defer`` nor ``async``: the globals it defines exist for the
        scripts that follow it, and it can read its settings from
        ``document.currentScript``, which is set for classic scripts only.
    """
    attributes = {"src": asset_path(prefix, asset)}
    if extra_attributes is not None:
        attributes.update(extra_attributes)
    if integrity:
        attributes["integrity"] = asset.integrity
    rendered = " ".join(
        f'{name}="{html.escape(value, quote=True)}"' for name, value in attributes.items()
    )
    return f"<script {rendered}></script>"


def script_tag(
    ws_url: str,
    *,
    prefix: str = DEFAULT_PREFIX,
    reconnect_attempts: int = 8,
    reconnect_base: float = 0.5,
    reconnect_max: float = 15.0,
    connect_timeout: float = 10.0,
    integrity: bool = True,
) -> str:
    """The ``<script>`` element that loads the runtime and connects it.

    Args:
        ws_url: the WebSocket endpoint: ``ws://`` or ``wss://`` absolute, or
            a path such as ``/ws``, resolved against the page's URL (``wss``
            on an ``https`` page).
        prefix: the prefix the runtime is served under (see ``install``).
        reconnect_attempts: failed connection attempts in a row before the
            runtime gives up and shows ``offline``.
        reconnect_base: the first retry delay, in seconds; each further
            attempt doubles it, with jitter.
        reconnect_max: the cap on a retry delay, in seconds.
        connect_timeout: seconds an attempt may take to reach ``init``.
        integrity: add the ``integrity`` attribute (Subresource Integrity).

    Returns:
        HTML text, every attribute escaped.  Times travel as milliseconds, in
        attributes whose names end in ``-ms``.
    """
    if isinstance(reconnect_attempts, bool) or reconnect_attempts < 0:
        raise ValueError("reconnect_attempts must be an integer >= 0")
    settings = {
        "data-url": ws_url,
        "data-reconnect-attempts": str(int(reconnect_attempts)),
        "data-reconnect-base-ms": str(_ms(reconnect_base, "reconnect_base")),
        "data-reconnect-max-ms": str(_ms(reconnect_max, "reconnect_max")),
        "data-connect-timeout-ms": str(_ms(connect_timeout, "connect_timeout")),
    }
    # Classic, not deferred (asset_script_tag): window.wsserver then exists
    # for the scripts that follow, so they can register handlers before the
    # first message arrives.
    return asset_script_tag(
        runtime_asset(), prefix=prefix, integrity=integrity, extra_attributes=settings
    )
