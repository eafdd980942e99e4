"""Stage 3, the noise probe: σ of J's rounding noise near θ, for each tensor.

ECnoise along a random direction in each tensor (``probe``), floored by the precision J's values
reveal (the coarsest float grid seen on any tensor: one property of the loss) and by float64's;
where that noise is large enough to set the steps, it is measured on coordinate lines too
(``coordinate_noise``). A line that crosses a kink or a stair is re-probed at smaller steps:
its apparent noise shrinks with the step, rounding does not.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Protocol

import numpy as np

from gradcheck._errors import LossRaisedError
from gradcheck.core import _edges
from gradcheck.core._coords import Capped
from gradcheck.core._noise import POINTS, distinct, noise_level, one_jump, resolution
from gradcheck.core._options import replaced
from gradcheck.core._schemes import typical_scale
from gradcheck.core._tolerance import LOW_PRECISION
from gradcheck.core._tree import Tree
from gradcheck.core.verdict._base import base_value
from gradcheck.core.verdict._records import EPS32, EPS64, Probe, Setup

RETRIES_IF_FLAT = 4  # probes of the noise, each with a 16x larger step, while J stays constant


def base_and_noise(evaluator: Capped, setup: Setup, tree: Tree) -> tuple[float, Setup]:
    """J(θ) (twice: a loss that answers differently is stochastic) and the noise probe of each
    tensor, in ``setup``; a Ctrl-C goes through (nothing is judged yet)."""
    setup.progress.set_phase("J(θ)")
    j0 = base_value(evaluator, tree, setup.complex)
    if not setup.complex:
        setup.progress.set_phase("noise probe")
        noise, probes = measure_noise(evaluator, tree, j0, normals(setup.config.seed, tree),
                                      setup.config.seed)
        setup = replaced(setup, noise=tuple(noise), probes=tuple(probes))
    return j0, setup


class Normals(Protocol):
    """Where the probe's directions are drawn from: a generator, or its draws replayed."""

    def standard_normal(self, size: int) -> np.ndarray: ...


REMEMBERED = 4096  # a check of at most this many entries replays its probe's draws


def normals(seed: int, tree: Tree) -> Normals:
    """``np.random.default_rng(seed)`` for the probe's draws (one standard normal vector per
    tensor, in order); for a small check, those draws made once per seed and tensor sizes and
    replayed (the same numbers; making a generator costs more than a small check's probe)."""
    sizes = tuple(int(leaf.size) for leaf in tree.leaves)
    if sum(sizes) > REMEMBERED:
        return np.random.default_rng(seed)
    return _Replay(_draws(int(seed), sizes))


@functools.lru_cache(maxsize=64)
def _draws(seed: int, sizes: tuple[int, ...]) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    drawn = tuple(rng.standard_normal(n) for n in sizes)
    for d in drawn:
        d.flags.writeable = False  # shared by every check that replays them
    return drawn


class _Replay:
    """The draws of ``_draws``, handed out in order as ``standard_normal`` would give them."""

    def __init__(self, drawn: tuple[np.ndarray, ...]) -> None:
        self._next = iter(drawn)

    def standard_normal(self, size: int) -> np.ndarray:
        drawn = next(self._next)
        if drawn.size != size:  # (the probe draws one vector per tensor, in order)
            raise ValueError(f"replayed draw of {drawn.size} numbers, {size} asked")
        return drawn


def measure_noise(
    ev: Capped, tree: Tree, j0: float, rng: Normals, seed: int = 0
) -> tuple[list[float], list[Probe]]:
    """σ of J's rounding noise near θ for each tensor: ECnoise along a random direction in
    that tensor, floored by the precision J's values reveal (one property of the loss, so the
    coarsest grid seen on any tensor applies to all) and by float64's own."""
    probes = [
        probe(ev, t, ev.ws.originals[t].real.reshape(-1).astype(np.float64), j0, rng, leaf.dtype)
        for t, leaf in enumerate(tree.leaves)
    ]
    floor = max([EPS64 * abs(j0)] + [p.grid for p in probes])
    sigmas = [max(p.sigma, floor) for p in probes]
    for t, leaf in enumerate(tree.leaves):
        # A coordinate step moves one entry, the probe's direction every entry: where that
        # noise is large enough to set the steps (a low-precision J), the noise the coordinate
        # differences see is measured on coordinate lines too, and the smaller one is used if
        # it is clearly smaller (a float32 sum of 8,000 terms: 6x less along one entry).
        if sigmas[t] > LOW_PRECISION * probes[t].scale and probes[t].moved:
            theta = ev.ws.originals[t].real.reshape(-1).astype(np.float64)
            along = coordinate_noise(ev, t, theta, j0, np.random.default_rng([seed, 5, t]),
                                      leaf.dtype)
            if along is not None and max(along, floor) < sigmas[t] / 4:
                sigmas[t] = max(along, floor)
    return sigmas, probes




COORDINATE_LINES = 3  # coordinate lines of a low-precision tensor's noise (6 loss calls each)


def coordinate_noise(
    ev: Capped, t: int, theta: np.ndarray, j0: float, rng: np.random.Generator,
    dtype: Any,
) -> float | None:
    """ECnoise σ of J along a few random coordinates of tensor t (the largest), or None when
    fewer than two lines moved J (nothing to say) or the budget cannot pay for them.

    Each line moves one entry by k·δᵢ, δᵢ near NOISE_STEP · its scale, stepping as the first
    pass will: a float64 parameter by any δᵢ (θᵢ + k·δᵢ equally spaced to float64's rounding),
    so that a J that rounds it to float32 inside (a float32 layer whose output is stored in
    float64) shows that rounding here as it will in the first pass; a coarser parameter by a
    power of two (θᵢ + k·δᵢ exact in its dtype: equally spaced, as ECnoise needs, and what J
    sees, as the first pass steps to points representable there).
    """
    finite = np.flatnonzero(np.isfinite(theta))
    cost = COORDINATE_LINES * (POINTS - 1)
    if finite.size < COORDINATE_LINES or ev.spare() < 10 * cost:
        return None
    picks = rng.choice(finite, COORDINATE_LINES, replace=False)
    floor = max(1.0, typical_scale(theta[finite]))
    k = (np.arange(POINTS) - POINTS // 2)[np.arange(POINTS) != POINTS // 2].astype(np.float64)
    seen = []
    for i in picks:
        wanted = NOISE_STEP * max(abs(theta[i]), floor)
        grain = 4 * float(np.spacing(np.abs(theta[i]).astype(dtype)))
        delta = max(wanted, grain)
        if np.dtype(dtype) != np.float64:
            delta = 2.0 ** np.ceil(np.log2(delta))
        js = ev.coordinates(t, np.full(k.size, i), theta[i] + k * delta)
        values = np.insert(np.real(np.asarray(js, dtype=np.complex128)), POINTS // 2, j0)
        if np.all(np.isfinite(values)) and np.unique(values).size > 1:
            seen.append(noise_level(values)[0])
    return max(seen) if len(seen) >= 2 else None



NOISE_STEP = EPS64 ** (1 / 3)  # relative step of the probe's line (each entry by its own scale)
GRIDS = 16.0  # an apparent noise above this many half ulps of J's grid is re-probed
SHRINK = 16  # each re-probe of a suspected non-smooth J uses a 16x smaller step
CANCELLED = 16.0  # J moving this many times its value along θ's scale has cancelled
REPROBES = 6  # at most this many re-probes (6 loss calls each), only when J looks imprecise


def probe(
    ev: Capped,
    t: int,
    theta: np.ndarray,
    j0: float,
    rng: Normals,
    dtype: Any,
) -> Probe:
    """ECnoise σ and J's resolution from J at θ + k·δ·v, k = -3..3, for one tensor.

    The direction v moves each entry by about δ times its own magnitude (floored as the steps
    are), so the line sees what the coordinate steps will see. A line that crosses a kink or a stair of J shows
    differences that look like noise, but along one direction they scale with δ, and rounding
    noise does not: so a σ that would mean "low precision" without J's values sitting on a
    float grid is measured again along the same direction at 16x smaller steps, and kept only
    once it stops changing.
    """
    # A loss that computes in a float16 parameter's own dtype rounds small steps away (J looks
    # constant, σ = 0): the line then retries with 16x larger steps (``line``).
    delta = NOISE_STEP
    direction = direction_of(theta, rng)
    values, delta = line(ev, t, direction, j0, delta, RETRIES_IF_FLAT)
    moved = distinct(values)
    sigma, _ = noise_level(values)
    grid = resolution(values)
    scale = magnitude(values, j0, delta, sigma)
    first, rough = sigma, False
    # J's values on a float32/float16 grid: J is low precision, whatever else it does; but an
    # apparent noise far above that grid's half ulp may still be stairs or kinks the line
    # crosses (a float32 round(x, 3)), so it is re-probed as well (the grid stays σ's floor).
    # A re-probe step below float32's resolution could not tell rounding from smoothness.
    suspect = moved and sigma > LOW_PRECISION * scale and sigma > GRIDS * grid
    # The re-probe step must stay above the resolution of float32 and of the parameter's dtype
    # (a loss may round to either): below it, rounding itself would look like smoothness.
    resolvable = delta / SHRINK >= 2 * max(EPS32, float(np.finfo(dtype).eps))
    if suspect and one_jump(values, 4 * grid, scale):  # smooth plus one stair: a jump of J
        sigma, rough, suspect = 0.0, True, False
    if suspect and resolvable:
        for _ in range(REPROBES):
            delta /= SHRINK
            again, _ = line(ev, t, direction, j0, delta, 0)
            if not distinct(again) or one_jump(again, 4 * grid, scale):
                # flat at the smaller step, or a stair still inside it: J moves by stairs
                sigma, rough = 0.0, True
                break
            smaller = noise_level(again)[0]
            if smaller > sigma / 4:  # the same noise at a 16x smaller step: it is rounding
                # ... and so was an earlier drop, if this is the first probe's noise again: a
                # 7-point ECnoise estimate varies by ~4x, a kink's noise keeps shrinking (∝ δ).
                back = rough and smaller > first / 4
                sigma, rough = max(sigma, smaller, first if back else 0.0), rough and not back
                break
            sigma, rough = smaller, True  # it shrank with the step: non-smooth J, not noise
            if sigma <= 4 * EPS64 * scale:
                break  # down to float64's own rounding: what was seen was all kink
        else:  # still shrinking at the last re-probe: what is left is kink too (∝ δ)
            sigma /= SHRINK if rough else 1.0
    return Probe(sigma, grid, bool(moved), rough, scale)


def magnitude(values: np.ndarray, j0: float, delta: float, sigma: float) -> float:
    """J's reference magnitude for its relative precision: |J(θ)|, or, where J has cancelled,
    a 16th of how much J moves when every entry moves by its own scale (the probe's slope).

    A computed J is off by its terms' rounding, ~u·(the size of the terms summed), not by
    u·|J|: where J cancels to ~0 (Σ sin(w) over a symmetric grid: 1e-13 from terms of ~1),
    |J(θ)| says nothing about that size, but J's first-order variation along θ's own scale
    still does (terms of that size move by about their size when their inputs do). The
    signature of a cancelled J is a noise σ at float64's level against that variation while
    far above it against |J(θ)|: only then does the variation stand in for the terms (divided
    by CANCELLED: it is a random projection of the gradient, a few times the terms). A J whose
    σ is large against both (float32 inside, or a probe that saw curvature near a singularity)
    keeps |J(θ)|, and so does a J that did not cancel.

    >>> k = np.arange(7.0) - 3  # J of 1e-13 moving by 16 per unit of θ's scale: it cancelled
    >>> round(magnitude(1e-13 - 16 * 1e-5 * k, 1e-13, 1e-5, 4e-14), 9)
    1.0
    >>> magnitude(1e-13 - 16 * 1e-5 * k, 1e-13, 1e-5, 1e-7)  # σ is not float64's: as it was
    1e-13
    """
    variation = _variation(values, j0, delta) / CANCELLED
    cancelled = variation > abs(j0) and sigma <= LOW_PRECISION * variation
    # A J exactly 0 at θ (float32(1 + f) - 1 at f = 0) gives no reference at all: its variation
    # is the only one (else a low-precision J of 0 would be stepped as float64's).
    return variation if cancelled or j0 == 0 else abs(j0)


def _variation(values: np.ndarray, j0: float, delta: float) -> float:
    """The largest finite |J(θ + k·δ·v) − J(θ)| / (|k|·δ), k ≠ 0, on Python floats where
    every one is finite (else NumPy's, which warns of an overflow)."""
    variation = 0.0
    if 0 < delta < math.inf:
        for i, value in enumerate(values.tolist()):
            k = abs(i - values.size // 2)
            if k:
                moved = abs(value - j0) / (k * delta)
                if not math.isfinite(moved):
                    break
                variation = max(variation, moved)
        else:
            return variation
    ks = np.arange(values.size) - values.size // 2
    moved = np.abs(values - j0)[ks != 0] / (np.abs(ks[ks != 0]) * delta)
    return float(np.max(moved[np.isfinite(moved)], initial=0.0))


def direction_of(theta: np.ndarray, rng: Normals) -> np.ndarray:
    """A random direction that moves each entry by about its own scale, as its step does
    (±inf/NaN entries are not moved)."""
    finite = np.isfinite(theta)
    if finite.all():  # the common case: np.where would copy θ and the draws unchanged
        direction, inside, moved = rng.standard_normal(theta.size), theta, theta
    else:
        direction = np.where(finite, rng.standard_normal(theta.size), 0.0)
        inside, moved = theta[finite], np.where(finite, theta, 0.0)
    floor = max(1.0, typical_scale(inside)) if inside.size else 1.0
    scale = np.maximum(np.abs(moved), floor)
    if direction.size:  # np.mean of a 1-d float64 array: its add.reduce over the count
        norm = math.sqrt(float(np.add.reduce(direction * direction)) / direction.size)
    else:  # (NaN, and NumPy's warning of an empty mean)
        norm = float(np.sqrt(np.mean(direction**2)))
    return direction * scale / max(norm, TINY)


def line(
    ev: Capped,
    t: int,
    direction: np.ndarray,
    j0: float,
    delta: float,
    retries: int,
) -> tuple[np.ndarray, float]:
    """J at θ + k·δ·v (k = -3..3); while J stays constant, up to ``retries`` more tries with a
    16x larger δ (a low-precision J hides small steps)."""
    for attempt in range(retries + 1):
        try:
            values = _centred(ev.along(t, direction, delta * STEPS), j0)
        except LossRaisedError:
            if not attempt:
                raise
            # A constant J that raises 16x farther out (a domain check in the loss): the probe
            # stops growing; J stayed constant at every step it could take.
            return np.full(POINTS, j0), delta / 16
        for _ in range(_edges.LEVELS):  # the probe left the loss's domain: come closer
            if np.isfinite(values).all():
                break
            delta /= 4
            values = _centred(ev.along(t, direction, delta * STEPS), j0)
        if not np.isfinite(values).all():
            values = np.full(POINTS, j0)  # no noise seen: σ falls back to the float64 floor
            break
        if distinct(values):
            break
        delta *= 16
    return values, delta


STEPS = (np.arange(POINTS) - POINTS // 2)[np.arange(POINTS) != POINTS // 2].astype(np.float64)
TINY = float(np.finfo(np.float64).tiny)


def _centred(js: np.ndarray, j0: float) -> np.ndarray:
    """J along the line with J(θ) in the middle (``np.insert(js, POINTS // 2, j0)``)."""
    values = np.empty(POINTS)
    values[: POINTS // 2], values[POINTS // 2], values[POINTS // 2 + 1 :] = (
        js[: POINTS // 2], j0, js[POINTS // 2 :])
    return values
