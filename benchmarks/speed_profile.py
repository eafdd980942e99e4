"""Where the time of a small check goes: a per-stage timer over OpInfo pairs and JAX functions.

Each stage function of the engine and the adapters is wrapped by a timer (exclusive of the
stages nested in it) for the duration of the run; nothing in the package changes. The loss
calls are timed apart ("loss calls": the adapter's J, plain or batched, what any checker pays),
so every other row is our fixed cost. ``--profile`` prints cProfile's top functions too.

    PYTHONPATH=src .venv/bin/python benchmarks/speed_profile.py [--torch 30] [--jax 10]
        [--ops NAME,...] [--profile] [--xla]

``--xla`` counts XLA compilations per JAX check (``jax.monitoring`` duration events of
backend compiles).
"""

from __future__ import annotations

import argparse
import cProfile
import importlib
import pstats
import statistics
import time
import warnings
from collections import defaultdict
from collections.abc import Callable
from typing import Any

# Stage functions, by module and attribute: wrapped where they are looked up (the importing
# module's name), so that the engine calls the timed version.
STAGES: list[tuple[str, str, str]] = [
    ("loss calls", "gradcheck.core._evaluate", "SerialEvaluator._call"),
    ("loss calls", "gradcheck.core._evaluate", "BatchedEvaluator._batch"),
    ("loss calls", "gradcheck.core.verdict._ties", "_J.at"),
    ("loss calls", "gradcheck.core.verdict._kinks", "_Counted.at"),
    ("plan + evaluator", "gradcheck.core.verdict._run", "open_check"),
    ("inputs (validate)", "gradcheck.core.verdict._run", "inputs"),
    ("J(θ) twice", "gradcheck.core.verdict._probe", "base_value"),
    ("noise probe", "gradcheck.core.verdict._probe", "measure_noise"),
    ("steps (footing)", "gradcheck.core.verdict._tensor", "footing"),
    ("directional test", "gradcheck.core.verdict._tensor", "locate"),
    ("first pass", "gradcheck.core.verdict._tensor", "first_pass"),
    ("second opinion", "gradcheck.core.verdict._tensor", "second_opinion"),
    ("stairs (float32 cells)", "gradcheck.core.verdict._tensor", "across_stairs"),
    ("flat stage", "gradcheck.core.verdict._tensor", "flat_stage"),
    ("own scale", "gradcheck.core.verdict._tensor", "own_scale"),
    ("J(θ) again + far look", "gradcheck.core.verdict._run", "same_again"),
    ("J(θ) again + far look", "gradcheck.core.verdict._run", "far_look"),
    ("ties screen", "gradcheck.core.verdict._run", "screen_ties"),
    ("assembly + notes", "gradcheck.core.verdict._run", "assemble"),
    ("assembly + notes", "gradcheck.core.verdict._run", "engine_records"),
    ("diagnosis", "gradcheck.checks._check", "diagnose"),
    ("diagnosis", "gradcheck.checks._check", "finish"),
    ("engine run (rest)", "gradcheck.checks._check", "run"),
    ("check (rest)", "gradcheck.frameworks._shared", "run_check"),
]

TORCH_OPS = [  # 30 OpInfo ops of different kinds (first sample, float64)
    "abs", "acos", "add", "addmm", "amax", "angle", "atan2", "cat", "clamp", "cumsum",
    "diag", "div.no_rounding_mode", "exp", "floor", "gather", "index_select", "linalg.det", "linalg.inv",
    "log_softmax", "matmul", "max.reduction_with_dim", "mean", "mul", "nn.functional.relu",
    "norm", "pow", "round", "sigmoid", "sort", "sum",
]
JAX_FUNCS = [
    "jnp.sin", "jnp.log", "jnp.matmul(x, x.T)", "jnp.linalg.inv", "jax.nn.softmax",
    "jax.nn.relu", "jnp.abs", "jnp.max(axis=0)", "jnp.sort", "complex: jnp.exp",
]


class Timers:
    """Exclusive time per stage: a nested stage's time is taken out of its caller's."""

    def __init__(self) -> None:
        self.total: dict[str, float] = defaultdict(float)
        self.stack: list[list[Any]] = []

    def wrap(self, label: str, fn: Callable) -> Callable:
        def timed(*args: Any, **kwargs: Any) -> Any:
            frame = [label, time.perf_counter(), 0.0]
            self.stack.append(frame)
            try:
                return fn(*args, **kwargs)
            finally:
                self.stack.pop()
                spent = time.perf_counter() - frame[1]
                self.total[label] += spent - frame[2]
                if self.stack:
                    self.stack[-1][2] += spent

        timed.__wrapped__ = fn  # type: ignore[attr-defined]
        return timed

    def install(self) -> None:
        for label, module, attr in STAGES:
            mod = importlib.import_module(module)
            owner, _, name = attr.rpartition(".")
            target = getattr(mod, owner) if owner else mod
            setattr(target, name, self.wrap(label, getattr(target, name)))


def torch_pairs(n: int, names: list[str] | None = None
                ) -> list[tuple[str, Callable[[], Any], Callable[[], Any]]]:
    import torch
    from torch.testing._internal.common_methods_invocations import op_db

    import gradcheck.torch as gt
    from benchmarks.opinfo import _gradcheck_fn, _tensors_requiring_grad

    by_name = {f"{op.name}.{op.variant_test_name}".rstrip("."): op for op in op_db}
    out = []
    for name in names or TORCH_OPS[:n]:
        op = by_name[name]
        torch.manual_seed(0)
        sample = next(iter(op.sample_inputs("cpu", torch.float64, requires_grad=True)))
        inputs, fn = _tensors_requiring_grad(sample), _gradcheck_fn(op, sample)
        ours = lambda fn=fn, inputs=inputs: gt.check_function(fn, *inputs)  # noqa: E731
        theirs = lambda fn=fn, inputs=inputs, op=op: torch.autograd.gradcheck(  # noqa: E731
            fn, inputs, raise_exception=False, nondet_tol=op.gradcheck_nondet_tol,
            atol=1e-5, rtol=1e-3, eps=1e-6)
        out.append((name, ours, theirs))
    return out


def jax_funcs(n: int) -> list[tuple[str, Callable[[], Any], Callable[[], Any]]]:
    import numpy as np
    from jax.test_util import check_grads

    import gradcheck.jax as gj
    from benchmarks.jax_ops import CASES, _input

    out = []
    for name in JAX_FUNCS[:n]:
        fn, kind, make = CASES[name]
        x = _input(kind, make, "float64", np.random.default_rng(0))
        out.append((name, lambda fn=fn, x=x: gj.check(fn, x),
                    lambda fn=fn, x=x: check_grads(fn, (x,), order=1, modes=("rev",))))
    return out


class Compiles:
    """XLA backend compilations, counted from ``jax.monitoring`` duration events."""

    def __init__(self) -> None:
        import jax

        self.count = 0

        def listener(event: str, _duration: float, **_: Any) -> None:
            if event == "/jax/core/compile/backend_compile_duration":
                self.count += 1

        jax.monitoring.register_event_duration_secs_listener(listener)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--torch", type=int, default=30, help="OpInfo pairs (of 30)")
    parser.add_argument("--jax", type=int, default=10, help="jax_ops functions (of 10)")
    parser.add_argument("--ops", default="", help="OpInfo names, comma-separated (else the 30)")
    parser.add_argument("--profile", action="store_true", help="cProfile's top functions")
    parser.add_argument("--xla", action="store_true", help="count XLA compiles per JAX check")
    parser.add_argument("--sort", default="tottime", help="cProfile's sort key")
    parser.add_argument("--top", type=int, default=25, help="cProfile's rows")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    import torch

    torch.set_num_threads(1)
    if args.jax:
        import jax

        jax.config.update("jax_enable_x64", True)
    compiles = Compiles() if args.xla and args.jax else None
    for suite, cases in (("torch", torch_pairs(args.torch, [o for o in args.ops.split(",") if o])), ("jax", jax_funcs(args.jax))):
        if not cases:
            continue
        cold = []
        for _, ours, theirs in cases:  # warm up: imports, first compiles of the peers
            before = compiles.count if compiles else 0
            ours()
            cold.append((compiles.count - before) if compiles else 0)
            theirs()
        timers = Timers()
        timers.install()
        profiler = cProfile.Profile() if args.profile else None
        per_check, theirs_s, xla, stages = [], [], [], []
        for _, ours, theirs in cases:
            seen = dict(timers.total)
            before = compiles.count if compiles else 0
            start = time.perf_counter()
            if profiler:
                profiler.enable()
            ours()
            if profiler:
                profiler.disable()
            per_check.append(time.perf_counter() - start)
            stages.append({k: v - seen.get(k, 0.0) for k, v in timers.total.items()})
            stages[-1]["adapter (rest)"] = per_check[-1] - sum(stages[-1].values())
            xla.append((compiles.count - before) if compiles else 0)
            start = time.perf_counter()
            theirs()
            theirs_s.append(time.perf_counter() - start)
        for _label, module, attr in STAGES:  # unwrap
            mod = importlib.import_module(module)
            owner, _, name = attr.rpartition(".")
            target = getattr(mod, owner) if owner else mod
            setattr(target, name, getattr(target, name).__wrapped__)
        total = sum(per_check)
        outside = total - sum(timers.total.values())
        n = len(cases)
        print(f"\n### {suite}: {n} checks, ours {1e3 * total / n:.1f} ms per check (mean), "
              f"median {1e3 * statistics.median(per_check):.1f} ms; peer median "
              f"{1e3 * statistics.median(theirs_s):.1f} ms\n")
        print("| stage | ms per check (mean) | share | median ms per check |\n|---|---|---|---|")
        rows = sorted(timers.total.items(), key=lambda kv: -kv[1]) + [("adapter (rest)", outside)]
        for label, spent in rows:
            med = statistics.median(s.get(label, 0.0) for s in stages)
            print(f"| {label} | {1e3 * spent / n:.2f} | {100 * spent / total:.0f}% | "
                  f"{1e3 * med:.2f} |")
        print("\n| check | ours ms | peer ms | loss calls ms |\n|---|---|---|---|")
        for (name, _, _), o, t, s in zip(cases, per_check, theirs_s, stages, strict=True):
            print(f"| {name} | {1e3 * o:.1f} | {1e3 * t:.1f} | "
                  f"{1e3 * s.get('loss calls', 0.0):.1f} |")
        if compiles:
            print(f"\nXLA compiles per check: first call median {statistics.median(cold)} "
                  f"(total {sum(cold)}), again median {statistics.median(xla)} (total {sum(xla)})"
                  f" over {n} checks")
        if profiler:
            stats = pstats.Stats(profiler)
            stats.sort_stats(args.sort).print_stats(args.top)


if __name__ == "__main__":
    main()
