"""OpInfo pairs one at a time: ours and ``torch.autograd.gradcheck`` alternating in one process,
the minimum of each over ``--repeat`` calls (after one warm-up call each).

    PYTHONPATH=src:. python benchmarks/small_pairs.py add,mul,fmax [--repeat 15]

Run it on two source trees one after the other (``PYTHONPATH=<tree>/src:.``), twice, and take
the minimum over both: on a loaded machine the minimum is the least disturbed call.
"""

from __future__ import annotations

import argparse
import time
import warnings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("ops", help="OpInfo names (op.variant), comma-separated")
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    import torch
    from torch.testing._internal.common_methods_invocations import op_db

    import gradcheck.torch as gt
    from benchmarks.opinfo import _gradcheck_fn, _tensors_requiring_grad

    torch.set_num_threads(1)
    by_name = {f"{op.name}.{op.variant_test_name}".rstrip("."): op for op in op_db}
    for name in args.ops.split(","):
        op = by_name[name]
        torch.manual_seed(0)
        sample = next(iter(op.sample_inputs("cpu", torch.float64, requires_grad=True)))
        inputs, fn = _tensors_requiring_grad(sample), _gradcheck_fn(op, sample)

        def ours(fn=fn, inputs=inputs):  # noqa: ANN001, ANN202
            return gt.check_function(fn, *inputs)

        def theirs(fn=fn, inputs=inputs, op=op):  # noqa: ANN001, ANN202
            return torch.autograd.gradcheck(fn, inputs, raise_exception=False, atol=1e-5,
                                            rtol=1e-3, eps=1e-6,
                                            nondet_tol=op.gradcheck_nondet_tol)

        report = ours()
        theirs()
        times: dict[str, list[float]] = {"ours": [], "torch": []}
        for _ in range(args.repeat):
            for who, call in (("ours", ours), ("torch", theirs)):
                start = time.perf_counter()
                call()
                times[who].append(time.perf_counter() - start)
        o, t = min(times["ours"]), min(times["torch"])
        shapes = [tuple(x.shape) for x in inputs]
        print(f"{name}: ours {1e3 * o:.2f} ms, torch {1e3 * t:.2f} ms, ratio {o / t:.2f}x, "
              f"{report.evaluations} loss calls, inputs {shapes}")


if __name__ == "__main__":
    main()
