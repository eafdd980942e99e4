"""The engine's notes: what a report must say beyond its table (steps widened, entries near a
domain edge, what a sample or a budget left out, flat entries, dtypes, kinks)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from gradcheck.core import _edges
from gradcheck.core._coords import Selection
from gradcheck.core._directional import Located
from gradcheck.core._options import CheckConfig
from gradcheck.core._tree import Tree
from gradcheck.core.verdict._flat import flat_notes, reads_note
from gradcheck.core.verdict._kinks import Recheck, recheck_note, subgradient_note
from gradcheck.core.verdict._plan import Plan
from gradcheck.core.verdict._records import Facts, TensorResult, coarser
from gradcheck.report._model import KINK, MISMATCH

HALF_ULPS = 128  # a float16 gradient's mismatches all within this many ulps of its largest


def engine_notes(
    tree: Tree, analytic: list[np.ndarray], config: CheckConfig, plan: Plan, facts: list[Facts],
    results: list[TensorResult], interrupted: bool, spent: bool, rechecked: Recheck,
    callable_grads: bool,
) -> tuple[str, ...]:
    """Every note of the engine, in the report's order."""
    notes = step_notes(tree, analytic, config, facts, results)
    notes += edge_notes(tree, facts)
    notes += scale_notes(tree.names, plan.sizes, results, plan.selection,
                         {t: f.located for t, f in enumerate(facts) if f.located is not None},
                         interrupted)
    notes += budget_notes(tree.names, plan.sizes, plan.selection, plan.nodes, facts, spent)
    notes += flat_notes(tree, [f.flat for f in facts], results)
    notes += [reads_note(tree.names[t], f.reads) for t, f in enumerate(facts)
              if f.reads is not None and t < len(results)]
    notes += half_notes(tree, analytic, results)
    kinks = sum(int(np.count_nonzero(r.flags == KINK)) for r in results)
    if kinks:
        notes.append(subgradient_note(kinks, callable_grads))
    if rechecked.entries:
        notes.append(recheck_note(rechecked.entries, rechecked.bad))
    return tuple(notes)


def step_notes(
    tree: Tree, analytic: list[np.ndarray], config: CheckConfig, facts: list[Facts],
    results: list[TensorResult],
) -> list[str]:
    """Forced steps that were widened, and gradients judged in a coarser dtype than θ's."""
    notes = [
        f"eps={config.eps_value(tree.names[t]):g} for {tree.names[t]} {f.widened}; the "
        f"automatic step {results[t].eps:.3g} was used instead (a forced eps is a starting step)."
        for t, f in enumerate(facts)
        if f.widened is not None and t < len(results)
    ]
    for name, leaf, g in zip(tree.names, tree.leaves, analytic, strict=True):
        if coarser(leaf.dtype, g.dtype) != np.dtype(leaf.dtype):
            notes.append(
                f"grads['{name}'] is {g.dtype} for a {leaf.dtype} parameter: the analytic "
                f"gradient was judged with the {g.dtype} precision allowance (its own dtype)."
            )
    return notes


def budget_notes(
    names: Sequence[str], sizes: Sequence[int], selection: Selection, nodes: int,
    facts: list[Facts], spent: bool,
) -> list[str]:
    """What the budget left out: second opinions, tensors, and how to ask for everything."""
    notes = [
        f"{names[t]}: {f.unrefined:,} first-pass mismatches got no second opinion (budget="
        f"{selection.limit:,} spent) and are left unchecked; coords='all' checks them all."
        for t, f in enumerate(facts) if f.unrefined
    ]
    notes += [
        f"{names[t]}: {f.kept:,} first-pass mismatches are reported without a second opinion (budget="
        f"{selection.limit:,} spent); the tensor's own directional test failed, so they stand."
        for t, f in enumerate(facts) if f.kept
    ]
    if spent:
        notes.append(
            f"The budget of {selection.limit:,} loss calls ran out before every tensor was "
            "checked: the unchecked entries are NaN. Raise budget= or pass coords='all'."
        )
    if selection.limit is not None and selection.count(sizes) < sum(sizes):
        notes.append(
            f"coords='auto' kept within budget={selection.limit:,} loss calls; a full check of "
            f"all {sum(sizes):,} coordinates needs about {nodes * sum(sizes):,}: pass "
            "coords='all' (or a larger budget=) to check every one."
        )
    return notes


def half_notes(tree: Tree, analytic: list[np.ndarray], results: list[TensorResult]) -> list[str]:
    """Mismatches of a float16 gradient small enough to be its own arithmetic's.

    A float16 backward is the derivative of the float16 forward: rounding in long reductions,
    or a float16 max-pool or ReLU that takes the other branch at a near tie, can put it tens of
    ulps of its largest entry away from the loss's derivative (70 measured for a conv kernel
    behind ReLU + max-pool, where every other tensor was within 1 ulp). A planted 5% error is
    as large, so no allowance tells the two apart: the verdict stands, and the note says so.
    """
    notes = []
    for t, (name, leaf, g) in enumerate(zip(tree.names, tree.leaves, analytic, strict=True)):
        if t >= len(results) or coarser(leaf.dtype, g.dtype) != np.dtype(np.float16):
            continue
        r = results[t]
        wrong = r.flags == MISMATCH
        if not wrong.any():
            continue
        ulp = float(np.spacing(np.float16(np.max(np.abs(r.analytic)))))
        worst = float(np.max(np.abs(r.numeric[wrong] - r.analytic[wrong])))
        if worst <= HALF_ULPS * ulp:
            notes.append(
                f"{name}'s gradient is float16 and its differences from the numerical derivative "
                f"are all within {worst / ulp:.0f} ulps of its largest entry: a float16 backward "
                "can be that far from the derivative itself (rounding in long reductions, or a "
                "float16 forward that takes the other branch at a max-pool or ReLU tie), so this "
                "may be float16 accuracy rather than a bug. Compare with the gradient computed in "
                "float32 or float64 before fixing the code."
            )
    return notes



def scale_notes(
    names: Sequence[str],
    sizes: Sequence[int],
    results: list[TensorResult],
    selection: Selection,
    located: dict[int, Located],
    interrupted: bool,
) -> list[str]:
    """What a partial check covered: the sample, the directional search, an interruption."""
    done = [int(np.count_nonzero(r.flags)) for r in results]
    total, planned = sum(sizes), selection.count(sizes)
    notes: list[str] = []
    if interrupted:
        notes.append(
            f"Interrupted after {sum(done):,} of {planned:,} coordinates: the verdict covers "
            "only those; the rest are unchecked (NaN)."
        )
    elif planned < total:
        parts = ", ".join(f"{n} {d:,} of {s:,}" for n, d, s in zip(names, done, sizes, strict=True))
        notes.append(
            f"Checked {sum(done):,} of {total:,} coordinates ({parts}); the others were not "
            "evaluated (coords= and budget= choose how many)."
        )
    for t, found in located.items():
        notes.append(located_note(names[t], found))
    return notes


def edge_notes(tree: Tree, facts: list[Facts]) -> list[str]:
    """Non-finite parameter entries (left alone) and entries judged near a domain edge."""
    notes = []
    for t, (name, leaf) in enumerate(zip(tree.names, tree.leaves, strict=True)):
        bad = int(np.sum(~np.isfinite(leaf)))
        if bad:
            notes.append(_edges.nonfinite_note(name, bad))
        edges = facts[t].edges
        if edges:
            notes.append(_edges.note(name, tuple(leaf.shape), edges))
    return notes


def located_note(name: str, found: Located) -> str:
    calls = f"{found.tests} directional tests, {found.calls} loss calls"
    if not found.failed:
        return f"{name}: random directions agree with g·v ({calls})."
    where = ", ".join(str(int(i)) for i in found.culprits[:8]) or "none"
    text = (
        f"{name}: a random direction disagreed with g·v ({found.worst:.3g}× the tolerance); "
        f"bisection ({calls}) isolated flat entries {where}, checked coordinate by coordinate."
    )
    if not found.complete:
        text += " The call allowance stopped the search before every wrong entry was isolated."
    if found.unresolved or not len(found.culprits):
        text += (
            " Some failing sets could not be narrowed to single entries (errors that cancel, "
            "or kinks): check this tensor with coords='all'."
        )
    return text

