"""The browser runtime and the message layer shared by browser-facing plugins.

- ``messages``: the envelope ``{"p": plugin, "k": kind, ...fields}``, its
  encoding, size limits and the handler registry;
- ``session``: ``Session``, one browser connection: the receive loop,
  dispatch, heartbeat answers, sending;
- ``view``: ``RuntimeView``, the WebSocket endpoint running a session with
  ``on_session_start`` / ``on_session_end`` hooks;
- ``assets``: the JavaScript file at a versioned, immutable URL, and
  ``script_tag`` (``asset_script_tag`` for any plugin's script);
- ``replies``: ``PendingReplies``, requests waiting for their answers by id
  (timeouts, cancellation, the end of the connection);
- ``js``: the JS execution futures (``execute_js``, ``get_js_result``;
  also importable from ``wsserver.plugins.js``).

See ``docs/plugins/js.md``.
"""

from __future__ import annotations

from .assets import DEFAULT_PREFIX, RuntimeAsset, asset_path, install, runtime_asset, script_tag
from .messages import (
    Envelope,
    Handler,
    HandlerRegistry,
    MalformedMessage,
    MessageTooLarge,
    decode,
    encode,
)
from .session import Session, SessionClosed
from .view import RuntimeView

__all__ = [
    "DEFAULT_PREFIX",
    "Envelope",
    "Handler",
    "HandlerRegistry",
    "MalformedMessage",
    "MessageTooLarge",
    "RuntimeAsset",
    "RuntimeView",
    "Session",
    "SessionClosed",
    "asset_path",
    "decode",
    "encode",
    "install",
    "runtime_asset",
    "script_tag",
]
