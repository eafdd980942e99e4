"""gradcheck.torch on what PyTorch can differentiate beyond dense real tensors: complex inputs and
outputs, empty tensors, non-differentiable outputs, sparse inputs, non-finite inputs, domain edges.
"""

from __future__ import annotations

import numpy as np
import pytest

from gradcheck.report._sentences import NoteCode

torch = pytest.importorskip("torch")

import gradcheck  # noqa: E402
import gradcheck.frameworks.torch as gt  # noqa: E402
from gradcheck.report._model import UNCHECKED  # noqa: E402

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def _z(n=4, seed=0, dtype=torch.complex128):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, dtype=dtype, generator=g).requires_grad_(True)


def _abs2(conjugated: bool):
    """J = Σ|z|²: torch's gradient is 2z (∂J/∂x + i∂J/∂y); the conjugated bug returns 2·z̄."""

    class Abs2(torch.autograd.Function):
        @staticmethod
        def forward(ctx, z):
            ctx.save_for_backward(z)
            return (z * z.conj()).real.sum()

        @staticmethod
        def backward(ctx, g):
            (z,) = ctx.saved_tensors
            return g * 2 * (z.conj() if conjugated else z)

    return Abs2.apply


def test_complex_real_output_right_passes_and_names_the_convention() -> None:
    z = _z()
    report = gt.check_function(_abs2(False), z)
    assert report.passed
    assert report.components["input0"].shape == (4, 2)  # real and imaginary parts
    assert any(n.code is NoteCode.COMPLEX_INPUT and "conjugate Wirtinger" in n.numbers["convention"]
               for n in report.notes)
    assert any(n.code is NoteCode.COMPLEX_WORST and n.tensor == "input0" for n in report.notes)


def test_complex_conjugated_gradient_is_caught_and_named() -> None:
    z = _z()
    report = gt.check_function(_abs2(True), z)
    assert not report.passed
    kinds = {f.kind for f in report.findings if f.param == "input0"}
    assert kinds == {"conjugated"}
    assert "grad.conj()" in report.explain()


def test_complex_outputs_and_ops_pass() -> None:
    z = _z(6)
    for fn in (torch.fft.fft, lambda z: z * z.exp(), lambda z: torch.fft.fft(z).abs()):
        assert gt.check_function(fn, z).passed
    x = torch.randn(6, dtype=torch.float64, requires_grad=True)
    assert gt.check_function(torch.fft.rfft, x).passed  # real in, complex out
    assert gt.check_function(lambda a, b: torch.polar(a.abs() + 1, b), x, x.detach().clone().requires_grad_()).passed


def test_conjugated_backward_with_complex_output_is_named() -> None:
    class Square(torch.autograd.Function):  # forgets the conjugate: g·2z instead of g·conj(2z)
        @staticmethod
        def forward(ctx, z):
            ctx.save_for_backward(z)
            return z * z

        @staticmethod
        def backward(ctx, g):
            (z,) = ctx.saved_tensors
            return g * 2 * z

    report = gt.check_function(Square.apply, _z())
    assert not report.passed
    assert [f.kind for f in report.findings] == ["conjugated"]  # found with a real cotangent


def test_empty_input_is_left_out_with_a_note() -> None:
    e = torch.zeros(0, 3, dtype=torch.float64, requires_grad=True)
    x = torch.randn(3, dtype=torch.float64, requires_grad=True)
    report = gt.check_function(lambda a, b: a.sum(0) + b, e, x)
    assert report.passed and list(report.components) == ["input1"]
    assert any(n.code is NoteCode.EMPTY and n.tensor == "input0" and n.numbers["shape"] == (0, 3) for n in report.notes)


def test_all_empty_says_nothing_was_checked_not_passed() -> None:
    e = torch.zeros(0, dtype=torch.float64, requires_grad=True)
    report = gt.check_function(torch.sin, e)
    assert report.passed is None and not report.components and report.evaluations == 0
    assert report.explain().startswith("NOTHING CHECKED")
    assert "PASSED" not in report.explain()


def test_outputs_without_gradient_are_left_out() -> None:
    x = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    w = torch.randn(3, dtype=torch.float64, requires_grad=True)
    report = gt.check_function(lambda a, w: torch.native_layer_norm(a, (3,), w, None, 1e-5), x, w)
    assert report.passed
    assert any(n.code is NoteCode.UNDIFFERENTIABLE_OUTPUTS and n.numbers["outputs"][:2] == (1, 2) for n in report.notes)
    report = gt.check_function(lambda a: (a.max(0), a.argmax()), x)  # values, indices, argmax
    assert report.passed and any(n.code is NoteCode.INTEGER_OUTPUTS and n.numbers["dtypes"] == ("int64",) for n in report.notes)


def test_zero_tensor_and_unused_gradients_are_zero() -> None:
    x = torch.randn(4, dtype=torch.float64, requires_grad=True)
    assert gt.check_function(torch.sgn, x).passed  # autograd returns a ZeroTensor
    y = torch.randn(4, dtype=torch.float64, requires_grad=True)
    assert gt.check_function(lambda a, b: a * 2, x, y).passed  # None gradient for b


@pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta")
@pytest.mark.parametrize("layout", ["coo", "csr"])
def test_sparse_inputs_checked_through_stored_values(layout) -> None:
    dense = torch.tensor([[1.0, 0, 2], [0, 3, 0]], dtype=torch.float64)
    s = (dense.to_sparse() if layout == "coo" else dense.to_sparse_csr()).requires_grad_(True)
    w = torch.randn(3, 2, dtype=torch.float64)
    report = gt.check_function(lambda a: torch.sparse.mm(a, w) if layout == "coo" else a @ w, s)
    assert report.passed and report.components["input0"].shape == (3,)
    assert NoteCode.SPARSE_INPUT in report.note_codes

    class Bad(torch.autograd.Function):  # a backward with the wrong sign, seen on stored values
        @staticmethod
        def forward(ctx, a):
            return a.to_dense() * 2

        @staticmethod
        def backward(ctx, g):
            return -2 * g

    assert not gt.check_function(Bad.apply, s).passed


def test_minus_inf_inputs_are_left_unperturbed() -> None:
    x = torch.tensor([1.0, -float("inf"), 0.5, 2.0], dtype=torch.float64, requires_grad=True)
    report = gt.check_function(lambda a: torch.softmax(a, 0), x)
    assert report.passed
    c = report.components["input0"]
    assert c.checked == 3 and c.flags[1] == UNCHECKED
    assert any(n.code is NoteCode.NONFINITE and n.numbers["count"] == 1 for n in report.notes)
    assert torch.isinf(x[1])  # the user's tensor untouched


def test_domain_edge_in_float32_uses_smaller_steps_and_still_catches_bugs() -> None:
    x = torch.tensor([0.3, 0.9995, -0.9993], dtype=torch.float32, requires_grad=True)
    report = gt.check_function(torch.asin, x, precision="native")
    assert report.passed
    assert any("edge of the loss's domain" in n for n in report.notes)

    class BadAsin(torch.autograd.Function):
        @staticmethod
        def forward(ctx, a):
            ctx.save_for_backward(a)
            return torch.asin(a)

        @staticmethod
        def backward(ctx, g):
            (a,) = ctx.saved_tensors
            return g * 1.05 / torch.sqrt(1 - a * a)

    assert not gt.check_function(BadAsin.apply, x, precision="native").passed


def test_numpy_check_domain_edge_and_non_finite_params() -> None:
    x = np.array([0.3, 0.999998, -0.999997])
    loss = lambda p: float(np.sum(np.arcsin(p["x"])))  # noqa: E731
    with np.errstate(invalid="ignore"):
        assert gradcheck.check(loss, {"x": x}, {"x": 1 / np.sqrt(1 - x**2)}).passed
        assert not gradcheck.check(loss, {"x": x}, {"x": 1.01 / np.sqrt(1 - x**2)}).passed
    y = np.array([0.5, np.inf, -1.0])
    report = gradcheck.check(lambda p: float(np.sum(np.tanh(p["y"]))), {"y": y}, {"y": 1 / np.cosh(y) ** 2})
    assert report.passed and report.components["y"].checked == 2


def test_no_step_works_names_the_entry() -> None:
    def loss(p):  # finite only at exactly the given point
        return 1.0 if p["x"][1] == 0.5 else float("nan")

    with pytest.raises(gradcheck.NonFiniteError, match="x entry 1"):
        gradcheck.check(loss, {"x": np.array([0.2, 0.5])}, {"x": np.zeros(2)})
