"""One tensor through the stages: its steps, the directional search, the first pass, the domain
edges, the second opinion (refinement), and the flat entries.

``judge_tensor`` is what ``run`` calls for each tensor: it judges it again at the automatic step
when a forced eps is too small (``Swamped``), and again as a parameter of a coarser dtype when J
reads it in one (``_flat.read_as``). A Ctrl-C returns what is judged so far (``stopped``).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from gradcheck.core._coords import Capped
from gradcheck.core._directional import Located, locate
from gradcheck.core.verdict._first_pass import (
    Footing,
    Out,
    Swamped,
    first_pass,
    footing,
)
from gradcheck.core.verdict._flat import (
    finer_than_steps,
    flat_below,
    flat_entries,
    near_zero,
    quantized,
    read_as,
    reads_confirmed,
    within_cells,
)
from gradcheck.core.verdict._own_scale import own_scale
from gradcheck.core.verdict._plan import Plan
from gradcheck.core.verdict._records import (
    Facts,
    Flat,
    Setup,
    TensorJob,
    TensorResult,
    nans,
    unchecked,
)
from gradcheck.core.verdict._refine import refine
from gradcheck.report._model import MISMATCH_INT as MISMATCH
from gradcheck.report._model import UNCHECKED_INT as UNCHECKED

# A tensor with more first-pass mismatches than SAMPLE_FROM gets second opinions on a sample
# first (1 in SAMPLE_EVERY, from SAMPLE_MIN to SAMPLE_MAX entries); the rest as strong as its
# confirmed strata stand on the first pass (``confirm_sample``, ``established``).
SAMPLE_FROM, SAMPLE_EVERY, SAMPLE_MIN, SAMPLE_MAX = 96, 16, 12, 32



def judge_tensor(
    ev: Capped, setup: Setup, plan: Plan, job: TensorJob, facts: Facts,
    leaf: np.ndarray,
) -> TensorResult:
    """Judge one tensor; a forced eps too small is replaced by the automatic step, and a tensor
    J reads in float32 (or float16) is judged again as one. Ctrl-C: the result so far."""
    try:
        try:
            result = check_tensor(ev, setup, job, facts)
        except Swamped as swamped:  # a forced eps too small: the automatic step
            facts.widened = swamped.reason
            result = check_tensor(ev, setup, job, facts)
        coarse = read_as(facts.flat, leaf)
        t = job.t
        again = 2 * plan.first[t] + plan.search[t]  # what judging it again may cost
        if (coarse is not None and facts.flat is not None and ev.spare() >= again + 15
                and reads_confirmed(ev, t, _theta(ev, t), coarse, facts.flat, job.j0)):
            # J reads this float64 tensor in float32 (or float16): its "stairs" are that
            # dtype's grid. Check it again as a parameter of that dtype.
            facts.reads, facts.flat, facts.unrefined, facts.rough = coarse, None, None, None
            facts.blurred, facts.doubted = None, None
            return check_tensor(ev, setup, dataclasses.replace(job, reads=coarse), facts)
        if coarse is not None and facts.flat is not None and ev.spare() < again + 15:
            result, facts.flat = unread(result, facts.flat, read_flats(result, facts.flat))
            return result
        blamed = blamed_stairs(facts.flat, result.flags)
        partly = read_as(blamed, leaf) if coarse is None and blamed is not None else None
        if (partly is not None and blamed is not None and facts.flat is not None
                and ev.spare() >= 15 and reads_confirmed(ev, t, _theta(ev, t), partly, blamed,
                                                         job.j0)):
            # The blamed "stairs" are a coarse read's cells, other stairs are wider: J reads
            # part of this tensor coarsely. Those entries' slope across cells is untested.
            result, facts.flat = unread(result, facts.flat, blamed.stairs)
            return result
        quantum = quantized(facts.flat, result.flags, job.j0)
        if quantum and ev.spare() >= again:
            # J's values step by float32 rounding (a quantized but smooth J), not by stairs:
            # judge it again as a smooth J whose noise is that rounding.
            facts.quantum, facts.flat, facts.unrefined, facts.rough = quantum, None, None, None
            facts.blurred, facts.doubted = None, None
            return check_tensor(ev, setup, dataclasses.replace(job, quantum=quantum), facts)
        return result
    except KeyboardInterrupt:  # before anything of it was judged
        return unchecked(job.g, stopped=True)


def _theta(ev: Capped, t: int) -> np.ndarray:
    """θ of tensor t as J is given it, flat float64 (only a coarse read's test needs it)."""
    return ev.ws.originals[t].real.reshape(-1).astype(np.float64)


def _cell16(theta: np.ndarray) -> np.ndarray:
    """Float16's spacing at |θ| (infinite past its range): the widest cell of a coarse read."""
    with np.errstate(over="ignore"):
        return np.spacing(np.abs(theta).astype(np.float16)).astype(np.float64)


def read_flats(result: TensorResult, found: Flat) -> np.ndarray:
    """The mismatches where J did not move, except entries followed to a locally constant J."""
    bad = (result.flags == MISMATCH) & (result.numeric == 0)
    bad[np.concatenate([found.still, found.onset])] = False
    return np.flatnonzero(bad)


def blamed_stairs(found: Flat | None, flags: np.ndarray) -> Flat | None:
    """``found`` with only its mismatched stairs (None: none)."""
    if found is None or not found.stairs.size:
        return None
    stairs = found.stairs[flags[found.stairs] == MISMATCH]
    return dataclasses.replace(found, stairs=stairs) if stairs.size else None


def unread(result: TensorResult, found: Flat, bad: np.ndarray) -> tuple[TensorResult, Flat]:
    """Unjudged: mismatches ``bad`` where J did not move, in a tensor whose stairs there are a
    coarse read's cells (``read_as``), when that read is untested or explains only part of the
    tensor. A read in float32/float16 predicts them (J's derivative is the slope across
    cells), a staircase of the function a 0 slope: neither is the evidence's. Those unjudged
    are no longer stairs (no note says their 0 agrees)."""
    if not bad.size:
        return result, found
    result.flags[bad], result.numeric[bad], result.bound[bad] = UNCHECKED, np.nan, np.nan
    found = dataclasses.replace(found, stairs=np.setdiff1d(found.stairs, bad))
    return dataclasses.replace(result, unconfirmed=result.unconfirmed + int(bad.size)), found


def entries(
    ev: Capped, setup: Setup, job: TensorJob, f: Footing, facts: Facts
) -> np.ndarray:
    """The entries to judge: the plan's, with what a directional search isolated."""
    idx = job.idx
    if job.directional and not setup.complex:
        rng = np.random.default_rng([setup.config.seed, 2, job.t])  # same seed, same directions
        phase(setup, "directional search")
        left = ev.spare() - job.planned  # the coordinates' calls are planned: keep them
        if job.locate_calls is not None:
            left = min(left, job.locate_calls)
        allowance = None if left == np.inf else max(int(left), 0)
        found = locate(ev, job.t, f.theta, f.g, f.a, f.typical, f.sigma, rng,
                       max_tests=job.max_tests, max_calls=allowance)
        facts.located = found
        if idx is not None:
            idx = np.union1d(idx, found.culprits).astype(np.int64)
    idx = np.arange(f.theta.size) if idx is None else idx
    return idx[f.finite[idx]]


def phase(setup: Setup, name: str) -> None:
    """Tell the progress display (if any) what the next loss calls are for."""
    if setup.progress is not None:
        setup.progress.set_phase(name)


def check_tensor(ev: Capped, setup: Setup, job: TensorJob, facts: Facts) -> TensorResult:
    """Judge the entries ``job.idx`` of tensor ``job.t`` (None: all), after a directional
    search if asked: the first pass, the domain edges, the second opinion, the flat entries."""
    f = footing(ev, setup, job, facts)
    facts.finer = None  # (a second judgement finds them again)
    idx = entries(ev, setup, job, f, facts)
    first = first_pass(ev, setup, job, f, idx, facts)
    out, values, edge = first.out, first.values, first.edge
    if first.stopped:  # judge the coordinates done so far, then stop
        if setup.refine and not setup.complex:  # a first-pass mismatch awaits its second opinion
            unrefined = out[2] == MISMATCH
            out[2][unrefined], out[0][unrefined] = UNCHECKED, np.nan
        return f.result(out, partial=True, stopped=True)
    size = f.theta.size
    suspicious = (out[2] == MISMATCH).nonzero()[0]  # sorted, unique: setdiff1d keeps it
    if suspicious.size and edge.size:
        suspicious = np.setdiff1d(suspicious, edge)
    flat_step = nans(size)  # the step at which J did not move at all, if any
    if suspicious.size and setup.refine and not setup.complex:
        stopped = across_stairs(ev, setup, job, f, facts, suspicious, out, flat_step, True)
        suspicious = suspicious[np.isnan(flat_step[suspicious])]  # the flat stage's now
        stopped = stopped or second_opinion(ev, setup, job, f, facts, suspicious, values, out,
                                            flat_step)
        if stopped is not None:
            return stopped
    if setup.refine and not setup.complex and len(idx):
        stopped = across_stairs(ev, setup, job, f, facts, suspicious, out, flat_step, False)
        if stopped is not None:
            return stopped
        stopped = flat_stage(ev, setup, job, f, facts, idx, values, out, flat_step)
        if stopped is not None:
            return stopped
    if setup.refine and setup.scheme.name == "central" and not f.low and f.forced is None:
        own_scale(ev, job, f, idx, out, flat_step)
    if first.swamped is not None and (facts.flat is None or not facts.flat.stairs.size):
        # J did not move at all at the forced eps, and is no staircase where followed: the
        # eps resolves nothing (a staircase's flat J at that eps is its derivative 0: kept).
        facts.flat = None
        raise first.swamped
    # First-pass mismatches the budget left without a second opinion leave the tensor unjudged,
    # except in a sample whose tensor-level directional tests agreed: there they count as
    # unsampled entries do (the sample's pass rests on those tests; a note names them).
    found = facts.located
    vouched = found is not None and not found.failed and found.complete
    unsettled = sum(1 for i in (facts.edges or {}) if out[2][i] == UNCHECKED)  # no step judged
    finer = 0 if facts.finer is None else int(facts.finer.size)  # stairs or rounding: unjudged
    blurred = 0 if facts.blurred is None else int(np.count_nonzero(facts.blurred))
    return f.result(out, steps=f.stepper.h, unconfirmed=unsettled + unsampled(found, f, idx)
                    + finer + blurred + (0 if vouched else (facts.unrefined or 0)))


def unsampled(found: Located | None, f: Footing, idx: np.ndarray) -> int:
    """The entries a sample left unjudged that count as such: all those outside it when the
    tensor's directional test failed and the call allowance stopped the search before it
    isolated every culprit (nothing vouches for them; the DIRECTION_FAILED note says so)."""
    if found is None or not found.failed or found.complete:
        return 0
    return int(np.count_nonzero(f.finite)) - int(idx.size)


def across_stairs(
    ev: Capped, setup: Setup, job: TensorJob, f: Footing, facts: Facts,
    suspicious: np.ndarray, out: Out, flat_step: np.ndarray, before: bool,
) -> TensorResult | None:
    """A step that crosses stairs measures the stairs, not the derivative. Before the second
    opinion, a float64 tensor's mismatches that a float32 read would explain are looked at
    inside θᵢ's float32 cell (``_flat.within_cells``), and those whose analytic value is a
    staircase's 0 where their estimate says J moves by 8σ (``_flat.flat_below``: judged
    there) and where float64 would first show their slope (``_flat.finer_than_steps``: left
    unjudged if their second opinion still finds a mismatch); after it, a low-precision J's
    are looked at where their estimate says J moves by 8σ. Entries J did not move along are
    marked for the flat stage. A Ctrl-C returns the result so far (a mismatch without its
    second opinion is left unjudged), else None."""
    try:
        if before:
            if job.dtype == np.float64:
                within_cells(ev, job.t, f.stepper, out, f.g, f.sigma, job.j0, flat_step)
            zero = near_zero(out, f.g, f.a, flat_step)
            flat_below(ev, job.t, f.stepper, out, f.g, f.a, f.sigma, job.j0, flat_step, zero)
            probes = setup.probes
            scale = max(abs(job.j0), probes[job.t].scale if job.t < len(probes) else 0.0)
            finer = finer_than_steps(ev, job.t, f.stepper, out, f.g, f.a, scale, job.j0,
                                     flat_step)
            facts.finer = finer if finer.size else None
        else:
            if f.low:
                flat_below(ev, job.t, f.stepper, out, f.g, f.a, f.sigma, job.j0, flat_step)
            if facts.finer is not None:  # still a mismatch: from steps across stairs?
                finer = facts.finer[out[2][facts.finer] == MISMATCH]
                out[2][finer], out[0][finer], out[1][finer] = UNCHECKED, np.nan, np.nan
                facts.finer = finer if finer.size else None
    except KeyboardInterrupt:
        if before:
            out[2][suspicious], out[0][suspicious] = UNCHECKED, np.nan
        return f.result(out, partial=before, steps=f.stepper.h, stopped=True)
    return None


def second_opinion(
    ev: Capped, setup: Setup, job: TensorJob, f: Footing, facts: Facts,
    suspicious: np.ndarray, values: dict[float, np.ndarray], out: Out, flat_step: np.ndarray,
) -> TensorResult | None:
    """Refine the first-pass mismatches; a Ctrl-C returns the result so far (else None)."""
    phase(setup, "second opinions")
    try:
        first_pass = out[0].copy(), out[1].copy(), out[2].copy()
        excess = np.abs(out[0] - f.g) / np.maximum(out[1], 1e-300)  # the first pass's
        probe, rest = confirm_sample(suspicious, excess, setup.config.seed, job.t)
        facts.rough = np.zeros(f.theta.size, dtype=bool)
        facts.blurred = np.zeros(f.theta.size, dtype=bool)
        facts.doubted = np.zeros(f.theta.size, dtype=bool)
        facts.unrefined = refine(ev, job.t, probe, f.stepper, setup.scheme, values, job.j0,
                                 f.sigma, f.g, f.a, out, low=f.low, flat_step=flat_step,
                                 rough=facts.rough, blurred=facts.blurred,
                                 doubted=facts.doubted)
        if rest.size:  # the rest as strong as a confirmed stratum stand; the others refined
            # confirmed: judged wrong again, by an estimate near the first pass's (a step
            # across a stair or a kink gives a first-pass number that is no derivative)
            moved = np.abs(out[0][probe] - first_pass[0][probe])
            confirmed = (out[2][probe] == MISMATCH) & (
                moved <= 0.5 * np.abs(first_pass[0][probe] - f.g[probe]))
            stand = established(excess, probe, confirmed)
            weaker = rest[excess[rest] < stand]
            facts.unrefined += refine(ev, job.t, weaker, f.stepper, setup.scheme, values,
                                      job.j0, f.sigma, f.g, f.a, out, low=f.low,
                                      flat_step=flat_step, rough=facts.rough,
                                      blurred=facts.blurred, doubted=facts.doubted)
            if weaker.size < rest.size:
                facts.sampled = (probe.size, suspicious.size, rest.size - weaker.size)
                if np.any(confirmed) and np.all(facts.rough[probe[confirmed]]):
                    # confirmed only on lines with a kink (a sort's ties): the rest stand
                    # on that evidence, kinked too (``_ties`` screens or spares them)
                    facts.rough[rest[excess[rest] >= stand]] = True
        found = facts.located
        if facts.unrefined and found is not None and found.failed and found.worst > 4:
            # The tensor's Richardson test already failed: its first-pass mismatches that
            # the budget could not re-check stand as evidence rather than vanish.
            # Not one whose g lies between its first-pass one-sided slopes: its line may
            # have a kink (a central difference between them is no derivative): unjudged.
            kept = (out[2] == 0) & (first_pass[2] == MISMATCH) & ~facts.blurred
            kept[kept] &= ~between_slopes(f, setup, values, job.j0, np.flatnonzero(kept),
                                          first_pass[1])
            for array, old in zip(out, first_pass, strict=True):
                array[kept] = old[kept]
            facts.kept = int(kept.sum())
            facts.unrefined = max(facts.unrefined - facts.kept, 0)
    except KeyboardInterrupt:  # a first-pass mismatch may be a kink: leave it unjudged
        out[2][suspicious], out[0][suspicious] = 0, np.nan
        return f.result(out, partial=True, stopped=True)
    return None


def between_slopes(
    f: Footing, setup: Setup, values: dict[float, np.ndarray], j0: float, idx: np.ndarray,
    bound: np.ndarray,
) -> np.ndarray:
    """Whether each g of ``idx`` lies between the one-sided slopes the first pass saw
    (allowing each slope twice the first-pass bound: its rounding), where it saw both sides;
    a one-sided scheme shows no kink (False)."""
    sides = [c for c in setup.scheme.nodes if c != 0 and c in values]
    if not idx.size or not any(c < 0 for c in sides) or not any(c > 0 for c in sides):
        return np.zeros(idx.size, dtype=bool)
    with np.errstate(divide="ignore", invalid="ignore"):
        slopes = np.stack([(np.real(values[c][idx]) - j0) / f.stepper.offset(idx, c)
                           for c in sides])
    slack = 2 * bound[idx]
    g = f.g[idx]
    return (np.fmin.reduce(slopes) - slack <= g) & (g <= np.fmax.reduce(slopes) + slack)


def confirm_sample(
    suspicious: np.ndarray, excess: np.ndarray, seed: int, t: int
) -> tuple[np.ndarray, np.ndarray]:
    """The first-pass mismatches whose second opinions come first, and the rest.

    Up to ``SAMPLE_FROM`` mismatches are all confirmed. Beyond that, a sample of one in
    ``SAMPLE_EVERY`` (``SAMPLE_MIN`` to ``SAMPLE_MAX`` entries) stratified by the strength of their first-pass evidence (``excess``: the disagreement
    over its bound; the weakest and the strongest included) and over the tensor (entries
    evenly spread over its flat index: other rows and columns).

    >>> probe, rest = confirm_sample(np.arange(800), np.linspace(1, 9, 800), 0, 0)
    >>> probe.size, rest.size, np.intersect1d(probe, rest).size
    (32, 768, 0)
    """
    if suspicious.size <= SAMPLE_FROM:
        return suspicious, suspicious[:0]
    size = int(np.clip(suspicious.size // SAMPLE_EVERY, SAMPLE_MIN, SAMPLE_MAX))
    by_strength = np.argsort(excess[suspicious], kind="stable")
    strata = by_strength[np.linspace(0, suspicious.size - 1, 2 * size // 3).round()
                         .astype(np.int64)]
    others = np.setdiff1d(np.arange(suspicious.size), strata)
    where = others[np.linspace(0, others.size - 1, size - strata.size).round()
                   .astype(np.int64)]
    chosen = np.union1d(strata, where)
    return suspicious[chosen], np.delete(suspicious, chosen)


def established(excess: np.ndarray, probe: np.ndarray, confirmed: np.ndarray) -> float:
    """The first-pass strength above which a sample's second opinions confirmed every entry.

    The rest of a tensor's mismatches at least that strong stand on their first-pass
    evidence; weaker ones (where a kink or a near-tie of the bound would show) get their own.
    ``inf`` (nothing stands) unless at least half of the sample lies at or above it.

    >>> established(np.arange(8.0), np.arange(8), np.array([0, 1, 0, 1, 1, 1, 1, 1], bool))
    3.0
    """
    strength = excess[probe]
    doubtful = strength[~confirmed]
    above = strength[strength > doubtful.max()] if doubtful.size else strength
    stand = float(above.min()) if above.size else np.inf
    return stand if 2 * above.size >= probe.size else np.inf


def flat_stage(
    ev: Capped, setup: Setup, job: TensorJob, f: Footing, facts: Facts,
    idx: np.ndarray, values: dict[float, np.ndarray], out: Out, flat_step: np.ndarray,
) -> TensorResult | None:
    """Follow the entries J did not move along; a Ctrl-C returns the result (else None)."""
    moving = [c for c in setup.scheme.nodes if c != 0]
    h = f.stepper.h
    still = values[moving[0]][idx].real == job.j0  # J the same at every node
    for c in moving[1:]:
        still &= values[c][idx].real == job.j0
    if still.any():
        flat_step[idx[still]] = h[idx[still]]
    flat = idx[np.isfinite(flat_step[idx]) & (out[2][idx] != UNCHECKED)]
    if flat.size:
        phase(setup, "flat entries")
        try:
            facts.flat = flat_entries(ev, job.t, f.stepper, flat, flat_step, job.j0, f.sigma,
                                      out[2], setup.config.seed)
        except KeyboardInterrupt:  # every entry is judged: keep them, then stop
            return f.result(out, steps=h, stopped=True)
        # The budget followed none of them: a flat step within a float16 cell of θᵢ is what a
        # coarse read of a float64 tensor predicts (its derivative the slope across cells),
        # where J does move along the tensor; a locally constant J or stairs predict it too
        # (then g = 0). Untested, such a mismatch is unjudged.
        moved = job.t < len(setup.probes) and setup.probes[job.t].moved
        crossed = flat[(out[2][flat] == MISMATCH) & (flat_step[flat] <= _cell16(f.theta[flat]))]
        if facts.flat.order.size or not moved or job.dtype != np.float64:
            crossed = crossed[:0]
        out[2][crossed], out[0][crossed], out[1][crossed] = UNCHECKED, np.nan, np.nan
        facts.unrefined = (facts.unrefined or 0) + int(crossed.size)
    return None
