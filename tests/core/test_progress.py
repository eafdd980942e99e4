"""Progress: shown from the first block of a long check, with a time left; a plain line in a
notebook without widgets; never a warning."""

from __future__ import annotations

import time

import numpy as np
import pytest

import gradcheck
from gradcheck.core import _progress
from gradcheck.core._progress import Progress


def test_the_display_opens_on_a_timer_during_the_first_block(monkeypatch):
    monkeypatch.setattr(_progress, "DELAY", 0.05)
    p = Progress(1000, enabled=True)
    assert p.eta() is None
    deadline = time.perf_counter() + 5
    while p._bar is None and time.perf_counter() < deadline:  # no advance has happened yet
        time.sleep(0.01)
    try:
        assert p._bar is not None
        p.advance(100)
        time.sleep(0.01)
        p.advance(100)
        eta = p.eta()
        assert eta is not None and eta > 0  # 800 left at the rate of the last 100
    finally:
        p.close()
    assert p._bar is None


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_time_left_is_cost_per_call_times_calls_left_on_a_fake_clock():
    clock = FakeClock()
    p = Progress(800, enabled=False, clock=clock)
    assert p.eta() is None and "estimating time left" in p.text()
    clock.now = 3.0  # setup before the first call (imports, a first slow call) is not counted
    p.update(1, "J(θ)")
    assert p.eta() is None  # one point: no rate yet
    clock.now = 4.0
    p.update(128, "first pass")  # 127 calls in 1 s
    assert p.eta() == pytest.approx(672 / 127)
    assert p.text() == "first pass: 128/800 loss calls, 0:00:06 left"
    clock.now = 16.0  # 12 s in one block: the estimate stays at the cost of the calls made
    assert p.per_call() == pytest.approx(1 / 127) and p.eta() == pytest.approx(672 / 127)
    p.set_phase("second opinions")
    clock.now = 20.0
    p.update(800)
    assert p.eta() is None and p.text().endswith("800/800 loss calls, time left unknown")
    p.update(950)  # beyond the plan: the time left is unknown, never 0:00:00
    assert p.eta() is None
    assert p.text() == "second opinions: 950 loss calls (planned 800), time left unknown"
    p.close()


def test_the_time_left_is_never_shown_as_zero_while_calls_remain():
    clock = FakeClock()
    p = Progress(1000, enabled=False, clock=clock)
    p.update(1)
    clock.now = 0.001
    p.update(999)  # one call left, at a microsecond a call
    assert 0 < p.eta() < 1e-5 and "0:00:01 left" in p.text()
    assert _progress._clock(0) == "0:00:00" and _progress._clock(1e-6) == "0:00:01"


def test_a_check_counts_its_loss_calls_with_their_phases(monkeypatch):
    seen: list[tuple[str, int]] = []
    calls = [0]
    original = Progress.update

    def spy(self, done, phase=None):
        original(self, done, phase)
        seen.append((self.phase, done))

    monkeypatch.setattr(Progress, "update", spy)

    def loss(p):
        calls[0] += 1
        return float(np.sum(np.maximum(p, 0.0) ** 2))

    w = np.random.default_rng(0).standard_normal(50)
    report = gradcheck.check(loss, w, 2 * np.maximum(w, 0.0) + (w > 0) * 1e-3, progress=False)
    phases = [s for s, _ in seen]
    assert phases[0] == "J(θ)" and "noise probe" in phases and "first pass" in phases
    assert "second opinions" in phases  # the 1e-3 error: first-pass mismatches refined
    assert [d for _, d in seen] == sorted(d for _, d in seen)  # a count, never going back
    assert seen[-1][1] == report.evaluations == calls[0]  # every loss call, and only those


def test_progress_changes_no_report():
    w = np.random.default_rng(1).standard_normal(40)
    def loss(p):
        return float(np.sum(np.tanh(p) ** 2))

    g = 2 * np.tanh(w) * (1 - np.tanh(w) ** 2)
    g[3] += 1e-2
    quiet = gradcheck.check(loss, w, g, progress=False)
    shown = gradcheck.check(loss, w, g, progress=True)
    a, b = quiet.to_dict(), shown.to_dict()
    for d in (a, b):
        d.pop("seconds", None)
    assert a == b and quiet.evaluations == shown.evaluations and quiet.passed is False


def test_disabled_or_quick_progress_never_opens(monkeypatch):
    monkeypatch.setattr(_progress, "DELAY", 0.05)
    p = Progress(10, enabled=False)
    time.sleep(0.1)
    p.advance(10)
    assert p._bar is None and p._timer is None
    p.close()


def test_in_a_notebook_without_widgets_a_plain_line(monkeypatch, capsys):
    monkeypatch.setattr(_progress, "DELAY", 0.02)
    monkeypatch.setattr(_progress, "in_notebook", lambda: True)
    monkeypatch.setattr(_progress, "_has_widgets", lambda: False)
    p = Progress(200, enabled=None)  # None: on in a notebook
    assert p.enabled
    time.sleep(0.1)
    p.advance(100)
    p.advance(100)
    p.close()
    err = capsys.readouterr().err
    assert err.startswith("\rgradcheck starting: 0/200 loss calls, estimating time left")
    assert err.rstrip().endswith("s") and "\rgradcheck 200 loss calls in " in err
    assert p._bar is None  # no rich live display (which would warn without ipywidgets)


def test_the_first_block_of_a_check_is_small(monkeypatch):
    sizes = []
    original = Progress.update

    def spy(self, done, phase=None):
        if self.phase == "first pass":
            sizes.append(done - self.done)
        original(self, done, phase)

    monkeypatch.setattr(Progress, "update", spy)
    w = np.random.default_rng(0).standard_normal(3000)
    report = gradcheck.check(
        lambda p: float(np.sum(np.sin(p))), w, np.cos(w), progress=False, coords="all"
    )
    assert report.passed
    assert sizes[:3] == [2 * 64, 2 * 960, 2 * 1024]  # 64 coordinates first, then the 1,024 grid
