"""The flat-entry stage follows its entries side by side: the same points and the same
findings as following them one at a time, in fewer requests."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from gradcheck.core.verdict._flat import _follow, _in_step


class Recorder:
    """An evaluator of J(θ) = Σ round(θ·k) + kink terms, that records every request."""

    def __init__(self, theta: np.ndarray, kinks: np.ndarray) -> None:
        self.theta, self.kinks, self.requests = theta, kinks, []

    def coordinates(self, t: int, idx: np.ndarray, values: np.ndarray) -> np.ndarray:
        self.requests.append((idx.copy(), values.copy()))
        out = []
        for i, v in zip(idx.tolist(), values.tolist(), strict=True):
            x = self.theta.copy()
            x[i] = v
            out.append(float(np.sum(np.round(4 * x[self.kinks == 0]))
                             + np.sum(np.maximum(x[self.kinks == 1] - 1.0, 0.0) ** 2)))
        return np.array(out)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(1, 8))
def test_side_by_side_asks_the_same_points_and_finds_the_same(seed: int, n: int) -> None:
    rng = np.random.default_rng(seed)
    theta = rng.uniform(-2, 2, n)
    kinks = rng.integers(0, 3, n)  # 0: a staircase, 1: flat until a kink at 1, 2: constant
    entries = np.arange(n)

    def walks(ev: Recorder) -> list:
        j0 = float(ev.coordinates(0, np.array([0]), theta[:1])[0])
        return [_follow(float(theta[i]), 1e-6, 4 * max(1.0, abs(theta[i])), np.dtype(np.float64),
                        j0, 1e-16) for i in entries]

    alone, together = Recorder(theta, kinks), Recorder(theta, kinks)
    one_by_one = [_in_step(alone, 0, entries[i:i + 1], [w])[0]
                  for i, w in enumerate(walks(alone))]
    side_by_side = _in_step(together, 0, entries, walks(together))
    assert side_by_side == one_by_one

    def points(ev: Recorder) -> list:
        return sorted((int(i), float(v)) for idx, vs in ev.requests for i, v in zip(idx, vs, strict=True))

    assert points(together) == points(alone)
    assert len(together.requests) <= len(alone.requests)
