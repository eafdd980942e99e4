"""The tolerance of ``check_against``: blocks of a tensor, and each block's allowed error.

Pure NumPy. Three arrays per tensor, all float64: ``kernel`` (the kernel in the low dtype),
``truth`` (the reference in float64) and ``yard`` (the reference in the low dtype, the
yardstick). A block is judged by two robust statistics of |error| (the mean and a high
quantile), each as the log of a ratio, kernel's over yardstick's:

* **level test** (every block): log ratio > log(level) + z·s₀. A correct kernel in the same
  dtype is about as accurate as the reference on average; ``level`` (2 by default) is how much
  less accurate it may be by design (a different order of operations, one more rounding). This
  is a statement about means, which are stable, not about maxima, which are noisy.
* **outlier test** (with ``MIN_BLOCKS`` blocks or more): log ratio > max(median, 0) + z·s. A
  bug that touches some blocks (one head, one tile) shows as blocks whose ratio stands apart
  from the kernel's own typical ratio, even when it is below ``level``; a block no less accurate
  than the yardstick (log ratio ≤ 0) is never an outlier.

The noise allowance is derived, not fixed: s₀ is the sampling noise of the statistic over a
block's n entries, from the spread of the yardstick's own errors (cv: their coefficient of
variation within blocks, pooled over the blocks; √2·cv/√n for the mean,
the exponential model's √2·√(q/((1−q)n))/(−ln(1−q)) for the quantile); s is the spread of the
kernel's log ratios across blocks (1.4826·MAD), never below s₀; z is the normal quantile at
α/(2B) (Bonferroni over the B blocks and the two statistics), so a tensor of many blocks gets a
wider allowance per block and the same false-alarm rate α per tensor.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> truth = rng.standard_normal((4, 256))
>>> yard = truth + 1e-3 * rng.standard_normal((4, 256))
>>> kernel = truth + 1e-3 * rng.standard_normal((4, 256))
>>> blocks = make_blocks((4, 256), None)
>>> judge(kernel, truth, yard, blocks).failed.tolist()
[False, False, False, False]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from gradcheck._errors import OptionError

MIN_BLOCKS = 5  # fewer blocks: their median and spread say too little for an outlier test
MIN_TILE = 16  # entries in a tile of a vector, at least (fewer: one tile per 16 entries)
MAD_TO_SD = 1.4826  # MAD of a normal sample times this is its standard deviation


@dataclass(frozen=True)
class Blocks:
    """A partition of a tensor's entries: ``ids`` (block of each entry), one label per block."""

    ids: np.ndarray
    labels: tuple[str, ...]
    describe: str
    axes: tuple[int, ...] | None = None  # the grouped axes; None: tiles of the flattened tensor

    @property
    def count(self) -> int:
        return len(self.labels)


def default_axes(shape: tuple[int, ...]) -> tuple[int, ...] | None:
    """Leading axes to group by: all but the last two (heads), axis 0 of a matrix (rows),
    None for a vector (cut into tiles) or a scalar.

    >>> default_axes((2, 4, 64, 32)), default_axes((8, 16)), default_axes((64,))
    ((0, 1), (0,), None)
    """
    if len(shape) >= 3:
        return tuple(range(len(shape) - 2))
    return (0,) if len(shape) == 2 else None


def make_blocks(shape: tuple[int, ...], axes: Sequence[int] | None, name: str = "") -> Blocks:
    """Blocks of a tensor of ``shape``: one per index of ``axes`` (default: ``default_axes``),
    or contiguous tiles of a flattened tensor when there are no axes to group by: ⌈√n⌉ of
    them, fewer where a tile would hold under ``MIN_TILE`` entries, of sizes within one of
    each other (a ragged last tile of 2 entries would make its own statistics noise).

    >>> b = make_blocks((2, 3, 5), (0,))
    >>> b.count, b.labels[1], b.describe
    (2, '[1, :, :]', 'axes (0,)')
    >>> make_blocks((64,), None).labels, make_blocks((20,), None).labels
    (('[0:16]', '[16:32]', '[32:48]', '[48:64]'), ('[0:20]',))
    """
    chosen = default_axes(shape) if axes is None else tuple(int(a) for a in axes)
    n = int(np.prod(shape)) if shape else 1
    if not chosen:
        return _tiles(shape, n)
    rank = len(shape)
    bad = [a for a in chosen if not -rank <= a < rank]
    if bad:
        raise OptionError(
            f"check_against(blocks=...): axis {bad[0]} is out of range for {name or 'a tensor'} "
            f"of shape {tuple(shape)}; give axes between {-rank} and {rank - 1}, or give "
            "blocks per tensor as a dict, {name: axes}."
        )
    chosen = tuple(sorted({a % rank for a in chosen}))
    grid = [shape[a] for a in chosen]
    full = np.indices(shape).reshape(rank, -1)
    ids = np.ravel_multi_index(tuple(full[a] for a in chosen), grid).reshape(shape)
    labels = tuple(_axes_label(shape, chosen, idx) for idx in np.ndindex(*grid))
    return Blocks(ids, labels, f"axes {chosen}", chosen)


def per_block(values: np.ndarray, blocks: Blocks) -> np.ndarray:
    """``values`` as (blocks, rest of the shape) for axis blocks, in the order of ``labels``.

    >>> per_block(np.arange(6).reshape(2, 3), make_blocks((2, 3), (1,))).tolist()
    [[0, 3], [1, 4], [2, 5]]
    """
    if blocks.axes is None:
        raise ValueError("per_block needs blocks grouped by axes, not tiles")
    front = np.moveaxis(values, blocks.axes, tuple(range(len(blocks.axes))))
    return front.reshape(blocks.count, *front.shape[len(blocks.axes):])


def _tiles(shape: tuple[int, ...], n: int) -> Blocks:
    count = max(1, min(math.ceil(math.sqrt(n)), n // MIN_TILE))
    edges = [round(i * n / count) for i in range(count + 1)]
    ids = np.repeat(np.arange(count), np.diff(edges)).reshape(shape)
    labels = tuple(f"[{a}:{b}]" for a, b in zip(edges, edges[1:], strict=False)) if shape \
        else ("[]",)
    size = f"{n // count}" + (f" to {-(-n // count)}" if n % count else "")
    return Blocks(ids, labels, f"{count} tiles of {size} (flattened)" if shape else "the scalar")


def _axes_label(shape: tuple[int, ...], axes: tuple[int, ...], idx: tuple[int, ...]) -> str:
    parts = [":"] * len(shape)
    for a, i in zip(axes, idx, strict=True):
        parts[a] = str(i)
    return "[" + ", ".join(parts) + "]"


@dataclass(frozen=True)
class Judgement:
    """Per-block statistics of one tensor and the verdict on each block.

    ``kernel_mean`` / ``yard_mean`` and ``kernel_q`` / ``yard_q``: the mean and the quantile of
    |error| per block; ``allowed_mean`` / ``allowed_q``: the largest ratio (kernel's over
    yardstick's) each block was allowed; ``level``: the median ratio of the means over the
    blocks; ``spread``: the log-ratios' robust spread; ``z``: the Bonferroni normal quantile.
    """

    kernel_mean: np.ndarray
    yard_mean: np.ndarray
    kernel_q: np.ndarray
    yard_q: np.ndarray
    allowed_mean: np.ndarray
    allowed_q: np.ndarray
    level: float
    spread: float
    z: float
    outlier_test: bool
    failed: np.ndarray

    @property
    def ratio_mean(self) -> np.ndarray:
        return self.kernel_mean / self.yard_mean

    @property
    def ratio_q(self) -> np.ndarray:
        return self.kernel_q / self.yard_q

    @property
    def excess(self) -> np.ndarray:
        """How far each block is above its allowance (>1: failed), the larger of the two."""
        return np.maximum(self.ratio_mean / self.allowed_mean, self.ratio_q / self.allowed_q)


def judge(
    kernel: np.ndarray,
    truth: np.ndarray,
    yard: np.ndarray,
    blocks: Blocks,
    *,
    level: float = 2.0,
    quantile: float = 0.95,
    alpha: float = 1e-3,
    unit: float = 2.0**-8,
) -> Judgement:
    """Judges every block of one tensor (see the module's docstring for the rule).

    ``unit`` is the low dtype's machine epsilon: a yardstick statistic is floored at 1/64 of a
    unit of the block's magnitude (plus 1% of the tensor's; a correctly rounded result's mean
    error is about 1/6 of a unit), so an exact yardstick does not make every error infinitely
    large.
    """
    ids, count = blocks.ids.ravel(), blocks.count
    e_k = np.abs(kernel - truth).ravel()
    e_y = np.abs(yard - truth).ravel()
    e_k = np.where(np.isfinite(truth.ravel()) & ~np.isfinite(e_k), np.inf, e_k)
    keep = np.isfinite(truth.ravel()) & np.isfinite(e_y)
    table_k, table_y, table_t = (_table(a, ids, keep, count) for a in (e_k, e_y, truth.ravel()))
    n = np.maximum(np.sum(~np.isnan(table_y), axis=1), 1)
    magnitude = _row_mean(np.abs(table_t))
    floor = unit * (magnitude + 0.01 * float(np.mean(magnitude))) / 64 + 1e-300
    kernel_mean, kernel_q = _stats(table_k, quantile)
    yard_mean, yard_q = _stats(table_y, quantile)
    yard_mean, yard_q = np.maximum(yard_mean, floor), np.maximum(yard_q, floor)
    cv = _pooled_cv(table_y)
    noise_mean = math.sqrt(2) * max(cv, 0.5) / np.sqrt(n)
    noise_q = math.sqrt(2) * math.sqrt(quantile / (1 - quantile)) / -math.log1p(-quantile)
    noise_q = noise_q / np.sqrt(n)
    z = NormalDist().inv_cdf(1 - alpha / (2 * count))
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = (np.log(kernel_mean / yard_mean), np.log(kernel_q / yard_q))
    allowed = [np.log(level) + z * s0 for s0 in (noise_mean, noise_q)]
    outlier = count >= MIN_BLOCKS
    spread = 0.0
    if outlier:
        for k, (log_r, s0) in enumerate(zip(logs, (noise_mean, noise_q), strict=True)):
            center, s = _center_spread(log_r)
            # the yardstick's own level when the kernel is more accurate: a block is held to
            # "as accurate as the reference in the same dtype" at the strictest, never beyond
            center = max(center, 0.0)
            spread = max(spread, s) if k == 0 else spread
            allowed[k] = np.minimum(allowed[k], center + z * np.maximum(s, s0))
    failed = (logs[0] > allowed[0]) | (logs[1] > allowed[1]) | ~np.isfinite(kernel_mean)
    level_found = float(np.exp(np.median(np.nan_to_num(logs[0], posinf=700.0, neginf=-700.0))))
    return Judgement(kernel_mean, yard_mean, kernel_q, yard_q, np.exp(allowed[0]),
                     np.exp(allowed[1]), level_found, spread, z, outlier, failed)


def _pooled_cv(table: np.ndarray) -> float:
    """The coefficient of variation of |error| within blocks, pooled over the blocks (each
    block's errors over its own mean): a block of 8 entries alone would tell it poorly."""
    with np.errstate(invalid="ignore", divide="ignore"):
        scaled = table / _row_mean(table)[:, None]
    scaled = scaled[np.isfinite(scaled)]
    return float(np.std(scaled)) if scaled.size > 1 else 1.0


def _row_mean(table: np.ndarray) -> np.ndarray:
    """The mean of each row's entries that are not NaN (0 for a row with none, no warning)."""
    count = np.sum(~np.isnan(table), axis=1)
    return np.nansum(table, axis=1) / np.maximum(count, 1)


def _table(values: np.ndarray, ids: np.ndarray, keep: np.ndarray, count: int) -> np.ndarray:
    """Entries of each block in one row of a NaN-padded (blocks × largest block) table."""
    sizes = np.bincount(ids, minlength=count)
    order = np.argsort(ids, kind="stable")
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    column = np.arange(ids.size) - np.repeat(starts, sizes)
    out = np.full((count, int(sizes.max(initial=1))), np.nan)
    out[ids[order], column] = np.where(keep[order], values[order], np.nan)
    return out


def _stats(table: np.ndarray, quantile: float) -> tuple[np.ndarray, np.ndarray]:
    """Mean and quantile per row, NaN entries left out (the vectorized path without any)."""
    if not np.isnan(table).any():
        return np.mean(table, axis=1), np.quantile(table, quantile, axis=1)
    empty = np.all(np.isnan(table), axis=1)
    safe = np.where(empty[:, None], 0.0, table)
    with np.errstate(invalid="ignore"):
        mean = np.nanmean(safe, axis=1)
        high = np.nanquantile(safe, quantile, axis=1)
    return mean, high


def _center_spread(log_r: np.ndarray) -> tuple[float, float]:
    """The median of the finite log ratios and their spread (1.4826·MAD)."""
    finite = log_r[np.isfinite(log_r)]
    if finite.size == 0:
        return 0.0, 0.0
    center = float(np.median(finite))
    return center, MAD_TO_SD * float(np.median(np.abs(finite - center)))
