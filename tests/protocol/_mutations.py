"""A hypothesis helper shared by the HTTP-phase properties: bytes, lightly broken."""

from __future__ import annotations

from hypothesis import strategies as st


def mutate(
    draw: st.DrawFn, data: bytes, alphabet: bytes, *, edits: tuple[int, int], run: int
) -> bytes:
    """``data`` with ``edits`` (a min, max range) bytes replaced, runs inserted or deleted.

    Each edit is at a drawn position: a byte replaced by one of
    ``alphabet``, or up to ``run`` bytes of it inserted, or up to ``run``
    bytes deleted.
    """
    mutated = bytearray(data)
    letters = st.sampled_from(list(alphabet))
    for _ in range(draw(st.integers(*edits))):
        at = draw(st.integers(0, len(mutated)))
        action = draw(st.sampled_from(["replace", "insert", "delete"]))
        if action == "insert":
            mutated[at:at] = bytes(draw(st.lists(letters, min_size=1, max_size=run)))
        elif action == "replace" and at < len(mutated):
            mutated[at] = draw(letters)
        else:
            del mutated[at : at + draw(st.integers(1, run))]
    return bytes(mutated)
