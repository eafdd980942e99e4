"""Which dtype was evaluated (issue 27, "float32 kernels"): every door records the user's dtype
(``Component.dtype``) and the evaluated one (``Component.evaluated_dtype``), the JSON carries
both, the short report says where an adapter evaluated float64 copies of narrower tensors, and
``precision="native"`` sees a bug that exists only in the float32 arithmetic.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import gradcheck
from gradcheck.report._text import dtype_line

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "docs" / "report-schema.json")
                    .read_text(encoding="utf-8"))

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def _dtypes(report: gradcheck.Report) -> dict[str, tuple[str, str | None]]:
    return {n: (c.dtype, c.evaluated_dtype) for n, c in report.components.items()}


def _square(p):
    return float(sum(np.sum(np.asarray(v, dtype=np.float64) ** 2) for v in p.values()))


# ---- the NumPy doors: the loss gets float64 copies; the gradient judged is the user's ----


def test_numpy_check_records_float64_copies_of_float32_params_and_says_no_line():
    w = np.linspace(-1, 1, 6, dtype=np.float32)
    report = gradcheck.check(_square, {"w": w, "v": w.astype(np.float64)}, {"w": 2 * w, "v": 2.0 * w})
    assert report.passed
    assert _dtypes(report) == {"w": ("float32", "float64"), "v": ("float64", "float64")}
    assert dtype_line(report) is None  # the user's own float32 gradient was judged


def test_a_flat_theta_with_a_layout_records_its_dtype_per_tensor():
    theta = np.linspace(0.5, 1.5, 5, dtype=np.float32)
    report = gradcheck.check(lambda t: float(np.sum(np.asarray(t, np.float64) ** 3)), theta,
                             3 * theta**2, layout={"W": (2, 2), "b": 1})
    assert report.passed and _dtypes(report) == {"W": ("float32", "float64"), "b": ("float32", "float64")}


def test_the_json_carries_both_dtypes_and_the_schema_keeps_the_field_optional():
    w = np.linspace(-1, 1, 4, dtype=np.float32)
    data = json.loads(gradcheck.check(_square, {"w": w}, {"w": 2 * w}).to_json())
    assert (data["components"]["w"]["dtype"], data["components"]["w"]["evaluated_dtype"]) == (
        "float32", "float64")
    component = SCHEMA["properties"]["components"]["additionalProperties"]
    assert set(component["properties"]["evaluated_dtype"]["type"]) == {"string", "null"}
    assert "evaluated_dtype" not in component["required"]  # reports written before it stay valid


# ---- torch ----


def test_torch_auto_evaluates_float64_copies_and_says_so_native_its_own_dtype():
    torch = pytest.importorskip("torch")
    import gradcheck.torch
    x = torch.linspace(-1, 1, 5, requires_grad=True)
    auto = gradcheck.torch.check_function(torch.sin, x)
    native = gradcheck.torch.check_function(torch.sin, x, precision="native")
    assert auto.passed and native.passed
    assert _dtypes(auto) == {"input0": ("float32", "float64")}
    assert _dtypes(native) == {"input0": ("float32", "float32")}
    assert dtype_line(auto) is not None and dtype_line(auto) in auto.explain()
    assert dtype_line(native) is None
    assert "(evaluated in float64)" in auto.to_html() and "(evaluated in" not in native.to_html()
    wide64 = gradcheck.torch.check_function(torch.sin, x.detach().double().requires_grad_())
    assert _dtypes(wide64) == {"input0": ("float64", "float64")} and dtype_line(wide64) is None


def test_torch_module_rows_and_complex_inputs_carry_their_dtypes():
    torch = pytest.importorskip("torch")
    import gradcheck.torch
    torch.manual_seed(0)
    layer = torch.nn.Linear(3, 2)
    module = gradcheck.torch.check_module(layer, torch.randn(4, 3))
    assert _dtypes(module) == {"weight": ("float32", "float64"), "bias": ("float32", "float64")}
    x = torch.linspace(-1, 1, 3, requires_grad=True)
    rows = gradcheck.torch.check_function(torch.sin, x, jacobian=True, precision="native")
    assert {d for d in _dtypes(rows).values()} == {("float32", "float32")}
    z = torch.tensor([1 + 2j, -0.5 + 1j], dtype=torch.complex64, requires_grad=True)
    complex_ = gradcheck.torch.check_function(lambda z: (z * z).abs(), z)
    assert _dtypes(complex_) == {"input0": ("complex64", "complex128")}


def test_check_against_records_the_kernels_dtype():
    torch = pytest.importorskip("torch")
    import gradcheck.torch
    report = gradcheck.torch.check_against(lambda a, b: a @ b, lambda a, b: a @ b, (8, 16), (16, 4),
                                           dtype="bfloat16")
    assert set(_dtypes(report).values()) == {("bfloat16", "bfloat16")}
    assert dtype_line(report) is None and torch.bfloat16 is not None


# ---- JAX and TensorFlow ----


def test_jax_auto_and_native_record_the_dtypes():
    pytest.importorskip("jax")
    import jax.numpy as jnp

    import gradcheck.jax

    x = jnp.linspace(-1.0, 1.0, 4, dtype=jnp.float32)
    auto = gradcheck.jax.check(jnp.sin, x)
    native = gradcheck.jax.check(jnp.sin, x, precision="native")
    assert _dtypes(auto) == {"arg0": ("float32", "float64")} and dtype_line(auto) is not None
    assert _dtypes(native) == {"arg0": ("float32", "float32")} and dtype_line(native) is None


def test_tensorflow_auto_and_native_record_the_dtypes():
    tf = pytest.importorskip("tensorflow")
    import gradcheck.tensorflow

    x = tf.Variable(np.linspace(-1, 1, 4, dtype=np.float32))
    auto = gradcheck.tensorflow.check_function(tf.sin, x)
    native = gradcheck.tensorflow.check_function(tf.sin, x, precision="native")
    assert _dtypes(auto) == {"input0": ("float32", "float64")} and dtype_line(auto) is not None
    assert _dtypes(native) == {"input0": ("float32", "float32")}


# ---- a bug only the float32 arithmetic has (docs/precision.md) ----


def _softplus(torch, textbook: bool):
    class Softplus(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return torch.nn.functional.softplus(x)

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors  # sigmoid(x) as 1 − 1/(1 + eˣ) cancels in float32 for x ≪ 0
            return g * ((1 - 1 / (1 + torch.exp(x))) if textbook else torch.sigmoid(x))

    return Softplus.apply


def test_torch_a_float32_only_bug_passes_auto_which_says_float64_and_fails_native():
    torch = pytest.importorskip("torch")
    import gradcheck.torch
    x = (-14 + torch.randn(16, generator=torch.Generator().manual_seed(0))).requires_grad_()
    auto = gradcheck.torch.check_function(_softplus(torch, True), x)
    assert auto.passed and _dtypes(auto) == {"input0": ("float32", "float64")}
    assert dtype_line(auto) in auto.explain()
    native = gradcheck.torch.check_function(_softplus(torch, True), x, precision="native")
    assert native.passed is False and native.suspects == ("input0",)
    assert _dtypes(native) == {"input0": ("float32", "float32")}
    right = gradcheck.torch.check_function(_softplus(torch, False), x, precision="native")
    assert right.passed  # the correct float32 backward passes with the float32 tolerance


def test_jax_a_float32_only_bug_fails_native_and_the_correct_vjp_passes():
    pytest.importorskip("jax")
    import jax
    import jax.numpy as jnp

    import gradcheck.jax

    def softplus(textbook: bool):
        @jax.custom_vjp
        def f(x):
            return jax.nn.softplus(x)

        def bwd(x, g):
            return (g * ((1 - 1 / (1 + jnp.exp(x))) if textbook else jax.nn.sigmoid(x)),)

        f.defvjp(lambda x: (f(x), x), bwd)
        return f

    x = jnp.asarray(-14 + np.random.default_rng(0).standard_normal(16), dtype=jnp.float32)
    auto = gradcheck.jax.check(softplus(True), x)
    assert auto.passed and auto.components["arg0"].evaluated_dtype == "float64"
    native = gradcheck.jax.check(softplus(True), x, precision="native")
    assert native.passed is False and native.suspects == ("arg0",)
    assert gradcheck.jax.check(softplus(False), x, precision="native").passed
