"""Our full check vs. the bare loop of the 2N loss calls it needs (issue: overhead ≤ 1.2×).

Run: .venv/bin/python benchmarks/overhead.py [--repeat 3]
     .venv/bin/python benchmarks/overhead.py --calls   (loss calls only, no timings)

Both sides evaluate the same loss on the same tanh MLPs (batch 100, float64). The bare loop is
the textbook's: for each i, θ_i ± ε, two loss calls, restore. The ratio is the best of
``--repeat`` runs of each, measured side by side in one process. Loss calls are counted by a
wrapper around the loss, not read from the report.

``--calls`` counts what a full check (coords="all") spends on: the demo's 64-64-10 tanh net
(``gradcheck demo``: trained 40 epochs on the digits, 64 rows), correct and with its planted bug
(f'(a) instead of f'(z)); the smooth MLPs above; and the kinked nets of ``benchmarks/kinks.py``
with their correct gradient and with a x1.001 and a x(1 + 1e-7) error.

``--wrong`` counts what a full check spends on a gradient wrong everywhere (issue 22, item 5:
targets ≤ 2.5 N calls for a wrong gradient, ≤ 2 N + 100 for a right one): the sum of squares
with its gradient ×1.00005 (N = 200 and 2,000) and right, and the demo's net, correct and buggy.
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


def counted(loss):
    """The loss, and a one-element list that counts its calls."""
    calls = [0]

    def wrapped(p):
        calls[0] += 1
        return loss(p)

    return wrapped, calls


def ours(loss, params, grads) -> tuple[float, gradcheck.Report, int]:
    loss, calls = counted(loss)
    start = time.perf_counter()
    report = gradcheck.check(loss, params, grads, coords="all")  # the full check, not "auto"
    return time.perf_counter() - start, report, calls[0]


def demo_nets():
    """The demo's trained net, correct and with its planted bug: (label, loss, params, grads)."""
    from gradcheck.cli._demo import ACTIVATION, BATCH, CHECK_ROWS, INIT, L2, LR, DemoSettings, load
    from gradcheck.nn import Net

    s = DemoSettings()
    data = load(s)
    sizes = (data.X_train.shape[1], s.hidden, data.n_classes)
    net = Net(sizes, activation=ACTIVATION, init=INIT, l2=L2, seed=s.seed)
    net.fit(data.X_train, data.y_train, epochs=s.epochs, batch_size=BATCH, lr=LR, progress=False)
    X, Y = data.X_train[:CHECK_ROWS], data.y_train[:CHECK_ROWS]
    for bug in (None, s.bug):
        other = Net(sizes, activation=ACTIVATION, init=INIT, l2=L2, seed=s.seed, bug=bug)
        other.params = {k: v.copy() for k, v in net.params.items()}
        Xd, Yd = other._data(X, Y)
        loss = lambda p, o=other, Xd=Xd, Yd=Yd: o.loss(Xd, Yd, p)  # noqa: E731
        yield (f"demo 64-64-10, {'correct' if bug is None else bug}", loss, other.params,
               other.gradients(Xd, Yd))


def calls_table() -> None:
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from bugs.kinks import relu_zeros
    from kinks import hinge

    print("| model | N | loss calls | calls / 2N | passed |")
    print("|---|---|---|---|---|")
    rows = list(demo_nets())
    for label, sizes in MODELS.items():
        rows.append((f"smooth {label}", *make(sizes)))
    for rows_, units in ((0, 0), (1, 1), (2, 5), (10, 5)):
        loss, params, grads = relu_zeros(rows_, units)
        for e in (0.0, 1e-3, 1e-7):
            rows.append((f"ReLU {rows_ * units}% zeros, dW1 x(1 + {e:g})", loss, params,
                         grads(params, w1_scale=1 + e)))
    for k in (0, 1, 3, 6):
        loss, params, grads = hinge(k)
        for e in (0.0, 1e-3):
            rows.append((f"hinge {k} on margin, x(1 + {e:g})", loss, params, grads(params, 1 + e)))
    for label, loss, params, grads in rows:
        loss, calls = counted(loss)
        report = gradcheck.check(loss, params, grads, coords="all")
        n = sum(np.asarray(v).size for v in params.values())
        print(f"| {label} | {n:,} | {calls[0]:,} | {calls[0] / (2 * n):.2f} | {report.passed} |")


def squares(n: int, factor: float):
    """J = Σ x² on N standard normal entries, with the gradient 2x times ``factor``."""
    x = np.random.default_rng(0).standard_normal(n)
    return (lambda p: float(np.sum(p["x"] ** 2))), {"x": x}, {"x": factor * 2 * x}


def wrong_table() -> None:
    rows = []
    for n in (200, 2_000):
        for factor in (1.00005, 1.0):
            what = "right" if factor == 1.0 else f"x{factor:g}"
            rows.append((f"sum of squares, gradient {what}", *squares(n, factor)))
    rows.extend(demo_nets())
    print("| case | N | loss calls | calls / N | verdict | suspects |")
    print("|---|---|---|---|---|---|")
    for label, loss, params, grads in rows:
        loss, calls = counted(loss)
        report = gradcheck.check(loss, params, grads, coords="all")
        n = sum(np.asarray(v).size for v in params.values())
        print(f"| {label} | {n:,} | {calls[0]:,} | {calls[0] / n:.2f} | {report.verdict} | "
              f"{', '.join(report.suspects) or '-'} |")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--calls", action="store_true", help="loss calls only (no timings)")
    parser.add_argument("--wrong", action="store_true", help="calls on wrong gradients (item 5)")
    args = parser.parse_args()
    if args.wrong:
        wrong_table()
        return
    if args.calls:
        calls_table()
        return
    print(f"machine: {platform.machine()}, {platform.processor() or 'cpu'}, "
          f"python {platform.python_version()}, numpy {np.__version__}")
    print("| model | loss calls (ours / bare) | bare loop (s) | gradcheck.check (s) | ratio |")
    print("|---|---|---|---|---|")
    for label, sizes in MODELS.items():
        loss, params, grads = make(sizes)
        n = sum(v.size for v in params.values())
        bare, mine, report, calls = [], [], None, 0
        for _ in range(args.repeat):
            bare.append(bare_loop(loss, {k: v.copy() for k, v in params.items()}))
            seconds, report, calls = ours(loss, params, grads)
            mine.append(seconds)
        assert report is not None and report.passed
        print(f"| {label} | {calls:,} / {2 * n:,} | {min(bare):.2f} | "
              f"{min(mine):.2f} | {min(mine) / min(bare):.3f}x |")


if __name__ == "__main__":
    main()
