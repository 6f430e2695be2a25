"""A ``ComponentApp``'s settings: every option, its default and why.

``PageSettings`` is one frozen dataclass; ``ComponentApp`` takes one
(``settings=``), its fields as keyword arguments, or both (the keywords
override the dataclass's fields)::

    base = PageSettings(title="Shop", secret=key, store=redis_store)
    app = ComponentApp({"/": Home}, settings=base, csp=None)

``PageOptions`` types those keyword arguments: the same names as the
dataclass's fields, each optional.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TypedDict

from ...server import Authenticator
from ..runtime.assets import DEFAULT_PREFIX
from .store import DEFAULT_MAX_SNAPSHOT_SIZE, DEFAULT_SNAPSHOT_TTL, SessionStore

__all__ = [
    "DEFAULT_CSP",
    "DEFAULT_EXPIRED_MESSAGE",
    "DEFAULT_WS_PATH",
    "PageOptions",
    "PageSettings",
]

#: Where the pages' WebSocket endpoint is, unless told otherwise.
DEFAULT_WS_PATH = "/_wsserver/cv"
#: The default Content-Security-Policy of pages: scripts from this origin
#: only (the runtime needs no inline script and no eval), no plugins, no
#: <base>.  Defence in depth: the rendering escapes everything anyway.
DEFAULT_CSP = "script-src 'self'; object-src 'none'; base-uri 'none'"
#: What a page that cannot be resumed shows before it reloads.
DEFAULT_EXPIRED_MESSAGE = "This page has expired. Reloading\u2026"


@dataclass(frozen=True, slots=True)
class PageSettings:
    """How a ``ComponentApp`` renders, keeps and serves its pages.

    Attributes:
        title: the default ``<title>``; ``"wsserver"``, so that a page
            always has one.
        head: extra HTML for every page's ``<head>`` (trusted: not
            escaped); empty, as a page needs nothing more.
        lang: the ``<html lang>``; ``"en"``, for screen readers and
            hyphenation.
        store: where page snapshots live; ``None``: a new ``InMemoryStore``
            per app, bounded, enough for one process.
        secret: the snapshot signing key; ``None``: random per app, so that
            no snapshot outlives its process unless servers are told to
            share one (give every server sharing a store the same secret).
        snapshot_ttl: seconds a page can be resumed after its last change
            (or its connection's end); 30 minutes covers a laptop asleep
            over lunch without keeping abandoned pages for long.
        max_snapshot_size: the largest snapshot, in bytes of JSON; 256 KiB
            bounds what one page holds in the store.
        ws_path: the pages' WebSocket endpoint; under ``/_wsserver`` so as
            not to collide with the app's own routes.
        prefix: where the scripts are served; the runtime's own prefix.
        csp: the pages' ``Content-Security-Policy`` (``None``: none);
            ``DEFAULT_CSP``, the strictest policy the runtime works under.
        expired_message: shown when a page cannot be resumed, before it
            reloads; says why the page is about to change.
        reload_delay: seconds the message shows before the reload; 1.5 s,
            long enough to read it.
        history_limit: page states kept for back and forward; 16 bounds
            what one snapshot carries.
        max_message_size: the sessions' largest message (``RuntimeView``);
            ``None``: the server's own limit.
        ping_interval: seconds between the sessions' heartbeats
            (``RuntimeView``); 15 s, under the idle timeouts of most
            proxies; ``None``: no heartbeat.
        ping_timeout: seconds a heartbeat may wait for its answer; 10 s.
        reconnect_attempts: the browser runtime's failed attempts in a row
            before it shows ``offline`` (``script_tag``); 8, about a minute
            of retries.
        reconnect_base: the runtime's first retry delay, in seconds,
            doubled at each attempt; 0.5 s.
        reconnect_max: the cap on a retry delay; 15 s, so that a page comes
            back soon after the server does.
        connect_timeout: seconds an attempt may take to reach ``init``;
            10 s.
        max_pending_jobs: a page's browser events waiting for its handlers;
            256.  Beyond it the browser sends faster than the handlers run,
            and the connection is closed rather than let the queue grow.
        receive_timeout: seconds a page's connection may stay silent before
            the server closes it with 1001, for this app's pages over the
            server's ``receive_timeout``; ``None``: the server's.  (Duck
            uses 240 s for its Lively components; with the runtime's pings
            every ``ping_interval`` a live page is never silent that long.)
        server_ping_interval: seconds between the server's WebSocket pings
            on the pages' connections, over the server's ``ping_interval``;
            ``None``: the server's.
        upload_dir: where uploads are written (``uploads.py``); ``None``: a
            private temporary directory made on first use, so that uploads
            work without setup and never land in the working directory.
        upload_chunk_size: bytes of file per ``cv/up_data`` message; 64 KiB
            (lowered to fit ``max_message_size``): a transfer holds one chunk
            in memory, and progress comes at least every chunk.
        upload_window: chunks the browser may send ahead of the server's
            acknowledgements; 4 (256 KiB in flight) keeps a loopback link
            busy while bounding what a connection buffers.
        max_uploads: transfers one connection may run at once; 4.  Beyond it
            the request is refused with a message.
        compress_min_size: patch batches this many bytes or more are
            compressed (with permessage-deflate), smaller ones sent as is;
            1 KiB: the answer to a click is smaller, and deflating it saves
            a few bytes for CPU time and latency; whole pages (``cv/mount``)
            are always compressed, control messages never.
        health_path: as ``App``: the health check's path (``None``: none).
        authenticate: as ``App``: vets the pages' WebSocket handshakes
            (``None``: every handshake is accepted).
    """

    title: str = "wsserver"
    head: str = ""
    lang: str = "en"
    store: SessionStore | None = None
    secret: bytes | None = None
    snapshot_ttl: float = DEFAULT_SNAPSHOT_TTL
    max_snapshot_size: int = DEFAULT_MAX_SNAPSHOT_SIZE
    ws_path: str = DEFAULT_WS_PATH
    prefix: str = DEFAULT_PREFIX
    csp: str | None = DEFAULT_CSP
    expired_message: str = DEFAULT_EXPIRED_MESSAGE
    reload_delay: float = 1.5
    history_limit: int = 16
    max_message_size: int | None = None
    ping_interval: float | None = 15.0
    ping_timeout: float = 10.0
    reconnect_attempts: int = 8
    reconnect_base: float = 0.5
    reconnect_max: float = 15.0
    connect_timeout: float = 10.0
    max_pending_jobs: int = 256
    receive_timeout: float | None = None
    server_ping_interval: float | None = None
    upload_dir: str | os.PathLike[str] | None = None
    upload_chunk_size: int = 64 * 1024
    upload_window: int = 4
    max_uploads: int = 4
    compress_min_size: int = 1024
    health_path: str | None = "/healthz"
    authenticate: Authenticator | None = None

    def __post_init__(self) -> None:
        positive = {
            "snapshot_ttl": self.snapshot_ttl,
            "max_snapshot_size": self.max_snapshot_size,
            "history_limit": self.history_limit,
            "ping_timeout": self.ping_timeout,
            "reconnect_max": self.reconnect_max,
            "connect_timeout": self.connect_timeout,
            "max_pending_jobs": self.max_pending_jobs,
            "max_message_size": self.max_message_size,
            "ping_interval": self.ping_interval,
            "receive_timeout": self.receive_timeout,
            "server_ping_interval": self.server_ping_interval,
            "upload_chunk_size": self.upload_chunk_size,
            "upload_window": self.upload_window,
            "max_uploads": self.max_uploads,
        }
        if self.compress_min_size < 0:
            raise ValueError("PageSettings.compress_min_size must not be negative")
        for name, value in positive.items():
            if value is not None and not value > 0:
                raise ValueError(f"PageSettings.{name} must be positive, not {value!r}")
        not_negative = {
            "reload_delay": self.reload_delay,
            "reconnect_attempts": self.reconnect_attempts,
            "reconnect_base": self.reconnect_base,
        }
        for name, value in not_negative.items():
            if not value >= 0:
                raise ValueError(f"PageSettings.{name} must not be negative, not {value!r}")
        if self.reconnect_base > self.reconnect_max:
            raise ValueError("PageSettings.reconnect_base must not exceed reconnect_max")
        if self.store is not None and self.store.shared and self.secret is None:
            raise ValueError(
                "PageSettings.secret is needed with a shared store: every process must "
                "sign snapshots with the same key to read each other's"
            )
        for name, path in (("ws_path", self.ws_path), ("prefix", self.prefix)):
            if not path.startswith("/"):
                raise ValueError(f"PageSettings.{name} must start with '/', not {path!r}")


class PageOptions(TypedDict, total=False):
    """``PageSettings``'s fields as keyword arguments (``ComponentApp``)."""

    title: str
    head: str
    lang: str
    store: SessionStore | None
    secret: bytes | None
    snapshot_ttl: float
    max_snapshot_size: int
    ws_path: str
    prefix: str
    csp: str | None
    expired_message: str
    reload_delay: float
    history_limit: int
    max_message_size: int | None
    ping_interval: float | None
    ping_timeout: float
    reconnect_attempts: int
    reconnect_base: float
    reconnect_max: float
    connect_timeout: float
    max_pending_jobs: int
    receive_timeout: float | None
    server_ping_interval: float | None
    upload_dir: str | os.PathLike[str] | None
    upload_chunk_size: int
    upload_window: int
    max_uploads: int
    compress_min_size: int
    health_path: str | None
    authenticate: Authenticator | None
