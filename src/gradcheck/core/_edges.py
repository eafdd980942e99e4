"""Entries whose stencil leaves the loss's domain: J(θ ± h) is NaN or inf there.

``asin`` at 0.9999, ``logit`` near 0, ``sqrt`` just above 0 in float32 (where the step is large):
the central difference needs J on both sides. For such an entry we shrink the step (h/4, h/16,
...) and, where one side stays outside the domain, use the one-sided difference toward the valid
side; each estimate is extrapolated from two steps (Richardson) and judged with the truncation
and rounding it carries. Only when no step on either side gives finite values is it an error,
naming the entry.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from gradcheck._errors import NonFiniteError
from gradcheck.core._schemes import derivative_weights
from gradcheck.core._tolerance import SAFETY
from gradcheck.report._model import AGREES_INT as AGREES
from gradcheck.report._model import MISMATCH_INT as MISMATCH

LEVELS = 10  # steps h, h/4, ..., h/4**9
# ... and, while no stencil has reached its asymptotic regime (an entry far closer to the edge
# than the tensor's step: sqrt at 1e-12 with steps of 6e-6), on down to this many levels, as
# long as the step stays 64 spacings of the entry above its rounding.
DEEP_LEVELS = 40
# Stencils as multiples of the step: both sides, then one side (second order, with J(θ)).
STENCILS = (
    ("central", (-1.0, 1.0)),
    ("one-sided +", (0.0, 1.0, 2.0)),
    ("one-sided −", (0.0, -1.0, -2.0)),
)


def outside(values: dict[float, np.ndarray]) -> np.ndarray:
    """Positions (into the evaluated entries) where some node's J is not finite."""
    finite = None  # finite at every node: np.all over the stacked nodes, one node at a time
    for c, v in values.items():
        if c != 0:
            finite = np.isfinite(v.real) if finite is None else finite & np.isfinite(v.real)
    if finite is None:  # (no node moves: np.stack of nothing)
        raise ValueError("need at least one array to stack")
    return (~finite).nonzero()[0]  # (np.flatnonzero of a 1-d mask)


def repair(
    ev: Any,
    t: int,
    stepper: Any,
    entries: np.ndarray,
    j0: float,
    sigma: float,
    g: np.ndarray,
    a: np.ndarray,
    numeric: np.ndarray,
    bound: np.ndarray,
    flags: np.ndarray,
) -> dict[int, str]:
    """Judge each flat entry in ``entries`` with the largest finite stencil; ``{entry: how}``."""
    done: dict[int, str] = {}
    for i in (int(e) for e in entries):
        found = _judge_one(ev, t, i, stepper, j0, sigma, float(g[i]), float(a[i]))
        if found is None:
            raise NonFiniteError(
                f"loss(params) is NaN/inf on both sides of {ev.ws.names[t]} entry {i} (flat) for "
                f"every step from {_step(stepper, i):.3g} down to {_step(stepper, i) / 4 ** (LEVELS - 1):.3g}: "
                "that entry sits on the edge of the loss's domain (or the loss breaks there), "
                "so no finite difference exists. Move it inside the domain, or check the loss "
                "there."
            )
        numeric[i], bound[i], ok, done[i] = found
        if ok is None:  # no step reached the asymptotic regime: no verdict, either way
            numeric[i], bound[i], flags[i] = np.nan, np.nan, 0
            done[i] += " (no step small enough to judge it: left unjudged)"
            continue
        flags[i] = AGREES if ok else MISMATCH
    return done


def _step(stepper: Any, i: int) -> float:
    """The first-pass step of entry i (the stepper holds one step per entry)."""
    return float(stepper.h[i])


def _judge_one(
    ev: Any, t: int, i: int, stepper: Any, j0: float, sigma: float, g: float, a: float
) -> tuple[float, float, bool | None, str] | None:
    """Shrink the step until a stencil is finite *and* in its asymptotic regime: estimates at
    s, s/2, s/4 whose differences shrink 4x (second order), or differ only by rounding. Near
    an edge the function's own length scale is the distance to the edge, so the first finite
    step is often still too coarse (sqrt-like growth) and is not trusted."""
    theta = float(stepper.theta[i])
    fallback = None
    floor = 64 * float(np.spacing(np.abs(np.asarray(theta, dtype=stepper.dtype))))
    for level in range(DEEP_LEVELS):
        h = _step(stepper, i) / 4**level
        if level >= LEVELS and (fallback is None or h / 4 < floor):
            break  # nothing finite in LEVELS levels (an error), or as small as it can go
        for how, nodes in STENCILS:
            if how == "central" and level == 0:
                continue  # the first pass already found it outside the domain
            e = [
                _estimate(ev, t, i, theta, stepper.dtype, j0, sigma, nodes, h / 2**k)
                for k in range(3)
            ]
            if any(x is None for x in e):
                continue
            (n1, _), (n2, r2), (n3, r3) = e  # type: ignore[misc]
            d1, d2 = n1 - n2, n2 - n3
            noise = SAFETY * (r2 + r3)
            step = "h" if level == 0 else f"h/{4**level}"
            n_star = n3 + d2 / 3.0  # both stencils are second order (Richardson)
            tol = SAFETY * (abs(d2) / 3.0 + (4.0 * r3 + r2) / 3.0) + a
            found = (n_star, tol, abs(n_star - g) <= tol, f"{how}, step {step}")
            if abs(d2) <= noise or (d2 != 0 and 2.0 <= d1 / d2 <= 8.0):
                return found
            fallback = fallback or (n_star, tol, None, f"{how}, step {step}")
            break  # this level's stencil is finite but too coarse: go to a smaller step
    return fallback


def _estimate(
    ev: Any,
    t: int,
    i: int,
    theta: float,
    dtype: np.dtype,
    j0: float,
    sigma: float,
    nodes: Sequence[float],
    h: float,
) -> tuple[float, float] | None:
    """(derivative, its rounding error) on ``nodes``·h, or None if a J is not finite there."""
    points = np.array([theta + c * h for c in nodes]).astype(dtype).astype(np.float64)
    offsets = points - theta
    moving = [k for k, c in enumerate(nodes) if c != 0]
    if np.any(offsets[moving] == 0) or len(set(offsets.tolist())) < len(nodes):
        return None  # the step rounds away in the loss's dtype
    js = np.full(len(nodes), j0, dtype=np.float64)
    js[moving] = np.real(ev.coordinates(t, np.full(len(moving), i), points[moving]))
    if not np.all(np.isfinite(js)):
        return None
    w = derivative_weights(offsets[:, None])[:, 0]
    return float(w @ js), float(sigma * np.sqrt(np.sum(w**2)))


def base_value(compute: Any, tree: Any) -> float:
    """J(θ) from ``compute()``; if it is not finite and θ holds ±inf/NaN entries, the error
    names the first such entry (those entries are only left alone when J stays finite)."""
    try:
        return compute()
    except NonFiniteError as error:
        for name, leaf in zip(tree.names, tree.leaves, strict=True):
            bad = ~np.isfinite(leaf)
            if bad.any():
                index = tuple(int(i) for i in np.argwhere(bad)[0])
                raise NonFiniteError(
                    f"params['{name}'] holds {leaf[index]} at index {index} "
                    f"({int(bad.sum())} non-finite entries), and J is not finite there ({error}). "
                    "Non-finite entries are left unchecked only when the loss stays finite; "
                    "check the parameters for overflow or 0/0."
                ) from error
        raise
