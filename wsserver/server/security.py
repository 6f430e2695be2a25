"""Access control before the upgrade: Origin checks and secrets.

Cross-site WebSocket hijacking.  Browsers attach cookies to a WebSocket
handshake whatever page opened it, and the same-origin policy does not apply
to WebSockets; the ``Origin`` header (RFC 6455 section 10.2) is the server's
only way to tell that a handshake comes from a page of another site.  An
allow-list of origins, checked before the 101, closes that hole: a rejected
origin gets 403 and the application never runs.

A handshake without ``Origin`` does not come from a browser, and a non-browser
client can send any ``Origin`` it likes, so refusing it protects nothing;
``OriginPolicy`` allows it unless told otherwise.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Iterable

__all__ = ["OriginPolicy", "secrets_equal"]


def secrets_equal(given: str | bytes, expected: str | bytes) -> bool:
    """Compare a secret (token, password, signature) in constant time.

    ``==`` stops at the first differing byte, which lets an attacker guess a
    token byte by byte from response times; ``hmac.compare_digest`` does not.
    """
    given_bytes = given.encode("utf-8") if isinstance(given, str) else given
    expected_bytes = expected.encode("utf-8") if isinstance(expected, str) else expected
    return hmac.compare_digest(given_bytes, expected_bytes)


class OriginPolicy:
    """Which ``Origin`` values may open a WebSocket.

    Args:
        allowed: exact origins (``"https://example.com"``) and patterns in
            which ``*`` stands for one or more DNS labels of the host
            (``"https://*.example.com"`` matches ``https://app.example.com``
            and ``https://a.b.example.com``, not ``https://example.com`` nor
            ``https://evil-example.com``).  Compared case-insensitively, as
            origins are (RFC 6454 section 4: scheme and host are lowercased).
        allow_missing: whether a handshake without ``Origin`` (a non-browser
            client) is allowed.

    Patterns compile to anchored regular expressions with no nested
    quantifiers, so matching is linear in the header's length.
    """

    def __init__(self, allowed: Iterable[str], *, allow_missing: bool = True) -> None:
        self.allow_missing = allow_missing
        self._exact: set[str] = set()
        patterns: list[str] = []
        for origin in allowed:
            origin = origin.strip().lower().rstrip("/")
            if "*" in origin:
                patterns.append(_compile_pattern(origin))
            else:
                self._exact.add(origin)
        self._pattern = re.compile("|".join(patterns)) if patterns else None

    def allows(self, origin: str | None) -> bool:
        """Whether a handshake with this ``Origin`` value (or none) may proceed."""
        if origin is None:
            return self.allow_missing
        normalised = origin.strip().lower()
        if normalised in self._exact:
            return True
        return self._pattern is not None and self._pattern.fullmatch(normalised) is not None


def _compile_pattern(pattern: str) -> str:
    scheme, sep, rest = pattern.partition("://")
    if not sep or "*" in scheme:
        raise ValueError(f"origin pattern needs a literal scheme: {pattern!r}")
    host, _, port = rest.partition(":")
    labels = host.split(".")
    if any("*" in label and label != "*" for label in labels) or "*" in port:
        raise ValueError(f"'*' must stand for whole host labels: {pattern!r}")
    if labels[-1] == "*":
        raise ValueError(f"'*' cannot stand for the top-level domain: {pattern!r}")
    parts = []
    for label in labels:
        # One or more labels; labels cannot contain dots, so each repetition
        # consumes a distinct dot-terminated run and cannot backtrack badly.
        parts.append(r"(?:[a-z0-9-]+\.)*[a-z0-9-]+" if label == "*" else re.escape(label))
    regex = re.escape(scheme) + "://" + r"\.".join(parts)
    if port:
        regex += ":" + re.escape(port)
    return f"(?:{regex})"
