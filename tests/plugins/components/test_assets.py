"""Tests for wsserver.plugins.components.assets: components.js, served
compressed, and checked statically: one strict IIFE, no sink turning data
into markup or code, the same lists as html.py.
"""

from __future__ import annotations

import gzip
import re

import pytest
import zstandard

from wsserver.plugins.components import ComponentApp
from wsserver.plugins.components.assets import components_asset
from wsserver.plugins.runtime.assets import asset_path

from ..._live import http_get, serving
from ._pages import Greeting

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(90)]


async def test_assets_are_served_compressed_when_accepted() -> None:
    app = ComponentApp({"/": Greeting})
    asset = components_asset()
    path = asset_path(app.prefix, asset)
    async with serving(app) as server:
        plain = await http_get(server.port, path)
        assert plain.body == asset.body and "content-encoding" not in plain.headers
        assert plain.header("vary") == "Accept-Encoding"
        assert plain.header("etag") == asset.etag
        zstd = await http_get(server.port, path, [("accept-encoding", "gzip, deflate, br, zstd")])
        assert zstd.header("content-encoding") == "zstd"
        assert zstandard.ZstdDecompressor().decompress(zstd.body) == asset.body
        assert zstd.header("etag") == f'"{asset.version}-zstd"'
        assert len(zstd.body) < len(asset.body) / 2
        gz = await http_get(server.port, path, [("accept-encoding", "gzip")])
        assert gz.header("content-encoding") == "gzip"
        assert gzip.decompress(gz.body) == asset.body
        refused = await http_get(server.port, path, [("accept-encoding", "zstd;q=0, gzip;q=0")])
        assert "content-encoding" not in refused.headers
        cached = await http_get(
            server.port,
            path,
            [("accept-encoding", "zstd"), ("if-none-match", f'"{asset.version}-zstd"')],
        )
        assert cached.status == 304 and cached.header("vary") == "Accept-Encoding"


# ---------------------------------------------------------------------------
# components.js, statically
# ---------------------------------------------------------------------------

JS = components_asset().body.decode("utf-8")


def _code_only(source: str) -> str:
    source = re.sub(r"/\*.*?\*/", "", source, flags=re.S)
    return re.sub(r"(?m)^\s*//.*$|\s//\s.*$", "", source)


async def test_components_js_is_one_strict_iife_adding_no_global() -> None:
    code = _code_only(JS).strip()
    assert code.startswith('(function () {\n  "use strict";')
    assert code.endswith("})();")
    assert re.findall(r"window\.[A-Za-z_$]+\s*=[^=]", code) == []
    assert "defineProperty(window" not in code


async def test_components_js_never_turns_data_into_markup_or_code() -> None:
    code = _code_only(JS)
    for sink in (
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "createContextualFragment",
        "DOMParser",
        ".srcdoc",
        "new Function",
        "Function(",
        "setHTMLUnsafe",
    ):
        assert sink not in code, sink
    assert not re.search(r"\beval\b", code)
    assert not re.search(r"set(Timeout|Interval)\(\s*[\"'`]", code)
    # Text goes in as text, attributes through the checked setter.
    assert "textContent" in code and "createTextNode" in code
    assert code.count(".setAttribute(") == code.count("setAttribute(")


async def test_components_js_checks_what_html_py_checks() -> None:
    from wsserver.plugins.components import html as builder

    tags = re.search(r'var FORBIDDEN_TAGS = new Set\(\s*\(\s*((?:"[^"]*"\s*\+?\s*)+)\)', JS)
    assert tags is not None
    js_tags = set("".join(re.findall(r'"([^"]*)"', tags.group(1))).split())
    assert js_tags == builder.FORBIDDEN_TAGS
    urls = re.search(r'var URL_ATTRS = new Set\(\s*\(\s*((?:"[^"]*"\s*\+?\s*)+)\)', JS)
    assert urls is not None
    assert set("".join(re.findall(r'"([^"]*)"', urls.group(1))).split()) == builder.URL_ATTRIBUTES
