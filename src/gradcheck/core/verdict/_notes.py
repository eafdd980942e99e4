"""The engine's notes: what a report must say beyond its table (steps widened, entries near a
domain edge, what a sample or a budget left out, flat entries, dtypes, kinks), as ``Note``
records; ``report._sentences`` holds their wording."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from gradcheck.core._coords import Selection
from gradcheck.core._directional import Located
from gradcheck.core._options import CheckConfig
from gradcheck.core._tree import Tree
from gradcheck.core.verdict._flat import finer_notes, flat_notes
from gradcheck.core.verdict._kinks import Recheck
from gradcheck.core.verdict._plan import Plan
from gradcheck.core.verdict._records import Facts, TensorResult, coarser
from gradcheck.core.verdict._ties import NO_TIES, Ties
from gradcheck.core.verdict._ties import left as left_ties
from gradcheck.report._model import KINK, MISMATCH
from gradcheck.report._sentences import Note, NoteCode

HALF_ULPS = 128  # a float16 gradient's mismatches all within this many ulps of its largest


def engine_records(
    tree: Tree, analytic: list[np.ndarray], config: CheckConfig, plan: Plan, facts: list[Facts],
    results: list[TensorResult], interrupted: bool, spent: bool, rechecked: Recheck,
    callable_grads: bool, ties: Ties = NO_TIES,
) -> list[Note]:
    """Every note of the engine, in the report's order."""
    notes = step_notes(tree, analytic, config, facts, results)
    notes += edge_notes(tree, facts)
    notes += scale_notes(tree.names, plan.sizes, results, plan.selection,
                         {t: f.located for t, f in enumerate(facts) if f.located is not None},
                         interrupted)
    notes += budget_notes(tree.names, plan.sizes, plan.selection, plan.nodes, facts, spent)
    notes += flat_notes(tree, [f.flat for f in facts], results)
    notes += finer_notes(tree, [f.finer for f in facts])
    notes += [Note(NoteCode.READS_COARSER, tree.names[t], {"dtype": str(f.reads)})
              for t, f in enumerate(facts) if f.reads is not None and t < len(results)]
    notes += [Note(NoteCode.QUANTIZED, tree.names[t], {"quantum": f.quantum,
                                                       "step": results[t].eps})
              for t, f in enumerate(facts) if f.quantum is not None and t < len(results)]
    notes += half_notes(tree, analytic, results)
    kinks = sum(int(np.count_nonzero(r.flags == KINK)) for r in results)
    if kinks:
        notes.append(Note(NoteCode.SUBGRADIENTS, None,
                          {"kinks": kinks, "callable_grads": callable_grads}))
    if rechecked.entries:
        notes.append(Note(NoteCode.RECHECKED_OFF_KINK, None,
                          {"entries": rechecked.entries, "bad": rechecked.bad}))
    notes += blurred_notes(tree, facts, rechecked)
    notes += tie_notes(tree, results, ties, callable_grads)
    return notes


def blurred_notes(tree: Tree, facts: list[Facts], rechecked: Recheck) -> list[Note]:
    """Mismatches left unjudged because kinks inside their stencils explain them (the second
    opinion's, ``_refine``, and the re-check's off the kink, ``_kinks``)."""
    notes = []
    for t, f in enumerate(facts):
        off = rechecked.blurred[t] if t < len(rechecked.blurred) else np.array([], np.int64)
        if not off.size and (f.blurred is None or not f.blurred.any()):
            continue  # no entry: no note (the union below would be empty)
        mine = np.flatnonzero(f.blurred) if f.blurred is not None else off[:0]
        entries = np.union1d(mine, off).astype(np.int64)
        if entries.size:
            notes.append(Note(NoteCode.KINKS_IN_STENCIL, tree.names[t],
                              {"shape": tuple(tree.leaves[t].shape), "entries": entries}))
    return notes


def tie_notes(tree: Tree, results: list[TensorResult], ties: Ties,
              callable_grads: bool) -> list[Note]:
    """Mismatches on ties of mixed sign: left unjudged, or judged off the ties (callable)."""
    notes = []
    for t, (w, still) in enumerate(zip(ties.where, left_ties(results, ties), strict=True)):
        unpaid = ties.unpaid[t] if t < len(ties.unpaid) else w[:0]
        if unpaid.size:  # the calls ran out before the screen: not blamed on the spot
            notes.append(Note(NoteCode.TIES_UNSCREENED, tree.names[t], {
                "shape": tuple(tree.leaves[t].shape), "entries": unpaid,
                "left": np.intersect1d(still, unpaid), "callable_grads": callable_grads}))
            w, still = np.setdiff1d(w, unpaid), np.setdiff1d(still, unpaid)
        if w.size:
            wrong = int(np.count_nonzero(results[t].flags[w] == MISMATCH))
            notes.append(Note(NoteCode.TIES, tree.names[t], {
                "shape": tuple(tree.leaves[t].shape), "entries": w, "left": still,
                "wrong": wrong, "callable_grads": callable_grads}))
    return notes


def step_notes(
    tree: Tree, analytic: list[np.ndarray], config: CheckConfig, facts: list[Facts],
    results: list[TensorResult],
) -> list[Note]:
    """Forced steps that were widened, and gradients judged in a coarser dtype than θ's."""
    notes = [
        Note(NoteCode.EPS_WIDENED, tree.names[t], {
            "eps": config.eps_value(tree.names[t]), "reason": f.widened, "step": results[t].eps})
        for t, f in enumerate(facts)
        if f.widened is not None and t < len(results)
    ]
    for name, leaf, g in zip(tree.names, tree.leaves, analytic, strict=True):
        if _judged_in(leaf, g) != leaf.dtype:
            notes.append(Note(NoteCode.GRAD_DTYPE, name,
                              {"dtype": str(g.dtype), "param_dtype": str(leaf.dtype)}))
    return notes


def budget_notes(
    names: Sequence[str], sizes: Sequence[int], selection: Selection, nodes: int,
    facts: list[Facts], spent: bool,
) -> list[Note]:
    """What the budget left out: second opinions, tensors, and how to ask for everything."""
    notes = [Note(NoteCode.UNREFINED, names[t], {"count": f.unrefined, "budget": selection.limit})
             for t, f in enumerate(facts) if f.unrefined]
    notes += [Note(NoteCode.KEPT, names[t], {"count": f.kept, "budget": selection.limit})
              for t, f in enumerate(facts) if f.kept]
    notes += [Note(NoteCode.SAMPLE_CONFIRMED, names[t],
                   dict(zip(("sample", "total", "rest"), f.sampled, strict=True)))
              for t, f in enumerate(facts) if f.sampled]
    if spent:
        notes.append(Note(NoteCode.BUDGET_SPENT, None, {"budget": selection.limit}))
    if selection.limit is not None and selection.count(sizes) < sum(sizes):
        notes.append(Note(NoteCode.AUTO_BUDGET, None, {
            "budget": selection.limit, "total": sum(sizes), "calls": nodes * sum(sizes)}))
    return notes


def half_notes(tree: Tree, analytic: list[np.ndarray], results: list[TensorResult]) -> list[Note]:
    """Mismatches of a float16 gradient small enough to be its own arithmetic's.

    A float16 backward is the derivative of the float16 forward: rounding in long reductions,
    or a float16 max-pool or ReLU that takes the other branch at a near tie, can put it tens of
    ulps of its largest entry away from the loss's derivative (70 measured for a conv kernel
    behind ReLU + max-pool, where every other tensor was within 1 ulp). A planted 5% error is
    as large, so no allowance tells the two apart: the verdict stands, and the note says so.
    """
    notes = []
    for t, (name, leaf, g) in enumerate(zip(tree.names, tree.leaves, analytic, strict=True)):
        if t >= len(results) or _judged_in(leaf, g) != np.float16:
            continue
        r = results[t]
        wrong = r.flags == MISMATCH
        if not wrong.any():
            continue
        ulp = float(np.spacing(np.float16(np.max(np.abs(r.analytic)))))
        worst = float(np.max(np.abs(r.numeric[wrong] - r.analytic[wrong])))
        if worst <= HALF_ULPS * ulp:
            notes.append(Note(NoteCode.FLOAT16_GRADIENT, name, {"ulps": worst / ulp}))
    return notes


def scale_notes(
    names: Sequence[str],
    sizes: Sequence[int],
    results: list[TensorResult],
    selection: Selection,
    located: dict[int, Located],
    interrupted: bool,
) -> list[Note]:
    """What a partial check covered: the sample, the directional search, an interruption."""
    done = [int(np.count_nonzero(r.flags)) for r in results]
    total, planned = sum(sizes), selection.count(sizes)
    notes: list[Note] = []
    if interrupted:
        notes.append(Note(NoteCode.INTERRUPTED, None, {"done": sum(done), "planned": planned}))
    elif planned < total:
        parts = ", ".join(f"{n} {d:,} of {s:,}" for n, d, s in zip(names, done, sizes, strict=True))
        notes.append(Note(NoteCode.SAMPLED, None, {"done": sum(done), "total": total,
                                                    "parts": parts}))
    for t, found in located.items():
        notes.append(located_note(names[t], found))
    return notes


def edge_notes(tree: Tree, facts: list[Facts]) -> list[Note]:
    """Non-finite parameter entries (left alone) and entries judged near a domain edge."""
    notes = []
    for t, (name, leaf) in enumerate(zip(tree.names, tree.leaves, strict=True)):
        bad = leaf.size - int(np.count_nonzero(np.isfinite(leaf)))
        if bad:
            notes.append(Note(NoteCode.NONFINITE, name, {"count": bad}))
        edges = facts[t].edges
        if edges:
            notes.append(Note(NoteCode.DOMAIN_EDGE, name,
                              {"shape": tuple(leaf.shape), "done": edges}))
    return notes


def located_note(name: str, found: Located) -> Note:
    """What the directional search of a tensor found."""
    calls = {"tests": found.tests, "calls": found.calls}
    if not found.failed:
        return Note(NoteCode.DIRECTIONS_AGREE, name, calls)
    return Note(NoteCode.DIRECTION_FAILED, name, {
        **calls, "worst": found.worst, "culprits": found.culprits, "complete": found.complete,
        "unresolved": found.unresolved})


def _judged_in(leaf: np.ndarray, g: np.ndarray) -> np.dtype:
    """The dtype a gradient is judged in: the coarser of the parameter's and its own
    (``coarser``, asked only when they differ: of one dtype, that dtype)."""
    return leaf.dtype if g.dtype == leaf.dtype else coarser(leaf.dtype, g.dtype)
