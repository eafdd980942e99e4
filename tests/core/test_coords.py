"""Coordinate selection: stratified samples that cover every tensor, "auto" and the budget."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nets import mlp, snapshot

import gradcheck
from gradcheck.core._coords import quotas, select
from gradcheck.report._model import UNCHECKED
from gradcheck.report._sentences import NoteCode


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(1, 5000), min_size=1, max_size=8), st.integers(1, 20000))
def test_quotas_cover_every_tensor_and_respect_k(sizes: list[int], k: int) -> None:
    q = quotas(sizes, k)
    assert all(1 <= qi <= s for qi, s in zip(q, sizes, strict=True))
    assert sum(q) <= max(k, len(sizes))
    if k >= sum(sizes):
        assert q == sizes
    share = k // len(sizes)
    assert all(qi == s for qi, s in zip(q, sizes, strict=True) if s <= share)  # small: whole


def test_select_modes() -> None:
    rng = np.random.default_rng(0)
    assert select("all", [10, 5], 2, 1, rng).indices == (None, None)
    # 2N = 30 plus J(θ) 3x, 2 noise probes and 16 spare calls fits in 61, not in 60
    assert select("auto", [10, 5], 2, 61, rng).indices == (None, None)
    assert select("auto", [10, 5], 2, 61, rng).limit == 61
    with pytest.raises(gradcheck.OptionError, match=r"budget=60 is too small .* at least"):
        select("auto", [10, 5], 2, 60, rng)
    auto = select("auto", [10_000, 5], 2, 1_000, rng)
    assert auto.directional and auto.indices[1] is None and len(auto.indices[0]) < 10_000
    directional = select("directional", [10, 5], 2, 1, rng)
    assert directional.directional and [len(i) for i in directional.indices] == [0, 0]


def test_sample_is_stratified_and_reported() -> None:
    loss, params, grads = mlp(sizes=(20, 30, 4))  # W1 600, b1 30, W2 120, b2 4
    r = gradcheck.check(loss, params, grads(params), coords=100)
    counts = {n: c.checked for n, c in r.components.items()}
    assert counts["b2"] == 4 and sum(counts.values()) <= 100
    assert all(c.checked + c.skipped == np.prod(c.shape) for c in r.components.values())
    w1 = r.components["W1"]
    unchecked = w1.flags == UNCHECKED
    assert unchecked.sum() == w1.skipped > 0 and np.isnan(w1.numeric_array[unchecked]).all()
    assert r.evaluations < 2 * 754
    assert any(n.code is NoteCode.SAMPLED and (n.numbers["done"], n.numbers["total"]) == (100, 754)
               for n in r.notes)


def test_fraction_and_seed() -> None:
    loss, params, grads = mlp(sizes=(20, 30, 4))
    g = grads(params)
    a = gradcheck.check(loss, params, g, coords=0.1, seed=3)
    b = gradcheck.check(loss, params, g, coords=0.1, seed=3)
    c = gradcheck.check(loss, params, g, coords=0.1, seed=4)
    flags = [np.flatnonzero(r.components["W1"].flags) for r in (a, b, c)]
    assert np.array_equal(flags[0], flags[1]) and not np.array_equal(flags[0], flags[2])
    assert sum(x.checked for x in a.components.values()) == 76  # ceil(0.1 · 754)


def test_auto_is_the_full_check_when_it_fits() -> None:
    loss, params, grads = mlp("relu")
    g = grads(params)
    g["W2"][3, 1] += 0.1
    before = snapshot(params)
    full = gradcheck.check(loss, params, g, coords="all").to_dict()
    auto = gradcheck.check(loss, params, g).to_dict()
    full.pop("seconds"), auto.pop("seconds")
    assert full.pop("options")["coords"] == "all" and auto.pop("options")["coords"] == "auto"
    assert full == auto and snapshot(params) == before


def test_a_sample_finds_a_bug_in_a_small_tensor() -> None:
    loss, params, grads = mlp(sizes=(20, 30, 4))
    g = grads(params)
    g["b2"][2] *= -1
    r = gradcheck.check(loss, params, g, coords=30)
    assert r.suspects == ("b2",) and r.components["b2"].worst_index == (2,)


@pytest.mark.parametrize(
    ("coords", "budget"), [("some", 10), (0, 10), (1.5, 10), (True, 10), ("all", 0), (5, 2.5)]
)
def test_invalid_options(coords: object, budget: object) -> None:
    loss, params, grads = mlp()
    with pytest.raises(gradcheck.OptionError, match="coords|budget"):
        gradcheck.check(loss, params, grads, coords=coords, budget=budget)


def test_directional_needs_a_real_step() -> None:
    loss, params, grads = mlp()
    with pytest.raises(gradcheck.OptionError, match="scheme='complex'"):
        gradcheck.check(loss, params, grads, coords="directional", scheme="complex")
