"""The browser side of the channel manager as an HTTP asset: ``channels.js``.

Served like the runtime, at a versioned, immutable URL
(``<prefix>/channels.<version>.js``; see ``runtime/assets.py``), by
``ChannelManager.install``; a page loads it after the runtime with
``channels_script_tag()``.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from ..runtime.assets import DEFAULT_PREFIX, RuntimeAsset, asset_script_tag

__all__ = ["channels_asset", "channels_script_tag"]


@cache
def channels_asset() -> RuntimeAsset:
    """The packaged ``static/channels.js``, served like the runtime (versioned)."""
    body = resources.files(__package__).joinpath("static", "channels.js").read_bytes()
    return RuntimeAsset.from_bytes(body, name="channels")


def channels_script_tag(*, prefix: str = DEFAULT_PREFIX, integrity: bool = True) -> str:
    """The ``<script>`` element loading ``channels.js``; put it after the runtime's."""
    return asset_script_tag(channels_asset(), prefix=prefix, integrity=integrity)
