"""PyTorch adapter, batched evaluation: J of stacks of rows through ``torch.func.vmap``
(``_vmapped``), its probe against the plain call (``_batched``), and vmap's batched run
without its per-call argument checks once a pattern has passed them (``_unchecked_vmap``)."""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from gradcheck.frameworks import _batching
from gradcheck.frameworks._torch_problem import _Problem
from gradcheck.frameworks._torch_views import _Objective

# Rows of perturbed parameter vectors per torch.func.vmap chunk (bounds the activations'
# memory). 64 left the per-chunk dispatch dominant on small models; 256 measured fastest on
# the 64-32-10 MLP (BENCHMARKS.md, "vmap vs the loop").
CHUNK = 256


def _batched(
    problem: _Problem,
    objective: _Objective,
    params: dict[str, np.ndarray],
    dtypes: dict[str, Any],
    device: Any,
    cast: Callable,
    loss: Callable,
    vectorize: str,
) -> tuple[Callable[[np.ndarray], np.ndarray] | None, str]:
    """``fn(thetas (B, N)) -> J (B,)`` through ``torch.func.vmap``, or None and the reason."""
    if (refused := _batching.batched_refusal(vectorize)) is not None:
        return None, refused
    fn = _vmapped(problem, objective, params, dtypes, device, cast)
    rows = np.stack([fn.theta, fn.theta])
    return _batching.probe_batched(fn, rows, lambda: loss(params), vectorize, "torch.func.vmap")


def _vmapped(
    problem: _Problem,
    objective: _Objective,
    params: dict[str, np.ndarray],
    dtypes: dict[str, Any],
    device: Any,
    cast: Callable,
) -> _batching.Batched:
    """J of a stack of rows through ``torch.func.vmap``: full rows (every tensor batched), or
    ``by_tensor`` stacks that move one tensor, the others passed unbatched (``in_dims=None``):
    everything upstream of the moving tensor is computed once per chunk, and products with the
    fixed weights are plain matrix products instead of per-row ones."""
    import torch

    names = problem.names
    shapes = [params[n].shape for n in names]
    sizes = [math.prod(s) for s in shapes]
    fixed = [
        torch.tensor(params[n].reshape(-1), dtype=dtypes[n], device=device) for n in names
    ]

    # A one-dimensional tensor is its own row: no reshape (a view of the same shape) under vmap.
    shaped = [(n, s, s == (size,)) for n, s, size in zip(names, shapes, sizes, strict=True)]

    def one(*flat: Any) -> Any:
        tensors = {n: f if same else f.reshape(s)
                   for (n, s, same), f in zip(shaped, flat, strict=True)}
        return objective(problem.call(tensors, cast))

    # One vmap per in_dims pattern, and per whether the stack fits one chunk: a stack of up to
    # CHUNK rows is one chunk either way, and vmap without chunk_size runs it 4x faster (0.4 ms
    # against 1.7 ms for 3 rows of 25), with the same operations on the same rows.
    maps: dict[tuple[tuple[int | None, ...], bool], Callable] = {}
    every = (0,) * len(names)  # the in_dims patterns: every tensor batched, or one alone
    alone = [tuple(0 if k == t else None for k in range(len(names))) for t in range(len(names))]
    fast = _unchecked_vmap(len(names))
    grad_enabled, set_grad = torch.is_grad_enabled, torch._C._set_grad_enabled

    def run(flat: list[Any], dims: tuple[int | None, ...], rows: int) -> np.ndarray:
        key = (dims, rows <= CHUNK)
        # The same call, its checks done once per in_dims pattern in this process (they read
        # only the structure, which the pattern fixes: see _CHECKED)
        quick = key[1] and fast is not None and dims in _CHECKED
        if not quick and key not in maps:
            maps[key] = torch.func.vmap(one, in_dims=dims, chunk_size=None if key[1] else CHUNK)
        was = grad_enabled()
        set_grad(False)  # torch.no_grad() by hand, as in _check_one's loss
        try:
            if quick:
                out = fast(one, rows, list(dims), flat)
            else:
                out = maps[key](*flat)
                if key[1]:
                    _CHECKED.add(dims)
            return out.detach().cpu().double().numpy().reshape(-1)
        finally:
            set_grad(was)

    def full(thetas: np.ndarray) -> np.ndarray:
        # One tensor over the rows as they are (no copy on the CPU in float64), then views per
        # parameter: the columns are never copied out one by one.
        whole = torch.from_numpy(np.ascontiguousarray(thetas, dtype=np.float64))
        flat = [  # split_with_sizes: what torch.split(whole, sizes, 1) runs, minus its wrappers
            c.to(dtype=dtypes[n], device=device)
            for n, c in zip(names, whole.split_with_sizes(sizes, 1), strict=True)
        ]
        return run(flat, every, whole.shape[0])  # rows: every batched tensor's first axis

    def moving(t: int, rows: np.ndarray) -> np.ndarray:
        block = torch.from_numpy(np.ascontiguousarray(rows, dtype=np.float64))
        # Fresh copies of the fixed tensors on every call: a forward that writes into a
        # parameter must not reach the next stack.
        flat = [
            block.to(dtype=dtypes[n], device=device) if k == t else f.clone()
            for k, (n, f) in enumerate(zip(names, fixed, strict=True))
        ]
        return run(flat, alone[t], block.shape[0])

    theta = np.concatenate([params[n].reshape(-1).astype(np.float64) for n in names])
    return _batching.Batched(full, moving, theta, sizes)


# The in_dims patterns (0 for a batched tensor, None for a fixed one) whose one-chunk call
# went through the public torch.func.vmap once in this process. Its checks read only the
# arguments' structure, and _vmapped's calls of a pattern all have the same one by
# construction: tensors, every batched one two-dimensional (rows, entries) with the same
# rows, the fixed ones one-dimensional, no keyword. So the later calls of a pattern, in this
# check or a later one, skip them (_unchecked_vmap); the first call also loads vmap's
# decompositions (once per process).
_CHECKED: set[tuple[int | None, ...]] = set()


@functools.cache
def _unchecked_vmap(arity: int) -> Callable | None:
    """``fn(one, rows, in_dims, flat_args)``: torch.func.vmap of one chunk without its checks
    of the arguments' structure, or None where this torch has no such entry point.

    ``torch.func.vmap`` spends about half of its cost per call (0.1 ms of 0.2 ms on a few rows)
    flattening and checking its arguments before it runs the function batched
    (``torch._functorch.vmap._flat_vmap``, which does the work). A check calls it with the same
    structure every time (``arity`` tensors, the same ``in_dims`` per pattern), so the checks
    are done on the first call of each pattern (the public vmap) and the later calls go
    straight to the batched run: the same function on the same batched inputs, the same
    values bit for bit. Made once per arity (its signature test costs a small loss call).

    The batched run is ``_flat_vmap``'s own steps, without its pytree round trips (a flat
    tuple of tensors in, one tensor out): a vmap level entered, each batched argument wrapped
    (``_add_batch_dim``), ``one`` called, the batch dimension taken off its output (torch's
    ``_maybe_remove_batch_dim``: its errors for an output that is not a tensor), the level
    left on every path. An output that is not a tensor goes through ``_unwrap_batched``, as
    in ``_flat_vmap``."""
    try:
        from torch._functorch.vmap import (  # the names _flat_vmap's own steps use
            _add_batch_dim,
            _flat_vmap,
            _maybe_remove_batch_dim,
            _unwrap_batched,
            _vmap_decrement_nesting,
            _vmap_increment_nesting,
            vmap_increment_nesting,
        )
    except ImportError:  # another torch: the public vmap on every call
        return None
    parameters = list(inspect.signature(_flat_vmap).parameters)
    if parameters[:7] != ["func", "batch_size", "flat_in_dims", "flat_args", "args_spec",
                          "out_dims", "randomness"] or not _same_steps(_flat_vmap,
                                                                       vmap_increment_nesting):
        return None
    import torch

    tensor = torch.Tensor

    def call(one: Callable, rows: int, dims: list[int | None], flat: list[Any]) -> Any:
        level = _vmap_increment_nesting(rows, "error")
        try:
            out = one(*[a if d is None else _add_batch_dim(a, d, level)
                        for d, a in zip(dims, flat, strict=True)])
            if isinstance(out, tensor):
                return _maybe_remove_batch_dim(one.__name__, out, level, rows, 0)
            return _unwrap_batched(out, 0, level, rows, one)
        finally:
            _vmap_decrement_nesting()

    return call


def _same_steps(flat_vmap: Callable, nesting: Callable) -> bool:
    """Whether this torch's ``_flat_vmap`` and its nesting context are the ones whose steps
    ``_unchecked_vmap`` runs (read from their code's names; else the fast path is not used)."""
    try:
        names = set(flat_vmap.__code__.co_names)
        inner = nesting.__wrapped__.__code__.co_names  # contextlib keeps the generator
    except AttributeError:
        return False
    return names == {"vmap_increment_nesting", "_create_batched_inputs", "_unwrap_batched"} \
        and set(inner) == {"_vmap_increment_nesting", "_vmap_decrement_nesting"}
