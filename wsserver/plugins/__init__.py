"""Plugins: ordinary applications of the server's public API.

- ``wsserver.plugins.runtime``: the browser runtime (one JavaScript file)
  and the message layer the browser-facing plugins share;
- ``wsserver.plugins.js``: JS execution futures (``execute_js``,
  ``get_js_result``);
- ``wsserver.plugins.components``: the component view: server-side
  components, keyed virtual-DOM patches, events, navigation and resume;
- ``wsserver.plugins.channels``: the channel manager: channels, users,
  topics, broadcast and send-and-wait, in one process or over Redis.

Plugins import only the names ``wsserver.server`` (or ``wsserver``) exports
and ``wsserver.protocol.codes``; ``tests/test_layering.py`` keeps them from
importing the command line.
"""

from __future__ import annotations

__all__: list[str] = []
