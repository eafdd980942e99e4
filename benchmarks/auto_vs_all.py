"""What the default gives up on big models (issue 17): the bug gallery's MLP mistakes scaled to
784-64-10 and 784-300-10, coords="auto" at its default budget against coords="all", and the
smallest single-entry error "auto" still detects.

Run:  .venv/bin/python benchmarks/auto_vs_all.py [--sizes 784-64-10,784-300-10] [--seeds 0,1]
      [--all 784-64-10] [--all-cases 4] [--budget 4000] [--m 32]

A case counts as *detected* when the report fails, *located* when its suspects are exactly the
tensors whose gradient differs from the right backprop (computed, not typed in). Loss calls are
counted by a wrapper. coords="all" needs 2N loss calls (101,780 on 784-64-10, 477,020 on
784-300-10: minutes per case on two cores), so it runs only on the sizes in --all and on the
first --all-cases cases there (the table says which); the small gallery (BENCHMARKS.md, "Bug
gallery") has the full-check figures on every case.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent.parent / "tests"))
from bugs.mlp import mlp  # noqa: E402

import gradcheck  # noqa: E402


def cases(sizes: tuple[int, ...], seed: int, m: int) -> list[tuple[str, tuple, dict, object]]:
    tanh = lambda **kw: mlp("tanh", "softmax", sizes, m=m, seed=seed, **kw)  # noqa: E731
    sig = lambda **kw: mlp("sigmoid", "mse", sizes, m=m, seed=seed + 1, **kw)  # noqa: E731

    def entry(name, index, delta):
        def post(g):
            g[name][index] += delta
            return g
        return post

    def scale(name, k):
        def post(g):
            g[name] = g[name] * k
            return g
        return post

    def zero_row(name, row):
        def post(g):
            g[name][row] = 0.0
            return g
        return post

    return [
        ("correct (sigmoid-mse)", sig(), {}, None),
        ("sigmoid-mse: f' at a, not z (seed 003)", sig(), {"act_on_a": True}, None),
        ("correct (tanh-ce)", tanh(), {}, None),
        ("tanh-ce: missing 1/m", tanh(), {"no_mean": True}, None),
        ("tanh-ce: y - a", tanh(), {"flip": True}, None),
        ("tanh-ce: x2 on the output delta", tanh(), {"double": True}, None),
        ("tanh-ce: f' left out", tanh(), {"no_deriv": True}, None),
        ("tanh-ce: stale activations in dW2", tanh(), {"stale": 2}, None),
        ("tanh-ce: L2 missing in dW", tanh(lam=0.8), {"reg_scale": 0.0}, None),
        ("tanh-ce: L2 on biases", tanh(lam=0.8), {"reg_bias": True}, None),
        ("tanh-ce: dW1 x1.01", tanh(), {}, scale("W1", 1.01)),
        ("tanh-ce: dW1 x1.001", tanh(), {}, scale("W1", 1.001)),
        ("tanh-ce: row 7 of dW2 at 0", tanh(), {}, zero_row("W2", 7)),
        ("tanh-ce: one entry of dW1 +0.01", tanh(), {}, entry("W1", (300, 5), 0.01)),
        ("tanh-ce: one entry of db1 +0.01", tanh(), {}, entry("b1", (3,), 0.01)),
    ]


class Counted:
    def __init__(self, loss):
        self.loss, self.calls = loss, 0

    def __call__(self, p):
        self.calls += 1
        return self.loss(p)


def judge(loss, params, g, correct, **options):
    faulty = {k for k in params if np.max(np.abs(g[k] - correct[k])) > 1e-12 * (
        np.max(np.abs(correct[k])) + 1e-300)}
    counted = Counted(loss)
    start = time.perf_counter()
    r = gradcheck.check(counted, params, g, **options)
    seconds = time.perf_counter() - start
    assert r.evaluations == counted.calls
    detected = (not r.passed) if faulty else r.passed
    located = set(r.suspects) == faulty
    kinds = ",".join(f.kind for f in r.findings) or "-"
    return detected, located, kinds, counted.calls, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="784-64-10,784-300-10")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--all", default="784-64-10", help="sizes that also run coords='all'")
    parser.add_argument("--all-cases", type=int, default=2)
    parser.add_argument("--budget", type=int, default=None)
    parser.add_argument("--m", type=int, default=32)
    parser.add_argument("--smallest", action="store_true", help="also the single-entry sweep")
    parser.add_argument("--no-gallery", action="store_true", help="only the single-entry sweep")
    args = parser.parse_args()
    budget = {} if args.budget is None else {"budget": args.budget}
    print(f"# {platform.machine()}, m = {args.m}, budget = {args.budget or 'default'}")
    print("| net | case | auto: detected / located / kinds | auto calls, s | "
          "all: detected / located / kinds | all calls, s |")
    print("|---|---|---|---|---|---|")
    totals: dict[str, list[int]] = {}
    for size in [] if args.no_gallery else args.sizes.split(","):
        sizes = tuple(int(s) for s in size.split("-"))
        for seed in (int(s) for s in args.seeds.split(",")):
            for i, (name, (loss, params, grads), bug, post) in enumerate(cases(sizes, seed, args.m)):
                correct = grads(params)
                g = grads(params, **bug)
                if post is not None:
                    g = post({k: v.copy() for k, v in g.items()})
                d, loc, kinds, calls, s = judge(loss, params, g, correct, **budget)
                t = totals.setdefault(size, [0, 0, 0])
                t[0] += 1
                t[1] += d
                t[2] += loc
                row = f"| {size} s{seed} | {name} | {'yes' if d else 'NO'} / " \
                      f"{'yes' if loc else 'NO'} / {kinds} | {calls:,}, {s:.1f} |"
                if size in args.all.split(",") and i < args.all_cases:
                    d2, loc2, kinds2, calls2, s2 = judge(loss, params, g, correct, coords="all")
                    row += f" {'yes' if d2 else 'NO'} / {'yes' if loc2 else 'NO'} / {kinds2} | " \
                           f"{calls2:,}, {s2:.1f} |"
                else:
                    row += " not run | - |"
                print(row, flush=True)
    for size, (n, d, loc) in totals.items():
        print(f"# {size}: auto detected {d}/{n}, located exactly {loc}/{n}")
    if args.smallest:
        print("\n| net | tensor | error on one entry | auto detects | auto names the entry | calls |")
        print("|---|---|---|---|---|---|")
        for size in args.sizes.split(","):
            sizes = tuple(int(s) for s in size.split("-"))
            loss, params, grads = mlp("tanh", "softmax", sizes, m=args.m, seed=0)
            correct = grads(params)
            for name, index in (("W1", (300, 5)), ("W2", (7, 3))):
                flat = int(np.ravel_multi_index(index, params[name].shape))
                for delta in (1e-1, 1e-3, 1e-5, 1e-6, 1e-7, 1e-8, 1e-9):
                    g = {k: v.copy() for k, v in correct.items()}
                    g[name][index] += delta
                    counted = Counted(loss)
                    r = gradcheck.check(counted, params, g, **budget)
                    c = r.components[name]
                    named = c.flags.reshape(-1)[flat] == 2
                    print(f"| {size} | {name} | {delta:g} | {'yes' if not r.passed else 'no'} | "
                          f"{'yes' if named else 'no'} | {counted.calls:,} |", flush=True)


if __name__ == "__main__":
    main()
