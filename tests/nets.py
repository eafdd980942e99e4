"""Small hand-written NumPy MLPs with correct backprop, shared by the core tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

ACTIVATIONS: dict[str, tuple[Callable, Callable]] = {
    "tanh": (np.tanh, lambda z, a: 1 - a**2),
    "relu": (lambda z: np.maximum(z, 0), lambda z, a: (z > 0).astype(z.dtype)),
    "sigmoid": (lambda z: 1 / (1 + np.exp(-z)), lambda z, a: a * (1 - a)),
}


def mlp(
    act: str = "tanh",
    *,
    sizes: tuple[int, ...] = (6, 16, 4),
    m: int = 32,
    dtype: Any = np.float64,
    loss_dtype: Any = None,
    lam: float = 0.0,
    scale: float = 1.0,
    input_scale: float = 1.0,
    seed: int = 0,
) -> tuple[Callable, dict[str, np.ndarray], Callable]:
    """(loss, params, grads) for softmax cross-entropy on random data, with L2 of weight λ.

    ``loss_dtype`` makes the loss compute in that dtype internally (a float32 kernel);
    ``scale`` multiplies J (a loss of 1e6, or gradients of 1e-9).
    """
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((m, sizes[0])) * input_scale
    y = np.eye(sizes[-1])[rng.integers(0, sizes[-1], m)]
    params: dict[str, np.ndarray] = {}
    for layer in range(1, len(sizes)):
        w = rng.standard_normal((sizes[layer - 1], sizes[layer])) / np.sqrt(sizes[layer - 1])
        params[f"W{layer}"] = w.astype(dtype)
        params[f"b{layer}"] = (0.1 * rng.standard_normal(sizes[layer])).astype(dtype)
    depth = len(sizes) - 1
    f, df = ACTIVATIONS[act]
    cast = (lambda v: v.astype(loss_dtype)) if loss_dtype else (lambda v: v)

    def forward(p: dict[str, np.ndarray], cast: Callable = cast) -> tuple[list, np.ndarray]:
        a = cast(x)
        cache = [(None, a)]
        for layer in range(1, depth + 1):
            z = a @ cast(p[f"W{layer}"]) + cast(p[f"b{layer}"])
            a = f(z) if layer < depth else z
            cache.append((z, a))
        z = cache[-1][1] - cache[-1][1].max(axis=1, keepdims=True)
        e = np.exp(z)
        return cache, e / e.sum(axis=1, keepdims=True)

    def loss(p: dict[str, np.ndarray]) -> float:
        _, s = forward(p)
        j = -np.sum(y * np.log(s)) / m
        j += lam / (2 * m) * sum(np.sum(p[f"W{i}"] ** 2) for i in range(1, depth + 1))
        return j * scale

    def grads(p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        p = {k: v.astype(dtype) for k, v in p.items()}
        cache, s = forward(p, lambda v: v.astype(dtype))  # backprop runs in the params' dtype
        delta = ((s - y) / m * scale).astype(dtype)
        out: dict[str, np.ndarray] = {}
        for layer in range(depth, 0, -1):
            a_prev = cache[layer - 1][1]
            out[f"W{layer}"] = (a_prev.T @ delta + lam / m * scale * p[f"W{layer}"]).astype(dtype)
            out[f"b{layer}"] = delta.sum(axis=0).astype(dtype)
            if layer > 1:
                z, a = cache[layer - 1]
                delta = (delta @ p[f"W{layer}"].T) * df(z, a)
        return dict(sorted(out.items(), key=lambda kv: list(params).index(kv[0])))

    return loss, params, grads


def snapshot(params: dict[str, np.ndarray]) -> dict[str, bytes]:
    """Bytes of every array, to assert bit-for-bit equality afterwards."""
    return {k: v.tobytes() + str(v.dtype).encode() + str(v.shape).encode() for k, v in params.items()}
