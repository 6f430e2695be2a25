"""``connect()``: open a client connection, following redirects, within a timeout.

Named and shaped as websockets' ``websockets.asyncio.client.connect``::

    async with connect("ws://localhost:8000/chat") as ws:
        await ws.send("hello")
        print(await ws.recv())

    ws = await connect(uri)   # without the block: close it yourself

Every limit is an argument with a safe default and its reason (docs/client.md
lists them).
"""

from __future__ import annotations

import asyncio
import logging
import ssl as ssl_module
import urllib.parse
from collections.abc import Generator, Sequence
from types import TracebackType
from typing import Literal

from wsserver.protocol import (
    ClientConnection,
    ClientDeflateSettings,
    HandshakeFailed,
    HandshakeFailure,
    Headers,
    ProtocolSettings,
)

from .connection import ClientWebSocket
from .exceptions import (
    HandshakeTimeout,
    InvalidURI,
    TooManyRedirects,
    handshake_error,
)
from .uri import WebSocketURI, parse_uri

__all__ = ["USER_AGENT", "connect"]

logger = logging.getLogger("wsserver.client")

#: The ``User-Agent`` sent unless ``user_agent_header`` says otherwise.
USER_AGENT = "wsserver-client"

#: RFC 9110 section 15.4: the statuses whose ``Location`` a client follows.
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


class _Redirect(Exception):
    def __init__(self, location: str) -> None:
        super().__init__(location)
        self.location = location


class connect:
    """Open a WebSocket connection to ``uri``: ``await`` it, or ``async with`` it.

    Args:
        uri: ``ws://`` or ``wss://`` URI.
        subprotocols: offered, in order of preference; the chosen one is
            ``ws.subprotocol``.
        additional_headers: more request headers (``Origin``,
            ``Authorization``...), as pairs or a mapping.
        user_agent_header: the ``User-Agent``; ``None`` sends none.
        compression: ``"deflate"`` (the default) offers permessage-deflate
            with ``ClientDeflateSettings()``; ``None`` offers nothing; a
            ``ClientDeflateSettings`` chooses the parameters.
        max_size: largest message received, after decompression, in bytes.
            1 MiB by default, as websockets and the server: larger than any
            chat or JSON message, small enough that a hostile server cannot
            make us hold much.  ``None`` is not accepted: set a number.
            Beyond it the connection fails with 1009.
        max_fragments: most frames a received message may take: 4,096, as
            the server, so that a storm of tiny fragments is cut off early.
        max_queue: messages received and not read yet, at most; past it we
            stop reading from the socket (TCP pushes back on the server).
            16, as websockets.
        ping_interval: seconds between heartbeat pings (20, as websockets:
            below common idle timeouts of proxies and NATs, 60 s and more);
            ``None`` for none.
        ping_timeout: seconds to wait for a heartbeat's pong before failing
            the connection with 1011 (20, as websockets); ``None`` waits
            forever.
        open_timeout: seconds for the whole opening, TCP, TLS, handshake and
            redirects (10, as websockets): a server that accepts TCP and
            never answers cannot hang the caller.  ``HandshakeTimeout``.
        close_timeout: seconds ``close()`` waits for the closing handshake
            and for the server to close TCP (10, as websockets), before
            aborting the connection.
        ssl: an ``ssl.SSLContext`` for ``wss://``; ``None`` uses
            ``ssl.create_default_context()`` (certificates and host name
            checked).  Refused with a ``ws://`` URI.
        server_hostname: the name TLS checks the certificate against; the
            URI's host by default.
        max_redirects: 3xx responses with a ``Location`` followed, at most:
            10, as websockets, so that a redirect loop ends.  A redirect
            from ``wss`` to ``ws`` is refused (``InvalidURI``).
                ``TooManyRedirects`` beyond.
        max_body_size: bytes of a refusal's body kept for ``InvalidStatus``
            (64 KiB: enough to show an error page, bounded).
    """

    def __init__(
        self,
        uri: str,
        *,
        subprotocols: Sequence[str] | None = None,
        additional_headers: Headers | dict[str, str] | None = None,
        user_agent_header: str | None = USER_AGENT,
        compression: Literal["deflate"] | ClientDeflateSettings | None = "deflate",
        max_size: int = 1 << 20,
        max_fragments: int = 4096,
        max_queue: int = 16,
        ping_interval: float | None = 20.0,
        ping_timeout: float | None = 20.0,
        open_timeout: float | None = 10.0,
        close_timeout: float = 10.0,
        ssl: ssl_module.SSLContext | None = None,
        server_hostname: str | None = None,
        max_redirects: int = 10,
        max_body_size: int = 64 * 1024,
    ) -> None:
        self._uri = parse_uri(uri)
        if ssl is not None and not self._uri.secure:
            raise InvalidURI(f"{uri!r} is a ws:// URI: an ssl context needs wss://")
        if max_queue < 1:
            raise ValueError("max_queue must be at least 1")
        if max_redirects < 0:
            raise ValueError("max_redirects must not be negative")
        headers: list[tuple[str, str]] = []
        if additional_headers is not None:
            items = (
                additional_headers.items()
                if isinstance(additional_headers, dict)
                else additional_headers
            )
            headers.extend((str(name), str(value)) for name, value in items)
        if user_agent_header is not None and not any(
            name.lower() == "user-agent" for name, _ in headers
        ):
            headers.append(("User-Agent", user_agent_header))
        self._headers: Headers = tuple(headers)
        self._subprotocols = tuple(subprotocols or ())
        if compression == "deflate":
            self._deflate: ClientDeflateSettings | None = ClientDeflateSettings()
        elif compression is None or isinstance(compression, ClientDeflateSettings):
            self._deflate = compression
        else:
            raise ValueError(f"unsupported compression: {compression!r}")
        self._settings = ProtocolSettings(
            max_message_size=max_size, max_fragments=max_fragments, max_body_size=max_body_size
        )
        self._max_queue = max_queue
        self._ping_interval = ping_interval
        self._ping_timeout = ping_timeout
        self._open_timeout = open_timeout
        self._close_timeout = close_timeout
        self._ssl = ssl
        self._server_hostname = server_hostname
        self._max_redirects = max_redirects
        self._connection: ClientWebSocket | None = None

    # -- await connect(...) / async with connect(...) ---------------------

    def __await__(self) -> Generator[object, None, ClientWebSocket]:
        return self._open().__await__()

    async def __aenter__(self) -> ClientWebSocket:
        self._connection = await self._open()
        return self._connection

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        assert self._connection is not None
        await self._connection.close()

    # -- opening ---------------------------------------------------------

    async def _open(self) -> ClientWebSocket:
        uri = self._uri
        try:
            async with asyncio.timeout(self._open_timeout):
                for _ in range(self._max_redirects + 1):
                    try:
                        return await self._attempt(uri)
                    except _Redirect as redirect:
                        uri = self._follow(uri, redirect.location)
        except TimeoutError:
            raise HandshakeTimeout(
                f"no WebSocket connection to {uri} within {self._open_timeout} s"
            ) from None
        raise TooManyRedirects(f"more than {self._max_redirects} redirects, the last to {uri}")

    def _follow(self, uri: WebSocketURI, location: str) -> WebSocketURI:
        target = parse_uri(urllib.parse.urljoin(str(uri), location))
        if uri.secure and not target.secure:
            raise InvalidURI(f"refused a redirect from {uri} to the insecure {target}")
        logger.debug("redirected from %s to %s", uri, target)
        return target

    async def _attempt(self, uri: WebSocketURI) -> ClientWebSocket:
        core = ClientConnection(
            uri.host_header,
            uri.target,
            settings=self._settings,
            subprotocols=self._subprotocols,
            headers=self._headers,
            deflate=self._deflate,
        )
        context: ssl_module.SSLContext | None = None
        if uri.secure:
            context = self._ssl if self._ssl is not None else ssl_module.create_default_context()
        loop = asyncio.get_running_loop()
        _transport, protocol = await loop.create_connection(
            lambda: ClientWebSocket(
                core,
                max_queue=self._max_queue,
                ping_interval=self._ping_interval,
                ping_timeout=self._ping_timeout,
                close_timeout=self._close_timeout,
            ),
            uri.host,
            uri.port,
            ssl=context,
            server_hostname=(self._server_hostname or uri.host) if context is not None else None,
        )
        try:
            event = await protocol.wait_handshake()
        except BaseException:
            protocol.abort()
            raise
        if isinstance(event, HandshakeFailed):
            protocol.abort()
            raise self._failure(event)
        return protocol

    @staticmethod
    def _failure(event: HandshakeFailed) -> Exception:
        if event.failure is HandshakeFailure.INVALID_STATUS:
            assert event.status is not None
            location = next((value for name, value in event.headers if name == "location"), None)
            if event.status in _REDIRECTS and location:
                return _Redirect(location)
        return handshake_error(event)
