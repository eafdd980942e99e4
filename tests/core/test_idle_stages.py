"""Stages with nothing to do return what their full path gives, without its set operations.

The tie screen, the re-check off the kinks, the settling of ties and the blurred-entry notes
return early when no entry is a mismatch, a kink, a tie or blurred; the assembly builds the
report once with the engine's notes; a few NumPy wrappers are written out. Each shortcut is
compared here with the expression it replaces.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gradcheck
from gradcheck.core._evaluate import _batch_values
from gradcheck.core._options import replaced, validate
from gradcheck.core._schemes import SCHEMES
from gradcheck.core._tree import flatten
from gradcheck.core.verdict import _assemble, _kinks, _notes, _ties
from gradcheck.core.verdict._kinks import Recheck
from gradcheck.core.verdict._records import Facts, Setup, TensorResult, nans
from gradcheck.report._model import KINK

FLAGS = st.lists(st.lists(st.integers(0, 3), min_size=1, max_size=12), min_size=1, max_size=3)


def results_of(flags: list[list[int]], unconfirmed: int = 0) -> list[TensorResult]:
    out = []
    for f in flags:
        n = len(f)
        out.append(TensorResult(np.arange(n, dtype=np.float64), np.ones(n), np.full(n, 0.5),
                                np.array(f, np.int8), 1e-6, 1e-16, False,
                                unconfirmed=unconfirmed))
    return out


def no_loss(_: Any) -> float:
    raise AssertionError("the loss must not be called")


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 70))
def test_nans_is_full_nan(n: int) -> None:
    a, b = nans(n), np.full(n, np.nan)
    assert a.dtype == b.dtype and a.shape == b.shape
    assert np.array_equal(a.view(np.uint64), b.view(np.uint64))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(width=64), min_size=1, max_size=8),
       st.sampled_from([np.float16, np.float32, np.float64, np.int64, np.int32, np.longdouble]))
def test_batch_values_cast_is_numpys(values: list[float], dtype: Any) -> None:
    if np.dtype(dtype).kind == "i":
        values = [0.0 if not np.isfinite(v) else float(np.clip(v, -1e9, 1e9)) for v in values]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        js = np.array(values).astype(dtype)
    with np.errstate(over="ignore"):
        expected = js.astype(np.float64)
    got = _batch_values(js, "here")
    assert got.dtype == np.float64
    assert np.array_equal(got.view(np.uint64), expected.view(np.uint64))


@settings(max_examples=60, deadline=None)
@given(FLAGS, st.integers(0, 5))
def test_settle_without_ties_is_the_full_path(flags: list[list[int]], unconfirmed: int) -> None:
    results = results_of(flags, unconfirmed)
    empty = _ties.Ties(tuple(np.array([], np.int64) for _ in results), 0, 0)
    fast = _ties.settle(results, _ties.NO_TIES)
    full = _ties.settle(results, empty)
    assert fast is results  # the same results, unchanged
    assert [r.unconfirmed for r in fast] == [r.unconfirmed for r in full]
    blurred = tuple(np.array([0], np.int64) for _ in results)
    assert ([r.unconfirmed for r in _ties.settle(results, _ties.NO_TIES, blurred)]
            == [r.unconfirmed for r in _ties.settle(results, empty, blurred)])


@settings(max_examples=60, deadline=None)
@given(FLAGS)
def test_kink_recheck_without_kinks_makes_no_call(flags: list[list[int]]) -> None:
    flags = [[2 if v == int(KINK) else v for v in f] for f in flags]  # no kink anywhere
    results = results_of(flags)
    tree = flatten({f"p{i}": np.zeros(len(f)) for i, f in enumerate(flags)})
    got = _kinks.recheck_kinks(no_loss, tree, no_loss, results, None,  # type: ignore[arg-type]
                               facts=tuple(Facts() for _ in results))
    assert got == Recheck(0, 0, 0)


@settings(max_examples=60, deadline=None)
@given(FLAGS)
def test_tie_screen_without_mismatches_is_untouched(flags: list[list[int]]) -> None:
    flags = [[1 if v == 2 else v for v in f] for f in flags]  # kinks maybe, no mismatch
    results = results_of(flags)
    tree = flatten({f"p{i}": np.zeros(len(f)) for i, f in enumerate(flags)})
    facts = [Facts(rough=np.ones(len(f), bool)) for f in flags]
    out, ties = _ties.screen(no_loss, tree, results, None, facts)  # type: ignore[arg-type]
    assert out is results and ties is _ties.NO_TIES


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.booleans(), min_size=1, max_size=8), min_size=1, max_size=3),
       st.booleans())
def test_blurred_notes_are_the_unions(blurred: list[list[bool]], off: bool) -> None:
    tree = flatten({f"p{i}": np.zeros(len(b)) for i, b in enumerate(blurred)})
    facts = [Facts(blurred=np.array(b) if i % 2 else None) for i, b in enumerate(blurred)]
    again = tuple(np.array([0], np.int64) if off and i == 0 else np.array([], np.int64)
                  for i in range(len(blurred)))
    notes = _notes.blurred_notes(tree, facts, Recheck(0, 0, 0, blurred=again))
    expected = []
    for t, f in enumerate(facts):
        mine = np.flatnonzero(f.blurred) if f.blurred is not None else again[t][:0]
        entries = np.union1d(mine, again[t]).astype(np.int64)
        if entries.size:
            expected.append((tree.names[t], entries.tolist()))
    assert [(n.tensor, n.numbers["entries"].tolist()) for n in notes] == expected


def test_replaced_is_dataclasses_replace_for_the_engines_records() -> None:
    # the probe's Setup, the config and the report are copied by ``replaced``
    config = validate(eps=1e-6, scheme="central", seed=3)
    setup = Setup(SCHEMES["central"], config, 2.0, None)
    changes = {"noise": (1e-9,), "probes": ()}
    assert replaced(setup, **changes) == dataclasses.replace(setup, **changes)
    assert replaced(config, budget=9) == dataclasses.replace(config, budget=9)
    report = gradcheck.check(lambda p: float((p["w"] ** 2).sum()), {"w": np.ones(2)},
                             {"w": np.full(2, 2.0)})
    again = replaced(report, evaluations=1)
    assert again.to_json() == dataclasses.replace(report, evaluations=1).to_json()


@pytest.mark.parametrize("interrupted", [False, True])
def test_assembly_with_the_engines_notes_is_the_replaced_report(interrupted: bool) -> None:
    tree = flatten({"w": np.array([1.0, 2.0, 3.0])})
    results = results_of([[1, 2, 0]])
    extra = gradcheck.check(lambda p: float(np.sum(p["w"][:1])), {"w": np.zeros(2)},
                            {"w": np.ones(2)}).notes  # some notes of a check
    args = (tree, results, "central", False, 7, 1.0, 0.0, None, interrupted)
    once = _assemble.assemble(*args, more_notes=extra, options={"seed": 3})
    before = _assemble.assemble(*args)
    before = dataclasses.replace(before, notes=(*before.notes, *extra),
                                 interrupted=interrupted, options={"seed": 3})
    assert once.to_json() == before.to_json()
