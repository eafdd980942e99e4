"""gradcheck.torch.check_function vs torch.autograd.gradcheck over PyTorch's OpInfo database.

Each op of ``op_db`` that supports autograd in the dtype gets its first ``--samples`` samples,
and each sample becomes one check, built the way PyTorch's ``test_ops`` builds its gradcheck
calls (``common_utils._check_helper``): the tensors with ``requires_grad`` become the inputs of
``fn(*inputs)``, which puts them back into the sample and applies ``op.gradcheck_wrapper`` and
``output_process_fn_grad``. float64 pairs run with the default precision, float32 pairs with
``precision="native"`` (the float32 kernels themselves, with the noise-aware tolerance).
The samples of each op are drawn after ``torch.manual_seed(0)`` (OpInfo draws them from the
global RNG), so runs give the same pairs. torch's gradcheck gets ``masked=True`` where an input
is sparse (checked through its stored values, as ours and PyTorch's sparse tests do).

Each check runs under a wall-clock limit (``--limit`` seconds, SIGALRM). Outcomes:
pass, fail (gradcheck says a gradient is wrong), error (gradcheck raised: an adapter error,
grouped by cause), timeout. torch's own verdict on the same pair is recorded next to ours.

    PYTHONPATH=src .venv/bin/python benchmarks/opinfo.py [--samples 2] [--dtypes float64,float32]
        [--limit 20] [--ops REGEX] [--json out.json] [--warm] [--repeat 3]
        [--every-entry]

``--warm`` runs each op once, forward and backward, before its pair is timed. Otherwise the
checker timed first (ours) also pays the op's first-call costs (kernel and dispatcher set-up);
the warm-up touches neither checker's caches.

Each checker's first call on a pair is the headline time (``ours_s``, ``torch_s``): what a
user's one check of an op costs. ``--repeat K`` also times K - 1 more calls of each, in
alternating order (torch first in the first extra round), on the pairs both checkers judged
in under ``REPEAT_UNDER`` seconds, and keeps each one's minimum over its K calls
(``ours_min_s``, ``torch_min_s``): the steady-state time, with the first call's costs and the
machine's load spikes taken out alike. The summary gives both.

By default each pair is checked as PyTorch's own suite checks it: where the op asks for
gradcheck's fast mode (``gradcheck_fast_mode``, 18% of the float64 pairs), torch's check
tests one random projection per input while ours (``coords="auto"``) still judges every
entry up to about 1,700 of them. ``--every-entry`` compares like with like on every pair:
torch's slow mode (the full Jacobian) against ours with ``coords="all"``.

The summary (``opinfo_summary.py``; ``--summarize OUT.json`` reprints it) also gives the whole
run's time, how much longer ours took on the pairs above 2x, and the cut of our time on pairs of
at most 16 entries that would bring the 90th percentile to 2x.

Needs ``pip install "gradcheck[torch,bench]"`` (OpInfo imports expecttest).
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import sys
import time
import warnings
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np
import torch

import gradcheck.torch as gt

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script or imported
from opinfo_summary import JUDGED, summary  # noqa: E402


@dataclass(frozen=True)
class Timing:
    """How each pair is timed: the wall-clock limit per check (seconds), the op's untimed
    warm-up, and the calls per checker for the steady-state minimum (1: the first call only)."""

    limit: float = 20.0
    warm: bool = False
    repeat: int = 1
    every_entry: bool = False  # both judge every entry: torch without fast mode, ours "all"


REPEAT_UNDER = 1.0  # seconds: pairs whose first calls both took less are repeated (--repeat)


class _TimeUp(Exception):
    pass


def _alarm(_signum: int, _frame: Any) -> None:
    raise _TimeUp


def _limited(limit: float, call: Any) -> tuple[str, Any, float]:
    """``(status, value, seconds)``: "ok" and the result, "raised" and the error, or "timeout"."""
    signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, limit)
    start = time.perf_counter()
    try:
        value = call()
        status = "ok"
    except _TimeUp:
        value, status = None, "timeout"
    except Exception as error:  # recorded and grouped by cause
        value, status = error, "raised"
        if _timed_out(error):  # the limit struck inside the loss, which gradcheck wrapped
            value, status = None, "timeout"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    return status, value, time.perf_counter() - start


def _timed_out(error: BaseException | None) -> bool:
    while error is not None:
        if isinstance(error, _TimeUp):
            return True
        error = error.__cause__ or error.__context__
    return False


def _tensors_requiring_grad(sample: Any) -> tuple[torch.Tensor, ...]:
    from torch.testing._internal.common_utils import is_iterable_of_tensors

    if is_iterable_of_tensors(sample.input):
        all_args = chain(sample.input, sample.args, sample.kwargs.values())
    else:
        all_args = chain((sample.input,), sample.args, sample.kwargs.values())
    out: list[torch.Tensor] = []
    for x in all_args:
        if isinstance(x, torch.Tensor) and x.requires_grad:
            out.append(x)
        elif isinstance(x, list | tuple):
            out += [t for t in x if isinstance(t, torch.Tensor) and t.requires_grad]
    return tuple(out)


def _gradcheck_fn(op: Any, sample: Any) -> Any:
    """``fn(*inputs)`` as test_ops builds it: the inputs put back into the sample."""
    from torch.testing._internal.common_utils import is_iterable_of_tensors

    def recompose(inputs: tuple, inp: Any, k: int) -> tuple[Any, int]:
        if is_iterable_of_tensors(inp) or isinstance(inp, list | tuple):
            rebuilt = []
            for x in inp:
                if isinstance(x, torch.Tensor) and x.requires_grad:
                    rebuilt.append(inputs[k])
                    k += 1
                else:
                    rebuilt.append(x)
            return (rebuilt if isinstance(inp, list) else type(inp)(rebuilt)), k
        if isinstance(inp, torch.Tensor) and inp.requires_grad:
            return inputs[k], k + 1
        return inp, k

    def fn(*inputs: Any) -> Any:
        k = 0
        first, k = recompose(inputs, sample.input, k)
        args = [first]
        for x in sample.args:
            x, k = recompose(inputs, x, k)
            args.append(x)
        kwargs = {}
        for name, v in sample.kwargs.items():
            kwargs[name], k = recompose(inputs, v, k)
        out = op.gradcheck_wrapper(op.get_op(), *args, **kwargs)
        if sample.output_process_fn_grad is not None:
            return sample.output_process_fn_grad(out)
        return out

    return fn


def cause(error: BaseException) -> str:
    """A short, grouped cause: the error type and its first words, numbers and names elided."""
    text = str(error).strip().split("\n")[0]
    text = re.sub(r"'[^']*'|\"[^\"]*\"", "'…'", text)
    text = re.sub(r"\d+", "N", text)
    return f"{type(error).__name__}: {text[:90]}"


def run(dtypes: list[str], samples: int, ops: str | None,
        timing: Timing = Timing()) -> list[dict[str, Any]]:
    from torch.testing._internal.common_methods_invocations import op_db

    rows = []
    pattern = re.compile(ops) if ops else None
    for dtype_name in dtypes:
        dtype = getattr(torch, dtype_name)
        precision = "native" if dtype != torch.float64 else "auto"
        for op in op_db:
            if pattern and not pattern.search(op.name):
                continue
            if not op.supports_autograd or dtype not in op.supported_backward_dtypes("cpu"):
                continue
            torch.manual_seed(0)  # OpInfo draws its samples from the global RNG: reproducible
            try:
                drawn = list(_first(op.sample_inputs("cpu", dtype, requires_grad=True), samples))
            except Exception as error:  # the sample generator itself failed: not a check
                rows.append(
                    {
                        "op": f"{op.name}.{op.variant_test_name}".rstrip("."),
                        "dtype": dtype_name,
                        "sample": -1,
                        "ours": "no-sample",
                        "cause": cause(error),
                    }
                )
                continue
            for k, sample in enumerate(drawn):
                rows.append(_pair(op, sample, k, dtype_name, precision, timing))
    return rows


def _first(it: Any, n: int) -> Any:
    for k, x in enumerate(it):
        if k >= n:
            return
        yield x


def _warm_op(fn: Any, inputs: tuple[torch.Tensor, ...]) -> None:
    """One forward and backward of the op itself, untimed: the op's first-call costs (kernel
    and dispatcher set-up) are then paid by neither checker, whichever is timed first. Neither
    checker's own caches are touched."""
    try:
        with torch.enable_grad():
            out = fn(*inputs)
            leaves = [t for t in (out if isinstance(out, list | tuple) else [out])
                      if isinstance(t, torch.Tensor) and t.requires_grad]
            if leaves:
                total = sum(t.real.sum() if t.is_complex() else t.sum() for t in leaves)
                torch.autograd.grad(total, inputs, allow_unused=True)
    except Exception:  # the checkers will say what is wrong with this pair
        pass


def _pair(op: Any, sample: Any, k: int, dtype: str, precision: str, timing: Timing) -> dict:
    name = f"{op.name}.{op.variant_test_name}".rstrip(".")
    row: dict[str, Any] = {"op": name, "dtype": dtype, "sample": k}
    inputs = _tensors_requiring_grad(sample)
    fn = _gradcheck_fn(op, sample)
    if not inputs:
        row.update(ours="no-input", torch="no-input")
        return row
    if timing.warm:
        _warm_op(fn, inputs)
    # Where PyTorch's suite runs gradcheck in fast mode (one random projection per input),
    # ours runs coords="auto": every entry while their central differences fit its budget of
    # 4,000 loss calls (N up to about 1,700), directions and a sample above. So on those pairs
    # ours still judges each entry where torch's judges one projection; --every-entry has
    # both judge every entry (torch's slow mode, ours "all").
    fast = op.gradcheck_fast_mode and not timing.every_entry
    coords = "auto" if fast else "all"

    def ours() -> Any:
        return gt.check_function(fn, *inputs, precision=precision, coords=coords)

    status, value, seconds = _limited(timing.limit, ours)
    row["ours_s"] = seconds
    row.update(_our_fields(status, value))
    atol = 1e-5 if dtype == "float64" else 1e-3
    rtol = 1e-3 if dtype == "float64" else 1e-2

    def theirs() -> Any:
        return torch.autograd.gradcheck(
            fn,
            inputs,
            raise_exception=False,
            nondet_tol=op.gradcheck_nondet_tol,
            fast_mode=fast,
            # sparse inputs: their stored values only, as ours (and PyTorch's sparse tests) do
            masked=any(t.layout != torch.strided for t in inputs),
            atol=atol,
            rtol=rtol,
            eps=1e-6 if dtype == "float64" else 1e-3,
        )

    status, value, seconds = _limited(timing.limit, theirs)
    row["torch_s"] = seconds
    row["torch"] = ("pass" if value else "fail") if status == "ok" else status
    if status == "raised":
        row["torch_cause"] = cause(value)
    if timing.repeat > 1 and row["ours"] in JUDGED and row["torch"] in ("pass", "fail") \
            and max(row["ours_s"], seconds) < REPEAT_UNDER:
        best = _steady((ours, theirs), (row["ours_s"], seconds), timing)
        if best is not None:
            row["ours_min_s"], row["torch_min_s"] = best
    return row


def _our_fields(status: str, value: Any) -> dict[str, Any]:
    """Our outcome on a pair and what it rests on, from ``_limited``'s status and value."""
    row: dict[str, Any] = {}
    if status != "ok":
        return {"ours": "timeout" if status == "timeout" else "error",
                "cause": "timeout" if status == "timeout" else cause(value)}
    # incomplete (None): neither a pass nor a failure (the report judged too little)
    row["ours"] = {True: "pass", None: "incomplete"}.get(value.passed, "fail")
    if not value.components:  # every input empty: not a pass
        row["ours"] = "nothing"
    if not value.passed:
        row["suspects"] = list(value.suspects)
        row["detail"] = value.explain().split("\n")[1][:300] if "\n" in value.explain() else ""
    row["notes"] = [
        n[:160] for n in value.notes if "Evaluated" not in n and "Perturbed" not in n
    ]
    # what each entry was judged (flag: count) and the findings: what the verdict rests
    # on, for comparing two runs pair by pair (numbers may differ in their last bits)
    row["states"] = {
        name: {int(k): int(v) for k, v in zip(*np.unique(c.flags, return_counts=True),
                                               strict=True)}
        for name, c in value.components.items()
    }
    row["findings"] = [f"{f.param}: {f.kind}" for f in value.findings]
    return row


def _steady(calls: tuple[Any, Any], firsts: tuple[float, float],
            timing: Timing) -> tuple[float, float] | None:
    """Each checker's minimum time over its first call and ``timing.repeat - 1`` more, the
    order alternating round by round (torch first in the first extra round); None if a
    repeated call did not finish as the first did."""
    best = list(firsts)
    for extra in range(1, timing.repeat):
        for who in ((1, 0) if extra % 2 else (0, 1)):
            status, _, seconds = _limited(timing.limit, calls[who])
            if status != "ok":
                return None
            best[who] = min(best[who], seconds)
    return best[0], best[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=2, help="first samples per op")
    parser.add_argument("--dtypes", default="float64,float32")
    parser.add_argument("--limit", type=float, default=20.0, help="seconds per check")
    parser.add_argument("--ops", default=None, help="regex on op names")
    parser.add_argument("--json", default=None, help="write every pair's row here")
    parser.add_argument("--warm", action="store_true",
                        help="run each op once (forward and backward) before timing its pair")
    parser.add_argument("--repeat", type=int, default=1,
                        help="calls per checker for the steady-state minimum (pairs under "
                             f"{REPEAT_UNDER:g} s)")
    parser.add_argument(
        "--every-entry",
        action="store_true",
        help="both checkers judge every entry: torch without fast mode, ours coords='all'",
    )
    parser.add_argument("--summarize", nargs="+", default=None, help="only summarize JSON files")
    args = parser.parse_args()
    if args.summarize:
        rows = []
        for name in args.summarize:
            with open(name) as f:
                rows += json.load(f)
        print(summary(rows))
        return
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    timing = Timing(limit=args.limit, warm=args.warm, repeat=max(1, args.repeat),
                    every_entry=args.every_entry)
    rows = run(args.dtypes.split(","), args.samples, args.ops, timing)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    print(summary(rows))


if __name__ == "__main__":
    main()
