"""Issue 12's diagnosis kinds: kernels read the wrong way round, L2 next to the data term,
hints that fit the tensor, and the origin sentence only where backprop carries the error."""

from __future__ import annotations

from bugs import bugs
from bugs.conv import conv2d
from bugs.mlp import mlp

import gradcheck
from gradcheck.diagnose._hints import Context, hint_rule

CASES = {c.name: c for c in bugs()}


def _report(name: str):
    case = CASES[name]
    return gradcheck.check(case.loss, case.params, case.grads, batch_size=case.batch_size)


def test_a_flipped_and_an_axes_exchanged_kernel_are_named() -> None:
    flipped = _report("conv2d: kernel flipped")
    assert [f.kind for f in flipped.findings] == ["flipped"]
    assert "180°" in flipped.findings[0].detail
    swapped = _report("conv2d: kernel spatial axes exchanged")
    assert [f.kind for f in swapped.findings] == ["flipped"]
    assert "exchanged" in swapped.findings[0].detail


def test_a_correct_conv_kernel_is_not_called_flipped() -> None:
    loss, params, grads = conv2d(seed=7)
    assert gradcheck.check(loss, params, grads(params)).passed


def test_l2_next_to_a_transposed_data_term_and_an_l2_only_gradient() -> None:
    transposed = _report("tanh-ce: dW2 data term transposed, L2 right")
    (finding,) = transposed.findings
    assert finding.kind == "transposed" and "L2 term" in finding.detail
    only = _report("tanh-ce: dW2 only the L2 term")
    (finding,) = only.findings
    assert finding.kind == "data term" and abs(finding.factor - 0.8 / 16) < 1e-9


def test_unexplained_hints_fit_the_tensor() -> None:
    def rule(name: str, shape: tuple[int, ...]) -> str:
        return hint_rule(Context(name, shape)).name

    assert rule("K", (3, 2, 3, 3)) == "kernel"
    assert rule("bn1.gamma", (6,)) == "normalisation"
    assert rule("tok_emb", (10, 4)) == "embedding"
    assert rule("W1", (4, 6)) == "fallback"  # no layer evidence handed in: a labelled guess


def test_the_backprop_carries_sentence_only_for_a_wrong_delta() -> None:
    per_tensor = _report("tanh-ce: L2 missing in dW")  # one L2 mistake in each dW
    assert "carries" not in per_tensor.explain()
    assert "do not propagate" in per_tensor.explain()
    loss, params, grads = mlp("tanh", "softmax", (5, 8, 8, 3), m=16)
    delta = gradcheck.check(loss, params, grads(params, act_on_a=True))  # a wrong delta
    assert "carries that error" in delta.explain()
