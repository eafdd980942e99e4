"""The demo's network on sklearn digits across seeds, next to sklearn's MLPClassifier.

Run: .venv/bin/python benchmarks/nn_demo.py [--seeds 10] [--epochs 40] [--hidden 64]

For each seed: the same stratified 25% test split (standardised with training statistics) for
both models; our Net with the demo's settings (tanh, Xavier, λ = 0.01, Adam 1e-3, batch 32)
trained with check_at=("init", "end") on 64 rows, then each planted bug in the trained weights; and MLPClassifier(hidden_layer_sizes=(hidden,))
with its defaults (ReLU, Adam, α = 1e-4, up to 200 epochs) on the same data.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import warnings

import numpy as np

from gradcheck.cli._demo import BATCH, CHECK_ROWS, INIT, L2, LR
from gradcheck.nn import Bug, Net, load_digits


def ours(data, seed: int, epochs: int, hidden: int) -> dict:
    net = Net((64, hidden, 10), activation="tanh", init=INIT, l2=L2, seed=seed)
    start = time.perf_counter()
    history = net.fit(data.X_train, data.y_train, epochs=epochs, batch_size=BATCH, lr=LR,
                      check_at=("init", "end"), check_rows=CHECK_ROWS, progress=False)
    seconds = time.perf_counter() - start
    checks = {moment: r.passed for moment, r in history.checks}
    check_seconds = sum(r.seconds for _, r in history.checks)
    return {"acc": net.accuracy(data.X_test, data.y_test), "s": seconds,
            "train_s": seconds - check_seconds, "checks": checks, "bugs": planted(net, data)}


def planted(net: Net, data) -> dict[str, tuple[str, ...]]:
    """Each bug planted into the trained weights: the suspects the check names."""
    found = {}
    for bug in Bug:
        buggy = Net(net.sizes, activation="tanh", init=INIT, l2=L2, seed=0, bug=bug)
        buggy.params = {k: v.copy() for k, v in net.params.items()}
        found[bug.value] = buggy.check(data.X_train[:CHECK_ROWS], data.y_train[:CHECK_ROWS]).suspects
    return found


def sklearn_mlp(data, seed: int, hidden: int) -> dict:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = MLPClassifier(hidden_layer_sizes=(hidden,), random_state=seed).fit(
            data.X_train, data.y_train)
    return {"acc": clf.score(data.X_test, data.y_test), "s": time.perf_counter() - start}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--hidden", type=int, default=64)
    args = parser.parse_args()
    print(f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"numpy {np.__version__}")
    print("seed | ours acc | ours s (train+2 checks) | checks init/end | sklearn acc | sklearn s")
    rows = []
    for seed in range(args.seeds):
        data = load_digits(seed=seed).standardized()
        a, b = ours(data, seed, args.epochs, args.hidden), sklearn_mlp(data, seed, args.hidden)
        rows.append((a, b))
        print(f"{seed:4d} | {a['acc']:.4f} | {a['s']:.2f} ({a['train_s']:.2f} + checks) | "
              f"{a['checks']['init']}/{a['checks']['end']} | {b['acc']:.4f} | {b['s']:.2f}",
              flush=True)
    acc = np.array([[a["acc"], b["acc"]] for a, b in rows])
    sec = np.array([[a["s"], b["s"]] for a, b in rows])
    print(f"ours:    accuracy mean {acc[:, 0].mean():.4f}, min {acc[:, 0].min():.4f}, "
          f"max {acc[:, 0].max():.4f}; seconds mean {sec[:, 0].mean():.2f}")
    print(f"sklearn: accuracy mean {acc[:, 1].mean():.4f}, min {acc[:, 1].min():.4f}, "
          f"max {acc[:, 1].max():.4f}; seconds mean {sec[:, 1].mean():.2f}")
    for bug in Bug:
        seen = {", ".join(a["bugs"][bug.value]) or "-" for a, _ in rows}
        print(f"planted {bug.value}: suspects on the trained net, all seeds: {' | '.join(seen)}")
    print(f"time ratio ours/sklearn (mean): {sec[:, 0].mean() / sec[:, 1].mean():.2f}; "
          f"all checks passed: {all(all(a['checks'].values()) for a, _ in rows)}; "
          f"seeds >= 97%: {(acc[:, 0] >= 0.97).sum()}/{len(rows)}")


if __name__ == "__main__":
    main()
