"""The quality benchmark's pairs: every photo in ``../shared/images`` with every painting, split
once, by a fixed rule, into a tuning half and a held-out half.

The rule: sort the photos and the paintings by name and number them from 0; a pair whose two
numbers add up to an odd number is *tuning*, an even one *held-out* (a checkerboard). Every photo
and every painting has pairs in both halves, and the four pairs the default was tuned on before
the split (tubingen × starry_night, golden_gate × shipwreck, astronaut × picasso_selfport1907,
chelsea × the_scream) all fall in the tuning half, so the held-out half is pictures no default
was ever chosen on. Tune on ``tuning``; judge the targets on ``held-out``.
"""

from __future__ import annotations

PHOTOS = ("astronaut", "chelsea", "coffee", "golden_gate", "tubingen")  # a portrait, a cat, a close-up, two cities
PAINTINGS = ("escher_sphere", "picasso_selfport1907", "shipwreck", "starry_night", "the_scream")
TUNING, HELD_OUT = "tuning", "held-out"
HALVES = (TUNING, HELD_OUT)


def half(content: str, style: str) -> str | None:
    """The half a pair belongs to (:data:`TUNING` or :data:`HELD_OUT`), None for a pair outside the grid."""
    if content not in PHOTOS or style not in PAINTINGS:
        return None
    return TUNING if (PHOTOS.index(content) + PAINTINGS.index(style)) % 2 else HELD_OUT


def pairs(which: str) -> list[tuple[str, str]]:
    """Every (photo, painting) pair of half ``which``, or of both for ``"all"``, photo by photo."""
    grid = [(c, s) for c in PHOTOS for s in PAINTINGS]
    return grid if which == "all" else [p for p in grid if half(*p) == which]
