"""``gradcheck demo``: the notes' recipe end to end on real data, in six steps.

1. θ³: one-sided vs two-sided differences.  2. Check a fresh net.  3. Train it (≥ 97% on
digits).  4. Check it again.  5. Plant a bug and let the checker find it.  6. Save a figure.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from rich.console import Console

    from gradcheck.nn import Dataset, History, Net
    from gradcheck.report._report import Report

# The demo's network: tanh (so g'(A) ≠ g'(Z) and the default bug is visible), Adam, L2.
ACTIVATION, INIT, L2, LR, BATCH, CHECK_ROWS = "tanh", "xavier", 0.01, 1e-3, 32, 64
# The demo shows the textbook check: every coordinate (its 64-64-10 net is ~9,600 cheap calls),
# not the sampled default that "auto" uses on big models.
COORDS = "all"
EPS_GRID = np.logspace(-13, -1, 37)


@dataclass(frozen=True)
class DemoSettings:
    """What ``gradcheck demo`` runs: the CLI options, with their defaults."""

    data: str | None = None
    epochs: int = 40
    hidden: int = 64
    seed: int = 0
    bug: str = "act-deriv-of-a"
    plot: bool = True
    out: str = "gradcheck-demo.png"


def theta_cubed(theta: float = 1.0, eps: float = 0.01) -> dict[str, float]:
    """The notes' example: d/dθ θ³ at θ = 1 is 3; two-sided error O(ε²), one-sided O(ε).

    >>> r = theta_cubed()
    >>> round(r["two_sided"], 6), round(r["one_sided"], 6)
    (3.0001, 3.0301)
    """
    f = lambda t: t**3  # noqa: E731
    two = (f(theta + eps) - f(theta - eps)) / (2 * eps)
    one = (f(theta + eps) - f(theta)) / eps
    exact = 3 * theta**2
    return {"theta": theta, "eps": eps, "exact": exact, "two_sided": two, "one_sided": one,
            "two_sided_error": abs(two - exact), "one_sided_error": abs(one - exact)}


def error_vs_eps(
    net: Net, X: np.ndarray, Y: np.ndarray, eps: np.ndarray = EPS_GRID, seed: int = 0
) -> dict[str, np.ndarray]:
    """Relative error of one- and two-sided differences of J along a random unit direction d.

    The exact slope is ∇J·d from backprop. Large ε: truncation, O(ε) one-sided and O(ε²)
    two-sided; small ε: rounding, about u·|J|/ε. The net's parameters are not modified.
    """
    rng = np.random.default_rng(seed)
    d = {k: rng.standard_normal(v.shape) for k, v in net.params.items()}
    norm = np.sqrt(sum(float(np.sum(v**2)) for v in d.values()))
    d = {k: v / norm for k, v in d.items()}
    g = net.gradients(X, Y)
    exact = sum(float(np.sum(g[k] * d[k])) for k in d)

    def J(t: float) -> float:
        return net.loss(X, Y, {k: net.params[k] + t * d[k] for k in d})

    j0 = J(0.0)
    one = np.array([(J(e) - j0) / e for e in eps])
    two = np.array([(J(e) - J(-e)) / (2 * e) for e in eps])
    scale = max(abs(exact), 1e-300)
    return {"eps": np.asarray(eps), "one_sided": np.abs(one - exact) / scale,
            "two_sided": np.abs(two - exact) / scale}


def load(settings: DemoSettings) -> Dataset:
    """Digits by default, or MNIST from ``--data``; standardised with the training statistics."""
    from gradcheck.nn import load_digits, load_mnist

    data = load_digits(seed=settings.seed) if settings.data is None else load_mnist(
        settings.data, seed=settings.seed)
    return data.standardized()


def run_demo(
    settings: DemoSettings | None = None, *, console: Console | None = None, quiet: bool = False
) -> dict[str, Any]:
    """Runs the six steps, printing as it goes (unless ``quiet``); returns the JSON summary."""
    from rich.console import Console

    from gradcheck.nn import Net

    s = settings or DemoSettings()
    out = Console(quiet=True) if quiet else (console or _console())
    start = time.perf_counter()
    data = load(s)  # first, so that a bad --data path fails before any output
    _step(out, 1, "θ³ from the notes: one-sided vs two-sided differences")
    cube = theta_cubed()
    out.print(_cube_text(cube))

    sizes = (data.X_train.shape[1], s.hidden, data.n_classes)
    net = Net(sizes, activation=ACTIVATION, init=INIT, l2=L2, seed=s.seed)
    Xc, yc = data.X_train[:CHECK_ROWS], data.y_train[:CHECK_ROWS]
    _step(out, 2, f"check at initialisation: {net!r} on {CHECK_ROWS} rows of {data.name}")
    initial = net.check(Xc, yc, coords=COORDS)
    _show(out, initial)

    _step(out, 3, f"train on {len(data.X_train):,} images, test on {len(data.X_test):,} held out")
    history = net.fit(data.X_train, data.y_train, epochs=s.epochs, batch_size=BATCH, lr=LR,
                      validation=(data.X_test, data.y_test), progress=not quiet, console=out)
    accuracy = net.accuracy(data.X_test, data.y_test)
    out.print(f"test accuracy {accuracy:.2%} after {s.epochs} epochs ({history.seconds:.1f} s)")

    _step(out, 4, "check again after training (gradients can go wrong later in training)")
    final = net.check(Xc, yc, coords=COORDS)
    _show(out, final)

    _step(out, 5, f"plant the bug {s.bug!r} in the trained net and check")
    planted = plant(s, net, Xc, yc)
    _show(out, planted)

    figure = None
    if s.plot:
        _step(out, 6, "figure: training curve and the error-vs-ε curve of the trained net")
        curve = error_vs_eps(net, Xc, yc, seed=s.seed)
        figure = str(save_figure(Path(s.out), history, curve, accuracy))
        out.print(f"saved {figure}")
    summary = _summary(s, cube, initial, final, planted, accuracy, history, figure, start)
    out.rule()
    out.print(_closing(summary))
    return summary


def plant(s: DemoSettings, net: Net, X: np.ndarray, y: np.ndarray) -> Report:
    """Step 5: the check of ``net``'s parameters with the bug ``s.bug`` planted in its backprop."""
    from gradcheck.nn import Net

    buggy = Net(net.sizes, activation=ACTIVATION, init=INIT, l2=L2, seed=s.seed, bug=s.bug)
    buggy.params = {k: v.copy() for k, v in net.params.items()}
    return buggy.check(X, y, coords=COORDS)


def _closing(r: dict[str, Any]) -> str:
    verdict = {True: "PASSED", False: "FAILED"}
    caught = ", ".join(r["planted"]["suspects"]) or "nothing (missed!)"
    return (
        f"done in {r['seconds']:.1f} s: check at init {verdict[r['initial_check']['passed']]}, "
        f"test accuracy {r['test_accuracy']:.2%}, check after training "
        f"{verdict[r['final_check']['passed']]}, planted bug {r['planted']['bug']!r} found in "
        f"{caught}."
    )


def _summary(s: DemoSettings, cube: dict[str, float], initial: Report, final: Report,
             planted: Report, accuracy: float, history: History, figure: str | None,
             start: float) -> dict[str, Any]:
    def brief(r: Report) -> dict[str, Any]:
        return {"passed": r.passed, "relative_error": r.relative_error,
                "textbook_verdict": r.textbook_verdict, "suspects": list(r.suspects),
                "evaluations": r.evaluations, "seconds": r.seconds}

    return {
        "theta_cubed": cube,
        "initial_check": brief(initial),
        "final_check": brief(final),
        "test_accuracy": accuracy,
        "train_seconds": history.seconds,
        "epochs": s.epochs,
        "planted": {"bug": s.bug, **brief(planted), "origin": planted.origin,
                    "findings": [f.to_dict() for f in planted.findings]},
        "seconds": time.perf_counter() - start,
        "figure": figure,
    }


def _console() -> Console:
    from gradcheck.cli._console import console

    return console()


def _step(out: Console, n: int, title: str) -> None:
    out.rule(f"[bold]{n}. {title}", align="left")


def _cube_text(c: dict[str, float]) -> str:
    return (
        f"f(θ) = θ³ at θ = {c['theta']:g}, ε = {c['eps']:g}, exact derivative {c['exact']:g}\n"
        f"  two-sided (f(θ+ε) − f(θ−ε)) / 2ε = {c['two_sided']:.6f}   error "
        f"{c['two_sided_error']:.1e}  (O(ε²))\n"
        f"  one-sided (f(θ+ε) − f(θ)) / ε    = {c['one_sided']:.6f}   error "
        f"{c['one_sided_error']:.1e}  (O(ε))"
    )


def _show(out: Console, report: Report) -> None:
    out.print(report)  # the table, the verdict, and the findings when it failed


def save_figure(path: Path, history: History, curve: dict[str, np.ndarray], accuracy: float) -> Path:
    """Two panels: loss and accuracy per epoch; relative error vs ε (one- and two-sided)."""
    from gradcheck._errors import require

    matplotlib = require("matplotlib", "plot", "the demo's figure (or pass --no-plot)")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    epochs = np.arange(1, len(history.loss) + 1)
    left.plot(epochs, history.loss, color="tab:blue", label="training loss J")
    left.set(xlabel="epoch", ylabel="J (with L2)", title=f"training: test accuracy {accuracy:.2%}")
    acc = left.twinx()
    acc.plot(epochs, history.train_accuracy, color="tab:green", label="train accuracy")
    acc.plot(epochs, history.test_accuracy, color="tab:orange", label="test accuracy")
    acc.set_ylabel("accuracy")
    handles = left.get_legend_handles_labels()[0] + acc.get_legend_handles_labels()[0]
    left.legend(handles, [h.get_label() for h in handles], loc="center right")
    eps = curve["eps"]
    right.loglog(eps, np.maximum(curve["one_sided"], 1e-17), "o-", ms=3, label="one-sided")
    right.loglog(eps, np.maximum(curve["two_sided"], 1e-17), "s-", ms=3, label="two-sided")
    right.axvline(1e-7, color="grey", ls=":", label="ε = 1e-7 (the notes)")
    right.set(xlabel="ε", ylabel="relative error of the slope along d",
              title="error vs ε: rounding ~u/ε | truncation O(ε), O(ε²)")
    right.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.resolve()
