"""The verdict: backprop gradients against finite differences, judged against the measured noise.

``run`` evaluates the loss on copies, measures the noise, chooses the steps, makes the first pass
and the second opinion, and returns a ``Report`` without findings (the diagnosis adds those).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from gradcheck._errors import GradCheckError, OptionError, StochasticLossError
from gradcheck.core import _edges
from gradcheck.core._coords import DEFAULT_BUDGET, BudgetSpent, Capped, Selection, select
from gradcheck.core._directional import TOP_CALLS, Located, locate
from gradcheck.core._evaluate import SerialEvaluator, Workspace, make_evaluator
from gradcheck.core._noise import POINTS, noise_level, resolution
from gradcheck.core._options import Options, check_eps_names
from gradcheck.core._progress import Progress
from gradcheck.core._schemes import SCHEMES, Scheme, default_step, derivative_weights
from gradcheck.core._tolerance import KINK_SAFETY, LOW_PRECISION, SAFETY, analytic_bound
from gradcheck.core._tree import Params, Tree
from gradcheck.core._validate import inputs
from gradcheck.report import _notes
from gradcheck.report._model import AGREES, KINK, MISMATCH, UNCHECKED, Component, relative_error
from gradcheck.report._report import Report

SchemeName = Literal["central", "forward", "backward", "richardson", "complex"]
EPS64 = float(np.finfo(np.float64).eps)
RETRIES_IF_FLAT = 4  # probes of the noise, each with a 16x larger step, while J stays constant
MAX_LEVELS = 5  # halvings of the step tried on an ambiguous (kinked) entry: down to h/16
# A forced eps must move J by more than this many σ somewhere in its tensor; below that its
# rounding error swamps every difference (the tolerance would be ~ the estimate itself).
SWAMPED = 100.0
# A forced eps above this many times max(1, rms θ) dwarfs the parameter: refused.
DWARFS = 1e3


def run(
    loss: Callable[[Params], Any],
    params: Params,
    grads: Any,
    options: Options,
    *,
    refine: bool = True,
    coords: Any = "all",
    budget: int = DEFAULT_BUDGET,
    batched_loss: Callable[[np.ndarray], Any] | None = None,
    executor: Any = None,
    progress: bool | None = False,
) -> Report:
    """``check`` with validated options; ``refine=False`` keeps first-pass estimates only, at
    exactly the forced step (``numerical_gradient`` and the sweep measure the step they are
    given; only a verdict needs a forced eps widened or refused).

    A Ctrl-C during the evaluations returns the partial report (``report.interrupted``).
    """
    start = time.perf_counter()
    tree, analytic = inputs(params, grads)
    _check_forced_eps(options, tree, refuse_huge=refine)
    plan = _Plan(SCHEMES[options.scheme], options, np.random.default_rng(options.seed), refine)
    plan.grad_scale = max(float(np.max(np.abs(g), initial=0.0)) for g in analytic)
    sizes = [leaf.size for leaf in tree.leaves]
    nodes = sum(1 for c in plan.scheme.nodes if c != 0)
    selection = select(
        coords, sizes, nodes, budget, np.random.default_rng([options.seed, 1]),
        _second_calls(plan.scheme.nodes),
    )
    workspace = Workspace(tree, np.complex128 if plan.complex else np.float64)
    evaluator = Capped(  # every loss call counts; "auto" never makes more than ``budget``
        make_evaluator(
            loss, workspace, complex_step=plan.complex, batched_loss=batched_loss,
            executor=executor,
        ),
        selection.limit,
    )
    plan.progress = Progress(selection.count(sizes) * nodes, enabled=progress)
    results: list[_Tensor] = []
    first = selection.first_pass(sizes, nodes)
    j0, stopped = np.nan, False
    try:
        try:  # Ctrl-C before any entry is judged (J(θ), the noise probe): nothing judged
            j0 = _edges.base_value(lambda: _base_value(evaluator, plan), tree)
            if not plan.complex:
                plan.noise = _measure_noise(evaluator, tree, j0, plan.rng)
        except KeyboardInterrupt:
            stopped = True
        search = selection.locate_calls or [TOP_CALLS if selection.directional else 0] * len(sizes)
        for t in range(0 if stopped else len(tree.names)):
            # Calls promised to the tensors after t (and the last J(θ)): t may not use them.
            evaluator.reserved = 1 + sum(first[u] + search[u] for u in range(t + 1, len(sizes)))
            args = (analytic[t], tree.leaves[t].dtype, selection.indices[t], selection.directional,
                    selection.max_tests,
                    selection.locate_calls[t] if selection.locate_calls else None, first[t])
            try:
                try:
                    result = _check_tensor(evaluator, plan, t, j0, *args)
                except _Swamped as swamped:  # a forced eps too small: the automatic step
                    plan.widened[t] = swamped.reason
                    result = _check_tensor(evaluator, plan, t, j0, *args)
                results.append(result)
            except KeyboardInterrupt as stop:  # keep what is done; the rest stays unjudged
                results.append(getattr(stop, "partial", None) or _unchecked(analytic[t]))
                break
        else:  # a random loss can repeat itself twice by chance; a third J(θ) at the end too?
            if not stopped:
                evaluator.reserved = 0
                try:
                    _same_again(j0, float(np.real(evaluator.base())), "at the start and")
                except KeyboardInterrupt:
                    stopped = True
    except BudgetSpent:  # planning leaves room for every phase; this is the hard stop behind it
        plan.spent = True
    finally:
        plan.progress.close()
        evaluator.close()
    interrupted = not plan.spent and (
        stopped or len(results) < len(sizes) or any(r.partial for r in results)
    )
    results += [_unchecked(analytic[t]) for t in range(len(results), len(sizes))]
    _require_unchanged(workspace)
    planned = [s if i is None else len(i) for i, s in zip(selection.indices, sizes, strict=True)]
    report = _assemble(tree, results, plan, evaluator.calls, j0, time.perf_counter() - start,
                       planned, interrupted)
    extra = _step_notes(tree, analytic, plan, results)
    extra += _edge_notes(tree, plan)
    extra += _scale_notes(tree.names, sizes, results, selection, plan.located, interrupted)
    extra += _budget_notes(tree.names, sizes, selection, nodes, plan)
    return dataclasses.replace(report, notes=report.notes + extra, interrupted=interrupted)


def _check_forced_eps(options: Options, tree: Tree, refuse_huge: bool = True) -> None:
    """A forced eps names real parameters, and does not dwarf the parameter it moves."""
    check_eps_names(options.eps, tree.names)
    if options.eps is None or options.scheme == "complex" or not refuse_huge:
        return
    for name, leaf in zip(tree.names, tree.leaves, strict=True):
        h = options.eps.get(name) if isinstance(options.eps, dict) else options.eps
        if h is None:
            continue
        scale = max(1.0, float(np.sqrt(np.mean(np.abs(leaf.astype(np.float64)) ** 2))))
        if h > DWARFS * scale:
            what = "eps" if not isinstance(options.eps, dict) else f"eps[{name!r}]"
            raise OptionError(
                f"{what}={h:g} dwarfs the scale of {name} (entries of rms "
                f"{float(np.sqrt(np.mean(leaf.astype(np.float64) ** 2))):.3g}): a difference "
                f"over a step {h / scale:.3g} times max(1, rms) measures the loss far from θ, "
                f"not its slope at θ. Use a step below {DWARFS * scale:g} (about 1e-6 times "
                "the parameter's scale is typical), or eps=None to let gradcheck choose."
            )


def _step_notes(
    tree: Tree, analytic: list[np.ndarray], plan: _Plan, results: list[_Tensor]
) -> tuple[str, ...]:
    """Forced steps that were widened, and gradients judged in a coarser dtype than θ's."""
    notes = [
        f"eps={plan.options.eps_value(tree.names[t]):g} for {tree.names[t]} {reason}; the "
        f"automatic step {results[t].eps:.3g} was used instead (a forced eps is a starting step)."
        for t, reason in plan.widened.items()
        if t < len(results)
    ]
    for name, leaf, g in zip(tree.names, tree.leaves, analytic, strict=True):
        if _coarser(leaf.dtype, g.dtype) != np.dtype(leaf.dtype):
            notes.append(
                f"grads['{name}'] is {g.dtype} for a {leaf.dtype} parameter: the analytic "
                f"gradient was judged with the {g.dtype} precision allowance (its own dtype)."
            )
    return tuple(notes)


def _coarser(a: Any, b: Any) -> np.dtype:
    """The less precise of two floating dtypes."""
    a, b = np.dtype(a), np.dtype(b)
    if b.kind != "f":
        return a
    return a if np.finfo(a).eps >= np.finfo(b).eps else b


class _Swamped(Exception):
    """A forced eps that does not move θ, or moves J by no more than its rounding noise."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _budget_notes(
    names: Sequence[str], sizes: Sequence[int], selection: Selection, nodes: int, plan: _Plan
) -> tuple[str, ...]:
    """What the budget left out: second opinions, tensors, and how to ask for everything."""
    notes = [
        f"{names[t]}: {k:,} first-pass mismatches got no second opinion (budget={selection.limit:,}"
        " spent) and are left unchecked; coords='all' checks them all."
        for t, k in plan.unrefined.items() if k
    ]
    notes += [
        f"{names[t]}: {k:,} first-pass mismatches are reported without a second opinion (budget="
        f"{selection.limit:,} spent); the tensor's own directional test failed, so they stand."
        for t, k in plan.kept.items() if k
    ]
    if plan.spent:
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
    return tuple(notes)


def _second_calls(nodes: Sequence[float]) -> int:
    """Calls per entry of the first level of ``_refine`` (the second opinion)."""
    wanted = {*(c / 2 for c in nodes), 1.0, -1.0, 0.5, -0.5}
    return len(wanted - set(nodes) - {0.0})


def _unchecked(g: np.ndarray) -> _Tensor:
    n = g.size
    nan = np.full(n, np.nan)
    flat = g.reshape(-1).astype(np.float64)
    return _Tensor(nan, flat, nan.copy(), np.zeros(n, np.int8), np.nan, np.nan, False, True)


def _scale_notes(
    names: Sequence[str],
    sizes: Sequence[int],
    results: list[_Tensor],
    selection: Selection,
    located: dict[int, Located],
    interrupted: bool,
) -> tuple[str, ...]:
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
        notes.append(_located_note(names[t], found))
    return tuple(notes)


def _edge_notes(tree: Tree, plan: _Plan) -> tuple[str, ...]:
    """Non-finite parameter entries (left alone) and entries judged near a domain edge."""
    notes = []
    for t, (name, leaf) in enumerate(zip(tree.names, tree.leaves, strict=True)):
        bad = int(np.sum(~np.isfinite(leaf)))
        if bad:
            notes.append(_edges.nonfinite_note(name, bad))
        if plan.edges.get(t):
            notes.append(_edges.note(name, tuple(leaf.shape), plan.edges[t]))
    return tuple(notes)


def _located_note(name: str, found: Located) -> str:
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


@dataclass
class _Plan:
    scheme: Scheme
    options: Options
    rng: np.random.Generator
    refine: bool = True
    grad_scale: float = 0.0  # largest analytic entry: sets the floor of a low-precision sum's rounding
    progress: Any = None
    located: dict[int, Located] = field(default_factory=dict)
    noise: list[float] = field(default_factory=list)  # σ of J per tensor (``_measure_noise``)
    widened: dict[int, str] = field(default_factory=dict)  # tensors whose forced eps was too small
    edges: dict[int, dict[int, str]] = field(default_factory=dict)  # near a domain edge: how
    unrefined: dict[int, int] = field(default_factory=dict)  # mismatches left for the budget
    kept: dict[int, int] = field(default_factory=dict)  # first-pass mismatches kept unrefined
    spent: bool = False  # the budget's hard stop was hit

    @property
    def complex(self) -> bool:
        return self.scheme.name == "complex"

    def eps_for(self, name: str, t: int | None = None) -> float | None:
        if t in self.widened:
            return None
        return self.options.eps_value(name)


def _base_value(evaluator: SerialEvaluator, plan: _Plan) -> float:
    """J(θ), evaluated twice: a loss that answers differently is stochastic and gets no verdict."""
    first = evaluator.base()
    _require_unchanged(evaluator.ws)
    second = evaluator.base()
    if plan.complex and not isinstance(first, complex):
        raise GradCheckError(
            "scheme='complex' needs a loss that carries complex input through to a complex "
            "J (no abs(), np.real or float() inside); this loss returned a real number. Use "
            "scheme='central' instead."
        )
    a = float(np.real(first))
    _same_again(a, float(np.real(second)), "and then")
    return a


def _require_unchanged(workspace: Workspace) -> None:
    """The loss gets our copies; if it wrote into them, every later value would be wrong."""
    if not workspace.unchanged():
        raise GradCheckError(
            "loss(params) modified the arrays it was given in place; a loss must not write to "
            "params (copy before modifying). Your own arrays were not touched."
        )


def _same_again(a: float, b: float, between: str) -> None:
    """Two values of J at the same θ must agree to rounding, or the loss is stochastic."""
    if a != b and abs(a - b) > 64 * EPS64 * max(abs(a), abs(b)):
        raise StochasticLossError(
            f"loss(params) returned {a!r} {between} {b!r} for the same parameters: the loss is "
            "stochastic (dropout with a fresh mask, or random sampling inside the loss). Finite "
            "differences of a random function mean nothing: set keep_prob = 1 or fix the "
            "dropout mask (and any sampling seed) before checking."
        )


@dataclass
class _Tensor:
    """Per-entry results for one parameter tensor."""

    numeric: np.ndarray
    analytic: np.ndarray
    bound: np.ndarray
    flags: np.ndarray
    eps: float
    noise: float
    low_precision: bool
    partial: bool = False  # interrupted before every selected coordinate was judged


def _check_tensor(
    ev: SerialEvaluator,
    plan: _Plan,
    t: int,
    j0: float,
    g: np.ndarray,
    dtype: np.dtype,
    idx: np.ndarray | None = None,
    directional: bool = False,
    max_tests: int = 400,
    locate_calls: int | None = None,
    planned: int = 0,
) -> _Tensor:
    """Judge the entries ``idx`` of tensor t (None: all), after a directional search if asked."""
    theta = np.real(ev.ws.originals[t]).reshape(-1).astype(np.float64)
    judged_as = _coarser(dtype, g.dtype)  # a float32 gradient is only as precise as float32
    finite = np.isfinite(theta)  # ±inf/NaN entries stay where they are, unchecked
    g = g.reshape(-1).astype(np.float64)
    sigma = 0.0 if plan.complex else plan.noise[t]
    # J's relative precision sets the step: a J of 3e-9 computed in float32 is good to 1e-7 of
    # itself, not of 1. (A J that is exactly 0 says nothing: fall back to float64's.)
    relative = float(np.clip(sigma / abs(j0), EPS64, 1e-2)) if j0 else EPS64
    low = relative > LOW_PRECISION
    scale = float(np.sqrt(np.mean(theta[finite] ** 2))) if finite.any() else 0.0
    h = plan.eps_for(ev.ws.names[t], t) or default_step(plan.scheme, relative, scale)
    literal = plan.complex or not plan.refine or t in plan.widened  # no verdict rests on it
    forced = None if literal else plan.eps_for(ev.ws.names[t])
    top = np.abs(theta[finite]).max(initial=0.0)
    spacing = float(np.spacing(np.asarray(top, dtype=dtype)))
    if low:  # J rounds the parameters to their own dtype: keep every step representable there
        h = max(h, 16 * spacing)
    # An adapter hands J the parameters in their own dtype (float32 native): step to points
    # representable there, so that the offsets used are the ones J sees (exact for any J).
    stepper = _Stepper(theta, h, dtype if low or h >= 16 * spacing else np.dtype(np.float64))
    if forced is not None and any(np.any(stepper.offset(np.flatnonzero(finite), c) == 0)
                                  for c in plan.scheme.nodes if c):
        raise _Swamped("does not move every entry (θ ± eps rounds back to θ)")
    a = analytic_bound(g, judged_as, plan.options.rtol, plan.options.atol, plan.grad_scale)
    if directional and not plan.complex:
        rng = np.random.default_rng([plan.options.seed, 2, t])  # same seed, same directions
        allowance = ev.spare() - planned  # the coordinates' calls are planned: keep them
        if locate_calls is not None:
            allowance = min(allowance, locate_calls)
        allowance = None if allowance == np.inf else max(int(allowance), 0)
        found = locate(ev, t, theta, g, a, h, sigma, rng, max_tests=max_tests, max_calls=allowance)
        plan.located[t] = found
        if idx is not None:
            idx = np.union1d(idx, found.culprits).astype(np.int64)
    idx = np.arange(theta.size) if idx is None else idx
    idx = idx[finite[idx]]
    numeric, bound = np.full(theta.size, np.nan), np.full(theta.size, np.nan)
    flags = np.zeros(theta.size, dtype=np.int8)
    out = (numeric, bound, flags)
    try:
        values = _evaluate_nodes(
            ev, t, idx, stepper, plan.scheme.nodes, j0, plan.complex, plan.progress
        )
    except _Interrupted as stop:  # judge the coordinates done so far, then stop
        done = {c: v[: stop.done] for c, v in stop.values.items()}
        _judge(plan, stepper, idx[: stop.done], done, sigma, g, a, *out)
        if plan.refine and not plan.complex:  # a first-pass mismatch awaits its second opinion
            unrefined = flags == MISMATCH
            flags[unrefined], numeric[unrefined] = UNCHECKED, np.nan
        stop.partial = _Tensor(numeric, g, bound, flags, h, sigma, low, partial=True)
        raise
    if forced is not None:
        moved = max(float(np.max(np.abs(np.real(v) - j0), initial=0.0)) for v in values.values())
        if moved <= SWAMPED * sigma:
            raise _Swamped(
                f"moves J by at most {moved:.3g}, within {SWAMPED:g}σ of its rounding noise "
                f"(σ = {sigma:.3g}), so its rounding error would swamp every difference"
            )
    _judge(plan, stepper, idx, values, sigma, g, a, *out)
    edge = idx[_edges.outside(values)] if not plan.complex and len(idx) else idx[:0]
    if edge.size:  # J(θ ± h) left the loss's domain: smaller or one-sided steps for those
        plan.edges[t] = _edges.repair(ev, t, stepper, edge, j0, sigma, g, a, *out)
    values = {c: _spread(v, idx, theta.size) for c, v in values.items()}
    suspicious = np.setdiff1d(np.flatnonzero(flags == MISMATCH), edge)
    if suspicious.size and plan.refine and not plan.complex:
        try:
            first_pass = numeric.copy(), bound.copy(), flags.copy()
            plan.unrefined[t] = _refine(
                ev, t, suspicious, stepper, plan.scheme, values, j0, sigma, g, a, *out
            )
            found = plan.located.get(t)
            if plan.unrefined[t] and found is not None and found.failed and found.worst > 4:
                # The tensor's Richardson test already failed: its first-pass mismatches that
                # the budget could not re-check stand as evidence rather than vanish.
                kept = (flags == 0) & (first_pass[2] == MISMATCH)
                for array, old in zip(out, first_pass, strict=True):
                    array[kept] = old[kept]
                plan.kept[t], plan.unrefined[t] = int(kept.sum()), 0
        except KeyboardInterrupt as stop:  # a first-pass mismatch may be a kink: leave unjudged
            flags[suspicious], numeric[suspicious] = 0, np.nan
            partial = _Tensor(numeric, g, bound, flags, h, sigma, low, partial=True)
            stop.partial = partial  # type: ignore[attr-defined]
            raise
    return _Tensor(numeric, g, bound, flags, h, sigma, low)


def _judge(
    plan: _Plan,
    stepper: _Stepper,
    idx: np.ndarray,
    values: dict[float, np.ndarray],
    sigma: float,
    g: np.ndarray,
    a: np.ndarray,
    numeric: np.ndarray,
    bound: np.ndarray,
    flags: np.ndarray,
) -> None:
    """First-pass estimate and verdict for the entries ``idx`` (``values`` aligned with idx)."""
    estimate, rounding = _estimate(plan.scheme, stepper, idx, values, sigma, plan.complex)
    numeric[idx] = estimate
    bound[idx] = SAFETY * rounding + a[idx]
    flags[idx] = np.where(np.abs(estimate - g[idx]) <= bound[idx], AGREES, MISMATCH)


def _spread(v: np.ndarray, idx: np.ndarray, n: int) -> np.ndarray:
    """Values aligned with ``idx`` placed in a length-n array (NaN elsewhere)."""
    if len(idx) == n:
        return v
    out = np.full(n, np.nan, dtype=v.dtype)
    out[idx] = v
    return out


class _Interrupted(KeyboardInterrupt):
    """Ctrl-C during the first pass: the values of the first ``done`` coordinates are known."""

    def __init__(self, values: dict[float, np.ndarray], done: int) -> None:
        super().__init__()
        self.values, self.done = values, done
        self.partial: _Tensor | None = None


def _measure_noise(
    ev: SerialEvaluator, tree: Tree, j0: float, rng: np.random.Generator
) -> list[float]:
    """σ of J's rounding noise near θ for each tensor: ECnoise along a random unit direction in
    that tensor, floored by the precision J's values reveal (one property of the loss, so the
    coarsest grid seen on any tensor applies to all) and by float64's own."""
    probes = [
        _probe(ev, t, np.real(ev.ws.originals[t]).reshape(-1).astype(np.float64), j0, rng, leaf.dtype)
        for t, leaf in enumerate(tree.leaves)
    ]
    floor = max([EPS64 * abs(j0)] + [grid for _, grid in probes])
    return [max(sigma, floor) for sigma, _ in probes]


def _probe(
    ev: SerialEvaluator,
    t: int,
    theta: np.ndarray,
    j0: float,
    rng: np.random.Generator,
    dtype: Any,
) -> tuple[float, float]:
    """(ECnoise σ, resolution of J) from J at θ + k·δ·v, k = -3..3, for one tensor."""
    finite = np.isfinite(theta)
    direction = np.where(finite, rng.standard_normal(theta.size), 0.0)
    direction /= max(float(np.linalg.norm(direction)), np.finfo(np.float64).tiny)
    theta = theta[finite]
    delta = default_step(SCHEMES["central"], EPS64, float(np.sqrt(np.mean(theta**2))) if theta.size else 0.0)
    # A loss that computes in a float16 parameter's own dtype rounds steps below its spacing
    # away (J looks constant, σ = 0): probe at a few spacings of the parameter's dtype at least.
    delta = max(delta, 4 * float(np.spacing(np.asarray(np.abs(theta).max(initial=0.0), dtype=dtype))))
    k = np.arange(POINTS) - POINTS // 2
    for _ in range(RETRIES_IF_FLAT):  # J did not move at all: a low-precision J hides small steps
        values = np.insert(ev.along(t, direction, delta * k[k != 0]), POINTS // 2, j0)
        for _ in range(_edges.LEVELS):  # the probe left the loss's domain: come closer
            if np.all(np.isfinite(values)):
                break
            delta /= 4
            values = np.insert(ev.along(t, direction, delta * k[k != 0]), POINTS // 2, j0)
        if not np.all(np.isfinite(values)):
            values = np.full(POINTS, j0)  # no noise seen: σ falls back to the float64 floor
            break
        if np.unique(values).size > 1:
            break
        delta *= 16
    sigma, _ = noise_level(values)
    return sigma, resolution(values)


class _Stepper:
    """Actual offsets θ(c·h) − θ, with θ ± c·h rounded to ``dtype`` where J would round them."""

    def __init__(self, theta: np.ndarray, h: float, dtype: np.dtype) -> None:
        self.theta, self.h, self.dtype = theta, h, dtype

    def point(self, idx: np.ndarray, c: float) -> np.ndarray:
        x = self.theta[idx] + c * self.h
        return x.astype(self.dtype).astype(np.float64)

    def offset(self, idx: np.ndarray, c: float) -> np.ndarray:
        return self.point(idx, c) - self.theta[idx] if c != 0 else np.zeros(len(idx))


def _evaluate_nodes(
    ev: SerialEvaluator,
    t: int,
    idx: np.ndarray,
    stepper: _Stepper,
    nodes: Sequence[float],
    j0: float,
    complex_step: bool,
    progress: Progress | None = None,
) -> dict[float, np.ndarray]:
    """J at θ + c·h·e_i for each node c and entry i of ``idx``, in blocks (progress, Ctrl-C)."""
    kind = np.complex128 if complex_step else np.float64
    values = {c: np.full(len(idx), j0) if c == 0 else np.empty(len(idx), kind) for c in nodes}
    moving = [c for c in nodes if c != 0]
    block = getattr(ev, "block", max(len(idx), 1))
    first = max(1, block // 16)  # a small first block: progress has a rate (an ETA) early
    for lo, hi in _blocks(len(idx), first, block):
        sub = idx[lo:hi]
        if complex_step:
            x = [stepper.theta[sub] + 1j * c * stepper.h for c in moving]
        else:
            x = [stepper.point(sub, c) for c in moving]
        try:  # one request for every node of the block: fewer round trips to workers
            js = ev.coordinates(t, np.tile(sub, len(moving)), np.concatenate(x))
        except KeyboardInterrupt:
            raise _Interrupted(values, lo) from None
        for k, c in enumerate(moving):
            values[c][lo : lo + len(sub)] = js[k * len(sub) : (k + 1) * len(sub)]
        if progress is not None:
            progress.advance(len(sub) * len(moving))
    return values


def _blocks(n: int, first: int, block: int) -> list[tuple[int, int]]:
    """Bounds of the blocks of ``n`` entries: the first block of ``block`` is split after
    ``first`` entries (an early rate for the progress display); the grid stays ``block``.

    >>> _blocks(10, 2, 4)
    [(0, 2), (2, 4), (4, 8), (8, 10)]
    """
    bounds = sorted({0, min(first, n), *range(block, n, block), n})
    return [(lo, hi) for lo, hi in zip(bounds, bounds[1:], strict=False) if hi > lo]


def _estimate(
    scheme: Scheme,
    stepper: _Stepper,
    idx: np.ndarray,
    values: dict[float, np.ndarray],
    sigma: float,
    complex_step: bool,
    nodes: Sequence[float] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The derivative estimate on ``nodes`` and the rounding error it carries (σ·‖w‖₂)."""
    if complex_step:
        numeric = np.imag(values[1.0]) / stepper.h
        return numeric, 4 * EPS64 * np.abs(numeric)
    nodes = scheme.nodes if nodes is None else nodes
    offsets = np.stack([stepper.offset(idx, c) for c in nodes])
    weights = derivative_weights(offsets)
    numeric = sum(w * np.real(values[c][: len(idx)]) for w, c in zip(weights, nodes, strict=True))
    return np.asarray(numeric), sigma * np.sqrt(np.sum(weights**2, axis=0))


def _refine(
    ev: SerialEvaluator,
    t: int,
    idx: np.ndarray,
    stepper: _Stepper,
    scheme: Scheme,
    first: dict[float, np.ndarray],
    j0: float,
    sigma: float,
    g: np.ndarray,
    a: np.ndarray,
    numeric: np.ndarray,
    bound: np.ndarray,
    flags: np.ndarray,
) -> int:
    """Second opinion on suspicious entries, halving the step while they stay ambiguous.

    At each level a half step tells truncation from a bug (Richardson), and one-sided slopes
    tell a kink (where any value between the slopes is a valid subgradient). A smooth entry that
    disagrees is settled at once; only a non-smooth entry whose g lies outside the slopes goes
    one level down, so that kinks near θ leave the window. Entries the evaluator's spare calls
    cannot pay for are left unjudged (NaN); returns how many.
    """
    values = {c: v[idx] for c, v in first.items()}
    active = np.arange(len(idx))
    for level in range(MAX_LEVELS):
        s = 0.5**level
        nodes = tuple(c * s for c in scheme.nodes)
        half = tuple(c / 2 for c in nodes)
        wanted = {*half, s, -s, s / 2, -s / 2}
        cost = sum(1 for c in wanted if c not in values or np.isnan(values[c][active[:1]]).any())
        afford = int(min(active.size, getattr(ev, "spare", lambda: np.inf)() // max(cost, 1)))
        if afford < active.size:  # the budget pays for some second opinions: the rest unjudged
            left = active[afford:]
            flags[idx[left]], numeric[idx[left]], bound[idx[left]] = 0, np.nan, np.nan
            active = active[:afford]
            if not active.size:
                return int(np.sum(flags[idx] == 0))
        sub = idx[active]
        _fill(ev, t, idx, active, stepper, wanted, values, j0)
        vals = {c: v[active] for c, v in values.items()}
        n_h, r_h = _estimate(scheme, stepper, sub, vals, sigma, False, nodes=nodes)
        n_2, r_2 = _estimate(scheme, stepper, sub, vals, sigma, False, nodes=half)
        q = 2.0**scheme.order - 1.0
        n_star = n_2 + (n_2 - n_h) / q  # Richardson extrapolation
        smooth_bound = SAFETY * (np.abs(n_h - n_2) / q + (2.0**scheme.order * r_2 + r_h) / q) + a[sub]
        agrees = np.abs(n_star - g[sub]) <= smooth_bound
        nonsmooth, inside = _kink(stepper, sub, vals, s, sigma, g[sub], a[sub])
        numeric[sub], bound[sub] = n_star, smooth_bound
        flags[sub] = np.where(agrees, AGREES, np.where(nonsmooth & inside, KINK, MISMATCH))
        active = active[~agrees & nonsmooth & ~inside]
        if not active.size:
            return int(np.sum(flags[idx] == 0))
    return int(np.sum(flags[idx] == 0))


def _fill(
    ev: SerialEvaluator,
    t: int,
    idx: np.ndarray,
    active: np.ndarray,
    stepper: _Stepper,
    nodes: set[float],
    values: dict[float, np.ndarray],
    j0: float,
) -> None:
    """Evaluate J at the nodes (multiples of h) still unknown for the active entries."""
    values.setdefault(0.0, np.full(len(idx), j0))
    for c in sorted(nodes):
        column = values.setdefault(c, np.full(len(idx), np.nan))
        todo = active[np.isnan(column[active])]
        if todo.size:
            column[todo] = _evaluate_nodes(ev, t, idx[todo], stepper, [c], j0, False)[c]


def _kink(
    stepper: _Stepper,
    idx: np.ndarray,
    values: dict[float, np.ndarray],
    s: float,
    sigma: float,
    g: np.ndarray,
    a: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Whether J is non-smooth within the step s·h, and whether g lies between its slopes.

    For smooth J the gap between right and left slopes is ≈ s·J'' and halves with the step;
    a kink inside the window breaks that scaling. The one-sided derivatives at θ are the slopes
    extrapolated to zero step (2·f(s/2) − f(s), removing the curvature term); any value between
    the left and the right one is a valid subgradient.
    """
    j0 = values[0.0]
    slope = {c: (values[c] - j0) / stepper.offset(idx, c) for c in (-s, -s / 2, s / 2, s)}
    gap_h, gap_2 = slope[s] - slope[-s], slope[s / 2] - slope[-s / 2]
    h = s * stepper.h
    # Only asked of entries that already failed the smooth test, so a lower factor suffices.
    nonsmooth = np.abs(gap_2 - gap_h / 2) > KINK_SAFETY * 5.1 * sigma / h + 0.01 * np.abs(gap_h)
    left, right = 2 * slope[-s / 2] - slope[-s], 2 * slope[s / 2] - slope[s]
    stacked = np.stack([*slope.values(), left, right])
    slack = SAFETY * 6 * sigma / h + a
    inside = (stacked.min(axis=0) - slack <= g) & (g <= stacked.max(axis=0) + slack)
    return nonsmooth, inside


def _assemble(
    tree: Tree,
    results: list[_Tensor],
    plan: _Plan,
    evaluations: int,
    j0: float,
    seconds: float,
    planned: list[int] | None = None,
    interrupted: bool = False,
) -> Report:
    components: dict[str, Component] = {}
    planned = planned or [leaf.size for leaf in tree.leaves]
    for t, (name, leaf) in enumerate(zip(tree.names, tree.leaves, strict=True)):
        components[name] = _component(name, leaf, results[t], planned[t])
    suspects = tuple(n for n, c in components.items() if c.passed is False)
    masks = [(r.flags == AGREES) | (r.flags == MISMATCH) for r in results]
    rel = relative_error(
        np.concatenate([r.numeric[m] for r, m in zip(results, masks, strict=True)]),
        np.concatenate([r.analytic[m] for r, m in zip(results, masks, strict=True)]),
    )
    # Nothing judged wrong, but not everything judged: no verdict ("incomplete", passed None).
    passed = False if suspects else None if interrupted else True
    notes = _notes.collect(components, results, plan.options.scheme, j0, rel, passed is True)
    return Report(
        passed=passed,
        relative_error=rel,
        evaluations=evaluations,
        eps={n: r.eps for n, r in zip(tree.names, results, strict=True)},
        scheme=plan.options.scheme,
        components=components,
        suspects=suspects,
        notes=notes,
        seconds=seconds,
    )


def _component(name: str, leaf: np.ndarray, r: _Tensor, planned: int | None = None) -> Component:
    checked = (r.flags == AGREES) | (r.flags == MISMATCH)
    diff = np.abs(r.numeric - r.analytic)
    excess = np.where(checked, diff / np.maximum(r.bound, np.finfo(np.float64).tiny), -1.0)
    worst = int(np.argmax(excess))
    mismatches = int(np.sum(r.flags == MISMATCH))
    judged = int(np.sum(r.flags != UNCHECKED))
    unjudged = max(0, (leaf.size if planned is None else planned) - judged) if r.partial else 0
    return Component(
        name=name,
        shape=tuple(leaf.shape),
        relative_error=relative_error(r.numeric[checked], r.analytic[checked]),
        max_abs_error=float(diff[checked].max()) if checked.any() else 0.0,
        worst_index=tuple(int(i) for i in np.unravel_index(worst, leaf.shape)),
        numeric=float(r.numeric[worst]),
        analytic=float(r.analytic[worst]),
        tolerance=float(r.bound[worst]),
        checked=int(checked.sum()),
        skipped=int(leaf.size - checked.sum()),
        passed=False if mismatches else None if unjudged else True,
        unjudged=unjudged,
        eps=r.eps,
        noise=r.noise,
        dtype=str(leaf.dtype),
        mismatches=mismatches,
        value_array=np.array(leaf, copy=True),
        numeric_array=r.numeric.reshape(leaf.shape),
        analytic_array=r.analytic.reshape(leaf.shape),
        bound_array=r.bound.reshape(leaf.shape),
        flags=r.flags.reshape(leaf.shape),
    )
