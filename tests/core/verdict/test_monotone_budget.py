"""More budget never gives a weaker verdict, and a wrong gradient costs little more than 2N
(issue 22, part 2, items 4 and 5)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gradcheck
from gradcheck.core._coords import minimum_budget
from gradcheck.report._model import MISMATCH
from gradcheck.report._sentences import NoteCode

STRENGTH = {"failed": 2, "incomplete": 1, "passed": 0}


def squares(n: int, factor: float, seed: int = 0):
    """J = Σ x², its gradient 2x times ``factor``, and a counter of J's calls."""
    x = np.random.default_rng(seed).standard_normal(n)
    calls = [0]

    def loss(p):
        calls[0] += 1
        return float(np.sum(p["x"] ** 2))

    return loss, {"x": x}, {"x": factor * 2 * x}, calls


@pytest.mark.parametrize(("n", "budgets"), [(200, (410, 500, 600, 1_000)),
                                            (2_000, (4_000, 5_000, 6_000, 10_000))])
def test_a_wrong_gradient_fails_at_every_budget(n, budgets):
    loss, params, grads, _ = squares(n, 2.0001 / 2)
    for budget in budgets:
        report = gradcheck.check(loss, params, grads, budget=budget)
        assert report.verdict == "failed", (budget, report.notes)
        assert report.suspects == ("x",)


def test_a_wrong_tensor_is_confirmed_on_a_sample():
    loss, params, grads, calls = squares(2_000, 1.00005)
    report = gradcheck.check(loss, params, grads, coords="all")
    assert report.verdict == "failed"
    assert calls[0] <= 2.5 * 2_000
    stood = [n.numbers for n in report.notes if n.code == NoteCode.SAMPLE_CONFIRMED]
    assert len(stood) == 1 and stood[0]["sample"] == 32 and stood[0]["rest"] > 1_000
    # every entry is wrong: the 21 whose 5e-5 is within their first pass's bound (entries near
    # 0, whose own move of J is small beside J's rounding) are found again at their own step
    assert report.components["x"].mismatches == 2_000


def test_a_right_gradient_costs_two_calls_per_entry():
    loss, params, grads, calls = squares(2_000, 1.0)
    assert gradcheck.check(loss, params, grads, coords="all").passed
    assert calls[0] <= 2 * 2_000 + 100


def test_a_bug_confined_to_a_column_is_named_exactly():
    """Sampling the second opinions keeps the localization: only the planted column is wrong."""
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal((20, 300)), rng.standard_normal((300, 8)) / 10

    def loss(p):
        return float(np.sum(np.tanh(x @ p["W"]) ** 2))

    t = np.tanh(x @ w)
    g = x.T @ (2 * t * (1 - t**2))
    g[:, 3] *= 1.001
    report = gradcheck.check(loss, {"W": w}, {"W": g}, coords="all")
    wrong = np.argwhere(report.components["W"].flags == MISMATCH)
    # only column 3, and as many of its entries as with a second opinion each (one entry's
    # 0.1% is within its bound)
    assert report.verdict == "failed" and set(wrong[:, 1]) == {3} and len(wrong) == 299


@settings(max_examples=12, deadline=None, derandomize=True)
@given(n=st.sampled_from([40, 150, 400]), factor=st.sampled_from([1.0, 1.00005, 1.001, 0.9]),
       fractions=st.lists(st.floats(0.0, 1.0), min_size=3, max_size=5))
def test_the_verdict_is_monotone_in_the_budget(n, factor, fractions):
    loss, params, grads, _ = squares(n, factor, seed=n)
    low = minimum_budget([n], 2 + 2)
    budgets = sorted({int(low + f * (40 * n - low)) for f in fractions} | {low, 40 * n})
    verdicts = [gradcheck.check(loss, params, grads, budget=b).verdict for b in budgets]
    if factor == 1.0:
        assert "failed" not in verdicts, list(zip(budgets, verdicts, strict=True))
    strengths = [STRENGTH[v] for v in verdicts]
    if factor != 1.0:  # a wrong gradient: once failed, failed at every larger budget
        assert strengths == sorted(strengths), list(zip(budgets, verdicts, strict=True))
