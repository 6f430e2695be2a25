"""WebSocket extensions (RFC 6455 section 9).

The only extension the server negotiates is permessage-deflate (RFC 7692).
"""

from __future__ import annotations

from .permessage_deflate import DeflateSettings, PerMessageDeflate, negotiate

__all__ = ["DeflateSettings", "PerMessageDeflate", "negotiate"]
