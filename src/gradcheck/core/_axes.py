"""Gradients whose shapes differ from their parameters' only by size-1 axes (keepdims).

``db = dout.sum(axis=0, keepdims=True)`` has shape (1, 64) for a bias of shape (64,): the values
can be right, and the check judges them; the report says the shapes differ (``report._notes``).
"""

from __future__ import annotations

from typing import Any

import numpy as np  # noqa: F401 - the doctests use it

from gradcheck._errors import GradCheckError
from gradcheck.core._tree import Params, flatten
from gradcheck.core._validate import _course

Reshaped = tuple[str, tuple[int, ...], tuple[int, ...]]  # name, gradient's shape, parameter's


def only_size_one(g: tuple[int, ...], p: tuple[int, ...]) -> bool:
    """Whether shapes ``g`` and ``p`` differ, but only by axes of size 1.

    >>> only_size_one((1, 64), (64,)), only_size_one((64,), (64,)), only_size_one((2, 3), (3, 2))
    (True, False, False)
    """
    return g != p and tuple(s for s in g if s != 1) == tuple(s for s in p if s != 1)


def size_one_axes(params: Params, grads: Any) -> tuple[Any, list[Reshaped]]:
    """``grads`` with each gradient that differs from its parameter only by size-1 axes
    reshaped to the parameter's shape, and the list of those reshaped. Anything else (a real
    mismatch, a structure that does not flatten) is left for the verdict's own errors.

    >>> fixed, found = size_one_axes({"b": np.zeros(3)}, {"b": np.ones((1, 3))})
    >>> fixed["b"].shape, found
    ((3,), [('b', (1, 3), (3,))])
    """
    try:
        ptree, gtree = flatten(params, what="params"), flatten(grads, what="grads")
    except GradCheckError:
        return grads, []
    shapes = {n: leaf.shape for n, leaf in zip(ptree.names, ptree.leaves, strict=True)}
    shapes |= {_course(n): s for n, s in shapes.items() if _course(n) not in shapes}
    leaves, found = list(gtree.leaves), []
    for i, (name, leaf) in enumerate(zip(gtree.names, gtree.leaves, strict=True)):
        shape = shapes.get(name)
        if shape is not None and only_size_one(leaf.shape, shape):
            leaves[i] = leaf.reshape(shape)
            found.append((name, leaf.shape, shape))
    return (gtree.rebuild(leaves) if found else grads), found

