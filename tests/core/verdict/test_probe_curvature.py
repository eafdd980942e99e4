"""The noise probe must not read curvature as noise (issue 22, part 3: a x(1 + 1e-3) error on a
smooth entry hidden by a staircase elsewhere in J, found by benchmarks/invariants_sweep.py).

A tensor's probe line moves every entry by δ times its scale, floored by the tensor's typical
scale: round() stairs whose entries sit at ~50 lift that floor, and a sin(x / 0.01) term whose
entries sit at ~0.01 is then moved by ~2% of its period per step. ECnoise's differences along
that line keep shrinking with their order and never stabilise: curvature, not rounding. Read as
noise, σ widened the steps until the error hid inside their truncation.

A fix (re-probe such a line at a 16x smaller step; a line kinked at θ through every re-probe
left at float64's rounding) is held back: the accurate σ it gives exposes correct staircases
that passed only inside the inflated one (round() of width 1e-7 whose stairs are 5-10 float64
roundings of J high, which ``_flat.constant_aside``'s 8-rounding step cannot see as flat; a
float16 read beside max-pool ties), so the sweep's correct rows got worse. Its patch and the
figures are in BENCHMARKS.md ("probe"). Until then these tests are expected failures."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gradcheck.core._options import validate
from gradcheck.core._tree import flatten
from gradcheck.core.verdict._base import base_value
from gradcheck.core.verdict._plan import make_plan, open_evaluator
from gradcheck.core.verdict._probe import measure_noise
from gradcheck.report._model import MISMATCH

sys.path.insert(0, str(Path(__file__).parent))

from test_invariants import MAX_ONE_SIGN, SMOOTH, STAIRS, Loss, Piece  # noqa: E402

EPS64 = float(np.finfo(np.float64).eps)
CURVATURE = ("the probe reads an untrusted ECnoise estimate (levels shrinking with their "
             "order, no sign change: curvature) as noise; its fix is held (BENCHMARKS.md)")
KINK_AT_THETA = ("a probe line kinked at θ (max-pool ties) still shrinks at the 6th re-probe "
                 "and σ keeps a 16th of it, 47x float64's; its fix is held (BENCHMARKS.md)")

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


def _noise(loss: Any) -> tuple[Any, Any, float]:
    """The noise probe's sigmas and probes, and J, for ``loss`` at its theta (seed 0)."""
    config = validate(eps=None, scheme="central", seed=0)
    tree = flatten({"x": loss.theta.copy()}, what="params")
    ev = open_evaluator(loss, tree, make_plan(config, tree), config)
    j0 = base_value(ev, tree, complex_step=False)
    sigmas, probes = measure_noise(ev, tree, j0, np.random.default_rng(0), 0)
    return sigmas, probes, j0


@pytest.mark.xfail(strict=True, reason=CURVATURE)
def test_the_probe_does_not_read_a_smooth_pieces_curvature_as_noise() -> None:
    sigmas, probes, j0 = _noise(STAIRS_ELSEWHERE)
    # the line's estimate is 2.4e-7 (4.6e-12 of J: curvature); the held fix's re-probe at a
    # 16x smaller step sees ~6e-11 (1e-15 of J: float64's rounding plus what curvature is left),
    # and no kink either (no ties screen for it).
    assert not probes[0].rough
    assert EPS64 * abs(j0) <= sigmas[0] < 1e-3 * 2.4e-7


@pytest.mark.xfail(strict=True, reason=CURVATURE)
@pytest.mark.parametrize("budget", [266, None])
def test_a_thousandth_off_on_a_curved_entry_is_caught_beside_stairs(budget) -> None:
    loss = STAIRS_ELSEWHERE
    assert loss.check(budget=budget).verdict != "failed"
    grads = loss.grads()
    grads["x"][0] *= 1 + 1e-3
    report = loss.check(grads, budget=budget)
    assert report.verdict == "failed", report
    assert np.flatnonzero(report.components["x"].flags.reshape(-1) == MISMATCH).tolist() == [0]


# invariants_sweep.py --losses 1000, row "stairs elsewhere", at budget 88 (4N): σ is right here
# (float64's rounding of a J of 1.2e4, which the stairs' scale of 1000 sets), but the smooth
# piece's entries (scale 1e-3, g = -2.2e-3) move J by so little at the automatic step that the
# second opinion's rounding allowance (SAFETY·σ/h ~ 5.5e-6) is larger than the error (2.2e-6).
# A larger step would resolve it (J''' is ~1e-3 there), but the steps follow J's magnitude and
# the second opinion only halves them. With budget=None the directional test catches it.
SMALL_BESIDE_LARGE_STAIRS = Loss(
    (Piece(SMOOTH, 0, 10, 0.001, (
        -1.3429843675460555, -1.8482868282052989, -1.0747675888674522, -1.439727012699075,
        0.8177363871669587, -1.6863456715017233, 0.7345981078693116, -0.5099844883735487,
        1.0096401969192061, -0.5550236225043981), width=1.0),
     Piece(STAIRS, 10, 19, 1000.0, (
         -0.8617338665214371, 0.9003123841922086, 1.402542938583593, -0.6001602178180423,
         1.4254087021015407, -0.6603148924187308, 0.6361870331402912, -1.2788525522725898,
         -0.7735253630663543), width=0.1),
     Piece(STAIRS, 19, 22, 1.0, (-0.7823556558067206, 0.5321769891854438, 1.8313675012166364),
           width=0.1)),
    np.array([-0.4202900847895128, -1.092108046654288, 0.6991253671446374, -1.0390842858656986,
              0.7061044611941343, -1.5043676980815315, -1.9547067935589908, 1.394321411610969,
              0.6978079641804178, -0.17125920488025947, -4.494929320257582, 3.281000828180428,
              -1.8117210112318887, 0.02734521600664514, 4.4198940597386684, 2.1140256384192564,
              -1.123229055836535, -2.4089367825271024, -1.128169855049156, 3.3196257388980572,
              4.9155861104612475, 3.3705044083934377]),
    "first",
)


@pytest.mark.xfail(strict=True, reason="resolution limit of the automatic step, not the probe: "
                   "a small smooth piece beside a J of 1e4 moves J by less than SAFETY·σ/h")
def test_a_thousandth_off_on_a_small_piece_beside_large_stairs_at_4n() -> None:
    loss = SMALL_BESIDE_LARGE_STAIRS
    grads = loss.grads()
    grads["x"][6] *= 1 + 1e-3
    assert loss.check(grads, budget=88).verdict != "passed"


# invariants_sweep.py --losses 1000, row "ample budget": max-pool windows tied at θ (scale 1000)
# put a kink on the probe's line at θ itself, so its apparent noise shrinks with the step at
# every re-probe (6 of them, 16x each). None of it was rounding, which would have stopped it:
# σ then falls to float64's rounding of J, as a line followed down to it does, instead of a
# 16th of the last re-probe (47x float64's here, which widened the steps past a width-0.01 sine).
# (What the held fix does; today σ keeps that 16th.)
KINKED_AT_THETA = Loss(
    (
        Piece(SMOOTH, 0, 6, 1.0, (
            -0.5867762142236326, -1.7578515478053744, 1.3347622607268297, -1.3417486346518115,
            0.6724116887387629, -1.8294931831878654),
              width=0.01),
        Piece(SMOOTH, 6, 11, 1.0, (
            -1.9147317878284738, -1.415432619391591, 1.5381486189746427, -0.969777741500327,
            -1.4668025192900307),
              width=100.0),
        Piece(SMOOTH, 11, 23, 1000.0, (
            0.5687990552662555, -1.5436922641359698, -0.5898052684899421, -1.6701039988401234,
            -1.30714861370334, -1.514532256606648, 1.3525856295777672, 0.5786237617197807,
            -0.7659063282356746, -1.5698154417682542, -1.5492209588525914, -0.9365250002572276),
              width=100.0),
        Piece(MAX_ONE_SIGN, 23, 38, 1000.0, (
            -1.9147317878284738, -1.415432619391591, -1.5381486189746427, -0.969777741500327,
            -1.4668025192900307, -0.7649069573138162, -0.9723668621080844, -1.2236178564250424,
            -1.119722907033263, -1.0839923548033896, -0.6577959799177133, -1.7185479725370854,
            -1.6927885522105535, -0.686690549271614),
              width=1.0),
    ),
    np.array([
        0.015858384115821335, 0.01221684925150628, -0.012917962020280288,
        0.0013625912384501683, 0.019699019522141096, -0.005251632174966563, -34.74055812446317,
        -44.26870538576275, -157.9210720219431, 124.94612600988941, 118.07694725614759,
        111.88150878804181, 177.01687479462836, -114.31172472203967, -143.61763191391455,
        87.64883446193141, -92.54879596142165, -12.391228277449251, -132.02401475892609,
        162.23246423282833, 83.57987410421961, -151.00241811573474, -37.589946451750265, 0.0,
        0.0, 10.0, 10.0, 0.0, 0.0, 10.0, 10.0, 10.0, 0.0, 20.0, 10.0, 10.0, 0.0, 20.0]),
    "first",
)


@pytest.mark.xfail(strict=True, reason=KINK_AT_THETA)
def test_a_line_kinked_at_theta_through_every_reprobe_leaves_float64s_rounding() -> None:
    sigmas, probes, _ = _noise(KINKED_AT_THETA)
    assert probes[0].rough and sigmas[0] <= 4 * EPS64 * probes[0].scale


@pytest.mark.xfail(strict=True, reason=KINK_AT_THETA)
def test_a_thousandth_off_beside_ties_at_theta_is_not_passed() -> None:
    loss = KINKED_AT_THETA
    assert loss.check(budget=1171).verdict == "passed"
    grads = loss.grads()
    grads["x"][5] *= 1 + 1e-3
    assert loss.check(grads, budget=1171).verdict != "passed"
