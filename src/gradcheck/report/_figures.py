"""A component's figures on a check's few entries: NumPy's answers without its Python wrappers.

``np.sum`` / ``np.argmax`` / ``np.linalg.norm`` / ``np.unravel_index`` cost a few microseconds
each in Python before any arithmetic, about what the arithmetic on a small check's entries costs;
these call the ufuncs and methods behind them, for the same numbers bit for bit
(``tests/report/test_fixed_cost.py`` holds them to the wrappers').
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def checked_figures(
    numeric: np.ndarray, analytic: np.ndarray, bound: np.ndarray, checked: np.ndarray,
    shape: tuple[int, ...],
) -> dict[str, Any]:
    """``entry_figures`` of flat entries whose judged ones (agree or mismatch) are ``checked``.

    >>> f = checked_figures(np.array([1.0, 2.5]), np.array([1.0, 2.0]), np.array([0.1, 0.1]),
    ...                     np.array([False, True]), (2,))
    >>> f["worst_index"], f["max_abs_error"], f["checked"], f["skipped"]
    ((1,), 0.5, 1, 1)
    """
    count = int(np.count_nonzero(checked))
    diff = np.abs(numeric - analytic)
    excess = np.where(checked, diff / np.maximum(bound, _TINY), -1.0)
    worst = int(excess.argmax()) if excess.size else 0
    return {
        "max_abs_error": float(np.maximum.reduce(diff[checked])) if count else 0.0,
        "worst_index": index(worst, shape),
        "numeric": float(numeric[worst]),
        "analytic": float(analytic[worst]),
        "tolerance": float(bound[worst]),
        "checked": count,
        "skipped": int(checked.size - count),
    }


_TINY = np.finfo(np.float64).tiny  # np.float64: a float32 bound is compared in float64, as before


def flat(x: Any) -> np.ndarray:
    """``np.ravel(x)``; an ndarray's own method where it is one (the same view, no wrapper).

    >>> flat(np.zeros((2, 3))).shape, flat([[1.0], [2.0]]).tolist()
    ((6,), [1.0, 2.0])
    """
    return x.ravel() if type(x) is np.ndarray else np.ravel(x)


def index(i: int, shape: tuple[int, ...]) -> tuple[int, ...]:
    """``np.unravel_index(i, shape)`` as a tuple of ints (written out for 0 or 1 axes).

    >>> index(0, ()), index(3, (5,)), index(4, (2, 3))
    ((), (3,), (1, 1))
    """
    if len(shape) <= 1 and 0 <= i < (shape[0] if shape else 1):
        return (i,) if shape else ()
    return tuple(int(k) for k in np.unravel_index(i, shape))


def float64(x: np.ndarray) -> np.ndarray:
    """``x`` flat as contiguous float64 (a copy only where it is not already).

    >>> float64(np.ones((2, 2), np.float32)).dtype, float64(np.arange(3.0)).shape
    (dtype('float64'), (3,))
    """
    out = flat(x)
    if out.dtype == np.float64 and out.flags.c_contiguous:
        return out
    return out.astype(np.float64)


def norm(x: np.ndarray) -> float:
    """``np.linalg.norm`` of a flat contiguous float64 array, as it computes it (the square
    root of ``x.dot(x)``) without its Python wrapper.

    >>> norm(np.array([3.0, 4.0]))
    5.0
    """
    return math.sqrt(x.dot(x))
