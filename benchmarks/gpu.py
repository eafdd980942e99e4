"""The 784-300-10 full check on a GPU (issue 17): gradcheck.torch.check_module(coords="all")
through torch.func.vmap on CUDA (and gradcheck.jax.check on a JAX GPU backend, if installed),
against torch.autograd.gradcheck on the same device and the FLOP limit of the batched forwards.

Run:  .venv/bin/python benchmarks/gpu.py [--m 100] [--dtype float64] [--slow-columns 3010]

A second section (issue 26) runs benchmarks/against.py on the CUDA device: check_against
against the FlashAttention-style max rule over the planted bugs and the correct kernels of
tests/frameworks/kernels.py, in bf16 and fp16 (``--against-seeds``; 0 skips it).

Exits 0 with a "skipped" line when no CUDA device is present. The FLOP limit: 2N perturbed
forwards of 2·m·(784·300 + 300·10) FLOPs each (the matmuls), divided by the float64 (or
--dtype) matmul rate measured on the device with a large square product. torch.autograd.
gradcheck's slow mode builds the whole 238,510-column Jacobian; it runs on the last
--slow-columns entries (W1 frozen) and is scaled linearly to N (marked "~").
"""

from __future__ import annotations

import argparse
import time


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--m", type=int, default=100)
    parser.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    parser.add_argument("--slow-columns", type=int, default=3010)
    parser.add_argument("--against-seeds", type=int, default=5)
    args = parser.parse_args()
    try:
        import torch
    except ImportError:
        print("skipped: torch is not installed")
        return 0
    if not torch.cuda.is_available():
        print("skipped: no CUDA device (torch.cuda.is_available() is False)")
        return 0
    if args.against_seeds:
        against_on_cuda(args.against_seeds)
    import gradcheck.torch as gt

    dev = torch.device("cuda")
    dtype = getattr(torch, args.dtype)
    name = torch.cuda.get_device_name(dev)
    torch.manual_seed(0)
    module = torch.nn.Sequential(
        torch.nn.Linear(784, 300), torch.nn.Sigmoid(), torch.nn.Linear(300, 10), torch.nn.Sigmoid()
    ).to(device=dev, dtype=dtype)
    x = torch.rand(args.m, 784, device=dev, dtype=dtype)
    y = torch.nn.functional.one_hot(torch.randint(0, 10, (args.m,), device=dev), 10).to(dtype)

    def loss_fn(out):
        return 0.5 * ((out - y) ** 2).sum() / args.m

    n = sum(p.numel() for p in module.parameters())
    print(f"# device: {name}; N = {n:,}; m = {args.m}; {args.dtype}")

    # FLOP limit of the batched forwards.
    a = torch.randn(4096, 4096, device=dev, dtype=dtype)
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(5):
        a @ a
    torch.cuda.synchronize()
    rate = 5 * 2 * 4096**3 / (time.perf_counter() - start)
    flops = 2 * n * 2 * args.m * (784 * 300 + 300 * 10)
    print(f"| FLOP limit of 2N forwards at {rate / 1e12:.2f} TFLOP/s | {flops / rate:.3f} s |")

    for vec in ("vmap", "loop"):
        if vec == "loop":
            print("| gradcheck.torch.check_module vectorize='loop' | not run (2N single calls) |")
            continue
        torch.cuda.synchronize()
        start = time.perf_counter()
        r = gt.check_module(module, x, loss_fn=loss_fn, coords="all", vectorize=vec,
                            precision="native")
        torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        print(f"| gradcheck.torch.check_module coords='all' vectorize={vec!r} | {seconds:.2f} s | "
              f"{r.evaluations:,} evaluations | passed={r.passed} |")

    params = [p.detach().clone().requires_grad_() for p in module.parameters()]
    w1, b1, w2, b2 = params

    def f(*ps):
        w1_, b1_, w2_, b2_ = ps
        h = torch.sigmoid(x @ w1_.T + b1_)
        return loss_fn(torch.sigmoid(h @ w2_.T + b2_))

    start = time.perf_counter()
    ok = torch.autograd.gradcheck(f, tuple(params), eps=1e-6, atol=1e-5, fast_mode=True)
    torch.cuda.synchronize()
    print(f"| torch.autograd.gradcheck fast_mode=True | {time.perf_counter() - start:.2f} s | {ok} |")
    frozen = w1.detach()

    def g(*ps):
        return f(frozen, *ps)

    start = time.perf_counter()
    ok = torch.autograd.gradcheck(g, (b1, w2, b2), eps=1e-6, atol=1e-5)
    torch.cuda.synchronize()
    part = time.perf_counter() - start
    cols = b1.numel() + w2.numel() + b2.numel()
    print(f"| torch.autograd.gradcheck slow mode | ~{part * n / cols:.1f} s "
          f"({part:.2f} s on {cols:,} columns) | {ok} |")

    try:
        import jax
    except ImportError:
        print("| gradcheck.jax.check on GPU | not run (jax not installed) |")
        return 0
    if jax.default_backend() != "gpu":
        print(f"| gradcheck.jax.check on GPU | not run (JAX backend is {jax.default_backend()}) |")
        return 0
    import jax.numpy as jnp

    import gradcheck.jax as gj

    q = {k: jnp.asarray(v.detach().cpu().numpy()) for k, v in zip(("W1", "b1", "W2", "b2"),
                                                                     params, strict=True)}
    xj, yj = jnp.asarray(x.cpu().numpy()), jnp.asarray(y.cpu().numpy())

    def jf(p):
        h = jax.nn.sigmoid(xj @ p["W1"].T + p["b1"])
        return 0.5 * jnp.sum((jax.nn.sigmoid(h @ p["W2"].T + p["b2"]) - yj) ** 2) / args.m

    start = time.perf_counter()
    r = gj.check(jf, q, coords="all")
    print(f"| gradcheck.jax.check coords='all' | {time.perf_counter() - start:.2f} s | "
          f"{r.evaluations:,} | passed={r.passed} |")
    return 0


def against_on_cuda(seeds: int) -> None:
    """benchmarks/against.py's table, with the kernels' inputs and runs on the CUDA device."""
    import sys

    import against
    import torch

    print(f"## check_against vs the max rule on {torch.cuda.get_device_name()} (issue 26)")
    argv = sys.argv
    try:
        sys.argv = [argv[0], "--seeds", str(seeds), "--device", "cuda"]
        against.main()
    finally:
        sys.argv = argv
    print()


if __name__ == "__main__":
    raise SystemExit(main())
