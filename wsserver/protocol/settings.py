"""Limits of the protocol core, each with a safe default and its reason.

Every limit is a field of ``ProtocolSettings``; nothing the peer controls can
make the core use more memory than these allow (a message trickled in tiny
reads included: the reader gathers small pieces before keeping them).
docs/security.md lists every limit with the attack it stops and its test.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .exceptions import LocalProtocolError

__all__ = ["ProtocolSettings"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ProtocolSettings:
    """The limits one connection enforces.

    Attributes:
        max_message_size: largest message, after decompression, in bytes.
            1 MiB by default, as websockets: larger than any chat, JSON or
            component-patch message a page sends, small enough that a few
            thousand connections each holding one cannot exhaust memory.
            Beyond it the connection fails with 1009.
        max_frame_size: largest data frame payload on the wire.  Defaults to
            the message size, since a frame larger than a message can never
            be valid; set it lower to bound a single frame further.  1009
            beyond.  Control frames have their own fixed bound of 125 bytes
            (RFC 6455 section 5.5).
        max_fragments: most frames one message may be split into.  Each
            fragment costs a header parse; 4,096 lets a 1 MiB message arrive in
            256-byte pieces, while a storm of empty fragments is cut off early.
            1009 beyond.
        max_request_line: longest HTTP request line, 8 KiB as nginx's and
            Tomcat's defaults (longer target URLs break most proxies anyway).
            414 beyond.
        max_header_line: longest header line, 8 KiB: no legitimate handshake
            header comes near it (cookies are the largest).  431 beyond.
        max_headers: most header fields, 128: browsers send about 15, and
            every field costs a parse and a dict entry.  431 beyond.
        max_head_size: whole request head, 64 KiB, so the product of the two
            limits above cannot be reached.  431 beyond.
        max_body_size: largest plain-HTTP request body, 1 MiB; the HTTP
            side serves pages, static files and health checks, not uploads.
            413 beyond.  A body read whole (native applications) is held in
            memory; a streamed one (``stream_bodies``: ASGI applications) is
            not, and an application that takes uploads raises it with
            ``--http-max-body-size``.  While a request waits for its answer,
            a connection may hold this much again of what the client
            pipelined.

    A field's ``"cli"`` metadata names its ``wsserver run`` option, as plain
    data (see ``wsserver.server.config.cli_option``: the core imports
    nothing from the layers above).
    """

    max_message_size: int = field(
        default=1 << 20, metadata={"cli": {"flags": ("--ws-max-size",), "kind": "int"}}
    )
    max_frame_size: int | None = field(
        default=None, metadata={"cli": {"flags": ("--ws-max-frame-size",), "kind": "int"}}
    )
    max_fragments: int = field(
        default=4096, metadata={"cli": {"flags": ("--ws-max-fragments",), "kind": "int"}}
    )
    max_request_line: int = 8 * 1024
    max_header_line: int = 8 * 1024
    max_headers: int = 128
    max_head_size: int = 64 * 1024
    max_body_size: int = field(
        default=1 << 20, metadata={"cli": {"flags": ("--http-max-body-size",), "kind": "int"}}
    )

    def __post_init__(self) -> None:
        for name in (
            "max_message_size",
            "max_fragments",
            "max_request_line",
            "max_header_line",
            "max_headers",
            "max_head_size",
        ):
            if getattr(self, name) < 1:
                raise LocalProtocolError(f"{name} must be at least 1")
        if self.max_frame_size is not None and self.max_frame_size < 1:
            raise LocalProtocolError("max_frame_size must be at least 1")
        if self.max_body_size < 0:
            raise LocalProtocolError("max_body_size must not be negative")

    @property
    def frame_limit(self) -> int:
        """The effective largest frame payload."""
        if self.max_frame_size is None:
            return self.max_message_size
        return min(self.max_frame_size, self.max_message_size)
