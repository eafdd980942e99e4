"""Seed 003's network: NumPy 784-300-10 sigmoid MLP, squared error, 100 raw-pixel inputs (issue 17).

The seed's backprop applied ``sigmoid_prime`` (written for the pre-activation z) to the layer's
activation a. No MNIST file is on this machine, so the 100 inputs are synthetic raw-pixel images:
784 values in 0..255, about 19% of them non-zero (MNIST's ink fraction), one-hot labels.

Run:  .venv/bin/python benchmarks/seed_net.py [--budget B] [--coords auto]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

SIZES = (784, 300, 10)
M = 100


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def sigmoid_prime(z: np.ndarray) -> np.ndarray:
    s = sigmoid(z)
    return s * (1 - s)


class SeedNet:
    """loss(params) and backprop grads(params) of the seed's net; ``bug=True`` plants its bug."""

    def __init__(self, seed: int = 0, bug: bool = False, m: int = M) -> None:
        rng = np.random.default_rng(seed)
        ink = rng.random((m, SIZES[0])) < 0.19
        self.x = np.where(ink, rng.integers(1, 256, (m, SIZES[0])), 0).astype(np.float64)
        self.y = np.eye(SIZES[2])[rng.integers(0, SIZES[2], m)]
        d0, d1, d2 = SIZES
        self.params = {
            "W1": rng.standard_normal((d0, d1)) * 0.01 / 255.0 * 16,
            "b1": 0.1 * rng.standard_normal(d1),
            "W2": rng.standard_normal((d1, d2)) / np.sqrt(d1),
            "b2": 0.1 * rng.standard_normal(d2),
        }
        self.bug = bug
        self.calls = 0

    def __call__(self, p: dict[str, np.ndarray]) -> float:
        self.calls += 1
        a1 = sigmoid(self.x @ p["W1"] + p["b1"])
        a2 = sigmoid(a1 @ p["W2"] + p["b2"])
        return float(0.5 * np.sum((a2 - self.y) ** 2) / len(self.x))

    def grads(self, p: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
        p = self.params if p is None else p
        z1 = self.x @ p["W1"] + p["b1"]
        a1 = sigmoid(z1)
        z2 = a1 @ p["W2"] + p["b2"]
        a2 = sigmoid(z2)
        fprime = (lambda z, a: sigmoid_prime(a)) if self.bug else (lambda z, a: sigmoid_prime(z))
        d2 = (a2 - self.y) / len(self.x) * fprime(z2, a2)
        d1 = (d2 @ p["W2"].T) * fprime(z1, a1)
        return {"W1": self.x.T @ d1, "b1": d1.sum(0), "W2": a1.T @ d2, "b2": d2.sum(0)}


def main() -> None:
    import gradcheck

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=None)
    parser.add_argument("--coords", default="auto")
    args = parser.parse_args()
    extra = {} if args.budget is None else {"budget": args.budget}
    for bug in (False, True):
        net = SeedNet(bug=bug)
        start = time.perf_counter()
        report = gradcheck.check(net, net.params, net.grads(), coords=args.coords, **extra)
        seconds = time.perf_counter() - start
        kinds = [(f.param, f.kind) for f in report.findings]
        calls = net.calls
        start = time.perf_counter()  # the same number of bare loss calls, in the same run
        for _ in range(calls):
            net(net.params)
        bare = time.perf_counter() - start
        print(f"bug={bug}: {seconds:.2f} s, {calls} loss calls (report: {report.evaluations}), "
              f"passed={report.passed}, suspects={report.suspects}, kinds={kinds}, "
              f"origin={report.origin}; {calls} bare loss calls: {bare:.2f} s "
              f"({bare / calls * 1e3:.2f} ms each; check / bare = {seconds / bare:.2f})")


if __name__ == "__main__":
    main()
