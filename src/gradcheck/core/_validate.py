"""Checks on the user's params and grads, each failing with a sentence that names the fix."""

from __future__ import annotations

from typing import Any

import numpy as np

from gradcheck._errors import (
    DTypeError,
    LossRaisedError,
    NonFiniteError,
    ShapeMismatchError,
    StructureError,
)
from gradcheck.core._tree import Tree, flatten


def check_params(tree: Tree) -> None:
    for name, leaf in zip(tree.names, tree.leaves, strict=True):
        _check_leaf(leaf, f"params['{name}']", finite=False)  # ±inf/NaN entries stay unchecked


def check_grads(params: Tree, grads: Tree) -> None:
    missing = [n for n in params.names if n not in grads.names]
    extra = [n for n in grads.names if n not in params.names]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"grads lacks {', '.join(repr(m) for m in missing)}")
        if extra:
            parts.append(f"grads has extra {', '.join(repr(e) for e in extra)}")
        raise StructureError(
            "; ".join(parts) + ". grads must have the same keys and nesting as params "
            f"(params has {', '.join(repr(n) for n in params.names)})."
        )
    order = {n: i for i, n in enumerate(grads.names)}
    for name, p in zip(params.names, params.leaves, strict=True):
        g = grads.leaves[order[name]]
        if g.shape != p.shape:
            hint = (
                " Is the gradient transposed? Return its .T."
                if g.ndim == 2 and g.shape == p.shape[::-1]
                else " Return a gradient with the same shape as its parameter"
                + (" (did you sum over the wrong axis?)." if g.size != p.size else ".")
            )
            raise ShapeMismatchError(
                f"grads['{name}'] has shape {g.shape} but params['{name}'] has shape "
                f"{p.shape}.{hint}"
            )
        _check_leaf(g, f"grads['{name}']")


def _check_leaf(leaf: np.ndarray, what: str, finite: bool = True) -> None:
    if leaf.dtype.kind != "f":
        fix = (
            "Convert it with .astype(np.float64)."
            if leaf.dtype.kind in "iub"
            else "Use a float16/32/64 NumPy array."
        )
        raise DTypeError(f"{what} has dtype {leaf.dtype}, not a floating dtype. {fix}")
    if leaf.size == 0:
        raise StructureError(f"{what} is empty (shape {leaf.shape}); drop it or give it entries.")
    bad = ~np.isfinite(leaf)
    if finite and bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        raise NonFiniteError(
            f"{what} holds {leaf[index]} at index {index} ({int(bad.sum())} non-finite entries). "
            "Check the parameters (or the backprop that produced them) for overflow or 0/0."
        )


def inputs(params: Any, grads: Any) -> tuple[Tree, list[np.ndarray]]:
    """The flattened params and the analytic gradients aligned with them, both validated."""
    tree = flatten(params, what="params")
    check_params(tree)
    if callable(grads):
        copies = tree.rebuild([leaf.copy() for leaf in tree.leaves])
        try:
            grads = grads(copies)
        except Exception as error:
            raise LossRaisedError(
                f"grads(params) raised {type(error).__name__}: {error}. Your parameters are "
                "untouched."
            ) from error
    gtree = flatten(grads, what="grads")
    check_grads(tree, gtree)
    by_name = dict(zip(gtree.names, gtree.leaves, strict=True))
    return tree, [np.asarray(by_name[n]) for n in tree.names]
