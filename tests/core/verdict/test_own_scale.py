"""An entry whose own move of J is tiny beside |J| (a large term elsewhere in J) is judged at
its own step: a 1e-3 error in it is not hidden by float64's rounding of the large J."""

import numpy as np
import pytest

import gradcheck

C = np.array([-1.64, 1.91, 1.94, -1.28, -1.41, -1.65])
THETA = np.array([-1.691, 1.295, -1.816, -0.480, 1.112, 1.597])


def _smooth_plus(offset: float):
    def loss(p):
        x = p["x"]
        return float(1e-3 * (np.sum(C * np.sin(x)) + 0.5 * np.sum(x * x)) + offset)

    return loss, 1e-3 * (C * np.cos(THETA) + THETA)


@pytest.mark.parametrize("offset", [0.0, 1.27e4, 1.27e5])
def test_a_thousandth_off_beside_a_large_constant_fails(offset):
    loss, g = _smooth_plus(offset)
    g[2] *= 1 + 1e-3
    report = gradcheck.check(loss, {"x": THETA.copy()}, {"x": g})
    assert report.verdict == "failed"
    assert report.components["x"].mismatches == 1


@pytest.mark.parametrize("offset", [0.0, 1.27e4, 1.27e5])
def test_the_right_gradient_beside_a_large_constant_passes(offset):
    loss, g = _smooth_plus(offset)
    assert gradcheck.check(loss, {"x": THETA.copy()}, {"x": g}).passed


def test_stairs_beside_a_large_constant_keep_their_zero_gradient():
    width = 1e-3
    x0 = (np.arange(-20, 20, 4) + 0.25) * width

    def loss(p):
        return float(np.sum(np.round(p["x"] / width) * width) + 1.27e5)

    assert gradcheck.check(loss, {"x": x0.copy()}, {"x": np.zeros_like(x0)}).verdict != "failed"
