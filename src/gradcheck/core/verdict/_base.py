"""Stage 2, the base value: J(θ) twice, and the refusals that protect every later difference.

A loss that answers differently at the same θ is stochastic (refused), one that writes into the
arrays it is given would corrupt every later value (refused), and one that no perturbation of
any tensor moved does not read its argument (refused after the first pass,
``require_dependence``). J(θ) is asked once more at the end (``same_again``): a random loss can
repeat itself twice by chance.

An entry along which J did not move at all (a tensor J does not read, or J flat there) with a
gradient of rounding size agrees with the 0 measured (``judge_still``). J's scale for that
rounding is |J| at θ and, where J is exactly 0 or flat there (a dead ReLU, a
hinge with every margin met), J at far steps along each tensor (``far_look``), so that the
verdict does not depend on whether the point happens to sit where J is 0.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from gradcheck._errors import GradCheckError, StochasticLossError
from gradcheck.core import _edges
from gradcheck.core._coords import Capped
from gradcheck.core._evaluate import Workspace
from gradcheck.core._tolerance import FLOOR_ULPS
from gradcheck.core._tree import Tree
from gradcheck.core.verdict._records import EPS32, EPS64, Setup, TensorResult, coarser
from gradcheck.report._model import AGREES_INT as AGREES
from gradcheck.report._model import MISMATCH_INT as MISMATCH


def base_value(evaluator: Capped, tree: Tree, complex_step: bool) -> float:
    """J(θ), evaluated twice (a loss that answers differently is stochastic and gets no
    verdict); a non-finite J names a non-finite entry of θ if there is one."""
    return _edges.base_value(lambda: _twice(evaluator, complex_step), tree)


def _twice(evaluator: Capped, complex_step: bool) -> float:
    first = evaluator.base()
    require_unchanged(evaluator.ws)
    second = evaluator.base()
    if complex_step and not isinstance(first, complex):
        raise GradCheckError(
            "scheme='complex' needs a loss that carries complex input through to a complex "
            "J (no abs(), np.real or float() inside); this loss returned a real number. Use "
            "scheme='central' instead."
        )
    a = float(first.real)
    same_again(a, float(second.real), "and then")
    return a


def require_unchanged(workspace: Workspace) -> None:
    """The loss gets our copies; if it wrote into them, every later value would be wrong."""
    if not workspace.unchanged():
        raise GradCheckError(
            "loss(params) modified the arrays it was given in place; a loss must not write to "
            "params (copy before modifying). Your own arrays were not touched."
        )


def same_again(a: float, b: float, between: str) -> None:
    """Two values of J at the same θ must agree to rounding, or the loss is stochastic.

    Rounding is float64's, or float32's when both values are float32 numbers (a float32 loss:
    its kernels may reduce in a different order on each call, e.g. lstsq's gelsy or threaded
    sums; that jitter is then part of J's measured noise, not randomness).

    >>> same_again(1.0, 1.0 + 1e-15, "and then")
    """
    unit = EPS64
    if all(math.isfinite(v) and float(np.float32(v)) == v for v in (a, b)):
        unit = EPS32
    if a != b and abs(a - b) > 64 * unit * max(abs(a), abs(b)):
        raise StochasticLossError(
            f"loss(params) returned {a!r} {between} {b!r} for the same parameters: the loss is "
            "stochastic (dropout with a fresh mask, or random sampling inside the loss). Finite "
            "differences of a random function mean nothing: set keep_prob = 1 or fix the "
            "dropout mask (and any sampling seed) before checking."
        )


def require_dependence(
    setup: Setup, results: list[TensorResult], analytic: list[np.ndarray], j0: float = 0.0,
    dtypes: Sequence[Any] = (), far: tuple[float, bool] | None = None,
) -> None:
    """A J that no perturbation of any tensor moved: the loss does not read its argument.

    Unless the gradient itself says J should not have moved: where |g_i|·h_i stays below an ulp
    of J in the gradient's precision at every entry (a constant J, such as corrcoef of two
    points, whose float32 backward leaves ±1e-8 of rounding), the entries are judged instead.
    Nor when a far look moved J (``far``: J's scale, and whether it moved): the loss reads its
    params, J is only flat at θ (a dead ReLU, a clamp), and the entries are judged.
    """
    if setup.complex or not setup.probes or any(p.moved for p in setup.probes):
        return
    if far is not None and far[1]:
        return
    scale = abs(j0) if far is None else far[0]
    if scale and dtypes and all(
        r.steps is None or float(np.nanmax(np.abs(g).reshape(-1) * r.steps, initial=0.0))
        <= np.finfo(coarser(d, g.dtype)).eps * scale
        for r, g, d in zip(results, analytic, dtypes, strict=True)
    ):
        return
    numeric = np.concatenate([r.numeric[np.isfinite(r.numeric)] for r in results])
    if numeric.size and not np.any(numeric) and any(np.any(g) for g in analytic):
        raise GradCheckError(
            "loss(params) returned the same value whatever parameter was moved, and by however "
            "much: the loss does not read its params argument (a closure such as "
            "f = lambda W: model.loss(X, y) reads the model's own arrays instead). Make the loss "
            "compute J from the params it is given, e.g. f = lambda p: model.loss(X, y, p), or, "
            "for a model that keeps its arrays in a dict (cs231n's model.params): def f(p): "
            "model.params = p; return model.loss(X, y)[0]."
        )


def still(results: Sequence[TensorResult]) -> bool:
    """Whether an entry was judged wrong where J did not move at all (its difference exactly 0:
    J does not read the tensor, or is flat there)."""
    return any(((r.flags == MISMATCH) & (r.numeric == 0.0)).any() for r in results)


FAR = np.array([-16.0, -4.0, -1.0, 1.0, 4.0, 16.0])  # steps of the far look, in entry sizes


def far_look(evaluator: Capped, j0: float, seed: int) -> tuple[float, bool]:
    """J's scale and whether J moved, from far steps along each tensor (every entry moved by
    ±1, ±4, ±16 times about its own size, or 1, in a random direction): the scale is the
    largest of |J(θ)| and |J(θ + s·d)|/|s|, J's size per parameter-sized change. A tensor whose
    far steps the loss cannot take (it raises) is skipped; a non-finite J is no scale.

    Six loss calls per tensor, asked only when an entry where J did not move is judged wrong
    (``still``), and only as far as the budget allows."""
    rng = np.random.default_rng(seed)
    scale, moved = abs(j0), False
    for t, original in enumerate(evaluator.ws.originals):
        if evaluator.left() < FAR.size:
            break
        theta = np.real(original).reshape(-1).astype(np.float64)
        size = np.where(np.isfinite(theta), np.abs(np.nan_to_num(theta)) + 1.0, 0.0)
        try:  # far from θ a loss may overflow: its warnings are no news to the user
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                js = evaluator.along(t, rng.standard_normal(theta.size) * size, FAR)
        except GradCheckError:
            continue
        ok = np.isfinite(js)
        if ok.any():
            scale = max(scale, float(np.max(np.abs(js[ok]) / np.abs(FAR[ok]))))
            moved = moved or bool(np.any(js[ok] != j0))
    return scale, moved


def judge_still(
    results: list[TensorResult], analytic: list[np.ndarray], leaves: Sequence[np.ndarray],
    scale: float,
) -> list[TensorResult]:
    """Entries where J did not move at all (difference exactly 0) whose gradient is of rounding
    size agree with that 0: |g_i| ≤ FLOOR_ULPS·u·scale/(|θ_i| + 1), the rounding of a derivative
    of J's ``scale`` over a change of θ_i's size, computed in u (the unit roundoff of the
    coarser of the parameter's and the gradient's dtype); that is their tolerance.

    >>> r = TensorResult(np.zeros(2), np.array([1e-17, 1e-9]), np.zeros(2), np.array([2, 2]),
    ...                  1e-6, 0.0, False, steps=np.full(2, 1e-6))
    >>> judge_still([r], [r.analytic], [np.ones(2)], 1.0)[0].flags
    array([1, 2], dtype=int8)
    """
    out = list(results)
    for t, r in enumerate(results):
        leaf, g = np.asarray(leaves[t]), np.asarray(analytic[t])
        theta = np.abs(np.nan_to_num(np.real(leaf).reshape(-1).astype(np.float64)))
        u = float(np.finfo(coarser(leaf.dtype, g.dtype)).eps)
        rounding = FLOOR_ULPS * u * scale / (theta + 1.0)
        below = (r.flags == MISMATCH) & (r.numeric == 0.0) & (np.abs(r.analytic) <= rounding)
        if below.any():
            flags = np.where(below, AGREES, r.flags).astype(np.int8)
            out[t] = replace(r, flags=flags, bound=np.where(below, rounding, r.bound))
    return out
