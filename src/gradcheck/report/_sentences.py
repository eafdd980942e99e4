"""The engine's notes as records (a code, the tensor, the numbers), and the one table that turns
each into its sentence.

The engine (``core.verdict``) decides what to say and hands ``Note`` records to ``render``; only
this table holds the wording, so code can compare codes and never sentences.

>>> render(Note(NoteCode.READS_COARSER, "W", {"dtype": "float32"}))[:40]
'J reads W in float32 (it is constant bet'
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import numpy as np

from gradcheck.report._format import index_text


class NoteCode(Enum):
    """What an engine note is about."""

    EPS_WIDENED = "eps-widened"  # a forced eps too small: the automatic step was used
    GRAD_DTYPE = "grad-dtype"  # a gradient coarser than its parameter, judged in its own dtype
    NONFINITE = "nonfinite"  # ±inf/NaN parameter entries, left alone
    DOMAIN_EDGE = "domain-edge"  # entries judged near the edge of the loss's domain
    INTERRUPTED = "interrupted"  # a Ctrl-C: what the verdict covers
    SAMPLED = "sampled"  # a sample of the coordinates
    DIRECTIONS_AGREE = "directions-agree"  # the directional tests of a tensor agree
    DIRECTION_FAILED = "direction-failed"  # one failed; what bisection isolated
    UNREFINED = "unrefined"  # first-pass mismatches without a second opinion: unjudged
    KEPT = "kept"  # ... kept, the tensor's own directional test having failed
    SAMPLE_CONFIRMED = "sample-confirmed"  # a sample's second opinions all confirmed: the
    # tensor is wrong, its other first-pass mismatches stand on first-pass evidence
    BUDGET_SPENT = "budget-spent"  # the budget's hard stop
    AUTO_BUDGET = "auto-budget"  # coords='auto' kept within the budget
    STAIRS = "stairs"  # J piecewise constant, the analytic 0 agrees
    SURROGATE = "surrogate"  # J piecewise constant, the gradient is not 0
    LOCALLY_CONSTANT = "locally-constant"  # J constant near θ, the gradient is not 0
    READS_COARSER = "reads-coarser"  # J reads a float64 tensor in float32/float16
    FLOAT16_GRADIENT = "float16-gradient"  # mismatches within float16's own accuracy
    SUBGRADIENTS = "subgradients"  # entries judged as kinks
    RECHECKED_OFF_KINK = "rechecked-off-kink"  # kinked entries re-checked at θ + δ
    QUANTIZED = "quantized"  # J's values step by float32 rounding: judged as a smooth J


@dataclass(frozen=True)
class Note:
    """One note of the engine: its code, the tensor it is about, and the numbers it cites."""

    code: NoteCode
    tensor: str | None = None
    numbers: Mapping[str, Any] = field(default_factory=dict)


def render(note: Note) -> str:
    """The sentence of a note."""
    return TABLE[note.code](note.tensor, **note.numbers)


def _entries(name: str, shape: tuple[int, ...], entries: np.ndarray) -> str:
    """Up to three entries of a tensor by index, and how many more."""
    first = ", ".join(index_text(name, tuple(int(j) for j in np.unravel_index(i, shape)))
                      for i in entries[:3])
    return first + (f" and {entries.size - 3:,} more" if entries.size > 3 else "")


def _many(name: str, shape: tuple[int, ...], entries: np.ndarray) -> str:
    return _entries(name, shape, entries) if entries.size <= 3 else (
        f"{entries.size:,} entries of {name} ({_entries(name, shape, entries)})")


def _eps_widened(name: str, eps: float, reason: str, step: float) -> str:
    return (f"eps={eps:g} for {name} {reason}; the automatic step {step:.3g} was used instead "
            "(a forced eps is a starting step).")


def _grad_dtype(name: str, dtype: str, param_dtype: str) -> str:
    return (f"grads['{name}'] is {dtype} for a {param_dtype} parameter: the analytic gradient "
            f"was judged with the {dtype} precision allowance (its own dtype).")


def _nonfinite(name: str, count: int) -> str:
    return (f"{name} holds {count} non-finite entr{'y' if count == 1 else 'ies'} (±inf/NaN): "
            "left unperturbed and unchecked.")


def _domain_edge(name: str, shape: tuple[int, ...], done: dict[int, str]) -> str:
    parts = [f"{name}[{', '.join(map(str, np.unravel_index(i, shape)))}] {how}"
             for i, how in list(done.items())[:6]]
    more = f" and {len(done) - 6} more" if len(done) > 6 else ""
    return (
        f"{name}: {len(done)} entr{'y' if len(done) == 1 else 'ies'} within a step of the edge "
        f"of the loss's domain (J was NaN/inf at θ ± h) were judged with a smaller step or a "
        f"one-sided difference toward the valid side: {'; '.join(parts)}{more}."
    )


def _interrupted(_: None, done: int, planned: int) -> str:
    return (f"Interrupted after {done:,} of {planned:,} coordinates: the verdict covers only "
            "those; the rest are unchecked (NaN).")


def _sampled(_: None, done: int, total: int, parts: str) -> str:
    return (f"Checked {done:,} of {total:,} coordinates ({parts}); the others were not "
            "evaluated (coords= and budget= choose how many).")


def _directions_agree(name: str, tests: int, calls: int) -> str:
    return f"{name}: random directions agree with g·v ({tests} directional tests, {calls} loss calls)."


def _direction_failed(
    name: str, tests: int, calls: int, worst: float, culprits: np.ndarray, complete: bool,
    unresolved: int,
) -> str:
    where = ", ".join(str(int(i)) for i in culprits[:8]) or "none"
    text = (
        f"{name}: a random direction disagreed with g·v ({worst:.3g}× the tolerance); "
        f"bisection ({tests} directional tests, {calls} loss calls) isolated flat entries "
        f"{where}, checked coordinate by coordinate."
    )
    if not complete:
        text += " The call allowance stopped the search before every wrong entry was isolated."
    if unresolved or not len(culprits):
        text += (" Some failing sets could not be narrowed to single entries (errors that "
                 "cancel, or kinks): check this tensor with coords='all'.")
    return text


def _unrefined(name: str, count: int, budget: int) -> str:
    return (f"{name}: {count:,} first-pass mismatches got no second opinion (budget={budget:,} "
            "spent) and are left unchecked; coords='all' checks them all.")


def _kept(name: str, count: int, budget: int) -> str:
    return (f"{name}: {count:,} first-pass mismatches are reported without a second opinion "
            f"(budget={budget:,} spent); the tensor's own directional test failed, so they "
            "stand.")


def _sample_confirmed(name: str, sample: int, total: int, rest: int) -> str:
    return (f"{name}: second opinions on a sample of {sample} of its {total:,} first-pass "
            f"mismatches, stratified by their strength, confirmed {name} wrong; {rest:,} others "
            "at least as strong as the confirmed strata are reported on the first pass's "
            "evidence (a central difference outside its bound) without a second opinion each.")


def _budget_spent(_: None, budget: int) -> str:
    return (f"The budget of {budget:,} loss calls ran out before every tensor was checked: the "
            "unchecked entries are NaN. Raise budget= or pass coords='all'.")


def _auto_budget(_: None, budget: int, total: int, calls: int) -> str:
    return (f"coords='auto' kept within budget={budget:,} loss calls; a full check of all "
            f"{total:,} coordinates needs about {calls:,}: pass coords='all' (or a larger "
            "budget=) to check every one.")


def _tried(order: int, flat: int) -> str:
    return "" if order == flat else (
        f" ({order} of the {flat:,} entries J did not move along were followed farther)")


def _stairs(name: str, shape: tuple[int, ...], entries: np.ndarray, order: int, flat: int) -> str:
    return (
        f"J is piecewise constant along {_many(name, shape, entries)}: its derivative is 0 "
        "almost everywhere, and the analytic 0 there agrees (J does not change at small steps "
        "and jumps by a stair at larger ones: round, floor, sign or a quantisation)"
        f"{_tried(order, flat)}."
    )


def _surrogate(
    name: str, shape: tuple[int, ...], entries: np.ndarray, value: float, order: int, flat: int
) -> str:
    return (
        f"J is piecewise constant along {_many(name, shape, entries)} while grads gives "
        f"non-zero values there ({_entries(name, shape, entries[:1])}: {value:.3g}): J does not "
        "change at small steps and jumps by a stair at larger ones, so its derivative is 0 "
        "almost everywhere and these values cannot be a derivative. A straight-through "
        "estimator or another surrogate gradient is expected to fail a gradient check: check "
        "the rest of the model with this op replaced by a differentiable one, or leave "
        f"{name} out of the check{_tried(order, flat)}."
    )


def _locally_constant(
    name: str, shape: tuple[int, ...], entries: np.ndarray, value: float, reach: float,
    still: bool, order: int, flat: int,
) -> str:
    far = (f"at any step tried (up to ±{reach:.3g})" if still else
           f"within ±{reach:.3g} of θ (it changes only farther away, past a kink)")
    return (
        f"J does not change along {_entries(name, shape, entries[:1])} {far} "
        f"while the gradient says {value:.3g}"
        + (f" (and along {entries.size - 1:,} more entries of {name} with non-zero "
           "gradients)" if entries.size > 1 else "")
        + ": J is locally constant there (a dead ReLU unit, a clamp, a saturated max), "
        f"so its derivative is 0 and the analytic value is wrong{_tried(order, flat)}."
    )


def _reads_coarser(name: str, dtype: str) -> str:
    d = dtype
    return (
        f"J reads {name} in {d} (it is constant between {d} values of each entry, which looked "
        f"like a staircase at float64 steps): {name} was checked as a {d} parameter, from its "
        f"{d} values, with steps of at least 16 {d} spacings and the {d} precision allowance."
    )


def _quantized(name: str, quantum: float, step: float) -> str:
    return (
        f"J's values step by {quantum:.3g} along {name} (float32 rounding of an intermediate "
        "larger than J, such as 1 + erf in a float32 ndtr), not by stairs of the function: "
        f"{name} was judged as a smooth J with that rounding, at steps of {step:.3g} that span "
        "many of them, so the check is only as precise as that rounding allows."
    )


def _float16_gradient(name: str, ulps: float) -> str:
    return (
        f"{name}'s gradient is float16 and its differences from the numerical derivative are "
        f"all within {ulps:.0f} ulps of its largest entry: a float16 backward can be that far "
        "from the derivative itself (rounding in long reductions, or a float16 forward that "
        "takes the other branch at a max-pool or ReLU tie), so this may be float16 accuracy "
        "rather than a bug. Compare with the gradient computed in float32 or float64 before "
        "fixing the code."
    )


def _subgradients(_: None, kinks: int, callable_grads: bool) -> str:
    text = (
        f"{kinks:,} entr{'y' if kinks == 1 else 'ies'} judged as kinks "
        f"({'was' if kinks == 1 else 'were'} checked only as subgradients: any analytic value "
        "between the left and right slopes passes, so a small error there, such as a missing "
        "L1 term or a x1.01 factor, can hide inside the interval)."
    )
    if not callable_grads:
        text += (" Pass grads as a function, grads(params) -> gradients, for a stronger test at "
                 "a nearby point off the kink.")
    return text


def _rechecked_off_kink(_: None, entries: int, bad: int) -> str:
    return (
        f"{entries:,} kinked entr{'y was' if entries == 1 else 'ies were'} re-checked at a "
        f"nearby point θ + δ off the kink, with grads(θ + δ): {bad:,} disagree"
        + (" (judged wrong above)." if bad else ".")
    )


TABLE: dict[NoteCode, Callable[..., str]] = {
    NoteCode.EPS_WIDENED: _eps_widened,
    NoteCode.GRAD_DTYPE: _grad_dtype,
    NoteCode.NONFINITE: _nonfinite,
    NoteCode.DOMAIN_EDGE: _domain_edge,
    NoteCode.INTERRUPTED: _interrupted,
    NoteCode.SAMPLED: _sampled,
    NoteCode.DIRECTIONS_AGREE: _directions_agree,
    NoteCode.DIRECTION_FAILED: _direction_failed,
    NoteCode.UNREFINED: _unrefined,
    NoteCode.KEPT: _kept,
    NoteCode.SAMPLE_CONFIRMED: _sample_confirmed,
    NoteCode.BUDGET_SPENT: _budget_spent,
    NoteCode.AUTO_BUDGET: _auto_budget,
    NoteCode.STAIRS: _stairs,
    NoteCode.SURROGATE: _surrogate,
    NoteCode.LOCALLY_CONSTANT: _locally_constant,
    NoteCode.READS_COARSER: _reads_coarser,
    NoteCode.FLOAT16_GRADIENT: _float16_gradient,
    NoteCode.SUBGRADIENTS: _subgradients,
    NoteCode.RECHECKED_OFF_KINK: _rechecked_off_kink,
    NoteCode.QUANTIZED: _quantized,
}
