"""The Taylor test: a verdict from a convergence rate, with no ε and no threshold.

Along a direction v, the remainder r(h) = |J(θ + h·v) − J(θ) − h·g·v| is ½h²·vᵀHv + O(h³) when
g is the gradient, so it shrinks by 4 each time h halves (rate 2). When g is wrong by δ, the
term h·δ·v remains and, once h is small enough, r only halves (rate 1). The rate is read off
the smallest steps whose remainders still stand clear of J's rounding noise (measured, as in
``check``), so it needs no tolerance tuned to the loss's scale.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from gradcheck.core._noise import POINTS, noise_level
from gradcheck.core._tree import Params
from gradcheck.core._validate import inputs
from gradcheck.report._model import AGREES, MISMATCH
from gradcheck.report._sentences import Note, NoteCode

PASS_RATE = 1.5  # halfway between 1 (wrong) and 2 (right)
CLEAR = 100.0  # a remainder counts when it is this many noise levels above zero
EPS64 = float(np.finfo(np.float64).eps)


@dataclass(frozen=True)
class TaylorResult:
    """The Taylor test on one parameter: ``rate`` ≈ 2 when its gradient is right, ≈ 1 when wrong.

    ``rate`` is NaN when no remainder stood clear of the noise (the loss is linear along v and
    the gradient predicts it exactly: ``passed`` is then True).

    Attributes:
      rate: the slope of log remainder against log step on the smallest steps above the noise.
      passed: rate ≥ 1.5 (or no remainder above the noise).
      remainders, steps: |J(θ + hv) − J(θ) − h·g·v| at each step h.
      noise: the measured rounding noise of J.

    >>> import numpy as np, gradcheck
    >>> w = np.array([0.5, -1.0])
    >>> t = gradcheck.taylor_test(lambda p: float(np.sum(np.sin(p["w"]))), {"w": w}, {"w": np.cos(w)})
    >>> t["w"].passed, round(t["w"].rate)
    (True, 2)
    """

    rate: float
    passed: bool
    remainders: tuple[float, ...]
    steps: tuple[float, ...]
    noise: float


def taylor_test(
    loss: Callable[[Params], Any],
    params: Params,
    grads: Params | Callable[[Params], Params],
    *,
    seed: int = 0,
    steps: int = 20,
    names: tuple[str, ...] | None = None,
) -> dict[str, TaylorResult]:
    """Convergence rate of the first-order Taylor remainder, one parameter at a time.

    Args:
      loss: ``loss(params) -> J``.
      params: the parameters (an ndarray, or dicts / lists / tuples of ndarrays); never modified.
      grads: the analytic gradients in the same structure, or ``grads(params)``.
      seed: seeds the random directions (gradcheck's own generator).
      steps: how many times the step is halved (at least 3).
      names: test only these parameters (default: all).

    Returns:
      ``{name: TaylorResult}``; ``result.rate`` ≈ 2 for a right gradient, ≈ 1 for a wrong one.

    >>> w = np.array([0.5, -1.0, 2.0])
    >>> loss = lambda p: float(np.sum(np.sin(p["w"])))
    >>> round(taylor_test(loss, {"w": w}, {"w": np.cos(w)})["w"].rate)
    2
    >>> round(taylor_test(loss, {"w": w}, {"w": 1.01 * np.cos(w)})["w"].rate)
    1
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 3:
        raise ValueError(f"steps={steps!r} must be an int of at least 3 (halvings of the step).")
    tree, analytic = inputs(params, grads)
    rng = np.random.default_rng(seed)
    wanted = tree.names if names is None else names
    out: dict[str, TaylorResult] = {}
    for t, name in enumerate(tree.names):
        direction = rng.standard_normal(tree.leaves[t].shape)
        if name in wanted:
            out[name] = _one(loss, tree, t, analytic[t], direction, steps)
    return out


def _one(
    loss: Callable[[Params], Any], tree: Any, t: int, g: np.ndarray, v: np.ndarray, steps: int
) -> TaylorResult:
    leaf = tree.leaves[t]
    theta = np.asarray(leaf, dtype=np.float64)
    v = v / max(float(np.sqrt(np.mean(v**2))), EPS64)
    scale = float(np.sqrt(np.mean(theta**2))) if theta.size else 0.0
    h0 = 0.1 * (scale if scale > 0 else 1.0)

    def at(h: float) -> tuple[float, float]:
        """J(θ + h·v) and the actual directional offset g·(θ(h) − θ) after rounding to dtype."""
        moved = (theta + h * v).astype(leaf.dtype)
        leaves = [np.array(x, copy=True) for x in tree.leaves]
        leaves[t] = moved
        value = float(np.real(np.asarray(loss(tree.rebuild(leaves))).reshape(-1)[0]))
        return value, float(np.sum(g.astype(np.float64) * (moved.astype(np.float64) - theta)))

    j0, _ = at(0.0)
    delta = 1e-6 * h0
    noise_values = [at(delta * k)[0] for k in range(-(POINTS // 2), POINTS // 2 + 1)]
    sigma = max(noise_level(np.array(noise_values))[0], EPS64 * abs(j0))
    hs = tuple(h0 * 0.5**k for k in range(steps))
    remainders = []
    for h in hs:
        value, linear = at(h)
        remainders.append(abs(value - j0 - linear))
    r = np.array(remainders)
    clear = r > CLEAR * sigma
    pairs = [k for k in range(steps - 1) if clear[k] and clear[k + 1]]
    if not pairs:
        return TaylorResult(math.nan, not clear.any(), tuple(remainders), hs, sigma)
    # The smallest steps tell the O(h) term from the O(h²) one: use the last three clear pairs.
    rates = [math.log2(r[k] / r[k + 1]) for k in pairs[-3:]]
    rate = float(np.median(rates))
    return TaylorResult(rate, rate >= PASS_RATE, tuple(remainders), hs, sigma)


BORDER = 2.0  # borderline: the worst difference is within this factor of its tolerance, either side


def borderline(report: Any) -> tuple[str, ...]:
    """Parameters whose worst difference lies within ``BORDER`` of its tolerance, either side."""
    out = []
    for name, c in report.components.items():
        checked = (c.flags == AGREES) | (c.flags == MISMATCH)  # np.isin's answer, cheaper
        if not np.count_nonzero(checked):
            continue
        diff = np.abs(c.numeric_array - c.analytic_array)[checked]
        worst = float(np.maximum.reduce(diff / np.maximum(c.bound_array[checked], 1e-300)))
        if 1.0 / BORDER <= worst <= BORDER:
            out.append(name)
    return tuple(out)


TAYLOR_CALLS = 1 + POINTS + 20  # J(θ), the noise points, the 20 default steps


def second_opinion(
    report: Any,
    loss: Any,
    params: Params,
    grads: Any,
    seed: int,
    *,
    calls_left: Callable[[], int] | None = None,
) -> Any:
    """The report with a note giving the Taylor rate of each borderline parameter (as many as
    ``calls_left()`` pays for; the others get a note saying the budget left them out)."""
    import dataclasses

    names = borderline(report)
    if not names:
        return report
    skipped: tuple[str, ...] = ()
    if calls_left is not None:
        afford = max(calls_left(), 0) // TAYLOR_CALLS
        names, skipped = names[:afford], names[afford:]
    if skipped:
        report = dataclasses.replace(report, notes=report.notes + (
            Note(NoteCode.TAYLOR_SKIPPED, None, {"names": ", ".join(skipped)}),))
    if not names:
        return report
    try:
        results = taylor_test(loss, params, grads, seed=seed, names=names)
    except Exception:  # a second opinion must never turn a finished check into an error
        return report
    notes = []
    for name, res in results.items():
        if math.isnan(res.rate):
            notes.append(Note(NoteCode.TAYLOR_LINEAR, name))
            continue
        suspect = name in report.suspects
        notes.append(Note(NoteCode.TAYLOR_RATE, name, {
            "border": BORDER, "rate": float(res.rate), "agrees": res.passed == (not suspect),
            "verdict": "WRONG" if suspect else "right", "suspect": suspect}))
    return dataclasses.replace(report, notes=report.notes + tuple(notes))
