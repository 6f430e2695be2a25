"""picows (Cython, frame-level WSListener) echo + broadcast server.

picows has no permessage-deflate: ``--deflate`` is refused, and the
compression scenarios are reported as not applicable for it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import cast

from picows import WSCloseCode, WSFrame, WSListener, WSMsgType, WSTransport, ws_create_server

from bench._listener import ListenerBase
from bench.servers._common import MAX_MESSAGE_SIZE, Options, parse_broadcast, parse_options, run
from bench.servers._common import stop_event as make_stop_event

CONNECTED: set[WSTransport] = set()

_TEXT = WSMsgType.TEXT
_BINARY = WSMsgType.BINARY
_CONTINUATION = WSMsgType.CONTINUATION
_CLOSE = WSMsgType.CLOSE


class EchoListener(ListenerBase):
    """Echo messages; picows hands over frames, so fragments are joined here."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._type = _BINARY

    def on_ws_connected(self, transport: WSTransport) -> None:
        CONNECTED.add(transport)

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        CONNECTED.discard(transport)

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        kind = frame.msg_type
        if kind is _CONTINUATION:
            self._parts.append(frame.get_payload_as_bytes())
            if frame.fin:
                payload = b"".join(self._parts)
                self._parts = []
                self._message(transport, self._type, payload)
        elif kind is _TEXT or kind is _BINARY:
            if frame.fin:
                if kind is _BINARY:
                    # Zero copy: the frame's buffer is valid during this call.
                    transport.send(kind, frame.get_payload_as_memoryview())
                else:
                    self._message(transport, kind, frame.get_payload_as_bytes())
            else:
                self._type = kind
                self._parts = [frame.get_payload_as_bytes()]
        elif kind is _CLOSE:
            transport.send_close(frame.get_close_code(), frame.get_close_message())
            transport.disconnect()

    def _message(self, transport: WSTransport, kind: WSMsgType, payload: bytes) -> None:
        if kind is _TEXT:
            try:
                text = payload.decode("utf-8")
            except UnicodeDecodeError:
                transport.send_close(WSCloseCode.INVALID_TEXT)
                transport.disconnect()
                return
            command = parse_broadcast(text)
            if command is not None:
                count, size = command
                data = b"x" * size
                for _ in range(count):
                    for peer in CONNECTED:
                        peer.send(_TEXT, data)
                return
        transport.send(kind, payload)


async def main(options: Options) -> None:
    if options.deflate:
        raise SystemExit("picows has no permessage-deflate")
    stop = make_stop_event()
    server = await ws_create_server(
        cast("Callable[[object], WSListener]", lambda _request: EchoListener()),
        "127.0.0.1",
        options.port,
        max_frame_size=MAX_MESSAGE_SIZE,
    )
    try:
        await stop.wait()
    finally:
        server.close()
        for transport in list(CONNECTED):
            transport.send_close(WSCloseCode.GOING_AWAY)
            transport.disconnect()
        await server.wait_closed()


if __name__ == "__main__":
    sys.exit(run(main, parse_options("picows", sys.argv[1:])))
