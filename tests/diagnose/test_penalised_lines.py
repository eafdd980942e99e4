"""A bias column (or row) regularised in the gradient only, as in Ng's ex4: the lines are named,
and the kind is regularization, with the factor λ/m."""

from __future__ import annotations

import numpy as np
import pytest

import gradcheck

RNG = np.random.default_rng(5)
X, Y = RNG.standard_normal((6, 4)), RNG.standard_normal((6, 3))
W = RNG.standard_normal((4, 3))


def loss(p):
    return 0.5 * float(np.sum((X @ p["W"] - Y) ** 2))


def grad():
    return X.T @ (X @ W - Y)


@pytest.mark.parametrize(("axis", "line"), [(1, 0), (0, 2)])
def test_a_line_with_an_l2_term_too_many_is_named_as_regularization(axis, line):
    g = grad()
    index = (slice(None), line) if axis == 1 else (line, slice(None))
    g[index] += 0.25 * W[index]
    report = gradcheck.check(loss, {"W": W}, {"W": g})
    (finding,) = report.findings
    word = "column" if axis == 1 else "row"
    assert finding.kind == "regularization" and finding.where == ((word, line),)
    assert finding.factor == pytest.approx(0.25)
    assert f"only {word} {line} of dW is wrong, by 0.25·W" in finding.detail


def test_a_line_wrong_in_another_way_stays_localized():
    g = grad()
    g[:, 0] += 1.0
    (finding,) = gradcheck.check(loss, {"W": W}, {"W": g}).findings
    assert finding.kind == "localized" and "only column 0 of dW is wrong" in finding.detail
