"""Finite-difference schemes as data, and derivative weights for arbitrary (snapped) nodes."""

from __future__ import annotations

import math
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
    if k == 2:  # the loop below for two nodes: each weight 0 + 1/(its offset − the other's)
        return 0.0 + 1.0 / (t - t[::-1])
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


def typical_scale(theta: np.ndarray) -> float:
    """The tensor's typical magnitude: the median |θ| of its non-zero entries (1 if all are 0).

    It is the floor of every entry's step, so that an entry at (or near) 0 is moved by as much
    as its typical neighbour would be, and not by a step that rounding alone decides.

    >>> typical_scale(np.array([0.0, 1e-3, 1.0, 1e3]))
    1.0
    """
    nonzero = np.abs(theta[theta != 0])
    return median(nonzero) if nonzero.size else 1.0


def median(values: np.ndarray) -> float:
    """``float(np.median(values))``, bit for bit, sorted in Python for a few finite values.

    np.median is np.mean of the middle one or two: their sum from 0 (so -0.0 gives 0.0), over
    their count.

    >>> median(np.array([3.0, 1.0, 2.0, 10.0]))
    2.5
    """
    if 0 < values.size <= 64:
        v = values.tolist()
        if math.isfinite(sum(v)):  # (a NaN or an inf in v makes the sum one)
            v.sort()
            n = len(v)
            if n % 2:
                return 0.0 + v[n // 2]
            middle = v[n // 2 - 1] + v[n // 2]
            if math.isfinite(middle):  # (an overflow is NumPy's to warn of)
                return (0.0 + middle) / 2
    return float(np.median(values))


def entry_steps(scheme: Scheme, relative_noise: float, theta: np.ndarray) -> np.ndarray:
    """One step per entry: h_i = u^(1/(order+1)) · max(|θ_i|, 1, typical scale of the tensor).

    SciPy's ``approx_derivative`` takes h = u^(1/3)·max(1, |x|) for central differences, and
    numdifftools a base step times a nominal step that grows with |x| and is at least 1: a
    relative step for large entries, an absolute one near 0. Here an entry's own magnitude sets
    its step (an entry of 1e-3 beside entries of 1e3 is not moved by the large entries' step),
    and the floor is raised from 1 to the tensor's typical scale, so that a zero in a tensor of
    entries around 1e3 moves as far as its neighbours.

    >>> h = entry_steps(SCHEMES["central"], 2.0 ** -52, np.array([0.0, 0.5, 2.0, 8.0]))
    >>> (h / h[0]).tolist()
    [1.0, 1.0, 1.0, 4.0]
    """
    if scheme.name == "complex":
        return np.full(theta.shape, COMPLEX_STEP) * np.maximum(1.0, np.abs(theta))
    base = relative_noise**scheme.step_power
    return base * np.maximum(np.abs(theta), max(1.0, typical_scale(theta)))
