"""Tests for wsserver.plugins.runtime.assets: the versioned runtime file.

Also its compression (precompressed once; zstd or gzip chosen from
``Accept-Encoding``, an entity tag per encoding), and static checks of
``static/runtime.js`` itself (strict mode, one global,
no eval but the one for execute_js); its behaviour is tested in Chromium by
test_session.py and test_js.py.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import html.parser
import re
from importlib import resources

import pytest
import zstandard

from wsserver.plugins.runtime.assets import (
    CACHE_CONTROL,
    DEFAULT_PREFIX,
    RuntimeAsset,
    asset_path,
    asset_route,
    asset_script_tag,
    install,
    install_asset,
    runtime_asset,
    runtime_route,
    script_tag,
)
from wsserver.server import App, Route

from ..._live import http_get, serving

SOURCE = resources.files("wsserver.plugins.runtime").joinpath("static", "runtime.js").read_bytes()


def test_the_runtime_ships_as_package_data() -> None:
    # pyproject's package-data globs include "**/*.js": the file must be
    # inside the package, where importlib.resources finds it.
    assert runtime_asset().body == SOURCE
    assert len(SOURCE) > 1000


def test_version_is_the_content_hash() -> None:
    asset = runtime_asset()
    assert asset.version == hashlib.sha256(SOURCE).hexdigest()[:16]
    digest = base64.b64encode(hashlib.sha384(SOURCE).digest()).decode()
    assert asset.integrity == f"sha384-{digest}"
    assert asset.filename == f"runtime.{asset.version}.js"
    assert asset.etag == f'"{asset.version}"'


def test_another_content_gives_another_version() -> None:
    assert RuntimeAsset.from_bytes(b"a").version != RuntimeAsset.from_bytes(b"b").version


def test_asset_path() -> None:
    version = runtime_asset().version
    assert asset_path() == f"/_wsserver/runtime.{version}.js"
    assert asset_path("/static/x") == f"/static/x/runtime.{version}.js"
    assert asset_path("/") == f"/runtime.{version}.js"


@pytest.mark.parametrize("prefix", ["", "static", "/static/"])
def test_bad_prefixes_are_refused(prefix: str) -> None:
    with pytest.raises(ValueError, match="prefix"):
        asset_path(prefix)


def test_install_adds_one_route_and_returns_its_path() -> None:
    app = App()
    path = install(app)
    assert path == asset_path()
    assert install(app) == path  # idempotent
    routes = [r for r in app.router.routes if isinstance(r, Route) and r.path == path]
    assert len(routes) == 1
    assert install(app, prefix="/other") == asset_path("/other")


async def test_the_runtime_is_served_with_long_lived_caching() -> None:
    app = App()
    path = install(app)
    async with serving(app) as server:
        result = await http_get(server.port, path)
        assert result.status == 200
        assert result.body == SOURCE
        assert result.header("cache-control") == CACHE_CONTROL
        assert CACHE_CONTROL == "public, max-age=31536000, immutable"
        assert result.header("content-type") == "text/javascript; charset=utf-8"
        assert result.header("etag") == runtime_asset().etag
        assert result.header("x-content-type-options") == "nosniff"
        assert int(result.header("content-length")) == len(SOURCE)


async def test_head_and_conditional_requests() -> None:
    app = App()
    path = install(app)
    etag = runtime_asset().etag
    async with serving(app) as server:
        head = await http_get(server.port, path, method="HEAD")
        assert head.status == 200 and head.body == b""
        for header in (etag, f"W/{etag}", f'"other", {etag}', "*"):
            result = await http_get(server.port, path, [("if-none-match", header)])
            assert result.status == 304, header
            assert result.body == b""
            assert result.header("cache-control") == CACHE_CONTROL
        result = await http_get(server.port, path, [("if-none-match", '"other"')])
        assert result.status == 200


async def test_other_versions_are_not_served() -> None:
    app = App()
    install(app)
    async with serving(app) as server:
        result = await http_get(server.port, f"{DEFAULT_PREFIX}/runtime.0000000000000000.js")
        assert result.status == 404


def test_runtime_route_stands_alone() -> None:
    route = runtime_route("/assets")
    assert route.path == asset_path("/assets")
    assert set(route.methods) == {"GET", "HEAD"}


class _Parser(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def _parse(text: str) -> dict[str, str | None]:
    parser = _Parser()
    parser.feed(text)
    ((tag, attributes),) = parser.tags
    assert tag == "script"
    return attributes


def test_script_tag_carries_the_url_and_settings_in_milliseconds() -> None:
    text = script_tag(
        "/ws",
        reconnect_attempts=3,
        reconnect_base=0.25,
        reconnect_max=4,
        connect_timeout=2.5,
    )
    assert text.endswith("></script>")
    assert _parse(text) == {
        "src": asset_path(),
        "data-url": "/ws",
        "data-reconnect-attempts": "3",
        "data-reconnect-base-ms": "250",
        "data-reconnect-max-ms": "4000",
        "data-connect-timeout-ms": "2500",
        "integrity": runtime_asset().integrity,
    }


def test_script_tag_defaults_prefix_and_integrity() -> None:
    attributes = _parse(script_tag("wss://example.com/ws", prefix="/p", integrity=False))
    assert attributes["src"] == asset_path("/p")
    assert attributes["data-url"] == "wss://example.com/ws"
    assert "integrity" not in attributes
    assert attributes["data-reconnect-attempts"] == "8"
    assert attributes["data-reconnect-base-ms"] == "500"
    assert attributes["data-reconnect-max-ms"] == "15000"
    assert attributes["data-connect-timeout-ms"] == "10000"


def test_script_tag_escapes_the_url() -> None:
    url = '/ws?a=1&b="><script>alert(1)</script>'
    text = script_tag(url)
    assert "<script>alert" not in text
    assert _parse(text)["data-url"] == url


def test_asset_script_tag_renders_any_asset() -> None:
    asset = RuntimeAsset.from_bytes(b"window.x = 1;", name="extra", compress=False)
    text = asset_script_tag(asset, prefix="/p", extra_attributes={"data-a": "1", "data-b": '"><b>'})
    assert text == (
        f'<script src="/p/extra.{asset.version}.js" data-a="1" data-b="&quot;&gt;&lt;b&gt;"'
        f' integrity="{asset.integrity}"></script>'
    )
    assert _parse(text)["data-b"] == '"><b>'
    # The defaults: the default prefix, integrity, no other attribute.
    assert _parse(asset_script_tag(asset)) == {
        "src": asset_path(DEFAULT_PREFIX, asset),
        "integrity": asset.integrity,
    }
    assert _parse(asset_script_tag(asset, integrity=False)) == {"src": asset_path(asset=asset)}


def test_script_tag_is_the_runtimes_asset_script_tag() -> None:
    settings = {
        "data-url": "/ws",
        "data-reconnect-attempts": "8",
        "data-reconnect-base-ms": "500",
        "data-reconnect-max-ms": "15000",
        "data-connect-timeout-ms": "10000",
    }
    expected = asset_script_tag(runtime_asset(), prefix="/p", extra_attributes=settings)
    assert script_tag("/ws", prefix="/p") == expected


@pytest.mark.parametrize(
    "options",
    [
        {"reconnect_attempts": -1},
        {"reconnect_attempts": True},
        {"reconnect_base": -0.1},
        {"reconnect_max": float("inf")},
        {"connect_timeout": float("nan")},
    ],
)
def test_script_tag_refuses_bad_settings(options: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        script_tag("/ws", **options)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------
# The JavaScript source, statically
# ---------------------------------------------------------------------------

JS = SOURCE.decode("utf-8")


def _code_only(source: str) -> str:
    """The source without comments (good enough for this file's style)."""
    source = re.sub(r"/\*.*?\*/", "", source, flags=re.S)
    return re.sub(r"(?m)^\s*//.*$|\s//\s.*$", "", source)


def test_runtime_is_one_strict_iife() -> None:
    code = _code_only(JS).strip()
    assert code.startswith('(function () {\n  "use strict";')
    assert code.endswith("})();")


def test_runtime_evaluates_only_through_one_indirect_eval() -> None:
    code = _code_only(JS)
    # The one reference to eval makes it indirect; no direct eval, no
    # Function constructor, no string timers.
    assert re.findall(r"\beval\b", code) == ["eval"]
    assert "var globalEval = eval;" in code
    assert "new Function" not in code and "Function(" not in code
    assert not re.search(r"set(Timeout|Interval)\(\s*[\"'`]", code)
    assert code.count("globalEval(") == 2  # the code, and get_js_result's expression


def test_runtime_defines_only_window_wsserver() -> None:
    code = _code_only(JS)
    assert re.findall(r"window\.[A-Za-z_$]+\s*=[^=]", code) == []
    assert 'Object.defineProperty(window, "wsserver"' in code


def test_runtime_timeouts_are_milliseconds_on_the_wire() -> None:
    code = _code_only(JS)
    assert "message.timeout_ms" in code
    assert "ping_interval_ms" in code and "ping_timeout_ms" in code
    assert "message.timeout " not in code and "message.timeout)" not in code


# ---------------------------------------------------------------------------
# Compression: precompressed once, chosen per request
# ---------------------------------------------------------------------------


def test_assets_are_precompressed_once() -> None:
    asset = runtime_asset()
    assert set(asset.encoded) == {"zstd", "gzip"}
    assert zstandard.ZstdDecompressor().decompress(asset.encoded["zstd"]) == SOURCE
    assert gzip.decompress(asset.encoded["gzip"]) == SOURCE
    assert all(len(body) < len(SOURCE) / 2 for body in asset.encoded.values())
    assert runtime_asset() is asset  # cached: compressed at the first load only
    # The same bytes each time (gzip's mtime is 0), so the entity tags hold
    # across restarts.
    assert RuntimeAsset.from_bytes(SOURCE).encoded == asset.encoded
    assert asset.etag_for(None) == asset.etag
    assert asset.etag_for("zstd") == f'"{asset.version}-zstd"'


def test_tiny_or_uncompressed_assets_have_no_encodings() -> None:
    assert RuntimeAsset.from_bytes(b"x").encoded == {}  # compression would grow it
    assert RuntimeAsset.from_bytes(SOURCE, compress=False).encoded == {}


def test_named_assets() -> None:
    asset = RuntimeAsset.from_bytes(b"console.log(1)", name="components")
    assert asset.filename == f"components.{asset.version}.js"
    assert asset_path("/p", asset) == f"/p/{asset.filename}"
    for bad in ("", "Components", "a/b", "a.b"):
        with pytest.raises(ValueError, match="asset name"):
            RuntimeAsset.from_bytes(b"x", name=bad)


async def test_the_runtime_is_served_compressed_when_accepted() -> None:
    app = App()
    path = install(app)
    asset = runtime_asset()
    async with serving(app) as server:
        for accept, coding in (("gzip, deflate, br, zstd", "zstd"), ("gzip", "gzip")):
            result = await http_get(server.port, path, [("accept-encoding", accept)])
            assert result.status == 200
            assert result.header("content-encoding") == coding
            assert result.body == asset.encoded[coding]
            assert result.header("etag") == asset.etag_for(coding)
            assert result.header("vary") == "Accept-Encoding"
            assert result.header("content-type") == "text/javascript; charset=utf-8"
            assert result.header("cache-control") == CACHE_CONTROL
            assert int(result.header("content-length")) == len(asset.encoded[coding])
        plain = await http_get(server.port, path)
        assert "content-encoding" not in plain.headers
        assert plain.header("vary") == "Accept-Encoding"
        # Each encoding is its own representation, with its own entity tag.
        zstd_etag = [("accept-encoding", "zstd"), ("if-none-match", asset.etag_for("zstd"))]
        assert (await http_get(server.port, path, zstd_etag)).status == 304
        other = [("accept-encoding", "gzip"), ("if-none-match", asset.etag_for("zstd"))]
        changed = await http_get(server.port, path, other)
        assert changed.status == 200 and changed.header("content-encoding") == "gzip"


async def test_any_asset_can_be_installed() -> None:
    app = App()
    asset = RuntimeAsset.from_bytes(b"/* x */ " * 100, name="extra")
    path = install_asset(app, asset, prefix="/static")
    assert install_asset(app, asset, prefix="/static") == path  # idempotent
    assert asset_route(asset, "/static").path == path
    async with serving(app) as server:
        result = await http_get(server.port, path, [("accept-encoding", "gzip")])
        assert gzip.decompress(result.body) == asset.body
