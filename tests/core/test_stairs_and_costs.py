"""Issue 12, second round: staircases vs locally constant J, a float32 sort whose steps span
many kinks, what a clearly wrong smooth entry costs, and coordinate-line noise."""

from __future__ import annotations

import numpy as np
import pytest
from bugs.kinks import dead_relu, stairs
from bugs.mlp import mlp

import gradcheck
from gradcheck.core._noise import one_jump
from gradcheck.report._sentences import NoteCode

PIECEWISE = {NoteCode.STAIRS, NoteCode.SURROGATE}  # J piecewise constant (stairs)


def _counted(loss):
    calls = [0]

    def counted(p):
        calls[0] += 1
        return loss(p)

    return counted, calls


def _staircase(op: str, n: int = 40, seed: int = 0):
    rng = np.random.default_rng(seed)
    x, w = rng.standard_normal(n), rng.standard_normal(n)
    ops = {"round": lambda v: np.round(v, 3), "floor": np.floor, "sign": np.sign,
           "quantise": lambda v: v // 0.01 * 0.01}
    return (lambda p: float(ops[op](p["x"]) @ w)), {"x": x}, w


@pytest.mark.parametrize("op", ["round", "floor", "sign", "quantise"])
def test_a_zero_gradient_of_a_staircase_passes_with_a_piecewise_constant_note(op) -> None:
    loss, params, _ = _staircase(op)
    report = gradcheck.check(loss, params, {"x": np.zeros(40)})
    assert report.passed, report.explain()
    (note,) = [n for n in report.notes if n.code in PIECEWISE]
    assert note.code is NoteCode.STAIRS and note.tensor == "x"
    assert NoteCode.LOW_PRECISION not in report.note_codes


@pytest.mark.parametrize("op", ["round", "sign"])
def test_a_straight_through_estimator_fails_and_is_called_a_surrogate(op) -> None:
    loss, params, w = _staircase(op)
    report = gradcheck.check(loss, params, {"x": w.copy()})  # d round/dx "=" 1
    assert report.suspects == ("x",)
    (note,) = [n for n in report.notes if n.code in PIECEWISE]
    assert note.code is NoteCode.SURROGATE


def test_a_staircase_next_to_smooth_tensors_blames_only_the_surrogate() -> None:
    loss, params, grads = stairs("floor", seed=3)
    assert gradcheck.check(loss, params, grads(params)).passed
    report = gradcheck.check(loss, params, grads(params, straight_through=1.0))
    assert report.suspects == ("x",)


def test_a_dead_relu_unit_is_locally_constant_not_a_staircase() -> None:
    loss, params, grads = dead_relu(seed=1)
    report = gradcheck.check(loss, params, grads(params))
    assert report.passed, report.explain()
    assert not PIECEWISE & set(report.note_codes)
    leaked = gradcheck.check(loss, params, grads(params, leak=True))
    assert set(leaked.suspects) == {"W1", "b1"}
    assert not PIECEWISE & set(leaked.note_codes)
    (note,) = [n for n in leaked.notes
               if n.code is NoteCode.LOCALLY_CONSTANT and n.tensor == "W1"]
    assert note.numbers["value"] != 0


def test_a_float32_loss_on_its_grid_is_low_precision_not_a_staircase() -> None:
    loss, params, grads = mlp("tanh", "softmax", (5, 8, 3), seed=4)

    def loss32(p):  # computed in float32 inside: J sits on the float32 grid
        return float(np.float32(loss({k: v.astype(np.float32) for k, v in p.items()})))

    report = gradcheck.check(loss32, params, grads(params))
    assert report.passed, report.explain()
    assert NoteCode.LOW_PRECISION in report.note_codes
    assert not PIECEWISE & set(report.note_codes)


def test_a_float32_staircase_is_not_read_as_noise() -> None:
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal(50).astype(np.float32), rng.standard_normal(50).astype(np.float32)

    def loss(p):  # round(x, 3) in native float32: J on the float32 grid, with stairs
        return float(np.sum(np.round(p["x"].astype(np.float32), 3) * w, dtype=np.float32))

    report = gradcheck.check(loss, {"x": x}, {"x": np.zeros(50, np.float32)})
    assert report.passed, report.explain()  # the stairs read as noise widened every step
    assert PIECEWISE & set(report.note_codes)


def test_one_jump_tells_a_stair_from_a_kink_and_from_noise() -> None:
    k = np.arange(7.0) - 3
    rng = np.random.default_rng(5)
    assert one_jump(2.0 + 0.3 * k + 0.01 * k**2 + 1e-3 * (k >= -1))
    assert not one_jump(2.0 + 0.3 * k + 1e-3 * np.maximum(k - 0.5, 0))  # a kink
    assert not one_jump(2.0 + 0.3 * k + 1e-6 * rng.standard_normal(7))  # noise
    grid = np.float32(2.0 + 1e-6 * k).astype(np.float64)  # a float32 grid, no stair
    assert not one_jump(grid, 0.5 * float(np.spacing(np.float32(2.0))))


def test_sort_whose_steps_span_many_neighbours_blames_nothing() -> None:
    # float32 J = Σ sort(x)·w with x = 7000 + a permutation of 0..499: each entry's step is
    # tens of neighbours wide (kinks 1 apart). Before, three wide windows that happened to
    # look smooth and roughly consistent settled a false mismatch (8 of 500 blamed).
    rng = np.random.default_rng(0)
    x = (rng.permutation(500) + 7000).astype(np.float32)
    w = rng.standard_normal(500).astype(np.float32)
    g = np.empty(500, np.float32)
    g[np.argsort(x)] = w

    def loss(p):
        return float(np.sum(np.sort(p["x"].astype(np.float32)) * w, dtype=np.float32))

    report = gradcheck.check(loss, {"x": x}, {"x": g}, coords="all")
    assert report.passed, report.explain()
    wrong = gradcheck.check(loss, {"x": x}, {"x": 1.5 * g}, coords="all")
    assert wrong.suspects == ("x",)


def test_a_clearly_wrong_smooth_tensor_costs_a_few_calls_per_entry() -> None:
    loss, params, grads = mlp("tanh", "softmax", (8, 16, 4), m=20, seed=6)
    n = sum(v.size for v in params.values())
    counted, calls = _counted(loss)
    report = gradcheck.check(counted, params, grads(params, act_on_a=True), coords="all")
    wrong = sum(c.mismatches for c in report.components.values())
    assert set(report.suspects) == {"W1", "b1"} and wrong > n / 4
    # 2 calls per entry, and 2 more per clearly wrong one (the three-level confirmation: 6)
    assert calls[0] <= 2 * n + 3 * wrong + 40, (calls[0], n, wrong)
    counted, calls = _counted(loss)
    assert gradcheck.check(counted, params, grads(params), coords="all").passed
    assert calls[0] <= 2 * n + 40


def test_a_small_error_near_the_tolerance_still_gets_the_full_confirmation() -> None:
    loss, params, grads = mlp("tanh", "mse", (4, 6, 2), m=10, seed=7)
    g = grads(params)
    report = gradcheck.check(loss, params, {**g, "W2": g["W2"] * (1 + 1e-7)})
    assert report.suspects == ("W2",)


def test_a_float16_gradient_a_few_tens_of_ulps_off_is_said_to_be_maybe_float16_accuracy():
    rng = np.random.default_rng(8)
    w = rng.standard_normal(12).astype(np.float16)
    x = rng.standard_normal((30, 12))

    def loss(p):
        return float(0.5 * np.sum((x @ p["w"].astype(np.float64)) ** 2) / 30)

    exact = (x.T @ (x @ w.astype(np.float64)) / 30).astype(np.float16)
    ulp = float(np.spacing(np.max(np.abs(exact))))
    off = exact.copy()
    off[3] = np.float16(float(off[3]) + 40 * ulp)  # what a float16 backward can do
    report = gradcheck.check(loss, {"w": w}, {"w": off})
    assert report.suspects == ("w",)  # the verdict stands: the difference is real
    assert NoteCode.FLOAT16_GRADIENT in report.note_codes
    wrong = gradcheck.check(loss, {"w": w}, {"w": (3 * exact).astype(np.float16)})
    assert wrong.suspects == ("w",) and NoteCode.FLOAT16_GRADIENT not in wrong.note_codes


def test_a_kink_at_theta_is_not_a_staircase() -> None:
    x = np.array([0.0, 1.5, -2.0, 0.0, 0.7])
    report = gradcheck.check(lambda p: float(np.sum(np.abs(p["x"]))), {"x": x},
                             {"x": np.sign(x)})
    assert report.passed, report.explain()
    assert not PIECEWISE & set(report.note_codes)


@pytest.mark.parametrize("bug", [1.0, 1.001])
def test_a_loss_that_reads_a_float64_parameter_in_float32(bug: float) -> None:
    # W.astype(np.float32) inside the loss (a float32 model behind a NumPy wrapper): J is
    # constant between float32 values of W. The noise probe's coordinate lines step as the
    # first pass does and see that rounding (float32-level noise for W, float64's for b, which
    # J reads in float64): a right gradient passes, a 0.1% error is still caught.
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 3))
    p = {"W": rng.standard_normal((3, 2)), "b": rng.standard_normal(2)}

    def loss(q):
        w = q["W"].astype(np.float32).astype(np.float64)
        return float(np.sum(np.tanh(x @ w) * np.arange(1, 3)) + np.sum(q["b"] ** 2))

    t = np.tanh(x @ p["W"])
    g = {"W": bug * x.T @ ((1 - t**2) * np.arange(1, 3)), "b": 2 * p["b"]}
    report = gradcheck.check(loss, p, g)
    assert report.passed is (bug == 1.0) and report.suspects == (() if bug == 1.0 else ("W",))
    assert report.components["W"].noise > 1e-9 > 1e-14 > report.components["b"].noise
    assert not PIECEWISE & set(report.note_codes)


def test_a_constant_loss_that_raises_farther_out_is_not_an_error() -> None:
    # J = [x > 0.5] at x = 0.23, with a domain check that raises outside [0, 1] (torch's
    # bernoulli): the noise probe grows its step while J stays constant and stops where the
    # loss raises, instead of turning the check into an error.
    calls = {"raised": 0}

    def loss(p):
        x = p["p"]
        if np.any((x < 0) | (x > 1)):
            calls["raised"] += 1
            raise ValueError("outside [0, 1]")
        return float(np.sum(x > 0.5))

    report = gradcheck.check(loss, {"p": np.array(0.23)}, {"p": np.array(0.0)})
    assert report.passed and calls["raised"] >= 1
    with pytest.raises(gradcheck.LossRaisedError, match="outside"):  # raising near θ still is
        gradcheck.check(loss, {"p": np.array(1.0)}, {"p": np.array(0.0)})


def test_a_constant_j_with_a_rounding_size_gradient_is_judged_not_refused() -> None:
    # corrcoef of two points is the constant 1; its float32 backward leaves ±1.25e-8. J not
    # moving is what that gradient predicts (|g|·h below an ulp of J), so the loss is not said
    # to ignore its params: the entries are judged, and a gradient of rounding size where J does
    # not move agrees with the 0 measured (issue 22 part 2 item 8).
    x = np.array([-8.48, -1.77], np.float32)
    report = gradcheck.check(lambda p: 1.0, {"x": x}, {"x": np.array([1.25e-8, -1.25e-8], np.float32)})
    assert report.passed and report.components["x"].checked == 2
    with pytest.raises(gradcheck.GradCheckError, match="does not read its params"):
        gradcheck.check(lambda p: 1.0, {"x": x.astype(np.float64)}, {"x": np.array([0.1, 0.2])})


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("x0", [1e-12, 1e-9])
def test_an_entry_far_closer_to_the_domain_edge_than_the_tensors_step(x0: float) -> None:
    # sqrt at 1e-12 beside entries of 0.5 and 2 (steps ~6e-6): the stencil shrinks past the
    # first 10 levels until it is asymptotic, instead of blaming a one-sided slope at h.
    a = np.array([x0, 0.5, 2.0])
    report = gradcheck.check(lambda p: float(np.sum(np.sqrt(p["a"]))), {"a": a},
                             {"a": 0.5 / np.sqrt(a)})
    assert report.passed, report.explain()
    (edge,) = [n for n in report.notes if n.code is NoteCode.DOMAIN_EDGE]
    assert any("central, step h/" in how for how in edge.numbers["done"].values())
    wrong = 0.5 / np.sqrt(a)
    wrong[1] *= 1.001
    assert gradcheck.check(lambda p: float(np.sum(np.sqrt(p["a"]))), {"a": a},
                           {"a": wrong}).suspects == ("a",)


@pytest.mark.parametrize("g0", [0.0, 0.5])
def test_a_dead_unit_close_below_the_bisection_bracket_is_not_a_staircase(g0: float) -> None:
    # J flat up to a kink at 0.3 from θ, linear after it: the bisection can end with the kink
    # just below hi (lo moving only), where J's change at hi stops shrinking; one point a
    # bracket farther out tells the kink (J grows) from a stair (J as high).
    w = np.array([0.0, 0.0, 1.0])
    loss = lambda p: float(np.sum(np.maximum(p["w"] - np.array([0.2961, 0.3, 0.0]), 0.0)))  # noqa: E731
    report = gradcheck.check(loss, {"w": w}, {"w": np.array([g0, 0.0, 1.0])})
    assert report.passed is (g0 == 0.0)
    assert not PIECEWISE & set(report.note_codes), report.notes
    if g0:
        assert any(n.code is NoteCode.LOCALLY_CONSTANT and n.numbers["entries"][0] == 0
                   for n in report.notes)
