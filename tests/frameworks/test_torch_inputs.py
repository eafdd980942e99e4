"""gradcheck.torch on hostile inputs and modules: tensors inside lists/tuples/dicts, forwards that
write into parameters or buffers, gradient hooks; the user's objects untouched after each call."""

from __future__ import annotations

import warnings

import pytest

torch = pytest.importorskip("torch")

import gradcheck  # noqa: E402
import gradcheck.frameworks.torch as gt  # noqa: E402
from gradcheck.report._sentences import NoteCode  # noqa: E402

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def _x(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, dtype=torch.float64, generator=g).requires_grad_(True)


class _ScaleSecond(torch.autograd.Function):
    """out = [a, 3b] from a list input; the backward forgets the 3 on b."""

    @staticmethod
    def forward(ctx, a, b):
        return torch.cat([a, 3 * b])

    @staticmethod
    def backward(ctx, g):
        n = g.shape[0] // 2
        return g[:n], g[n:]  # should be 3 * g[n:]


def test_tensors_inside_lists_tuples_and_dicts_are_checked_and_named() -> None:
    a, b = _x(3, 2), _x(3, 2, seed=1)
    report = gt.check_function(torch.cat, [a, b])
    assert report.passed and list(report.components) == ["input0.0", "input0.1"]
    report = gt.check_function(lambda d, s: d["w"] * d["v"] * s, {"w": a, "v": b}, 2.0)
    assert report.passed and list(report.components) == ["input0.w", "input0.v"]
    bad = gt.check_function(lambda ts: _ScaleSecond.apply(*ts), (a, b))
    assert bad.suspects == ("input0.1",)
    # a tensor without requires_grad inside the list stays a constant
    report = gt.check_function(torch.cat, [a, b.detach()])
    assert report.passed and list(report.components) == ["input0.0"]
    assert a.grad is None and b.grad is None


def _embedding(max_norm):
    torch.manual_seed(0)
    emb = torch.nn.Embedding(6, 3, max_norm=max_norm).double()
    with torch.no_grad():
        emb.weight.mul_(4.0)  # rows of norm ~7, above max_norm=1
    return emb, torch.tensor([[0, 2, 5], [1, 1, 3]])


def test_a_forward_that_overwrites_a_parameter_is_refused_and_the_module_untouched() -> None:
    emb, idx = _embedding(max_norm=1.0)
    before = emb.weight.detach().clone()
    with pytest.raises(gradcheck.GradCheckError, match=r"writes into parameter 'weight'.*max_norm"):
        gt.check_module(emb, idx)
    assert torch.equal(emb.weight, before) and emb.weight.grad is None
    emb, idx = _embedding(max_norm=100.0)  # no row is renormalised: nothing is written
    assert gt.check_module(emb, idx).passed


def test_spectral_norm_in_train_mode_fails_with_the_written_buffers_named() -> None:
    torch.manual_seed(0)
    with warnings.catch_warnings():  # a FutureWarning in some torch versions
        warnings.simplefilter("ignore")
        lin = torch.nn.utils.spectral_norm(torch.nn.Linear(4, 3))
    x = torch.randn(5, 4)
    u = lin.weight_u.clone()
    report = gt.check_module(lin, x)  # power iteration under no_grad: autograd ≠ derivative
    assert not report.passed
    assert any(n.code is NoteCode.WRITTEN_BUFFERS
               and {"weight_u", "weight_v"} <= set(n.numbers["buffers"]) for n in report.notes)
    assert torch.equal(lin.weight_u, u) and lin.training
    lin.eval()
    assert gt.check_module(lin, x).passed


def test_gradient_hooks_on_parameters_are_named_in_a_note() -> None:
    torch.manual_seed(0)
    lin = torch.nn.Linear(4, 3)
    handle = lin.weight.register_hook(lambda g: 2 * g)
    report = gt.check_module(lin, torch.randn(5, 4))
    assert report.passed
    assert any(n.code is NoteCode.HOOKS and n.numbers["params"] == ("weight",) for n in report.notes)
    handle.remove()
    assert NoteCode.HOOKS not in gt.check_module(lin, torch.randn(5, 4)).note_codes


class _MemoryOrder(torch.autograd.Function):
    """y = x read in memory order (as a kernel that ignores strides would) times 1..n; the
    backward maps the gradient back in logical order: right only for contiguous x."""

    @staticmethod
    def forward(ctx, x):
        ctx.shape = x.shape
        return x.as_strided((x.numel(),), (1,)) * torch.arange(1.0, x.numel() + 1).double()

    @staticmethod
    def backward(ctx, g):
        return (g * torch.arange(1.0, g.numel() + 1).double()).reshape(ctx.shape)


def test_fn_sees_the_inputs_own_layout() -> None:
    base = _x(3, 4).detach()
    assert gt.check_function(_MemoryOrder.apply, base.clone().requires_grad_(True)).passed
    transposed = base.t().requires_grad_(True)  # the layout bug shows only here
    before = transposed.detach().clone()
    assert gt.check_function(_MemoryOrder.apply, transposed).suspects == ("input0",)
    assert torch.equal(transposed, before) and transposed.stride() == (1, 4)
    # as_strided counts its storage offset from the storage's start: entries 5..8 of the view
    view = _x(20).detach()[5:15].requires_grad_(True)
    report = gt.check_function(lambda t: t.as_strided((2, 2), (1, 2), 10), view)
    assert report.passed
    assert (report.components["input0"].analytic_array != 0).tolist() == [
        False] * 5 + [True] * 4 + [False]


class _ExpOff(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        y = x.exp()
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return 1.01 * g * y  # 1% off


def test_a_function_that_differentiates_inside_is_checked_with_grad_enabled() -> None:
    x = _x(4)

    def penalty(t):  # d/dt of sum(t^3), as a gradient penalty computes it
        (g,) = torch.autograd.grad((t**3).sum(), t, create_graph=True)
        return g.sin()

    report = gt.check_function(penalty, x)
    assert report.passed and NoteCode.GRAD_INSIDE in report.note_codes
    assert gt.check_function(lambda t: _ExpOff.apply(penalty(t)), x).suspects == ("input0",)
    assert x.grad is None
    # a function that fails with grad enabled too is still the forward's error
    with pytest.raises(gradcheck.LossRaisedError, match="fn\\(\\*inputs\\) raised"):
        gt.check_function(lambda t: torch.autograd.grad(t.sum(), t)[0] @ torch.ones(3), x)


class _RaisingBackward(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return 2 * x

    @staticmethod
    def backward(ctx, g):
        raise ValueError("shape bug in backward")


def test_a_backward_that_raises_is_named_as_the_backward() -> None:
    x = _x(3)
    with pytest.raises(gradcheck.GradCheckError, match="the backward raised ValueError: shape bug"):
        gt.check_function(_RaisingBackward.apply, x)
    with pytest.raises(gradcheck.GradCheckError, match="backward raised NotImplementedError"):
        gt.check_function(torch.unique, x)
    assert x.grad is None


class _Pinn(torch.nn.Module):
    """A physics-informed output: the derivative of the network w.r.t. its input."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(3, 1)

    def forward(self, x):
        x = x.clone().requires_grad_(True)
        (du,) = torch.autograd.grad(torch.tanh(self.lin(x)).sum(), x, create_graph=True)
        return du


def test_modules_that_differentiate_inside_scripted_and_lazy_modules() -> None:
    torch.manual_seed(0)
    x = torch.randn(5, 3)
    report = gt.check_module(_Pinn(), x)
    assert report.passed and NoteCode.GRAD_INSIDE in report.note_codes
    with warnings.catch_warnings():  # torch.jit.script is deprecated in recent torch
        warnings.simplefilter("ignore")
        scripted = torch.jit.script(torch.nn.Linear(3, 2))
    with pytest.raises(gradcheck.OptionError, match="TorchScript"):
        gt.check_module(scripted, x)
    lazy = torch.nn.LazyLinear(2)
    with pytest.raises(gradcheck.OptionError, match="'weight' is not initialized"):
        gt.check_module(lazy, x)
    lazy(x)  # initialized: checked as any Linear
    assert gt.check_module(lazy, x).passed
