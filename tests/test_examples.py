"""The course walk-throughs in examples/ run as written, and tell the student what the courses'
own checks cannot: which tensor, which entries, what kind of mistake (the truth is that of
tests/bugs/course.py, which models the same code)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from gradcheck.frameworks.octave import octave_executable

ROOT = Path(__file__).resolve().parents[1]


def load(relative: str) -> ModuleType:
    path = ROOT / "examples" / relative
    spec = importlib.util.spec_from_file_location(f"example_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_deeplearning_ai_gradient_check_n(capsys):
    reports = load("courses/deeplearning_ai_gradient_check_n.py").main()
    out = capsys.readouterr().out
    assert "There is a mistake in the backward propagation! difference = 0.285" in out
    for report in reports.values():  # flat θ with a layout, and the course's dicts: the same
        assert report.suspects == ("b1", "W2")
        factors = {f.param: f.kind for f in report.findings}
        assert factors == {"b1": "scale", "W2": "scale"}
    assert "analytic ≈ 4 × numeric" in out and "analytic ≈ 2 × numeric" in out
    assert reports["flat"].findings == reports["dict"].findings


def test_cs231n_layers_and_two_layer_net(capsys):
    reports = load("courses/cs231n_two_layer.py").main()
    out = capsys.readouterr().out
    assert reports["affine"].passed is True and "only by size-1 axes" in out
    assert reports["relu"].suspects == ("x",)
    assert reports["net"].suspects == ("W2",)
    assert [f.kind for f in reports["net"].findings] == ["regularization"]


def test_ng_ex4_in_python(capsys):
    reports = load("courses/ng_ex4.py").main()
    out = capsys.readouterr().out
    assert "Relative Difference" in out
    bug = reports["bug"]
    assert bug.suspects == ("Theta1", "Theta2")
    assert "only column 0 of dTheta1" in out and "only column 0 of dTheta2" in out
    for c in bug.components.values():
        assert set(np.argwhere(c.flags == 2)[:, 1]) == {0}
    assert {(f.kind, f.where) for f in bug.findings} == {("regularization", (("column", 0),))}
    assert "a bias column or row regularised?" in bug.explain()
    assert reports["fixed"].passed is True


def test_seed_003_flat_net_reads_as_the_dict_form(capsys):
    reports = load("courses/seed003_flat_net.py").main()
    out = capsys.readouterr().out
    flat, named = reports["flat"], reports["dict"]
    assert flat.suspects == named.suspects == ("W1", "b1", "W2", "b2")
    assert flat.origin == named.origin == "b2"
    assert flat.findings == named.findings and {f.kind for f in flat.findings} == {"delta"}
    assert "output delta" in out and "same tensors, origin and findings: True" in out


@pytest.mark.skipif(octave_executable() is None or importlib.util.find_spec("oct2py") is None,
                    reason="GNU Octave (sudo apt-get install octave) and oct2py "
                    '(pip install "gradcheck[octave]") are needed for the Octave walk-through')
def test_ng_ex4_in_octave(capsys):
    reports = load("octave/ex4_octave.py").main()
    out = capsys.readouterr().out
    assert reports["nnCostFunction"].passed is True
    assert reports["nnCostFunctionBuggy"].suspects == ("Theta1", "Theta2")
    assert "only column 0 of dTheta1" in out and "only column 0 of dTheta2" in out


def test_a_walk_through_runs_as_a_script():
    script = ROOT / "examples" / "courses" / "ng_ex4.py"
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         cwd=ROOT, timeout=120,
                         env={"PYTHONPATH": str(ROOT / "src"), "COLUMNS": "120"})
    assert out.returncode == 0, out.stderr
    assert "only column 0 of dTheta1" in out.stdout
