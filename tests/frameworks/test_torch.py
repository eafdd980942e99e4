"""gradcheck.torch: modules and custom autograd Functions, checked on copies, state untouched."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gradcheck.report._sentences import NoteCode

torch = pytest.importorskip("torch")

import gradcheck  # noqa: E402
import gradcheck.frameworks.torch as gt  # noqa: E402
from gradcheck.frameworks._batching import accepts_batched  # noqa: E402

needs_hook = pytest.mark.skipif(
    not accepts_batched(), reason="this gradcheck.check has no batched_loss hook"
)


pytestmark = pytest.mark.usefixtures("torch_one_thread")


# --- custom Functions with planted bugs ------------------------------------------------------


class Mul(torch.autograd.Function):
    """a * b with a correct backward."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        return g * b, g * a


class MulMissingTerm(Mul):
    """Forgets the gradient of the second input."""

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        return g * b, torch.zeros_like(b)


class ExpWrongSign(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        y = x.exp()
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return -g * y


class SinIgnoresGradOutput(torch.autograd.Function):
    """Returns cos(x) as if grad_output were all ones: a plain sum as J would hide it."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.sin()

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return x.cos()


class SquareAndSin(torch.autograd.Function):
    """Two outputs; ``wrong`` differentiates the second one as if it were cos(x)."""

    wrong = False

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x**2, x.sin()

    @staticmethod
    def backward(ctx, g1, g2):
        (x,) = ctx.saved_tensors
        second = -x.sin() if SquareAndSin.wrong else x.cos()
        return 2 * x * g1 + g2 * second


class Float32Only(torch.autograd.Function):
    """A "kernel" that exists only in float32: forward refuses anything else."""

    @staticmethod
    def forward(ctx, x):
        if x.dtype != torch.float32:
            raise TypeError("float32_tanh only supports float32")
        y = x.tanh()
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return g * (1 - y**2)


class VmappableCube(torch.autograd.Function):
    """x³ with setup_context + generate_vmap_rule, so torch.func.vmap can batch it."""

    generate_vmap_rule = True

    @staticmethod
    def forward(x):
        return x**3

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(inputs[0])

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return 3 * x**2 * g


def _inputs(*shape, n=2, dtype=torch.float64, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(*shape, generator=gen, dtype=dtype).requires_grad_() for _ in range(n)]


# --- correct modules pass --------------------------------------------------------------------


def _modules():
    torch.manual_seed(0)
    return {
        "linear": (torch.nn.Linear(3, 2), (torch.randn(4, 3),)),
        "conv": (torch.nn.Conv2d(2, 2, 3), (torch.randn(1, 2, 4, 4),)),
        "layernorm": (torch.nn.LayerNorm(4), (torch.randn(3, 4),)),
        "attention": (
            torch.nn.MultiheadAttention(4, 2, batch_first=True),
            (torch.randn(1, 3, 4),) * 3,
        ),
    }


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("kind", ["linear", "conv", "layernorm", "attention"])
def test_correct_modules_pass(kind, dtype) -> None:
    module, inputs = _modules()[kind]
    module = module.to(dtype)
    report = gt.check_module(module, *(x.to(dtype) for x in inputs))
    assert report.passed, str(report)
    assert set(report.components) == {n for n, _ in module.named_parameters()}
    assert all(c.checked > 0 for c in report.components.values())


@pytest.mark.parametrize("kind", ["linear", "layernorm"])
def test_float32_in_its_own_dtype_passes_with_noise_aware_tolerance(kind) -> None:
    module, inputs = _modules()[kind]
    report = gt.check_module(module, *inputs, precision="native")
    assert report.passed, str(report)
    assert any(n.code is NoteCode.PRECISION and n.numbers["evaluated"] == "float32" for n in report.notes)
    assert any("low precision" in n for n in report.notes)


def test_nested_names_come_from_named_parameters() -> None:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))
    net[0].bias.requires_grad_(False)
    report = gt.check_module(net, torch.randn(5, 3))
    assert report.passed
    assert list(report.components) == ["0.weight", "2.weight", "2.bias"]


# --- planted bugs are caught and named -------------------------------------------------------


def test_missing_term_for_second_input_is_named() -> None:
    a, b = _inputs(3, 4)
    report = gt.check_function(MulMissingTerm.apply, a, b)
    assert not report.passed
    assert report.suspects == ("input1",)
    c = report.components["input1"]
    assert c.analytic == 0.0 and c.numeric != 0.0
    assert report.components["input0"].passed
    assert gt.check_function(Mul.apply, a, b).passed


def test_wrong_sign_is_caught_with_the_worst_index() -> None:
    (x,) = _inputs(2, 3, n=1)
    report = gt.check_function(ExpWrongSign.apply, x, names=["logits"])
    assert report.suspects == ("logits",)
    c = report.components["logits"]
    assert c.numeric == pytest.approx(-c.analytic, rel=1e-6)
    assert c.mismatches == 6 and c.worst_index in {(i, j) for i in range(2) for j in range(3)}
    np.testing.assert_allclose(c.numeric_array, -c.analytic_array, rtol=1e-6)


def test_gradient_that_ignores_grad_output_is_caught_where_a_plain_sum_hides_it() -> None:
    (x,) = _inputs(6, n=1)
    assert gt.check_function(SinIgnoresGradOutput.apply, x).suspects == ("input0",)
    module = _Wrap(SinIgnoresGradOutput.apply, 6)
    assert not gt.check_module(module, torch.zeros(6, dtype=torch.float64)).passed
    # J = sum(output) feeds grad_output = 1, which is exactly what the bug assumes.
    assert gt.check_module(module, torch.zeros(6, dtype=torch.float64), loss_fn=torch.sum).passed


def test_the_wrong_input_output_pair_is_named() -> None:
    (x,) = _inputs(4, n=1)
    SquareAndSin.wrong = False
    ok = gt.check_function(SquareAndSin.apply, x)
    # The outputs are checked together (one component per input) while that passes ...
    assert ok.passed and set(ok.components) == {"input0"}
    SquareAndSin.wrong = True
    try:
        report = gt.check_function(SquareAndSin.apply, x)
    finally:
        SquareAndSin.wrong = False
    # ... and one by one, with the same cotangents, where it fails: the pair is named.
    assert report.suspects == ("input0 (output 1)",)
    assert "input0 (output 1)" in str(report) and report.components["input0 (output 0)"].passed


def test_a_module_with_two_outputs_names_the_wrong_one_by_the_same_convention() -> None:
    module = _Wrap(SquareAndSin.apply, 4)
    x = torch.zeros(4, dtype=torch.float64)
    assert set(gt.check_module(module, x).components) == {"weight"}  # together, passing
    SquareAndSin.wrong = True
    try:
        report = gt.check_module(module, x)
    finally:
        SquareAndSin.wrong = False
    assert report.suspects == ("weight (output 1)",)
    assert NoteCode.BY_OUTPUT in report.note_codes


def test_jacobian_mode_compares_every_entry() -> None:
    a, b = _inputs(3, n=2)
    good = gt.check_function(Mul.apply, a, b, jacobian=True)
    assert good.passed and list(good.components) == ["input0 (output)", "input1 (output)"]
    block = good.components["input1 (output)"]
    assert block.shape == (3, 3) and block.checked == 9
    np.testing.assert_allclose(block.analytic_array, np.diag(a.detach().numpy()), atol=0)
    bad = gt.check_function(MulMissingTerm.apply, a, b, jacobian=True)
    assert bad.suspects == ("input1 (output)",)
    assert bad.components["input1 (output)"].mismatches == 3  # the diagonal, nothing else
    assert (
        bad.components["input1 (output)"].worst_index[0]
        == bad.components["input1 (output)"].worst_index[1]
    )
    with pytest.raises(gradcheck.OptionError, match="jacobian"):
        gt.check_function(Mul.apply, *_inputs(200, 200), jacobian=True)


class _Wrap(torch.nn.Module):
    """A module whose forward runs a custom Function on ``x + weight``."""

    def __init__(self, fn, n, dtype=torch.float64):
        super().__init__()
        self.fn = fn
        self.weight = torch.nn.Parameter(torch.linspace(-1, 1, n, dtype=dtype))

    def forward(self, x):
        return self.fn(x + self.weight)


def test_bug_inside_a_module_is_named_by_parameter() -> None:
    report = gt.check_module(_Wrap(ExpWrongSign.apply, 5), torch.zeros(5, dtype=torch.float64))
    assert report.suspects == ("weight",)
    assert json.loads(report.to_json())["suspects"] == ["weight"]


def test_float32_only_kernel_is_checked_in_its_own_dtype() -> None:
    (x,) = _inputs(5, n=1, dtype=torch.float32)
    report = gt.check_function(Float32Only.apply, x)
    assert report.passed, str(report)
    assert any(n.code is NoteCode.PRECISION and "TypeError" in n.numbers["why"] for n in report.notes)
    with pytest.raises(gradcheck.GradCheckError, match="precision='float64'"):
        gt.check_function(Float32Only.apply, x, precision="float64")


class Float16Only(ExpWrongSign):
    """A half-precision "kernel" with a wrong sign: forward refuses anything but float16."""

    @staticmethod
    def forward(ctx, x):
        if x.dtype != torch.float16:
            raise TypeError("half_exp only supports float16")
        y = x.exp()
        ctx.save_for_backward(y)
        return y


def test_float16_only_kernel_is_checked_in_float16() -> None:
    (x,) = _inputs(6, n=1, dtype=torch.float16)
    report = gt.check_function(Float16Only.apply, x)
    assert report.suspects == ("input0",), str(report)
    assert report.components["input0"].mismatches == 6
    torch.manual_seed(0)
    linear = torch.nn.Linear(4, 3).half()
    assert gt.check_module(linear, torch.randn(5, 4).half(), precision="native").passed
    with pytest.raises(gradcheck.GradCheckError, match="bfloat16"):
        gt.check_module(linear.bfloat16(), torch.randn(5, 4).bfloat16(), precision="native")


# --- speed path: vmap, with a loop fallback that says so -------------------------------------


def test_vmapped_values_equal_the_loop() -> None:
    (x,) = _inputs(5, n=1)
    problem = gt._FunctionProblem(VmappableCube.apply, (x,), None)
    objective = gt._objective(None, 0)
    params = {"input0": x.detach().numpy().copy()}
    dtypes = {"input0": torch.float64}
    fn = gt._vmapped(problem, objective, params, dtypes, x.device, gt._cast64)
    thetas = np.random.default_rng(1).standard_normal((7, 5))
    with torch.no_grad():
        loop = [float(objective(VmappableCube.apply(torch.tensor(t)))) for t in thetas]
    np.testing.assert_allclose(fn(thetas), loop, rtol=1e-13)


@needs_hook
def test_notes_say_how_losses_were_evaluated() -> None:
    (x,) = _inputs(17, n=1)  # above SMALL entries: the batched path is tried
    assert not any(n.code is NoteCode.EVALUATION and n.numbers["path"] == "fallback" for n in gt.check_function(VmappableCube.apply, x).notes)
    looped = gt.check_function(ExpWrongSign.apply, x).notes
    assert any(n.code is NoteCode.EVALUATION and n.numbers["path"] == "fallback" and "vmap" in n.numbers["tool"] for n in looped)
    forced = gt.check_function(VmappableCube.apply, x, vectorize="loop").notes
    assert any("vectorize='loop'" in n for n in forced)
    with pytest.raises(gradcheck.GradCheckError, match="vectorize='vmap'"):
        gt.check_function(ExpWrongSign.apply, x, vectorize="vmap")


# --- the module comes back untouched ---------------------------------------------------------


class _Stateful(torch.nn.Module):
    def __init__(self, p_drop=0.0):
        super().__init__()
        self.lin = torch.nn.Linear(3, 4)
        self.norm = torch.nn.BatchNorm1d(4)
        self.drop = torch.nn.Dropout(p_drop)
        self.out = torch.nn.Linear(4, 2)

    def forward(self, x):
        return self.out(self.drop(torch.tanh(self.norm(self.lin(x)))))


def _state(module):
    return {
        "tensors": {n: t.detach().clone() for n, t in module.state_dict(keep_vars=True).items()},
        "flags": {n: p.requires_grad for n, p in module.named_parameters()},
        "grads": {n: p.grad for n, p in module.named_parameters()},
        "modes": [m.training for m in module.modules()],
        "rng": torch.get_rng_state(),
    }


def _assert_same(module, before) -> None:
    after = _state(module)
    for n, t in before["tensors"].items():
        assert t.dtype == after["tensors"][n].dtype
        assert torch.equal(
            t.view(torch.uint8) if t.dtype == torch.bool else t, after["tensors"][n]
        ), n
    assert after["flags"] == before["flags"]
    assert all(after["grads"][n] is g for n, g in before["grads"].items())
    assert after["modes"] == before["modes"]
    assert torch.equal(after["rng"], before["rng"])


def _prepared(p_drop=0.0):
    torch.manual_seed(0)
    module = _Stateful(p_drop)
    module.norm.train()
    module.out.eval()  # a mix of modes must survive
    module.lin.bias.requires_grad_(False)
    module.out.weight.grad = torch.ones_like(module.out.weight)
    return module, torch.randn(6, 3)


def test_module_state_untouched_after_pass_and_fail() -> None:
    module, x = _prepared()
    before = _state(module)
    assert gt.check_module(module, x).passed  # train-mode BatchNorm: deterministic per batch
    _assert_same(module, before)
    with pytest.raises(gradcheck.LossRaisedError):
        gt.check_module(module, x, loss_fn=_raises_after(40))
    _assert_same(module, before)


def _raises_after(n):
    calls = 0

    def loss_fn(out):
        nonlocal calls
        calls += 1
        if calls == n:
            raise RuntimeError("boom")
        return (out**2).sum()

    return loss_fn


def test_dropout_in_train_mode_is_refused_and_state_restored() -> None:
    module, x = _prepared(p_drop=0.5)
    module.train()
    before = _state(module)
    with pytest.raises(gradcheck.StochasticLossError, match=r"module\.eval\(\)"):
        gt.check_module(module, x)
    _assert_same(module, before)
    module.eval()
    assert gt.check_module(module, x).passed


def test_options_are_validated_with_sentences() -> None:
    (x,) = _inputs(3, n=1)
    with pytest.raises(gradcheck.OptionError, match="unexpected option 'tol'"):
        gt.check_function(torch.sin, x, tol=1e-3)
    with pytest.raises(gradcheck.OptionError, match="scheme='complex'"):
        gt.check_function(torch.sin, x, scheme="complex")
    with pytest.raises(gradcheck.OptionError, match="check_function"):
        gt.check_module(torch.sin, x)
    with pytest.raises(gradcheck.OptionError, match="requires_grad"):
        gt.check_function(torch.sin, x.detach())
    with pytest.raises(gradcheck.OptionError, match="precision"):
        gt.check_function(torch.sin, x, precision="half")


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_module_and_rng_untouched() -> None:
    torch.manual_seed(0)
    module = torch.nn.Sequential(
        torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2)
    ).cuda()
    x = torch.randn(5, 3, device="cuda")
    cuda_rng = torch.cuda.get_rng_state()
    before = {n: t.detach().clone() for n, t in module.state_dict().items()}
    assert gt.check_module(module, x).passed
    assert torch.equal(torch.cuda.get_rng_state(), cuda_rng)
    assert all(torch.equal(t, before[n]) for n, t in module.state_dict().items())
    report = gt.check_module(
        _Wrap(ExpWrongSign.apply, 4).cuda(), torch.zeros(4, device="cuda", dtype=torch.float64)
    )
    assert report.suspects == ("weight",)


def test_function_inputs_and_global_rng_untouched() -> None:
    a, b = _inputs(3, 2)
    a.grad = torch.full_like(a, 7.0)
    before = (a.detach().clone(), b.detach().clone(), torch.get_rng_state())
    assert not gt.check_function(MulMissingTerm.apply, a, b).passed
    assert torch.equal(a, before[0]) and torch.equal(b, before[1])
    assert torch.equal(a.grad, torch.full_like(a, 7.0)) and b.grad is None
    assert torch.equal(torch.get_rng_state(), before[2])


@settings(max_examples=12, deadline=None)
@given(
    shape=st.lists(st.integers(1, 4), min_size=1, max_size=3),
    seed=st.integers(0, 2**16),
    factor=st.sampled_from([1.0, 1.002, 0.99, -1.0, 2.0]),
)
def test_a_scaled_backward_fails_exactly_when_scaled(shape, seed, factor) -> None:
    """Any derivative off by 0.2% or more is caught; the exact one passes (same seed)."""

    class Scaled(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return torch.tanh(x)

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return factor * g * (1 - torch.tanh(x) ** 2)

    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(*shape, generator=gen, dtype=torch.float64).requires_grad_()
    report = gt.check_function(Scaled.apply, x, seed=seed)
    assert report.passed == (factor == 1.0), str(report)


def test_a_keyword_of_fn_given_to_check_function_says_to_bind_it() -> None:
    from gradcheck import OptionError

    def scaled(x, n=2):
        return x * n

    x = torch.randn(3, dtype=torch.float64, requires_grad=True)
    with pytest.raises(OptionError, match=r"n=\.\.\., a keyword argument of fn.*functools.partial"):
        gt.check_function(scaled, x, n=3)
