"""budget= is a promise: coords="auto" makes at most that many loss calls, all phases counted
(noise probes, directions, bisection, the sample, second opinions, kink escapes, the diagnosis's
re-checks and Taylor tests), and report.evaluations is the number of calls made. The calls are
counted here, by wrapping the loss, never read from the report alone."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from bugs import bugs, traps
from bugs.mlp import mlp
from hypothesis import given, settings
from hypothesis import strategies as st

import gradcheck
from gradcheck.core._coords import minimum_budget
from gradcheck.report._sentences import NoteCode

CASES = bugs() + traps()


class Counted:
    """The user's loss with a call counter the checker cannot see."""

    def __init__(self, loss: Callable[[Any], Any]) -> None:
        self.loss, self.calls = loss, 0

    def __call__(self, p: Any) -> Any:
        self.calls += 1
        return self.loss(p)


def _sizes(params: Any) -> list[int]:
    return [int(np.size(v)) for v in params.values()]


@settings(max_examples=25, deadline=None)
@given(st.sampled_from(range(len(CASES))), st.floats(0.0, 1.0), st.integers(0, 3))
def test_auto_never_exceeds_the_budget(case: int, where: float, seed: int) -> None:
    c = CASES[case]
    low = minimum_budget(_sizes(c.params), 4)
    high = 3 * 2 * sum(_sizes(c.params)) + 200  # up to well past a full check with diagnosis
    budget = int(low + where * (high - low))
    loss = Counted(c.loss)
    r = gradcheck.check(loss, c.params, c.grads, budget=budget, seed=seed, batch_size=c.batch_size)
    assert loss.calls <= budget
    assert r.evaluations == loss.calls


@pytest.mark.parametrize("budget", [300, 1_000, 3_000])
@pytest.mark.parametrize("bug", [None, "act_on_a", "no_mean"])
def test_budget_holds_on_a_network_larger_than_it(budget: int, bug: str | None) -> None:
    loss, params, grads = mlp("sigmoid", "mse", (30, 40, 5), m=20)  # N = 1,445: 2N > budget
    g = grads(params, **({bug: True} if bug else {}))
    counted = Counted(loss)
    r = gradcheck.check(counted, params, g, budget=budget)
    assert counted.calls <= budget and r.evaluations == counted.calls
    assert r.passed == (bug is None)
    right = grads(params)
    faulty = {k for k in params if np.max(np.abs(g[k] - right[k])) > 1e-9}
    assert set(r.suspects) == faulty  # exactly the wrong tensors, within the budget
    assert any("coords='all'" in n for n in r.notes)  # the report says how to check everything


def test_the_full_check_is_taken_when_it_fits_with_its_second_opinions() -> None:
    loss, params, grads = mlp("relu", "mse", (5, 8, 8, 3), zero_rows=3)  # kinks: escapes cost
    counted = Counted(loss)
    n = sum(_sizes(params))
    r = gradcheck.check(counted, params, grads(params), budget=10 * n)
    assert all(c.skipped == 0 or c.checked + c.skipped == c.value_array.size
               for c in r.components.values())
    assert sum(c.checked for c in r.components.values()) + sum(
        int(np.sum(c.flags == 3)) for c in r.components.values()) == n
    assert counted.calls <= 10 * n and r.evaluations == counted.calls


def test_batched_rows_count_against_the_budget() -> None:
    loss, params, grads = mlp("tanh", "softmax", (30, 40, 5))
    names = list(params)
    shapes = [params[k].shape for k in names]
    cuts = np.cumsum([int(np.prod(s)) for s in shapes])[:-1]
    rows = 0

    def batched(thetas: np.ndarray) -> np.ndarray:
        nonlocal rows
        rows += len(thetas)
        return np.array([
            loss({k: part.reshape(s) for k, part, s in zip(names, np.split(t, cuts), shapes,
                                                              strict=True)})
            for t in thetas
        ])

    counted = Counted(loss)
    r = gradcheck.check(counted, params, grads(params), budget=700, batched_loss=batched)
    assert counted.calls + rows <= 700 and r.evaluations == counted.calls + rows


def test_a_budget_too_small_to_judge_every_tensor_is_refused() -> None:
    loss, params, grads = mlp("tanh", "softmax", (30, 40, 5))
    with pytest.raises(gradcheck.OptionError, match=r"budget=50 is too small.*at least \d+"):
        gradcheck.check(loss, params, grads(params), budget=50)


def test_one_wrong_entry_among_a_million_in_at_most_100_calls() -> None:
    n = 1_000_000
    rng = np.random.default_rng(5)
    c, theta = rng.uniform(0.5, 2.0, n), rng.standard_normal(n)
    counted = Counted(lambda p: float(0.5 * np.dot(c * p, p) + np.sin(p[0])))
    g = c * theta
    g[0] += np.cos(theta[0])
    g[654_321] += 2.0
    r = gradcheck.check(counted, theta, g, coords="directional")
    comp = r.components["theta"]
    assert r.suspects == ("theta",) and comp.worst_index == (654_321,) and comp.mismatches == 1
    assert counted.calls <= 100 and r.evaluations == counted.calls


def test_mismatches_the_budget_cannot_recheck_are_never_passed_silently(monkeypatch) -> None:
    """With no calls kept for second opinions (the plan's reserve patched away), the budget runs
    out during the re-checks: a tensor whose own directional test failed keeps its first-pass
    mismatches (and says so); nothing exceeds the budget."""
    import gradcheck.core.verdict._plan as plan

    monkeypatch.setattr(plan, "second_calls", lambda nodes: 0)
    loss, params, grads = mlp("sigmoid", "mse", (30, 40, 5), m=20)
    g = grads(params, no_mean=True)  # every entry of every tensor 20x too large
    counted = Counted(loss)
    r = gradcheck.check(counted, params, g, budget=400)
    assert counted.calls <= 400 and r.evaluations == counted.calls
    assert set(r.suspects) == set(params)
    assert {NoteCode.KEPT, NoteCode.SAMPLE_CONFIRMED} & set(r.note_codes)


def test_a_tensor_wrong_everywhere_leaves_calls_to_confirm_the_later_ones() -> None:
    # The second opinions of a first tensor wrong in all its 1,000 entries would take every
    # call the budget leaves over; each later tensor keeps enough to confirm its own.
    rng = np.random.default_rng(0)
    p = {"A": rng.standard_normal(1000), "B": rng.standard_normal(150), "C": rng.standard_normal(150)}
    g = {k: np.cos(v) for k, v in p.items()}
    g = {"A": 1.5 * g["A"], "B": g["B"], "C": g["C"]}
    g["C"][:20] *= -1.0
    loss = Counted(lambda q: float(sum(np.sum(np.sin(v)) for v in q.values())))
    report = gradcheck.check(loss, p, g)
    assert loss.calls == report.evaluations <= 4_000
    assert report.suspects == ("A", "C") and report.components["B"].passed
    assert report.components["C"].mismatches >= 8


def test_first_pass_mismatches_the_budget_left_unconfirmed_are_not_ok() -> None:
    # 3,000 entries within 1e-9 of |w|'s kink disagree at the first step; the budget pays for
    # few second opinions (which settle them as kinks): the rest are unjudged, never "ok".
    rng = np.random.default_rng(0)
    w = np.concatenate([1e-9 * rng.standard_normal(3000), rng.standard_normal(100) + 3.0])
    loss = Counted(lambda p: float(np.sum(np.abs(p["w"]))))
    report = gradcheck.check(loss, {"w": w}, {"w": np.sign(w)}, budget=6_900)
    assert loss.calls == report.evaluations <= 6_900
    c = report.components["w"]
    assert report.passed is None and report.verdict == "incomplete" and c.passed is None
    assert c.unjudged > 2_000 and c.checked >= 100 and report.suspects == ()
    assert report.explain().startswith(f"INCOMPLETE: {c.unjudged:,} entries of w without a verdict")
    assert "INCOMPLETE" in repr(report)
    full = gradcheck.check(loss, {"w": w}, {"w": np.sign(w)}, coords="all")
    assert full.passed  # with every second opinion paid for: kinks, not errors
