"""Plugins: ordinary applications of the server's public API.

- ``wsserver.plugins.runtime``: the browser runtime (one JavaScript file)
  and the message layer the browser-facing plugins share;
- ``wsserver.plugins.js``: JS execution futures (``execute_js``,
  ``get_js_result``).

Plugins import only the names ``wsserver.server`` (or ``wsserver``) exports
and ``wsserver.protocol.codes``; ``tests/test_layering.py`` keeps them from
importing the command line.
"""

from __future__ import annotations

__all__: list[str] = []
