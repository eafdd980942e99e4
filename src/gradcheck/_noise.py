"""How noisy is J(θ)?  Moré & Wild's ECnoise, on a few evaluations along a random direction.

Rounding makes a computed loss J̃(θ) = J(θ) + noise. Along a line θ + k·δ·v the smooth part of
J has vanishing high-order differences, while the noise does not: the k-th difference of the
noise has variance (2k)!/(k!)² · σ². Reading σ off a level where the differences have stopped
shrinking and change sign gives the noise of *this* loss at *this* θ, whatever its dtype or the
magnitude of the numbers inside it.

Reference: J. J. Moré and S. M. Wild, "Estimating computational noise", SIAM J. Sci. Comput.
33(3), 2011.
"""

from __future__ import annotations

import math

import numpy as np

POINTS = 7  # J at θ + k·δ·v for k = -3..3 (k = 0 is J(θ), already known)


def noise_level(values: np.ndarray) -> tuple[float, bool]:
    """σ, the standard deviation of the noise in equally spaced ``values``; and whether the
    estimate is trustworthy (a level was found where differences are stable and change sign).

    >>> rng = np.random.default_rng(0)
    >>> sigma, ok = noise_level(1.0 + 0.01 * np.arange(7) + 1e-9 * rng.standard_normal(7))
    >>> 2e-10 < sigma < 5e-9
    True
    """
    f = np.asarray(values, dtype=np.float64).copy()
    m = f.size - 1
    levels, sign_change = np.zeros(m), np.zeros(m, dtype=bool)
    gamma = 1.0
    for j in range(1, m + 1):
        f[: m + 1 - j] = f[1 : m + 2 - j] - f[: m + 1 - j]
        d = f[: m + 1 - j]
        gamma *= 0.5 * j / (2 * j - 1)
        levels[j - 1] = math.sqrt(gamma * float(np.mean(d * d)))
        sign_change[j - 1] = d.min() * d.max() < 0
    for k in range(m - 2):
        window = levels[k : k + 3]
        if window.max() <= 4 * window.min() and sign_change[k]:
            return float(levels[k]), True
    return float(np.max(levels[2:])), False
