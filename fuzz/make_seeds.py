"""Write each fuzz target's seeds to ``fuzz/seeds/<target>/<name>.bin``.

    python fuzz/make_seeds.py

The seeds are checked in; each target builds them in its ``seeds()``
function, and tests/test_fuzz_targets.py checks that the files match.  Run
this after changing a target's input format or its seeds.  Files in the seed
folders that no ``seeds()`` names (reproducers of fixed crashes, say) are
left alone.

The stream targets' seeds (``frames``, ``client``, ``handshake``,
``connection``: those that cut their input with ``fuzz.cuts``) are checked
to decode to exactly what they were encoded from: decoded and encoded again,
each gives the same bytes (``check_cuts``).
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

FUZZ_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(FUZZ_DIR.parent))  # for the fuzz package, when run as a script
from fuzz import cuts
from fuzz.targets import TARGETS


def check_cuts(module: ModuleType, seeds: dict[str, bytes]) -> None:
    """For a target that cuts its input with ``fuzz.cuts``: every seed
    decodes to a case that encodes back to the same bytes.

    Raises:
        ValueError: a seed that does not (its cuts or answers were lost).
    """
    if getattr(module, "decode", None) is not cuts.decode:
        return
    answer_bytes = int(getattr(module, "ANSWER_BYTES", 0))
    for name, data in seeds.items():
        case = cuts.decode(data, answer_bytes)
        sizes = tuple(len(piece) for piece in case.pieces[:-1])
        again = cuts.encode(case.config, b"".join(case.pieces), sizes, case.answers)
        if again != data:
            raise ValueError(f"{module.__name__}: seed {name!r} does not decode as it was encoded")


def main() -> int:
    sys.path.insert(0, str(FUZZ_DIR))
    for target in TARGETS:
        module = importlib.import_module(f"fuzz_{target}")
        folder = FUZZ_DIR / "seeds" / target
        folder.mkdir(parents=True, exist_ok=True)
        seeds: dict[str, bytes] = module.seeds()
        check_cuts(module, seeds)
        for name, data in seeds.items():
            (folder / f"{name}.bin").write_bytes(data)
        print(f"{target}: {len(seeds)} seeds in {folder.relative_to(FUZZ_DIR.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
