"""picows' ``WSListener`` as a base class that type-checks either way.

picows ships type information, but ``scripts/test`` does not install it (it
is in the ``bench`` extra), and mypy then sees ``WSListener`` as ``Any``,
which strict mode refuses as a base class.  mypy gets this small stand-in
with the callbacks the benchmarks override; at run time it is picows' class.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__all__ = ["ListenerBase"]

if TYPE_CHECKING:
    from picows import WSFrame, WSTransport

    class ListenerBase:
        def on_ws_connected(self, transport: WSTransport) -> None: ...
        def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None: ...
        def on_ws_disconnected(self, transport: WSTransport) -> None: ...

else:
    from picows import WSListener as ListenerBase
