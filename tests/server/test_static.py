"""Tests for wsserver.server.static."""

from __future__ import annotations

import errno
import gzip
import os
from email.utils import formatdate
from pathlib import Path

import pytest

from wsserver.server.datastructures import Headers
from wsserver.server.responses import Response
from wsserver.server.routing import Router
from wsserver.server.static import (
    DEFAULT_MAX_FILE_SIZE,
    FileInfo,
    StaticFiles,
    choose_encoding,
    etag_matches,
    read_file,
)

NO_HEADERS = Headers()


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A served directory ``site`` next to a ``secret`` file outside it."""
    root = tmp_path / "site"
    root.mkdir()
    (tmp_path / "secret.txt").write_text("top secret")
    (root / "index.html").write_text("<h1>home</h1>")
    (root / "app.js").write_text("console.log(1)")
    (root / "style.css").write_text("body{}")
    (root / "data.json").write_text("{}")
    (root / "logo.png").write_bytes(b"\x89PNG\r\n")
    (root / "blob.unknownext").write_bytes(b"\x00\x01")
    (root / "archive.tar.gz").write_bytes(b"\x1f\x8b")
    (root / "module.wasm").write_bytes(b"\x00asm")
    (root / ".env").write_text("PASSWORD=x")
    (root / "docs").mkdir()
    (root / "docs" / "index.html").write_text("docs home")
    (root / "docs" / "page.txt").write_text("page")
    (root / "empty").mkdir()
    (root / "assets").mkdir()
    (root / "assets" / "app.1234.js").write_text("v1")
    return root


def get(static: StaticFiles, path: str, method: str = "GET", **headers: str) -> Response:
    pairs = [(name.replace("_", "-"), value) for name, value in headers.items()]
    return static.get_response(path, method, Headers(pairs))


# --- serving ---------------------------------------------------------------


def test_serves_file_with_headers(site: Path) -> None:
    static = StaticFiles(site)
    r = get(static, "/app.js")
    assert r.status_code == 200
    assert r.body == b"console.log(1)"
    st = (site / "app.js").stat()
    assert r.headers["content-type"] == "text/javascript; charset=utf-8"
    assert r.headers["etag"] == f'"{st.st_size:x}-{st.st_mtime_ns:x}"'
    assert r.headers["last-modified"] == formatdate(st.st_mtime, usegmt=True)
    assert r.headers["cache-control"] == "public, max-age=3600"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "vary" not in r.headers
    assert "content-encoding" not in r.headers
    assert "content-length" not in r.headers  # the connection adds it


def test_path_without_leading_slash(site: Path) -> None:
    assert get(StaticFiles(site), "style.css").body == b"body{}"


def test_head_gets_the_get_response(site: Path) -> None:
    static = StaticFiles(site)
    head = get(static, "/app.js", "HEAD")
    full = get(static, "/app.js")
    assert head.status_code == 200
    assert head.header_pairs() == full.header_pairs()
    # The connection drops the body of a HEAD answer but keeps its length.
    assert head.body == full.body


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "OPTIONS", "get"])
def test_other_methods_are_405(site: Path, method: str) -> None:
    r = get(StaticFiles(site), "/app.js", method)
    assert r.status_code == 405
    assert r.headers["allow"] == "GET, HEAD"


def test_index_files(site: Path) -> None:
    static = StaticFiles(site)
    assert get(static, "/").body == b"<h1>home</h1>"
    assert get(static, "").body == b"<h1>home</h1>"
    assert get(static, "/docs/").body == b"docs home"
    assert get(static, "/docs").body == b"docs home"
    assert get(static, "/empty/").status_code == 404
    assert get(StaticFiles(site, index=None), "/").status_code == 404


def test_missing_file_is_404(site: Path) -> None:
    r = get(StaticFiles(site), "/nope.js")
    assert r.status_code == 404
    assert r.body == b"Not Found"
    assert get(StaticFiles(site), "/app.js/inner").status_code == 404  # not a directory


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("app.js", "text/javascript; charset=utf-8"),
        ("style.css", "text/css; charset=utf-8"),
        ("index.html", "text/html; charset=utf-8"),
        ("docs/page.txt", "text/plain; charset=utf-8"),
        ("data.json", "application/json"),
        ("logo.png", "image/png"),
        ("module.wasm", "application/wasm"),
        ("blob.unknownext", "application/octet-stream"),
        ("archive.tar.gz", "application/octet-stream"),
    ],
)
def test_content_types(site: Path, name: str, content_type: str) -> None:
    assert get(StaticFiles(site), name).headers["content-type"] == content_type


def test_immutable_prefix(site: Path) -> None:
    static = StaticFiles(site, max_age=60, immutable_prefix="/assets/")
    assert (
        get(static, "/assets/app.1234.js").headers["cache-control"]
        == "public, max-age=31536000, immutable"
    )
    assert get(static, "/app.js").headers["cache-control"] == "public, max-age=60"
    # A sibling whose name merely starts with the prefix is not under it.
    (site / "assetsx.js").write_text("x")
    assert get(static, "/assetsx.js").headers["cache-control"] == "public, max-age=60"


# --- path safety -----------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "../secret.txt",
        "/../secret.txt",
        "docs/../../secret.txt",
        "docs/../index.html",  # even when it would stay inside
        "..",
        "/.env",
        "docs/.hidden",
        "app.js\x00.png",
        "..\\secret.txt",
        "docs\\..\\..\\secret.txt",
        "\\secret.txt",
        "%2e%2e/secret.txt",  # already decoded once: a literal name, absent
    ],
)
def test_traversal_and_hidden_files_are_404(site: Path, path: str) -> None:
    r = get(StaticFiles(site), path)
    assert r.status_code == 404
    assert b"secret" not in r.body


def test_absolute_paths_stay_inside(site: Path, tmp_path: Path) -> None:
    static = StaticFiles(site)
    assert get(static, str(tmp_path / "secret.txt")).status_code == 404
    assert get(static, "//etc/passwd").status_code == 404
    # An absolute-looking path names a file under the directory.
    assert get(static, "//docs//page.txt").body == b"page"


@pytest.mark.parametrize(
    "raw_path",
    [
        "/static/..%2fsecret.txt",
        "/static/%2e%2e/secret.txt",
        "/static/%2E%2E%2Fsecret.txt",
        "/static/docs/%2e%2e%2f%2e%2e%2fsecret.txt",
        "/static/..%5csecret.txt",
        "/static/app.js%00.png",
        "/static/%252e%252e/secret.txt",
    ],
)
def test_encoded_traversal_through_router_is_404(site: Path, raw_path: str) -> None:
    router = Router()
    mount = router.mount("/static", StaticFiles(site))
    match = router.match_http(raw_path, "GET")
    assert match.found
    assert match.route is mount
    r = get(mount.static, match.subpath)
    assert r.status_code == 404
    assert b"secret" not in r.body


def test_symlink_escaping_the_directory_is_404(site: Path, tmp_path: Path) -> None:
    (site / "leak.txt").symlink_to(tmp_path / "secret.txt")
    (site / "leakdir").symlink_to(tmp_path)
    static = StaticFiles(site)
    assert get(static, "/leak.txt").status_code == 404
    assert get(static, "/leakdir/secret.txt").status_code == 404


def test_symlink_inside_the_directory_is_served(site: Path) -> None:
    (site / "alias.js").symlink_to(site / "app.js")
    assert get(StaticFiles(site), "/alias.js").body == b"console.log(1)"


def test_symlinked_root_directory(site: Path, tmp_path: Path) -> None:
    link = tmp_path / "link"
    link.symlink_to(site)
    static = StaticFiles(link)
    assert static.directory == str(site.resolve())
    assert get(static, "/app.js").status_code == 200


def test_fifo_is_not_served(site: Path) -> None:
    os.mkfifo(site / "pipe")
    assert get(StaticFiles(site), "/pipe").status_code == 404
    with pytest.raises(OSError) as info:
        read_file(str(site / "pipe"))
    assert info.value.errno == errno.EINVAL


# --- conditional requests --------------------------------------------------


def test_if_none_match(site: Path) -> None:
    static = StaticFiles(site)
    first = get(static, "/app.js")
    etag = first.headers["etag"]
    for value in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        r = get(static, "/app.js", if_none_match=value)
        assert r.status_code == 304, value
        assert r.body == b""
        assert r.headers["etag"] == etag
        assert r.headers["cache-control"] == "public, max-age=3600"
        assert "last-modified" in r.headers
        assert "content-type" not in r.headers
    assert get(static, "/app.js", if_none_match='"nope"').status_code == 200
    assert get(static, "/app.js", "HEAD", if_none_match=etag).status_code == 304


@pytest.mark.parametrize(
    ("header", "etag", "matches"),
    [
        (None, '"a"', False),  # no field: nothing to match
        ("", '"a"', False),
        ('"a"', '"a"', True),
        ('"b"', '"a"', False),
        ("*", '"a"', True),  # any current representation
        ("  * ", '"a"', True),
        ('W/"a"', '"a"', True),  # weak comparison: W/ on either side
        ('"a"', 'W/"a"', True),
        ('W/"a"', 'W/"a"', True),
        ('"b", W/"a" , "c"', '"a"', True),  # a list
        ('"b","c"', '"a"', False),
        ('"a,b"', '"a,b"', True),  # a comma inside an opaque tag
        ('"a,b"', '"a"', False),
        ("a", '"a"', False),  # not an entity-tag: unquoted
        ('"a"', '"A"', False),  # opaque tags are compared exactly
    ],
)
def test_etag_matches_follows_rfc_9110(header: str | None, etag: str, matches: bool) -> None:
    assert etag_matches(header, etag) is matches


def test_etag_matches_is_exported_by_the_server_package() -> None:
    import wsserver.server

    assert wsserver.server.etag_matches is etag_matches


def test_etag_changes_with_the_file(site: Path) -> None:
    static = StaticFiles(site)
    before = get(static, "/app.js").headers["etag"]
    path = site / "app.js"
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1))
    after = get(static, "/app.js").headers["etag"]
    assert before != after
    assert get(static, "/app.js", if_none_match=before).status_code == 200


def test_if_modified_since(site: Path) -> None:
    static = StaticFiles(site)
    path = site / "app.js"
    os.utime(path, (1_700_000_000.5, 1_700_000_000.5))
    last_modified = get(static, "/app.js").headers["last-modified"]
    assert last_modified == formatdate(1_700_000_000, usegmt=True)
    assert get(static, "/app.js", if_modified_since=last_modified).status_code == 304
    later = formatdate(1_800_000_000, usegmt=True)
    assert get(static, "/app.js", if_modified_since=later).status_code == 304
    earlier = formatdate(1_600_000_000, usegmt=True)
    assert get(static, "/app.js", if_modified_since=earlier).status_code == 200
    assert get(static, "/app.js", if_modified_since="garbage").status_code == 200
    # If-None-Match takes precedence (RFC 9110 section 13.1.3).
    r = get(static, "/app.js", if_modified_since=later, if_none_match='"nope"')
    assert r.status_code == 200


# --- size limit ------------------------------------------------------------


def test_too_large_file_is_403(site: Path) -> None:
    (site / "big.bin").write_bytes(b"x" * 101)
    static = StaticFiles(site, max_file_size=100)
    r = get(static, "/big.bin")
    assert r.status_code == 403
    assert b"too large" in r.body
    (site / "ok.bin").write_bytes(b"x" * 100)
    assert get(static, "/ok.bin").status_code == 200
    assert StaticFiles(site).max_file_size == DEFAULT_MAX_FILE_SIZE == 16 * 1024 * 1024


def test_read_file_limits(site: Path) -> None:
    path = str(site / "app.js")
    assert read_file(path) == b"console.log(1)"
    assert read_file(path, 14) == b"console.log(1)"
    with pytest.raises(OSError) as info:
        read_file(path, 13)
    assert info.value.errno == errno.EFBIG
    with pytest.raises(FileNotFoundError):
        read_file(str(site / "missing"))


# --- resolve / build split -------------------------------------------------


def test_resolve_then_build(site: Path) -> None:
    static = StaticFiles(site)
    found = static.resolve("/style.css", "GET", NO_HEADERS)
    assert isinstance(found, FileInfo)
    assert found.path == str((site / "style.css").resolve())
    assert found.size == 6
    data = read_file(found.path, static.max_file_size)
    r = static.build(found, data)
    assert r.status_code == 200
    assert r.body == b"body{}"
    assert r.header_pairs() == get(static, "/style.css").header_pairs()
    assert isinstance(static.resolve("/nope", "GET", NO_HEADERS), Response)


def test_file_vanishing_between_resolve_and_read_is_404(site: Path) -> None:
    static = StaticFiles(site)
    found = static.resolve("/style.css", "GET", NO_HEADERS)
    assert isinstance(found, FileInfo)
    (site / "style.css").unlink()
    with pytest.raises(FileNotFoundError):
        read_file(found.path)
    assert get(static, "/style.css").status_code == 404


# --- precompressed variants ------------------------------------------------


@pytest.fixture
def compressed(site: Path) -> Path:
    (site / "app.js.gz").write_bytes(gzip.compress(b"console.log(1)"))
    (site / "app.js.zst").write_bytes(b"(\xb5/\xfdzstd-bytes")
    (site / "docs" / "page.txt.gz").write_bytes(gzip.compress(b"page"))
    return site


@pytest.mark.parametrize(
    ("accept", "encoding"),
    [
        ("gzip", "gzip"),
        ("gzip, deflate, br", "gzip"),
        ("zstd", "zstd"),
        ("gzip, zstd", "zstd"),
        ("gzip;q=1, zstd;q=0.5", "gzip"),
        ("zstd;q=0, gzip", "gzip"),
        ("ZSTD", "zstd"),
        ("*", "zstd"),
        ("gzip;q=0, zstd;q=0", None),
        ("*;q=0", None),
        ("br", None),
        ("identity", None),
        ("", None),
        ("zstd;q=nan, gzip;q=2", None),
    ],
)
def test_precompressed_selection(compressed: Path, accept: str, encoding: str | None) -> None:
    static = StaticFiles(compressed)
    r = get(static, "/app.js", accept_encoding=accept)
    assert r.status_code == 200
    assert r.headers["vary"] == "Accept-Encoding"
    assert r.headers["content-type"] == "text/javascript; charset=utf-8"
    assert r.headers.get("content-encoding") == encoding
    if encoding == "gzip":
        assert gzip.decompress(r.body) == b"console.log(1)"
    elif encoding == "zstd":
        assert r.body == b"(\xb5/\xfdzstd-bytes"
    else:
        assert r.body == b"console.log(1)"


def test_precompressed_variants_have_their_own_etags(compressed: Path) -> None:
    static = StaticFiles(compressed)
    plain = get(static, "/app.js").headers["etag"]
    gz = get(static, "/app.js", accept_encoding="gzip").headers["etag"]
    zst = get(static, "/app.js", accept_encoding="zstd").headers["etag"]
    assert len({plain, gz, zst}) == 3
    assert gz.endswith('-gzip"')
    not_modified = get(static, "/app.js", accept_encoding="gzip", if_none_match=gz)
    assert not_modified.status_code == 304
    assert not_modified.headers["vary"] == "Accept-Encoding"
    assert get(static, "/app.js", if_none_match=gz).status_code == 200


def test_precompressed_only_where_present(compressed: Path) -> None:
    static = StaticFiles(compressed)
    r = get(static, "/docs/page.txt", accept_encoding="zstd, gzip")
    assert r.headers["content-encoding"] == "gzip"
    other = get(static, "/style.css", accept_encoding="gzip")
    assert "content-encoding" not in other.headers
    assert "vary" not in other.headers


def test_precompressed_symlink_outside_is_ignored(site: Path, tmp_path: Path) -> None:
    (tmp_path / "evil.gz").write_bytes(b"evil")
    (site / "app.js.gz").symlink_to(tmp_path / "evil.gz")
    r = get(StaticFiles(site), "/app.js", accept_encoding="gzip")
    assert r.body == b"console.log(1)"
    assert "content-encoding" not in r.headers


# --- construction ----------------------------------------------------------


def test_constructor_checks(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        StaticFiles(tmp_path / "missing")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError):
        StaticFiles(tmp_path / "file")
    with pytest.raises(ValueError):
        StaticFiles(tmp_path, max_age=-1)


# The negotiation itself, as the runtime plugin uses it for its own assets.


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ("identity", None),
        ("gzip", "gzip"),
        ("zstd", "zstd"),
        ("gzip, deflate, br, zstd", "zstd"),  # Chrome's: the best we have
        ("gzip;q=1, zstd;q=0.5", "gzip"),
        ("zstd;q=0, gzip", "gzip"),
        ("*", "zstd"),
        ("*;q=0.1, gzip;q=0.2", "gzip"),
        ("ZSTD", "zstd"),
        ("zstd;q=2", None),  # malformed q-value: counts as 0
        ("zstd;q=0.", None),  # zero, written with a dot
        ("zstd;q=0.001", "zstd"),
        ("gzip;q=0, zstd;q=0", None),
        ("br", None),
    ],
)
def test_choose_encoding(header: str | None, expected: str | None) -> None:
    assert choose_encoding(header, ("zstd", "gzip")) == expected


def test_choose_encoding_without_variants() -> None:
    assert choose_encoding("gzip", ()) is None
