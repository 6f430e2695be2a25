"""The fuzz targets, by name: ``fuzz/fuzz_<name>.py`` each.

One list for the seed builder (``make_seeds.py``), the runner
(``run_all.py``) and ``tests/test_fuzz_targets.py``, which checks that it
names every ``fuzz_*.py`` here and nothing else.  In the order the runner
goes through them: the protocol core first (server role, then client), then
the server's readers, then the plugins' parsers.
"""

from __future__ import annotations

__all__ = ["TARGETS"]

TARGETS = (
    "frames",
    "handshake",
    "extensions",
    "deflate",
    "connection",
    "client",
    "http_fields",
    "static",
    "runtime",
    "chunks",
    "snapshots",
    "components",
    "navigation",
)
