"""A right float32 sort over many distinct integers one apart is no bug (a false alarm, fixed).

x = 4,000 distinct integers 0..3999 (shuffled), float32, precision="native". J = Σ R·sort(x)
(~4e4) is known only to ~3e-3, so the steps grow to ~8 and every stencil spans ~16
neighbours' kinks (one every unit): J along a coordinate is piecewise linear with a slope change
every unit. Three paths used to blame entries of a right sort there: the refinement's "blind
level" rule (a mismatch g lay outside a larger step's "kink at θ" slopes by more than their
noise stands where a smaller step's noise hides it; those slopes were many kinks averaged), a
run of levels settled under the low-precision gate, and the re-check off the kink (its stencil
still straddles neighbours). On OpInfo's ``sort`` sample (8,000 entries, J ~3e5, steps ~21):
369, 11 and 38 of 418 entries; here 1 entry of 213 re-checked off the kink. Now the slopes of
all the steps are tested against a J smooth on each side of θ (``_kinks.kinks_away``), and a
mismatch they refute, or that fresh points off θ do not reproduce, is left unjudged (note
``KINKS_IN_STENCIL``): the report is incomplete, never failed, and never passed for entries no
step could judge. A wrong backward float32 can resolve still fails.
"""

from __future__ import annotations

from typing import Any

import pytest

from gradcheck.report._sentences import NoteCode

torch = pytest.importorskip("torch")
gt = pytest.importorskip("gradcheck.torch")


class _Scaled(torch.autograd.Function):
    """torch.sort's values with the backward scaled by ``scale``."""

    @staticmethod
    def forward(ctx: Any, x: Any, scale: float) -> Any:
        values, index = torch.sort(x)
        ctx.save_for_backward(index)
        ctx.scale = scale
        return values

    @staticmethod
    def backward(ctx: Any, grad: Any) -> Any:
        (index,) = ctx.saved_tensors
        return torch.zeros_like(grad).scatter(-1, index, grad * ctx.scale), None


def test_float32_sort_of_integers_one_apart_is_not_blamed() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randperm(4000, generator=gen).float().requires_grad_()
    report = gt.check_function(lambda t: torch.sort(t).values, x, precision="native",
                               coords="all")
    assert not report.suspects and report.verdict == "incomplete"
    assert NoteCode.KINKS_IN_STENCIL in report.note_codes


def test_a_wrong_float32_sort_backward_of_integers_one_apart_still_fails() -> None:
    """x1.01 where float32 resolves 1% (64 integers one apart: steps ~0.1, below the kinks)."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randperm(64, generator=gen).float().requires_grad_()
    report = gt.check_function(lambda t: _Scaled.apply(t, 1.01), x, precision="native",
                               coords="all")
    assert report.passed is False and report.suspects == ("input0",)
