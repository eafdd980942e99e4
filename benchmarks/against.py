"""check_against vs the hand-written FlashAttention-style max rule, side by side (issue 26).

Run:  OMP_NUM_THREADS=1 PYTHONPATH=src .venv/bin/python benchmarks/against.py [--seeds 5]

The kernels and planted bugs are tests/frameworks/kernels.py's (hand-written
``autograd.Function``s computing in float32 between bf16/fp16 inputs and outputs). The max rule
is the one in FlashAttention's tests, applied to every output and input gradient with the same
seeded cotangent: ``(d - d_ref).abs().max() <= 2 * (d_pt - d_ref).abs().max()``, d the kernel,
d_ref the reference in float64, d_pt the reference in the kernel's dtype. "Right tensor": the
failing tensors are exactly the bug's; "right place": check_against also names the planted
kind (and, for the bugs in one or two heads, those heads' blocks). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "frameworks"))
from kernels import BUGS, KERNELS, inputs, kernel  # noqa: E402

import gradcheck.torch as gt  # noqa: E402

SIZES = {"attention": (32, 64), "attention_rounded": (32, 64), "layer_norm": (32, 64),
         "rms_norm": (32, 64), "cross_entropy": (32, 64), "gelu_mlp": (64, 512)}
BUG_SIZES = {"attention": (64, 128), "layer_norm": (32, 128), "gelu_mlp": (512, 1024)}
PLACE = {"dv_head_scale": ("[0, 1, :, :]",), "dk_transposed_tile": ("[0, 1, :, :]",),
         "dv_heads_swapped": ("[0, 1, :, :]", "[0, 2, :, :]")}


def max_rule(fn: Any, reference: Any, xs: tuple[Any, ...], names: tuple[str, ...], dtype: Any,
             seed: int, device: str) -> set[str]:
    """The tensors (out, d<name>) that fail the FlashAttention-style max rule."""
    runs = {}
    for key, f, cast in (("kernel", fn, dtype), ("ref", reference, torch.float64),
                         ("pt", reference, dtype)):
        leaves = [x.to(dtype).to(cast).to(device).requires_grad_() if x.is_floating_point()
                  else x.to(device) for x in xs]
        out = f(*leaves)
        g = torch.Generator().manual_seed(seed)
        cot = torch.randn(out.shape, generator=g, dtype=torch.float64).to(dtype).to(out.dtype)
        wrt = [x for x in leaves if x.requires_grad]
        grads = torch.autograd.grad(out, wrt, cot.to(device), allow_unused=True)
        named = {"out": out}
        named.update({f"d{n}": gr for n, x, gr in zip(
            [n for n, x in zip(names, xs, strict=True) if x.is_floating_point()], wrt, grads,
            strict=True)})
        runs[key] = {k: torch.zeros_like(wrt[0]) if v is None else v.detach().double()
                     for k, v in named.items()}
    return {k for k in runs["kernel"]
            if (runs["kernel"][k] - runs["ref"][k]).abs().max()
            > 2 * (runs["pt"][k] - runs["ref"][k]).abs().max()}


def one(name: str, bug: str | None, dtype: str, size: int, seed: int, device: str) -> dict:
    function, reference, names = KERNELS[name]
    xs = tuple(x.to(device) for x in inputs(name, size, seed))
    low = getattr(torch, dtype)
    start = time.perf_counter()
    flagged = max_rule(kernel(function, bug), reference, xs, names, low, seed, device)
    t_max = time.perf_counter() - start
    start = time.perf_counter()
    report = gt.check_against(kernel(function, bug), reference, *xs, dtype=dtype, seed=seed,
                              names=names)
    t_block = time.perf_counter() - start
    return {"max": flagged, "block": set(report.suspects), "report": report,
            "t_max": t_max, "t_block": t_block}


def calibration(trials: int) -> None:
    """The rule alone under its null: kernel and yardstick errors drawn from one distribution
    (Gaussian, Laplace, or bf16 rounding of values perturbed by 1e-3); the share of tensors
    with any failed block, against the rule's alpha = 1e-3 per tensor."""
    import numpy as np

    from gradcheck.frameworks._against_blocks import judge, make_blocks

    rng = np.random.default_rng(0)

    def noisy(truth: np.ndarray, kind: str) -> np.ndarray:
        if kind == "bf16 rounding":
            return torch.from_numpy(truth + 1e-3 * rng.standard_normal(truth.shape)).to(
                torch.bfloat16).double().numpy()
        draw = rng.laplace if kind == "Laplace" else rng.normal
        return truth + 1e-3 * draw(size=truth.shape)

    print(f"\n| null: blocks × entries | {trials} tensors each: Gaussian | Laplace | "
          "bf16 rounding |")
    print("|---|---|---|---|")
    for shape in ((64,), (1024,), (8, 8), (8, 64), (64, 32), (8, 2048)):
        rates = []
        for kind in ("Gaussian", "Laplace", "bf16 rounding"):
            hits = 0
            for _ in range(trials):
                truth = rng.standard_normal(shape)
                verdict = judge(noisy(truth, kind), truth, noisy(truth, kind),
                                make_blocks(shape, None))
                hits += bool(verdict.failed.any())
            rates.append(f"{hits / trials:.2%}")
        blocks = make_blocks(shape, None)
        print(f"| {shape} ({blocks.count} blocks: {blocks.describe}) | {' | '.join(rates)} |")


def sensitivity(seeds: int, device: str) -> None:
    """How small a scale of one head's dV each rule detects (bf16, N = 64 and 128)."""
    print("\n| one head's dV times (bf16) | runs | max rule: detected | check_against: detected, "
          "right head |")
    print("|---|---|---|---|")
    for factor in (1.0025, 1.005, 1.01, 1.02, 1.05):
        hits = [0, 0, 0]
        for size in (64, 128):
            for seed in range(seeds):
                r = one("attention", f"dv_head_scale:{factor}", "bfloat16", size, seed, device)
                hits[0] += bool(r["max"])
                hits[1] += bool(r["block"])
                hits[2] += r["block"] == {"dv"} and all(
                    f.where == ("[0, 1, :, :]",) for f in r["report"].findings)
        n = 2 * seeds
        print(f"| {factor} | {n} | {hits[0]}/{n} | {hits[1]}/{n}, {hits[2]}/{n} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--calibration", type=int, default=0,
                        help="tensors per cell of the rule's null calibration (0: skip)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows, totals = [], {"max": [0, 0, 0], "block": [0, 0, 0, 0]}
    times = {"t_max": [], "t_block": []}
    for bug_row in BUGS:
        name, bug, dtype, _, grad, kind = bug_row
        counts = {"max": [0, 0], "block": [0, 0, 0]}
        sizes = BUG_SIZES[name]
        for size in sizes:
            for seed in range(args.seeds):
                r = one(name, bug, dtype, size, seed, args.device)
                times["t_max"].append(r["t_max"])
                times["t_block"].append(r["t_block"])
                counts["max"][0] += bool(r["max"])
                counts["max"][1] += r["max"] == {grad}
                counts["block"][0] += bool(r["block"])
                counts["block"][1] += r["block"] == {grad}
                found = r["report"].findings
                where_ok = bug not in PLACE or all(f.where == PLACE[bug] for f in found)
                counts["block"][2] += (r["block"] == {grad} and [f.kind for f in found] == [kind]
                                       and where_ok)
        n = len(sizes) * args.seeds
        rows.append(f"| {name}: {bug} ({dtype}, sizes {sizes}) | {n} | "
                    f"{counts['max'][0]}/{n}, right tensor {counts['max'][1]}/{n} | "
                    f"{counts['block'][0]}/{n}, right tensor {counts['block'][1]}/{n}, "
                    f"right kind and place {counts['block'][2]}/{n} |")
        for k in range(2):
            totals["max"][k] += counts["max"][k]
        for k in range(3):
            totals["block"][k] += counts["block"][k]
    alarms, correct, which = {"max": 0, "block": 0}, 0, []
    for name in KERNELS:
        for dtype in ("bfloat16", "float16"):
            for size in SIZES[name]:
                for seed in range(100, 100 + args.seeds):
                    r = one(name, None, dtype, size, seed, args.device)
                    correct += 1
                    alarms["max"] += bool(r["max"])
                    alarms["block"] += bool(r["block"])
                    which += [f"{rule}: {name} {dtype} size {size} seed {seed} "
                              f"({', '.join(sorted(r[key]))})"
                              for rule, key in (("max rule", "max"), ("check_against", "block"))
                              if r[key]]
                    times["t_max"].append(r["t_max"])
                    times["t_block"].append(r["t_block"])
    print(f"# device {args.device}; torch {torch.__version__}; seeds per case {args.seeds}\n")
    print("| planted bug | runs | max rule: detected | check_against: detected |")
    print("|---|---|---|---|")
    print("\n".join(rows))
    print(f"\n| correct kernels (6 kernels × bf16, fp16 × 2 sizes × {args.seeds} seeds) | runs | "
          "max rule: false alarms | check_against: false alarms |")
    print("|---|---|---|---|")
    print(f"| all | {correct} | {alarms['max']}/{correct} | {alarms['block']}/{correct} |")
    print("".join(f"\n* false alarm, {w}" for w in which))
    sensitivity(args.seeds, args.device)
    if args.calibration:
        calibration(args.calibration)
    med = {k: sorted(v)[len(v) // 2] for k, v in times.items()}
    print(f"\nmedian time per check: max rule {1e3 * med['t_max']:.1f} ms (its three runs and "
          f"the maxima), check_against {1e3 * med['t_block']:.1f} ms "
          f"({med['t_block'] / med['t_max']:.2f}×)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
