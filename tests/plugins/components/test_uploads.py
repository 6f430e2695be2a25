"""Tests for wsserver.plugins.components.uploads: the declaration's limits,
the transfer on disk, the wire messages' validation; then uploads from
Chromium (5 MiB with progress, refused past the limit, cancelled, cut by a
disconnect)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from wsserver.plugins.components import Component, ComponentApp, PageConnection, State, h
from wsserver.plugins.components.html import Element
from wsserver.plugins.components.uploads import (
    UPLOAD_EVENT,
    FileInfo,
    MiB,
    Transfer,
    UploadDirectory,
    UploadEvent,
    UploadHandler,
    UploadRefused,
    UploadSpec,
    decode_chunk,
    parse_upload_request,
)
from wsserver.plugins.runtime.messages import Envelope, MalformedMessage

from ..._live import http_get, in_memory
from .._fakes import FakeWebSocket, fake_session
from ._harness import WAIT, AppHarness, fast_app, text, wait_until

if TYPE_CHECKING:
    from playwright.async_api import Browser

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(120)]


def envelope(kind: str, **fields: Any) -> Envelope:
    return Envelope("cv", kind, fields)


def noop(event: UploadEvent) -> None:
    pass


# -- the declaration --------------------------------------------------------------


async def test_the_declaration_refuses_with_clear_messages() -> None:
    spec = UploadSpec(max_size=1000, max_files=2, accept=("image/*", "application/pdf"))
    spec.check([FileInfo("a.png", 1000, "image/png"), FileInfo("b.pdf", 10, "application/pdf")])
    with pytest.raises(UploadRefused, match="No file"):
        spec.check([])
    with pytest.raises(UploadRefused, match=r"Too many files: 3 selected, at most 2"):
        spec.check([FileInfo("a.png", 1, "image/png")] * 3)
    with pytest.raises(UploadRefused, match=r"'big.png' is too large: 1001 bytes, at most 1000"):
        spec.check([FileInfo("big.png", 1001, "image/png")])
    with pytest.raises(UploadRefused, match=r"of type 'text/html', not one of image/\*"):
        spec.check([FileInfo("x.html", 1, "text/html")])
    with pytest.raises(ValueError, match="positive"):
        UploadSpec(max_size=0)
    with pytest.raises(ValueError, match="max_files"):
        UploadSpec(max_files=0)
    with pytest.raises(ValueError, match="accept"):
        UploadSpec(accept=("a,b",))
    with pytest.raises(TypeError):
        UploadSpec(max_size=True)


async def test_element_upload_binds_the_pseudo_event_and_sets_the_picker() -> None:
    element = h.input(key="f").upload(noop, max_size=5, max_files=3, accept=("image/png",))
    assert element.props == {"type": "file", "accept": "image/png", "multiple": True}
    binding = element.events[UPLOAD_EVENT]
    assert isinstance(binding.handler, UploadHandler)
    assert binding.handler.spec == UploadSpec(5, 3, ("image/png",))
    with pytest.raises(ValueError, match="input"):
        Element("div").upload(noop)
    with pytest.raises(TypeError):
        UploadHandler("nope", UploadSpec())  # type: ignore[arg-type]


# -- the transfer on disk -----------------------------------------------------------


async def test_files_get_server_chosen_names_inside_the_directory(tmp_path: Path) -> None:
    directory = UploadDirectory(tmp_path / "up")
    infos = [FileInfo("../../etc/passwd", 3, "text/plain"), FileInfo("empty", 0, "")]
    transfer = Transfer("t", "k", UploadHandler(noop, UploadSpec()), None, infos, directory)
    assert not transfer.complete and transfer.percent == 0
    transfer.write(0, 0, b"ab")
    assert transfer.percent == 66
    transfer.write(0, 2, b"c")
    assert transfer.complete and transfer.percent == 100
    files = transfer.finish()
    assert [f.name for f in files] == ["../../etc/passwd", "empty"]
    for file in files:
        assert file.path.parent == (tmp_path / "up").resolve()
        assert ".." not in file.path.name and len(file.path.name) == 32
        assert oct(file.path.stat().st_mode & 0o777) == "0o600"
    assert files[0].path.read_bytes() == b"abc" and files[1].path.read_bytes() == b""
    assert sorted(os.listdir(tmp_path / "up")) == sorted(f.path.name for f in files)
    assert oct((tmp_path / "up").stat().st_mode & 0o777) == "0o700"
    transfer.abort()  # finished: its files are the application's, kept
    assert all(f.path.exists() for f in files)


async def test_bad_chunks_are_refused_and_abort_removes_the_partial_files(
    tmp_path: Path,
) -> None:
    directory = UploadDirectory(tmp_path)
    infos = [FileInfo("a", 4, "")]
    transfer = Transfer("t", "k", UploadHandler(noop, UploadSpec()), None, infos, directory)
    with pytest.raises(UploadRefused, match="did not announce"):
        transfer.write(1, 0, b"x")
    with pytest.raises(UploadRefused, match="out of order"):
        transfer.write(0, 2, b"x")
    with pytest.raises(UploadRefused, match="larger than announced"):
        transfer.write(0, 0, b"12345")
    transfer.write(0, 0, b"12")
    assert [p.suffix for p in tmp_path.iterdir()] == [".part"]
    transfer.abort()
    transfer.abort()
    assert list(tmp_path.iterdir()) == []
    event = transfer.event("cancelled", message="why")
    assert (event.kind, event.received, event.total, event.percent) == ("cancelled", 2, 4, 50)


async def test_the_default_directory_is_a_private_temporary_one() -> None:
    directory = UploadDirectory(None)
    path = directory.path
    try:
        assert path.is_dir() and path.name.startswith("wsserver-uploads-")
        assert oct(path.stat().st_mode & 0o777) == "0o700"
        assert directory.path is path
    finally:
        path.rmdir()


# -- the wire -----------------------------------------------------------------------


async def test_requests_and_chunks_are_validated() -> None:
    ref, key, files = parse_upload_request(
        envelope("up", ref=1, key="r/0", files=[{"name": "n" * 300, "size": 5, "type": "t"}])
    )
    assert (ref, key, files) == (1, "r/0", [FileInfo("n" * 255, 5, "t")])
    for bad in (
        {"ref": 1, "key": "k", "files": ["x"]},
        {"ref": 1, "key": "k", "files": [{"name": 1, "size": 1}]},
        {"ref": 1, "key": "k", "files": [{"name": "a", "size": -1}]},
        {"ref": 1, "key": "k", "files": [{"name": "a", "size": True}]},
        {"ref": 1, "key": "k" * 5000, "files": []},
        {"ref": "1", "key": "k", "files": []},
    ):
        with pytest.raises(MalformedMessage):
            parse_upload_request(envelope("up", **bad))
    data = base64.b64encode(b"hello").decode()
    assert decode_chunk(envelope("up_data", id="t", file=0, offset=0, data=data), 5) == (
        "t",
        0,
        0,
        b"hello",
    )
    with pytest.raises(MalformedMessage, match="over"):
        decode_chunk(envelope("up_data", id="t", file=0, offset=0, data=data * 3), 5)
    with pytest.raises(MalformedMessage, match="base64"):
        decode_chunk(envelope("up_data", id="t", file=0, offset=0, data="!!!!"), 5)


# -- the protocol, over a fake socket -------------------------------------------------


class Small(Component):
    def render(self) -> Element:
        return h.div(h.input(key="f").upload(self.on_upload, max_size=10, max_files=2))

    def on_upload(self, event: UploadEvent) -> None:
        SMALL_EVENTS.append(event)
        if event.kind == "start" and event.names == ("boom",):
            raise RuntimeError("a handler's bug")


SMALL_EVENTS: list[UploadEvent] = []


async def attached(app: ComponentApp) -> tuple[PageConnection, FakeWebSocket, Any]:
    async with in_memory(app) as served:
        body = (await http_get(served, "/")).body.decode()
    page_id = body.split('data-cv-page="', 1)[1].split('"', 1)[0]
    session, websocket = fake_session()
    connection = PageConnection(app, session)
    run = asyncio.gather(session.run(), connection.run())
    await websocket.next_sent("rt", "init")
    websocket.feed(
        {"p": "cv", "k": "attach", "page": page_id, "seq": 0, "count": body.count('data-k="')}
    )
    await websocket.next_sent("cv", "ready")
    return connection, websocket, run


def up(ref: int, *files: tuple[str, int], key: str = "r/.f") -> dict[str, Any]:
    described = [{"name": name, "size": size, "type": "text/plain"} for name, size in files]
    return {"p": "cv", "k": "up", "ref": ref, "key": key, "files": described}


def chunk(transfer: str, data: bytes, offset: int = 0, file: int = 0) -> dict[str, Any]:
    encoded = base64.b64encode(data).decode()
    return {
        "p": "cv",
        "k": "up_data",
        "id": transfer,
        "file": file,
        "offset": offset,
        "data": encoded,
    }


async def test_the_upload_protocol_refuses_stops_and_cancels_cleanly(tmp_path: Path) -> None:
    SMALL_EVENTS.clear()
    app = ComponentApp({"/": Small}, upload_dir=tmp_path, max_uploads=1)
    connection, websocket, run = await attached(app)
    try:
        # An input that is not on the page, and too large a file: refused.
        websocket.feed(up(1, ("a", 1), key="r/9"))
        assert (await websocket.next_sent("cv", "up_err"))["message"] == (
            "This upload is no longer on the page."
        )
        websocket.feed(up(2, ("big", 11)))
        refused = await websocket.next_sent("cv", "up_err")
        assert refused == {
            "p": "cv",
            "k": "up_err",
            "ref": 2,
            "message": "'big' is too large: 11 bytes, at most 10 bytes allowed.",
        }
        assert SMALL_EVENTS[-1].kind == "error" and SMALL_EVENTS[-1].message == refused["message"]

        # Empty files are complete at once.
        websocket.feed(up(3, ("empty", 0)))
        go = await websocket.next_sent("cv", "up_go")
        assert go["ref"] == 3 and go["window"] == 4 and go["chunk"] == 65536
        await websocket.next_sent("cv", "up_done")
        await wait_until(lambda: SMALL_EVENTS[-1].kind == "complete")
        (empty,) = SMALL_EVENTS[-1].files
        assert empty.size == 0 and empty.path.read_bytes() == b""
        empty.path.unlink()

        # A chunk out of order stops the transfer; its files are removed.
        websocket.feed(up(4, ("a", 3), ("b", 2)))
        transfer = (await websocket.next_sent("cv", "up_go"))["id"]
        websocket.feed(chunk(transfer, b"abc"))
        assert (await websocket.next_sent("cv", "up_ack"))["received"] == 3
        websocket.feed(chunk(transfer, b"b", offset=1, file=1))
        stopped = await websocket.next_sent("cv", "up_cancel")
        assert stopped["message"] == "The upload's chunks arrived out of order."
        await wait_until(lambda: SMALL_EVENTS[-1].kind == "error")
        assert list(tmp_path.iterdir()) == [] and connection.uploads == {}
        websocket.feed(chunk(transfer, b"late"))  # for a transfer gone: ignored

        # One transfer at a time here; the browser cancels it.
        websocket.feed(up(5, ("c", 3)))
        transfer = (await websocket.next_sent("cv", "up_go"))["id"]
        websocket.feed(up(6, ("d", 3)))
        assert (await websocket.next_sent("cv", "up_err"))["message"] == (
            "Too many uploads at once: at most 1."
        )
        websocket.feed({"p": "cv", "k": "up_cancel", "id": transfer})
        websocket.feed({"p": "cv", "k": "up_cancel", "id": transfer})  # twice: harmless
        await wait_until(lambda: SMALL_EVENTS[-1].kind == "cancelled")
        assert list(tmp_path.iterdir()) == []
        assert not await connection.cancel_upload(transfer)

        # A handler that fails is logged; the upload goes on.
        websocket.feed(up(7, ("boom", 2)))
        transfer = (await websocket.next_sent("cv", "up_go"))["id"]
        websocket.feed(chunk(transfer, b"ok"))
        await websocket.next_sent("cv", "up_done")
        await wait_until(lambda: SMALL_EVENTS[-1].kind == "complete")
        assert SMALL_EVENTS[-1].files[0].path.read_bytes() == b"ok"
    finally:
        websocket.disconnect()
        with pytest.raises(asyncio.CancelledError):
            run.cancel()
            await run


async def test_a_directory_that_cannot_be_written_refuses_uploads(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    app = ComponentApp({"/": Small}, upload_dir=blocker / "uploads")
    connection, websocket, run = await attached(app)
    websocket.feed(up(1, ("a", 1)))
    assert (await websocket.next_sent("cv", "up_err"))["message"] == (
        "The server cannot store files now."
    )
    assert connection.uploads == {}
    websocket.disconnect()
    with pytest.raises(asyncio.CancelledError):
        run.cancel()
        await run


# -- in Chromium ----------------------------------------------------------------------


class Uploader(Component):
    percent = State(0)
    progress: State[list[int]] = State(factory=list)
    status = State("")
    saved: State[list[str]] = State(factory=list)
    cancel_at = State(-1)

    def render(self) -> Element:
        return h.div(
            h.input(key="pick", id="pick").upload(self.on_upload, max_size=6 * MiB),
            h.span(f"{self.percent}%", id="pct"),
            h.span(self.status, id="status"),
        )

    async def on_upload(self, event: UploadEvent) -> None:
        if event.kind == "progress":
            self.percent = event.percent
            self.progress.append(event.percent)
            if self.cancel_at >= 0 and event.percent >= self.cancel_at:
                assert self.connection is not None
                await self.connection.cancel_upload(event.transfer, "Stopped by the server.")
        elif event.kind == "complete":
            self.saved = [str(f.path) for f in event.files]
            self.status = f"done: {event.files[0].name} {event.files[0].size}"
        else:
            self.status = f"{event.kind}: {event.message}"
        UPLOAD_EVENTS.append(event)


UPLOAD_EVENTS: list[UploadEvent] = []


def make_app(tmp_path: Path) -> Any:
    UPLOAD_EVENTS.clear()
    app = fast_app(upload_dir=tmp_path / "uploads")
    app.page("/", Uploader)
    return app


async def test_a_5_mib_upload_reaches_100_percent_and_lands_byte_for_byte(
    browser: Browser, tmp_path: Path
) -> None:
    source = tmp_path / "photo.bin"
    payload = os.urandom(5 * MiB)
    source.write_bytes(payload)
    async with AppHarness(make_app(tmp_path)) as harness:
        page = await harness.open(browser)
        await page.set_input_files("#pick", str(source))
        await page.wait_for_function(
            "() => document.getElementById('status').textContent.startsWith('done')",
            timeout=WAIT * 4000,
        )
        assert await text(page, "#status") == f"done: photo.bin {5 * MiB}"
        assert await text(page, "#pct") == "100%"
        root = harness.connection().root
        assert isinstance(root, Uploader)
        assert root.progress[-1] == 100 and len(root.progress) > 10
        assert root.progress == sorted(root.progress)
        (saved,) = root.saved
        stored = Path(saved)
        assert stored.parent == (tmp_path / "uploads").resolve()
        assert hashlib.sha256(stored.read_bytes()).digest() == hashlib.sha256(payload).digest()
        assert os.listdir(tmp_path / "uploads") == [stored.name]  # no .part left
        kinds = [e.kind for e in UPLOAD_EVENTS]
        assert kinds[0] == "start" and kinds[-1] == "complete"
        states = await page.evaluate(
            "() => window.__cv.filter(e => e.kind === 'upload').map(e => e.state)"
        )
        assert states[:2] == ["requested", "started"] and states[-1] == "complete"
        assert harness.errors == []


async def test_an_upload_past_the_limit_is_refused_with_a_clear_message(
    browser: Browser, tmp_path: Path
) -> None:
    source = tmp_path / "big.bin"
    source.write_bytes(b"\0" * (6 * MiB + 1))
    async with AppHarness(make_app(tmp_path)) as harness:
        page = await harness.open(browser)
        await page.set_input_files("#pick", str(source))
        await page.wait_for_function(
            "() => document.getElementById('status').textContent.startsWith('error')",
            timeout=WAIT * 1000,
        )
        message = "'big.bin' is too large: 6.0 MiB, at most 6.0 MiB allowed."
        assert await text(page, "#status") == f"error: {message}"
        refused = await page.evaluate(
            "() => window.__cv.filter(e => e.kind === 'upload' && e.state === 'refused')"
            ".map(e => e.message)"
        )
        assert refused == [message]
        assert not (tmp_path / "uploads").exists() or os.listdir(tmp_path / "uploads") == []


async def test_a_cancelled_upload_leaves_nothing_on_disk(browser: Browser, tmp_path: Path) -> None:
    source = tmp_path / "photo.bin"
    source.write_bytes(os.urandom(4 * MiB))
    async with AppHarness(make_app(tmp_path)) as harness:
        page = await harness.open(browser)
        root = harness.connection().root
        assert isinstance(root, Uploader)
        root.cancel_at = 1
        await page.set_input_files("#pick", str(source))
        await page.wait_for_function(
            "() => document.getElementById('status').textContent.startsWith('cancelled')",
            timeout=WAIT * 1000,
        )
        assert await text(page, "#status") == "cancelled: Stopped by the server."
        assert root.progress[-1] < 100
        assert os.listdir(tmp_path / "uploads") == []
        states = await page.evaluate(
            "() => window.__cv.filter(e => e.kind === 'upload').map(e => e.state)"
        )
        assert "cancelled" in states and "complete" not in states
        assert harness.connection().uploads == {}


async def test_a_disconnect_removes_the_partial_files(browser: Browser, tmp_path: Path) -> None:
    source = tmp_path / "photo.bin"
    source.write_bytes(os.urandom(4 * MiB))
    async with AppHarness(make_app(tmp_path)) as harness:
        page = await harness.open(browser)
        connection = harness.connection()
        started = asyncio.Event()
        root = connection.root
        assert isinstance(root, Uploader)
        original = root.on_upload

        async def spy(event: UploadEvent) -> None:
            await original(event)
            if event.kind == "progress":
                started.set()

        root.on_upload = spy  # type: ignore[method-assign]
        root.update()
        await connection.refresh()
        await page.set_input_files("#pick", str(source))
        await asyncio.wait_for(started.wait(), WAIT)
        assert [p.suffix for p in (tmp_path / "uploads").iterdir()] == [".part"]
        harness.abort(connection)
        await wait_until(lambda: list((tmp_path / "uploads").iterdir()) == [])
        assert connection.uploads == {}
