"""The component view: server-side components in a live browser page.

- ``component``: ``Component`` and ``State``, rendering, snapshots of state;
- ``html``: the element builder ``h``, attribute/URL safety, server-side
  rendering;
- ``vdom`` and ``patches``: the virtual DOM, the keyed diff, the patches
  and their JSON form;
- ``events``: event specs, value getters, calling handlers;
- ``document``: an imperative DOM in domsync's style;
- ``docserver`` and ``widgets``: a domsync-style server (documents per
  client or shared, edited from Python) and its table and select helpers;
- ``navigation``: pages, routes, history;
- ``store``: session stores and signed, compressed snapshots;
- ``settings``: ``PageSettings``, every option of an app, with its default;
- ``app``: ``ComponentApp``, the pages over HTTP (server-side rendering);
- ``template``: the HTML document a page is served in;
- ``assets``: ``components.js`` and its ``<script>`` tag;
- ``view`` and ``connection``: the pages' WebSocket endpoint, and one page
  attached over one connection (``PageConnection``);
- ``jobs``: a connection's jobs, run one at a time, in order;
- ``uploads``: file uploads over the WebSocket, with progress;
- ``page``: the names it held before the split, for old imports.

See ``docs/plugins/components.md``.
"""

from __future__ import annotations

from .app import ComponentApp
from .component import Component, State, render_tree
from .connection import PageConnection
from .docserver import DocumentServer, SharedDocument
from .document import DocElement, Document
from .events import DocumentEvent, Event, EventSpec
from .html import Element, h, render_html, safe_url
from .navigation import PageRequest, PageSpec
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
from .redis_store import RedisStore
from .settings import PageSettings
from .store import InMemoryStore, SessionStore, SnapshotCodec, Snapshots, StoreUnavailable
from .uploads import MiB, UploadedFile, UploadEvent, UploadSpec
from .vdom import VNode, diff
from .widgets import Select, Table

__all__ = [
    "Component",
    "ComponentApp",
    "DocElement",
    "Document",
    "DocumentEvent",
    "DocumentServer",
    "Element",
    "Event",
    "EventSpec",
    "InMemoryStore",
    "Insert",
    "MiB",
    "Move",
    "PageConnection",
    "PageRequest",
    "PageSettings",
    "PageSpec",
    "Patch",
    "RedisStore",
    "Remove",
    "Replace",
    "Select",
    "SessionStore",
    "SetEvents",
    "SetProps",
    "SetStyle",
    "SetText",
    "SharedDocument",
    "SnapshotCodec",
    "Snapshots",
    "State",
    "StoreUnavailable",
    "Table",
    "UploadEvent",
    "UploadSpec",
    "UploadedFile",
    "VNode",
    "apply_patches",
    "diff",
    "h",
    "render_html",
    "render_tree",
    "safe_url",
]
