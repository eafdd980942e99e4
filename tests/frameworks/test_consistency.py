"""One protocol, three frameworks: the same function, seed and inputs give the same components,
the same cotangents, the same numbers and the same verdict in PyTorch, JAX and TensorFlow."""

from __future__ import annotations

import numpy as np
import pytest

from gradcheck.frameworks._protocol import cotangent

torch = pytest.importorskip("torch")
jax = pytest.importorskip("jax")
tf = pytest.importorskip("tensorflow")
jnp = pytest.importorskip("jax.numpy")

import gradcheck.jax as gj  # noqa: E402
import gradcheck.tensorflow as gtf  # noqa: E402
import gradcheck.torch as gt  # noqa: E402

RNG = np.random.default_rng(7)
A = RNG.uniform(-1.5, 1.5, (3, 4))
B = RNG.uniform(-1.5, 1.5, (3, 4))
M = RNG.uniform(-1.5, 1.5, (4, 2))
K = np.where(np.abs(A) < 0.3, 0.5, A)  # |x|: every entry at least 0.3 from its kink at 0


def _cases():
    """name -> (inputs, per framework: fn of the inputs, the expected J's gradient by NumPy)."""
    return {
        # two outputs: J = ⟨sin(a)·b, R_0⟩ + ⟨exp(a).sum(0), R_1⟩
        "two outputs": (
            {"a": A, "b": B},
            {
                "torch": lambda a, b: (torch.sin(a) * b, torch.exp(a).sum(0)),
                "jax": lambda a, b: (jnp.sin(a) * b, jnp.exp(a).sum(0)),
                "tf": lambda a, b: (tf.sin(a) * b, tf.reduce_sum(tf.exp(a), 0)),
            },
            lambda r: {
                "a": np.cos(A) * B * r[0] + np.exp(A) * r[1][None, :],
                "b": np.sin(A) * r[0],
            },
        ),
        # one real scalar output: J itself
        "reduction": (
            {"a": A},
            {
                "torch": lambda a: (a**2 * torch.cos(a)).sum(),
                "jax": lambda a: jnp.sum(a**2 * jnp.cos(a)),
                "tf": lambda a: tf.reduce_sum(a**2 * tf.cos(a)),
            },
            lambda r: {"a": 2 * A * np.cos(A) - A**2 * np.sin(A)},
        ),
        "matmul": (
            {"a": A, "m": M},
            {"torch": lambda a, m: a @ m, "jax": lambda a, m: a @ m, "tf": lambda a, m: a @ m},
            lambda r: {"a": r[0] @ M.T, "m": A.T @ r[0]},
        ),
        "kink away from the inputs": (
            {"a": K},
            {"torch": torch.abs, "jax": jnp.abs, "tf": tf.abs},
            lambda r: {"a": np.sign(K) * r[0]},
        ),
    }


def _run(framework: str, fn, inputs: dict[str, np.ndarray]):
    names = list(inputs)
    if framework == "torch":
        ts = [torch.tensor(x, requires_grad=True) for x in inputs.values()]
        return gt.check_function(fn, *ts, names=names)
    if framework == "jax":
        return gj.check(lambda p: fn(*(p[n] for n in names)), dict(inputs))
    return gtf.check_function(fn, *(tf.constant(x) for x in inputs.values()), names=names)


def _output_shapes(case: str) -> list[tuple[int, ...]]:
    return {"two outputs": [(3, 4), (4,)], "reduction": [], "matmul": [(3, 2)],
            "kink away from the inputs": [(3, 4)]}[case]


@pytest.mark.parametrize("case", list(_cases()))
def test_the_same_function_gives_the_same_report_in_torch_jax_and_tensorflow(case) -> None:
    inputs, fns, expected = _cases()[case]
    r = [cotangent(0, k, s) for k, s in enumerate(_output_shapes(case))]  # the one rule
    want = expected(r)
    reports = {fw: _run(fw, fn, inputs) for fw, fn in fns.items()}
    for fw, report in reports.items():
        assert report.passed is True, (fw, report)
        assert list(report.components) == list(inputs), fw  # one component per input
        for name, g in want.items():  # R_k is default_rng([seed, k]) in every framework
            np.testing.assert_allclose(report.components[name].analytic_array, g, rtol=1e-12,
                                       atol=1e-12, err_msg=f"{fw} {name}")
    base = reports["torch"]
    for fw in ("jax", "tf"):
        for name in inputs:
            c, b = reports[fw].components[name], base.components[name]
            np.testing.assert_allclose(c.analytic_array, b.analytic_array, rtol=0, atol=1e-12)
            # Finite differences of J through each framework's own kernels: J rounds
            # differently in the last bit (~1e-16·|J|), divided by a step of ~6e-6 (measured
            # on this set: at most 2.3e-10 apart).
            np.testing.assert_allclose(c.numeric_array, b.numeric_array, rtol=0, atol=1e-9)
            assert c.passed is b.passed is True


# --- one wrong custom gradient, the same in the three frameworks: d/da of output 1 (a²) is
# returned as 3a·g instead of 2a·g; the pair (a, output 1) is named in all three.


class _TorchWrong(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return torch.sin(a), a * a

    @staticmethod
    def backward(ctx, g0, g1):
        (a,) = ctx.saved_tensors
        return g0 * torch.cos(a) + g1 * 3 * a


@jax.custom_vjp
def _jax_wrong(a):
    return jnp.sin(a), a * a


_jax_wrong.defvjp(
    lambda a: ((jnp.sin(a), a * a), a),
    lambda a, g: (g[0] * jnp.cos(a) + g[1] * 3 * a,),
)


@tf.custom_gradient
def _tf_wrong(a):
    def grad(g0, g1):
        return g0 * tf.cos(a) + g1 * 3 * a

    return (tf.sin(a), a * a), grad


def test_a_wrong_custom_gradient_fails_in_all_three_with_the_same_suspect() -> None:
    fns = {"torch": _TorchWrong.apply, "jax": _jax_wrong, "tf": _tf_wrong}
    reports = {fw: _run(fw, fn, {"a": A}) for fw, fn in fns.items()}
    for fw, report in reports.items():
        assert report.passed is False, fw
        assert report.suspects == ("a (output 1)",), (fw, report.suspects)
        assert set(report.components) == {"a (output 0)", "a (output 1)"}, fw
        assert report.components["a (output 0)"].passed, fw
    wrong = [r.components["a (output 1)"] for r in reports.values()]
    for c in wrong[1:]:
        np.testing.assert_allclose(c.analytic_array, wrong[0].analytic_array, atol=1e-12)
        assert c.worst_index == wrong[0].worst_index


def test_a_backward_not_linear_in_its_cotangents_is_caught_although_the_combined_check_passes():
    # native_group_norm drops the gradient through mean and rstd when output 0 gets no
    # cotangent: the combined J passes, each output alone must add up to it and does not
    import gradcheck.torch as gt
    from gradcheck.report._sentences import NoteCode

    g = torch.Generator().manual_seed(0)
    x, w, b = (torch.randn(*s, dtype=torch.float64, generator=g).requires_grad_()
               for s in ((2, 6, 5), (6,), (6,)))
    report = gt.check_function(
        lambda x, w, b: torch.native_group_norm(x, w, b, 2, 6, 5, 3, 1e-5), x, w, b
    )
    assert report.passed is False and set(report.suspects) == {"input0 (output 1)",
                                                               "input0 (output 2)"}
    note = next(n for n in report.notes if n.code is NoteCode.BY_OUTPUT)
    assert note.numbers["screened"] and note.numbers["found"]


# --- a backward that is not linear in its cotangents: the combined J passes, the linearity
# screen (each output's gradient alone against the combined one) sends it to the per-output
# checks, which name the wrong pair; the same in torch and JAX. The rule for output 0 adds
# 0.5·g0 when output 1 gets no cotangent (as native_group_norm drops a term).


class _TorchDrops(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return torch.sin(a), a * a

    @staticmethod
    def backward(ctx, g0, g1):
        (a,) = ctx.saved_tensors
        return g0 * torch.cos(a) + g1 * 2 * a + torch.where((g1 == 0).all(), 0.5, 0.0) * g0


@jax.custom_vjp
def _jax_drops(a):
    return jnp.sin(a), a * a


_jax_drops.defvjp(
    lambda a: ((jnp.sin(a), a * a), a),
    lambda a, g: (g[0] * jnp.cos(a) + g[1] * 2 * a + jnp.where(jnp.all(g[1] == 0), 0.5, 0.0) * g[0],),
)


@tf.custom_gradient
def _tf_drops(a):
    def grad(g0, g1):
        return g0 * tf.cos(a) + g1 * 2 * a + 0.5 * tf.cast(tf.reduce_all(g1 == 0), g0.dtype) * g0

    return (tf.sin(a), a * a), grad


def test_a_backward_not_linear_in_its_cotangents_is_named_the_same_in_the_three() -> None:
    from gradcheck.report._sentences import NoteCode

    reports = {fw: _run(fw, fn, {"a": A}) for fw, fn in
               {"torch": _TorchDrops.apply, "jax": _jax_drops, "tf": _tf_drops}.items()}
    for fw, report in reports.items():
        assert report.passed is False, fw
        assert report.suspects == ("a (output 0)",), (fw, report.suspects)
        assert set(report.components) == {"a (output 0)", "a (output 1)"}, fw
        note = next(n for n in report.notes if n.code is NoteCode.BY_OUTPUT)
        assert note.numbers == {"outputs": 2, "found": True, "screened": True}, fw
    for fw in ("jax", "tf"):
        for name in ("a (output 0)", "a (output 1)"):
            c, b = reports[fw].components[name], reports["torch"].components[name]
            np.testing.assert_allclose(c.analytic_array, b.analytic_array, rtol=0, atol=1e-12)
            np.testing.assert_allclose(c.numeric_array, b.numeric_array, rtol=0, atol=1e-9)
            assert c.passed is b.passed
            assert c.passed or c.worst_index == b.worst_index  # a passing one's is rounding


def test_the_jax_screen_lets_a_linear_multi_output_backward_pass_with_one_report() -> None:
    from gradcheck.report._sentences import NoteCode

    report = _run("jax", _cases()["two outputs"][1]["jax"], {"a": A, "b": B})
    assert report.passed is True and list(report.components) == ["a", "b"]
    assert not any(n.code is NoteCode.BY_OUTPUT for n in report.notes)
