"""Each stage of core/verdict/ on its own: the noise probe, the first pass, kinks, flat
entries, the base value and the plan."""

from __future__ import annotations

import numpy as np
import pytest

from gradcheck._errors import StochasticLossError
from gradcheck.core._options import validate
from gradcheck.core._schemes import SCHEMES
from gradcheck.core._tree import flatten
from gradcheck.core.verdict._base import base_value, same_again
from gradcheck.core.verdict._first_pass import estimate, evaluate_nodes, judge
from gradcheck.core.verdict._flat import read_as
from gradcheck.core.verdict._kinks import kink
from gradcheck.core.verdict._plan import make_plan, open_evaluator, second_calls
from gradcheck.core.verdict._probe import measure_noise
from gradcheck.core.verdict._records import Flat, Stepper
from gradcheck.report._model import AGREES, MISMATCH

X = np.linspace(0.5, 1.5, 50)


def evaluator(loss, params):
    config = validate(eps=None, scheme="central", seed=0)
    tree = flatten(params, what="params")
    return open_evaluator(loss, tree, make_plan(config, tree), config), tree


@pytest.mark.parametrize("dtype, floor", [(np.float64, 1e-17), (np.float32, 1e-9)])
def test_the_probe_sees_the_precision_the_loss_computes_in(dtype, floor) -> None:
    def loss(p):
        return float(np.sum(np.sin(p["x"].astype(dtype))))

    ev, tree = evaluator(loss, {"x": X})
    j0 = base_value(ev, tree, complex_step=False)
    sigmas, probes = measure_noise(ev, tree, j0, np.random.default_rng(0), 0)
    relative = sigmas[0] / abs(j0)
    assert probes[0].moved and floor < relative < 1e3 * floor


def test_a_stochastic_loss_has_no_base_value() -> None:
    rng = np.random.default_rng(0)
    ev, tree = evaluator(lambda p: float(np.sum(p["x"]) + rng.standard_normal()), {"x": X})
    with pytest.raises(StochasticLossError):
        base_value(ev, tree, complex_step=False)
    same_again(1.0, 1.0 + 1e-14, "and then")  # rounding is not randomness


def test_the_first_pass_estimate_and_its_judgement() -> None:
    scheme = SCHEMES["central"]
    ev, _ = evaluator(lambda p: float(np.sum(p["x"] ** 3)), {"x": X})
    stepper = Stepper(X.copy(), np.full(X.size, 1e-5), np.dtype(np.float64))
    idx = np.arange(X.size)
    nodes = evaluate_nodes(ev, 0, idx, stepper, scheme.nodes, float(np.sum(X**3)), False)
    assert nodes.done == X.size and not nodes.stopped
    value, rounding = estimate(scheme, stepper, idx, nodes.values, 1e-15, False)
    assert np.allclose(value, 3 * X**2, rtol=1e-8) and np.all(rounding > 0)
    g = 3 * X**2
    g[7] *= 1.001
    out = (np.full(X.size, np.nan), np.full(X.size, np.nan), np.zeros(X.size, np.int8))
    judge(scheme, stepper, idx, nodes.values, 1e-15, g, np.zeros(X.size), out)
    assert list(np.flatnonzero(out[2] == MISMATCH)) == [7]
    assert np.all(out[2][np.arange(X.size) != 7] == AGREES)


def test_a_kink_holds_every_subgradient_between_its_slopes() -> None:
    stepper = Stepper(np.zeros(1), np.full(1, 1e-3), np.dtype(np.float64))
    values = {c: np.array([abs(c * 1e-3)]) for c in (0.0, -1.0, -0.5, 0.5, 1.0)}
    for g, holds in ((0.3, True), (-1.0, True), (2.0, False)):
        nonsmooth, inside, sided = kink(stepper, np.array([0]), values, 1.0, 0.0,
                                        np.array([g]), np.zeros(1))
        assert nonsmooth[0] and sided[0] and inside[0] == holds


def test_stairs_on_the_float32_grid_are_a_float32_read() -> None:
    leaf = np.array([0.1, 0.7])
    one = np.array([0])

    def found(reach: float) -> Flat:
        return Flat(1, one, one[:0], one[:0], np.array([reach]), one)

    spacing = float(np.spacing(np.float32(0.1)))
    assert read_as(found(spacing / 2), leaf) == np.dtype(np.float32)
    assert read_as(found(1e-3), leaf) is None  # round(x, 3): stairs wider than any float grid
    assert read_as(found(spacing / 2), leaf.astype(np.float32)) is None


def test_the_plan_reserves_the_second_opinions_of_later_tensors() -> None:
    assert second_calls(SCHEMES["central"].nodes) == 2
    tree = flatten({"a": np.ones(2500), "b": np.ones(300)}, what="params")
    plan = make_plan(validate(eps=None, scheme="central", seed=0, coords="auto"), tree)
    assert plan.confirm[1] > 0 and plan.reserved_after(0) > plan.first[1]
