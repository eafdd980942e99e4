"""Issue 12: a step per entry (mixed scales), noise told from kinks and stairs, kinks per entry."""

from __future__ import annotations

import numpy as np
import pytest
from bugs.kinks import relu_zeros

import gradcheck
from gradcheck.report._sentences import NoteCode


def _mixed(seed: int = 0):
    """tanh layer whose features span 1e-3..1e3 and whose W1 rows span 1e3..1e-3."""
    rng = np.random.default_rng(seed)
    d, h, m = 7, 5, 12
    fs = np.logspace(-3, 3, d)
    x = rng.standard_normal((m, d)) * fs
    y = rng.standard_normal((m, 2))
    params = {"W1": rng.standard_normal((d, h)) / fs[:, None], "W2": rng.standard_normal((h, 2))}

    def loss(p):
        return float(0.5 * np.sum((np.tanh(x @ p["W1"]) @ p["W2"] - y) ** 2) / m)

    def grads(p):
        a = np.tanh(x @ p["W1"])
        d2 = (a @ p["W2"] - y) / m
        return {"W1": x.T @ ((d2 @ p["W2"].T) * (1 - a**2)), "W2": a.T @ d2}

    return loss, params, grads


def _relu(rows: int, units: int, seed: int = 0):
    loss, params, grads = relu_zeros(rows, units, seed=seed)
    return loss, params, lambda p, k=1.0: grads(p, w1_scale=k), rows * units


def test_mixed_scale_tensor_is_not_blamed_and_gets_steps_of_its_entries_size() -> None:
    loss, params, grads = _mixed()
    report = gradcheck.check(loss, params, grads(params))
    assert report.passed, report.explain()
    assert report.eps["W1"] < 1e-3  # the tensor's rms is ~400: one step per tensor was ~1e-2+


def test_mixed_scale_tensor_still_catches_a_small_scale_error() -> None:
    loss, params, grads = _mixed()
    g = grads(params)
    report = gradcheck.check(loss, params, {**g, "W1": 1.001 * g["W1"]})
    assert report.suspects == ("W1",)


@pytest.mark.parametrize("rows, units", [(1, 1), (2, 5), (10, 5)])
def test_exact_zero_relu_preactivations_do_not_widen_the_weights_steps(rows, units) -> None:
    loss, params, grads, _ = _relu(rows, units)
    report = gradcheck.check(loss, params, grads(params))
    assert report.passed, report.explain()
    assert report.eps["W1"] < 1e-4 and report.eps["W2"] < 1e-4  # was 4e-3 with one zero


@pytest.mark.parametrize("rows, units, factor", [(1, 1, 1.0001), (2, 5, 1.001), (10, 5, 1.001)])
def test_a_small_scale_error_is_caught_next_to_exact_zero_preactivations(rows, units, factor):
    loss, params, grads, _ = _relu(rows, units)
    report = gradcheck.check(loss, params, grads(params, k=factor))
    assert report.suspects == ("W1",)


def test_a_staircase_with_zero_gradient_is_not_blamed() -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal(200)
    w = rng.standard_normal(200)
    report = gradcheck.check(lambda p: float(np.round(p["x"], 3) @ w), {"x": x},
                             {"x": np.zeros(200)})
    assert report.passed, report.explain()
    assert NoteCode.LOW_PRECISION not in report.note_codes


def test_sort_of_a_float32_permutation_blames_almost_nothing() -> None:
    rng = np.random.default_rng(0)
    n = 2000
    x = rng.permutation(n).astype(np.float32)
    w = rng.standard_normal(n).astype(np.float32)
    g = np.empty(n, np.float32)
    g[np.argsort(x)] = w

    def loss(p):
        return float(np.sum(np.sort(p["x"].astype(np.float32)) * w, dtype=np.float32))

    report = gradcheck.check(loss, {"x": x}, {"x": g})
    # One step per tensor blamed ~15% of the entries; the per-entry mechanism must not.
    assert report.components["x"].mismatches <= 0.005 * n, report.explain()


def test_a_loss_that_ignores_its_argument_is_refused() -> None:
    rng = np.random.default_rng(1)
    W = rng.standard_normal((3, 4))

    def loss(_p):  # the cs231n idiom: reads the model's own W, not the params it is given
        return float(np.sum(np.tanh(W)))

    with pytest.raises(gradcheck.GradCheckError, match="does not read its params argument"):
        gradcheck.check(loss, {"W": W}, {"W": 1 - np.tanh(W) ** 2})


def test_a_tensor_the_loss_never_reads_with_a_nonzero_gradient_is_named() -> None:
    rng = np.random.default_rng(2)
    params = {"W": rng.standard_normal((3, 4)), "W3": rng.standard_normal((2, 2))}
    loss = lambda p: float(np.sum(p["W"] ** 2))  # noqa: E731
    report = gradcheck.check(loss, params, {"W": 2 * params["W"], "W3": np.ones((2, 2))})
    assert report.suspects == ("W3",)
    (finding,) = report.findings
    assert finding.kind == "independent" and "J does not depend on W3 at all" in finding.detail


def test_kinks_are_counted_in_the_textbook_ratio_and_noted_as_subgradients() -> None:
    x = np.array([0.0, 1.0, -2.0])
    loss = lambda p: float(np.sum(np.abs(p["x"])))  # noqa: E731
    # 0.9 at the kink of |x| is a valid subgradient, so it passes, but the ratio counts it.
    report = gradcheck.check(loss, {"x": x}, {"x": np.array([0.9, 1.0, -1.0])})
    assert report.passed
    assert report.relative_error > 0.1
    assert any(n.code is NoteCode.SUBGRADIENTS and not n.numbers["callable_grads"]
               for n in report.notes)


def test_callable_grads_recheck_catches_an_error_hidden_at_a_kink() -> None:
    loss, params, grads, _ = _relu(10, 5)
    wrong = lambda p: grads(p, k=1.001)  # noqa: E731
    # With fixed arrays the kinked entries are subgradient-checked only (and the note says so);
    # with grads callable they are re-checked at θ + δ, and a x1.001 error cannot hide there.
    report = gradcheck.check(loss, params, wrong)
    assert "W1" in report.suspects
    assert NoteCode.RECHECKED_OFF_KINK in report.note_codes


def test_callable_grads_recheck_raises_no_false_alarm_on_kinks() -> None:
    for rows, units in ((1, 1), (2, 5), (10, 5)):
        loss, params, grads, _ = _relu(rows, units)
        report = gradcheck.check(loss, params, grads)
        assert report.passed, report.explain()


def test_an_error_that_only_kinked_entries_carry_is_caught_with_callable_grads() -> None:
    a = np.arange(1.0, 7.0)
    x = np.zeros(6)  # every entry sits on the kink of relu
    loss = lambda p: float(np.maximum(p["x"], 0.0) @ a)  # noqa: E731
    wrong = lambda p: {"x": 1.01 * a * (p["x"] > 0)}  # noqa: E731  x1.01, invisible at 0
    fixed = gradcheck.check(loss, {"x": x}, wrong({"x": x}))
    assert fixed.passed  # 0 is a valid subgradient: an array alone cannot show the error
    assert any(n.code is NoteCode.SUBGRADIENTS and not n.numbers["callable_grads"]
               for n in fixed.notes)
    report = gradcheck.check(loss, {"x": x}, wrong)
    assert report.suspects == ("x",)
    right = gradcheck.check(loss, {"x": x}, lambda p: {"x": a * (p["x"] > 0)})
    assert right.passed, right.explain()


def test_nothing_checked_gives_no_ratio_not_a_great_zero() -> None:
    calls = 0
    w = np.array([1.0, 2.0, 3.0])

    def loss(p):  # Ctrl-C at the first coordinate step: after J(θ) twice and the noise probe
        nonlocal calls
        calls += 1
        if calls > 8:
            raise KeyboardInterrupt
        return float(np.sum(p["w"] ** 3))

    report = gradcheck.check(loss, {"w": w}, {"w": 3 * w**2}, on_interrupt="report")
    assert report.interrupted and not report.passed
    assert report.relative_error is None and report.textbook_verdict == "not checked"
    assert report.to_dict()["relative_error"] is None
    assert "great" not in str(report)


def test_the_relu_builder_plants_exactly_the_zeros_it_says() -> None:
    for rows, units in ((0, 0), (1, 1), (2, 5), (10, 5)):
        loss, params, grads = relu_zeros(rows, units)
        x = _inputs(rows)
        assert np.sum(x @ params["W1"] + params["b1"] == 0.0) == rows * units


def _inputs(rows: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    x = rng.integers(-8, 9, (20, 4)) / 8.0
    rng.integers(-8, 9, (4, 5))
    rng.integers(-4, 4, 5)
    x0 = x[0].copy()
    x0[-1] += 1.0 / 256.0
    x[:rows] = x0
    return x
