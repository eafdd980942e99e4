"""``flatten`` of a plain dict of leaves (its fast path) is the recursive walk's answer: the same
names, the same leaf objects, the same rebuilt dict, the same errors."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gradcheck._errors import GradCheckError
from gradcheck.core._tree import Tree, _require_unique, _walk, flatten


def walked(params: Any, what: str = "params") -> Tree:
    """The walk every structure takes (the fast path's reference)."""
    names: list[str] = []
    leaves: list[Any] = []
    build = _walk(params, "", names, leaves, what)
    _require_unique(names, what)
    return Tree(tuple(names), tuple(leaves), lambda values: build(iter(values)))


LEAVES = st.sampled_from([
    np.ones(3), np.zeros((2, 2), np.float32), np.float64(2.0), 1.5, np.array(0.5),
    np.ones(2).view(np.recarray),  # an ndarray subclass: not a plain ndarray
])
KEYS = st.one_of(st.text(max_size=3), st.integers(-3, 3))


@settings(max_examples=30, deadline=None)
@given(st.dictionaries(KEYS, LEAVES, min_size=1, max_size=5))
def test_flat_dict_is_the_walk(params: dict[Any, Any]) -> None:
    try:
        expected = walked(params)
    except GradCheckError as error:
        with pytest.raises(type(error), match="two entries"):
            flatten(params)
        return
    tree = flatten(params)
    assert tree.names == expected.names
    assert len(tree.leaves) == len(expected.leaves)
    for a, b in zip(tree.leaves, expected.leaves, strict=True):
        assert type(a) is type(b) and a.dtype == b.dtype and np.array_equal(a, b)
        if isinstance(b, np.ndarray) and any(b is v for v in params.values()):
            assert a is b  # the user's own array, not a copy
    new = [np.full(np.shape(x), 7.0) for x in tree.leaves]
    rebuilt, reference = tree.rebuild(new), expected.rebuild(new)
    assert list(rebuilt) == list(reference) and type(rebuilt) is dict
    assert all(rebuilt[k] is reference[k] for k in reference)


def _matrix() -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        return np.matrix([[1.0]])


@pytest.mark.parametrize("bad", [None, 3, True, "w", np.ma.masked_array([1.0]), "matrix",
                                 [np.ones(2)]])
@pytest.mark.parametrize("what", ["params", "grads"])
def test_flat_dict_errors_are_the_walks(bad: Any, what: str) -> None:
    params = {"W": np.ones(2), "b": _matrix() if bad == "matrix" else bad}
    try:
        expected: Any = walked(params, what)
    except GradCheckError as error:
        with pytest.raises(type(error)) as raised:
            flatten(params, what=what)
        assert str(raised.value) == str(error)
        return
    tree = flatten(params, what=what)
    assert tree.names == expected.names


def test_empty_key_is_theta_and_empty_dict_is_refused() -> None:
    assert flatten({"": np.ones(2)}).names == walked({"": np.ones(2)}).names == ("theta",)
    with pytest.raises(GradCheckError, match="holds no arrays"):
        flatten({})
