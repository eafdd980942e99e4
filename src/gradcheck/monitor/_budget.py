"""The time budget: check a step only while the monitor's own time stays under a fraction of
the training time it has measured.

Training time is the time between ``Monitor.step`` calls, less what the monitor itself spent in
them. A check is expected to cost its loss calls times the measured cost of one call (before
the first check: half the mean step time, as a forward pass is about a third of a step). A step
is checked when the time spent plus that expected cost, times a seeded factor in [1, 1.5), fits
in ``SHARE`` × ``overhead`` × training time: the factor spreads the checks out at random, so
that a bug that appears on a period cannot hide between them, and the same seed and clock give
the same steps.
When a check does not fit, half the steps it still needs at the measured pace pass without
reading the clock (``wait``): an unchecked step then costs one comparison.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

JITTER = 0.5  # the expected cost is scaled by 1 + JITTER·U, U uniform in [0, 1)
# Checks may use this share of the budget; the rest is left for what the monitor's clock does
# not see: the bookkeeping of unchecked steps and the cold caches after a check (measured at
# 0.1-0.6% of a 0.25-4 ms step, BENCHMARKS.md "Training monitor").
SHARE = 0.8


@dataclass
class Budget:
    """Running account of training time and monitor time, and the decision to check.

    >>> t = iter(range(100))
    >>> budget = Budget(0.5, clock=lambda: float(next(t)), rng=np.random.default_rng(0))
    >>> budget.open(), budget.skip()  # the first step: no training time measured yet
    (False, None)
    >>> budget.open(calls=16)  # 1 s of training since: 16 calls of ~0.5 s fit in 0.5 s? No
    False
    >>> budget.skip()
    >>> budget.wait  # it needs ~25 more steps at 1 s: it skips half of them without the clock
    12
    """

    overhead: float
    clock: Callable[[], float]
    rng: np.random.Generator
    training: float = 0.0  # seconds of training measured between steps
    spent: float = 0.0  # seconds the monitor spent checking (screens, escalations, saving)
    steps: int = 0  # steps seen
    call_cost: float | None = None  # measured seconds per loss call (None before a check)
    wait: int = 0  # steps that may pass without reading the clock (no check can fit in them)
    _last: float | None = None  # the clock when the previous step returned
    _opened: float = 0.0
    _factor: float = field(default=1.0)

    def __post_init__(self) -> None:
        self._factor = 1.0 + JITTER * float(self.rng.random())

    def open(self, calls: int = 16) -> bool:
        """Start of a step: account the training time since the last one; whether a check of
        ``calls`` loss calls fits in the budget now."""
        now = self.clock()
        if self._last is not None:
            self.training += max(now - self._last, 0.0)
        self._opened = now
        self.steps += 1
        if self.steps < 2 or self.training <= 0.0:
            return False
        per_step = self.training / (self.steps - 1)
        per_call = self.call_cost if self.call_cost is not None else 0.5 * per_step
        expected = calls * per_call * self._factor
        short = (self.spent + expected) / (SHARE * self.overhead) - self.training
        if short > 0 and per_step > 0:  # half the steps that training needs at this pace
            self.wait = int(min(0.5 * short / per_step, 1e9))
        return short <= 0

    def calls_took(self, calls: int, seconds: float) -> None:
        """A check made ``calls`` loss calls in ``seconds``: the running cost of one call."""
        if calls <= 0:
            return
        cost = seconds / calls
        self.call_cost = cost if self.call_cost is None else 0.5 * (self.call_cost + cost)
        self._factor = 1.0 + JITTER * float(self.rng.random())  # the next check's spacing

    def skip(self) -> None:
        """End of a step that was not checked (its bookkeeping is not counted)."""
        self._last = self._opened

    def close(self) -> None:
        """End of a checked step: everything since ``open`` was the monitor's time."""
        now = self.clock()
        self.spent += max(now - self._opened, 0.0)
        self._last = now

    @property
    def ratio(self) -> float:
        """Monitor time over training time (0 before any training was measured)."""
        return self.spent / self.training if self.training > 0 else 0.0
