"""Progress: shown from the first block of a long check, with a time left; a plain line in a
notebook without widgets; never a warning."""

from __future__ import annotations

import time

import numpy as np

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
        time.sleep(0.05)
        p.advance(100)
        eta = p.eta()
        assert eta is not None and eta > 0  # 900 left at the rate of the first 100
    finally:
        p.close()
    assert p._bar is None


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
    assert err.startswith("\rgradcheck 0/200 coordinates, estimating time left")
    assert err.rstrip().endswith("s") and "\rgradcheck 200/200 coordinates in " in err
    assert p._bar is None  # no rich live display (which would warn without ipywidgets)


def test_the_first_block_of_a_check_is_small(monkeypatch):
    sizes = []
    original = Progress.advance

    def spy(self, n):
        sizes.append(n)
        original(self, n)

    monkeypatch.setattr(Progress, "advance", spy)
    w = np.random.default_rng(0).standard_normal(3000)
    report = gradcheck.check(
        lambda p: float(np.sum(np.sin(p))), w, np.cos(w), progress=False, coords="all"
    )
    assert report.passed
    assert sizes[:3] == [2 * 64, 2 * 960, 2 * 1024]  # 64 coordinates first, then the 1,024 grid
