"""``TestClient``: an application served in memory, and its HTTP and WebSocket clients.

Nothing is faked on the server's side: the application runs under a real
``Server`` (``start_in_memory``: its ``startup``/``shutdown`` hooks, limits,
metrics, readiness) and each request or WebSocket on a real ``Connection``,
the very drive loop a socket gets.  Only the socket is replaced, by a pair
of in-memory transports (``wsserver.testing.transport``).  On the other side
are real clients: h11 in its client role for HTTP, and the protocol core's
``ClientConnection`` under ``wsserver.client``'s ``ClientWebSocket`` for
WebSockets.  So the bytes between them are real RFC 6455 and HTTP/1.1 bytes
(masked frames, compression when offered), and everything the server does
with them happens: the handshake's checks, the limits, the close codes,
the access log.

::

    async with TestClient(app) as client:
        response = await client.get("/")
        assert response.status_code == 200
        async with client.websocket_connect("/ws") as ws:
            await ws.send("hi")
            assert await ws.recv() == "hi"

The WebSocket is ``wsserver.client``'s ``ClientWebSocket`` (``send``,
``recv``, ``async for``, ``ping``, ``close``), and a refused handshake
raises the same ``InvalidStatus`` (``status``, ``headers``, ``body``) as
``wsserver.client.connect``.  See docs/testing.md.
"""

from __future__ import annotations

import asyncio
import json as json_module
import urllib.parse
from collections.abc import Generator, Mapping, Sequence
from types import TracebackType
from typing import Any, Literal

import h11

from wsserver.client import ClientWebSocket
from wsserver.client.exceptions import handshake_error
from wsserver.protocol import (
    ClientConnection,
    ClientDeflateSettings,
    HandshakeFailed,
    ProtocolSettings,
)
from wsserver.server import Headers, Server, ServerConfig
from wsserver.server.app import Application, as_app
from wsserver.server.asgi import ASGIApp, is_asgi_app
from wsserver.server.connection import Connection

from .transport import transport_pair

__all__ = ["TestClient", "TestResponse", "WebSocketConnect", "as_application"]

#: Pairs or a mapping, as the request's headers or query.
HeaderInput = Mapping[str, str] | Sequence[tuple[str, str]]

#: The address the server sees the client at, and its own: loopback, so that
#: everything that reads addresses (limits, trusted proxies) parses them.
CLIENT_ADDRESS = ("127.0.0.1", 50000)
SERVER_ADDRESS = ("127.0.0.1", 80)


def as_application(app: object, *, path: str = "/") -> Application:
    """What the server runs for ``app``, as ``wsserver run`` decides it.

    An ``App`` or any ``Application`` (a ``ComponentApp`` too) as it is; a
    ``WebSocketView`` subclass or an ``async def endpoint(websocket)``
    mounted at ``path``; an ASGI 3 application through ``ASGIApp``.

    Raises:
        TypeError: none of those.
    """
    if isinstance(app, ASGIApp):
        return app
    if is_asgi_app(app):
        return ASGIApp(app)  # type: ignore[arg-type]
    return as_app(app, path=path)


class TestResponse:
    """An HTTP response as received: status, headers, the whole body.

    Attributes:
        status_code: the status (``status`` is the same).
        reason: the reason phrase.
        headers: case-insensitive, repeats kept (``getlist``).
        content: the body, decoded from its transfer coding, not from its
            content coding (``Content-Encoding`` stays as sent).
    """

    __test__ = False  # not a test class, whatever pytest thinks of the name

    def __init__(self, status_code: int, reason: str, headers: Headers, content: bytes) -> None:
        self.status_code = status_code
        self.reason = reason
        self.headers = headers
        self.content = content

    @property
    def status(self) -> int:
        return self.status_code

    @property
    def body(self) -> bytes:
        return self.content

    @property
    def text(self) -> str:
        """The body decoded with the ``charset`` of its ``Content-Type`` (UTF-8 by default)."""
        charset = "utf-8"
        for parameter in self.headers.get("content-type", "").split(";")[1:]:
            name, _, value = parameter.strip().partition("=")
            if name.lower() == "charset" and value:
                charset = value.strip('"')
        return self.content.decode(charset, errors="replace")

    def json(self) -> Any:
        return json_module.loads(self.content)

    def __repr__(self) -> str:
        return f"<TestResponse [{self.status_code}]>"


class _HTTPExchange(asyncio.Protocol):
    """One request and its response, over one in-memory connection, with h11."""

    def __init__(self, request: list[h11.Event]) -> None:
        self._h11 = h11.Connection(h11.CLIENT)
        self._request = request
        self._transport: asyncio.Transport | None = None
        self._response: h11.Response | None = None
        self._body = bytearray()
        self.done: asyncio.Future[TestResponse] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        transport.write(b"".join(self._h11.send(event) or b"" for event in self._request))

    def data_received(self, data: bytes) -> None:
        self._h11.receive_data(data)
        self._read()

    def eof_received(self) -> bool | None:
        self._h11.receive_data(b"")
        self._read()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_exception(
                ConnectionResetError("the server closed the connection without a response")
            )

    def _read(self) -> None:
        while not self.done.done():
            try:
                event = self._h11.next_event()
            except h11.RemoteProtocolError as error:
                self.done.set_exception(error)
                break
            if event is h11.NEED_DATA or event is h11.PAUSED:
                return
            if isinstance(event, h11.Response):
                self._response = event
            elif isinstance(event, h11.Data):
                self._body += event.data
            elif isinstance(event, h11.EndOfMessage):
                response = self._response
                assert response is not None
                self.done.set_result(
                    TestResponse(
                        response.status_code,
                        response.reason.decode("latin-1"),
                        Headers(
                            [
                                (n.decode("latin-1"), v.decode("latin-1"))
                                for n, v in response.headers
                            ]
                        ),
                        bytes(self._body),
                    )
                )
            # h11.InformationalResponse (100 Continue): the final one follows.
            # (An end before the response is h11's RemoteProtocolError.)
        assert self._transport is not None
        self._transport.close()


class TestClient:
    """Serve ``app`` in memory for one test: ``async with TestClient(app) as client:``.

    Args:
        app: an ``App``, any ``Application``, a ``WebSocketView`` subclass,
            an ``async def endpoint(websocket)``, a ``ComponentApp`` or an
            ASGI 3 application (``as_application``).
        config: the server's settings (``ServerConfig()`` when omitted; its
            host, port and TLS are not used).
        base_url: the ``Host`` of requests (``http://testserver``), and a
            path prefix if it has one; ``http://`` only (no TLS in memory).
        client: the address the server sees the client at.
        path: where a lone view or endpoint is mounted.
        timeout: seconds an HTTP request, or a WebSocket's opening, may
            take before ``TimeoutError``: an application that never answers
            fails the test instead of hanging it.  ``None``: no limit.

    Attributes:
        server: the ``Server`` (its ``connections``, ``websockets``...).
    """

    __test__ = False

    def __init__(
        self,
        app: object,
        config: ServerConfig | None = None,
        *,
        base_url: str = "http://testserver",
        client: tuple[str, int] = CLIENT_ADDRESS,
        path: str = "/",
        timeout: float | None = 10.0,
    ) -> None:
        self.app = as_application(app, path=path)
        self.server = Server(self.app, config)
        parts = urllib.parse.urlsplit(base_url)
        if parts.scheme != "http" or not parts.netloc:
            # No TLS in memory: an https:// URL would promise what is not there.
            raise ValueError(f"base_url must be http://host[:port][/prefix]: {base_url!r}")
        self._host = parts.netloc
        self._prefix = parts.path.rstrip("/")
        self._client_address = client
        self._timeout = timeout
        self._started = False
        self._sockets: list[ClientWebSocket] = []

    async def __aenter__(self) -> TestClient:
        await self.server.start_in_memory()
        self._started = True
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._started = False
        # The server closes what is left open with 1001, then runs the
        # application's shutdown() hook.
        await self.server.shutdown()
        for websocket in self._sockets:
            await websocket.wait_closed()

    # -- connections ----------------------------------------------------

    def _connect(self, protocol: asyncio.BaseProtocol) -> None:
        if not self._started:
            raise RuntimeError("use the TestClient in `async with TestClient(app) as client:`")
        transport_pair(
            asyncio.get_running_loop(),
            Connection(self.server),
            protocol,
            client_address=self._client_address,
            server_address=SERVER_ADDRESS,
        )

    def _target(self, url: str, params: HeaderInput | None) -> str:
        parts = urllib.parse.urlsplit(url)
        path = self._prefix + (parts.path or "/")
        query = parts.query
        if params:
            items = params.items() if isinstance(params, Mapping) else params
            extra = urllib.parse.urlencode(list(items))
            query = f"{query}&{extra}" if query else extra
        return f"{path}?{query}" if query else path

    # -- HTTP -----------------------------------------------------------

    async def request(
        self,
        method: str,
        url: str,
        *,
        params: HeaderInput | None = None,
        headers: HeaderInput | None = None,
        content: bytes | str | None = None,
        data: Mapping[str, str] | None = None,
        json: Any = None,
    ) -> TestResponse:
        """Send one request on a connection of its own and read the whole response.

        Args:
            method: ``GET``, ``POST``...
            url: the path and query (``"/items?page=2"``).
            params: more query parameters.
            headers: more request headers.
            content: the body as it is.
            data: a form, sent ``application/x-www-form-urlencoded``.
            json: sent as JSON (``application/json``).

        Raises:
            TimeoutError: no response within the client's ``timeout``.
        """
        fields: list[tuple[str, str]] = [("Host", self._host)]
        body = b""
        if json is not None:
            body = json_module.dumps(json).encode("utf-8")
            fields.append(("Content-Type", "application/json"))
        elif data is not None:
            body = urllib.parse.urlencode(list(data.items())).encode("ascii")
            fields.append(("Content-Type", "application/x-www-form-urlencoded"))
        elif content is not None:
            body = content.encode("utf-8") if isinstance(content, str) else content
        if headers:
            fields.extend(headers.items() if isinstance(headers, Mapping) else headers)
        if (body or method.upper() in ("POST", "PUT", "PATCH")) and not any(
            name.lower() == "content-length" for name, _ in fields
        ):
            fields.append(("Content-Length", str(len(body))))
        events: list[h11.Event] = [
            h11.Request(method=method.upper(), target=self._target(url, params), headers=fields)
        ]
        if body:
            events.append(h11.Data(data=body))
        events.append(h11.EndOfMessage())
        exchange = _HTTPExchange(events)
        self._connect(exchange)
        async with asyncio.timeout(self._timeout):
            return await exchange.done

    async def get(self, url: str, **options: Any) -> TestResponse:
        return await self.request("GET", url, **options)

    async def head(self, url: str, **options: Any) -> TestResponse:
        return await self.request("HEAD", url, **options)

    async def options(self, url: str, **options: Any) -> TestResponse:
        return await self.request("OPTIONS", url, **options)

    async def post(self, url: str, **options: Any) -> TestResponse:
        return await self.request("POST", url, **options)

    async def put(self, url: str, **options: Any) -> TestResponse:
        return await self.request("PUT", url, **options)

    async def patch(self, url: str, **options: Any) -> TestResponse:
        return await self.request("PATCH", url, **options)

    async def delete(self, url: str, **options: Any) -> TestResponse:
        return await self.request("DELETE", url, **options)

    # -- WebSocket --------------------------------------------------------

    def websocket_connect(
        self,
        url: str,
        *,
        subprotocols: Sequence[str] | None = None,
        headers: HeaderInput | None = None,
        compression: Literal["deflate"] | ClientDeflateSettings | None = "deflate",
        max_size: int = 1 << 20,
        max_queue: int = 16,
        close_timeout: float = 10.0,
    ) -> WebSocketConnect:
        """Open a WebSocket to ``url``: ``async with`` it, or ``await`` it and close it yourself.

        The arguments are ``wsserver.client.connect``'s (``headers`` is its
        ``additional_headers``); there are no client heartbeats.

        Raises (when awaited or entered):
            InvalidStatus: the server refused the handshake (``status``,
                ``headers``, ``body``); other ``InvalidHandshake`` for a
                101 that breaks RFC 6455.
            TimeoutError: no answer within the client's ``timeout``.
        """
        if compression == "deflate":
            deflate: ClientDeflateSettings | None = ClientDeflateSettings()
        elif compression is None or isinstance(compression, ClientDeflateSettings):
            deflate = compression
        else:
            raise ValueError(f"unsupported compression: {compression!r}")
        items = (headers.items() if isinstance(headers, Mapping) else headers) if headers else ()
        return WebSocketConnect(
            self,
            self._target(url, None),
            subprotocols=tuple(subprotocols or ()),
            headers=tuple((str(name), str(value)) for name, value in items),
            deflate=deflate,
            settings=ProtocolSettings(max_message_size=max_size),
            max_queue=max_queue,
            close_timeout=close_timeout,
        )

    async def open_websocket(self, opening: WebSocketConnect) -> ClientWebSocket:
        """Open what ``websocket_connect`` described (it calls this)."""
        core = ClientConnection(
            self._host,
            opening.target,
            settings=opening.settings,
            subprotocols=opening.subprotocols,
            headers=opening.headers,
            deflate=opening.deflate,
        )
        websocket = ClientWebSocket(
            core,
            max_queue=opening.max_queue,
            ping_interval=None,
            ping_timeout=None,
            close_timeout=opening.close_timeout,
        )
        self._connect(websocket)
        try:
            async with asyncio.timeout(self._timeout):
                event = await websocket.wait_handshake()
        except BaseException:
            websocket.abort()
            raise
        if isinstance(event, HandshakeFailed):
            websocket.abort()
            raise handshake_error(event)
        self._sockets.append(websocket)
        return websocket


class WebSocketConnect:
    """``client.websocket_connect(...)``: ``await`` it or ``async with`` it."""

    def __init__(
        self,
        client: TestClient,
        target: str,
        *,
        subprotocols: tuple[str, ...],
        headers: tuple[tuple[str, str], ...],
        deflate: ClientDeflateSettings | None,
        settings: ProtocolSettings,
        max_queue: int,
        close_timeout: float,
    ) -> None:
        self.client = client
        self.target = target
        self.subprotocols = subprotocols
        self.headers = headers
        self.deflate = deflate
        self.settings = settings
        self.max_queue = max_queue
        self.close_timeout = close_timeout
        self._websocket: ClientWebSocket | None = None

    def __await__(self) -> Generator[object, None, ClientWebSocket]:
        return self.client.open_websocket(self).__await__()

    async def __aenter__(self) -> ClientWebSocket:
        self._websocket = await self.client.open_websocket(self)
        return self._websocket

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        assert self._websocket is not None
        await self._websocket.close()
