"""The component view: server-side components in a live browser page.

- ``component``: ``Component`` and ``State``, rendering, snapshots of state;
- ``html``: the element builder ``h``, attribute/URL safety, server-side
  rendering;
- ``vdom`` and ``patches``: the virtual DOM, the keyed diff, the patches
  and their JSON form;
- ``events``: event specs, value getters, calling handlers;
- ``document``: an imperative DOM in domsync's style;
- ``navigation``: pages, routes, history;
- ``store``: session stores and signed, compressed snapshots;
- ``page``: ``ComponentApp``, the pages' HTTP and WebSocket side.

See ``docs/plugins/components.md``.
"""

from __future__ import annotations

from .component import Component, State, render_tree
from .document import DocElement, Document
from .events import Event, EventSpec
from .html import Element, h, render_html, safe_url
from .navigation import PageRequest, PageSpec
from .page import ComponentApp, PageConnection
from .patches import (
    Insert,
    Move,
    Patch,
    Remove,
    Replace,
    SetEvents,
    SetProps,
    SetStyle,
    SetText,
    apply_patches,
)
from .store import InMemoryStore, SessionStore, SnapshotCodec, Snapshots
from .vdom import VNode, diff

__all__ = [
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
    "PageSpec",
    "Patch",
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
    "VNode",
    "apply_patches",
    "diff",
    "h",
    "render_html",
    "render_tree",
    "safe_url",
]
