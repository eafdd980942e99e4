"""The pytest plugin: failures render as the report table, and a seed fixture tied to the test."""

from __future__ import annotations

import pytest

from gradcheck.testing._plugin import seed_for

pytest_plugins = ["pytester"]

_TESTS = """
import numpy as np
from gradcheck.testing._assert import assert_gradients

def loss(p):
    return float(np.sum(p["W2"] ** 3))

def test_wrong(gradcheck_seed):
    w = np.array([1.0, 2.0, 3.0])
    assert_gradients(loss, {"W2": w}, {"W2": 3 * w}, seed=gradcheck_seed)

def test_right(gradcheck_seed):
    w = np.array([1.0, 2.0, 3.0])
    assert_gradients(loss, {"W2": w}, {"W2": 3 * w ** 2}, seed=gradcheck_seed)

def test_seed(gradcheck_seed):
    print("SEED", gradcheck_seed)
"""


def test_failure_shows_the_table_not_gradcheck_internals(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_grads=_TESTS)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=1)
    text = result.stdout.str()
    source = (pytester.path / "test_grads.py").read_text().splitlines()
    line = 1 + next(i for i, s in enumerate(source) if "3 * w}" in s)
    assert f"test_grads.py:{line}: gradient check failed" in text
    assert "W2" in text and "WRONG" in text and "FAILED: 1 of 1 parameters" in text
    assert "replay with --gradcheck-seed=" in text
    assert "_check.py" not in text  # no traceback through gradcheck's own code


def test_seed_option_fixes_the_fixture(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_grads=_TESTS)
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "-s", "-k", "seed", "--gradcheck-seed=1234"
    )
    result.assert_outcomes(passed=1)
    assert "SEED 1234" in result.stdout.str()


def test_seed_is_stable_per_test_and_mixed_with_randomly() -> None:
    assert seed_for("a.py::t", None, None) == seed_for("a.py::t", None, None)
    assert seed_for("a.py::t", None, None) != seed_for("a.py::u", None, None)
    assert seed_for("a.py::t", None, 1) != seed_for("a.py::t", None, 2)
    assert seed_for("a.py::t", 5, 1) == 5
