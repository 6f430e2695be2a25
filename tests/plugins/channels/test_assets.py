"""Tests for wsserver.plugins.channels.assets: channels.js, versioned, and its tag."""

from __future__ import annotations

import pytest

from wsserver.plugins.channels import ChannelManager, channels_asset, channels_script_tag
from wsserver.plugins.runtime.assets import asset_path, asset_script_tag

from ..._live import http_get
from ._helpers import serve_manager

pytestmark = pytest.mark.timeout(30)


async def test_install_serves_channels_js_versioned() -> None:
    manager = ChannelManager()
    async with serve_manager(manager) as server:
        asset = channels_asset()
        path = asset_path(asset=asset)
        assert path == f"/_wsserver/channels.{asset.version}.js"
        response = await http_get(server.port, path)
        assert response.status == 200
        assert response.body == asset.body
        assert response.header("cache-control") == "public, max-age=31536000, immutable"
        assert response.header("content-type").startswith("text/javascript")
        tag = channels_script_tag()
        assert f'src="{path}"' in tag and f'integrity="{asset.integrity}"' in tag
        assert "integrity" not in channels_script_tag(integrity=False)


def test_the_tag_is_the_runtimes_asset_script_tag() -> None:
    asset = channels_asset()
    assert channels_script_tag() == asset_script_tag(asset)
    assert channels_script_tag(prefix="/p", integrity=False) == (
        f'<script src="/p/channels.{asset.version}.js"></script>'
    )
