"""The forms the courses' code comes in, brought to ``check``'s named form at the boundary.

* a flat θ with ``layout=``: the loss and the gradient are read as named tensors (``W1``, ``b1``);
  the loss receives a flat vector again, shaped as the user's θ;
* ``grads="returned"``: the loss returns ``(J, grad)`` (Ng's ``[J grad]``, scipy's ``jac=True``,
  cs231n's ``loss, grads``); one call per point serves both;
* ``args=``: extra positional arguments of the loss, as ``scipy.optimize.minimize`` passes them;
* a gradient whose shape differs from its parameter's only by size-1 axes (keepdims) is judged on
  its values, reshaped, with a note.

The verdict then runs on the named dict exactly as if the user had passed one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from gradcheck._errors import GradCheckError, LossOutputError, OptionError
from gradcheck.core._axes import Reshaped, size_one_axes
from gradcheck.core._layout import Layout, as_layout
from gradcheck.core._tree import Params, flatten
from gradcheck.report import _notes
from gradcheck.report._sentences import Note

RETURNED = "returned"


@dataclass
class Prepared:
    """What the verdict runs on, and what the boundary tells the report."""

    loss: Callable[[Params], Any]
    params: Params
    grads: Any
    batched_loss: Callable[[np.ndarray], Any] | None
    layout_note: Note | None
    reshaped: list[Reshaped]  # filled while a grads function runs, hence read at the end

    def notes(self) -> tuple[Note, ...]:
        """The notes for ``Report.notes``, once the check has run."""
        keep = [self.layout_note] if self.layout_note else []
        return (*keep, *([_notes.size_one_axes(self.reshaped)] if self.reshaped else []))


def prepare(
    loss: Callable[..., Any],
    params: Params,
    grads: Any,
    *,
    layout: Any = None,
    args: Sequence[Any] = (),
    batched_loss: Callable[[np.ndarray], Any] | None = None,
) -> Prepared:
    """The check's inputs in named form; the user's own arrays are never written.

    >>> theta = np.arange(5.0)
    >>> p = prepare(lambda t: float(t @ t), theta, 2 * theta, layout={"W": (2, 2), "b": 1})
    >>> sorted(p.params), p.grads["W"].tolist(), p.loss(p.params)
    (['W', 'b'], [[0.0, 2.0], [4.0, 6.0]], 30.0)
    """
    args = _args(args)
    returned = isinstance(grads, str)
    if returned and grads != RETURNED:
        raise OptionError(
            f"grads={grads!r} is not a known form: pass the gradients, a function "
            f"grads(params) returning them, or grads={RETURNED!r} when loss returns (J, grad)."
        )
    note, lay = None, None
    if layout is not None:
        lay = as_layout(layout)
        shape = _flat_shape(params)
        params = lay.unflatten(params, "theta")
        loss, grads, batched_loss = _through_layout(lay, shape, loss, grads, batched_loss,
                                                    returned)
        note = _notes.flat_layout(lay.size, shape, lay.order, lay.describe())
    if returned:
        loss, grads = _returned(loss, lay)
    if args:
        loss, grads = _bind(loss, args), _bind(grads, args) if callable(grads) else grads
    grads, reshaped = _keepdims(params, grads)
    return Prepared(loss, params, grads, batched_loss, note, reshaped)


def _flat_shape(params: Any) -> tuple[int, ...]:
    if isinstance(params, Mapping) or isinstance(params, list | tuple) and any(
            np.ndim(p) > 0 for p in params):
        raise OptionError(
            f"layout= reads a flat θ (one array), but params is a {type(params).__name__} of "
            "arrays, which already names its tensors: drop layout= (or pass the flat vector)."
        )
    return np.shape(params)


def _through_layout(lay: Layout, shape: tuple[int, ...], loss: Callable[..., Any], grads: Any,
                    batched: Any, returned: bool) -> tuple[Callable[..., Any], Any, Any]:
    """The loss, grads and batched loss of a flat θ, as functions of the named tensors."""
    def to_theta(p: Params) -> np.ndarray:
        return lay.flatten(p).reshape(shape)

    def named_loss(p: Params, *a: Any) -> Any:
        return loss(to_theta(p), *a)

    if callable(grads) and not returned:
        user = grads

        def named_grads(p: Params, *a: Any) -> Any:
            return _unflat(lay, user(to_theta(p), *a))

        return named_loss, named_grads, _batched(lay, batched)
    return named_loss, grads if returned else _unflat(lay, grads), _batched(lay, batched)


def _args(args: Any) -> tuple[Any, ...]:
    if isinstance(args, str | bytes) or not isinstance(args, Sequence):
        raise OptionError(
            f"args={args!r} must be a tuple of the loss's extra positional arguments, as in "
            "scipy.optimize.minimize: args=(X, y, lambda_) calls loss(theta, X, y, lambda_)."
        )
    return tuple(args)


def _bind(fn: Callable[..., Any], args: tuple[Any, ...]) -> Callable[[Params], Any]:
    return lambda p: fn(p, *args)


def _unflat(layout: Layout, grad: Any) -> Any:
    """A flat gradient as named tensors (a dict of them is taken as it is)."""
    if grad is None or callable(grad) or isinstance(grad, Mapping):
        return grad
    return layout.unflatten(grad, "grads")


def _batched(layout: Layout, batched: Any) -> Any:
    """``batched_loss`` gets rows in the named, row-major order: give the user θ's order back."""
    if batched is None:
        return None
    positions = layout.positions()
    return lambda thetas: batched(np.asarray(thetas)[:, positions])


def _returned(loss: Callable[..., Any], layout: Layout | None) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """A loss returning ``(J, grad)`` split into a loss and a grads function. Each point costs
    one call: grads(p) keeps J, and the loss call that follows at the same point reuses it."""
    kept: list[tuple[list[np.ndarray], Any]] = []

    def call(p: Params, *a: Any) -> tuple[Any, Any]:
        out = loss(p, *a)
        if not isinstance(out, tuple | list) or len(out) != 2:
            what = f"a {len(out)}-tuple" if isinstance(out, tuple | list) else type(out).__name__
            raise LossOutputError(
                f"grads='returned' needs a loss returning (J, grad), as Octave's "
                f"[J grad] = nnCostFunction(...) or scipy's jac=True; it returned {what}."
            )
        return out[0], out[1]

    def value(p: Params, *a: Any) -> Any:
        try:
            point, j = kept.pop()  # once only: a repeated J(θ) must be a real call
        except IndexError:  # nothing kept (or another thread took it)
            pass
        else:
            if _same(point, p):
                return j
        return call(p, *a)[0]

    def grads(p: Params, *a: Any) -> Any:
        j, g = call(p, *a)
        kept.clear()
        kept.append(([np.array(x) for x in flatten(p).leaves], j))
        if layout is not None:
            return _unflat(layout, g)
        return g

    return value, grads


def _same(point: list[np.ndarray], p: Params) -> bool:
    try:
        now = flatten(p).leaves
    except GradCheckError:
        return False
    return len(now) == len(point) and all(
        a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b)
        for a, b in zip(point, now, strict=True)
    )


def _keepdims(params: Params, grads: Any) -> tuple[Any, list[Reshaped]]:
    """Gradients reshaped to their parameter's shape where they differ only by size-1 axes;
    a grads function's results too (the names it reshaped are added as they are found)."""
    if not callable(grads):
        return size_one_axes(params, grads)
    found: list[Reshaped] = []
    user = grads

    def reshaped_grads(p: Params) -> Any:
        fixed, names = size_one_axes(p, user(p))
        found.extend(n for n in names if n not in found)
        return fixed

    return reshaped_grads, found
