"""``Layout``: a flat θ read as named tensors (row-major or Octave's column-major) and back."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gradcheck
from gradcheck.core._layout import Layout

shapes = st.lists(st.lists(st.integers(1, 4), min_size=0, max_size=3).map(tuple),
                  min_size=1, max_size=4)


@settings(max_examples=60, deadline=None)
@given(shapes, st.sampled_from(["C", "F"]))
def test_unflatten_then_flatten_gives_theta_back(dims, order):
    layout = Layout({f"t{i}": s for i, s in enumerate(dims)}, order=order)
    theta = np.arange(layout.size, dtype=np.float64)
    named = layout.unflatten(theta)
    assert [named[n].shape for n in layout.names] == list(dims)
    assert np.array_equal(layout.flatten(named), theta)
    # the rows of batched_loss (each tensor raveled row-major) map back onto θ's order
    rows = np.concatenate([named[n].ravel() for n in layout.names])
    assert np.array_equal(rows[layout.positions()], theta)


def test_column_major_reads_as_octave_unrolls():
    theta1 = np.arange(6.0).reshape(2, 3)
    theta = theta1.ravel(order="F")  # Octave's Theta1(:)
    named = Layout({"Theta1": (2, 3)}, order="F").unflatten(theta)
    assert np.array_equal(named["Theta1"], theta1)
    assert np.array_equal(Layout({"W": (2, 3)}).unflatten(theta1.ravel())["W"], theta1)


def test_unflatten_copies_and_leaves_theta_alone():
    theta = np.arange(5.0)
    named = Layout({"W": (2, 2), "b": 1}).unflatten(theta)
    named["W"][0, 0] = 99.0
    assert theta[0] == 0.0


@pytest.mark.parametrize(("size", "words"), [
    (7, "θ has 7 entries but the layout adds up to 8 (W 2x3 + b 2): θ has 1 fewer"),
    (10, "θ has 10 entries but the layout adds up to 8 (W 2x3 + b 2): θ has 2 more"),
])
def test_a_layout_that_does_not_add_up_says_by_how_much(size, words):
    with pytest.raises(gradcheck.ShapeMismatchError) as error:
        Layout({"W": (2, 3), "b": 2}).unflatten(np.zeros(size), "θ")
    assert words in str(error.value)


def test_a_column_vector_is_flat_but_a_matrix_is_not():
    layout = Layout({"W": (2, 2)})
    assert layout.unflatten(np.ones((4, 1)))["W"].shape == (2, 2)
    with pytest.raises(gradcheck.ShapeMismatchError, match=r"shape \(2, 2\); with layout= it must"):
        layout.unflatten(np.ones((2, 2)))


@pytest.mark.parametrize(("shapes", "order", "words"), [
    ({}, "C", "must map each tensor's name"),
    ({"W": (2, 0)}, "C", r"layout\['W'\] = \(2, 0\) must be a shape"),
    ({"W": "2x3"}, "C", "must be a shape"),
    ({"W": 2.5}, "C", "must be a shape"),
    ({"W": (2, True)}, "C", "must be a shape"),
    ({"W": 3}, "A", "must be 'C'"),
])
def test_bad_layouts_are_refused_with_the_rule(shapes, order, words):
    with pytest.raises(gradcheck.OptionError, match=words):
        Layout(shapes, order=order)


def test_describe_says_which_slice_is_which():
    text = Layout({"Theta1": (2, 3), "Theta2": 4}, order="F").describe()
    assert text == ("Theta1 = θ[0:6].reshape((2, 3), order='F'); "
                    "Theta2 = θ[6:10].reshape((4,), order='F')")
