"""Kink sensitivity: the smallest scale error gradcheck detects where J has kinks.

Run: .venv/bin/python benchmarks/kinks.py

Two families (from ``tests/bugs/kinks.py`` and below), each with exact kinks at θ:
  ReLU net   4 → 5 ReLU → 2, 20 samples, dyadic data: 0, 1, 10 or 50 of its 100
             pre-activations exactly 0. Planted: dW1 × (1 + e).
  hinge      linear binary hinge loss + L2 on 12 samples, k of them exactly on the margin
             (y·x·w = 1): every entry of w then sits on a kink. Planted: dw × (1 + e).
For each, e runs over 1e-1 … 1e-7; "smallest e" is the smallest e caught with every larger e
caught too ("–" when even 1e-1 passes). grads are given as fixed arrays, then as a callable
grads(params) (which lets gradcheck re-check kinked entries off the kink). e = 0 must pass: a
false alarm is counted in its own column.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from bugs.kinks import relu_zeros  # noqa: E402

import gradcheck  # noqa: E402

ERRORS = (1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7)


def hinge(on_margin: int, *, m: int = 12, d: int = 4, lam: float = 0.1, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.integers(-8, 9, (m, d)) / 8.0
    w = rng.integers(-8, 9, d) / 8.0
    w[-1] = 1.0
    y = np.where(rng.random(m) < 0.5, -1.0, 1.0)
    for i in range(on_margin):  # y·x·w = 1 exactly (dyadic arithmetic)
        x[i, -1] = y[i] - x[i, :-1] @ w[:-1]
    assert np.sum(y * (x @ w) == 1.0) >= on_margin

    def loss(p):
        return float(np.mean(np.maximum(0.0, 1.0 - y * (x @ p["w"]))) + 0.5 * lam * p["w"] @ p["w"])

    def grads(p, scale: float = 1.0):
        active = (1.0 - y * (x @ p["w"])) > 0
        return {"w": scale * (-(active * y) @ x / m + lam * p["w"])}

    return loss, {"w": w}, grads


def sweep(net, name: str) -> tuple[str, str, int]:
    loss, params, grads = net
    out = []
    for callable_grads in (False, True):
        def given(e, c=callable_grads):
            if c:
                return lambda p: scaled(grads, p, e)
            return scaled(grads, params, e)
        alarm = not gradcheck.check(loss, params, given(0.0)).passed
        smallest = "–"
        for e in ERRORS:
            if name not in gradcheck.check(loss, params, given(e)).suspects:
                break
            smallest = f"{e:g}"
        out.append((smallest, alarm))
    return out


def scaled(grads, p, e):
    g = grads(p)
    key = "W1" if "W1" in g else "w"
    return {**g, key: g[key] * (1.0 + e)}


def main() -> None:
    print("| ReLU net: exact-zero pre-activations | smallest e, fixed arrays | smallest e, "
          "callable grads | false alarms |")
    print("|---|---|---|---|")
    for label, (rows, units) in (("0", (0, 0)), ("1%", (1, 1)), ("10%", (2, 5)),
                                 ("50%", (10, 5))):
        loss, params, grads = relu_zeros(rows, units)
        (fixed, a1), (call, a2) = sweep((loss, params, grads), "W1")
        print(f"| {label} | {fixed} | {call} | {int(a1) + int(a2)} |")
    print()
    print("| hinge: samples on the margin | smallest e, fixed arrays | smallest e, callable "
          "grads | false alarms |")
    print("|---|---|---|---|")
    for k in (0, 1, 3, 6):
        (fixed, a1), (call, a2) = sweep(hinge(k), "w")
        print(f"| {k} of 12 | {fixed} | {call} | {int(a1) + int(a2)} |")


if __name__ == "__main__":
    main()
