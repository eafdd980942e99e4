"""Mistakes confined to part of a tensor (``localized``), and the worst entries of a tensor that
no relation explains (``unexplained``, whose hint comes from ``_hints``)."""

from __future__ import annotations

import numpy as np

from gradcheck.diagnose._evidence import CONCENTRATED, ENTRIES, Evidence, fit
from gradcheck.diagnose._hints import Context, unexplained_hint
from gradcheck.report._format import fmt, index_text
from gradcheck.report._model import AGREES, MISMATCH, Component, Finding, FindingKind


def _runs(values: np.ndarray) -> str:
    return ", ".join(str(int(v)) for v in values[:8]) + (" …" if len(values) > 8 else "")


def _lines(c: Component, bad: np.ndarray, checked: np.ndarray) -> Finding | None:
    """Whole rows or columns of a matrix wrong (most of each), the rest right."""
    g = np.asarray(c.analytic_array, dtype=np.float64)
    for axis, word in ((1, "row"), (0, "column")):
        lines = np.flatnonzero(bad.any(axis=axis))
        dense = np.take(bad, lines, axis=1 - axis).sum(axis=axis) >= 0.5 * np.take(
            checked, lines, axis=1 - axis).sum(axis=axis)
        if len(lines) > CONCENTRATED * bad.shape[1 - axis] or not dense.all():
            continue
        zero = not np.any(np.take(g, lines, axis=1 - axis))
        plural = len(lines) > 1
        what = f"{word}{'s' if plural else ''} {_runs(lines)} of d{c.name}"
        where = tuple((word, int(i)) for i in lines)
        k = None if zero else _penalised_lines(c, lines, axis)
        if k is not None:
            return Finding(
                c.name, FindingKind.REGULARIZATION,
                f"only {what} {'are' if plural else 'is'} wrong, by {fmt(k)}·{c.name} on "
                f"{'those lines' if plural else 'that line'}: an L2 term the loss does not "
                "have there (a bias column or row regularised?).",
                f"Leave {'those lines' if plural else 'that line'} out of the penalty's gradient, "
                "as the loss does (Ng's ex4 penalises Theta(:, 2:end) only, not the bias "
                "column).", factor=k, where=where,
            )
        state = "left at 0" if zero else "wrong; the rest of the tensor is right"
        hint = ("A loop that stops one short, or an index that skips it?" if zero else
                "Look at the loop or indexing that fills those lines of the gradient.")
        return Finding(
            c.name, FindingKind.LOCALIZED, f"only {what} {'are' if plural else 'is'} {state}.", hint,
            where=where,
        )
    return None


def _penalised_lines(c: Component, lines: np.ndarray, axis: int) -> float | None:
    """k > 0 when analytic − numeric on the wrong lines is k·θ there (an L2 term too many)."""
    if c.value_array is None or c.bound_array is None:
        return None
    take = [np.take(np.asarray(a, dtype=np.float64), lines, axis=1 - axis).ravel()
            for a in (c.analytic_array, c.numeric_array, c.value_array, c.bound_array)]
    g, n, theta, bound = take
    seen = np.isfinite(n)
    if seen.sum() < 2:
        return None
    r = g[seen] - n[seen]
    k = fit(r, theta[seen])
    ok = k > 0 and bool(np.all(np.abs(r - k * theta[seen]) <= np.maximum(bound[seen], 0)))
    return k if ok else None


def localized(e: Evidence) -> Finding | None:
    c = e.component
    bad = np.asarray(c.flags) == MISMATCH
    checked = np.isin(np.asarray(c.flags), (AGREES, MISMATCH))
    count = int(bad.sum())
    if count == 0 or count > CONCENTRATED * checked.sum():
        return None
    if bad.ndim == 2 and count > 1 and min(bad.shape) > 1:
        found = _lines(c, bad, checked)
        if found is not None:
            return found
    if count > ENTRIES:
        return None
    where = tuple(tuple(int(i) for i in w) for w in np.argwhere(bad))
    shown = ", ".join(index_text(c.name, w) for w in where)
    zero = not np.any(np.asarray(c.analytic_array)[bad])
    return Finding(
        c.name, FindingKind.LOCALIZED,
        f"only {count} entr{'y' if count == 1 else 'ies'} of d{c.name} {'is' if count == 1 else 'are'}"
        f" wrong: {shown}{' (left at 0)' if zero else ''}.",
        "Look at the special case that fills that entry (a boundary, a padding index, an "
        "off-by-one).",
        where=where,
    )


def unexplained(e: Evidence) -> Finding:
    c = e.component
    worst = c.worst_entries(3)
    shown = "; ".join(
        f"{index_text(c.name, i)}: numeric {fmt(n)}, analytic {fmt(g)}" for i, n, g in worst
    )
    return Finding(
        c.name, FindingKind.UNEXPLAINED,
        f"d{c.name} is wrong in {c.mismatches} of {c.checked} entries with no simple "
        f"relation to the right gradient (worst: {shown}).",
        unexplained_hint(Context(c.name, c.shape)),  # ``diagnose`` rewords it with its context
        where=tuple(i for i, _, _ in worst),
    )

