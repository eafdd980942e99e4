"""coords= and the batched (vmap) path through the torch and JAX adapters."""

from __future__ import annotations

import numpy as np
import pytest


def test_torch_module_directional_and_sample() -> None:
    torch = pytest.importorskip("torch")
    import gradcheck.torch as gt

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(20, 30), torch.nn.Tanh(), torch.nn.Linear(30, 3))
    net = net.double()
    x = torch.randn(8, 20, dtype=torch.float64)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    r = gt.check_module(net, x, coords="directional")
    assert r.passed and any("random directions agree" in n for n in r.notes)
    s = gt.check_module(net, x, coords=100)
    assert s.passed and sum(c.checked for c in s.components.values()) <= 100
    assert all(c.checked > 0 for c in s.components.values())
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_jax_directional_finds_a_wrong_custom_rule() -> None:
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    import gradcheck.jax as gj

    @jax.custom_vjp
    def scaled(w):
        return jnp.sum(jnp.sin(w))

    def fwd(w):
        return scaled(w), w

    def bwd(w, g):
        wrong = jnp.cos(w).at[1234].multiply(-1.0)  # one wrong entry in 4,096
        return (g * wrong,)

    scaled.defvjp(fwd, bwd)
    w = jnp.asarray(np.random.default_rng(0).uniform(-1, 1, 4096))
    r = gj.check(scaled, w, coords="directional")
    c = next(iter(r.components.values()))
    assert not r.passed and c.worst_index == (1234,) and r.evaluations < 400
