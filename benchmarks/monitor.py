"""The training monitor: its overhead, the late bugs it catches, and its false alarms.

Run: OMP_NUM_THREADS=1 .venv/bin/python benchmarks/monitor.py [--steps 3000] [--repeat 3]
     [--seeds 3] [--clean-runs 20] [--clean-steps 600] [--only overhead|detect|clean]

* Overhead: the reference network (``gradcheck.nn.Net`` 64-32-10 tanh on the digits, Adam,
  batch 32, through ``Net.fit(monitor=...)``), a PyTorch MLP (64-128-64-10 ReLU) and a small
  PyTorch CNN (two 3×3 convolutions on the 8×8 digits), float32, Adam, batch 64, each trained
  ``--steps`` steps with and without ``Monitor()`` (defaults: 1%), alternately, ``--repeat``
  times; the ratio is median with / median without, side by side in one process.
* Detection (``Monitor(overhead=0.01)``, real clock): bugs that switch on late. "after step s":
  the NumPy net's dW2 doubled from step 1,000 (a second code path); "activation > 3": a custom
  softplus whose backward returns 0.5 where its input exceeds 3 (a wrong fast path), in the
  PyTorch MLP; "sequence > 32": a custom cumulative sum through time whose backward keeps only a
  32-step window, in a small recurrent model trained on a curriculum of growing lengths (8 + step
  // 40). For each: the first step at which the gradient is wrong (measured by the harness) and
  the step at which the monitor raised.
* False alarms: ``--clean-runs`` clean runs of each model (seeds 0, 1, ...), ``--clean-steps``
  steps each, at ``Monitor(overhead=0.05)`` (5x more checks than the default).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

import gradcheck
import gradcheck.torch
from gradcheck import GradientMismatchError, Monitor
from gradcheck.nn import Net, load_digits, make_optimizer

DATA = load_digits()
X, Y = DATA.X_train, DATA.y_train
XT, YT = torch.tensor(X, dtype=torch.float32), torch.tensor(Y)


# ---- the models ----------------------------------------------------------------------------

def torch_mlp(seed: int, act: Callable | None = None) -> torch.nn.Module:
    torch.manual_seed(seed)
    act = act or torch.nn.ReLU
    return torch.nn.Sequential(torch.nn.Linear(64, 128), act(), torch.nn.Linear(128, 64), act(),
                               torch.nn.Linear(64, 10))


class Image(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(-1, 1, 8, 8)


def torch_cnn(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        Image(), torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(8, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(64, 10))


def ce(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(model(x), y)


def train_torch(model: torch.nn.Module, steps: int, monitor: Monitor | None, seed: int,
                loss_fn: Callable = ce, batches: Callable | None = None,
                probe: Callable[[int], None] | None = None) -> int | None:
    """Adam, batch 64; returns the step the monitor raised at (None: it did not)."""
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for step in range(1, steps + 1):
        batch = batches(step, g) if batches else _digits_batch(g)
        opt.zero_grad()
        loss_fn(model, *batch).backward()
        if probe:
            probe(step)
        if monitor is not None:
            try:
                gradcheck.torch.monitor_step(monitor, model, loss_fn, batch)
            except GradientMismatchError:
                return step
        opt.step()
    return None


def _digits_batch(g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    rows = torch.randint(0, len(XT), (64,), generator=g)
    return XT[rows], YT[rows]


def fit_net(steps: int, monitor: Monitor | None, seed: int) -> None:
    net = Net((64, 32, 10), activation="tanh", seed=seed)
    per_epoch = len(X) // 32
    net.fit(X, Y, epochs=max(1, round(steps / per_epoch)), batch_size=32, progress=False,
            monitor=monitor)


# ---- overhead ------------------------------------------------------------------------------

def overhead(steps: int, repeat: int) -> list[tuple[str, float, float, Monitor]]:
    runs: dict[str, Callable[[Monitor | None], None]] = {
        "gradcheck.nn 64-32-10 tanh (Net.fit)": lambda m: fit_net(steps, m, 0),
        "PyTorch MLP 64-128-64-10": lambda m: train_torch(torch_mlp(0), steps, m, 0),
        "PyTorch CNN 2 conv + linear": lambda m: train_torch(torch_cnn(0), steps, m, 0),
    }
    rows = []
    for name, run in runs.items():
        off, on, last = [], [], None
        for _ in range(repeat):
            for monitored in (False, True):
                monitor = Monitor() if monitored else None
                start = time.perf_counter()
                run(monitor)
                (on if monitored else off).append(time.perf_counter() - start)
                last = monitor or last
        rows.append((name, statistics.median(off), statistics.median(on), last))
        print(f"  {name}: {rows[-1][1]:.2f} s -> {rows[-1][2]:.2f} s", flush=True)
    return rows


# ---- detection of late bugs ----------------------------------------------------------------

def bug_after_step(seed: int, steps: int, s: int = 1000) -> tuple[int, int | None]:
    net = Net((64, 32, 10), activation="tanh", seed=seed)
    opt, monitor = make_optimizer("adam", None), Monitor(overhead=0.01, seed=seed)
    rng = np.random.default_rng(seed)
    Xc, Yc = net._data(X, Y)
    for step in range(1, steps + 1):
        rows = rng.integers(0, len(Xc), 32)
        xb, yb = Xc[rows], Yc[rows]
        grads = net.gradients(xb, yb)
        if step >= s:
            grads["W2"] = 2 * grads["W2"]
        try:
            monitor.step(lambda p, xb=xb, yb=yb: net.loss(xb, yb, p), net.params, grads)
        except GradientMismatchError:
            return s, step
        net.params = opt.step(net.params, grads)
    return s, None


class FastSoftplus(torch.autograd.Function):
    """softplus with a wrong "fast path" in its backward above 3 (0.5 instead of sigmoid)."""

    biggest = 0.0

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        if x.requires_grad or torch.is_grad_enabled():
            FastSoftplus.biggest = max(FastSoftplus.biggest, float(x.max()))
        return F.softplus(x)

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        return g * torch.where(x > 3.0, torch.full_like(x, 0.5), torch.sigmoid(x))


class Softplus(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return FastSoftplus.apply(x)


def bug_activation(seed: int, steps: int) -> tuple[int | None, int | None]:
    first: list[int] = []

    def probe(step: int) -> None:  # after backward: did this step's forward exceed 3?
        if FastSoftplus.biggest > 3.0 and not first:
            first.append(step)
        FastSoftplus.biggest = 0.0

    model = torch_mlp(seed, Softplus)
    raised = train_torch(model, steps, Monitor(overhead=0.01, seed=seed), seed, probe=probe)
    return (first[0] if first else None), raised


WINDOW = 32


class WindowedCumsum(torch.autograd.Function):
    """Cumulative sum over time whose backward keeps only the last WINDOW steps."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        return x.cumsum(dim=1)

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> torch.Tensor:
        rev = g.flip(1).cumsum(1).flip(1)  # Σ_{s ≥ t} g_s
        late = torch.zeros_like(rev)
        late[:, : max(rev.shape[1] - WINDOW, 0)] = rev[:, WINDOW:]
        return rev - late  # Σ_{t ≤ s < t + WINDOW} g_s: right only when T ≤ WINDOW


class Recurrent(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.inp, self.out = torch.nn.Linear(4, 16), torch.nn.Linear(16, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.tanh(WindowedCumsum.apply(self.inp(x)) / x.shape[1] ** 0.5)
        return self.out(h.mean(dim=1))


def bug_sequence(seed: int, steps: int) -> tuple[int, int | None]:
    torch.manual_seed(seed)
    model = Recurrent()

    def batches(step: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        length = 8 + step // 40  # the curriculum: longer sequences as training goes on
        x = torch.randn(32, length, 4, generator=g)
        return x, (x[:, :, 0].sum(1) > 0).long()

    raised = train_torch(model, steps, Monitor(overhead=0.01, seed=seed), seed, batches=batches)
    return (WINDOW + 1 - 8) * 40, raised  # the first step with a length above WINDOW


# ---- false alarms --------------------------------------------------------------------------

def clean(runs: int, steps: int) -> list[tuple[str, int, int, int, int]]:
    models: dict[str, Callable[[int, Monitor], None]] = {
        "gradcheck.nn 64-32-10 tanh": lambda s, m: fit_net(steps, m, s),
        "PyTorch MLP 64-128-64-10": lambda s, m: train_torch(torch_mlp(s), steps, m, s),
        "PyTorch CNN 2 conv + linear": lambda s, m: train_torch(torch_cnn(s), steps, m, s),
    }
    rows = []
    for name, run in models.items():
        alarms = checks = cleared = 0
        for seed in range(runs):
            monitor = Monitor(overhead=0.05, on_failure="warn", seed=seed)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", gradcheck.MonitorWarning)
                run(seed, monitor)
            alarms += monitor.report is not None
            checks += monitor.checks
            cleared += sum(c.outcome == "cleared" for c in monitor.log)
        rows.append((name, runs, checks, cleared, alarms))
        print(f"  {name}: {alarms} alarms in {runs} runs ({checks} checks)", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--detect-steps", type=int, default=4000)
    parser.add_argument("--clean-runs", type=int, default=20)
    parser.add_argument("--clean-steps", type=int, default=600)
    parser.add_argument("--only", choices=("overhead", "detect", "clean"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"{platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    if args.only in (None, "overhead"):
        print(f"\nOverhead, {args.steps:,} steps, median of {args.repeat} (with/without "
              "alternating)\n")
        rows = overhead(args.steps, args.repeat)
        print("| model | without | with Monitor() | ratio | checks | checks / 1,000 steps | "
              "monitor's own account |")
        print("|---|---|---|---|---|---|---|")
        for name, off, on, m in rows:
            print(f"| {name} | {off:.2f} s | {on:.2f} s | {on / off:.3f} | {m.checks} | "
                  f"{1000 * m.checks / m.steps:.2f} | {m.budget.ratio:.2%} |")
    if args.only in (None, "detect"):
        print(f"\nDetection at Monitor(overhead=0.01), {args.seeds} seeds, at most "
              f"{args.detect_steps:,} steps\n")
        print("| bug | seed | first wrong step | monitor raised at | delay (steps) |")
        print("|---|---|---|---|---|")
        bugs = {"after step 1,000 (NumPy net, dW2 doubled)": bug_after_step,
                "activation > 3 (PyTorch MLP, custom softplus)": bug_activation,
                "sequence > 32 (PyTorch recurrent, custom cumsum)": bug_sequence}
        for name, bug in bugs.items():
            for seed in range(args.seeds):
                first, raised = bug(seed, args.detect_steps)
                delay = "missed" if raised is None else (
                    "false alarm" if first is None or raised < first else f"{raised - first:,}")
                print(f"| {name} | {seed} | {first if first is not None else 'never'} | "
                      f"{raised if raised is not None else '—'} | {delay} |", flush=True)
    if args.only in (None, "clean"):
        print(f"\nFalse alarms: {args.clean_runs} clean runs of {args.clean_steps} steps per "
              "model, Monitor(overhead=0.05)\n")
        rows_c = clean(args.clean_runs, args.clean_steps)
        print("| model | clean runs | checks | directions failed, cleared by check | "
              "false alarms |")
        print("|---|---|---|---|---|")
        for name, runs, checks, cleared, alarms in rows_c:
            print(f"| {name} | {runs} | {checks} | {cleared} | {alarms} |")


if __name__ == "__main__":
    main()
