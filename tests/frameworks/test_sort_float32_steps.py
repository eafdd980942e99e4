"""A right float32 sort over many distinct integers one apart is no bug (a known false alarm).

x = 4,000 distinct integers 0..3999 (shuffled), float32, precision="native". J = Σ R·sort(x)
(~1e5) is known only to a few 1e-2, so the steps grow to ~10 and every stencil spans ~20
neighbours' kinks (one every unit): J along a coordinate is piecewise linear with a slope change
every unit. The refinement's "blind level" rule (``_refine.py``: a mismatch resolved at a larger
step stands where a smaller step's noise hides it) then blames entries whose larger-step
"kink at θ" was in fact many kinks averaged (8,000 entries, OpInfo's ``sort`` sample: 369 of the
418 mismatches come from that rule, 11 from a settled run, 38 from the re-check off the kink).
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
