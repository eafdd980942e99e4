"""The data of a check's result: one ``Component`` per parameter, gathered in ``ReportData``.

Plain frozen data, with its JSON form; the views (text, HTML, Markdown) live in the renderers and
the public ``Report`` (``_report.py``) joins the two.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import Any

import numpy as np

from gradcheck.report import _figures
from gradcheck.report._format import version
from gradcheck.report._sentences import Note, NoteCode, as_note

SCHEMA = "gradcheck.report/1"
"""The ``schema`` field of every JSON report (``Report.to_json()``); see docs/report-schema.md.

>>> import json, numpy as np, gradcheck
>>> r = gradcheck.check(lambda p: float((p["w"] ** 2).sum()), {"w": np.ones(2)}, {"w": 2 * np.ones(2)})
>>> json.loads(r.to_json())["schema"] == gradcheck.SCHEMA == "gradcheck.report/1"
True
"""



class EntryState(IntEnum):
    """What the check made of one entry; stored (as int8) in ``Component.flags``."""

    UNCHECKED = 0  # not judged: not selected, interrupted, or left by the budget
    AGREES = 1  # the analytic value agrees with the finite differences
    MISMATCH = 2  # it does not: judged wrong
    KINK = 3  # J has a kink there and the analytic value is a valid subgradient

    # NumPy asks an operand's type for these on every call (``flags == MISMATCH``,
    # ``np.where(..., KINK, ...)``); on Python 3.11 a missing one goes through ``EnumType``'s
    # Python ``__getattr__`` (3-4 µs a call). ndarray's own are what NumPy reads as "no
    # override", as for a plain int: the same results, without the lookup.
    __array_ufunc__ = np.ndarray.__array_ufunc__
    __array_function__ = np.ndarray.__array_function__


UNCHECKED, AGREES, MISMATCH, KINK = EntryState

# The states as plain ints, for NumPy operations on the int8 flags in the engine's hot paths:
# the same values, and an int operand still costs NumPy less than a member (about 0.6 against
# 1.0 µs a comparison, with the array protocols above).
UNCHECKED_INT, AGREES_INT, MISMATCH_INT, KINK_INT = (int(s) for s in EntryState)


def entry_states(agrees: Any, kink: Any = None) -> np.ndarray:
    """The one rule for a judged entry's state: AGREES where it agrees; otherwise KINK where
    J has a kink whose slopes hold the analytic value (``kink``), else MISMATCH.

    >>> entry_states(np.array([True, False, False]), np.array([False, True, False]))
    array([1, 3, 2])
    """
    wrong = MISMATCH_INT if kink is None else np.where(kink, KINK_INT, MISMATCH_INT)
    return np.where(agrees, AGREES_INT, wrong)


def verdict(
    parts: Iterable[bool | None] = (),
    *,
    mismatches: int = 0,
    unjudged: int = 0,
    interrupted: bool = False,
    judged: bool = True,
) -> bool | None:
    """The one rule for a verdict: passed (True), failed (False) or incomplete (None).

    Failed when an entry is judged wrong (``mismatches``) or a part (a component of a report,
    a report of a merge) failed; else incomplete when entries are left unjudged, the check was
    interrupted, nothing was judged at all, or a part is incomplete; else passed.

    >>> verdict(mismatches=0, unjudged=0), verdict(mismatches=2), verdict(unjudged=5)
    (True, False, None)
    >>> verdict([True, None]), verdict([None, False]), verdict([True], judged=False)
    (None, False, None)
    """
    parts = list(parts)
    if mismatches or any(p is False for p in parts):  # identity: np.False_ is no part
        return False
    if unjudged or interrupted or not judged or None in parts:
        return None
    return True


def entry_figures(
    numeric: np.ndarray, analytic: np.ndarray, bound: np.ndarray, flags: np.ndarray,
    shape: tuple[int, ...],
) -> dict[str, Any]:
    """A component's summary figures from its entries: the worst judged entry (largest
    |numeric − analytic| over its bound) and the counts of entries checked and skipped.

    >>> f = entry_figures(np.array([1.0, 2.5]), np.array([1.0, 2.0]), np.array([0.1, 0.1]),
    ...                   np.array([AGREES, MISMATCH]), (2,))
    >>> f["worst_index"], f["max_abs_error"], f["checked"], f["skipped"]
    ((1,), 0.5, 2, 0)
    """
    flat = _figures.flat
    flags = flat(flags)
    checked = (flags == AGREES) | (flags == MISMATCH)
    return _figures.checked_figures(flat(numeric), flat(analytic), flat(bound), checked, shape)


# The textbook reading of the relative error (deeplearning.ai, "Gradient checking", eps = 1e-7).
_TEXTBOOK = ((1e-6, "great"), (1e-4, "look closely"), (math.inf, "worry"))


def textbook_verdict(relative_error: float | None) -> str:
    """The textbook's reading of a relative error.

    Below 1e-6 "great", up to 1e-4 "look closely", above that "worry"; "not checked" when no
    entry was checked (the ratio is None). ``Report.passed`` never depends on it.

    Args:
      relative_error: the textbook ratio ‖n − g‖₂ / (‖n‖₂ + ‖g‖₂), or None.

    Returns:
      "great", "look closely", "worry" or "not checked".

    >>> textbook_verdict(3e-8), textbook_verdict(1e-5), textbook_verdict(2e-3)
    ('great', 'look closely', 'worry')
    """
    if relative_error is None:
        return "not checked"
    if not math.isfinite(relative_error):
        return "worry"
    return next(word for bound, word in _TEXTBOOK if relative_error < bound)


def relative_error(numeric: np.ndarray, analytic: np.ndarray) -> float:
    """‖n − g‖₂ / (‖n‖₂ + ‖g‖₂), and 0.0 when both are exactly zero.

    Args:
      numeric: the finite-difference gradient n (any shape).
      analytic: the analytic gradient g (as many entries).

    Returns:
      The textbook ratio, a float in [0, 1] (read it with ``textbook_verdict``).

    >>> relative_error(np.array([3.0001]), np.array([3.0]))  # doctest: +ELLIPSIS
    1.66...e-05
    """
    n, g = _figures.float64(numeric), _figures.float64(analytic)
    norm = _figures.norm
    denominator = norm(n) + norm(g)
    return 0.0 if denominator == 0.0 else norm(n - g) / denominator


@dataclass(frozen=True)
class Component:
    """The verdict on one parameter tensor (one row of the report table).

    ``numeric_array``, ``analytic_array``, ``bound_array`` and ``flags`` hold the per-entry data
    (shape of the parameter; NaN / ``UNCHECKED`` where an entry was not checked). ``bound_array``
    is the tolerance each entry was judged against. ``flags`` uses ``AGREES``, ``MISMATCH`` and
    ``KINK`` (a kink where the analytic value is a valid subgradient, skipped).

    Attributes:
      name, shape: the parameter's name (as in the report) and shape.
      relative_error: the textbook ratio over its checked entries (None: none checked).
      max_abs_error: the largest |numeric − analytic|, at ``worst_index``, whose ``numeric``,
        ``analytic`` and ``tolerance`` are the next three fields.
      checked, skipped, mismatches, unjudged: entries compared, skipped as kinks, judged wrong,
        and left without a verdict (interrupted, or a budget spent).
      passed: True, False, or None (nothing wrong so far, but entries unjudged).
      eps, noise: the step used and the measured noise of J.
      dtype: the user's tensor's dtype ("float32" for a float32 torch tensor, whatever was
        evaluated).
      evaluated_dtype: the dtype the check evaluated it in: the copies ``gradcheck.check``
        hands the loss ("float64"), or the dtype an adapter ran the function and its gradient
        in ("float64" copies of a float32 tensor under ``precision="auto"``, "float32" under
        ``precision="native"``); None where not recorded.

    >>> import numpy as np, gradcheck
    >>> r = gradcheck.check(lambda p: float((p["w"] ** 2).sum()), {"w": np.ones(3)}, {"w": np.ones(3)})
    >>> c = r.components["w"]
    >>> c.passed, c.checked, c.mismatches, c.worst_entries(1)[0][0]
    (False, 3, 3, (0,))
    """

    name: str
    shape: tuple[int, ...]
    relative_error: float | None
    max_abs_error: float
    worst_index: tuple[int, ...]
    numeric: float
    analytic: float
    tolerance: float
    checked: int
    skipped: int
    passed: bool | None  # None: nothing wrong so far, but entries left unjudged (interrupted,
    # or first-pass mismatches a budget left without their second opinion)
    eps: float = math.nan
    noise: float = math.nan
    dtype: str = "float64"
    mismatches: int = 0
    unjudged: int = 0  # entries an interruption or the budget left without a verdict (neither ok nor wrong)
    value_array: np.ndarray = field(default=None, repr=False, compare=False)  # type: ignore[assignment]
    numeric_array: np.ndarray = field(default=None, repr=False, compare=False)  # type: ignore[assignment]
    analytic_array: np.ndarray = field(default=None, repr=False, compare=False)  # type: ignore[assignment]
    bound_array: np.ndarray = field(default=None, repr=False, compare=False)  # type: ignore[assignment]
    flags: np.ndarray = field(default=None, repr=False, compare=False)  # type: ignore[assignment]
    evaluated_dtype: str | None = None

    def worst_entries(self, k: int = 5) -> list[tuple[tuple[int, ...], float, float]]:
        """Up to ``k`` failing entries, most significant first: (index, numeric, analytic)."""
        if self.flags is None:
            return []
        bad = np.flatnonzero(self.flags.ravel() == MISMATCH)
        n, g = self.numeric_array.ravel(), self.analytic_array.ravel()
        excess = np.abs(n[bad] - g[bad]) / np.maximum(self.bound_array.ravel()[bad], 1e-300)
        order = bad[np.argsort(-excess, kind="stable")][:k]
        return [(_unravel(i, self.shape), float(n[i]), float(g[i])) for i in order]

    def to_dict(self) -> dict[str, Any]:
        return {
            "shape": list(self.shape),
            "dtype": self.dtype,
            "evaluated_dtype": self.evaluated_dtype,
            "passed": self.passed,
            "relative_error": _num(self.relative_error),
            "max_abs_error": _num(self.max_abs_error),
            "worst_index": list(self.worst_index),
            "numeric": _num(self.numeric),
            "analytic": _num(self.analytic),
            "tolerance": _num(self.tolerance),
            "checked": self.checked,
            "skipped": self.skipped,
            "mismatches": self.mismatches,
            "unjudged": self.unjudged,
            "eps": _num(self.eps),
            "noise": _num(self.noise),
            "worst_entries": [
                {"index": list(i), "numeric": _num(n), "analytic": _num(g)}
                for i, n, g in self.worst_entries(10)
            ],
        }


class FindingKind(StrEnum):
    """The kind of a ``Finding``: a str, so ``finding.kind == "sign"`` holds and the JSON keeps
    the plain value; ``repr`` is the value's, so a list of kinds prints as it always did.

    >>> FindingKind("sign") == "sign", FindingKind.DATA_TERM.value
    (True, 'data term')
    """

    INDEPENDENT = "independent"  # J does not depend on the tensor, the gradient is not 0
    ZERO = "zero"  # the gradient is all zeros, J does depend on it
    SIGN = "sign"  # analytic ≈ −numeric (also on the data term alone)
    SCALE = "scale"  # analytic ≈ c·numeric (also on the data term alone)
    TRANSPOSED = "transposed"  # a transposed (or misread) matrix, or its data term
    FLIPPED = "flipped"  # a kernel read the wrong way round
    SWAPPED = "swapped"  # two tensors' gradients exchanged
    REGULARIZATION = "regularization"  # an L2 / L1 term missing, extra or mis-scaled
    DATA_TERM = "data term"  # the gradient is only its L2 term
    LOCALIZED = "localized"  # a few rows, columns or entries wrong
    UNEXPLAINED = "unexplained"  # no relation of the table fits
    DELTA = "delta"  # the error starts at the output delta
    CONJUGATED = "conjugated"  # complex: the conjugate of the right gradient (adapters)
    # the kinds of a low-precision kernel's failed blocks (``check_against``)
    BLOCKS = "blocks"
    NON_FINITE = "non-finite"
    SOFTMAX_SCALE = "softmax scale"
    PERMUTED = "permuted"
    MISSING_TERM = "missing term"
    ACCUMULATION = "accumulation"

    def __repr__(self) -> str:
        return repr(self.value)

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Finding:
    """What kind of mistake a suspect gradient looks like (see ``gradcheck.diagnose``).

    Args:
      param: the suspect's name.
      kind: a ``FindingKind`` (a plain string is converted).
      detail: what was observed, in a sentence.
      hint: where to look, worded from that evidence (a guess says so).
      factor: the fitted constant of the relation, where it has one.
      where: the entries, rows or columns it concerns, or the other tensor of a swap.

    >>> f = Finding("W1", "scale", "dW1 is off by 2.", "A factor of 2.", factor=2.0)
    >>> f.kind is FindingKind.SCALE, f.to_dict()["kind"]
    (True, 'scale')
    """

    param: str
    kind: FindingKind
    detail: str
    hint: str
    factor: float | None = None
    where: tuple[Any, ...] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", FindingKind(self.kind))

    def to_dict(self) -> dict[str, Any]:
        """The finding as JSON-ready values (``kind`` as its plain string)."""
        return {
            "param": self.param,
            "kind": self.kind.value,
            "detail": self.detail,
            "hint": self.hint,
            "factor": None if self.factor is None else _num(self.factor),
            "where": None if self.where is None else [_jsonable(w) for w in self.where],
        }


@dataclass(frozen=True)
class ReportData:
    """The fields of a check's result and their JSON form (``Report`` adds the views).

    ``relative_error`` is the textbook ‖n − g‖₂ / (‖n‖₂ + ‖g‖₂) over every checked coordinate
    (kinks included), None when nothing was checked; ``passed`` is our noise-aware verdict,
    which does not depend on that ratio: True, False, or None when an interruption (or a budget
    spent before their second opinion) left entries unjudged and none judged so far is wrong
    (``verdict`` is then "incomplete").
    """

    passed: bool | None
    relative_error: float | None
    evaluations: int
    eps: dict[str, float]
    scheme: str
    components: dict[str, Component]
    suspects: tuple[str, ...]
    notes: tuple[Note, ...]  # plain strings given here become NoteCode.TEXT notes
    findings: tuple[Finding, ...] = ()
    origin: str | None = None
    interrupted: bool = False
    seconds: float = 0.0
    options: dict[str, Any] | None = None  # seed, eps, scheme, rtol, atol, coords, budget
    # ``layers=`` as given (input to output), so that the views say where a bug starts only from
    # a declared or inferred order, never from argument order. Not in the JSON: ``origin`` is.
    layers: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if not all(isinstance(n, Note) for n in self.notes):
            object.__setattr__(self, "notes", tuple(as_note(n) for n in self.notes))

    @property
    def note_codes(self) -> tuple[NoteCode, ...]:
        """The code of each note, in order: what code and tests compare (never the wording)."""
        return tuple(n.code for n in self.notes)

    @property
    def verdict(self) -> str:
        """"passed", "failed" or "incomplete" (interrupted, or a budget spent, before every
        entry was judged)."""
        return {True: "passed", False: "failed", None: "incomplete"}[self.passed]

    @property
    def textbook_verdict(self) -> str:
        """"great" (< 1e-6), "look closely" (≤ 1e-4) or "worry" (> 1e-4)."""
        return textbook_verdict(self.relative_error)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict following the ``gradcheck.report/1`` schema (see README)."""
        return {
            "schema": SCHEMA,
            "passed": self.passed,
            "verdict": self.verdict,
            "relative_error": _num(self.relative_error),
            "textbook_verdict": self.textbook_verdict,
            "evaluations": self.evaluations,
            "scheme": self.scheme,
            "eps": {k: _num(v) for k, v in self.eps.items()},
            "suspects": list(self.suspects),
            "origin": self.origin,
            "interrupted": self.interrupted,
            "seconds": _num(self.seconds),
            "notes": [str(n) for n in self.notes],
            "note_codes": [n.code.value for n in self.notes],
            "findings": [f.to_dict() for f in self.findings],
            "components": {name: c.to_dict() for name, c in self.components.items()},
            "gradcheck_version": version(),
            **self._options_dict(),
        }

    def _options_dict(self) -> dict[str, Any]:
        """``seed`` and ``options`` (without the seed), where the check recorded them."""
        if self.options is None:
            return {}
        rest = {k: v for k, v in self.options.items() if k != "seed"}
        return {"seed": self.options.get("seed"), "options": rest}

    def to_json(self, indent: int | None = 2) -> str:
        """``to_dict()`` as JSON text (NaN and Inf become null)."""
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)


def _unravel(flat: int, shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(int(i) for i in np.unravel_index(int(flat), shape)) if shape else ()


def _num(x: float | None) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _jsonable(x: Any) -> Any:
    if isinstance(x, tuple | list):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.generic):
        return x.item()
    return x
