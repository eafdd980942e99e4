"""Stage 6, kinks: where J is not smooth within the step, and the stronger test off the kink.

For a smooth J the gap between the right and left slopes is ≈ s·J'' and halves with the step;
a kink inside the window breaks that scaling (``gap_breaks_scaling``). At a kink any value
between the one-sided slopes is a valid subgradient (``kink``); with callable grads the kinked
entries are judged again at a nearby point θ + δ off the kink (``recheck_kinks``). Where J's
noise forces steps wider than the spacing of its kinks (a float32 sort of integers one apart),
the slopes of several steps tell kinks inside a stencil from a smooth side or a kink at θ
(``kinks_away``); a mismatch they explain is left unjudged, never blamed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple, cast

import numpy as np

from gradcheck.core._tolerance import KINK_SAFETY, SAFETY, analytic_bound
from gradcheck.core._tree import Params, Tree
from gradcheck.core._validate import inputs
from gradcheck.core.verdict._records import Facts, Setup, Stepper, TensorResult
from gradcheck.report._model import AGREES, KINK, MISMATCH, UNCHECKED

RECHECK_MAX = 2000  # kinked entries re-checked off the kink (4 loss calls each)
TIE_ROUNDS = 3  # fresh moved points for entries on ties of mixed sign that one did not leave
AWAY = 4.0  # standard deviations of J's noise: one-sided slopes that no smooth side explains
BLURRED = 2  # ``_off_kink``: a mismatch explained by kinks inside its stencil (unjudged)
DOUBTED = 64  # low-precision mismatches next to kinks re-checked off θ per tensor, at most


def one_sided(
    stepper: Stepper, idx: np.ndarray, values: dict[float, np.ndarray], s: float
) -> dict[float, np.ndarray]:
    """Slopes (J(θ + c) − J(θ)) / c for c = ±s·h, ±s·h/2."""
    j0 = values[0.0]
    return {c: (values[c] - j0) / stepper.offset(idx, c) for c in (-s, -s / 2, s / 2, s)}


def slopes(
    stepper: Stepper, idx: np.ndarray, values: dict[float, np.ndarray], s: float
) -> np.ndarray:
    """The one-sided slopes and their zero-step extrapolations, stacked (6, n)."""
    slope = one_sided(stepper, idx, values, s)
    left, right = 2 * slope[-s / 2] - slope[-s], 2 * slope[s / 2] - slope[s]
    return np.stack([*slope.values(), left, right])


def kink(
    stepper: Stepper,
    idx: np.ndarray,
    values: dict[float, np.ndarray],
    s: float,
    sigma: float,
    g: np.ndarray,
    a: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Whether J is non-smooth within the step s·h, whether g lies between its slopes, and
    whether the kink looks like one at θ (each side smooth).

    The one-sided derivatives at θ are the slopes extrapolated to zero step
    (2·f(s/2) − f(s), removing the curvature term); any value between the left and the right
    one is a valid subgradient.
    """
    slope = one_sided(stepper, idx, values, s)
    gap_h, gap_2 = slope[s] - slope[-s], slope[s / 2] - slope[-s / 2]
    h = s * stepper.h[idx]
    # Only asked of entries that already failed the smooth test, so a lower factor suffices.
    nonsmooth = gap_breaks_scaling(gap_h, gap_2, sigma, h)
    stacked = slopes(stepper, idx, values, s)
    slack = SAFETY * 6 * sigma / h + a
    inside = (stacked.min(axis=0) - slack <= g) & (g <= stacked.max(axis=0) + slack)
    # A kink at θ leaves each side smooth: its slopes at s·h and s·h/2 agree to curvature, and
    # only the two sides differ. A side whose slopes change as much as the jump has kinks of
    # its own away from θ (a window across many neighbours of a sort): not judged here.
    gap = np.abs(gap_2)
    sided = ((np.abs(slope[s] - slope[s / 2]) <= 0.25 * gap + slack)
             & (np.abs(slope[-s] - slope[-s / 2]) <= 0.25 * gap + slack))
    return nonsmooth, inside, sided


def gap_breaks_scaling(gap_h: Any, gap_2: Any, sigma: float, h: Any) -> Any:
    """Whether the right-minus-left slope gap at h/2 (``gap_2``) is not half the one at h
    (``gap_h``), as it is for a smooth J (≈ s·J''): a kink within the step, beyond rounding.

    >>> bool(gap_breaks_scaling(2.0, 1.0, 0.0, 1e-3)), bool(gap_breaks_scaling(2.0, 2.0, 0.0, 1e-3))
    (False, True)
    """
    return np.abs(gap_2 - gap_h / 2) > KINK_SAFETY * 5.1 * sigma / h + 0.01 * np.abs(gap_h)


def _spread(terms: tuple[tuple[float, float], ...]) -> float:
    """The standard deviation, in units of σ/c, of Σ w·S(k·c) over ``terms`` (w, k), where
    S(x) = (J(θ + x) − J(θ))/x and each J carries an independent noise σ (shared nodes merged).

    >>> round(_spread(((1.0, 1.0),)), 3)  # one secant: J(θ + c) and J(θ)
    1.414
    """
    coef: dict[float, float] = {}
    for w, k in terms:
        coef[k] = coef.get(k, 0.0) + w / k
        coef[0.0] = coef.get(0.0, 0.0) - w / k
    return float(np.sqrt(sum(v * v for v in coef.values())))


def kinks_away(secants: np.ndarray, steps: np.ndarray, sigma: float) -> np.ndarray:
    """How far (in standard deviations of J's noise σ) the one-sided slopes seen at several
    steps are from those of a J smooth on each side of θ (a kink at θ, or none), per entry.

    ``secants`` (levels, 4, n): S(−c), S(−c/2), S(c/2), S(c) at each level's step c
    (``steps``, (levels, n), NaN where a level was not seen; each level's c at most half the
    one before). On a smooth side each extrapolated slope 2·S(c/2) − S(c) is the one-sided
    derivative at every level, and S(c) − S(c/2) ≈ c·J''/4 scales with c; kinks inside the
    larger steps' stencils but away from θ (a sort's neighbours, one every unit, averaged into
    slopes that looked like a kink's at θ) break both, beyond the noise that the padded
    allowances of the single-level tests let through.

    >>> x = np.array([-1.0, -0.5, 0.5, 1.0])
    >>> def seen(j):  # the secants at c = 4 and c = 2, for one entry
    ...     return np.stack([((j(x * c) - j(0.0)) / (x * c))[:, None] for c in (4.0, 2.0)])
    >>> steps = np.array([[4.0], [2.0]])
    >>> smooth = seen(lambda t: t + t**2)  # smooth: only curvature
    >>> at_theta = seen(lambda t: np.maximum(t, 0.0))  # one kink, at θ
    >>> away = seen(lambda t: np.maximum(t - 1.5, 0.0))  # a kink inside the larger stencil
    >>> [round(float(kinks_away(s, steps, 1e-3)[0])) for s in (smooth, at_theta)], float(
    ...     kinks_away(away, steps, 1e-3)[0]) > AWAY
    ([0, 0], True)
    """
    worst = np.zeros(secants.shape[2])
    for a in range(secants.shape[0]):
        for b in range(a + 1, secants.shape[0]):
            c1, c2 = steps[a], steps[b]
            seen = np.isfinite(c1) & np.isfinite(c2)
            if not seen.any():
                continue
            r = float(np.nanmedian(c2[seen] / c1[seen]))  # the levels' ratio (1/2, 1/4, ...)
            ext = _spread(((2.0, r / 2), (-1.0, r), (-2.0, 0.5), (1.0, 1.0))) * r  # in units of σ/c2
            scale = _spread(((1.0, r), (-1.0, r / 2), (-r, 1.0), (r, 0.5))) * r
            # A smooth side's third derivative moves both by a part of the coarser level's
            # Richardson difference d = n(c) − n(c/2) = c²·J'''/8: (2/3)(1 − r²)·d and r(1 − r)·d.
            d = np.abs(secants[a, 3] + secants[a, 0] - secants[a, 2] - secants[a, 1]) / 2
            for far, near in ((3, 2), (0, 1)):  # the right side, the left side
                s1, h1 = secants[a, far], secants[a, near]
                s2, h2 = secants[b, far], secants[b, near]
                noise = sigma / c2
                moved = (np.abs((2 * h2 - s2) - (2 * h1 - s1)) - 2 / 3 * (1 - r * r) * d) / (
                    ext * noise)
                broken = (np.abs((s2 - h2) - r * (s1 - h1)) - 0.01 * r * np.abs(s1 - h1)
                          - r * (1 - r) * d) / (scale * noise)
                worst = np.where(seen, np.fmax(worst, np.fmax(moved, broken)), worst)
    return worst


class Recheck(NamedTuple):
    """What the re-check off the kinks did."""

    entries: int  # kinked entries re-checked (0: none, or the re-check could not run)
    bad: int  # of which disagree off the kink (now judged wrong)
    calls: int  # loss calls it made
    ties: int = 0  # entries on ties of mixed sign judged there (agree or wrong)
    ties_bad: int = 0  # of which wrong
    blurred: tuple[np.ndarray, ...] = ()  # per tensor: kinked entries now unjudged, whose
    # mismatch there kinks inside the stencil explain (``_off_kink``)


class _Counted:
    """J at the parameter values given, each call counted."""

    def __init__(self, loss: Callable[[Params], Any], tree: Tree) -> None:
        self.loss, self.tree, self.calls = loss, tree, 0

    def at(self, values: list[np.ndarray]) -> float:
        self.calls += 1
        return float(np.real(self.loss(self.tree.rebuild(values))))


def recheck_kinks(
    loss: Callable[[Params], Any],
    tree: Tree,
    grads: Callable[[Params], Any],
    results: list[TensorResult],
    setup: Setup,
    max_calls: float = np.inf,
    ties: tuple[np.ndarray, ...] = (),
    facts: tuple[Facts, ...] = (),
) -> Recheck:
    """Re-check kinked entries at θ + δ, off the kink, against grads(θ + δ).

    ``facts``: per tensor, what the stages found. In a tensor whose steps J's low precision
    widened, a mismatch a run of its second opinion settled next to kinks is re-checked too
    (``doubted``): it stands only where points off θ reproduce it (``_reproduced``).

    ``ties``: per tensor, the entries left unjudged on ties of mixed sign (``_ties``): they
    move and are judged there too; one that agrees there is judged right, one that disagrees
    wrong, one still on a tie stays unjudged.

    At a kink any value between the one-sided slopes passes, so an error smaller than the jump
    (a missing L1 term, x1.01) hides there. Each kinked entry moves by a random δ of a quarter
    to a half of its step (large against rounding), all at once, and is judged there by central
    differences at steps |δ|/4 and |δ|/8 with a Richardson bound: a kink that δ did not leave
    widens that bound, and one-sided slopes that do not scale as a smooth J's leave the entry a
    kink, instead of raising an alarm. An entry that disagrees there is judged wrong in place.
    """
    doubt = doubted(results, facts)
    if not _any_entry(results, ties, doubt):
        return Recheck(0, 0, 0)  # nothing to re-check (what the sets below would find)
    tied = [ties[t] if t < len(ties) else np.array([], np.int64) for t in range(len(results))]
    where = [np.union1d(np.flatnonzero(r.flags == KINK), w).astype(np.int64)
             for r, w in zip(results, tied, strict=True)]
    if sum(w.size for w in where) > RECHECK_MAX:
        return Recheck(0, 0, 0)
    kinked = [w[~np.isin(w, k)] for w, k in zip(where, tied, strict=True)]
    if 4 * sum(w.size + d.size for w, d in zip(where, doubt, strict=True)) + 1 > max_calls:
        doubt = [d[:0] for d in doubt]  # the budget keeps those mismatches as judged at θ
    where = [np.union1d(w, d).astype(np.int64) for w, d in zip(where, doubt, strict=True)]
    total = sum(w.size for w in where)
    if not total or any(r.steps is None for r in results):
        return Recheck(0, 0, 0)
    if 4 * total + 1 > max_calls:  # what "auto" has left of its budget cannot pay for it
        return Recheck(0, 0, 0)
    rng = np.random.default_rng([setup.config.seed, 3])
    j = _Counted(loss, tree)
    try:
        found = _moved_point(j, tree, grads, results, setup, rng, where, tied)
        # An entry on a tie that the moved point did not leave (its neighbours on the same ties
        # moved too, and cancelled) is tried again at fresh points, alone with its kind.
        for _ in range(TIE_ROUNDS):
            again = [w[(f == -1) & np.isin(w, k)] for f, w, k in zip(found, where, tied,
                                                                    strict=True)]
            if not sum(a.size for a in again) or 4 * sum(a.size for a in again) + 1 > (
                    max_calls - j.calls):
                break
            more = _moved_point(j, tree, grads, results, setup, rng, again, tied)
            for f, w, a, m in zip(found, where, again, more, strict=True):
                f[np.isin(w, a)] = m
        _reproduced(j, tree, grads, results, setup, rng, where, tied, found, max_calls, doubt)
    except Exception:  # the stronger test must never turn a finished check into an error
        return Recheck(0, 0, j.calls)
    bad = sum(int(np.sum((f == 1) & np.isin(w, k)))
              for f, w, k in zip(found, where, kinked, strict=True))
    on_ties = [f[np.isin(w, k)] for f, w, k in zip(found, where, tied, strict=True)]
    return Recheck(sum(k.size for k in kinked), bad, j.calls,
                   sum(int(np.sum((f == 0) | (f == 1))) for f in on_ties),
                   sum(int(np.sum(f == 1)) for f in on_ties),
                   tuple(w[(f == BLURRED) & ~np.isin(w, k)]
                         for f, w, k in zip(found, where, tied, strict=True)))


def _any_entry(results: list[TensorResult], ties: tuple[np.ndarray, ...],
               doubt: list[np.ndarray]) -> bool:
    """Whether any entry is kinked, on a tie or doubted: else ``recheck_kinks`` has none."""
    return (any(w.size for w in ties) or any(d.size for d in doubt)
            or any((r.flags == KINK).any() for r in results))


def _reproduced(
    j: _Counted, tree: Tree, grads: Callable[[Params], Any], results: list[TensorResult],
    setup: Setup, rng: np.random.Generator, where: list[np.ndarray], tied: list[np.ndarray],
    found: list[np.ndarray], max_calls: float, doubt: list[np.ndarray],
) -> None:
    """Mismatches off the kink of tensors whose steps J's low precision widened, seen again.

    Their stencils may straddle kinks J's noise hides from every test (a float32 sort's
    neighbours, one every unit, inside a stencil of several units). A wrong gradient is wrong at
    every point off the kink; a mismatch that a fresh point does not reproduce (it agrees
    there, or its stencil is blurred by kinks) is no judgement: left unjudged (``BLURRED``).
    A fresh point still on a kink is tried again (``TIE_ROUNDS`` in all); one no fresh point
    judges is not reproduced either (kinks on every side of it: a stencil anywhere near
    straddles them). A ``doubt``ed mismatch at θ (see ``doubted``) that the first point off θ
    did not reproduce is left unjudged at once; one that point did not judge is pending."""
    for t, (f, w, d) in enumerate(zip(found, where, doubt, strict=True)):
        _blur(results[t], f, w, w[np.isin(w, d) & ((f == 0) | (f == BLURRED))])
    pending = [w[((f == 1) | ((f == -1) & np.isin(w, d))) & ~np.isin(w, k)]
               if r.low_precision else w[:0]
               for f, w, k, d, r in zip(found, where, tied, doubt, results, strict=True)]
    for last in range(TIE_ROUNDS):
        n = sum(p.size for p in pending)
        if not n or 4 * n + 1 > max_calls - j.calls:
            break  # the budget keeps the first point's judgement
        more = _moved_point(j, tree, grads, results, setup, rng, pending, tied)
        for t, (f, w, p, m) in enumerate(zip(found, where, pending, more, strict=True)):
            _blur(results[t], f, w, p[(m == 0) | (m == BLURRED)
                                      | ((m == -1) & (last == TIE_ROUNDS - 1))])
            pending[t] = p[m == -1]


def _blur(r: TensorResult, found: np.ndarray, where: np.ndarray, lost: np.ndarray) -> None:
    """Leave the entries ``lost`` unjudged in ``r`` and mark them ``BLURRED`` in ``found``
    (the judgements of the entries ``where``)."""
    r.flags[lost], r.numeric[lost], r.bound[lost] = UNCHECKED, np.nan, np.nan
    found[np.isin(where, lost)] = BLURRED


def doubted(results: list[TensorResult], facts: tuple[Facts, ...]) -> list[np.ndarray]:
    """Per tensor, the mismatches at θ that points off θ must reproduce: in a tensor whose
    steps J's low precision widened, those a run of smooth-looking levels settled while a kink
    was seen in the window at another level (``Facts.doubted``); the noise hides kinks from
    the smoothness tests there, so the run may have averaged the slopes of kinks inside the
    stencil. (Not a mismatch outside the slopes of a kink at θ: a wrong value at the kink is
    right off it.) Not in a tensor where J was found piecewise constant (stairs: their own
    rules judge them), and at most ``DOUBTED`` per tensor (more are no such accident).

    >>> from gradcheck.core.verdict._records import TensorResult
    >>> r = TensorResult(*[np.zeros(3)] * 3, np.array([2, 2, 1], np.int8), 1.0, 0.1, True)
    >>> doubted([r], (Facts(doubted=np.array([True, False, True])),))[0].tolist()
    [0]
    """
    out = []
    for t, r in enumerate(results):
        f = facts[t] if t < len(facts) else Facts()
        k = f.doubted
        stairs = f.flat is not None and f.flat.stairs.size > 0
        w = np.flatnonzero((r.flags == MISMATCH) & k) if (
            r.low_precision and not stairs and f.quantum is None and f.reads is None
            and k is not None and k.size == r.flags.size) else np.array([], int)
        out.append(w.astype(np.int64) if w.size <= DOUBTED else w[:0].astype(np.int64))
    return out


def _moved_point(
    j: _Counted, tree: Tree, grads: Callable[[Params], Any], results: list[TensorResult],
    setup: Setup, rng: np.random.Generator, where: list[np.ndarray], tied: list[np.ndarray],
) -> list[np.ndarray]:
    """Move the entries ``where`` by a random δ each (a quarter to a half of its step) and judge
    each there: per entry 1 (wrong), 0 (agrees), -1 (still on a kink, or not judged) or
    ``BLURRED`` (a mismatch kinks inside the stencil explain: now unjudged)."""
    thetas = [np.real(np.asarray(x)).reshape(-1).astype(np.float64) for x in tree.leaves]
    moved, deltas, spans = [th.copy() for th in thetas], [], []
    for t, w in enumerate(where):
        steps = cast(np.ndarray, results[t].steps)  # none is None (checked by the caller)
        d = rng.choice([-1.0, 1.0], w.size) * rng.uniform(0.25, 0.5, w.size) * steps[w]
        spread = spreads(thetas[t][w], np.isin(w, tied[t]), tied[t].size)
        moved[t][w] = (thetas[t][w] + spread * d).astype(tree.leaves[t].dtype).astype(np.float64)
        deltas.append(np.abs(moved[t][w] - thetas[t][w]))
        spans.append(deltas[-1] / spread)
    leaves = [m.reshape(x.shape).astype(x.dtype) for m, x in zip(moved, tree.leaves, strict=True)]
    _, shifted = inputs(tree.rebuild([x.copy() for x in leaves]), grads)
    base = j.at([x.copy() for x in leaves])
    found = []
    for t, w in enumerate(where):
        g2 = shifted[t].reshape(-1).astype(np.float64)
        a2 = analytic_bound(g2, np.dtype(tree.leaves[t].dtype), setup.config.rtol,
                            setup.config.atol, setup.grad_scale)
        out = np.full(w.size, -1, dtype=np.int8)
        for k, (i, delta) in enumerate(zip(w, spans[t], strict=True)):
            if delta != 0.0:
                f = _off_kink(j, leaves, moved[t], t, int(i), delta, base, g2[i], a2[i],
                              setup.noise[t], results[t], bool(np.isin(i, tied[t])))
                out[k] = -1 if f is None else int(f)
        found.append(out)
    return found


def _finer(js: dict[float, float], delta: float, g: float, a: float, sigma: float) -> bool:
    """Whether a mismatch off the kink is explained by kinks inside its stencil (±δ/4, ±δ/8):
    at ±δ/16 and ±δ/32 the estimate agrees with g within its own bound, and the one-sided
    slopes at the four steps are no smooth side's (``kinks_away``: a sort's neighbours one
    unit apart inside a float32 stencil of several units)."""
    base = js[0.0]
    steps = (1 / 4, 1 / 8, 1 / 16)  # three levels of the stencil, in units of δ
    secants = np.array([[[(js[k * c] - base) / (k * c * delta)] for k in (-1.0, -0.5, 0.5, 1.0)]
                        for c in steps])
    if kinks_away(secants, np.array([[c * delta] for c in steps]), sigma)[0] <= AWAY:
        return False
    n_h = (js[1 / 16] - js[-1 / 16]) / (delta / 8)
    n_2 = (js[1 / 32] - js[-1 / 32]) / (delta / 16)
    allowed = SAFETY * (abs(n_h - n_2) / 3 + 2 * sigma * np.sqrt(2) / (delta / 16)) + a
    return bool(abs(n_2 + (n_2 - n_h) / 3 - g) <= allowed)


def spreads(values: np.ndarray, on_ties: np.ndarray, n_ties: int) -> np.ndarray:
    """How much farther than its own span each moved entry moves (``tie_spread``), given the
    entries' values and which of them are on ties of mixed sign (``n_ties`` of them).

    Entries that may be tied to each other move apart: those on ties of mixed sign (they may
    share units), and kinked entries holding the same value (a sort's or a max's tie group:
    their kinks are where they cross each other). A kinked entry alone with its value moves
    within its own span.

    >>> spreads(np.array([0.0, 0.0, 0.0, 1.0, 2.0]), np.array([0, 0, 0, 0, 1], bool), 1)
    array([6., 6., 6., 1., 2.])
    """
    _, group, counts = np.unique(values, return_inverse=True, return_counts=True)
    same = counts[group.reshape(-1)]
    by_value = np.array([tie_spread(n) for n in same], dtype=np.float64)
    return np.where(on_ties, np.maximum(tie_spread(n_ties), by_value),
                    np.where(same > 1, by_value, 1.0))


def tie_spread(n: int) -> float:
    """How much farther than a kinked entry an entry on ties moves (its stencil stays): the n
    entries on ties of a tensor may all be tied together (a sort's tie group); moved within
    one span they would lie ~span/n apart and the stencil would straddle their kinks, which,
    dense, look like a smooth curve of another slope. 2n spans keep them ~2 stencils apart.

    >>> tie_spread(1), tie_spread(200)
    (2.0, 400.0)
    """
    return float(max(2 * n, 1))


def _off_kink(
    j: _Counted, leaves: list[np.ndarray], moved: np.ndarray, t: int, i: int, delta: float,
    base: float, g: float, a: float, sigma: float, r: TensorResult, tie: bool = False,
) -> bool | int | None:
    """Judge entry i of tensor t at the moved point: True (wrong, written into ``r``), False
    (agrees; an entry on a tie of mixed sign is then written as agreeing), None (still on a
    kink, or not judged), ``BLURRED`` (a mismatch that kinks inside the stencil explain, left
    unjudged in ``r``: see ``_finer``)."""
    js = {0.0: base}

    def at(offsets: tuple[float, ...]) -> None:
        for c in offsets:
            x = moved.copy()
            x[i] += c * delta
            js[c] = j.at([leaf if k != t else x.reshape(leaf.shape).astype(leaf.dtype)
                          for k, leaf in enumerate(leaves)])

    at((-0.25, -0.125, 0.125, 0.25))
    h = 0.25 * delta
    gap_h = (js[0.25] + js[-0.25] - 2 * base) / h  # right − left slope
    gap_2 = (js[0.125] + js[-0.125] - 2 * base) / (h / 2)
    # Still on a kink (the entries moved together and their effects cancelled): the one-sided
    # slopes do not scale as a smooth J's do. Leave it a kink.
    if gap_breaks_scaling(gap_h, gap_2, sigma, h):
        return None
    n_h = (js[0.25] - js[-0.25]) / (0.5 * delta)
    n_2 = (js[0.125] - js[-0.125]) / (0.25 * delta)
    n_star = n_2 + (n_2 - n_h) / 3
    rounding = sigma * np.sqrt(2) / (0.25 * delta)
    allowed = SAFETY * (abs(n_h - n_2) / 3 + 2 * rounding) + a
    if not np.isfinite(n_star - g):
        return None
    wrong = bool(abs(n_star - g) > allowed)
    if wrong and r.low_precision:  # steps J's noise widened may straddle kinks: the rule of
        # the refinement's blind levels, a finer stencil's evidence
        at((-1 / 16, -1 / 32, 1 / 32, 1 / 16))
        if _finer(js, delta, g, a, sigma):
            r.flags[i], r.numeric[i], r.bound[i] = UNCHECKED, np.nan, np.nan
            return BLURRED
    if wrong or tie:
        r.flags[i] = MISMATCH if wrong else AGREES
        # the error found off the kink, carried to θ (for the table and diagnosis)
        r.numeric[i] = r.analytic[i] - (g - n_star)
        r.bound[i] = allowed
    return wrong
