"""The training monitor: its overhead, the late bugs it catches, and its false alarms.

Run: OMP_NUM_THREADS=1 .venv/bin/python benchmarks/monitor.py [--steps 3000] [--repeat 2]
     [--seeds 3] [--detect-steps 6000] [--clean-runs 20] [--clean-steps 1000] [--only overhead|detect|clean]

* Overhead: the reference network (``gradcheck.nn.Net`` 64-32-10 tanh on the digits, Adam,
  batch 32: ``Net.fit``'s loop with ``Monitor.step_with``), a PyTorch MLP (64-128-64-10 ReLU)
  and a small PyTorch CNN (two 3×3 convolutions on the 8×8 digits), float32, Adam, batch 64
  (``gradcheck.torch.monitor_step``). Each is trained twice in lockstep, one step of each in
  turn (the order alternating), one copy with ``Monitor()`` (defaults: 1%), so that both see
  the same machine. Steps are timed in CPU time of the training thread (``time.thread_time``;
  torch on one thread), which the other processes of a loaded machine do not inflate; the
  monitor's clock is the same, less the other copy's steps. ``--steps`` steps, ``--repeat``
  times; the ratio is the monitored copy's summed step time over the other's. The monitor's
  code is warmed up once first (one check of a tiny loss: a one-time cost of the process).
* Detection (``Monitor(overhead=0.01)``, real clock): bugs that switch on late. "after step s":
  the NumPy net's dW2 doubled from step 2,000 (a second code path); "activation > 10": a custom
  softplus whose backward returns 0.5 where its input exceeds 10 (a wrong fast path), in the
  PyTorch MLP; "sequence > 32": a custom cumulative sum through time whose backward keeps only a
  32-step window, in a small recurrent model trained on a curriculum of growing lengths (8 + step
  // 80: above 32 from step 2,000). For each: the first step at which the gradient is wrong (measured by the harness) and
  the step at which the monitor raised.
* False alarms: ``--clean-runs`` clean runs of each model (seeds 0, 1, ...), ``--clean-steps``
  steps each, at ``Monitor(overhead=0.05)`` (5x more checks than the default).
"""

from __future__ import annotations

import argparse
import platform
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

CONTROL = "control: PyTorch MLP, no monitor on either copy"


class OwnClock:
    """The training thread's CPU time less the other copy's steps: the monitor's clock in a
    lockstep run, so that it measures its own copy's training only."""

    def __init__(self) -> None:
        self.excluded = 0.0

    def __call__(self) -> float:
        return time.thread_time() - self.excluded


def net_stepper(monitor: Monitor | None) -> Callable[[], None]:
    """One step of the reference net's minibatch training (Net.fit's loop: batch 32, Adam)."""
    net = Net((64, 32, 10), activation="tanh", seed=0)
    opt, rng = make_optimizer("adam", None), np.random.default_rng(0)
    Xc, Yc = net._data(X, Y)

    def step() -> None:
        rows = rng.integers(0, len(Xc), 32)
        xb, yb = Xc[rows], Yc[rows]
        grads = net.gradients(xb, yb)
        if monitor is not None:
            monitor.step_with(lambda: ((lambda p: net.loss(xb, yb, p)), net.params, grads,
                                       {"X": xb, "Y": yb}))
        net.params = opt.step(net.params, grads)

    return step


def torch_stepper(make: Callable[[int], torch.nn.Module]) -> Callable[[Monitor | None], Callable]:
    def stepper(monitor: Monitor | None) -> Callable[[], None]:
        model, g = make(0), torch.Generator().manual_seed(0)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)

        def step() -> None:
            batch = _digits_batch(g)
            opt.zero_grad()
            ce(model, *batch).backward()
            if monitor is not None:
                gradcheck.torch.monitor_step(monitor, model, ce, batch)
            opt.step()

        return step

    return stepper


def overhead(steps: int, repeat: int) -> list[tuple[str, float, float, Monitor]]:
    """Each model trained twice in lockstep, step by step (the order alternating), one copy
    monitored: both see the same load; the ratio is their summed step times."""
    runs = {"gradcheck.nn 64-32-10 tanh": net_stepper,
            "PyTorch MLP 64-128-64-10": torch_stepper(torch_mlp),
            "PyTorch CNN 2 conv + linear": torch_stepper(torch_cnn),
            CONTROL: torch_stepper(torch_mlp)}
    warm = Monitor(overhead=1.0, clock=iter(range(10**6)).__next__)
    for _ in range(40):  # the first check of a process pays for first-time code paths
        warm.step(lambda p: float(np.sum(p**2)), np.ones(3), 2 * np.ones(3))
    rows = []
    for name, stepper in runs.items():
        off_total = on_total = 0.0
        for _ in range(repeat):
            clock = OwnClock()
            monitor = Monitor(clock=clock)
            off, on = stepper(None), stepper(None if name == CONTROL else monitor)
            off(), on()  # warm-up, outside the account
            for k in range(steps):
                for monitored in ((False, True) if k % 2 else (True, False)):
                    start = time.thread_time()
                    (on if monitored else off)()
                    took = time.thread_time() - start
                    if monitored:
                        on_total += took
                    else:
                        off_total += took
                        clock.excluded += took
        rows.append((name, off_total, on_total, monitor))
        print(f"  {name}: {off_total:.2f} s -> {on_total:.2f} s", flush=True)
    return rows


# ---- detection of late bugs ----------------------------------------------------------------

def bug_after_step(seed: int, steps: int, s: int = 2000) -> tuple[int, int | None]:
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


THRESHOLD = 10.0


class FastSoftplus(torch.autograd.Function):
    """softplus with a wrong "fast path" in its backward above 10 (0.5 instead of sigmoid)."""

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
        return g * torch.where(x > THRESHOLD, torch.full_like(x, 0.5), torch.sigmoid(x))


class Softplus(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return FastSoftplus.apply(x)


def bug_activation(seed: int, steps: int) -> tuple[int | None, int | None]:
    first: list[int] = []

    def probe(step: int) -> None:  # after backward: did this step's forward exceed it?
        if FastSoftplus.biggest > THRESHOLD and not first:
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
        length = 8 + step // 80  # the curriculum: longer sequences as training goes on
        x = torch.randn(32, length, 4, generator=g)
        return x, (x[:, :, 0].sum(1) > 0).long()

    raised = train_torch(model, steps, Monitor(overhead=0.01, seed=seed), seed, batches=batches)
    return (WINDOW + 1 - 8) * 80, raised  # the first step with a length above WINDOW


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
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--detect-steps", type=int, default=6000)
    parser.add_argument("--clean-runs", type=int, default=20)
    parser.add_argument("--clean-steps", type=int, default=1000)
    parser.add_argument("--only", choices=("overhead", "detect", "clean"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"{platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    if args.only in (None, "overhead"):
        print(f"\nOverhead, {args.steps:,} steps in lockstep, {args.repeat} time(s)\n")
        rows = overhead(args.steps, args.repeat)
        print("| model | without | with Monitor() | ratio | checks | checks / 1,000 steps | "
              "monitor's own account |")
        print("|---|---|---|---|---|---|---|")
        for name, off, on, m in rows:
            if name == CONTROL:
                print(f"| {name} | {off:.2f} s | {on:.2f} s | {on / off:.3f} | — | — | — |")
                continue
            print(f"| {name} | {off:.2f} s | {on:.2f} s | {on / off:.3f} | {m.checks} | "
                  f"{1000 * m.checks / m.steps:.2f} | {m.budget.ratio:.2%} |")
        print("\n(checks and the monitor's own account: the last repeat)")
    if args.only in (None, "detect"):
        print(f"\nDetection at Monitor(overhead=0.01), {args.seeds} seeds, at most "
              f"{args.detect_steps:,} steps\n")
        print("| bug | seed | first wrong step | monitor raised at | delay (steps) |")
        print("|---|---|---|---|---|")
        bugs = {"after step 2,000 (NumPy net, dW2 doubled)": bug_after_step,
                "activation > 10 (PyTorch MLP, custom softplus)": bug_activation,
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
