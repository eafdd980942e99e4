"""Ties of mixed sign are not bugs (issue 22, part 2, item 1).

Several ReLU inputs exactly at 0 that move in opposite directions along one parameter (integer
data, a zero input row with b = 0, padding) put backprop's relu'(0) = 0 outside J's one-sided
slopes there, or make J smooth along the entry while backprop differs (Lee et al., NeurIPS
2020), although the code is right. Such a mismatch is never blamed on the spot: with arrays it
is left unjudged with a note, with callable grads it is judged at a nearby generic point. A
wrong value at a plain kink (one ReLU input at 0, 2·g there) still fails.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gradcheck
from gradcheck.report._model import KINK, MISMATCH, UNCHECKED
from gradcheck.report._sentences import Note, NoteCode

Params = dict[str, np.ndarray]


def relu_net(kind: str, seed: int = 0, n: int = 12, d: int = 4, h: int = 6, c: int = 3):
    """A 2-layer ReLU net with softmax cross-entropy, b1 = 0, and exact ties at 0.

    ``zero_row``: one input row is all zeros; ``padding``: the last 4 rows are; ``integer``:
    integer data and weights in quarters, so that many pre-activations are exactly 0 with
    inputs of both signs. Bug: ``w1_scale`` (dW1 scaled).
    """
    rng = np.random.default_rng(seed)
    if kind == "integer":
        x = rng.integers(-2, 3, (n, d)).astype(float)
        w1 = rng.integers(-2, 3, (d, h)) / 4.0
    else:
        x = rng.standard_normal((n, d))
        x[3 if kind == "zero_row" else slice(n - 4, n)] = 0.0
        w1 = 0.5 * rng.standard_normal((d, h))
    params = {"W1": w1, "b1": np.zeros(h), "W2": 0.5 * rng.standard_normal((h, c)),
              "b2": np.zeros(c)}
    y = rng.integers(0, c, n)

    def forward(p: Params) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        z = x @ p["W1"] + p["b1"]
        a = np.maximum(z, 0.0)
        s = a @ p["W2"] + p["b2"]
        e = np.exp(s - s.max(1, keepdims=True))
        return z, a, e / e.sum(1, keepdims=True)

    def loss(p: Params) -> float:
        return float(-np.mean(np.log(forward(p)[2][np.arange(n), y])))

    def grads(p: Params, w1_scale: float = 1.0) -> Params:
        z, a, prob = forward(p)
        ds = prob.copy()
        ds[np.arange(n), y] -= 1.0
        ds /= n
        dz = (ds @ p["W2"].T) * (z > 0)  # relu'(0) = 0
        return {"W1": w1_scale * (x.T @ dz), "b1": dz.sum(0), "W2": a.T @ ds, "b2": ds.sum(0)}

    return loss, params, grads, x


def smooth_tie(seed: int = 0, m: int = 8, h: int = 4):
    """Two rows x and −x tied at 0 in unit 0 whose residuals cancel: J is smooth along W1[:, 0]
    (J(t) = J(0) + c·t + O(t²) on both sides) while backprop's relu'(0) = 0 gives another value."""
    rng = np.random.default_rng(seed)
    x = np.vstack([[1.0, 2.0], [-1.0, -2.0], rng.standard_normal((m, 2))])
    w1 = rng.standard_normal((2, h))
    w1[:, 0] = [2.0, -1.0]  # x·w = 0 for both tied rows
    w2 = rng.standard_normal((h, 1))
    w2[0, 0] = 1.5
    out = np.maximum(x @ w1, 0.0) @ w2
    y = out[:, 0] + 0.3 * rng.standard_normal(len(x))
    y[0], y[1] = out[0, 0] - 0.5, out[1, 0] + 0.5  # residuals +0.5 and −0.5
    n = len(x)

    def loss(p: Params) -> float:
        a = np.maximum(x @ p["W1"] + p["b1"], 0.0)
        return float(0.5 * np.sum(((a @ p["W2"])[:, 0] - y) ** 2) / n)

    def grads(p: Params, w1_scale: float = 1.0) -> Params:
        z = x @ p["W1"] + p["b1"]
        a = np.maximum(z, 0.0)
        r = ((a @ p["W2"])[:, 0] - y)[:, None] / n
        dz = (r @ p["W2"].T) * (z > 0)
        return {"W1": w1_scale * (x.T @ dz), "b1": dz.sum(0), "W2": a.T @ r}

    return loss, {"W1": w1, "b1": np.zeros(h), "W2": w2}, grads, x


def mixed_entries(x: np.ndarray, params: Params) -> set[tuple[int, int]]:
    """The W1 entries (d, j) along which tied rows of unit j move in opposite directions."""
    z = x @ params["W1"] + params["b1"]
    out = set()
    for j in range(z.shape[1]):
        tied = x[z[:, j] == 0.0]
        for d in range(x.shape[1]):
            if (tied[:, d] > 0).any() and (tied[:, d] < 0).any():
                out.add((d, j))
    return out


def checked(monkeypatch: pytest.MonkeyPatch, loss: Any, params: Params, grads: Any, **kw: Any):
    """The report, its notes as records, and their codes."""
    report = gradcheck.check(loss, params, grads, **kw)
    records = [n for n in report.notes if isinstance(n, Note)]
    return report, records, set(report.note_codes)


def tie_entries(records: list[Note], name: str) -> set[tuple[int, ...]]:
    notes = [n for n in records if n.code == NoteCode.TIES and n.tensor == name]
    return {tuple(int(k) for k in np.unravel_index(i, notes[0].numbers["shape"]))
            for i in notes[0].numbers["entries"]} if notes else set()


def test_the_builders_plant_ties_of_mixed_sign() -> None:
    _, params, _, x = relu_net("integer")
    assert len(mixed_entries(x, params)) >= 4
    _, params, _, x = smooth_tie()
    assert mixed_entries(x, params) == {(0, 0), (1, 0)}
    for kind in ("zero_row", "padding"):  # one-signed ties only: along b1 (inputs 1)
        _, params, _, x = relu_net(kind)
        assert np.sum(x @ params["W1"] == 0.0) >= 6 and not mixed_entries(x, params)


def test_mixed_ties_with_array_grads_are_left_unjudged_and_named(monkeypatch) -> None:
    loss, params, grads, x = relu_net("integer")
    report, records, codes = checked(monkeypatch, loss, params, grads(params))
    assert report.verdict == "incomplete", report.notes  # was "failed" (W1 blamed)
    w1 = report.components["W1"]
    assert w1.passed is None and w1.mismatches == 0 and w1.unjudged > 0
    assert NoteCode.TIES in codes
    named = tie_entries(records, "W1")
    assert named and named <= mixed_entries(x, params)
    assert all(w1.flags[i] == UNCHECKED for i in named)  # never PASSED either
    assert all(report.components[n].passed for n in ("b1", "W2", "b2"))


@pytest.mark.parametrize("kind", ["zero_row", "padding", "integer"])
def test_correct_backprop_at_ties_passes_with_callable_grads(kind, monkeypatch) -> None:
    loss, params, grads, _ = relu_net(kind)
    report, records, codes = checked(monkeypatch, loss, params, grads)
    assert report.passed, report.notes
    if kind == "integer":  # judged off the ties, with grads(θ + δ)
        assert NoteCode.TIES in codes
        note = next(n for n in records if n.code == NoteCode.TIES)
        assert note.numbers["left"].size == 0 and note.numbers["wrong"] == 0


@pytest.mark.parametrize("kind", ["zero_row", "padding"])
def test_one_signed_ties_with_array_grads_are_subgradients(kind) -> None:
    loss, params, grads, _ = relu_net(kind)
    report = gradcheck.check(loss, params, grads(params))
    assert report.passed, report.notes
    assert np.all(report.components["b1"].flags == KINK)


@pytest.mark.parametrize("kind", ["zero_row", "padding", "integer"])
@pytest.mark.parametrize("as_function", [False, True])
def test_a_real_error_next_to_ties_blames_w1_alone(kind, as_function) -> None:
    loss, params, grads, _ = relu_net(kind)
    wrong = (lambda p: grads(p, 1.001)) if as_function else grads(params, 1.001)
    report = gradcheck.check(loss, params, wrong)
    assert report.verdict == "failed" and report.suspects == ("W1",)
    assert report.components["b1"].mismatches == 0 and report.components["b1"].passed


def test_a_smooth_line_through_two_ties_is_not_blamed(monkeypatch) -> None:
    loss, params, grads, _ = smooth_tie()
    g = grads(params)["W1"][0, 0]

    def along(t: float) -> float:
        p = {k: v.copy() for k, v in params.items()}
        p["W1"][0, 0] += t
        return loss(p)

    right, left = (along(1e-6) - along(0)) / 1e-6, (along(0) - along(-1e-6)) / 1e-6
    assert abs(right - left) < 1e-5 and abs(right - g) > 0.05  # smooth, and backprop differs
    report, records, codes = checked(monkeypatch, loss, params, grads(params))
    assert report.verdict == "incomplete" and NoteCode.TIES in codes  # was "failed"
    assert tie_entries(records, "W1") == {(0, 0), (1, 0)}
    assert gradcheck.check(loss, params, grads).passed


def test_an_error_on_the_smooth_tie_is_caught_off_the_ties() -> None:
    loss, params, grads, _ = smooth_tie()
    report = gradcheck.check(loss, params, lambda p: grads(p, 1.001))
    assert report.suspects == ("W1",)
    assert report.components["W1"].flags[0, 0] == MISMATCH  # judged wrong at θ + δ


@pytest.mark.parametrize("as_function", [False, True])
def test_twice_the_slope_at_a_single_kink_still_fails(as_function) -> None:
    x = np.linspace(-1.3, 1.1, 10)
    x[[1, 4, 7]] = 0.0
    c = np.arange(1.0, 11.0)

    def loss(p: Params) -> float:
        return float(np.maximum(p["x"], 0.0) @ c)

    def grads(p: Params) -> Params:  # relu' at 0 taken as 2: outside the slopes [0, c]
        return {"x": np.where(p["x"] == 0, 2.0, (p["x"] > 0).astype(float)) * c}

    report = gradcheck.check(loss, {"x": x}, grads if as_function else grads({"x": x}))
    assert report.suspects == ("x",)
    assert set(np.flatnonzero(report.components["x"].flags == MISMATCH)) == {1, 4, 7}


@st.composite
def tied_nets(draw: st.DrawFn) -> tuple[int, int, int]:
    return draw(st.integers(0, 2**16)), draw(st.integers(6, 10)), draw(st.integers(3, 5))


def forced(seed: int, n: int, h: int):
    """A 3-feature ReLU net on integer data, unit 0 holding a pair of rows x and −x with
    x·w = 0 (a tie of mixed sign along W1[:, 0]), the others random."""
    rng = np.random.default_rng(seed)
    x = rng.integers(-3, 4, (n, 3)).astype(float)
    w1 = rng.standard_normal((3, h))
    x[1] = -x[0]
    x[0, 2] = x[1, 2] = 0.0
    x[0, :2] = rng.choice([-2.0, -1.0, 1.0, 2.0], 2)
    x[1, :2] = -x[0, :2]
    w1[:2, 0] = [x[0, 1], -x[0, 0]]  # x0·w = 0
    w2, y = rng.standard_normal((h, 2)), rng.standard_normal((n, 2))

    def loss(p: Params) -> float:
        a = np.maximum(x @ p["W1"] + p["b1"], 0.0)
        return float(0.5 * np.sum((a @ p["W2"] - y) ** 2) / n)

    def grads(p: Params, k: float = 1.0) -> Params:
        z = x @ p["W1"] + p["b1"]
        a = np.maximum(z, 0.0)
        r = (a @ p["W2"] - y) / n
        dz = (r @ p["W2"].T) * (z > 0)
        return {"W1": x.T @ dz, "b1": dz.sum(0), "W2": k * (a.T @ r)}

    return loss, {"W1": w1, "b1": np.zeros(h), "W2": w2}, grads


@settings(max_examples=12, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(tied_nets(), st.booleans())
def test_ties_never_fail_right_code_and_never_hide_a_smooth_error(net, as_function) -> None:
    loss, params, grads = forced(*net)
    right = gradcheck.check(loss, params, grads if as_function else grads(params))
    assert right.verdict != "failed", right.notes
    wrong = gradcheck.check(loss, params,
                            (lambda p: grads(p, 1.001)) if as_function else grads(params, 1.001))
    assert wrong.verdict == "failed" and wrong.suspects == ("W2",), wrong.notes


C3 = np.array([-1.64, 1.875, -0.854, 1.2])  # max-pool windows; s[1:4] a triple tie at 0


def _max_pool(p: Params) -> float:
    s = p["s"]
    return float(np.sum(C3 * np.maximum(s[:-1], s[1:])))


def _first_index_grads(s: np.ndarray) -> np.ndarray:
    """Backprop of the max that gives a tie to its window's first index."""
    share = np.where(s[:-1] >= s[1:], 1.0, 0.0)
    g = np.zeros_like(s)
    g[:-1] += C3 * share
    g[1:] += C3 * (1 - share)
    return g


def test_a_triple_tie_of_mixed_sign_is_found_at_every_seed() -> None:
    """s[2] tied with both neighbours: J's derivative along it is c1 + c2 above both, 0 below
    both, and g = c2 (or c1) only where it lies between them: one random nearby ordering in
    three shows it. Six rays missed it at 1 seed in 11 (seeds 4, 15, 21 of these 40, as
    (2/3)^6 predicts); twelve miss at (2/3)^12 < 1%: none of these."""
    s = np.array([1.0, 0.0, 0.0, 0.0, 1.0])
    verdicts = [gradcheck.check(_max_pool, {"s": s.copy()}, {"s": _first_index_grads(s)},
                                seed=k).verdict for k in range(40)]
    assert "failed" not in verdicts
    assert set(verdicts) == {"incomplete"}  # left unjudged, with arrays


def test_kinked_mismatches_the_budget_cannot_screen_are_not_blamed() -> None:
    """At a budget that leaves the screen too few calls, a mismatch whose line showed a kink
    is not blamed on the spot either (a note says why); a larger budget screens it."""
    s = np.array([1.0, 0.0, 0.0, 0.0, 1.0])
    g = {"s": _first_index_grads(s)}
    low = gradcheck.check(_max_pool, {"s": s.copy()}, g, budget=90)  # FAILED before
    assert low.verdict == "incomplete", low.notes
    assert NoteCode.TIES_UNSCREENED in low.note_codes
    ample = gradcheck.check(_max_pool, {"s": s.copy()}, g, budget=150)
    assert ample.verdict == "incomplete" and NoteCode.TIES in ample.note_codes
