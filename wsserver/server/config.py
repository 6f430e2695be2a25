"""``ServerConfig``: every setting of the asyncio server, with its reason.

The protocol core's limits (``ProtocolSettings``) and compression settings
(``DeflateSettings``) are part of it; everything else here is about time,
memory per connection and the number of connections, which the core cannot
know about.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field

from ..protocol import DeflateSettings, ProtocolSettings
from .security import OriginPolicy

__all__ = ["ServerConfig"]


@dataclass(frozen=True, kw_only=True)
class ServerConfig:
    """How a ``Server`` listens and treats its connections.

    Attributes:
        host: address to bind; ``127.0.0.1`` so that nothing is exposed
            until asked.
        port: TCP port; 8000.  ``0`` picks a free one (see ``Server.port``).
        uds: a Unix socket path to listen on instead of host and port;
            ``None`` (the default) for TCP.
        protocol: the core's limits (message, frame and header sizes).
        deflate: permessage-deflate settings, or ``None`` to turn
            compression off.  On by default: browsers offer it and text
            compresses well; the defaults keep its memory small (see
            ``DeflateSettings``).
        max_queue: messages received and not yet consumed by the
            application, per connection, before the server stops reading
            from the socket (backpressure towards the peer).  16, so that
            even at the 1 MiB message limit one connection holds at most
            16 MiB.
        read_limit: unparsed bytes buffered per connection while the queue
            is full; reading pauses beyond it.  64 KiB, one socket read.
        write_limit: high-water mark of the transport's write buffer;
            ``send`` waits while it is above.  64 KiB, as asyncio's default.
        write_timeout: how long a ``send`` may wait for a peer that does not
            read before the connection is failed with 1008 and dropped.
            60 s: longer than any healthy network stall.  ``None`` waits
            forever.
        ping_interval: seconds between heartbeat pings; ``None`` turns
            heartbeats off.  20 s keeps NAT and proxy mappings alive (many
            drop idle TCP after 30-60 s).
        ping_timeout: seconds to wait for the pong before the connection is
            failed with 1011.  20 s.
        open_timeout: seconds a new connection (or a kept-alive HTTP
            connection between requests) may take to send a complete request
            head, against slow clients holding sockets.  10 s.
        receive_timeout: seconds without any message from the peer after
            which an open WebSocket is closed with 1001; ``None`` (the
            default) relies on heartbeats instead.
        close_timeout: seconds to wait for the peer's Close (or its end of
            the TCP connection) before aborting.  10 s.
        max_connections: connections served at once; new handshakes beyond
            it get 503.  ``None`` for no limit.  10,000 by default, well
            under the usual file-descriptor limits.
        shutdown_timeout: grace period on shutdown for open connections to
            finish their closing handshake before they are aborted.  10 s.
        ssl_context: TLS settings, or ``None`` for plain TCP.
        backlog: the listen queue length; 1024.
        reuse_port: set SO_REUSEPORT so that several processes share the
            port.  Off by default.
        origins: which ``Origin`` values may open a WebSocket
            (``OriginPolicy``); others get 403 before the upgrade, against
            cross-site WebSocket hijacking.  ``None`` (the default) checks
            nothing: set it for any endpoint that trusts cookies.
        access_log: one INFO line per HTTP request and per WebSocket
            handshake outcome (101 or the refusal's status) on the
            ``wsserver.access`` logger (see ``wsserver.server.access``).
            ``True`` by default, as in uvicorn: refused handshakes and
            errors are otherwise invisible.  Turn it off when a proxy in front
            already logs requests, to save a formatted line per request.
    """

    host: str = "127.0.0.1"
    port: int = 8000
    uds: str | None = None
    protocol: ProtocolSettings = field(default_factory=ProtocolSettings)
    deflate: DeflateSettings | None = field(default_factory=DeflateSettings)
    max_queue: int = 16
    read_limit: int = 64 * 1024
    write_limit: int = 64 * 1024
    write_timeout: float | None = 60.0
    ping_interval: float | None = 20.0
    ping_timeout: float | None = 20.0
    open_timeout: float | None = 10.0
    receive_timeout: float | None = None
    close_timeout: float = 10.0
    max_connections: int | None = 10_000
    shutdown_timeout: float = 10.0
    ssl_context: ssl.SSLContext | None = None
    backlog: int = 1024
    reuse_port: bool = False
    origins: OriginPolicy | None = None
    access_log: bool = True

    def __post_init__(self) -> None:
        # Out of range, create_server() would fail only at start(), with an
        # OverflowError that does not name the setting.
        if not 0 <= self.port <= 65535:
            raise ValueError("port must be between 0 and 65535")
        if self.backlog < 0:
            raise ValueError("backlog must not be negative")
        if self.max_queue < 1:
            raise ValueError("max_queue must be at least 1")
        if self.read_limit < 1 or self.write_limit < 1:
            raise ValueError("read_limit and write_limit must be at least 1")
        if self.max_connections is not None and self.max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        for name in (
            "write_timeout",
            "ping_interval",
            "ping_timeout",
            "open_timeout",
            "receive_timeout",
        ):
            value = getattr(self, name)
            # "not value > 0" rather than "value <= 0": NaN is refused too (a
            # NaN delay makes call_later fire at once).
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be positive (or None to turn it off)")
        if not self.close_timeout > 0 or not self.shutdown_timeout >= 0:
            raise ValueError("close_timeout must be positive and shutdown_timeout not negative")
