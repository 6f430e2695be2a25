"""Tests for wsserver.server.views: ``WebSocketView``, end to end."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, ClassVar, Literal

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from wsserver.server import App, Server, WebSocket, WebSocketView

from .._live import TIMEOUT, serving, ws_url


class Recorder:
    """What a view saw, shared with the test."""

    def __init__(self) -> None:
        self.received: list[Any] = []
        self.disconnects: list[int] = []
        self.ended = asyncio.Event()


def recording_view(
    recorder: Recorder,
    encoding: Literal["text", "bytes", "json"] | None,
    *,
    fail_on: object = None,
) -> type[WebSocketView]:
    class View(WebSocketView):
        async def on_receive(self, websocket: WebSocket, data: Any) -> None:
            recorder.received.append(data)
            if data == fail_on:
                raise ValueError("secret detail")
            await websocket.send_text(f"{type(data).__name__}:{data!r}")

        async def on_disconnect(self, websocket: WebSocket, close_code: int) -> None:
            recorder.disconnects.append(close_code)
            recorder.ended.set()

    View.encoding = encoding
    return View


async def ended(recorder: Recorder) -> None:
    await asyncio.wait_for(recorder.ended.wait(), TIMEOUT)


async def closed_with(client: ClientConnection) -> tuple[int | None, str | None]:
    with pytest.raises(ConnectionClosed):
        while True:
            await asyncio.wait_for(client.recv(), TIMEOUT)
    return client.close_code, client.close_reason


async def roundtrip(client: ClientConnection, message: str | bytes) -> str | bytes:
    await client.send(message)
    return await asyncio.wait_for(client.recv(), TIMEOUT)


# ---------------------------------------------------------------------------
# encodings
# ---------------------------------------------------------------------------


async def test_encoding_none_passes_text_and_bytes_as_they_come() -> None:
    recorder = Recorder()
    async with (
        serving(recording_view(recorder, None)) as server,
        connect(ws_url(server)) as client,
    ):
        assert await roundtrip(client, "hi") == "str:'hi'"
        assert await roundtrip(client, b"\x00") == "bytes:b'\\x00'"
        await client.close(4000)
        await ended(recorder)
    assert recorder.received == ["hi", b"\x00"]
    assert recorder.disconnects == [4000]


@pytest.mark.parametrize(
    ("encoding", "good", "expected", "bad", "code", "reason"),
    [
        ("text", "hi", "str:'hi'", b"hi", 1003, "expected text messages"),
        ("bytes", b"hi", "bytes:b'hi'", "hi", 1003, "expected binary messages"),
        ("json", '{"a":1}', "dict:{'a': 1}", "{oops", 1007, "invalid JSON"),
        ("json", "[1,2]", "list:[1, 2]", b"[1,2]", 1003, "expected text messages"),
    ],
)
async def test_encoding_decodes_good_messages_and_refuses_bad_ones(
    encoding: Literal["text", "bytes", "json"],
    good: str | bytes,
    expected: str,
    bad: str | bytes,
    code: int,
    reason: str,
) -> None:
    recorder = Recorder()
    async with (
        serving(recording_view(recorder, encoding)) as server,
        connect(ws_url(server)) as client,
    ):
        assert await roundtrip(client, good) == expected
        await client.send(bad)
        assert await closed_with(client) == (code, reason)
        await ended(recorder)
    # The refused message never reached on_receive; on_disconnect got the
    # code the view closed with, once.
    assert len(recorder.received) == 1
    assert recorder.disconnects == [code]


# ---------------------------------------------------------------------------
# connecting and disconnecting
# ---------------------------------------------------------------------------


async def test_on_connect_can_reject_with_a_status() -> None:
    disconnected: list[int] = []
    done = asyncio.Event()

    class Guarded(WebSocketView):
        async def on_connect(self, websocket: WebSocket) -> None:
            if websocket.query_params.get("token") != "s3cret":
                await self.reject(401, "no")
                return
            await websocket.accept()

        async def on_receive(self, websocket: WebSocket, data: Any) -> None:
            await websocket.send_text("welcome")

        async def on_disconnect(self, websocket: WebSocket, close_code: int) -> None:
            disconnected.append(close_code)
            done.set()

    async with serving(Guarded) as server:
        with pytest.raises(InvalidStatus) as caught:
            async with connect(ws_url(server, "/?token=wrong")):
                pass
        assert caught.value.response.status_code == 401
        assert caught.value.response.body == b"no\n"
        async with connect(ws_url(server, "/?token=s3cret")) as client:
            assert await roundtrip(client, "x") == "welcome"
        await asyncio.wait_for(done.wait(), TIMEOUT)
    # A refused connection never connected: no on_disconnect for it.
    assert disconnected == [1000]


@pytest.mark.parametrize(
    ("given", "status", "body"),
    [
        (None, 403, b"Forbidden\n"),
        (429, 429, b"Too Many Requests\n"),
        # A status without a standard phrase still gets a body.
        (499, 499, b"HTTP 499\n"),
    ],
)
async def test_reject_defaults_to_the_status_phrase(
    given: int | None, status: int, body: bytes
) -> None:
    class Closed(WebSocketView):
        async def on_connect(self, websocket: WebSocket) -> None:
            await (self.reject() if given is None else self.reject(given))

    async with serving(Closed) as server:
        with pytest.raises(InvalidStatus) as caught:
            async with connect(ws_url(server)):
                pass
        assert caught.value.response.status_code == status
        assert caught.value.response.body == body


async def test_on_connect_can_pick_a_subprotocol() -> None:
    class Chat(WebSocketView):
        async def on_connect(self, websocket: WebSocket) -> None:
            await websocket.accept(subprotocol="chat.v2")

    async with (
        serving(Chat) as server,
        connect(ws_url(server), subprotocols=["chat.v1", "chat.v2"]) as client,  # type: ignore[list-item]
    ):
        assert client.subprotocol == "chat.v2"


async def test_on_disconnect_is_called_once_with_the_client_close_code() -> None:
    recorder = Recorder()
    async with (
        serving(recording_view(recorder, "text")) as server,
        connect(ws_url(server)) as client,
    ):
        await roundtrip(client, "one")
        await client.close(4321, "leaving")
        await ended(recorder)
    assert recorder.disconnects == [4321]


async def test_view_closing_from_on_receive_reports_the_peer_answer() -> None:
    codes: list[int] = []
    done = asyncio.Event()

    class Quitter(WebSocketView):
        encoding: ClassVar[Literal["text"]] = "text"

        async def on_receive(self, websocket: WebSocket, data: Any) -> None:
            await websocket.close(4100, "bye")

        async def on_disconnect(self, websocket: WebSocket, close_code: int) -> None:
            codes.append(close_code)
            done.set()

    async with serving(Quitter) as server, connect(ws_url(server)) as client:
        await client.send("quit")
        assert await closed_with(client) == (4100, "bye")
        await asyncio.wait_for(done.wait(), TIMEOUT)
    # The client echoed our Close: the Disconnect carries its code.
    assert codes == [4100]


async def test_exception_in_on_receive_closes_with_1011_and_spares_other_clients(
    caplog: pytest.LogCaptureFixture,
) -> None:
    recorder = Recorder()
    view = recording_view(recorder, "text", fail_on="boom")
    async with (
        serving(view) as server,
        connect(ws_url(server)) as victim,
        connect(ws_url(server)) as bystander,
    ):
        assert await roundtrip(bystander, "before") == "str:'before'"
        with caplog.at_level(logging.ERROR, logger="wsserver"):
            await victim.send("boom")
            # The reason says nothing about the error: it is visible to the peer.
            assert await closed_with(victim) == (1011, "internal error")
            await ended(recorder)
        assert recorder.disconnects == [1011]
        # The traceback went to the log instead.
        assert any("secret detail" in (r.exc_text or "") for r in caplog.records)
        assert await roundtrip(bystander, "after") == "str:'after'"


async def test_exception_in_on_connect_before_accept_gives_500() -> None:
    class Broken(WebSocketView):
        async def on_connect(self, websocket: WebSocket) -> None:
            raise RuntimeError("misconfigured")

    async with serving(Broken) as server:
        with pytest.raises(InvalidStatus) as caught:
            async with connect(ws_url(server)):
                pass
        assert caught.value.response.status_code == 500
        assert b"misconfigured" not in caught.value.response.body


async def test_views_get_path_params_and_one_instance_per_connection() -> None:
    instances: list[int] = []

    class Room(WebSocketView):
        encoding: ClassVar[Literal["text"]] = "text"

        async def on_connect(self, websocket: WebSocket) -> None:
            instances.append(id(self))
            self.room = websocket.path_params["room"]
            await websocket.accept()

        async def on_receive(self, websocket: WebSocket, data: Any) -> None:
            await websocket.send_text(f"{self.room}:{data}")

    app = App()
    app.add_websocket_route("/rooms/{room}", Room)
    async with (
        serving(app) as server,
        connect(ws_url(server, "/rooms/red")) as red,
        connect(ws_url(server, "/rooms/blue")) as blue,
    ):
        assert await roundtrip(red, "hi") == "red:hi"
        assert await roundtrip(blue, "hi") == "blue:hi"
    assert len(set(instances)) == 2


async def test_default_on_receive_ignores_messages() -> None:
    async with serving(WebSocketView) as server, connect(ws_url(server)) as client:
        await client.send("ignored")
        pong = await client.ping()
        # The connection is alive and nothing came back but the pong.
        assert await asyncio.wait_for(pong, TIMEOUT) > 0
        await client.close()
        assert client.close_code == 1000


async def test_peer_leaving_during_a_handler_reports_its_code_not_1011() -> None:
    codes: list[int] = []
    done = asyncio.Event()

    class Login(WebSocketView):
        encoding: ClassVar[Literal["text"]] = "text"

        async def on_receive(self, websocket: WebSocket, data: Any) -> None:
            # A handler may read the follow-up message itself; the peer
            # leaves instead of sending it.
            password = await websocket.receive_text()
            await websocket.send_text(f"checking {password}")

        async def on_disconnect(self, websocket: WebSocket, close_code: int) -> None:
            codes.append(close_code)
            done.set()

    async with serving(Login) as server, connect(ws_url(server)) as client:
        await client.send("login")
        await client.close(4000, "changed my mind")
        await asyncio.wait_for(done.wait(), TIMEOUT)
    assert codes == [4000]


# ---------------------------------------------------------------------------
# mistaken hooks: a clear answer and one log line, never a hang
# ---------------------------------------------------------------------------


def error_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "wsserver" and r.levelno >= logging.ERROR]


def hook_name(view: type[WebSocketView], hook: str) -> str:
    return f"{view.__module__}.{view.__qualname__}.{hook}"


async def refusal_status(server: Server) -> int:
    async def handshake() -> int:
        with pytest.raises(InvalidStatus) as caught:
            async with connect(ws_url(server), open_timeout=TIMEOUT):
                pass
        return caught.value.response.status_code

    return await asyncio.wait_for(handshake(), TIMEOUT)


async def test_on_connect_returning_false_is_500_not_a_silent_refusal(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Picky(WebSocketView):
        async def on_connect(self, websocket: WebSocket) -> Any:
            return False  # meant as "refuse": that is self.reject()

    async with serving(Picky) as server:
        with caplog.at_level(logging.ERROR, logger="wsserver"):
            assert await refusal_status(server) == 500
        (record,) = error_records(caplog)
        assert record.getMessage().endswith(
            f": /: WebSocketView hook {hook_name(Picky, 'on_connect')} returned bool False, "
            "expected None (accept with websocket.accept(), refuse with self.reject()); "
            "answered 500"
        )
        assert record.exc_info is None


async def test_on_connect_declared_without_async_is_500(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Plain(WebSocketView):
        def on_connect(self, websocket: WebSocket) -> None:  # type: ignore[override]
            pass

    async with serving(Plain) as server:
        with caplog.at_level(logging.ERROR, logger="wsserver"):
            assert await refusal_status(server) == 500
        (record,) = error_records(caplog)
        message = record.getMessage()
        assert f"WebSocketView hook {hook_name(Plain, 'on_connect')} returned NoneType None" in (
            message
        )
        assert "expected an awaitable (declare it with async def); answered 500" in message


async def test_on_receive_returning_a_value_closes_with_1011(
    caplog: pytest.LogCaptureFixture,
) -> None:
    codes: list[int] = []

    class Replier(WebSocketView):
        encoding: ClassVar[Literal["text"]] = "text"

        async def on_receive(self, websocket: WebSocket, data: Any) -> Any:
            return data.upper()  # meant to be sent: that is send_text()

        async def on_disconnect(self, websocket: WebSocket, close_code: int) -> None:
            codes.append(close_code)

    async with serving(Replier) as server, connect(ws_url(server)) as client:
        with caplog.at_level(logging.ERROR, logger="wsserver"):
            await client.send("hi")
            assert await closed_with(client) == (1011, "internal error")
        (record,) = error_records(caplog)
        assert record.getMessage().endswith(
            f": /: WebSocketView hook {hook_name(Replier, 'on_receive')} returned str 'HI', "
            "expected None (send replies with websocket.send_*()); closed with 1011"
        )
        assert record.exc_info is None
    assert codes == [1011]


async def test_on_disconnect_returning_a_value_is_logged_once_the_peer_has_left(
    caplog: pytest.LogCaptureFixture,
) -> None:
    done = asyncio.Event()

    class Farewell(WebSocketView):
        async def on_disconnect(self, websocket: WebSocket, close_code: int) -> Any:
            done.set()
            return f"bye {close_code}"

    async with serving(Farewell) as server:
        with caplog.at_level(logging.ERROR, logger="wsserver"):
            async with connect(ws_url(server)) as client:
                await client.close(4000)
            await asyncio.wait_for(done.wait(), TIMEOUT)
            await asyncio.wait_for(_until(lambda: bool(error_records(caplog))), TIMEOUT)
        # Too late to change the close code: the peer's own stands.
        assert client.close_code == 4000
        (record,) = error_records(caplog)
        assert record.getMessage().endswith(
            f": /: WebSocketView hook {hook_name(Farewell, 'on_disconnect')} returned "
            "str 'bye 4000', expected None; the connection was already ending"
        )


async def test_a_hook_error_keeps_its_traceback_over_a_mistaken_on_disconnect(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Both(WebSocketView):
        async def on_receive(self, websocket: WebSocket, data: Any) -> None:
            raise KeyError("the real bug")

        async def on_disconnect(self, websocket: WebSocket, close_code: int) -> Any:
            return close_code

    async with serving(Both) as server, connect(ws_url(server)) as client:
        with caplog.at_level(logging.ERROR, logger="wsserver"):
            await client.send("x")
            assert await closed_with(client) == (1011, "internal error")
        (record,) = error_records(caplog)
        assert record.getMessage().endswith("error in WebSocket handler for /")
        assert "the real bug" in (record.exc_text or "")


async def test_on_disconnect_raising_is_logged_with_its_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Leaky(WebSocketView):
        async def on_disconnect(self, websocket: WebSocket, close_code: int) -> None:
            raise OSError("cleanup failed")

    async with serving(Leaky) as server:
        with caplog.at_level(logging.ERROR, logger="wsserver"):
            async with connect(ws_url(server)) as client:
                await client.close()
            await asyncio.wait_for(_until(lambda: bool(error_records(caplog))), TIMEOUT)
        assert client.close_code == 1000
        (record,) = error_records(caplog)
        assert "cleanup failed" in (record.exc_text or "")


async def _until(condition: Callable[[], bool]) -> None:
    while not condition():
        await asyncio.sleep(0.01)
