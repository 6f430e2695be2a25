"""The fuzz targets (fuzz/fuzz_*.py) run in the normal test run, without libFuzzer.

Each target's ``TestOneInput`` is called in-process on its checked-in seeds,
on the reproducers of crashes found earlier (``fuzz/crashes/<target>-*.bin``),
and on a few hundred deterministic pseudo-random inputs (random bytes, and
mutations of the seeds).  That checks that every harness still runs against
the current code and that its invariants hold on those inputs; the real
search is ``python fuzz/run_all.py``.

The targets are imported after ``wsserver`` (its plugins included) and
``h11``, so that their ``atheris.instrument_imports()`` blocks find the
modules loaded already and instrument nothing in this process.
"""

from __future__ import annotations

import base64
import importlib
import random
import traceback
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from fuzz.targets import TARGETS

ROOT = Path(__file__).resolve().parent.parent
FUZZ_DIR = ROOT / "fuzz"
RANDOM_INPUTS = 300
#: What the targets import, loaded before them (see the module docstring).
_PRELOADED = (
    "h11",
    "wsserver.protocol",
    "wsserver.server",
    "wsserver.plugins.runtime",
    "wsserver.plugins.channels",
    "wsserver.plugins.components",
)


def target_module(target: str) -> ModuleType:
    # The fuzz extra is part of the test install (scripts/test); a missing
    # atheris is a broken environment, reported as a failure, never a skip.
    try:
        importlib.import_module("atheris")
    except ImportError:
        pytest.fail("atheris is not installed: pip install -e '.[test,fuzz]'")
    for module in _PRELOADED:
        importlib.import_module(module)
    return importlib.import_module(f"fuzz.fuzz_{target}")


def _check(module: ModuleType, data: bytes, origin: str) -> None:
    try:
        module.TestOneInput(data)
    except Exception:
        pytest.fail(
            f"{module.__name__}.TestOneInput failed on {origin}; the input, in base64:\n"
            f"{base64.b64encode(data).decode()}\n\n{traceback.format_exc()}",
            pytrace=False,
        )


def _mutate(rng: random.Random, data: bytes, corpus: list[bytes]) -> bytes:
    buffer = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        operation = rng.randrange(6)
        position = rng.randint(0, len(buffer))
        if operation == 0 and buffer:  # flip bits
            index = min(position, len(buffer) - 1)
            buffer[index] ^= 1 << rng.randrange(8)
        elif operation == 1 and buffer:  # set a byte
            buffer[min(position, len(buffer) - 1)] = rng.choice((0, 1, 0x7E, 0x7F, 0x80, 0xFF))
        elif operation == 2:  # insert random bytes
            buffer[position:position] = rng.randbytes(rng.randint(1, 8))
        elif operation == 3:  # delete a run
            del buffer[position : position + rng.randint(1, 8)]
        elif operation == 4:  # duplicate a run
            start = rng.randint(0, len(buffer))
            buffer[position:position] = buffer[start : start + rng.randint(1, 32)]
        else:  # splice in part of another input
            other = rng.choice(corpus)
            start = rng.randint(0, len(other))
            buffer[position:position] = other[start : start + rng.randint(1, 64)]
    return bytes(buffer)


def _seed_files(target: str) -> list[Path]:
    return sorted((FUZZ_DIR / "seeds" / target).glob("*.bin"))


@pytest.mark.parametrize("target", TARGETS)
def test_seed_files_are_up_to_date(target: str) -> None:
    module = target_module(target)
    seeds: dict[str, bytes] = module.seeds()
    assert seeds, f"fuzz_{target}.seeds() is empty"
    folder = FUZZ_DIR / "seeds" / target
    stale = [
        name
        for name, data in seeds.items()
        if not (folder / f"{name}.bin").is_file() or (folder / f"{name}.bin").read_bytes() != data
    ]
    assert not stale, f"seeds out of date in {folder}: {stale}; run python fuzz/make_seeds.py"


@pytest.mark.parametrize("target", TARGETS)
def test_seeds_and_known_crashes(target: str) -> None:
    module = target_module(target)
    paths = _seed_files(target) + sorted((FUZZ_DIR / "crashes").glob(f"{target}-*.bin"))
    assert paths, f"no seeds for {target}"
    for path in paths:
        _check(module, path.read_bytes(), str(path.relative_to(ROOT)))


@pytest.mark.parametrize("target", TARGETS)
def test_random_inputs(target: str) -> None:
    module = target_module(target)
    corpus = [path.read_bytes() for path in _seed_files(target)]
    rng = random.Random(f"wsserver-fuzz-{target}")
    for number in range(RANDOM_INPUTS):
        if number % 3 == 0:
            data = rng.randbytes(rng.choice((0, 1, 2, 5, 16, 64, 300)))
        else:
            data = _mutate(rng, rng.choice(corpus), corpus)
        _check(module, data, f"random input {number}")


# -- the input encodings the seeds are built with --------------------------


def test_split_encoding_round_trips() -> None:
    target_module("frames")  # fails without atheris, like the rest
    cuts = importlib.import_module("fuzz.cuts")
    stream = bytes(range(40))
    sizes = (0, 3, 255, 7)
    for answers in (b"", b"abcd"):
        case: Any = cuts.decode(cuts.encode(0x15, stream, sizes, answers), len(answers))
        assert case.config == 0x15
        assert case.answers == answers
        assert b"".join(case.pieces) == stream
        assert [len(piece) for piece in case.pieces] == [0, 3, 37, 0, 0]
    # At most MAX_CUTS cuts of at most MAX_PIECE bytes.
    with pytest.raises(AssertionError):
        cuts.encode(0, stream, (cuts.MAX_PIECE + 1,))
    with pytest.raises(AssertionError):
        cuts.encode(0, stream, (1,) * (cuts.MAX_CUTS + 1))


@pytest.mark.parametrize("target", ["frames", "client", "handshake", "connection"])
def test_the_stream_targets_cut_their_input_with_the_shared_module(target: str) -> None:
    module = target_module(target)
    cuts = importlib.import_module("fuzz.cuts")
    assert module.decode is cuts.decode and module.encode is cuts.encode
    for name in ("MAX_CUTS", "MAX_PIECE", "Case"):
        assert getattr(module, name, None) in (None, getattr(cuts, name))  # none of its own
    # Its seeds decode to exactly what they were encoded from (make_seeds checks it too).
    make_seeds = importlib.import_module("fuzz.make_seeds")
    make_seeds.check_cuts(module, module.seeds())
    # A cut of 16 bytes in a stream of 2: decoded, the cut is not where it was.
    answers = bytes(getattr(module, "ANSWER_BYTES", 0))
    broken = {"cut-lost": b"\x00" + answers + b"ab" + b"\x10\x01"}
    with pytest.raises(ValueError, match="does not decode as it was encoded"):
        make_seeds.check_cuts(module, broken)


def test_deflate_encoding_round_trips() -> None:
    module = target_module("deflate")
    messages = [[b"ab", b"", b"cde"], [b"f"], [b"gh", b"ijk"]]
    case = module.decode(module.encode(0x7B, messages))
    assert case.messages == messages
    assert (case.window_bits, case.no_context_takeover, case.max_length) == (11, True, 1000)


def test_extensions_encoding_round_trips() -> None:
    module = target_module("extensions")
    settings, values = module.decode(module.encode(b"\xff\x0a\x08\x40", ["a; b=1", "c"]))
    assert values == ["a; b=1", "c"]
    assert (settings.server_max_window_bits, settings.client_max_window_bits) == (15, 15)
    assert settings.server_no_context_takeover and settings.client_no_context_takeover
    assert (settings.compression_level, settings.mem_level, settings.min_size) == (9, 9, 64)


# -- the runner ---------------------------------------------------------------


def test_every_target_is_run_and_seeded() -> None:
    target_module("frames")  # fails without atheris, like the rest
    run_all = importlib.import_module("fuzz.run_all")
    make_seeds = importlib.import_module("fuzz.make_seeds")
    scripts = {path.stem.removeprefix("fuzz_") for path in FUZZ_DIR.glob("fuzz_*.py")}
    assert set(TARGETS) == scripts
    assert len(TARGETS) == len(scripts)
    assert run_all.TARGETS is TARGETS
    assert make_seeds.TARGETS is TARGETS


def test_run_all_reads_libfuzzer_output() -> None:
    run_all = importlib.import_module("fuzz.run_all")
    log = (
        "#2\tINITED cov: 12 ft: 30 corp: 5/100b exec/s: 0 rss: 50Mb\n"
        "#999\tDONE   cov: 345 ft: 678 corp: 90/2Kb lim: 4096 exec/s: 33 rss: 55Mb\n"
        "stat::number_of_executed_units: 1000\n"
    )
    assert run_all._last_int(r"\bcov: (\d+)", log) == 345
    assert run_all._last_int(r"\bcorp: (\d+)/", log) == 90
    assert run_all._last_int(r"stat::number_of_executed_units:\s*(\d+)", log) == 1000
    crash = "noise\n === Uncaught Python exception: ===\nAssertionError: boom\n"
    assert run_all._excerpt(crash).splitlines()[1] == "AssertionError: boom"
