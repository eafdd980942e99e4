"""Ties of mixed sign: mismatches where J is not smooth in a way its slopes at θ do not bound.

Several ReLU inputs exactly at 0 (a zero input row with b = 0, padding, integer data) that move
in opposite directions along an entry make J's one-sided slopes there L = base + A₋ and
R = base + A₊, while backprop (relu'(0) = 0) gives base: outside [L, R] when A₋ and A₊ have
the same sign, and J can even be smooth (A₋ = A₊) with every autodiff system off (Lee et al.,
"On Correctness of Automatic Differentiation for Non-Differentiable Functions", NeurIPS 2020).
A single tie (ReLU at 0 along its own input, |w|, a hinge) is different: every derivative J has
near θ along the entry lies between its slopes, and a value outside them (2·R) is a bug.

So a mismatch in a check that saw kinks is screened (``screen``): at a few nearby generic points
θ + s·δ (every parameter moved by a random δ of about its step, s = 1 and 1/2 on the same ray,
which keeps the ReLUs' pattern, extrapolated to s → 0 to remove the curvature) the entry's
derivative is measured. One outside the slopes at θ shows ties of mixed sign: the mismatch is
never blamed on the spot; it is left unjudged (``Ties``), to be judged at a nearby point with
``grads(θ + δ)`` when grads is a function (``_kinks.recheck_kinks``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from gradcheck.core._tolerance import SAFETY, analytic_bound
from gradcheck.core._tree import Params, Tree
from gradcheck.core.verdict._records import Facts, Setup, TensorResult
from gradcheck.report._model import KINK, MISMATCH, UNCHECKED

DIRECTIONS = 12  # generic rays tried per entry at least (unless one shows a tie explaining g)
DIRECTIONS_MAX = 64  # and at most: more while new derivatives still turn up (``AFTER_NEW``)
AFTER_NEW = 6  # rays per derivative (seen + 1) since the last new one: a tie of m entries (a
# sort's) has m derivatives near θ, each on ~1/m of the rays; (1 - 1/m)^(6m) < e^-6
SAMPLE = 4  # mismatches screened per tensor at first (those with a kink on their line first)
SCREEN_MAX = 64  # entries screened per tensor at most; the rest stand, or are left unjudged
STENCIL = 1 / 64  # the step at a generic point and at θ, in units of the entry's step


class Ties(NamedTuple):
    """What the screen found: per tensor, the mismatches on ties of mixed sign (now unjudged)."""

    where: tuple[np.ndarray, ...]
    screened: int  # mismatches screened
    calls: int  # loss calls it made
    unpaid: tuple[np.ndarray, ...] = ()  # of ``where``: kinked mismatches the calls left
    # unscreened (not blamed on the spot either)

    @property
    def tied(self) -> int:
        return sum(w.size for w in self.where)


NO_TIES = Ties((), 0, 0)


class _J:
    """J at parameter values given as flat float64 arrays, rounded to each leaf's dtype."""

    def __init__(self, loss: Callable[[Params], Any], tree: Tree) -> None:
        self.loss, self.tree, self.calls = loss, tree, 0

    def at(self, flats: list[np.ndarray]) -> float:
        self.calls += 1
        values = [f.reshape(x.shape).astype(x.dtype) for f, x in zip(flats, self.tree.leaves,
                                                                     strict=True)]
        return float(np.real(self.loss(self.tree.rebuild(values))))


def rounded(x: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """x as the parameter's dtype holds it, back in float64.

    >>> float(rounded(np.array([0.1]), np.dtype(np.float32))[0])
    0.10000000149011612
    """
    return np.asarray(x).astype(dtype).astype(np.float64)


def screen(
    loss: Callable[[Params], Any], tree: Tree, results: list[TensorResult], setup: Setup,
    facts: list[Facts], max_calls: float = np.inf, judged_later: bool = False,
) -> tuple[list[TensorResult], Ties]:
    """Leave unjudged the mismatches that sit on ties of mixed sign (see the module).

    Only where the check saw J non-smooth near θ (a kink judged, a kink on a mismatch's line,
    or a noise probe whose line crossed one): a smooth model costs nothing. A tensor's
    mismatches with a kink on their line are all screened (up to ``SCREEN_MAX``); of the others
    a sample first, and more only if the sample shows ties. Where ties were found, the
    mismatches left unscreened are not blamed either. ``judged_later`` (callable grads): the
    entries found on ties are judged at nearby generic points next, so a tie of mixed sign
    suffices; otherwise g must also be one of J's derivatives near θ (it stays unjudged).
    """
    if not any((r.flags == MISMATCH).any() for r in results):
        return results, NO_TIES  # no mismatch: nothing to screen (checked first: the cheapest)
    rough = [f.rough if f.rough is not None else np.zeros(r.flags.size, bool)
             for f, r in zip(facts, results, strict=True)]
    seen = (any(np.any(r.flags == KINK) for r in results)
            or any(np.any(k & (r.flags == MISMATCH)) for k, r in zip(rough, results, strict=True))
            or any(p.rough for p in setup.probes))  # a probe's line crossed a kink
    if not seen:
        return results, NO_TIES
    if any(r.flags.size != leaf.size for r, leaf in zip(results, tree.leaves, strict=True)):
        return results, NO_TIES
    screen_ = _Screen(loss, tree, results, setup, max_calls, judged_later)
    try:
        where = [screen_.tensor(t, rough[t]) for t in range(len(results))]
    except (Exception, KeyboardInterrupt):  # never turns a finished check into an error:
        return results, Ties((), screen_.screened, screen_.j.calls)  # the verdicts as they were
    out = []
    for r, w in zip(results, where, strict=True):
        if w.size:
            r.flags[w], r.numeric[w], r.bound[w] = UNCHECKED, np.nan, np.nan
            r = dataclasses.replace(r, unconfirmed=r.unconfirmed + int(w.size))
        out.append(r)
    unpaid = tuple(screen_.unpaid.get(t, np.array([], np.int64)) for t in range(len(results)))
    return out, Ties(tuple(where), screen_.screened, screen_.j.calls, unpaid)


class _Screen:
    """The generic rays (shared by every entry) and the per-entry test."""

    def __init__(self, loss: Callable[[Params], Any], tree: Tree, results: list[TensorResult],
                 setup: Setup, max_calls: float, judged_later: bool = False) -> None:
        self.j, self.results, self.setup, self.max_calls = _J(loss, tree), results, setup, max_calls
        self.judged_later = judged_later  # callable grads: the ties are judged off them next
        self.dtypes = [np.dtype(x.dtype) for x in tree.leaves]
        self.theta = [np.real(np.asarray(x)).reshape(-1).astype(np.float64) for x in tree.leaves]
        self.rng = np.random.default_rng([setup.config.seed, 5])
        self.rays: list[tuple[list[np.ndarray], list[np.ndarray]]] = []
        self.j0: float | None = None
        self.screened = 0
        self.unpaid: dict[int, np.ndarray] = {}  # per tensor: kinked mismatches not screened

    def _ray(self, k: int, wide: float = 1.0) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """The k-th generic ray: the points θ + δ and θ + δ/2 (the same for every entry;
        ``wide`` times farther for an entry whose stencil J's noise widened).

        The first moves every tensor, the next ones each tensor alone (a bias alone moves all
        the ties of its unit the same way: the pieces a mixed tie hides), then every tensor
        again, in other proportions."""
        if wide != 1.0:
            far, near = self._ray(k)
            return ([rounded(th + wide * (f - th), dt) for th, f, dt in
                     zip(self.theta, far, self.dtypes, strict=True)],
                    [rounded(th + wide * (n - th), dt) for th, n, dt in
                     zip(self.theta, near, self.dtypes, strict=True)])
        while len(self.rays) <= k:
            far, near = [], []
            alone = len(self.rays) - 1
            for u, (th, r, dt) in enumerate(zip(self.theta, self.results, self.dtypes,
                                                strict=True)):
                steps = (np.zeros(th.size) if r.steps is None else  # a tensor not judged
                         np.where(np.isfinite(th), np.asarray(r.steps, np.float64), 0.0))
                scale = 2.0 ** self.rng.uniform(-2, 2)  # tensors in varied proportions
                if 0 <= alone < len(self.theta) and u != alone:
                    scale = 0.0
                d = self.rng.choice([-1.0, 1.0], th.size) * self.rng.uniform(0.5, 1, th.size)
                far.append(rounded(th + scale * d * steps, dt))
                near.append(rounded(th + 0.5 * scale * d * steps, dt))
            self.rays.append((far, near))
        return self.rays[k]

    def _affords(self, calls: int) -> bool:
        return self.j.calls + calls <= self.max_calls

    def tensor(self, t: int, rough: np.ndarray) -> np.ndarray:
        """The mismatches of tensor t found on ties of mixed sign (now to be unjudged).

        A sample first (those with a kink on their line first): right code has no mismatch at
        a plain kink, so if none of the sample sits on ties of mixed sign, the tensor's
        mismatches are real and stand. Otherwise more are screened (up to ``SCREEN_MAX``), and
        the rest, unscreened, are not blamed either."""
        r = self.results[t]
        if r.steps is None or (r.low_precision and not self.judged_later):
            # Steps widened by J's noise span neighbouring kinks (a float32 sort of a
            # permutation) and widen the slack: a scaled g passes for a derivative near θ.
            # Screened only where the ties are then judged off them (callable grads).
            return np.array([], dtype=np.int64)
        wrong = np.flatnonzero(r.flags == MISMATCH)
        kinked, smooth = wrong[rough[wrong]], wrong[~rough[wrong]]
        order = np.concatenate([self.rng.permutation(kinked), self.rng.permutation(smooth)])
        found = [self._tie(t, int(i)) for i in order[:SAMPLE]]
        ties = [i for i, tie in zip(order, found, strict=False) if tie]
        if not ties:
            # None: the calls ran out before the screen could tell. A mismatch whose second
            # opinion saw a kink on its line is then not blamed on the spot either; in low
            # precision none is (the steps J's noise widened, and the noise in the kink test,
            # hide a tie's kink from the second opinion: seeing none there proves nothing).
            if all(tie is not None for tie in found):
                return np.array([], dtype=np.int64)
            unscreened = order[[tie is None for tie in found] + [True] * (order.size - len(found))]
            self.unpaid[t] = unscreened if r.low_precision else unscreened[rough[unscreened]]
            return self.unpaid[t]
        # Those the calls left unscreened (None) are not blamed, in the sample as after it.
        ties += [i for i, tie in zip(order, found, strict=False) if tie is None]
        ties += [i for i in order[SAMPLE:SCREEN_MAX] if self._tie(t, int(i)) is not False]
        return np.union1d(np.array(ties, dtype=np.int64), order[SCREEN_MAX:]).astype(np.int64)

    def _tie(self, t: int, i: int) -> bool | None:
        """Whether entry i sits on ties of mixed sign and g is explained by them: J's derivative
        along it at a nearby generic point lies outside the one-sided slopes at θ (beyond
        rounding and curvature), and g within the derivatives seen near θ (a value no piece
        of J near θ has, such as another tensor's gradient, stays a mismatch). None: the
        calls ran out before every ray was tried."""
        if not self._affords(4 + 6):
            return None
        self.screened += 1
        r, th, dt = self.results[t], self.theta, self.dtypes[t]
        sigma = self.setup.noise[t] if t < len(self.setup.noise) else 0.0
        g = float(r.analytic[i])
        wide = widening(sigma, STENCIL * float(np.asarray(r.steps)[i]),
                        abs(float(r.numeric[i]) - g))
        h = wide * STENCIL * float(np.asarray(r.steps)[i])
        if self.j0 is None:
            self.j0 = self.j.at(th)
        slope = []
        for c in (-1.0, -0.5, 0.5, 1.0):  # one-sided slopes at θ, and their limits
            x, off = self._moved(th, t, i, c * h, dt)
            slope.append((self.j.at(x) - self.j0) / off if off else np.nan)
        left, right = 2 * slope[1] - slope[0], 2 * slope[2] - slope[3]
        known = [s for s in (*slope, left, right) if np.isfinite(s)]
        if len(known) < 6:
            return False
        lo, hi = min(known), max(known)
        a = float(analytic_bound(np.array([g]), dt, self.setup.config.rtol,
                                 self.setup.config.atol, self.setup.grad_scale)[0])
        mixed, low, high = False, lo, hi  # the derivatives seen near θ, and their span
        seen: list[float] = []  # the distinct derivatives, and the ray of the last new one
        last = 0
        for k in range(DIRECTIONS_MAX):
            if k >= DIRECTIONS and k - last >= AFTER_NEW * (len(seen) + 1):
                break  # no new derivative for long: g is none of J's near θ
            if not self._affords(4):
                return None
            far, near = self._ray(k, wide)
            n_far = self._central(far, t, i, h, dt)
            n_near = self._central(near, t, i, h, dt)
            if 2 * abs(n_far - n_near) > SAFETY * 6 * sigma / h + a and self._affords(2 + 4):
                # The pair disagrees beyond the rest of the slack: at the nearer point the tied
                # entries lie half as far apart, and its stencil may straddle one's kink. The
                # same ray twice as far out (the same piece) gives the pair at s = 1 and 2.
                n_out = self._central(self._farther(far), t, i, h, dt)
                if abs(n_out - n_far) < abs(n_far - n_near):
                    n_near, n_far = n_far, n_out
            v = 2 * n_near - n_far  # the derivative of the piece the ray enters, at s → 0
            if not np.isfinite(v):
                continue
            slack = SAFETY * 6 * sigma / h + 2 * abs(n_far - n_near) + a
            mixed |= v < lo - slack or v > hi + slack
            # The piece opposite (every tie of the entry flipped) has left + right − v.
            # A new derivative: apart from those seen by more than v's own error (J's noise,
            # ~4 standard deviations, and the curvature). Telling them apart with the safety
            # factor and g's allowance merges a tie's pieces in float32, and the search stops
            # before the piece g is on turns up; one told apart wrongly only costs more rays.
            if all(abs(v - u) > 6 * sigma / h + 2 * abs(n_far - n_near) for u in seen):
                seen, last = [*seen, v], k
            low = min(low, v - slack, left + right - v - slack)
            high = max(high, v + slack, left + right - v + slack)
            # g is what J's derivative is near θ (or is judged off the ties next): not blamed.
            if mixed and (self.judged_later or low <= g <= high):
                return True
        return False

    def _farther(self, far: list[np.ndarray]) -> list[np.ndarray]:
        """The point of the ray through ``far`` twice as far from θ."""
        return [rounded(th + 2 * (f - th), dt) for th, f, dt in
                zip(self.theta, far, self.dtypes, strict=True)]

    def _moved(self, base: list[np.ndarray], t: int, i: int, c: float, dt: np.dtype
               ) -> tuple[list[np.ndarray], float]:
        """``base`` with entry i of tensor t moved by c (as its dtype holds it), and the offset."""
        x = [b if k != t else b.copy() for k, b in enumerate(base)]
        x[t][i] = rounded(np.array([base[t][i] + c]), dt)[0]
        return x, float(x[t][i] - base[t][i])

    def _central(self, point: list[np.ndarray], t: int, i: int, h: float, dt: np.dtype
                 ) -> float:
        """The central difference along entry i at ``point`` (NaN if a step rounds away)."""
        up, off_up = self._moved(point, t, i, h, dt)
        down, off_down = self._moved(point, t, i, -h, dt)
        if not off_up or not off_down:
            return np.nan
        return (self.j.at(up) - self.j.at(down)) / (off_up - off_down)


def widening(sigma: float, h: float, excess: float) -> float:
    """How much wider than ``h`` (1 to 1/STENCIL: at most the entry's own step) the stencil
    must be for J's noise ``sigma`` to blur the extrapolated derivative by at most half the
    mismatch ``excess`` (its slack is SAFETY·6·σ/h); the ray widens with it, so the stencil
    straddles a tie at the points no more often.

    >>> widening(1e-16, 1e-6, 1e-3), widening(1e-11, 1e-6, 1e-3), widening(1e-6, 1e-6, 1e-3)
    (1.0, 1.2, 64.0)
    """
    if not (np.isfinite(excess) and excess > 0 and h > 0):
        return 1.0
    return float(np.clip(2 * SAFETY * 6 * sigma / (excess * h), 1.0, 1 / STENCIL))


def settle(results: list[TensorResult], ties: Ties,
           blurred: tuple[np.ndarray, ...] = ()) -> list[TensorResult]:
    """The results once the re-check off the ties judged some of them: those no longer count
    as unjudged; and the kinked entries it left unjudged (``blurred``, per tensor: a mismatch
    off the kink that kinks inside the stencil explain) now do."""
    if not ties.where and not any(b.size for b in blurred):
        return results  # nothing judged off the ties, nothing blurred: the same results
    out = []
    for t, r in enumerate(results):
        w = ties.where[t] if t < len(ties.where) else np.array([], np.int64)
        more = int(blurred[t].size) if t < len(blurred) else 0
        judged = int(np.count_nonzero(r.flags[w] != UNCHECKED)) - more
        out.append(dataclasses.replace(r, unconfirmed=r.unconfirmed - judged) if judged else r)
    return out


def left(results: list[TensorResult], ties: Ties) -> list[np.ndarray]:
    """Per tensor, the tie entries still unjudged."""
    return [w[results[t].flags[w] == UNCHECKED] for t, w in enumerate(ties.where)]

