"""``Report.to_html()``: self-contained, escaped, heatmaps with the worst entries marked."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest

import gradcheck
from gradcheck.report._html import LABEL, ratios

EVIL = "<script>alert(1)</script>"


def _report(name: str = "W", bad: tuple[int, int] | None = (2, 3), shape=(6, 5)):
    rng = np.random.default_rng(0)
    w, b = rng.standard_normal(shape), rng.standard_normal(3)
    grads = {name: np.cos(w), "b": 2 * b}
    if bad is not None:
        grads[name] = grads[name].copy()
        grads[name][bad] += 1e-2

    def loss(p):
        return float(np.sum(np.sin(p[name])) + np.sum(p["b"] ** 2))

    return gradcheck.check(loss, {name: w, "b": b}, grads)


def test_page_is_self_contained_without_scripts_or_fetches():
    page = _report().to_html()
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    lowered = page.lower()
    for forbidden in ("<script", "<link", "<img", "<iframe", "@import", "url(", "src=", "href="):
        assert forbidden not in lowered, forbidden
    # the only URLs are SVG namespace declarations, never fetched
    assert set(re.findall(r"https?://[^\"' >]+", page)) <= {"http://www.w3.org/2000/svg"}


def test_user_strings_are_escaped():
    page = _report(name=EVIL).to_html()
    assert EVIL not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script" not in page.lower()


def test_table_findings_and_a_heatmap_per_matrix():
    report = _report()
    page = report.to_html()
    assert report.suspects == ("W",)
    assert page.count("<figure>") == 2  # W (6x5) and b (3,): one heatmap each
    assert page.count("<tr>") == 1 + len(report.components)
    assert "WRONG" in page and "FAILED" in page
    for finding in report.findings:
        assert finding.detail.split(":")[0].replace("<", "&lt;") in page


def test_the_wrong_entry_is_outlined_and_its_cell_is_red():
    page = _report(bad=(2, 3)).to_html()
    cell = 26  # a 6x5 matrix is drawn at the largest cell size
    x, y = LABEL + 1 + 3 * cell, LABEL + 1 + 2 * cell  # past the row / column index labels
    assert f'<rect x="{x}" y="{y}" width="{cell}" height="{cell}" fill="none" stroke="#000"' in page
    tip = re.search(rf'<rect x="{x}" y="{y}" [^>]*fill="(#[0-9a-f]{{6}})"><title>W\[2, 3\]', page)
    assert tip is not None
    red, green = int(tip.group(1)[1:3], 16), int(tip.group(1)[3:5], 16)
    assert red > 150 and green < 120


def test_ratios_are_error_over_bound_and_nan_where_unchecked():
    report = _report()
    c = report.components["W"]
    r = ratios(c)
    assert r.shape == c.shape
    assert np.unravel_index(np.nanargmax(r), r.shape) == (2, 3)
    assert r[2, 3] > 1 and np.nanmax(np.delete(r.ravel(), 2 * 5 + 3)) <= 1


def test_large_matrices_are_shown_in_blocks_keeping_the_worst():
    report = _report(shape=(200, 30), bad=(150, 7))
    page = report.to_html()
    assert "blocks" in page
    assert page.count("<rect") < 200 * 30  # downsampled
    # 200 rows in blocks of 5; the block holding row 150 shows the wrong entry's ratio
    tip = re.search(r'fill="(#[0-9a-f]{6})"><title>rows 150–154, cols 7–7: worst ratio', page)
    assert tip is not None and int(tip.group(1)[1:3], 16) > 150


def test_sweep_plot_is_inlined_when_given():
    from gradcheck.checks._sweep import sweep

    loss = lambda t: float(np.sum(t**3))  # noqa: E731
    theta = np.array([1.0, 2.0])
    result = sweep(loss, theta, 3 * theta**2, eps=[1e-6, 1e-3], schemes=["central"])
    report = gradcheck.check(loss, theta, 3 * theta**2)
    page = report.to_html(sweep=result)
    assert "Relative error against the step" in page and page.count("<svg") >= 2
    assert "<script" not in page.lower()


def _chromium() -> str | None:
    return next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))
                 if p), None)


_BROWSER_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]


@pytest.mark.skipif(_chromium() is None, reason="no chromium binary found on PATH (install "
                    "Debian's chromium package to run the headless-browser test)")
def test_in_a_headless_browser_the_script_name_is_text_and_no_script_runs(tmp_path):
    page = tmp_path / "report.html"
    page.write_text(_report(name=EVIL).to_html(), encoding="utf-8")
    with tempfile.TemporaryDirectory() as profile:
        dom = subprocess.run(
            [_chromium(), *_BROWSER_FLAGS, f"--user-data-dir={profile}", "--dump-dom",
             page.as_uri()],
            capture_output=True, text=True, timeout=60, check=True,
        ).stdout
    assert "<script" not in dom.lower()  # no script element in the parsed document
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom  # the name is text
    assert "<svg" in dom and "FAILED" in dom
    assert Path(page).read_text(encoding="utf-8").count("<figure>") == 2


def test_kinks_and_unchecked_entries_have_their_own_colours():
    relu = lambda t: float(np.sum(np.maximum(t, 0.0)))  # noqa: E731
    theta = np.array([0.0, 1.0, -1.0, 0.0, 2.0])
    kinked = gradcheck.check(relu, theta, (theta > 0).astype(float))  # 0 at the kinks: valid
    assert kinked.passed and kinked.components["theta"].skipped == 2
    assert kinked.to_html().count('fill="#4a78c2"') == 2  # blue: the two kinks
    assert kinked.to_html().count("(kink, skipped)") == 2
    rng = np.random.default_rng(1)
    w = rng.standard_normal((20, 10))
    sampled = gradcheck.check(lambda p: float(np.sum(p**2)), w, 2 * w, coords=20)
    unchecked = int(np.sum(sampled.components["theta"].flags == 0))
    assert unchecked == 200 - sampled.components["theta"].checked > 0
    assert sampled.to_html().count('fill="#d9d9d9"') == unchecked  # grey: not checked


def test_heatmaps_carry_row_and_column_indices():
    page = _report(shape=(6, 5)).to_html()
    figure = page[page.index("<figure>"): page.index("</figure>")]
    columns = re.findall(r'text-anchor="middle" fill="#555">(\d+)</text>', figure)
    rows = re.findall(r'text-anchor="end" fill="#555">(\d+)</text>', figure)
    assert columns == ["0", "1", "2", "3", "4"] and rows == ["0", "1", "2", "3", "4", "5"]
    big = _report(shape=(200, 30), bad=(150, 7)).to_html()  # blocks: labels give first rows
    rows = [int(v) for v in re.findall(r'text-anchor="end" fill="#555">(\d+)</text>', big)]
    assert rows[0] == 0 and all(b - a == rows[1] - rows[0] > 0 for a, b in zip(rows, rows[1:], strict=False))
    assert 195 <= rows[-1] + (rows[1] - rows[0]) <= 205


def test_a_numbered_list_of_the_worst_entries_with_their_values():
    report = _report(bad=(2, 3))
    page = report.to_html()
    c = report.components["W"]
    (index, numeric, analytic), = c.worst_entries(5)
    listed = re.findall(r'<ol class="worst"><li><code>(.*?)</code>: numeric (\S+), analytic (\S+),',
                        page)
    assert listed == [("W[2, 3]", gradcheck.report._format.fmt(numeric),
                       gradcheck.report._format.fmt(analytic))]
    assert index == (2, 3)


def test_footer_has_version_seed_and_command():
    page = _report().to_html(command="gradcheck check examples/targets.py:mlp", seed=7)
    footer = page[page.index("<footer>"):]
    assert f"gradcheck {gradcheck.report._format.version()} · seed 7" in footer
    assert "gradcheck check examples/targets.py:mlp" in footer


def test_a_one_entry_tensor_gets_a_heatmap():
    w = np.array([0.3])
    report = gradcheck.check(lambda p: float(np.sum(np.sin(p))), w, np.cos(w) + 0.1)
    page = report.to_html()
    assert page.count("<figure>") == 1 and "theta[0]: numeric" in page
    scalar = gradcheck.check(lambda p: float(np.sin(p["s"])), {"s": np.array(0.3)},
                             {"s": np.array(np.cos(0.3))})
    assert scalar.to_html().count("<figure>") == 1


def test_layout_fits_700_px():
    page = _report(shape=(200, 30), bad=(150, 7)).to_html()
    widths = [int(w) for w in re.findall(r'<svg [^>]*width="(\d+)"', page)]
    assert max(widths) <= 700 - 2 * 16  # body margins
    assert ".scroll{overflow-x:auto" in page and '<div class="scroll"><table>' in page
    assert "svg{max-width:100%" in page


def test_notebook_view_is_compact():
    report = _report()
    fragment = report._repr_html_()
    assert fragment.startswith('<div class="gradcheck-report">')
    assert "<html" not in fragment and "<svg" not in fragment and "<figure" not in fragment
    assert "FAILED" in fragment and "<table>" in fragment
    for finding in report.findings:
        assert f"<b>{finding.param}</b>" in fragment


def test_notebook_view_labels_an_interrupted_report_incomplete():
    calls = {"n": 0}

    def loss(p):  # Ctrl-C on the 6th call: some entries are left without a verdict
        calls["n"] += 1
        if calls["n"] == 6:
            raise KeyboardInterrupt
        return float(np.sum(p ** 3))

    w = np.linspace(-1.0, 1.0, 4)
    report = gradcheck.check(loss, w, 3 * w**2, on_interrupt="report")
    assert report.passed is None
    fragment = report._repr_html_()
    assert '<div class="verdict incomplete">' in fragment and 'class="verdict fail"' not in fragment
    assert ".gradcheck-report .incomplete{" in fragment


def test_the_verdict_is_the_column_next_to_the_name():
    # At 700 px the table scrolls sideways: the answer must be in the first columns, not cut off.
    page = _report().to_html()
    table = page[page.index("<h2>Parameters</h2>"):]
    heads = re.findall(r"<th[^>]*>([^<]*)</th>", table[: table.index("</thead>")])
    assert heads[:2] == ["parameter", "verdict"]
    first_row = re.findall(r"<td[^>]*>(.*?)</td>", table[table.index("<tbody>"):])[:2]
    assert first_row[0] == "W" and "WRONG" in first_row[1]
