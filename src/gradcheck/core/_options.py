"""Keyword options of ``check``, validated once at the boundary, with errors listing valid values."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from gradcheck._errors import OptionError

SCHEMES = ("central", "forward", "backward", "richardson", "complex")


@dataclass(frozen=True)
class Options:
    eps: float | Mapping[str, float] | None
    scheme: str
    seed: int
    rtol: dict[np.dtype, float]
    atol: dict[np.dtype, float]


def validate(
    *, eps: Any, scheme: Any, seed: Any, rtol: Any = None, atol: Any = None
) -> Options:
    if scheme not in SCHEMES:
        raise OptionError(
            f"scheme={scheme!r} is not a known scheme. Valid values: "
            + ", ".join(repr(s) for s in SCHEMES)
            + "."
        )
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise OptionError(f"seed={seed!r} must be an int (it seeds gradcheck's own generator).")
    return Options(
        eps=_check_eps(eps),
        scheme=scheme,
        seed=int(seed),
        rtol=_by_dtype(rtol, "rtol"),
        atol=_by_dtype(atol, "atol"),
    )


def _positive(value: Any, what: str) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise OptionError(f"{what}={value!r} must be a positive float.") from None
    if not (math.isfinite(x) and x > 0):
        raise OptionError(
            f"{what}={value!r} must be a positive, finite float (for example 1e-6); "
            "or leave eps=None to let gradcheck choose it per parameter."
        )
    return x


def _check_eps(eps: Any) -> float | dict[str, float] | None:
    if eps is None:
        return None
    if isinstance(eps, Mapping):
        return {str(k): _positive(v, f"eps[{k!r}]") for k, v in eps.items()}
    return _positive(eps, "eps")


def _by_dtype(table: Any, what: str) -> dict[np.dtype, float]:
    """``{np.float32: 1e-5}`` or ``{"float32": 1e-5}``; a bare float applies to every dtype."""
    if table is None:
        return {}
    if not isinstance(table, Mapping):
        value = float(table) if table == 0 else _positive(table, what)
        return {np.dtype(d): value for d in ("float16", "float32", "float64")}
    out: dict[np.dtype, float] = {}
    for key, value in table.items():
        try:
            dtype = np.dtype(key)
        except TypeError:
            raise OptionError(
                f"{what} key {key!r} is not a dtype. Use keys such as np.float32 or 'float64'."
            ) from None
        if dtype.kind != "f":
            raise OptionError(f"{what} key {key!r} must be a floating dtype (float16/32/64).")
        out[dtype] = float(value) if value == 0 else _positive(value, f"{what}[{key!r}]")
    return out
