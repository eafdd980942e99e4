"""The noise probe must not read curvature as noise (issue 22, part 3: a x(1 + 1e-3) error on a
smooth entry hidden by a staircase elsewhere in J, found by benchmarks/invariants_sweep.py).

A tensor's probe line moves every entry by δ times its scale, floored by the tensor's typical
scale: round() stairs whose entries sit at ~50 lift that floor, and a sin(x / 0.01) term whose
entries sit at ~0.01 is then moved by ~2% of its period per step. ECnoise's differences along
that line keep shrinking with their order and never stabilise: curvature, not rounding. Read as
noise, σ widened the steps until the error hid inside their truncation."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from gradcheck.core._options import validate
from gradcheck.core._tree import flatten
from gradcheck.core.verdict._base import base_value
from gradcheck.core.verdict._plan import make_plan, open_evaluator
from gradcheck.core.verdict._probe import measure_noise
from gradcheck.report._model import MISMATCH

sys.path.insert(0, str(Path(__file__).parent))

from test_invariants import SMOOTH, STAIRS, Loss, Piece  # noqa: E402

EPS64 = float(np.finfo(np.float64).eps)

# invariants_sweep.py --losses 1000, row "stairs elsewhere": its failing loss with two pieces
STAIRS_ELSEWHERE = Loss(
    (Piece(SMOOTH, 0, 3, 1.0, (1.7608361395819951, 1.3850748479427777, 1.8313878753948818),
           width=0.01),
     Piece(STAIRS, 3, 16, 1000.0, (
         -1.0052099269307753, -0.639343451237504, 1.6406735497686982, -0.9453458863453668,
         -0.9722537094423782, -1.455289182480366, 1.6909093927974086, 1.1585723816658429,
         -1.9466488613619806, 1.2130744996420353, 1.681000013800816, -0.7523387730602383,
         -0.7907468258491086), width=1.0)),
    np.array([-0.018236909154650496, -0.006601760936845169, 0.00379843927970696,
              35.846662929304735, -17.187387768622134, -39.27572882389193, -34.21207138669191,
              30.192437428383368, 11.159621315923573, 20.18641111252582, 43.08305716754738,
              -36.051211630068465, 17.76243880090203, -31.25613959770755, -20.166679106993552,
              -20.7844956327367]),
    "first",
)


def test_the_probe_does_not_read_a_smooth_pieces_curvature_as_noise() -> None:
    loss = STAIRS_ELSEWHERE
    config = validate(eps=None, scheme="central", seed=0)
    tree = flatten({"x": loss.theta.copy()}, what="params")
    ev = open_evaluator(loss, tree, make_plan(config, tree), config)
    j0 = base_value(ev, tree, complex_step=False)
    sigmas, probes = measure_noise(ev, tree, j0, np.random.default_rng(0), 0)
    # the line's first estimate was 2.4e-7 (4.6e-12 of J: curvature); the re-probe at a 16x
    # smaller step sees ~6e-11 (1e-15 of J: float64's rounding plus what curvature is left).
    # It is no kink either (no ties screen for it).
    assert not probes[0].rough
    assert EPS64 * abs(j0) <= sigmas[0] < 1e-3 * 2.4e-7


@pytest.mark.parametrize("budget", [266, None])
def test_a_thousandth_off_on_a_curved_entry_is_caught_beside_stairs(budget) -> None:
    loss = STAIRS_ELSEWHERE
    assert loss.check(budget=budget).verdict != "failed"
    grads = loss.grads()
    grads["x"][0] *= 1 + 1e-3
    report = loss.check(grads, budget=budget)
    assert report.verdict == "failed", report
    assert np.flatnonzero(report.components["x"].flags.reshape(-1) == MISMATCH).tolist() == [0]
