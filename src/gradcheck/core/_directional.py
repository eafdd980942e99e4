"""Random-direction checks of a tensor, and group testing (bisection) down to the wrong entries.

Along a unit direction v restricted to an index set S of tensor t, the central difference
(J(θ+hv) − J(θ−hv)) / 2h estimates the directional derivative ∇J·v, to be compared with g·v.
We take it at h and h/2 and extrapolate (Richardson), so the truncation error is measured, not
guessed; the rounding error is σ/(√2·h) for the measured noise σ of J. v is Rademacher
(±1/√|S|), so every entry of S weighs the same and a single wrong entry i shifts g·v by
|δ_i|/√|S|: it cannot hide behind a small random weight.

A set that fails is split in two halves, each tested with its own fresh direction, and the
failing halves are split again: k wrong entries among n are found in O(k log n) tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from gradcheck.core._tolerance import SAFETY

EPS64 = float(np.finfo(np.float64).eps)
STEPS = np.array([-1.0, -0.5, 0.5, 1.0])  # multiples of h: 4 loss calls per test
DIRECTIONS = 2  # independent directions for the whole tensor before it is declared right
MAX_CULPRITS = 8  # single entries isolated per tensor before the search stops


@dataclass(frozen=True)
class Located:
    """The outcome of directional tests on one tensor."""

    failed: bool  # some whole-tensor direction disagreed with g·v
    culprits: np.ndarray  # flat indices isolated by bisection, in the order found
    tests: int  # directional tests run (4 loss calls each)
    unresolved: int  # failing sets whose halves both passed (cancelling errors, kinks)
    worst: float  # the largest |numeric − g·v| / bound seen at the tensor level


def locate(
    ev: Any,
    t: int,
    theta: np.ndarray,
    g: np.ndarray,
    a: np.ndarray,
    h: float,
    sigma: float,
    rng: np.random.Generator,
    *,
    max_tests: int = 400,
) -> Located:
    """Test tensor ``t`` along random directions; bisect a failure down to single entries.

    Args:
      ev: an evaluator (``along(t, direction, steps)``).
      t: the tensor's position; ``theta`` its values and ``g`` its analytic gradient (flat).
      a: the per-entry precision allowed to g (``analytic_bound``).
      h: the step; ``sigma`` the measured noise of J.
      rng: the generator of the directions (same seed, same directions).
      max_tests: at most this many tests (4 loss calls each).

    Returns:
      A ``Located`` with the culprit indices, if any.
    """
    n = theta.size
    probe = _Probe(ev, t, theta, g, a, h, sigma, rng)
    everything = np.arange(n)
    scores = [probe.score(everything) for _ in range(DIRECTIONS if n > 1 else 1)]
    worst = max(scores)
    if worst <= 1.0:
        return Located(False, np.zeros(0, dtype=np.int64), probe.tests, 0, worst)
    culprits: list[int] = []
    unresolved = 0
    stack = [everything]
    while stack and len(culprits) < MAX_CULPRITS and probe.tests < max_tests:
        s = stack.pop()
        if s.size == 1:
            culprits.append(int(s[0]))
            continue
        halves = np.array_split(s, 2)
        failing = [half for half in halves if probe.score(half) > 1.0]
        if not failing:  # a second look with fresh directions before giving up on this set
            failing = [half for half in halves if probe.score(half) > 1.0]
        if not failing:
            unresolved += 1
        stack.extend(reversed(failing))  # depth first: reach an entry in ~log2(n) steps
    return Located(True, np.array(culprits, dtype=np.int64), probe.tests, unresolved, worst)


class _Probe:
    """One directional test of an index set: |numeric − g·v| / tolerance (> 1 means wrong)."""

    def __init__(
        self,
        ev: Any,
        t: int,
        theta: np.ndarray,
        g: np.ndarray,
        a: np.ndarray,
        h: float,
        sigma: float,
        rng: np.random.Generator,
    ) -> None:
        self.ev, self.t, self.theta, self.g, self.a = ev, t, theta, g, a
        self.h, self.sigma, self.rng = h, sigma, rng
        self.tests = 0

    def score(self, s: np.ndarray) -> float:
        self.tests += 1
        v = np.zeros(self.theta.size)
        v[s] = self.rng.choice((-1.0, 1.0), size=s.size) / np.sqrt(s.size)
        h = self.h
        j = self.ev.along(self.t, v, STEPS * h)
        n_h = (j[3] - j[0]) / (2 * h)
        n_2 = (j[2] - j[1]) / h
        n_star = n_2 + (n_2 - n_h) / 3.0  # Richardson: the h² term cancels
        rounding = self.sigma / h * (4 * np.sqrt(2.0) + np.sqrt(0.5)) / 3.0
        # θ + s·v is rounded to float64: the real move differs by ≤ u·|θ_i| per entry.
        moved = EPS64 * float(np.sum(np.abs(self.g[s] * self.theta[s]))) / h
        bound = SAFETY * (abs(n_h - n_2) / 3.0 + rounding + moved) + float(
            np.sum(np.abs(v[s]) * self.a[s])
        )
        diff = abs(n_star - float(self.g[s] @ v[s]))
        return diff / max(bound, np.finfo(np.float64).tiny)
