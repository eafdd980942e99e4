"""Checks that scale: full checks vs their limit and peers, localisation, workers (issue 7).

Run:  .venv/bin/python benchmarks/scale.py [--only full,locate,gallery,parallel] [--rows 4000]
      [--repeat 3]

Everything runs with one BLAS thread per process (set below, before NumPy is imported), so
that two worker processes on two cores are compared with a serial run that uses one core.

* full: the full-coordinate check (2N loss calls) on tanh MLPs 64-32-10, 784-64-10 and
  784-300-10 (batch 100, float64), side by side with the bare loop of 2N loss calls, the bare
  *batched* forward passes it needs (the limit for a batched check), torch.autograd.gradcheck
  (slow mode), scipy.optimize.check_grad, and the single-projection peers (torch fast mode,
  jax check_grads). Where a full-coordinate run would take minutes, it runs on the first
  ``--rows`` loss calls' worth of coordinates and the time is extrapolated linearly to 2N
  (marked "~" in the output).
* locate: one wrong entry in a 1,003,300-parameter MLP (784-1262-10) found by
  ``coords="directional"``; a 1% error in one tensor of 784-300-10 detected and localised.
* parallel: the same 8,000-call sampled check of 784-64-10 serial, on 2 worker processes and
  on a Dask LocalCluster of 2 single-threaded worker processes; reports must be identical.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from concurrent.futures import ProcessPoolExecutor  # noqa: E402

import numpy as np  # noqa: E402

import gradcheck  # noqa: E402
from gradcheck.core._evaluate import MEMORY  # noqa: E402

MODELS = {
    "64-32-10 (N=2,410)": (64, 32, 10),
    "784-64-10 (N=50,890)": (784, 64, 10),
    "784-300-10 (N=238,510)": (784, 300, 10),
}
BATCH = 100


class Mlp:
    """tanh MLP with softmax cross-entropy on fixed random data; picklable for process pools."""

    def __init__(self, sizes: tuple[int, int, int], seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.sizes = sizes
        self.x = rng.standard_normal((BATCH, sizes[0]))
        self.y = np.eye(sizes[2])[rng.integers(0, sizes[2], BATCH)]
        self.params = {
            "W1": rng.standard_normal(sizes[:2]) / np.sqrt(sizes[0]),
            "b1": 0.1 * rng.standard_normal(sizes[1]),
            "W2": rng.standard_normal(sizes[1:]) / np.sqrt(sizes[1]),
            "b2": 0.1 * rng.standard_normal(sizes[2]),
        }
        self.n = sum(v.size for v in self.params.values())

    def __call__(self, p: dict[str, np.ndarray]) -> float:
        z = np.tanh(self.x @ p["W1"] + p["b1"]) @ p["W2"] + p["b2"]
        z = z - z.max(axis=1, keepdims=True)
        return float(np.mean(np.log(np.exp(z).sum(axis=1)) - (z * self.y).sum(axis=1)))

    def grads(self) -> dict[str, np.ndarray]:
        p = self.params
        h = np.tanh(self.x @ p["W1"] + p["b1"])
        s = np.exp(h @ p["W2"] + p["b2"])
        d2 = (s / s.sum(axis=1, keepdims=True) - self.y) / BATCH
        d1 = (d2 @ p["W2"].T) * (1 - h**2)
        return {"W1": self.x.T @ d1, "b1": d1.sum(0), "W2": h.T @ d2, "b2": d2.sum(0)}

    def batched(self, thetas: np.ndarray) -> np.ndarray:
        """J for each row of a (B, N) stack of flattened parameter vectors (batched matmuls)."""
        d0, d1, d2 = self.sizes
        b = len(thetas)
        a1, a2, a3 = d0 * d1, d0 * d1 + d1, d0 * d1 + d1 + d1 * d2
        w1 = thetas[:, :a1].reshape(b, d0, d1)
        w2 = thetas[:, a2:a3].reshape(b, d1, d2)
        h = np.tanh(self.x @ w1 + thetas[:, None, a1:a2])
        z = h @ w2 + thetas[:, None, a3:]
        z = z - z.max(axis=2, keepdims=True)
        return np.mean(np.log(np.exp(z).sum(axis=2)) - (z * self.y).sum(axis=2), axis=1)

    def theta(self) -> np.ndarray:
        return np.concatenate([v.ravel() for v in self.params.values()])


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - start, out


# --- full-coordinate checks --------------------------------------------------------------------


def bare_loop(net: Mlp, calls: int) -> float:
    """The textbook loop: θ_i ± ε, two loss calls, restore; ``calls`` loss calls in all."""
    params = {k: v.copy() for k, v in net.params.items()}
    start = time.perf_counter()
    done = 0
    for array in params.values():
        flat = array.reshape(-1)
        for i in range(flat.size):
            if done >= calls:
                return time.perf_counter() - start
            old = flat[i]
            flat[i] = old + 1e-6
            plus = net(params)
            flat[i] = old - 1e-6
            minus = net(params)
            flat[i] = old
            _ = (plus - minus) / 2e-6
            done += 2
    return time.perf_counter() - start


def bare_batched(net: Mlp, calls: int) -> float:
    """The limit: ``calls`` perturbed rows through the batched forward, in stacks of the size
    gradcheck uses (``MEMORY`` bytes)."""
    theta = net.theta()
    rows = max(1, MEMORY // (8 * theta.size))
    start = time.perf_counter()
    for lo in range(0, calls, rows):
        b = min(rows, calls - lo)
        stack = np.repeat(theta[None, :], b, axis=0)
        stack[np.arange(b), (lo + np.arange(b)) % theta.size] += 1e-6
        net.batched(stack)
    return time.perf_counter() - start


def ours(net: Mlp, calls: int, batched: bool) -> tuple[float, int]:
    coords = "all" if calls >= 2 * net.n else calls // 2
    t, r = timed(
        gradcheck.check, net, net.params, net.grads(), coords=coords, progress=False,
        batched_loss=net.batched if batched else None,
    )
    assert r.passed, r.notes
    return t, r.evaluations


def torch_slow(net: Mlp, elements: int) -> tuple[float, int]:
    """torch.autograd.gradcheck on W1 rows holding ``elements`` entries (+ all other tensors)."""
    import torch

    p = {k: torch.tensor(v) for k, v in net.params.items()}
    x, y = torch.tensor(net.x), torch.tensor(net.y)
    d1 = net.sizes[1]
    k = max(1, min(net.sizes[0], (elements - net.n + net.params["W1"].size) // d1))
    w1a = p["W1"][:k].clone().requires_grad_()
    w1b = p["W1"][k:]
    rest = [p[n].clone().requires_grad_() for n in ("b1", "W2", "b2")]

    def f(w1a, b1, w2, b2):
        w1 = torch.cat([w1a, w1b])
        z = torch.tanh(x @ w1 + b1) @ w2 + b2
        return (torch.logsumexp(z, 1) - (z * y).sum(1)).mean()

    inputs = (w1a, *rest)
    n_in = sum(i.numel() for i in inputs)
    t, ok = timed(torch.autograd.gradcheck, f, inputs, eps=1e-6, atol=1e-5)
    assert ok
    return t, n_in


def torch_fast(net: Mlp) -> float:
    import torch

    p = [torch.tensor(net.params[n]).requires_grad_() for n in ("W1", "b1", "W2", "b2")]
    x, y = torch.tensor(net.x), torch.tensor(net.y)

    def f(w1, b1, w2, b2):
        z = torch.tanh(x @ w1 + b1) @ w2 + b2
        return (torch.logsumexp(z, 1) - (z * y).sum(1)).mean()

    t, ok = timed(torch.autograd.gradcheck, f, tuple(p), eps=1e-6, atol=1e-5, fast_mode=True)
    assert ok
    return t


def jax_check_grads(net: Mlp) -> float:
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    from jax.test_util import check_grads

    x, y = jnp.asarray(net.x), jnp.asarray(net.y)

    def f(p):
        z = jnp.tanh(x @ p["W1"] + p["b1"]) @ p["W2"] + p["b2"]
        return jnp.mean(jax.nn.logsumexp(z, axis=1) - (z * y).sum(1))

    p = {k: jnp.asarray(v) for k, v in net.params.items()}
    f(p)
    t, _ = timed(check_grads, f, (p,), order=1, modes=("rev",))
    return t


def scipy_check_grad(net: Mlp, entries: int) -> tuple[float, int]:
    """scipy.optimize.check_grad (forward differences: one loss call per entry) on ``entries``."""
    from scipy.optimize import check_grad

    theta, g = net.theta(), np.concatenate([v.ravel() for v in net.grads().values()])
    m = min(entries, theta.size)
    shapes = [(k, v.shape) for k, v in net.params.items()]

    def unflat(vec):
        out, at = {}, 0
        for k, shape in shapes:
            size = int(np.prod(shape))
            out[k], at = vec[at : at + size].reshape(shape), at + size
        return out

    def f(part):
        full = theta.copy()
        full[:m] = part
        return net(unflat(full))

    t, err = timed(check_grad, f, lambda part: g[:m], theta[:m])
    assert err < 1e-4
    return t, m


def full(rows: int, repeat: int) -> list[list[str]]:
    return [_full_row(label, Mlp(sizes), rows, repeat) for label, sizes in MODELS.items()]


def _full_row(label: str, net: Mlp, rows: int, repeat: int) -> list[str]:
    """Each contender ``repeat`` times, interleaved, best time kept (the machine is shared)."""
    need = 2 * net.n
    calls = min(need, rows)
    mark = "" if calls == need else "~"
    print(f"[full] {label}: {calls:,} of {need:,} loss calls timed", flush=True)

    def per_call(result: tuple[float, int], work: int) -> float:
        return result[0] / result[1] * work  # extrapolated to the full check

    contenders = {
        "limit": lambda: bare_batched(net, calls) * need / calls,
        "loop": lambda: bare_loop(net, calls) * need / calls,
        "batched": lambda: per_call(ours(net, calls, batched=True), need),
        "loss": lambda: per_call(ours(net, calls, batched=False), need),
        "torch": lambda: per_call(torch_slow(net, calls // 2), net.n),
        "scipy": lambda: per_call(scipy_check_grad(net, calls // 2), net.n),
        "fast": lambda: torch_fast(net),
        "jax": lambda: jax_check_grads(net),
    }
    b = dict.fromkeys(contenders, float("inf"))
    for _ in range(repeat):
        for k, f in contenders.items():
            b[k] = min(b[k], f())
    ours_best = min(b["loss"], b["batched"])
    row = [
        label, f"{mark}{b['limit']:.3g}", f"{mark}{b['batched']:.3g}",
        f"{b['limit'] / b['batched']:.2f}", f"{mark}{b['loop']:.3g}", f"{mark}{b['loss']:.3g}",
        f"{b['loop'] / b['loss']:.2f}", f"{mark}{b['torch']:.3g}",
        f"{b['torch'] / ours_best:.2f}", f"{mark}{b['scipy']:.3g}",
        f"{b['scipy'] / ours_best:.2f}", f"{b['fast']:.3g}", f"{b['jax']:.3g}",
    ]
    print("   ", row, flush=True)
    return row


# --- localisation ------------------------------------------------------------------------------


def locate() -> list[list[str]]:
    out = []
    net = Mlp((784, 1262, 10))
    g = net.grads()
    flat = g["W1"].ravel()
    i = int(np.argsort(np.abs(flat))[flat.size // 2])  # an entry of median magnitude
    flat[i] = -flat[i]
    t, r = timed(gradcheck.check, net, net.params, g, coords="directional", progress=False)
    c = r.components["W1"]
    want = np.unravel_index(i, g["W1"].shape)
    out.append([f"1 wrong entry, 784-1262-10 (N={net.n:,}), W1{tuple(map(int, want))} sign",
                f"{r.suspects} {c.worst_index}", str(c.worst_index == tuple(map(int, want))),
                f"{r.evaluations:,}", f"{t:.2f}"])
    print("   ", out[-1], flush=True)
    net = Mlp((784, 300, 10))
    for name in ("W1", "W2"):
        g = net.grads()
        g[name] = g[name] * 1.01
        t, r = timed(gradcheck.check, net, net.params, g, coords="directional", progress=False)
        c = r.components[name]
        out.append([f"1% error in all of {name}, 784-300-10 (N={net.n:,})",
                    f"{r.suspects} {c.worst_index}", str(r.suspects == (name,)),
                    f"{r.evaluations:,}", f"{t:.2f}"])
        print("   ", out[-1], flush=True)
    return out


# --- workers -----------------------------------------------------------------------------------


def _loop(net: Mlp, calls: int) -> float:
    return bare_loop(net, calls)


def parallel(repeat: int, k: int = 4000) -> list[list[str]]:
    """Serial vs 2 processes vs 2 Dask workers (best of ``repeat``, interleaved), and the
    ceiling: the bare loop of the same loss calls split over 2 processes vs 1."""
    from distributed import Client, LocalCluster

    net = Mlp((784, 64, 10))
    g = net.grads()
    g["W2"][3, 4] += 1e-3  # the reports must agree on a failing check too
    run = dict(coords=k, progress=False)
    best = dict.fromkeys(("serial", "pool", "dask", "loop1", "loop2"), float("inf"))
    reports = {}
    with (
        ProcessPoolExecutor(2) as pool,
        LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None)
        as cluster,
        Client(cluster) as client,
    ):
        gradcheck.check(net, net.params, g, executor=pool, coords=10)  # start the workers
        gradcheck.check(net, net.params, g, executor=client, coords=10)
        for _ in range(repeat):
            for key, executor in (("serial", None), ("pool", pool), ("dask", client)):
                t, reports[key] = timed(
                    gradcheck.check, net, net.params, g, executor=executor, **run
                )
                best[key] = min(best[key], t)
            best["loop1"] = min(best["loop1"], bare_loop(net, 2 * k))
            t, _ = timed(lambda: list(pool.map(_loop, [net, net], [k, k])))
            best["loop2"] = min(best["loop2"], t)

    def same(a, b):
        da, db = a.to_dict(), b.to_dict()
        da.pop("seconds"), db.pop("seconds")
        return str(da == db)

    s = best["serial"]
    rows = [
        ["gradcheck, serial (1 process)", f"{s:.2f}", "1.00", "-"],
        ["gradcheck, 2 worker processes", f"{best['pool']:.2f}", f"{s / best['pool']:.2f}",
         same(reports["serial"], reports["pool"])],
        ["gradcheck, Dask LocalCluster 2 workers", f"{best['dask']:.2f}",
         f"{s / best['dask']:.2f}", same(reports["serial"], reports["dask"])],
        ["ceiling: bare loop of 8,000 loss calls, 1 process", f"{best['loop1']:.2f}", "1.00", ""],
        ["ceiling: the same split over 2 processes", f"{best['loop2']:.2f}",
         f"{best['loop1'] / best['loop2']:.2f}", ""],
    ]
    for row in rows:
        print("   ", row, flush=True)
    return rows


def gallery() -> list[list[str]]:
    """coords="directional" vs the full check on the bug gallery of the test suite."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from bugs import bugs, traps

    cases, agree, calls_d, calls_f = bugs(), 0, 0, 0
    for c in cases:
        d = gradcheck.check(c.loss, c.params, c.grads, coords="directional", progress=False)
        f = gradcheck.check(c.loss, c.params, c.grads, coords="all", progress=False)
        agree += set(d.suspects) == set(f.suspects)
        calls_d, calls_f = calls_d + d.evaluations, calls_f + f.evaluations
    alarms = sum(
        not gradcheck.check(c.loss, c.params, c.grads, coords="directional").passed
        for c in traps()
    )
    return [[f"{len(cases)} planted bugs", f"{agree} of {len(cases)}", f"{calls_d:,}",
             f"{calls_f:,}"], [f"{len(traps())} correct traps", f"{alarms} false alarms", "", ""]]


def markdown(head: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="full,locate,gallery,parallel")
    parser.add_argument("--rows", type=int, default=4000, help="loss calls timed per model")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each; the best is kept")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    print(f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"NumPy {np.__version__}, 1 BLAS thread per process")
    parts = args.only.split(",")
    if "full" in parts:
        head = ["model", "limit: bare batched fwd (s)", "ours, batched_loss (s)",
                "throughput vs limit", "bare loop 2N (s)", "ours, loss (s)", "throughput vs loop",
                "torch gradcheck (s)", "torch / ours", "scipy check_grad (s)", "scipy / ours",
                "torch fast_mode (s)", "jax check_grads (s)"]
        print(markdown(head, full(args.rows, args.repeat)))
    if "locate" in parts:
        head = ["case", "named", "right entry/tensor", "loss calls", "seconds"]
        print(markdown(head, locate()))
    if "gallery" in parts:
        head = ["tests/bugs gallery", "directional names the full check's suspects",
                "loss calls (directional)", "loss calls (full)"]
        print(markdown(head, gallery()))
    if "parallel" in parts:
        head = ["784-64-10, 4,000 coordinates (8,000 calls)", "seconds", "speed-up", "same report"]
        print(markdown(head, parallel(args.repeat)))


if __name__ == "__main__":
    main()
