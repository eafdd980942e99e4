"""Entries along which J does not move at all (a tensor J does not read, or J flat at θ): a
gradient of rounding size there is right at every point, a real one is named, and the check is
refused only when no tensor moves J even far away (issue 22, part 2 item 8)."""

from __future__ import annotations

import numpy as np
import pytest

import gradcheck
from gradcheck.diagnose._evidence import evidence
from gradcheck.diagnose._signatures import _scale
from gradcheck.report._model import AGREES


def relu_sum(p):
    return float(np.sum(np.maximum(p["W"], 0.0)))


def _point(seed: int, dn: float) -> tuple[dict, dict]:
    rng = np.random.default_rng(seed)
    W, n = rng.normal(size=2) - 0.5, rng.normal(size=3)  # all of W dead (J = 0) at half the seeds
    return {"W": W, "n": n}, {"W": (W > 0).astype(float), "n": rng.normal(size=3) * dn}


def test_a_rounding_size_gradient_of_a_tensor_j_does_not_read_is_right_at_every_point() -> None:
    # J never reads n; dn is rounding (1e-17). At the points where every unit is dead J = 0
    # exactly, and dn used to be judged against a tolerance of 0 ("independent", FAILED).
    for seed in range(8):
        report = gradcheck.check(relu_sum, *_point(seed, 1e-17))
        assert report.passed, (seed, report.explain())
        assert np.all(report.components["n"].flags == AGREES)


@pytest.mark.parametrize("seed", [0, 1])  # J = 0 and dead at seed 0, live at seed 1
def test_a_real_gradient_of_a_tensor_j_does_not_read_is_named_at_every_point(seed: int) -> None:
    report = gradcheck.check(relu_sum, *_point(seed, 1e-3))
    assert report.suspects == ("n",)
    assert [f.kind for f in report.findings] == ["independent"]


def test_a_loss_flat_at_theta_is_not_said_to_ignore_its_params() -> None:
    # Every unit far from its kink: no probe step moves J, but the loss does read W.
    W = np.array([-50.0, -60.0])
    report = gradcheck.check(relu_sum, {"W": W}, {"W": np.array([1e-17, -1e-17])})
    assert report.passed, report.explain()
    with pytest.raises(gradcheck.GradCheckError, match="does not read its params"):
        gradcheck.check(lambda p: 0.0, {"W": W}, {"W": np.array([1e-17, 2e-17])})
    with pytest.raises(gradcheck.GradCheckError, match="does not read its params"):
        gradcheck.check(lambda p: 1.0, {"W": W}, {"W": np.array([0.1, 0.2])})


def test_no_scale_factor_is_fitted_to_differences_within_their_tolerance_of_zero() -> None:
    x = np.linspace(0.5, 1.5, 4)
    report = gradcheck.check(lambda p: float(np.sum(p["x"] ** 2)), {"x": x}, {"x": 2 * x})
    c = report.components["x"]
    import dataclasses
    tiny = dataclasses.replace(c, numeric_array=np.full(4, 1e-26), analytic_array=np.full(4, 1.6e-17),
                               bound_array=np.full(4, 1e-20))
    assert _scale(evidence(tiny)) is None  # a ×1.6e9 from two noises is no finding
    assert _scale(evidence(dataclasses.replace(c, analytic_array=3 * c.numeric_array))) is not None
