"""Relative error against ε for several schemes: the picture behind ε ≈ 1e-7 and two-sided steps.

For a scheme of order p the error of a finite difference is about C·ε^p (truncation, falling
with ε) plus u·|J|/ε (rounding of the loss values, rising as ε shrinks), so on a log-log plot each
scheme draws a V whose bottom is the best step: near u^(1/(p+1)), i.e. 1e-8 for forward, 6e-6 for
central and 1e-3 for Richardson in float64.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from gradcheck._errors import OptionError
from gradcheck.core._tree import Params
from gradcheck.report._model import relative_error
from gradcheck.report._sweep import SweepResult

DEFAULT_SCHEMES = ("central", "forward", "richardson")


def default_grid() -> np.ndarray:
    """Steps from 1e-12 to 1e-1, four per decade."""
    return np.logspace(-12, -1, 45)


def sweep(
    loss: Callable[[Params], Any],
    params: Params,
    grads: Params | Callable[[Params], Params],
    *,
    eps: Sequence[float] | np.ndarray | None = None,
    schemes: Sequence[str] = DEFAULT_SCHEMES,
    seed: int = 0,
) -> SweepResult:
    """Relative error of the finite-difference gradient against ``grads`` for each step and scheme.

    Args:
      loss: ``loss(params) -> J``.
      params: the parameters (never modified).
      grads: the analytic gradient, or ``grads(params)``; it is the reference the error is
        measured against, so a wrong gradient shows as a floor no step gets below.
      eps: the steps (positive); default ``default_grid()``.
      schemes: finite-difference schemes to compare (names as in ``check``).
      seed: gradcheck's own random seed.

    Returns:
      A ``SweepResult``; ``result.best()`` gives the best step per scheme.

    >>> w = np.array([1.0])
    >>> r = sweep(lambda p: float(p[0] ** 3), w, 3 * w**2, eps=[1e-2, 1e-5], schemes=["forward"])
    >>> [f"{e:.1e}" for e in r.errors["forward"]]  # (3.0301 - 3) / (3.0301 + 3) at 1e-2
    ['5.0e-06', '5.0e-03']
    """
    from gradcheck.core._numerical import numerical_gradient
    from gradcheck.core._tree import flatten
    from gradcheck.core._validate import inputs

    grid = _grid(eps)
    tree, analytic = inputs(params, grads)
    g = np.concatenate([np.ravel(a).astype(np.float64) for a in analytic])
    errors: dict[str, np.ndarray] = {}
    for scheme in schemes:
        row = []
        for h in grid:
            numeric = flatten(numerical_gradient(loss, params, eps=float(h), scheme=scheme, seed=seed))
            n = np.concatenate([np.ravel(a) for a in numeric.leaves])
            row.append(relative_error(n, g) if np.isfinite(n).all() else math.nan)
        errors[scheme] = np.array(row)
    del tree
    return SweepResult(grid, errors)


def _grid(eps: Sequence[float] | np.ndarray | None) -> np.ndarray:
    if eps is None:
        return default_grid()
    grid = np.asarray(eps, dtype=np.float64).ravel()
    if grid.size == 0 or not (np.isfinite(grid).all() and (grid > 0).all()):
        raise OptionError(f"eps={list(grid)!r} must be a non-empty list of positive, finite steps.")
    return np.sort(grid)
