"""gradcheck.check_hvp: H·v against finite differences of the gradient, per coordinate and along v."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gradcheck

RNG = np.random.default_rng(3)
X = RNG.standard_normal((30, 4))
Y = (RNG.random(30) > 0.5).astype(float)


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def grads(p):
    """Logistic regression plus an L2 term on b: the gradient."""
    s = _sigmoid(X @ p["w"])
    return {"w": X.T @ (s - Y) / len(Y), "b": 2.0 * p["b"] + np.sin(p["b"])}


def hvp(p, v):
    s = _sigmoid(X @ p["w"])
    return {
        "w": X.T @ (s * (1 - s) * (X @ v["w"])) / len(Y),
        "b": 2.0 * v["b"] + np.cos(p["b"]) * v["b"],
    }


PARAMS = {"w": RNG.standard_normal(4), "b": RNG.standard_normal(3)}


def test_a_right_hvp_passes_with_a_component_per_parameter_and_along_v():
    before = {k: a.copy() for k, a in PARAMS.items()}
    report = gradcheck.check_hvp(grads, PARAMS, hvp)
    assert report.passed, report
    assert list(report.components) == ["w", "b", "along v"]
    assert all(np.array_equal(PARAMS[k], before[k]) for k in PARAMS)  # untouched


def test_one_wrong_entry_of_hv_is_named_by_parameter_and_index():
    def wrong(p, v):
        out = hvp(p, v)
        out["w"] = out["w"].copy()
        out["w"][2] *= 1.02
        return out

    report = gradcheck.check_hvp(grads, PARAMS, wrong)
    assert not report.passed
    assert "w" in report.suspects and "b" not in report.suspects
    assert [i for i, _, _ in report.components["w"].worst_entries()] == [(2,)]


def test_a_gauss_newton_product_passed_off_as_the_hessian_fails_on_b_only():
    # the curvature of sin(b) dropped (a Gauss-Newton style approximation): b is named
    def approx(p, v):
        return {**hvp(p, v), "b": 2.0 * v["b"]}

    report = gradcheck.check_hvp(grads, PARAMS, approx, v={"w": np.ones(4), "b": np.ones(3)})
    assert not report.passed
    assert set(report.suspects) == {"b", "along v"}


def test_a_nonsymmetric_gradient_field_fails_along_v_only():
    # grads is not the gradient of any loss (antisymmetric part); hvp is its true Jacobian·v,
    # so per coordinate (which reads Jᵀv) disagrees, and along v (vᵀJv) agrees: both are seen
    A = np.array([[1.0, 2.0], [0.0, 1.0]])
    report = gradcheck.check_hvp(lambda p: A @ p, np.array([0.3, -0.2]), lambda p, v: A @ v)
    assert not report.passed
    assert report.suspects == ("theta",)
    assert report.components["along v"].passed


def test_hvp_in_the_wrong_structure_is_an_error_naming_it():
    with pytest.raises(gradcheck.StructureError, match=r"hvp\(params, v\)"):
        gradcheck.check_hvp(grads, PARAMS, lambda p, v: {"w": v["w"]})
    with pytest.raises(gradcheck.ShapeMismatchError, match=r"hvp\(params, v\)\['b'\]"):
        gradcheck.check_hvp(grads, PARAMS, lambda p, v: {"w": v["w"], "b": v["b"][:2]})
    with pytest.raises(gradcheck.OptionError, match="functions"):
        gradcheck.check_hvp(grads, PARAMS, np.eye(7))


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(2, 6))
def test_quadratic_forms_right_pass_and_one_perturbed_entry_fails(seed, n):
    rng = np.random.default_rng(seed)
    m = rng.standard_normal((n, n))
    a = m + m.T + n * np.eye(n)
    x = rng.standard_normal(n)
    assert gradcheck.check_hvp(lambda p: a @ p, x, lambda p, v: a @ v, seed=seed).passed
    i = int(rng.integers(n))
    report = gradcheck.check_hvp(
        lambda p: a @ p, x, lambda p, v: a @ v + 0.05 * np.eye(n)[i] * (1 + abs(v[i])), seed=seed
    )
    assert not report.passed
