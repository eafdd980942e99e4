"""The numbers from the course notes (seeds 001-004), and the order of each scheme."""

from __future__ import annotations

import numpy as np
import pytest

import gradcheck


def cube(theta: np.ndarray) -> float:
    return float(np.sum(theta**3))


def estimate(scheme: str, eps: float, at: float = 1.0) -> float:
    return float(gradcheck.numerical_gradient(cube, np.array([at]), eps=eps, scheme=scheme)[0])


def test_theta_cubed_two_sided_and_one_sided() -> None:
    two, one = estimate("central", 0.01), estimate("forward", 0.01)
    assert two == pytest.approx(3.0001, abs=1e-12)
    assert one == pytest.approx(3.0301, abs=1e-12)
    assert abs(two - 3) == pytest.approx(0.0001, abs=1e-12)
    assert abs(one - 3) == pytest.approx(0.0301, abs=1e-12)


def _order(scheme: str, f, exact: float, eps: float) -> float:
    """log2 of the error ratio when the step is halved: the observed order."""
    e1 = abs(float(gradcheck.numerical_gradient(f, np.array([0.7]), eps=eps, scheme=scheme)[0]) - exact)
    e2 = abs(float(gradcheck.numerical_gradient(f, np.array([0.7]), eps=eps / 2, scheme=scheme)[0]) - exact)
    return float(np.log2(e1 / e2))


def smooth(t: np.ndarray) -> float:
    return float(np.sum(np.exp(t) * np.sin(3 * t)))


EXACT = float(np.exp(0.7) * (np.sin(2.1) + 3 * np.cos(2.1)))


@pytest.mark.parametrize(
    ("scheme", "eps", "order"),
    [("forward", 1e-3, 1), ("backward", 1e-3, 1), ("central", 1e-3, 2), ("richardson", 2e-2, 4)],
)
def test_convergence_order(scheme: str, eps: float, order: int) -> None:
    # Halving eps divides the error by about 2**order (central: ~4, Richardson: ~16).
    assert _order(scheme, smooth, EXACT, eps) == pytest.approx(order, abs=0.15)


def test_complex_step_reaches_machine_precision() -> None:
    def f(t):
        return np.sum(np.exp(t) * np.sin(3 * t))

    value = gradcheck.numerical_gradient(f, np.array([0.7]), scheme="complex")[0]
    # no subtraction, so no cancellation: the error is a few ulps (the reference itself rounds)
    assert abs(value - EXACT) <= 32 * np.finfo(float).eps * abs(EXACT)
    assert abs(estimate("central", 1e-5) - 3.0) > 1e-12  # central cannot get there


def test_textbook_verdicts() -> None:
    assert gradcheck.textbook_verdict(1e-7) == "great"
    assert gradcheck.textbook_verdict(1e-5) == "look closely"
    assert gradcheck.textbook_verdict(1e-3) == "worry"
    assert gradcheck.textbook_verdict(float("nan")) == "worry"


def test_numerical_gradient_keeps_the_structure() -> None:
    params = {"a": np.array([1.0, 2.0]), "b": [np.ones((2, 2))]}

    def loss(p):
        return float(np.sum(p["a"] ** 2) + 3 * np.sum(p["b"][0]))

    out = gradcheck.numerical_gradient(loss, params)
    assert set(out) == {"a", "b"} and isinstance(out["b"], list)
    np.testing.assert_allclose(out["a"], [2.0, 4.0], rtol=1e-8)
    np.testing.assert_allclose(out["b"][0], 3 * np.ones((2, 2)), rtol=1e-8)
