"""What a low-precision kernel's failed blocks look like: the kinds, as a table of rules.

Each rule reads the ``Evidence`` of one tensor (the kernel's values, the float64 truth, the
low-dtype yardstick, the blocks and their judgement) and returns a sentence and a factor when
its model explains the failed blocks, or None. "Explains" has one meaning for every rule: the
kernel's values, corrected by the model (rescaled, transposed back, ...), come back under the
allowance the failed blocks exceeded (their median allowed ratio of mean errors, at most
``level``), as a correct kernel's are. Pure NumPy.

>>> [rule.kind for rule in RULES]
['non-finite', 'softmax scale', 'scale', 'transposed', 'permuted', 'missing term', 'accumulation']
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from gradcheck.frameworks._against_blocks import Blocks, Judgement, per_block
from gradcheck.report._format import fmt
from gradcheck.report._model import Finding

MAX_ROWS = 256  # rows matched against each other in the permutation rule, per block
MAX_DISTANCES = 2**24  # entries of the rows' distance table, at most (memory and time)
MAX_MOVED = 64  # failed blocks the permutation rule looks at, at most


@dataclass(frozen=True)
class Evidence:
    """One tensor's values and the verdict on its blocks (what every rule reads)."""

    name: str
    kernel: np.ndarray
    truth: np.ndarray
    yard: np.ndarray
    blocks: Blocks
    judgement: Judgement
    level: float

    @property
    def failed(self) -> np.ndarray:
        return np.flatnonzero(self.judgement.failed)

    @property
    def allowance(self) -> float:
        """The ratio a corrected block must come under: the failed blocks' own allowance on
        the mean (their median), and never more than ``level``."""
        return min(self.level, float(np.median(self.judgement.allowed_mean[self.failed])))

    def explained(self, model: np.ndarray, truth: np.ndarray, yard: np.ndarray) -> bool:
        """The model's values are within ``allowance`` times the yardstick's mean error."""
        allowed = self.allowance * float(np.mean(np.abs(yard - truth))) + 1e-300
        return bool(np.mean(np.abs(model - truth)) <= allowed)

    def region(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Kernel, truth and yardstick over the failed blocks' entries (flattened)."""
        mask = np.isin(self.blocks.ids, self.failed) & np.isfinite(self.truth)
        return self.kernel[mask], self.truth[mask], self.yard[mask]


@dataclass(frozen=True)
class Rule:
    """A kind: the test, why a kernel makes that mistake, and where to look."""

    kind: str
    test: Callable[[Evidence], tuple[str, float | None] | None]
    reason: str
    hint: str


def _nonfinite(ev: Evidence) -> tuple[str, float | None] | None:
    bad = ~np.isfinite(ev.kernel) & np.isfinite(ev.truth)
    if not bad.any():
        return None
    first = tuple(int(i) for i in np.argwhere(bad)[0])
    return (f"{int(bad.sum())} entr{'y is' if bad.sum() == 1 else 'ies are'} NaN or ±inf where "
            f"the truth is finite (the first at {list(first)}).", None)


def _block_scales(ev: Evidence) -> np.ndarray | None:
    """Least-squares factor a of each failed block (kernel ≈ a·truth), if a explains every one
    of them (each block rescaled comes under the allowance), else None."""
    judged = np.isfinite(ev.truth)
    if not np.all(np.isfinite(ev.kernel[judged])):
        return None
    ids, count = ev.blocks.ids[judged], ev.blocks.count
    k, t, y = ev.kernel[judged], ev.truth[judged], ev.yard[judged]
    tt = np.bincount(ids, weights=t * t, minlength=count)[ev.failed]
    if np.any(tt == 0.0):
        return None
    factors = np.bincount(ids, weights=k * t, minlength=count)[ev.failed] / tt
    if np.any(factors == 0.0):
        return None
    a = np.ones(count)
    a[ev.failed] = factors
    residual = np.bincount(ids, weights=np.abs(k / a[ids] - t), minlength=count)[ev.failed]
    yard = np.bincount(ids, weights=np.abs(y - t), minlength=count)[ev.failed]
    return factors if np.all(residual <= ev.allowance * yard + 1e-300) else None


def _softmax_scale(ev: Evidence) -> tuple[str, float | None] | None:
    factors = _block_scales(ev)
    if factors is None or not ev.judgement.failed.all() or ev.kernel.ndim == 0:
        return None
    d = ev.kernel.shape[-1]
    a = float(np.median(factors))
    for target, word in ((np.sqrt(d), "left out"), (1 / np.sqrt(d), "applied twice")):
        if abs(a / target - 1) < 0.02 and np.allclose(factors, a, rtol=0.02) and d > 1:
            return (f"every block is {fmt(a)} times the truth, √d for d = {d} (the last axis): "
                    f"the softmax scale 1/√d is {word}.", a)
    return None


def _scale(ev: Evidence) -> tuple[str, float | None] | None:
    factors = _block_scales(ev)
    if factors is None or np.all(np.abs(factors - 1) < 1e-6):
        return None
    a = float(np.median(factors))
    same = np.allclose(factors, a, rtol=1e-3)
    shown = fmt(a) if same else f"{fmt(float(factors.min()))} to {fmt(float(factors.max()))}"
    return f"each failed block is the truth times a constant ({shown}).", a


def _transposed(ev: Evidence) -> tuple[str, float | None] | None:
    if ev.blocks.axes is None or ev.kernel.ndim - len(ev.blocks.axes) < 2:
        return None
    k, t, y = (per_block(a, ev.blocks) for a in (ev.kernel, ev.truth, ev.yard))
    found = []
    for b in ev.failed:
        kb, tb, yb = (a[b].reshape(-1, *a.shape[-2:]) for a in (k, t, y))
        rows, cols = np.nonzero(np.any(np.abs(kb - tb) > _clear(ev, yb, tb), axis=0))
        if rows.size == 0:
            return None
        r0, r1, c0, c1 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
        r1, c1 = max(r1, r0 + c1 - c0), max(c1, c0 + r1 - r0)  # the square tile around them
        if r1 > kb.shape[-2] or c1 > kb.shape[-1] or r1 - r0 < 2:
            return None
        box = (slice(None), slice(r0, r1), slice(c0, c1))
        back = np.swapaxes(kb[box], -1, -2)  # transposed back, laid on the truth's tile
        if not ev.explained(back, tb[box], yb[box]):
            return None
        found.append(f"{ev.blocks.labels[b]} rows {r0}:{r1}, columns {c0}:{c1}")
    return "the tile " + "; ".join(found) + " holds the truth's tile transposed.", None


def _clear(ev: Evidence, yard: np.ndarray, truth: np.ndarray) -> float:
    """An error no correct entry of the block reaches: ``level`` times the yardstick's largest."""
    return ev.level * float(np.max(np.abs(yard - truth), initial=0.0)) + 1e-300


def _permuted(ev: Evidence) -> tuple[str, float | None] | None:
    if ev.blocks.axes is None or ev.failed.size > MAX_MOVED:
        return None
    k, t, y = (per_block(a, ev.blocks) for a in (ev.kernel, ev.truth, ev.yard))
    axes = tuple(range(1, k.ndim))
    norms = np.sqrt(np.sum(t * t, axis=axes)) if axes else np.abs(t)
    moves = []
    for b in ev.failed:
        # candidates: the blocks of the truth whose norm is the kernel block's (a move keeps it)
        norm = float(np.sqrt(np.sum(k[b] * k[b])))
        near = np.argsort(np.abs(norms - norm), kind="stable")[:4]
        found = [int(j) for j in near if j != b and ev.explained(k[b], t[j], y[j])]
        if found:
            moves.append(f"{ev.blocks.labels[b]} holds the truth's {ev.blocks.labels[found[0]]}")
            continue
        rows = _row_moves(k[b], t[b], y[b], ev)
        if rows is None:
            return None
        moves.append(f"in {ev.blocks.labels[b]}, {rows}")
    return "the values are right but in the wrong place: " + "; ".join(moves) + ".", None


def _row_moves(k: np.ndarray, t: np.ndarray, y: np.ndarray, ev: Evidence) -> str | None:
    """Rows (along the last axis) of a block that hold other rows of its truth, or None."""
    if k.ndim < 2:
        return None
    k2, t2, y2 = (a.reshape(-1, a.shape[-1]) for a in (k, t, y))
    allowed = ev.level * np.mean(np.abs(y2 - t2), axis=1) + 1e-300  # rows: noisier
    bad = np.flatnonzero(np.any(np.abs(k2 - t2) > _clear(ev, y2, t2), axis=1))
    if bad.size == 0 or bad.size > MAX_ROWS or bad.size * k2.size > MAX_DISTANCES:
        return None
    distance = np.mean(np.abs(k2[bad, None, :] - t2[None, :, :]), axis=2)
    source = np.argmin(distance, axis=1)
    if np.any(source == bad) or np.any(distance[np.arange(bad.size), source] > allowed[source]):
        return None
    pairs = ", ".join(f"row {r} holds row {s}" for r, s in list(zip(bad, source, strict=True))[:4])
    return pairs + (" …" if bad.size > 4 else "")


def _missing_term(ev: Evidence) -> tuple[str, float | None] | None:
    if ev.kernel.ndim == 0 or ev.kernel.shape[-1] < 2:
        return None
    mask = np.isin(ev.blocks.ids, ev.failed)
    rows = np.any(mask.reshape(-1, ev.kernel.shape[-1]), axis=1)
    k, t, y = (a.reshape(-1, a.shape[-1])[rows] for a in (ev.kernel, ev.truth, ev.yard))
    offset = np.mean(k - t, axis=1, keepdims=True)
    if not ev.explained(k - offset, t, y):
        return None
    size = float(np.mean(np.abs(offset)))
    return (f"the error is one constant per row along the last axis (mean size {fmt(size)}, "
            f"{fmt(size / (float(np.mean(np.abs(t))) + 1e-300))} of the values): a term "
            "constant along that axis is missing or extra.", None)


def _accumulation(ev: Evidence) -> tuple[str, float | None] | None:
    if ev.judgement.failed.mean() < 0.5:
        return None
    k, t, y = ev.region()
    error = k - t
    if error.size < 8 or not np.all(np.isfinite(error)) or np.std(t) == 0:
        return None
    correlation = float(np.corrcoef(error, t)[0, 1]) if np.std(error) > 0 else 1.0
    if abs(correlation) > 0.5:
        return None
    scale = float(np.mean(np.abs(t))) + 1e-300
    bits_k = -np.log2(float(np.mean(np.abs(error))) / scale + 1e-300)
    bits_y = -np.log2(float(np.mean(np.abs(y - t))) / scale + 1e-300)
    return (f"the excess error is noise, spread over {ev.failed.size} of {ev.blocks.count} "
            f"blocks and uncorrelated with the values (correlation {correlation:+.2f}): the "
            f"kernel's results carry about {bits_k:.1f} correct bits, the reference's in the "
            f"same dtype {bits_y:.1f}.", None)


RULES: tuple[Rule, ...] = (
    Rule("non-finite", _nonfinite,
         "an overflow (exp without the max subtracted, a sum of squares in fp16) or a 0/0 "
         "turns entries into inf or NaN where the float64 truth is finite",
         "Subtract the row maximum before exp, accumulate in float32, guard divisions."),
    Rule("softmax scale", _softmax_scale,
         "attention's dQ and dK carry the factor 1/√d of the scores; a backward that drops it "
         "(or applies it twice) is off by exactly √d in every block",
         "Multiply dS by the softmax scale once, in the backward as in the forward."),
    Rule("scale", _scale,
         "a block off by one constant factor: a per-head or per-tile scale applied twice, "
         "forgotten or read from the wrong head (a constant fits: once rescaled, the block is "
         "as accurate as the reference)",
         "Look at the factors applied to these blocks (scales, 1/N, dropout's 1/(1-p))."),
    Rule("transposed", _transposed,
         "a tile written with its row and column indices exchanged (a store with swapped "
         "strides, a missing .T on one tile): transposed back, it is right",
         "Check the strides or the index order of that tile's store."),
    Rule("permuted", _permuted,
         "right values in the wrong place: a block or rows written to another block's or "
         "row's offset (a head or batch index mixed up, a wrong pointer offset)",
         "Check the offsets the kernel computes for these blocks or rows."),
    Rule("missing term", _missing_term,
         "the error is one constant per row: a term that is constant along the last axis is "
         "missing or extra, like layer norm's −mean(γ·dy) or softmax's −Σ p·dp",
         "Compare the backward with the formula term by term; the row-constant term is off."),
    Rule("accumulation", _accumulation,
         "no structure explains the error, it is spread over most blocks and uncorrelated with "
         "the values: a reduction accumulated, or an intermediate kept, in too low a precision",
         "Accumulate long sums (matmul K loops, row sums) in float32, and round once at the end."),
)


# A kind found first makes these later ones redundant: a softmax scale is a scale, and an error
# a structure explains is not noise.
SUBSUMED = {
    "non-finite": ("softmax scale", "scale", "transposed", "permuted", "missing term",
                   "accumulation"),
    "softmax scale": ("scale", "accumulation"),
    "scale": ("accumulation",),
    "transposed": ("accumulation",),
    "permuted": ("accumulation",),
    "missing term": ("accumulation",),
}


def findings(ev: Evidence) -> list[Finding]:
    """The kinds that fit a failed tensor, each with where it failed; one 'blocks' finding
    (the localization alone) when no rule fits."""
    where = _where(ev)
    blocks = tuple(ev.blocks.labels[b] for b in ev.failed)
    out = []
    for rule in RULES:
        if any(rule.kind in SUBSUMED.get(f.kind, ()) for f in out):
            continue
        fit = rule.test(ev)
        if fit is not None:
            detail, factor = fit
            out.append(Finding(ev.name, rule.kind, f"{where} {detail[:1].upper()}{detail[1:]}",
                               rule.hint, factor, blocks))
    if not out:
        out.append(Finding(ev.name, "blocks", f"{where} No rule of the kinds table explains the "
                           "error.", "Look at the code that writes these blocks.", None, blocks))
    return out


def _where(ev: Evidence) -> str:
    j = ev.judgement
    order = ev.failed[np.argsort(-j.excess[ev.failed], kind="stable")]
    shown = ", ".join(
        f"{ev.blocks.labels[b]} ({fmt(float(j.ratio_mean[b]))}× the yardstick's mean |error|, "
        f"allowed {fmt(float(j.allowed_mean[b]))}×)" for b in order[:3]
    )
    more = f" and {order.size - 3} more" if order.size > 3 else ""
    return (f"{order.size} of {ev.blocks.count} blocks ({ev.blocks.describe}) exceed their "
            f"tolerance: {shown}{more}.")
