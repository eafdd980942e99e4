"""The cheaper figures of a component are the figures the NumPy wrappers gave, bit for bit.

The assembly computes each component's figures on a check's few entries with ufuncs and
methods instead of np.sum / np.isin / np.linalg.norm / np.unravel_index, and ``EntryState``
answers NumPy's override lookups itself; these tests hold the results to the wrappers'.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from gradcheck.report._model import (
    AGREES,
    KINK,
    MISMATCH,
    UNCHECKED,
    EntryState,
    entry_figures,
    relative_error,
    verdict,
)

SHAPES = st.sampled_from([(), (1,), (5,), (2, 3), (3, 1, 2)])
VALUES = st.floats(-1e6, 1e6, width=64) | st.just(math.nan)  # NaN: an unchecked entry


def _old_relative_error(numeric: np.ndarray, analytic: np.ndarray) -> float:
    n, g = np.ravel(numeric).astype(np.float64), np.ravel(analytic).astype(np.float64)
    denominator = float(np.linalg.norm(n) + np.linalg.norm(g))
    return 0.0 if denominator == 0.0 else float(np.linalg.norm(n - g) / denominator)


def _old_entry_figures(numeric, analytic, bound, flags, shape):  # noqa: ANN001, ANN202
    numeric, analytic = np.ravel(numeric), np.ravel(analytic)
    bound, flags = np.ravel(bound), np.ravel(flags)
    checked = np.isin(flags, (int(AGREES), int(MISMATCH)))
    diff = np.abs(numeric - analytic)
    excess = np.where(checked, diff / np.maximum(bound, np.finfo(np.float64).tiny), -1.0)
    worst = int(np.argmax(excess)) if excess.size else 0
    return {
        "max_abs_error": float(diff[checked].max()) if checked.any() else 0.0,
        "worst_index": tuple(int(i) for i in np.unravel_index(worst, shape)),
        "numeric": float(numeric[worst]),
        "analytic": float(analytic[worst]),
        "tolerance": float(bound[worst]),
        "checked": int(checked.sum()),
        "skipped": int(checked.size - checked.sum()),
    }


def _same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    return type(a) is type(b) and a == b


@st.composite
def entries(draw: st.DrawFn) -> tuple[np.ndarray, ...]:
    shape = draw(SHAPES)
    n = draw(hnp.arrays(np.float64, shape, elements=VALUES))
    g = draw(hnp.arrays(np.float64, shape, elements=VALUES))
    bound = draw(hnp.arrays(np.float64, shape, elements=st.floats(0, 10)))
    flags = draw(hnp.arrays(np.int8, shape, elements=st.sampled_from([0, 1, 2, 3])))
    return n, g, bound, flags


@settings(max_examples=150, deadline=None)
@given(entries())
def test_entry_figures_are_the_wrappers_figures(case: tuple[np.ndarray, ...]) -> None:
    n, g, bound, flags = case
    with np.errstate(all="ignore"):
        new = entry_figures(n, g, bound, flags, n.shape)
        old = _old_entry_figures(n, g, bound, flags, n.shape)
    assert new.keys() == old.keys()
    for key in old:
        assert _same(new[key], old[key]), (key, new[key], old[key])


@settings(max_examples=150, deadline=None)
@given(entries(), st.sampled_from([np.float64, np.float32]))
def test_relative_error_is_linalg_norms(case: tuple[np.ndarray, ...], dtype: type) -> None:
    n, g = case[0].astype(dtype), case[1].astype(dtype)
    with np.errstate(all="ignore"):
        assert _same(relative_error(n, g), _old_relative_error(n, g))
        n, g = np.ravel(n)[::-1], np.ravel(g)  # a strided view
        assert _same(relative_error(n, g), _old_relative_error(n, g))


@settings(max_examples=100, deadline=None)
@given(hnp.arrays(np.int8, st.integers(0, 6), elements=st.sampled_from([0, 1, 2, 3])))
def test_entry_states_compare_as_plain_ints(flags: np.ndarray) -> None:
    for state in EntryState:
        plain = int(state)
        assert np.array_equal(flags == state, flags == plain)
        assert np.array_equal(np.where(flags == state, state, UNCHECKED),
                              np.where(flags == plain, plain, 0))
        assert (flags + state).dtype == (flags + np.int64(plain)).dtype
    assert np.array_equal(np.isin(flags, (AGREES, MISMATCH)), np.isin(flags, (1, 2)))
    assert np.full(2, KINK, np.int8).tolist() == [3, 3]
    assert repr(KINK) == "<EntryState.KINK: 3>" and list(EntryState) == [0, 1, 2, 3]


def _old_verdict(parts=(), *, mismatches=0, unjudged=0, interrupted=False, judged=True):  # noqa: ANN001, ANN202
    parts = list(parts)
    if mismatches or any(p is False for p in parts):
        return False
    if unjudged or interrupted or not judged or any(p is None for p in parts):
        return None
    return True


def test_verdict_is_the_rule_it_was() -> None:
    values = [True, False, None, np.False_, np.True_, 0, 1]
    options = ({}, {"mismatches": 1}, {"unjudged": 2}, {"interrupted": True}, {"judged": False})
    for k in range(4):
        for parts in itertools.product(values, repeat=k):
            for kw in options:
                assert verdict(parts, **kw) is _old_verdict(parts, **kw), (parts, kw)
    assert verdict(iter([True, None])) is None  # a generator, read once
