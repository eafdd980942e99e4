"""gradcheck.torch.check_against: hand-written bf16/fp16 kernels against their references."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")

import gradcheck.torch as gt  # noqa: E402
from gradcheck import LossRaisedError, OptionError  # noqa: E402
from gradcheck.frameworks._against_blocks import judge, make_blocks  # noqa: E402
from gradcheck.report._sentences import NoteCode  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from kernels import BUGS, KERNELS, inputs, kernel  # noqa: E402

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def run(name: str, size: int, seed: int, dtype: str, bug: str | None = None, **options):
    function, reference, names = KERNELS[name]
    return gt.check_against(kernel(function, bug), reference, *inputs(name, size, seed),
                            dtype=dtype, seed=seed, names=names, **options)


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
@pytest.mark.parametrize("name", sorted(KERNELS))
def test_correct_kernels_pass(name, dtype):
    for size, seed in ((16, 1), (48, 2)):
        report = run(name, size, seed, dtype)
        assert report.passed, report.explain()
        assert all(c.passed and c.checked == c.analytic_array.size
                   for c in report.components.values())


@pytest.mark.parametrize(("name", "bug", "dtype", "size", "grad", "kind"), BUGS)
def test_planted_bugs_are_caught_and_named(name, bug, dtype, size, grad, kind):
    report = run(name, size, 0, dtype, bug)
    assert report.passed is False
    assert report.suspects == (grad,), report.explain()
    assert [f.kind for f in report.findings] == [kind], report.explain()


def test_one_heads_dv_scale_is_localized_to_that_head():
    report = run("attention", 64, 0, "bfloat16", "dv_head_scale")
    (finding,) = report.findings
    assert finding.where == ("[0, 1, :, :]",)
    assert finding.factor == pytest.approx(1.01, abs=2e-3)
    dv = report.components["dv"]
    bad = np.argwhere(dv.flags == 2)
    assert len(bad) and {(int(b), int(h)) for b, h, _, _ in bad} == {(0, 1)}


def test_the_max_rule_misses_the_head_scale_that_the_block_rule_catches():
    """The issue's case: the kernel's max error is no more than twice the bf16 reference's."""
    report = run("attention", 64, 0, "bfloat16", "dv_head_scale")
    dv = report.components["dv"]
    kernel_max = np.max(np.abs(dv.analytic_array - dv.numeric_array))
    yard_max = np.max(np.abs(dv.value_array - dv.numeric_array))
    assert kernel_max <= 2 * yard_max
    assert not dv.passed


def test_transposed_tile_and_missing_term_say_where():
    tile = run("attention", 64, 0, "bfloat16", "dk_transposed_tile").findings[0]
    assert "[0, 1, :, :] rows 16:32, columns 0:16" in tile.detail
    ln = run("layer_norm", 32, 0, "bfloat16", "ln_no_mean")
    assert ln.components["dw"].passed and ln.components["db"].passed
    assert "one constant per row" in ln.findings[0].detail


def test_softmax_scale_is_sqrt_d():
    (finding,) = run("attention", 32, 0, "bfloat16", "dq_no_scale").findings
    assert finding.factor == pytest.approx(32**0.5, rel=0.01)
    assert "left out" in finding.detail


class Classifier(torch.nn.Module):
    """A reference with state: a float32 linear layer (and a draw from the global RNG)."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(16, 16)
        g = torch.Generator().manual_seed(0)
        with torch.no_grad():
            self.linear.weight.copy_(torch.randn(16, 16, generator=g) / 4)
            self.linear.bias.copy_(torch.randn(16, generator=g) / 4)

    def forward(self, z, t):
        return torch.nn.functional.cross_entropy(self.linear(z) + 0 * torch.randn(()), t)


def test_inputs_reference_and_global_state_are_untouched():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(8, 16, dtype=torch.float32, generator=g).requires_grad_()
    target = torch.randint(0, 16, (8,), generator=g)
    ref = Classifier()
    before = {k: v.clone() for k, v in ref.state_dict().items()}
    kept = x.detach().clone(), target.clone()
    rng, grad_mode = torch.get_rng_state(), torch.is_grad_enabled()
    with torch.no_grad():
        report = gt.check_against(ref, ref, x, target, dtype="bfloat16")
    assert report.passed and set(report.components) == {"out", "dx0"}
    assert NoteCode.AGAINST_HELD in report.note_codes
    assert torch.equal(x.detach(), kept[0]) and x.dtype == torch.float32 and x.grad is None
    assert torch.equal(target, kept[1])
    assert all(torch.equal(v, before[k]) for k, v in ref.state_dict().items())
    assert all(p.dtype == torch.float32 and p.grad is None for p in ref.parameters())
    assert torch.equal(torch.get_rng_state(), rng) and torch.is_grad_enabled() == grad_mode


def test_the_seed_sets_the_cotangents_and_the_drawn_inputs():
    a = run("rms_norm", 16, 0, "bfloat16")
    b = run("rms_norm", 16, 0, "bfloat16")
    c = run("rms_norm", 16, 5, "bfloat16")
    assert np.array_equal(a.components["dx"].analytic_array, b.components["dx"].analytic_array)
    assert not np.array_equal(a.components["dx"].analytic_array,
                              c.components["dx"].analytic_array)
    ref = KERNELS["rms_norm"][1]
    one = gt.check_against(ref, ref, (4, 8), (8,), seed=3)
    two = gt.check_against(ref, ref, (4, 8), (8,), seed=3)
    assert np.array_equal(one.components["out"].numeric_array,
                          two.components["out"].numeric_array)


def test_the_report_states_its_tolerance_and_renders():
    report = run("attention", 64, 0, "bfloat16", "dv_head_scale")
    stats = [n for n in report.notes if n.code is NoteCode.AGAINST_STATS and n.tensor == "dv"]
    assert stats and stats[0].numbers["blocks"] == 8 and stats[0].numbers["failed"] == 1
    assert stats[0].numbers["describe"] == "axes (0, 1)"
    assert "WRONG" in str(report) and "dv" in report.explain()
    data = json.loads(report.to_json())
    assert data["findings"][0]["where"] == ["[0, 1, :, :]"]
    assert "<table" in report.to_html()


def test_blocks_option_groups_by_the_axes_given():
    report = run("attention", 64, 0, "bfloat16", "dk_transposed_tile", blocks={"k": (0, 1, 2)})
    assert any(n.code is NoteCode.AGAINST_STATS and n.tensor == "dk" and n.numbers["blocks"] == 512
               and n.numbers["describe"] == "axes (0, 1, 2)" for n in report.notes)
    rows = {w for f in report.findings for w in f.where}
    assert rows == {f"[0, 1, {r}, :]" for r in range(16, 32)}, report.explain()


def test_coarse_blocks_dilute_a_one_head_bug():
    """Per batch (2 blocks of 4 heads), one head's 1% dV scale is a quarter of a block: the
    block's mean ratio stays under the level, and 2 blocks allow no outlier test."""
    assert not run("attention", 64, 0, "bfloat16", "dv_head_scale").passed
    assert run("attention", 64, 0, "bfloat16", "dv_head_scale", blocks={"v": (0,)}).passed


def test_forward_mode_is_checked_where_there_is_one():
    ref = KERNELS["layer_norm"][1]
    report = gt.check_against(ref, ref, (8, 32), (32,), (32,), jvp=True)
    assert "jvp out" in report.components and report.passed
    custom = run("layer_norm", 8, 0, "bfloat16", jvp=True)
    assert "jvp out" not in custom.components
    assert any(n.code is NoteCode.AGAINST_JVP and n.numbers.get("who") == "fn" for n in custom.notes)


@pytest.mark.parametrize(
    ("options", "message"),
    [({"dtype": "float64"}, "truth's dtype"), ({"dtype": "int32"}, "floating torch dtype"),
     ({"names": ("a",)}, "3 distinct names"), ({"blocks": {"dq": (7,)}}, "axis 7"),
     ({"blocks": {"dz": (0,)}}, "no tensor is named 'dz'"), ({"level": 0.5}, "level=0.5")],
)
def test_bad_options_say_what_to_give(options, message):
    function, reference, names = KERNELS["attention"]
    options = {"names": names, **options}
    with pytest.raises(OptionError, match=message):
        gt.check_against(kernel(function), reference, (1, 1, 4, 4), (1, 1, 4, 4), (1, 1, 4, 4),
                         **options)


def test_a_reference_that_cannot_run_in_the_dtype_is_named():
    def reference(x):
        return torch.where(x > 0, x, torch.zeros_like(x)).sum()

    with pytest.raises(LossRaisedError, match="fn raised"):
        gt.check_against(lambda x: 1 / 0, reference, (4,))
    with pytest.raises(LossRaisedError, match="the reference .the yardstick. raised in torch.fl"):
        gt.check_against(lambda x: (2 * x.float()).to(x.dtype), lambda x: 2 * x, (4,),
                         dtype=torch.float8_e4m3fn)


def test_float8_runs_where_the_reference_does():
    def reference(x, w):  # float8 in and out, float32 inside, as float8 matmuls are
        return torch.tanh(x.float() @ w.float()).to(x.dtype)

    assert gt.check_against(reference, reference, (8, 16), (16, 8),
                            dtype=torch.float8_e4m3fn).passed


@settings(max_examples=25, deadline=None, derandomize=True)
@given(st.integers(1, 12), st.integers(4, 64), st.floats(1e-4, 1e-1), st.integers(0, 2**16))
def test_a_kernel_as_accurate_as_the_yardstick_never_fails(rows, cols, noise, seed):
    rng = np.random.default_rng(seed)
    truth = rng.standard_normal((rows, cols))
    yard = truth + noise * rng.standard_normal((rows, cols))
    verdict = judge(yard.copy(), truth, yard, make_blocks((rows, cols), None))
    assert not verdict.failed.any()
    assert np.all(verdict.ratio_mean <= 1.0 + 1e-12)  # 1, or below where the floor applies


@settings(max_examples=25, deadline=None, derandomize=True)
@given(st.integers(6, 12), st.integers(0, 2**16), st.floats(2.0, 8.0))
def test_one_block_with_a_larger_error_is_the_one_that_fails(rows, seed, factor):
    """The block fails and stands out most; another block may fail too, at the rule's
    false-alarm rate (alpha = 1e-3 per tensor), so that is not asserted."""
    rng = np.random.default_rng(seed)
    truth = rng.standard_normal((rows, 512))
    yard = truth + 1e-3 * rng.standard_normal((rows, 512))
    kernel_values = truth + 1e-3 * rng.standard_normal((rows, 512))
    kernel_values[2] = truth[2] + factor * 1e-3 * rng.standard_normal(512)
    verdict = judge(kernel_values, truth, yard, make_blocks((rows, 512), None))
    assert verdict.failed[2] and int(np.argmax(verdict.excess)) == 2


def test_a_nan_where_the_truth_is_finite_fails_its_block():
    def tanh_kernel(x):
        y = torch.tanh(x.float()).clone()
        y[3, 5] = float("nan")
        return y.to(x.dtype)

    report = gt.check_against(tanh_kernel, torch.tanh, (8, 16))
    (finding,) = report.findings
    assert (finding.param, finding.kind, finding.where) == ("out", "non-finite", ("[3, :]",))
    assert "[3, 5]" in finding.detail and report.components["dx0"].passed


def test_the_json_report_follows_the_schema():
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "report" / "test_schema.py"
    spec = importlib.util.spec_from_file_location("report_schema_test", path)
    schema_test = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(schema_test)
    for bug in (None, "dv_head_scale"):
        data = json.loads(run("attention", 32, 0, "bfloat16", bug).to_json())
        assert schema_test.validate(data, schema_test.SCHEMA) == []
        assert data["scheme"] == "reference"


class Gelu(torch.autograd.Function):
    """tanh-free GELU in the inputs' dtype with its own backward and forward-mode rule."""

    @staticmethod
    def forward(ctx, x, jvp_scale):
        ctx.save_for_backward(x)
        ctx.save_for_forward(x)
        ctx.jvp_scale = jvp_scale
        return torch.nn.functional.gelu(x.float()).to(x.dtype)

    @staticmethod
    def derivative(x):
        x32 = x.float()
        return 0.5 * (1 + torch.erf(x32 / 2**0.5)) + x32 * torch.exp(-x32 * x32 / 2) / (
            2 * torch.pi) ** 0.5

    @staticmethod
    def backward(ctx, dy):
        (x,) = ctx.saved_tensors
        return (dy.float() * Gelu.derivative(x)).to(dy.dtype), None

    @staticmethod
    def jvp(ctx, dx, _):
        (x,) = ctx.saved_tensors
        return (dx.float() * Gelu.derivative(x) * ctx.jvp_scale).to(dx.dtype)


def test_a_kernels_own_forward_mode_rule_is_checked():
    good = gt.check_against(lambda x: Gelu.apply(x, 1.0), torch.nn.functional.gelu, (16, 64),
                            jvp=True)
    assert good.passed and "jvp out" in good.components
    bad = gt.check_against(lambda x: Gelu.apply(x, 0.5), torch.nn.functional.gelu, (16, 64),
                           jvp=True)
    assert bad.suspects == ("jvp out",)
    assert [(f.kind, f.factor) for f in bad.findings] == [("scale", pytest.approx(0.5, 1e-2))]
    with pytest.raises(LossRaisedError, match="fn raised in forward mode: TypeError"):
        gt.check_against(lambda x: Gelu.apply(x, None), torch.nn.functional.gelu, (4,),
                         jvp=True)


def test_entries_where_the_truth_is_not_finite_are_left_unjudged():
    x = torch.randn(6, 16, generator=torch.Generator().manual_seed(0))
    x[2] = -1.0  # log of a negative number: a whole block of NaN truth
    report = gt.check_against(torch.log, torch.log, x)
    out = report.components["out"]
    assert report.passed and out.checked + out.skipped == 96
    assert (out.flags[2] == 0).all() and out.checked == int((x > 0).sum())
    assert any(n.code is NoteCode.AGAINST_UNJUDGED and n.tensor == "out"
               and n.numbers["count"] == 96 - out.checked for n in report.notes)


def test_a_check_against_with_nothing_judged_is_incomplete_not_passed():
    x = -torch.ones(4, 8)  # log of a negative number everywhere: no yardstick anywhere
    report = gt.check_against(torch.log, torch.log, x)
    assert report.components["out"].passed is None and report.passed is None
    assert report.verdict == "incomplete"
