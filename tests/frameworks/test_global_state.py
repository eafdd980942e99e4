"""A check leaves each framework's global state as it found it: RNG, flags, modes, caches.

Each test snapshots the state a user's program depends on, runs a passing and a failing check,
and compares; then the user's own next computation must run as it would have without the check.
"""

from __future__ import annotations

import numpy as np
import pytest


def _torch_state(torch):
    return (
        torch.get_rng_state().clone(),
        torch.get_default_dtype(),
        torch.is_grad_enabled(),
        torch.are_deterministic_algorithms_enabled(),
        torch.get_num_threads(),
        torch.is_inference_mode_enabled(),
    )


def test_torch_state_is_kept_on_pass_fail_and_raise() -> None:
    torch = pytest.importorskip("torch")
    import gradcheck.torch as gt

    class Wrong(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x.sin()

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return 1.01 * g * x.cos()

    torch.manual_seed(3)
    x = torch.randn(7, dtype=torch.float64, requires_grad=True)
    before = _torch_state(torch)
    np_before = np.random.get_state()[1].copy()
    assert gt.check_function(torch.sin, x).passed
    assert not gt.check_function(Wrong.apply, x).passed
    with pytest.raises(Exception, match="in place"):
        gt.check_function(lambda t: t.mul_(2), x)
    after = _torch_state(torch)
    assert torch.equal(before[0], after[0]) and before[1:] == after[1:]
    np.testing.assert_array_equal(np.random.get_state()[1], np_before)


def test_jax_x64_flag_and_compiled_functions_are_kept() -> None:
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp

    import gradcheck.jax as gj

    idx = np.array([1, 0, 2])

    def f(x):
        return jnp.take(x, idx) * jnp.sin(x[:3])

    x = jnp.linspace(0.1, 1.0, 4, dtype=jnp.float32)
    expected = jax.jit(jax.grad(lambda x: f(x).sum()))(x)  # compiled before the check
    flag = jax.config.jax_enable_x64
    assert gj.check(f, x).passed
    assert jax.config.jax_enable_x64 == flag
    np.testing.assert_array_equal(jax.jit(jax.grad(lambda x: f(x).sum()))(x), expected)
    np.testing.assert_array_equal(jax.grad(lambda x: f(x).sum())(x), expected)


def test_tensorflow_flags_and_global_generator_are_kept() -> None:
    tf = pytest.importorskip("tensorflow")
    import gradcheck.tensorflow as gtf

    tf.random.set_seed(5)
    x = tf.Variable(np.linspace(-1.0, 1.0, 5))
    generator = tf.random.get_global_generator().state.numpy().copy()
    eager = tf.config.functions_run_eagerly()
    floatx = tf.keras.backend.floatx()
    assert gtf.check_function(tf.sin, x).passed
    np.testing.assert_array_equal(tf.random.get_global_generator().state.numpy(), generator)
    assert tf.config.functions_run_eagerly() == eager and tf.keras.backend.floatx() == floatx
    np.testing.assert_array_equal(x.numpy(), np.linspace(-1.0, 1.0, 5))
