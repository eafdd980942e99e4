"""``sweep``: relative error against ε for central, forward and Richardson, and the plot files."""

from __future__ import annotations

import numpy as np
import pytest

from gradcheck._errors import OptionError
from gradcheck.checks._sweep import default_grid, sweep
from gradcheck.report._sweep import save, svg_text


def _smooth():
    rng = np.random.default_rng(3)
    params = {"w": rng.standard_normal(4), "v": rng.standard_normal((2, 2))}

    def loss(p):
        return float(np.sum(np.exp(np.sin(p["w"]))) + np.sum(p["v"] ** 3) / 3)

    grads = {"w": np.cos(params["w"]) * np.exp(np.sin(params["w"])), "v": params["v"] ** 2}
    return loss, params, grads


GRID = np.logspace(-11, -1, 11)


@pytest.fixture(scope="module")
def result():
    return sweep(*_smooth(), eps=GRID)


def test_every_scheme_draws_a_v_truncation_falling_then_rounding_rising(result):
    for name, err in result.errors.items():
        best = int(np.argmin(err))
        assert 0 < best < len(GRID) - 1, name
        assert err[0] > 10 * err[best] and err[-1] > 10 * err[best], name


def test_best_steps_follow_the_order_of_each_scheme(result):
    best = result.best()
    # h* ~ u^(1/(p+1)): forward (p=1) ~ 1e-8, central (p=2) ~ 1e-5, Richardson (p=4) ~ 1e-3.
    assert best["forward"][0] < best["central"][0] < best["richardson"][0]
    assert 1e-10 <= best["forward"][0] <= 1e-6
    assert best["central"][1] < best["forward"][1]
    assert best["richardson"][1] <= best["central"][1]


def test_truncation_slope_matches_the_order(result):
    # Between ε = 1e-2 and 1e-1 truncation dominates: error ∝ ε^p.
    for name, order in (("forward", 1), ("central", 2)):
        err = result.errors[name]
        slope = np.log10(err[-1] / err[-2])
        assert slope == pytest.approx(order, abs=0.35), name


def test_a_wrong_gradient_shows_as_a_floor():
    loss, params, grads = _smooth()
    grads = {"w": grads["w"] * 1.01, "v": grads["v"]}
    floor = sweep(loss, params, grads, eps=GRID, schemes=["central"]).errors["central"]
    assert floor.min() > 1e-3


def test_params_are_not_modified():
    loss, params, grads = _smooth()
    before = {k: v.copy() for k, v in params.items()}
    sweep(loss, params, grads, eps=[1e-3, 1e-6], schemes=["forward"])
    for k, v in params.items():
        assert np.array_equal(v, before[k]) and v.tobytes() == before[k].tobytes()


def test_save_writes_png_and_svg(tmp_path, result):
    paths = save(result, tmp_path / "plot")
    assert [p.name for p in paths] == ["plot.png", "plot.svg"]
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    svg = paths[1].read_text(encoding="utf-8")
    assert "<svg" in svg and "<script" not in svg
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plot.png", "plot.svg"]


def test_svg_text_is_inline_markup(result):
    text = svg_text(result)
    assert text.startswith("<svg") and text.rstrip().endswith("</svg>")


@pytest.mark.parametrize("eps", [[], [0.0, 1e-3], [-1e-3], [float("nan")]])
def test_bad_steps_are_rejected(eps):
    loss, params, grads = _smooth()
    with pytest.raises(OptionError):
        sweep(loss, params, grads, eps=eps)


def test_missing_output_folder_is_an_error(tmp_path, result):
    with pytest.raises(OptionError, match="does not exist"):
        save(result, tmp_path / "nope" / "plot")


def test_default_grid_spans_the_interesting_range():
    grid = default_grid()
    assert grid[0] == pytest.approx(1e-12) and grid[-1] == pytest.approx(1e-1)
    assert np.all(np.diff(np.log10(grid)) > 0)


def test_floor_is_reported_only_for_a_wrong_gradient(result, tmp_path):
    assert result.floor() is None
    loss, params, grads = _smooth()
    wrong = sweep(loss, params, {"w": grads["w"] * 1.01, "v": grads["v"]}, eps=GRID[::3],
                  schemes=["central"])
    assert wrong.floor() == pytest.approx(wrong.errors["central"].min())
    assert all(p.stat().st_size > 0 for p in save(wrong, tmp_path / "floor"))
