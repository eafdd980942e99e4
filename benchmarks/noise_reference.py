"""The noise model's false alarms of issue 22 item 7 and the lead's cancellation case, at 10 points.

Run: python benchmarks/noise_reference.py

- float32 inside a float64 J: a 2x2 average pool and a batch norm computed in float32 whose
  results are stored in float64 arrays (check_layer), correct backward, 10 random points each;
  and the same layers with a planted error (one entry ×1.01 for the pool; beta ×1.01, gamma
  ×1.01, dx ×1.001 for batch norm): how many points say FAILED / name the planted tensor.
- a J that cancels to ~0: Σ sin(w) on linspace(-1, 1, N) with grads cos(w), N = 1000 and 2000.
"""

from __future__ import annotations

import numpy as np

import gradcheck


def pool_forward(x: np.ndarray) -> tuple[np.ndarray, tuple]:
    n, c, h, w = x.shape
    out = np.empty((n, c, h // 2, w // 2))  # float64 storage of a float32 result
    out[...] = x.astype(np.float32).reshape(n, c, h // 2, 2, w // 2, 2).mean(axis=(3, 5))
    return out, x.shape


def pool_backward(dout: np.ndarray, shape: tuple) -> np.ndarray:
    return np.repeat(np.repeat(dout, 2, axis=2), 2, axis=3) / 4.0


def bn_forward(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray) -> tuple[np.ndarray, tuple]:
    x32 = x.astype(np.float32)
    xhat = (x32 - x32.mean(0)) / np.sqrt(x32.var(0) + np.float32(1e-5))
    out = np.empty(x.shape)  # float64 storage of a float32 result
    out[...] = gamma.astype(np.float32) * xhat + beta.astype(np.float32)
    return out, (x, gamma)


def bn_backward(dout: np.ndarray, cache: tuple) -> tuple[np.ndarray, ...]:
    x, gamma = cache
    var = x.var(0)
    xhat = (x - x.mean(0)) / np.sqrt(var + 1e-5)
    dxhat = dout * gamma
    dx = (dxhat - dxhat.mean(0) - xhat * (dxhat * xhat).mean(0)) / np.sqrt(var + 1e-5)
    return dx, (dout * xhat).sum(0), dout.sum(0)


def main() -> None:
    rows = {"pool correct": [0, 0], "bn correct": [0, 0], "pool x[0,1,2,3] ×1.01": [0, 0],
            "bn dx ×1.001": [0, 0], "bn gamma ×1.01": [0, 0], "bn beta ×1.01": [0, 0]}
    for s in range(10):
        rng = np.random.default_rng(s)
        x = rng.standard_normal((2, 3, 8, 8))
        rows["pool correct"][0] += gradcheck.check_layer(pool_forward, pool_backward, x).passed is False

        def wrong_pool(dout: np.ndarray, shape: tuple) -> np.ndarray:
            dx = pool_backward(dout, shape)
            dx[0, 1, 2, 3] *= 1.01
            return dx

        r = gradcheck.check_layer(pool_forward, wrong_pool, x)
        rows["pool x[0,1,2,3] ×1.01"][0] += r.passed is False
        rows["pool x[0,1,2,3] ×1.01"][1] += r.suspects == ("x",)
        xb, gamma = rng.standard_normal((16, 6)), 1 + 0.1 * rng.standard_normal(6)
        beta = 0.1 * rng.standard_normal(6)
        rows["bn correct"][0] += gradcheck.check_layer(bn_forward, bn_backward, xb, gamma,
                                                       beta).passed is False
        for name, k, f in [("bn dx ×1.001", 0, 1.001), ("bn gamma ×1.01", 1, 1.01),
                           ("bn beta ×1.01", 2, 1.01)]:
            def wrong_bn(dout: np.ndarray, cache: tuple, k: int = k, f: float = f) -> tuple:
                grads = list(bn_backward(dout, cache))
                grads[k] = grads[k] * f
                return tuple(grads)

            r = gradcheck.check_layer(bn_forward, wrong_bn, xb, gamma, beta)
            rows[name][0] += r.passed is False
            rows[name][1] += r.suspects == (("x", "gamma", "beta")[k],)
    print("| case (10 random points) | FAILED | names the planted tensor |")
    print("|---|---|---|")
    for name, (failed, named) in rows.items():
        print(f"| {name} | {failed} | {named if 'correct' not in name else '–'} |")
    print("\n| Σ sin(w), w = linspace(-1, 1, N), grads cos(w) | verdict | step | σ |")
    print("|---|---|---|---|")
    for n in (1000, 2000):
        w = np.linspace(-1, 1, n)
        r = gradcheck.check(lambda p: float(np.sum(np.sin(p["w"]))), {"w": w}, {"w": np.cos(w)})
        c = r.components["w"]
        print(f"| N = {n} | {r.verdict} | {c.eps:.3g} | {c.noise:.2g} |")


if __name__ == "__main__":
    main()
