"""Which coordinates to check: all of them, a stratified sample, or random directions first.

A sample is *stratified* per tensor by water-filling: every tensor gets an equal share of the
sample, a tensor smaller than its share is checked whole, and what it leaves over goes to the
others. So small tensors such as a last-layer bias are always covered and every parameter gets
its own verdict, however large the others are.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from gradcheck._errors import OptionError

MODES = ("all", "auto", "directional")
DEFAULT_BUDGET = 250_000  # loss evaluations: a central check of every coordinate up to N = 125k


@dataclass(frozen=True)
class Selection:
    """Coordinates to check per tensor (None = all), and whether to locate by bisection first."""

    indices: tuple[np.ndarray | None, ...]
    directional: bool
    max_tests: int = 400  # directional tests per tensor (4 loss calls each)

    def count(self, sizes: Sequence[int]) -> int:
        return sum(s if i is None else len(i) for i, s in zip(self.indices, sizes, strict=True))


def validate_coords(coords: Any, budget: Any) -> None:
    """Raise ``OptionError`` unless ``coords`` and ``budget`` are valid values."""
    if isinstance(budget, bool) or not isinstance(budget, int | np.integer) or budget < 1:
        raise OptionError(f"budget={budget!r} must be a positive int (a number of loss calls).")
    if isinstance(coords, str):
        if coords not in MODES:
            raise OptionError(
                f"coords={coords!r} is not a known mode. Valid values: 'all', 'auto', "
                "'directional', an int k (a sample of k coordinates) or a fraction in (0, 1]."
            )
        return
    if isinstance(coords, bool) or not isinstance(coords, int | float | np.integer | np.floating):
        raise OptionError(f"coords={coords!r} must be 'all', 'auto', 'directional', int or float.")
    if isinstance(coords, int | np.integer) and coords < 1:
        raise OptionError(f"coords={coords!r}: a sample needs at least 1 coordinate.")
    if isinstance(coords, float | np.floating) and not 0.0 < coords <= 1.0:
        raise OptionError(f"coords={coords!r}: a fraction must lie in (0, 1], e.g. 0.05.")


def quotas(sizes: Sequence[int], k: int) -> list[int]:
    """How many of ``k`` sampled coordinates each tensor gets (water-filling, ≥ 1 each).

    Args:
      sizes: the number of entries of each tensor.
      k: the total sample size.

    Returns:
      One count per tensor; a tensor no larger than its share is taken whole.

    >>> quotas([50176, 64, 640, 10], 400)
    [163, 64, 163, 10]
    """
    out = [0] * len(sizes)
    open_ = [t for t, s in enumerate(sizes) if s > 0]
    left = k
    while open_ and left > 0:
        share, extra = divmod(left, len(open_))
        small = [t for t in open_ if sizes[t] <= max(share, 1)]
        if not small:  # every remaining tensor is larger than its share; the largest get the rest
            by_size = sorted(open_, key=lambda t: -sizes[t])
            for rank, t in enumerate(by_size):
                out[t] = share + (rank < extra)
            break
        for t in small:
            out[t] = sizes[t]
            left -= sizes[t]
        open_ = [t for t in open_ if t not in small]
    return [max(q, 1 if s else 0) for q, s in zip(out, sizes, strict=True)]


def select(
    coords: Any, sizes: Sequence[int], nodes: int, budget: int, rng: np.random.Generator
) -> Selection:
    """The coordinates a check will evaluate, given ``coords`` and the loss-call ``budget``.

    Args:
      coords: "all", "auto", "directional", an int k or a fraction of all coordinates.
      sizes: entries per tensor.
      nodes: loss calls per coordinate (2 for the central difference).
      budget: loss calls allowed ("auto" checks everything when nodes·N fits in it).
      rng: the generator that draws the sample.

    Returns:
      A ``Selection``: sorted flat indices per tensor (None = every entry).

    >>> sel = select(0.5, [4, 2], 2, 100, np.random.default_rng(0))
    >>> [len(i) for i in sel.indices], sel.directional
    ([2, 1], False)
    """
    n = sum(sizes)
    if coords == "all" or (coords == "auto" and nodes * n <= budget):
        return Selection(tuple(None for _ in sizes), False)
    if coords == "directional":
        return Selection(tuple(np.zeros(0, dtype=np.int64) for _ in sizes), True)
    if coords == "auto":  # directional locating first, then a sample with the calls left over
        k = max(len(sizes), (budget - _RESERVE * len(sizes)) // max(nodes, 1))
        return Selection(_sample(sizes, min(k, n), rng), True, _TESTS)
    k = int(coords) if isinstance(coords, int | np.integer) else math.ceil(float(coords) * n)
    return Selection(_sample(sizes, min(k, n), rng), False)


# "auto" sets aside, per tensor, the noise probe (6 calls) and 60 directional tests (240 calls):
# enough for bisection to reach one wrong entry among 2^28 (2 tests per level, plus 2).
_TESTS = 60
_RESERVE = 6 + 4 * _TESTS


def _sample(
    sizes: Sequence[int], k: int, rng: np.random.Generator
) -> tuple[np.ndarray | None, ...]:
    out: list[np.ndarray | None] = []
    for size, q in zip(sizes, quotas(sizes, k), strict=True):
        if q >= size:
            out.append(None)
        else:
            out.append(np.sort(rng.choice(size, size=q, replace=False)).astype(np.int64))
    return tuple(out)
