"""The adapters' re-counts and merges take their verdict from the one rule (``report._model.verdict``):
an entry left unjudged makes a component incomplete, an incomplete component is no suspect, an
interrupted Jacobian row makes the report incomplete, and nothing checked is never passed=True
(issue 22, part 2 item 6)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import gradcheck  # noqa: E402
import gradcheck.frameworks.torch as gt  # noqa: E402
from gradcheck.frameworks import _shared  # noqa: E402
from gradcheck.report._model import UNCHECKED  # noqa: E402

pytestmark = pytest.mark.usefixtures("torch_one_thread")


class _Square(torch.autograd.Function):
    """x² where x is finite (0 elsewhere), with a backward off by ×1.00005: 2.0001·x."""

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return torch.where(torch.isfinite(a), a * a, 0.0)

    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.saved_tensors
        return torch.where(torch.isfinite(a), g * 2.0001 * a, 0.0)


def test_a_non_finite_entry_does_not_turn_a_component_with_unjudged_entries_into_a_pass() -> None:
    # Issue 22, part 2 item 6: N = 2,000, a budget above 2N: the engine leaves the first pass's
    # mismatches without their second opinion (unjudged); the re-count after masking the
    # non-finite entry used to say passed=True with 11 of 2,000 entries judged.
    x = torch.randn(2000, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    x[5] = float("inf")
    report = gt.check_function(_Square.apply, x.requires_grad_(True), budget=5000)
    c = report.components["input0"]
    assert c.flags[5] == UNCHECKED
    if c.unjudged:  # what the budget left without a verdict is not a pass, in the component too
        assert c.passed is None and report.passed is None and report.suspects == ()
    else:  # (a stronger engine may judge them all: then the wrong gradient fails)
        assert c.passed is False and report.passed is False


def _incomplete_report() -> gradcheck.Report:
    """x passed; y incomplete (2 entries left unjudged); the report incomplete."""
    x, y = np.linspace(0.5, 1.5, 4), np.linspace(-1.0, 1.0, 5)
    report = gradcheck.check(lambda p: float(np.sum(p["x"] ** 3) + np.sum(np.sin(p["y"]))),
                             {"x": x, "y": y}, {"x": 3 * x**2, "y": np.cos(y)})
    c = report.components["y"]
    flags = c.flags.copy()
    flags[:2] = UNCHECKED
    y_left = dataclasses.replace(c, flags=flags, checked=3, skipped=2, unjudged=2, passed=None)
    return dataclasses.replace(report, components={**report.components, "y": y_left},
                               passed=None)


def test_masking_an_entry_of_a_passed_tensor_leaves_an_incomplete_report_incomplete() -> None:
    report = _incomplete_report()
    masked = _shared.leave_unchecked(report, {"x": np.array([True, False, False, False])})
    assert masked.components["x"].passed is True and masked.components["x"].checked == 3
    assert masked.components["y"].passed is None
    assert masked.passed is None and masked.suspects == ()  # incomplete is no suspect


def test_masking_keeps_the_unjudged_count_of_the_entries_that_remain() -> None:
    report = _incomplete_report()
    # both unjudged entries of y are among the masked ones: none is left unjudged
    masked = _shared.leave_unchecked(report, {"y": np.array([True, True, False, False, False])})
    assert masked.components["y"].unjudged == 0 and masked.components["y"].passed is True
    assert masked.passed is True
    # one of them masked: one left
    masked = _shared.leave_unchecked(report, {"y": np.array([True, False, False, False, False])})
    assert masked.components["y"].unjudged == 1 and masked.components["y"].passed is None
    assert masked.passed is None


def test_an_interrupted_jacobian_row_makes_the_jacobian_report_incomplete() -> None:
    calls = 0

    def fn(a):
        nonlocal calls
        calls += 1
        if calls == 12:  # one Ctrl-C, inside the first row's check
            raise KeyboardInterrupt
        return torch.sin(a) * a.sum()

    a = torch.linspace(-1.0, 1.0, 3, dtype=torch.float64, requires_grad=True)
    report = gt.check_function(fn, a, jacobian=True, vectorize="loop", on_interrupt="report")
    block = report.components["input0 (output)"]
    assert report.interrupted and report.passed is None and report.suspects == ()
    assert block.unjudged > 0 and block.passed is None
    assert str(report).startswith("INCOMPLETE") and "PASSED" not in report.explain()


def test_nothing_checked_is_not_passed() -> None:
    empty = torch.zeros(0, 3, dtype=torch.float64, requires_grad=True)
    report = gt.check_function(lambda e: e.sum(0), empty)
    assert report.passed is None and report.verdict == "incomplete"
    assert report.explain().startswith("NOTHING CHECKED") and "PASSED" not in str(report)
