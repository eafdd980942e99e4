"""``numerical_gradient``: the finite-difference estimate alone, in the structure of params."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from gradcheck.core._options import validate
from gradcheck.core._tree import Params, flatten
from gradcheck.core._validate import inputs
from gradcheck.core.verdict import SchemeName
from gradcheck.core.verdict._first_pass import estimates


def numerical_gradient(
    loss: Callable[[Params], Any],
    params: Params,
    *,
    eps: float | dict[str, float] | None = None,
    scheme: SchemeName = "central",
    seed: int = 0,
) -> Params:
    """The finite-difference gradient of ``loss`` at ``params``, as float64 arrays.

    With eps=None the step is chosen per parameter as in ``check``.

    Args:
      loss: ``loss(params)`` returning the scalar J.
      params: an array, or a dict / list / nested tree of arrays (never modified).
      eps: the step (a float, or one per parameter name); None chooses it.
      scheme: "central", "forward", "backward", "richardson" or "complex".
      seed: the seed of the noise probe that chooses the step.

    Returns:
      The numeric gradient, with the structure of ``params``.

    >>> numerical_gradient(lambda t: float(t[0] ** 3), np.array([1.0]), eps=0.01).round(6)
    array([3.0001])
    """
    tree = flatten(params, what="params")
    zeros = tree.rebuild([np.zeros(leaf.shape) for leaf in tree.leaves])
    config = validate(eps=eps, scheme=scheme, seed=seed, refine=False)
    tree, analytic = inputs(params, zeros)  # the parameters validated as check validates them
    return tree.rebuild(estimates(loss, tree, analytic, config))
