"""Drive the protocol core COUNT times for one case, for callgrind to count instructions.

    python -m bench.core_instructions echo_16 20000
    valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
        python -m bench.core_instructions echo_16 20000      # "Collected : N"

Instructions per operation are the difference of two runs, ``(I(2n) - I(n)) /
n``: the interpreter's start, the imports and the setup cancel out.
``python -m bench.core_instructions --callgrind CASE...`` does exactly that
and prints one line per case.  Instruction counts, unlike times, do not move
with other load on a shared machine.

Cases, all through ``ServerConnection`` (no socket, no event loop):

* ``echo_16``, ``echo_1k``: one masked client text frame of 16 or 1,024
  bytes in one ``receive_data``, ``next_event`` until ``None``, the text
  sent back with ``send_text`` and taken with ``data_to_send``: the server's
  work per echoed message.
* ``handshake``: a new connection, the client's upgrade request in one
  ``receive_data``, ``next_event``, ``accept``, ``data_to_send``.

It reports which build of the core ran (compiled or pure Python) on stderr.
"""

from __future__ import annotations

import argparse
import base64
import os
import re
import subprocess
import sys
import tempfile

from wsserver.protocol import ServerConnection, TextMessage, build_info
from wsserver.testing import wire

__all__ = ["CASES", "main", "run"]

CASES = ("echo_16", "echo_1k", "handshake")

_MASK = b"\x37\xfa\x21\x3d"
_HANDSHAKE = wire.client_handshake(
    "/", host="x", key=base64.b64encode(b"0123456789abcdef").decode()
)


def _opened() -> ServerConnection:
    conn = ServerConnection()
    conn.receive_data(_HANDSHAKE)
    conn.next_event()
    conn.accept()
    conn.data_to_send()
    return conn


def _echo(size: int, count: int) -> None:
    frame = wire.client_frame(0x1, b"x" * size, mask=_MASK)
    conn = _opened()
    for _ in range(count):
        conn.receive_data(frame)
        while (event := conn.next_event()) is not None:
            assert isinstance(event, TextMessage)
            conn.send_text(event.data)
        conn.data_to_send()


def _handshakes(count: int) -> None:
    for _ in range(count):
        conn = ServerConnection()
        conn.receive_data(_HANDSHAKE)
        conn.next_event()
        conn.accept()
        conn.data_to_send()


def run(case: str, count: int) -> None:
    """``count`` operations of ``case``."""
    if case == "echo_16":
        _echo(16, count)
    elif case == "echo_1k":
        _echo(1024, count)
    elif case == "handshake":
        _handshakes(count)
    else:
        raise ValueError(f"unknown case {case!r}: one of {', '.join(CASES)}")


def _instructions(case: str, count: int) -> int:
    """Instructions callgrind counts for a whole run of ``count`` operations."""
    with tempfile.TemporaryDirectory() as folder:
        out = os.path.join(folder, "callgrind.out")
        done = subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={out}",
                sys.executable,
                "-m",
                "bench.core_instructions",
                case,
                str(count),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
    found = re.search(r"Collected : (\d+)", done.stderr)
    if found is None:
        raise RuntimeError(f"no count from callgrind:\n{done.stderr}")
    return int(found.group(1))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "words", nargs="+", metavar="CASE [COUNT]", help=f"among {', '.join(CASES)}"
    )
    parser.add_argument(
        "--callgrind",
        action="store_true",
        help="run each case under callgrind at n and 2n, print instructions per operation",
    )
    parser.add_argument("-n", type=int, default=5000, help="n for --callgrind (default 5000)")
    args = parser.parse_args(argv)
    if not args.callgrind:
        if len(args.words) != 2 or not args.words[1].isdigit():
            parser.error("give one case and a count, or --callgrind and cases")
        print(f"protocol core: {build_info.describe()}", file=sys.stderr)
        run(args.words[0], int(args.words[1]))
        return
    args.cases = args.words
    print(f"protocol core: {build_info.describe()}")
    for case in args.cases:
        once, twice = _instructions(case, args.n), _instructions(case, 2 * args.n)
        print(f"{case}: {(twice - once) / args.n:,.0f} instructions per operation")


if __name__ == "__main__":
    main()
