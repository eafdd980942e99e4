"""gradcheck.jax: pytrees, jit, custom_vjp / custom_jvp, scoped float64, key-path names."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pytest

from gradcheck.report._sentences import NoteCode

jax = pytest.importorskip("jax")

import jax.numpy as jnp  # noqa: E402

import gradcheck  # noqa: E402
import gradcheck.frameworks.jax as gj  # noqa: E402
from gradcheck.frameworks._batching import accepts_batched  # noqa: E402

needs_hook = pytest.mark.skipif(
    not accepts_batched(), reason="this gradcheck.check has no batched_loss hook"
)


@jax.custom_vjp
def softplus(x):
    return jnp.logaddexp(x, 0.0)


def _softplus_fwd(x):
    return softplus(x), x


def _softplus_bwd(x, g):
    return (g * jax.nn.sigmoid(x),)


softplus.defvjp(_softplus_fwd, _softplus_bwd)


@jax.custom_vjp
def softplus_bad(x):  # backward forgets grad_output
    return jnp.logaddexp(x, 0.0)


softplus_bad.defvjp(_softplus_fwd, lambda x, g: (jax.nn.sigmoid(x),))


@jax.custom_jvp
def cube(x):
    return x**3


@cube.defjvp
def _cube_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    return x**3, 3 * x * t  # should be 3 x² t


def _mlp(params, x):
    h = softplus(x @ params["W1"])
    for layer in params["layers"]:
        h = jnp.tanh(h @ layer["W"] + layer["b"])
    return jnp.mean(h**2)


@pytest.fixture(scope="module")
def net():
    rng = np.random.default_rng(0)
    params = {
        "W1": rng.standard_normal((3, 4)).astype(np.float32),
        "layers": [
            {"W": rng.standard_normal((4, 2)).astype(np.float32), "b": np.zeros(2, np.float32)}
        ],
    }
    return params, rng.standard_normal((5, 3)).astype(np.float32)


def test_jitted_pytree_passes_with_key_path_names(net) -> None:
    params, x = net
    before = jax.tree_util.tree_map(np.copy, params)
    report = gj.check(jax.jit(_mlp), params, x)
    assert report.passed, str(report)
    assert list(report.components) == ["W1", "layers.0.W", "layers.0.b"]
    assert any(n.code is NoteCode.PRECISION and n.numbers["evaluated"] == "float64" for n in report.notes)
    assert not jax.config.jax_enable_x64  # the scope was closed again
    assert all(
        np.array_equal(a, b) and a.dtype == b.dtype
        for a, b in zip(
            jax.tree_util.tree_leaves(params), jax.tree_util.tree_leaves(before), strict=True
        )
    )


def test_custom_vjp_that_ignores_grad_output_is_caught() -> None:
    x = np.linspace(-1, 1, 6)
    assert gj.check(softplus, x).passed  # vector output: J = <out, R>
    report = gj.check(softplus_bad, x)
    assert report.suspects == ("arg0",)
    assert report.components["arg0"].mismatches > 0


def test_custom_jvp_missing_factor_is_caught_at_the_right_index() -> None:
    x = np.array([1.0, 2.0, 0.5])
    report = gj.check(lambda v: jnp.sum(cube(v)), x)
    c = report.components["arg0"]
    assert not report.passed
    np.testing.assert_allclose(c.numeric_array, 3 * x**2, rtol=1e-6)
    assert c.flags[0] == 1  # at x = 1, 3x equals 3x²: that entry agrees
    assert c.worst_index == (1,)


class Pair(NamedTuple):
    w: np.ndarray
    b: np.ndarray


def test_several_argnums_and_namedtuples() -> None:
    def f(p, q, scale):
        return scale * jnp.sum(jnp.sin(p.w) * q.b)

    p, q = Pair(np.ones(2), np.arange(2.0)), Pair(np.full(2, 0.5), np.array([1.0, -1.0]))
    report = gj.check(f, p, q, 2.0, argnums=(0, 1))
    assert report.passed
    assert list(report.components) == ["arg0.w", "arg0.b", "arg1.w", "arg1.b"]


def test_float32_only_function_is_checked_in_its_own_dtype() -> None:
    x = np.linspace(0.1, 1.0, 4, dtype=np.float32)
    f = lambda v: jnp.sum(jnp.tanh(v.astype(jnp.float32)) ** 2)  # noqa: E731
    report = gj.check(f, x)
    assert report.passed, str(report)
    assert any(n.code is NoteCode.PRECISION and n.numbers["evaluated"] == "float32" for n in report.notes)
    with pytest.raises(gradcheck.GradCheckError, match="precision='float64'"):
        gj.check(f, x, precision="float64")


@jax.custom_vjp
def host_square(v):  # a host kernel: jit runs it, vmap cannot batch it (no vmap_method)
    shape = jax.ShapeDtypeStruct(v.shape, v.dtype)
    return jax.pure_callback(lambda a: np.asarray(a) ** 2, shape, v)


host_square.defvjp(lambda v: (host_square(v), v), lambda v, g: (2 * v * g,))


@needs_hook
def test_vmap_fallback_is_noted() -> None:
    report = gj.check(lambda v: jnp.sum(host_square(v)), np.array([1.0, 2.0]))
    assert report.passed
    assert any(n.code is NoteCode.EVALUATION and n.numbers["path"] == "fallback" and n.numbers["tool"] == "jax.vmap" for n in report.notes)
    vmapped = gj.check(lambda v: jnp.sum(v**2), np.array([1.0, 2.0]))
    assert not any(n.code is NoteCode.EVALUATION and n.numbers["path"] == "fallback" for n in vmapped.notes)


def _traced(f, params, args=()):
    problem = gj._Problem.build(f, (params, *args), 0, 0)
    dtypes = [np.float64] * len(problem.names)
    traced = gj._Traced(problem, gj._cast64, dtypes, True, False, gj._objective(problem))
    return traced, lambda values: traced.j(values, traced.dynamic)


@needs_hook
def test_batched_function_matches_the_loop() -> None:
    def f(p):
        return jnp.sum(jnp.sin(p["a"])) * jnp.sum(p["b"])

    params = {"a": np.ones(3), "b": np.ones(2)}
    thetas = np.random.default_rng(0).standard_normal((70, 5))  # more than one chunk
    with gj._x64(True):
        traced, j_of = _traced(f, params)

        def truth(p):
            return float(f(p))

        fn, _ = gj._batched(traced, params, lambda: truth(params), "auto", j_of)
        want = [truth({"a": t[:3], "b": t[3:]}) for t in thetas]
        np.testing.assert_allclose(fn(thetas), want, rtol=1e-12)
        refused, reason = gj._batched(traced, params, lambda: 0.0, "auto", j_of)
    assert refused is None and "vmap gave" in reason  # a probe that disagrees is not trusted


def test_options_are_validated() -> None:
    with pytest.raises(gradcheck.OptionError, match="argnums"):
        gj.check(jnp.sum, np.ones(2), argnums=3)
    with pytest.raises(gradcheck.OptionError, match="nothing to check"):
        gj.check(lambda n: jnp.sum(n), np.arange(3))
    with pytest.raises(gradcheck.OptionError, match="unexpected option"):
        gj.check(jnp.sum, np.ones(2), rel_tol=1e-3)


def test_registered_dataclass_module_names() -> None:
    import dataclasses

    @dataclasses.dataclass
    class Dense:
        W: np.ndarray
        b: np.ndarray

    jax.tree_util.register_dataclass(Dense, data_fields=["W", "b"], meta_fields=[])
    model = {"layers": [Dense(np.eye(2), np.zeros(2)), Dense(np.ones((2, 2)), np.ones(2))]}

    def f(m, x):
        for layer in m["layers"]:
            x = jnp.tanh(x @ layer.W + layer.b)
        return jnp.sum(x)

    report = gj.check(f, model, np.array([[0.5, -1.0]]))
    assert report.passed
    assert list(report.components) == ["layers.0.W", "layers.0.b", "layers.1.W", "layers.1.b"]


def test_typed_prng_keys_are_left_as_they_are() -> None:
    """A typed key (``jax.random.key``, dtype key<fry>) has no NumPy dtype: as a fixed argument
    or a leaf of the checked pytree it is passed through, and the check still runs in float64."""

    def f(w, key):
        return jnp.sum(jnp.sin(w) * jax.random.normal(key, w.shape))

    w = jnp.asarray(np.linspace(-1.0, 1.0, 6).reshape(2, 3), dtype=jnp.float32)
    r = gj.check(f, w, jax.random.key(0))
    assert r.passed and any(n.code is NoteCode.PRECISION and n.numbers["evaluated"] == "float64" for n in r.notes)
    assert not any("raised in float64" in n for n in r.notes)

    def g(p):
        return jnp.sum(jnp.sin(p["w"]) * jax.random.normal(p["rng"], p["w"].shape))

    r = gj.check(g, {"w": w, "rng": jax.random.key(1)})
    assert r.passed and list(r.components) == ["w"]
    with pytest.raises(gradcheck.OptionError, match="argnums=1"):
        gj.check(f, w, jax.random.key(0), argnums=1)


def test_output_leaves_without_a_gradient_are_left_out_of_j() -> None:
    """fn returning (loss, aux) with strings, Python ints and integer arrays in aux (the
    ``has_aux`` pattern): those leaves carry no gradient and are not part of J (they crashed
    with AttributeError: 'str' object has no attribute 'dtype'); order 2 likewise."""
    x = np.array([0.3, -1.2, 2.0])

    def f(x):
        return jnp.sum(jnp.sin(x) ** 2), {"msg": "ok", "steps": 3, "argmax": jnp.argmax(x)}

    assert gj.check(f, x).passed
    assert gj.check(f, x, order=2).passed


def test_argnums_negative_as_in_jax_grad_and_duplicates_refused() -> None:
    f = lambda a, b: jnp.sum(jnp.sin(a) * b**2)  # noqa: E731
    a, b = np.array([0.1, 0.7]), np.array([1.5, -0.5])
    assert list(gj.check(f, a, b, argnums=-1).components) == ["arg1"]
    with pytest.raises(gradcheck.OptionError, match="names argument 0 twice"):
        gj.check(f, a, b, argnums=(0, 0))
    with pytest.raises(gradcheck.OptionError, match=r"arg0: int 3.*pass floats"):
        gj.check(lambda n: n * 2.0, 3)
    with pytest.raises(gradcheck.OptionError, match=r"keyword argument of fn.*partial\(fn, n="):
        gj.check(lambda x, n=2: jnp.sum(x**n), a, n=3)


def test_keyless_custom_nodes_are_named_after_their_attributes_and_a_bug_is_localized() -> None:
    """A node registered with ``register_pytree_node`` (equinox style, no key paths) numbers
    its children; they are named after the attribute holding them, so a wrong cotangent for
    one of them is reported as ``layers.1.b``, not ``layers.1.1``."""

    class Linear:
        def __init__(self, w, b, act):
            self.w, self.b, self.act = w, b, act

    jax.tree_util.register_pytree_node(
        Linear, lambda m: ((m.w, m.b), m.act), lambda act, ch: Linear(*ch, act)
    )

    @jax.custom_vjp
    def add(x, b):
        return x + b

    add.defvjp(lambda x, b: (x + b, None), lambda _, g: (g, 0.9 * g.sum(0)))  # b: 10% off
    rng = np.random.default_rng(0)
    model = [Linear(rng.standard_normal((3, 2)), np.zeros(2), "tanh") for _ in range(2)]
    model[1] = Linear(rng.standard_normal((2, 2)), np.ones(2), "tanh")

    def f(p, x):
        for i, m in enumerate(p["layers"]):
            x = getattr(jnp, m.act)(add(x @ m.w, m.b) if i == 1 else x @ m.w + m.b)
        return jnp.sum(x)

    report = gj.check(f, {"layers": model}, rng.standard_normal((4, 3)))
    assert list(report.components) == ["layers.0.w", "layers.0.b", "layers.1.w", "layers.1.b"]
    assert report.suspects == ("layers.1.b",)


def test_compiled_functions_are_told_apart_by_argnums(monkeypatch: pytest.MonkeyPatch) -> None:
    """f(x, y) checked w.r.t. x, then y (same shapes): the second check must not reuse the
    first one's compiled program, whose checked input is the other argument."""
    from gradcheck.frameworks import _jit

    monkeypatch.setattr(_jit, "_PROGRAMS", {})  # its own cache: the suite's may be full

    def f(a, b):
        return jnp.sum(jnp.sin(a) * b)

    x, y = np.array([0.3, -0.7, 1.1]), np.array([0.5, 0.2, -0.4])
    before = set(_jit._PROGRAMS)
    assert gj.check(f, x, y, argnums=0).passed
    first = set(_jit._PROGRAMS) - before
    assert gj.check(f, x, y, argnums=1).passed
    second = set(_jit._PROGRAMS) - before - first
    assert len(first) == len(second) == 1  # one program per argnums, both kept


def test_a_function_jax_grad_cannot_differentiate_keeps_its_error_with_a_hint() -> None:
    def f(x):
        def body(c):
            return c[0] + 1, c[1] * 1.1

        return jnp.sum(jax.lax.while_loop(lambda c: c[0] < 3, body, (0, x))[1] ** 2)

    x = np.array([0.5, -1.0])
    with pytest.raises(ValueError, match="while_loop") as info:
        gj.check(f, x)
    assert any("mode='forward'" in n for n in info.value.__notes__)
    assert gj.check(f, x, mode="forward").passed  # jax.jvp goes through the loop


def test_bfloat16_leaves_are_checked_on_float64_copies_or_refused_by_name() -> None:
    x = jnp.asarray(np.array([0.3, -0.7, 1.1]), jnp.bfloat16)
    assert gj.check(lambda p: jnp.sum(p["w"] ** 3), {"w": x}).passed  # float64 copies
    with pytest.raises(gradcheck.GradCheckError, match=r"w is bfloat16.*precision='auto'"):
        gj.check(lambda p: jnp.sum(p["w"] ** 3), {"w": x}, precision="native")


def test_a_nan_gradient_from_the_where_trap_says_what_grads_is_and_the_fix() -> None:
    """jnp.where(x > 0, sqrt(x), 0) at x < 0: J is finite, jax.grad gives NaN (0·NaN from the
    unused branch). The core's NonFiniteError names grads['arg0'][0]; the note says that is
    jax.grad's value and gives the double-where fix."""
    with pytest.raises(gradcheck.NonFiniteError, match=r"grads\['arg0'\].*\(0,\)") as info:
        gj.check(lambda a: jnp.sum(jnp.where(a > 0, jnp.sqrt(a), 0.0)), np.array([-1.0, 0.5]))
    assert any("jax.grad(fn)" in n and "double-where" in n for n in info.value.__notes__)


def test_order_two_checks_complex_outputs_too() -> None:
    """order=2 took only the real floating outputs: a complex-only fn was 'no floating-point
    array', and beside a real output a complex one was silently left out of G."""
    z = np.array([1 + 0.5j, 2 - 1j, -0.5 + 2j])
    report = gj.check(lambda z: (jnp.sum(jnp.abs(z) ** 2), jnp.fft.fft(z) * z), z, order=2)
    assert report.passed
    assert {"cotangent (output 0)", "cotangent (output 1)"} <= set(report.components)
    assert gj.check(lambda z: jnp.fft.fft(z) * z, z, order=2).passed


def test_the_users_own_jax_grad_still_works_after_a_scoped_x64_check() -> None:
    # Without x64, an executable compiled inside the check's scoped x64 (jnp.take's inner jit with
    # a NumPy index) was reused afterwards and the user's grad failed: "expected s32[5], got s64".
    idx = np.array([0, 2, 1, 3, 4])

    def f(x):
        return jnp.take(x, idx)

    x = jnp.arange(6, dtype=jnp.float32) + 1.0
    assert not jax.config.jax_enable_x64
    assert gj.check(f, x).passed
    assert not jax.config.jax_enable_x64
    np.testing.assert_array_equal(jax.grad(lambda x: f(x).sum())(x), [1, 1, 1, 1, 1, 0])


def _custom_square(factor: float):
    @jax.custom_vjp
    def sq(x):
        return x * x

    sq.defvjp(lambda x: (x * x, x), lambda x, g: (factor * x * g,))
    return sq


def test_a_redefined_custom_rule_is_judged_afresh_although_programs_are_kept() -> None:
    x = np.array([0.3, -0.7, 1.1])
    right, wrong = _custom_square(2.0), _custom_square(3.0)
    assert gj.check(lambda v: jnp.sum(right(v)), x).passed
    assert gj.check(lambda v: jnp.sum(wrong(v)), x).passed is False  # same forward, new rule
    assert gj.check(lambda v: jnp.sum(right(v)), x).passed
    # a plain function: the kept program is the same text, its inputs are this check's
    table = {"w": np.array([1.0, 2.0, 3.0])}

    def f(v):
        return jnp.sum(jnp.sin(v) * table["w"])

    first = gj.check(f, x)
    table["w"] = np.array([-1.0, 0.5, 4.0])
    again = gj.check(f, x)
    assert first.passed and again.passed
    (component,) = again.components.values()
    np.testing.assert_allclose(component.analytic_array, np.cos(x) * table["w"], rtol=1e-12)
