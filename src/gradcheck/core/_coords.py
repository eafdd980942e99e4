"""Which coordinates to check: all of them, a stratified sample, or random directions first.

A sample is *stratified* per tensor by water-filling: every tensor gets an equal share of the
sample, a tensor smaller than its share is checked whole, and what it leaves over goes to the
others. So small tensors such as a last-layer bias are always covered and every parameter gets
its own verdict, however large the others are.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from gradcheck._errors import OptionError
from gradcheck.core._directional import calls_for

MODES = ("all", "auto", "directional")
# Loss calls "auto" may spend, all phases together (BENCHMARKS.md, "Big models by default"):
# a full central check up to N ≈ 1,700; above that, directions, bisection and a sample that
# find every gallery bug on 784-300-10 in seconds.
DEFAULT_BUDGET = 4_000
BASES = 3  # J(θ) twice at the start (a stochastic loss answers differently) and once at the end
NOISE_CALLS = 6  # the noise probe of one tensor (ECnoise on 7 points, J(θ) known)
# The sample's generator, or a function that makes it (only a check that samples needs one).
Rng = np.random.Generator | Callable[[], np.random.Generator]


@dataclass(frozen=True)
class Selection:
    """Coordinates to check per tensor (None = all), and whether to locate by bisection first."""

    indices: tuple[np.ndarray | None, ...]
    directional: bool
    max_tests: int = 400  # directional tests per tensor
    limit: int | None = None  # loss calls allowed in all (coords="auto"); None: no limit
    locate_calls: tuple[int, ...] = ()  # per tensor: calls set aside for the directional search
    second: int = 0  # calls kept per sampled coordinate for its second opinion

    def count(self, sizes: Sequence[int]) -> int:
        return sum(s if i is None else len(i) for i, s in zip(self.indices, sizes, strict=True))

    def first_pass(self, sizes: Sequence[int], nodes: int) -> list[int]:
        """Loss calls planned for each tensor's coordinates (first pass and second opinions)."""
        return [
            (nodes + self.second) * (s if i is None else len(i))
            for i, s in zip(self.indices, sizes, strict=True)
        ]


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
    coords: Any,
    sizes: Sequence[int],
    nodes: int,
    budget: int,
    rng: Rng,
    second: int = 2,
) -> Selection:
    """The coordinates a check will evaluate, given ``coords`` and the loss-call ``budget``.

    Args:
      coords: "all", "auto", "directional", an int k or a fraction of all coordinates.
      sizes: entries per tensor.
      nodes: loss calls per coordinate (2 for the central difference).
      budget: loss calls allowed ("auto" checks everything when nodes·N fits in it).
      rng: the generator that draws the sample (or a function that makes it, called only if
        a sample is drawn).
      second: calls a first-pass mismatch's second opinion takes ("auto" keeps them).

    Returns:
      A ``Selection``: sorted flat indices per tensor (None = every entry).

    >>> sel = select(0.5, [4, 2], 2, 100, np.random.default_rng(0))
    >>> [len(i) for i in sel.indices], sel.directional
    ([2, 1], False)
    """
    n = sum(sizes)
    if coords == "all":
        return Selection(tuple(None for _ in sizes), False)
    if coords == "directional":
        return Selection(tuple(np.zeros(0, dtype=np.int64) for _ in sizes), True)
    if coords == "auto":
        return plan_auto(sizes, nodes, budget, rng, second)
    k = int(coords) if isinstance(coords, int | np.integer) else math.ceil(float(coords) * n)
    return Selection(_sample(sizes, min(k, n), rng), False)


def overhead(sizes: Sequence[int]) -> int:
    """Calls every check makes besides its coordinates: J(θ) three times, the noise probes."""
    return BASES + NOISE_CALLS * len(sizes)


def spare(budget: int) -> int:
    """Calls "auto" keeps for second opinions on first-pass mismatches and the diagnosis."""
    return max(budget // 10, 16)


def minimum_budget(sizes: Sequence[int], nodes: int) -> int:
    """The smallest budget with which "auto" judges every tensor: J(θ), a noise probe, the
    directional search and one coordinate per tensor, and the spare calls.

    >>> minimum_budget([235_200, 300, 3_000, 10], 2)
    301
    """
    need = overhead(sizes) + sum(calls_for(s) for s in sizes) + nodes * len(sizes)
    budget = need + spare(0)
    while budget - spare(budget) < need:
        budget += 1
    return budget


def plan_auto(
    sizes: Sequence[int], nodes: int, budget: int, rng: Rng, second: int = 2
) -> Selection:
    """``coords="auto"`` within ``budget`` loss calls, every phase counted.

    Every coordinate when the full check fits (with ``spare`` calls left for second opinions);
    otherwise random directions per tensor with calls set aside to bisect to two wrong entries
    each, and a stratified sample with the rest, each sampled coordinate with the ``second``
    calls of its second opinion kept (a first pass can disagree everywhere on a wrong tensor,
    or on a right one whose steps are too coarse: every mismatch still gets its second look).

    >>> sel = plan_auto([235_200, 300, 3_000, 10], 2, 4_000, np.random.default_rng(0))
    >>> [None if i is None else len(i) for i in sel.indices], sel.limit
    ([275, 274, 275, None], 4000)
    """
    n, keep = sum(sizes), overhead(sizes) + spare(budget)
    if nodes * n + keep <= budget:
        return Selection(tuple(None for _ in sizes), False, limit=budget)
    locate = tuple(calls_for(s) for s in sizes)
    k = (budget - keep - sum(locate)) // max(nodes + second, 1)
    if budget < minimum_budget(sizes, nodes + second):
        raise OptionError(
            f"budget={budget:,} is too small for coords='auto' on {len(sizes)} tensors of "
            f"{n:,} entries: it needs at least {minimum_budget(sizes, nodes):,} loss calls "
            "(J(θ), a noise probe, a direction and one coordinate per tensor). Raise budget, "
            "or pass coords='directional' or an int sample size."
        )
    sample = _sample(sizes, min(k, n), rng)
    return Selection(sample, True, limit=budget, locate_calls=locate, second=second)


class BudgetSpent(Exception):
    """A request for loss calls beyond the budget (raised by ``Capped``, caught by the check)."""


class Capped:
    """An evaluator that refuses requests beyond ``limit`` loss calls in all (None: no limit).

    ``reserved`` is what later phases were promised; ``spare()`` is what the current one may use.
    """

    def __init__(self, ev: Any, limit: int | None) -> None:
        self.ev, self.limit, self.reserved = ev, limit, 0
        self.progress: Any = None  # a core._progress.Progress told of every call made

    def _tick(self) -> None:
        if self.progress is not None:
            self.progress.update(self.ev.calls)

    def __getattr__(self, name: str) -> Any:  # ws, block, calls, ... of the wrapped evaluator
        return getattr(self.ev, name)

    def left(self) -> float:
        return math.inf if self.limit is None else self.limit - self.ev.calls

    def spare(self) -> float:
        return self.left() - self.reserved

    def _need(self, k: int) -> None:
        if k > self.left():
            raise BudgetSpent(f"{k} loss calls asked, {self.left():.0f} left of budget={self.limit}")

    def base(self) -> Any:
        self._need(1)
        out = self.ev.base()
        self._tick()
        return out

    def coordinates(self, t: int, idx: np.ndarray, values: np.ndarray) -> np.ndarray:
        self._need(len(idx))
        out = self.ev.coordinates(t, idx, values)
        self._tick()
        return out

    def along(self, t: int, direction: np.ndarray, steps: np.ndarray) -> np.ndarray:
        self._need(len(steps))
        out = self.ev.along(t, direction, steps)
        self._tick()
        return out


def _sample(
    sizes: Sequence[int], k: int, rng: Rng
) -> tuple[np.ndarray | None, ...]:
    out: list[np.ndarray | None] = []
    for size, q in zip(sizes, quotas(sizes, k), strict=True):
        if q >= size:
            out.append(None)
        else:
            if not isinstance(rng, np.random.Generator):  # made at its first draw
                rng = rng()
            out.append(np.sort(rng.choice(size, size=q, replace=False)).astype(np.int64))
    return tuple(out)
