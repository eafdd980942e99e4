"""Nets for issue 12's families: mixed-scale features, exact-zero ReLU pre-activations,
staircases, a float32 sort, and a parameter the loss never reads."""

from __future__ import annotations

from typing import Any

import numpy as np

Params = dict[str, np.ndarray]


def mixed_scale(*, d: int = 7, h: int = 5, m: int = 12, span: float = 3.0, seed: int = 0) -> tuple:
    """tanh layer on features spanning 10^-span..10^span, W1 rows spanning the inverse."""
    rng = np.random.default_rng(seed)
    fs = np.logspace(-span, span, d)
    x = rng.standard_normal((m, d)) * fs
    y = rng.standard_normal((m, 2))
    params = {"W1": rng.standard_normal((d, h)) / fs[:, None], "W2": rng.standard_normal((h, 2))}

    def loss(p: Params) -> float:
        return float(0.5 * np.sum((np.tanh(x @ p["W1"]) @ p["W2"] - y) ** 2) / m)

    def grads(p: Params, **bug: Any) -> Params:
        a = np.tanh(x @ p["W1"])
        d2 = (a @ p["W2"] - y) / m
        d1 = (d2 @ p["W2"].T) * (1 - a**2)
        return {"W1": bug.get("w1_scale", 1.0) * (x.T @ d1), "W2": a.T @ d2}

    return loss, params, grads


def relu_zeros(rows: int, units: int, *, m: int = 20, hid: int = 5, d: int = 4,
               seed: int = 0) -> tuple:
    """ReLU net on dyadic data with exactly rows × units of its m·hid pre-activations at 0.

    The first ``rows`` samples are one non-zero input x0, and the first ``units`` biases are
    −x0·W1[:, j], so those pre-activations are exactly 0 and every weight that feeds them sits
    on a kink. x0's last feature carries an extra 1/256 and W1's last row odd eighths there, so
    no other pre-activation is 0 (every sum here is exact). Bugs: ``w1_scale``, ``w2_scale``.
    """
    rng = np.random.default_rng(seed)
    x = rng.integers(-8, 9, (m, d)) / 8.0
    w1 = rng.integers(-8, 9, (d, hid)) / 8.0
    w1[-1] = (2 * rng.integers(-4, 4, hid) + 1) / 8.0  # odd eighths
    x0 = x[0].copy()
    x0[-1] += 1.0 / 256.0
    x[:rows] = x0
    b1 = (2 * rng.integers(0, 8, hid) + 1) / 128.0  # odd /128: never cancels a multiple of 1/64
    b1[:units] = -(x0 @ w1[:, :units])
    params = {"W1": w1, "b1": b1, "W2": rng.standard_normal((hid, 2))}
    y = rng.standard_normal((m, 2))

    def loss(p: Params) -> float:
        a = np.maximum(x @ p["W1"] + p["b1"], 0.0)
        return float(0.5 * np.sum((a @ p["W2"] - y) ** 2) / m)

    def grads(p: Params, **bug: Any) -> Params:
        z = x @ p["W1"] + p["b1"]
        a = np.maximum(z, 0.0)
        d2 = (a @ p["W2"] - y) / m
        d1 = (d2 @ p["W2"].T) * (z > 0)
        return {"W1": bug.get("w1_scale", 1.0) * (x.T @ d1), "b1": d1.sum(0),
                "W2": bug.get("w2_scale", 1.0) * (a.T @ d2)}

    return loss, params, grads


def staircase(*, n: int = 200, decimals: int = 3, seed: int = 0) -> tuple:
    """J = round(x, decimals) · w + 0.5‖v‖²: piecewise constant along x (derivative 0 a.e.)."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal(n)
    params = {"x": rng.standard_normal(n), "v": rng.standard_normal(3)}

    def loss(p: Params) -> float:
        return float(np.round(p["x"], decimals) @ w + 0.5 * p["v"] @ p["v"])

    def grads(p: Params, **bug: Any) -> Params:
        return {"x": bug.get("straight_through", 0.0) * w, "v": p["v"].copy()}

    return loss, params, grads


def sort32(*, n: int = 2000, seed: int = 0) -> tuple:
    """J = Σ sort(x)_k · w_k in native float32, x a permutation of 0..n-1 (kinks 1 apart)."""
    rng = np.random.default_rng(seed)
    x = rng.permutation(n).astype(np.float32)
    w = rng.standard_normal(n).astype(np.float32)

    def loss(p: Params) -> float:
        return float(np.sum(np.sort(p["x"].astype(np.float32)) * w, dtype=np.float32))

    def grads(p: Params, **bug: Any) -> Params:
        g = np.empty(n, np.float32)
        g[np.argsort(p["x"], kind="stable")] = w
        return {"x": g * np.float32(bug.get("scale", 1.0))}

    return loss, {"x": x}, grads


def unread(*, seed: int = 0) -> tuple:
    """tanh regression whose loss never reads W3 (a leftover layer); its gradient should be 0.

    Bug: ``leftover`` (dW3 computed as if W3 were used: a non-zero gradient).
    """
    rng = np.random.default_rng(seed)
    x, y = rng.standard_normal((10, 4)), rng.standard_normal((10, 2))
    params = {"W1": rng.standard_normal((4, 5)) / 2, "W2": rng.standard_normal((5, 2)) / 2,
              "W3": rng.standard_normal((2, 2))}

    def loss(p: Params) -> float:
        return float(0.5 * np.sum((np.tanh(x @ p["W1"]) @ p["W2"] - y) ** 2) / 10)

    def grads(p: Params, **bug: Any) -> Params:
        a = np.tanh(x @ p["W1"])
        d2 = (a @ p["W2"] - y) / 10
        w3 = (a @ p["W2"]).T @ d2 if bug.get("leftover") else np.zeros((2, 2))
        return {"W1": x.T @ ((d2 @ p["W2"].T) * (1 - a**2)), "W2": a.T @ d2, "W3": w3}

    return loss, params, grads


STAIRS = {
    "round": lambda x, q: np.round(x / q) * q,
    "floor": lambda x, q: np.floor(x / q) * q,
    "ceil": lambda x, q: np.ceil(x / q) * q,
    "sign": lambda x, q: np.sign(x),
    "quantise": lambda x, q: x // q * q,
}


def stairs(op: str = "floor", *, q: float = 0.01, n: int = 60, seed: int = 0) -> tuple:
    """J = Σ w·op(x; q) + tanh(a)·c + 0.5‖v‖²: piecewise constant along x (derivative 0 a.e.),
    smooth along v and a.

    Bug: ``straight_through`` (the surrogate gradient of op: dJ/dx ≈ w, a straight-through
    estimator; not the derivative, which is 0 almost everywhere).
    """
    rng = np.random.default_rng(seed)
    w, c = rng.standard_normal(n), rng.standard_normal(4)
    params = {"x": rng.standard_normal(n), "a": rng.standard_normal(4), "v": rng.standard_normal(3)}
    f = STAIRS[op]

    def loss(p: Params) -> float:
        return float(f(p["x"], q) @ w + np.tanh(p["a"]) @ c + 0.5 * p["v"] @ p["v"])

    def grads(p: Params, **bug: Any) -> Params:
        return {"x": bug.get("straight_through", 0.0) * w, "a": (1 - np.tanh(p["a"]) ** 2) * c,
                "v": p["v"].copy()}

    return loss, params, grads


def dead_relu(*, dead: int = 2, m: int = 16, d: int = 5, hid: int = 8, seed: int = 0) -> tuple:
    """ReLU net 5 → 8 → 2 whose first ``dead`` hidden units never fire (bias −50): J does not
    change along their weights at all (locally constant, derivative really 0, not stairs).

    Bug: ``leak`` (the ReLU derivative taken as 1 for the dead units: a non-zero gradient for
    weights that J does not move along).
    """
    rng = np.random.default_rng(seed)
    x, y = rng.standard_normal((m, d)), rng.standard_normal((m, 2))
    b1 = 0.3 * rng.standard_normal(hid)
    b1[:dead] = -50.0
    params = {"W1": rng.standard_normal((d, hid)) / np.sqrt(d), "b1": b1,
              "W2": rng.standard_normal((hid, 2)) / np.sqrt(hid)}

    def loss(p: Params) -> float:
        a = np.maximum(x @ p["W1"] + p["b1"], 0.0)
        return float(0.5 * np.sum((a @ p["W2"] - y) ** 2) / m)

    def grads(p: Params, **bug: Any) -> Params:
        z = x @ p["W1"] + p["b1"]
        a = np.maximum(z, 0.0)
        d2 = (a @ p["W2"] - y) / m
        mask = (z > 0).astype(float)
        if bug.get("leak"):
            mask[:, :dead] = 1.0
        d1 = (d2 @ p["W2"].T) * mask
        return {"W1": x.T @ d1, "b1": d1.sum(0), "W2": a.T @ d2}

    return loss, params, grads
