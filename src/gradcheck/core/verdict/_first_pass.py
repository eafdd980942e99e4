"""Stage 4, the first pass: J at θ ± h along each selected entry, the finite-difference estimate,
and its comparison with the analytic value within the rounding it carries.

The whole test of one entry reads on one screen: the estimate is Σ w_c·J(θ + c·h·e_i) with the
scheme's weights for the offsets J actually saw (``estimate``), it carries a rounding error
σ·‖w‖₂, and the entry agrees when |estimate − g| ≤ SAFETY · rounding + the analytic allowance
(``judge``). Values are asked in blocks, so that a progress display has a rate and a Ctrl-C
keeps the blocks done (``evaluate_nodes`` returns them with how many coordinates are done).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from gradcheck.core import _edges
from gradcheck.core._coords import BudgetSpent, Capped
from gradcheck.core._options import CheckConfig
from gradcheck.core._progress import Progress
from gradcheck.core._schemes import Scheme, derivative_weights, entry_steps, median
from gradcheck.core._tolerance import LOW_PRECISION, SAFETY, analytic_bound
from gradcheck.core._tree import Params, Tree
from gradcheck.core.verdict._base import require_unchanged, same_again
from gradcheck.core.verdict._plan import make_job, open_check
from gradcheck.core.verdict._probe import base_and_noise
from gradcheck.core.verdict._records import (
    EPS64,
    Facts,
    Setup,
    Stepper,
    TensorJob,
    TensorResult,
    coarser,
    nans,
    unchecked,
)
from gradcheck.report._model import entry_states

# A forced eps must move J by more than this many σ somewhere in its tensor; below that its
# rounding error swamps every difference (the tolerance would be ~ the estimate itself).
SWAMPED = 100.0

Out = tuple[np.ndarray, np.ndarray, np.ndarray]  # numeric, bound, flags of every entry


@dataclass(frozen=True)
class Nodes:
    """J at θ + c·h·e_i for each node c, aligned with the entries asked; ``done`` of them are
    known (fewer than all after a Ctrl-C)."""

    values: dict[float, np.ndarray]
    done: int
    stopped: bool = False


class Swamped(Exception):
    """A forced eps that does not move θ, or moves J by no more than its rounding noise."""

    @property
    def reason(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class Footing:
    """Where one tensor's differences start: θ as J sees it, the steps, the noise, the bound."""

    theta: np.ndarray
    finite: np.ndarray  # ±inf/NaN entries stay where they are, unchecked
    g: np.ndarray  # the analytic gradient, flat float64
    a: np.ndarray  # the analytic allowance of each entry
    stepper: Stepper
    sigma: float
    low: bool  # J is low precision: steps widened by its noise
    typical: float  # the median step
    forced: float | None  # a forced eps a verdict rests on

    def result(self, out: Out, **kwargs: object) -> TensorResult:
        numeric, bound, flags = out
        return TensorResult(numeric, self.g, bound, flags, self.typical, self.sigma, self.low,
                            **kwargs)  # type: ignore[arg-type]


def footing(ev: Capped, setup: Setup, job: TensorJob, facts: Facts) -> Footing:
    """The steps of tensor ``job.t``, from J's precision and each entry's magnitude.

    ``job.reads``: J reads this tensor in that coarser dtype: the entries are moved from their
    values in it, by steps of at least 16 of its spacings, and judged in it."""
    t, j0, reads, dtype = job.t, job.j0, job.reads, job.dtype
    theta = ev.ws.originals[t].real.reshape(-1).astype(np.float64)
    if reads is not None:  # what J sees of θ: offsets from there are the ones J sees
        dtype = reads
        theta = np.where(np.isfinite(theta), theta.astype(reads).astype(np.float64), theta)
    judged_as = coarser(dtype, job.g.dtype)  # a float32 gradient is only as precise as float32
    finite = np.isfinite(theta)
    g = job.g.reshape(-1).astype(np.float64)
    sigma = 0.0 if setup.complex else max(setup.noise[t], job.quantum / 2)
    # J's relative precision sets the step: a J of 3e-9 computed in float32 is good to 1e-7 of
    # itself, not of 1; relative to its reference magnitude (|J(θ)|, or J's variation along
    # θ's scale where J cancels to ~0: its rounding comes from the terms, ``_probe.magnitude``).
    # (A J that is exactly 0 and flat says nothing: fall back to float64's.)
    probe = setup.probes[t] if setup.probes else None
    size = max(abs(j0), probe.scale if probe is not None else 0.0)
    relative = min(max(sigma / size, EPS64), 1e-2) if size else EPS64  # (np.clip's)
    low = relative > LOW_PRECISION
    name = ev.ws.names[t]
    literal = setup.complex or not setup.refine or facts.widened is not None  # no verdict on it
    given = setup.config.eps_value(name)
    forced = None if literal else given
    step = None if facts.widened is not None else given
    every = bool(finite.all())
    inside = theta if every else np.where(finite, theta, 0.0)  # ±inf/NaN entries never move
    h = np.full(theta.size, float(step)) if step else entry_steps(setup.scheme, relative, inside)
    size_of = np.abs(inside)  # (a float64 tensor's spacing needs no casts)
    spacing = (np.spacing(size_of) if dtype == np.float64 and size_of.dtype == np.float64
               else np.spacing(size_of.astype(dtype)).astype(np.float64))
    if low or reads is not None:  # J rounds the parameters to ``dtype``: keep every step
        h = np.maximum(h, 16 * spacing)  # representable there
    # An adapter hands J the parameters in their own dtype (float32 native): step to points
    # representable there, so that the offsets used are the ones J sees (exact for any J).
    representable = low or reads is not None or bool(
        (h >= 16 * spacing).all() if every else np.all(h[finite] >= 16 * spacing[finite]))
    stepper = Stepper(theta, h, dtype if representable else np.dtype(np.float64))
    if forced is not None and any(np.any(stepper.offset(np.flatnonzero(finite), c) == 0)
                                  for c in setup.scheme.nodes if c):
        raise Swamped("does not move every entry (θ ± eps rounds back to θ)")
    typical = median(h if every else h[finite] if finite.any() else h)
    a = analytic_bound(g, judged_as, setup.config.rtol, setup.config.atol, setup.grad_scale)
    return Footing(theta, finite, g, a, stepper, sigma, low, typical, forced)


@dataclass(frozen=True)
class Pass:
    """The first pass over a tensor's entries: numeric, bound and flags of every entry, J at
    each node (spread over the tensor, NaN elsewhere), the entries near a domain edge, and
    whether a Ctrl-C stopped it (then only the coordinates done are judged)."""

    out: Out
    values: dict[float, np.ndarray]
    edge: np.ndarray
    stopped: bool = False
    swamped: Swamped | None = None  # a forced eps that moved J by nothing at all (stairs?)


def first_pass(
    ev: Capped, setup: Setup, job: TensorJob, f: Footing, idx: np.ndarray, facts: Facts
) -> Pass:
    """Stage 4 on one tensor: J at θ ± h along the entries ``idx``, each estimate judged within
    its rounding; entries whose J(θ ± h) left the loss's domain judged with smaller or
    one-sided steps (``facts.edges``)."""
    t, j0, size = job.t, job.j0, f.theta.size
    out: Out = (nans(size), nans(size), np.zeros(size, dtype=np.int8))
    nodes = evaluate_nodes(ev, t, idx, f.stepper, setup.scheme.nodes, j0, setup.complex,
                           setup.progress)
    if nodes.stopped:  # judge the coordinates done so far
        done = {c: v[: nodes.done] for c, v in nodes.values.items()}
        judge(setup.scheme, f.stepper, idx[: nodes.done], done, f.sigma, f.g, f.a, out)
        return Pass(out, {}, idx[:0], stopped=True)
    values = nodes.values
    swamped = None  # a forced eps that moved J by nothing at all: unless J is a staircase
    if f.forced is not None:
        moved = max(float(np.max(np.abs(np.real(v) - j0), initial=0.0)) for v in values.values())
        if moved <= SWAMPED * f.sigma:
            swamped = Swamped(
                f"moves J by at most {moved:.3g}, within {SWAMPED:g}σ of its rounding noise "
                f"(σ = {f.sigma:.3g}), so its rounding error would swamp every difference"
            )
            if moved > 0:
                raise swamped
    judge(setup.scheme, f.stepper, idx, values, f.sigma, f.g, f.a, out)
    edge = idx[_edges.outside(values)] if not setup.complex and len(idx) else idx[:0]
    if edge.size:  # J(θ ± h) left the loss's domain: smaller or one-sided steps for those
        facts.edges = _edges.repair(ev, t, f.stepper, edge, j0, f.sigma, f.g, f.a, *out)
    return Pass(out, {c: spread(v, idx, size) for c, v in values.items()}, edge,
                swamped=swamped)


def estimates(
    loss: Callable[[Params], Any], tree: Tree, analytic: list[np.ndarray], config: CheckConfig
) -> list[np.ndarray]:
    """The first-pass estimates of every tensor alone (``numerical_gradient``): J(θ) twice, the
    noise probe, the first pass of each tensor, and J(θ) once more; NaN for the entries a
    Ctrl-C or the budget left, as ``run`` leaves them. With no second opinion a forced eps is
    used as given, and nothing is judged beyond the first pass.

    >>> from gradcheck.core._options import validate
    >>> from gradcheck.core._tree import flatten
    >>> tree = flatten({"w": np.array([1.0, 2.0])}, what="params")
    >>> config = validate(eps=1e-3, scheme="central", seed=0, refine=False)
    >>> [e.round(6) for e in estimates(lambda p: float(np.sum(p["w"] ** 2)), tree,
    ...                                [np.zeros(2)], config)]
    [array([2., 4.])]
    """
    plan, evaluator, setup = open_check(loss, tree, analytic, config)
    numeric = [np.full(g.shape, np.nan) for g in analytic]
    try:
        stopped = False
        try:
            j0, setup = base_and_noise(evaluator, setup, tree)
        except KeyboardInterrupt:
            return numeric
        for t in range(len(tree.names)):
            evaluator.reserved = plan.reserved_after(t)
            result = _estimate(evaluator, setup, make_job(plan, t, j0, analytic, tree))
            numeric[t] = result.numeric.reshape(analytic[t].shape)
            if result.stopped:
                stopped = True
                break
        if not stopped:  # a random loss can repeat itself twice by chance: a third J(θ)
            evaluator.reserved = 0
            setup.progress.set_phase("J(θ) again")
            with contextlib.suppress(KeyboardInterrupt):
                same_again(j0, float(np.real(evaluator.base())), "at the start and")
    except BudgetSpent:  # the budget's hard stop: the rest stays NaN
        pass
    finally:
        setup.progress.close()
        evaluator.close()
    require_unchanged(evaluator.ws)  # the loss wrote into its params: no estimate
    return numeric


def _estimate(ev: Capped, setup: Setup, job: TensorJob) -> TensorResult:
    """One tensor's first pass on every finite entry the plan selects (a Ctrl-C: what is done;
    during an edge's repair: nothing of the tensor, as ``judge_tensor``)."""
    facts = Facts()
    try:
        f = footing(ev, setup, job, facts)
        idx = np.arange(f.theta.size) if job.idx is None else job.idx
        first = first_pass(ev, setup, job, f, idx[f.finite[idx]], facts)
    except KeyboardInterrupt:
        return unchecked(job.g, stopped=True)
    return f.result(first.out, partial=first.stopped, stopped=first.stopped)


def evaluate_nodes(
    ev: Capped,
    t: int,
    idx: np.ndarray,
    stepper: Stepper,
    nodes: Sequence[float],
    j0: float,
    complex_step: bool,
    progress: Progress | None = None,
) -> Nodes:
    """J at θ + c·h·e_i for each node c and entry i of ``idx``, in blocks (progress, Ctrl-C)."""
    if progress is not None:  # the calls themselves are counted by the evaluator
        progress.set_phase("first pass")
    kind = np.complex128 if complex_step else np.float64
    values = {c: np.full(len(idx), j0) if c == 0 else np.empty(len(idx), kind) for c in nodes}
    moving = [c for c in nodes if c != 0]
    block = getattr(ev, "block", max(len(idx), 1))
    first = max(1, block // 16)  # a small first block: progress has a rate (an ETA) early
    for lo, hi in blocks(len(idx), first, block):
        sub = idx[lo:hi]
        if complex_step:
            x = [stepper.theta[sub] + 1j * c * stepper.h[sub] for c in moving]
        else:
            x = [stepper.point(sub, c) for c in moving]
        try:  # one request for every node of the block: fewer round trips to workers
            js = ev.coordinates(t, np.concatenate([sub] * len(moving)), np.concatenate(x))
        except KeyboardInterrupt:
            return Nodes(values, lo, stopped=True)
        for k, c in enumerate(moving):
            values[c][lo : lo + len(sub)] = js[k * len(sub) : (k + 1) * len(sub)]
    return Nodes(values, len(idx))


def blocks(n: int, first: int, block: int) -> list[tuple[int, int]]:
    """Bounds of the blocks of ``n`` entries: the first block of ``block`` is split after
    ``first`` entries (an early rate for the progress display); the grid stays ``block``.

    >>> blocks(10, 2, 4)
    [(0, 2), (2, 4), (4, 8), (8, 10)]
    """
    bounds = sorted({0, min(first, n), *range(block, n, block), n})
    return [(lo, hi) for lo, hi in zip(bounds, bounds[1:], strict=False) if hi > lo]


def estimate(
    scheme: Scheme,
    stepper: Stepper,
    idx: np.ndarray,
    values: dict[float, np.ndarray],
    sigma: float,
    complex_step: bool,
    nodes: Sequence[float] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The derivative estimate on ``nodes`` and the rounding error it carries (σ·‖w‖₂)."""
    if complex_step:
        numeric = np.imag(values[1.0][: len(idx)]) / stepper.h[idx]
        return numeric, 4 * EPS64 * np.abs(numeric)
    nodes = scheme.nodes if nodes is None else nodes
    offsets = stepper.offsets(idx, nodes)
    weights = derivative_weights(offsets)
    numeric = sum(w * values[c][: len(idx)].real for w, c in zip(weights, nodes, strict=True))
    return np.asarray(numeric), sigma * np.sqrt(np.add.reduce(weights**2, axis=0))


def judge(
    scheme: Scheme,
    stepper: Stepper,
    idx: np.ndarray,
    values: dict[float, np.ndarray],
    sigma: float,
    g: np.ndarray,
    a: np.ndarray,
    out: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    """First-pass estimate and verdict for the entries ``idx`` (``values`` aligned with idx),
    written into ``out`` = (numeric, bound, flags)."""
    numeric, bound, flags = out
    value, rounding = estimate(scheme, stepper, idx, values, sigma, scheme.name == "complex")
    numeric[idx] = value
    bound[idx] = SAFETY * rounding + a[idx]
    flags[idx] = entry_states(np.abs(value - g[idx]) <= bound[idx])


def spread(v: np.ndarray, idx: np.ndarray, n: int) -> np.ndarray:
    """Values aligned with ``idx`` placed in a length-n array (NaN elsewhere).

    >>> spread(np.array([1.0]), np.array([2]), 3)
    array([nan, nan,  1.])
    """
    if len(idx) == n:
        return v
    out = np.full(n, np.nan, dtype=v.dtype)
    out[idx] = v
    return out
