"""Check targets for ``gradcheck check`` and ``gradcheck sweep``: functions of no arguments that
return ``(loss, params, grads)``.

    gradcheck check examples/targets.py:mlp          # passes (exit code 0)
    gradcheck check examples/targets.py:buggy_mlp    # dW1 is missing a factor: exit code 1
    gradcheck sweep examples/targets.py:mlp --out docs/sweep
"""

import numpy as np


def _data(seed=0, m=16, d=4, hidden=6):
    rng = np.random.default_rng(seed)
    x, y = rng.standard_normal((m, d)), rng.standard_normal((m, 1))
    params = {
        "W1": rng.standard_normal((d, hidden)) * 0.5,
        "b1": rng.standard_normal(hidden) * 0.1,
        "W2": rng.standard_normal((hidden, 1)) * 0.5,
        "b2": np.zeros(1),
    }
    return x, y, params


def _mlp(bug=None, **sizes):
    x, y, params = _data(**sizes)
    m = len(x)

    def loss(p):
        h = np.tanh(x @ p["W1"] + p["b1"])
        return float(np.sum((h @ p["W2"] + p["b2"] - y) ** 2) / (2 * m))

    def grads(p):
        h = np.tanh(x @ p["W1"] + p["b1"])
        d2 = (h @ p["W2"] + p["b2"] - y) / m
        d1 = (d2 @ p["W2"].T) * (1 - h**2)
        g = {"W1": x.T @ d1, "b1": d1.sum(0), "W2": h.T @ d2, "b2": d2.sum(0)}
        if bug == "W1":
            g["W1"] = g["W1"] * m  # forgot the 1/m for W1
        if bug == "unit":  # hidden unit 3 skips the tanh derivative (1 - h²)
            d1[:, 3] = (d2 @ p["W2"].T)[:, 3]
            g["W1"], g["b1"] = x.T @ d1, d1.sum(0)
        return g

    return loss, params, grads


def mlp():
    """A tanh MLP with a correct hand-written backprop."""
    return _mlp()


def buggy_mlp():
    """The same MLP, with dW1 missing its 1/m."""
    return _mlp(bug="W1")


def buggy_unit_mlp():
    """A wider MLP where one hidden unit's backward pass forgets tanh' (one column of dW1)."""
    return _mlp(bug="unit", d=10, hidden=8)


def cubic():
    """The notes' J(θ) = θ³ at θ = 1."""
    theta = np.array([1.0])
    return (lambda t: float(t[0] ** 3)), theta, 3 * theta**2


def dropout_mlp():
    """A loss that draws a new dropout mask on every call: the check must refuse it."""
    x, y, params = _data()
    rng = np.random.default_rng()
    _, _, grads = _mlp()

    def loss(p):
        keep = rng.random((len(x), p["W1"].shape[1])) < 0.8  # a fresh mask per call
        h = np.tanh(x @ p["W1"] + p["b1"]) * keep / 0.8
        return float(np.mean((h @ p["W2"] + p["b2"] - y) ** 2) / 2)

    return loss, params, grads
