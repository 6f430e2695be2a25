"""Micro-benchmark of the protocol core's receive path, in one process.

    python -m bench.micro_reader                      # this checkout, every case
    python -m bench.micro_reader --against ../main    # A/B against another checkout
    python -m bench.micro_reader --rounds 51 small_text ping

Frames a client would send (masked) go through ``ServerConnection.receive_data``
and ``next_event`` until it returns ``None``, as the server's drive loop does;
no socket, no event loop.  Each case prints the best time per frame over
``--rounds`` runs: the minimum is the figure least disturbed by other load.

``--against`` loads the other checkout's ``wsserver/protocol`` (which imports
nothing else from wsserver) as a second package, and alternates the two on
every run, so that both see the same machine.  ``WSSERVER_NO_SPEEDUPS=1``
measures the pure-Python masking path.  It measures the core, not a server:
bench/run.py does that.
"""

from __future__ import annotations

import argparse
import base64
import importlib
import random
import shutil
import sys
import tempfile
import timeit
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from wsserver.testing import wire

__all__ = ["CASES", "main"]

_MASK = b"\x37\xfa\x21\x3d"
_HANDSHAKE = wire.client_handshake(
    "/", host="x", key=base64.b64encode(b"0123456789abcdef").decode()
)

#: The cases, in print order.
CASES = (
    "small_text",
    "small_text_batched_64",
    "ping",
    "fragmented_4",
    "binary_64k_whole",
    "binary_64k_in_16k_reads",
)

Run = Callable[[], None]


def _client_frame(opcode: int, payload: bytes, *, fin: bool = True) -> bytes:
    """A client frame masked with a fixed key: the same bytes on every run."""
    return wire.client_frame(opcode, payload, fin=fin, mask=_MASK)


def _feeding(protocol: ModuleType, chunks: list[bytes]) -> Run:
    """A run: a fresh open connection, each chunk in its own receive_data."""

    def run() -> None:
        conn = protocol.ServerConnection(deflate=None)
        conn.receive_data(_HANDSHAKE)
        conn.next_event()
        conn.accept()
        conn.data_to_send()
        receive = conn.receive_data
        next_event = conn.next_event
        data_to_send = conn.data_to_send
        for chunk in chunks:
            receive(chunk)
            while next_event() is not None:
                pass
            data_to_send()

    return run


def _cases(protocol: ModuleType) -> dict[str, tuple[int, Run]]:
    """Case name -> (frames per run, run)."""
    text = _client_frame(0x1, b"hello, world: a small message!!")  # 31 bytes
    ping = _client_frame(0x9, b"12345678")
    big = _client_frame(0x2, random.Random(0).randbytes(65536))
    fragments = b"".join(
        _client_frame(0x1 if i == 0 else 0x0, b"fragment%d" % i, fin=i == 3) for i in range(4)
    )
    pieces = [big[i : i + 16384] for i in range(0, len(big), 16384)]
    return {
        "small_text": (20_000, _feeding(protocol, [text] * 20_000)),
        "small_text_batched_64": (20_032, _feeding(protocol, [text * 64] * 313)),
        "ping": (20_000, _feeding(protocol, [ping] * 20_000)),
        "fragmented_4": (20_000, _feeding(protocol, [fragments] * 5_000)),
        "binary_64k_whole": (500, _feeding(protocol, [big] * 500)),
        "binary_64k_in_16k_reads": (500, _feeding(protocol, pieces * 500)),
    }


def _load_other(checkout: Path, into: Path) -> ModuleType:
    """The other checkout's wsserver/protocol, as the package ``other_protocol``."""
    shutil.copytree(
        checkout / "wsserver" / "protocol",
        into / "other_protocol",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    sys.path.insert(0, str(into))
    return importlib.import_module("other_protocol")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("cases", nargs="*", help=f"cases among {', '.join(CASES)} (default: all)")
    parser.add_argument("--rounds", type=int, default=21, help="runs per case (default: 21)")
    parser.add_argument("--against", type=Path, help="another checkout to compare with")
    args = parser.parse_args(argv)
    unknown = set(args.cases) - set(CASES)
    if unknown:
        parser.error(f"unknown cases: {', '.join(sorted(unknown))}")
    import wsserver.protocol as this

    with tempfile.TemporaryDirectory() as scratch:
        protocols = {"this": this}
        if args.against is not None:
            protocols["other"] = _load_other(args.against.resolve(), Path(scratch))
        for name, protocol in protocols.items():
            print(f"{name}: {Path(protocol.__file__ or '').parent}, ", end="")
            print(f"accelerated masking: {protocol.masking.ACCELERATED}")
        cases = {name: _cases(protocol) for name, protocol in protocols.items()}
        best = {case: dict.fromkeys(protocols, float("inf")) for case in CASES}
        for round_ in range(args.rounds):
            order = list(protocols) if round_ % 2 else list(reversed(protocols))
            for case in args.cases or CASES:
                for name in order:
                    frames, run = cases[name][case]
                    seconds = timeit.timeit(run, number=1)
                    best[case][name] = min(best[case][name], seconds * 1e9 / frames)
        for case in args.cases or CASES:
            line = f"{case:24}" + "".join(f"  {n} {t:9.1f} ns" for n, t in best[case].items())
            if "other" in protocols:
                this_time, other_time = best[case]["this"], best[case]["other"]
                line += f"  {100 * (this_time - other_time) / other_time:+6.1f}%"
            print(line)


if __name__ == "__main__":
    main()
