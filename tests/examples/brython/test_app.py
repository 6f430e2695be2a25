"""examples/brython/app.py: the pages, Brython's scripts and the three endpoints."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from examples.brython.app import STATIC, brython_directory

from ._serving import serving

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_pages_and_brython_are_served() -> None:
    async with serving() as server, httpx.AsyncClient() as client:
        base = f"http://127.0.0.1:{server.port}"
        index = await client.get(base + "/")
        assert index.status_code == 200
        for page in ("chat", "ticker", "reliable"):
            assert f'href="/{page}.html"' in index.text
            html = (await client.get(f"{base}/{page}.html")).text
            assert '<script src="/brython/brython.js"></script>' in html
            (script,) = [line for line in html.splitlines() if 'type="text/python"' in line]
            name = script.split('src="/')[1].split('"')[0]
            python = await client.get(f"{base}/{name}")
            assert python.status_code == 200
            assert "from browser.websocket import WebSocket" in python.text
        for name in ("brython.js", "brython_stdlib.js"):
            served = await client.get(f"{base}/brython/{name}")
            assert served.status_code == 200
            assert served.content == (brython_directory() / name).read_bytes()


async def test_a_missing_brython_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr("importlib.resources.files", lambda package: tmp_path)
    with pytest.raises(RuntimeError, match=r"brython\.js is not in"):
        brython_directory()

    def missing(package: str) -> Path:
        raise ModuleNotFoundError(package)

    monkeypatch.setattr("importlib.resources.files", missing)
    with pytest.raises(RuntimeError, match="pip install brython"):
        brython_directory()
    assert (STATIC / "index.html").is_file()
