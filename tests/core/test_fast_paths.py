"""The engine's fast paths on Python floats give NumPy's numbers bit for bit.

Each cheaper form in core/ (a few values summed in Python, a median sorted in Python, a
finiteness mask built node by node) stands in for a NumPy expression that the verdict used
before; these tests compare the two on values chosen to expose rounding order, signed zeros,
NaN and infinities.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from gradcheck.core import _edges
from gradcheck.core._evaluate import SerialEvaluator, Workspace
from gradcheck.core._noise import (
    _numpy_noise_level,
    _small_noise_level,
    distinct,
    noise_level,
    resolution,
)
from gradcheck.core._schemes import derivative_weights, median
from gradcheck.core._tolerance import analytic_bound
from gradcheck.core._tree import flatten
from gradcheck.core.verdict._probe import _centred, direction_of, magnitude, normals

FLOATS = st.floats(allow_nan=False, allow_infinity=False, width=64)
ANY = st.one_of(FLOATS, st.sampled_from([0.0, -0.0, 1e16, -1e16, 3.3, math.inf, math.nan]))


def same(a: object, b: object) -> bool:
    """Equal bit for bit (NaN equal to NaN, 0.0 not equal to -0.0)."""
    x, y = np.atleast_1d(np.asarray(a)), np.atleast_1d(np.asarray(b))
    return x.dtype == y.dtype and np.array_equal(x.view(np.uint8), y.view(np.uint8))


def warned(f: Callable[[np.ndarray], Any], x: np.ndarray) -> tuple[Any, list[type]]:
    """f(x), and the categories of the warnings it gave."""
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        out = f(x)
    return out, [w.category for w in seen]


@settings(max_examples=300, deadline=None)
@given(st.lists(FLOATS.map(lambda x: math.fmod(x, 1e6)), min_size=4, max_size=8),
       st.integers(-16, 2))
def test_noise_level_matches_numpy(noise: list[float], exponent: int) -> None:
    values = 1.0 + 0.01 * np.arange(len(noise)) + np.array(noise) * 10.0**exponent
    assert _small_noise_level(values.tolist()) == _numpy_noise_level(values)
    assert noise_level(values) == _numpy_noise_level(values)


def test_noise_level_leaves_overflow_to_numpy() -> None:
    values = np.array([1e308, -1e308, 1e308, -1e308, 1e308, -1e308, 1e308])
    assert _small_noise_level(values.tolist()) is None  # inf - inf: the NumPy path decides


@settings(max_examples=300, deadline=None)
@given(st.lists(ANY, min_size=0, max_size=70))
def test_median_matches_numpy(values: list[float]) -> None:
    x = np.array(values, dtype=np.float64)
    if x.size:  # the same number, and the same warnings (an overflow)
        assert same(*warned(median, x)[:1], *warned(lambda y: float(np.median(y)), x)[:1])
        assert warned(median, x)[1] == warned(lambda y: float(np.median(y)), x)[1]


@given(st.lists(ANY, min_size=1, max_size=20))
def test_distinct_matches_unique(values: list[float]) -> None:
    x = np.array(values, dtype=np.float64)
    if np.isnan(x).sum() < 2:  # np.unique keeps one NaN; distinct asks for two numbers
        assert distinct(x) == (np.unique(x).size > 1)


def numpy_resolution(values: np.ndarray) -> float:
    """``resolution`` as it was written in NumPy, up to its float32 refinement (the reference)."""
    v = np.asarray(values, dtype=np.float64)
    if np.unique(v).size < 2:
        return 0.0
    for dtype in (np.float16, np.float32):
        if np.abs(v).max() > np.finfo(dtype).max:
            continue
        narrow = v.astype(dtype)
        if np.array_equal(narrow.astype(np.float64), v):
            return 0.5 * float(np.spacing(np.abs(narrow).max()))
    return 0.0


@given(st.lists(st.floats(-1e30, 1e30), min_size=2, max_size=7), st.sampled_from([16, 32, 64]))
def test_resolution_matches_numpy(values: list[float], bits: int) -> None:
    dtype = {16: np.float16, 32: np.float32, 64: np.float64}[bits]
    with np.errstate(over="ignore"):
        x = np.array(values).astype(dtype).astype(np.float64)
    if np.all(np.isfinite(x)):
        reference = numpy_resolution(x)
        if bits != 32 or not reference:  # (float32's own refinement comes after: unchanged)
            assert same(resolution(x), reference)


@given(st.lists(st.floats(-1e3, 1e3), min_size=2, max_size=40), st.floats(1e-8, 1.0))
def test_two_node_weights_match_the_loop(offsets: list[float], h: float) -> None:
    t = np.array([[-h * (1 + abs(o)) for o in offsets], [h * (1 + abs(o)) for o in offsets]])
    loop = np.zeros_like(t)  # the general loop of derivative_weights, for two nodes
    loop[0] += 1.0 / (t[0] - t[1])
    loop[1] += 1.0 / (t[1] - t[0])
    assert same(derivative_weights(t), loop)


@given(st.lists(st.tuples(ANY, ANY), min_size=0, max_size=12))
def test_outside_matches_stacked(pairs: list[tuple[float, float]]) -> None:
    left = np.array([p[0] for p in pairs], dtype=np.float64)
    right = np.array([p[1] for p in pairs], dtype=np.float64)
    values = {-1.0: left, 0.0: np.zeros(len(pairs)), 1.0: right}
    stacked = np.stack([np.real(v) for c, v in values.items() if c != 0])
    assert same(_edges.outside(values), np.flatnonzero(~np.all(np.isfinite(stacked), axis=0)))


@given(st.lists(FLOATS.map(lambda x: math.fmod(x, 1e100)), min_size=1, max_size=300))
def test_analytic_bound_rms_matches_numpy(g: list[float]) -> None:
    x = np.array(g)
    rtol = {np.dtype(np.float64): 1e-9}
    expected = (1e-9 * (np.abs(x) + float(np.sqrt(np.mean(np.square(x))))) + 0.0
                + 16.0 * float(np.finfo(np.float64).eps) * 2.0
                + float(np.finfo(np.float64).smallest_subnormal))
    assert same(analytic_bound(x, np.dtype(np.float64), rtol, {}, 2.0), expected)


@given(st.lists(st.one_of(st.floats(-1e6, 1e6), st.sampled_from([0.0, math.inf, math.nan])),
                min_size=1, max_size=50),
       st.integers(0, 2**32 - 1))
def test_direction_matches_numpy(theta: list[float], seed: int) -> None:
    x = np.array(theta, dtype=np.float64)
    ours = direction_of(x, np.random.default_rng(seed))
    rng = np.random.default_rng(seed)
    finite = np.isfinite(x)
    direction = np.where(finite, rng.standard_normal(x.size), 0.0)
    inside = x[finite]
    nonzero = np.abs(inside[inside != 0])
    floor = max(1.0, float(np.median(nonzero)) if nonzero.size else 1.0)
    scale = np.maximum(np.abs(np.where(finite, x, 0.0)), floor)
    norm = float(np.sqrt(np.mean(direction**2)))
    assert same(ours, direction * scale / max(norm, np.finfo(np.float64).tiny))


@given(st.lists(st.integers(1, 40), min_size=1, max_size=4), st.integers(0, 2**32 - 1))
def test_replayed_draws_are_the_generators(sizes: list[int], seed: int) -> None:
    tree = flatten({f"p{i}": np.ones(n) for i, n in enumerate(sizes)}, what="params")
    rng, replayed = np.random.default_rng(seed), normals(seed, tree)
    for n in sizes:
        assert same(replayed.standard_normal(n), rng.standard_normal(n))
    again = normals(seed, tree)  # from the cache: the same numbers, not to be written into
    first = again.standard_normal(sizes[0])
    assert same(first, np.random.default_rng(seed).standard_normal(sizes[0]))
    assert not first.flags.writeable


@given(st.lists(ANY, min_size=7, max_size=7), FLOATS, st.floats(1e-12, 1.0), st.floats(0, 1))
def test_magnitude_matches_numpy(values: list[float], j0: float, delta: float,
                                 sigma: float) -> None:
    v = np.array(values)
    k = np.arange(v.size) - v.size // 2
    with np.errstate(all="ignore"):
        moved = np.abs(v - j0)[k != 0] / (np.abs(k[k != 0]) * delta)
    variation = float(np.max(moved[np.isfinite(moved)], initial=0.0)) / 16.0
    cancelled = variation > abs(j0) and sigma <= 1e-11 * variation
    expected = variation if cancelled or j0 == 0 else abs(j0)
    with np.errstate(all="ignore"):
        assert same(magnitude(v, j0, delta, sigma), expected)


def test_centred_is_insert() -> None:
    js = np.arange(6.0) + 0.5
    assert same(_centred(js, -7.25), np.insert(js, 3, -7.25))


def test_along_hands_the_loss_the_same_points() -> None:
    # θ + s·d made for all steps at once (small tensors) or one at a time: the same bits
    for n in (5, 5000):
        rng = np.random.default_rng(n)
        theta, direction = rng.standard_normal(n), rng.standard_normal(n) * 1e-3
        steps = np.array([-3.0, -2.0, -1.0, 1.0, 2.0, 3.0]) * 1e-5
        seen: list[np.ndarray] = []
        tree = flatten({"w": theta}, what="params")
        ev = SerialEvaluator(lambda p, seen=seen: seen.append(p["w"].copy()) or 0.0,
                             Workspace(tree))
        ev.along(0, direction, steps)
        assert all(same(x, theta + s * direction) for x, s in zip(seen, steps.tolist(),
                                                                   strict=True))
        assert same(ev.ws.arrays[0], theta)  # put back
