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
    passed: bool,
) -> tuple[str, ...]:
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
    elif passed and relative_error > 1e-4:
        notes.append(
            f"The textbook ratio reads 'worry' ({fmt(relative_error)}), but every difference is "
            "within the estimated numerical error: tiny, cancelling or kinked gradients make "
            "that ratio unreliable here, not a bug."
        )
    elif not passed and relative_error < 1e-6:
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
