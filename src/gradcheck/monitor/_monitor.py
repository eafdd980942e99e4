"""``Monitor``: directional gradient checks during training, within a fraction of its time.

Each checked step runs the screen (``_screen``: J(θ), two directions, J(θ) again, and on every
8th check a noise line; 10 or 16 loss calls). A direction that fails is not yet an alarm: it is
bisected down to the culprit entries, then ``gradcheck.check`` judges the culprit tensors (every
rule of ``check``: kinks, stairs, second opinions). Only a ``Report``
that says failed is a failure; it is saved with the step's state (``_saved``) and then raised,
warned or returned, as the user chose.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from gradcheck._errors import OptionError
from gradcheck.core._tree import Params
from gradcheck.core._validate import inputs
from gradcheck.core.verdict._base import same_again
from gradcheck.monitor._budget import Budget
from gradcheck.monitor._saved import restricted_check, save
from gradcheck.monitor._screen import LINE_CALLS, NOISE_EVERY, SCREEN_CALLS, Joint, screen
from gradcheck.report._report import GradientMismatchError, Report
from gradcheck.report._sentences import Note, NoteCode

OnFailure = Literal["raise", "warn", "stop"]
Prepared = tuple[Callable[[Params], Any], Params, Params, Mapping[str, Any] | None]


class MonitorWarning(UserWarning):
    """A ``Monitor(on_failure="warn")`` found a wrong gradient; training went on."""


@dataclass(frozen=True)
class Checked:
    """One checked step: ``outcome`` is "passed", "cleared" (a direction failed, but the
    escalation found nothing wrong) or "failed"; ``calls`` the loss calls it made."""

    step: int
    outcome: str
    calls: int


class Monitor:
    """Checks the gradient at randomly spaced training steps, within ``overhead`` of the time.

    Call ``step`` once per training step, after the gradient is computed and before it is
    applied. A failure is saved to disk (``monitor.saved``) with a ``Report`` that names the step.

    Args:
      overhead: the fraction of the measured training time the checks may use (0.01: 1%).
      on_failure: "raise" a ``GradientMismatchError`` (``.report`` names the step), "warn"
        (a ``MonitorWarning``; training goes on) or "stop" (``step`` returns True and
        ``monitor.report`` holds the report).
      seed: seeds the directions and the spacing of the checks (with the same clock, the same
        steps are checked).
      save_dir: where failing steps are saved (a ``step-<n>`` directory each); None: a new
        temporary directory, named in the message.
      clock: the time source (seconds); tests pass a fake one.

    >>> import itertools, numpy as np, gradcheck
    >>> w = np.array([1.0, -2.0])
    >>> monitor = gradcheck.Monitor(overhead=0.5, clock=itertools.count().__next__)  # fake
    >>> for _ in range(100):
    ...     stop = monitor.step(lambda p: float(np.sum(p["w"] ** 2)), {"w": w}, {"w": 2 * w})
    >>> monitor.report is None and monitor.checks > 0
    True
    """

    def __init__(
        self,
        overhead: float = 0.01,
        on_failure: OnFailure = "raise",
        seed: int = 0,
        *,
        save_dir: str | Path | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        if isinstance(overhead, bool) or not isinstance(overhead, int | float) or not (
            0 < overhead <= 1
        ):
            raise OptionError(f"overhead={overhead!r} must be a fraction in (0, 1], e.g. 0.01.")
        if on_failure not in ("raise", "warn", "stop"):
            raise OptionError(
                f"on_failure={on_failure!r} must be 'raise', 'warn' or 'stop'."
            )
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
            raise OptionError(f"seed={seed!r} must be a non-negative int.")
        if not callable(clock):
            raise OptionError(f"clock={clock!r} must be a function returning seconds.")
        self.overhead, self.on_failure, self.seed = float(overhead), on_failure, int(seed)
        self.save_dir = None if save_dir is None else Path(save_dir)
        self.budget = Budget(self.overhead, clock, np.random.default_rng([self.seed, 0]))
        self.log: list[Checked] = []
        self.report: Report | None = None  # the last failing report
        self.saved: Path | None = None  # where the last failure was saved
        self.stopped = False
        self.noise: float | None = None  # J's relative noise σ/|J| from the last line measured

    @property
    def checks(self) -> int:
        """Steps checked so far."""
        return len(self.log)

    @property
    def steps(self) -> int:
        """Steps seen so far (``step`` calls)."""
        return self.budget.steps

    def __repr__(self) -> str:
        return (f"Monitor(overhead={self.overhead:g}, on_failure={self.on_failure!r}, "
                f"seed={self.seed}): {self.steps:,} steps, {self.checks:,} checked, "
                f"{self.budget.ratio:.2%} of training time")

    def step(
        self, loss: Callable[[Params], Any], params: Params, grads: Params,
        batch: Mapping[str, Any] | None = None,
    ) -> bool:
        """One training step: checks ``grads`` against ``loss`` if the budget allows.

        Args:
          loss: ``loss(params) -> J`` on this step's minibatch (deterministic: dropout masks
            fixed). It is called on copies; ``params`` and ``grads`` are never modified.
          params, grads: as for ``gradcheck.check`` (dicts, lists or arrays).
          batch: the arrays ``loss`` closes over ({"X": X, "y": y}), saved on a failure so
            that it can be reproduced (optional).

        Returns:
          True when training should stop (``on_failure="stop"`` after a failure).
        """
        budget = self.budget
        if budget.wait:  # no check can fit yet: one comparison, no clock
            budget.wait -= 1
            budget.steps += 1
            return self.stopped
        return self.step_with(lambda: (loss, params, grads, batch))

    def step_with(self, prepare: Callable[[], Prepared]) -> bool:
        """``step`` for adapters: ``prepare()`` returns (loss, params, grads, batch) and is
        called only on the steps that are checked (copying a model's parameters costs)."""
        if self.budget.wait:
            self.budget.wait -= 1
            self.budget.steps += 1
            return self.stopped
        line = self.noise is None or self.checks % NOISE_EVERY == 0
        if not self.budget.open(SCREEN_CALLS + LINE_CALLS * line):
            self.budget.skip()
            return self.stopped
        try:
            report = self._check(*prepare())
        finally:
            self.budget.close()
        if report is not None:
            self._fail(report)
        return self.stopped

    def _check(
        self, loss: Callable[[Params], Any], params: Params, grads: Params,
        batch: Mapping[str, Any] | None,
    ) -> Report | None:
        step = self.budget.steps
        tree, analytic = inputs(params, grads)
        dtypes = [leaf.dtype for leaf in tree.leaves]
        state = np.random.get_state()  # a loss that draws from NumPy's global RNG: restored
        try:
            ev = Joint(loss, tree, analytic)
            began = self.budget.clock()
            known = None if self.checks % NOISE_EVERY == 0 else self.noise
            first = screen(ev, dtypes, np.random.default_rng([self.seed, 1, step]), noise=known)
            if known is None and first.j0:
                self.noise = first.sigma / abs(first.j0)
            same_again(first.j0, ev.at(), "at the start of the check and")
            self.budget.calls_took(ev.calls, self.budget.clock() - began)
            if not first.located.failed:
                return self._logged(step, "passed", ev.calls)
            # The same directions again (J is deterministic: the same one fails), now bisected
            # down to the culprit entries; the tensors holding them are checked by ``check``.
            again = screen(ev, dtypes, np.random.default_rng([self.seed, 1, step]), calls=None,
                           noise=first.sigma / abs(first.j0) if first.j0 else None)
            names = tuple(n for n in tree.names if n in again.culprits) or tree.names
            report = restricted_check(loss, params, grads, names, self.seed)
            calls = ev.calls + report.evaluations
            if report.passed is not False:
                return self._logged(step, "cleared", calls)
            self._logged(step, "failed", calls)
            return self._record(report, step, first.located.worst, params, grads, batch, names)
        finally:
            np.random.set_state(state)

    def _logged(self, step: int, outcome: str, calls: int) -> None:
        self.log.append(Checked(step, outcome, calls))

    def _record(
        self, report: Report, step: int, worst: float, params: Params, grads: Params,
        batch: Mapping[str, Any] | None, names: tuple[str, ...],
    ) -> Report:
        if self.save_dir is None:  # one temporary directory per monitor, made on its first failure
            self.save_dir = Path(tempfile.mkdtemp(prefix="gradcheck-monitor-"))
        path = self.save_dir / f"step-{step}"
        note = Note(NoteCode.MONITOR_FOUND, None, {
            "step": step, "check": self.checks, "steps": self.steps, "worst": worst,
            "names": ", ".join(names), "path": str(path)})
        report = dataclasses.replace(report, notes=(*report.notes, note))
        save(path, step=step, seed=self.seed, checked=names, params=params, grads=grads,
             batch=batch, report=report)
        self.report, self.saved = report, path
        return report

    def _fail(self, report: Report) -> None:
        suspects = ", ".join(report.suspects) or "the checked tensors"
        message = (f"gradcheck.Monitor: wrong gradient at training step {self.log[-1].step} "
                   f"({suspects}); saved in {self.saved}.\n{report}")
        if self.on_failure == "raise":
            raise GradientMismatchError(message, report=report)
        if self.on_failure == "warn":
            warnings.warn(message, MonitorWarning, stacklevel=3)
        else:
            self.stopped = True
