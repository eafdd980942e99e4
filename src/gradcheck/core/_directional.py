"""Random-direction checks of a tensor, and group testing (bisection) down to the wrong entries.

Along a unit direction v of tensor t, the central difference (J(θ+hv) − J(θ−hv)) / 2h estimates
the directional derivative ∇J·v, to be compared with g·v. The tensor-level test takes it at h
and h/2 (4 loss calls) and extrapolates (Richardson), so the truncation error is measured, not
guessed; the rounding error is σ/(√2·h) for the measured noise σ of J. v is Rademacher
(±1/√n), so every entry weighs the same and a single wrong entry i shifts g·v by |δ_i|/√n: it
cannot hide behind a small random weight.

A failing direction is then bisected *on its own sign pattern*: the test of an index set S uses
v restricted to S (not renormalised), so the residual R_S = D_S − g_S·v_S of a set is the sum of
its halves' residuals, R_S = R_A + R_B, to first order. One half is measured (2 calls: central
difference at h, its truncation bounded by the tensor's measured one), the other is implied
(R_B = R_S − R_A, bound b_S + b_A). A half whose residual is explained by its sibling is never
tested; an implied half whose evidence grows weak (|R| < 4·bound) is measured before splitting;
a set whose halves both look right is re-measured before giving up. One wrong entry among n is
found in about log2(n) tests of 2 calls, since the residual that made the tensor fail is
conserved down the tree and cannot cancel on the way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from gradcheck.core._tolerance import SAFETY

EPS64 = float(np.finfo(np.float64).eps)
STEPS = np.array([-1.0, -0.5, 0.5, 1.0])  # multiples of h: the tensor-level test (4 calls)
PAIR = np.array([-1.0, 1.0])  # a bisection test (2 calls)
DIRECTIONS = 2  # independent directions for the whole tensor before it is declared right
MAX_CULPRITS = 8  # single entries isolated per tensor before the search stops
WEAK = 4.0  # an implied residual under this many bounds is measured before it is split
TOP_CALLS = 4 * DIRECTIONS  # calls of the tensor-level tests of a tensor that passes


@dataclass(frozen=True)
class Located:
    """The outcome of directional tests on one tensor."""

    failed: bool  # some whole-tensor direction disagreed with g·v
    culprits: np.ndarray  # flat indices isolated by bisection, in the order found
    tests: int  # directional tests run
    unresolved: int  # failing sets that could not be narrowed (cancelling errors, kinks)
    worst: float  # the largest |numeric − g·v| / bound seen at the tensor level
    calls: int = 0  # loss calls the tests made
    complete: bool = True  # False when the call allowance stopped the search early


def calls_for(n: int, culprits: int = 2) -> int:
    """Loss calls ``locate`` needs on an n-entry tensor to isolate ``culprits`` wrong entries.

    >>> calls_for(1_000_000, 1)
    52
    """
    depth = max(int(np.ceil(np.log2(max(n, 1)))), 0)
    return TOP_CALLS + culprits * 2 * (depth + 2)


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
    max_calls: int | None = None,
) -> Located:
    """Test tensor ``t`` along random directions; bisect a failure down to single entries.

    Args:
      ev: an evaluator (``along(t, direction, steps)``).
      t: the tensor's position; ``theta`` its values and ``g`` its analytic gradient (flat).
      a: the per-entry precision allowed to g (``analytic_bound``).
      h: the step; ``sigma`` the measured noise of J.
      rng: the generator of the directions (same seed, same directions).
      max_tests: at most this many tests.
      max_calls: at most this many loss calls (None: no limit beyond ``max_tests``).

    Returns:
      A ``Located`` with the culprit indices, if any.
    """
    n = theta.size
    limit = float("inf") if max_calls is None else max_calls
    probe = _Probe(ev, t, theta, g, a, h, sigma)
    worst, failing = _first_failure(probe, rng, n, limit)
    if failing is None:
        complete = probe.calls >= min(limit, len(STEPS) * (DIRECTIONS if n > 1 else 1))
        return Located(False, np.zeros(0, np.int64), probe.tests, 0, worst, probe.calls, complete)
    v, residual, bound, probe.truncation = failing
    culprits, unresolved, complete = _bisect(probe, v, residual, bound, max_tests, limit)
    return Located(
        True, np.array(culprits, np.int64), probe.tests, unresolved, worst, probe.calls, complete
    )


def _first_failure(
    probe: _Probe, rng: np.random.Generator, n: int, limit: float
) -> tuple[float, tuple[np.ndarray, float, float, float] | None]:
    """Random ±1 directions until one fails: (the worst score, the failing test or None)."""
    worst = 0.0
    for _ in range(DIRECTIONS if n > 1 else 1):
        if probe.calls + len(STEPS) > limit:
            break
        v = rng.choice((-1.0, 1.0), size=n) / np.sqrt(n)
        score, residual, bound, truncation = probe.full(v)
        worst = max(worst, score)
        if score > 1.0:
            return worst, (v, residual, bound, truncation)
    return worst, None


def _bisect(
    probe: _Probe, v: np.ndarray, residual: float, bound: float, max_tests: int, limit: float
) -> tuple[list[int], int, bool]:
    """Bisect the failing direction down to single entries: (culprits, sets left unresolved,
    whether the search ended before the allowance)."""
    culprits: list[int] = []
    unresolved = 0
    stack: list[tuple[np.ndarray, float, float, bool]] = [(np.arange(v.size), residual, bound, True)]

    def affordable() -> bool:
        return probe.tests < max_tests and probe.calls + len(PAIR) <= limit

    complete = True
    while stack and len(culprits) < MAX_CULPRITS:
        s, r, b, measured = stack.pop()
        if s.size == 1:
            culprits.append(int(s[0]))
            continue
        if not affordable():
            complete = False
            break
        if not measured and abs(r) < WEAK * b:  # weak implied evidence: look before splitting
            r, b = probe.pair(v, s)
            if not residual_fails(r, b):
                unresolved += 1
                continue
            if not affordable():
                complete = False
                break
        half, other = np.array_split(s, 2)
        r_a, b_a = probe.pair(v, half)
        kids = [(half, r_a, b_a, True), (other, r - r_a, b + b_a, False)]
        bad = [k for k in kids if residual_fails(k[1], k[2])]
        if not bad and affordable():  # neither half explains S: measure the other one too
            r_b, b_b = probe.pair(v, other)
            bad = [k for k in ((other, r_b, b_b, True),) if residual_fails(k[1], k[2])]
        if not bad:
            unresolved += 1
        stack.extend(reversed(bad))  # depth first: reach an entry in ~log2(n) tests
    complete = complete and (not stack or len(culprits) >= MAX_CULPRITS)
    return culprits, unresolved, complete


def residual_fails(residual: float, bound: float) -> bool:
    """A residual beyond its bound (the bound never below the smallest positive float)."""
    return abs(residual) > max(bound, np.finfo(np.float64).tiny)


class _Probe:
    """Directional tests of index sets of one tensor; residuals and their bounds."""

    def __init__(
        self,
        ev: Any,
        t: int,
        theta: np.ndarray,
        g: np.ndarray,
        a: np.ndarray,
        h: float,
        sigma: float,
    ) -> None:
        self.ev, self.t, self.theta, self.g, self.a = ev, t, theta, g, a
        self.h, self.sigma = h, sigma
        self.tests = self.calls = 0
        self.truncation = 0.0  # of a step-h central difference, measured at the tensor level

    def _along(self, v: np.ndarray, steps: np.ndarray) -> np.ndarray:
        self.tests += 1
        self.calls += len(steps)
        return self.ev.along(self.t, v, steps * self.h)

    def _fixed(self, v: np.ndarray, s: np.ndarray | slice) -> float:
        """The parts of a bound that do not depend on J's curvature: θ's rounding and g's."""
        # θ + h·v is rounded to float64: the real move differs by ≤ u·|θ_i| per entry.
        moved = EPS64 * float(np.sum(np.abs(self.g[s] * self.theta[s]))) / self.h
        return SAFETY * moved + float(np.sum(np.abs(v[s]) * self.a[s]))

    def full(self, v: np.ndarray) -> tuple[float, float, float, float]:
        """(score, Richardson residual, its bound, the truncation of a step-h difference)."""
        h = self.h
        j = self._along(v, STEPS)
        n_h = (j[3] - j[0]) / (2 * h)
        n_2 = (j[2] - j[1]) / h
        n_star = n_2 + (n_2 - n_h) / 3.0  # Richardson: the h² term cancels
        rounding = self.sigma / h * (4 * np.sqrt(2.0) + np.sqrt(0.5)) / 3.0
        fixed = self._fixed(v, slice(None))
        bound = SAFETY * (abs(n_h - n_2) / 3.0 + rounding) + fixed
        gv = float(self.g @ v)
        score = abs(n_star - gv) / max(bound, np.finfo(np.float64).tiny)
        truncation = 4.0 * abs(n_h - n_2) / 3.0  # the error of n_h: 4x that of n_2
        return score, n_star - gv, bound, truncation

    def pair(self, v: np.ndarray, s: np.ndarray) -> tuple[float, float]:
        """(residual, bound) of v restricted to ``s``, in 2 calls; truncation shared."""
        w = np.zeros(self.theta.size)
        w[s] = v[s]
        j = self._along(w, PAIR)
        d = (j[1] - j[0]) / (2 * self.h)
        bound = SAFETY * (self.truncation + self.sigma / (np.sqrt(2.0) * self.h))
        return d - float(self.g[s] @ v[s]), bound + self._fixed(v, s)
