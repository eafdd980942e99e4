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
    f = np.asarray(values, dtype=np.float64)
    if 4 <= f.size <= 8:  # the probe's 7 points: the same arithmetic on Python floats
        fast = _small_noise_level(f.tolist())
        if fast is not None:
            return fast
    return _numpy_noise_level(f)


def _numpy_noise_level(values: np.ndarray) -> tuple[float, bool]:
    """``noise_level`` in NumPy, for any number of values (and the reference that
    ``_small_noise_level`` matches bit for bit)."""
    f = np.array(values, dtype=np.float64)  # a copy: the differences are taken in place
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


def _small_noise_level(f: list[float]) -> tuple[float, bool] | None:
    """``noise_level`` of 4 to 8 values, bit for bit, without NumPy calls (None: a value or a
    level is not finite; the caller's NumPy path decides then). NumPy sums fewer than 8 values
    one after the other, from 0, which is what the loop below does."""
    m = len(f) - 1
    levels, sign_change = [], []
    gamma = 1.0
    d = f
    for j in range(1, m + 1):
        d = [b - a for a, b in zip(d, d[1:], strict=False)]
        gamma *= 0.5 * j / (2 * j - 1)
        total = 0.0
        for x in d:
            total += x * x
        level = math.sqrt(gamma * (total / len(d)))
        if not math.isfinite(level):
            return None
        levels.append(level)
        sign_change.append(min(d) * max(d) < 0)
    for k in range(m - 2):
        window = levels[k : k + 3]
        if max(window) <= 4 * min(window) and sign_change[k]:
            return levels[k], True
    return max(levels[2:]), False


def distinct(values: np.ndarray) -> bool:
    """Whether ``values`` hold two different numbers (``np.unique(values).size > 1``).

    >>> distinct(np.array([0.0, -0.0])), distinct(np.array([1.0, 2.0]))
    (False, True)
    """
    if values.size <= 16:
        v = values.tolist()
        if math.isfinite(sum(v)):  # (a NaN or an inf in v makes the sum one)
            return min(v) < max(v)
    return bool(np.unique(values).size > 1)


def resolution(values: np.ndarray) -> float:
    """Half an ulp of J in the narrowest float dtype that holds every value exactly, else 0.

    A loss that computes in float32 and returns a Python float still shows its precision: its
    values all sit on the float32 grid. ECnoise cannot see that when the quantised values
    happen to fall on a straight line (every difference of order 2+ is then exactly 0), so
    this is a floor under its σ. A constant J says nothing about precision and gives 0.

    >>> resolution(np.float32([1.5, 1.5000001, 1.5000002]).astype(np.float64)) > 1e-8
    True
    >>> resolution(np.array([1.5, 1.5 + 1e-12, 1.5 + 2e-12]))
    0.0
    >>> resolution(np.array([3.0, 4.0, 5.0]) * 2.0**-25) == 2.0**-26  # 1 + erf in float32
    True
    """
    v = np.asarray(values, dtype=np.float64)
    if not distinct(v):
        return 0.0
    own = 0.0
    top = np.abs(v).max()
    if top <= _MAX[np.float32] and not (v.astype(np.float32).astype(np.float64) == v).all():
        return 0.0  # off float32's grid, so off float16's too (the usual float64 J)
    for dtype in (np.float16, np.float32):
        if top > _MAX[dtype]:
            continue
        narrow = v.astype(dtype)
        if (narrow.astype(np.float64) == v).all():
            own = 0.5 * float(np.spacing(np.abs(narrow).max()))
            break
    if not own or dtype == np.float16:
        return own
    # A float32 J rounded at a larger intermediate than itself (float32 ndtr = (1 + erf)/2 far
    # in its tail: J of 1e-7 on multiples of 2^-25) sits on a grid far coarser than its ulp.
    # Its differences share that power of two (or a multiple, when J moved by even steps
    # only): an intermediate of J's size or 1 rounds no coarser than float32 does there.
    coarse = 0.5 * min(quantum(v - v[v.size // 2]), _spacing32(np.abs(v).max()))
    return coarse if coarse > 2 * own else own


_MAX = {np.float16: float(np.finfo(np.float16).max), np.float32: float(np.finfo(np.float32).max)}


def quantum(differences: np.ndarray) -> float:
    """The largest power of two that divides every (finite, non-zero) difference, else 0.

    >>> quantum(np.array([3, -1, 0, 6]) * 2.0**-25) == 2.0**-25
    True
    """
    d = np.abs(np.asarray(differences, dtype=np.float64))
    d = d[np.isfinite(d) & (d > 0)]
    if not d.size:
        return 0.0
    mantissa, exponent = np.frexp(d)  # d = m·2^e, m in [0.5, 1): an integer times 2^(e-53)
    whole = (mantissa * 2.0**53).astype(np.int64)
    low = np.array([int(w & -w).bit_length() - 1 for w in whole])  # its lowest set bit
    return float(2.0 ** int(np.min(exponent - 53 + low)))


def _spacing32(magnitude: float) -> float:
    """float32's spacing at max(1, magnitude): the grid of a float32 intermediate of that size."""
    return float(np.spacing(np.float32(min(max(1.0, magnitude), 3e38))))


def one_jump(values: np.ndarray, grid: float = 0.0, scale: float = 0.0) -> bool:
    """Whether equally spaced ``values`` are a smooth curve plus one jump (a stair of J that
    the line crosses), to float64's rounding (or ``grid``, the rounding of a J that sits on a
    coarser grid): then their differences are not noise.

    float64's rounding is relative to ``scale`` when it is larger than the values: a J that
    cancels to ~0 rounds like the terms it sums, and one value off by that rounding is not a
    stair.

    Rounding noise at 7 points cannot be fitted by a quadratic and one step (2 degrees of
    freedom remain), and a kink (a change of slope, not of value) is not a step either.

    >>> k = np.arange(7.0) - 3
    >>> one_jump(1.0 + 0.01 * k + 0.5 * (k >= 1))  # a stair crossed between k = 0 and 1
    True
    >>> one_jump(1.0 - 0.3 * (k < 0) - 0.5 * (k > 0))  # θ on the edge of two entries' stairs
    True
    >>> one_jump(1.0 + 0.5 * (k >= 1) + 0.5 * (k >= 2))  # two stairs just above θ
    True
    >>> one_jump(1.0 + 0.01 * np.abs(k))  # a kink
    False
    >>> one_jump(1.0 + 1e-9 * np.random.default_rng(0).standard_normal(7))  # noise
    False
    """
    v = np.asarray(values, dtype=np.float64)
    k = np.arange(v.size, dtype=np.float64) - v.size // 2
    size = max(float(np.max(np.abs(v))), scale, np.finfo(np.float64).tiny)
    tol = 64 * np.finfo(np.float64).eps * size
    tol += grid
    smooth = np.stack([np.ones_like(k), k, k * k], axis=1)

    def residual(design: np.ndarray) -> float:
        coef, *_ = np.linalg.lstsq(design, v - v[v.size // 2], rcond=None)
        return float(np.max(np.abs(design @ coef - (v - v[v.size // 2]))))

    if residual(smooth) <= tol:  # smooth to rounding: no jump
        return False
    left, right = v[: v.size // 2], v[v.size // 2 + 1 :]
    if np.all(left == left[0]) and np.all(right == right[0]):
        return True  # constant on each side of θ, θ itself on a stair's edge (two stairs met)
    if not grid and np.count_nonzero(np.diff(v) == 0) >= v.size // 2:
        return True  # exactly flat over half the line, jumps between: stairs (several entries'
        # stairs met near θ), which float64 noise this far above its ulp never is
    return any(residual(np.column_stack([smooth, (k >= k[p]).astype(np.float64)])) <= tol
               for p in range(1, v.size))
