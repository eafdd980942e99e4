"""Batched evaluation vs the loop (issue 17): a full check of a 64-32-10 tanh MLP (batch 100,
float64, N = 2,410) through each path, side by side in one run.

Run:  .venv/bin/python benchmarks/vmap.py [--repeat 5] [--chunks 64,256,1024] [--threads 1]
      .venv/bin/python benchmarks/vmap.py --threads default

--threads 1 (the default) gives every library one thread (BLAS, torch, XLA), so that loaded
cores compare like with like; --threads default leaves each library its own default (what a
user gets; on a shared machine, busy cores slow the multi-threaded paths most). Rows: the bare
NumPy loop of 2N loss calls (the textbook check, no judgement), gradcheck.check on the NumPy
loss, gradcheck.torch.check_module with vectorize="vmap" and "loop", gradcheck.jax.check with
vectorize="vmap" and "loop", torch.autograd.gradcheck (slow, fast) and
jax.test_util.check_grads; then the floor: the batched forward alone on the stacks a full check
makes (each tensor's rows, the others fixed), per row; and the bound: this model's forward
written by hand for each tensor's stacks (one shared product for everything upstream of the
moving tensor), the best a batched check could do here without exploiting that each row moves
a single entry. Loss calls: counted by a wrapper for the
NumPy loss; for the adapters, the rows the batched function received (counted by a wrapper
around it, one-tensor stacks included) plus plain calls. Each figure is the best of --repeat
runs (first runs include torch/JAX warm-up and compilation: reported separately as "first").
"""

from __future__ import annotations

import os
import sys

THREADS = "default" if "--threads=default" in sys.argv or (
    "--threads" in sys.argv and sys.argv[sys.argv.index("--threads") + 1:][:1] == ["default"]
) else "1"
if THREADS == "1":  # before NumPy, torch or JAX start their thread pools
    for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[_var] = "1"
    os.environ.setdefault(
        "XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
    )

import argparse  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
import numpy as np  # noqa: E402
from scale import Mlp, bare_loop  # noqa: E402

import gradcheck  # noqa: E402


def best(fn, repeat: int) -> tuple[float, float, object]:
    times, out = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return times[0], min(times), out


def torch_problem(net: Mlp):
    import torch

    if THREADS == "1":
        torch.set_num_threads(1)
    p = net.params
    module = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.Tanh(), torch.nn.Linear(32, 10))
    module = module.double()
    with torch.no_grad():
        module[0].weight.copy_(torch.tensor(p["W1"].T))
        module[0].bias.copy_(torch.tensor(p["b1"]))
        module[2].weight.copy_(torch.tensor(p["W2"].T))
        module[2].bias.copy_(torch.tensor(p["b2"]))
    x, y = torch.tensor(net.x), torch.tensor(net.y)

    def loss_fn(z):
        return (torch.logsumexp(z, 1) - (z * y).sum(1)).mean()

    return module, x, loss_fn


def path_ran(report) -> str:
    """Which path the adapter's evaluation note says ran: batched, loop or fallback."""
    from gradcheck.report._sentences import NoteCode

    paths = [n.numbers["path"] for n in report.notes if n.code is NoteCode.EVALUATION]
    return ", ".join(dict.fromkeys(paths)) or "?"


def counting_batches(module_name: str):
    """Wrap the adapter's batched function so that its rows are counted (not self-reported)."""
    import importlib

    mod = importlib.import_module(module_name)
    counter = {"rows": 0}
    original = mod._batched

    def patched(*args, **kwargs):
        fn, reason = original(*args, **kwargs)
        if fn is None:
            return fn, reason

        class Counted:  # every row the check asks for, full rows and one-tensor stacks alike
            def __call__(self, thetas):
                counter["rows"] += len(thetas)
                return fn(thetas)

        counter["fn"] = fn  # for the floor: the batched function alone
        counted = Counted()
        if hasattr(fn, "by_tensor"):

            def by_tensor(t, rows):
                counter["rows"] += len(rows)
                return fn.by_tensor(t, rows)

            counted.by_tensor = by_tensor
        return counted, reason

    mod._batched = patched
    return counter


def floor(fn, repeat: int) -> tuple[float, float]:
    """The batched function alone (no verdict) on the stacks a full check makes: for each
    tensor, its 2 n_t rows (entry i moved by ±1e-6), in the evaluator's stacks of 32 MiB."""
    from gradcheck.core._evaluate import MEMORY

    stacks = []
    for t in range(len(fn.starts) - 1):  # the adapter's tensors, in its order
        own = fn.theta[fn.starts[t] : fn.starts[t + 1]]
        rows = np.repeat(own[None, :], 2 * own.size, axis=0)
        entries = np.repeat(np.arange(own.size), 2)
        rows[np.arange(len(rows)), entries] += np.tile([1e-6, -1e-6], own.size)
        per_stack = max(1, MEMORY // (8 * own.size))
        stacks += [(t, rows[lo : lo + per_stack]) for lo in range(0, len(rows), per_stack)]

    def go():
        for t, rows in stacks:
            fn.by_tensor(t, rows)

    return best(go, repeat)[:2]


def bound(net: Mlp, repeat: int, chunk: int = 256) -> tuple[float, float]:
    """The best a batched full check could do on this CPU without exploiting that a row moves
    one entry: this model's forward written by hand in torch for each tensor's stacks (the
    moving tensor stacked, the rest shared, everything upstream of it computed once), on the
    same 2N rows in chunks of ``chunk``, with no verdict around it."""
    import torch

    p = {k: torch.tensor(v) for k, v in net.params.items()}
    x, y = torch.tensor(net.x), torch.tensor(net.y)
    h0 = x @ p["W1"]
    a0 = torch.tanh(h0 + p["b1"])
    z0 = a0 @ p["W2"]

    def lse(z):  # (B, 100, 10) -> (B,)
        return (torch.logsumexp(z, 2) - (z * y).sum(2)).mean(1)

    heads = {  # the stacked rows of one tensor -> J of each row (in place where it can be)
        "W1": lambda w: lse(torch.matmul(torch.matmul(x, w).add_(p["b1"]).tanh_(), p["W2"])
                            .add_(p["b2"])),
        "b1": lambda b: lse(torch.matmul((h0 + b[:, None, :]).tanh_(), p["W2"]).add_(p["b2"])),
        "W2": lambda w: lse(torch.matmul(a0, w).add_(p["b2"])),
        "b2": lambda b: lse(z0 + b[:, None, :]),
    }
    for name, head in heads.items():  # each is this model's J: at θ, the NumPy loss's value
        assert abs(float(head(p[name][None].clone())[0]) - net(net.params)) < 1e-12, name
    stacks = []
    for name, own in p.items():
        flat = own.reshape(-1)
        rows = flat.repeat(2 * flat.numel(), 1)
        entries = torch.arange(flat.numel()).repeat_interleave(2)
        rows[torch.arange(len(rows)), entries] += torch.tensor([1e-6, -1e-6]).repeat(flat.numel())
        for lo in range(0, len(rows), chunk):
            stacks.append((heads[name], rows[lo : lo + chunk].reshape(-1, *own.shape)))

    def go():
        with torch.no_grad():
            for head, rows in stacks:
                head(rows)

    return best(go, repeat)[:2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--chunks", default="")
    parser.add_argument("--threads", choices=("1", "default"), default="1")
    args = parser.parse_args()
    net = Mlp((64, 32, 10))
    n = net.n
    print(f"# {platform.machine()}, {os.cpu_count()} cores, N = {n:,}, 2N = {2 * n:,} calls, "
          f"threads: {THREADS} ({'one per library' if THREADS == '1' else 'libraries default'}), "
          f"load average {os.getloadavg()[0]:.2f}")
    rows: list[tuple[str, float, float, str]] = []

    t0, t, _ = best(lambda: bare_loop(net, 2 * n), args.repeat)
    loop_time = t
    rows.append(("bare NumPy loop of 2N calls", t0, t, f"{2 * n:,} ({1e6 * t / (2 * n):.1f} us/call)"))

    calls = {"n": 0}

    def counted(p):
        calls["n"] += 1
        return net(p)

    def ours():
        calls["n"] = 0
        r = gradcheck.check(counted, net.params, net.grads(), coords="all")
        assert r.passed
        return calls["n"]

    t0, t, c = best(ours, args.repeat)
    rows.append(("gradcheck.check (NumPy loss, loop)", t0, t, f"{c:,}"))

    import torch

    import gradcheck.frameworks._torch_run as gft
    import gradcheck.torch as gt

    module, x, loss_fn = torch_problem(net)
    counter = counting_batches("gradcheck.frameworks._torch_run")
    chunks = [int(c) for c in args.chunks.split(",") if c] or [gft.CHUNK]
    for vec in ("auto", "vmap", "loop"):
        for chunk in chunks if vec == "vmap" else [None]:
            if chunk is not None:
                gft.CHUNK = chunk

            def run_torch(vec=vec):
                counter["rows"] = 0
                r = gt.check_module(module, x, loss_fn=loss_fn, coords="all", vectorize=vec)
                assert r.passed, r.notes
                return r.evaluations, counter["rows"], path_ran(r)

            t0, t, (ev, batched_rows, ran) = best(run_torch, args.repeat)
            label = f"gradcheck.torch.check_module vectorize={vec!r} (ran: {ran})"
            label += f" (CHUNK={chunk})" if chunk else ""
            rows.append((label, t0, t, f"{ev:,} ({batched_rows:,} batched rows)"))

    p = [torch.tensor(net.params[k]).requires_grad_() for k in ("W1", "b1", "W2", "b2")]
    xt, yt = torch.tensor(net.x), torch.tensor(net.y)

    def f(w1, b1, w2, b2):
        z = torch.tanh(xt @ w1 + b1) @ w2 + b2
        return (torch.logsumexp(z, 1) - (z * yt).sum(1)).mean()

    for fast in (False, True):
        t0, t, ok = best(
            lambda fast=fast: torch.autograd.gradcheck(f, tuple(p), eps=1e-6, atol=1e-5,
                                                       fast_mode=fast),
            args.repeat,
        )
        assert ok
        rows.append((f"torch.autograd.gradcheck fast_mode={fast}", t0, t, "-"))

    jcounter = None
    try:
        import jax
    except ImportError:
        jax = None
    if jax is not None:
        jax.config.update("jax_enable_x64", True)
        import jax.numpy as jnp
        from jax.test_util import check_grads

        import gradcheck.frameworks.jax as gfj
        import gradcheck.jax as gj

        jcounter = counting_batches("gradcheck.frameworks.jax")
        xj, yj = jnp.asarray(net.x), jnp.asarray(net.y)

        def jf(q):
            z = jnp.tanh(xj @ q["W1"] + q["b1"]) @ q["W2"] + q["b2"]
            return jnp.mean(jax.nn.logsumexp(z, axis=1) - (z * yj).sum(1))

        q = {k: jnp.asarray(v) for k, v in net.params.items()}
        for vec in ("auto", "vmap", "loop"):
            def run_jax(vec=vec):
                jcounter["rows"] = 0
                r = gj.check(jf, q, coords="all", vectorize=vec)
                assert r.passed, r.notes
                return r.evaluations, jcounter["rows"], path_ran(r)

            t0, t, (ev, batched_rows, ran) = best(run_jax, args.repeat)
            rows.append((f"gradcheck.jax.check vectorize={vec!r} (CHUNK={gfj.CHUNK}, ran: {ran})",
                         t0, t,
                         f"{ev:,} ({batched_rows:,} batched rows)"))
        t0, t, _ = best(lambda: check_grads(jf, (q,), order=1, modes=("rev",)), args.repeat)
        rows.append(("jax.test_util.check_grads (rev, order 1)", t0, t, "-"))

    for label, wrapped in (("torch", counter), ("JAX", jcounter)):
        if wrapped is None or not hasattr(wrapped.get("fn"), "by_tensor"):
            continue  # (an older adapter without one-tensor stacks: no floor row)
        first, t = floor(wrapped["fn"], args.repeat)
        rows.append((f"floor: the {label} batched function alone on the 2N rows", first, t,
                     f"{2 * n:,} ({1e6 * t / (2 * n):.1f} us/row)"))
    first, t = bound(net, args.repeat)
    rows.append(("bound: this model's forward batched by hand in torch, 2N rows", first, t,
                 f"{2 * n:,} ({1e6 * t / (2 * n):.1f} us/row)"))
    print(f"| path | first run (s) | best of {args.repeat} (s) | vs bare NumPy loop | loss calls |")
    print("|---|---|---|---|---|")
    for label, first, fastest, c in rows:
        print(f"| {label} | {first:.3f} | {fastest:.3f} | {loop_time / fastest:.2f}x | {c} |")


if __name__ == "__main__":
    main()
