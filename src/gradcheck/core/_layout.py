"""Layouts: a flat parameter vector θ read as named tensors (``W1``, ``b1``, ...) and back.

The textbook packs W1, b1, ..., WL, bL into one vector θ (NumPy's ``ravel``, row-major; Octave's
``[Theta1(:); Theta2(:)]``, column-major). A ``Layout`` says which slice of θ is which tensor, so
that the check can run on named tensors and report ``W1[i, j]`` instead of ``theta[k]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from gradcheck._errors import OptionError, ShapeMismatchError

Order = Literal["C", "F"]


@dataclass(frozen=True, init=False)
class Layout:
    """Names and shapes of the tensors packed in a flat θ, in θ's order.

    Pass it as ``check(..., layout=Layout(...))``; a plain mapping there means ``order="C"``.

    Args:
      shapes: name → shape, in θ's order (``{"W1": (784, 300), "b1": 300}``; an int is a vector).
      order: "C" (default), NumPy's row-major ``ravel``; "F", Octave and MATLAB's column-major
        ``Theta1(:)``.

    >>> layout = Layout({"W": (2, 3), "b": 2}, order="F")
    >>> named = layout.unflatten(np.arange(8.0))
    >>> named["W"]
    array([[0., 2., 4.],
           [1., 3., 5.]])
    >>> layout.flatten(named)
    array([0., 1., 2., 3., 4., 5., 6., 7.])
    """

    shapes: tuple[tuple[str, tuple[int, ...]], ...]
    order: Order

    def __init__(self, shapes: Mapping[str, Any], order: Order = "C") -> None:
        if not isinstance(shapes, Mapping) or not shapes:
            raise OptionError(
                f"layout={shapes!r} must map each tensor's name to its shape, in θ's order, "
                "e.g. {'W1': (25, 401), 'W2': (10, 26)}."
            )
        if order not in ("C", "F"):
            raise OptionError(
                f"Layout(order={order!r}) must be 'C' (NumPy's row-major ravel) or 'F' "
                "(Octave/MATLAB's column-major Theta(:))."
            )
        object.__setattr__(self, "shapes", tuple((str(k), _shape(k, v)) for k, v in shapes.items()))
        object.__setattr__(self, "order", order)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.shapes)

    @property
    def size(self) -> int:
        """How many entries of θ the layout covers."""
        return sum(int(np.prod(shape)) for _, shape in self.shapes)

    def slices(self) -> list[tuple[str, tuple[int, ...], int, int]]:
        """``(name, shape, start, stop)`` of each tensor in θ."""
        out, start = [], 0
        for name, shape in self.shapes:
            stop = start + int(np.prod(shape))
            out.append((name, shape, start, stop))
            start = stop
        return out

    def unflatten(self, theta: Any, what: str = "theta") -> dict[str, np.ndarray]:
        """Named copies of θ's slices (θ itself is never written)."""
        flat = self.vector(theta, what)
        return {name: np.array(flat[a:b].reshape(shape, order=self.order))
                for name, shape, a, b in self.slices()}

    def flatten(self, named: Mapping[str, Any]) -> np.ndarray:
        """The flat vector of ``named`` tensors, in this layout's order."""
        parts = [np.ravel(np.asarray(named[name]), order=self.order) for name in self.names]
        return np.concatenate(parts)

    def vector(self, theta: Any, what: str = "theta") -> np.ndarray:
        """``theta`` as a 1-D array of exactly ``self.size`` entries (a column vector too)."""
        array = np.asarray(theta)
        if sum(1 for s in array.shape if s != 1) > 1:
            raise ShapeMismatchError(
                f"{what} has shape {array.shape}; with layout= it must be a flat vector (shape "
                f"({self.size},), or a ({self.size}, 1) column as Octave returns)."
            )
        if array.size != self.size:
            gap = array.size - self.size
            parts = " + ".join(f"{n} {'x'.join(map(str, s)) or 'scalar'}" for n, s in self.shapes)
            raise ShapeMismatchError(
                f"{what} has {array.size:,} entries but the layout adds up to {self.size:,} "
                f"({parts}): {what} has {abs(gap):,} {'more' if gap > 0 else 'fewer'} entries "
                "than the layout. Check each shape (a bias forgotten, or the bias column of "
                "Theta counted twice?)."
            )
        return array.reshape(-1)

    def positions(self) -> np.ndarray:
        """``p`` such that ``theta = named_c[p]``, where ``named_c`` concatenates the named
        tensors each raveled row-major (the order of ``check``'s ``batched_loss`` rows)."""
        index = self.unflatten(np.arange(self.size, dtype=np.float64))
        named_c = np.concatenate([np.ravel(index[n]) for n in self.names]).astype(np.intp)
        return np.argsort(named_c)

    def describe(self) -> str:
        """One sentence: which slice of θ each name is."""
        order = ", order='F'" if self.order == "F" else ""
        parts = [f"{name} = θ[{a}:{b}].reshape({_tuple(shape)}{order})"
                 for name, shape, a, b in self.slices()]
        return "; ".join(parts)


def as_layout(layout: Any, order: Order = "C") -> Layout:
    """A ``Layout`` from ``layout=``: a Layout as is, or a mapping read in ``order``."""
    return layout if isinstance(layout, Layout) else Layout(layout, order=order)


def parse_layout(text: str, order: Order = "C") -> Layout:
    """A layout written on the command line: ``NAME=SHAPE,...`` with shapes like ``784x300``.

    >>> parse_layout("W1=784x300,b1=300", order="F").shapes
    (('W1', (784, 300)), ('b1', (300,)))
    """
    shapes: dict[str, tuple[int, ...]] = {}
    for item in (w.strip() for w in text.split(",")):
        name, sep, dims = item.partition("=")
        try:
            shape = tuple(int(d) for d in dims.lower().split("x"))
        except ValueError:
            shape = ()
        if not sep or not name.strip() or not shape:
            raise OptionError(
                f"--layout item {item!r} must be NAME=SHAPE, e.g. W1=784x300 or b1=300 "
                "(items separated by commas, in θ's order)."
            )
        shapes[name.strip()] = shape
    return Layout(shapes, order=order)


def _shape(name: Any, value: Any) -> tuple[int, ...]:
    shape = (value,) if isinstance(value, int | np.integer) else value
    try:
        out = tuple(int(s) for s in shape)
        ok = all(s > 0 and s == t and not isinstance(t, bool)
                 for s, t in zip(out, shape, strict=True))
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise OptionError(
            f"layout[{name!r}] = {value!r} must be a shape: a tuple of positive ints such as "
            "(25, 401), or one int for a vector."
        )
    return out


def _tuple(shape: tuple[int, ...]) -> str:
    return f"({shape[0]},)" if len(shape) == 1 else str(shape)
