"""The adapter protocol: what each framework implements, and the rules the three share.

A framework adapter (torch, JAX, TensorFlow) implements ``Adapter``: how to find the floating
leaves of an output, view a complex one as real, and form ⟨view, R⟩ in the framework. Everything
else is decided here, once, for all three:

* **the cotangent rule**: output leaf k (in the framework's flattening order, among the floating
  and complex leaves) gets ``R_k = default_rng([seed, k]).standard_normal(shape_k)``, drawn in
  float64 and cast to the output's dtype (a complex output as its real view, a last axis of 2);
* **the objective**: a function whose output is one real scalar is J itself; any other output
  gives J = Σ_k ⟨out_k, R_k⟩ (``loss_fn=`` replaces both);
* **several outputs** (the one convention): one check of that combined J, so a component per
  input; where it fails, each output is checked alone with the same R_k (J = Σ_k J_k) and the
  report names the wrong pair, ``<input> (output k)``: see ``by_output``;
* the labels of outputs, and the note that says which dtype was evaluated.

>>> cotangent(0, 1, (2,)).tolist() == np.random.default_rng([0, 1]).standard_normal(2).tolist()
True
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

from gradcheck._errors import GradCheckError
from gradcheck.frameworks import _shared as _adapters
from gradcheck.report._report import Report
from gradcheck.report._sentences import Note, NoteCode


class Adapter(Protocol):
    """What a framework implements for the shared objective (one small object per framework).

    ``leaves(out)``: the floating and complex leaves of an output, in the framework's order;
    ``is_complex(leaf)``; ``real_view(leaf)``: the leaf as a dense real array (a complex one
    with a last axis of 2; a real one as it is); ``shape(view)``; ``size(leaf)``: its number of
    elements; ``scalar(leaf)``: a one-element real leaf as a 0-d J; ``constant(view, r)``: the
    float64 NumPy ``r`` as a framework array of view's dtype (and device); ``key(view)``: what
    that constant depends on, so it is made once (None: made on every call, e.g. inside a
    graph); ``dot(view, c)``: Σ view·c, a 0-d array; ``entry(view, m)``: the view's flat entry
    m; ``loss(j)``: ``loss_fn``'s J checked to be a scalar.
    """

    def leaves(self, out: Any) -> list[Any]: ...
    def is_complex(self, leaf: Any) -> bool: ...
    def real_view(self, leaf: Any) -> Any: ...
    def shape(self, view: Any) -> tuple[int, ...]: ...
    def size(self, leaf: Any) -> int: ...
    def scalar(self, leaf: Any) -> Any: ...
    def constant(self, view: Any, r: np.ndarray) -> Any: ...
    def key(self, view: Any) -> Any: ...
    def dot(self, view: Any, c: Any) -> Any: ...
    def entry(self, view: Any, m: int) -> Any: ...
    def loss(self, j: Any) -> Any: ...


def cotangent(seed: int, k: int, shape: Sequence[int], real: bool = False) -> np.ndarray:
    """The cotangent of output leaf k: float64 normal draws from ``[seed, k]``. ``real``: a
    complex output's view (last axis 2) gets a zero imaginary part (the conjugation probe).

    >>> cotangent(0, 0, (3, 2), real=True)[:, 1].tolist()
    [0.0, 0.0, 0.0]
    """
    return _drawn(int(seed), int(k), tuple(int(n) for n in shape), bool(real)).copy()


@functools.lru_cache(maxsize=256)
def _drawn(seed: int, k: int, shape: tuple[int, ...], real: bool) -> np.ndarray:
    """``cotangent``'s draws, made once per seed, leaf, shape and kind (a generator costs
    about 17 µs, a copy of its draws 1): read-only here, each caller gets its own copy."""
    r = np.random.default_rng([seed, k]).standard_normal(shape)
    if real:
        r[..., 1] = 0.0
    r.flags.writeable = False
    return r


def output_label(k: int) -> str:
    """How output leaf k is named in a component: ``output k``."""
    return f"output {k}"


class Objective:
    """J from a framework output, by the one rule (see the module docstring).

    ``picks``: the output leaves that enter J (None: all); ``real_cotangent``: complex outputs
    get a real R (the conjugation probe); ``entry``: J is entry m of the one picked leaf (a
    Jacobian row). Cotangents are drawn once and kept, as framework constants, per dtype.
    """

    def __init__(
        self,
        adapter: Adapter,
        seed: int = 0,
        loss_fn: Callable[[Any], Any] | None = None,
        picks: Sequence[int] | None = None,
        real_cotangent: bool = False,
        entry: int | None = None,
    ) -> None:
        self.adapter, self.seed, self.loss_fn = adapter, seed, loss_fn
        self.picks = None if picks is None else tuple(picks)
        self.real_cotangent, self.entry = real_cotangent, entry
        self.cotangents: dict[int, np.ndarray] = {}
        self.constants: dict[tuple[int, Any], Any] = {}

    def __call__(self, out: Any) -> Any:
        a = self.adapter
        if self.loss_fn is not None:
            return a.loss(self.loss_fn(out))
        leaves = a.leaves(out)
        if self.entry is None and whole(a, leaves):
            return a.scalar(leaves[0])
        picks = range(len(leaves)) if self.picks is None else self.picks
        terms = []
        for k in picks:
            view = a.real_view(leaves[k])
            if self.entry is not None:
                return a.entry(view, self.entry)
            terms.append(a.dot(view, self.constant(k, view, a.is_complex(leaves[k]))))
        if not terms:
            raise GradCheckError(
                "fn returned no floating-point output, so there is no gradient to check; "
                "return the tensor (or tuple of tensors) your backward differentiates."
            )
        return sum(terms[1:], terms[0])

    def plain(self) -> bool:
        """Whether J of an output that is one leaf is ⟨leaf, R₀⟩ (or the leaf itself, a real
        scalar): no loss_fn, no entry, and the picks (if any) are that leaf."""
        return self.loss_fn is None and self.entry is None and self.picks in (None, (0,))

    def constant(self, k: int, view: Any, is_complex: bool) -> Any:
        """R_k as the framework's constant for output leaf k's real view ``view`` (drawn once;
        made once per dtype where it can be)."""
        a = self.adapter
        if k not in self.cotangents:
            real = is_complex and self.real_cotangent
            self.cotangents[k] = cotangent(self.seed, k, a.shape(view), real)
        key = a.key(view)
        if key is None:
            return a.constant(view, self.cotangents[k])
        if (k, key) not in self.constants:
            self.constants[(k, key)] = a.constant(view, self.cotangents[k])
        return self.constants[(k, key)]

    def alone(self, k: int) -> Objective:
        """The same rule for output leaf k alone (same seed, so the same R_k)."""
        return Objective(self.adapter, self.seed, None, (k,), self.real_cotangent)

    def probe(self) -> Objective:
        """The same objective with a real cotangent on complex outputs."""
        return Objective(self.adapter, self.seed, self.loss_fn, self.picks, True, self.entry)


def whole(adapter: Adapter, leaves: Sequence[Any]) -> bool:
    """Whether the output is one real scalar, J itself (cotangent 1)."""
    return (
        len(leaves) == 1 and adapter.size(leaves[0]) == 1 and not adapter.is_complex(leaves[0])
    )


def by_output(
    report: Report,
    outputs: Sequence[int] | Callable[[], Sequence[int]],
    check: Callable[[int], Report],
    adds_up: Callable[[], bool] | None = None,
) -> Report:
    """The multi-output convention: ``report`` (the combined check) where it did not fail or
    there is one output; else one check per output (``check(k)``), merged and named
    ``<input> (output k)``, when one of them fails (otherwise the combined report stays, with
    a note that no single output was found wrong).

    ``adds_up()``: whether the analytic gradients of each output alone add up to the
    combined one. A VJP is linear in its cotangents, so where they do not (a backward that drops
    a term when another output gets no cotangent), some output's gradient is wrong although the
    combined check passed: the per-output checks run then too (no loss call is spent on the
    screen itself, only one backward per output)."""
    screened = report.passed is True
    if report.passed is None or (screened and (adds_up is None or adds_up())):
        return report
    outputs = list(outputs() if callable(outputs) else outputs)  # counted only when needed
    if len(outputs) < 2:
        return report
    parts = {output_label(k): check(k) for k in outputs}
    found = any(r.passed is False for r in parts.values())
    numbers = {"outputs": len(parts), "found": found, "screened": screened}
    note = Note(NoteCode.BY_OUTPUT, None, numbers)
    if not found:
        return _adapters.with_notes(report, [note])
    merged = _adapters.merge(parts, lambda name, key: f"{name} ({key})")
    merged = _adapters.with_notes(merged, [note])
    return dataclasses.replace(
        merged,
        evaluations=merged.evaluations + report.evaluations,
        seconds=merged.seconds + report.seconds,
    )


def gradients_add_up(
    combined: dict[str, np.ndarray], alone: Sequence[dict[str, np.ndarray]], eps: float
) -> bool:
    """Whether the gradients of each output alone add up to the combined gradient, entry by
    entry, within √eps of their magnitudes (rounding differs between backward passes; a
    dropped term does not round away). ``eps``: the evaluated dtype's machine epsilon.

    >>> g = {"x": np.array([1.0, 2.0])}
    >>> gradients_add_up(g, [{"x": np.array([0.5, 2.0])}, {"x": np.array([0.5, 0.0])}], 2.2e-16)
    True
    >>> gradients_add_up(g, [{"x": np.array([0.5, 2.0])}, {"x": np.array([0.0, 0.0])}], 2.2e-16)
    False
    """
    for name, g in combined.items():
        parts = [a[name] for a in alone]
        total = np.sum(parts, axis=0)
        scale = np.abs(g) + np.sum(np.abs(parts), axis=0)
        allowed = np.sqrt(eps) * scale + eps * float(np.max(scale, initial=0.0))
        if not np.all(np.abs(total - g) <= allowed):
            return False
    return True


def precision_note(native: Sequence[str], evaluated: str, how: str, why: str = "") -> Note:
    """The dtype policy's note: which dtype was evaluated (``evaluated``: "float64" for float64
    copies, else the tensors' own ``native`` dtypes), the framework's gradient (``how``), and
    why float64 was not used where it was not (``why``)."""
    kinds = ", ".join(sorted(set(native)))
    numbers = {"evaluated": evaluated, "native": kinds, "how": how}
    return Note(NoteCode.PRECISION, None, {**numbers, "why": why} if why else numbers)
