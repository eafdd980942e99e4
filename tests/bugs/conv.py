"""A 2-D convolution net (NCHW, kernels (out, in, kh, kw)) with a hand-written backward pass,
and switches that plant the kernel mistakes real conv code makes."""

from __future__ import annotations

from typing import Any

import numpy as np

Params = dict[str, np.ndarray]


def _patches(x: np.ndarray, kh: int, kw: int) -> np.ndarray:
    """(m, cin, oh, ow, kh, kw) windows of x for a valid cross-correlation."""
    m, cin, h, w = x.shape
    oh, ow = h - kh + 1, w - kw + 1
    out = np.empty((m, cin, oh, ow, kh, kw))
    for i in range(kh):
        for j in range(kw):
            out[..., i, j] = x[:, :, i : i + oh, j : j + ow]
    return out


def conv2d(
    *, m: int = 6, cin: int = 2, cout: int = 3, size: int = 6, kh: int = 3, kw: int = 3,
    k: int = 3, seed: int = 0,
) -> tuple:
    """x → conv (K, bk) → tanh → mean over space → Wo, bo → softmax cross-entropy.

    Bugs: ``flip_kernel`` (dK rotated by 180°: convolution instead of correlation),
    ``swap_axes`` (dK with its two spatial axes exchanged), ``no_pool_mean`` (1/(oh·ow) left out).
    """
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((m, cin, size, size))
    y = np.eye(k)[rng.integers(0, k, m)]
    params: Params = {
        "K": rng.standard_normal((cout, cin, kh, kw)) / np.sqrt(cin * kh * kw),
        "bk": 0.1 * rng.standard_normal(cout),
        "Wo": rng.standard_normal((cout, k)) / np.sqrt(cout),
        "bo": 0.1 * rng.standard_normal(k),
    }
    cols = _patches(x, kh, kw)

    def forward(p: Params) -> tuple:
        z = np.einsum("mcxyij,ocij->moxy", cols, p["K"]) + p["bk"][None, :, None, None]
        h = np.tanh(z)
        pooled = h.mean(axis=(2, 3))
        out = pooled @ p["Wo"] + p["bo"]
        return h, pooled, out

    def head(out: np.ndarray) -> tuple[float, np.ndarray]:
        z = out - out.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        return float(-np.sum(y * logp)) / m, (np.exp(logp) - y) / m

    def loss(p: Params) -> float:
        return head(forward(p)[-1])[0]

    def grads(p: Params, **bug: Any) -> Params:
        h, pooled, out = forward(p)
        dout = head(out)[1]
        area = h.shape[2] * h.shape[3]
        dh = (dout @ p["Wo"].T)[:, :, None, None] * np.ones_like(h)
        dh = dh if bug.get("no_pool_mean") else dh / area
        dz = dh * (1 - h**2)
        dK = np.einsum("moxy,mcxyij->ocij", dz, cols)
        if bug.get("flip_kernel"):
            dK = dK[:, :, ::-1, ::-1]
        if bug.get("swap_axes"):
            dK = np.swapaxes(dK, 2, 3)
        return {"K": np.ascontiguousarray(dK), "bk": dz.sum(axis=(0, 2, 3)),
                "Wo": pooled.T @ dout, "bo": dout.sum(axis=0)}

    return loss, params, grads
