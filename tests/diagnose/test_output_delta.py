"""The "delta" kind: an error that starts at the output delta dJ/dz_L, and what it refuses."""

from __future__ import annotations

import numpy as np
import pytest
from bugs import bugs
from bugs.delta import delta_net
from bugs.kinks import relu_zeros
from bugs.mlp import mlp

import gradcheck
from gradcheck.diagnose._delta import layer_chain
from gradcheck.diagnose._diagnose import _snap
from gradcheck.diagnose._evidence import evidence
from gradcheck.diagnose._signatures import own_relation

CASES = {c.name: c for c in bugs()}


def _check(net, **bug):
    loss, params, grads = net
    return gradcheck.check(loss, params, grads(params, **bug))


def _kinds(report) -> dict[str, str]:
    return {f.param: f.kind for f in report.findings}


def test_a_wrong_output_delta_is_named_in_every_layer_and_points_at_the_output() -> None:
    net = delta_net("tanh", "softmax", (5, 7, 6, 3), m=12, seed=3)
    report = _check(net, mse_delta=True)  # (p − y)·p(1 − p) with a softmax cross-entropy
    assert set(report.suspects) == {"W1", "b1", "W2", "b2", "W3", "b3"}
    assert set(_kinds(report).values()) == {"delta"}
    last = next(f for f in report.findings if f.param == "W3")
    assert "output delta" in last.detail and "W1, b1, W2, b2 wrong as a consequence" in last.detail
    assert "f′ taken at z_L" in last.hint and "1/m" in last.hint
    first = next(f for f in report.findings if f.param == "W1")
    assert "cannot be judged on its own" in first.detail
    assert "carries that error" in report.explain(verbose=True)
    assert report.origin in ("W3", "b3")


def test_a_hidden_layer_derivative_is_not_an_output_delta() -> None:
    # The output layer is right: the error starts at a hidden layer, not at δ_L.
    report = _check(delta_net("tanh", "sigmoid-mse", (6, 8, 8, 4), m=15, seed=4),
                    hidden_prime_at_a=True)
    assert "delta" not in _kinds(report).values()
    assert not {"W3", "b3"} & set(report.suspects) and report.origin in ("W2", "b2")


@pytest.mark.parametrize(("bug", "kind"), [("sign", "sign"), ("no_mean", "scale")])
def test_the_same_sign_or_factor_everywhere_keeps_its_own_kind(bug: str, kind: str) -> None:
    report = _check(delta_net("relu", "softmax", (5, 9, 7, 3), m=11, seed=5), **{bug: True})
    assert set(_kinds(report).values()) == {kind}


def test_the_same_per_tensor_mistake_in_every_dw_is_not_a_delta() -> None:
    # dW += λ·W² in every layer: each W is unexplained, but the biases (which that formula does
    # not touch) are right, and a wrong δ_L would have reached them.
    loss, params, grads = mlp("tanh", "softmax", (5, 8, 8, 3), m=16, seed=6)
    g = grads(params)
    g = {k: v + (0.05 * params[k] ** 2 if k.startswith("W") else 0.0) for k, v in g.items()}
    report = gradcheck.check(loss, params, g)
    assert set(report.suspects) == {"W1", "W2", "W3"}
    assert "delta" not in _kinds(report).values()


def test_seed_003s_code_and_labels_off_by_one_sample_say_which_last_tensor_is_right() -> None:
    seed = gradcheck.check(*(lambda c: (c.loss, c.params, c.grads))(
        CASES["delta: seed 003's code (db2 and backprop without σ′)"]))
    assert set(_kinds(seed).values()) == {"delta"} and "W2" not in seed.suspects
    (b2,) = [f for f in seed.findings if f.param == "b2"]
    assert "dW2 is right" in b2.detail
    paired = CASES["delta: labels paired with the next sample"]
    report = gradcheck.check(paired.loss, paired.params, paired.grads)
    (w2,) = [f for f in report.findings if f.param == "W2"]
    assert w2.kind == "delta" and "db2 = Σ δ_L is right" in w2.detail


def test_seed_nets_sigmoid_prime_of_a_is_a_delta_that_also_flags_the_hidden_layer() -> None:
    # σ′ applied to a at the output and the hidden layer (benchmarks/seed_net.py, small): δ_L is
    # wrong, so the output layer is named "delta"; W1 is told to look at its own f′ after that.
    report = _check(delta_net("sigmoid", "sigmoid-mse", (6, 10, 4), m=20, seed=8),
                    prime_at_a=True, hidden_prime_at_a=True)
    assert set(_kinds(report).values()) == {"delta"}
    (w1,) = [f for f in report.findings if f.param == "W1"]
    assert "derivative at z, not at a" in w1.hint


def test_one_layer_needs_both_tensors_wrong() -> None:
    net = delta_net("tanh", "softmax", (6, 4), m=20, seed=9)
    both = _check(net, mse_delta=True)
    assert set(_kinds(both).values()) == {"delta"}
    assert "dW1 and db1 are both wrong" in both.findings[0].detail
    loss, params, grads = net
    g = grads(params)
    g["W1"] = g["W1"] + 0.01 * np.sin(np.arange(g["W1"].size)).reshape(g["W1"].shape)
    only_w = gradcheck.check(loss, params, g)
    assert only_w.suspects == ("W1",) and _kinds(only_w) == {"W1": "unexplained"}


def test_layers_order_and_tensors_j_ignores() -> None:
    loss, params, grads = delta_net("tanh", "softmax", (5, 6, 3), m=10, seed=10)
    names = {"W1": "hidden_w", "b1": "hidden_b", "W2": "out_w", "b2": "out_b"}
    renamed = {names[k]: v for k, v in params.items()} | {"frozen": np.ones(3)}

    def rloss(p):
        return loss({k: p[v] for k, v in names.items()})

    wrong = {names[k]: v for k, v in grads(params, mse_delta=True).items()} | {
        "frozen": np.zeros(3)}
    order = ["hidden_w", "hidden_b", "out_w", "out_b", "frozen"]
    report = gradcheck.check(rloss, renamed, wrong, layers=order)
    assert set(_kinds(report).values()) == {"delta"}
    assert "frozen" not in [n for g in layer_chain(report.components, order) for n in g]
    # No layer numbers: insertion order, one tensor a link; "frozen" (J ignores it) is none.
    assert layer_chain(report.components, None) == [["hidden_w"], ["hidden_b"], ["out_w"],
                                                    ["out_b"]]


def test_an_approximate_scale_is_no_relation_of_its_own_but_an_exact_one_is() -> None:
    # BCE delta times σ′(z) ≈ 0.24: every tensor fits "≈ 0.24 × numeric" only approximately.
    report = _check(delta_net("sigmoid", "bce", (4, 7, 6, 5, 3), m=12, seed=11), extra_prime=True)
    assert set(_kinds(report).values()) == {"delta"}
    scaled = _check(delta_net("sigmoid", "bce", (4, 7, 3), m=12, seed=11), no_mean=True)
    for f in scaled.findings:
        e = evidence(scaled.components[f.param])
        assert f.kind == "scale" and own_relation(e, f)
    f = scaled.findings[0]
    assert own_relation(evidence(scaled.components[f.param]), f, established=True)


def test_a_scale_fitted_on_two_entries_off_the_kinks_is_confirmed() -> None:
    # 18 of dW1's 20 entries sit on ReLU kinks; the two checked ones carry the ×1.001.
    loss, params, grads = relu_zeros(2, 5, seed=100)
    report = gradcheck.check(loss, params, grads(params, w1_scale=1.001))
    (finding,) = report.findings
    assert finding.kind == "scale" and finding.factor == pytest.approx(1.001, rel=1e-6)
    assert _snap(1.001, None) == 1.001 and _snap(1.04, None) == 1.04 and _snap(2.05, None) == 2.0


def test_torch_style_names_group_a_module_into_one_layer() -> None:
    loss, params, grads = delta_net("tanh", "softmax", (5, 6, 3), m=10, seed=12)
    names = {"W1": "body.0.weight", "b1": "body.0.bias", "W2": "head.weight", "b2": "head.bias"}
    renamed = {names[k]: v for k, v in params.items()}
    report = gradcheck.check(lambda p: loss({k: p[v] for k, v in names.items()}), renamed,
                             {names[k]: v for k, v in grads(params, roll_samples=True).items()})
    assert layer_chain(report.components, None) == [["body.0.weight", "body.0.bias"],
                                                    ["head.weight", "head.bias"]]
    # db of the head is right (labels paired with the next sample), the rest wrong: still delta.
    assert "head.bias" not in report.suspects
    assert set(_kinds(report).values()) == {"delta"}


def test_a_function_of_several_inputs_is_no_network() -> None:
    # Both inputs wrong with no relation: without layers=, input0 and input1 are no layers.
    rng = np.random.default_rng(13)
    a, b = rng.standard_normal((4, 3)), rng.standard_normal((3, 5))
    params = {"input0": a, "input1": b}
    loss = lambda p: float(np.sum(np.tanh(p["input0"] @ p["input1"])))  # noqa: E731
    t = 1 - np.tanh(a @ b) ** 2
    wrong = {"input0": (t * t) @ b.T, "input1": a.T @ (t * t)}
    report = gradcheck.check(loss, params, wrong)
    assert set(report.suspects) == {"input0", "input1"}
    assert "delta" not in _kinds(report).values()
    told = gradcheck.check(loss, params, wrong, layers=["input0", "input1"])
    assert set(_kinds(told).values()) == {"delta"}  # layers= says it is a chain of layers


def test_a_deep_net_lists_the_first_layers_and_counts_the_rest() -> None:
    report = _check(delta_net("tanh", "softmax", (4, 5, 5, 5, 5, 3), m=10, seed=14),
                    mse_delta=True)
    (w5,) = [f for f in report.findings if f.param == "W5"]
    assert w5.kind == "delta" and "W1, b1, W2, b2, W3, b3 and 2 more wrong" in w5.detail


def test_one_wrong_label_leaves_two_output_columns_wrong_and_is_still_a_delta() -> None:
    report = _check(delta_net("tanh", "softmax", (4, 6, 6), m=20, seed=15), one_label=True)
    assert set(_kinds(report).values()) == {"delta"}
    (w2,) = [f for f in report.findings if f.param == "W2"]
    assert "Only columns" in w2.detail  # the per-tensor description is kept
