"""The diagnosis: each bug signature on planted mistakes, the origin, kinks, and explain()."""

from __future__ import annotations

import json

import numpy as np
import pytest
from bugs.mlp import mlp
from hypothesis import given, settings
from hypothesis import strategies as st

import gradcheck
from gradcheck.diagnose._diagnose import diagnose
from gradcheck.diagnose._signatures import SIGNATURES
from gradcheck.report._sentences import NoteCode

M = 16


def _net(**kw):
    return mlp("tanh", "softmax", (5, 8, 8, 3), m=M, **kw)


def _diagnose(net, change=None, **options):
    loss, params, grads = net
    g = {k: v.copy() for k, v in grads(params).items()}
    if change is not None:
        change(g)
    return gradcheck.check(loss, params, g, **options)


def _only(report, name):
    assert report.suspects == (name,)
    (finding,) = report.findings
    assert finding.param == name
    return finding


def test_sign_is_named_before_a_scale_of_minus_one() -> None:
    kinds = [s.kind for s in SIGNATURES]
    assert kinds.index("sign") < kinds.index("scale")
    finding = _only(_diagnose(_net(), lambda g: g.update(W3=-g["W3"])), "W3")
    assert finding.kind == "sign"
    assert finding.factor == -1.0


@pytest.mark.parametrize(
    ("factor", "words"),
    [(2.0, "2 × numeric"), (0.5, "1/2 × numeric"), (M, "missing 1/m"), (1 / M, "twice")],
)
def test_scale_names_2_half_m_and_one_over_m(factor: float, words: str) -> None:
    report = _diagnose(_net(), lambda g: g.update(W2=factor * g["W2"]), batch_size=M)
    finding = _only(report, "W2")
    assert finding.kind == "scale"
    assert finding.factor == pytest.approx(factor, rel=1e-6)
    assert words in finding.detail + finding.hint


def test_a_whole_factor_without_batch_size_is_a_conditional_missing_one_over_m() -> None:
    finding = _only(_diagnose(_net(), lambda g: g.update(b2=M * g["b2"])), "b2")
    assert finding.kind == "scale"
    assert finding.hint.startswith("A guess") and f"batch size is {M}" in finding.hint


def test_an_odd_factor_is_reported_as_is() -> None:
    finding = _only(_diagnose(_net(), lambda g: g.update(W1=1.01 * g["W1"])), "W1")
    assert (finding.kind, round(finding.factor, 6)) == ("scale", 1.01)
    assert "1.01" in finding.detail


@settings(max_examples=15, deadline=None)
@given(
    c=st.one_of(st.just(-1.0), st.floats(0.05, 0.95), st.floats(1.05, 50.0)),
    seed=st.integers(0, 1000),
)
def test_any_constant_factor_is_found(c: float, seed: int) -> None:
    loss, params, grads = mlp("tanh", "mse", (3, 4, 2), m=5, seed=seed)
    g = grads(params)
    report = gradcheck.check(loss, params, {**g, "W1": c * g["W1"]})
    finding = _only(report, "W1")
    assert finding.kind == ("sign" if c == -1.0 else "scale")
    assert finding.factor == pytest.approx(c, rel=1e-4)


def test_missing_l2_reports_the_lambda_over_m_that_fixes_it() -> None:
    lam = 0.8
    loss, params, grads = _net(lam=lam)
    report = gradcheck.check(loss, params, grads(params, reg_scale=0.0))
    assert report.suspects == ("W1", "W2", "W3")
    for finding in report.findings:
        assert finding.kind == "regularization"
        assert finding.factor == pytest.approx(lam / M, rel=1e-5)
        assert "lacks the L2 term" in finding.detail


def test_l1_is_recognised_by_sign_theta() -> None:
    loss, params, grads = mlp("tanh", "mse", (4, 6, 2), m=8, l1=0.3)
    report = gradcheck.check(loss, params, grads(params, reg_scale=0.0))
    assert {f.kind for f in report.findings} == {"regularization"}
    assert all("sign(" in f.detail for f in report.findings)


def test_l2_on_a_bias_the_loss_does_not_penalise() -> None:
    loss, params, grads = _net(lam=0.8)
    report = gradcheck.check(loss, params, grads(params, reg_bias=True))
    assert report.suspects == ("b1", "b2", "b3")
    for finding in report.findings:
        assert finding.kind == "regularization"
        assert finding.factor == pytest.approx(-0.8 / M, rel=1e-5)
        assert "does not have" in finding.detail


def test_a_one_entry_tensor_takes_the_kind_that_explains_its_peers() -> None:
    # Any one-constant relation fits a single entry; L2 on the biases explains b1, so b2 too.
    loss, params, grads = mlp("sigmoid", "bce", (5, 6, 1), m=12, lam=0.8)
    report = gradcheck.check(loss, params, grads(params, reg_bias=True))
    assert report.suspects == ("b1", "b2") and params["b2"].size == 1
    assert [f.kind for f in report.findings] == ["regularization", "regularization"]
    # Alone, a one-entry tensor's factor is no evidence until the re-check confirms it.
    alone = gradcheck.check(loss, params, {**grads(params), "b2": 3.0 * grads(params)["b2"]})
    assert [(f.kind, round(f.factor, 6)) for f in alone.findings] == [("scale", 3.0)]
    assert "re-check" in alone.findings[0].detail
    odd = gradcheck.check(loss, params, {**grads(params), "b2": grads(params)["b2"] + 0.37})
    assert [f.kind for f in odd.findings] == ["unexplained"]


def test_a_scaled_data_term_next_to_a_right_l2_term_is_a_scale() -> None:
    loss, params, grads = _net(lam=0.8)
    report = gradcheck.check(loss, params, grads(params, no_mean=True), batch_size=M)
    assert {f.kind for f in report.findings} == {"scale"}
    w = next(f for f in report.findings if f.param == "W2")
    assert w.factor == pytest.approx(M, rel=1e-5)


def test_a_transposed_gradient_with_kink_skipped_entries_is_still_transposed() -> None:
    rng = np.random.default_rng(3)
    c, d = rng.uniform(0.5, 1.0, (5, 5)), rng.standard_normal((5, 5))
    w = rng.standard_normal((5, 5))
    np.fill_diagonal(w, 0.0)  # |w| kinks on the diagonal, which a transpose maps to itself
    loss = lambda p: float(np.sum(c * np.abs(p["w"]) + d * np.sin(p["w"])))  # noqa: E731
    right = c * np.sign(w) + d * np.cos(w) + 0.5 * np.diag(np.diag(c))  # valid subgradients
    report = gradcheck.check(loss, {"w": w}, {"w": right.T.copy()})
    assert report.components["w"].skipped == 5
    assert _only(report, "w").kind == "transposed"


@pytest.mark.parametrize("shape", [(6, 6), (4, 7)])
def test_transposed_or_reshaped_matrix(shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(1)
    w, x = rng.standard_normal(shape), rng.standard_normal(shape)
    loss = lambda p: float(np.sum(np.tanh(p["w"]) * x))  # noqa: E731
    right = (1 - np.tanh(w) ** 2) * x
    report = gradcheck.check(loss, {"w": w}, {"w": right.T.reshape(shape)})
    assert _only(report, "w").kind == "transposed"


def test_swapped_gradients_name_each_other() -> None:
    report = _diagnose(_net(), lambda g: g.update(b1=g["b2"], b2=g["b1"]))
    assert report.suspects == ("b1", "b2")
    assert [(f.param, f.kind, f.where) for f in report.findings] == [
        ("b1", "swapped", ("b2",)),
        ("b2", "swapped", ("b1",)),
    ]


def test_zero_gradient() -> None:
    finding = _only(_diagnose(_net(), lambda g: g.update(W2=np.zeros_like(g["W2"]))), "W2")
    assert finding.kind == "zero"


def test_a_row_left_at_zero_is_localized_with_its_index() -> None:
    def change(g):
        g["W2"][7] = 0.0

    finding = _only(_diagnose(_net(), change), "W2")
    assert finding.kind == "localized"
    assert finding.where == (("row", 7),)
    assert "left at 0" in finding.detail


def test_a_column_and_a_single_entry_are_localized() -> None:
    def column(g):
        g["W1"][:, 2] *= 1.5

    def entry(g):
        g["W1"][3, 4] += 0.1

    assert _only(_diagnose(_net(), column), "W1").where == (("column", 2),)
    assert _only(_diagnose(_net(), entry), "W1").where == ((3, 4),)


def test_unexplained_shows_the_worst_entries() -> None:
    loss, params, grads = _net()
    report = gradcheck.check(loss, params, grads(params, act_on_a=True))
    assert report.suspects == ("W1", "b1", "W2", "b2")
    for finding in report.findings:
        assert finding.kind == "unexplained"
        assert finding.where and all(isinstance(i, tuple) for i in finding.where)
        worst = report.components[finding.param].worst_entries(1)[0][0]
        assert finding.where[0] == worst


def test_origin_is_the_suspect_nearest_the_output_and_explain_says_so() -> None:
    loss, params, grads = _net()
    report = gradcheck.check(loss, params, grads(params, act_on_a=True))
    assert report.origin in ("W2", "b2")
    text = report.explain(verbose=True)
    assert "most likely starts in layer 2 (W2, b2)" in text
    assert "W1, b1 may be wrong only because backprop carries" in text
    assert all(f.detail in text for f in report.findings)
    shown = " ".join(report.to_text(verbose=True).split())  # the same sentences, wrapped
    assert all(" ".join(f.detail.split()) in shown for f in report.findings)
    ordered = gradcheck.check(
        loss, params, grads(params, act_on_a=True), layers=["W2", "b2", "W1", "b1", "W3", "b3"]
    )
    assert ordered.origin == "b1"


def test_findings_serialise_to_json() -> None:
    def change(g):
        g["W2"][7] = 0.0

    data = json.loads(_diagnose(_net(), change).to_json())
    assert data["findings"][0]["kind"] == "localized"
    assert data["findings"][0]["where"] == [["row", 7]]


def test_a_correct_gradient_has_no_findings() -> None:
    report = _diagnose(_net())
    assert report.passed and report.findings == () and report.origin is None


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "16"])
def test_batch_size_is_validated(bad) -> None:
    loss, params, grads = _net()
    with pytest.raises(gradcheck.OptionError, match="batch_size"):
        gradcheck.check(loss, params, grads(params), batch_size=bad)


# --- kinks: a valid subgradient is accepted, a wrong value at a kink is blamed ---------------

def _relu_sum(p):
    return float(np.sum(np.maximum(p["w"], 0.0) * 2.0))


def test_a_subgradient_at_a_kink_is_skipped_and_noted() -> None:
    w = np.array([[0.5, -1.0], [0.0, 2.0]])
    report = gradcheck.check(_relu_sum, {"w": w}, {"w": np.array([[2.0, 0.0], [1.3, 2.0]])})
    assert report.passed
    assert any(n.code is NoteCode.KINKS_SKIPPED and n.numbers["where"] == [(1, 0)] for n in report.notes)


def test_a_wrong_value_at_a_kink_is_blamed() -> None:
    w = np.array([[0.5, -1.0], [0.0, 2.0]])
    report = gradcheck.check(_relu_sum, {"w": w}, {"w": np.array([[2.0, 0.0], [3.0, 2.0]])})
    assert report.suspects == ("w",)
    assert report.components["w"].worst_index == (1, 0)
    assert report.findings[0].where == ((1, 0),)


def test_a_sign_flip_of_a_bias_whose_every_entry_sits_on_a_kink_is_confirmed_by_recheck() -> None:
    # Zero input rows and zero biases: every entry of db1 is at a ReLU kink, so its numeric
    # value is a midpoint of two slopes and no relation fits exactly; the re-check decides.
    loss, params, grads = mlp("relu", "softmax", (4, 8, 3), m=10, zero_rows=3, seed=4)
    g = grads(params)
    report = gradcheck.check(loss, params, {**g, "b1": -g["b1"]})
    finding = _only(report, "b1")
    assert finding.kind == "sign" and "re-check" in finding.detail
    scaled = gradcheck.check(loss, params, grads(params, no_mean=True), batch_size=10)
    assert [f.kind for f in scaled.findings] == ["scale"] * 4
    assert all(f.factor == pytest.approx(10.0, rel=1e-3) for f in scaled.findings)


def test_swapped_biases_on_kinks_are_confirmed_by_exchanging_them() -> None:
    loss, params, grads = mlp("relu", "mse", (4, 6, 6, 2), m=10, zero_rows=3, seed=1)
    g = grads(params)
    report = gradcheck.check(loss, params, {**g, "b1": g["b2"], "b2": g["b1"]})
    assert [(f.param, f.kind) for f in report.findings] == [("b1", "swapped"), ("b2", "swapped")]
    # The direct fit alone cannot see it: every entry sits on a kink.
    direct, _ = diagnose(report.components, report.suspects, None)
    assert [f.kind for f in direct] == ["unexplained", "unexplained"]


def test_a_right_tensor_in_the_origin_layer_means_nothing_propagates_from_it() -> None:
    # The deep-learning course's planted bugs: dW2 x2 and db1 x4 (4./m for 1./m). db2 is right,
    # so layer 2's delta is right: b1 is not "wrong only because backprop carries the error".
    from bugs.course import ng_gradient_check

    report = ng_gradient_check(True).run()
    assert set(report.suspects) == {"W2", "b1"}
    text = report.explain()
    assert "b2 is right, so the delta of layer 2" in text and "carries that error" not in text
    # batch_size=3 was given and the factor is 4: no "if your batch size is 4" guess
    assert "If your batch size is" not in text


def test_nielsens_biases_then_weights_layout_is_read_by_layer() -> None:
    # params = (biases, weights): names 0.0, 0.1 (biases), 1.0, 1.1 (weights); the layer is the
    # second number. The output layer is (0.1, 1.1), not the weights of both layers.
    from bugs.course import nielsen

    report = nielsen("sigmoid_prime_of_a").run()
    assert set(report.suspects) == {"0.0", "0.1", "1.0", "1.1"}
    assert report.origin in ("0.1", "1.1")
    assert "last layer (0.1, 1.1)" in report.explain(verbose=True)


def test_swaps_are_rechecked_only_where_the_exchange_removes_most_of_the_error() -> None:
    # micrograd's 41 scalar parameters, all wrong and "unexplained": 820 same-shape pairs. Only
    # exchanges that bring a gradient close to the other's numeric value are re-checked (the
    # diagnosis spent 3,536 of the 3,949 calls on them before).
    from bugs.course import micrograd

    report = micrograd("tanh_no_square").run()
    assert len(report.suspects) == 41 and not report.passed
    assert report.evaluations < 1_500
    assert all(f.kind != "swapped" for f in report.findings)
