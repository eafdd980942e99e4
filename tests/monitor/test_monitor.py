"""Monitor.step: the verdicts, the escalation, the failure actions and the untouched state."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from fake_clock import FakeClock

import gradcheck
from gradcheck import GradientMismatchError, Monitor, MonitorWarning, OptionError
from gradcheck._errors import StochasticLossError
from gradcheck.monitor import _monitor
from gradcheck.report._sentences import NoteCode


def quadratic(rng: np.random.Generator, n: int = 6) -> tuple:
    """J = ½‖A w − y‖² + sum(b²), its parameters and its correct gradient."""
    A, y = rng.standard_normal((8, n)), rng.standard_normal(8)
    params = {"w": rng.standard_normal(n), "b": rng.standard_normal(3)}

    def loss(p: dict) -> float:
        return 0.5 * float(np.sum((A @ p["w"] - y) ** 2)) + float(np.sum(p["b"] ** 2))

    def grads(p: dict) -> dict:
        return {"w": A.T @ (A @ p["w"] - y), "b": 2 * p["b"]}

    return loss, params, grads


def train(monitor: Monitor, clock: FakeClock, steps: int, wrong_from: int | None = None,
          seed: int = 0) -> int | None:
    """Plain gradient descent on ``quadratic``; from step ``wrong_from`` the gradient of b has
    a spurious 0.05 added (a term that does not belong). Each step takes 1 s, each loss call 0.1 s (fake). Returns the step that stopped."""
    loss, params, grads = quadratic(np.random.default_rng(seed))

    def timed(p: dict) -> float:
        clock.advance(0.1)
        return loss(p)

    for step in range(1, steps + 1):
        clock.advance(1.0)
        g = grads(params)
        if wrong_from is not None and step >= wrong_from:
            g["b"] = g["b"] + 0.05
        if monitor.step(timed, params, g):
            return step
        params = {k: v - 0.01 * g[k] for k, v in params.items()}
    return None


def test_a_clean_run_raises_no_alarm(clock):
    monitor = Monitor(overhead=0.05, clock=clock)
    assert train(monitor, clock, 2_000) is None
    assert monitor.report is None and monitor.checks >= 20
    assert {c.outcome for c in monitor.log} == {"passed"}


def test_a_late_bug_is_caught_after_it_starts(clock, tmp_path):
    monitor = Monitor(overhead=0.05, on_failure="stop", clock=clock, save_dir=tmp_path)
    stopped = train(monitor, clock, 3_000, wrong_from=1_000)
    assert stopped is not None and 1_000 <= stopped < 1_500
    assert monitor.stopped and monitor.report.suspects == ("b",)
    assert monitor.report.note_codes[-1] is NoteCode.MONITOR_FOUND
    assert monitor.report.notes[-1].numbers["step"] == stopped
    assert [c.outcome for c in monitor.log].count("failed") == 1
    assert monitor.saved == tmp_path / f"step-{stopped}"


def test_raise_gives_a_report_that_names_the_step(clock, tmp_path):
    monitor = Monitor(overhead=0.05, clock=clock, save_dir=tmp_path)
    with pytest.raises(GradientMismatchError) as caught:
        train(monitor, clock, 2_000, wrong_from=1)
    step = monitor.log[-1].step
    found = caught.value.report.notes[-1]
    assert found.code is NoteCode.MONITOR_FOUND and found.numbers["step"] == step
    assert f"training step {step}" in str(caught.value)
    assert caught.value.report.passed is False


def test_warn_goes_on_training(clock, tmp_path):
    monitor = Monitor(overhead=0.05, on_failure="warn", clock=clock, save_dir=tmp_path)
    with pytest.warns(MonitorWarning, match="wrong gradient at training step"):
        assert train(monitor, clock, 1_500, wrong_from=1) is None
    assert monitor.steps == 1_500 and not monitor.stopped
    assert [c.outcome for c in monitor.log].count("failed") >= 2  # kept checking


def test_the_escalation_checks_only_the_culprit_tensor(clock, tmp_path):
    rng = np.random.default_rng(1)
    W, x = rng.standard_normal((20, 10)), rng.standard_normal(10)
    params = {"W": W, "b": rng.standard_normal(20)}

    def loss(p: dict) -> float:
        return float(np.sum(np.tanh(p["W"] @ x + p["b"]) ** 2))

    z = np.tanh(W @ x + params["b"])
    dz = 2 * z * (1 - z**2)
    grads = {"W": np.outer(dz, x), "b": dz}
    grads["W"][7, 3] += 0.5  # one wrong entry among 200
    monitor = Monitor(overhead=1.0, on_failure="stop", clock=clock, save_dir=tmp_path)
    for _ in range(100):
        clock.advance(1.0)
        if monitor.step(loss, params, grads):
            break
    report = monitor.report
    assert set(report.components) == {"W"}  # bisection named W; b was not re-checked
    assert report.suspects == ("W",)
    assert report.components["W"].worst_entries(1)[0][0] == (7, 3)


def test_a_failed_direction_that_check_clears_is_no_alarm(clock, monkeypatch):
    real = _monitor.screen

    def alarmist(ev, dtypes, rng, calls=8, noise=None):  # every direction "fails"
        found = real(ev, dtypes, rng, calls=calls, noise=noise)
        located = found.located.__class__(True, found.located.culprits, 1, 0, 9.0, 4)
        return found.__class__(located, found.calls, found.sigma, found.j0, found.culprits)

    monkeypatch.setattr(_monitor, "screen", alarmist)
    monitor = Monitor(overhead=0.5, clock=clock)
    assert train(monitor, clock, 300) is None
    assert monitor.checks > 0 and {c.outcome for c in monitor.log} == {"cleared"}


def test_training_state_is_untouched(clock):
    loss, params, grads = quadratic(np.random.default_rng(2))
    g = grads(params)
    g["w"] = -g["w"]
    before = ({k: v.copy() for k, v in params.items()}, {k: v.copy() for k, v in g.items()})
    np.random.seed(5)
    state = np.random.get_state()

    def noisy(p: dict) -> float:  # draws from the global RNG and is still deterministic
        np.random.random()
        return loss(p)

    monitor = Monitor(overhead=1.0, on_failure="warn", clock=FakeClock(tick=1.0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MonitorWarning)
        for _ in range(60):
            monitor.step(noisy, params, g)
    assert monitor.report is not None  # it checked, escalated and failed
    for k in params:
        np.testing.assert_array_equal(params[k], before[0][k])
        np.testing.assert_array_equal(g[k], before[1][k])
    after = np.random.get_state()
    assert all(np.array_equal(a, b) for a, b in zip(state, after, strict=True))


def test_a_stochastic_loss_is_refused(clock):
    loss, params, grads = quadratic(np.random.default_rng(3))
    rng = np.random.default_rng(0)
    monitor = Monitor(overhead=1.0, clock=FakeClock(tick=1.0))
    with pytest.raises(StochasticLossError, match="stochastic"):
        for _ in range(60):
            monitor.step(lambda p: loss(p) * (1 + 0.1 * rng.random()), params, grads(params))


def test_the_same_seed_and_clock_check_the_same_steps():
    logs = []
    for _ in range(2):
        clock = FakeClock()
        monitor = Monitor(overhead=0.05, seed=3, clock=clock)
        train(monitor, clock, 600)
        logs.append(monitor.log)
    assert logs[0] == logs[1] and len(logs[0]) > 3


@pytest.mark.parametrize("options, match", [
    ({"overhead": 0}, "overhead=0 must be a fraction"),
    ({"overhead": 1.5}, "overhead=1.5"),
    ({"on_failure": "log"}, "on_failure='log' must be 'raise', 'warn' or 'stop'"),
    ({"seed": -1}, "seed=-1"),
    ({"clock": 3.0}, "clock=3.0"),
])
def test_bad_options_name_the_parameter(options, match):
    with pytest.raises(OptionError, match=match):
        Monitor(**options)


def test_public_names():
    assert gradcheck.Monitor is Monitor and issubclass(MonitorWarning, UserWarning)
    assert "Monitor" in repr(Monitor())
