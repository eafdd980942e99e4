"""An entry's own scale: agreeing entries whose bound is mostly the float64 rounding of a J far
larger than what they move it by are estimated again at their own step (``own_scale``), and
judged wrong only where that estimate is a derivative and misses g (``settle``).

>>> GAIN, HALF
(4.0, (-0.5, 0.5))
"""

from __future__ import annotations

import numpy as np

from gradcheck.core._coords import Capped
from gradcheck.core._schemes import SCHEMES
from gradcheck.core._tolerance import DEFAULT_RTOL, SAFETY
from gradcheck.core.verdict._first_pass import Footing, Out, estimate, evaluate_nodes
from gradcheck.core.verdict._flat import constant_aside
from gradcheck.core.verdict._records import Stepper, TensorJob
from gradcheck.report._model import AGREES_INT as AGREES
from gradcheck.report._model import MISMATCH_INT as MISMATCH

GAIN = 4.0  # an entry's own step is used only where it is this many times the tensor's
COARSE = DEFAULT_RTOL[np.dtype(np.float32)]  # ... and only where its bound is this coarse
EPS64_ = float(np.finfo(np.float64).eps)


def own_scale(
    ev: Capped, job: TensorJob, f: Footing, idx: np.ndarray, out: Out, flat_step: np.ndarray,
) -> None:
    """Agreeing entries judged less precisely than float32's rtol, their bound mostly J's
    float64 rounding, because J is far larger than what they move it by (a large term beside
    a small one), are estimated again at their own step: the u^(1/3) step relative to how much
    J moves when the entry moves by its scale (|numeric|·scale), not relative to |J|. Two
    calls each; only where that estimate misses g, two more (``settle``). This includes a
    first-pass mismatch that the second opinion's smaller steps, whose rounding is larger,
    turned into agreement."""
    numeric, bound, flags = out
    h, size = f.stepper.h, abs(job.j0)
    if not size or f.sigma > 4 * EPS64_ * size:  # J's noise is not (only) float64's rounding
        return
    rounding = bound - f.a
    weak = idx[(flags[idx] == AGREES) & (rounding[idx] > 4 * f.a[idx])
               & (rounding[idx] > COARSE * np.abs(numeric[idx])) & np.isnan(flat_step[idx])]
    if not weak.size:  # (the usual case: no entry's bound is mostly J's rounding)
        return
    with np.errstate(divide="ignore", invalid="ignore"):
        gain = np.cbrt(size * EPS64_ ** (1 / 3) / (np.abs(numeric) * h))
    weak = weak[np.isfinite(gain[weak]) & (gain[weak] >= GAIN)]
    if not weak.size or ev.spare() < 4 * weak.size:
        return
    wide = h.copy()
    wide[weak] = h[weak] * gain[weak]
    stepper = Stepper(f.stepper.theta, wide, f.stepper.dtype)
    try:
        first = evaluate_nodes(ev, job.t, weak, stepper, (-1.0, 1.0), job.j0, False)
        if first.stopped:
            return
        v = {**first.values, 0.0: np.full(weak.size, job.j0)}
        whole, r = estimate(SCHEMES["central"], stepper, weak, v, f.sigma, False, (-1.0, 1.0))
        # a miss beyond the bound, and the same derivative as the first pass's within its
        # bound: stairs finer than the step look like a line at a larger one, whose slope is
        # no derivative of J
        miss = ((np.abs(whole - f.g[weak]) > SAFETY * r + f.a[weak])
                & (np.abs(whole - numeric[weak]) <= rounding[weak]))
        if miss.any():
            settle(ev, job, f, stepper, weak[miss], {c: x[miss] for c, x in v.items()}, out)
    except KeyboardInterrupt:
        return


def settle(ev: Capped, job: TensorJob, f: Footing, stepper: Stepper, idx: np.ndarray,
           v: dict[float, np.ndarray], out: Out) -> None:
    """Entries that missed g at their own step are judged wrong only where the estimates at
    that step and at half of it agree with each other (J smooth there: no stair or kink
    between the windows), both miss g by more than their bounds, no kink at θ has one-sided
    slopes that hold g (a kink's slope gap does not halve with the step; curvature's does),
    and J is not constant on one side at a small step (``_flat.constant_aside``: stairs finer
    than the own step look smooth across it). ``v``: J at their own step's nodes -1, 0, 1."""
    nodes = evaluate_nodes(ev, job.t, idx, stepper, HALF, job.j0, False)
    if nodes.stopped:
        return
    v = {**v, **nodes.values}
    g, a = f.g[idx], f.a[idx]

    def at(where: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
        value, rounding = estimate(SCHEMES["central"], stepper, idx, v, f.sigma, False, where)
        return value, SAFETY * rounding + a

    (whole, b1), (half, b2) = at((-1.0, 1.0)), at((-0.5, 0.5))
    (left, bl), (right, br) = at((-1.0, 0.0)), at((0.0, 1.0))
    (left2, bl2), (right2, br2) = at((-0.5, 0.0)), at((0.0, 0.5))
    outside = (g < np.minimum(left - bl, right - br)) | (g > np.maximum(left + bl, right + br))
    curved = np.abs((right2 - left2) - (right - left) / 2) <= bl2 + br2
    wrong = ((np.abs(whole - g) > b1) & (np.abs(half - g) > b2) & (np.abs(whole - half) <= b2)
             & (outside | curved))
    settled, value, b = idx[wrong], whole[wrong], b1[wrong]
    if settled.size and ev.spare() >= 2 * settled.size:  # a step across stairs measures them
        keep = ~np.any(constant_aside(ev, job.t, f.stepper, settled, value, abs(job.j0),
                                      job.j0)[0], axis=0)
        settled, value, b = settled[keep], value[keep], b[keep]
    numeric, bound, flags = out
    numeric[settled], bound[settled], flags[settled] = value, b, MISMATCH


HALF = (-0.5, 0.5)  # ``settle``'s nodes, in units of the entry's own step
