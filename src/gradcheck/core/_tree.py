"""Parameter structures: flatten dicts/lists/tuples/arrays to named leaves, and rebuild them."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from gradcheck._errors import DTypeError, StructureError

Params = Any  # an ndarray, or nested dicts / lists / tuples of ndarrays


@dataclass(frozen=True)
class Tree:
    """The named leaves of a parameter structure, and how to rebuild it."""

    names: tuple[str, ...]
    leaves: tuple[np.ndarray, ...]
    rebuild: Callable[[list[Any]], Params]


def flatten(params: Params, *, what: str = "params") -> Tree:
    """Named leaves in structure order: ``W1``, ``layers.0.W``; a bare array is ``theta``.

    >>> flatten({"W1": np.zeros((2, 3)), "layers": [{"b": np.zeros(2)}]}).names
    ('W1', 'layers.0.b')
    """
    if isinstance(params, np.ndarray):
        return Tree(("theta",), (_as_leaf(params, "theta", what),), lambda leaves: leaves[0])
    if type(params) is dict and params:
        if all(type(v) is np.ndarray for v in params.values()):  # no isinstance of an ABC
            return _flat_dict(params, what, arrays=True)
        if not any(isinstance(v, Mapping | list | tuple) for v in params.values()):
            return _flat_dict(params, what, arrays=False)
    names: list[str] = []
    leaves: list[Any] = []
    build = _walk(params, "", names, leaves, what)
    if not leaves:
        raise StructureError(
            f"{what} holds no arrays: pass a dict such as {{'W1': W1, 'b1': b1}}, a list of "
            "arrays, or one ndarray."
        )

    _require_unique(names, what)

    def rebuild(values: list[Any]) -> Params:
        return build(iter(values))

    return Tree(tuple(names), tuple(leaves), rebuild)


def _flat_dict(params: dict[Any, Any], what: str, arrays: bool) -> Tree:
    """``flatten`` of a plain dict of leaves, the common case, without the recursive walk:
    the same names (``str`` of each key, "theta" for ""), leaves, errors and order; its
    ``rebuild``, called on every loss call, is one ``dict(zip(...))``. ``arrays``: every value
    is a plain ndarray, which ``_as_leaf`` would return as it is."""
    keys = list(params)
    names = [str(k) or "theta" for k in keys]
    values = params.values()
    leaves = tuple(values) if arrays else tuple(
        _as_leaf(v, n, what) for n, v in zip(names, values, strict=True))
    _require_unique(names, what)

    def rebuild(values: list[Any]) -> Params:
        return dict(zip(keys, values, strict=True))

    return Tree(tuple(names), leaves, rebuild)


def _walk(node: Any, prefix: str, names: list[str], leaves: list[Any], what: str) -> Any:
    """Record the leaves under ``node``; return a builder taking an iterator of new leaves."""
    if isinstance(node, Mapping):
        keys = list(node.keys())
        builders = [_walk(node[k], _join(prefix, k), names, leaves, what) for k in keys]
        kind = type(node) if type(node) is not dict else dict
        return lambda it: _make_mapping(kind, keys, [b(it) for b in builders])
    if isinstance(node, list | tuple):
        builders = [_walk(v, _join(prefix, i), names, leaves, what) for i, v in enumerate(node)]
        if isinstance(node, tuple) and hasattr(node, "_fields"):  # NamedTuple
            cls = type(node)
            return lambda it: cls(*[b(it) for b in builders])
        sequence: type[tuple] | type[list] = tuple if isinstance(node, tuple) else list
        return lambda it: sequence(b(it) for b in builders)
    names.append(prefix or "theta")
    leaves.append(_as_leaf(node, prefix or "theta", what))
    return lambda it: next(it)


def _make_mapping(kind: type, keys: list[Any], values: list[Any]) -> Any:
    try:
        return kind(zip(keys, values, strict=True))
    except TypeError:  # a Mapping type that cannot be built from pairs
        return dict(zip(keys, values, strict=True))


def _join(prefix: str, key: Any) -> str:
    return f"{prefix}.{key}" if prefix else str(key)


def _require_unique(names: list[str], what: str) -> None:
    """Two leaves with one name (``{1: a, "1": b}``, or ``{"a.b": x, "a": {"b": y}}``) could
    not be told apart in the report, the eps dict or the grads: refuse them."""
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise StructureError(
                f"{what} has two entries both named {name!r} (keys that differ only in type, "
                "such as 1 and '1', or a dotted key that repeats a nested path): rename one so "
                "that every parameter has its own name."
            )
        seen.add(name)


def _as_leaf(node: Any, name: str, what: str) -> np.ndarray:
    if isinstance(node, np.ma.MaskedArray):  # its mask would hide entries from every check
        raise DTypeError(
            f"{what}['{name}'] is a masked array; gradcheck differentiates every entry, masked "
            f"or not, so the mask would be silently ignored. Pass {name}.filled(value) (or "
            f"np.asarray({name}.data) if the masked entries are meaningful)."
        )
    if isinstance(node, np.matrix):  # * is a matrix product there, not on the copies we pass
        raise DTypeError(
            f"{what}['{name}'] is an np.matrix, whose * and indexing differ from an ndarray's; "
            f"the loss would see ndarray copies. Pass np.asarray({name}) and use @ in the loss."
        )
    if isinstance(node, np.ndarray):
        return node
    if isinstance(node, np.generic):
        return np.asarray(node)
    if isinstance(node, float):
        return np.asarray(node, dtype=np.float64)
    if node is None:
        raise DTypeError(
            f"{what}['{name}'] is None, not an array: "
            + (f"leave '{name}' out of params (a layer without that parameter?) or give it an "
               "array." if what == "params" else
               f"a gradient that was never computed (or a backward that returns nothing for "
               f"'{name}')? Every entry needs a float array.")
        )
    if what == "grads" and isinstance(node, int) and not isinstance(node, bool):
        return np.asarray(float(node))  # micrograd's Value.grad starts as the int 0
    if isinstance(node, int):  # bool included: a flag, a count or a stride, not a parameter
        kind = "bool" if isinstance(node, bool) else "int"
        raise DTypeError(
            f"{what}['{name}'] is the {kind} {node!r}, not a float: gradcheck differentiates "
            f"float arrays only. If '{name}' is a parameter, pass {float(node)!r} or "
            f"np.asarray(..., dtype=np.float64); if it is a setting (a stride, a size, a flag), "
            "keep it out of params (in the loss's closure)."
        )
    data = getattr(node, "data", None)
    value = (  # an autograd scalar (micrograd's Value) keeps its number in .data
        f" Its .data holds the value ({data!r}): pass the values (e.g. [v.data for v in "
        "model.parameters()]) and their .grad as grads."
        if isinstance(data, float | int) and not isinstance(data, bool) else ""
    )
    raise DTypeError(
        f"{what}['{name}'] is a {type(node).__name__}, not a NumPy array.{value} "
        f"Pass np.asarray(...) of floats for '{name}' (for torch or JAX, use gradcheck.torch "
        "or gradcheck.jax)."
    )

