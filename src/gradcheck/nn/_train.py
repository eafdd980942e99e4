"""Minibatch training with a progress bar, and gradient checks at chosen moments (never every step)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from gradcheck._errors import OptionError
from gradcheck.nn._optim import make_optimizer

if TYPE_CHECKING:
    from rich.console import Console

    from gradcheck.report._report import Report

CHECK_MOMENTS = ("init", "end")


class Net(Protocol):
    """What training needs of a ``gradcheck.nn.Net`` (this module does not import the net)."""

    params: dict[str, np.ndarray]
    rng: np.random.Generator

    def _data(self, X: np.ndarray, Y: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...
    def loss(self, X: np.ndarray, Y: np.ndarray, *args: Any) -> float: ...
    def gradients(self, X: np.ndarray, Y: np.ndarray, *args: Any) -> dict[str, np.ndarray]: ...
    def accuracy(self, X: np.ndarray, Y: np.ndarray) -> float: ...
    def dropout_masks(self, m: int, rng: np.random.Generator) -> Any: ...
    def check(self, X: np.ndarray, Y: np.ndarray, **options: Any) -> Report: ...


@dataclass
class History:
    """Per-epoch loss and accuracies, and the checks run during training as (moment, report).

    ``Net.fit`` returns one; ``checks`` holds ``("init", Report)``, ``("step N", Report)``,
    ``("end", Report)`` as asked by ``check_at`` / ``check_every``.

    >>> import numpy as np
    >>> from gradcheck.nn import Net
    >>> X, y = np.random.default_rng(0).standard_normal((20, 3)), np.arange(20) % 2
    >>> history = Net((3, 4, 2), seed=0).fit(X, y, epochs=2, batch_size=10, progress=False,
    ...                                     check_at=("end",), check_rows=5)
    >>> len(history.loss), [(moment, report.passed) for moment, report in history.checks]
    (2, [('end', True)])
    """

    loss: list[float] = field(default_factory=list)
    train_accuracy: list[float] = field(default_factory=list)
    test_accuracy: list[float] = field(default_factory=list)
    checks: list[tuple[str, Report]] = field(default_factory=list)
    seconds: float = 0.0


def train(
    net: Net,
    X: np.ndarray,
    Y: np.ndarray,
    *,
    epochs: int = 30,
    batch_size: int = 32,
    optimizer: str = "adam",
    lr: float | None = None,
    validation: tuple[np.ndarray, np.ndarray] | None = None,
    check_at: Sequence[str] = (),
    check_every: int | None = None,
    check_rows: int = 32,
    check_options: dict[str, Any] | None = None,
    progress: bool = True,
    console: Console | None = None,
    monitor: Any = None,
) -> History:
    """Trains ``net`` in place with minibatches; the net's seed makes the run repeatable.

    Args:
      net: the ``Net`` to train (its ``params`` are replaced step by step).
      X, Y: training data; Y one-hot or integer labels.
      epochs, batch_size: passes over the data and rows per step (shuffled each epoch).
      optimizer, lr: "sgd", "momentum", "rmsprop" or "adam", and its learning rate.
      validation: (X, Y) scored after each epoch into ``history.test_accuracy``.
      check_at: any of "init" and "end": run ``net.check`` on the first ``check_rows`` rows then.
      check_every: also check every that many steps (for debugging; checks cost 2N loss calls).
      check_options: passed to ``net.check`` (eps, scheme, seed...).
      progress: show a rich progress bar with loss and accuracy.
      monitor: a ``gradcheck.Monitor``: each step's gradient goes to ``monitor.step`` before
        it is applied (on the step's batch and dropout masks); a failure it reports is added to
        ``history.checks``, and training stops when ``monitor.step`` says so.

    Returns:
      A ``History``.

    >>> from gradcheck.nn import Net
    >>> X = np.random.default_rng(0).standard_normal((40, 3)); y = (X[:, 0] > 0).astype(int)
    >>> net = Net((3, 8, 2), seed=0)
    >>> h = net.fit(X, y, epochs=40, lr=0.05, check_at=("init", "end"), progress=False)
    >>> h.train_accuracy[-1] > 0.9, [(moment, r.passed) for moment, r in h.checks]
    (True, [('init', True), ('end', True)])
    """
    unknown = set(check_at) - set(CHECK_MOMENTS)
    if unknown or (check_every is not None and check_every < 1) or epochs < 0 or batch_size < 1:
        raise OptionError(
            f"check_at={tuple(check_at)!r} may only hold {CHECK_MOMENTS}; check_every must be "
            f"≥ 1 (got {check_every}), epochs ≥ 0 ({epochs}) and batch_size ≥ 1 ({batch_size})."
        )
    start, history = time.perf_counter(), History()
    Xc, Yc = net._data(X, Y)
    opt, checker = make_optimizer(optimizer, lr), _Checker(net, Xc, Yc, check_rows, check_options)
    if "init" in check_at:
        history.checks.append(("init", checker()))
    with _bar(progress, epochs, console) as bar:
        task = bar.add_task("training", total=epochs, loss=float("nan"), acc=float("nan"))
        step, stop = 0, False
        for _ in range(epochs):
            for rows in np.array_split(net.rng.permutation(len(Xc)), max(1, len(Xc) // batch_size)):
                masks = net.dropout_masks(len(rows), net.rng)
                grads = net.gradients(Xc[rows], Yc[rows], net.params, masks)
                step += 1
                if monitor is not None:
                    stop = _monitored(monitor, net, history, Xc[rows], Yc[rows], masks, grads, step)
                    if stop:
                        break
                net.params = opt.step(net.params, grads)
                if check_every and step % check_every == 0:
                    history.checks.append((f"step {step}", checker()))
            _score(net, history, Xc, Yc, validation)
            bar.update(task, advance=1, loss=history.loss[-1], acc=_shown(history))
            if stop:
                break
    if "end" in check_at:
        history.checks.append(("end", checker()))
    history.seconds = time.perf_counter() - start
    return history


def _monitored(
    monitor: Any, net: Net, history: History, X: np.ndarray, Y: np.ndarray, masks: Any,
    grads: dict[str, np.ndarray], step: int,
) -> bool:
    """``monitor.step_with`` on this batch (duck-typed: nn does not import the monitor); the
    loss and the batch to save are only built on the steps it checks."""

    def prepare() -> tuple[Any, dict[str, np.ndarray], dict[str, np.ndarray], dict[str, Any]]:
        batch = {"X": X, "Y": Y} | {f"mask{i + 1}": m for i, m in enumerate(masks)
                                    if m is not None}
        return (lambda p: net.loss(X, Y, p, masks)), net.params, grads, batch

    before = monitor.report
    stop = bool(monitor.step_with(prepare))
    if monitor.report is not before and monitor.report is not None:
        history.checks.append((f"monitor: step {step}", monitor.report))
    return stop


class _Checker:
    def __init__(self, net: Net, X: np.ndarray, Y: np.ndarray, rows: int, options: Any) -> None:
        self.net, self.X, self.Y, self.options = net, X[:rows], Y[:rows], options or {}

    def __call__(self) -> Report:
        return self.net.check(self.X, self.Y, **self.options)


def _score(net: Net, history: History, X: np.ndarray, Y: np.ndarray, validation: Any) -> None:
    history.loss.append(net.loss(X, Y))
    history.train_accuracy.append(net.accuracy(X, Y))
    if validation is not None:
        history.test_accuracy.append(net.accuracy(*validation))


def _shown(history: History) -> float:
    return (history.test_accuracy or history.train_accuracy)[-1]


def _bar(enabled: bool, epochs: int, console: Console | None) -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from gradcheck.core._progress import console as live_console

    if console is None and enabled:  # in a notebook without ipywidgets: plain text, no warning
        console = live_console(stderr=False)
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]:.4f}  accuracy {task.fields[acc]:.2%}"),
        TimeElapsedColumn(), console=console, disable=not enabled, transient=False,
    )
