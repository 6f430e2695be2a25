"""Serving the files of one directory: the page, its scripts, its styles.

Built for the assets a WebSocket application ships (an ``index.html``, a
client runtime, CSS), not as a general file server: whole files are read into
memory, so size is bounded (``max_file_size``), and there are no ranges.

Serving is split so that the blocking read can run off the event loop::

    found = static.resolve(path, request.method, request.headers)
    if isinstance(found, Response):          # 304, 404, 405, 403
        return found
    data = await asyncio.to_thread(read_file, found.path, static.max_file_size)
    return static.build(found, data)

``get_response`` does all three synchronously, for tests and small files.

Safety: the requested path must be a plain relative path (no ``..``, no
dot-files, no NUL or backslash), and the file actually opened, symlinks
resolved, must lie inside the directory; anything else is a 404, the same
answer as a missing file, so probing reveals nothing.
"""

from __future__ import annotations

import errno
import logging
import mimetypes
import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC
from email.utils import formatdate, parsedate_to_datetime

from .responses import PlainTextResponse, Response

__all__ = [
    "DEFAULT_MAX_FILE_SIZE",
    "FileInfo",
    "StaticFiles",
    "choose_encoding",
    "etag_matches",
    "read_file",
]

logger = logging.getLogger(__name__)

DEFAULT_MAX_FILE_SIZE = 16 * 1024 * 1024
"""Largest file served by default: 16 MiB.

Whole files are held in memory while they are sent, so this bounds what one
request can cost; a page's scripts and styles are far below it.
"""

_IMMUTABLE_CACHE_CONTROL = "public, max-age=31536000, immutable"

# Precompressed siblings, best first: (Content-Encoding token, file suffix).
_ENCODINGS = (("zstd", ".zst"), ("gzip", ".gz"))

# The built-in table only (``MimeTypes()`` ignores the host's mime.types), so
# the same file gets the same type on every machine; then the types the table
# lacks or gets wrong for the web.
_MIME = mimetypes.MimeTypes()
_MIME_OVERRIDES = {
    # RFC 9239: text/javascript is the one JavaScript type.
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".map": "application/json",
    ".wasm": "application/wasm",
    ".webp": "image/webp",
    ".woff": "font/woff",
    ".woff2": "font/woff2",
    ".webmanifest": "application/manifest+json",
}

# An entity-tag (RFC 9110 section 8.8.3): an optional weakness indicator and
# an opaque tag in double quotes, which may itself contain commas.
_ETAG_RE = re.compile(r'(?:W/)?("[^"]*")')
_QVALUE_RE = re.compile(r"0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?")


@dataclass(frozen=True, slots=True)
class FileInfo:
    """A file ``resolve`` found to serve, before its content is read.

    Attributes:
        path: the real path to read (symlinks resolved), for ``read_file``.
        size: its size when it was checked.
        headers: the headers of the 200 response.
    """

    path: str
    size: int
    headers: tuple[tuple[str, str], ...]


def read_file(path: str, max_size: int | None = None) -> bytes:
    """Read a whole regular file.  Blocking: run it with ``asyncio.to_thread``.

    The file is opened without following a final symlink and without
    blocking, and checked to be a regular file after opening, so that a file
    swapped since ``resolve`` checked it cannot turn into a FIFO that hangs
    the thread or a link that leaves the directory.

    Args:
        path: ``FileInfo.path``.
        max_size: refuse files larger than this many bytes.

    Returns:
        The content.

    Raises:
        OSError: the file is missing, unreadable, not a regular file
            (``EINVAL``), or larger than ``max_size`` (``EFBIG``).
    """
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    fd = os.open(path, flags | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(fd, "rb") as file:
        info = os.fstat(file.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise OSError(errno.EINVAL, "not a regular file", path)
        if max_size is None:
            return file.read()
        # One byte more than allowed tells a file that grew since fstat.
        data = file.read(max_size + 1)
        if len(data) > max_size:
            raise OSError(errno.EFBIG, f"file larger than {max_size} bytes", path)
        return data


class StaticFiles:
    """Serve the files under one directory, with validators and caching.

    Attributes:
        directory: the directory, as an absolute path with symlinks resolved.
        max_age: ``Cache-Control`` max-age, in seconds, for ordinary files.
        immutable_prefix: relative path (such as ``"assets"``) whose files
            are versioned by name and cached for a year, ``immutable``.
        index: the file served for a directory (``None``: directories 404).
        max_file_size: larger files are answered 403, see below.

    Behaviour:
        * ``GET`` and ``HEAD`` only; anything else is 405 with ``Allow``.
          ``HEAD`` gets the ``GET`` response: the connection drops the body.
        * ``Content-Type`` from the extension (Python's built-in table plus
          web types), ``; charset=utf-8`` for ``text/*``;
          ``application/octet-stream`` when unknown.
          ``X-Content-Type-Options: nosniff`` stops browsers guessing.
        * Strong ``ETag`` from size and ``mtime_ns`` (hex), ``Last-Modified``;
          ``If-None-Match`` gives 304 on a match (weak comparison, RFC 9110
          section 13.1.2), and ``If-Modified-Since`` is used only when there
          is no ``If-None-Match``.
        * When ``Accept-Encoding`` accepts ``zstd`` or ``gzip`` and a sibling
          ``name.zst`` or ``name.gz`` exists, that file is sent with
          ``Content-Encoding``.  Every response for a file that has such a
          sibling carries ``Vary: Accept-Encoding``, so caches keep the
          variants apart.
        * A file larger than ``max_file_size`` is answered 403 with a body
          saying so, and a warning is logged: such a file is a deployment
          mistake (this is not a download server), and 403 keeps it apart
          from a missing file without being a server error.
        * Path traversal, dot-files, NUL, backslashes, symlinks leading out
          of the directory, and anything that is not a regular file: 404.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        max_age: int = 3600,
        immutable_prefix: str | None = None,
        index: str | None = "index.html",
        max_file_size: int = DEFAULT_MAX_FILE_SIZE,
    ) -> None:
        """Check the directory and store the settings.

        Args:
            directory: the directory to serve.
            max_age: seconds browsers may cache a file without asking again.
            immutable_prefix: see the class attributes.
            index: see the class attributes.
            max_file_size: see the class attributes.

        Raises:
            ValueError: ``directory`` is not a directory, or a setting is
                negative.
        """
        self.directory = os.path.realpath(directory)
        if not os.path.isdir(self.directory):
            raise ValueError(f"StaticFiles directory does not exist: {directory!r}")
        if max_age < 0 or max_file_size < 0:
            raise ValueError("max_age and max_file_size must not be negative")
        self.max_age = max_age
        self.immutable_prefix = None if immutable_prefix is None else immutable_prefix.strip("/")
        self.index = index
        self.max_file_size = max_file_size

    def get_response(self, path: str, method: str, request_headers: Mapping[str, str]) -> Response:
        """Resolve, read and build in one blocking call.

        Args:
            path: the decoded path below the directory (the part after the
                mount prefix), with or without a leading ``/``.
            method: the request method.
            request_headers: the request's ``Headers``.

        Returns:
            The response, never raising for anything the client sends.
        """
        found = self.resolve(path, method, request_headers)
        if isinstance(found, Response):
            return found
        try:
            data = read_file(found.path, self.max_file_size)
        except OSError as exc:
            # Deleted, replaced or grown since resolve() looked at it.
            logger.debug("static file %s vanished before reading: %s", found.path, exc)
            return _not_found()
        return self.build(found, data)

    def resolve(
        self, path: str, method: str, request_headers: Mapping[str, str]
    ) -> FileInfo | Response:
        """Find the file for ``path`` and decide the answer, without reading.

        Args:
            path: the decoded path below the directory.
            method: the request method.
            request_headers: the request's ``Headers`` (for conditional
                requests and ``Accept-Encoding``).

        Returns:
            A ``FileInfo`` to read and ``build``, or a finished response:
            304, 403 (too large), 404 or 405.
        """
        if method not in ("GET", "HEAD"):
            return PlainTextResponse(
                "Method Not Allowed", status_code=405, headers=[("allow", "GET, HEAD")]
            )
        parts = _safe_parts(path)
        if parts is None:
            return _not_found()
        candidate = os.path.join(self.directory, *parts)
        try:
            found = self._regular_file(candidate)
            if found is None and self.index is not None:
                candidate = os.path.join(candidate, self.index)
                found = self._regular_file(candidate)
        except (OSError, ValueError):
            # ENAMETOOLONG, ELOOP, EACCES, an unencodable name...: all 404.
            found = None
        if found is None:
            return _not_found()
        real, info = found

        variants: dict[str, tuple[str, os.stat_result]] = {}
        for token, suffix in _ENCODINGS:
            try:
                variant = self._regular_file(candidate + suffix)
            except (OSError, ValueError):
                variant = None
            if variant is not None:
                variants[token] = variant
        # Offered in _ENCODINGS' order, the preferred first.
        coding = choose_encoding(request_headers.get("accept-encoding"), tuple(variants))
        if coding is not None:
            real, info = variants[coding]

        etag = f'"{info.st_size:x}-{info.st_mtime_ns:x}'
        etag += f'-{coding}"' if coding else '"'
        relative = "/".join(parts)
        if self.immutable_prefix is not None and (
            not self.immutable_prefix
            or relative == self.immutable_prefix
            or relative.startswith(self.immutable_prefix + "/")
        ):
            cache_control = _IMMUTABLE_CACHE_CONTROL
        else:
            cache_control = f"public, max-age={self.max_age}"
        validators = [
            ("etag", etag),
            ("last-modified", formatdate(info.st_mtime, usegmt=True)),
            ("cache-control", cache_control),
        ]
        if variants:
            validators.append(("vary", "Accept-Encoding"))

        if _not_modified(request_headers, etag, info.st_mtime):
            # RFC 9110 section 15.4.5: a 304 repeats the validators and the
            # caching headers a 200 would carry, and nothing else.
            return Response(status_code=304, headers=validators)

        if info.st_size > self.max_file_size:
            logger.warning(
                "static file %s is %d bytes, over max_file_size=%d: refused",
                real,
                info.st_size,
                self.max_file_size,
            )
            return PlainTextResponse(
                f"File too large to serve (over {self.max_file_size} bytes).", status_code=403
            )

        headers = [("content-type", _content_type(candidate)), *validators]
        if coding is not None:
            headers.append(("content-encoding", coding))
        headers.append(("x-content-type-options", "nosniff"))
        return FileInfo(path=real, size=info.st_size, headers=tuple(headers))

    def build(self, file_info: FileInfo, data: bytes) -> Response:
        """Make the 200 response for a resolved file and its content.

        Args:
            file_info: what ``resolve`` returned.
            data: what ``read_file(file_info.path, ...)`` returned.
        """
        return Response(data, status_code=200, headers=file_info.headers)

    def _regular_file(self, candidate: str) -> tuple[str, os.stat_result] | None:
        """``(real path, stat)`` if ``candidate`` is a regular file inside."""
        real = os.path.realpath(candidate)
        # The check that makes symlinks safe: wherever the links lead, the
        # file opened must be under the directory.
        if os.path.commonpath([self.directory, real]) != self.directory:
            return None
        try:
            info = os.stat(real)
        except FileNotFoundError:
            return None
        return (real, info) if stat.S_ISREG(info.st_mode) else None


def _not_found() -> Response:
    return PlainTextResponse("Not Found", status_code=404)


def _safe_parts(path: str) -> list[str] | None:
    """Split a request path into safe segments, or ``None`` to refuse it.

    Refused: NUL (truncates paths in C), backslash (a separator on Windows,
    and never needed in a URL), ``..``, and dot-files such as ``.git`` or
    ``.env``, which are never meant to be public.  Empty and ``.`` segments
    are dropped, so a leading ``/`` or ``//`` only means "from the root".
    """
    if "\x00" in path or "\\" in path:
        return None
    parts = [part for part in path.split("/") if part not in ("", ".")]
    if any(part.startswith(".") for part in parts):
        return None
    return parts


def _content_type(filename: str) -> str:
    name = os.path.basename(filename)
    media_type = _MIME_OVERRIDES.get(os.path.splitext(name)[1].lower())
    if media_type is None:
        # "./" keeps a name such as "data:x" from being parsed as a URL.
        guessed, encoding = _MIME.guess_type("./" + name)
        # A ".tar.gz" guesses as tar plus a gzip encoding; served as is, the
        # browser would get gzip bytes labelled tar, so call it opaque.
        media_type = guessed if guessed and encoding is None else "application/octet-stream"
    if media_type.startswith("text/"):
        media_type += "; charset=utf-8"
    return media_type


def choose_encoding(accept_encoding: str | None, available: tuple[str, ...]) -> str | None:
    """The best of ``available`` that ``Accept-Encoding`` accepts, or ``None``.

    RFC 9110 section 12.5.3: codings listed with ``q=0`` are refused, ``*``
    stands for codings not listed; among acceptable codings the highest
    q-value wins, ties going to the order of ``available``.  A malformed
    q-value counts as 0 (an invalid weight makes the item unusable, not
    fatal).  No header: none (identity).
    """
    if not accept_encoding or not available:
        return None
    qvalues: dict[str, float] = {}
    for item in accept_encoding.split(","):
        token, *params = item.split(";")
        token = token.strip().lower()
        if not token:
            continue
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                value = value.strip()
                q = float(value) if _QVALUE_RE.fullmatch(value) else 0.0
        qvalues.setdefault(token, q)
    best: str | None = None
    best_q = 0.0
    for coding in available:
        q = qvalues.get(coding, qvalues.get("*", 0.0))
        # Strictly greater: on a tie the earlier coding stays.
        if q > best_q:
            best, best_q = coding, q
    return best


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """Whether an ``If-None-Match`` field value matches ``etag``.

    RFC 9110 section 13.1.2: the field is ``"*"`` (any current
    representation) or a list of entity-tags, compared with the *weak*
    comparison function (section 8.8.3.2): two tags match when their opaque
    tags are equal, whether or not either is marked weak (``W/``).  A
    missing field (``None``) matches nothing.

    Args:
        if_none_match: the field value, as received.
        etag: the current representation's entity-tag, quoted
            (``'"abc"'``), strong or weak.
    """
    if if_none_match is None:
        return False
    if if_none_match.strip() == "*":
        return True
    return etag.removeprefix("W/") in _ETAG_RE.findall(if_none_match)


def _not_modified(headers: Mapping[str, str], etag: str, mtime: float) -> bool:
    if_none_match = headers.get("if-none-match")
    if if_none_match is not None:
        return etag_matches(if_none_match, etag)
    if_modified_since = headers.get("if-modified-since")
    if if_modified_since is None:
        return False
    try:
        since = parsedate_to_datetime(if_modified_since)
    except (TypeError, ValueError, IndexError, OverflowError):
        return False  # RFC 9110 section 13.1.3: ignore an invalid date.
    if since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    # HTTP dates have whole seconds; the file's sub-second part must not
    # make an unchanged file look newer than the date we sent.
    return int(mtime) <= since.timestamp()
