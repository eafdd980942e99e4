"""Text views of a report: full text in a notebook, a short repr, tables that never fold numbers."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

import gradcheck
from gradcheck.report._format import fmt

ROOT = Path(__file__).resolve().parents[2]


def _failing() -> gradcheck.Report:
    rng = np.random.default_rng(0)
    params = {"W1": rng.standard_normal((4, 3)), "b1": rng.standard_normal(3),
              "W2": rng.standard_normal((3, 2))}

    def loss(p):
        return float(np.sum(np.tanh(p["W1"] @ p["W2"])) + np.sum(p["b1"] ** 2))

    t = np.tanh(params["W1"] @ params["W2"])
    d = 1 - t**2
    grads = {"W1": 1.8 * (d @ params["W2"].T), "b1": 2 * params["b1"], "W2": params["W1"].T @ d}
    return gradcheck.check(loss, params, grads)


def _render(report: gradcheck.Report, width: int) -> str:
    out = io.StringIO()
    Console(file=out, width=width, color_system=None).print(report)
    return out.getvalue()


@pytest.mark.parametrize("width", [60, 72, 80, 100, 119, 120, 160])
def test_numbers_never_fold_columns_are_dropped_instead(width):
    report = _failing()
    text = _render(report, width)
    table = "\n".join(line for line in text.splitlines() if line[:1] in "┏┃┡│└")
    rows = [line for line in table.splitlines() if line.startswith("│")]
    assert len(rows) == len(report.components)  # one line per parameter: nothing wrapped
    assert all(len(line) <= width for line in table.splitlines())
    for c in report.components.values():
        row = next(line for line in rows if line.startswith(f"│ {c.name} "))
        assert fmt(c.relative_error) in row  # always shown, whole
        assert ("WRONG" if not c.passed else "ok") in row
    headers = next(line for line in table.splitlines() if "parameter" in line)
    if width >= 120:
        assert "eps" in headers and "tolerance" in headers
    if width <= 60:
        assert "numeric" not in headers and "eps" not in headers


def test_cli_at_60_columns_keeps_numbers_on_one_line():
    env = {**os.environ, "COLUMNS": "60", "PYTHONPATH": str(ROOT / "src")}
    out = subprocess.run(
        [sys.executable, "-m", "gradcheck", "check", "examples/targets.py:buggy_unit_mlp"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    ).stdout
    rows = [line for line in out.splitlines() if line.startswith("│")]
    assert rows and all(len(line) <= 60 for line in out.splitlines()[: len(rows) + 4])
    for line in rows:  # each row: a name, then whole numbers, then the verdict
        cells = [cell.strip() for cell in line.strip("│").split("│")]
        assert cells[-1] in ("ok", "WRONG")
        assert all(re.fullmatch(r"[-\d.e+]+|-", cell) for cell in cells[1:-1] if
                   cell and not cell.startswith("["))


def test_repr_is_short_and_says_the_verdict():
    report = _failing()
    text = repr(report)
    assert "\n" not in text and len(text) < 200
    assert text.startswith("<gradcheck.Report FAILED") and "W1" in text
    assert "array(" not in text


_JUPYTER = textwrap.dedent("""
    import builtins, numpy as np

    class ZMQInteractiveShell:  # what rich looks for to detect Jupyter
        pass

    builtins.get_ipython = lambda: ZMQInteractiveShell()
    from rich.console import Console
    assert Console().is_jupyter  # the simulation works: rich believes it is in a notebook
    import gradcheck
    from gradcheck.testing import assert_gradients, GradientAssertionError
    w = np.array([1.0, 2.0])
    loss = lambda p: float((p["w"] ** 2).sum())
    report = gradcheck.check(loss, {"w": w}, {"w": w})
    print("STR", len(str(report)), "FAILED" in str(report))
    try:
        report.raise_for_failure()
    except gradcheck.GradientMismatchError as error:
        print("RAISE", len(str(error)), "FAILED" in str(error))
    try:
        assert_gradients(loss, {"w": w}, {"w": w})
    except GradientAssertionError as error:
        print("ASSERT", len(str(error)), "FAILED" in str(error))
""")


def test_in_jupyter_str_and_exception_messages_are_full_text():
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    out = subprocess.run([sys.executable, "-c", _JUPYTER], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = dict(line.split(" ", 1) for line in out.stdout.splitlines())
    for key in ("STR", "RAISE", "ASSERT"):
        length, failed = lines[key].split()
        assert int(length) > 200 and failed == "True", (key, out.stdout)
