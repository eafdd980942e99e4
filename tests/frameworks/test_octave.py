"""gradcheck.octave: a student's .m cost function ``[J grad] = f(nn_params, ...)`` run in GNU
Octave through oct2py, unrolled column-major, and reported with named matrices.

Without Octave or oct2py the tests that run Octave skip and say which is missing; the errors a
user gets then are tested without either.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import gradcheck
from gradcheck.cli._app import app
from gradcheck.frameworks import octave as adapter

ROOT = Path(__file__).resolve().parents[2]
EX = ROOT / "examples" / "octave"
ARGS = ["input_layer_size", "hidden_layer_size", "num_labels", "X", "y", "lambda"]
HAS_OCT2PY = importlib.util.find_spec("oct2py") is not None
needs_octave = pytest.mark.skipif(
    adapter.octave_executable() is None or not HAS_OCT2PY,
    reason=("GNU Octave is not installed (sudo apt-get install octave; .ci/run installs it)"
            if adapter.octave_executable() is None else
            'oct2py is not installed (pip install "gradcheck[octave]")'),
)
needs_scipy = pytest.mark.skipif(importlib.util.find_spec("scipy") is None,
                                 reason="reading .mat files needs scipy (oct2py brings it)")


@pytest.fixture(scope="module")
def ex4() -> tuple[dict, tuple]:
    pytest.importorskip("scipy")
    return adapter.from_mat(EX / "ex4small.mat", ["Theta1", "Theta2"], ARGS)


@needs_octave
def test_the_correct_ex4_cost_passes_and_the_bias_column_bug_is_named(ex4):
    params, args = ex4
    before = {k: v.copy() for k, v in params.items()}
    good = adapter.check_m(EX / "nnCostFunction.m", params, args=args)
    assert good.passed is True and list(good.components) == ["Theta1", "Theta2"]
    bad = adapter.check_m(EX / "nnCostFunctionBuggy.m", params, args=args)
    assert bad.suspects == ("Theta1", "Theta2")
    for name, c in bad.components.items():
        wrong = np.argwhere(c.flags == 2)
        assert set(wrong[:, 1]) == {0} and len(wrong) == c.shape[0], name  # column 0, all of it
    text = bad.explain()
    assert "only column 0 of dTheta1" in text and "only column 0 of dTheta2" in text
    assert all(np.array_equal(params[k], before[k]) for k in params)


@needs_octave
def test_a_flat_nn_params_with_a_layout_reads_column_major(ex4):
    params, args = ex4
    theta = np.concatenate([params["Theta1"].ravel(order="F"), params["Theta2"].ravel(order="F")])
    layout = {"Theta1": params["Theta1"].shape, "Theta2": params["Theta2"].shape}
    report = adapter.check_m(EX / "nnCostFunctionBuggy.m", theta, args=args, layout=layout)
    assert report.suspects == ("Theta1", "Theta2")
    assert report.components["Theta1"].worst_index[1] == 0


@needs_octave
def test_an_octave_error_is_a_one_line_loss_error(ex4, tmp_path):
    params, args = ex4
    broken = tmp_path / "broken.m"
    broken.write_text("function [J grad] = broken(theta, varargin)\n  J = undefined_thing(1);\nend\n")
    with pytest.raises(gradcheck.LossRaisedError, match="Octave raised in broken"):
        adapter.check_m(broken, params, args=args)


@needs_octave
@needs_scipy
def test_the_command_line_checks_an_m_file_with_a_mat_file():
    result = CliRunner().invoke(app, [
        "check", str(EX / "nnCostFunctionBuggy.m"), "--data", str(EX / "ex4small.mat"),
        "--params", "Theta1,Theta2", "--args", ",".join(ARGS)], env={"COLUMNS": "120"})
    assert result.exit_code == 1, result.output
    assert "only column 0 of dTheta1" in result.stdout and "only column 0 of dTheta2" in result.stdout
    result = CliRunner().invoke(app, [
        "check", str(EX / "nnCostFunction.m"), "--data", str(EX / "ex4small.mat"),
        "--params", "Theta1,Theta2", "--args", ",".join([*ARGS[:-1], "3"]), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["passed"] is True  # Octave's output kept off stdout


@needs_scipy
def test_the_command_line_says_what_an_m_target_needs():
    runner = CliRunner()
    result = runner.invoke(app, ["check", str(EX / "nnCostFunction.m")])
    assert result.exit_code == 2 and "--data FILE.mat" in result.stderr
    result = runner.invoke(app, ["check", str(EX / "nnCostFunction.m"), "--data",
                                 str(EX / "ex4small.mat"), "--params", "Theta1,Theta2",
                                 "--args", "lambd"])
    assert result.exit_code == 2 and "'lambd' is not a variable of ex4small.mat" in result.stderr
    result = runner.invoke(app, ["check", "examples/targets.py:mlp", "--data", "x.mat"])
    assert result.exit_code == 2 and "for an Octave/MATLAB .m target only" in result.stderr


def test_a_missing_octave_names_the_install_command(monkeypatch, tmp_path):
    monkeypatch.setattr(adapter, "octave_executable", lambda: None)
    with pytest.raises(ImportError, match=r"sudo apt-get install octave"):
        adapter.check_m(EX / "nnCostFunction.m", {"Theta1": np.ones((2, 2))})


def test_a_missing_oct2py_names_the_extra():
    code = ("import sys\nsys.modules['oct2py'] = None\n"
            "try:\n    import gradcheck.octave\nexcept ImportError as e:\n    print(e)\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         timeout=120)
    assert 'pip install "gradcheck[octave]"' in out.stdout, out.stderr


def test_bad_calls_are_refused_before_octave_starts(tmp_path):
    with pytest.raises(gradcheck.StructureError, match="not an existing .m file"):
        adapter.check_m(tmp_path / "nope.m", {"W": np.ones(2)})
    m = tmp_path / "f.m"
    m.write_text("function [J g] = f(t)\nJ = 0; g = t;\nend\n")
    with pytest.raises(gradcheck.OptionError, match="needs layout="):
        adapter.check_m(m, np.ones(3))
    with pytest.raises(gradcheck.OptionError, match="scheme='complex'"):
        adapter.check_m(m, {"W": np.ones(2)}, scheme="complex")


@needs_octave
@needs_scipy
def test_the_command_line_reads_a_flat_nn_params_with_a_layout():
    result = CliRunner().invoke(app, [
        "check", str(EX / "nnCostFunctionBuggy.m"), "--data", str(EX / "ex4small.mat"),
        "--params", "nn_params", "--layout", "Theta1=5x4,Theta2=3x6", "--args", ",".join(ARGS), "--verbose"],
        env={"COLUMNS": "120"})
    assert result.exit_code == 1, result.output
    assert "only column 0 of dTheta1" in result.stdout and "order='F'" in result.stdout
