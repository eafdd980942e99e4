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


def course_names(params: Tree, grads: Tree) -> Tree:
    """``grads`` with the course convention's names (``dW1`` for ``W1``, as in
    ``grads["dW1"]``) read as the parameters' own, when every name is ``"d"`` + a parameter's
    (all of them, one to one: a mix of both conventions stays an error).

    >>> p = flatten({"W1": np.ones(2), "b1": np.ones(1)})
    >>> course_names(p, flatten({"dW1": np.ones(2), "db1": np.ones(1)})).names
    ('W1', 'b1')
    """
    renamed = tuple(n[1:] for n in grads.names)
    if not all(n.startswith("d") for n in grads.names) or sorted(renamed) != sorted(params.names):
        return grads
    return Tree(renamed, grads.leaves, grads.rebuild)


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
            raise ShapeMismatchError(
                f"grads['{name}'] has shape {g.shape} but params['{name}'] has shape "
                f"{p.shape}.{shape_hint(g.shape, p.shape)}"
            )
        _check_leaf(g, f"grads['{name}']")


def shape_hint(g: tuple[int, ...], p: tuple[int, ...]) -> str:
    """The likely cause of a gradient of shape ``g`` for a parameter of shape ``p``.

    >>> "only by size-1 axes" in shape_hint((1, 5), (5,)), "transposed" in shape_hint((3, 2), (2, 3))
    (True, True)
    """
    if len(g) == 2 and g == p[::-1] and g != p:
        return " Is the gradient transposed? Return its .T."
    if tuple(s for s in g if s != 1) == tuple(s for s in p if s != 1):
        return (
            " They differ only by size-1 axes (a keepdims=True sum, or a row vector for a "
            f"vector?). Reshape it to {p} (e.g. .reshape({p})): it matters because an update "
            "θ − lr·g would broadcast and change the parameter's shape."
        )
    return " Return a gradient with the same shape as its parameter" + (
        " (did you sum over the wrong axis?)." if int(np.prod(g)) != int(np.prod(p)) else "."
    )


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
    gtree = course_names(tree, flatten(grads, what="grads"))
    check_grads(tree, gtree)
    by_name = dict(zip(gtree.names, gtree.leaves, strict=True))
    return tree, [np.asarray(by_name[n]) for n in tree.names]
