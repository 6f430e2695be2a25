"""Fuzz target: the header parsers and permessage-deflate negotiation.

INVARIANT: events or a documented failure, never any other exception, never
unbounded memory.  Here:

* ``parse_token_list`` and ``parse_extension_offers`` return, or raise
  ``HandshakeError`` with status 400 (their only documented failure), on any
  text; what they return follows the grammar (tokens, ``token/token`` in
  token lists; token names and token-or-absent values in offers), and a
  list means the same split over several header values or joined into one
  (RFC 9110 section 5.3; an empty value offers nothing);
* an offer re-serialised by ``format_extension`` parses back to itself;
* ``negotiate()`` over the parsed offers, with any valid ``DeflateSettings``,
  never raises; what it agrees to is a well-formed permessage-deflate
  response that a client made the offer for can accept (RFC 7692 section 7),
  the codec has exactly those parameters, and its output inflates with the
  window it announced.

Input: bytes 0-3 choose the ``DeflateSettings``; the rest, decoded as
ISO-8859-1 (as the HTTP phase decodes header values), is split at line feeds
into header values.

Run: ``python fuzz/fuzz_extensions.py [libFuzzer args] [corpus dirs]``.
"""

from __future__ import annotations

import sys
import zlib

import atheris

with atheris.instrument_imports(include=["wsserver"]):
    from wsserver.protocol.exceptions import HandshakeError
    from wsserver.protocol.extensions.permessage_deflate import (
        DeflateSettings,
        PerMessageDeflate,
        negotiate,
    )
    from wsserver.protocol.headers import (
        ExtensionOffer,
        format_extension,
        is_token,
        parse_extension_offers,
        parse_token_list,
    )

SETTINGS_BYTES = 4
_KNOWN = {
    "server_no_context_takeover",
    "client_no_context_takeover",
    "server_max_window_bits",
    "client_max_window_bits",
}
_SAMPLE = b"permessage-deflate " * 8


def decode(data: bytes) -> tuple[DeflateSettings, list[str]]:
    """The settings and the header values an input stands for."""
    fdp = atheris.FuzzedDataProvider(data)
    raw = bytes(fdp.ConsumeBytes(SETTINGS_BYTES)).ljust(SETTINGS_BYTES, b"\x00")
    settings = DeflateSettings(
        server_max_window_bits=8 + (raw[0] & 0x07),
        client_max_window_bits=8 + (raw[0] >> 3 & 0x07),
        server_no_context_takeover=bool(raw[0] & 0x40),
        client_no_context_takeover=bool(raw[0] & 0x80),
        compression_level=raw[1] % 11 - 1,
        mem_level=1 + raw[2] % 9,
        min_size=raw[3],
    )
    text = bytes(fdp.ConsumeBytes(fdp.remaining_bytes())).decode("latin-1")
    return settings, text.split("\n")


def encode(settings: bytes, values: list[str]) -> bytes:
    assert len(settings) == SETTINGS_BYTES
    return settings + "\n".join(values).encode("latin-1")


def _parse_tokens(values: list[str]) -> list[str] | None:
    try:
        tokens = parse_token_list(values)
    except HandshakeError as error:
        assert error.status == 400, f"token list refused with {error.status}"
        return None
    for token in tokens:
        name, slash, version = token.partition("/")
        assert is_token(name) and (not slash or is_token(version)), f"bad token {token!r}"
    return tokens


def _parse_offers(values: list[str]) -> list[ExtensionOffer] | None:
    try:
        offers = parse_extension_offers(values)
    except HandshakeError as error:
        assert error.status == 400, f"extensions refused with {error.status}"
        return None
    for offer in offers:
        assert is_token(offer.name), f"bad extension name {offer.name!r}"
        for name, value in offer.params:
            assert is_token(name), f"bad parameter name {name!r}"
            assert value is None or is_token(value), f"bad parameter value {value!r}"
        again = parse_extension_offers([format_extension(offer.name, offer.params)])
        assert again == [offer], f"{offer} does not survive formatting: {again}"
    return offers


def _check_agreement(
    offers: list[ExtensionOffer], settings: DeflateSettings, header: str, codec: PerMessageDeflate
) -> None:
    (response,) = parse_extension_offers([header])
    assert response.name == "permessage-deflate", f"agreed to {response.name!r}"
    agreed = dict(response.params)
    assert len(agreed) == len(response.params), f"duplicate parameter in {header!r}"
    assert set(agreed) <= _KNOWN, f"unknown parameter in {header!r}"
    # The offer it answers: the first permessage-deflate offer whose
    # parameters are all known, valid and not repeated (RFC 7692 section 7).
    offer = next(
        o for o in offers if o.name.lower() == "permessage-deflate" and _acceptable(o.params)
    )
    offered = {name.lower(): value for name, value in offer.params}
    assert codec.server_no_context_takeover == ("server_no_context_takeover" in agreed)
    assert codec.client_no_context_takeover == ("client_no_context_takeover" in agreed)
    if "server_no_context_takeover" in offered:
        assert codec.server_no_context_takeover, "server_no_context_takeover was not agreed"
    if settings.server_no_context_takeover:
        assert codec.server_no_context_takeover, "server_no_context_takeover was not used"
    assert agreed.get("server_no_context_takeover") is None
    assert agreed.get("client_no_context_takeover") is None
    if "server_max_window_bits" in offered:
        value = agreed["server_max_window_bits"]
        assert value is not None and int(value) == codec.server_max_window_bits
        assert codec.server_max_window_bits <= int(offered["server_max_window_bits"] or 0)
    else:
        assert "server_max_window_bits" not in agreed, "server_max_window_bits not offered"
    assert 8 <= codec.server_max_window_bits <= 15
    if "client_max_window_bits" in offered:
        value = agreed["client_max_window_bits"]
        assert value is not None and int(value) == codec.client_max_window_bits
        limit = offered["client_max_window_bits"]
        assert codec.client_max_window_bits <= (int(limit) if limit else 15)
    else:
        # RFC 7692 section 7.1.2.2: "MUST NOT include" it then.
        assert "client_max_window_bits" not in agreed, "client_max_window_bits not offered"
        assert codec.client_max_window_bits == 15
    # What the codec sends inflates with the window it agreed to.
    payload = codec.compress(_SAMPLE, True)
    inflater = zlib.decompressobj(wbits=-codec.server_max_window_bits)
    assert inflater.decompress(payload + b"\x00\x00\xff\xff") == _SAMPLE
    # And it reads what a client compressing with its agreed window sends.
    deflater = zlib.compressobj(
        6, zlib.DEFLATED, -max(codec.client_max_window_bits, 9), 8, zlib.Z_DEFAULT_STRATEGY
    )
    sent = deflater.compress(_SAMPLE) + deflater.flush(zlib.Z_SYNC_FLUSH)
    received = codec.decompress(sent[:-4], len(_SAMPLE)) + codec.finish_decompression(len(_SAMPLE))
    assert received == _SAMPLE


def _acceptable(params: tuple[tuple[str, str | None], ...]) -> bool:
    seen = set()
    for raw_name, value in params:
        name = raw_name.lower()
        if name not in _KNOWN or name in seen:
            return False
        seen.add(name)
        if name.endswith("no_context_takeover"):
            if value is not None:
                return False
        elif name == "server_max_window_bits":
            if value not in {str(bits) for bits in range(8, 16)}:
                return False
        elif value is not None and value not in {str(bits) for bits in range(8, 16)}:
            return False
    return True


def TestOneInput(data: bytes) -> None:
    settings, values = decode(data)
    tokens = _parse_tokens(values)
    # RFC 9110 section 5.3: several field lines are one comma-joined list.
    assert _parse_tokens([", ".join(values)]) == tokens, "joining the values changed the list"
    offers = _parse_offers(values)
    assert _parse_offers([", ".join(values)]) == offers, "joining the values changed the offers"
    if offers is None:
        return
    negotiated = negotiate(offers, settings)
    expected = any(o.name.lower() == "permessage-deflate" and _acceptable(o.params) for o in offers)
    assert (negotiated is not None) == expected, f"negotiate() returned {negotiated}"
    if negotiated is not None:
        header, codec = negotiated
        _check_agreement(offers, settings, header, codec)


# -- seeds ------------------------------------------------------------------


def seeds() -> dict[str, bytes]:
    default = b"\x24\x07\x04\x40"  # 12/12 bits, level 6, memLevel 5, min_size 64
    return {
        "deflate": encode(default, ["permessage-deflate"]),
        "deflate-params": encode(
            default,
            [
                "permessage-deflate; client_max_window_bits; server_max_window_bits=10, "
                "permessage-deflate"
            ],
        ),
        "deflate-8": encode(
            b"\xc0\x00\x00\x00",
            ["permessage-deflate; server_max_window_bits=8; client_max_window_bits=8"],
        ),
        "takeover": encode(
            default,
            [
                "x-webkit-deflate-frame",
                "permessage-deflate; client_no_context_takeover; server_no_context_takeover",
            ],
        ),
        "declined": encode(
            default,
            ['permessage-deflate; server_max_window_bits="010", permessage-deflate; foo'],
        ),
        "quoted": encode(default, ['permessage-deflate; client_max_window_bits="12"']),
        "escaped": encode(default, ['foo; bar="a\\"b"', "baz;x=1;y"]),
        "tokens": encode(default, ["keep-alive, Upgrade", "websocket, HTTP/2.0 ,, "]),
    }


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
