"""Properties over random smooth functions (hypothesis): right passes, wrong is named."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gradcheck


def random_problem(seed: int, n: int, k: int):
    """J = Σ tanh(A θ + c)·w + ½ θᵀ B θ, a smooth function with a known gradient."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((k, n))
    c, w = rng.standard_normal(k), rng.standard_normal(k)
    b = rng.standard_normal((n, n))
    b = (b + b.T) / 2
    theta = rng.standard_normal(n)

    def loss(p):
        t = p["theta"]
        return float(np.tanh(a @ t + c) @ w + 0.5 * t @ b @ t)

    def grad(t):
        return a.T @ ((1 - np.tanh(a @ t + c) ** 2) * w) + b @ t

    return loss, {"theta": theta}, {"theta": grad(theta)}




@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 12), k=st.integers(1, 6))
def test_correct_gradients_pass(seed: int, n: int, k: int) -> None:
    loss, params, grads = random_problem(seed, n, k)
    assert gradcheck.check(loss, params, grads).passed


@settings(suppress_health_check=[HealthCheck.filter_too_much])
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 12),
    k=st.integers(1, 6),
    where=st.integers(0, 11),
    size=st.floats(1e-4, 1.0),
    sign=st.sampled_from([-1.0, 1.0]),
)
def test_an_error_of_relative_size_1e4_in_one_entry_is_named(seed, n, k, where, size, sign) -> None:
    loss, params, grads = random_problem(seed, n, k)
    g = grads["theta"].copy()
    i = where % n
    # relative to the entry, or to the typical entry where that one is nearly zero
    g[i] += sign * size * max(abs(g[i]), np.sqrt(np.mean(g**2)))
    report = gradcheck.check(loss, params, {"theta": g})
    assert report.suspects == ("theta",)
    assert report.components["theta"].worst_index == (i,)
