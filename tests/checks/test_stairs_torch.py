"""Issue 12: torch.round / floor through the torch adapter, native float32 and a
straight-through autograd.Function (a surrogate gradient must fail, and be called one)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

import gradcheck.torch as gt  # noqa: E402
from gradcheck.report._sentences import NoteCode  # noqa: E402


@pytest.mark.parametrize("precision", ["auto", "native"])
def test_torch_round_passes_with_its_zero_gradient(precision) -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, generator=g).requires_grad_(True)
    w = torch.randn(40, generator=g)
    report = gt.check_function(lambda v: (torch.round(v, decimals=3) * w).sum(), x,
                               precision=precision)
    assert report.passed, report.explain()
    assert NoteCode.STAIRS in report.note_codes


def test_a_straight_through_round_fails_as_a_surrogate() -> None:
    class RoundSTE(torch.autograd.Function):
        @staticmethod
        def forward(x):
            return torch.round(x, decimals=3)

        @staticmethod
        def setup_context(ctx, inputs, output):
            pass

        @staticmethod
        def backward(ctx, grad):
            return grad

    g = torch.Generator().manual_seed(1)
    x = torch.randn(30, generator=g, dtype=torch.float64).requires_grad_(True)
    w = torch.randn(30, generator=g, dtype=torch.float64)
    report = gt.check_function(lambda v: (RoundSTE.apply(v) * w).sum(), x)
    assert report.passed is False
    assert NoteCode.SURROGATE in report.note_codes
