"""Stage 5, refinement: the second opinion on first-pass mismatches, halving the step while they
stay ambiguous.

At each level a half step tells truncation from a bug (Richardson), and one-sided slopes tell
a kink (``_kinks.kink``: any value between the slopes is a valid subgradient). A disagreement is
settled as a bug only once J looks smooth at ``RUN`` successive step sizes that give the same
estimate, and it is judged at the first (most precise) of them; a clear disagreement (J smooth,
g far outside the estimate's bound and every slope) is settled at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from gradcheck.core._coords import Capped
from gradcheck.core._schemes import Scheme
from gradcheck.core._tolerance import SAFETY
from gradcheck.core.verdict._first_pass import estimate, evaluate_nodes
from gradcheck.core.verdict._kinks import AWAY, kink, kinks_away, slopes
from gradcheck.core.verdict._plan import RUN
from gradcheck.core.verdict._records import Stepper
from gradcheck.report._model import MISMATCH, entry_states

MAX_LEVELS = 12  # halvings of the step tried on an ambiguous (kinked) entry: down to h/2048
FAR = 8.0  # a disagreement this many times its bound, outside every slope: settled at once


def refine(
    ev: Capped,
    t: int,
    idx: np.ndarray,
    stepper: Stepper,
    scheme: Scheme,
    first: dict[float, np.ndarray],
    j0: float,
    sigma: float,
    g: np.ndarray,
    a: np.ndarray,
    out: tuple[np.ndarray, np.ndarray, np.ndarray],
    low: bool = False,
    flat_step: np.ndarray | None = None,
    rough: np.ndarray | None = None,
    blurred: np.ndarray | None = None,
    doubted: np.ndarray | None = None,
) -> int:
    """Second opinion on the entries ``idx``, written into ``out`` = (numeric, bound, flags).

    A window that crosses several kinks may pass one smoothness test by chance, not three, and
    a smaller step of a smooth J only adds rounding, so it may not turn a clear disagreement
    into agreement. For a low-precision J (``low``: steps widened by the noise, which may
    average many kinks into a smooth-looking slope) a run settles only where a halved step
    could no longer resolve the disagreement. Any other disagreeing entry goes one level down
    (up to h/2048, and never below a few spacings of the dtype J rounds the entry to), so that
    kinks near θ leave the window: kinks are handled entry by entry, never by widening every
    step. ``flat_step`` records the step at which J did not move at all, ``rough`` the entries
    whose window showed a kink at some level (``_ties`` screens their mismatches). Entries the
    evaluator's spare calls cannot pay for are left unjudged (NaN); returns how many.
    ``blurred`` marks the mismatches left unjudged because kinks inside the larger steps'
    stencils explain them (``_refuted``): not counted in what this returns. ``doubted`` marks
    the mismatches a low-precision run settled next to kinks (seen in the window at some
    level): with callable grads, points off θ must reproduce them (``_kinks.recheck_kinks``).
    """
    n = len(idx)
    chase = _Chase(ev, t, idx, stepper, scheme, j0, sigma, g, a, out, low, flat_step, rough,
                   {c: v[idx] for c, v in first.items()}, np.zeros(n, dtype=np.int64),
                   np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan), np.zeros(n),
                   np.full((2, n), np.nan), np.full((MAX_LEVELS, 4, n), np.nan),
                   np.full((MAX_LEVELS, n), np.nan),
                   np.zeros(len(g), dtype=bool) if blurred is None else blurred,
                   np.zeros(len(g), dtype=bool) if doubted is None else doubted,
                   np.zeros(n, dtype=bool))
    todo = np.arange(n)
    while todo.size:  # depth first: only the second opinions the spare calls can finish
        active, todo = chase.affordable(todo)
        if not active.size:
            break
        for level in range(MAX_LEVELS):
            active = chase.level(level, active)
            if not active.size:
                break
        else:
            chase.settle(active[chase.run[active] > 0])
    return chase.unjudged()


def _wanted(scheme: Scheme, level: int) -> set[float]:
    """The nodes (multiples of h) of a level: the scheme's at h/2^level, halved, and ±s, ±s/2."""
    s = 0.5**level
    return {*(c * s / 2 for c in scheme.nodes), s, -s, s / 2, -s / 2}


class _Opinion(NamedTuple):
    """One level's estimate of the active entries and what J looked like across the window."""

    n_star: np.ndarray  # the Richardson-extrapolated estimate (a kink's nearest subgradient)
    bound: np.ndarray  # its smooth-J bound
    agrees: np.ndarray
    nonsmooth: np.ndarray  # a kink within the window
    inside: np.ndarray  # g between the slopes
    sided: np.ndarray  # each side smooth: a kink at θ
    rounding: np.ndarray  # the half-step estimate's rounding
    clear: np.ndarray  # a disagreement settled at once
    blind: np.ndarray  # the slopes' noise here hides what a larger step resolved: a mismatch
    within: np.ndarray  # g between the slopes, within their allowance (blind or not)
    secants: np.ndarray  # (4, n): S(−c), S(−c/2), S(c/2), S(c) at this level's step c


@dataclass
class _Chase:
    """The second opinion's state; arrays of length len(idx) hold positions into ``idx``."""

    ev: Capped
    t: int
    idx: np.ndarray
    stepper: Stepper
    scheme: Scheme
    j0: float
    sigma: float
    g: np.ndarray
    a: np.ndarray
    out: tuple[np.ndarray, np.ndarray, np.ndarray]  # numeric, bound, flags
    low: bool
    flat_step: np.ndarray | None
    rough: np.ndarray | None  # entries whose window showed a kink at some level
    values: dict[float, np.ndarray]  # J at each node, per position
    run: np.ndarray  # successive smooth, consistent levels so far
    anchor_n: np.ndarray  # the estimate at the first of them
    anchor_b: np.ndarray  # and its bound
    previous: np.ndarray  # the extrapolated estimate one level up
    outside_by: np.ndarray  # how far outside a kink's slopes g was, beyond their noise (0: never)
    bounds: np.ndarray  # (2, n): the lowest and highest slope one level up
    secants: np.ndarray  # (levels, 4, n): each level's one-sided secants (``kinks_away``)
    steps: np.ndarray  # (levels, n): each level's step
    blurred: np.ndarray  # per entry of the tensor: a mismatch kinks in the stencil explain
    doubted: np.ndarray  # per entry: a mismatch a low-precision run settled next to kinks
    kinked: np.ndarray  # per position: a kink seen in its window at some level

    def unjudged(self) -> int:
        """The entries left unjudged by the budget (not those kinks in the stencil blur)."""
        return int(np.sum((self.out[2][self.idx] == 0) & ~self.blurred[self.idx]))

    def affordable(self, todo: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The positions whose whole second opinion (``RUN`` levels) the spare calls pay for,
        and the rest. Paying level by level for every entry would spend a budget on first
        levels that settle nothing; an entry the spare calls cannot start is left unjudged."""
        spare = getattr(self.ev, "spare", lambda: np.inf)()
        cost = max(self._cost(todo, _wanted(self.scheme, 0)), 1)
        if spare >= cost * RUN * todo.size:
            return todo, todo[:0]
        size = max(int(spare // (cost * RUN)), 0) or int(spare >= cost)  # spare may be < 0
        if not size:
            self._afford(todo, _wanted(self.scheme, 0))  # none paid: every one unjudged
            return todo[:0], todo[:0]
        return todo[:size], todo[size:]

    def _cost(self, active: np.ndarray, wanted: set[float]) -> int:
        """Loss calls per position of a level's nodes not yet known."""
        return sum(1 for c in wanted
                   if c not in self.values or np.isnan(self.values[c][active[:1]]).any())

    def level(self, level: int, active: np.ndarray) -> np.ndarray:
        """One level (step h/2^level) for the active positions; returns those still open."""
        s = 0.5**level
        if level:  # the quarter-step nodes of this level must still move the entry
            spacing = np.spacing(np.abs(self.stepper.theta[self.idx[active]])
                                 .astype(self.stepper.dtype)).astype(np.float64)
            deep = s * self.stepper.h[self.idx[active]] / 4 < 4 * spacing
            self.settle(active[deep])
            active = active[~deep]
            if not active.size:
                return active
        nodes = tuple(c * s for c in self.scheme.nodes)
        half = tuple(c / 2 for c in nodes)
        wanted = _wanted(self.scheme, level)
        active = self._afford(active, wanted)
        if not active.size:
            return active
        sub = self.idx[active]
        self._fill(active, wanted)
        vals = {c: v[active] for c, v in self.values.items()}
        if self.flat_step is not None:  # J the same at every node of this level: flat at s·h
            still = np.all([vals[c] == self.j0 for c in wanted | set(nodes) if c], axis=0)
            first = still & np.isnan(self.flat_step[sub])
            self.flat_step[sub[first]] = s * self.stepper.h[sub[first]]
        resolved, bounds = self.outside_by[active], self.bounds[:, active]
        opinion = self._opinion(sub, vals, s, nodes, half, level, resolved, bounds)
        self.outside_by[active], self.bounds[:, active] = resolved, bounds
        self.secants[level][:, active], self.steps[level, active] = opinion.secants, s * (
            self.stepper.h[sub])
        opinion, blurred = self._refuted(active, level, opinion)
        if self.rough is not None:
            self.rough[sub[opinion.nonsmooth]] = True
        self.kinked[active] |= opinion.nonsmooth
        numeric, bound, flags = self.out
        seen = ~opinion.blind  # a blind level keeps the mismatch a larger step resolved
        numeric[sub[seen]], bound[sub[seen]] = opinion.n_star[seen], opinion.bound[seen]
        flags[sub[seen]] = entry_states(opinion.agrees, opinion.nonsmooth & opinion.inside)[seen]
        self.blur(active[blurred])
        return self._track(active, sub, opinion, level)

    def _refuted(self, active: np.ndarray, level: int, o: _Opinion) -> tuple[_Opinion, np.ndarray]:
        """Blind levels whose recorded kink at θ the slopes of all levels refute.

        The blind rule rests on the slopes of a kink at θ with smooth sides. Where the slopes
        seen from level 0 down to this one are no smooth side's beyond AWAY standard deviations
        of J's noise (``kinks_away``: kinks away from θ inside the larger stencils, which the
        single-level tests' padded allowances let pass), the recorded mismatch was slopes
        averaged over those kinks. If g lies between this level's slopes within their
        allowance, nothing judges it (blurred: left unjudged); if not, this level judges as any.
        Returns the opinion with those levels no longer blind, and the blurred positions."""
        away = np.zeros(active.size, dtype=bool)
        if o.blind.any():
            pos = active[o.blind]
            away[o.blind] = kinks_away(self.secants[:level + 1][:, :, pos],
                                       self.steps[:level + 1, pos], self.sigma) > AWAY
        self.outside_by[active[away & ~o.within]] = 0.0  # recorded on averaged slopes
        return o._replace(blind=o.blind & ~(away & ~o.within)), away & o.within

    def blur(self, which: np.ndarray) -> None:
        """Leave positions unjudged: their mismatch is explained by kinks in the stencil."""
        sub = self.idx[which]
        numeric, bound, flags = self.out
        flags[sub], numeric[sub], bound[sub] = 0, np.nan, np.nan
        self.blurred[sub] = True
        self.run[which] = 0

    def _afford(self, active: np.ndarray, wanted: set[float]) -> np.ndarray:
        """The active positions the spare calls pay for; the rest are left unjudged."""
        cost = self._cost(active, wanted)
        spare = getattr(self.ev, "spare", lambda: np.inf)()
        afford = max(int(min(active.size, spare // max(cost, 1))), 0)  # spare may be < 0
        if afford < active.size:  # the budget pays for some second opinions: the rest unjudged
            left = self.idx[active[afford:]]
            numeric, bound, flags = self.out
            flags[left], numeric[left], bound[left] = 0, np.nan, np.nan
            active = active[:afford]
        return active

    def _fill(self, active: np.ndarray, nodes: set[float]) -> None:
        """Evaluate J at the nodes (multiples of h) still unknown for the active positions."""
        self.values.setdefault(0.0, np.full(len(self.idx), self.j0))
        for c in sorted(nodes):
            column = self.values.setdefault(c, np.full(len(self.idx), np.nan))
            todo = active[np.isnan(column[active])]
            if todo.size:
                got = evaluate_nodes(self.ev, self.t, self.idx[todo], self.stepper, [c], self.j0,
                                     False)
                if got.stopped:
                    raise KeyboardInterrupt
                column[todo] = got.values[c]

    def _opinion(self, sub: np.ndarray, vals: dict[float, np.ndarray], s: float,
                 nodes: tuple[float, ...], half: tuple[float, ...], level: int,
                 outside_by: np.ndarray, bounds: np.ndarray) -> _Opinion:
        q = 2.0**self.scheme.order - 1.0
        g, a, sigma, stepper = self.g[sub], self.a[sub], self.sigma, self.stepper
        n_h, r_h = estimate(self.scheme, stepper, sub, vals, sigma, False, nodes=nodes)
        n_2, r_2 = estimate(self.scheme, stepper, sub, vals, sigma, False, nodes=half)
        n_star = n_2 + (n_2 - n_h) / q  # Richardson extrapolation
        smooth_bound = SAFETY * (np.abs(n_h - n_2) / q + (2.0**self.scheme.order * r_2 + r_h) / q) + a
        agrees = np.abs(n_star - g) <= smooth_bound
        nonsmooth, inside, sided = kink(stepper, sub, vals, s, sigma, g, a)
        stacked = slopes(stepper, sub, vals, s)
        lo, hi = stacked.min(axis=0), stacked.max(axis=0)
        # The slopes' own noise (the allowance ``kink`` gives) grows as 1/h: halving the step
        # on and on would let it swallow any error (2·R at a ReLU in float32). Where g lay
        # outside the slopes of a kink at θ by more than their noise (the same slopes at two
        # successive steps: each side smooth, no neighbour's kink leaving the window), a level
        # too noisy to see that distance is blind and the mismatch stands.
        slack = SAFETY * 6 * sigma / (s * stepper.h[sub]) + a
        outside = np.maximum(lo - g, g - hi)
        blind = (outside_by > 0) & (slack >= outside_by)
        within = inside.copy()
        inside &= ~blind
        same = (np.abs(lo - bounds[0]) <= slack) & (np.abs(hi - bounds[1]) <= slack)
        outside_by[:] = np.where(nonsmooth & sided & same & (outside > slack) & ~blind, outside,
                                 outside_by)
        bounds[:] = np.where(nonsmooth & sided, np.stack([lo, hi]), np.nan)
        # A kink g lies outside of: the numeric value shown is the valid subgradient nearest g
        # (g clipped to the slopes), so the error reads as what g lacks, not as a midpoint of
        # two slopes (a kink g lies inside keeps the central estimate, as the textbook has it).
        nearest = np.clip(g, lo, hi)
        # Clear at once: J smooth at h and h/2 with one (Richardson-consistent) estimate, g far
        # outside that estimate's bound and far outside every slope of J across the window (the
        # slopes span J' wherever kinks are inside it, so a kink cannot explain g). The
        # three-level confirmation is spent only where the evidence is ambiguous: kinks seen,
        # a disagreement near the bound, or steps widened by a low-precision J.
        clear = np.zeros(len(sub), dtype=bool)
        if not level and not self.low:
            clear = (~nonsmooth & (np.abs(n_star - g) > FAR * smooth_bound)
                     & (outside > FAR * (hi - lo + slack)))
        n_star = np.where(nonsmooth & ~inside, nearest, n_star)
        return _Opinion(n_star, smooth_bound, agrees, nonsmooth, inside, sided, r_2, clear, blind,
                        within, stacked[:4])

    def _track(self, active: np.ndarray, sub: np.ndarray, o: _Opinion,
               level: int) -> np.ndarray:
        """Runs of smooth, consistent levels: settle those long enough; the rest go on."""
        # The same estimate again: within this level's bound of the last one, and within the
        # precision the run's first (anchor) level claimed; estimates that wander (windows
        # across many kinks, whose truncation term makes every bound wide) start a new run.
        consistent = ((np.abs(o.n_star - self.previous[active]) <= o.bound)
                      & (np.abs(o.n_star - self.anchor_n[active]) <= self.anchor_b[active]))
        going = ~o.nonsmooth & (self.run[active] > 0) & consistent  # the same smooth estimate
        fresh = ~o.nonsmooth & ~going
        self.run[active] = np.where(going, self.run[active] + 1, np.where(fresh, 1, 0))
        self.anchor_n[active] = np.where(fresh, o.n_star, self.anchor_n[active])
        self.anchor_b[active] = np.where(fresh, o.bound, self.anchor_b[active])
        self.previous[active] = o.n_star
        settled = (self.run[active] >= RUN) | o.clear
        blurred = np.zeros(active.size, dtype=bool)
        if self.low:  # steps widened by the noise may average many kinks into a smooth-looking
            # slope: settle only where a halved step could no longer resolve the disagreement
            settled &= 4 * SAFETY * o.rounding >= np.abs(self.anchor_n[active] - self.g[sub])
            blurred = settled & self._blurred_run(active, sub, o, level)
            self.blur(active[blurred])
            settled &= ~blurred
        self.settle(active[settled])
        if self.low:  # a run next to kinks the noise may hide: points off θ must reproduce it
            near = active[settled & self.kinked[active]]
            self.doubted[self.idx[near]] = self.out[2][self.idx[near]] == MISMATCH
        # Agreement counts where the estimate is new (level 0, or it changed past a kink) and J
        # looks smooth (a bound widened by kinks inside the window proves nothing); a smooth
        # estimate repeated with more rounding is no new evidence.
        done = (settled | blurred | o.blind | (o.agrees & ~going & ~o.nonsmooth)
                | (o.nonsmooth & o.inside & o.sided))
        return active[~done]

    def _blurred_run(self, active: np.ndarray, sub: np.ndarray, o: _Opinion,
                     level: int) -> np.ndarray:
        """Runs about to settle a mismatch that their own levels refute: this level's estimate
        agrees with g within its bound, and the run's slopes are no smooth side's (kinks inside
        the anchor's stencil, whose truncation bound made wandering estimates look the same)."""
        out = np.zeros(active.size, dtype=bool)
        wrong = np.abs(self.anchor_n[active] - self.g[sub]) > self.anchor_b[active]
        for length in np.unique(self.run[active][wrong & o.agrees]):
            pick = wrong & o.agrees & (self.run[active] == length)
            first, pos = level - int(length) + 1, active[pick]
            out[pick] = kinks_away(self.secants[first:level + 1][:, :, pos],
                                   self.steps[first:level + 1, pos], self.sigma) > AWAY
        return out

    def settle(self, which: np.ndarray) -> None:
        """Judge positions at the first level of their smooth run, if they have one."""
        which = which[self.run[which] > 0]
        if not which.size:
            return
        sub = self.idx[which]
        numeric, bound, flags = self.out
        numeric[sub], bound[sub] = self.anchor_n[which], self.anchor_b[which]
        agrees = np.abs(self.anchor_n[which] - self.g[sub]) <= self.anchor_b[which]
        flags[sub] = entry_states(agrees)

