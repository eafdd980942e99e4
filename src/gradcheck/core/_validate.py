"""Checks on the user's params and grads, each failing with a sentence that names the fix."""

from __future__ import annotations

from typing import Any

import numpy as np

from gradcheck._errors import (
    DTypeError,
    GradCheckError,
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
    ``grads["dW1"]``; ``layers.0.dW`` for ``layers.0.W`` in per-layer dicts) read as the
    parameters' own, when every name's last part is ``"d"`` + a name and every parameter has its
    ``"d"`` name (a mix of both conventions stays an error). The other ``"d"`` names are the
    course's intermediate gradients (``dZ3``, ``dA2``: the assignment's
    ``backward_propagation_n`` returns them in the same dict) and are left out: they belong to
    no parameter (``course_extras`` names them for the report).

    >>> p = flatten({"W1": np.ones(2), "b1": np.ones(1)})
    >>> course_names(p, flatten({"dW1": np.ones(2), "db1": np.ones(1), "dZ1": np.ones(3)})).names
    ('W1', 'b1')
    >>> course_names(flatten([{"W": np.ones(2)}]), flatten([{"dW": np.ones(2)}])).names
    ('0.W',)
    """
    if not _is_course(params, grads):
        return grads
    named = {_course(n): n for n in params.names}
    missing = [n for n in params.names if _course(n) not in grads.names]
    if missing:
        raise StructureError(
            "grads uses the course's names (dW1 for params['W1']) but lacks "
            f"{', '.join(repr(_course(n)) for n in missing)} (the gradient of "
            f"{', '.join(f'params[{n!r}]' for n in missing)}). grads must have the same keys "
            "and nesting as params, or 'd' + each parameter's name (to check some of the "
            "parameters only, pass only those in params)."
        )
    kept = [(named[n], leaf) for n, leaf in zip(grads.names, grads.leaves, strict=True)
            if n in named]
    return Tree(tuple(n for n, _ in kept), tuple(leaf for _, leaf in kept), grads.rebuild)


def course_extras(params: Any, grads: Any) -> tuple[str, ...]:
    """The names of ``grads`` in the course's naming that belong to no parameter (``dZ3``,
    ``dA2``), left unchecked by ``course_names``; () when there are none or the structures do
    not read that way.

    >>> course_extras({"W1": np.ones(2)}, {"dW1": np.ones(2), "dZ1": np.ones(3)})
    ('dZ1',)
    """
    try:
        p, g = flatten(params, what="params"), flatten(grads, what="grads")
    except GradCheckError:
        return ()
    if not _is_course(p, g):
        return ()
    own = {_course(n) for n in p.names}
    return tuple(n for n in g.names if n not in own)


def _course(name: str) -> str:
    """The course's name for the gradient of parameter ``name``: ``d`` before its last part."""
    head, dot, last = name.rpartition(".")
    return f"{head}{dot}d{last}"


def _is_course(params: Tree, grads: Tree) -> bool:
    """Every name of ``grads`` has a last part "d" + something, none is a parameter's own name,
    and at least one is the course's name of a parameter."""
    names = set(params.names)
    own = {_course(n) for n in names}
    return (
        all(n.rpartition(".")[2].startswith("d") and n not in names for n in grads.names)
        and any(n in own for n in grads.names)
    )


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
            + _structure_hint(params, grads)
        )
    order = {n: i for i, n in enumerate(grads.names)}
    for name, p in zip(params.names, params.leaves, strict=True):
        g = grads.leaves[order[name]]
        if g.shape != p.shape:
            raise ShapeMismatchError(
                f"grads['{name}'] has shape {g.shape} but params['{name}'] has shape "
                f"{p.shape}.{_order_hint(params, grads) or shape_hint(g.shape, p.shape)}"
            )
        _check_leaf(g, f"grads['{name}']")


def _order_hint(params: Tree, grads: Tree) -> str:
    """When the gradients have the parameters' shapes, but in another order: two parts of
    grads exchanged, such as Nielsen's (nabla_b, nabla_w) for params (weights, biases)."""
    shape = {n: leaf.shape for n, leaf in zip(grads.names, grads.leaves, strict=True)}
    mine = [shape[n] for n in params.names]
    theirs = [leaf.shape for leaf in params.leaves]
    if sorted(mine) != sorted(theirs):
        return ""
    for name, p in zip(params.names, params.leaves, strict=True):
        if shape[name] != p.shape:
            if len(p.shape) == 2 and shape[name] == p.shape[::-1]:
                return ""  # a transposed gradient says more
            other = next(n for n in params.names if shape[n] == p.shape and n != name)
            return (
                f" grads holds the shapes of params in another order (grads['{other}'] has the "
                f"shape of params['{name}']): are two of its parts exchanged, e.g. (nabla_b, "
                "nabla_w) for params (weights, biases)? Give grads the order of params."
            )
    return ""


def _structure_hint(params: Tree, grads: Tree) -> str:
    """What a grads structure that names none of the parameters most likely is."""
    names = list(grads.names)
    rest = [n[2:] for n in names if n.startswith("1.")]
    if (
        "0" in names and grads.leaves[names.index("0")].size == 1 and len(rest) == len(names) - 1
        and sorted(r[1:] if r.startswith("d") else r for r in rest) == sorted(params.names)
        or sorted(rest) == sorted(params.names)
    ):
        return (
            " grads looks like a (loss, grads) pair, as cs231n's TwoLayerNet.loss returns: "
            "pass (or return) its second item, grads[1]."
        )
    if len(grads.leaves) == len(params.leaves) and all(
        g.shape == p.shape for g, p in zip(grads.leaves, params.leaves, strict=True)
    ):
        return (
            " grads holds as many arrays as params, with the same shapes in the same order, in "
            "another structure: build it like params (for a dict params and a list of "
            "gradients in its order: dict(zip(params, grads)))."
        )
    return ""


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
    if not finite or np.isfinite(leaf).all():  # params may hold ±inf/NaN: not looked at
        return
    bad = ~np.isfinite(leaf)
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        raise NonFiniteError(
            f"{what} holds {leaf[index]} at index {index} ({int(bad.sum())} non-finite entries). "
            "Check the parameters (or the backprop that produced them) for overflow or 0/0."
        )


def shared_memory(params: Any) -> list[tuple[str, str]]:
    """Pairs of parameters that are one array, or views of one buffer (``{"a": W, "b": W}``,
    ``{"W": W, "row": W[0]}``): the check perturbs each on a copy of its own, so each gradient
    must be the partial derivative through that entry alone (tied weights count twice).

    >>> w = np.ones(3)
    >>> shared_memory({"a": w, "b": w[1:], "c": np.ones(3)})
    [('a', 'b')]
    """
    try:
        tree = flatten(params, what="params")
    except GradCheckError:
        return []
    groups: dict[int, list[tuple[str, np.ndarray]]] = {}
    for name, leaf in zip(tree.names, tree.leaves, strict=True):
        root = leaf
        while isinstance(root.base, np.ndarray):  # views of one array share its root
            root = root.base
        groups.setdefault(id(root), []).append((name, leaf))
    pairs = []
    for group in groups.values():
        for i, (a, x) in enumerate(group):
            for b, y in group[i + 1:]:
                try:
                    shared = np.shares_memory(x, y, max_work=10_000)  # type: ignore[arg-type]
                except np.exceptions.TooHardError:
                    shared = True
                if shared:
                    pairs.append((a, b))
    return pairs


def inputs(params: Any, grads: Any) -> tuple[Tree, list[np.ndarray]]:
    """The flattened params and the analytic gradients aligned with them, both validated."""
    tree = flatten(params, what="params")
    check_params(tree)
    if grads is None:
        raise StructureError(
            "grads is None: pass the analytic gradients in the structure of params (or a "
            "function grads(params) returning them). A backward pass that forgot its return?"
        )
    if callable(grads):
        copies = tree.rebuild([leaf.copy() for leaf in tree.leaves])
        try:
            grads = grads(copies)
        except Exception as error:
            raise LossRaisedError(
                f"grads(params) raised {type(error).__name__}: {error}. Your parameters are "
                "untouched."
            ) from error
    if grads is None:
        raise StructureError(
            "grads(params) returned None: it must return the gradients in the structure of "
            "params. Does the backward function end with its return?"
        )
    gtree = course_names(tree, flatten(grads, what="grads"))
    check_grads(tree, gtree)
    by_name = dict(zip(gtree.names, gtree.leaves, strict=True))
    return tree, [np.asarray(by_name[n]) for n in tree.names]
