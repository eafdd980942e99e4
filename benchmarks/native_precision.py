"""precision="auto" against precision="native" on float32 (and float16) torch code: false alarms
on correct code, and planted errors that exist only in the float32 arithmetic.

Run: PYTHONPATH=src .venv/bin/python benchmarks/native_precision.py [--seeds 3]

The eight networks of ``benchmarks/independent.py`` (conv + max-pool, RNN, batch norm, attention,
L1 + Huber, tied hinge, a loss of 1e6, gradients of 1e-9), their parameters in float32 (float16),
checked through ``gradcheck.torch.check_function`` (autograd's gradient, not a NumPy loss):

* **correct**: the network as it is, with ``precision="auto"`` (float64 copies) and ``"native"``
  (its own dtype, the tolerance from the measured noise); a failure is a false alarm;
* **float32-only error**: the gradient of the tensor with the largest gradient scaled by
  (1 + e), but only where that gradient is computed in the narrow dtype (a custom
  ``autograd.Function`` whose backward takes a "fast path" for it, as a TF32 or float16 kernel
  would); e = 1e-2 for float32, 1 (a factor 2) for float16. ``auto`` evaluates float64 copies,
  where the path is never taken: it cannot see the error, and its report says float64 was
  evaluated; ``native`` runs the path.
* the float32 softplus of docs/precision.md (sigmoid written as 1 − 1/(1 + eˣ)) at x ≈ −14.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

import gradcheck
import gradcheck.torch as gt

sys.path.insert(0, str(Path(__file__).resolve().parent))
from independent import networks  # noqa: E402

ERROR = {torch.float32: 1e-2, torch.float16: 1.0}


class NarrowPathScale(torch.autograd.Function):
    """Identity forward; the backward scales the gradient by (1 + e) in the narrow dtype only."""

    @staticmethod
    def forward(ctx, x, narrow, e):  # type: ignore[override]
        ctx.narrow, ctx.e = narrow, e
        return x.view_as(x)

    @staticmethod
    def backward(ctx, g):  # type: ignore[override]
        return (g * (1 + ctx.e) if g.dtype == ctx.narrow else g), None, None


def _fn(f, names, planted=None, dtype=None):
    def fn(*ps):
        p = dict(zip(names, ps, strict=True))
        if planted is not None:
            p[planted] = NarrowPathScale.apply(p[planted], dtype, ERROR[dtype])
        return f(p)
    return fn


def _biggest(f, params):
    leaves = {k: v.detach().clone().requires_grad_(True) for k, v in params.items()}
    grads = torch.autograd.grad(f(leaves), list(leaves.values()))
    return max(zip(leaves, grads, strict=True), key=lambda kg: float(kg[1].double().norm()))[0]


def _check(rows, case, fn, inputs, names, precision):
    """The report, or None where the check refuses (a clear error, counted and named)."""
    try:
        return gt.check_function(fn, *inputs, names=names, precision=precision)
    except gradcheck.GradCheckError as error:
        rows["refused"] += 1
        rows["notes"].append(f"{precision} refused: {case}: {type(error).__name__}: "
                             f"{str(error).splitlines()[0][:60]}")
        return None


def run(dtype: torch.dtype, seeds: int) -> dict[str, object]:
    rows = {"cases": 0, "auto false": 0, "native false": 0, "planted": 0, "refused": 0,
            "auto caught": 0, "native caught": 0, "said float64": 0, "notes": []}
    for seed in range(seeds):
        for name, (f, params) in networks(seed).items():
            params = {k: v.to(dtype) for k, v in params.items()}
            names = list(params)
            try:
                big = _biggest(f, params)
            except (RuntimeError, NotImplementedError):  # no kernel in this dtype on the CPU
                continue
            inputs = [params[k].clone().requires_grad_(True) for k in names]
            rows["cases"] += 1
            for precision in ("auto", "native"):
                r = _check(rows, f"{name} seed {seed}", _fn(f, names), inputs, names, precision)
                if r is not None and r.passed is False:
                    rows[f"{precision} false"] += 1
                    rows["notes"].append(f"{precision} false alarm: {name} seed {seed} {r.suspects}")
            rows["planted"] += 1
            for precision in ("auto", "native"):
                r = _check(rows, f"{name} seed {seed} (planted)", _fn(f, names, big, dtype),
                           inputs, names, precision)
                if r is None:
                    continue
                if big in r.suspects:
                    rows[f"{precision} caught"] += 1
                elif precision == "native":
                    rows["notes"].append(f"native missed: {big} of {name} seed {seed}")
                if precision == "auto" and r.components[big].evaluated_dtype == "float64":
                    rows["said float64"] += 1
    return rows


def softplus_case() -> str:
    class Softplus(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):  # type: ignore[override]
            ctx.save_for_backward(x)
            return torch.nn.functional.softplus(x)

        @staticmethod
        def backward(ctx, g):  # type: ignore[override]
            (x,) = ctx.saved_tensors
            return g * (1 - 1 / (1 + torch.exp(x)))

    x = (-14 + torch.randn(16, generator=torch.Generator().manual_seed(0))).requires_grad_()
    out = []
    for precision in ("auto", "native"):
        r = gt.check_function(Softplus.apply, x, precision=precision)
        c = r.components["input0"]
        out.append(f"{precision}: {r.verdict} (evaluated {c.evaluated_dtype}, "
                   f"{c.mismatches}/{c.checked} wrong)")
    return "; ".join(out)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    start = time.perf_counter()
    print("| dtype | correct cases | false alarms auto / native | planted narrow-only errors "
          "(e) | caught auto / native | auto's report says float64 | checks refused |")
    print("|---|---|---|---|---|---|---|")
    for dtype in (torch.float32, torch.float16):
        r = run(dtype, args.seeds)
        name = str(dtype).removeprefix("torch.")
        print(f"| {name} | {r['cases']} | {r['auto false']} / {r['native false']} | "
              f"{r['planted']} (e = {ERROR[dtype]:g}) | {r['auto caught']} / "
              f"{r['native caught']} | {r['said float64']} of {r['planted']} | {r['refused']} |")
        for note in r["notes"]:
            print(f"|   {note} | | | | | | |")
    print(f"\nsoftplus, sigmoid as 1 − 1/(1 + eˣ), x ≈ −14: {softplus_case()}")
    print(f"\n{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
