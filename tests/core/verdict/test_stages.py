"""The verdict engine's records and rules (core/verdict/, report/_model.py), stage by stage."""

from __future__ import annotations

import numpy as np
import pytest

import gradcheck
from gradcheck._errors import OptionError
from gradcheck.core._options import CheckConfig, validate
from gradcheck.core._tree import flatten
from gradcheck.core.verdict import run
from gradcheck.core.verdict._first_pass import evaluate_nodes
from gradcheck.core.verdict._plan import make_plan
from gradcheck.core.verdict._records import Stepper
from gradcheck.report._model import AGREES, KINK, MISMATCH, EntryState, entry_states, verdict
from gradcheck.report._sentences import NoteCode


def cube(p):
    return float(np.sum(p ** 3))


def test_config_is_frozen_and_every_invalid_option_lists_the_valid_values() -> None:
    config = validate(eps=None, scheme="central", seed=0)
    assert isinstance(config, CheckConfig) and config.coords == "all" and config.refine
    with pytest.raises(AttributeError):
        config.scheme = "forward"  # type: ignore[misc]
    with pytest.raises(OptionError, match="'central', 'forward', 'backward'"):
        validate(eps=None, scheme="centered", seed=0)
    with pytest.raises(OptionError, match="'all', 'auto', 'directional'"):
        validate(eps=None, scheme="central", seed=0, coords="some")
    with pytest.raises(OptionError, match="cannot be combined with scheme='complex'"):
        validate(eps=None, scheme="complex", seed=0, coords="directional")


def test_one_rule_for_verdicts_failed_beats_incomplete_beats_passed() -> None:
    assert verdict(mismatches=0, unjudged=0) is True
    assert verdict(mismatches=1, unjudged=10) is False
    assert verdict(unjudged=1) is None
    assert verdict([True, True]) is True and verdict([True, None]) is None
    assert verdict([None, False]) is False
    assert verdict([True], interrupted=True) is None and verdict([True], judged=False) is None


def test_one_rule_for_entry_states() -> None:
    agrees = np.array([True, False, False, True])
    kink = np.array([False, True, False, True])
    assert list(entry_states(agrees, kink)) == [AGREES, KINK, MISMATCH, AGREES]
    assert list(entry_states(agrees)) == [AGREES, MISMATCH, MISMATCH, AGREES]
    assert EntryState(3) is KINK and int(EntryState.UNCHECKED) == 0


def test_components_and_report_take_their_verdict_from_the_entry_states() -> None:
    w = np.linspace(0.5, 1.5, 8)
    g = 3 * w**2
    g[3] += 1e-3
    report = run(cube, w, g, validate(eps=None, scheme="central", seed=0))
    c = report.components["theta"]
    assert c.passed is verdict(mismatches=int(np.sum(c.flags == MISMATCH)), unjudged=c.unjudged)
    assert report.passed is verdict(x.passed for x in report.components.values()) is False
    assert list(np.flatnonzero(c.flags == MISMATCH)) == [3]


def test_the_plan_keeps_calls_for_every_later_tensor() -> None:
    tree = flatten({"a": np.ones(3000), "b": np.ones(10)}, what="params")
    plan = make_plan(validate(eps=None, scheme="central", seed=0, coords="auto"), tree)
    assert plan.reserved_after(0) >= plan.first[1] + 1 and plan.reserved_after(1) == 1
    assert sum(plan.planned()) < 3010  # 3,010 coordinates do not fit 4,000 calls


def test_a_ctrl_c_in_the_first_pass_is_a_record_of_what_is_done() -> None:
    class Stops:
        block, calls = 4, 0

        def coordinates(self, t, idx, values):
            self.calls += 1
            if self.calls > 1:
                raise KeyboardInterrupt
            return values ** 2

    stepper = Stepper(np.arange(10.0), np.full(10, 1e-3), np.dtype(np.float64))
    got = evaluate_nodes(Stops(), 0, np.arange(10), stepper, (-1.0, 1.0), 0.0, False)
    assert got.stopped and got.done == 1  # the first block holds max(1, 4 // 16) = 1 entry


def test_an_interrupted_check_still_says_incomplete_not_passed() -> None:
    calls = [0]

    def loss(p):
        calls[0] += 1
        if calls[0] > 20:
            raise KeyboardInterrupt
        return cube(p)

    w = np.linspace(0.5, 1.5, 40)
    report = gradcheck.check(loss, w, 3 * w**2, on_interrupt="report")
    assert report.interrupted and report.passed is None and report.verdict == "incomplete"


def test_the_diagnosis_rechecks_with_the_users_options(monkeypatch) -> None:
    # A sign flip of b1 on ReLU kinks is confirmed by a re-check (tests/diagnose): that re-check
    # now judges with the user's scheme, seed, tolerances and (per tensor) forced step.
    from bugs.mlp import mlp

    import gradcheck.checks._check as public

    seen = []

    def spy(loss, params, grads, config):
        seen.append(config)
        return run(loss, params, grads, config)

    monkeypatch.setattr(public, "run", spy)
    loss, params, grads = mlp("relu", "softmax", (4, 8, 3), m=10, zero_rows=3, seed=4)
    g = grads(params)
    report = gradcheck.check(loss, params, {**g, "b1": -g["b1"]}, scheme="richardson", seed=3,
                             rtol={np.float64: 1e-9}, eps={"b1": 1e-5})
    assert [f.kind for f in report.findings if f.param == "b1"] == ["sign"]
    rechecks = seen[1:]
    assert rechecks and all(c.scheme == "richardson" and c.seed == 3 for c in rechecks)
    assert all(c.rtol == {np.dtype(np.float64): 1e-9} and c.coords == "all" for c in rechecks)
    assert {c.eps for c in rechecks} <= {1e-5, None}


def test_every_note_code_has_its_sentence_in_the_one_table() -> None:
    from gradcheck.report._sentences import TABLE, Note, NoteCode, render

    assert set(TABLE) == set(NoteCode)
    note = Note(NoteCode.UNREFINED, "W1", {"count": 1234, "budget": 4000})
    assert render(note).startswith("W1: 1,234 first-pass mismatches got no second opinion")


def test_a_sample_whose_stopped_directional_search_failed_leaves_the_rest_unjudged() -> None:
    """A correct hinge gradient on 512 entries, half on the margin, at a budget near the
    minimum: a random direction crosses kinks and disagrees with g·v, and the call allowance
    stops the bisection. The few coordinates judged vouch for nothing else: never PASSED."""
    rng = np.random.default_rng(0)
    y = rng.choice([-1.0, 1.0], 512)
    x = np.where(rng.random(512) < 0.5, y, rng.uniform(-2, 2, 512))
    c = rng.uniform(0.5, 2, 512)
    g = -c * y * (1 - y * x > 0)
    report = gradcheck.check(lambda p: float(np.sum(c * np.maximum(1 - y * p["w"], 0))),
                             {"w": x}, {"w": g}, budget=121)
    located = [n for n in report.notes if n.code is NoteCode.DIRECTION_FAILED]
    assert located and located[0].numbers["complete"] is False
    w = report.components["w"]
    assert report.verdict != "passed" and w.unjudged >= 512 - int(np.count_nonzero(w.flags))
