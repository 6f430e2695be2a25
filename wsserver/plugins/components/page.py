"""``wsserver.plugins.components.page``: an import path of the public names, kept working.

- ``ComponentApp``: ``app.py``;
- ``PageConnection``, ``PLUGIN``: ``connection.py``;
- ``PageView``: ``view.py``;
- ``DEFAULT_CSP``, ``DEFAULT_WS_PATH`` (and ``PageSettings``): ``settings.py``;
- ``components_asset``, ``components_script_tag``: ``assets.py``.
"""

from __future__ import annotations

from .app import ComponentApp
from .assets import components_asset, components_script_tag
from .connection import PLUGIN, PageConnection
from .settings import DEFAULT_CSP, DEFAULT_WS_PATH
from .view import PageView

__all__ = [
    "DEFAULT_CSP",
    "DEFAULT_WS_PATH",
    "PLUGIN",
    "ComponentApp",
    "PageConnection",
    "PageView",
    "components_asset",
    "components_script_tag",
]
