"""Our full check vs. the bare loop of the 2N loss calls it needs (issue: overhead ≤ 1.2×).

Run: .venv/bin/python benchmarks/overhead.py [--repeat 3]

Both sides evaluate the same loss on the same tanh MLPs (batch 100, float64). The bare loop is
the textbook's: for each i, θ_i ± ε, two loss calls, restore. The ratio is the best of
``--repeat`` runs of each, measured side by side in one process.
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np

import gradcheck

MODELS = {"64-32-10 (N=2,410)": (64, 32, 10), "784-64-10 (N=50,890)": (784, 64, 10)}


def make(sizes: tuple[int, ...], batch: int = 100, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, sizes[0]))
    y = np.eye(sizes[-1])[rng.integers(0, sizes[-1], batch)]
    params = {}
    for i in range(1, len(sizes)):
        params[f"W{i}"] = rng.standard_normal((sizes[i - 1], sizes[i])) / np.sqrt(sizes[i - 1])
        params[f"b{i}"] = np.zeros(sizes[i])

    def loss(p):
        h = np.tanh(x @ p["W1"] + p["b1"])
        z = h @ p["W2"] + p["b2"]
        z = z - z.max(axis=1, keepdims=True)
        return float(np.mean(np.log(np.exp(z).sum(axis=1)) - (z * y).sum(axis=1)))

    def grads(p):
        h = np.tanh(x @ p["W1"] + p["b1"])
        z = h @ p["W2"] + p["b2"]
        s = np.exp(z - z.max(axis=1, keepdims=True))
        d2 = (s / s.sum(axis=1, keepdims=True) - y) / batch
        d1 = (d2 @ p["W2"].T) * (1 - h**2)
        return {"W1": x.T @ d1, "b1": d1.sum(0), "W2": h.T @ d2, "b2": d2.sum(0)}

    return loss, params, grads(params)


def bare_loop(loss, params, eps: float = 1e-7) -> float:
    start = time.perf_counter()
    for array in params.values():
        flat = array.reshape(-1)
        for i in range(flat.size):
            old = flat[i]
            flat[i] = old + eps
            plus = loss(params)
            flat[i] = old - eps
            minus = loss(params)
            flat[i] = old
            _ = (plus - minus) / (2 * eps)
    return time.perf_counter() - start


def ours(loss, params, grads) -> tuple[float, gradcheck.Report]:
    start = time.perf_counter()
    report = gradcheck.check(loss, params, grads)
    return time.perf_counter() - start, report


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {platform.processor() or 'cpu'}, "
          f"python {platform.python_version()}, numpy {np.__version__}")
    print("| model | loss calls (ours / bare) | bare loop (s) | gradcheck.check (s) | ratio |")
    print("|---|---|---|---|---|")
    for label, sizes in MODELS.items():
        loss, params, grads = make(sizes)
        n = sum(v.size for v in params.values())
        bare, mine, report = [], [], None
        for _ in range(args.repeat):
            bare.append(bare_loop(loss, {k: v.copy() for k, v in params.items()}))
            seconds, report = ours(loss, params, grads)
            mine.append(seconds)
        assert report is not None and report.passed
        print(f"| {label} | {report.evaluations:,} / {2 * n:,} | {min(bare):.2f} | "
              f"{min(mine):.2f} | {min(mine) / min(bare):.3f}x |")


if __name__ == "__main__":
    main()
