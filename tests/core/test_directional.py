"""Directional checks and bisection: the wrong entries are named, in O(k log n) loss calls."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nets import mlp, snapshot

import gradcheck
from gradcheck.report._sentences import NoteCode

N = 1 << 17  # 131,072 entries


def _quadratic(n: int, seed: int = 0):
    """J = Σ c_i θ_i² / 2 + sin(θ_0): cheap, so large n stays fast; g = c·θ (+ cos θ_0)."""
    rng = np.random.default_rng(seed)
    c = rng.uniform(0.5, 2.0, n)
    theta = rng.standard_normal(n)

    def loss(p: np.ndarray) -> float:
        return float(0.5 * np.dot(c * p, p) + np.sin(p[0]))

    g = c * theta
    g[0] += np.cos(theta[0])
    return loss, theta, g


@settings(max_examples=6, deadline=None)
@given(st.integers(0, N - 1), st.sampled_from([-1.0, -0.3, 0.5, 3.0]))
def test_one_wrong_entry_is_named(i: int, delta: float) -> None:
    loss, theta, g = _quadratic(N)
    wrong = g.copy()
    wrong[i] += delta  # |δ|/√N must exceed the directional tolerance (≈ 1.3e-4 here)
    before = theta.tobytes()
    r = gradcheck.check(loss, theta, wrong, coords="directional")
    c = r.components["theta"]
    assert r.suspects == ("theta",) and c.worst_index == (i,) and c.mismatches == 1
    assert r.evaluations <= 2_000 and theta.tobytes() == before
    assert c.analytic == wrong[i] and abs(c.numeric - g[i]) < 1e-4 * max(1.0, abs(g[i]))


def test_two_wrong_entries_are_both_found() -> None:
    loss, theta, g = _quadratic(N, seed=1)
    wrong = g.copy()
    wrong[[10, 90_000]] += [1.0, -2.0]
    c = gradcheck.check(loss, theta, wrong, coords="directional").components["theta"]
    assert np.flatnonzero(c.flags == 2).tolist() == [10, 90_000]


@pytest.mark.parametrize("act", ["tanh", "sigmoid", "relu"])
@pytest.mark.parametrize("seed", [0, 1])
def test_correct_gradients_pass(act: str, seed: int) -> None:
    loss, params, grads = mlp(act, sizes=(8, 24, 5), seed=seed)
    before = snapshot(params)
    r = gradcheck.check(loss, params, grads(params), coords="directional", seed=seed)
    assert r.passed, r.notes
    assert snapshot(params) == before


def test_wrong_tensor_is_localised_in_a_network() -> None:
    loss, params, grads = mlp(sizes=(8, 24, 5))
    g = grads(params)
    g["W1"] = g["W1"] * 1.01  # 1% too large everywhere in one tensor
    r = gradcheck.check(loss, params, g, coords="directional")
    assert r.suspects == ("W1",)
    assert (NoteCode.DIRECTION_FAILED, "W1") in [(n.code, n.tensor) for n in r.notes]
    assert (NoteCode.DIRECTIONS_AGREE, "b1") in [(n.code, n.tensor) for n in r.notes]


def test_same_seed_same_directions() -> None:
    loss, params, grads = mlp(sizes=(8, 24, 5))
    g = grads(params)
    g["W2"][4, 2] += 0.05
    a, b = (gradcheck.check(loss, params, g, coords="directional").to_dict() for _ in range(2))
    a.pop("seconds"), b.pop("seconds")
    assert a == b and a["suspects"] == ["W2"]


def test_auto_over_budget_locates_and_samples() -> None:
    loss, theta, g = _quadratic(1 << 14, seed=2)
    wrong = g.copy()
    wrong[77] += 0.5
    r = gradcheck.check(loss, theta, wrong, budget=2_000)
    c = r.components["theta"]
    assert r.suspects == ("theta",) and c.worst_index == (77,)
    assert r.evaluations <= 2_000 and 300 < c.checked < 1 << 14  # 4 calls kept per coordinate
