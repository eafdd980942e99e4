"""Issue 22, item 3: stairs, coarse reads and quantized J told apart by what each predicts.

A loss that reads a float64 parameter in float32/float16 has stairs one spacing of that dtype
wide at |θᵢ| (READS_COARSER); a staircase of the function itself (round(x, 3)) has stairs of
its own width, and slope 0 between them (the analytic 0 agrees); a quantized but smooth J
(float32 ndtr, values on a 2^-25 grid) has stairs of one grid quantum whose overall slope is
the derivative. Notes are compared by code, never by wording.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import gradcheck
from gradcheck.core.verdict import _run
from gradcheck.report._sentences import NoteCode


@pytest.fixture
def codes(monkeypatch):
    """The note codes of the engine runs made while the test runs (one list per run)."""
    runs: list[list[NoteCode]] = []
    real = _run.engine_records

    def recording(*args, **kwargs):
        records = real(*args, **kwargs)
        runs.append([n.code for n in records])
        return records

    monkeypatch.setattr(_run, "engine_records", recording)
    return runs


# -- round(x, 3) in float64: a staircase, not a float16 read -------------------------------

X_ROUND = np.array([3.1234567, 2.2718281, 3.6180339])  # in [2, 4): float16 spacing 2e-3


def _round_loss(w: np.ndarray):
    return lambda p: float(np.round(p["x"], 3) @ w)


@pytest.mark.parametrize("eps", [None, 1e-6])
def test_numpy_round_keeps_its_correct_zero_gradient(codes, eps) -> None:
    w = np.array([0.7, -1.3, 0.4])
    report = gradcheck.check(_round_loss(w), {"x": X_ROUND.copy()}, {"x": np.zeros(3)}, eps=eps)
    assert report.passed, report.explain()
    assert NoteCode.STAIRS in codes[-1]
    assert NoteCode.READS_COARSER not in codes[-1] and NoteCode.EPS_WIDENED not in codes[-1]
    if eps is not None:
        assert report.components["x"].eps == eps


def test_numpy_round_straight_through_is_still_a_surrogate(codes) -> None:
    w = np.array([0.7, -1.3, 0.4])
    report = gradcheck.check(_round_loss(w), {"x": X_ROUND.copy()}, {"x": w.copy()})
    assert report.passed is False and report.suspects == ("x",)
    assert NoteCode.SURROGATE in codes[-1] and NoteCode.READS_COARSER not in codes[-1]


# -- reads in float32 / float16: still said where true -----------------------------------


@pytest.mark.parametrize("bug", [1.0, 1.1])
def test_a_float16_read_is_still_a_float16_read(codes, bug) -> None:
    x = np.array([0.3, -1.7, 2.9, 0.05])

    def loss(p):
        return float(np.sum(np.sin(p["x"].astype(np.float16).astype(np.float64))))

    report = gradcheck.check(loss, {"x": x.copy()}, {"x": bug * np.cos(x)})
    assert report.passed is (bug == 1.0), report.explain()
    assert NoteCode.READS_COARSER in codes[-1]


@pytest.mark.parametrize("x0", [2.5, 2.640625, 0.3])
@pytest.mark.parametrize("bug", [1.0, 1.01])
def test_a_float32_read_on_its_grid_is_not_blamed_across_its_cells(codes, x0, bug) -> None:
    # θ on the float32 grid and a step close to a multiple of its spacing: every smaller step
    # is off by the same cells, and the estimates agreed on a wrong slope (4.6% at 2.640625).
    x = np.array([x0])

    def loss(p):
        return float(np.sum(np.sin(p["x"].astype(np.float32).astype(np.float64))))

    report = gradcheck.check(loss, {"x": x.copy()}, {"x": bug * np.cos(x)})
    assert report.passed is (bug == 1.0), report.explain()


# -- a quantized but smooth J --------------------------------------------------------------


def _quantized(f, df):
    """J = f on float32's grid near 1 (values on multiples of 2^-23, whatever f's size)."""
    def loss(p):
        return float(np.float32(1.0) + np.float32(f(p["x"]))) - 1.0

    return loss, df


@pytest.mark.parametrize("bug", [1.0, 1.01])
def test_a_quantized_smooth_loss_is_judged_by_its_slope(bug) -> None:
    x = np.array([0.4, -1.1, 2.0])
    loss, df = _quantized(lambda v: 0.01 * np.sum(np.sin(v)), lambda v: 0.01 * np.cos(v))
    report = gradcheck.check(loss, {"x": x.copy()}, {"x": bug * df(x)})
    assert report.passed is (bug == 1.0), report.explain()


# -- hypothesis: staircases, coarse reads, quantized smooth J -----------------------------

QUICK = settings(max_examples=40, deadline=None, derandomize=True,
                 suppress_health_check=[HealthCheck.too_slow])
STAIR_OPS = {
    "round1": lambda v: np.round(v, 1), "round2": lambda v: np.round(v, 2),
    "round3": lambda v: np.round(v, 3), "round4": lambda v: np.round(v, 4),
    "floor8": lambda v: np.floor(v * 8) / 8, "floor1000": lambda v: np.floor(v * 1000) / 1000,
}
xs = st.lists(st.floats(-9, 9, allow_nan=False).filter(lambda v: abs(v) > 1e-3),
              min_size=1, max_size=4)


@QUICK
@given(op=st.sampled_from(sorted(STAIR_OPS)), x=xs, seed=st.integers(0, 99))
def test_a_staircase_with_its_zero_gradient_is_never_failed(op, x, seed) -> None:
    w = np.random.default_rng(seed).standard_normal(len(x))
    f = STAIR_OPS[op]
    report = gradcheck.check(lambda p: float(f(p["x"]) @ w), {"x": np.array(x)},
                             {"x": np.zeros(len(x))})
    assert report.verdict != "failed", report.explain()


@QUICK
@given(x=xs, read=st.sampled_from(["float32", "quantized"]), a=st.floats(0.05, 3.0))
def test_a_quantized_smooth_loss_with_a_right_gradient_is_never_failed(x, read, a) -> None:
    v = np.array(x)
    if read == "float32":
        def loss(p):
            return float(np.sum(a * np.sin(p["x"].astype(np.float32).astype(np.float64))))
    else:
        loss, _ = _quantized(lambda u: 0.01 * a * np.sum(np.sin(u)), None)
    g = (1.0 if read == "float32" else 0.01) * a * np.cos(v)
    report = gradcheck.check(loss, {"x": v}, {"x": g})
    assert report.verdict != "failed", report.explain()


@QUICK
@given(x=st.lists(st.floats(-3, 3).filter(lambda v: abs(np.cos(v)) > 0.3),
                  min_size=1, max_size=3), a=st.floats(0.3, 3.0))
def test_a_one_percent_error_on_a_quantized_smooth_loss_is_never_passed(x, a) -> None:
    # J's values on multiples of 2^-23 (float32 near 1) while J is 0.01 to 1: a 1% error of
    # slopes of 0.03 or more stands far above what that rounding leaves of a difference. (A J
    # of 1e-6 on that grid sets steps from its own size, too wide for 1%: a limit, and the
    # report then says the verdict is borderline and the Taylor test disagrees.)
    v = np.array(x)
    assume(abs(np.sum(np.sin(v))) > 0.1)
    loss, _ = _quantized(lambda u: 0.1 * a * np.sum(np.sin(u)), None)
    report = gradcheck.check(loss, {"x": v}, {"x": 1.01 * 0.1 * a * np.cos(v)})
    assert report.passed is False, report.explain()


# -- torch: round in float64, ndtr in native float32 ---------------------------------------


@pytest.mark.parametrize("eps", [None, 1e-6])
def test_torch_round_decimals_3_in_float64(codes, eps) -> None:
    torch = pytest.importorskip("torch")
    import gradcheck.torch as gt

    x = torch.tensor(3.1234567, dtype=torch.float64, requires_grad=True)
    report = gt.check_function(lambda v: torch.round(v, decimals=3), x, eps=eps)
    assert report.passed, report.explain()
    assert NoteCode.READS_COARSER not in codes[-1] and NoteCode.EPS_WIDENED not in codes[-1]
    if eps is not None:
        assert report.components["input0"].eps == eps


@pytest.mark.parametrize("x0", [-4.827, -4.9, -5.0, -5.3])
def test_torch_ndtr_far_in_its_tail_in_native_float32_passes(x0) -> None:
    torch = pytest.importorskip("torch")
    import gradcheck.torch as gt

    x = torch.tensor([x0], dtype=torch.float32, requires_grad=True)
    report = gt.check_function(torch.special.ndtr, x, precision="native")
    assert report.passed, report.explain()


@pytest.mark.parametrize("x0", [-2.0, -1.2])
def test_torch_ndtr_with_a_one_percent_wrong_backward_fails(x0) -> None:
    torch = pytest.importorskip("torch")
    import gradcheck.torch as gt

    class Off(torch.autograd.Function):
        @staticmethod
        def forward(v):
            return torch.special.ndtr(v)

        @staticmethod
        def setup_context(ctx, inputs, output):
            ctx.save_for_backward(inputs[0])

        @staticmethod
        def backward(ctx, grad):
            (v,) = ctx.saved_tensors
            return grad * 1.01 * torch.exp(-v * v / 2) / (2 * torch.pi) ** 0.5

    x = torch.tensor([x0], dtype=torch.float32, requires_grad=True)
    assert gt.check_function(Off.apply, x, precision="native").passed is False
    ok = gt.check_function(torch.special.ndtr, x, precision="native")
    assert ok.passed, ok.explain()


def _ste_round(torch):
    class RoundSTE(torch.autograd.Function):
        @staticmethod
        def forward(v):
            return torch.round(v, decimals=3)

        @staticmethod
        def setup_context(ctx, inputs, output):
            pass

        @staticmethod
        def backward(ctx, grad):
            return grad

    return RoundSTE.apply


@pytest.mark.parametrize("straight_through", [False, True])
def test_torch_round_decimals_3_in_native_float32(codes, straight_through) -> None:
    # OpInfo's sample (20 values in [-9, 9]): J's float32 noise widens the steps past the
    # stairs (1e-3), and every level measured the stairs' slope, the cotangent's weight: a
    # correct 0 was blamed at input0[11]. J is flat where that slope would have moved it.
    torch = pytest.importorskip("torch")
    import gradcheck.torch as gt

    x = torch.tensor([-8.4784, -1.7658, -4.3228, -2.4005, -7.9506, 3.6116, -8.0676, -0.5735,
                      3.1285, -3.0337, 5.1067, 1.135137677192688, 4.9473, 5.7744, -3.973,
                      3.2708, -3.8939, 2.8211, -4.7024, 4.1631], requires_grad=True)
    fn = _ste_round(torch) if straight_through else (lambda v: torch.round(v, decimals=3))
    report = gt.check_function(fn, x, precision="native")
    assert report.passed is not straight_through, report.explain()
    assert (NoteCode.SURROGATE if straight_through else NoteCode.STAIRS) in codes[-1]
