"""Write each fuzz target's seeds to ``fuzz/seeds/<target>/<name>.bin``.

    python fuzz/make_seeds.py

The seeds are checked in; each target builds them in its ``seeds()``
function, and tests/test_fuzz_targets.py checks that the files match.  Run
this after changing a target's input format or its seeds.  Files in the seed
folders that no ``seeds()`` names (reproducers of fixed crashes, say) are
left alone.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

FUZZ_DIR = Path(__file__).resolve().parent
TARGETS = (
    "frames",
    "handshake",
    "extensions",
    "deflate",
    "connection",
    "client",
    "runtime",
    "chunks",
    "snapshots",
    "components",
    "navigation",
    "http_fields",
    "static",
)


def main() -> int:
    sys.path.insert(0, str(FUZZ_DIR))
    for target in TARGETS:
        module = importlib.import_module(f"fuzz_{target}")
        folder = FUZZ_DIR / "seeds" / target
        folder.mkdir(parents=True, exist_ok=True)
        seeds: dict[str, bytes] = module.seeds()
        for name, data in seeds.items():
            (folder / f"{name}.bin").write_bytes(data)
        print(f"{target}: {len(seeds)} seeds in {folder.relative_to(FUZZ_DIR.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
