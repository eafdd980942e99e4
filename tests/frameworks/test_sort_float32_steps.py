"""A right float32 sort over many distinct integers one apart is no bug (a known false alarm).

x = 4,000 distinct integers 0..3999 (shuffled), float32, precision="native". J = Σ R·sort(x)
(~4e4) is known only to ~3e-3, so the steps grow to ~8 and every stencil spans ~16
neighbours' kinks (one every unit): J along a coordinate is piecewise linear with a slope change
every unit. Two paths blame entries of a right sort here. On OpInfo's ``sort`` sample (8,000
entries, J ~3e5, steps ~21) 369 of the 418 mismatches come from the refinement's "blind level"
rule (``_refine.py``: a mismatch g lay outside a larger step's "kink at θ" slopes by more than
their noise stands where a smaller step's noise hides it; those slopes were many kinks
averaged), 11 from a settled run, 38 from the re-check off the kink. On this smaller sample
(steps ~8) the refinement clears every mismatch and 1 entry of 213 re-checked off the kink
(``_kinks.recheck_kinks``) disagrees, enough for FAILED. With ``coords="auto"`` (the default)
this sample passes, and OpInfo's 8,000 ends INCOMPLETE (its budget leaves 25 mismatches without a
second opinion, and the directional tests agreed, so none stands): hence ``coords="all"``.
torch.sort's backward is right, so the report must not say FAILED. Marked xfail until fixed.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
gt = pytest.importorskip("gradcheck.torch")


@pytest.mark.xfail(strict=True, reason="float32 steps spanning many kinks blame a right sort")
def test_float32_sort_of_integers_one_apart_is_not_blamed() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randperm(4000, generator=gen).float().requires_grad_()
    report = gt.check_function(lambda t: torch.sort(t).values, x, precision="native",
                               coords="all")
    assert not report.suspects
