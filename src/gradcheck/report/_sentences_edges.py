"""The wording of the engine's notes at the edges of stairs and ties (issue 22 item 3): entries
left unjudged where stairs finer than the steps cannot be told from rounding, or where kinks
inside the stencils explain a mismatch, and kinked mismatches the budget left unscreened for
ties of mixed sign. Each renderer is named after its ``NoteCode`` (``_sentences.TABLE`` finds
it by that name).

>>> finer_stairs("x", (4,), np.array([1, 2]))[:37]
'J does not change on one side of x[1]'
"""

from __future__ import annotations

import numpy as np

from gradcheck.report._format import index_text


def _many(name: str, shape: tuple[int, ...], entries: np.ndarray) -> str:
    first = ", ".join(index_text(name, tuple(int(j) for j in np.unravel_index(i, shape)))
                      for i in entries[:3])
    if entries.size <= 3:
        return first
    return f"{entries.size:,} entries of {name} ({first} and {entries.size - 3:,} more)"


def finer_stairs(name: str, shape: tuple[int, ...], entries: np.ndarray) -> str:
    return (
        f"J does not change on one side of {_many(name, shape, entries)} at the smallest step "
        "at which their slope would show, while the steps J's noise allows cross that: stairs "
        "finer than the steps (derivative 0, as the analytic value says) cannot be told from "
        "J's own rounding there (derivative the slope across), so they are left unjudged."
    )


def kinks_in_stencil(name: str, shape: tuple[int, ...], entries: np.ndarray) -> str:
    return (
        f"{name}: the mismatches at {_many(name, shape, entries)} are explained by kinks inside "
        "the stencils J's noise forces (the one-sided slopes of the steps tried are no smooth "
        "side's, or a point off θ does not repeat the mismatch), and the steps small enough to "
        "see past the kinks are too noisy to judge them: left unjudged, neither blamed nor "
        "passed. A loss computed in a higher precision (its noise allows steps between the "
        "kinks) judges them."
    )


def ties_unscreened(
    name: str, shape: tuple[int, ...], entries: np.ndarray, left: np.ndarray,
    callable_grads: bool,
) -> str:
    text = (
        f"{name}: J is not smooth along {_many(name, shape, entries)} (a kink on the line of "
        "each mismatch, or kinks nearby that J's low precision hides from it) and the budget "
        "left no calls to screen them for ties of mixed sign, "
        "whose derivatives lie outside the one-sided slopes although the code is right: the "
        "mismatches there are not blamed on the spot."
    )
    if not callable_grads or left.size:
        return text + (f" {left.size if callable_grads else entries.size:,} left unjudged: a "
                       "larger budget screens them; grads as a function judges them at a "
                       "nearby point off the ties.")
    return text + " Judged at a nearby point off the ties with grads(θ + δ)."
