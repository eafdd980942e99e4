"""``gradcheck demo``: the textbook's θ³ example, then a check of a small NumPy MLP."""

from __future__ import annotations

import numpy as np
from rich.console import Console


def run_demo() -> None:
    console = Console()
    f = lambda t: t**3  # noqa: E731
    theta, eps = 1.0, 0.01
    two = (f(theta + eps) - f(theta - eps)) / (2 * eps)
    one = (f(theta + eps) - f(theta)) / eps
    console.print(f"θ³ at θ=1, ε=0.01: two-sided {two:.4f} (error {abs(two - 3):.4f}), "
                  f"one-sided {one:.4f} (error {abs(one - 3):.4f})")
    from gradcheck import check

    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((20, 4)), rng.standard_normal((20, 1))
    params = {"W1": rng.standard_normal((4, 8)) * 0.5, "b1": np.zeros(8),
              "W2": rng.standard_normal((8, 1)) * 0.5, "b2": np.zeros(1)}

    def loss(p):
        h = np.tanh(x @ p["W1"] + p["b1"])
        return float(np.mean((h @ p["W2"] + p["b2"] - y) ** 2) / 2)

    def grads(p):
        h = np.tanh(x @ p["W1"] + p["b1"])
        d2 = (h @ p["W2"] + p["b2"] - y) / len(x)
        d1 = (d2 @ p["W2"].T) * (1 - h**2)
        return {"W1": x.T @ d1, "b1": d1.sum(0), "W2": h.T @ d2, "b2": d2.sum(0)}

    console.print(check(loss, params, grads))
