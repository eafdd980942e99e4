"""The table of bug signatures: how a wrong gradient relates to the right one, as data.

Each signature is a relation between the analytic gradient g, the numeric gradient n and the
parameter values θ of one tensor (checked entries only). A signature *fits* when, after the
relation is applied, what is left of the error is small: either within the check's own
per-entry tolerance (times ``SLACK``), or under ``EXPLAINED`` of both the error it started from
and the gradient itself. The first signature in ``SIGNATURES`` that fits names the kind, so
the order is part of the rules: a sign flip is also a scale of −1, and is named a sign flip.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from gradcheck.report._format import fmt, index_text, layer_keys
from gradcheck.report._model import AGREES, MISMATCH, Component, Finding

EXPLAINED = 1e-2  # residual norm, over min(‖g − n‖, ‖g‖), below which a relation fits
SLACK = 3.0  # or: every residual entry within this many times the check's own tolerance
NAMED = 1e-3  # relative closeness for a factor to be called 2, 1/2, m or 1/m
ZERO = 1e-8  # ‖g‖ ≤ ZERO·‖n‖ counts as "all zeros"
CONCENTRATED = 0.5  # localized: at most this fraction of rows / columns / entries is wrong
ENTRIES = 6  # name single entries when at most this many are wrong
# With fewer checked entries than this, any one-constant relation fits (a scalar is a "scale"
# of anything); such a tensor takes the kind that explains the other suspects, if it fits
# (``classify_as``), and ``classify`` alone only names kinds that fit no constant.
MIN_FIT = 3


@dataclass(frozen=True)
class Evidence:
    """What the signatures look at for one suspect tensor (flattened, checked entries only)."""

    component: Component
    mask: np.ndarray  # flat bool: entries that were compared (not kink-skipped, not unchecked)
    n: np.ndarray
    g: np.ndarray
    theta: np.ndarray
    bound: np.ndarray
    batch_size: int | None = None
    strict: bool = False  # only fits within the per-entry tolerance count (the first pass)

    @property
    def name(self) -> str:
        return self.component.name

    @property
    def error(self) -> float:
        return float(np.linalg.norm(self.g - self.n))

    def explains(self, residual: np.ndarray, slack: float = 1.0) -> bool:
        """Whether ``residual`` (what a relation leaves of g − n) is small enough to call a fit.

        A true relation leaves only the numerical error of n: within the check's own per-entry
        tolerance (times ``SLACK``). Failing that, the residual must be tiny next to both the
        error and the gradient, so that a large error (a sign flip) cannot hide a poor fit.
        """
        if not residual.size:
            return False
        if np.all(np.abs(residual) <= SLACK * slack * self.bound):
            return True
        if self.strict:
            return False
        scale = min(self.error, float(np.linalg.norm(self.g)))
        return float(np.linalg.norm(residual)) <= EXPLAINED * scale


def evidence(c: Component, batch_size: int | None = None) -> Evidence:
    """The checked entries of a component as flat float64 arrays."""
    mask = np.isin(c.flags.ravel(), (AGREES, MISMATCH))
    flat = lambda a: np.asarray(a, dtype=np.float64).ravel()[mask]  # noqa: E731
    return Evidence(
        c, mask, flat(c.numeric_array), flat(c.analytic_array), flat(c.value_array),
        flat(c.bound_array), batch_size,
    )


def fit(y: np.ndarray, x: np.ndarray) -> float:
    """Least-squares k in y ≈ k·x (0.0 when x is all zeros)."""
    xx = float(x @ x)
    return 0.0 if xx == 0.0 else float(x @ y) / xx


# --- signatures: each returns a Finding when it fits, else None ------------------------------


def _zero(e: Evidence) -> Finding | None:
    # The whole analytic tensor, not only the checked entries: a sampled or bisected check
    # may have compared just the entries that happen to be zero.
    whole = np.asarray(e.component.analytic_array, dtype=np.float64)
    if np.linalg.norm(whole) > ZERO * np.linalg.norm(e.n) or not np.any(e.n):
        return None
    return Finding(
        e.name, "zero",
        f"the analytic gradient d{e.name} is all zeros, but the loss does change with "
        f"{e.name} (largest numeric entry {fmt(float(np.abs(e.n).max()))}).",
        f"Is d{e.name} computed at all, or overwritten / never accumulated?",
        factor=0.0,
    )


def _independent(e: Evidence) -> Finding | None:
    # Every central difference exactly 0: J(θ + h·e_i) = J(θ − h·e_i) to the last bit for every
    # entry, which a J that depends on the tensor does not do (the analytic side is not zero).
    if not e.n.size or np.any(e.n) or not np.any(e.g):
        return None
    return Finding(
        e.name, "independent",
        f"J does not depend on {e.name} at all (moving any entry of {e.name} by ±h leaves J "
        f"exactly unchanged, or J is piecewise constant along it), yet d{e.name} is not zero "
        f"(largest analytic entry {fmt(float(np.abs(e.g).max()))}).",
        f"Does the loss use {e.name} (or a copy of it made before the check)? If {e.name} only "
        "enters through rounding or a step function, its derivative is 0 almost everywhere.",
        factor=None,
    )


def _sign(e: Evidence) -> Finding | None:
    c = fit(e.g, e.n)
    if abs(c + 1.0) > 0.05 or not e.explains(e.g + e.n):
        return None
    return Finding(
        e.name, "sign",
        f"d{e.name} has the wrong sign: analytic ≈ −1 × numeric.",
        "Look for a flipped sign (y − a instead of a − y, or += instead of −=) in this layer's "
        "delta.",
        factor=-1.0,
    )


def _factor_name(c: float, m: int | None) -> tuple[str, str] | None:
    """(name, hint) for a recognised factor, from the table below."""
    for target, name, hint in _named_factors(m):
        if abs(c / target - 1.0) <= NAMED:
            return name, hint
    return None


def _named_factors(m: int | None) -> list[tuple[float, str, str]]:
    rows = [
        (2.0, "2", "A factor of 2: the derivative of a squared error without the ½ "
         "(d/da ½(a−y)² = a−y), or a term counted twice."),
        (0.5, "1/2", "A factor of 1/2: a ½ applied twice, or a (a − y) missing its 2."),
    ]
    if m is not None and m > 2:
        rows += [
            (float(m), "m", f"Looks like a missing 1/m (batch size m = {m}): average the loss "
             "gradient over the batch."),
            (1.0 / m, "1/m", f"Looks like 1/m applied twice (batch size m = {m})."),
        ]
    return rows


MAX_BATCH = 10**7  # a whole factor above this is not read as a batch size


def _whole_number(c: float) -> tuple[str, str] | None:
    """A large whole factor with no batch size given: probably m, say so conditionally."""
    for value, word in ((c, "missing"), (1.0 / c if c else 0.0, "doubled")):
        k = round(value) if value < MAX_BATCH else 0  # 1.5e136 is no batch size
        if k >= 3 and abs(value / k - 1.0) <= NAMED:
            shown = str(k) if word == "missing" else f"1/{k}"
            hint = (
                f"If your batch size is {k}, this is a missing 1/m."
                if word == "missing"
                else f"If your batch size is {k}, 1/m is applied twice."
            )
            return shown, hint + " (Pass batch_size= to check to confirm.)"
    return None


def _scale(e: Evidence) -> Finding | None:
    # A factor needs a measured numeric side: where every difference is within its tolerance of
    # 0 (a tensor J reads only at its rounding), a fitted ×1.6e9 is the ratio of two noises.
    if not np.any(np.abs(e.n) > e.bound):
        return None
    c = fit(e.g, e.n)
    if c == 0.0 or abs(c - 1.0) < 1e-12 or not e.explains(e.g - c * e.n, slack=max(1.0, abs(c))):
        return None
    # The conditional "if your batch size is k" only when no batch size was given (a given m
    # that is not k says the factor is something else).
    named = _factor_name(abs(c), e.batch_size) or (
        _whole_number(abs(c)) if e.batch_size is None else None)
    shown, hint = named or (fmt(abs(c)), "A constant factor: look for a learning-rate, 1/m, "
                            "temperature or ½ that is applied once too often or not at all.")
    sign = " with the sign flipped as well" if c < 0 else ""
    return Finding(
        e.name, "scale",
        f"d{e.name} is off by a constant factor: analytic ≈ {shown} × numeric{sign} "
        f"(fitted {c:.6g}).",
        hint,
        factor=c,
    )


def _permutations(shape: tuple[int, ...]) -> list[tuple[str, np.ndarray]]:
    """Flat index maps p with g_flat ≈ n_flat[p] for a transposed or misread (reshaped) matrix."""
    if len(shape) != 2 or 1 in shape:
        return []
    a, b = shape
    if a == b:
        return [("transposed", np.arange(a * b).reshape(a, b).T.ravel())]
    # The right (b, a) gradient, i.e. n.T, computed and then reshaped to (a, b) in C order.
    return [("transposed and reshaped to fit", np.arange(a * b).reshape(a, b).T.ravel())]


def _mapped(e: Evidence, maps: list[tuple[str, np.ndarray]]) -> str | None:
    """How the first flat index map p with g ≈ n[p] reads the gradient, or None."""
    if not maps:
        return None
    c = e.component
    n_full = np.asarray(c.numeric_array, dtype=np.float64).ravel()
    g = np.asarray(c.analytic_array, dtype=np.float64).ravel()
    bound = np.asarray(c.bound_array, dtype=np.float64).ravel()
    for how, p in maps:
        both = e.mask & e.mask[p]  # entries checked at both ends of the map
        if both.sum() < MIN_FIT:
            continue
        sub = dataclasses.replace(e, mask=both, n=n_full[both], g=g[both], bound=bound[both])
        if sub.explains(g[both] - n_full[p][both]):
            return how
    return None


def _transposed(e: Evidence) -> Finding | None:
    c = e.component
    how = _mapped(e, _permutations(c.shape))
    if how is None:
        return None
    return Finding(
        c.name, "transposed",
        f"d{c.name} matches the numeric gradient {how}.",
        f"Compute d{c.name} as a_prev.T @ delta (shape {c.shape}), not delta.T @ a_prev, "
        "and do not reshape a transposed result.",
    )


def _transposed_data_term(e: Evidence) -> Finding | None:
    """g ≈ P(n − k·θ) + k·θ: the data term transposed (or misread), the L2 term k·θ right."""
    c = e.component
    n_full = np.asarray(c.numeric_array, dtype=np.float64).ravel()
    theta = np.asarray(c.value_array, dtype=np.float64).ravel()
    g = np.asarray(c.analytic_array, dtype=np.float64).ravel()
    bound = np.asarray(c.bound_array, dtype=np.float64).ravel()
    for how, p in _permutations(c.shape):
        both = e.mask & e.mask[p]
        if both.sum() < MIN_FIT + 1:
            continue
        k = fit((g - n_full[p])[both], (theta - theta[p])[both])
        if k == 0.0:
            continue
        sub = dataclasses.replace(e, mask=both, n=n_full[both], g=g[both], bound=bound[both])
        if sub.explains((g - n_full[p] - k * (theta - theta[p]))[both]):
            return Finding(
                c.name, "transposed",
                f"the data term of d{c.name} is {how}; its L2 term {fmt(k)}·{c.name} is right "
                f"(analytic ≈ (numeric − {fmt(k)}·{c.name}) {how} + {fmt(k)}·{c.name}).",
                f"Compute the data term as a_prev.T @ delta (shape {c.shape}) before adding the "
                "penalty's derivative.",
                factor=k,
            )
    return None


def _flip_maps(shape: tuple[int, ...]) -> list[tuple[str, np.ndarray]]:
    """Flat index maps of a kernel (3-D or more) read the wrong way round: an axis reversed,
    the last two (spatial) axes both reversed (convolution instead of correlation), or the last
    two axes exchanged."""
    if len(shape) < 3:
        return []
    index = np.arange(int(np.prod(shape))).reshape(shape)
    maps: list[tuple[str, np.ndarray]] = []
    if shape[-1] > 1 and shape[-2] > 1:
        maps.append(("rotated by 180° in its last two axes (convolution instead of "
                     "cross-correlation)", index[..., ::-1, ::-1].ravel()))
        if shape[-1] == shape[-2]:
            maps.append(("with its last two (spatial) axes exchanged",
                         np.swapaxes(index, -1, -2).ravel()))
    for axis, size in enumerate(shape):
        if size > 1:
            flip = [slice(None)] * len(shape)
            flip[axis] = slice(None, None, -1)
            maps.append((f"reversed along axis {axis}", index[tuple(flip)].ravel()))
    return maps


def _flipped(e: Evidence) -> Finding | None:
    c = e.component
    how = _mapped(e, _flip_maps(c.shape))
    if how is None:
        return None
    return Finding(
        c.name, "flipped",
        f"d{c.name} matches the numeric gradient {how}.",
        "Accumulate the kernel gradient with the same index order as the forward pass "
        "(dK[o, c, i, j] += delta[o, x, y] · input[c, x + i, y + j]); a flipped or "
        "transposed kernel gradient comes from convolving where the forward correlates.",
    )


def _data_term_missing(e: Evidence) -> Finding | None:
    """g ≈ k·θ: the gradient is only its L2 term, the data term (n − k·θ) is left out."""
    k = fit(e.g, e.theta)
    if k == 0.0 or not np.any(e.n - k * e.theta) or not e.explains(e.g - k * e.theta):
        return None
    return Finding(
        e.name, "data term",
        f"d{e.name} is only the L2 term {fmt(k)}·{e.name}: the data term (the part that comes "
        "from backprop, numeric − penalty) is missing.",
        f"Add a_prev.T @ delta to d{e.name}: the penalty's derivative alone is not the gradient.",
        factor=k,
    )


def _regularization(e: Evidence) -> Finding | None:
    r = e.n - e.g  # what the analytic gradient lacks
    for basis, what in ((e.theta, "L2"), (np.sign(e.theta), "L1")):
        k = fit(r, basis)
        if k == 0.0 or not e.explains(r - k * basis):
            continue
        term = f"{fmt(abs(k))}·{e.name}" if what == "L2" else f"{fmt(abs(k))}·sign({e.name})"
        if k > 0:
            detail = (f"numeric − analytic ≈ k·{'θ' if what == 'L2' else 'sign(θ)'} with k = "
                      f"{fmt(k)}: d{e.name} lacks the {what} term {term}")
            detail += f" (λ/m = {fmt(k)})." if what == "L2" else " (λ/m = " + fmt(k) + ")."
            hint = f"Add the derivative of the {what} penalty to d{e.name}, with the same λ/m " \
                   "the loss uses."
        else:
            detail = (f"analytic − numeric ≈ {term}: d{e.name} carries an {what} term the loss "
                      f"does not have, or one {fmt(abs(k))} too large.")
            hint = ("If this is a bias (or any unpenalised parameter), drop the penalty from its "
                    "gradient; otherwise match λ and 1/m to the loss.")
        return Finding(e.name, "regularization", detail, hint, factor=k)
    return None


def _scaled_data_term(e: Evidence) -> Finding | None:
    """g ≈ c·n + k·θ: the data part of the gradient is scaled (or flipped), the L2 part is not.

    With an L2 term λ/m·θ that is right, a missing 1/m or a flipped sign on the data term alone
    leaves g = c·(n − λ/m·θ) + λ/m·θ, which is no pure scale of n.
    """
    basis = np.stack([e.n, e.theta], axis=1)
    if basis.shape[0] < 3:
        return None
    (c, k), *_ = np.linalg.lstsq(basis, e.g, rcond=None)
    # c ≈ 0 is no scaled data term but a missing one (zero, or localized where it is partial).
    if abs(c - 1.0) < 1e-2 or abs(c) < 1e-3:
        return None
    if not e.explains(e.g - basis @ (c, k), slack=max(1.0, abs(c))):
        return None
    if abs(c + 1.0) <= 0.05:
        return Finding(
            e.name, "sign",
            f"the data term of d{e.name} has the wrong sign (its regularization term is right): "
            "analytic ≈ −(numeric − penalty) + penalty.",
            "Look for a flipped sign (y − a instead of a − y) in this layer's delta.",
            factor=-1.0,
        )
    # The conditional "if your batch size is k" only when no batch size was given (a given m
    # that is not k says the factor is something else).
    named = _factor_name(abs(c), e.batch_size) or (
        _whole_number(abs(c)) if e.batch_size is None else None)
    shown, hint = named or (fmt(abs(c)), "A constant factor on the data term only.")
    return Finding(
        e.name, "scale",
        f"the data term of d{e.name} is off by a constant factor {shown} (fitted {c:.6g}); its "
        "regularization term is right.",
        hint,
        factor=float(c),
    )


def _runs(values: np.ndarray) -> str:
    return ", ".join(str(int(v)) for v in values[:8]) + (" …" if len(values) > 8 else "")


def _lines(c: Component, bad: np.ndarray, checked: np.ndarray) -> Finding | None:
    """Whole rows or columns of a matrix wrong (most of each), the rest right."""
    g = np.asarray(c.analytic_array, dtype=np.float64)
    for axis, word in ((1, "row"), (0, "column")):
        lines = np.flatnonzero(bad.any(axis=axis))
        dense = np.take(bad, lines, axis=1 - axis).sum(axis=axis) >= 0.5 * np.take(
            checked, lines, axis=1 - axis).sum(axis=axis)
        if len(lines) > CONCENTRATED * bad.shape[1 - axis] or not dense.all():
            continue
        zero = not np.any(np.take(g, lines, axis=1 - axis))
        plural = len(lines) > 1
        what = f"{word}{'s' if plural else ''} {_runs(lines)} of d{c.name}"
        where = tuple((word, int(i)) for i in lines)
        k = None if zero else _penalised_lines(c, lines, axis)
        if k is not None:
            return Finding(
                c.name, "regularization",
                f"only {what} {'are' if plural else 'is'} wrong, by {fmt(k)}·{c.name} on "
                f"{'those lines' if plural else 'that line'}: an L2 term the loss does not "
                "have there (a bias column or row regularised?).",
                f"Leave {'those lines' if plural else 'that line'} out of the penalty's gradient, "
                "as the loss does (Ng's ex4 penalises Theta(:, 2:end) only, not the bias "
                "column).", factor=k, where=where,
            )
        state = "left at 0" if zero else "wrong; the rest of the tensor is right"
        hint = ("A loop that stops one short, or an index that skips it?" if zero else
                "Look at the loop or indexing that fills those lines of the gradient.")
        return Finding(
            c.name, "localized", f"only {what} {'are' if plural else 'is'} {state}.", hint,
            where=where,
        )
    return None


def _penalised_lines(c: Component, lines: np.ndarray, axis: int) -> float | None:
    """k > 0 when analytic − numeric on the wrong lines is k·θ there (an L2 term too many)."""
    if c.value_array is None or c.bound_array is None:
        return None
    take = [np.take(np.asarray(a, dtype=np.float64), lines, axis=1 - axis).ravel()
            for a in (c.analytic_array, c.numeric_array, c.value_array, c.bound_array)]
    g, n, theta, bound = take
    seen = np.isfinite(n)
    if seen.sum() < 2:
        return None
    r = g[seen] - n[seen]
    k = fit(r, theta[seen])
    ok = k > 0 and bool(np.all(np.abs(r - k * theta[seen]) <= np.maximum(bound[seen], 0)))
    return k if ok else None


def _localized(e: Evidence) -> Finding | None:
    c = e.component
    bad = np.asarray(c.flags) == MISMATCH
    checked = np.isin(np.asarray(c.flags), (AGREES, MISMATCH))
    count = int(bad.sum())
    if count == 0 or count > CONCENTRATED * checked.sum():
        return None
    if bad.ndim == 2 and count > 1 and min(bad.shape) > 1:
        found = _lines(c, bad, checked)
        if found is not None:
            return found
    if count > ENTRIES:
        return None
    where = tuple(tuple(int(i) for i in w) for w in np.argwhere(bad))
    shown = ", ".join(index_text(c.name, w) for w in where)
    zero = not np.any(np.asarray(c.analytic_array)[bad])
    return Finding(
        c.name, "localized",
        f"only {count} entr{'y' if count == 1 else 'ies'} of d{c.name} {'is' if count == 1 else 'are'}"
        f" wrong: {shown}{' (left at 0)' if zero else ''}.",
        "Look at the special case that fills that entry (a boundary, a padding index, an "
        "off-by-one).",
        where=where,
    )


def _unexplained(e: Evidence) -> Finding:
    c = e.component
    worst = c.worst_entries(3)
    shown = "; ".join(
        f"{index_text(c.name, i)}: numeric {fmt(n)}, analytic {fmt(g)}" for i, n, g in worst
    )
    return Finding(
        c.name, "unexplained",
        f"d{c.name} is wrong in {c.mismatches} of {c.checked} entries with no simple relation "
        f"to the right gradient (worst: {shown}).",
        unexplained_hint(c.name, c.shape),
        where=tuple(i for i, _, _ in worst),
    )


NORMALISATION = ("gamma", "beta", "scale", "shift", "norm", "bn", "ln")
EMBEDDING = ("emb", "embed", "embedding", "lookup", "token", "vocab")


def unexplained_hint(name: str, shape: tuple[int, ...]) -> str:
    """A hint that fits the tensor: a kernel, a normalisation scale/shift, an embedding, a layer."""
    low = name.lower()
    words = [w for w in re.split(r"[^a-z]+", low) if w]
    if len(shape) >= 3:
        return (
            f"{name} looks like a convolution kernel {shape}: check that the kernel gradient "
            "sums over every output position and batch entry, uses the same padding, stride and "
            "index order as the forward pass, and that the input windows are the ones the "
            "forward pass saw."
        )
    if len(shape) == 1 and (any(w in NORMALISATION for w in words) or low in ("g", "b_norm")):
        return (
            f"{name} looks like a normalisation scale or shift: dgamma = Σ dout · x̂ (the "
            "normalised input, not z), dbeta = Σ dout, both summed over the batch (and the "
            "spatial axes for batch norm on images); the input gradient needs the mean and "
            "variance terms."
        )
    if len(shape) == 2 and (any(w in EMBEDDING for w in words) or low == "e"):
        return (
            f"{name} looks like an embedding table: rows of repeated tokens must accumulate "
            "(np.add.at(dE, tokens, dx)), not be assigned (dE[tokens] = dx), and padding rows "
            "get no gradient only if the forward pass ignores them."
        )
    return (
        "Step through this layer's backward pass: the derivative of the activation at the "
        "pre-activation z (not at a = f(z)), the right layer's cache, fresh activations."
    )


@dataclass(frozen=True)
class Signature:
    """A kind, its test, and how many constants the test fits to the data (c, k, …)."""

    kind: str
    match: Callable[[Evidence], Finding | None]
    fitted: int = 0

    def applies(self, e: Evidence) -> bool:
        """A relation with p fitted constants is evidence only on more than p + 1 entries."""
        return e.n.size >= self.fitted + 2


# Order matters: the first that fits names the kind (a sign flip is a scale of −1 too).
SIGNATURES: tuple[Signature, ...] = (
    Signature("independent", _independent),  # before "zero": n = 0 is no gradient to miss
    Signature("zero", _zero),
    Signature("sign", _sign),
    Signature("scale", _scale, fitted=1),
    Signature("transposed", _transposed),
    Signature("flipped", _flipped),
    Signature("transposed", _transposed_data_term, fitted=1),
    Signature("regularization", _regularization, fitted=1),
    Signature("data term", _data_term_missing, fitted=1),
    Signature("scale", _scaled_data_term, fitted=2),
    Signature("localized", _localized),
)


def swapped(a: Evidence, b: Evidence) -> bool:
    """Whether the analytic gradients of a and b are each other's numeric gradients."""
    if a.component.shape != b.component.shape or a.n.shape != b.n.shape:
        return False
    if not (np.array_equal(a.mask, b.mask)):
        return False
    return a.explains(a.g - b.n) and b.explains(b.g - a.n)


def swapped_finding(a: str, b: str) -> Finding:
    return Finding(
        a, "swapped",
        f"d{a} and d{b} are exchanged: the analytic d{a} is the numeric d{b} and vice versa.",
        f"Check the names or the order in which the gradients are returned ({a} ↔ {b}).",
        where=(b,),
    )


# --- across tensors: a wrong output delta ---------------------------------------------------
#
# Backprop only carries an error towards the input. The last layer's gradients are built from
# its input a_{L−1} and its delta δ_L = dJ/dz_L alone (dW_L = a_{L−1}ᵀδ_L, db_L = Σ δ_L), and
# every earlier layer's from δ_L carried back through W_Lᵀ. So an error that shows in the last
# layer comes from that layer's backward pass: either its own dW / db formula, which is a
# relation of that tensor alone (a scale, a sign, a transpose, an L2 term …) and stays there,
# or δ_L, which also reaches every tensor of every layer before it. When the last layer is wrong
# with no relation of its own and so is every tensor of every earlier layer, one mistake
# explains all of it: the output delta. Not this kind: a hidden layer's wrong f′ (the output
# layer is right: the origin is that hidden layer), the same factor or sign everywhere ("scale",
# "sign": the delta is off by that factor, which those kinds say more precisely), the same
# per-tensor mistake in every dW (the biases, which that formula does not touch, stay right).

NO_RELATION = ("unexplained", "localized")  # kinds with no relation of the tensor's own
ONE_CONSTANT = ("scale", "sign")  # what fewer than MIN_FIT entries fit whatever the mistake


def exact(e: Evidence, kind: str) -> bool:
    """Whether a signature of that kind fits within the check's own tolerance (the first pass).

    A per-tensor factor or sign is exact: what it leaves is the numerical error of n. One that
    only explains all but ``EXPLAINED`` of the error (the second pass) is an approximation,
    e.g. a delta times σ′(z) where σ′ hardly varies.
    """
    strict = dataclasses.replace(e, strict=True)
    for signature in SIGNATURES:
        if signature.applies(e):
            found = signature.match(strict)
            if found is not None and found.kind == kind:
                return True
    return False


def own_relation(e: Evidence, finding: Finding, established: bool = False) -> bool:
    """Whether a suspect's finding is a mistake of that tensor's own (which backprop does not
    carry): any kind but "unexplained" / "localized", except a scale or sign that fits only
    approximately or on fewer than ``MIN_FIT`` entries. ``established``: a re-check confirmed it.
    """
    if established:
        return True
    if finding.kind in NO_RELATION:
        return False
    if finding.kind in ONE_CONSTANT:
        return e.n.size >= MIN_FIT and exact(e, finding.kind)
    return True


def layer_chain(
    components: Mapping[str, Component], layers: Sequence[str] | None
) -> list[list[str]]:
    """Parameters from input to output, grouped into layers (``_same_layer``: W2 and b2).

    The order is ``layers=`` if given, else the layer numbers in the names when every name has
    one (as ``likely_origin``), else insertion order. A tensor with no checked entry, or one J
    does not depend on (every numeric entry 0), is no link of the chain and is left out.
    """
    names = list(components)
    keys = layer_keys({n: components[n].shape for n in names})
    if layers is not None:
        order = [n for n in dict.fromkeys(layers) if n in components]
    elif all(k is not None for k in keys.values()):
        order = sorted(names, key=lambda n: keys[n])  # stable: ties keep insertion order
    else:
        order = names
    groups: list[list[str]] = []
    for name in order:
        e = evidence(components[name])
        if not e.n.size or not np.any(e.n):
            continue
        previous = groups[-1][-1] if groups else None
        if previous is not None and _same_layer(name, previous, keys):
            groups[-1].append(name)
        else:
            groups.append([name])
    return groups


def _same_layer(a: str, b: str, keys: Mapping[str, tuple[int, ...] | None]) -> bool:
    """One layer: the same layer number (W2, b2) or the same module (fc.weight, fc.bias)."""
    if keys[a] is not None and keys[a] == keys[b]:
        return True
    return "." in a and a.rsplit(".", 1)[0] == b.rsplit(".", 1)[0]


def output_delta(
    components: Mapping[str, Component],
    findings: Mapping[str, Finding],
    layers: Sequence[str] | None,
    established: frozenset[str] = frozenset(),
) -> dict[str, Finding]:
    """"delta" findings for every suspect when the error starts at the output delta, else {}.

    ``findings`` are the per-tensor findings of the suspects (after any re-check). The rule:
    the parameters are a network's (``layers=`` given, or a layer with more than one tensor);
    every suspect is a link of the chain; the last layer has a wrong tensor with at least
    ``MIN_FIT`` checked entries and no relation of its own; every tensor of every earlier
    layer is wrong (with one layer: all of its tensors, at least two); and no wrong tensor has a
    relation of its own (``own_relation``; ``established``: suspects whose kind a re-check
    confirmed).
    """
    wrong = set(findings)
    groups = layer_chain(components, layers)
    if len(wrong) < 2 or not groups or not wrong <= {n for g in groups for n in g}:
        return {}
    # Only a network has an output delta: without layers=, the names must show one (a layer
    # holding a weight and its bias, W2 and b2). input0, input1 of a function are no layers.
    if layers is None and all(len(g) < 2 for g in groups):
        return {}
    *earlier_groups, last = groups
    earlier = [n for g in earlier_groups for n in g]
    if not set(earlier) <= wrong or (not earlier and not set(last) <= wrong):
        return {}
    found = {n: evidence(components[n]) for n in wrong}
    if any(own_relation(found[n], findings[n], n in established) for n in wrong):
        return {}
    last_wrong = [n for n in last if n in wrong]
    if not any(found[n].n.size >= MIN_FIT for n in last_wrong):
        return {}
    last_right = [n for n in last if n not in wrong]
    out = {n: _delta_last(n, findings[n], last_wrong, last_right, earlier, components)
           for n in last_wrong}
    out.update({n: _delta_earlier(n, findings[n], last) for n in earlier})
    return out


DELTA_HINT = (
    "Check the derivative of the loss together with the output activation: softmax + "
    "cross-entropy gives δ_L = (p − y)/m, with no extra softmax Jacobian or σ′ factor; sigmoid + "
    "BCE δ_L = (a − y)/m; a squared error on an activation δ_L = (a − y)·f′(z_L)/m, with f′ at z_L "
    "(not at a_L); y one-hot, in the right class and paired with its own sample; 1/m applied "
    "once; δ_L from this call's forward pass (not a stale cache); and the same δ_L for dW_L, "
    "db_L and the backprop through W_Lᵀ."
)


def _listed(names: list[str], at_most: int = 6) -> str:
    """Names joined with commas, the rest counted ("W1, b1, W2, b2, W3, b3 and 9 more")."""
    shown = ", ".join(names[:at_most])
    return shown if len(names) <= at_most else f"{shown} and {len(names) - at_most} more"


def _delta_last(
    name: str, base: Finding, last_wrong: list[str], last_right: list[str], earlier: list[str],
    components: Mapping[str, Component],
) -> Finding:
    who = _listed(last_wrong)
    if earlier:
        detail = (
            f"d{name} has no relation of its own to the right gradient, and every layer before "
            "it is wrong too: the error starts at the output delta δ_L = dJ/dz_L of the last "
            f"layer ({who} wrong; {_listed(earlier)} wrong as a consequence)."
        )
    else:
        both = "both" if len(last_wrong) == 2 else "all"
        detail = (
            f"{' and '.join('d' + n for n in last_wrong)} are {both} wrong with no relation of "
            f"their own: the mistake is most likely in the output delta δ_L = dJ/dz_L they are "
            f"{both} built from (dW = a_prevᵀδ_L, db = Σ δ_L)."
        )
    if base.kind == "localized":
        detail += f" {base.detail[:1].upper()}{base.detail[1:]}"  # "Only row 7 of dW2 is wrong …"
    for right in last_right:
        if len(components[right].shape) == 1:
            detail += (f" d{right} = Σ δ_L is right, so the error in δ_L sums to zero over the "
                       "batch: are the labels paired with the right samples?")
        else:
            detail += (f" d{right} is right, so it is built from another δ_L than {who} and "
                       "the backprop to earlier layers: compute δ_L once and use it for all.")
    return Finding(name, "delta", detail, DELTA_HINT, where=base.where)


def _delta_earlier(name: str, base: Finding, last: list[str]) -> Finding:
    return Finding(
        name, "delta",
        f"d{name} is wrong because the output delta is: backprop carries δ_L from the last "
        f"layer ({_listed(last)}) into every earlier layer, so d{name} cannot be judged on "
        "its own until δ_L is fixed.",
        f"Fix δ_L first and check again; if d{name} is still wrong, the mistake is in this "
        "layer's own backward pass (the activation derivative at z, not at a = f(z)).",
        where=base.where,
    )


def confirmed(name: str, kind: str, factor: float, batch_size: int | None) -> Finding:
    """A kind established by re-checking the corrected gradient (see ``_diagnose.confirm``)."""
    why = "confirmed by a re-check: the corrected gradient passes"
    if kind == "sign":
        return Finding(name, "sign", f"d{name} has the wrong sign ({why}).",
                       "Look for a flipped sign (y − a instead of a − y) in this layer's delta.",
                       factor=-1.0)
    if kind == "regularization":
        return Finding(name, "regularization",
                       f"d{name} is off by an L2 term {fmt(factor)}·{name} ({why}).",
                       f"Match the penalty's derivative in d{name} to the loss (λ and 1/m).",
                       factor=factor)
    shown, hint = _factor_name(abs(factor), batch_size) or _whole_number(abs(factor)) or (
        fmt(abs(factor)), "A constant factor applied once too often or not at all.")
    return Finding(name, "scale", f"d{name} is off by a constant factor {shown} ({why}).", hint,
                   factor=factor)


def classify_as(e: Evidence, kind: str) -> Finding | None:
    """The finding of the given kind if one of its signatures fits (both passes), else None."""
    for strict in (True, False):
        for signature in SIGNATURES:
            if signature.kind == kind:
                finding = signature.match(dataclasses.replace(e, strict=strict))
                if finding is not None and finding.kind == kind:
                    return finding
    return None


def classify(e: Evidence) -> Finding:
    """The first signature that fits, else "unexplained" with the worst entries.

    A first pass accepts only relations that leave no more than the numerical error (so a
    scale that merely comes close cannot shadow the exact "scale of the data term + L2"); the
    second accepts relations that explain all but ``EXPLAINED`` of the error.
    """
    for strict in (True, False):
        for signature in SIGNATURES:
            if not signature.applies(e):
                continue
            finding = signature.match(dataclasses.replace(e, strict=strict))
            if finding is not None:
                return finding
    return _unexplained(e)

