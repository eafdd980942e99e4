"""``gradcheck demo``: the six steps, as library calls and as the command."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from gradcheck.cli._app import app
from gradcheck.cli._demo import DemoSettings, error_vs_eps, run_demo, theta_cubed
from gradcheck.nn import Net


def test_theta_cubed_matches_the_notes():
    r = theta_cubed()
    assert r["two_sided"] == pytest.approx(3.0001, abs=1e-12)
    assert r["one_sided"] == pytest.approx(3.0301, abs=1e-12)
    # O(ε²) vs O(ε): halving ε quarters one error and halves the other.
    half = theta_cubed(eps=0.005)
    assert half["two_sided_error"] == pytest.approx(r["two_sided_error"] / 4, rel=1e-6)
    assert half["one_sided_error"] == pytest.approx(r["one_sided_error"] / 2, rel=0.02)


def test_error_vs_eps_shows_truncation_and_rounding():
    net = Net((5, 6, 3), activation="tanh", seed=0)
    X = np.random.default_rng(0).standard_normal((20, 5))
    y = np.arange(20) % 3
    before = {k: v.copy() for k, v in net.params.items()}
    curve = error_vs_eps(net, X, y, eps=np.array([1e-12, 1e-5, 1e-2, 2e-2]))
    one, two = curve["one_sided"], curve["two_sided"]
    assert two[1] < one[1] and two[2] < one[2]  # two-sided wins where truncation dominates
    assert one[3] / one[2] == pytest.approx(2, rel=0.1)  # O(ε)
    assert two[3] / two[2] == pytest.approx(4, rel=0.1)  # O(ε²)
    assert one[0] > one[1]  # rounding takes over at tiny ε
    assert all(net.params[k].tobytes() == v.tobytes() for k, v in before.items())


def test_demo_json_has_every_step(tmp_path):
    result = CliRunner().invoke(
        app, ["demo", "--json", "--epochs", "3", "--hidden", "8", "--bug", "sign-db2",
              "--out", str(tmp_path / "fig.png")],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["initial_check"]["passed"] is True
    assert summary["final_check"]["passed"] is True
    assert summary["planted"] == summary["planted"] | {"bug": "sign-db2", "passed": False,
                                                        "suspects": ["b2"]}
    assert 0.3 < summary["test_accuracy"] <= 1.0
    assert summary["seconds"] > 0
    assert summary["figure"] == str((tmp_path / "fig.png").resolve())
    assert (tmp_path / "fig.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_demo_prints_the_tables_and_the_diagnosis(capsys):
    summary = run_demo(DemoSettings(epochs=1, hidden=6, plot=False, bug="transposed-dW1"))
    out = capsys.readouterr().out
    for step in range(1, 6):
        assert f"{step}. " in out
    assert "PASSED" in out and "FAILED" in out and "W1" in out
    assert "training" in out and "1/1" in out  # the progress bar, not a TTY here
    assert "planted bug 'transposed-dW1' found in W1." in " ".join(out.split())
    assert summary["planted"]["suspects"] == ["W1"] and summary["figure"] is None


def test_demo_refuses_bad_options():
    runner = CliRunner()
    bad_data = runner.invoke(app, ["demo", "--data", "/nonexistent/mnist.npz", "--no-plot"])
    assert bad_data.exit_code == 2 and "does not exist" in bad_data.output
    bad_bug = runner.invoke(app, ["demo", "--bug", "off-by-one", "--no-plot"])
    assert bad_bug.exit_code == 2 and "act-deriv-of-a" in bad_bug.output


def test_demo_on_a_local_mnist_like_file(tmp_path):
    rng = np.random.default_rng(0)
    y = np.arange(60) % 3
    X = (rng.random((60, 5, 5)) * 80 + 150 * (y[:, None, None] == np.arange(5)[None, :, None])).astype(
        np.uint8)  # class k lights up row k: learnable
    np.savez(tmp_path / "tiny.npz", X=X, y=y)
    summary = run_demo(DemoSettings(data=str(tmp_path / "tiny.npz"), epochs=5, hidden=4,
                                    plot=False, bug="missing-1-over-m"), quiet=True)
    assert summary["initial_check"]["passed"] and summary["final_check"]["passed"]
    assert summary["planted"]["suspects"] == ["W1", "b1", "W2", "b2"]
