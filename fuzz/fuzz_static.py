"""Fuzz target: static file paths and conditional headers (``server/static.py``).

INVARIANT: a response, never an exception, never a file from outside the
directory.  ``StaticFiles.get_response`` serves a small tree made for the
run (a gzip and a zstd variant, an index, a subdirectory, a dot-file, a
symlink inside and one leading out, a file over ``max_file_size``).  On any
path and any ``Accept-Encoding``, ``If-None-Match`` and
``If-Modified-Since``:

* it returns, with status 200, 304, 403, 404 or 405;
* a 200's body is one of the tree's public files (never the dot-file, the
  file the outward symlink points to, nor the large one), with an
  ``ETag``; a ``Content-Encoding`` goes with the variant's bytes and a
  ``Vary: Accept-Encoding``;
* a 304 has no body and carries the ``ETag`` it matched;
* ``choose_encoding`` only picks a coding it was offered, and
  ``etag_matches`` never raises.

Input: byte 0 picks the method (bits 0-1) and which of the three headers
are sent (bits 2-4); the rest, decoded as UTF-8 (invalid bytes replaced,
as the URL's path is decoded), is split at NUL bytes into the path and the
three header values.

Run: ``python fuzz/fuzz_static.py [libFuzzer args] [corpus dirs]``.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["wsserver"]):
    from wsserver.server.static import StaticFiles, choose_encoding, etag_matches

METHODS = ("GET", "HEAD", "POST", "GET")
MAX_FILE_SIZE = 64
_STATUSES = {200, 304, 403, 404, 405}


def _tree() -> tuple[StaticFiles, set[bytes], set[bytes]]:
    """The served directory; the public contents; contents never to be served."""
    base = Path(tempfile.mkdtemp(prefix="wsserver-fuzz-static-"))
    atexit.register(shutil.rmtree, base, True)
    root = base / "public"
    files = {
        "index.html": b"<p>index</p>",
        "a.txt": b"plain a",
        "a.txt.gz": b"gzip of a",
        "a.txt.zst": b"zstd of a",
        "sub/index.html": b"<p>sub index</p>",
        "sub/b.css": b"b { }",
        "assets/app.1234.js": b"immutable js",
        "caf\u00e9 \u00fc.txt": b"non-ascii name",
        "data:x": b"colon name",
    }
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    secret = b"DOT-FILE SECRET"
    outside = b"OUTSIDE SECRET"
    large = b"L" * (MAX_FILE_SIZE + 1)
    (root / ".env").write_bytes(secret)
    (root / "sub" / ".git").mkdir()
    (root / "sub" / ".git" / "config").write_bytes(secret)
    (root / "big.bin").write_bytes(large)
    (base / "outside.txt").write_bytes(outside)
    os.symlink(base / "outside.txt", root / "out.txt")
    os.symlink(root / "sub", root / "sub-link")
    os.symlink(root / "a.txt", root / "in.txt")
    static = StaticFiles(root, max_age=60, immutable_prefix="assets", max_file_size=MAX_FILE_SIZE)
    return static, set(files.values()), {secret, outside, large}


_STATIC, _PUBLIC, _FORBIDDEN = _tree()


def TestOneInput(data: bytes) -> None:
    if not data:
        return
    config = data[0]
    fields = data[1:].decode("utf-8", "replace").split("\x00", 3)
    fields += [""] * (4 - len(fields))
    path, accept_encoding, if_none_match, if_modified_since = fields
    headers: dict[str, str] = {}
    if config & 0x04:
        headers["accept-encoding"] = accept_encoding
    if config & 0x08:
        headers["if-none-match"] = if_none_match
    if config & 0x10:
        headers["if-modified-since"] = if_modified_since
    method = METHODS[config & 0x03]
    response = _STATIC.get_response(path, method, headers)
    status = response.status_code
    assert status in _STATUSES, f"status {status}"
    body = bytes(response.body)
    assert body not in _FORBIDDEN, f"served {body!r} for {path!r}"
    answer = {name.lower(): value for name, value in response.headers.raw}
    if status == 200:
        assert body in _PUBLIC, f"served {body!r} for {path!r}"
        assert "etag" in answer
        coding = answer.get("content-encoding")
        assert coding in (None, "gzip", "zstd")
        if coding is not None:
            assert body == {"gzip": b"gzip of a", "zstd": b"zstd of a"}[coding]
            assert answer.get("vary") == "Accept-Encoding"
    elif status == 304:
        assert body == b"" and "etag" in answer
        assert "if-none-match" in headers or "if-modified-since" in headers
    elif status == 405:
        assert method not in ("GET", "HEAD")
    offered = ("zstd", "gzip")
    assert choose_encoding(accept_encoding, offered) in (None, *offered)
    etag_matches(if_none_match, '"1-2"')


# -- seeds ------------------------------------------------------------------


def _case(config: int, path: str, *headers: str) -> bytes:
    return bytes([config]) + "\x00".join((path, *headers)).encode()


def seeds() -> dict[str, bytes]:
    """Paths browsers ask for, traversals, and conditional requests."""
    return {
        "root": _case(0, "/"),
        "file": _case(0, "/a.txt"),
        "gzip": _case(0x04, "/a.txt", "gzip, deflate, br"),
        "zstd-q": _case(0x04, "a.txt", "gzip;q=0.5, zstd;q=0.9, *;q=0"),
        "etag": _case(0x08, "/a.txt", "", 'W/"x", "y"'),
        "since": _case(0x10, "/a.txt", "", "", "Sat, 01 Jan 2050 00:00:00 GMT"),
        "since-odd": _case(0x10, "/a.txt", "", "", "Fri, 31 Dec 9999 23:59:59 -2359"),
        "subdir": _case(0, "/sub/"),
        "immutable": _case(1, "/assets/app.1234.js"),
        "traversal": _case(0, "/../outside.txt"),
        "encoded-traversal": _case(0, "/sub/../../outside.txt"),
        "dot-file": _case(0, "/.env"),
        "dot-dir": _case(0, "/sub/.git/config"),
        "symlink-out": _case(0, "/out.txt"),
        "symlink-dir": _case(0, "/sub-link/b.css"),
        "backslash": _case(0, "/sub\\..\\..\\outside.txt"),
        "nul": _case(0, "/a.txt\x00.png"),
        "large": _case(0, "/big.bin"),
        "post": _case(2, "/a.txt"),
        "non-ascii": _case(0, "/caf\u00e9 \u00fc.txt"),
        "colon": _case(0, "/data:x"),
        "long": _case(0, "/" + "a" * 5000),
    }


def main() -> None:
    # The warning about the large file is the point of max_file_size, not news.
    logging.getLogger("wsserver").setLevel(logging.CRITICAL)
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
