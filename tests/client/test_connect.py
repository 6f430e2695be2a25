"""End-to-end tests of ``connect()`` over loopback: against our server,
websockets' and wsproto's (differential), and a raw server for every way a
handshake fails, each giving its exception.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.client._servers import (
    TIMEOUT,
    raw_server,
    switching,
    websockets_echo,
    wsproto_echo,
)
from tests.server.helpers import harness, tls_contexts
from wsserver.client import (
    ClientDeflateSettings,
    HandshakeTimeout,
    InvalidAccept,
    InvalidExtension,
    InvalidMessage,
    InvalidStatus,
    InvalidSubprotocol,
    InvalidUpgrade,
    InvalidURI,
    TooManyRedirects,
    connect,
)
from wsserver.server import WebSocket


def options(**extra: Any) -> dict[str, Any]:
    extra.setdefault("open_timeout", TIMEOUT)
    extra.setdefault("close_timeout", TIMEOUT)
    extra.setdefault("ping_interval", None)
    return extra


async def exchange(uri: str, **extra: object) -> tuple[list[str | bytes], str | None, str | None]:
    async with connect(uri, **options(**extra)) as ws:
        await ws.send("hello")
        await ws.send(b"\x00\x01" * 5000)
        await ws.send(["frag", "mented"])
        got = [await ws.recv() for _ in range(3)]
        return got, ws.subprotocol, ws.extensions


EXPECTED = ["hello", b"\x00\x01" * 5000, "fragmented"]


async def test_against_our_server() -> None:
    async with harness() as h:
        server = await h.serve()
        got, _, extensions = await exchange(f"ws://127.0.0.1:{server.port}/")
    assert got == EXPECTED
    assert extensions is not None and extensions.startswith("permessage-deflate")


async def test_against_websockets_server() -> None:
    async with websockets_echo() as port:
        got, _, extensions = await exchange(f"ws://127.0.0.1:{port}/")
    assert got == EXPECTED
    assert extensions is not None and extensions.startswith("permessage-deflate")


async def test_against_wsproto_server() -> None:
    async with wsproto_echo() as port:
        got, subprotocol, extensions = await exchange(
            f"ws://127.0.0.1:{port}/", subprotocols=["chat"]
        )
    # wsproto echoes each frame as it comes: the fragmented message comes
    # back fragmented, and whole.
    assert got == EXPECTED
    assert subprotocol == "chat"
    assert extensions is not None and "permessage-deflate" in extensions


@pytest.mark.parametrize(
    "compression",
    [
        None,
        ClientDeflateSettings(
            server_max_window_bits=9,
            client_max_window_bits=8,
            server_no_context_takeover=True,
            client_no_context_takeover=True,
        ),
    ],
)
async def test_compression_choices_against_websockets(
    compression: ClientDeflateSettings | None,
) -> None:
    async with websockets_echo() as port:
        got, _, extensions = await exchange(f"ws://127.0.0.1:{port}/", compression=compression)
    assert got == EXPECTED
    if compression is None:
        assert extensions is None
    else:
        assert extensions is not None and "server_no_context_takeover" in extensions


async def test_wss(tmp_path: Path) -> None:
    server_context, client_context = tls_contexts(tmp_path)
    async with harness() as h:
        server = await h.serve(ssl_context=server_context)
        got, _, _ = await exchange(f"wss://localhost:{server.port}/", ssl=client_context)
        assert got == EXPECTED
        # The default context checks the certificate: this one is unknown.
        with pytest.raises(ssl.SSLCertVerificationError):
            await exchange(f"wss://localhost:{server.port}/")


async def test_subprotocol_chosen_by_our_server() -> None:
    async def handler(websocket: WebSocket) -> None:
        await websocket.accept(subprotocol="v2")
        await websocket.send_text("ok")
        await websocket.close()

    from tests.server.helpers import FunctionApp

    async with harness() as h:
        server = await h.serve(FunctionApp(handler))
        async with connect(
            f"ws://127.0.0.1:{server.port}/", subprotocols=["v1", "v2"], **options()
        ) as ws:
            assert ws.subprotocol == "v2"
            assert await ws.recv() == "ok"


# -- handshake failures, one exception each ------------------------------------


def status(code: int, *fields: tuple[str, str], body: bytes = b"") -> bytes:
    lines = [f"HTTP/1.1 {code} X", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in fields]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (lambda key: status(403, body=b"go away"), InvalidStatus),
        (lambda key: b"garbage\r\n\r\n", InvalidMessage),
        (
            lambda key: switching(key).replace(b"Upgrade: websocket", b"Upgrade: h2c"),
            InvalidUpgrade,
        ),
        (lambda key: switching("AAAAAAAAAAAAAAAAAAAAAA=="), InvalidAccept),
        (lambda key: switching(key, ("Sec-WebSocket-Protocol", "other")), InvalidSubprotocol),
        (lambda key: switching(key, ("Sec-WebSocket-Extensions", "x-zip")), InvalidExtension),
    ],
)
async def test_each_handshake_failure_has_its_exception(
    answer: Callable[[str], bytes], error: type[Exception]
) -> None:
    async with raw_server(answer) as port:
        uri = f"ws://127.0.0.1:{port}/"
        with pytest.raises(error) as caught:
            await connect(uri, **options())
    if isinstance(caught.value, InvalidStatus):
        assert caught.value.status == 403
        assert caught.value.body == b"go away"


async def test_a_response_cut_short_is_an_invalid_message() -> None:
    async with raw_server(lambda key: b"HTTP/1.1 101 Switching", close=True) as port:
        with pytest.raises(InvalidMessage, match="closed"):
            await connect(f"ws://127.0.0.1:{port}/", **options())


async def test_handshake_timeout() -> None:
    never: asyncio.Event = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await never.wait()
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(HandshakeTimeout) as caught:
            await connect(f"ws://127.0.0.1:{port}/", open_timeout=0.2)
        assert isinstance(caught.value, TimeoutError)
    finally:
        never.set()
        server.close()
        await server.wait_closed()


async def test_redirects_are_followed() -> None:
    async with harness() as h:
        target = await h.serve()
        location = f"ws://127.0.0.1:{target.port}/"
        async with raw_server(lambda key: status(302, ("Location", location))) as port:
            got, _, _ = await exchange(f"ws://127.0.0.1:{port}/old")
    assert got == EXPECTED


async def test_a_relative_redirect_loop_ends() -> None:
    async with raw_server(lambda key: status(307, ("Location", "/again"))) as port:
        with pytest.raises(TooManyRedirects):
            await connect(f"ws://127.0.0.1:{port}/", max_redirects=3, **options())


async def test_a_redirect_from_wss_to_ws_is_refused(tmp_path: Path) -> None:
    server_context, client_context = tls_contexts(tmp_path)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(status(301, ("Location", "ws://127.0.0.1:1/")))
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=server_context)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(InvalidURI, match="insecure"):
            await connect(f"wss://localhost:{port}/", ssl=client_context, **options())
    finally:
        server.close()
        await server.wait_closed()


def test_arguments_checked_at_once() -> None:
    with pytest.raises(InvalidURI):
        connect("http://example.com/")
    with pytest.raises(InvalidURI):
        connect("ws://example.com/", ssl=ssl.create_default_context())
    with pytest.raises(ValueError, match="compression"):
        connect("ws://example.com/", compression="gzip")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_queue"):
        connect("ws://example.com/", max_queue=0)
    with pytest.raises(ValueError, match="max_redirects"):
        connect("ws://example.com/", max_redirects=-1)


async def test_additional_headers_and_user_agent_reach_the_server() -> None:
    seen: list[tuple[str, str]] = []

    async def handler(websocket: WebSocket) -> None:
        seen.extend(websocket.headers.items())
        await websocket.accept()
        await websocket.close()

    from tests.server.helpers import FunctionApp

    async with harness() as h:
        server = await h.serve(FunctionApp(handler))
        async with connect(
            f"ws://127.0.0.1:{server.port}/",
            additional_headers={"Authorization": "Bearer x"},
            **options(),
        ) as ws:
            await ws.wait_closed()
    assert ("authorization", "Bearer x") in seen
    assert ("user-agent", "wsserver-client") in seen
