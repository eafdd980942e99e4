"""The engine's notes as records (a code, the tensor, the numbers), and the one table that turns
each into its sentence.

The engine (``core.verdict``) decides what to say and hands ``Note`` records to ``render``; only
this table holds the wording, so code can compare codes and never sentences.

>>> render(Note(NoteCode.READS_COARSER, "W", {"dtype": "float32"}))[:40]
'J reads W in float32 (it is constant bet'
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from enum import Enum
from typing import Any

import numpy as np

from gradcheck.report import _sentences_adapters as adapters
from gradcheck.report import _sentences_against as against
from gradcheck.report import _sentences_checks as checks
from gradcheck.report import _sentences_edges as edges
from gradcheck.report import _sentences_tools as tools
from gradcheck.report._format import index_text


class NoteCode(Enum):
    """What a note is about (one code per sentence of the table)."""

    TEXT = "text"  # a plain sentence not (yet) given its own code: {"text": the sentence}
    # the tools around the engine (_sentences_tools)
    MONITOR_FOUND = "monitor-found"  # Monitor: the failing step, where it is saved
    NET_L2 = "net-l2"  # nn.Net: J includes the L2 term
    NET_DROPOUT = "net-dropout"  # nn.Net: dropout made deterministic
    NET_PLANTED_BUG = "net-planted-bug"  # nn.Net: the bug planted on purpose
    SHOWN_BEFORE = "shown-before"  # the pytest plugin: a note repeated from an earlier failure
    # check and its relatives (_sentences_checks)
    KINKS_SKIPPED = "kinks-skipped"  # entries of a tensor on a kink, skipped
    LOW_PRECISION = "low-precision"  # J known only to its measured noise
    DTYPE_ALLOWANCE = "dtype-allowance"  # non-float64 tensors judged with their dtype's allowance
    TEXTBOOK_WORRY = "textbook-worry"  # the textbook ratio says worry, the verdict passed
    TEXTBOOK_GREAT = "textbook-great"  # the textbook ratio says great, the verdict failed
    FLAT_LAYOUT = "flat-layout"  # how a flat θ was read (layout=)
    SIZE_ONE_AXES = "size-one-axes"  # gradients whose shapes differ by size-1 axes
    SHARED_MEMORY = "shared-memory"  # params sharing memory
    EXTRA_GRADS = "extra-grads"  # grads entries that belong to no parameter
    DIAGNOSIS_INTERRUPTED = "diagnosis-interrupted"  # Ctrl-C in the diagnosis
    LAYER_CHECK = "layer-check"  # check_layer: what J was and what was differentiated
    HVP_COMPONENTS = "hvp-components"  # check_hvp: what its components are
    HVP_ALONG_ONLY = "hvp-along-only"  # check_hvp: only 'along v' disagrees
    # the engine (below)
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
    FINER_STAIRS = "finer-stairs"  # J constant aside θ below the steps: stairs or rounding,
    # the analytic 0 left unjudged
    READS_COARSER = "reads-coarser"  # J reads a float64 tensor in float32/float16
    FLOAT16_GRADIENT = "float16-gradient"  # mismatches within float16's own accuracy
    SUBGRADIENTS = "subgradients"  # entries judged as kinks
    RECHECKED_OFF_KINK = "rechecked-off-kink"  # kinked entries re-checked at θ + δ
    KINKS_IN_STENCIL = "kinks-in-stencil"  # mismatches that kinks inside the stencils explain,
    # seen only at steps J's noise forces across them: unjudged
    # adapters (_sentences_adapters)
    PRECISION = "precision"  # the dtype evaluated: float64 copies or the tensors' own
    EVALUATION = "evaluation"  # batched, the loop (measured faster) or the loop fallback
    BY_OUTPUT = "by-output"  # outputs checked together failed: checked one by one
    EMPTY = "empty"  # an empty tensor, left out
    NOTHING_CHECKED = "nothing-checked"  # every tensor to check empty
    COMPLEX_INPUT = "complex-input"  # a complex tensor as real and imaginary parts
    GRAD_INSIDE = "grad-inside"  # fn differentiates inside: losses evaluated with grad on
    WRITTEN_BUFFERS = "written-buffers"  # a failing module writes into buffers in forward
    HOOKS = "hooks"  # parameters' gradient hooks are not run
    INTEGER_OUTPUTS = "integer-outputs"  # integer/bool outputs left out of J
    UNDIFFERENTIABLE_OUTPUTS = "undifferentiable-outputs"  # floating outputs without grad_fn
    SPARSE_INPUT = "sparse-input"  # a sparse tensor checked through its stored values
    UNCONNECTED = "unconnected"  # GradientTape returned None for an input
    TIES = "ties"  # mismatches on ties of mixed sign: unjudged, or judged off the ties
    TIES_UNSCREENED = "ties-unscreened"  # kinked mismatches the budget left unscreened
    QUANTIZED = "quantized"  # J's values step by float32 rounding: judged as a smooth J
    PART = "part"  # a note of one part of a merged report: {"part": its label, "note": the Note}
    JIT_FALLBACK = "jit-fallback"  # JAX: fn could not be jitted, it ran op by op
    COMPLEX_WORST = "complex-worst"  # a complex tensor's worst entry as complex numbers
    MODES_DISAGREE = "modes-disagree"  # mode='both': one mode wrong, the other right
    FORWARD_JVPS = "forward-jvps"  # forward mode: the gradient assembled from JVPs
    FORWARD_TANGENTS = "forward-tangents"  # forward mode along random tangents
    ORDER2 = "order2"  # order=2: what G(x, u) is and what its components are
    ORDER2_BACKWARD = "order2-backward"  # order=2: the gradient right, its derivatives wrong
    ORDER2_CUT = "order2-cut"  # order=2: double backward found no path to some inputs
    JACOBIAN = "jacobian"  # jacobian=True: full Jacobians compared
    SPARSE_LOOP = "sparse-loop"  # sparse inputs: perturbed losses one by one
    AGAINST_RUNS = "against-runs"  # check_against: the three runs and their dtypes
    AGAINST_ROUNDED = "against-rounded"  # check_against: inputs rounded to the low dtype
    AGAINST_DRAWN = "against-drawn"  # check_against: inputs drawn from the seed
    AGAINST_HELD = "against-held"  # check_against: modules' parameters held fixed
    AGAINST_JVP = "against-jvp"  # check_against: forward mode compared, or why not
    AGAINST_UNJUDGED = "against-unjudged"  # check_against: entries without a yardstick
    AGAINST_STATS = "against-stats"  # check_against: a tensor's tolerance statistics
    # the diagnosis (_sentences_tools)
    TAYLOR_SKIPPED = "taylor-skipped"  # borderline tensors the budget left without a Taylor test
    TAYLOR_LINEAR = "taylor-linear"  # borderline, but J linear along the Taylor direction
    TAYLOR_RATE = "taylor-rate"  # borderline: the Taylor test's rate, and whether it agrees


class Note(str):
    """One note: its code, the tensor it is about, and the numbers it cites.

    A note *is* its sentence (``str(note)``, ``"x" in note``, JSON), rendered once by the
    table; code compares ``note.code``, never the wording.

    >>> note = Note(NoteCode.NONFINITE, "W", {"count": 2})
    >>> note.code, note.tensor, str(note)[:24]
    (<NoteCode.NONFINITE: 'nonfinite'>, 'W', 'W holds 2 non-finite ent')
    """

    code: NoteCode
    tensor: str | None
    numbers: Mapping[str, Any]

    def __new__(cls, code: NoteCode, tensor: str | None = None,
                numbers: Mapping[str, Any] | None = None) -> Note:
        numbers = {} if numbers is None else numbers
        note = super().__new__(cls, TABLE[code](tensor, **numbers))
        object.__setattr__(note, "code", code)
        object.__setattr__(note, "tensor", tensor)
        object.__setattr__(note, "numbers", numbers)
        return note

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"a Note is frozen: cannot set {name}")

    def __str__(self) -> str:
        return str.__str__(self)

    def __repr__(self) -> str:
        return f"Note({self.code}, {self.tensor!r}, {str.__repr__(self)})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (Note, (self.code, self.tensor, dict(self.numbers)))


def as_note(note: str) -> Note:
    """A note as a record: a plain sentence becomes ``Note(NoteCode.TEXT, None, {"text": s})``.

    >>> as_note("J is 0.").code
    <NoteCode.TEXT: 'text'>
    """
    return note if isinstance(note, Note) else Note(NoteCode.TEXT, None, {"text": str(note)})


def unwrap(note: Note) -> Note:
    """The note itself, out of the ``PART`` labels of merged reports (outputs, modes, orders).

    >>> inner = Note(NoteCode.JACOBIAN)
    >>> unwrap(Note(NoteCode.PART, None, {"part": "order 2", "note": inner})) is inner
    True
    """
    while note.code is NoteCode.PART:
        note = note.numbers["note"]
    return note


def render(note: Note) -> str:
    """The sentence of a note."""
    return str(note)


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
           f"within ±{reach:.3g} of θ (it starts changing only farther away)")
    return (
        f"J does not change along {_entries(name, shape, entries[:1])} {far} "
        f"while the gradient says {value:.3g}"
        + (f" (and along {entries.size - 1:,} more entries of {name} with non-zero "
           "gradients)" if entries.size > 1 else "")
        + ": J is locally constant there (what a dead ReLU, a clamp or a saturated unit would "
        "give, if the model has one), "
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


def _text(_: None, text: str) -> str:
    return text


def _rechecked_off_kink(_: None, entries: int, bad: int) -> str:
    return (
        f"{entries:,} kinked entr{'y was' if entries == 1 else 'ies were'} re-checked at a "
        f"nearby point θ + δ off the kink, with grads(θ + δ): {bad:,} disagree"
        + (" (judged wrong above)." if bad else ".")
    )


def _ties(
    name: str, shape: tuple[int, ...], entries: np.ndarray, left: np.ndarray, wrong: int,
    callable_grads: bool,
) -> str:
    text = (
        f"{name}: J is not smooth around {_many(name, shape, entries)}: at nearby points its "
        "derivative along the entry lies outside its one-sided slopes at θ (ties of mixed "
        "sign: several ReLU inputs exactly at 0 that move in opposite directions along the "
        "entry; backprop's relu'(0) = 0 can then lie outside the slopes, or differ from a J "
        "that is smooth along the entry, although the code is right), so the mismatch there "
        "is not blamed on the spot."
    )
    if not callable_grads:
        return text + (" Left unjudged: pass grads as a function, grads(params) -> gradients, "
                       "to judge these entries at a nearby point off the ties.")
    judged = entries.size - left.size
    text += (f" Judged at a nearby point off the ties with grads(θ + δ): {judged:,} of "
             f"{entries.size:,}, {wrong:,} wrong")
    if left.size:
        text += f"; {_many(name, shape, left)} could not leave the ties and stay unjudged"
    return text + "."


TABLE: dict[NoteCode, Callable[..., str]] = {
    # these modules' renderers are named after their codes (NoteCode.BY_OUTPUT: by_output)
    **{code: getattr(module, code.name.lower()) for module in (adapters, against, edges)
       for code in NoteCode if hasattr(module, code.name.lower())},
    NoteCode.TEXT: _text,
    NoteCode.MONITOR_FOUND: tools.monitor_found,
    NoteCode.TAYLOR_SKIPPED: tools.taylor_skipped,
    NoteCode.TAYLOR_LINEAR: tools.taylor_linear,
    NoteCode.TAYLOR_RATE: tools.taylor_rate,
    NoteCode.NET_L2: tools.net_l2,
    NoteCode.NET_DROPOUT: tools.net_dropout,
    NoteCode.NET_PLANTED_BUG: tools.net_planted_bug,
    NoteCode.SHOWN_BEFORE: tools.shown_before,
    NoteCode.KINKS_SKIPPED: checks.kinks_skipped,
    NoteCode.LOW_PRECISION: checks.low_precision,
    NoteCode.DTYPE_ALLOWANCE: checks.dtype_allowance,
    NoteCode.TEXTBOOK_WORRY: checks.textbook_worry,
    NoteCode.TEXTBOOK_GREAT: checks.textbook_great,
    NoteCode.FLAT_LAYOUT: checks.flat_layout,
    NoteCode.SIZE_ONE_AXES: checks.size_one_axes,
    NoteCode.SHARED_MEMORY: checks.shared_memory,
    NoteCode.EXTRA_GRADS: checks.extra_grads,
    NoteCode.DIAGNOSIS_INTERRUPTED: checks.diagnosis_interrupted,
    NoteCode.LAYER_CHECK: checks.layer_check,
    NoteCode.HVP_COMPONENTS: checks.hvp_components,
    NoteCode.HVP_ALONG_ONLY: checks.hvp_along_only,
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
    NoteCode.TIES: _ties,
    NoteCode.QUANTIZED: _quantized,
}
