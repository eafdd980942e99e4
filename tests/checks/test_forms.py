"""The courses' forms at check's boundary: a flat θ with layout=, (J, grad) losses, args=, and
gradients off by size-1 axes. Each is reported as the named dict form would be."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gradcheck
from gradcheck.report._sentences import NoteCode

RNG = np.random.default_rng(7)
X, Y = RNG.standard_normal((6, 3)), RNG.standard_normal((6, 2))
PARAMS = {"W1": RNG.standard_normal((3, 4)), "b1": RNG.standard_normal(4),
          "W2": RNG.standard_normal((4, 2)), "b2": RNG.standard_normal(2)}
SHAPES = {k: v.shape for k, v in PARAMS.items()}


def mlp_loss(p):
    h = np.tanh(X @ p["W1"] + p["b1"])
    return float(0.5 * np.sum((h @ p["W2"] + p["b2"] - Y) ** 2))


def mlp_grads(p, bug=None):
    h = np.tanh(X @ p["W1"] + p["b1"])
    d2 = h @ p["W2"] + p["b2"] - Y
    d1 = (d2 @ p["W2"].T) * (1 - h**2)
    g = {"W1": X.T @ d1, "b1": d1.sum(0), "W2": h.T @ d2, "b2": d2.sum(0)}
    if bug == "W1_col_1":
        g["W1"][:, 1] *= 2
    return g


def flat(named, order="C"):
    return np.concatenate([np.ravel(named[k], order=order) for k in SHAPES])


def unflat(theta, order="C"):
    return gradcheck.Layout(SHAPES, order=order).unflatten(theta)


@pytest.mark.parametrize("order", ["C", "F"])
def test_a_flat_theta_with_a_layout_is_reported_as_the_dict_form(order):
    dict_form = gradcheck.check(mlp_loss, PARAMS, mlp_grads(PARAMS, "W1_col_1"))
    theta = flat(PARAMS, order)
    before = theta.copy()
    layout = SHAPES if order == "C" else gradcheck.Layout(SHAPES, order="F")
    report = gradcheck.check(lambda t: mlp_loss(unflat(t, order)), theta,
                             flat(mlp_grads(PARAMS, "W1_col_1"), order), layout=layout)
    assert np.array_equal(theta, before)  # the user's θ is untouched
    assert report.suspects == dict_form.suspects == ("W1",)
    assert list(report.components) == ["W1", "b1", "W2", "b2"]
    for name, c in report.components.items():
        d = dict_form.components[name]
        assert c.shape == d.shape and c.worst_index == d.worst_index
        assert np.array_equal(c.flags, d.flags)
    assert np.argwhere(report.components["W1"].flags == 2)[:, 1].tolist() == [1, 1, 1]
    assert [f.kind for f in report.findings] == [f.kind for f in dict_form.findings]
    (layout,) = [n for n in report.notes if n.code is NoteCode.FLAT_LAYOUT]
    assert "θ[0:12].reshape((3, 4)" in layout.numbers["where"]


def test_the_loss_receives_a_flat_vector_of_thetas_shape():
    seen = set()

    def loss(t):
        seen.add(t.shape)
        return mlp_loss(unflat(t))

    theta = flat(PARAMS).reshape(-1, 1)  # a column, as Octave's nn_params
    report = gradcheck.check(loss, theta, flat(mlp_grads(PARAMS)), layout=SHAPES)
    assert report.passed is True and seen == {(theta.size, 1)}


def test_a_flat_grad_function_and_a_batched_loss_get_theta_order_back():
    layout = gradcheck.Layout(SHAPES, order="F")
    grads = lambda t: flat(mlp_grads(unflat(t, "F")), "F")  # noqa: E731
    batched = lambda ts: np.array([mlp_loss(unflat(t, "F")) for t in ts])  # noqa: E731
    report = gradcheck.check(lambda t: mlp_loss(unflat(t, "F")), flat(PARAMS, "F"), grads,
                             layout=layout, batched_loss=batched)
    assert report.passed is True


def test_a_layout_that_does_not_add_up_is_an_error_saying_by_how_much():
    theta = flat(PARAMS)
    with pytest.raises(gradcheck.ShapeMismatchError, match=r"theta has 26 entries but the "
                       r"layout adds up to 24 .*2 more"):
        gradcheck.check(mlp_loss, theta, theta, layout={"W1": (3, 4), "W2": (4, 2), "b2": 4})
    with pytest.raises(gradcheck.ShapeMismatchError, match=r"grads has 25 entries .* 1 fewer"):
        gradcheck.check(mlp_loss, theta, theta[:-1], layout=SHAPES)


# ---- (J, grad) -----------------------------------------------------------------------------------


def test_grads_returned_calls_the_function_once_per_point():
    calls = 0

    def cost(theta, bug=None):  # Ng's [J grad] = nnCostFunction(...), in NumPy
        nonlocal calls
        calls += 1
        p = unflat(theta)
        return mlp_loss(p), flat(mlp_grads(p, bug))

    report = gradcheck.check(cost, flat(PARAMS), "returned", layout=SHAPES)
    assert report.passed is True
    assert calls == report.evaluations  # J(θ) and grad(θ) came from one call
    report = gradcheck.check(cost, flat(PARAMS), "returned", layout=SHAPES, args=("W1_col_1",))
    assert report.suspects == ("W1",)


def test_grads_returned_with_a_dict_as_cs231n_returns_loss_and_grads():
    report = gradcheck.check(lambda p: (mlp_loss(p), mlp_grads(p)), PARAMS, "returned")
    assert report.passed is True


def test_args_are_passed_after_params_as_scipy_does():
    def loss(theta, x, y):
        return float(np.sum((x @ theta - y) ** 2))

    def grad(theta, x, y):
        return 2 * x.T @ (x @ theta - y)

    x, y = RNG.standard_normal((5, 3)), RNG.standard_normal(5)
    assert gradcheck.check(loss, np.ones(3), grad, args=(x, y)).passed is True


def test_a_loss_that_does_not_return_a_pair_says_what_returned_means():
    with pytest.raises(gradcheck.GradCheckError, match=r"needs a loss returning \(J, grad\)"):
        gradcheck.check(mlp_loss, PARAMS, "returned")
    with pytest.raises(gradcheck.OptionError, match="grads='returnd' is not a known form"):
        gradcheck.check(mlp_loss, PARAMS, "returnd")
    with pytest.raises(gradcheck.OptionError, match="args='X' must be a tuple"):
        gradcheck.check(mlp_loss, PARAMS, mlp_grads(PARAMS), args="X")


# ---- size-1 axes ---------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(1, 4), (4, 1), (1, 4, 1)])
def test_a_keepdims_gradient_is_judged_on_its_values_with_a_note(shape):
    g = mlp_grads(PARAMS)
    g["b1"] = g["b1"].reshape(shape)
    report = gradcheck.check(mlp_loss, PARAMS, g)
    assert report.passed is True
    (note,) = [n for n in report.notes if n.code is NoteCode.SIZE_ONE_AXES]
    assert note.numbers["found"] == [("b1", shape, (4,))]
    g["b1"] = 3 * g["b1"]  # wrong values are still wrong
    assert gradcheck.check(mlp_loss, PARAMS, g).suspects == ("b1",)


def test_keepdims_in_a_grads_function_and_in_the_courses_names():
    def grads(p):
        g = mlp_grads(p)
        return {"dW1": g["W1"], "db1": g["b1"][None, :], "dW2": g["W2"], "db2": g["b2"]}

    report = gradcheck.check(mlp_loss, PARAMS, grads)
    assert report.passed is True
    (note,) = [n for n in report.notes if n.code is NoteCode.SIZE_ONE_AXES]
    assert note.numbers["found"] == [("db1", (1, 4), (4,))]


def test_a_layout_for_params_that_are_already_named_is_refused():
    with pytest.raises(gradcheck.OptionError, match="layout= reads a flat θ .* params is a dict"):
        gradcheck.check(mlp_loss, PARAMS, mlp_grads(PARAMS), layout=SHAPES)


def test_a_flat_theta_may_come_with_named_grads():
    report = gradcheck.check(lambda t: mlp_loss(unflat(t)), flat(PARAMS), mlp_grads(PARAMS),
                             layout=SHAPES)
    assert report.passed is True


@settings(max_examples=15, deadline=None)
@given(st.sampled_from(["C", "F"]), st.sampled_from(list(SHAPES)), st.integers(0, 1000))
def test_any_planted_entry_is_found_at_the_same_place_flat_or_named(order, name, k):
    g = mlp_grads(PARAMS)
    index = np.unravel_index(k % g[name].size, g[name].shape)
    g[name][index] += 1.0
    theta = flat(PARAMS, order)
    report = gradcheck.check(lambda t: mlp_loss(unflat(t, order)), theta, flat(g, order),
                             layout=gradcheck.Layout(SHAPES, order=order))
    assert report.suspects == (name,)
    wrong = np.argwhere(report.components[name].flags == 2)
    assert [tuple(w) for w in wrong] == [tuple(int(i) for i in index)]
