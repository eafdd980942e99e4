"""order=2 (the backward's own derivatives) and mode='forward'/'both' in the torch and JAX adapters.

Each mode has a correct case and a planted bug that only that mode can see.
"""

from __future__ import annotations

import numpy as np
import pytest

import gradcheck
import gradcheck.jax
import gradcheck.torch
from gradcheck.report._sentences import NoteCode, unwrap

INPUT = "input0 (backward w.r.t. input)"


# --- PyTorch ---------------------------------------------------------------------------------


def _codes(report: gradcheck.Report) -> set[NoteCode]:
    """The codes of a report's notes, out of the labels of its merged parts."""
    return {unwrap(n).code for n in report.notes}


@pytest.fixture(scope="module")
def torch():
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield torch
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def fns(torch):
    """x³ as custom Functions: right; backward detaching x; backward wrong in g; wrong jvp."""

    class Cube(torch.autograd.Function):
        @staticmethod
        def forward(x):
            return x**3

        @staticmethod
        def setup_context(ctx, inputs, output):
            ctx.save_for_backward(inputs[0])
            ctx.save_for_forward(inputs[0])

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * 3 * x**2

        @staticmethod
        def jvp(ctx, t):
            (x,) = ctx.saved_tensors
            return t * 3 * x**2

    class Detached(Cube):
        @staticmethod
        def backward(ctx, g):  # right value; its derivative w.r.t. x is lost
            (x,) = ctx.saved_tensors
            return g * 3 * x.detach() ** 2

    class WrongInG(Cube):
        @staticmethod
        def backward(ctx, g):  # right value; an extra x·(g − g) term differentiates to x
            (x,) = ctx.saved_tensors
            return g * 3 * x**2 + (g - g.detach()) * x

    class BadJvp(Cube):
        @staticmethod
        def jvp(ctx, t):  # 2x² instead of 3x²; backward right
            (x,) = ctx.saved_tensors
            return t * 2 * x**2

    class NoJvp(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x**3

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * 3 * x**2

    return {c.__name__: c.apply for c in (Cube, Detached, WrongInG, BadJvp, NoJvp)}


@pytest.fixture
def x(torch):
    g = torch.Generator().manual_seed(0)
    return torch.randn(3, 4, dtype=torch.float64, generator=g).requires_grad_(True)


def test_order2_passes_a_right_double_backward_with_named_components(fns, x):
    before = x.detach().clone()
    report = gradcheck.torch.check_function(fns["Cube"], x, order=2)
    assert report.passed, report
    assert list(report.components) == ["input0", INPUT, "cotangent"]
    assert torch_equal(x, before) and x.grad is None


def torch_equal(a, b):
    return bool((a.detach() == b).all())


def test_a_detached_factor_in_backward_fails_at_order_2_only(fns, x):
    assert gradcheck.torch.check_function(fns["Detached"], x).passed
    report = gradcheck.torch.check_function(fns["Detached"], x, order=2)
    assert not report.passed
    assert report.suspects == (INPUT,)
    assert NoteCode.ORDER2_BACKWARD in _codes(report)


def test_a_backward_wrong_in_its_cotangent_derivative_names_the_cotangent(fns, x):
    assert gradcheck.torch.check_function(fns["WrongInG"], x).passed
    report = gradcheck.torch.check_function(fns["WrongInG"], x, order=2)
    assert report.suspects == ("cotangent",)


def test_order2_on_a_module_passes_and_leaves_it_untouched(torch):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))
    net = net.double()
    saved = {k: v.clone() for k, v in net.state_dict().items()}
    report = gradcheck.torch.check_module(
        net, torch.randn(5, 3, dtype=torch.float64), order=2,
        loss_fn=lambda out: (out**2).mean(),
    )
    assert report.passed, report
    assert "0.weight (backward w.r.t. input)" in report.components
    assert "cotangent" in report.components
    assert all(torch.equal(saved[k], v) for k, v in net.state_dict().items())
    assert all(p.grad is None for p in net.parameters())


def test_forward_mode_passes_a_right_jvp(fns, x):
    report = gradcheck.torch.check_function(fns["Cube"], x, mode="both")
    assert report.passed, report
    assert list(report.components) == ["input0 (reverse)", "input0 (forward)"]


def test_a_wrong_jvp_with_a_right_backward_fails_in_forward_mode_only(fns, x):
    assert gradcheck.torch.check_function(fns["BadJvp"], x).passed
    assert gradcheck.torch.check_function(fns["BadJvp"], x, order=2).passed
    report = gradcheck.torch.check_function(fns["BadJvp"], x, mode="forward")
    assert report.suspects == ("input0 (forward)",)
    both = gradcheck.torch.check_function(fns["BadJvp"], x, mode="both")
    assert both.suspects == ("input0 (forward)",)
    assert any(n.code is NoteCode.MODES_DISAGREE and n.numbers["wrong"] == "forward" for n in both.notes)


def test_forward_mode_on_a_module(torch):
    torch.manual_seed(1)
    net = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Sigmoid()).double()
    report = gradcheck.torch.check_module(net, torch.randn(4, 2, dtype=torch.float64), mode="forward")
    assert report.passed, report
    assert set(report.components) == {"0.weight (forward)", "0.bias (forward)"}


def test_forward_mode_without_a_jvp_is_an_error_naming_the_fix(fns, x):
    with pytest.raises(gradcheck.GradCheckError, match="jvp"):
        gradcheck.torch.check_function(fns["NoJvp"], x, mode="forward")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"order": 3}, "order=3"),
        ({"order": True}, "order=True"),
        ({"mode": "sideways"}, "mode='sideways'"),
        ({"order": 2, "mode": "forward"}, "order=2, mode='forward'"),
        ({"order": 2, "jacobian": True}, "jacobian=True"),
    ],
)
def test_bad_order_or_mode_is_an_option_error(fns, x, kwargs, match):
    with pytest.raises(gradcheck.OptionError, match=match.replace("(", r"\(")):
        gradcheck.torch.check_function(fns["Cube"], x, **kwargs)


# --- JAX -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def jax():
    return pytest.importorskip("jax")


@pytest.fixture(scope="module")
def jfns(jax):
    jnp = jax.numpy

    def vjp_cube(stop):
        @jax.custom_vjp
        def cube(x):
            return x**3

        def bwd(x, g):
            return (g * 3 * (jax.lax.stop_gradient(x) if stop else x) ** 2,)

        cube.defvjp(lambda x: (x**3, x), bwd)
        return cube

    def jvp_sin(factor):
        @jax.custom_jvp
        def f(x):
            return jnp.sin(x)

        f.defjvp(lambda p, t: (jnp.sin(p[0]), factor * jnp.cos(p[0]) * t[0]))
        return f

    return {
        "cube": vjp_cube(False),
        "cube_stop": vjp_cube(True),
        "sin": jvp_sin(1.0),
        "sin_bad": jvp_sin(1.01),
    }


X = np.random.default_rng(0).standard_normal((3, 2))


def test_jax_order2_right_bwd_passes_and_stop_gradient_in_bwd_fails_at_order_2_only(jfns):
    right = gradcheck.jax.check(jfns["cube"], X, order=2, vectorize="loop")
    assert right.passed, right
    assert list(right.components) == ["arg0", "arg0 (backward w.r.t. input)", "cotangent"]
    assert gradcheck.jax.check(jfns["cube_stop"], X).passed
    wrong = gradcheck.jax.check(jfns["cube_stop"], X, order=2, vectorize="loop")
    assert wrong.suspects == ("arg0 (backward w.r.t. input)",)


def test_jax_forward_mode_checks_custom_jvp(jfns):
    assert gradcheck.jax.check(jfns["sin"], X, mode="both").passed
    report = gradcheck.jax.check(jfns["sin_bad"], X, mode="forward")
    assert report.suspects == ("arg0 (forward)",)


def test_jax_forward_mode_of_custom_vjp_is_an_error_naming_the_fix(jfns):
    with pytest.raises(gradcheck.GradCheckError, match="custom_jvp"):
        gradcheck.jax.check(jfns["cube"], X, mode="forward")


def test_jax_order2_on_a_pytree_with_a_scalar_output():
    jnp = pytest.importorskip("jax.numpy")
    params = {"W": np.ones((2, 3)) * 0.3, "b": np.zeros(3)}

    def f(p, x):
        return jnp.sum(jnp.tanh(x @ p["W"] + p["b"]) ** 2)

    report = gradcheck.jax.check(f, params, np.ones((4, 2)), order=2, vectorize="loop")
    assert report.passed, report
    assert {"W (backward w.r.t. input)", "b (backward w.r.t. input)", "cotangent"} <= set(
        report.components
    )


def test_order2_of_a_once_differentiable_backward_fails_with_a_note_naming_it(torch, x):
    from torch.autograd.function import once_differentiable

    class Once(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x**3

        @staticmethod
        @once_differentiable
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * 3 * x**2

    assert gradcheck.torch.check_function(Once.apply, x).passed
    report = gradcheck.torch.check_function(Once.apply, x, order=2)
    assert set(report.suspects) == {INPUT, "cotangent"}  # double backward gives zeros for both
    assert NoteCode.ORDER2_CUT in _codes(report)


def test_order2_with_two_outputs_names_a_cotangent_per_output(torch, x):
    report = gradcheck.torch.check_function(lambda a: (a.sin(), a * a.exp()), x, order=2)
    assert report.passed, report
    assert {"cotangent (output 0)", "cotangent (output 1)", INPUT} <= set(report.components)


def test_forward_mode_on_a_large_input_uses_random_tangents_and_still_sees_one_wrong_entry(torch):
    def make(bad: bool):
        class Sin(torch.autograd.Function):
            @staticmethod
            def forward(x):
                return x.sin()

            @staticmethod
            def setup_context(ctx, inputs, output):
                ctx.save_for_forward(inputs[0])

            @staticmethod
            def backward(ctx, g):  # pragma: no cover - forward mode only here
                raise AssertionError("not called")

            @staticmethod
            def jvp(ctx, t):
                (x,) = ctx.saved_tensors
                out = t * x.cos()
                if bad:  # one entry of 4,900 off by 1%
                    out = out * torch.where(torch.arange(x.numel()) == 1234, 1.01, 1.0).view(x.shape)
                return out

        return Sin.apply

    g = torch.Generator().manual_seed(2)
    x = torch.randn(70, 70, dtype=torch.float64, generator=g).requires_grad_(True)
    right = gradcheck.torch.check_function(make(False), x, mode="forward")
    assert right.passed, right
    assert right.components["input0 (forward)"].shape == (16,)  # 16 random tangents
    assert NoteCode.FORWARD_TANGENTS in _codes(right)
    assert gradcheck.torch.check_function(make(True), x, mode="forward").suspects == (
        "input0 (forward)",
    )


@pytest.mark.parametrize("op", ["softmax", "layer_norm", "atan2", "cumprod"])
def test_no_false_alarm_at_order_2_or_in_both_modes_on_float32_library_ops(torch, op):
    fns = {
        "softmax": lambda a, b: (a * b).softmax(1),
        "layer_norm": lambda a, b: torch.nn.functional.layer_norm(a, (4,)) * b,
        "atan2": torch.atan2,
        "cumprod": lambda a, b: (a * 0.5).cumprod(1) + b.tanh(),
    }
    g = torch.Generator().manual_seed(5)
    a, b = (torch.randn(3, 4, generator=g).requires_grad_(True) for _ in range(2))
    assert gradcheck.torch.check_function(fns[op], a, b, order=2).passed
    assert gradcheck.torch.check_function(fns[op], a, b, mode="both").passed
