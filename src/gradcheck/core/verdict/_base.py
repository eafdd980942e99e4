"""Stage 2, the base value: J(θ) twice, and the refusals that protect every later difference.

A loss that answers differently at the same θ is stochastic (refused), one that writes into the
arrays it is given would corrupt every later value (refused), and one that no perturbation of
any tensor moved does not read its argument (refused after the first pass,
``require_dependence``). J(θ) is asked once more at the end (``same_again``): a random loss can
repeat itself twice by chance.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from gradcheck._errors import GradCheckError, StochasticLossError
from gradcheck.core import _edges
from gradcheck.core._coords import Capped
from gradcheck.core._evaluate import Workspace
from gradcheck.core._tree import Tree
from gradcheck.core.verdict._records import EPS64, Setup, TensorResult, coarser


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
    a = float(np.real(first))
    same_again(a, float(np.real(second)), "and then")
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
    if all(np.isfinite(v) and float(np.float32(v)) == v for v in (a, b)):
        unit = float(np.finfo(np.float32).eps)
    if a != b and abs(a - b) > 64 * unit * max(abs(a), abs(b)):
        raise StochasticLossError(
            f"loss(params) returned {a!r} {between} {b!r} for the same parameters: the loss is "
            "stochastic (dropout with a fresh mask, or random sampling inside the loss). Finite "
            "differences of a random function mean nothing: set keep_prob = 1 or fix the "
            "dropout mask (and any sampling seed) before checking."
        )


def require_dependence(
    setup: Setup, results: list[TensorResult], analytic: list[np.ndarray], j0: float = 0.0,
    dtypes: Sequence[Any] = (),
) -> None:
    """A J that no perturbation of any tensor moved: the loss does not read its argument.

    Unless the gradient itself says J should not have moved: where |g_i|·h_i stays below an ulp
    of J in the gradient's precision at every entry (a constant J, such as corrcoef of two
    points, whose float32 backward leaves ±1e-8 of rounding), the entries are judged instead.
    """
    if setup.complex or not setup.probes or any(p.moved for p in setup.probes):
        return
    if j0 and dtypes and all(
        r.steps is None or float(np.nanmax(np.abs(g).reshape(-1) * r.steps, initial=0.0))
        <= np.finfo(coarser(d, g.dtype)).eps * abs(j0)
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
