"""JS execution futures: ``execute_js`` and ``get_js_result``.

The code lives in ``wsserver.plugins.runtime.js``, beside the runtime it
drives; this module keeps the public names importable from here.  See
``docs/plugins/js.md``.
"""

from __future__ import annotations

from .runtime.js import (
    PLUGIN,
    JavascriptExecutionError,
    JavascriptExecutionTimedOut,
    JSBridge,
    execute_js,
    get_js_result,
)

__all__ = [
    "PLUGIN",
    "JSBridge",
    "JavascriptExecutionError",
    "JavascriptExecutionTimedOut",
    "execute_js",
    "get_js_result",
]
