"""WebSocket URIs (RFC 6455 section 3): what to connect to, and what to ask for."""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass

from .exceptions import InvalidURI

__all__ = ["WebSocketURI", "parse_uri"]


@dataclass(frozen=True, slots=True, kw_only=True)
class WebSocketURI:
    """A parsed ``ws://`` or ``wss://`` URI.

    Attributes:
        secure: ``wss``: TLS.
        host: the host name or address (IPv6 without brackets).
        port: the port, the scheme's default (80, 443) when none is given.
        target: the request-target: path (``/`` at least) and query.
    """

    secure: bool
    host: str
    port: int
    target: str

    @property
    def host_header(self) -> str:
        """The ``Host`` header: the port only when it is not the default.

        RFC 6455 section 4.1: "|Host| header field whose value contains
        /host/ plus optionally ":" followed by /port/ (when not using the
        default port)".
        """
        host = f"[{self.host}]" if ":" in self.host else self.host
        if self.port == (443 if self.secure else 80):
            return host
        return f"{host}:{self.port}"

    def __str__(self) -> str:
        return f"{'wss' if self.secure else 'ws'}://{self.host_header}{self.target}"


def parse_uri(uri: str) -> WebSocketURI:
    """Parse a WebSocket URI.

    Section 3: ``ws-URI = "ws:" "//" host [ ":" port ] path [ "?" query ]``;
    "Fragment identifiers are meaningless in the context of WebSocket URIs
    and MUST NOT be used on these URIs."

    Raises:
        InvalidURI: another scheme, no host, a fragment, credentials, or a
            bad port.
    """
    try:
        parts = urllib.parse.urlsplit(uri)
        port = parts.port
    except ValueError as exc:
        raise InvalidURI(f"{uri!r} is not a valid URI: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("ws", "wss"):
        raise InvalidURI(f"{uri!r} is not a WebSocket URI: the scheme must be ws or wss")
    if not parts.hostname:
        raise InvalidURI(f"{uri!r} has no host")
    if parts.fragment or uri.endswith("#"):
        raise InvalidURI(f"{uri!r} has a fragment: RFC 6455 section 3 forbids them")
    if parts.username is not None or parts.password is not None:
        raise InvalidURI(f"{uri!r} has credentials: pass an Authorization header instead")
    secure = scheme == "wss"
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    return WebSocketURI(
        secure=secure,
        host=parts.hostname,
        port=port if port is not None else (443 if secure else 80),
        target=target,
    )
