"""What the torch adapter adds to one loss call: the adapter's ``loss(params)`` (the closure the
engine calls once per perturbed point) against the user's ``fn`` alone, in microseconds.

Each case is checked once by ``gradcheck.torch.check_function`` with the serial evaluator's
call spied on, which hands back the engine's own evaluator; its ``loss`` is then timed on the
engine's workspace (the minimum over ``--repeat`` rounds of ``--number`` calls), and so is
``fn`` on detached copies of the inputs under ``torch.no_grad``.

    PYTHONPATH=src python benchmarks/loss_call.py [--repeat 7] [--number 20000]
"""

from __future__ import annotations

import argparse
import timeit
import warnings
from collections.abc import Callable
from typing import Any


def cases(torch: Any) -> dict[str, tuple[Callable[..., Any], tuple[Any, ...]]]:
    gen = torch.Generator().manual_seed(0)

    def leaf(*shape: int) -> Any:
        return torch.randn(shape, generator=gen, dtype=torch.float64).requires_grad_()

    return {
        "exp (8,)": (torch.exp, (leaf(8),)),
        "sum (1,)": (lambda x: x.sum(), (leaf(1),)),
        "mul (3,) (3,)": (torch.mul, (leaf(3), leaf(3))),
        "add 0-d 0-d": (torch.add, (leaf(), leaf())),
        "matmul (2, 3) (3,)": (torch.matmul, (leaf(2, 3), leaf(3))),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--number", type=int, default=20000)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    import torch

    import gradcheck.torch as gt
    from gradcheck.core import _evaluate

    torch.set_num_threads(1)
    seen: list[Any] = []
    call = _evaluate.SerialEvaluator._call

    def spied(self: Any, *a: Any, **k: Any) -> Any:
        seen.append(self)
        return call(self, *a, **k)

    def fastest(f: Callable[[], Any]) -> float:
        return min(timeit.repeat(f, number=args.number, repeat=args.repeat)) / args.number * 1e6

    print("| case | adapter's loss call (µs) | fn alone (µs) | the adapter's own (µs) |")
    print("|---|---|---|---|")
    for name, (fn, inputs) in cases(torch).items():
        seen.clear()
        _evaluate.SerialEvaluator._call = spied  # type: ignore[method-assign]
        try:
            gt.check_function(fn, *inputs)
        finally:
            _evaluate.SerialEvaluator._call = call  # type: ignore[method-assign]
        ev = seen[-1]
        loss = fastest(lambda ev=ev: ev.loss(ev.ws.struct))
        plain = [x.detach().clone() for x in inputs]
        with torch.no_grad():
            alone = fastest(lambda fn=fn, plain=plain: fn(*plain))
        print(f"| {name} | {loss:.1f} | {alone:.1f} | {loss - alone:.1f} |")


if __name__ == "__main__":
    main()
