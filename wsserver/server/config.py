"""``ServerConfig``: every setting of the asyncio server, with its reason.

The protocol core's limits (``ProtocolSettings``) and compression settings
(``DeflateSettings``) are part of it; everything else here is about time,
memory per connection and the number of connections, which the core cannot
know about.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ..protocol import DeflateSettings, ProtocolSettings
from .limits import ClientLimiter, check_client_limits
from .proxy import TrustedProxies
from .rates import RATE_LIMIT_POLICIES, ConnectionRates, RateLimitPolicy, check_rates
from .security import OriginPolicy

__all__ = ["CLI_OPTION", "OptionKind", "ServerConfig", "cli_option"]

#: The key, in a settings dataclass field's metadata, of the field's
#: command-line option (see ``cli_option``).
CLI_OPTION = "cli"

#: How the command line spells a setting's value:
#:
#: - ``"text"``: the value as given;
#: - ``"int"``: a whole number;
#: - ``"seconds"``: a positive, finite number of seconds;
#: - ``"seconds_or_none"``: the same, or ``none``, ``off`` or ``0`` for
#:   ``None`` (turned off);
#: - ``"number_or_none"``: a positive, finite number (a rate), or ``none``;
#: - ``"count_or_none"``: a whole number >= 1, or ``none``;
#: - ``"flag"``: ``--name`` alone sets ``True``; for settings off by default;
#: - ``"switch"``: ``--name`` / ``--no-name``.  On a section of settings
#:   (a field typed ``SomeSettings | None``), off means ``None``.
OptionKind = Literal[
    "text",
    "int",
    "seconds",
    "seconds_or_none",
    "number_or_none",
    "count_or_none",
    "flag",
    "switch",
]


def cli_option(
    *flags: str,
    kind: OptionKind = "text",
    help: str | None = None,
    metavar: str | None = None,
    choices: Sequence[str] | None = None,
    repeat: bool = False,
    convert: Callable[[Any], object] | None = None,
) -> dict[str, dict[str, object]]:
    """The field metadata of a setting that ``wsserver run`` sets with ``flags``.

    ::

        backlog: int = field(default=1024, metadata=cli_option("--backlog", kind="int"))

    ``wsserver run`` gets one option per such field, whose default is the
    field's; a field without it has no option.  The fields of a nested
    settings dataclass (``protocol``, ``deflate``) are options too when
    they carry this metadata.

    Args:
        flags: the option's names, the first long one naming the parsed
            attribute (``--ws-max-size`` -> ``ws_max_size``); the others
            are aliases.
        kind: how the value is spelled (``OptionKind``).
        help: the line ``--help`` shows, if any.
        metavar: the value's name in ``--help`` (default: the attribute
            name in capitals).
        choices: the only values accepted, if the setting has a fixed set.
        repeat: the option may be given several times; the setting gets the
            list of values (through ``convert``).
        convert: turns the parsed value, when there is one, into the
            setting's (``OriginPolicy`` from the ``--origin`` values).

    The result is plain data, ``{"cli": {"flags": (...), "kind": ...}}``,
    so that the protocol core, which must not import this module, declares
    its options by writing the same mapping out.
    """
    if not flags:
        raise TypeError("cli_option() needs at least one flag")
    option: dict[str, object] = {"flags": flags, "kind": kind}
    if help is not None:
        option["help"] = help
    if metavar is not None:
        option["metavar"] = metavar
    if choices is not None:
        option["choices"] = tuple(choices)
    if repeat:
        option["repeat"] = True
    if convert is not None:
        option["convert"] = convert
    return {CLI_OPTION: option}


@dataclass(frozen=True, kw_only=True)
class ServerConfig:
    """How a ``Server`` listens and treats its connections.

    A setting that ``wsserver run`` sets declares its option in its field's
    metadata (``cli_option``): the flag, its help and its default live here
    only.

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
            drop idle TCP after 30-60 s).  Served by one timer per server
            (a ping up to a tenth of the interval late, at most 1 s).
        ping_timeout: seconds to wait for the pong before the connection is
            failed with 1011.  20 s.
        open_timeout: seconds a new connection (or a kept-alive HTTP
            connection between requests) may take to send a complete request
            head, against slow clients holding sockets.  10 s.  Never
            acted on early; one timer per server serves every connection's
            deadline, so a connection may live up to a tenth of the timeout
            (at least 50 ms, at most 1 s) past it (wsserver.server.deadlines).
        handshake_timeout: seconds a WebSocket endpoint may take to answer
            the opening handshake (accept it or refuse it).  After that the
            client gets 503, the endpoint's task is cancelled, and one ERROR
            line names the endpoint.  10 s: an endpoint that authenticates
            against a slow service still answers within it; a stuck one must
            not hold the client and a connection slot forever.  ``None``
            waits forever.  Served by one timer per server, as
            ``open_timeout``, with the same resolution.
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
        proxy_headers: believe ``X-Forwarded-For`` and ``X-Forwarded-Proto``
            from the peers in ``forwarded_allow_ips`` for the client's
            address and scheme (``wsserver.server.proxy``).  ``True`` by default,
            as in uvicorn: only a proxy on this host is trusted unless told
            otherwise.
        forwarded_allow_ips: the trusted proxies: comma-separated addresses,
            networks (``10.0.0.0/8``) or ``*``.  The ``FORWARDED_ALLOW_IPS``
            environment variable, else ``127.0.0.1``, as in uvicorn.
        root_path: the path prefix a proxy mounts the application under
            (``/api``), for applications that build URLs (ASGI's
            ``root_path``; ``request.root_path``).  ``""`` by default.
        headers: extra response header fields sent with every HTTP response
            and every handshake response (``--header server:edge-1``), in
            lower case.  None by default.
        max_connections_per_client: open WebSockets one client address may
            hold (``wsserver.server.limits``); past it, 429.  256 by
            default: a few per browser tab, for every user of an office or
            a carrier-grade NAT sharing one address, while one address holds
            at most 2.6% of the default ``max_connections``.  ``None`` for
            no limit.
        handshake_rate_per_client: WebSocket handshakes per second one
            client address may make, on average; past it, 429 with
            ``Retry-After``.  20 by default: a page reconnecting makes one,
            with backoff; a loop of them is refused.  ``None`` for no limit.
        handshake_burst_per_client: handshakes a client may make at once
            before the rate applies (the token bucket's size).  40: the
            users behind one NAT all reconnecting after a restart.
        client_ipv6_prefix: bits of an IPv6 address that name one client.
            64: a customer network is a /64 at least, and a host can use any
            address in it.
        client_table_size: client addresses without an open WebSocket that
            the limits remember, at most (about 320 bytes each, oldest
            evicted first): 10,000, about 3 MiB under a flood of distinct
            addresses.
        message_rate_per_connection: text and binary messages per second
            one WebSocket may send, on average (``wsserver.server.rates``);
            past it, ``rate_limit_policy``.  1,000 by default: a page sends
            tens a second (typing, pointer moves at 60 Hz), and one
            connection held to 1,000 takes about 1% of the 100,000 or more
            messages a second a worker parses (docs/benchmarks.md), so it
            cannot starve the others.  ``None`` for no limit.
        message_burst_per_connection: messages a connection may send at
            once before the rate applies.  2,000: two seconds' worth, for a
            page sending what it queued while it was reconnecting.
        byte_rate_per_connection: bytes per second one WebSocket may send,
            as read from the socket; past it, ``rate_limit_policy``.  4 MiB
            (32 Mbit/s) by default: more than most clients' uplink, while a
            connection that could send faster takes at most a few percent of
            a worker.  ``None`` for no limit.
        byte_burst_per_connection: bytes a connection may send at once.
            16 MiB: sixteen messages of the default ``max_message_size``.
        rate_limit_policy: past a rate, ``"pause"`` (the default) stops
            reading the connection until it is back under it: TCP slows the
            peer down, nothing is lost, and a burst followed by quiet is
            never punished; ``"close"`` fails the connection with 1008
            (policy violation), for services that would rather drop a peer
            that misbehaves.
        metrics_path: serve Prometheus metrics at this path, on the same
            port (``wsserver.server.metrics``, docs/operations.md); ``None``
            (the default) serves none and costs nothing.  Off by default
            because the figures (traffic, close codes, client errors) are
            for the operator, not for every client of a public port: keep
            the path behind the proxy (deny it there) or firewall the port.
            Needs the ``metrics`` extra (``prometheus_client``).
        readiness_path: the readiness probe (``/readyz`` by default;
            ``wsserver.server.readiness``): 200 while serving, 503 while
            starting, draining or when an application check fails.  ``""``
            or ``None`` for none.
        drain_delay: seconds between the start of the shutdown (SIGTERM)
            and the closing of the listener, during which ``/readyz``
            answers 503 while everything else is served as before, so that
            a load balancer probing it stops sending new clients before
            the port closes.  ``None`` by default (close at once); set it
            a little above the balancer's probe interval times its failure
            threshold.
    """

    host: str = field(default="127.0.0.1", metadata=cli_option("--host"))
    port: int = field(default=8000, metadata=cli_option("--port", kind="int"))
    uds: str | None = field(
        default=None, metadata=cli_option("--uds", help="listen on a Unix socket instead")
    )
    protocol: ProtocolSettings = field(default_factory=ProtocolSettings)
    deflate: DeflateSettings | None = field(
        default_factory=DeflateSettings,
        metadata=cli_option(
            "--compression", kind="switch", help="permessage-deflate (on by default)"
        ),
    )
    max_queue: int = field(default=16, metadata=cli_option("--ws-max-queue", kind="int"))
    read_limit: int = 64 * 1024
    write_limit: int = 64 * 1024
    write_timeout: float | None = field(
        default=60.0, metadata=cli_option("--write-timeout", kind="seconds_or_none")
    )
    ping_interval: float | None = field(
        default=20.0, metadata=cli_option("--ws-ping-interval", kind="seconds_or_none")
    )
    ping_timeout: float | None = field(
        default=20.0, metadata=cli_option("--ws-ping-timeout", kind="seconds_or_none")
    )
    open_timeout: float | None = field(
        default=10.0,
        metadata=cli_option("--open-timeout", "--timeout-keep-alive", kind="seconds_or_none"),
    )
    handshake_timeout: float | None = field(
        default=10.0,
        metadata=cli_option(
            "--handshake-timeout",
            kind="seconds_or_none",
            help="seconds a WebSocket endpoint may take to accept or refuse; then 503",
        ),
    )
    receive_timeout: float | None = field(
        default=None, metadata=cli_option("--receive-timeout", kind="seconds_or_none")
    )
    close_timeout: float = field(
        default=10.0, metadata=cli_option("--close-timeout", kind="seconds")
    )
    max_connections: int | None = field(
        default=10_000,
        metadata=cli_option("--max-connections", "--limit-concurrency", kind="int"),
    )
    shutdown_timeout: float = field(
        default=10.0,
        metadata=cli_option("--shutdown-timeout", "--timeout-graceful-shutdown", kind="seconds"),
    )
    # No option of its own: the command line builds it from --ssl-certfile
    # and --ssl-keyfile (wsserver/cli.py).
    ssl_context: ssl.SSLContext | None = None
    backlog: int = field(
        default=1024,
        metadata=cli_option(
            "--backlog",
            kind="int",
            help="connections the kernel queues before accept (default 1024)",
        ),
    )
    reuse_port: bool = field(
        default=False,
        metadata=cli_option(
            "--reuse-port",
            kind="flag",
            help="set SO_REUSEPORT, so that other processes can listen on the same port",
        ),
    )
    origins: OriginPolicy | None = field(
        default=None,
        metadata=cli_option(
            "--origin",
            repeat=True,
            metavar="ORIGIN",
            convert=OriginPolicy,
            help="allow WebSocket handshakes from this Origin (repeatable; '*' stands "
            "for host labels, as https://*.example.com); others get 403",
        ),
    )
    access_log: bool = field(
        default=True,
        metadata=cli_option(
            "--access-log",
            kind="switch",
            help="log one line per HTTP request and WebSocket handshake",
        ),
    )

    proxy_headers: bool = field(
        default=True,
        metadata=cli_option(
            "--proxy-headers",
            kind="switch",
            help="take the client's address and scheme from X-Forwarded-For and "
            "X-Forwarded-Proto sent by --forwarded-allow-ips",
        ),
    )
    forwarded_allow_ips: str = field(
        default_factory=lambda: os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1"),
        metadata=cli_option(
            "--forwarded-allow-ips",
            metavar="IPS",
            help="comma-separated proxy addresses or networks to trust, or '*' "
            "(default: $FORWARDED_ALLOW_IPS or 127.0.0.1)",
        ),
    )
    root_path: str = field(
        default="",
        metadata=cli_option(
            "--root-path", metavar="PATH", help="the path prefix a proxy serves the app under"
        ),
    )
    headers: tuple[tuple[str, str], ...] = field(
        default=(),
        metadata=cli_option(
            "--header",
            repeat=True,
            metavar="NAME:VALUE",
            convert=lambda values: tuple(_header_field(value) for value in values),
            help="a response header for every response (repeatable)",
        ),
    )

    max_connections_per_client: int | None = field(
        default=256,
        metadata=cli_option(
            "--max-connections-per-client",
            kind="count_or_none",
            help="open WebSockets per client address (default 256; 'none': no limit); then 429",
        ),
    )
    handshake_rate_per_client: float | None = field(
        default=20.0,
        metadata=cli_option(
            "--handshake-rate-per-client",
            kind="number_or_none",
            help="WebSocket handshakes per second per client address (default 20; 'none': "
            "no limit); then 429 with Retry-After",
        ),
    )
    handshake_burst_per_client: int = field(
        default=40,
        metadata=cli_option(
            "--handshake-burst-per-client",
            kind="int",
            help="handshakes a client address may make at once (default 40)",
        ),
    )
    client_ipv6_prefix: int = field(
        default=64,
        metadata=cli_option(
            "--client-ipv6-prefix",
            kind="int",
            help="bits of an IPv6 address that name one client for the limits (default 64)",
        ),
    )
    client_table_size: int = field(
        default=10_000,
        metadata=cli_option(
            "--client-table-size",
            kind="int",
            help="client addresses the per-client limits remember (default 10000)",
        ),
    )
    message_rate_per_connection: float | None = field(
        default=1000.0,
        metadata=cli_option(
            "--message-rate-per-connection",
            kind="number_or_none",
            help="WebSocket messages per second one connection may send (default 1000; "
            "'none': no limit); then --rate-limit-policy",
        ),
    )
    message_burst_per_connection: int = field(
        default=2000,
        metadata=cli_option(
            "--message-burst-per-connection",
            kind="int",
            help="messages a connection may send at once (default 2000)",
        ),
    )
    byte_rate_per_connection: float | None = field(
        default=4 * 1024 * 1024,
        metadata=cli_option(
            "--byte-rate-per-connection",
            kind="number_or_none",
            help="bytes per second one WebSocket connection may send (default 4 MiB; "
            "'none': no limit); then --rate-limit-policy",
        ),
    )
    byte_burst_per_connection: int = field(
        default=16 * 1024 * 1024,
        metadata=cli_option(
            "--byte-burst-per-connection",
            kind="int",
            help="bytes a connection may send at once (default 16 MiB)",
        ),
    )
    rate_limit_policy: RateLimitPolicy = field(
        default="pause",
        metadata=cli_option(
            "--rate-limit-policy",
            choices=RATE_LIMIT_POLICIES,
            help="past a connection's rate: 'pause' reading (default) or 'close' with 1008",
        ),
    )
    metrics_path: str | None = field(
        default=None,
        metadata=cli_option(
            "--metrics-path",
            metavar="PATH",
            help="serve Prometheus metrics at this path on the same port (off by default; "
            "needs the metrics extra)",
        ),
    )
    readiness_path: str | None = field(
        default="/readyz",
        metadata=cli_option(
            "--readiness-path",
            metavar="PATH",
            help="the readiness probe: 503 while starting or draining (default /readyz; "
            "'' for none)",
        ),
    )
    drain_delay: float | None = field(
        default=None,
        metadata=cli_option(
            "--drain-delay",
            kind="seconds_or_none",
            help="seconds /readyz answers 503 after SIGTERM before the listener closes "
            "(default: none)",
        ),
    )

    @property
    def trusted_proxies(self) -> TrustedProxies | None:
        """The peers whose forwarding headers are believed; ``None``: nobody's."""
        return TrustedProxies(self.forwarded_allow_ips) if self.proxy_headers else None

    def client_limiter(self) -> ClientLimiter | None:
        """A new limiter for the per-client limits; ``None`` when both are off."""
        if self.max_connections_per_client is None and self.handshake_rate_per_client is None:
            return None
        return ClientLimiter(
            max_open=self.max_connections_per_client,
            rate=self.handshake_rate_per_client,
            burst=self.handshake_burst_per_client,
            ipv6_prefix=self.client_ipv6_prefix,
            table_size=self.client_table_size,
        )

    def connection_rates(self, now: float) -> ConnectionRates | None:
        """New message and byte buckets for one WebSocket; ``None`` when both are off."""
        if self.message_rate_per_connection is None and self.byte_rate_per_connection is None:
            return None
        return ConnectionRates(
            message_rate=self.message_rate_per_connection,
            message_burst=self.message_burst_per_connection,
            byte_rate=self.byte_rate_per_connection,
            byte_burst=self.byte_burst_per_connection,
            now=now,
        )

    def __post_init__(self) -> None:
        # Checked now, so that a bad value names its setting at start-up.
        TrustedProxies(self.forwarded_allow_ips)
        if self.root_path and (not self.root_path.startswith("/") or self.root_path.endswith("/")):
            raise ValueError("root_path must start with '/' and not end with one, or be ''")
        for name, value in self.headers:
            _check_header_field(name, value)
        for name in ("metrics_path", "readiness_path"):
            path = getattr(self, name)
            if path and not path.startswith("/"):
                raise ValueError(f"{name} must start with '/' (or be None)")
        if self.metrics_path and self.metrics_path == self.readiness_path:
            raise ValueError("metrics_path and readiness_path must differ")
        if self.drain_delay is not None and not self.drain_delay >= 0:
            raise ValueError("drain_delay must not be negative (or None)")
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
        check_client_limits(
            max_open=self.max_connections_per_client,
            rate=self.handshake_rate_per_client,
            burst=self.handshake_burst_per_client,
            ipv6_prefix=self.client_ipv6_prefix,
            table_size=self.client_table_size,
        )
        check_rates(
            message_rate=self.message_rate_per_connection,
            message_burst=self.message_burst_per_connection,
            byte_rate=self.byte_rate_per_connection,
            byte_burst=self.byte_burst_per_connection,
            policy=self.rate_limit_policy,
        )
        for name in (
            "write_timeout",
            "ping_interval",
            "ping_timeout",
            "open_timeout",
            "handshake_timeout",
            "receive_timeout",
        ):
            value = getattr(self, name)
            # "not value > 0" rather than "value <= 0": NaN is refused too (a
            # NaN delay makes call_later fire at once).
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be positive (or None to turn it off)")
        if not self.close_timeout > 0 or not self.shutdown_timeout >= 0:
            raise ValueError("close_timeout must be positive and shutdown_timeout not negative")


# RFC 9110 section 5.6.2: token characters.
_TOKEN = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz")


def _check_header_field(name: str, value: str) -> None:
    if not name or not set(name) <= _TOKEN:
        raise ValueError(f"headers: {name!r} is not a lower-case header field name")
    # RFC 9110 section 5.5: no CR, LF or NUL in a field value (response
    # splitting), no leading or trailing whitespace.
    if any(c in value for c in "\r\n\0") or value != value.strip(" \t"):
        raise ValueError(f"headers: the value of {name!r} is not a valid field value")


def _header_field(text: str) -> tuple[str, str]:
    """``"Name: value"`` (uvicorn's ``--header`` syntax) as a pair, the name in lower case."""
    name, sep, value = text.partition(":")
    if not sep:
        raise ValueError(f"--header {text!r}: expected NAME:VALUE")
    return name.strip().lower(), value.strip()
