"""The gallery: every planted bug caught and located exactly, no false alarm on the traps."""

from __future__ import annotations

import numpy as np
import pytest
from bugs import Case, bugs, stochastic, traps

import gradcheck

BUGS, TRAPS = bugs(), traps()


def _snapshot(params: dict[str, np.ndarray]) -> dict[str, bytes]:
    return {k: v.tobytes() + str(v.dtype).encode() for k, v in params.items()}


def test_the_gallery_is_big_enough_and_its_truth_is_consistent() -> None:
    assert len(BUGS) >= 30 and len(TRAPS) >= 12
    assert len({c.name for c in BUGS + TRAPS}) == len(BUGS) + len(TRAPS)
    for case in BUGS:
        assert case.faulty and case.severity > 1e-4, case.name
    for case in TRAPS:
        assert not case.faulty and case.severity == 0.0, case.name


@pytest.mark.parametrize("case", BUGS, ids=[c.name for c in BUGS])
def test_every_bug_is_caught_located_and_named(case: Case) -> None:
    before = _snapshot(case.params)
    report = gradcheck.check(case.loss, case.params, case.grads, batch_size=case.batch_size)
    assert not report.passed
    assert set(report.suspects) == case.faulty
    assert {f.param for f in report.findings} == case.faulty
    assert report.origin in case.faulty
    if case.kind is not None:
        assert {f.kind for f in report.findings} == {case.kind}
    assert _snapshot(case.params) == before


@pytest.mark.parametrize("case", TRAPS, ids=[c.name for c in TRAPS])
def test_no_false_alarm_on_a_trap(case: Case) -> None:
    before = _snapshot(case.params)
    report = gradcheck.check(case.loss, case.params, case.grads)
    assert report.passed, report.explain()
    assert report.findings == () and report.origin is None
    assert _snapshot(case.params) == before


def test_a_stochastic_loss_is_refused() -> None:
    loss, params, grads = stochastic()
    before = _snapshot(params)
    with pytest.raises(gradcheck.StochasticLossError, match="dropout"):
        gradcheck.check(loss, params, grads)
    assert _snapshot(params) == before
