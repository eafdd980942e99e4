"""The pytest plugin: failures render as the report table, and a seed fixture tied to the test."""

from __future__ import annotations

import importlib.util

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


_TWO = """
import numpy as np
from gradcheck.testing._assert import assert_gradients

def loss(p):
    return float(np.sum(p["W1"] ** 3) + np.sum(p["b1"] ** 2))

def test_wrong_a():
    w, b = np.array([1.0, 2.0, 3.0]), np.array([0.5, -1.0, 2.0])
    assert_gradients(loss, {"W1": w, "b1": b}, {"W1": 6 * w ** 2, "b1": 4 * b})
"""


def test_short_summary_line_carries_the_verdict(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_grads=_TWO)
    result = pytester.runpytest("-p", "no:cacheprovider", "-rf")
    result.assert_outcomes(failed=1)
    summary = [line for line in result.stdout.lines if line.startswith("FAILED ")]
    assert len(summary) == 1
    assert "test_wrong_a - W1, b1 wrong: W1: dW1 is off by a" in summary[0]  # trimmed to 80


def test_tb_line_gives_one_line_per_failure(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_grads=_TESTS)
    result = pytester.runpytest("-p", "no:cacheprovider", "--tb=line")
    result.assert_outcomes(passed=2, failed=1)
    text = result.stdout.str()
    assert "┏" not in text  # no table
    source = (pytester.path / "test_grads.py").read_text().splitlines()
    line = 1 + next(i for i, s in enumerate(source) if "3 * w}" in s)
    crash = [s for s in result.stdout.lines if f"test_grads.py:{line}: W2 wrong:" in s]
    assert len(crash) == 1 and "gradcheck_seed" in crash[0]


_LOOP = """
import torch
from gradcheck.testing import assert_gradients

class Bad(torch.autograd.Function):  # no setup_context: vmap cannot batch it (loop fallback)
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.sin()

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return 2 * g * x.cos()

def test_one():
    assert_gradients(Bad.apply, torch.randn(17, dtype=torch.float64, requires_grad=True))

def test_two():
    assert_gradients(Bad.apply, torch.randn(18, dtype=torch.float64, requires_grad=True))
"""


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="needs torch")
def test_a_repeated_loop_fallback_note_is_shown_once(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os
    from pathlib import Path

    import gradcheck

    src = str(Path(gradcheck.__file__).resolve().parents[1])  # this checkout's code, not another
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]))
    pytester.makepyfile(test_loop=_LOOP)
    # in a subprocess: an in-process run would drop torch from sys.modules afterwards, and
    # torch cannot be imported twice in one process
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:randomly")
    result.assert_outcomes(failed=2)
    text = result.stdout.str()
    assert text.count("torch.func.vmap cannot batch it") == 1
    assert text.count("(loop fallback), as in an earlier failure.") == 1
