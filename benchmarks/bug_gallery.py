"""Bug gallery benchmark: gradcheck vs the textbook recipe, scipy's check_grad and torch's gradcheck.

Run:  .venv/bin/python benchmarks/bug_gallery.py [--seeds 5] [--heldout]

Every tool sees the same cases from ``tests/bugs`` (the gallery redrawn with ``--seeds`` seeds):
planted bugs (truth: the faulty parameters and the kind) and correct traps. Per tool it prints
detection by severity (the textbook relative error of the bug against the exact backprop),
false alarms on the traps, exact localization (suspects == faulty), diagnosis-kind accuracy
(bugs with a simple kind), whether the stochastic loss is refused, and the total time.

The peers, localized parameter by parameter (each run on one parameter, the others fixed):
  textbook  central difference, ε = 1e-7 on float64 copies; a bug when the global relative
            error ‖n − g‖/(‖n‖ + ‖g‖) > 1e-7; a suspect when its own relative error > 1e-7.
  scipy     scipy.optimize.check_grad (forward difference, ε = 1.49e-8); a suspect when
            ‖n − g‖₂ > 1e-4·‖g‖₂ + 1e-8 (our choice of threshold).
  torch     torch.autograd.gradcheck with its defaults (eps 1e-6, atol 1e-5, rtol 1e-3) on
            float64 copies, through a custom autograd.Function whose backward returns the
            analytic gradients; a suspect when its gradcheck fails.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from bugs import Case, bugs, heldout, stochastic, traps  # noqa: E402

import gradcheck  # noqa: E402

Params = dict[str, np.ndarray]
BINS = ((1e-1, "≥ 1e-1"), (1e-2, "1e-2 – 1e-1"), (1e-4, "1e-4 – 1e-2"), (0.0, "< 1e-4"))


def _one_param(case: Case, name: str) -> Callable[[np.ndarray], float]:
    shape, dtype = case.params[name].shape, case.params[name].dtype

    def f(x: np.ndarray) -> float:
        return float(case.loss({**case.params, name: np.asarray(x).reshape(shape).astype(dtype)}))

    return f


# --- the tools: each returns (suspects, kinds by parameter) -----------------------------------


def run_gradcheck(case: Case) -> tuple[set[str], dict[str, str]]:
    r = gradcheck.check(case.loss, case.params, case.grads, batch_size=case.batch_size)
    return set(r.suspects), {f.param: f.kind for f in r.findings}


def _textbook_numeric(case: Case, name: str, eps: float = 1e-7) -> np.ndarray:
    f, x = _one_param(case, name), case.params[name].astype(np.float64).ravel()
    out = np.empty_like(x)
    for i in range(x.size):
        plus, minus = x.copy(), x.copy()
        plus[i] += eps
        minus[i] -= eps
        out[i] = (f(plus) - f(minus)) / (2 * eps)
    return out


def run_textbook(case: Case) -> tuple[set[str], dict[str, str]]:
    numeric = {k: _textbook_numeric(case, k) for k in case.params}
    analytic = {k: case.grads[k].astype(np.float64).ravel() for k in case.params}
    total = gradcheck.relative_error(
        np.concatenate(list(numeric.values())), np.concatenate(list(analytic.values()))
    )
    if total <= 1e-7:
        return set(), {}
    return {k for k in case.params if gradcheck.relative_error(numeric[k], analytic[k]) > 1e-7}, {}


def run_scipy(case: Case) -> tuple[set[str], dict[str, str]]:
    from scipy.optimize import check_grad

    suspects = set()
    for name in case.params:
        g = case.grads[name].astype(np.float64).ravel()
        x0 = case.params[name].astype(np.float64).ravel()
        err = check_grad(_one_param(case, name), lambda x, g=g: g, x0)
        if err > 1e-4 * np.linalg.norm(g) + 1e-8:
            suspects.add(name)
    return suspects, {}


def _torch_loss(f: Callable[[np.ndarray], float], g: np.ndarray) -> Callable:
    """A torch function computing f in numpy, whose backward returns the analytic gradient g."""
    import torch

    grad = torch.from_numpy(g.astype(np.float64))

    class Loss(torch.autograd.Function):
        @staticmethod
        def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
            return torch.tensor(f(x.detach().numpy()), dtype=torch.float64)

        @staticmethod
        def backward(ctx: Any, grad_output: torch.Tensor) -> torch.Tensor:
            return grad_output * grad

    return Loss.apply


def run_torch(case: Case) -> tuple[set[str], dict[str, str]]:
    import torch

    suspects = set()
    for name in case.params:
        fn = _torch_loss(_one_param(case, name), case.grads[name])
        x = torch.from_numpy(case.params[name].astype(np.float64).copy()).requires_grad_(True)
        if not torch.autograd.gradcheck(fn, (x,), raise_exception=False):
            suspects.add(name)
    return suspects, {}


TOOLS: dict[str, Callable[[Case], tuple[set[str], dict[str, str]]]] = {
    "gradcheck": run_gradcheck,
    "textbook (ε=1e-7, 1e-7)": run_textbook,
    "scipy check_grad": run_scipy,
    "torch.autograd.gradcheck": run_torch,
}


def refuses_stochastic(tool: Callable) -> bool:
    loss, params, grads = stochastic()
    case = Case("stochastic", "stochastic", loss, params, grads, grads)
    try:
        tool(case)
    except gradcheck.StochasticLossError:
        return True
    return False


def evaluate(tool: Callable, bug_cases: list[Case], trap_cases: list[Case]) -> dict[str, Any]:
    start = time.perf_counter()
    by_bin = {label: [0, 0] for _, label in BINS}
    located = kinds_right = kinds_total = 0
    misses, mislocated, wrong_kinds = [], [], []
    for case in bug_cases:
        suspects, kinds = tool(case)
        label = next(lab for lo, lab in BINS if case.severity >= lo)
        by_bin[label][1] += 1
        by_bin[label][0] += bool(suspects)
        if not suspects:
            misses.append(case.name)
        if suspects == case.faulty:
            located += 1
        elif suspects:
            mislocated.append(case.name)
        if case.kind is not None:
            kinds_total += 1
            right = all(kinds.get(p) == case.kind for p in case.faulty)
            kinds_right += right
            if not right:
                wrong_kinds.append(case.name)
    alarms = [c.name for c in trap_cases if tool(c)[0]]
    return {
        "detected": sum(v[0] for v in by_bin.values()),
        "by_bin": by_bin,
        "alarms": alarms,
        "located": located,
        "kinds": (kinds_right, kinds_total),
        "misses": misses,
        "mislocated": mislocated,
        "wrong_kinds": wrong_kinds,
        "seconds": time.perf_counter() - start,
        "stochastic": refuses_stochastic(tool),
    }


def table(results: dict[str, dict[str, Any]], n_bugs: int, n_traps: int) -> str:
    pct = lambda a, b: f"{100 * a / b:.1f}%" if b else "n/a"  # noqa: E731
    any_result = next(iter(results.values()))
    bins = [lab for _, lab in BINS if any_result["by_bin"][lab][1]]
    head = ["tool", "detected"] + [f"detected, severity {b}" for b in bins] + [
        "false alarms", "exact localization", "kind right", "stochastic refused", "time (s)",
        "time vs torch",
    ]
    torch_s = results.get("torch.autograd.gradcheck", {}).get("seconds", float("nan"))
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, r in results.items():
        right, total = r["kinds"]
        cells = [name, f"{pct(r['detected'], n_bugs)} ({r['detected']}/{n_bugs})"]
        cells += [f"{pct(*r['by_bin'][b])} ({r['by_bin'][b][0]}/{r['by_bin'][b][1]})" for b in bins]
        cells += [
            f"{pct(len(r['alarms']), n_traps)} ({len(r['alarms'])}/{n_traps})",
            f"{pct(r['located'], n_bugs)} ({r['located']}/{n_bugs})",
            f"{pct(right, total)} ({right}/{total})" if name == "gradcheck" else "n/a (no diagnosis)",
            "yes" if r["stochastic"] else "no",
            f"{r['seconds']:.1f}",
            f"{r['seconds'] / torch_s:.2f}x",
        ]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=5, help="redraws of the gallery (default 5)")
    parser.add_argument("--tools", nargs="*", default=list(TOOLS), choices=list(TOOLS))
    parser.add_argument(
        "--heldout", action="store_true",
        help="the held-out cases (written after the rules were settled) instead of the gallery",
    )
    args = parser.parse_args()
    if args.heldout:
        sets = [heldout(s) for s in range(args.seeds)]
        bug_cases = [c for b, _ in sets for c in b]
        trap_cases = [c for _, t in sets for c in t]
    else:
        bug_cases = [c for s in range(args.seeds) for c in bugs(s)]
        trap_cases = [c for s in range(args.seeds) for c in traps(s)]
    which = "held-out set" if args.heldout else "gallery"
    print(f"{which}: {len(bug_cases)} bugs, {len(trap_cases)} traps ({args.seeds} seeds)\n")
    results = {name: evaluate(TOOLS[name], bug_cases, trap_cases) for name in args.tools}
    print(table(results, len(bug_cases), len(trap_cases)))
    for name, r in results.items():
        if name == "gradcheck":
            print(f"\ngradcheck: kind wrong on {sorted(set(r['wrong_kinds']))}")
        print(f"\n{name}: missed {sorted(set(r['misses']))}")
        print(f"{name}: mislocated {sorted(set(r['mislocated']))}")
        print(f"{name}: false alarms on {sorted(set(r['alarms']))}")


if __name__ == "__main__":
    main()
