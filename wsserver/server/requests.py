"""A plain HTTP request, as handed to ``async def handler(request)``.

The server has already read the whole body (up to its limit) when it builds a
``Request``, so ``body``, ``text()`` and ``json()`` are plain synchronous
accessors, not coroutines.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from .datastructures import URL, Address, Headers, QueryParams, State, parse_cookies

if TYPE_CHECKING:
    from wsserver.protocol.events import Headers as HeaderPairs
    from wsserver.protocol.events import HTTPRequest

    from .uploads import Upload

__all__ = ["Request"]


class Request:
    """One HTTP request with its whole body.

    Attributes:
        method: the method, as sent (methods are case-sensitive).
        url: the absolute request URL.
        headers: the request headers.
        query_params: the parsed query string.
        path_params: parameters the router extracted from the path (``int``
            for ``{name:int}``); the server may fill it after construction.
        client: the peer's address, if known.
        server: the address the request arrived on (host, port), if known.
        http_version: ``1.0`` or ``1.1``.
        body: the whole request body (empty when it is streamed: ``upload``).
        state: free per-request storage for the application and hooks.
        upload: for an application that streams request bodies
            (``streams_request_bodies``, an ASGI application), the body as
            it arrives and whether the client is still there; ``None``
            otherwise.

    Example:
        >>> r = Request("GET", "/rooms/1?x=2", [("host", "example.com")])
        >>> str(r.url), r.query_params["x"]
        ('http://example.com/rooms/1?x=2', '2')
    """

    __slots__ = (
        "_cookies",
        "body",
        "client",
        "headers",
        "http_version",
        "method",
        "path_params",
        "query_params",
        "root_path",
        "server",
        "state",
        "upload",
        "url",
    )

    def __init__(
        self,
        method: str,
        target: str,
        headers: HeaderPairs | list[tuple[str, str]] | Headers,
        body: bytes = b"",
        scheme: str = "http",
        client: Address | None = None,
        path_params: dict[str, Any] | None = None,
        *,
        server_host: str | None = None,
        root_path: str = "",
        server: Address | None = None,
        http_version: str = "1.1",
        upload: Upload | None = None,
    ) -> None:
        """Build a request from what the protocol core parsed.

        Everything that can be malformed is parsed here, so that a bad
        request fails once, at construction, with ``ValueError``.

        Args:
            method: the request method.
            target: the request-target.
            headers: the header pairs (names lowercased), or ``Headers``.
            body: the whole body.
            scheme: ``http`` or ``https`` for the connection.
            client: the peer's address.
            path_params: parameters from routing.
            server_host: host to use when the request has no ``Host``
                (see ``URL.from_target``).
            root_path: the prefix a proxy serves the application under
                (``ServerConfig.root_path``); ``url`` does not include it.
            server: the local address the request arrived on.
            http_version: the request's HTTP version.
            upload: see the class docstring.

        Raises:
            ValueError: malformed target or ``Host``, several ``Host``
                fields, or too many query parameters.  Answer 400.
        """
        self.method = method
        self.headers = headers if isinstance(headers, Headers) else Headers(headers)
        hosts = self.headers.getlist("host")
        if len(hosts) > 1:
            # RFC 9112 section 3.2: several Host fields make the request
            # invalid; choosing one would let a proxy and us disagree.
            raise ValueError("more than one Host header")
        self.url = URL.from_target(
            target, scheme, hosts[0] if hosts else None, server_host=server_host
        )
        self.query_params = QueryParams(self.url.query)
        self.path_params: dict[str, Any] = dict(path_params or {})
        self.client = client
        self.root_path = root_path
        self.server = server
        self.http_version = http_version
        self.body = body
        self.upload = upload
        self.state = State()
        self._cookies: dict[str, str] | None = None

    @classmethod
    def from_event(
        cls,
        event: HTTPRequest,
        *,
        scheme: str = "http",
        client: Address | None = None,
        path_params: dict[str, Any] | None = None,
        server_host: str | None = None,
    ) -> Request:
        """Build a request from the protocol core's ``HTTPRequest`` event.

        Raises:
            ValueError: as the constructor.
        """
        return cls(
            event.method,
            event.target,
            event.headers,
            event.body,
            scheme,
            client,
            path_params,
            server_host=server_host,
            http_version=event.http_version,
        )

    @property
    def cookies(self) -> dict[str, str]:
        """The request cookies (parsed on first use, leniently; never raises)."""
        if self._cookies is None:
            self._cookies = parse_cookies(self.headers.getlist("cookie"))
        return self._cookies

    def text(self) -> str:
        """Decode the body with the ``Content-Type`` charset (UTF-8 if none).

        Raises:
            UnicodeDecodeError: the body is not valid in that charset.
            LookupError: the charset is unknown to Python.
        """
        return self.body.decode(self._charset())

    def json(self) -> Any:
        """Parse the body as JSON.

        Returns:
            The decoded value; its type depends on the client, so check it.

        Raises:
            ValueError: the body is not valid JSON (``json.JSONDecodeError``),
                not valid UTF-8, or nested too deeply to parse.
        """
        try:
            return json.loads(self.body)
        except RecursionError:
            # ``[[[[...`` a few thousand deep exhausts the parser's stack;
            # to the caller it is just another body it cannot accept.
            raise ValueError("JSON body nested too deeply") from None

    def _charset(self) -> str:
        content_type = self.headers.get("content-type", "")
        for param in content_type.split(";")[1:]:
            name, _, value = param.partition("=")
            if name.strip().lower() == "charset":
                return value.strip().strip('"') or "utf-8"
        return "utf-8"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.method!r}, {str(self.url)!r})"
