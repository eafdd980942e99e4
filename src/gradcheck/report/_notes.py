"""Plain sentences for ``Report.notes``: what the numbers alone would not tell a reader."""

from __future__ import annotations

from typing import Any

import numpy as np

from gradcheck.report._format import fmt, index_text
from gradcheck.report._model import KINK, Component


def collect(
    components: dict[str, Component],
    results: list[Any],
    scheme: str,
    j0: float,
    relative_error: float | None,
    passed: bool | None,
) -> tuple[str, ...]:
    """The notes of a report whose verdict is ``passed`` (None: incomplete, which says neither
    that the gradients agree nor that entries are wrong)."""
    notes: list[str] = []
    for name, c in components.items():
        notes.extend(_kinks(name, c))
    low = [(n, r) for n, r in zip(components, results, strict=True) if r.low_precision]
    if low:
        worst = max(r.noise for _, r in low)
        digits = f"about {fmt(worst / abs(j0))} of its value" if j0 else f"±{fmt(worst)}"
        notes.append(
            f"J is only known to {digits} (measured noise {fmt(worst)} on J = {fmt(j0)}: low "
            "precision inside the loss, float32 or cancellation); the check of "
            f"{', '.join(n for n, _ in low)} is limited by the loss's precision, and the step "
            "and tolerance were widened to the measured noise."
        )
    by_dtype: dict[str, list[str]] = {}
    for name, c in components.items():
        if c.dtype != "float64":
            by_dtype.setdefault(c.dtype, []).append(name)
    for dtype, names in by_dtype.items():
        notes.append(
            f"{', '.join(names)} {'is' if len(names) == 1 else 'are'} {dtype}: the analytic "
            f"gradient was judged with the {dtype} precision allowance (the loss gets float64 "
            "copies of the values; an adapter's note says which dtype the function ran in)."
        )
    if relative_error is None:
        pass
    elif passed is True and relative_error > 1e-4:
        notes.append(
            f"The textbook ratio reads 'worry' ({fmt(relative_error)}), but every difference is "
            "within the estimated numerical error: tiny, cancelling or kinked gradients make "
            "that ratio unreliable here, not a bug."
        )
    elif passed is False and relative_error < 1e-6:
        notes.append(
            f"The textbook ratio looks 'great' ({fmt(relative_error)}) only because larger "
            "gradients elsewhere dominate it; the entries named above are wrong all the same."
        )
    return tuple(notes)


def _kinks(name: str, c: Component) -> list[str]:
    where = np.argwhere(c.flags == KINK)
    if not len(where):
        return []
    first = ", ".join(index_text(name, tuple(int(i) for i in w)) for w in where[:3])
    more = f" and {len(where) - 3} more" if len(where) > 3 else ""
    return [
        f"{len(where)} coordinate{'s' if len(where) > 1 else ''} of {name} sit on a kink "
        f"(ReLU at 0, |w|, hinge): kink at {first}{more}. The analytic value lies between the "
        "left and right slopes (a valid subgradient), so they were skipped, not blamed."
    ]


def flat_layout(size: int, shape: tuple[int, ...], order: str, where: str) -> str:
    """How a flat θ was read (``layout=``), so that W1[i, j] can be found in θ again.

    >>> flat_layout(6, (6,), "F", "W = θ[0:6].reshape((2, 3), order='F')")[:40]
    'θ (shape (6,), 6 entries) was checked as'
    """
    reading = ("column-major, as Octave/MATLAB's Theta(:) unrolls" if order == "F"
               else "row-major, as NumPy's ravel unrolls")
    octave = (" Indices are NumPy's, from 0: Theta1[i, j] is Theta1(i+1, j+1) in Octave "
              "(column 0 here is Octave's column 1: in ex4, the bias column)." if order == "F" else "")
    return (f"θ (shape {shape}, {size:,} entries) was checked as named tensors, {reading}: "
            f"{where}.{octave}")


def size_one_axes(found: list[tuple[str, tuple[int, ...], tuple[int, ...]]]) -> str:
    """Gradients judged on their values although their shape had extra (or missing) size-1 axes.

    >>> size_one_axes([("b1", (1, 64), (64,))])[:60]
    "grads['b1'] has shape (1, 64) but params['b1'] has shape (64"
    """
    parts = "; ".join(f"grads['{n}'] has shape {g} but params['{n}'] has shape {p}"
                      for n, g, p in found)
    name, g, p = found[0]
    name = name if "." not in name else f"grads[{name!r}]"
    grown = np.broadcast_shapes(g, p)
    return (
        f"{parts}: the shapes differ only by size-1 axes (a keepdims=True sum, or a row vector "
        "for a vector), so the values were judged, as if reshaped. Reshape before the update: "
        f"{name} − lr·d{name} broadcasts to shape {grown}, silently turning the parameter of "
        f"shape {p} into that (a column against a row even makes a matrix): return "
        f"d{name}.reshape({p}) (or sum without keepdims)."
    )
