"""Finite-difference schemes as data, and derivative weights for arbitrary (snapped) nodes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Scheme:
    """A stencil: evaluation nodes as multiples of the step h, and the order of its error.

    The default step balances truncation (∝ h^order) against rounding (∝ u/h), which gives
    h ∝ u^(1/(order+1)) for a loss computed with relative precision u.
    """

    name: str
    nodes: tuple[float, ...]
    order: int

    @property
    def step_power(self) -> float:
        return 1.0 / (self.order + 1)


SCHEMES: dict[str, Scheme] = {
    "central": Scheme("central", (-1.0, 1.0), 2),
    "forward": Scheme("forward", (0.0, 1.0), 1),
    "backward": Scheme("backward", (-1.0, 0.0), 1),
    "richardson": Scheme("richardson", (-1.0, -0.5, 0.5, 1.0), 4),
    # The complex step J'(θ) ≈ Im J(θ + ih) / h has no subtraction, so h can be tiny.
    "complex": Scheme("complex", (1.0,), 2),
}

COMPLEX_STEP = 1e-20


def derivative_weights(offsets: np.ndarray) -> np.ndarray:
    """Weights w with Σ w_k J(θ + t_k) ≈ J'(θ): the derivative at 0 of the interpolating polynomial.

    ``offsets`` has shape (K, n): K nodes for each of n coordinates (actual, possibly uneven,
    steps). For t = (-h, h) this is the central difference (J(θ+h) − J(θ−h)) / 2h.

    >>> derivative_weights(np.array([[-0.5], [0.5]])).ravel().tolist()
    [-1.0, 1.0]
    """
    t = np.asarray(offsets, dtype=np.float64)
    k = t.shape[0]
    weights = np.zeros_like(t)
    for a in range(k):
        others = [b for b in range(k) if b != a]
        for j in others:
            term = 1.0 / (t[a] - t[j])
            for m in others:
                if m != j:
                    term = term * (0.0 - t[m]) / (t[a] - t[m])
            weights[a] += term
    return weights


def default_step(scheme: Scheme, relative_noise: float, scale: float) -> float:
    """h = u^(1/(order+1)) · max(1, scale): the classic balance of truncation and rounding.

    >>> round(default_step(SCHEMES["central"], 2.0 ** -52, 1.0), 8)
    6.06e-06
    """
    if scheme.name == "complex":
        return COMPLEX_STEP * max(1.0, scale)
    return float(relative_noise**scheme.step_power * max(1.0, scale))
