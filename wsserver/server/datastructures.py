"""Value types the HTTP side hands to applications: headers, URL, query, cookies.

Everything here is pure and synchronous.  Request-side types are built from
what the protocol core produced (``wsserver.protocol.events.Headers``: pairs of
``str`` with lowercased names, both ISO-8859-1 decoded so every octet
survives), and parsing never trusts the peer: odd input gives either a lenient
result (cookies, query strings) or a ``ValueError`` that the caller answers
with 400 (targets, hosts, oversized query strings).

Names follow Starlette and Lilya (``Headers``, ``MutableHeaders``, ``URL``,
``QueryParams``, ``State``, ``getlist``, ``multi_items``) so that code written
for them reads naturally here.
"""

from __future__ import annotations

import enum
import ipaddress
import re
from collections.abc import Iterable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import parse_qsl, quote, unquote, urlencode

if TYPE_CHECKING:
    # Only the type alias is needed; importing it at run time would load the
    # whole protocol package for a ``tuple[tuple[str, str], ...]``.
    from wsserver.protocol.events import Headers as HeaderPairs

__all__ = [
    "MAX_QUERY_PAIRS",
    "URL",
    "Address",
    "Headers",
    "MutableHeaders",
    "QueryParams",
    "State",
    "parse_cookies",
]

MAX_QUERY_PAIRS = 1000
"""Most ``&``-separated fields one query string may hold.

Browsers never come close (form submissions with a thousand fields are
pathological), and the bound keeps a hostile query from costing a list entry
and two decodes per byte pair.  Counted as ``urllib.parse`` counts them: one
more than the number of ``&``.
"""

# Ports implied by each scheme the server speaks (RFC 9110 section 4.2,
# RFC 6455 section 3).
_DEFAULT_PORTS: dict[str, int] = {"http": 80, "https": 443, "ws": 80, "wss": 443}

# RFC 9110 section 5.6.2: the characters a field name (a token) may contain.
_TOKEN_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# Field values (RFC 9110 section 5.5) may hold VCHAR, obs-text, SP and HTAB.
# Any other control character, above all CR and LF, would let a value smuggle
# a header or a whole response, so it is refused, as is anything outside
# ISO-8859-1, which could not be put on the wire byte for byte.
_BAD_VALUE_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]|[^\x00-\xff]")

# RFC 3986 section 3.2.2: reg-name and the port; IP literals are checked with
# ``ipaddress`` instead of a regex.
_REG_NAME_RE = re.compile(r"(?:[A-Za-z0-9\-._~!$&'()*+,;=]|%[0-9A-Fa-f]{2})+")
_PORT_RE = re.compile(r"[0-9]{0,5}")
_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*")

# What may stay unencoded in a path: pchar and "/" (RFC 3986 section 3.3).
_PATH_SAFE = "/!$&'()*+,;=:@"

# Header names whose values ``repr`` hides, so that logging a request cannot
# leak credentials.
_SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})


class _MultiMapping(Mapping[str, str]):
    """An immutable multi-valued mapping: ``m[k]`` is the first value of ``k``.

    ``Mapping`` methods (``keys``, ``items``, ``values``, ``len``) see each key
    once with its first value, so the type keeps the ``Mapping`` contract;
    ``getlist`` and ``multi_items`` see every value.
    """

    __slots__ = ("_index", "_pairs")

    _pairs: list[tuple[str, str]]
    _index: dict[str, list[str]] | None

    def __init__(self, pairs: Iterable[tuple[str, str]]) -> None:
        self._pairs = [(self._key(name), value) for name, value in pairs]
        self._index = None

    @staticmethod
    def _key(key: str) -> str:
        return key

    def _lookup(self) -> dict[str, list[str]]:
        # Built on first use and dropped on mutation: most requests look up
        # a handful of headers, and the pairs are bounded by the core.
        if self._index is None:
            index: dict[str, list[str]] = {}
            for name, value in self._pairs:
                index.setdefault(name, []).append(value)
            self._index = index
        return self._index

    def __getitem__(self, key: str) -> str:
        values = self._lookup().get(self._key(key))
        if not values:
            raise KeyError(key)
        return values[0]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self._key(key) in self._lookup()

    def __iter__(self) -> Iterator[str]:
        return iter(self._lookup())

    def __len__(self) -> int:
        return len(self._lookup())

    def getlist(self, key: str) -> list[str]:
        """Return every value of ``key`` in order; an empty list if absent.

        Args:
            key: the name to look up.

        Returns:
            A new list, safe to modify.
        """
        return list(self._lookup().get(self._key(key), ()))

    def multi_items(self) -> list[tuple[str, str]]:
        """Return every ``(name, value)`` pair in order, duplicates included."""
        return list(self._pairs)

    def __eq__(self, other: object) -> bool:
        # Equal when every name has the same values in the same order; the
        # relative order of different names carries no meaning in HTTP.
        if not isinstance(other, _MultiMapping):
            return NotImplemented
        if not (isinstance(other, type(self)) or isinstance(self, type(other))):
            return NotImplemented
        return self._lookup() == other._lookup()


def _pairs_of(
    raw: Iterable[tuple[str, str]] | Mapping[str, str] | None,
) -> Iterable[tuple[str, str]]:
    if raw is None:
        return ()
    if isinstance(raw, _MultiMapping):
        return raw.multi_items()
    if isinstance(raw, Mapping):
        return raw.items()
    return raw


class Headers(_MultiMapping):
    """Immutable, case-insensitive, multi-valued HTTP headers.

    Built from the protocol core's header pairs (or a mapping).  ``h[name]``
    and ``h.get(name)`` give the first value; ``getlist`` gives all of them
    (``Set-Cookie``, or list-valued fields sent on several lines).  Values are
    the ISO-8859-1 decoded octets, as the core produced them.

    Example:
        >>> h = Headers([("accept", "text/html"), ("Accept", "*/*")])
        >>> h["ACCEPT"], h.getlist("accept")
        ('text/html', ['text/html', '*/*'])
    """

    __slots__ = ()

    def __init__(
        self, raw: HeaderPairs | Iterable[tuple[str, str]] | Mapping[str, str] | None = None
    ) -> None:
        """Copy the given pairs, lowercasing the names.

        Args:
            raw: ``(name, value)`` pairs, such as ``WebSocketRequest.headers``,
                or a mapping.  Another ``Headers`` keeps its duplicates.
        """
        super().__init__(_pairs_of(raw))

    @staticmethod
    def _key(key: str) -> str:
        return key.lower()

    @property
    def raw(self) -> HeaderPairs:
        """All pairs in order, in the protocol core's ``Headers`` shape."""
        return tuple(self._pairs)

    def __repr__(self) -> str:
        shown = [
            (name, "<redacted>" if name in _SECRET_HEADERS else value)
            for name, value in self._pairs
        ]
        return f"{type(self).__name__}({shown!r})"


def _check_field(name: str, value: str) -> None:
    # A non-str name or value makes ``re`` raise TypeError, which is the
    # right error for it.
    if not _TOKEN_RE.fullmatch(name):
        raise ValueError(f"invalid header name {name!r}")
    if _BAD_VALUE_RE.search(value):
        raise ValueError(f"invalid character in the value of header {name!r}")


class MutableHeaders(Headers, MutableMapping[str, str]):
    """Response headers: ``Headers`` plus ``append``, assignment and deletion.

    Every name and value is validated when it goes in: names must be RFC 9110
    tokens and values may not contain CR, LF or other control characters, nor
    characters outside ISO-8859-1.  A ``ValueError`` at that point beats a
    response-splitting bug at serialisation time.  Names are stored
    lowercased, which is how they go on the wire.
    """

    __slots__ = ()

    def __init__(
        self, raw: HeaderPairs | Iterable[tuple[str, str]] | Mapping[str, str] | None = None
    ) -> None:
        """Copy and validate the given pairs.

        Args:
            raw: ``(name, value)`` pairs or a mapping.

        Raises:
            ValueError: a name is not a token or a value has a forbidden
                character.
            TypeError: a name or value is not a ``str``.
        """
        pairs = list(_pairs_of(raw))
        for name, value in pairs:
            _check_field(name, value)
        super().__init__(pairs)

    def __setitem__(self, key: str, value: str) -> None:
        """Replace every value of ``key`` by ``value``.

        The field keeps the position of its first occurrence, or goes last if
        it was absent.
        """
        _check_field(key, value)
        name = key.lower()
        position = None
        kept: list[tuple[str, str]] = []
        for pair in self._pairs:
            if pair[0] == name:
                if position is None:
                    position = len(kept)
            else:
                kept.append(pair)
        kept.insert(len(kept) if position is None else position, (name, value))
        self._pairs = kept
        self._index = None

    def __delitem__(self, key: str) -> None:
        """Remove every value of ``key``; ``KeyError`` if there is none."""
        name = key.lower()
        kept = [pair for pair in self._pairs if pair[0] != name]
        if len(kept) == len(self._pairs):
            raise KeyError(key)
        self._pairs = kept
        self._index = None

    def append(self, key: str, value: str) -> None:
        """Add a value for ``key`` after the existing ones (e.g. ``Set-Cookie``)."""
        _check_field(key, value)
        self._pairs.append((key.lower(), value))
        self._index = None

    def set(self, key: str, value: str) -> None:
        """Same as ``headers[key] = value``."""
        self[key] = value


class QueryParams(_MultiMapping):
    """An immutable multi-dict of query parameters.

    ``q[name]`` is the first value (as Werkzeug and Go's ``url.Values``);
    ``getlist`` gives all of them.  Parsing is ``urllib.parse.parse_qsl`` with
    blank values kept (``?flag`` gives ``{"flag": ""}``), ``+`` as space, and
    invalid UTF-8 replaced by U+FFFD rather than refused, as browsers do.
    """

    __slots__ = ()

    def __init__(
        self, query: str | Iterable[tuple[str, str]] | Mapping[str, str] | None = None
    ) -> None:
        """Parse a raw query string, or copy pairs or a mapping.

        Args:
            query: the part of the target after ``?``, without the ``?``.

        Raises:
            ValueError: the string holds more than ``MAX_QUERY_PAIRS`` fields.
        """
        if isinstance(query, str):
            try:
                pairs = parse_qsl(query, keep_blank_values=True, max_num_fields=MAX_QUERY_PAIRS)
            except ValueError:
                raise ValueError(f"query string has more than {MAX_QUERY_PAIRS} fields") from None
            super().__init__(pairs)
        else:
            super().__init__(_pairs_of(query))

    def __str__(self) -> str:
        return urlencode(self._pairs)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"


def parse_cookies(header_values: Iterable[str]) -> dict[str, str]:
    """Parse ``Cookie`` request headers leniently, as browsers send them.

    RFC 6265 section 5.4 (``name=value`` pairs separated by ``;``), with the
    tolerance of the parsers browsers are tested against: surrounding spaces
    are ignored, a pair without ``=`` is a cookie with an empty name, a value
    wrapped in double quotes is unwrapped, and values are not percent-decoded
    (that is the application's encoding, not HTTP's).  When a name repeats,
    the first occurrence wins: browsers list the cookie with the most specific
    path first.  Values that are valid UTF-8 once re-encoded as ISO-8859-1 are
    decoded as UTF-8, since that is what ``document.cookie`` puts on the wire.

    Args:
        header_values: every ``Cookie`` header value (HTTP/1.1 clients send
            one, but several are joined as if by ``; ``).

    Returns:
        Cookie names to values.  Never raises on any ``str`` input.
    """
    cookies: dict[str, str] = {}
    for header in header_values:
        for chunk in header.split(";"):
            name, sep, value = chunk.partition("=")
            if not sep:
                name, value = "", name
            name = _utf8_or_latin1(name.strip(" \t"))
            value = value.strip(" \t")
            if not name and not value:
                continue
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            cookies.setdefault(name, _utf8_or_latin1(value))
    return cookies


def _utf8_or_latin1(text: str) -> str:
    if text.isascii():
        return text
    try:
        return text.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return text


class Address(NamedTuple):
    """A peer's address: ``request.client`` and ``websocket.client``."""

    host: str
    port: int


class State:
    """An attribute bag for per-application or per-connection state.

    As Starlette's ``State``: ``state.user = user`` then ``state.user``;
    reading a missing attribute raises ``AttributeError`` naming it, so
    ``getattr(state, "user", None)`` works.
    """

    __slots__ = ("_state",)

    _state: dict[str, Any]

    def __init__(self, state: Mapping[str, Any] | None = None) -> None:
        """Start with a copy of ``state``, if given."""
        object.__setattr__(self, "_state", dict(state or {}))

    def __setattr__(self, name: str, value: Any) -> None:
        self._state[name] = value

    def __getattr__(self, name: str) -> Any:
        try:
            return self._state[name]
        except KeyError:
            message = f"{type(self).__name__!r} object has no attribute {name!r}"
            raise AttributeError(message) from None

    def __delattr__(self, name: str) -> None:
        try:
            del self._state[name]
        except KeyError:
            raise AttributeError(name) from None

    def __contains__(self, name: object) -> bool:
        return name in self._state

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._state!r})"


class _Unset(enum.Enum):
    UNSET = enum.auto()


_UNSET = _Unset.UNSET


@dataclass(frozen=True, slots=True)
class URL:
    """An absolute request URL, without fragment.

    Attributes:
        scheme: ``http``, ``https``, ``ws`` or ``wss``, lowercase.
        host: the host, lowercase, IPv6 literals without brackets.
        port: the port, or ``None`` when it is the scheme's default.
        raw_path: the path as sent (percent-encoded, ASCII only).
        query: the raw query string, without ``?`` (see ``QueryParams``).
        path: ``raw_path`` percent-decoded as UTF-8 (computed).

    Construct it with ``URL.from_target`` from a request; the constructor
    validates, so a ``URL`` always prints back as a valid absolute URL.
    """

    scheme: str
    host: str
    port: int | None
    raw_path: str = "/"
    query: str = ""
    path: str = field(init=False, compare=False)

    def __post_init__(self) -> None:
        if self.scheme not in _DEFAULT_PORTS:
            raise ValueError(f"unsupported URL scheme {self.scheme!r}")
        if self.port is not None and not 0 < self.port < 65536:
            raise ValueError(f"port out of range: {self.port}")
        if not self.raw_path.startswith("/") or not self.raw_path.isascii():
            raise ValueError(f"raw_path must be ASCII and start with '/': {self.raw_path!r}")
        if any(ch in self.raw_path for ch in " ?#") or any(ch in self.query for ch in " #"):
            raise ValueError("raw_path or query contains a space, '?' or '#'")
        try:
            path = unquote(self.raw_path, encoding="utf-8", errors="strict")
        except UnicodeDecodeError:
            raise ValueError(f"path is not valid UTF-8 once decoded: {self.raw_path!r}") from None
        object.__setattr__(self, "path", path)

    @classmethod
    def from_target(
        cls,
        target: str,
        scheme: str,
        host_header: str | None,
        default_port: int | None = None,
        *,
        server_host: str | None = None,
    ) -> URL:
        """Build the URL of a request from its request-target and ``Host``.

        Accepts origin-form (``/path?query``) and absolute-form
        (``http://host/path``; RFC 9112 section 3.2.2: its authority then wins
        over ``Host``).  Asterisk-form and authority-form are refused: they
        only serve server-wide ``OPTIONS`` and ``CONNECT``, which this server
        does not implement.  A fragment, which clients must not send, is
        dropped.  Non-ASCII characters (the core decodes octets as
        ISO-8859-1) are percent-encoded byte for byte, so a client sending raw
        UTF-8 gets the path it meant.

        Args:
            target: the request-target as the core decoded it.
            scheme: the scheme the connection speaks (``http``, ``https``,
                ``ws`` or ``wss``).
            host_header: the single ``Host`` value, or ``None`` if absent.
                The caller must refuse a request with several ``Host``
                fields (RFC 9112 section 3.2) before calling this.
            default_port: the port stored as ``None``; defaults to the
                scheme's (80 or 443).
            server_host: the host to use when the request has no ``Host``
                (HTTP/1.0).  When ``None``, a missing ``Host`` is an error.

        Returns:
            The URL.

        Raises:
            ValueError: the target, host or port is malformed (answer 400).
        """
        scheme = scheme.lower()
        if scheme not in _DEFAULT_PORTS:
            raise ValueError(f"unsupported scheme {scheme!r}")
        if default_port is None:
            default_port = _DEFAULT_PORTS[scheme]
        target = _encode_target(target.partition("#")[0])

        if target.startswith("/"):
            authority = host_header
            rest = target
        else:
            match = _SCHEME_RE.match(target)
            if not match or not target[match.end() :].startswith("://"):
                raise ValueError(f"request-target is neither origin- nor absolute-form: {target!r}")
            if match.group().lower() not in _DEFAULT_PORTS:
                raise ValueError(f"unsupported scheme in request-target: {match.group()!r}")
            after = target[match.end() + 3 :]
            end = min((i for i in (after.find("/"), after.find("?")) if i >= 0), default=len(after))
            authority, rest = after[:end], after[end:]
            if not rest.startswith("/"):
                rest = "/" + rest

        if not authority:
            if server_host is None:
                raise ValueError("missing Host header")
            authority = server_host
        host, port = _parse_authority(authority)
        raw_path, _, query = rest.partition("?")
        return cls(
            scheme=scheme,
            host=host,
            port=None if port is None or port == default_port else port,
            raw_path=raw_path,
            query=query,
        )

    @property
    def netloc(self) -> str:
        """``host[:port]``, with IPv6 literals in brackets."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port is None else f"{host}:{self.port}"

    @property
    def is_secure(self) -> bool:
        """Whether the scheme is ``https`` or ``wss``."""
        return self.scheme in ("https", "wss")

    def replace(
        self,
        *,
        scheme: str | _Unset = _UNSET,
        host: str | _Unset = _UNSET,
        port: int | _Unset | None = _UNSET,
        path: str | _Unset = _UNSET,
        raw_path: str | _Unset = _UNSET,
        query: str | _Unset = _UNSET,
    ) -> URL:
        """Return a copy with some components changed.

        Args:
            scheme: the new scheme.
            host: the new host.
            port: the new port; ``None`` for the scheme's default.
            path: a new decoded path, percent-encoded here.
            raw_path: a new path, already percent-encoded.
            query: a new raw query string.

        Raises:
            ValueError: both ``path`` and ``raw_path`` given, or the result
                is not a valid URL.
        """
        if not isinstance(path, _Unset):
            if not isinstance(raw_path, _Unset):
                raise ValueError("give path or raw_path, not both")
            raw_path = quote(path, safe=_PATH_SAFE)
        return URL(
            scheme=self.scheme if isinstance(scheme, _Unset) else scheme,
            host=self.host if isinstance(host, _Unset) else host,
            port=self.port if isinstance(port, _Unset) else port,
            raw_path=self.raw_path if isinstance(raw_path, _Unset) else raw_path,
            query=self.query if isinstance(query, _Unset) else query,
        )

    def __str__(self) -> str:
        query = f"?{self.query}" if self.query else ""
        return f"{self.scheme}://{self.netloc}{self.raw_path}{query}"


def _encode_target(target: str) -> str:
    """Refuse whitespace and control characters; percent-encode non-ASCII."""
    if target.isascii():
        if any(ch <= " " or ch == "\x7f" for ch in target):
            raise ValueError("request-target contains whitespace or a control character")
        return target
    out: list[str] = []
    for ch in target:
        if ch <= " " or ch == "\x7f":
            raise ValueError("request-target contains whitespace or a control character")
        if ch.isascii():
            out.append(ch)
        elif ord(ch) < 0x100:
            # One octet the core decoded as ISO-8859-1: put it back as sent.
            out.append(f"%{ord(ch):02X}")
        elif 0xD800 <= ord(ch) < 0xE000:
            raise ValueError("request-target contains a lone surrogate")
        else:
            out.append(quote(ch, safe=""))
    return "".join(out)


def _parse_authority(authority: str) -> tuple[str, int | None]:
    """Split ``host[:port]`` (RFC 3986 section 3.2); ``ValueError`` if invalid."""
    if "@" in authority:
        raise ValueError("userinfo is not allowed in the request authority")
    if authority.startswith("["):
        end = authority.find("]")
        if end < 0:
            raise ValueError(f"unterminated IPv6 literal in {authority!r}")
        host, rest = authority[1:end], authority[end + 1 :]
        if "%" in host:
            raise ValueError("zone identifiers are not allowed in a Host")
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"invalid IPv6 literal in {authority!r}") from None
        if rest and not rest.startswith(":"):
            raise ValueError(f"garbage after IPv6 literal in {authority!r}")
        port_text = rest[1:] if rest else ""
    else:
        host, _, port_text = authority.partition(":")
        if not _REG_NAME_RE.fullmatch(host):
            raise ValueError(f"invalid host {host!r}")
    if not _PORT_RE.fullmatch(port_text):
        raise ValueError(f"invalid port {port_text!r}")
    port = int(port_text) if port_text else None
    if port is not None and not 0 < port < 65536:
        raise ValueError(f"port out of range: {port}")
    return host.lower(), port
