"""Stage 7, flat and quantized entries: where J did not move at all, what it is.

A staircase (round, floor, sign, quantisation) is flat at small steps and jumps at larger ones;
a locally constant J (a dead ReLU unit, a clamp) never changes within reach, or starts changing
continuously past a kink (``flat_entries``). A float64 tensor whose stairs are exactly the float32
(or float16) grid is one J reads in that dtype (``read_as``): it is judged again as such.
"""

from __future__ import annotations

from collections.abc import Generator

import numpy as np

from gradcheck.core._coords import Capped
from gradcheck.core._tolerance import SAFETY
from gradcheck.core._tree import Tree
from gradcheck.core.verdict._records import EPS64, Flat, Stepper, TensorResult
from gradcheck.report._model import AGREES_INT as AGREES
from gradcheck.report._model import MISMATCH_INT as MISMATCH
from gradcheck.report._sentences import Note, NoteCode

FLAT_TRIED = 32  # flat entries of a tensor whose J is followed farther (about 16 calls each)
FLAT_SAMPLE = 2  # agreeing flat entries tried before giving up if none is a stair
FLAT_GROWTH = 16.0  # each try moves a flat entry 16x farther
FLAT_REACH = 4.0  # ... up to this many times the entry's scale
BISECTIONS = 6  # halvings of the bracket where a flat entry's J first changes
STILL, STAIRS, ONSET = 0, 1, 2  # what following one flat entry found


def read_as(found: Flat | None, leaf: np.ndarray) -> np.dtype | None:
    """The coarser dtype J reads this tensor in, if its "stairs" are that dtype's grid.

    A loss that casts a float64 parameter to float32 (``W.astype(np.float32)``, a float32 model
    behind a NumPy wrapper) is constant between float32 values of each entry: at float64-sized
    steps it looks like a staircase. Its stairs then start within one spacing of the coarser
    dtype at every staircase entry followed (a round(x, 3) stays flat for about 1e-3 instead).
    """
    if found is None or not found.stairs.size or leaf.dtype != np.float64:
        return None
    x = np.asarray(leaf, dtype=np.float64).reshape(-1)[found.stairs]
    reach = np.array([found.reach[int(np.flatnonzero(found.order == i)[0])]
                      for i in found.stairs])
    for coarse in (np.dtype(np.float32), np.dtype(np.float16)):
        if not np.all(np.isfinite(x.astype(coarse))):
            continue
        spacing = np.spacing(np.abs(x).astype(coarse)).astype(np.float64)
        if np.all(reach <= spacing):
            return coarse
    return None


CONFIRM = 3  # stair entries whose coarse read is confirmed at its predicted points (5 calls each)
NEAR_MIDPOINT = 0.49  # fraction of a coarse spacing: points just inside a coarse value's cell


def reads_confirmed(ev: Capped, t: int, theta: np.ndarray, coarse: np.dtype, found: Flat,
                    j0: float) -> bool:
    """Whether J behaves as a read of this tensor in ``coarse`` predicts, at a few stair entries.

    A read in ``coarse`` makes J constant on each cell of that dtype's grid (the points that
    cast to one coarse value) and changes it at the cells' midpoints, so stairs are one coarse
    spacing wide at |θᵢ|: J just inside θ's cell on either side is J(θ), J just past the next
    midpoint on one side differs, and J is the same on both sides of the next coarse value. A
    staircase of the function itself (round(x, 3), stairs 1e-3 wide whatever θ) whose stair
    happens to start within one float16 spacing of θ fails that at once: its stairs are not
    the cells. Costs 5 loss calls an entry, at most ``CONFIRM`` entries.
    """
    entries = found.stairs[:CONFIRM]
    if not entries.size or ev.spare() < 5 * entries.size:
        return False
    points = []
    for i in entries:
        xc = np.asarray(theta[i], dtype=coarse)
        up, down = np.nextafter(xc, coarse.type(np.inf)), np.nextafter(xc, coarse.type(-np.inf))
        up2 = np.nextafter(up, coarse.type(np.inf))
        x, u, d, u2 = (float(v) for v in (xc, up, down, up2))
        if not all(np.isfinite((x, u, d, u2))):
            return False
        f = NEAR_MIDPOINT
        points.append([x + f * (u - x), u - f * (u - x), u + f * (u2 - u), x - f * (x - d),
                       d + f * (x - d)])
    at = np.array(points).reshape(-1)
    js = np.real(ev.coordinates(t, np.repeat(entries, 5), at)).reshape(-1, 5)
    inside = (js[:, 0] == j0) & (js[:, 3] == j0) & (js[:, 1] == js[:, 2])
    moved = (js[:, 1] != j0) | (js[:, 4] != j0)
    return bool(np.all(inside & moved))


CELL_PROBES = 32  # mismatched entries of a float64 tensor probed within one float32 cell
CELL_SAMPLE = 2  # ... tried first: the rest only if one of them is constant within its cell


def within_cells(ev: Capped, t: int, stepper: Stepper, out: tuple[np.ndarray, ...],
                 g: np.ndarray, sigma: float, j0: float, flat_step: np.ndarray) -> None:
    """Mismatches of a float64 tensor that a float32 read of it would explain: is J(θ) the
    same just inside both ends of θᵢ's float32 cell (the points that cast to θᵢ's float32
    value)? Those are marked flat there (``flat_step``), so that the flat stage follows them
    and the coarse read is found.

    A loss that reads a float64 parameter in float32 sees θ ± h rounded to float32's grid: a
    step of 60 float32 spacings is off by up to one of them, and its estimate by 2%, whatever
    the step's smaller cousins say (θ on that grid, h a near-multiple of a spacing: h and h/2
    agree, and the error looks like a bug). A step across stairs measures the stairs, not the
    derivative: such an entry is blamed only once J is seen to move within a float32 cell.
    Each first-pass mismatch within that error (|n − g| ≤ 4·cell/h · |n|) whose J would move
    visibly across the cell is probed, two loss calls each, whatever the tensor's other
    mismatches are (a hinge's margin beside a float32 read is the kink rule's); after
    ``CELL_SAMPLE`` entries of which none was constant, no more.
    """
    numeric, _, flags = out
    theta, h = stepper.theta, stepper.h
    if stepper.dtype != np.float64:
        return
    x32 = theta.astype(np.float32)
    up = (np.nextafter(x32, np.float32(np.inf)).astype(np.float64) - x32) / 2
    down = (x32 - np.nextafter(x32, np.float32(-np.inf)).astype(np.float64)) / 2
    cell = np.minimum(up, down)
    wrong = np.flatnonzero((flags == MISMATCH) & np.isfinite(numeric) & np.isnan(flat_step)
                           & np.isfinite(cell))
    # each mismatch on its own: a read's error is within a cell's share of the estimate (the
    # others, such as a kink's central difference beside the read, are left to their rules)
    near = np.abs(numeric[wrong] - g[wrong]) <= 4 * cell[wrong] / h[wrong] * np.abs(numeric[wrong])
    wrong = wrong[near]
    visible = np.abs(g[wrong]) * cell[wrong] > 16 * sigma  # J would move across the cell
    wrong = wrong[visible][:CELL_PROBES]
    if not wrong.size or ev.spare() < 2 * wrong.size:
        return
    for part in (wrong[:CELL_SAMPLE], wrong[CELL_SAMPLE:]):
        if not part.size:
            break
        inside = 0.9  # just inside both ends of the cell, wherever θ is in it
        at = np.concatenate([x32[part] + inside * up[part], x32[part] - inside * down[part]])
        js = np.real(ev.coordinates(t, np.concatenate([part, part]), at)).reshape(2, -1)
        still = np.all(js == j0, axis=0)
        flat_step[part[still]] = cell[part[still]] / 2
        if not still.any():
            break


def flat_below(ev: Capped, t: int, stepper: Stepper, out: tuple[np.ndarray, ...],
               g: np.ndarray, a: np.ndarray, sigma: float, j0: float,
               flat_step: np.ndarray, among: np.ndarray | None = None) -> None:
    """Mismatches of a low-precision J whose estimate may be the slope of stairs its steps
    cross: is J exactly J(θ) at ±δᵢ, where the estimate nᵢ says it moves by 8σ?

    A low-precision J (float32 round(x, 3)) widens the steps past the stairs' width: every level
    of the second opinion then measures the stairs' overall slope (the cotangent's weight), not
    the derivative, and looks smooth. A step across stairs measures the stairs: where J does not
    move at all at a step at which a real slope nᵢ would have moved it by 8σ, the entry is
    judged at that step (estimate 0, its bound), and the flat stage follows it. Two loss calls
    an entry; after ``CELL_SAMPLE`` entries of which none was flat, no more. ``among``: only
    these entries (before the second opinion: those whose analytic value is a staircase's 0,
    at any precision of J).
    """
    numeric, bound, flags = out
    theta, h = stepper.theta, stepper.h
    wrong = np.flatnonzero((flags == MISMATCH) & np.isfinite(numeric) & (numeric != 0)
                           & np.isnan(flat_step))
    if among is not None:  # only these
        wrong = np.intersect1d(wrong, among)
    grain = 4 * np.spacing(np.abs(theta[wrong]).astype(stepper.dtype)).astype(np.float64)
    delta = np.maximum(8 * sigma / np.abs(numeric[wrong]), grain)
    keep = delta < h[wrong] / 4
    wrong, delta = wrong[keep][:CELL_PROBES], delta[keep][:CELL_PROBES]
    if not wrong.size or ev.spare() < 2 * wrong.size:
        return
    for part in (np.arange(min(CELL_SAMPLE, wrong.size)), np.arange(CELL_SAMPLE, wrong.size)):
        if not part.size:
            break
        i, d = wrong[part], delta[part]
        at = np.concatenate([theta[i] + d, theta[i] - d]).astype(stepper.dtype)
        js = np.real(ev.coordinates(t, np.concatenate([i, i]), at.astype(np.float64)))
        still = np.all(js.reshape(2, -1) == j0, axis=0)
        i, d = i[still], d[still]
        numeric[i], bound[i] = 0.0, SAFETY * sigma * np.sqrt(2) / (2 * d) + a[i]
        flags[i] = np.where(np.abs(g[i]) <= bound[i], AGREES, MISMATCH)
        flat_step[i] = d
        if not still.any():
            break


def near_zero(out: tuple[np.ndarray, ...], g: np.ndarray, a: np.ndarray,
              flat_step: np.ndarray) -> np.ndarray:
    """Mismatches whose analytic value is a staircase's 0 (within nᵢ/16 and its allowance,
    nᵢ the estimate), not yet seen flat."""
    numeric, _, flags = out
    wrong = np.flatnonzero((flags == MISMATCH) & np.isfinite(numeric) & (numeric != 0)
                           & np.isnan(flat_step))
    return wrong[np.abs(g[wrong]) <= np.abs(numeric[wrong]) / 16 + a[wrong]]


def finer_than_steps(ev: Capped, t: int, stepper: Stepper, out: tuple[np.ndarray, ...],
                     g: np.ndarray, a: np.ndarray, scale: float, j0: float,
                     flat_step: np.ndarray) -> np.ndarray:
    """Mismatches whose step may have crossed stairs finer than every step J's noise allows:
    returns them, to be left unjudged unless their second opinion finds a kink or agreement.

    A step that crosses stairs measures the stairs, not the derivative, and stairs finer than
    the steps look smooth to the second opinion. ``flat_below`` finds stairs where J is
    constant at a step at which σ could not hide the slope nᵢ; but σ may itself be the stairs
    the probe's line crossed (a round() of width 1e-7 looks like float32 rounding of terms of
    order 1). So a mismatch whose analytic value is a staircase's 0 (``near_zero``) is looked
    at where float64 would first show the slope nᵢ (``constant_aside``): J constant there, on
    both sides or one (a stair's end within the step), is what stairs predict, and what
    rounding that hides nᵢ predicts too; a smooth J moves both ways. Stairs predict the
    analytic 0, rounding the slope across: such a mismatch cannot be blamed (a kink's flat
    side also holds 0: the second opinion still judges kinks). After ``CELL_SAMPLE`` entries
    of which none was constant, no more are looked at; where some were, the entries the calls
    left unseen are returned too.
    """
    numeric = out[0]
    wrong = near_zero(out, g, a, flat_step)
    unseen, wrong = wrong[CELL_PROBES:], wrong[:CELL_PROBES]
    affords = max(int(min(wrong.size, ev.spare() // 2)), 0)
    unseen, wrong = np.concatenate([wrong[affords:], unseen]), wrong[:affords]
    found = []
    for part in (wrong[:CELL_SAMPLE], wrong[CELL_SAMPLE:]):
        if not part.size:
            break
        aside = np.any(constant_aside(ev, t, stepper, part, numeric[part], scale, j0)[0],
                       axis=0)
        found.append(part[aside])
        if not aside.any():
            break
    left = np.concatenate(found).astype(np.int64) if found else unseen[:0]
    # where some were, those the budget or the sample left unseen are not blamed either
    return np.union1d(left, unseen).astype(np.int64) if left.size else left


def constant_aside(ev: Capped, t: int, stepper: Stepper, idx: np.ndarray, slope: np.ndarray,
                   scale: float, j0: float) -> tuple[np.ndarray, np.ndarray]:
    """Whether J is exactly J(θ) at θᵢ + δᵢ and at θᵢ − δᵢ (two rows), and δᵢ: the step at
    which ``slope`` moves J by 8 float64 roundings of J's ``scale`` (a few spacings of θᵢ at
    least). A stair keeps J constant on at least one side (θ lies at least half its width
    from one of its ends; a stair 8 roundings high is as wide as 2δᵢ), so does a kink's flat
    side; a smooth J with that slope moves both ways. Two loss calls an entry."""
    theta = stepper.theta[idx]
    grain = 4 * np.spacing(np.abs(theta).astype(stepper.dtype)).astype(np.float64)
    delta = np.maximum(8 * EPS64 * scale / np.abs(slope), grain)
    at = np.concatenate([theta + delta, theta - delta]).astype(stepper.dtype)
    js = np.real(ev.coordinates(t, np.concatenate([idx, idx]), at.astype(np.float64)))
    return js.reshape(2, -1) == j0, delta


QUANTUM = float(np.spacing(np.float32(1.0)))  # float32 rounding of an intermediate of order 1


def quantized(found: Flat | None, flags: np.ndarray, j0: float) -> float:
    """The step of J's values, where the "stairs" at mismatched entries are J's own rounding.

    A float32 J can be rounded at an intermediate larger than itself: float32 ndtr(x) far in its
    tail is (1 + erf)/2, on multiples of 2^-25 while J is 1e-7. Its values then step by one
    quantum at a time, and the stairs' overall slope is its derivative: a quantized but smooth
    J, not a staircase. Such steps are at most float32's spacing at max(1, |J|) (a staircase's
    stairs, round(x, 3), are its own height, far above that), and J's values are float32
    numbers. Returns the largest step seen (0: not quantized).

    >>> one = np.array([0])
    >>> found = Flat(1, one, one[:0], one[:0], np.ones(1), one, np.array([2.0**-25]))
    >>> quantized(found, np.array([MISMATCH], np.int8), float(np.float32(8.6e-8))) == 2.0**-25
    True
    >>> quantized(found, np.array([MISMATCH], np.int8), 8.6e-8)  # not a float32 J
    0.0
    """
    if found is None or found.height is None or not found.stairs.size:
        return 0.0
    if float(np.float32(j0)) != j0:
        return 0.0
    bad = found.stairs[flags[found.stairs] == MISMATCH]
    if not bad.size:
        return 0.0
    at = np.array([int(np.flatnonzero(found.order == i)[0]) for i in bad])
    heights = found.height[at]
    limit = float(np.spacing(np.float32(min(max(1.0, abs(j0)), 3e38))))
    return float(heights.max()) if np.all((heights > 0) & (heights <= limit)) else 0.0


def flat_entries(
    ev: Capped,
    t: int,
    stepper: Stepper,
    flat: np.ndarray,
    flat_step: np.ndarray,
    j0: float,
    sigma: float,
    flags: np.ndarray,
    seed: int,
) -> Flat:
    """Tell a staircase from a locally constant J along entries where J did not move at all (at
    the first pass, or at a level of the second opinion: ``flat_step``).

    Where a staircase's J first changes, the change does not shrink as the bracket around that
    point shrinks (it is a stair's height), and it is far above J's rounding; past a kink it
    does. J on a float32/float16 grid jumps too, but by an ulp of J, which the 16σ threshold
    excludes. Mismatched entries are tried first; at most ``FLAT_TRIED`` per tensor, within
    the calls left, and agreeing ones only while a first ``FLAT_SAMPLE`` of them show stairs.
    """
    rng = np.random.default_rng([seed, 4, t])
    wrong = rng.permutation(flat[flags[flat] == MISMATCH])
    right = rng.permutation(flat[flags[flat] != MISMATCH])
    tried = np.concatenate([wrong, right])[:FLAT_TRIED].astype(np.int64)
    per_entry = 2 * 6 + BISECTIONS + 1
    tried = tried[: max(0, int(min(tried.size, ev.spare() // (2 * per_entry))))]
    empty = np.zeros(0, np.int64)
    if not tried.size:
        return Flat(flat.size, empty, empty, empty, np.zeros(0), empty)
    theta, h = stepper.theta[tried], flat_step[tried]
    scale = np.maximum(np.abs(theta), max(1.0, float(np.median(np.abs(stepper.theta)))))
    kind = np.zeros(tried.size, np.int8)
    reach, height = h.copy(), np.zeros(tried.size)
    # Agreeing flat entries matter only if they are stairs (a note): a first FLAT_SAMPLE of
    # them tell (a dead ReLU unit's zeros need no note); mismatched ones are all followed.
    first = min(tried.size, wrong.size + FLAT_SAMPLE)
    try:
        for lo, hi in ((0, first), (first, tried.size)):
            if lo == first and not np.any(kind[wrong.size:first] == STAIRS):
                break
            walks = [_follow(float(theta[k]), float(h[k]), FLAT_REACH * scale[k], stepper.dtype,
                             j0, sigma) for k in range(lo, hi)]
            found = _in_step(ev, t, tried[lo:hi], walks)
            for k, (kind_k, reach_k, height_k) in enumerate(found, start=lo):
                kind[k], reach[k], height[k] = kind_k, reach_k, height_k
        done = tried.size if np.any(kind[wrong.size:first] == STAIRS) else first
    except Exception:  # following J farther must never turn a finished check into an error
        return Flat(flat.size, empty, empty, empty, np.zeros(0), empty)
    tried, kind, reach = tried[:done], kind[:done], reach[:done]
    return Flat(flat.size, tried[kind == STAIRS], tried[kind == STILL], tried[kind == ONSET],
                reach, tried, height[:done])


Walk = Generator[np.ndarray, np.ndarray, tuple[int, float, float]]


def _in_step(
    ev: Capped, t: int, entries: np.ndarray, walks: list[Walk],
) -> list[tuple[int, float, float]]:
    """Run the walks of several entries side by side: each round, every walk's next points
    go into one ``coordinates`` request (the same points and Js as one by one, fewer calls of
    a batched loss). Returns each walk's (kind, reach, height)."""
    found: list[tuple[int, float, float]] = [(STILL, 0.0, 0.0)] * len(walks)
    asks: dict[int, np.ndarray] = {}
    for k, walk in enumerate(walks):
        try:
            asks[k] = next(walk)
        except StopIteration as end:
            found[k] = end.value
    while asks:
        keys = list(asks)
        at = np.concatenate([asks[k] for k in keys])
        idx = np.repeat(entries[keys], [asks[k].size for k in keys])
        js = np.real(ev.coordinates(t, idx, at))
        cut = np.cumsum([asks[k].size for k in keys])[:-1]
        for k, part in zip(keys, np.split(js, cut), strict=True):
            try:
                asks[k] = walks[k].send(part)
            except StopIteration as end:
                found[k] = end.value
                del asks[k]
    return found


def _follow(
    theta: float, h: float, limit: float, dtype: np.dtype, j0: float, sigma: float,
) -> Walk:
    """Follow J along one entry, 16x farther each time up to ``limit``, then bisect where it
    first changes: yields the values to try, receives their Js, returns (STILL, STAIRS or
    ONSET, how far J stayed constant, how much J changed where it first did)."""
    left, right_at, moved = h, 0.0, 0.0
    far = h
    while far < limit and right_at == 0.0:
        far = min(far * FLAT_GROWTH, limit)
        js = yield (theta + np.array([far, -far])).astype(dtype).astype(np.float64)
        if not np.all(np.isfinite(js)):
            break
        changed = js != j0
        if changed.any():
            side = 1.0 if changed[0] else -1.0
            right_at, moved = far * side, float(js[0] if changed[0] else js[1]) - j0
        else:
            left = far
    if right_at == 0.0:
        return STILL, left, 0.0
    lo, hi, side = left, abs(right_at), np.sign(right_at)
    history = [moved]
    for _ in range(BISECTIONS):
        mid = 0.5 * (lo + hi)
        j = float((yield np.array([float(np.asarray(theta + side * mid, dtype=dtype))]))[0])
        if j == j0:
            lo = mid
        else:
            hi, moved = mid, j - j0
        history.append(moved)
    jump = abs(history[-1]) > 16 * sigma and abs(history[-1]) >= 0.5 * abs(history[-4])
    if jump:  # the change at hi did not shrink: a stair, or a kink close below hi (bisection
        # moved lo only). One bracket farther out, a stair's top is as high; J past a kink
        # grows with the distance to it, at least 2x (hi − k ≤ hi − lo).
        j = float((yield np.array([float(np.asarray(theta + side * (2 * hi - lo), dtype=dtype))]))[0])
        jump = abs(j - j0) < 1.5 * abs(history[-1])
    return (STAIRS if jump else ONSET), lo, abs(history[-1])


def flat_notes(tree: Tree, flats: list[Flat | None], results: list[TensorResult]) -> list[Note]:
    """What the entries along which J did not move at all turned out to be."""
    notes = []
    for t, found in enumerate(flats):
        if found is None or t >= len(results):
            continue
        name, shape, r = tree.names[t], tuple(tree.leaves[t].shape), results[t]
        tried = {"order": found.order.size, "flat": found.flat}
        wrong = r.flags == MISMATCH
        stairs_ok = found.stairs[~wrong[found.stairs]]
        stairs_bad = found.stairs[wrong[found.stairs]]
        if stairs_ok.size:
            notes.append(Note(NoteCode.STAIRS, name,
                              {"shape": shape, "entries": stairs_ok, **tried}))
        if stairs_bad.size:
            notes.append(Note(NoteCode.SURROGATE, name, {
                "shape": shape, "entries": stairs_bad,
                "value": r.analytic[int(stairs_bad[0])], **tried}))
        dead = np.concatenate([found.still, found.onset])
        dead = dead[wrong[dead]]
        if dead.size:
            i = int(dead[0])
            k = int(np.flatnonzero(found.order == i)[0])
            notes.append(Note(NoteCode.LOCALLY_CONSTANT, name, {
                "shape": shape, "entries": dead, "value": r.analytic[i],
                "reach": found.reach[k], "still": bool(i in found.still), **tried}))
    return notes


def finer_notes(tree: Tree, finer: list[np.ndarray | None]) -> list[Note]:
    """The mismatches left unjudged as stairs finer than the steps, or rounding."""
    return [Note(NoteCode.FINER_STAIRS, tree.names[t],
                 {"shape": tuple(tree.leaves[t].shape), "entries": entries})
            for t, entries in enumerate(finer) if entries is not None and entries.size]
