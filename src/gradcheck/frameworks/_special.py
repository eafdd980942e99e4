"""Complex, non-finite and empty tensors, shown to the NumPy core as real, finite and
non-empty, and what that means for the report (the frameworks' complex conventions, entries
left unchecked, the ``conjugated`` finding). Shared by every adapter."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np

from gradcheck.report._model import (
    AGREES,
    MISMATCH,
    UNCHECKED,
    Component,
    entry_figures,
    relative_error,
    verdict,
)
from gradcheck.report._report import Report
from gradcheck.report._sentences import Note, NoteCode

# --- complex, non-finite and empty tensors (shown to the core as real, finite, non-empty) ----

# Each framework's documented gradient of a real J at a complex z = x + iy.
# (the convention, the fix for a conjugated gradient, the sign of i·∂J/∂y in the gradient).
TORCH = (
    "PyTorch's convention (conjugate Wirtinger): grad = ∂J/∂x + i·∂J/∂y = 2·∂J/∂z̄",
    "grad.conj()",
    1.0,
)
JAX = (
    "JAX's convention: grad = ∂J/∂x − i·∂J/∂y = 2·∂J/∂z, the conjugate of PyTorch's",
    "jnp.conj(...) of the cotangent it returns",
    -1.0,
)


def view_notes(name: str, is_complex: bool, convention: str, nonfinite: int) -> list[Note]:
    """What presenting a tensor to the core as real and finite did to it, for the notes."""
    notes = []
    if is_complex:
        notes.append(Note(NoteCode.COMPLEX_INPUT, name, {"convention": convention}))
    if nonfinite:
        notes.append(Note(NoteCode.NONFINITE, name, {"count": nonfinite}))
    return notes


def nothing_checked(notes: Sequence[str], scheme: str) -> Report:
    """The report of a check with nothing to judge (every checked tensor empty).

    Incomplete (``passed`` None), as the engine's report of a check that judged nothing: a
    report never says PASSED for what it did not judge (``torch.autograd.gradcheck`` returns
    True here); its summary says NOTHING CHECKED.

    >>> nothing_checked([], "central").verdict
    'incomplete'
    """
    return Report(
        passed=verdict(judged=False),
        relative_error=None,
        evaluations=0,
        eps={},
        scheme=scheme,
        components={},
        suspects=(),
        notes=(Note(NoteCode.NOTHING_CHECKED), *notes),
    )


def recount(
    c: Component, flags: np.ndarray, numeric: np.ndarray, unjudged: int | None = None
) -> Component:
    """``c`` with new per-entry flags and numeric values, its summary figures recomputed and
    its verdict from the one rule: the entries it left unjudged (``unjudged``, by default
    ``c.unjudged``) keep it incomplete."""
    checked = (flags == AGREES) | (flags == MISMATCH)
    g = c.analytic_array
    mismatches = int(np.sum(flags == MISMATCH))
    unjudged = c.unjudged if unjudged is None else unjudged
    return dataclasses.replace(
        c,
        relative_error=relative_error(numeric[checked], g[checked]),
        **entry_figures(numeric, g, c.bound_array, flags, c.shape),
        passed=verdict(mismatches=mismatches, unjudged=unjudged),
        mismatches=mismatches,
        unjudged=unjudged,
        numeric_array=numeric,
        flags=flags,
    )


def leave_unchecked(report: Report, masks: Mapping[str, np.ndarray]) -> Report:
    """Entries in ``masks`` (non-finite inputs, held fixed) marked unchecked in their components;
    the verdicts again from the one rule (an incomplete component is no suspect)."""
    if not masks:
        return report
    components = dict(report.components)
    for name, mask in masks.items():
        if name not in components:
            continue
        c = components[name]
        flags, numeric = c.flags.copy(), c.numeric_array.copy()
        # The entries left unjudged were unchecked ones; those masked now are not unjudged.
        unjudged = min(c.unjudged, int(np.sum((c.flags == UNCHECKED) & ~mask)))
        flags[mask], numeric[mask] = UNCHECKED, np.nan
        components[name] = recount(c, flags, numeric, unjudged)
    suspects = tuple(n for n, c in components.items() if c.passed is False)
    passed = verdict((c.passed for c in components.values()), interrupted=report.interrupted,
                     judged=_judged(report))
    ok = [(c.flags == AGREES) | (c.flags == MISMATCH) for c in components.values()]
    n = [c.numeric_array[m] for c, m in zip(components.values(), ok, strict=True)]
    g = [c.analytic_array[m] for c, m in zip(components.values(), ok, strict=True)]
    return dataclasses.replace(
        report,
        components=components,
        suspects=suspects,
        passed=passed,
        relative_error=relative_error(np.concatenate(n), np.concatenate(g)),
    )


def _judged(report: Report) -> bool:
    """Whether the engine judged anything: its verdict is ``verdict(components, interrupted=...,
    judged=...)``, so only an incomplete report none of whose parts is incomplete, and that was
    not interrupted, judged nothing."""
    parts = [c.passed for c in report.components.values()]
    return verdict(parts, interrupted=report.interrupted) == report.passed


def complex_findings(
    report: Report, names: Sequence[str], convention: tuple[str, str, float]
) -> Report:
    """For complex tensors (a last axis of 2: real, imaginary): a note with the worst entry's
    numeric and analytic values as complex numbers, and a ``conjugated`` finding when the
    analytic gradient is the conjugate of the numeric one (the commonest complex bug)."""
    if not names:  # no complex tensor: nothing to add, the report as it is
        return report
    from gradcheck.report._model import Finding

    notes, findings = list(report.notes), list(report.findings)
    for name in names:
        c = report.components.get(name)
        if c is None or c.flags is None:
            continue
        sign = convention[2]  # shown as the framework writes its complex gradient
        n = c.numeric_array[..., 0] + sign * 1j * c.numeric_array[..., 1]
        g = c.analytic_array[..., 0] + sign * 1j * c.analytic_array[..., 1]
        flags = c.flags.max(axis=-1) if c.flags.size else c.flags[..., 0]
        where = tuple(int(i) for i in c.worst_index[:-1])
        if c.numeric_array.size:
            notes.append(Note(NoteCode.COMPLEX_WORST, name, {
                "index": where, "numeric": complex(n[where]), "analytic": complex(g[where])}))
        if c.passed or not _conjugated(c):
            continue
        findings = [f for f in findings if f.param != name]
        findings.append(
            Finding(
                param=name,
                kind="conjugated",
                detail=(
                    "the analytic gradient is the complex conjugate of the numeric one: the "
                    f"imaginary parts have the wrong sign ({int((flags == MISMATCH).sum())} "
                    "entries)."
                ),
                hint=f"The framework expects {convention[0]}; return {convention[1]}.",
                factor=-1.0,
            )
        )
    return dataclasses.replace(report, notes=tuple(notes), findings=tuple(findings))


def wants_conjugation_probe(report: Report, names: Sequence[str]) -> bool:
    """A complex input failed without a ``conjugated`` finding: worth a second look."""
    named = {f.param for f in report.findings if f.kind == "conjugated"}
    return any(n in report.suspects and n not in named for n in names)


def conjugation_probe(
    report: Report, again: Report, names: Sequence[str], convention: tuple[str, str, float]
) -> Report:
    """``report`` plus a ``conjugated`` finding for each complex input that ``again`` (the same
    check with a real cotangent on complex outputs) finds conjugated: a backward that multiplies
    grad_output by f'(z) where the convention wants conj(f'(z)) returns, for a real grad_output,
    exactly the conjugate; with a complex one it just looks wrong."""
    hits = [f for f in again.findings if f.kind == "conjugated" and f.param in names]
    if not hits:
        return report
    from gradcheck.report._model import Finding

    hit_names = {f.param for f in hits}
    findings = [f for f in report.findings if f.param not in hit_names]
    for f in hits:
        findings.append(
            Finding(
                param=f.param,
                kind="conjugated",
                detail=(
                    "the backward is conjugated: with a real cotangent on the complex outputs "
                    "its gradient is exactly the conjugate of the numeric one (it multiplies "
                    "grad_output by f'(z) where conj(f'(z)) is due)."
                ),
                hint=f"The framework expects {convention[0]}; conjugate the derivative factor.",
                factor=-1.0,
            )
        )
    return dataclasses.replace(
        report, findings=tuple(findings), evaluations=report.evaluations + again.evaluations
    )


def _conjugated(c: Component) -> bool:
    """Whether every checked entry agrees once the imaginary part of g flips sign."""
    checked = (c.flags == AGREES) | (c.flags == MISMATCH)
    flipped = c.analytic_array.copy()
    flipped[..., 1] *= -1
    close = np.abs(c.numeric_array - flipped) <= c.bound_array
    return bool(checked.any() and np.all(close[checked]))


