"""The Report: a table for people, a versioned dict/JSON for programs."""

from __future__ import annotations

import json

import numpy as np
from nets import mlp

import gradcheck
from gradcheck.report._sentences import NoteCode


def _reports():
    loss, params, grads = mlp("tanh")
    g = grads(params)
    good = gradcheck.check(loss, params, g)
    bad = gradcheck.check(loss, params, {**g, "W1": g["W1"] * 1.05})
    return good, bad


def test_table_has_one_row_per_parameter_and_the_verdict() -> None:
    good, bad = _reports()
    text = str(good)
    for name in ("W1", "b1", "W2", "b2"):
        assert name in text
    assert "PASSED" in text and "\x1b[" not in text
    assert "FAILED" in str(bad) and "WRONG" in str(bad)


def test_components_fields() -> None:
    _, bad = _reports()
    w1 = bad.components["W1"]
    assert w1.shape == (6, 16) and not w1.passed and w1.checked == 96
    assert w1.max_abs_error == np.max(np.abs(w1.numeric_array - w1.analytic_array))
    assert abs(w1.numeric - w1.analytic) > w1.tolerance
    assert bad.suspects == ("W1",)
    assert bad.eps["W1"] > 0 and bad.scheme == "central"
    assert bad.relative_error > 0 and bad.textbook_verdict == "worry"


def test_json_round_trip_and_schema_version() -> None:
    good, bad = _reports()
    for report in (good, bad):
        data = json.loads(report.to_json())
        assert data["schema"] == gradcheck.SCHEMA == "gradcheck.report/1"
        assert data["passed"] is report.passed
        assert data["evaluations"] == report.evaluations
        assert set(data["components"]) == set(report.components)
        assert data["components"]["W1"]["worst_index"] == list(report.components["W1"].worst_index)
    worst = json.loads(bad.to_json())["components"]["W1"]["worst_entries"]
    assert len(worst) == 10 and {"index", "numeric", "analytic"} <= set(worst[0])


def test_report_is_frozen() -> None:
    good, _ = _reports()
    try:
        good.passed = False  # type: ignore[misc]
    except AttributeError:
        return
    raise AssertionError("Report should be frozen")


def test_tiny_gradients_note_explains_a_worrying_textbook_ratio() -> None:
    # J ≈ 1 with gradients of 1e-12: float64 rounding of J swamps the textbook ratio.
    def loss(p):
        return 1.0 + 1e-12 * float(np.sum(np.sin(p["w"])))

    w = np.linspace(0, 1, 5)
    report = gradcheck.check(loss, {"w": w}, {"w": 1e-12 * np.cos(w)})
    assert report.passed
    assert report.textbook_verdict == "worry"
    assert NoteCode.TEXTBOOK_WORRY in report.note_codes


def test_an_interrupted_report_never_also_says_entries_are_wrong():
    calls = {"n": 0}

    def loss(p):  # Ctrl-C in the first pass: the entries judged so far all agree
        calls["n"] += 1
        if calls["n"] == 400:
            raise KeyboardInterrupt
        return float(np.sum(p**3))

    w = np.linspace(-2.0, 2.0, 2000)
    report = gradcheck.check(loss, w, 3 * w**2, on_interrupt="report", progress=False)
    assert report.interrupted and report.passed is None and not report.suspects
    assert report.relative_error is not None and report.relative_error < 1e-6
    assert "none judged so far is wrong" in str(report)
    assert NoteCode.TEXTBOOK_GREAT not in report.note_codes
