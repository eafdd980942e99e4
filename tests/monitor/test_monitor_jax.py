"""gradcheck.jax.monitored: a value_and_grad step, with a bug that needs large activations."""

from __future__ import annotations

import numpy as np
import pytest
from fake_clock import FakeClock

jax = pytest.importorskip("jax")
jnp = pytest.importorskip("jax.numpy")

import gradcheck  # noqa: E402
import gradcheck.jax  # noqa: E402
from gradcheck import Monitor  # noqa: E402


@jax.custom_vjp
def softplus(z):
    return jnp.logaddexp(z, 0.0)


def _fwd(z):
    return softplus(z), z


def _bwd(z, ct):  # wrong where the activation is large: a "fast path" that forgot the sigmoid
    return (ct * jnp.where(z > 2.0, 0.5, jax.nn.sigmoid(z)),)


softplus.defvjp(_fwd, _bwd)


def loss(p, x):
    return jnp.mean(softplus(x @ p["w"] + p["b"]))


def run(steps: int, monitor: Monitor, clock: FakeClock) -> int | None:
    """w grows by 0.01 a step (as training might): the activations pass 2 late. Returns the
    first step whose batch has an activation above 2."""
    x = jnp.asarray(np.random.default_rng(0).uniform(0.0, 1.0, (16, 4)), jnp.float32)
    step = gradcheck.jax.monitored(monitor, loss)
    first = None
    for k in range(1, steps + 1):
        clock.advance(1.0)
        p = {"w": jnp.full(4, 0.01 * k, jnp.float32), "b": jnp.zeros((), jnp.float32)}
        if first is None and float(jnp.max(x @ p["w"])) > 2.0:
            first = k
        step(p, x)
        if monitor.stopped:
            break
    return first


def test_a_clean_jax_run_raises_no_alarm():
    x = jnp.ones((4, 3))
    x64 = jax.config.read("jax_enable_x64")
    clock = FakeClock()
    monitor = Monitor(overhead=0.3, clock=clock)
    step = gradcheck.jax.monitored(monitor, lambda p, x: jnp.mean(jnp.tanh(x @ p["w"])))
    for k in range(150):
        clock.advance(1.0)  # a step takes 1 s; the jitted loss calls take no (fake) time
        step({"w": jnp.full(3, 0.01 * k)}, x)
    assert monitor.checks >= 5 and monitor.report is None
    assert jax.config.read("jax_enable_x64") == x64  # the flag is never touched


def test_a_bug_at_large_activations_is_caught_after_it_starts(tmp_path):
    clock = FakeClock()
    monitor = Monitor(overhead=0.3, on_failure="stop", clock=clock, save_dir=tmp_path)
    first = run(300, monitor, clock)
    assert monitor.stopped and first is not None
    assert monitor.log[-1].step >= first
    assert all(c.outcome == "passed" for c in monitor.log[:-1])
    assert monitor.report.suspects  # w or b, or both
