"""How much disagreement is noise: the safety factor and the analytic-precision tables (as data).

An entry is judged wrong only when |numeric − analytic| exceeds

    SAFETY · (rounding + truncation of the numeric estimate)  +  rtol[d] · (|g_i| + rms(g)) + atol[d]

The first term is *measured* for this loss at this θ (see ``_noise`` and the refinement in
``_check``). The second is the precision of the analytic gradient itself, computed by the
user's backprop in dtype d: a sum of K terms in precision u is off by about √K·u relative to
the typical magnitude of the tensor, hence the rms term.
"""

from __future__ import annotations

import functools
import math

import numpy as np

SAFETY = 10.0
# Telling a kink from smooth curvature is asked only of entries that already failed the smooth
# test (and a kink is accepted only if g lies between the one-sided slopes), so it needs less.
KINK_SAFETY = 3.0

DEFAULT_RTOL: dict[np.dtype, float] = {
    np.dtype(np.float16): 1e-2,
    np.dtype(np.float32): 1e-5,
    np.dtype(np.float64): 1e-9,
}
DEFAULT_ATOL: dict[np.dtype, float] = {
    np.dtype(np.float16): 0.0,
    np.dtype(np.float32): 0.0,
    np.dtype(np.float64): 0.0,
}

# Rounding allowed to an analytic entry that cancels to ~0, in ulps of the model's largest entry.
FLOOR_ULPS = 16.0

# Above this measured relative noise, J is computed in less than float64 precision internally.
LOW_PRECISION = 1e-11


def analytic_bound(
    g: np.ndarray,
    dtype: np.dtype,
    rtol: dict[np.dtype, float],
    atol: dict[np.dtype, float],
    model_scale: float = 0.0,
) -> np.ndarray:
    """rtol[d]·(|g_i| + rms(g)) + atol[d] + FLOOR_ULPS·u_d·model_scale + the smallest subnormal.

    The last term covers a gradient that is 0 in exact arithmetic but computed as a sum of
    cancelling terms in dtype d (a bias before batch norm, a hinge with no active margin): its
    rounding scales with the terms, not the result. The terms are not visible, so the largest
    analytic entry of the model (``model_scale``) stands in for them: 16 ulps of it is
    1.9e-6·max|g| in float32 and 3.6e-15·max|g| in float64.
    """
    r = rtol.get(dtype, DEFAULT_RTOL.get(dtype, DEFAULT_RTOL[np.dtype(np.float32)]))
    a = atol.get(dtype, DEFAULT_ATOL.get(dtype, 0.0))
    if not g.size:
        rms = 0.0
    elif g.ndim == 1 and g.dtype == np.float64:  # np.mean's add.reduce over the count
        rms = math.sqrt(float(np.add.reduce(g * g)) / g.size)
    else:
        rms = float(np.sqrt(np.mean(np.square(g))))
    eps, subnormal = _limits(dtype)
    floor = FLOOR_ULPS * eps * model_scale
    # A true value below the dtype's smallest subnormal (6e-8 in float16) can only be stored as 0.
    return r * (np.abs(g) + rms) + a + floor + subnormal


@functools.lru_cache(maxsize=32)
def _limits(dtype: np.dtype) -> tuple[float, float]:
    """The dtype's eps and smallest subnormal, as floats (np.finfo, looked up once)."""
    info = np.finfo(dtype)
    return float(info.eps), float(info.smallest_subnormal)
