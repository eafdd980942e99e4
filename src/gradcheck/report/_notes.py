"""The notes of ``Report.notes`` that the assembly adds (what the numbers alone would not tell
a reader), as ``Note`` records; ``_sentences`` holds their wording."""

from __future__ import annotations

from typing import Any

import numpy as np

from gradcheck.report._model import KINK, Component
from gradcheck.report._sentences import Note, NoteCode


def collect(
    components: dict[str, Component],
    results: list[Any],
    scheme: str,
    j0: float,
    relative_error: float | None,
    passed: bool | None,
) -> tuple[Note, ...]:
    """The notes of a report whose verdict is ``passed`` (None: incomplete, which says neither
    that the gradients agree nor that entries are wrong)."""
    notes: list[Note] = []
    for name, c in components.items():
        notes.extend(_kinks(name, c))
    low = [(n, r) for n, r in zip(components, results, strict=True) if r.low_precision]
    if low:
        notes.append(Note(NoteCode.LOW_PRECISION, None, {
            "names": [n for n, _ in low], "noise": max(r.noise for _, r in low), "j0": j0}))
    by_dtype: dict[str, list[str]] = {}
    for name, c in components.items():
        if c.dtype != "float64":
            by_dtype.setdefault(c.dtype, []).append(name)
    notes += [Note(NoteCode.DTYPE_ALLOWANCE, None, {"names": names, "dtype": dtype})
              for dtype, names in by_dtype.items()]
    if relative_error is None:
        pass
    elif passed is True and relative_error > 1e-4:
        notes.append(Note(NoteCode.TEXTBOOK_WORRY, None, {"relative_error": relative_error}))
    elif passed is False and relative_error < 1e-6:
        notes.append(Note(NoteCode.TEXTBOOK_GREAT, None, {"relative_error": relative_error}))
    return tuple(notes)


def _kinks(name: str, c: Component) -> list[Note]:
    kinks = c.flags == KINK
    if not np.count_nonzero(kinks):  # the usual case: no argwhere (a Python function)
        return []
    where = np.argwhere(kinks)
    first = [tuple(int(i) for i in w) for w in where[:3]]
    return [Note(NoteCode.KINKS_SKIPPED, name, {"where": first, "count": len(where)})]


def flat_layout(size: int, shape: tuple[int, ...], order: str, where: str) -> Note:
    """How a flat θ was read (``layout=``), so that W1[i, j] can be found in θ again.

    >>> str(flat_layout(6, (6,), "F", "W = θ[0:6].reshape((2, 3), order='F')"))[:40]
    'θ (shape (6,), 6 entries) was checked as'
    """
    return Note(NoteCode.FLAT_LAYOUT, None,
                {"size": size, "shape": shape, "order": order, "where": where})


def size_one_axes(found: list[tuple[str, tuple[int, ...], tuple[int, ...]]]) -> Note:
    """Gradients judged on their values although their shape had extra (or missing) size-1 axes.

    >>> str(size_one_axes([("b1", (1, 64), (64,))]))[:60]
    "grads['b1'] has shape (1, 64) but params['b1'] has shape (64"
    """
    return Note(NoteCode.SIZE_ONE_AXES, None, {"found": list(found)})
