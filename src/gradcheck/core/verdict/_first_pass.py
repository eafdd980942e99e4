"""Stage 4, the first pass: J at θ ± h along each selected entry, the finite-difference estimate,
and its comparison with the analytic value within the rounding it carries.

The whole test of one entry reads on one screen: the estimate is Σ w_c·J(θ + c·h·e_i) with the
scheme's weights for the offsets J actually saw (``estimate``), it carries a rounding error
σ·‖w‖₂, and the entry agrees when |estimate − g| ≤ SAFETY · rounding + the analytic allowance
(``judge``). Values are asked in blocks, so that a progress display has a rate and a Ctrl-C
keeps the blocks done (``evaluate_nodes`` returns them with how many coordinates are done).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from gradcheck.core._coords import Capped
from gradcheck.core._progress import Progress
from gradcheck.core._schemes import Scheme, derivative_weights
from gradcheck.core._tolerance import SAFETY
from gradcheck.core.verdict._records import EPS64, Stepper
from gradcheck.report._model import entry_states


@dataclass(frozen=True)
class Nodes:
    """J at θ + c·h·e_i for each node c, aligned with the entries asked; ``done`` of them are
    known (fewer than all after a Ctrl-C)."""

    values: dict[float, np.ndarray]
    done: int
    stopped: bool = False


def evaluate_nodes(
    ev: Capped,
    t: int,
    idx: np.ndarray,
    stepper: Stepper,
    nodes: Sequence[float],
    j0: float,
    complex_step: bool,
    progress: Progress | None = None,
) -> Nodes:
    """J at θ + c·h·e_i for each node c and entry i of ``idx``, in blocks (progress, Ctrl-C)."""
    if progress is not None:  # the calls themselves are counted by the evaluator
        progress.set_phase("first pass")
    kind = np.complex128 if complex_step else np.float64
    values = {c: np.full(len(idx), j0) if c == 0 else np.empty(len(idx), kind) for c in nodes}
    moving = [c for c in nodes if c != 0]
    block = getattr(ev, "block", max(len(idx), 1))
    first = max(1, block // 16)  # a small first block: progress has a rate (an ETA) early
    for lo, hi in blocks(len(idx), first, block):
        sub = idx[lo:hi]
        if complex_step:
            x = [stepper.theta[sub] + 1j * c * stepper.h[sub] for c in moving]
        else:
            x = [stepper.point(sub, c) for c in moving]
        try:  # one request for every node of the block: fewer round trips to workers
            js = ev.coordinates(t, np.tile(sub, len(moving)), np.concatenate(x))
        except KeyboardInterrupt:
            return Nodes(values, lo, stopped=True)
        for k, c in enumerate(moving):
            values[c][lo : lo + len(sub)] = js[k * len(sub) : (k + 1) * len(sub)]
    return Nodes(values, len(idx))


def blocks(n: int, first: int, block: int) -> list[tuple[int, int]]:
    """Bounds of the blocks of ``n`` entries: the first block of ``block`` is split after
    ``first`` entries (an early rate for the progress display); the grid stays ``block``.

    >>> blocks(10, 2, 4)
    [(0, 2), (2, 4), (4, 8), (8, 10)]
    """
    bounds = sorted({0, min(first, n), *range(block, n, block), n})
    return [(lo, hi) for lo, hi in zip(bounds, bounds[1:], strict=False) if hi > lo]


def estimate(
    scheme: Scheme,
    stepper: Stepper,
    idx: np.ndarray,
    values: dict[float, np.ndarray],
    sigma: float,
    complex_step: bool,
    nodes: Sequence[float] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The derivative estimate on ``nodes`` and the rounding error it carries (σ·‖w‖₂)."""
    if complex_step:
        numeric = np.imag(values[1.0][: len(idx)]) / stepper.h[idx]
        return numeric, 4 * EPS64 * np.abs(numeric)
    nodes = scheme.nodes if nodes is None else nodes
    offsets = np.stack([stepper.offset(idx, c) for c in nodes])
    weights = derivative_weights(offsets)
    numeric = sum(w * np.real(values[c][: len(idx)]) for w, c in zip(weights, nodes, strict=True))
    return np.asarray(numeric), sigma * np.sqrt(np.sum(weights**2, axis=0))


def judge(
    scheme: Scheme,
    stepper: Stepper,
    idx: np.ndarray,
    values: dict[float, np.ndarray],
    sigma: float,
    g: np.ndarray,
    a: np.ndarray,
    out: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    """First-pass estimate and verdict for the entries ``idx`` (``values`` aligned with idx),
    written into ``out`` = (numeric, bound, flags)."""
    numeric, bound, flags = out
    value, rounding = estimate(scheme, stepper, idx, values, sigma, scheme.name == "complex")
    numeric[idx] = value
    bound[idx] = SAFETY * rounding + a[idx]
    flags[idx] = entry_states(np.abs(value - g[idx]) <= bound[idx])


def spread(v: np.ndarray, idx: np.ndarray, n: int) -> np.ndarray:
    """Values aligned with ``idx`` placed in a length-n array (NaN elsewhere).

    >>> spread(np.array([1.0]), np.array([2]), 3)
    array([nan, nan,  1.])
    """
    if len(idx) == n:
        return v
    out = np.full(n, np.nan, dtype=v.dtype)
    out[idx] = v
    return out
