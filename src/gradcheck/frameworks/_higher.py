"""Beyond first-order reverse mode: ``order=2`` (the backward's own derivatives) and forward mode.

Both reduce to the NumPy ``check`` (noise-aware verdict, components, suspects):

- **order=2.** For inputs x, outputs y and a backward ``vjp(x, u) = uᵀ ∂y/∂x``, the scalar
  G(x, u) = ⟨vjp(x, u), w⟩ (u, w random from the seed) is a function of x *and* of the cotangent
  u. Finite differences of G (each value one forward and one first-order backward) are compared
  with G's gradient from double backward (``create_graph=True`` / ``jax.grad`` of the vjp), as
  ``gradgradcheck`` does. Components: ``<input> (backward w.r.t. input)`` (∂G/∂x: the backward's
  derivative w.r.t. that input) and ``cotangent`` (∂G/∂u = J·w: its derivative w.r.t. u).
  The first-order check runs too, so one report covers both orders.
- **forward mode.** The gradient of the same J is assembled from JVPs along each coordinate
  (torch forward AD with dual numbers, a custom Function's ``jvp``; ``jax.jvp``, ``custom_jvp``)
  and compared with finite differences, coordinate by coordinate: ∂J/∂x_j = ⟨R, J_y(x)·e_j⟩.
  ``mode="both"`` checks reverse and forward and names the mode that disagrees.

Nothing here imports the adapters (they call in, passing what they know): no cycle.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from gradcheck._errors import OptionError
from gradcheck.frameworks import _shared as _adapters
from gradcheck.report._report import Report
from gradcheck.report._sentences import Note, NoteCode

MODES = ("reverse", "forward", "both")
# Forward mode: one JVP per coordinate up to this many in all; beyond, random tangents.
FULL_FORWARD = 4_096
TANGENTS = 16  # random tangents per large tensor beyond FULL_FORWARD
CHUNK = 64  # tangents per batched JVP call
INPUT = "backward w.r.t. input"
COTANGENT = "cotangent"


def keyword_of_fn(fn: Callable, options: dict[str, Any], api: str) -> None:
    """An unknown option that is a keyword parameter of ``fn``: say how to pass it."""
    import inspect

    unknown = sorted(set(options) - set(_adapters.FORWARDED))
    if not unknown:  # nothing to name (fn's signature costs more than a small op's loss call)
        return
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):  # a builtin or C function without a signature
        return
    mine = [k for k in unknown if k in params]
    if mine:
        raise OptionError(
            f"{api}() got {mine[0]}=..., a keyword argument of fn, not an option of the check. "
            f"Bind it first: {api}(functools.partial(fn, {mine[0]}=...), *args)."
        )


def validate(api: str, order: Any, mode: Any, jacobian: bool = False) -> tuple[int, str]:
    """``(order, mode)`` checked, or an ``OptionError`` naming the option and the fix."""
    if isinstance(order, bool) or order not in (1, 2):
        raise OptionError(
            f"{api}(order={order!r}): order is the derivative order and must be 1 (the "
            "gradient) or 2 (the derivatives of the backward too, as gradgradcheck). To name "
            "parameters from input to output, use layers=[...]."
        )
    mode = _adapters.choose(api, "mode", mode, MODES)
    if order == 2 and mode != "reverse":
        raise OptionError(
            f"{api}(order=2, mode={mode!r}): second order is checked in reverse mode (double "
            "backward); check the JVPs in a separate call with order=1, mode='forward'."
        )
    if jacobian and (order != 1 or mode != "reverse"):
        raise OptionError(
            f"{api}(jacobian=True) compares first-order reverse-mode Jacobians only; drop "
            "jacobian=True to use order=2 or mode='forward' (random cotangents catch the same bugs)."
        )
    return int(order), mode


class GradsAt:
    """An adapter's gradients as ``grads(params)``: the ones already computed at θ, and the
    framework's autodiff again at any other point, so that the check can judge an entry off a
    kink or a tie at a nearby point (``core.verdict._kinks.recheck_kinks``).

    >>> at = GradsAt({"x": np.zeros(2)}, {"x": np.ones(2)}, lambda p: {"x": 2 * p["x"]})
    >>> at({"x": np.zeros(2)})["x"].tolist(), at({"x": np.ones(2)})["x"].tolist()
    ([1.0, 1.0], [2.0, 2.0])
    """

    def __init__(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray],
                 again: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]) -> None:
        self.params, self.grads, self.again = params, grads, again

    def __call__(self, params: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        same = params.keys() == self.params.keys() and all(
            np.array_equal(np.asarray(params[n]), self.params[n]) for n in self.params)
        return self.grads if same else self.again(params)


def by_mode(
    mode: str,
    run: Callable[..., Report],
    reverse: Callable[[], dict[str, np.ndarray]],
    forward: Callable[[], Forward],
) -> Report:
    """The report for ``mode``: ``run(grads)`` with reverse- and/or forward-mode gradients.

    ``run(grads, reduced=None)`` runs the check; ``reduced=(loss, params)`` replaces the loss
    and parameters (forward mode on random tangents). Components are ``<name> (forward)`` /
    ``<name> (reverse)``; with "both", a note says which mode disagrees.
    """
    if mode == "reverse":
        return run(reverse())
    done = forward()
    reports = {"forward": _adapters.with_notes(run(done.grads, done.reduced), done.notes)}
    if mode == "both":
        reports = {"reverse": run(reverse()), **reports}
    merged = _adapters.merge(reports, lambda name, key: f"{name} ({key})")
    wrong = [k for k, r in reports.items() if r.passed is False]  # incomplete is not wrong
    if mode == "both" and len(wrong) == 1:
        merged = _adapters.with_notes(
            merged, [Note(NoteCode.MODES_DISAGREE, None, {"wrong": wrong[0]})])
    return merged


@dataclass(frozen=True)
class Forward:
    """Forward-mode gradients, and the reduced problem when random tangents stood in."""

    grads: dict[str, np.ndarray]
    reduced: tuple[Callable[[dict[str, np.ndarray]], float], dict[str, np.ndarray]] | None
    notes: tuple[Note, ...]


def forward_gradient(
    jvps: Callable[[str, np.ndarray], np.ndarray],
    params: dict[str, np.ndarray],
    loss: Callable[[dict[str, np.ndarray]], float],
    seed: int,
) -> Forward:
    """∂J from JVPs: ``jvps(name, rows (B, size)) -> (B,)`` directional derivatives of J.

    Up to ``FULL_FORWARD`` coordinates in all, one tangent per coordinate (the forward-mode
    gradient, compared entry by entry). Beyond, each tensor larger than ``TANGENTS`` entries
    is checked along ``TANGENTS`` random unit Rademacher tangents V: the check's parameter is
    then the coefficient vector c (at 0) of x = x₀ + V·c, whose gradient is the JVP along each
    tangent, compared with finite differences of J along it.
    """
    sizes = {n: int(a.size) for n, a in params.items()}
    full = sum(sizes.values()) <= FULL_FORWARD
    rng = np.random.default_rng([seed, 15, 4])
    bases = {
        n: None if full or size <= TANGENTS
        else rng.choice((-1.0, 1.0), size=(TANGENTS, size)) / np.sqrt(size)
        for n, size in sizes.items()
    }
    grads: dict[str, np.ndarray] = {}
    for n, a in params.items():
        basis = bases[n]
        if basis is None:
            eye = np.eye(sizes[n])
            col = np.concatenate(
                [jvps(n, eye[i : i + CHUNK]) for i in range(0, sizes[n], CHUNK)]
            ) if sizes[n] else np.zeros(0)
            grads[n] = col.reshape(a.shape)
        else:
            grads[n] = np.asarray(jvps(n, basis), dtype=np.float64)
    count = sum(sizes[n] if b is None else TANGENTS for n, b in bases.items())
    notes = [Note(NoteCode.FORWARD_JVPS, None, {"count": count})]
    if full:
        return Forward(grads, None, tuple(notes))
    x0 = {n: np.array(a, copy=True) for n, a in params.items()}

    def reduced_loss(p: dict[str, np.ndarray]) -> float:
        point = {
            n: p[n] if b is None
            else (x0[n].astype(np.float64) + (b.T @ p[n].astype(np.float64)).reshape(x0[n].shape))
            .astype(x0[n].dtype)
            for n, b in bases.items()
        }
        return loss(point)

    reduced = {n: x0[n] if b is None else np.zeros(TANGENTS, x0[n].dtype) for n, b in bases.items()}
    cut = [n for n, b in bases.items() if b is not None]
    notes.append(Note(NoteCode.FORWARD_TANGENTS, None, {
        "names": tuple(cut), "tangents": TANGENTS, "full": FULL_FORWARD}))
    return Forward(grads, (reduced_loss, reduced), tuple(notes))


def merge_orders(first: Report, second: Report) -> Report:
    """One report for order=2: the first-order components and the backward's derivatives."""
    merged = _adapters.merge(
        {"order 1": first, "order 2": second}, lambda name, key: name
    )
    if first.passed and second.passed is False:
        merged = _adapters.with_notes(merged, [Note(NoteCode.ORDER2_BACKWARD)])
    return merged


def second_names(names: Sequence[str], outputs: int) -> tuple[list[str], list[str]]:
    """Component names of the order-2 check: one per input, one cotangent per output."""
    inputs = [f"{n} ({INPUT})" for n in names]
    cots = [COTANGENT] if outputs == 1 else [f"{COTANGENT} (output {k})" for k in range(outputs)]
    return inputs, cots


def second_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """The options of the order-2 check: ``layers`` renamed to its components."""
    out = dict(options)
    if out.get("layers") is not None:
        out["layers"] = [f"{n} ({INPUT})" for n in out["layers"]]
    return out


def second_note(n_outputs: int) -> Note:
    """What the order-2 check compares (its sentence names INPUT and COTANGENT)."""
    return Note(NoteCode.ORDER2, None, {"outputs": n_outputs})


def _random(seed: int, salt: int, shapes: Sequence[tuple[int, ...]]) -> list[np.ndarray]:
    rng = np.random.default_rng([seed, 15, salt])
    return [rng.standard_normal(tuple(s)) for s in shapes]


@dataclass
class Second:
    """What the order-2 check of either framework starts from: the inputs x renamed
    ``<input> (backward w.r.t. input)``, one cotangent u per output (from the seed, in the
    output's dtype) and the weights w of G = ⟨vjp(x, u), w⟩ (from the seed, one per input)."""

    in_names: list[str]
    cot_names: list[str]
    params: dict[str, np.ndarray]
    weights: list[np.ndarray]

    @classmethod
    def of(cls, names: Sequence[str], x0: Sequence[np.ndarray],
           outputs: Sequence[tuple[tuple[int, ...], Any]], seed: int) -> Second:
        """``outputs``: each output's (shape, NumPy dtype)."""
        in_names, cot_names = second_names(names, len(outputs))
        params = dict(zip(in_names, x0, strict=True))
        us = _random(seed, 1, [shape for shape, _ in outputs])
        for c, (_, dtype), u in zip(cot_names, outputs, us, strict=True):
            params[c] = u.astype(dtype)
        return cls(in_names, cot_names, params, _random(seed, 2, [x.shape for x in x0]))

    def report(
        self,
        loss: Callable[[dict[str, np.ndarray]], float],
        derivatives: Sequence[np.ndarray | None],
        options: Mapping[str, Any],
        notes: Sequence[str],
    ) -> Report:
        """The check of G against its double-backward gradient (None: zeros, no path)."""
        wrt = [*self.in_names, *self.cot_names]
        grads = {
            a: np.zeros(self.params[a].shape) if d is None else np.asarray(d, dtype=np.float64)
            for a, d in zip(wrt, derivatives, strict=True)
        }
        return _adapters.run_check(
            loss, self.params, grads, second_options(options), None,
            [second_note(len(self.cot_names)), *notes],
        )
