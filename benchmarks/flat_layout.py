"""What reading a flat θ through ``layout=`` costs, next to the same net passed as a dict.

Run: OMP_NUM_THREADS=1 .venv/bin/python benchmarks/flat_layout.py [--repeat 3]

Cases: seed 003's 784-300-10 sigmoid net (examples/courses/seed003_flat_net.py, its
``sigmoid_prime(a)`` bug, default options) at batch sizes 4 and 20; Ng's ex4 in NumPy
(examples/courses/ng_ex4.py, (J, grad), column-major); and, when GNU Octave and oct2py are
installed, the same ex4 function run in Octave (examples/octave/ex4_octave.py). For each: the
best of ``--repeat`` wall times of the check, flat with a layout and as a dict, side by side in
one process, and the loss calls each made. The Octave row has no dict twin: it reports its
time per loss call (an oct2py round trip) instead.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np

import gradcheck

ROOT = Path(__file__).resolve().parents[1]


def load(relative: str) -> Any:
    path = ROOT / "examples" / relative
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def best(fn: Any, repeat: int) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return min(times), out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    repeat = parser.parse_args().repeat
    print(f"{platform.processor() or platform.machine()}, numpy {np.__version__}")
    print("| case | flat + layout (s) | dict (s) | ratio | loss calls flat / dict | same report |")
    print("|---|---|---|---|---|---|")
    seed = load("courses/seed003_flat_net.py")
    for m in (4, 20):
        flat_fn, dict_fn = _seed_checks(seed, m)
        flat_t, dict_t, f, d = math.inf, math.inf, None, None
        for _ in range(repeat):  # interleaved, so that the load of the machine hits both alike
            t, f = best(flat_fn, 1)
            flat_t = min(flat_t, t)
            t, d = best(dict_fn, 1)
            dict_t = min(dict_t, t)
        same = (f.suspects, f.origin, f.findings) == (d.suspects, d.origin, d.findings)
        print(f"| seed 003, 784-300-10, m={m} | {flat_t:.2f} | {dict_t:.2f} | "
              f"{flat_t / dict_t:.2f} | {f.evaluations:,} / {d.evaluations:,} | {same} |")
    ex4 = load("courses/ng_ex4.py")
    t, reports = best(lambda: ex4.main(show=False), repeat)
    print(f"| Ng ex4 NumPy, 38 params, (J, grad), both checks | {t:.3f} | - | - | "
          f"{reports['bug'].evaluations} + {reports['fixed'].evaluations} | - |")
    from gradcheck.frameworks.octave import octave_executable

    if octave_executable() and importlib.util.find_spec("oct2py"):
        octave = load("octave/ex4_octave.py")
        t, reports = best(lambda: octave.main(show=False), repeat)
        calls = sum(r.evaluations for r in reports.values())
        print(f"| Ng ex4 in Octave, both .m files (2 sessions) | {t:.2f} | - | - | {calls} "
              f"({1000 * t / calls:.1f} ms per call, sessions included) | - |")


def _seed_checks(seed: Any, m: int) -> tuple[Any, Any]:
    """The flat check (layout=) and the dict check of the same net, data and gradient."""
    rng = np.random.default_rng(3)
    X = (rng.random((m, 784)) < 0.19) * rng.random((m, 784))
    labels = rng.integers(0, 10, m)
    net = seed.NeuralNetwork()
    W = np.concatenate([rng.standard_normal(784 * 300) * 0.05, np.zeros(300),
                        rng.standard_normal(300 * 10) * 0.1, np.zeros(10)])
    grad = net._back_prop(W, X, labels)
    keys = ("W1", "b1", "W2", "b2")
    params = dict(zip(keys, (np.array(v) for v in net._extract_weights(W)), strict=True))
    grads = dict(zip(keys, (np.array(v) for v in net._extract_weights(grad)), strict=True))

    def dict_cost(p: dict[str, np.ndarray]) -> float:
        a1 = 1 / (1 + np.exp(-(X @ p["W1"] + p["b1"])))  # the same forward, on named tensors
        a2 = 1 / (1 + np.exp(-(a1 @ p["W2"] + p["b2"])))
        return 0.5 * np.sum((a2 - np.eye(10)[labels]) ** 2) / m

    return (lambda: gradcheck.check(net.cost, W, grad, args=(X, labels), layout=net.layout()),
            lambda: gradcheck.check(dict_cost, params, grads))


if __name__ == "__main__":
    main()
