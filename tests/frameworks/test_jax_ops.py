"""gradcheck.jax beyond dense real leaves: complex inputs and outputs (JAX's convention), empty
leaves, non-finite inputs, domain edges, integer outputs."""

from __future__ import annotations

import numpy as np
import pytest

from gradcheck.report._sentences import NoteCode

jax = pytest.importorskip("jax")

import jax.numpy as jnp  # noqa: E402

import gradcheck.jax as gj  # noqa: E402
from gradcheck.report._model import UNCHECKED  # noqa: E402

Z = np.array([1 + 0.5j, 2 - 1j, -0.5 + 2j])


def _abs2(conjugated: bool):
    """Σ|z|² with a custom VJP. JAX's grad of it is 2·z̄ (∂J/∂x − i∂J/∂y); the bug returns 2z."""

    @jax.custom_vjp
    def f(z):
        return jnp.sum(jnp.abs(z) ** 2)

    def fwd(z):
        return f(z), z

    def bwd(z, g):
        return (g * 2 * (z if conjugated else jnp.conj(z)),)

    f.defvjp(fwd, bwd)
    return f


def test_complex_right_passes_with_jax_convention() -> None:
    report = gj.check(_abs2(False), Z)
    assert report.passed and report.components["arg0"].shape == (3, 2)
    assert any(n.code is NoteCode.COMPLEX_INPUT and "JAX's convention" in n.numbers["convention"] for n in report.notes)
    assert any(n.code is NoteCode.COMPLEX_WORST and n.tensor == "arg0" for n in report.notes)


def test_complex_conjugated_is_caught_and_named() -> None:
    report = gj.check(_abs2(True), Z, vectorize="loop")
    assert not report.passed
    assert [f.kind for f in report.findings] == ["conjugated"]


def test_complex_outputs_pass() -> None:
    assert gj.check(lambda z: jnp.abs(jnp.fft.fft(z * jnp.exp(z))), Z, vectorize="loop").passed
    assert gj.check(jnp.fft.rfft, np.linspace(-1, 1, 6), vectorize="loop").passed


def test_empty_leaves_are_left_out_and_all_empty_says_nothing_checked() -> None:
    report = gj.check(lambda a, b: jnp.sum(a) + jnp.sum(b**2), np.zeros((0, 3)), np.ones(2), argnums=(0, 1))
    assert report.passed and list(report.components) == ["arg1"]
    assert any(n.code is NoteCode.EMPTY and n.tensor == "arg0" and n.numbers["shape"] == (0, 3) for n in report.notes)
    report = gj.check(jnp.sum, np.zeros(0))
    assert report.passed is None and not report.components
    assert report.explain().startswith("NOTHING CHECKED")


def test_minus_inf_entries_stay_unperturbed() -> None:
    y = np.array([1.0, -np.inf, 2.0])
    report = gj.check(jax.nn.softmax, y, vectorize="loop")
    assert report.passed
    c = report.components["arg0"]
    assert c.checked == 2 and c.flags[1] == UNCHECKED
    assert np.isneginf(y[1])


def test_domain_edge_float32() -> None:
    x = np.array([0.3, 0.9995, -0.9993], np.float32)
    report = gj.check(jnp.arcsin, x, precision="native")
    assert report.passed and any("edge of the loss's domain" in n for n in report.notes)

    @jax.custom_jvp
    def bad_arcsin(x):
        return jnp.arcsin(x)

    @bad_arcsin.defjvp
    def _jvp(primals, tangents):
        (x,), (t,) = primals, tangents
        return jnp.arcsin(x), 1.05 * t / jnp.sqrt(1 - x * x)

    assert not gj.check(bad_arcsin, x, precision="native").passed


def test_integer_outputs_are_left_out() -> None:
    x = np.array([0.5, -1.0, 2.0])
    assert gj.check(lambda a: (jnp.sin(a), jnp.argmax(a)), x, vectorize="loop").passed


def test_conjugated_backward_with_complex_output_is_named() -> None:
    @jax.custom_vjp
    def square(z):
        return z * z

    def fwd(z):
        return square(z), z

    def bwd(z, g):  # JAX's VJP is g·f'(z); g·conj(f'(z)) is PyTorch's rule, conjugated here
        return (g * jnp.conj(2 * z),)

    square.defvjp(fwd, bwd)
    report = gj.check(square, Z, vectorize="loop")
    assert not report.passed
    assert [f.kind for f in report.findings] == ["conjugated"]
