"""Stage 8, assembly: the per-entry results become one ``Component`` per tensor and the
``Report``, whose verdicts come from the one rule (``report._model.verdict``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from gradcheck.core._tree import Tree
from gradcheck.core.verdict._records import TensorResult
from gradcheck.report import _notes
from gradcheck.report._figures import checked_figures
from gradcheck.report._model import (
    AGREES_INT,
    MISMATCH_INT,
    UNCHECKED_INT,
    Component,
    relative_error,
    verdict,
)
from gradcheck.report._report import Report
from gradcheck.report._sentences import Note


def assemble(
    tree: Tree,
    results: list[TensorResult],
    scheme: str,
    located: bool,
    evaluations: int,
    j0: float,
    seconds: float,
    planned: list[int] | None = None,
    interrupted: bool = False,
    *,
    more_notes: Sequence[Note] = (),
    options: dict[str, Any] | None = None,
) -> Report:
    """The report of the results (``located``: a directional search judged some tensor), its
    notes followed by ``more_notes`` (the engine's), with the check's ``options``."""
    components: dict[str, Component] = {}
    planned = planned or [leaf.size for leaf in tree.leaves]
    for t, (name, leaf) in enumerate(zip(tree.names, tree.leaves, strict=True)):
        components[name] = component(name, leaf, results[t], planned[t])
    suspects = tuple(n for n, c in components.items() if c.passed is False)
    # The textbook ratio over every entry that was checked, kinks included (as the notes define
    # it); how many were judged as kinks is said in a note.
    masks = [r.flags != UNCHECKED_INT for r in results]  # agrees, mismatch or kink
    rel = relative_error(
        np.concatenate([r.numeric[m] for r, m in zip(results, masks, strict=True)]),
        np.concatenate([r.analytic[m] for r, m in zip(results, masks, strict=True)]),
    ) if any(np.count_nonzero(m) for m in masks) else None  # nothing checked: no ratio, never "0 (great)"
    # Nothing judged wrong, but not everything judged (interrupted, nothing checked at all, or
    # first-pass mismatches the budget left unconfirmed): no verdict ("incomplete", passed
    # None), never a pass.
    passed = verdict((c.passed for c in components.values()), interrupted=interrupted,
                     judged=rel is not None or located)
    notes = _notes.collect(components, results, scheme, j0, rel, passed)
    return Report(
        passed=passed,
        relative_error=rel,
        evaluations=evaluations,
        eps={n: r.eps for n, r in zip(tree.names, results, strict=True)},
        scheme=scheme,
        components=components,
        suspects=suspects,
        notes=(*notes, *more_notes),
        interrupted=interrupted,
        seconds=seconds,
        options=options,
    )


def component(
    name: str, leaf: np.ndarray, r: TensorResult, planned: int | None = None
) -> Component:
    """The component of one tensor: its figures, its worst entry and its verdict."""
    flags, numeric, analytic = r.flags.ravel(), r.numeric.ravel(), r.analytic.ravel()
    wrong = flags == MISMATCH_INT
    checked = (flags == AGREES_INT) | wrong
    mismatches = int(np.count_nonzero(wrong))
    judged = int(np.count_nonzero(flags))  # every state but UNCHECKED (0)
    unjudged = max(0, (leaf.size if planned is None else planned) - judged) if r.partial else 0
    unjudged += r.unconfirmed  # a first-pass mismatch without its second opinion: not "ok"
    return Component(
        name=name,
        shape=tuple(leaf.shape),
        relative_error=(
            relative_error(numeric[checked], analytic[checked])
            if judged else None
        ),
        **checked_figures(numeric, analytic, r.bound.ravel(), checked, tuple(leaf.shape)),
        passed=verdict(mismatches=mismatches, unjudged=unjudged),
        unjudged=unjudged,
        eps=r.eps,
        noise=r.noise,
        dtype=_DTYPE_NAMES.get(leaf.dtype) or str(leaf.dtype),
        evaluated_dtype="float64",  # the loss gets float64 copies (complex128 for the complex step)
        mismatches=mismatches,
        value_array=np.array(leaf, copy=True),
        numeric_array=r.numeric.reshape(leaf.shape),
        analytic_array=r.analytic.reshape(leaf.shape),
        bound_array=r.bound.reshape(leaf.shape),
        flags=r.flags.reshape(leaf.shape),
    )


# The names of the usual dtypes (``str(dtype)`` is a Python method; '>f8' and the like still
# get it).
_DTYPE_NAMES = {np.dtype(t): str(np.dtype(t)) for t in (np.float16, np.float32, np.float64)}
