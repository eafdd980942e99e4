"""Calling the user's loss on perturbed *copies* of the parameters; the originals are never touched.

Every evaluation request is "move one coordinate of one tensor to a value" (``coordinates``) or
"move one whole tensor along a direction" (``along``). Evaluators differ only in how they run the
requests (a loop here; batches, pools and Dask elsewhere), so they give identical numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from gradcheck._errors import LossOutputError, LossRaisedError, NonFiniteError
from gradcheck._tree import Tree


class Workspace:
    """Private float64 (or complex128) copies of the user's arrays, in the user's structure."""

    def __init__(self, tree: Tree, dtype: type = np.float64) -> None:
        self.names = tree.names
        self.arrays = [np.array(leaf, dtype=dtype, copy=True) for leaf in tree.leaves]
        self.flats = [a.reshape(-1) for a in self.arrays]  # views into ``arrays``
        self.originals = [a.copy() for a in self.arrays]
        self.struct = tree.rebuild(list(self.arrays))

    def unchanged(self) -> bool:
        return all(np.array_equal(a, o, equal_nan=True) for a, o in zip(self.arrays, self.originals, strict=True))


def to_scalar(value: Any, *, complex_ok: bool = False) -> float | complex:
    """The loss's return value as a Python number, or a clear ``LossOutputError``.

    Accepts a float, a 0-d or size-1 array (NumPy, torch, JAX: anything with ``shape`` and
    ``item()``).
    """
    item = value
    shape = getattr(value, "shape", None)
    if shape is not None:
        if int(np.prod(shape)) != 1:
            raise LossOutputError(
                "loss(params) must return a scalar J(θ) (a float, 0-d or size-1 array); it "
                f"returned an array of shape {tuple(shape)}. Reduce it, e.g. with .mean() over "
                "the batch."
            )
        item = value.item() if hasattr(value, "item") else np.asarray(value).reshape(()).item()
    if isinstance(item, complex):
        if complex_ok:
            return item
        raise LossOutputError(
            f"loss(params) returned the complex number {item!r}; return a real float "
            "(or use scheme='complex', which expects that)."
        )
    if isinstance(item, bool) or not isinstance(item, float | int | np.number):
        raise LossOutputError(
            f"loss(params) returned {type(value).__name__} {item!r}; it must return a number "
            "J(θ) (a float, 0-d or size-1 array)."
        )
    return float(item)


class SerialEvaluator:
    """Runs evaluation requests one by one on the workspace, restoring each coordinate after."""

    def __init__(
        self, loss: Callable[[Any], Any], workspace: Workspace, *, complex_step: bool = False
    ) -> None:
        self.loss = loss
        self.ws = workspace
        self.complex_step = complex_step
        self.calls = 0

    def _call(self, where: str) -> float | complex:
        self.calls += 1
        try:
            value = self.loss(self.ws.struct)
        except Exception as error:  # the user's code: keep the cause, say where it happened
            raise LossRaisedError(
                f"loss(params) raised {type(error).__name__}: {error} ({where}). "
                "Your parameters are untouched."
            ) from error
        out = to_scalar(value, complex_ok=self.complex_step)
        if not np.isfinite(out):
            raise NonFiniteError(
                f"loss(params) returned {out} ({where}). Is the loss at a singularity "
                "(log(0), division by zero)? Try a smaller eps or check the loss there."
            )
        return out

    def base(self) -> float | complex:
        """J at the unperturbed parameters."""
        return self._call("at the given parameters")

    def coordinates(self, t: int, idx: np.ndarray, values: np.ndarray) -> np.ndarray:
        """J with ``tensor[t].flat[idx[k]] = values[k]``, one evaluation per k."""
        flat = self.ws.flats[t]
        out = np.empty(len(idx), dtype=np.complex128 if self.complex_step else np.float64)
        name = self.ws.names[t]
        for k, (i, v) in enumerate(zip(idx.tolist(), values.tolist(), strict=True)):
            old = flat[i]
            flat[i] = v
            try:
                out[k] = self._call(f"with {name} entry {i} (flat) set to {v!r}")
            finally:
                flat[i] = old
        return out

    def along(self, t: int, direction: np.ndarray, steps: np.ndarray) -> np.ndarray:
        """J with ``tensor[t] += s * direction`` for each s in ``steps``."""
        flat = self.ws.flats[t]
        original = flat.copy()
        out = np.empty(len(steps), dtype=np.float64)
        try:
            for k, s in enumerate(steps.tolist()):
                flat[:] = original + s * direction
                out[k] = float(np.real(self._call(f"moving {self.ws.names[t]} along a direction")))
        finally:
            flat[:] = original
        return out
