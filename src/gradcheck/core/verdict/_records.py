"""The records the stages hand each other: the fixed setting of a run, one tensor's job, what
the stages found about it, and its per-entry result."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from gradcheck.core._directional import Located
from gradcheck.core._options import CheckConfig
from gradcheck.core._schemes import Scheme
from gradcheck.report._model import UNCHECKED_INT as UNCHECKED

EPS64 = float(np.finfo(np.float64).eps)
EPS32 = float(np.finfo(np.float32).eps)


@dataclass(frozen=True)
class Probe:
    """What the noise probe of one tensor saw."""

    sigma: float  # ECnoise σ of J along the probe's lines
    grid: float  # half an ulp of the narrowest float grid J's values sit on (0: none)
    moved: bool  # J changed at some probe step (False: J ignores this tensor)
    rough: bool  # the apparent noise shrank with the step: a kink or a stair, not rounding
    scale: float = 0.0  # J's reference magnitude (|J(θ)|, or more where J cancels: magnitude)


@dataclass(frozen=True)
class Setup:
    """What every stage after the noise probe reads: fixed for the rest of the run."""

    scheme: Scheme
    config: CheckConfig
    grad_scale: float  # largest analytic entry: the floor of a low-precision sum's rounding
    progress: Any = None
    noise: tuple[float, ...] = ()  # σ of J per tensor (the noise probe)
    probes: tuple[Probe, ...] = ()  # what the noise probe saw, per tensor

    @property
    def complex(self) -> bool:
        return self.scheme.name == "complex"

    @property
    def refine(self) -> bool:
        return self.config.refine


@dataclass(frozen=True)
class Flat:
    """Entries along which J did not change at all at the first pass, followed farther."""

    flat: int  # entries found flat
    stairs: np.ndarray  # tried entries where J jumps (piecewise constant: derivative 0 a.e.)
    still: np.ndarray  # tried entries where J never changed, up to ``reach``
    onset: np.ndarray  # tried entries where J starts to change farther away, continuously
    reach: np.ndarray  # how far J stayed constant, per entry of stairs/still/onset (aligned)
    order: np.ndarray  # the tried entries (stairs, still and onset are subsets)
    height: np.ndarray | None = None  # how much J changed where it first did (aligned)


@dataclass
class Facts:
    """What the stages found about one tensor, beyond its entries (for the verdict and notes).

    Each stage stores its finding as it returns, so that what was found before a Ctrl-C or the
    budget's hard stop is still reported; a second judgement of the tensor (a forced eps
    widened, a coarser dtype read) overwrites what it finds again.
    """

    located: Located | None = None  # the directional search
    widened: str | None = None  # why a forced eps was too small (the automatic step was used)
    edges: dict[int, str] | None = None  # entries near a domain edge: how they were judged
    unrefined: int | None = None  # first-pass mismatches left without a second opinion
    kept: int | None = None  # first-pass mismatches kept without one (the tensor's test failed)
    sampled: tuple[int, int, int] | None = None  # a confirmed sample, of mismatches, standing
    flat: Flat | None = None  # entries J did not move along
    reads: np.dtype | None = None  # J reads this tensor in that coarser dtype
    rough: np.ndarray | None = None  # per entry: a kink seen in its second opinion's window
    quantum: float | None = None  # J's values step by this much (float32 rounding), not stairs
    finer: np.ndarray | None = None  # mismatches left unjudged: stairs finer than the steps?
    blurred: np.ndarray | None = None  # per entry: a mismatch kinks inside its stencils explain
    # (left unjudged by the second opinion, ``_refine``)
    doubted: np.ndarray | None = None  # per entry: a mismatch a low-precision run settled next
    # to kinks (points off θ must reproduce it, with callable grads: ``_kinks.recheck_kinks``)


@dataclass(frozen=True)
class TensorJob:
    """What the plan asks of one tensor."""

    t: int
    j0: float
    g: np.ndarray  # its analytic gradient
    dtype: np.dtype  # the parameter's dtype
    idx: np.ndarray | None  # the entries to judge (None: all)
    directional: bool  # a directional search first
    max_tests: int
    locate_calls: int | None  # calls allowed to that search (None: what is spare)
    planned: int  # calls the first pass is planned to take
    reads: np.dtype | None = None  # judge it in this coarser dtype (what J reads)
    quantum: float = 0.0  # J's values step by this much: its noise is at least half of it


@dataclass(frozen=True)
class TensorResult:
    """Per-entry results for one parameter tensor."""

    numeric: np.ndarray
    analytic: np.ndarray
    bound: np.ndarray
    flags: np.ndarray
    eps: float
    noise: float
    low_precision: bool
    partial: bool = False  # interrupted before every selected coordinate was judged
    steps: np.ndarray | None = None  # the step of each entry
    unconfirmed: int = 0  # first-pass mismatches the budget left without a second opinion
    stopped: bool = False  # Ctrl-C while judging it: the check stops after this tensor


def nans(n: int) -> np.ndarray:
    """``np.full(n, np.nan)`` (float64), without its Python wrapper: the same array.

    >>> nans(2)
    array([nan, nan])
    """
    out = np.empty(n)
    out.fill(np.nan)
    return out


def unchecked(g: np.ndarray, stopped: bool = False) -> TensorResult:
    """The result of a tensor none of whose entries was judged."""
    n = g.size
    nan = np.full(n, np.nan)
    flat = g.reshape(-1).astype(np.float64)
    return TensorResult(nan, flat, nan.copy(), np.full(n, UNCHECKED, np.int8), np.nan, np.nan,
                        False, True, stopped=stopped)


class Stepper:
    """Actual offsets θ(c·h) − θ, with θ ± c·h rounded to ``dtype`` where J would round them.

    ``h`` holds one step per entry of θ.

    >>> Stepper(np.array([1.0]), np.array([0.1]), np.dtype(np.float32)).offset(np.array([0]), 1)
    array([0.10000002])
    """

    def __init__(self, theta: np.ndarray, h: np.ndarray, dtype: np.dtype) -> None:
        self.theta, self.h, self.dtype = theta, np.asarray(h, dtype=np.float64), dtype

    def point(self, idx: np.ndarray, c: float) -> np.ndarray:
        return self._rounded(self.theta[idx] + c * self.h[idx])

    def offset(self, idx: np.ndarray, c: float) -> np.ndarray:
        return self.point(idx, c) - self.theta[idx] if c != 0 else np.zeros(len(idx))

    def offsets(self, idx: np.ndarray, nodes: Sequence[float]) -> np.ndarray:
        """``offset`` of every node, one row each (θ and h read once)."""
        theta, h = self.theta[idx], self.h[idx]
        return np.array([self._rounded(theta + c * h) - theta if c != 0 else np.zeros(len(idx))
                         for c in nodes])

    def _rounded(self, x: np.ndarray) -> np.ndarray:
        if self.dtype == np.float64 and x.dtype == np.float64:  # float64 stays as it is
            return x
        return x.astype(self.dtype).astype(np.float64)


@functools.lru_cache(maxsize=64)
def coarser(a: Any, b: Any) -> np.dtype:
    """The less precise of two floating dtypes.

    >>> coarser(np.float64, np.float32)
    dtype('float32')
    """
    a, b = np.dtype(a), np.dtype(b)
    if b.kind != "f":
        return a
    return a if np.finfo(a).eps >= np.finfo(b).eps else b
