"""``approx``: the textbook table, the safe parser and the symbolic derivative."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gradcheck.cli._approx import ExpressionError, approx, derivative, evaluate, parse, show


def test_the_notes_theta_cubed_numbers():
    table = approx("x**3", at=1.0, eps=0.01)
    one, two = table.rows
    assert one.method == "one-sided" and one.estimate == pytest.approx(3.0301, abs=1e-10)
    assert one.error == pytest.approx(0.0301, abs=1e-10)
    assert two.method == "two-sided" and two.estimate == pytest.approx(3.0001, abs=1e-10)
    assert two.error == pytest.approx(0.0001, abs=1e-10)
    assert table.exact == 3.0 and table.derivative == "3*x**2"


@pytest.mark.parametrize(
    ("text", "at", "exact"),
    [
        ("sin(x) * exp(-x)", 0.7, math.cos(0.7) * math.exp(-0.7) - math.sin(0.7) * math.exp(-0.7)),
        ("x**x", 2.0, 4.0 * (math.log(2.0) + 1.0)),
        ("1 / (1 + x**2)", 0.5, -2 * 0.5 / (1 + 0.25) ** 2),
        ("sqrt(1 + x**2)", 3.0, 3.0 / math.sqrt(10.0)),
        ("tanh(2*t) - t/3", 0.3, 2 * (1 - math.tanh(0.6) ** 2) - 1 / 3),
        ("log(x) * pi + e", 2.0, math.pi / 2),
        ("sigmoid(x)", -1.0, math.exp(1) / (1 + math.exp(1)) ** 2),
        ("2**x", 3.0, 8 * math.log(2)),
        ("-x**2 + atan(x)", 1.0, -2 + 0.5),
    ],
)
def test_symbolic_derivative_matches_calculus(text, at, exact):
    assert approx(text, at=at, eps=1e-3).exact == pytest.approx(exact, rel=1e-12)


_polys = st.lists(st.integers(-5, 5), min_size=1, max_size=6)


@given(coeffs=_polys, at=st.floats(-3, 3))
@settings(max_examples=60, deadline=None)
def test_polynomial_derivatives_are_exact(coeffs, at):
    text = " + ".join(f"({c})*x**{k}" for k, c in enumerate(coeffs))
    expected = sum(k * c * at ** (k - 1) for k, c in enumerate(coeffs) if k > 0)
    assert evaluate(derivative(parse(text)[0]), at) == pytest.approx(expected, rel=1e-9, abs=1e-9)


@given(at=st.floats(0.2, 2.0), eps=st.floats(1e-4, 1e-2))
@settings(max_examples=40, deadline=None)
def test_two_sided_beats_one_sided_on_a_smooth_function(at, eps):
    one, two = approx("exp(x) * sin(x) + x**3", at=at, eps=eps).rows
    assert two.error < one.error
    # O(ε) against O(ε²): the one-sided error is within a constant of ε·|f''|/2.
    assert two.error < 10 * eps**2 * 30


def test_show_round_trips_through_the_parser():
    for text in ("x**3", "sin(x)*exp(-x)", "2*(-(x + 1))/x**2", "(x - 1)**2", "x - (-x)"):
        tree, _ = parse(text)
        assert parse(show(tree))[0] == tree


@pytest.mark.parametrize(
    "text",
    [
        "__import__('os').system('touch {path}')",
        "open('{path}', 'w')",
        "(lambda: open('{path}', 'w'))()",
        "[open('{path}', 'w') for _ in 'a']",
        "x.__class__",
        "getattr(x, 'real')",
        "exec('open(\"{path}\", \"w\")')",
        "x if open('{path}', 'w') else x",
        "{{1: open('{path}', 'w')}}",
        "'{path}'",
        "x[0]",
        "x + y",
        "sin",
        "sin(x, 2)",
        "x ** 2 == 4",
    ],
)
def test_unsafe_or_unsupported_expressions_are_rejected_and_nothing_runs(tmp_path, text):
    target = tmp_path / "pwned"
    with pytest.raises(ExpressionError):
        approx(text.format(path=target), at=1.0, eps=0.01)
    assert not target.exists()


@pytest.mark.parametrize(
    ("text", "at", "eps", "words"),
    [
        ("log(x)", 0.0, 0.01, "cannot be evaluated"),
        ("1 / x", 0.0, 0.01, "cannot be evaluated"),
        ("x**3", 1.0, 0.0, "eps"),
        ("x**3", 1.0, -1.0, "eps"),
        ("x**3", 1.0, math.nan, "eps"),
        ("x**3", math.inf, 0.01, "at="),
        ("x**", 1.0, 0.01, "not a valid expression"),
        ("x" * 600, 1.0, 0.01, "at most"),
        ("9.0**9.0**9.0**x", 1.0, 0.01, "cannot be evaluated"),
        ("(-8)**(x/3)", 1.0, 0.01, "cannot be evaluated"),
    ],
)
def test_bad_input_is_a_clear_error(text, at, eps, words):
    with pytest.raises(ExpressionError, match=words):
        approx(text, at=at, eps=eps)
