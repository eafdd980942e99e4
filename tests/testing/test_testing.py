"""gradcheck.testing.assert_gradients: one assertion for NumPy, torch and JAX checks."""

from __future__ import annotations

import re

import numpy as np
import pytest

import gradcheck
from gradcheck.testing._assert import GradientAssertionError, assert_gradients


def _cube(p):
    return float(np.sum(p["w"] ** 3))


W = np.array([1.0, -2.0, 0.5])


def test_numpy_pass_returns_the_report() -> None:
    report = assert_gradients(_cube, {"w": W}, {"w": 3 * W**2}, seed=3)
    assert isinstance(report, gradcheck.Report) and report.passed


def test_failure_is_an_assertion_error_whose_message_is_the_table() -> None:
    with pytest.raises(GradientAssertionError) as info:
        assert_gradients(_cube, {"w": W}, {"w": 3 * W})
    error = info.value
    assert isinstance(error, AssertionError)
    assert not error.report.passed and error.report.suspects == ("w",)
    message = str(error)
    assert message == str(error.report)
    assert "WRONG" in message and re.search(r"│ w +│ 3 ", message)


def test_framework_is_validated_and_numpy_arity_explained() -> None:
    with pytest.raises(gradcheck.OptionError, match="framework='tf'"):
        assert_gradients(_cube, {"w": W}, {"w": W}, framework="tf")
    with pytest.raises(gradcheck.OptionError, match="params and the grads"):
        assert_gradients(_cube, {"w": W})


def test_torch_flavour_is_picked_for_modules_and_tensors() -> None:
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    report = assert_gradients(torch.nn.Linear(2, 2), torch.randn(3, 2))
    assert set(report.components) == {"weight", "bias"}
    x = torch.randn(4, dtype=torch.float64, requires_grad=True)
    assert assert_gradients(torch.tanh, x).components["input0"].passed

    class Wrong(torch.autograd.Function):
        @staticmethod
        def forward(ctx, a):
            return a * 2

        @staticmethod
        def backward(ctx, g):
            return g * 3

    with pytest.raises(GradientAssertionError, match="input0"):
        assert_gradients(Wrong.apply, x)


def test_jax_flavour_is_picked_for_jax_arrays_or_by_name() -> None:
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    x = jnp.linspace(-1.0, 1.0, 4)
    assert assert_gradients(lambda v: jnp.sum(jnp.sin(v)), x).passed
    report = assert_gradients(lambda p: jnp.sum(p["w"] ** 2), {"w": np.ones(2)}, framework="jax")
    assert list(report.components) == ["w"]
