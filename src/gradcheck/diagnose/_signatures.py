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
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from gradcheck.diagnose._evidence import MIN_FIT, ZERO, Evidence, fit
from gradcheck.diagnose._hints import factor_name, whole_number
from gradcheck.diagnose._localized import localized, unexplained
from gradcheck.report._format import fmt
from gradcheck.report._model import Finding, FindingKind

# --- signatures: each returns a Finding when it fits, else None ------------------------------


def _zero(e: Evidence) -> Finding | None:
    # The whole analytic tensor, not only the checked entries: a sampled or bisected check
    # may have compared just the entries that happen to be zero.
    whole = np.asarray(e.component.analytic_array, dtype=np.float64)
    if np.linalg.norm(whole) > ZERO * np.linalg.norm(e.n) or not np.any(e.n):
        return None
    return Finding(
        e.name, FindingKind.ZERO,
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
        e.name, FindingKind.INDEPENDENT,
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
        e.name, FindingKind.SIGN,
        f"d{e.name} has the wrong sign: analytic ≈ −1 × numeric.",
        "Look for a flipped sign (y − a instead of a − y, or += instead of −=) in this layer's "
        "delta.",
        factor=-1.0,
    )



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
    named = factor_name(abs(c), e.batch_size) or (
        whole_number(abs(c)) if e.batch_size is None else None)
    shown, hint = named or (fmt(abs(c)), "A constant factor: look for a learning-rate, 1/m, "
                            "temperature or ½ that is applied once too often or not at all.")
    sign = " with the sign flipped as well" if c < 0 else ""
    return Finding(
        e.name, FindingKind.SCALE,
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
        c.name, FindingKind.TRANSPOSED,
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
                c.name, FindingKind.TRANSPOSED,
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
        c.name, FindingKind.FLIPPED,
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
        e.name, FindingKind.DATA_TERM,
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
        return Finding(e.name, FindingKind.REGULARIZATION, detail, hint, factor=k)
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
            e.name, FindingKind.SIGN,
            f"the data term of d{e.name} has the wrong sign (its regularization term is right): "
            "analytic ≈ −(numeric − penalty) + penalty.",
            "Look for a flipped sign (y − a instead of a − y) in this layer's delta.",
            factor=-1.0,
        )
    # The conditional "if your batch size is k" only when no batch size was given (a given m
    # that is not k says the factor is something else).
    named = factor_name(abs(c), e.batch_size) or (
        whole_number(abs(c)) if e.batch_size is None else None)
    shown, hint = named or (fmt(abs(c)), "A constant factor on the data term only.")
    return Finding(
        e.name, FindingKind.SCALE,
        f"the data term of d{e.name} is off by a constant factor {shown} (fitted {c:.6g}); its "
        "regularization term is right.",
        hint,
        factor=float(c),
    )


@dataclass(frozen=True)
class Signature:
    """A kind, its test, and how many constants the test fits to the data (c, k, …)."""

    kind: FindingKind
    match: Callable[[Evidence], Finding | None]
    fitted: int = 0

    def applies(self, e: Evidence) -> bool:
        """A relation with p fitted constants is evidence only on more than p + 1 entries."""
        return e.n.size >= self.fitted + 2


# Order matters: the first that fits names the kind (a sign flip is a scale of −1 too).
SIGNATURES: tuple[Signature, ...] = (
    Signature(FindingKind.INDEPENDENT, _independent),  # before "zero": n = 0 is no gradient to miss
    Signature(FindingKind.ZERO, _zero),
    Signature(FindingKind.SIGN, _sign),
    Signature(FindingKind.SCALE, _scale, fitted=1),
    Signature(FindingKind.TRANSPOSED, _transposed),
    Signature(FindingKind.FLIPPED, _flipped),
    Signature(FindingKind.TRANSPOSED, _transposed_data_term, fitted=1),
    Signature(FindingKind.REGULARIZATION, _regularization, fitted=1),
    Signature(FindingKind.DATA_TERM, _data_term_missing, fitted=1),
    Signature(FindingKind.SCALE, _scaled_data_term, fitted=2),
    Signature(FindingKind.LOCALIZED, localized),
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
        a, FindingKind.SWAPPED,
        f"d{a} and d{b} are exchanged: the analytic d{a} is the numeric d{b} and vice versa.",
        f"Check the names or the order in which the gradients are returned ({a} ↔ {b}).",
        where=(b,),
    )


NO_RELATION = (FindingKind.UNEXPLAINED, FindingKind.LOCALIZED)  # kinds with no relation of the tensor's own
ONE_CONSTANT = (FindingKind.SCALE, FindingKind.SIGN)  # what fewer than MIN_FIT entries fit whatever the mistake


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



def confirmed(name: str, kind: str, factor: float, batch_size: int | None) -> Finding:
    """A kind established by re-checking the corrected gradient (see ``_diagnose.confirm``)."""
    why = "confirmed by a re-check: the corrected gradient passes"
    if kind == FindingKind.SIGN:
        return Finding(name, FindingKind.SIGN, f"d{name} has the wrong sign ({why}).",
                       "Look for a flipped sign (y − a instead of a − y) in this layer's delta.",
                       factor=-1.0)
    if kind == FindingKind.REGULARIZATION:
        return Finding(name, FindingKind.REGULARIZATION,
                       f"d{name} is off by an L2 term {fmt(factor)}·{name} ({why}).",
                       f"Match the penalty's derivative in d{name} to the loss (λ and 1/m).",
                       factor=factor)
    shown, hint = factor_name(abs(factor), batch_size) or whole_number(abs(factor)) or (
        fmt(abs(factor)), "A constant factor applied once too often or not at all.")
    return Finding(name, FindingKind.SCALE, f"d{name} is off by a constant factor {shown} ({why}).", hint,
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
    return unexplained(e)

