"""``check_hvp``: Hessian-vector products against finite differences of the gradient.

For a gradient function ``grads(θ)`` and a product ``hvp(θ, v) = H(θ)·v``, the scalar
L(θ, s) = ⟨grads(θ + s·v), v⟩ has

- ∂L/∂θ = Hᵀ·v = H·v (the Hessian of a loss is symmetric): compared coordinate by coordinate
  with ``hvp(θ, v)``, per parameter, as ``check`` compares a gradient;
- ∂L/∂s = vᵀ·H·v: finite differences of ``grads`` along v itself, the component ``along v``,
  compared with ⟨hvp(θ, v), v⟩ (no symmetry assumed).

Both go through the same noise-aware verdict as ``check`` (one run, one report): a wrong entry
of H·v is named by parameter and index, and the diagnosis reads its pattern.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np

from gradcheck._errors import OptionError, ShapeMismatchError, StructureError
from gradcheck.checks._check import check
from gradcheck.core._coords import DEFAULT_BUDGET
from gradcheck.core._tree import Params, flatten
from gradcheck.report._report import Report
from gradcheck.report._sentences import Note, NoteCode

ALONG = "along v"


def check_hvp(
    grads: Callable[[Params], Params],
    params: Params,
    hvp: Callable[[Params, Params], Params],
    *,
    v: Params | None = None,
    eps: float | dict[str, float] | None = None,
    seed: int = 0,
    rtol: float | dict[Any, float] | None = None,
    atol: float | dict[Any, float] | None = None,
    layers: Sequence[str] | None = None,
    coords: Literal["auto", "all", "directional"] | int | float = "auto",
    budget: int = DEFAULT_BUDGET,
    progress: bool | None = None,
) -> Report:
    """Checks ``hvp(params, v)`` (H·v) against finite differences of ``grads`` along v.

    Args:
      grads: ``grads(params)`` returns the gradient of the loss, in the structure of params.
      params: an ndarray, or dicts / lists / tuples of ndarrays, as for ``check``.
      hvp: ``hvp(params, v)`` returns H·v in the structure of params.
      v: the direction (structure of params); None draws a standard normal one from ``seed``.
      eps, seed, rtol, atol, layers, coords, budget, progress: as for ``check`` (each "loss"
        evaluation is one call of ``grads``).

    Returns:
      A ``Report``: one component per parameter (H·v, coordinate by coordinate) and one named
      ``along v`` (vᵀHv from finite differences of grads along v); ``suspects`` name the wrong
      parameters.

    >>> import numpy as np
    >>> A = np.array([[2.0, 1.0], [1.0, 3.0]])
    >>> grads = lambda p: {"w": A @ p["w"] + p["w"] ** 3}
    >>> hvp = lambda p, v: {"w": A @ v["w"] + 3 * p["w"] ** 2 * v["w"]}
    >>> check_hvp(grads, {"w": np.array([0.5, -1.0])}, hvp).passed
    True
    >>> wrong = lambda p, v: {"w": A @ v["w"]}  # forgot the cubic term's Hessian
    >>> check_hvp(grads, {"w": np.array([0.5, -1.0])}, wrong).suspects
    ('w', 'along v')
    """
    if not callable(grads) or not callable(hvp):
        raise OptionError(
            "check_hvp(grads, params, hvp): grads and hvp must be functions, grads(params) -> "
            "gradient and hvp(params, v) -> H·v, both in the structure of params."
        )
    tree = flatten(params)
    if ALONG in tree.names:
        raise StructureError(f"check_hvp: a parameter may not be named {ALONG!r}; rename it.")
    if v is None:
        rng = np.random.default_rng([seed, 15, 3])
        direction = [rng.standard_normal(x.shape) for x in tree.leaves]
    else:
        direction = _like(flatten(v, what="v"), tree, "v")
    theta = [np.array(x, copy=True) for x in tree.leaves]
    vs = [np.asarray(d, dtype=x.dtype) for d, x in zip(direction, theta, strict=True)]

    def user(leaves: Sequence[np.ndarray]) -> Params:
        return tree.rebuild([np.array(x, copy=True) for x in leaves])

    def loss(p: dict[str, np.ndarray]) -> float:
        s = float(p[ALONG][0])
        point = [p[n] + (s * d).astype(p[n].dtype) for n, d in zip(tree.names, vs, strict=True)]
        g = _like(flatten(grads(user(point)), what="grads(params)"), tree, "grads(params)")
        return float(sum(np.sum(np.asarray(a, np.float64) * d) for a, d in zip(g, vs, strict=True)))

    hv = _like(flatten(hvp(user(theta), user(vs)), what="hvp(params, v)"), tree, "hvp(params, v)")
    inner = {n: x for n, x in zip(tree.names, theta, strict=True)}
    inner[ALONG] = np.zeros(1)
    analytic = {n: np.asarray(h, np.float64) for n, h in zip(tree.names, hv, strict=True)}
    analytic[ALONG] = np.array(
        [sum(float(np.sum(np.asarray(h, np.float64) * d)) for h, d in zip(hv, vs, strict=True))]
    )
    report = check(
        loss, inner, analytic, eps=eps, seed=seed, rtol=rtol, atol=atol, layers=layers,
        coords=coords, budget=budget, progress=progress,
    )
    notes = [Note(NoteCode.HVP_COMPONENTS), *report.notes]
    wrong = [n for n in report.suspects if n != ALONG]
    if ALONG in report.suspects and not wrong:
        notes.append(Note(NoteCode.HVP_ALONG_ONLY))
    # 'along v' is not a layer; an origin is named only when layers= orders the parameters.
    return dataclasses.replace(
        report,
        notes=tuple(notes),
        findings=tuple(f for f in report.findings if f.param != ALONG),
        origin=report.origin if layers is not None and report.origin != ALONG else None,
    )


def _like(got: Any, tree: Any, what: str) -> list[np.ndarray]:
    """The leaves of ``got`` in the order of params, or an error naming what differs."""
    if tuple(got.names) != tuple(tree.names):
        raise StructureError(
            f"{what} has the leaves {list(got.names)} but params has {list(tree.names)}; "
            f"return {what} in the structure of params."
        )
    for name, a, b in zip(tree.names, got.leaves, tree.leaves, strict=True):
        if np.shape(a) != np.shape(b):
            raise ShapeMismatchError(
                f"{what}['{name}'] has shape {np.shape(a)} but params['{name}'] has shape "
                f"{np.shape(b)}; return one entry per parameter entry."
            )
    return [np.asarray(x) for x in got.leaves]
