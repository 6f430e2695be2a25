"""Tests for wsserver.plugins.components.page: the names it held before it
was split still import, from there and from the package."""

from __future__ import annotations

import wsserver.plugins.components as package
from wsserver.plugins.components import app, assets, connection, page, settings, view


def test_the_old_module_keeps_its_names() -> None:
    assert sorted(page.__all__) == sorted(
        [
            "DEFAULT_CSP",
            "DEFAULT_WS_PATH",
            "PLUGIN",
            "ComponentApp",
            "PageConnection",
            "PageView",
            "components_asset",
            "components_script_tag",
        ]
    )
    assert page.ComponentApp is app.ComponentApp
    assert page.PageConnection is connection.PageConnection
    assert page.PLUGIN == connection.PLUGIN == "cv"
    assert page.PageView is view.PageView
    assert page.DEFAULT_CSP is settings.DEFAULT_CSP
    assert page.DEFAULT_WS_PATH is settings.DEFAULT_WS_PATH
    assert page.components_asset is assets.components_asset
    assert page.components_script_tag is assets.components_script_tag


def test_the_package_exports_what_it_did_and_the_settings() -> None:
    added = {
        "DocumentEvent",
        "DocumentServer",
        "MiB",
        "Select",
        "SharedDocument",
        "Table",
        "UploadEvent",
        "UploadSpec",
        "UploadedFile",
    }
    assert added <= set(package.__all__)
    assert [name for name in package.__all__ if name not in added] == [
        "Component",
        "ComponentApp",
        "DocElement",
        "Document",
        "Element",
        "Event",
        "EventSpec",
        "InMemoryStore",
        "Insert",
        "Move",
        "PageConnection",
        "PageRequest",
        "PageSettings",
        "PageSpec",
        "Patch",
        "RedisStore",
        "Remove",
        "Replace",
        "SessionStore",
        "SetEvents",
        "SetProps",
        "SetStyle",
        "SetText",
        "SnapshotCodec",
        "Snapshots",
        "State",
        "StoreUnavailable",
        "VNode",
        "apply_patches",
        "diff",
        "h",
        "render_html",
        "render_tree",
        "safe_url",
    ]
    assert package.ComponentApp is app.ComponentApp
    assert package.PageConnection is connection.PageConnection
    assert package.PageSettings is settings.PageSettings
