"""HTTP responses as plain values: status, headers and a whole body.

A handler returns one of these; the connection code serialises it with
``header_pairs()`` and ``body``.  Framing is the connection's business, not
the application's: it writes ``Content-Length`` itself, so the framing headers
an application might set (``Content-Length``, ``Transfer-Encoding``) are left
out of ``header_pairs()`` instead of risking a body that disagrees with them.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, Iterable, Mapping
from urllib.parse import quote

from .datastructures import URL, MutableHeaders

__all__ = [
    "HTMLResponse",
    "JSONResponse",
    "PlainTextResponse",
    "RedirectResponse",
    "Response",
    "StreamingResponse",
]

# Headers only the connection may write: it computes the length from the body
# it actually sends, and never uses chunked encoding for a whole body.
_FRAMING_HEADERS = frozenset({"content-length", "transfer-encoding"})

# Characters left as they are in a Location URL: every reserved character and
# "%" (so an already encoded URL is not encoded twice).
_LOCATION_SAFE = ":/%#?=@[]!$&'()*+,;~"


def _is_bodiless(status: int) -> bool:
    # RFC 9110 sections 15.2, 15.3.5 and 15.4.5: these never carry content.
    return status < 200 or status in (204, 304)


class Response:
    """A complete HTTP response.

    Attributes:
        status_code: the status code (100-599).
        headers: the response headers, mutable until the response is sent.
        body: the whole body, encoded.
        media_type: the media type the ``Content-Type`` was computed from
            (``None``: no ``Content-Type`` is added).
        charset: the charset used to encode a ``str`` body and added to
            ``text/*`` media types.

    ``Content-Type`` is computed once, at construction, unless ``headers``
    already has one: ``media_type`` plus ``; charset=utf-8`` for ``text/*``
    types that do not name a charset.  Responses that cannot have a body
    (1xx, 204, 304) get no ``Content-Type`` and refuse a non-empty body.

    Example:
        >>> r = Response("hi", media_type="text/plain")
        >>> r.header_pairs()
        [('content-type', 'text/plain; charset=utf-8')]
    """

    media_type: str | None = None
    charset: str = "utf-8"

    def __init__(
        self,
        body: bytes | str = b"",
        status_code: int = 200,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        media_type: str | None = None,
    ) -> None:
        """Build the response.

        Args:
            body: the body; a ``str`` is encoded with ``charset``.
            status_code: the status code (Starlette's and Lilya's keyword).
            headers: extra headers, as a mapping or ``(name, value)`` pairs.
            media_type: overrides the class's ``media_type``.

        Raises:
            ValueError: the status is outside 100-599, a bodiless status has
                a body, or a header is invalid (see ``MutableHeaders``).
        """
        if isinstance(status_code, bool) or not 100 <= status_code <= 599:
            raise ValueError(f"invalid HTTP status {status_code!r}")
        self.status_code = status_code
        self.body = body.encode(self.charset) if isinstance(body, str) else bytes(body)
        if self.body and _is_bodiless(status_code):
            raise ValueError(f"a {status_code} response cannot have a body")
        if media_type is not None:
            self.media_type = media_type
        self.headers = MutableHeaders(headers)
        if (
            self.media_type is not None
            and "content-type" not in self.headers
            and not _is_bodiless(status_code)
        ):
            self.headers["content-type"] = self._content_type(self.media_type)

    def _content_type(self, media_type: str) -> str:
        if media_type.startswith("text/") and "charset=" not in media_type.lower():
            return f"{media_type}; charset={self.charset}"
        return media_type

    def header_pairs(self) -> list[tuple[str, str]]:
        """Return the headers to serialise, in order, names lowercased.

        ``Content-Length`` and ``Transfer-Encoding`` are omitted: the
        connection frames the body itself.
        """
        return [pair for pair in self.headers.multi_items() if pair[0] not in _FRAMING_HEADERS]

    def __repr__(self) -> str:
        name = type(self).__name__
        return f"{name}(status_code={self.status_code}, body=<{len(self.body)} bytes>)"


class PlainTextResponse(Response):
    """A ``text/plain; charset=utf-8`` response."""

    media_type = "text/plain"


class HTMLResponse(Response):
    """A ``text/html; charset=utf-8`` response."""

    media_type = "text/html"


class JSONResponse(Response):
    """An ``application/json`` response of compact UTF-8 JSON.

    Serialised with ``separators=(",", ":")`` and ``ensure_ascii=False`` as
    Lilya's ``send_json``, and ``allow_nan=False``: ``NaN`` and ``Infinity``
    are not JSON and would break strict parsers, so they raise ``ValueError``
    here instead.  RFC 8259 defines no charset parameter, so none is added.
    """

    media_type = "application/json"

    def __init__(
        self,
        content: object,
        status_code: int = 200,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        media_type: str | None = None,
    ) -> None:
        """Serialise ``content`` and build the response.

        Args:
            content: anything ``json.dumps`` accepts.
            status_code: the status code.
            headers: extra headers.
            media_type: overrides ``application/json``.

        Raises:
            TypeError: ``content`` holds a value JSON cannot represent.
            ValueError: ``content`` holds ``NaN`` or an infinity.
        """
        body = json.dumps(content, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        super().__init__(body.encode("utf-8"), status_code, headers, media_type)


class RedirectResponse(Response):
    """A redirect: an empty body and a ``Location`` header.

    307 by default, which (unlike 302) keeps the method and body.  Characters
    that may not appear in a URL (spaces, non-ASCII) are percent-encoded in
    ``Location``; ``%`` and reserved characters are kept.
    """

    def __init__(
        self,
        url: str | URL,
        status_code: int = 307,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
    ) -> None:
        """Build the redirect.

        Args:
            url: the target, absolute or relative.
            status_code: a 3xx status.
            headers: extra headers.

        Raises:
            ValueError: ``status_code`` is not a redirection status.
        """
        if isinstance(status_code, bool) or not 300 <= status_code <= 399:
            raise ValueError(f"redirect status must be 3xx, got {status_code!r}")
        super().__init__(b"", status_code, headers)
        self.headers["location"] = quote(str(url), safe=_LOCATION_SAFE)


class StreamingResponse(Response):
    """A response whose body is sent piece by piece as ``content`` yields it.

    For a body not known in advance (a long report, server-sent events).
    The connection sends the head at once, then each piece as it comes,
    with ``Transfer-Encoding: chunked`` (HTTP/1.1) or by closing the
    connection after it (HTTP/1.0); it waits while the client does not
    read, so a slow client holds the producer back rather than memory
    growing.  A ``str`` piece is encoded with ``charset``.  If ``content``
    raises, the connection is closed without the body's end, so that the
    client cannot mistake what it got for the whole.  If the client leaves,
    ``content`` is closed (``aclose()``, for an async generator).

    Example:
        >>> async def numbers():
        ...     for n in range(3):
        ...         yield f"{n}\\n"
        >>> StreamingResponse(numbers(), media_type="text/plain").status_code
        200
    """

    def __init__(
        self,
        content: AsyncIterable[bytes | str],
        status_code: int = 200,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        media_type: str | None = None,
    ) -> None:
        """Build the response; see ``Response`` for the arguments.

        Raises:
            TypeError: ``content`` is not an async iterable.
            ValueError: as ``Response``.
        """
        if not hasattr(content, "__aiter__"):
            raise TypeError(f"StreamingResponse content must be an async iterable, not {content!r}")
        super().__init__(b"", status_code, headers, media_type)
        self.content = content

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status_code={self.status_code})"
