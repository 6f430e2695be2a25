"""The permessage-deflate extension (RFC 7692): negotiation and codec.

Two pieces, both sans-I/O:

``negotiate(offers, settings)``
    reads the client's ``Sec-WebSocket-Extensions`` offers (already parsed
    into ``ExtensionOffer``), picks the first acceptable ``permessage-deflate``
    one and returns the response header value with a codec configured for the
    agreed parameters.

``PerMessageDeflate``
    compresses outgoing messages and inflates incoming ones, one fragment at
    a time.  It knows nothing about frames: the connection decides which
    messages are compressed (RSV1), feeds the payloads, and tells the codec
    where a message ends.

Memory.  A zlib compressor costs about ``(1 << (wbits + 2)) + (1 << (memLevel
+ 9))`` bytes and an inflater ``1 << wbits`` plus some 7 KiB of state, so the
defaults (12-bit windows, memLevel 5) keep a busy connection near 64 KiB
instead of the 300 KiB of zlib's defaults.  Zlib objects are created on first
use and dropped, not reset, after each message when a no-context-takeover
parameter was agreed: an idle connection then holds none.

Decompression bombs.  Inflation is always bounded by the caller's
``max_length``: zlib is never asked for more than ``max_length + 1`` bytes, so
one byte past the limit proves the message too big (close code 1009) without
inflating any further.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..codes import CloseCode, HandshakeFailure
from ..exceptions import FrameError, InvalidResponse, LocalProtocolError
from ..headers import ExtensionOffer

__all__ = [
    "ClientDeflateSettings",
    "DeflateSettings",
    "PerMessageDeflate",
    "accept_response",
    "client_offer",
    "negotiate",
]

#: The extension token (RFC 7692 section 7).
EXTENSION_NAME = "permessage-deflate"

_SERVER_NO_CONTEXT_TAKEOVER = "server_no_context_takeover"
_CLIENT_NO_CONTEXT_TAKEOVER = "client_no_context_takeover"
_SERVER_MAX_WINDOW_BITS = "server_max_window_bits"
_CLIENT_MAX_WINDOW_BITS = "client_max_window_bits"
_KNOWN_PARAMS = frozenset(
    {
        _SERVER_NO_CONTEXT_TAKEOVER,
        _CLIENT_NO_CONTEXT_TAKEOVER,
        _SERVER_MAX_WINDOW_BITS,
        _CLIENT_MAX_WINDOW_BITS,
    }
)

# RFC 7692 section 7.1.2.1: the value is "a decimal integer value without
# leading zeroes between 8 to 15, inclusive".  Spelling out the eight valid
# strings rejects "010", "+9", " 9" and "1e1" without a parser.
_WINDOW_BITS_VALUES = {str(bits): bits for bits in range(8, 16)}

# Window used when the client did not offer client_max_window_bits: RFC 7692
# section 7.1.2.2, "Absence of this extension parameter in an extension
# negotiation response indicates that the server can receive messages
# compressed using an LZ77 sliding window of up to 32,768 bytes."
_DEFAULT_WINDOW_BITS = 15

# zlib's deflate refuses a raw 8-bit window ("Invalid initialization option",
# madler/zlib#171): 9 is the smallest window it allocates.
_SMALLEST_ZLIB_WINDOW_BITS = 9

# RFC 7692 section 7.2.1: a sync flush ends with an empty stored block whose
# last four octets are these; they are removed from every message and put
# back before inflating (section 7.2.2).
_EMPTY_STORED_BLOCK_TAIL = b"\x00\x00\xff\xff"

# RFC 7692 section 7.2.3.6, "Generating an Empty Fragment": a single 0x00
# octet is the header of an empty stored block whose LEN/NLEN are the four
# octets the receiver appends.  Valid at any byte boundary of the stream.
_EMPTY_BLOCK_HEADER = b"\x00"

# RFC 7692 section 7.2.3.4 lets a peer flush with DEFLATE blocks that have
# BFINAL set, followed by more blocks.  zlib's inflater stops at a final block,
# so each one costs us a fresh inflater and a copy of the rest of the input
# (``unused_data``).  A peer that flushes this way does it once per fragment;
# more than this many in one chunk of input would only serve to make us copy
# the chunk over and over, so it is refused.
_MAX_DEFLATE_STREAMS_PER_CHUNK = 16

BytesLike = bytes | bytearray | memoryview


@dataclass(frozen=True, slots=True, kw_only=True)
class DeflateSettings:
    """What the server is willing to agree to, and how hard it compresses.

    Attributes:
        server_max_window_bits: base-2 log of the window our compressor uses,
            8..15.  12 (4 KiB) by default, as websockets, whose published
            measurements put 12-bit windows with memLevel 5 at 64 KiB per
            connection against 316 KiB for zlib's 15/8.  Announced
            only when the client offered ``server_max_window_bits`` (then the
            smaller of the two is used); otherwise we simply use it, since a
            smaller window than the client's 32 KiB default is always fine
            for its inflater.  8 behaves as 9 unless the client itself asks
            for 8: zlib cannot allocate a smaller compression window, so 9
            costs the same memory and compresses better.
        client_max_window_bits: window we ask clients to compress with, 8..15.
            12 by default: our inflater then holds 4 KiB instead of 32 KiB.
            RFC 7692 only lets us ask a client that offered the parameter; for
            the others our inflater must use 15.  8 behaves as 9 unless the
            client offers 8: an inflater gains nothing from 8, and the
            websockets and wsproto clients refuse to be told 8.
        server_no_context_takeover: reset our compressor after every message
            and say so in the response.  Off by default: context takeover is
            where most of the gain on small, similar messages comes from.
            Turn it on to hold no compressor between messages.
        client_no_context_takeover: ask clients to reset their compressor
            after every message, which lets us drop our inflater between
            messages.  Off by default for the same reason.  Agreed anyway
            when the client offers it.
        compression_level: zlib level, -1..9.  1 (zlib's fastest) by
            default, as aiohttp: on 1 KiB JSON messages it costs about 27%
            fewer instructions per compressed message than zlib's default
            6 (1.7x less time on 64 KiB), for output about 29% larger (24%
            of the input instead of 19%), and the same memory (zlib's
            allocation depends on the window and memLevel, not the level).
            A Python server runs out of CPU long before the network, so
            the faster level is the better default; raise it when bandwidth
            costs more than CPU.  Measured in docs/benchmarks.md.
        mem_level: zlib memLevel, 1..9.  5 (16 KiB of hash state instead of
            the 128 KiB of zlib's 8), as websockets, for a small ratio cost.
        min_size: messages shorter than this many bytes are sent uncompressed
            (RSV1 clear).  64 by default: below that, the deflate block
            overhead and the CPU outweigh the few bytes saved.

    A field's ``"cli"`` metadata names its ``wsserver run`` option, as plain
    data (see ``wsserver.server.config.cli_option``).
    """

    server_max_window_bits: int = field(
        default=12,
        metadata={"cli": {"flags": ("--deflate-server-max-window-bits",), "kind": "int"}},
    )
    client_max_window_bits: int = field(
        default=12,
        metadata={"cli": {"flags": ("--deflate-client-max-window-bits",), "kind": "int"}},
    )
    server_no_context_takeover: bool = field(
        default=False,
        metadata={"cli": {"flags": ("--deflate-server-no-context-takeover",), "kind": "flag"}},
    )
    client_no_context_takeover: bool = field(
        default=False,
        metadata={"cli": {"flags": ("--deflate-client-no-context-takeover",), "kind": "flag"}},
    )
    compression_level: int = field(
        default=1, metadata={"cli": {"flags": ("--deflate-level",), "kind": "int"}}
    )
    mem_level: int = field(
        default=5, metadata={"cli": {"flags": ("--deflate-mem-level",), "kind": "int"}}
    )
    min_size: int = 64

    def __post_init__(self) -> None:
        _check_codec_settings(
            server_max_window_bits=self.server_max_window_bits,
            client_max_window_bits=self.client_max_window_bits,
            compression_level=self.compression_level,
            mem_level=self.mem_level,
            min_size=self.min_size,
        )


def _check_codec_settings(
    *,
    server_max_window_bits: int,
    client_max_window_bits: int,
    compression_level: int,
    mem_level: int,
    min_size: int,
) -> None:
    for name, value in (
        ("server_max_window_bits", server_max_window_bits),
        ("client_max_window_bits", client_max_window_bits),
    ):
        if not 8 <= value <= 15:
            raise LocalProtocolError(f"{name} must be between 8 and 15, not {value}")
    if not -1 <= compression_level <= 9:
        raise LocalProtocolError(
            f"compression_level must be between -1 and 9, not {compression_level}"
        )
    if not 1 <= mem_level <= 9:
        raise LocalProtocolError(f"mem_level must be between 1 and 9, not {mem_level}")
    if min_size < 0:
        raise LocalProtocolError(f"min_size must not be negative, not {min_size}")


# --------------------------------------------------------------------------
# Negotiation (RFC 7692 sections 5 and 7.1)
# --------------------------------------------------------------------------


def negotiate(
    offers: Sequence[ExtensionOffer], settings: DeflateSettings
) -> tuple[str, PerMessageDeflate] | None:
    """Pick the first acceptable permessage-deflate offer.

    RFC 7692 section 5: "The order of elements is important as it specifies
    the client's preference.  An element preceding another element has
    higher preference.  It is recommended that a server accepts PMCEs with
    higher preference if the server supports them."  Offers of other
    extensions are skipped; so is every permessage-deflate offer that must
    be declined (see ``_accept``), which is never answered.

    Returns:
        ``(response, codec)``: the value for the response's
        ``Sec-WebSocket-Extensions`` header and the codec for the
        connection, or ``None`` when no offer can be accepted (the
        connection then runs without compression).
    """
    for offer in offers:
        # RFC 6455 section 9.1 tokens are compared case-insensitively, as
        # every other token of the handshake.
        if offer.name.lower() != EXTENSION_NAME:
            continue
        accepted = _accept(offer.params, settings)
        if accepted is not None:
            return accepted
    return None


def _accept(
    params: Sequence[tuple[str, str | None]], settings: DeflateSettings
) -> tuple[str, PerMessageDeflate] | None:
    """Answer one offer, or return ``None`` to decline it.

    RFC 7692 section 7: "A server MUST decline an extension negotiation
    offer for this extension if any of the following conditions are met:

    - The negotiation offer contains an extension parameter not defined
      for use in an offer.
    - The negotiation offer contains an extension parameter with an invalid
      value.
    - The negotiation offer contains multiple extension parameters with the
      same name.
    - The server doesn't support the offered configuration."

    We support every valid configuration, so only the first three decline.
    """
    offered: dict[str, str | None] = {}
    for raw_name, value in params:
        # Parameter names are compared case-insensitively, as RFC 9110
        # section 5.6.6 has it for parameters; the response uses the
        # lowercase names RFC 7692 defines.
        name = raw_name.lower()
        if name not in _KNOWN_PARAMS or name in offered:
            return None
        if name in (_SERVER_NO_CONTEXT_TAKEOVER, _CLIENT_NO_CONTEXT_TAKEOVER):
            # Sections 7.1.1.1 and 7.1.1.2: these parameters have no value.
            if value is not None:
                return None
        elif name == _SERVER_MAX_WINDOW_BITS:
            # Section 7.1.2.1: "This parameter has a decimal integer value
            # without leading zeroes between 8 to 15, inclusive"; unlike its
            # client_ sibling it always has one.
            if value not in _WINDOW_BITS_VALUES:
                return None
        elif value is not None and value not in _WINDOW_BITS_VALUES:
            # Section 7.1.2.2: client_max_window_bits "has no value or a
            # decimal integer value without leading zeroes between 8 to 15
            # inclusive".
            return None
        offered[name] = value

    response = [EXTENSION_NAME]

    # Section 7.1.1.1: "A server accepts an extension negotiation offer that
    # includes the "server_no_context_takeover" extension parameter by
    # including the "server_no_context_takeover" extension parameter in the
    # corresponding extension negotiation response [...]  A server MAY
    # include the "server_no_context_takeover" extension parameter in an
    # extension negotiation response even if the extension negotiation offer
    # being accepted by the extension negotiation response didn't include
    # [it]."
    server_no_context_takeover = (
        _SERVER_NO_CONTEXT_TAKEOVER in offered or settings.server_no_context_takeover
    )
    if server_no_context_takeover:
        response.append(_SERVER_NO_CONTEXT_TAKEOVER)

    # Section 7.1.1.2: "A server MAY include the "client_no_context_takeover"
    # extension parameter in an extension negotiation response.  If the
    # received extension negotiation offer includes the
    # "client_no_context_takeover" extension parameter, the server may
    # either ignore the parameter or use the parameter to avoid taking over
    # the LZ77 sliding window unnecessarily [...]".  We use it: the client
    # said it won't take over its window, so echoing costs nothing and lets
    # us drop our inflater between messages.
    client_no_context_takeover = (
        _CLIENT_NO_CONTEXT_TAKEOVER in offered or settings.client_no_context_takeover
    )
    if client_no_context_takeover:
        response.append(_CLIENT_NO_CONTEXT_TAKEOVER)

    # Section 7.1.2.1: "A server accepts an extension negotiation offer with
    # this parameter by including the "server_max_window_bits" extension
    # parameter in the extension negotiation response to send back to the
    # client with the same or smaller value as the offer."  Without the
    # parameter in the offer we announce nothing and use our own window:
    # the client's inflater accepts up to 15 bits, a superset.
    ours = max(settings.server_max_window_bits, _SMALLEST_ZLIB_WINDOW_BITS)
    server_bits_value = offered.get(_SERVER_MAX_WINDOW_BITS)
    if server_bits_value is not None:
        # Only an offer of 8 itself can make this 8 (see DeflateSettings).
        server_max_window_bits = min(_WINDOW_BITS_VALUES[server_bits_value], ours)
        response.append(f"{_SERVER_MAX_WINDOW_BITS}={server_max_window_bits}")
    else:
        server_max_window_bits = ours

    # Section 7.1.2.2: "If a received extension negotiation offer has the
    # "client_max_window_bits" extension parameter, the server MAY include
    # the "client_max_window_bits" extension parameter in the corresponding
    # extension negotiation response to the offer.  If the
    # "client_max_window_bits" extension parameter in a received extension
    # negotiation offer has a value, the server may either ignore this value
    # or use this value to avoid allocating an unnecessarily big LZ77
    # sliding window by including the "client_max_window_bits" extension
    # parameter in the corresponding extension negotiation response to the
    # offer with a value equal to or smaller than the received value.  If a
    # received extension negotiation offer doesn't have the
    # "client_max_window_bits" extension parameter, the corresponding
    # extension negotiation response to the offer MUST NOT include the
    # "client_max_window_bits" extension parameter."
    if _CLIENT_MAX_WINDOW_BITS in offered:
        client_bits_value = offered[_CLIENT_MAX_WINDOW_BITS]
        limit = (
            _DEFAULT_WINDOW_BITS
            if client_bits_value is None
            else _WINDOW_BITS_VALUES[client_bits_value]
        )
        # Only an offer of 8 itself can make this 8 (see DeflateSettings).
        client_max_window_bits = min(
            limit, max(settings.client_max_window_bits, _SMALLEST_ZLIB_WINDOW_BITS)
        )
        response.append(f"{_CLIENT_MAX_WINDOW_BITS}={client_max_window_bits}")
    else:
        client_max_window_bits = _DEFAULT_WINDOW_BITS

    codec = PerMessageDeflate(
        server_no_context_takeover=server_no_context_takeover,
        client_no_context_takeover=client_no_context_takeover,
        server_max_window_bits=server_max_window_bits,
        client_max_window_bits=client_max_window_bits,
        compression_level=settings.compression_level,
        mem_level=settings.mem_level,
        min_size=settings.min_size,
    )
    return "; ".join(response), codec


# --------------------------------------------------------------------------
# The client's side of the negotiation (RFC 7692 sections 5 and 7.1)
# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientDeflateSettings:
    """What a client offers, and how hard it compresses.

    Each of the four parameters of RFC 7692 section 7.1 has its field:

    Attributes:
        client_max_window_bits: the window our compressor uses at most,
            8..15; ``client_max_window_bits`` is offered without a value
            (section 7.1.2.2), so that the server may ask for less, and we
            use the smaller of the two.  12 (4 KiB) by default, as the
            server's: with ``mem_level=5``, about 64 KiB per busy connection
            instead of zlib's 300 KiB.
        server_max_window_bits: the window we ask the server to compress
            with at most, 8..15, or ``None`` (the default) not to ask, and
            inflate with 32 KiB.  Not asked by default: asking makes the
            server compress worse for every client, for 28 KiB of ours.
        server_no_context_takeover: ask the server to reset its compressor
            after every message, so that our inflater can be dropped between
            messages.  Off by default: context takeover is where most of the
            gain on small similar messages comes from.
        client_no_context_takeover: reset our compressor after every message
            and say so in the offer.  Off by default for the same reason.
        compression_level, mem_level, min_size: as ``DeflateSettings``
            (1, 5 and 64, for the reasons given there).
    """

    client_max_window_bits: int = 12
    server_max_window_bits: int | None = None
    server_no_context_takeover: bool = False
    client_no_context_takeover: bool = False
    compression_level: int = 1
    mem_level: int = 5
    min_size: int = 64

    def __post_init__(self) -> None:
        _check_codec_settings(
            server_max_window_bits=(
                _DEFAULT_WINDOW_BITS
                if self.server_max_window_bits is None
                else self.server_max_window_bits
            ),
            client_max_window_bits=self.client_max_window_bits,
            compression_level=self.compression_level,
            mem_level=self.mem_level,
            min_size=self.min_size,
        )


def client_offer(settings: ClientDeflateSettings) -> str:
    """The ``Sec-WebSocket-Extensions`` value a client sends: one offer.

    For example ``permessage-deflate; client_max_window_bits``.
    """
    params = [EXTENSION_NAME]
    if settings.server_no_context_takeover:
        params.append(_SERVER_NO_CONTEXT_TAKEOVER)
    if settings.client_no_context_takeover:
        params.append(_CLIENT_NO_CONTEXT_TAKEOVER)
    if settings.server_max_window_bits is not None:
        params.append(f"{_SERVER_MAX_WINDOW_BITS}={settings.server_max_window_bits}")
    # Section 7.1.2.2: without a value, "the client supports" a limit the
    # server chooses; we offer it so, since any window the server asks for
    # is one we can compress with (we use the smaller of it and ours).  A
    # value would be a ceiling the server must not exceed, which some
    # servers exceed anyway.
    params.append(_CLIENT_MAX_WINDOW_BITS)
    return "; ".join(params)


def _refuse(reason: str) -> InvalidResponse:
    return InvalidResponse(HandshakeFailure.INVALID_EXTENSION, reason)


def accept_response(
    extensions: Sequence[ExtensionOffer], settings: ClientDeflateSettings
) -> PerMessageDeflate | None:
    """Check the server's ``Sec-WebSocket-Extensions`` against our offer.

    RFC 6455 section 4.1, step 5: "If the response includes a
    |Sec-WebSocket-Extensions| header field and this header field indicates
    the use of an extension that was not present in the client's handshake
    (the server has indicated an extension not requested by the client), the
    client MUST _Fail the WebSocket Connection_."  RFC 7692 section 7: "A
    client MUST _Fail the WebSocket Connection_ if the peer server accepted
    an extension negotiation offer for this extension with an extension
    negotiation response meeting any of the following conditions: [a
    parameter] not defined for use in a response, [...] with an invalid
    value, multiple extension parameters with the same name, [or] the client
    does not support the configuration that the response represents."

    Returns:
        The client's codec, or ``None`` when the server accepted nothing.

    Raises:
        InvalidResponse: ``INVALID_EXTENSION``, with the rule broken.
    """
    if not extensions:
        return None
    if len(extensions) > 1:
        # We offered one extension, once: a second element accepts nothing
        # we offered (RFC 7692 section 5: one PMCE at most uses RSV1).
        raise _refuse("the server accepted more extensions than we offered")
    (response,) = extensions
    if response.name.lower() != EXTENSION_NAME:
        raise _refuse(f"the server accepted an extension we did not offer: {response.name}")
    agreed: dict[str, str | None] = {}
    for raw_name, value in response.params:
        name = raw_name.lower()
        if name not in _KNOWN_PARAMS:
            raise _refuse(f"unknown permessage-deflate parameter {raw_name}")
        if name in agreed:
            raise _refuse(f"duplicate permessage-deflate parameter {raw_name}")
        if name in (_SERVER_NO_CONTEXT_TAKEOVER, _CLIENT_NO_CONTEXT_TAKEOVER):
            if value is not None:
                raise _refuse(f"{name} takes no value")
        elif value not in _WINDOW_BITS_VALUES:
            # Sections 7.1.2.1 and 7.1.2.2: in a response, both window
            # parameters carry "a decimal integer value without leading
            # zeroes between 8 to 15, inclusive".
            raise _refuse(f"invalid value for {name}")
        agreed[name] = value

    # Section 7.1.1.1: "A server accepts an extension negotiation offer that
    # includes the "server_no_context_takeover" extension parameter by
    # including [it] in the corresponding extension negotiation response".
    server_no_context_takeover = _SERVER_NO_CONTEXT_TAKEOVER in agreed
    if settings.server_no_context_takeover and not server_no_context_takeover:
        raise _refuse("the server did not agree to server_no_context_takeover")
    # Section 7.1.1.2: "If the "agreed parameters" contain the
    # "client_no_context_takeover" extension parameter, the client MUST start
    # compressing each new message with an empty LZ77 sliding window"; we
    # also do so when we offered it ourselves.
    client_no_context_takeover = (
        _CLIENT_NO_CONTEXT_TAKEOVER in agreed or settings.client_no_context_takeover
    )
    # Section 7.1.2.1: the server accepts our server_max_window_bits "by
    # including the "server_max_window_bits" extension parameter in the
    # extension negotiation response ... with the same or smaller value as
    # the offer"; it may also include it unasked (a window it uses anyway).
    server_bits_value = agreed.get(_SERVER_MAX_WINDOW_BITS)
    if server_bits_value is None:
        if settings.server_max_window_bits is not None:
            raise _refuse("the server did not agree to server_max_window_bits")
        server_max_window_bits = _DEFAULT_WINDOW_BITS
    else:
        server_max_window_bits = _WINDOW_BITS_VALUES[server_bits_value]
        if (
            settings.server_max_window_bits is not None
            and server_max_window_bits > settings.server_max_window_bits
        ):
            raise _refuse("server_max_window_bits larger than we asked for")
    # Section 7.1.2.2: "By including this parameter in an extension
    # negotiation response, a server limits the LZ77 sliding window size
    # that the client uses to compress messages."  We offered the parameter
    # without a value, so any value is one we accept; we compress with the
    # smaller of it and our own window (always allowed: a smaller window is
    # valid for any inflater), and with ours when it is absent.
    client_bits_value = agreed.get(_CLIENT_MAX_WINDOW_BITS)
    client_max_window_bits = settings.client_max_window_bits
    if client_bits_value is not None:
        client_max_window_bits = min(_WINDOW_BITS_VALUES[client_bits_value], client_max_window_bits)
    return PerMessageDeflate(
        server_no_context_takeover=server_no_context_takeover,
        client_no_context_takeover=client_no_context_takeover,
        server_max_window_bits=server_max_window_bits,
        client_max_window_bits=client_max_window_bits,
        compression_level=settings.compression_level,
        mem_level=settings.mem_level,
        min_size=settings.min_size,
        client=True,
    )


# --------------------------------------------------------------------------
# Codec (RFC 7692 section 7.2)
# --------------------------------------------------------------------------


class PerMessageDeflate:
    """Our end of an agreed permessage-deflate extension, server or client.

    The parameters are the agreed ones, read-only, named as RFC 7692 names
    them.  For a server (the default) ``server_*`` apply to what we send
    (our compressor) and ``client_*`` to what we receive (our inflater); with
    ``client=True`` the other way round.

    Receiving: call ``decompress`` with each piece of a compressed message's
    payload, however the frames split it, then ``finish_decompression`` once
    the final frame's payload has been fed.  Sending: call ``compress`` once
    per outgoing fragment, ``fin=True`` for the last one.  Both directions
    are independent and may interleave.  After a ``FrameError`` the codec's
    state is undefined: the connection is failing anyway.
    """

    __slots__ = (
        "_client_max_window_bits",
        "_client_no_context_takeover",
        "_compression_level",
        "_compressor",
        "_decompressor",
        "_inbound_has_data",
        "_mem_level",
        "_min_size",
        "_receive_no_context_takeover",
        "_receive_window_bits",
        "_send_no_context_takeover",
        "_send_window_bits",
        "_server_max_window_bits",
        "_server_no_context_takeover",
    )

    def __init__(
        self,
        *,
        server_no_context_takeover: bool = False,
        client_no_context_takeover: bool = False,
        server_max_window_bits: int = _DEFAULT_WINDOW_BITS,
        client_max_window_bits: int = _DEFAULT_WINDOW_BITS,
        compression_level: int = 1,
        mem_level: int = 5,
        min_size: int = 64,
        client: bool = False,
    ) -> None:
        _check_codec_settings(
            server_max_window_bits=server_max_window_bits,
            client_max_window_bits=client_max_window_bits,
            compression_level=compression_level,
            mem_level=mem_level,
            min_size=min_size,
        )
        self._server_no_context_takeover = server_no_context_takeover
        self._client_no_context_takeover = client_no_context_takeover
        self._server_max_window_bits = server_max_window_bits
        self._client_max_window_bits = client_max_window_bits
        # The same agreement, seen from our end: a server compresses with the
        # server_* parameters and inflates with the client_* ones, a client
        # the other way round (RFC 7692 sections 7.1.1 and 7.1.2 name each
        # parameter by the side whose compressor it constrains).
        if client:
            self._send_no_context_takeover = client_no_context_takeover
            self._send_window_bits = client_max_window_bits
            self._receive_no_context_takeover = server_no_context_takeover
            self._receive_window_bits = server_max_window_bits
        else:
            self._send_no_context_takeover = server_no_context_takeover
            self._send_window_bits = server_max_window_bits
            self._receive_no_context_takeover = client_no_context_takeover
            self._receive_window_bits = client_max_window_bits
        self._compression_level = compression_level
        self._mem_level = mem_level
        self._min_size = min_size
        # Created on first use, dropped after a message when the matching
        # no-context-takeover parameter was agreed.
        self._compressor: zlib._Compress | None = None
        self._decompressor: zlib._Decompress | None = None
        # Whether the inbound message in progress has had any payload.
        self._inbound_has_data = False

    # -- agreed parameters --------------------------------------------------

    @property
    def server_no_context_takeover(self) -> bool:
        """We reset our compressor after every message."""
        return self._server_no_context_takeover

    @property
    def client_no_context_takeover(self) -> bool:
        """The client resets its compressor after every message."""
        return self._client_no_context_takeover

    @property
    def server_max_window_bits(self) -> int:
        """Largest window our compressor may use (8..15)."""
        return self._server_max_window_bits

    @property
    def client_max_window_bits(self) -> int:
        """Largest window the client may compress with (8..15)."""
        return self._client_max_window_bits

    @property
    def min_size(self) -> int:
        """Messages shorter than this are better sent uncompressed."""
        return self._min_size

    def __repr__(self) -> str:
        return (
            f"PerMessageDeflate("
            f"server_no_context_takeover={self._server_no_context_takeover}, "
            f"client_no_context_takeover={self._client_no_context_takeover}, "
            f"server_max_window_bits={self._server_max_window_bits}, "
            f"client_max_window_bits={self._client_max_window_bits})"
        )

    # -- receiving ----------------------------------------------------------

    def decompress(self, data: BytesLike, max_length: int) -> bytes:
        """Inflate part of a compressed message's payload.

        Frames may split the payload anywhere; pieces are fed in order.

        Args:
            data: the next piece of payload (unmasked).
            max_length: most bytes this call may return; the connection
                passes what is left of the message size limit.

        Raises:
            FrameError: 1009 if the piece inflates to more than
                ``max_length`` bytes (at most ``max_length + 1`` are ever
                produced); 1007 if it is not valid DEFLATE data.
        """
        if max_length < 0:
            raise LocalProtocolError(f"max_length must not be negative, not {max_length}")
        if not data:
            return b""  # nothing to inflate: don't create an inflater for it
        self._inbound_has_data = True
        return self._inflate(data, max_length)

    def finish_decompression(self, max_length: int) -> bytes:
        """End an inbound message and return the output it still held.

        RFC 7692 section 7.2.2: "1.  Append 4 octets of 0x00 0x00 0xff 0xff
        to the tail end of the payload of the message.  2.  Decompress the
        resulting data using DEFLATE."  Then, "If the "agreed parameters"
        contain the "client_no_context_takeover" extension parameter, the
        server MAY decompress each new message with an empty LZ77 sliding
        window.  Otherwise, it MUST decompress using the LZ77 sliding window
        used to process the last compressed message."  We drop the inflater
        in the first case, and keep it in the second.

        Args:
            max_length: most bytes this call may return, as ``decompress``.

        Raises:
            FrameError: 1009 or 1007, as ``decompress``.
        """
        if max_length < 0:
            raise LocalProtocolError(f"max_length must not be negative, not {max_length}")
        if self._inbound_has_data:
            data = self._inflate(_EMPTY_STORED_BLOCK_TAIL, max_length)
        else:
            # A compressed message with an empty payload is not DEFLATE data
            # (RFC 7692 section 7.2.3.6 sends a single 0x00 octet), but it
            # can only mean an empty message.  Appending the tail here would
            # leave the inflater inside a stored block and corrupt the next
            # message, so nothing is fed.
            data = b""
        self._inbound_has_data = False
        if self._receive_no_context_takeover:
            self._decompressor = None
        return data

    def _inflate(self, data: BytesLike, max_length: int) -> bytes:
        room = max_length
        pieces: list[bytes] = []
        streams = 0
        while True:
            decompressor = self._decompressor
            if decompressor is None:
                decompressor = self._decompressor = zlib.decompressobj(
                    wbits=-self._inflater_window_bits()
                )
            try:
                # Asking for one byte more than allowed is how we learn that
                # the limit is exceeded, with the output buffer never larger
                # than max_length + 1 (0 would mean "no limit" to zlib).
                output = decompressor.decompress(data, room + 1)
            except zlib.error as exc:
                # Includes "invalid distance too far back": a reference
                # beyond what the inflater holds, e.g. from a client using a
                # larger window than agreed.  (zlib lets a reference reach
                # into the output of the same call, so a larger window is
                # caught only when it reaches further back; either way the
                # memory used is bounded by our window and max_length.)
                raise FrameError(CloseCode.INVALID_PAYLOAD_DATA, "invalid compressed data") from exc
            # unconsumed_tail is input zlib had no room to inflate: only
            # possible once the output is full, i.e. past the limit.
            if len(output) > room or decompressor.unconsumed_tail:
                raise FrameError(
                    CloseCode.MESSAGE_TOO_BIG,
                    f"message larger than {max_length} bytes after decompression",
                )
            room -= len(output)
            pieces.append(output)
            if not decompressor.eof:
                break
            # A DEFLATE block with BFINAL set ended zlib's stream.  RFC 7692
            # section 7.2.1: "When any DEFLATE block with the "BFINAL" bit
            # set to 1 doesn't end at a byte boundary, an endpoint MUST add
            # minimal padding bits of 0 to make it end at a byte boundary.
            # The next DEFLATE block follows the padded data if any."  So
            # the rest of the input is more blocks: inflate them with a new
            # inflater.  It starts with an empty window, which is all a peer
            # that flushes this way can rely on in practice (zlib-based
            # compressors must reset after a final block); a back-reference
            # across the boundary fails with 1007.
            self._decompressor = None
            data = decompressor.unused_data
            if not data:
                break
            streams += 1
            if streams > _MAX_DEFLATE_STREAMS_PER_CHUNK:
                raise FrameError(
                    CloseCode.POLICY_VIOLATION, "too many final DEFLATE blocks in one frame"
                )
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)

    def _inflater_window_bits(self) -> int:
        # An inflater accepts every stream made with a window no larger than
        # its own, so 9 is safe for a client that agreed to 8.  zlib's raw
        # inflater does accept 8, but its deflate does not, and 8-bit
        # windows have a history of zlib bugs (madler/zlib#171): the 256
        # bytes are not worth the risk.
        return max(self._receive_window_bits, _SMALLEST_ZLIB_WINDOW_BITS)

    # -- sending ------------------------------------------------------------

    def compress(self, data: BytesLike, fin: bool) -> bytes:
        """Compress one fragment of an outgoing message.

        A whole message is one call with ``fin=True``.  The connection sets
        RSV1 on the first frame of the message only (RFC 7692 section 6).

        RFC 7692 section 7.2.1: "1.  Compress all the octets of the payload
        of the message using DEFLATE.  2.  If the resulting data does not
        end with an empty DEFLATE block with no compression (the "BTYPE"
        bits are set to 00), append an empty DEFLATE block with no
        compression to the tail end.  3.  Remove 4 octets (that are 0x00
        0x00 0xff 0xff) from the tail end."  A sync flush ends with exactly
        that empty block.  Non-final fragments keep it: it is valid DEFLATE
        in the middle of a message, and the flush lets the fragment go out
        now rather than wait in zlib.

        Args:
            data: the fragment's uncompressed bytes (may be empty).
            fin: whether this is the message's last fragment.

        Returns:
            The frame payload, never empty when ``fin`` is true.
        """
        compressor = self._compressor
        if compressor is None:
            compressor = self._compressor = self._new_compressor()
        output = compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
        if not fin:
            return output
        if output.endswith(_EMPTY_STORED_BLOCK_TAIL):
            output = output[: -len(_EMPTY_STORED_BLOCK_TAIL)]
        if not output:
            # Nothing was fed since the previous sync flush, so zlib had
            # nothing to emit; the payload must still be valid DEFLATE once
            # the receiver appends 0x00 0x00 0xff 0xff (section 7.2.3.6).
            output = _EMPTY_BLOCK_HEADER
        # Section 7.2.1: "If the "agreed parameters" contain the
        # "server_no_context_takeover" extension parameter, the server MUST
        # start compressing each new message with an empty LZ77 sliding
        # window."  Dropping the compressor frees its memory too.
        if self._send_no_context_takeover:
            self._compressor = None
        return output

    def _new_compressor(self) -> zlib._Compress:
        if self._send_window_bits < _SMALLEST_ZLIB_WINDOW_BITS:
            # The client asked for server_max_window_bits=8, which zlib's
            # deflate refuses.  Huffman-only compression emits no
            # back-references at all, so its output is valid for any window,
            # 8 bits included, whatever window zlib allocates; literals
            # alone still save on text.
            return zlib.compressobj(
                self._compression_level,
                zlib.DEFLATED,
                -_SMALLEST_ZLIB_WINDOW_BITS,
                self._mem_level,
                zlib.Z_HUFFMAN_ONLY,
            )
        return zlib.compressobj(
            self._compression_level,
            zlib.DEFLATED,
            -self._send_window_bits,
            self._mem_level,
        )
