"""How far the smallest OpInfo pairs can go: the forward calls each checker makes, counted.

For every float64 OpInfo pair (first sample) of at most ``--max-entries`` checked entries, the
user's ``fn`` is wrapped by a counter and checked once by ``gradcheck.torch.check_function``
and once by ``torch.autograd.gradcheck``. A check of at most 16 entries runs every loss call
through the adapter's loop (``SMALL`` in ``frameworks/_shared.py``), so there each loss call is
one call of ``fn``. Then, timed as the minimum of ``--repeat`` alternating calls: our check,
torch's, and one plain forward call of ``fn`` (under ``no_grad``).

The floor of a pair is what our forward calls alone would cost, ``our calls x forward``, over
torch's whole check: a ratio our check cannot go under however small its own cost, unless it
makes fewer calls. Our own cost is the rest of our check, ``ours - our calls x forward`` (the
engine, the adapter, the report); the cost allowed for 2x is what it may be for our check to
take at most twice torch's, ``2 x torch - our calls x forward``.

    PYTHONPATH=src:. python benchmarks/call_floor.py [--max-entries 16] [--limit N] [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from collections.abc import Callable
from typing import Any


class Counted:
    """``fn`` with a count of its calls."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn, self.calls = fn, 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return self.fn(*args, **kwargs)


def fastest(call: Callable[[], Any], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - start)
    return best


def pair_row(op: Any, repeat: int, max_entries: int) -> dict[str, Any] | None:
    import torch

    import gradcheck.torch as gt
    from benchmarks.opinfo import _gradcheck_fn, _tensors_requiring_grad

    torch.manual_seed(0)
    sample = next(iter(op.sample_inputs("cpu", torch.float64, requires_grad=True)), None)
    if sample is None:
        return None
    inputs = _tensors_requiring_grad(sample)
    entries = sum(t.numel() for t in inputs)
    if not inputs or entries == 0 or entries > max_entries:
        return None
    fn = Counted(_gradcheck_fn(op, sample))
    try:
        gt.check_function(fn, *inputs)
        ours_calls, fn.calls = fn.calls, 0
        torch.autograd.gradcheck(fn, inputs, raise_exception=False, atol=1e-5, rtol=1e-3,
                                 eps=1e-6, nondet_tol=op.gradcheck_nondet_tol)
        torch_calls = fn.calls
    except Exception:  # noqa: BLE001 - a pair either checker cannot run is not compared
        return None
    with torch.no_grad():
        forward = fastest(lambda: fn(*inputs), repeat)
    ours = fastest(lambda: gt.check_function(fn, *inputs), repeat)
    theirs = fastest(lambda: torch.autograd.gradcheck(
        fn, inputs, raise_exception=False, atol=1e-5, rtol=1e-3, eps=1e-6,
        nondet_tol=op.gradcheck_nondet_tol), repeat)
    return {"pair": f"{op.name}.{op.variant_test_name}".rstrip("."), "entries": entries,
            "ours_calls": ours_calls, "torch_calls": torch_calls, "forward": forward,
            "ours": ours, "torch": theirs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--max-entries", type=int, default=16)
    parser.add_argument("--limit", type=int, default=0, help="first N OpInfo ops (0: all)")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    import torch
    from torch.testing._internal.common_methods_invocations import op_db

    torch.set_num_threads(1)
    ops = [op for op in op_db if op.supports_autograd and torch.float64 in op.dtypes]
    rows = [r for op in ops[: args.limit or None]
            if (r := pair_row(op, args.repeat, args.max_entries)) is not None]
    print(f"{len(rows)} float64 OpInfo pairs of at most {args.max_entries} entries\n")
    print("| entries | pairs | our fn calls (median) | torch's fn calls (median) | "
          "ours / torch (median) | floor: our calls x forward / torch (median) | "
          "pairs whose floor > 1 | our own cost (median ms) | own cost allowed for 2x "
          "(median ms) | pairs within 2x |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    buckets = [(1, 1), (2, 2), (3, 4), (5, 8), (9, 16), (17, 10**9)]
    for lo, hi in [*buckets, (1, 10**9)]:
        part = [r for r in rows if lo <= r["entries"] <= hi]
        if not part:
            continue
        floors = [r["ours_calls"] * r["forward"] / r["torch"] for r in part]
        own = [r["ours"] - r["ours_calls"] * r["forward"] for r in part]
        allowed = [2 * r["torch"] - r["ours_calls"] * r["forward"] for r in part]
        label = "all" if (lo, hi) == (1, 10**9) else (f"{lo}" if lo == hi else f"{lo}-{hi}")
        print(f"| {label} | {len(part)} | {statistics.median(r['ours_calls'] for r in part):g} | "
              f"{statistics.median(r['torch_calls'] for r in part):g} | "
              f"{statistics.median(r['ours'] / r['torch'] for r in part):.2f}x | "
              f"{statistics.median(floors):.2f}x | {sum(f > 1 for f in floors)} | "
              f"{1e3 * statistics.median(own):.2f} | {1e3 * statistics.median(allowed):.2f} | "
              f"{sum(r['ours'] <= 2 * r['torch'] for r in part)} |")


if __name__ == "__main__":
    main()
