"""The screen: ``core._directional``'s tests along directions of every tensor at once.

All parameters are concatenated into one vector θ and re-scaled, u_i = θ_i / D_i with
D_i = √(N / (T·n_t)) for an entry of tensor t (T tensors, N entries): a Rademacher direction
of u (±1/√N) then moves every tensor by the same norm (1/√T of the step), whatever its size,
so a wrong bias vector of 10 entries weighs as much as a wrong weight matrix of 10,000. In u
the gradient is D·g and its allowed precision D·a, and ``locate`` runs unchanged: the tensor
test (h and h/2, Richardson, 4 calls a direction) with the bound of ``check``, and on a failure
the bisection, whose flat indices name the tensors and entries.

The noise σ of J is measured by ECnoise on 7 values along a random line (``core._noise``),
floored by the grid J's values sit on and by float64's rounding of J. J's relative noise σ/|J|
is a property of how J is computed (its dtype, its sums) more than of θ, so the monitor
measures it on every ``NOISE_EVERY``-th check only and reuses it in between (6 calls saved).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from gradcheck.core._directional import Located, calls_for, locate
from gradcheck.core._evaluate import to_scalar
from gradcheck.core._noise import POINTS, noise_level, resolution
from gradcheck.core._schemes import SCHEMES, entry_steps, typical_scale
from gradcheck.core._tolerance import analytic_bound
from gradcheck.core._tree import Tree

EPS64 = float(np.finfo(np.float64).eps)
NOISE_STEP = EPS64 ** (1 / 3)  # relative step of the noise line, as in the check's probe
SCREEN_CALLS = 1 + 8 + 1  # J(θ), 2 directions, J(θ) again; + the noise line when measured
LINE_CALLS = POINTS - 1
NOISE_EVERY = 8  # checks between two measurements of J's noise (the first check measures it)


@dataclass(frozen=True)
class Screened:
    """What one screen found: ``located`` in the joint vector, and the tensors it names."""

    located: Located
    calls: int
    sigma: float
    j0: float
    culprits: dict[str, np.ndarray]  # tensor name -> flat indices isolated by bisection


class Joint:
    """J along directions of the re-scaled, concatenated parameters (an evaluator for
    ``locate``); every call is made on fresh float64 copies, never on the user's arrays."""

    def __init__(self, loss: Callable[[Any], Any], tree: Tree, grads: list[np.ndarray]) -> None:
        self.loss, self.tree = loss, tree
        self.sizes = [leaf.size for leaf in tree.leaves]
        self.ends = np.cumsum(self.sizes)
        self.theta = np.concatenate([np.asarray(x, np.float64).ravel() for x in tree.leaves])
        n, t = self.theta.size, len(self.sizes)
        self.scale = np.concatenate([np.full(k, np.sqrt(n / (t * k))) for k in self.sizes])
        self.g = np.concatenate([np.asarray(x, np.float64).ravel() for x in grads]) * self.scale
        self.slices = [(int(b - k), int(b), leaf.shape)
                       for b, k, leaf in zip(self.ends, self.sizes, tree.leaves, strict=True)]
        self.calls = 0

    def at(self, offset: np.ndarray | None = None) -> float:
        """J at θ + offset (θ-space), on copies."""
        point = self.theta.copy() if offset is None else self.theta + offset
        leaves = [point[a:b].reshape(shape) for a, b, shape in self.slices]
        self.calls += 1
        return to_scalar(self.loss(self.tree.rebuild(leaves)))

    def along(self, t: int, direction: np.ndarray, steps: np.ndarray) -> np.ndarray:
        """J at u + s·direction for each s (``locate``'s evaluator protocol; t is always 0)."""
        move = self.scale * direction
        return np.array([self.at(s * move) for s in np.asarray(steps, np.float64)])

    def tensor_of(self, flat: np.ndarray) -> dict[str, np.ndarray]:
        """Flat indices of the joint vector, grouped by tensor name (entries within it)."""
        found: dict[str, np.ndarray] = {}
        where = np.searchsorted(self.ends, flat, side="right")
        for t in np.unique(where):
            starts = self.ends[t] - self.sizes[t]
            found[self.tree.names[t]] = np.sort(flat[where == t] - starts)
        return found


def screen(
    ev: Joint, dtypes: list[np.dtype], rng: np.random.Generator, *, calls: int | None = 8,
    noise: float | None = None,
) -> Screened:
    """Directional tests of ``ev``'s gradient, in at most ``calls`` calls after J(θ) and the
    noise line (None: enough to bisect down to 2 culprit entries). ``noise``: J's relative
    noise σ/|J| measured by an earlier check, reused instead of the line (6 calls)."""
    start = ev.calls
    j0 = ev.at()
    n = ev.theta.size
    u = ev.theta / ev.scale
    if noise is None or not j0:  # its own generator: the directions do not depend on it
        line = np.random.default_rng(rng.bit_generator.seed_seq.spawn(1)[0])
        sigma = _noise_line(ev, j0, line.choice((-1.0, 1.0), size=n) / np.sqrt(n))
    else:
        sigma = max(noise * abs(j0), EPS64 * abs(j0))
    relative = float(np.clip(sigma / abs(j0), EPS64, 1e-2)) if j0 else EPS64
    h = float(np.median(entry_steps(SCHEMES["central"], relative, ev.theta)))
    g = ev.g / ev.scale
    grad_scale = float(np.max(np.abs(g), initial=0.0))
    a = np.concatenate([
        analytic_bound(part, np.dtype(d) if np.dtype(d).kind == "f" else np.dtype(np.float64),
                       {}, {}, grad_scale)
        for part, d in zip(np.split(g, ev.ends[:-1]), dtypes, strict=True)
    ]) * ev.scale
    limit = calls_for(n, 2) if calls is None else calls
    found = locate(ev, 0, u, ev.g, a, h, sigma, rng, max_calls=limit)
    return Screened(found, ev.calls - start, sigma, j0, ev.tensor_of(found.culprits))


def _noise_line(ev: Joint, j0: float, v: np.ndarray) -> float:
    """σ of J by ECnoise on J(u + k·δ·v), k = -3..3 (6 calls), floored by J's grid and by
    float64's rounding of J."""
    n = ev.theta.size
    delta = NOISE_STEP * max(1.0, typical_scale(ev.theta)) * np.sqrt(n)
    k = (np.arange(POINTS) - POINTS // 2).astype(np.float64)
    values = np.insert(ev.along(0, v, delta * k[k != 0]), POINTS // 2, j0)
    sigma = noise_level(values)[0] if np.all(np.isfinite(values)) else 0.0
    return max(sigma, resolution(values), EPS64 * abs(j0))
