"""The short report (issue 24): one screen, the mistake named early, hints that follow the evidence.

Counts lines and looks for findings by kind and notes by code; wording is looked for only in
the one test per target that the naming line is among the first 8.
"""

from __future__ import annotations

import dataclasses
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import gradcheck
from gradcheck.cli._app import app
from gradcheck.diagnose._hints import HINTS, Context, hint_rule
from gradcheck.report._short import SHORT_NOTES, short_lines
from gradcheck.report._text import origin_line

ROOT = Path(__file__).resolve().parents[2]
WIDTH, LINES, NAMING = 80, 20, 8


@pytest.fixture(scope="module")
def seed003() -> gradcheck.Report:
    sys.path.insert(0, str(ROOT / "examples" / "courses"))
    try:
        import seed003_flat_net
    finally:
        sys.path.pop(0)
    return seed003_flat_net.main(show=False)["flat"]


@pytest.fixture(scope="module")
def demo() -> gradcheck.Report:
    from gradcheck.cli._demo import (
        ACTIVATION,
        BATCH,
        CHECK_ROWS,
        INIT,
        L2,
        LR,
        DemoSettings,
        load,
        plant,
    )
    from gradcheck.nn import Net

    s = DemoSettings(plot=False)
    data = load(s)
    net = Net((data.X_train.shape[1], s.hidden, data.n_classes), activation=ACTIVATION,
              init=INIT, l2=L2, seed=s.seed)
    net.fit(data.X_train, data.y_train, epochs=s.epochs, batch_size=BATCH, lr=LR, progress=False)
    return plant(s, net, data.X_train[:CHECK_ROWS], data.y_train[:CHECK_ROWS])


def _screen(report: gradcheck.Report) -> list[str]:
    lines = report.to_text(width=WIDTH).splitlines()
    assert all(len(line) <= WIDTH for line in lines)
    return lines


def _sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.?!])\s+(?=[A-Z])", " ".join(text.split())) if s]


def _common(report: gradcheck.Report) -> None:
    lines = _screen(report)
    assert len(lines) <= LINES
    short = report.explain()
    said = _sentences(short)
    assert len(said) == len(set(said))  # no sentence printed twice
    flat = " ".join(" ".join(lines).split())
    for note in report.notes:  # notes by code: only those that qualify the verdict are shown
        shown = " ".join(str(note).split()) in flat
        assert shown == (getattr(note, "code", None) in SHORT_NOTES)
    verbose = " ".join(report.explain(verbose=True).split())
    assert all(" ".join(str(n).split()) in verbose for n in report.notes)
    assert all(" ".join(f.detail.split()) in verbose for f in report.findings)


def test_seed_003_fits_one_screen_and_names_the_output_delta_early(seed003) -> None:
    assert {f.kind for f in seed003.findings} == {"delta"}
    _common(seed003)
    assert "output delta" in " ".join(_screen(seed003)[:NAMING])


def test_the_demos_planted_bug_fits_one_screen_and_names_the_hidden_delta_early(demo) -> None:
    assert demo.suspects == ("W1", "b1")
    assert {f.kind for f in demo.findings} == {"unexplained"}
    # The hint follows the evidence (b1 wrong, layer 2 right): no guess.
    assert not any(f.hint.startswith("A guess") for f in demo.findings)
    _common(demo)
    head = " ".join(" ".join(_screen(demo)[:NAMING]).split())
    assert "taken at its output a = f(z) instead of its input z" in head


def test_the_table_of_hint_rules_has_a_reason_per_row_and_ends_in_a_guess() -> None:
    assert all(rule.reason for rule in HINTS)
    assert HINTS[-1].name == "fallback" and HINTS[-1].text(Context("W", (2, 2))).startswith("A guess")
    for rule in HINTS:  # a row worded from a name or a shape alone says it is a guess
        if rule.name in ("kernel", "normalisation", "embedding", "input"):
            assert rule.text(Context("w", (2, 3, 3, 3))).startswith("A guess")


@pytest.mark.parametrize(("name", "shape", "rule"), [
    ("K", (3, 2, 3, 3), "kernel"),
    ("conv1.weight", (8, 4, 5, 5), "kernel"),
    ("x", (5, 4, 10), "input"),  # an RNN's (T, N, D) input is no kernel
    ("x", (2, 3, 4, 4), "input"),  # nor a pooling or upsampling layer's (N, C, H, W) input
    ("states", (5, 4, 10), "fallback"),  # 3-D, not square: no kernel, no name: a guess
    ("W1", (4, 6), "fallback"),
])
def test_a_kernel_hint_only_for_a_tensor_shaped_like_a_kernel(name, shape, rule) -> None:
    assert hint_rule(Context(name, shape)).name == rule


def test_the_activation_is_named_from_what_was_seen() -> None:
    layer, after = (("W1", False), ("b1", False)), (("W2", True), ("b2", True))
    smooth = Context("W1", (4, 6), layer, after, kinks=False, shapes=((4, 6), (6,)))
    relu = dataclasses.replace(smooth, kinks=True)
    assert hint_rule(smooth).name == hint_rule(relu).name == "hidden delta"
    assert "a = f(z)" in hint_rule(smooth).text(smooth)  # f′(a) ≠ f′(z) only without kinks
    assert "a = f(z)" not in hint_rule(relu).text(relu)
    right_bias = Context("W1", (4, 6), (("W1", False), ("b1", True)), after, shapes=((4, 6), (6,)))
    assert hint_rule(right_bias).name == "layer input"


def test_a_whole_factor_without_a_batch_size_is_offered_as_a_guess() -> None:
    x = np.linspace(-1.0, 1.0, 6)
    report = gradcheck.check(lambda p: float(np.sum(p["w"] ** 2)) / 3, {"w": x},
                             {"w": 4 * 2 * x / 3})  # a batch of 3; the factor is 4
    (finding,) = report.findings
    assert finding.kind == "scale" and finding.hint.startswith("A guess")


def test_check_layer_says_nothing_about_where_the_bug_starts() -> None:
    def forward(x, w, b):
        return x @ w + b, (x, w)

    def backward(dout, cache):  # every gradient doubled: x, w and b all wrong
        x, w = cache
        return 2 * dout @ w.T, 2 * x.T @ dout, 2 * dout.sum(axis=0)

    rng = np.random.default_rng(0)
    report = gradcheck.check_layer(forward, backward, rng.standard_normal((3, 4)),
                                   rng.standard_normal((4, 2)), np.zeros(2))
    assert set(report.suspects) == {"x", "w", "b"}
    assert origin_line(report) is None  # x, w, b: argument order, no layer order
    declared = gradcheck.check(lambda p: float(np.sum(p["a"] ** 2 + p["c"] ** 2)),
                               {"a": np.ones(3), "c": np.ones(3)},
                               {"a": 4 * np.ones(3), "c": 4 * np.ones(3)}, layers=["a", "c"])
    assert origin_line(declared) is not None  # declared: said


def test_notes_are_chosen_by_code() -> None:
    from gradcheck.report._sentences import Note, NoteCode

    assert NoteCode.NONFINITE in SHORT_NOTES and NoteCode.DIRECTION_FAILED not in SHORT_NOTES
    w = np.ones(3)
    report = gradcheck.check(lambda p: float(np.sum(p["w"] ** 2)), {"w": w}, {"w": -2 * w})
    verdict = Note(NoteCode.NONFINITE, "w", {"count": 2})
    report = dataclasses.replace(report, notes=("about steps", verdict))
    lines = short_lines(report)
    assert str(verdict) in lines and "about steps" not in lines


def test_the_command_line_is_short_unless_verbose() -> None:
    runner = CliRunner()
    target = str(ROOT / "examples" / "targets.py") + ":buggy_mlp"
    short = runner.invoke(app, ["check", target], env={"COLUMNS": "80"})
    verbose = runner.invoke(app, ["check", target, "--verbose"], env={"COLUMNS": "80"})
    assert short.exit_code == verbose.exit_code == 1
    assert short.stdout.splitlines()[0].startswith("FAILED")
    assert len(short.stdout.splitlines()) < len(verbose.stdout.splitlines())
    assert "--verbose" in short.stdout.splitlines()[-1]
