"""Batch norm and embedding + 1-D convolution nets, with hand-written backward passes and
switches that plant real mistakes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

Params = dict[str, np.ndarray]
BN_EPS = 1e-5


def _softmax_ce(z: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    z = z - z.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-np.sum(y * logp)), np.exp(logp) - y


def batchnorm(*, m: int = 12, d: int = 4, h: int = 6, k: int = 3, seed: int = 0) -> tuple:
    """x → W1 → batch norm (gamma, beta) → tanh → W2, b2 → softmax cross-entropy.

    Bugs: ``no_mean_term`` / ``no_var_term`` (a term of the batch-norm input gradient left
    out), ``dgamma_sign``, ``dgamma_z`` (dgamma uses z instead of x̂), ``dbeta_mean``.
    """
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((m, d))
    y = np.eye(k)[rng.integers(0, k, m)]
    params: Params = {
        "W1": rng.standard_normal((d, h)) / np.sqrt(d),
        "gamma": 1.0 + 0.2 * rng.standard_normal(h),
        "beta": 0.2 * rng.standard_normal(h),
        "W2": rng.standard_normal((h, k)) / np.sqrt(h),
        "b2": 0.1 * rng.standard_normal(k),
    }

    def forward(p: Params) -> tuple:
        z = x @ p["W1"]
        mu, var = z.mean(axis=0), z.var(axis=0)
        inv = 1.0 / np.sqrt(var + BN_EPS)
        xhat = (z - mu) * inv
        a = np.tanh(p["gamma"] * xhat + p["beta"])
        return z, inv, xhat, a, a @ p["W2"] + p["b2"]

    def loss(p: Params) -> float:
        return _softmax_ce(forward(p)[-1], y)[0] / m

    def grads(p: Params, **bug: Any) -> Params:
        z, inv, xhat, a, out = forward(p)
        dout = _softmax_ce(out, y)[1] / m
        du = (dout @ p["W2"].T) * (1 - a**2)
        dxhat = du * p["gamma"]
        mean_term = 0.0 if bug.get("no_mean_term") else dxhat.mean(axis=0)
        var_term = 0.0 if bug.get("no_var_term") else xhat * (dxhat * xhat).mean(axis=0)
        dz = inv * (dxhat - mean_term - var_term)
        dgamma = (du * (z if bug.get("dgamma_z") else xhat)).sum(axis=0)
        return {
            "W1": x.T @ dz,
            "gamma": -dgamma if bug.get("dgamma_sign") else dgamma,
            "beta": du.mean(axis=0) if bug.get("dbeta_mean") else du.sum(axis=0),
            "W2": a.T @ dout,
            "b2": dout.sum(axis=0),
        }

    return loss, params, grads


def embed_conv(
    *, m: int = 8, vocab: int = 10, d: int = 4, length: int = 6, width: int = 3, c: int = 5,
    k: int = 3, seed: int = 0,
) -> tuple[Callable, Params, Callable]:
    """tokens → embedding E → 1-D convolution (K, bc) → tanh → mean over time → Wo, bo → softmax.

    Bugs: ``assign`` (dE[tokens] = de: repeated tokens overwrite instead of accumulate),
    ``flip_kernel`` (dK reversed in time: convolution vs correlation), ``no_pool_mean`` (the
    1/T of the mean pooling left out), ``no_mean`` (dWo not divided by m).
    """
    rng = np.random.default_rng(seed)
    tokens = rng.integers(0, vocab, (m, length))
    y = np.eye(k)[rng.integers(0, k, m)]
    steps = length - width + 1
    params: Params = {
        "E": 0.5 * rng.standard_normal((vocab, d)),
        "K": rng.standard_normal((width, d, c)) / np.sqrt(width * d),
        "bc": 0.1 * rng.standard_normal(c),
        "Wo": rng.standard_normal((c, k)) / np.sqrt(c),
        "bo": 0.1 * rng.standard_normal(k),
    }

    def forward(p: Params) -> tuple:
        e = p["E"][tokens]
        conv = sum(np.einsum("mtd,dc->mtc", e[:, j : j + steps], p["K"][j]) for j in range(width))
        h = np.tanh(conv + p["bc"])
        pooled = h.mean(axis=1)
        return e, h, pooled, pooled @ p["Wo"] + p["bo"]

    def loss(p: Params) -> float:
        return _softmax_ce(forward(p)[-1], y)[0] / m

    def grads(p: Params, **bug: Any) -> Params:
        e, h, pooled, out = forward(p)
        dout = _softmax_ce(out, y)[1] / m
        dWo = pooled.T @ dout * (m if bug.get("no_mean") else 1)
        dh = np.repeat((dout @ p["Wo"].T)[:, None, :], steps, axis=1)
        dh = dh if bug.get("no_pool_mean") else dh / steps
        dconv = dh * (1 - h**2)
        dK = np.stack([np.einsum("mtd,mtc->dc", e[:, j : j + steps], dconv) for j in range(width)])
        de = np.zeros_like(e)
        for j in range(width):
            de[:, j : j + steps] += dconv @ p["K"][j].T
        dE = np.zeros_like(p["E"])
        if bug.get("assign"):
            dE[tokens] = de
        else:
            np.add.at(dE, tokens, de)
        return {
            "E": dE,
            "K": dK[::-1] if bug.get("flip_kernel") else dK,
            "bc": dconv.sum(axis=(0, 1)),
            "Wo": dWo,
            "bo": dout.sum(axis=0),
        }

    return loss, params, grads
