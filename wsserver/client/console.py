"""``wsserver connect URI``: an interactive client, one line per message.

Like ``python -m websockets URI``: each line typed is sent as a text message;
each message received is printed on a line of its own, ``< text``, or
``< (binary) 0a1b...`` for bytes.  Lines are edited and recalled with
readline, and the history is kept in ``~/.wsserver_history`` (when it can be
written).  End of input (Ctrl-D) closes the connection with 1000; so does
Ctrl-C.

``console()`` is the loop itself, over any source of lines and any writer,
so that it runs in tests; ``run_console()`` wires it to the terminal (stdin
is read in a thread: ``input()`` blocks).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from .connect import connect
from .connection import ClientWebSocket
from .exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

__all__ = ["HISTORY_FILE", "HISTORY_LENGTH", "console", "format_message", "run_console"]

#: Where the lines typed are kept between sessions.
HISTORY_FILE = Path("~/.wsserver_history")
#: Lines kept in it: enough to find yesterday's messages, bounded.
HISTORY_LENGTH = 1000
#: Bytes of a binary message shown, in hex; the rest is counted.
_SHOWN_BYTES = 64


def format_message(message: str | bytes) -> str:
    """How a received message is printed: one line."""
    if isinstance(message, str):
        return f"< {message}"
    shown = message[:_SHOWN_BYTES].hex()
    more = f" ... ({len(message)} bytes)" if len(message) > _SHOWN_BYTES else ""
    return f"< (binary) {shown}{more}"


async def console(
    ws: ClientWebSocket, lines: AsyncIterator[str], write: Callable[[str], None]
) -> None:
    """Send each line, print each message, until the lines or the connection end."""

    async def receive() -> None:
        try:
            async for message in ws:
                write(format_message(message))
        except ConnectionClosed:
            pass
        code = ws.close_code
        write(f"Connection closed: {code} {ws.close_reason}".rstrip() + ".")

    receiver = asyncio.ensure_future(receive())
    try:
        async for line in lines:
            if receiver.done():
                break
            try:
                await ws.send(line)
            except ConnectionClosed:
                break
        await ws.close()
    finally:
        await receiver


async def _stdin_lines() -> AsyncIterator[str]:
    # input() blocks: it runs in a daemon thread, which cannot keep the
    # process alive once the connection is over (an executor's would).
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[str | None] = asyncio.Queue()

    def read() -> None:
        while True:
            try:
                line: str | None = input("")
            except (EOFError, OSError, ValueError):
                line = None
            loop.call_soon_threadsafe(queue.put_nowait, line)
            if line is None:
                return

    threading.Thread(target=read, name="wsserver-console-stdin", daemon=True).start()
    while (line := await queue.get()) is not None:
        yield line


def _history(path: Path) -> Callable[[], None]:
    """Load the readline history; return what saves it again."""
    try:
        import readline  # only the interactive command needs it
    except ImportError:  # pragma: no cover - Windows without pyreadline
        return lambda: None
    with contextlib.suppress(OSError):
        readline.read_history_file(path)
    readline.set_history_length(HISTORY_LENGTH)

    def save() -> None:
        with contextlib.suppress(OSError):
            readline.write_history_file(path)

    return save


def run_console(uri: str, *, subprotocols: list[str] | None = None) -> int:
    """Connect to ``uri`` and run the console on the terminal; the exit status."""
    save = _history(HISTORY_FILE.expanduser()) if sys.stdin.isatty() else (lambda: None)

    async def session() -> int:
        try:
            ws = await connect(uri, subprotocols=subprotocols)
        except (InvalidURI, InvalidHandshake, OSError) as error:
            print(f"Failed to connect to {uri}: {error}.", file=sys.stderr)
            return 1
        chosen = f" Subprotocol: {ws.subprotocol}." if ws.subprotocol else ""
        print(f"Connected to {uri}.{chosen}", flush=True)
        await console(ws, _stdin_lines(), lambda text: print(text, flush=True))
        return 0

    try:
        return asyncio.run(session())
    except KeyboardInterrupt:
        return 130
    finally:
        save()
