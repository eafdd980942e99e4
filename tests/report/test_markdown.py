"""``Report.to_markdown()``: a GitHub table, findings, and user strings that stay plain text."""

from __future__ import annotations

import numpy as np

import gradcheck
from gradcheck.report._markdown import md_escape


def _check(name="W", factor=1.0):
    w = np.linspace(-1, 1, 6).reshape(2, 3)
    return gradcheck.check(lambda p: float(np.sum(p[name] ** 3)), {name: w, "c": np.ones(2)},
                           {name: 3 * w**2 * factor, "c": np.zeros(2)})


def test_table_has_one_row_per_parameter_and_the_verdicts():
    text = _check(factor=2.0).to_markdown()
    lines = text.splitlines()
    rows = [line for line in lines if line.startswith("| ") and not line.startswith("| parameter")]
    assert len(rows) == 2
    assert lines[0].startswith("**❌ FAILED**")
    assert "**WRONG**" in rows[0] and rows[1].endswith("| ok |")
    # every row has as many cells as the header
    header = next(line for line in lines if line.startswith("| parameter"))
    cells = lambda line: len(line.replace("\\|", "").split("|"))  # noqa: E731
    assert all(cells(r) == cells(header) for r in rows)


def test_findings_and_notes_become_a_list():
    report = _check(factor=2.0)
    text = report.to_markdown()
    assert report.findings
    assert f"- **{report.findings[0].param}**" in text


def test_passing_report():
    text = _check().to_markdown()
    assert text.startswith("**✅ PASSED**") and "WRONG" not in text


def test_user_strings_cannot_break_the_table_or_inject_html():
    evil = "a|b <script>alert(1)</script> [x](http://e)"
    text = _check(name=evil).to_markdown()
    assert "<script>" not in text and "&lt;script&gt;" in text
    row = next(line for line in text.splitlines() if line.startswith("| a"))
    assert "a\\|b" in row and "\\[x\\]" in row
    assert md_escape("x_1*2") == "x\\_1\\*2"
