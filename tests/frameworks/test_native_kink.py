"""A wrong value at a kink in native float32 is a mismatch (issue 22, part 2 item 2).

A ReLU whose backward returns 2·g at x == 0 puts 2R outside the one-sided slopes [0, R]. In
float32 the slopes' noise grows as 1/h while the refinement halves the step, and it used to
swallow the factor 2 ("a valid subgradient"); float64 caught it. Correct subgradients (0, R,
R/2) still pass.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import gradcheck.frameworks.torch as gt  # noqa: E402

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def _relu(at_zero: float):
    """ReLU whose backward returns ``at_zero``·g where x == 0 exactly, g·(x > 0) elsewhere."""

    class _Relu(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x.clamp(min=0)

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return torch.where(x == 0, at_zero * g, g * (x > 0).to(g.dtype))

    return _Relu.apply


def _x() -> torch.Tensor:
    x = torch.linspace(-1.3, 1.1, 10, dtype=torch.float32)
    x[[1, 4, 7]] = 0.0
    return x.requires_grad_(True)


@pytest.mark.parametrize("precision", ["native", None])
def test_twice_the_slope_at_a_float32_kink_is_wrong(precision: str | None) -> None:
    kw = {} if precision is None else {"precision": precision}
    report = gt.check_function(_relu(2.0), _x(), **kw)
    assert not report.passed
    assert list(report.suspects) == ["input0"]


@pytest.mark.parametrize("at_zero", [0.0, 0.5, 1.0])
def test_a_valid_subgradient_at_a_float32_kink_passes(at_zero: float) -> None:
    assert gt.check_function(_relu(at_zero), _x(), precision="native").passed


def test_twice_the_slope_through_jax_native() -> None:
    jax = pytest.importorskip("jax")
    import gradcheck.frameworks.jax as gj

    @jax.custom_vjp
    def relu(x):
        return jax.numpy.maximum(x, 0.0)

    def fwd(x):
        return relu(x), x

    def bwd(x, g):
        return (jax.numpy.where(x == 0, 2 * g, g * (x > 0)),)

    relu.defvjp(fwd, bwd)
    x = np.linspace(-1.3, 1.1, 10).astype(np.float32)
    x[[1, 4, 7]] = 0.0
    assert not gj.check(relu, jax.numpy.asarray(x), precision="native").passed
