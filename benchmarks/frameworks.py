"""gradcheck vs torch.autograd.gradcheck (slow and fast mode) vs jax.test_util.check_grads.

The same planted bugs and correct cases go through each tool; for each we record whether the
verdict is right (bug caught / correct code passed), what the failure names (input, entry),
and the wall time (median of ``--repeat`` runs, after one warm-up run).

    .venv/bin/python benchmarks/frameworks.py [--repeat 3] [--markdown]
"""

from __future__ import annotations

import argparse
import re
import statistics
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

import gradcheck.jax as gj
import gradcheck.torch as gt

# --- torch cases: custom Functions with planted bugs, and correct modules --------------------


def _function(forward: Callable, backward: Callable) -> Callable:
    class F(torch.autograd.Function):
        @staticmethod
        def forward(ctx, *xs):
            ctx.save_for_backward(*xs)
            return forward(*xs)

        @staticmethod
        def backward(ctx, *gs):
            return backward(*ctx.saved_tensors, *gs)

    return F.apply


TORCH_FUNCTIONS: dict[str, tuple[Callable, int | None, int]] = {
    # name: (fn, index of the input whose gradient is wrong (None: correct), number of inputs)
    "mul: missing term for input1": (
        _function(lambda a, b: a * b, lambda a, b, g: (g * b, torch.zeros_like(b))),
        1,
        2,
    ),
    "exp: wrong sign": (_function(torch.exp, lambda x, g: -g * x.exp()), 0, 1),
    "sin: ignores grad_output": (_function(torch.sin, lambda x, g: x.cos()), 0, 1),
    "tanh: 0.1% too large": (
        _function(torch.tanh, lambda x, g: 1.001 * g * (1 - x.tanh() ** 2)),
        0,
        1,
    ),
    "mul: correct": (_function(lambda a, b: a * b, lambda a, b, g: (g * b, g * a)), None, 2),
}


def _modules() -> dict[str, tuple[torch.nn.Module, tuple[torch.Tensor, ...]]]:
    torch.manual_seed(0)
    return {
        "Linear(8, 4)": (torch.nn.Linear(8, 4), (torch.randn(16, 8),)),
        "Conv2d(2, 4, 3)": (torch.nn.Conv2d(2, 4, 3), (torch.randn(2, 2, 6, 6),)),
        "LayerNorm(8)": (torch.nn.LayerNorm(8), (torch.randn(4, 8),)),
        "Linear(64, 32), batch 16": (torch.nn.Linear(64, 32), (torch.randn(16, 64),)),
        "MultiheadAttention(8, 2)": (
            torch.nn.MultiheadAttention(8, 2, batch_first=True),
            (torch.randn(2, 3, 8),) * 3,
        ),
    }


def _timed(run: Callable[[], Any], repeat: int) -> tuple[Any, float]:
    run()
    times, out = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        out = run()
        times.append(time.perf_counter() - start)
    return out, statistics.median(times)


def _ours(report) -> tuple[bool, str]:
    if report.passed:
        return True, "-"
    where = []
    for name in report.suspects:
        c = report.components[name]
        index = ", ".join(str(i) for i in c.worst_index)
        where.append(f"{name}[{index}]")
    return False, "; ".join(where)


def _torch_tool(fn: Callable, inputs: tuple, fast: bool) -> tuple[bool, str]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ok = torch.autograd.gradcheck(fn, inputs, fast_mode=fast, raise_exception=True)
        return bool(ok), "-"
    except Exception as error:  # GradcheckError: names output and input, dumps both Jacobians
        found = re.search(r"output (\d+) with respect to input (\d+)", str(error))
        where = f"output {found[1]} / input {found[2]}" if found else "none"
        return False, f"{where}, {len(str(error).splitlines())}-line message"


def _function_inputs(n: int, dtype: torch.dtype) -> tuple[torch.Tensor, ...]:
    gen = torch.Generator().manual_seed(0)
    return tuple(torch.randn(4, 5, generator=gen, dtype=dtype).requires_grad_() for _ in range(n))


def torch_rows(repeat: int) -> list[dict[str, Any]]:
    rows = []
    for case, (fn, culprit, n) in TORCH_FUNCTIONS.items():
        for dtype in (torch.float32, torch.float64):
            inputs = _function_inputs(n, dtype)
            tools = {
                "gradcheck": lambda fn=fn, inputs=inputs: _ours(gt.check_function(fn, *inputs)),
                "torch slow": lambda fn=fn, inputs=inputs: _torch_tool(fn, inputs, False),
                "torch fast": lambda fn=fn, inputs=inputs: _torch_tool(fn, inputs, True),
            }
            rows += _rows(case, str(dtype)[6:], culprit, tools, repeat)
    for case, (module, inputs) in _modules().items():
        for dtype in (torch.float32, torch.float64):
            m = module.to(dtype)
            xs = tuple(x.to(dtype) for x in inputs)
            names = [n for n, _ in m.named_parameters()]
            params = tuple(p.detach().clone().requires_grad_() for p in m.parameters())

            def as_fn(*ps, m=m, xs=xs, names=names):
                out = torch.func.functional_call(m, dict(zip(names, ps, strict=True)), xs)
                return out[0] if isinstance(out, tuple) else out

            tools = {
                "gradcheck": lambda m=m, xs=xs: _ours(gt.check_module(m, *xs)),
                "torch slow": lambda f=as_fn, p=params: _torch_tool(f, p, False),
                "torch fast": lambda f=as_fn, p=params: _torch_tool(f, p, True),
            }
            rows += _rows(case, str(dtype)[6:], None, tools, repeat)
    return rows


# --- JAX cases: custom_vjp with the same planted bugs ----------------------------------------


def jax_rows(repeat: int) -> list[dict[str, Any]]:
    import jax
    import jax.numpy as jnp
    from jax.test_util import check_grads

    def vjp_function(forward, backward):
        f = jax.custom_vjp(forward)
        f.defvjp(lambda *xs: (forward(*xs), xs), lambda xs, g: backward(*xs, g))
        return f

    cases = {
        "mul: missing term for input1": (
            vjp_function(lambda a, b: a * b, lambda a, b, g: (g * b, jnp.zeros_like(b))),
            1,
            2,
        ),
        "exp: wrong sign": (vjp_function(jnp.exp, lambda x, g: (-g * jnp.exp(x),)), 0, 1),
        "sin: ignores grad_output": (vjp_function(jnp.sin, lambda x, g: (jnp.cos(x),)), 0, 1),
        "tanh: 0.1% too large": (
            vjp_function(jnp.tanh, lambda x, g: (1.001 * g * (1 - jnp.tanh(x) ** 2),)),
            0,
            1,
        ),
        "mul: correct": (
            vjp_function(lambda a, b: a * b, lambda a, b, g: (g * b, g * a)),
            None,
            2,
        ),
    }

    def theirs(f, args) -> tuple[bool, str]:
        try:
            check_grads(f, args, order=1, modes=("rev",))
            return True, "-"
        except AssertionError as error:
            return False, f"none, {len(str(error).splitlines())}-line message"

    rows = []
    rng = np.random.default_rng(0)
    for case, (f, culprit, n) in cases.items():
        args = tuple(rng.standard_normal((4, 5)).astype(np.float32) for _ in range(n))
        argnums = tuple(range(n))
        tools = {
            "gradcheck": lambda f=f, a=args, k=argnums: _ours(gj.check(f, *a, argnums=k)),
            "jax check_grads": lambda f=f, a=args: theirs(f, tuple(jnp.asarray(x) for x in a)),
        }
        rows += _rows(case, "float32", culprit, tools, repeat)
    return rows


_NAMED = (r"\binput ?{i}\b", r"\barg{i}\b")  # how each tool names input i in its failure


def _verdict(passed: bool, where: str, culprit: int | None) -> str:
    if culprit is None:
        return "pass" if passed else "FALSE ALARM"
    if passed:
        return "MISSED"
    if any(re.search(p.format(i=culprit), where) for p in _NAMED):
        return "caught, right input"
    return (
        "caught, WRONG input named" if re.search(r"input ?\d", where) else "caught, no input named"
    )


def _rows(case: str, dtype: str, culprit: int | None, tools: dict, repeat: int) -> list[dict]:
    out = []
    for tool, run in tools.items():
        (passed, where), seconds = _timed(run, repeat)
        verdict = _verdict(passed, where, culprit)
        out.append(
            {
                "case": case,
                "dtype": dtype,
                "tool": tool,
                "verdict": verdict,
                "where": where,
                "ms": 1e3 * seconds,
            }
        )
    return out


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| case | dtype | tool | verdict | what the failure names | ms |",
        "|---|---|---|---|---|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['case']} | {r['dtype']} | {r['tool']} | {r['verdict']} | {r['where']} | {r['ms']:.1f} |"
        )
    return "\n".join(lines)


def summary(rows: list[dict[str, Any]]) -> str:
    tools = sorted({r["tool"] for r in rows}, key=[r["tool"] for r in rows].index)
    lines = [
        "| tool | right verdict and input | missed bugs | false alarms | total ms |",
        "|---|---:|---:|---:|---:|",
    ]
    for tool in tools:
        mine = [r for r in rows if r["tool"] == tool]
        right = sum(r["verdict"] in ("caught, right input", "pass") for r in mine)
        missed = sum(r["verdict"] == "MISSED" for r in mine)
        alarms = sum(r["verdict"] == "FALSE ALARM" for r in mine)
        total = sum(r["ms"] for r in mine)
        lines.append(f"| {tool} | {right}/{len(mine)} | {missed} | {alarms} | {total:.0f} |")
    return "\n".join(lines)


def vmap_rows(repeat: int) -> str:
    """gradcheck's own speed path: torch.func.vmap batches against the loop fallback."""
    lines = ["| module | dtype | vmap (ms) | loop (ms) | loop / vmap |", "|---|---|---:|---:|---:|"]
    for case, (module, inputs) in _modules().items():
        for dtype in (torch.float32, torch.float64):
            m, xs = module.to(dtype), tuple(x.to(dtype) for x in inputs)
            ms = {
                how: 1e3
                * _timed(lambda h=how, m=m, xs=xs: gt.check_module(m, *xs, vectorize=h), repeat)[1]
                for how in ("auto", "loop")
            }
            ratio = ms["loop"] / ms["auto"]
            lines.append(
                f"| {case} | {str(dtype)[6:]} | {ms['auto']:.1f} | {ms['loop']:.1f} | {ratio:.2f}x |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-jax", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    sections = {"PyTorch": torch_rows(args.repeat)}
    if not args.no_jax:
        sections["JAX"] = jax_rows(args.repeat)
    for title, rows in sections.items():
        print(f"### {title}\n\n{summary(rows)}\n\n{markdown(rows)}\n")
    print(f"### Batched (torch.func.vmap) vs loop\n\n{vmap_rows(args.repeat)}")


if __name__ == "__main__":
    main()
