"""Fully connected nets (tanh / sigmoid / ReLU; softmax-CE, sigmoid-BCE, MSE, hinge heads;
L2 / L1) with a hand-written backward pass, and switches that plant real backprop mistakes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

Params = dict[str, np.ndarray]


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # stable for any z


# activation -> (f, f' as a function of the pre-activation z)
ACT: dict[str, tuple[Callable, Callable]] = {
    "tanh": (np.tanh, lambda z: 1.0 - np.tanh(z) ** 2),
    "sigmoid": (_sigmoid, lambda z: _sigmoid(z) * (1.0 - _sigmoid(z))),
    "relu": (lambda z: np.maximum(z, 0.0), lambda z: (z > 0).astype(z.dtype)),
}


def _head_loss(head: str, z: np.ndarray, y: np.ndarray) -> float:
    """Summed (not yet averaged) loss of the output pre-activation z."""
    if head == "softmax":
        z = z - z.max(axis=1, keepdims=True)
        return float(-np.sum(y * (z - np.log(np.exp(z).sum(axis=1, keepdims=True)))))
    if head == "bce":
        return float(np.sum(y * np.logaddexp(0, -z) + (1 - y) * np.logaddexp(0, z)))
    if head == "mse":
        return float(0.5 * np.sum((z - y) ** 2))
    if head == "hinge":
        correct = np.sum(z * y, axis=1, keepdims=True)
        return float(np.sum(np.maximum(0.0, z - correct + 1.0) * (1 - y)))
    raise ValueError(head)


def _head_delta(head: str, z: np.ndarray, y: np.ndarray) -> np.ndarray:
    """d(summed loss)/dz."""
    if head == "softmax":
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True) - y
    if head == "bce":
        return _sigmoid(z) - y
    if head == "mse":
        return z - y
    if head == "hinge":
        correct = np.sum(z * y, axis=1, keepdims=True)
        active = ((z - correct + 1.0) > 0) * (1 - y)
        return active - y * active.sum(axis=1, keepdims=True)
    raise ValueError(head)


def mlp(
    act: str = "tanh",
    head: str = "softmax",
    sizes: tuple[int, ...] = (5, 8, 8, 3),
    *,
    m: int = 16,
    lam: float = 0.0,
    l1: float = 0.0,
    seed: int = 0,
    dtype: Any = np.float64,
    x_scale: float = 1.0,
    w_scales: tuple[float, ...] | None = None,
    out_scale: float = 1.0,
    zero_rows: int = 0,
) -> tuple[Callable, Params, Callable]:
    """(loss, params, grads(params, **bugs)) on random data; grads with no bugs is exact.

    ``zero_rows`` zeroes that many input rows (with zero biases, ReLU pre-activations are then
    exactly 0: kinks). ``out_scale`` multiplies J (a loss of 1e6, gradients of 1e-9).
    Bugs (keyword switches of ``grads``): ``no_mean`` (delta not divided by m), ``flip``
    (y − a instead of a − y), ``double`` (×2 on the output delta), ``act_on_a`` (f' applied to
    a = f(z)), ``no_deriv`` (activation derivative left out), ``no_transpose`` (W instead of W.T
    at that layer), ``stale`` (dW at that layer uses activations of an older W), ``reg_scale``
    (L2 term multiplied by that), ``reg_bias`` (L2 of that weight added to every db).
    """
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((m, sizes[0])) * x_scale
    x[:zero_rows] = 0.0
    k = sizes[-1]
    if head in ("softmax", "hinge"):
        y = np.eye(k)[rng.integers(0, k, m)]
    elif head == "bce":
        y = rng.integers(0, 2, (m, k)).astype(float)
    else:
        y = rng.standard_normal((m, k))
    depth = len(sizes) - 1
    scales = w_scales or (1.0,) * depth
    params: Params = {}
    for i in range(1, depth + 1):
        w = rng.standard_normal((sizes[i - 1], sizes[i])) / np.sqrt(sizes[i - 1]) * scales[i - 1]
        params[f"W{i}"] = w.astype(dtype)
        b = 0.0 if zero_rows else 0.3 * rng.standard_normal(sizes[i])
        params[f"b{i}"] = np.asarray(b * np.ones(sizes[i]), dtype=dtype)
    f, df = ACT[act]
    older = {n: v + 0.05 * rng.standard_normal(v.shape) for n, v in params.items()}

    def forward(p: Params) -> list[tuple[np.ndarray, np.ndarray]]:
        a = x.astype(dtype)
        cache = [(a, a)]
        for i in range(1, depth + 1):
            z = a @ p[f"W{i}"] + p[f"b{i}"]
            a = f(z) if i < depth else z
            cache.append((z, a))
        return cache

    def loss(p: Params) -> float:
        j = _head_loss(head, forward(p)[-1][0].astype(np.float64), y) / m
        j += lam / (2 * m) * sum(float(np.sum(p[f"W{i}"].astype(float) ** 2)) for i in range(1, depth + 1))
        j += l1 / m * sum(float(np.sum(np.abs(p[f"W{i}"].astype(float)))) for i in range(1, depth + 1))
        return j * out_scale

    def grads(p: Params, **bug: Any) -> Params:
        cache = forward(p)
        delta = _head_delta(head, cache[-1][0], y).astype(dtype) * out_scale
        delta = delta * (1 if bug.get("no_mean") else 1 / m) * (2 if bug.get("double") else 1)
        delta = -delta if bug.get("flip") else delta
        out: Params = {}
        for i in range(depth, 0, -1):
            a_prev = forward(older)[i - 1][1] if bug.get("stale") == i else cache[i - 1][1]
            w = p[f"W{i}"]
            reg = bug.get("reg_scale", 1.0) * out_scale / m * (lam * w + l1 * np.sign(w))
            out[f"W{i}"] = (a_prev.T @ delta + reg).astype(dtype)
            out[f"b{i}"] = delta.sum(axis=0).astype(dtype)
            if i > 1:
                back = delta @ (w if bug.get("no_transpose") == i else w.T)
                z, a = cache[i - 1]
                deriv = df(a) if bug.get("act_on_a") else df(z)
                delta = back if bug.get("no_deriv") else back * deriv
        if bug.get("reg_bias"):
            for i in range(1, depth + 1):
                out[f"b{i}"] = out[f"b{i}"] + lam * out_scale / m * p[f"b{i}"]
        return {n: out[n] for n in params}

    return loss, params, grads
