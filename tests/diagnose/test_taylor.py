"""The Taylor test: rate ≈ 2 for a right gradient, ≈ 1 for a wrong one, params untouched."""

from __future__ import annotations

import math

import numpy as np
import pytest
from bugs.mlp import mlp
from hypothesis import given, settings
from hypothesis import strategies as st
from nets import snapshot

import gradcheck
from gradcheck.report._sentences import NoteCode


def test_right_gradients_converge_at_rate_two_wrong_ones_at_rate_one() -> None:
    loss, params, grads = mlp("tanh", "softmax", (5, 8, 3), m=12)
    right = gradcheck.taylor_test(loss, params, grads)
    assert set(right) == set(params)
    for result in right.values():
        assert result.passed and result.rate == pytest.approx(2.0, abs=0.2)
    wrong = gradcheck.taylor_test(loss, params, grads(params, act_on_a=True))
    assert not wrong["W1"].passed and wrong["W1"].rate == pytest.approx(1.0, abs=0.2)
    assert wrong["W2"].passed  # the output layer's gradient is unaffected by this bug


@settings(max_examples=20, deadline=None)
@given(
    error=st.floats(1e-2, 1.0),
    sign=st.sampled_from([-1.0, 1.0]),
    seed=st.integers(0, 10_000),
)
def test_any_relative_error_of_one_percent_is_rate_one(error: float, sign: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    a, w = rng.standard_normal(6), rng.standard_normal(6)
    loss = lambda p: float(np.sum(np.sin(a * p["w"])))  # noqa: E731
    g = a * np.cos(a * w)
    result = gradcheck.taylor_test(loss, {"w": w}, {"w": g * (1 + sign * error)}, seed=seed)
    assert not result["w"].passed
    assert result["w"].rate == pytest.approx(1.0, abs=0.3)


def test_remainders_shrink_with_the_steps_and_are_reported() -> None:
    loss, params, grads = mlp("sigmoid", "bce", (4, 5, 1), m=8)
    result = gradcheck.taylor_test(loss, params, grads, steps=6, names=("W1",))
    (only,) = result.values()
    assert len(only.remainders) == len(only.steps) == 6
    assert np.all(np.diff(only.steps) < 0)
    assert only.remainders[-1] < only.remainders[0] / 100


def test_a_linear_loss_gives_no_rate_and_passes() -> None:
    w = np.array([1.0, -2.0, 3.0])
    result = gradcheck.taylor_test(lambda p: float(p @ [1.0, 2.0, 3.0]), w, np.array([1.0, 2.0, 3.0]))
    assert math.isnan(result["theta"].rate) and result["theta"].passed


def test_float32_params_and_seeded_directions() -> None:
    loss, params, grads = mlp("tanh", "mse", (4, 6, 2), m=8, dtype=np.float32)
    first = gradcheck.taylor_test(loss, params, grads, seed=3)
    assert first == gradcheck.taylor_test(loss, params, grads, seed=3)
    assert all(r.passed for r in first.values())


def test_params_are_never_modified_even_when_the_loss_raises() -> None:
    loss, params, grads = mlp("tanh", "softmax", (4, 5, 3), m=8)
    before = snapshot(params)
    gradcheck.taylor_test(loss, params, grads)
    calls = []

    def failing(p):
        calls.append(1)
        if len(calls) > 5:
            raise RuntimeError("boom")
        return loss(p)

    with pytest.raises(RuntimeError):
        gradcheck.taylor_test(failing, params, grads(params))
    assert snapshot(params) == before


@pytest.mark.parametrize("steps", [2, 0, 2.5, True])
def test_steps_is_validated(steps) -> None:
    with pytest.raises(ValueError, match="steps"):
        gradcheck.taylor_test(lambda p: float(np.sum(p**2)), np.ones(2), 2 * np.ones(2), steps=steps)


def test_check_asks_the_taylor_test_about_borderline_parameters_only() -> None:
    loss, params, grads = mlp("tanh", "softmax", (5, 8, 3), m=16)
    g = grads(params)
    clear = gradcheck.check(loss, params, g)
    taylor = {NoteCode.TAYLOR_RATE, NoteCode.TAYLOR_LINEAR, NoteCode.TAYLOR_SKIPPED}
    assert not taylor & set(clear.note_codes)
    component = clear.components["W1"]
    # Push W1 to about twice its own tolerance: borderline, and failing.
    nudge = 2.0 * component.bound_array * np.sign(g["W1"])
    border = gradcheck.check(loss, params, {**g, "W1": g["W1"] + nudge})
    notes = [n for n in border.notes if n.code is NoteCode.TAYLOR_RATE]
    assert len(notes) == 1 and notes[0].tensor == "W1"
