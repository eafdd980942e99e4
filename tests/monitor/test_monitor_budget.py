"""The budget: never more than ``overhead`` of the training time, and checks as often as that
allows (on a fake clock: no timed assertion)."""

from __future__ import annotations

import numpy as np
from fake_clock import FakeClock
from hypothesis import given, settings
from hypothesis import strategies as st

from gradcheck import Monitor
from gradcheck.monitor._budget import SHARE
from gradcheck.monitor._screen import LINE_CALLS, SCREEN_CALLS


def run(overhead: float, step_time: float, call_time: float, steps: int) -> Monitor:
    clock = FakeClock()
    w = np.array([0.5, -1.0, 2.0])

    def loss(p: np.ndarray) -> float:
        clock.advance(call_time)
        return float(np.sum(np.cos(p)))

    monitor = Monitor(overhead=overhead, clock=clock)
    for _ in range(steps):
        clock.advance(step_time)
        monitor.step(loss, w, -np.sin(w))
        # The first check is priced before a loss call was timed (half a step per call): it
        # may overshoot by one check; every later one is priced at the measured cost.
        first = (SCREEN_CALLS + LINE_CALLS) * call_time
        assert monitor.budget.spent <= overhead * monitor.budget.training + first + 1e-9
    return monitor


@settings(max_examples=12)
@given(
    overhead=st.sampled_from([0.01, 0.05, 0.2]),
    step_time=st.floats(0.01, 1.0),
    cost=st.floats(0.01, 1.0),  # one loss call, as a fraction of a step
)
def test_spent_time_stays_under_the_fraction_and_is_used(overhead, step_time, cost):
    call_time = cost * step_time
    steps = 1_000
    monitor = run(overhead, step_time, call_time, steps)
    training = monitor.budget.training
    # At most 1.5x the cost of a check between checks (16 calls when it measures the noise),
    # after a first wait of at most 1.5 checks priced at half a step per call.
    calls = SCREEN_CALLS + LINE_CALLS
    per_check = calls * call_time * 1.5 / (SHARE * overhead)
    first = calls * 0.5 * step_time * 1.5 / (SHARE * overhead)
    assert monitor.checks >= int((training - first) / per_check)


def test_no_training_time_no_check():
    clock = FakeClock()  # time never moves: the steps take no time, so no check fits
    monitor = Monitor(overhead=1.0, clock=clock)
    for _ in range(100):
        monitor.step(lambda p: float(np.sum(p**2)), np.ones(2), 2 * np.ones(2))
    assert monitor.checks == 0 and monitor.steps == 100
