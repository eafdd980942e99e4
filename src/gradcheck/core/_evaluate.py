"""Calling the user's loss on perturbed *copies* of the parameters; the originals are never touched.

Every evaluation request is "move one coordinate of one tensor to a value" (``coordinates``) or
"move one whole tensor along a direction" (``along``). Evaluators differ only in how they run the
requests (a loop here; batches, pools and Dask elsewhere), so they give identical numbers.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from gradcheck._errors import (
    LossOutputError,
    LossRaisedError,
    NonFiniteError,
)
from gradcheck.core._tree import Tree

# Where a loss call was, for an error message: the words, a function that words them, or a
# coordinate request's (name, shape, flat index, value), worded only when an error is raised.
Where = str | Callable[[], str] | tuple[str, tuple[int, ...], int, float]


class Workspace:
    """Private float64 (or complex128) copies of the user's arrays, in the user's structure.

    The copies are C-contiguous whatever the user's layout (Fortran order, transposed or strided
    views), so that ``flats`` are views and a perturbation of ``flats[t][i]`` is one of entry i
    in C order: the numbers are those of a C-contiguous copy. ``struct`` is handed to the loss
    fresh on every call, so a loss that rebinds an entry (``p["W"] = p["W"].copy()``) changes
    only its own mapping, never the arrays the next perturbation writes into.
    """

    def __init__(self, tree: Tree, dtype: type = np.float64) -> None:
        self.names = tree.names
        self.arrays: list[np.ndarray] = [
            np.array(leaf, dtype=dtype, copy=True, order="C") for leaf in tree.leaves
        ]
        self.flats = [a.reshape(-1) for a in self.arrays]  # views into ``arrays``
        self.originals = [a.copy() for a in self.arrays]
        self._rebuild = tree.rebuild

    @property
    def struct(self) -> Any:
        """The user's structure around our arrays: a new container on every access."""
        return self._rebuild(self.arrays)

    def unchanged(self) -> bool:
        # equal everywhere settles it at once; else NaN = NaN counts as unchanged
        return all(bool((a == o).all()) or np.array_equal(a, o, equal_nan=True)
                   for a, o in zip(self.arrays, self.originals, strict=True))


def to_scalar(value: Any, *, complex_ok: bool = False) -> float | complex:
    """The loss's return value as a Python number, or a clear ``LossOutputError``.

    Accepts a float, a 0-d or size-1 array (NumPy, torch, JAX: anything with ``shape`` and
    ``item()``).
    """
    if type(value) is float or isinstance(value, np.float64):  # the common case, kept fast
        return float(value)
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return float(value)
        except OverflowError:
            raise NonFiniteError(
                f"loss(params) returned an int with {len(str(abs(value)))} digits, too large "
                "for a float (above 1.8e308). Return J as a float; if J is this large, rescale "
                "the loss (e.g. take its log or divide it by a constant)."
            ) from None
    item = value
    shape = getattr(value, "shape", None)
    if shape is not None:
        if math.prod(shape) != 1:
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
            f"loss(params) returned {type(value).__name__} {_short(item)}; it must return a "
            f"number J(θ) (a float, 0-d or size-1 array).{_output_hint(value)}"
        )
    try:
        return float(item)
    except OverflowError:
        raise NonFiniteError(
            f"loss(params) returned {type(value).__name__} {str(item)[:20]}..., too large for "
            "a float (above 1.8e308). Rescale the loss (e.g. divide it by a constant)."
        ) from None


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 5] + " ...)"


def _is_number(x: Any) -> bool:
    return isinstance(x, float | int | np.number) and not isinstance(x, bool) or (
        getattr(x, "shape", None) is not None and math.prod(x.shape) == 1
    )


def _output_hint(value: Any) -> str:
    """The fix for a loss that returned a container: a (loss, grads) / (cost, cache) pair (the
    courses' ``TwoLayerNet.loss`` and ``forward_propagation_n``), or one number in a list."""
    if value is None:
        return " Does the loss function end with its return?"
    if not isinstance(value, list | tuple) or not value or not _is_number(value[0]):
        return ""
    if len(value) == 1:
        return " It holds one number: return that number itself (e.g. lambda p: f(p)[0])."
    return (
        f" Its first of {len(value)} items is a number: a (loss, grads) or (cost, cache) pair? "
        "Pass the loss alone, e.g. lambda p: f(p)[0]."
    )


class SerialEvaluator:
    """Runs evaluation requests one by one on the workspace, restoring each coordinate after."""

    block = 1024  # coordinates per request from the checker: the grain of progress and Ctrl-C

    def __init__(
        self, loss: Callable[[Any], Any], workspace: Workspace, *, complex_step: bool = False
    ) -> None:
        self.loss = loss
        self.ws = workspace
        self.complex_step = complex_step
        self.calls = 0

    def _call(self, where: Where, finite: bool = True) -> float | complex:
        """J at the workspace; ``finite=False`` (perturbed points) returns a NaN/inf J for the
        verdict to handle (a step that leaves the loss's domain) instead of raising. ``where``:
        the point, for an error message (a function, or a coordinate's (name, shape, index,
        value): worded only when one is raised)."""
        self.calls += 1
        try:
            value = self.loss(self.ws.struct)
        except Exception as error:  # the user's code: keep the cause, say where it happened
            raise LossRaisedError(
                f"loss(params) raised {type(error).__name__}: {error} ({_said(where)}). "
                "Your parameters are untouched."
            ) from error
        out = to_scalar(value, complex_ok=self.complex_step)
        if finite and not (math.isfinite(out) if type(out) is float else np.isfinite(out)):
            raise NonFiniteError(
                f"loss(params) returned {out} ({_said(where)}). Is the loss at a singularity "
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
        name, shape = self.ws.names[t], self.ws.arrays[t].shape
        for k, (i, v) in enumerate(zip(idx.tolist(), values.tolist(), strict=True)):
            old = flat[i]
            flat[i] = v
            try:
                out[k] = self._call((name, shape, i, v), finite=False)  # worded on an error
            finally:
                flat[i] = old
        return out

    def along(self, t: int, direction: np.ndarray, steps: np.ndarray) -> np.ndarray:
        """J with ``tensor[t] += s * direction`` for each s in ``steps``."""
        flat = self.ws.flats[t]
        original = flat.copy()
        out = np.empty(len(steps), dtype=np.float64)
        where = f"moving {self.ws.names[t]} along a direction"
        try:
            for k, row in enumerate(_moved(original, direction, steps)):
                flat[:] = row
                out[k] = float(self._call(where, finite=False).real)
        finally:
            flat[:] = original
        return out

    def close(self) -> None:
        """Nothing to release for the serial loop."""


# --- Batched, pooled and Dask evaluation -------------------------------------------------------
#
# Each answers the same requests as ``SerialEvaluator`` and, for the plain ``loss``, runs the
# very same per-coordinate loop on workers (``_coordinates_chunk``), so the numbers are
# bit-for-bit the serial ones. ``along`` (a handful of calls per tensor) stays in this process.

# Bytes of stacked parameter vectors handed to a batched loss at once: large enough to amortise
# the call, small enough to stay in cache on a CPU (256 MiB stacks ran 3x slower per row).
MEMORY = 32 * 2**20
class BatchedEvaluator(SerialEvaluator):
    """Evaluates perturbed parameter vectors in stacks with ``batched_loss(thetas) -> Js``.

    ``thetas`` has shape (B, N): each row is every parameter raveled in C order and concatenated
    in ``flatten(params).names`` order; B is bounded so that a stack takes at most ``memory``
    bytes.

    A batched loss may also offer ``batched_loss.by_tensor(t, rows) -> Js``, where ``rows``
    (B, n_t) holds tensor t's entries alone and every other tensor stays at its given value:
    the stacks that move one tensor (all of them) then go through it, so the loss can hold the
    other tensors fixed instead of batching copies of them (vmap's ``in_dims=None``). Same rows,
    same calls, same counts; only the stack is n_t wide instead of N.
    """

    block = 4096

    def __init__(
        self,
        batched_loss: Callable[[np.ndarray], Any],
        workspace: Workspace,
        *,
        memory: int = MEMORY,
    ) -> None:
        super().__init__(batched_loss, workspace)
        sizes = [f.size for f in workspace.flats]
        self.starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self.theta = np.concatenate([np.real(f) for f in workspace.flats]).astype(np.float64)
        self.memory = memory
        self.rows = max(1, int(memory // (8 * max(self.theta.size, 1))))
        self.by_tensor = getattr(batched_loss, "by_tensor", None)

    def _batch(
        self, rows: np.ndarray, where: str, finite: bool = True, t: int | None = None
    ) -> np.ndarray:
        """Js of a stack: full rows (B, N), or tensor t's entries alone (B, n_t) by_tensor."""
        self.calls += len(rows)
        try:
            out = self.loss(rows) if t is None else self.by_tensor(t, rows)  # type: ignore[misc]
        except Exception as error:
            raise LossRaisedError(
                f"batched_loss(thetas) raised {type(error).__name__}: {error} ({where}). "
                "Your parameters are untouched."
            ) from error
        js = _batch_values(out, where)
        if js.shape != (len(rows),):
            raise LossOutputError(
                f"batched_loss(thetas) must return one J per row, shape ({len(rows)},), for "
                f"thetas of shape {rows.shape}; it returned shape {js.shape}."
            )
        if finite and not np.isfinite(js).all():
            raise NonFiniteError(
                f"batched_loss(thetas) returned a non-finite J ({where}). Is the loss at a "
                "singularity (log(0), division by zero)? Try a smaller eps."
            )
        return js

    def base(self) -> float:
        return float(self._batch(self.theta[None, :].copy(), "at the given parameters")[0])

    def _rows_of(self, t: int) -> tuple[np.ndarray, int, int, int | None]:
        """What a stack moving tensor t starts from (every row), where t's columns start in
        it, the rows one stack may hold, and the ``by_tensor`` index (None: full rows)."""
        if self.by_tensor is None:
            return self.theta, int(self.starts[t]), self.rows, None
        own = self.theta[self.starts[t] : self.starts[t + 1]]
        return own, 0, max(1, int(self.memory // (8 * max(own.size, 1)))), t

    def coordinates(self, t: int, idx: np.ndarray, values: np.ndarray) -> np.ndarray:
        out = np.empty(len(idx))
        start, offset, per_stack, which = self._rows_of(t)
        cols = offset + np.asarray(idx, dtype=np.int64)
        for lo in range(0, len(idx), per_stack):
            c, v = cols[lo : lo + per_stack], np.real(values[lo : lo + per_stack])
            rows = np.repeat(start[None, :], len(c), axis=0)
            rows[np.arange(len(c)), c] = v
            where = f"moving {self.ws.names[t]} entries"
            out[lo : lo + len(c)] = self._batch(rows, where, finite=False, t=which)
        return out

    def along(self, t: int, direction: np.ndarray, steps: np.ndarray) -> np.ndarray:
        start, a, _, which = self._rows_of(t)
        b = a + int(self.starts[t + 1] - self.starts[t])
        rows = np.repeat(start[None, :], len(steps), axis=0)
        original = start[a:b]
        for k, s in enumerate(steps.tolist()):
            rows[k, a:b] = original + s * direction
        where = f"moving {self.ws.names[t]} along a direction"
        return self._batch(rows, where, finite=False, t=which)


def _moved(original: np.ndarray, direction: np.ndarray, steps: np.ndarray) -> Any:
    """θ + s·d for each step s, in order: one array for a small tensor, else one at a time."""
    if original.size <= 4096:
        return original + np.multiply.outer(steps, direction)
    return (original + s * direction for s in steps.tolist())


def _said(where: Where) -> str:
    if isinstance(where, tuple):  # a coordinate: (name, shape, flat index, value)
        return _entry(*where)
    return where() if callable(where) else where


def _entry(name: str, shape: tuple[int, ...], i: int, v: float) -> str:
    """Where a coordinate request was, for an error message: ``with W[0, 2] set to 0.5``."""
    return f"with {name}[{', '.join(map(str, np.unravel_index(i, shape)))}] set to {v!r}"


def _batch_values(out: Any, where: str) -> np.ndarray:
    """``batched_loss``'s Js as float64, refused as strictly as ``loss``'s J (complex, objects)."""
    if hasattr(out, "detach"):  # a torch tensor
        out = out.detach().cpu().numpy()
    try:
        js = np.asarray(out)
    except Exception as error:
        raise LossOutputError(
            f"batched_loss(thetas) returned {type(out).__name__}, not an array of Js ({where})."
        ) from error
    if js.dtype.kind == "c":
        raise LossOutputError(
            f"batched_loss(thetas) returned complex values ({where}); return the real Js (a "
            "float array). The imaginary part would be silently dropped."
        )
    if js.dtype.kind not in "fiu" or js.dtype.kind == "b":
        raise LossOutputError(
            f"batched_loss(thetas) returned an array of dtype {js.dtype} ({where}); it must "
            "return one real float J per row."
        )
    if js.dtype.itemsize <= 8:  # float64 and narrower, and ints: the cast never overflows
        return js.astype(np.float64)
    with np.errstate(over="ignore"):  # a longdouble J beyond float64's range
        return js.astype(np.float64)
