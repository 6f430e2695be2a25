"""File uploads over the page's WebSocket, with progress.

A component declares an upload on a file input::

    class Avatar(Component):
        percent = State(0)

        def render(self) -> Element:
            return h.div(
                h.input(type="file", key="pick").upload(
                    self.on_upload, max_size=8 * MiB, accept=("image/png", "image/jpeg")
                ),
                h.progress(value=str(self.percent), max="100"),
            )

        def on_upload(self, event: UploadEvent) -> None:
            if event.kind == "progress":
                self.percent = event.percent
            elif event.kind == "complete":
                shutil.move(event.files[0].path, ...)  # the file is the app's now

When the user picks files, the browser asks (``cv/up``: names, sizes,
types); the server checks them against the declaration and answers with a
transfer id (``cv/up_go``) or a clear refusal (``cv/up_err``).  The browser
then sends each file in chunks (``cv/up_data``, base64 inside the runtime's
JSON envelope, whose protocol is text only), at most ``upload_window``
chunks ahead of the server's acknowledgements (``cv/up_ack``): each chunk
is written to disk as it arrives, in the receive loop, so one transfer
holds at most one chunk in memory and a slow disk slows the browser down
(TCP back-pressure) instead of filling memory.  The handler receives
``UploadEvent``s: ``start``, ``progress`` (each whole percent, coalesced
when the handlers run behind), ``complete`` (with the files on disk),
``error`` and ``cancelled``.

**Where files go.**  Into ``PageSettings.upload_dir`` only, under names the
server draws at random (``secrets.token_hex``): the browser's file name is
kept as metadata for display, never used as a path, so no name can point
outside the directory.  Files are created with ``O_EXCL`` and mode 0600.
While a transfer runs its file is ``<name>.part``; it is renamed when the
last byte is written.  A transfer that is refused mid-way, cancelled (by
the browser, or ``Transfer.cancel`` from the server), or cut by the end of
the connection has its partial files removed.  A completed file belongs to
the application, which moves or deletes it.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fnmatch
import logging
import os
import secrets
import tempfile
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ..runtime.messages import Envelope, MalformedMessage

__all__ = [
    "DEFAULT_MAX_FILES",
    "DEFAULT_MAX_UPLOAD_SIZE",
    "UPLOAD_EVENT",
    "MiB",
    "Transfer",
    "UploadCallback",
    "UploadDirectory",
    "UploadEvent",
    "UploadHandler",
    "UploadKind",
    "UploadRefused",
    "UploadSpec",
    "UploadedFile",
    "decode_chunk",
    "parse_upload_request",
]

logger = logging.getLogger("wsserver.plugins.components")

MiB = 1024 * 1024
#: A declaration's default largest file: 10 MiB, a photo or a document;
#: larger files are a deliberate choice of the application.
DEFAULT_MAX_UPLOAD_SIZE = 10 * MiB
#: A declaration's default number of files at once: one, as a plain
#: ``<input type=file>`` without ``multiple``.
DEFAULT_MAX_FILES = 1
# What the browser may claim per file: names and types are shown, not used.
_MAX_NAME_LENGTH = 255
_MAX_TYPE_LENGTH = 255
# The most files one request may list, whatever a declaration says: bounds
# the work one message can cause.
_MAX_FILES_CAP = 100

#: The name of the pseudo-event an upload is bound under (it never fires
#: in the browser: the input's ``change`` starts the upload).
UPLOAD_EVENT = "cv:upload"

UploadKind = Literal["start", "progress", "complete", "error", "cancelled"]


class UploadRefused(ValueError):
    """An upload the declaration does not allow; the message says why and
    is shown to the user as is."""


@dataclass(frozen=True, slots=True)
class UploadSpec:
    """What an upload accepts.

    Attributes:
        max_size: the largest file, in bytes (``DEFAULT_MAX_UPLOAD_SIZE``).
        max_files: files per upload (``DEFAULT_MAX_FILES``).
        accept: MIME types or patterns (``"image/*"``) the browser's claimed
            type must match; empty: any.  The type is what the browser says,
            not a check of the content: inspect the file before trusting it.
    """

    max_size: int = DEFAULT_MAX_UPLOAD_SIZE
    max_files: int = DEFAULT_MAX_FILES
    accept: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if isinstance(self.max_size, bool) or not isinstance(self.max_size, int):
            raise TypeError("max_size must be an integer")
        if self.max_size < 1:
            raise ValueError("max_size must be positive")
        if not 1 <= self.max_files <= _MAX_FILES_CAP:
            raise ValueError(f"max_files must be between 1 and {_MAX_FILES_CAP}")
        for pattern in self.accept:
            if not pattern or "," in pattern:
                raise ValueError(f"bad accept pattern {pattern!r}")

    def check(self, files: Sequence[FileInfo]) -> None:
        """Refuse what this declaration does not allow.

        Raises:
            UploadRefused: no file, too many, one too large or of a type not
                accepted.
        """
        if not files:
            raise UploadRefused("No file was selected.")
        if len(files) > self.max_files:
            raise UploadRefused(
                f"Too many files: {len(files)} selected, at most {self.max_files} allowed."
            )
        for info in files:
            if info.size > self.max_size:
                raise UploadRefused(
                    f"{info.name!r} is too large: {_size(info.size)}, "
                    f"at most {_size(self.max_size)} allowed."
                )
            if self.accept and not any(
                fnmatch.fnmatchcase(info.content_type.lower(), p.lower()) for p in self.accept
            ):
                raise UploadRefused(
                    f"{info.name!r} is of type {info.content_type or 'unknown'!r}, "
                    f"not one of {', '.join(self.accept)}."
                )


def _size(count: int) -> str:
    if count >= MiB:
        return f"{count / MiB:.1f} MiB"
    if count >= 1024:
        return f"{count / 1024:.1f} KiB"
    return f"{count} bytes"


@dataclass(frozen=True, slots=True)
class FileInfo:
    """One file as the browser describes it (``cv/up``)."""

    name: str
    size: int
    content_type: str


@dataclass(frozen=True, slots=True)
class UploadedFile:
    """A file received in full.

    Attributes:
        path: where it is, inside the upload directory (a server-chosen
            name); the application's to move or delete.
        name: the browser's file name, for display only (never a path).
        size: its size in bytes.
        content_type: the type the browser claimed.
    """

    path: Path
    name: str
    size: int
    content_type: str


@dataclass(frozen=True, slots=True)
class UploadEvent:
    """What an upload handler receives.

    Attributes:
        kind: ``start``, ``progress``, ``complete``, ``error`` or
            ``cancelled``.
        transfer: the transfer's id.
        received: bytes written so far (all files).
        total: bytes announced (all files).
        percent: ``received`` in whole percent (100 only when complete).
        names: the browser's file names.
        files: the files on disk (``complete`` only).
        message: why it failed (``error``, ``cancelled``).
    """

    kind: UploadKind
    transfer: str
    received: int
    total: int
    percent: int
    names: tuple[str, ...] = ()
    files: tuple[UploadedFile, ...] = ()
    message: str = ""


#: An upload handler: ``handler(event)``, sync or async.
UploadCallback = Callable[[UploadEvent], Awaitable[None] | None]


class UploadHandler:
    """The binding of an upload: the declaration and the handler.

    ``Element.upload`` binds one under the pseudo-event ``cv:upload``.
    """

    __slots__ = ("callback", "spec")

    def __init__(self, callback: UploadCallback, spec: UploadSpec) -> None:
        if not callable(callback):
            raise TypeError(f"an upload handler must be callable, not {callback!r}")
        self.callback = callback
        self.spec = spec

    def __repr__(self) -> str:
        return f"UploadHandler({self.callback!r}, {self.spec!r})"

    def __call__(self, event: UploadEvent) -> Awaitable[None] | None:
        return self.callback(event)


def parse_upload_request(message: Envelope) -> tuple[int, str, list[FileInfo]]:
    """Validate a ``cv/up`` message: ``(ref, key, files)``.

    Raises:
        MalformedMessage: a missing field, or one of the wrong type.
    """
    ref = message.require("ref", int)
    key = message.require("key", str)
    files = message.require("files", list)
    if len(key) > 4096 or len(files) > _MAX_FILES_CAP:
        raise MalformedMessage("cv/up: key too long or too many files")
    infos: list[FileInfo] = []
    for item in files:
        if not isinstance(item, dict):
            raise MalformedMessage("cv/up: each file must be an object")
        name, size, kind = item.get("name"), item.get("size"), item.get("type", "")
        if not isinstance(name, str) or not isinstance(kind, str):
            raise MalformedMessage("cv/up: a file's name and type must be strings")
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise MalformedMessage("cv/up: a file's size must be a non-negative integer")
        infos.append(FileInfo(name[:_MAX_NAME_LENGTH], size, kind[:_MAX_TYPE_LENGTH]))
    return ref, key, infos


class UploadDirectory:
    """Where uploads are written: a directory, and server-chosen names in it.

    Args:
        path: the directory (made, mode 0700, if missing); ``None``: a
            private temporary directory made on first use.
    """

    def __init__(self, path: str | os.PathLike[str] | None) -> None:
        self._configured = None if path is None else Path(path)
        self._path: Path | None = None

    @property
    def path(self) -> Path:
        """The directory, absolute (made on first use)."""
        if self._path is None:
            if self._configured is None:
                self._path = Path(tempfile.mkdtemp(prefix="wsserver-uploads-")).resolve()
            else:
                self._configured.mkdir(mode=0o700, parents=True, exist_ok=True)
                self._path = self._configured.resolve()
        return self._path

    def create(self) -> tuple[Path, int]:
        """A new, empty, private file: ``(final path, descriptor of the
        .part file)``.  Its name is random: nothing from the browser is in it."""
        directory = self.path
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        flags |= getattr(os, "O_BINARY", 0)
        while True:
            final = directory / secrets.token_hex(16)
            try:
                fd = os.open(_part(final), flags, 0o600)
            except FileExistsError:  # pragma: no cover - 128 random bits
                continue
            return final, fd


def _part(path: Path) -> Path:
    return path.with_name(path.name + ".part")


class _File:
    __slots__ = ("fd", "info", "path", "received")

    def __init__(self, info: FileInfo, path: Path, fd: int) -> None:
        self.info = info
        self.path = path
        self.fd: int | None = fd
        self.received = 0


class Transfer:
    """One upload in progress: its files, being written.

    Made by the page connection once a request is accepted; the chunks are
    written by ``write``; ``finish`` renames the files when all bytes are
    in; ``abort`` closes and removes the partial files (idempotent).

    Attributes:
        id: the transfer's id on the wire.
        key: the file input's key.
        handler: the upload's binding.
        component: whose render bound it.
        total: bytes announced.
        received: bytes written.
        reported: the last percent reported to the handler.
        pending_progress: a progress job is queued (coalescing).
    """

    def __init__(
        self,
        transfer_id: str,
        key: str,
        handler: UploadHandler,
        component: Any,
        infos: Sequence[FileInfo],
        directory: UploadDirectory,
    ) -> None:
        self.id = transfer_id
        self.key = key
        self.handler = handler
        self.component = component
        self.total = sum(info.size for info in infos)
        self.received = 0
        self.reported = 0
        self.pending_progress = False
        self.done = False
        self._cancel_requested: str | None = None
        self._files: list[_File] = []
        try:
            for info in infos:
                path, fd = directory.create()
                file = _File(info, path, fd)
                self._files.append(file)
                if info.size == 0:  # no chunk will come for it
                    os.close(fd)
                    file.fd = None
        except OSError:
            self.abort()
            raise

    @property
    def names(self) -> tuple[str, ...]:
        """The browser's file names."""
        return tuple(f.info.name for f in self._files)

    @property
    def percent(self) -> int:
        """Bytes received, in whole percent; 100 only once all are in."""
        if self.total == 0:
            return 100 if self.complete else 0
        if self.received >= self.total:
            return 100
        return min(99, self.received * 100 // self.total)

    @property
    def complete(self) -> bool:
        """Whether every byte announced has been written."""
        return all(f.received == f.info.size for f in self._files)

    def write(self, index: int, offset: int, data: bytes) -> None:
        """Write one chunk of file ``index`` at ``offset``.

        Chunks come in order: the browser sends them so, and one WebSocket
        keeps them so.  The write is synchronous: a chunk is small (at most
        ``upload_chunk_size``), a page-cache write takes microseconds, and
        it keeps ``abort`` free of races with a write in flight.

        Raises:
            UploadRefused: a chunk out of order, or past the announced size.
        """
        if not 0 <= index < len(self._files):
            raise UploadRefused("The upload sent a chunk of a file it did not announce.")
        file = self._files[index]
        if file.fd is None:
            raise UploadRefused("The upload sent a chunk of a finished file.")
        if offset != file.received:
            raise UploadRefused("The upload's chunks arrived out of order.")
        if file.received + len(data) > file.info.size:
            raise UploadRefused(f"{file.info.name!r} is larger than announced.")
        view = memoryview(data)
        while view:
            written = os.write(file.fd, view)
            view = view[written:]
        file.received += len(data)
        self.received += len(data)
        if file.received == file.info.size:
            os.close(file.fd)
            file.fd = None

    def finish(self) -> tuple[UploadedFile, ...]:
        """Rename the complete files to their final names and list them."""
        self.done = True
        result = []
        for file in self._files:
            os.replace(_part(file.path), file.path)
            result.append(
                UploadedFile(file.path, file.info.name, file.info.size, file.info.content_type)
            )
        return tuple(result)

    def abort(self) -> None:
        """Close and remove the partial files (nothing of an unfinished
        transfer stays on disk)."""
        if self.done:
            return
        self.done = True
        for file in self._files:
            if file.fd is not None:
                with contextlib.suppress(OSError):
                    os.close(file.fd)
                file.fd = None
            with contextlib.suppress(FileNotFoundError):
                _part(file.path).unlink()

    def event(self, kind: UploadKind, **fields: Any) -> UploadEvent:
        """An ``UploadEvent`` of this transfer as it stands."""
        return UploadEvent(
            kind, self.id, self.received, self.total, self.percent, self.names, **fields
        )


def decode_chunk(message: Envelope, limit: int) -> tuple[str, int, int, bytes]:
    """Validate a ``cv/up_data`` message: ``(id, file index, offset, bytes)``.

    Raises:
        MalformedMessage: a missing field, bad base64, or a chunk over
            ``limit`` bytes.
    """
    transfer_id = message.require("id", str)
    index = message.require("file", int)
    offset = message.require("offset", int)
    text = message.require("data", str)
    if len(text) > (limit + 2) // 3 * 4:
        raise MalformedMessage("cv/up_data: chunk over the negotiated size")
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise MalformedMessage("cv/up_data: 'data' is not base64") from None
    return transfer_id, index, offset, data
