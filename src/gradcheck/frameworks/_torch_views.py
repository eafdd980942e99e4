"""PyTorch adapter, part 2: the tensors as the NumPy core sees them (real, dense, finite,
non-empty), PyTorch's side of the adapter protocol (``_protocol.Adapter``), the outputs that
enter J, and full Jacobians (``jacobian=True``)."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from gradcheck._errors import GradCheckError, OptionError
from gradcheck.frameworks import _protocol
from gradcheck.frameworks import _shared as _adapters
from gradcheck.frameworks._torch_problem import (
    _cast_tree,
    _fresh,
    _leaves,
    _Problem,
)
from gradcheck.report._sentences import Note, NoteCode

if TYPE_CHECKING:
    from gradcheck.report._report import Report

MAX_JACOBIAN = 20_000  # full Jacobians are compared entry by entry: a guard against millions

# --- presenting tensors to the NumPy core: real, dense, finite, non-empty --------------------


class _View:
    """One checked tensor as the core sees it: the real float tensor ``present()``, turned back
    into what ``fn`` takes by ``decode`` (complex from its last axis of 2, sparse from its stored
    values, non-finite entries put back). Differentiable, so autograd maps the framework's
    gradient onto the same real coordinates under its own convention."""

    def __init__(self, name: str, tensor: Any) -> None:
        import torch

        self.name, self.layout = name, tensor.layout
        self.sparse = tensor.layout in (torch.sparse_coo, torch.sparse_csr)
        if tensor.layout == torch.sparse_coo:
            tensor = tensor.detach().coalesce()
            self.index, values = (tensor.indices(),), tensor.values()
        elif tensor.layout == torch.sparse_csr:
            self.index, values = (tensor.crow_indices(), tensor.col_indices()), tensor.values()
        elif tensor.layout != torch.strided:
            raise OptionError(
                f"check_function(): input {name} has layout {tensor.layout}, which gradcheck "
                "cannot perturb; pass it dense (.to_dense()) or as sparse COO/CSR."
            )
        else:
            values = tensor
        self.size = tuple(tensor.shape)
        self.complex = values.is_complex()
        real = torch.view_as_real(values.detach().resolve_conj()) if self.complex else values
        real = real.detach()
        finite = torch.isfinite(real)
        self.fill = None if bool(finite.all()) else real.clone()
        self.finite = finite
        self.real = torch.where(finite, real, torch.zeros_like(real)) if self.fill is not None else real

    @property
    def empty(self) -> bool:
        return self.real.numel() == 0

    def decode(self, r: Any) -> Any:
        import torch

        if self.fill is not None:
            r = torch.where(self.finite.to(r.device), r, self.fill.to(r.dtype))
        if self.complex:
            r = torch.complex(r[..., 0], r[..., 1])
        if not self.sparse:
            return r
        with warnings.catch_warnings():  # "sparse CSR support is in beta"
            warnings.simplefilter("ignore", UserWarning)
            if self.layout == torch.sparse_coo:
                return torch.sparse_coo_tensor(self.index[0], r, self.size, check_invariants=False)
            return torch.sparse_csr_tensor(*self.index, r, self.size, check_invariants=False)

    def notes(self) -> list[str]:
        notes = []
        if self.sparse:
            kind = "COO" if str(self.layout).endswith("coo") else "CSR"
            notes.append(Note(NoteCode.SPARSE_INPUT, self.name, {
                "kind": kind, "stored": int(self.real.shape[0]), "size": int(np.prod(self.size)),
            }))
        bad = 0 if self.fill is None else int((~self.finite).sum())
        return notes + _adapters.view_notes(self.name, self.complex, _adapters.TORCH[0], bad)


def _present(problem: _Problem) -> tuple[_Problem, list[_View], list[str]]:
    """The problem as the core sees it: complex, sparse and non-finite tensors as real dense
    ones, empty tensors left out (fixed at their values) with a note each."""
    views = {n: _View(n, problem.tensors[n]) for n in problem.names}
    notes = [
        Note(NoteCode.EMPTY, n, {"shape": tuple(problem.tensors[n].shape)})
        for n, v in views.items()
        if v.empty
    ]
    kept = [v for v in views.values() if not v.empty]
    notes += [n for v in kept for n in v.notes()]
    if not notes and not any(v.sparse or v.complex or v.fill is not None for v in kept):
        return problem, kept, []
    originals = dict(problem.tensors)
    inner = problem.call

    def call(tensors: dict[str, Any], cast: Callable[[Any], Any]) -> Any:
        full = {n: v.decode(tensors[n]) for n, v in views.items() if n in tensors}
        for n in views:
            if n not in tensors:  # an empty tensor: its own value, cast as the others are
                full[n] = _cast_tree(originals[n], cast)
        return inner(full, cast)

    presented = _Problem([v.name for v in kept], {v.name: v.real for v in kept}, call)
    presented.unchecked = {v.name: ~v.finite.cpu().numpy() for v in kept if v.fill is not None}
    presented.complex = [v.name for v in kept if v.complex]
    return presented, kept, notes


# --- the objective J ------------------------------------------------------------------------


class _Torch:
    """PyTorch's side of the adapter protocol (``_protocol.Adapter``)."""

    def leaves(self, out: Any) -> list[Any]:
        return _leaves(out)

    def is_complex(self, leaf: Any) -> bool:
        return leaf.is_complex()

    def real_view(self, leaf: Any) -> Any:
        return _real_view(leaf)

    def shape(self, view: Any) -> tuple[int, ...]:
        return tuple(view.shape)

    def size(self, leaf: Any) -> int:
        return leaf.numel()

    def scalar(self, leaf: Any) -> Any:
        view = _real_view(leaf)
        return view if view.dim() == 0 else view.reshape(())  # a 0-d J as it is: no view of it

    def constant(self, view: Any, r: np.ndarray) -> Any:
        import torch

        return torch.as_tensor(r, dtype=view.dtype, device=view.device)

    def key(self, view: Any) -> Any:
        return (view.dtype, view.device)

    def dot(self, view: Any, c: Any) -> Any:
        return (view * c).sum()

    def entry(self, view: Any, m: int) -> Any:
        return view.reshape(-1)[m]

    def loss(self, j: Any) -> Any:
        return j


TORCH = _Torch()
_Objective = _protocol.Objective


def _real_view(t: Any) -> Any:
    """A dense real tensor with the output's values (complex: a last axis of 2)."""
    import torch

    if t.layout != torch.strided:
        t = t.to_dense()
    return torch.view_as_real(t.resolve_conj()) if t.is_complex() else t


def _objective(loss_fn: Callable | None, seed: int) -> _protocol.Objective:
    return _Objective(TORCH, seed, loss_fn)


def _probe_outputs(problem: _Problem) -> tuple[dict[str, int], list[str]]:
    """The differentiable outputs of ``fn`` (label -> position among its floating/complex
    outputs), and a note on those left out: integer outputs, and floating ones that carry no
    gradient (no grad_fn: batch-norm's saved mean/rstd, ``mark_non_differentiable``), as
    ``torch.autograd.gradcheck`` leaves them out."""

    flat = _all_tensors(_call_probe(problem))
    leaves = [t for t in flat if t.is_floating_point() or t.is_complex()]
    n = len(leaves)
    if n == 0:
        raise GradCheckError(
            "check_function(): fn returned no floating-point tensor, so there is no gradient "
            "to check. Return the tensor (or tuple of tensors) your backward differentiates."
        )
    keep = [k for k, t in enumerate(leaves) if t.requires_grad]
    if not keep:
        raise GradCheckError(
            f"check_function(): none of fn's {n} floating output(s) carries a gradient (no "
            "grad_fn: computed under no_grad, detached, or marked non-differentiable), so there "
            "is no backward to check."
        )
    notes = []
    ints = [str(t.dtype).replace("torch.", "") for t in flat if not t.is_floating_point()
            and not t.is_complex()]
    if ints:
        notes.append(Note(NoteCode.INTEGER_OUTPUTS, None,
                          {"count": len(ints), "dtypes": tuple(sorted(set(ints)))}))
    if len(keep) < n:
        left = tuple(k for k in range(n) if k not in keep)
        notes.append(Note(NoteCode.UNDIFFERENTIABLE_OUTPUTS, None, {"outputs": left}))
    if n == 1:
        return {"output": 0}, notes
    return {f"output {k}": k for k in keep}, notes


def _call_probe(problem: _Problem) -> Any:
    """fn's output on detached copies that require grad (so grad_fn tells what is
    differentiable); under no_grad if fn cannot run that way (in-place writes on leaves)."""
    import torch

    try:
        with torch.enable_grad():
            leaves = {n: _fresh(t).requires_grad_(True) for n, t in problem.tensors.items()}
            return problem.call(leaves, lambda x: x)
    except Exception:  # fall back: every floating output counts as differentiable
        with torch.no_grad():
            out = problem.call({n: t.detach() for n, t in problem.tensors.items()}, lambda x: x)
        return _ForcedGrad(out)


class _ForcedGrad:
    def __init__(self, out: Any) -> None:
        self.out = out


def _all_tensors(out: Any) -> list[Any]:
    import torch

    if isinstance(out, _ForcedGrad):
        return [_Differentiable(t) for t in _all_tensors(out.out)]
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, list | tuple):
        return [t for v in out for t in _all_tensors(v)]
    if isinstance(out, dict):
        return [t for v in out.values() for t in _all_tensors(v)]
    return []


class _Differentiable:
    """A tensor from the no-grad fallback probe: treated as differentiable if floating."""

    def __init__(self, t: Any) -> None:
        self.t, self.dtype, self.shape = t, t.dtype, t.shape
        self.requires_grad = t.is_floating_point() or t.is_complex()

    def is_floating_point(self) -> bool:
        return self.t.is_floating_point()

    def is_complex(self) -> bool:
        return self.t.is_complex()


def _jacobian_objectives(
    outputs: dict[str, int], problem: _Problem
) -> tuple[dict[tuple[str, int], _Objective], dict[str, tuple[int, ...]]]:
    """One objective per output entry (J = out_k.flat[m]), and each output's shape (complex
    outputs: real and imaginary parts, a last axis of 2)."""
    import torch

    with torch.no_grad():
        out = problem.call({n: _fresh(t) for n, t in problem.tensors.items()}, lambda x: x)
    leaves = _leaves(out)
    shapes = {label: tuple(_real_view(leaves[k]).shape) for label, k in outputs.items()}
    n_in = sum(t.numel() for t in problem.tensors.values())
    total = n_in * sum(int(np.prod(s)) for s in shapes.values())
    if total > MAX_JACOBIAN:
        raise OptionError(
            f"check_function(jacobian=True) would compare {total:,} Jacobian entries (more than "
            f"{MAX_JACOBIAN:,}); use smaller inputs, or jacobian=False (random cotangents), "
            "which catches the same bugs."
        )
    objectives = {
        (label, m): _Objective(TORCH, 0, picks=(outputs[label],), entry=m)
        for label, shape in shapes.items()
        for m in range(int(np.prod(shape)))
    }
    return objectives, shapes


def _jacobian_report(rows: dict[tuple[str, int], Report], shapes: dict[str, tuple]) -> Report:
    """One component per (input, output): the Jacobian block, indexed [output..., input...]."""
    from gradcheck.report._report import Report

    first = next(iter(rows.values()))
    components = {}
    for label, shape in shapes.items():
        parts = [rows[(label, m)] for m in range(int(np.prod(shape)))]
        for name in first.components:
            block = _stack(f"{name} ({label})", [r.components[name] for r in parts], shape)
            components[block.name] = block
    notes = dict.fromkeys(n for r in rows.values() for n in r.notes)
    suspects = tuple(n for n, c in components.items() if c.passed is False)
    numeric = np.concatenate([c.numeric_array[_checked(c.flags)] for c in components.values()])
    analytic = np.concatenate([c.analytic_array[_checked(c.flags)] for c in components.values()])
    from gradcheck.report._model import relative_error, verdict

    interrupted = any(r.interrupted for r in rows.values())
    return Report(  # the one rule over the rows (each a report) and the blocks
        passed=verdict([*(r.passed for r in rows.values()),
                        *(c.passed for c in components.values())], interrupted=interrupted),
        relative_error=relative_error(numeric, analytic),
        evaluations=sum(r.evaluations for r in rows.values()),
        eps={n: c.eps for n, c in components.items()},
        scheme=first.scheme,
        components=components,
        suspects=suspects,
        notes=(
            Note(NoteCode.JACOBIAN),
            *notes,
        ),
        interrupted=interrupted,
        seconds=sum(r.seconds for r in rows.values()),
    )


def _checked(flags: np.ndarray) -> np.ndarray:
    from gradcheck.report._model import AGREES, MISMATCH

    return (flags == AGREES) | (flags == MISMATCH)


def _stack(name: str, rows: list[Any], out_shape: tuple[int, ...]) -> Any:
    """Per-output-entry components of one input stacked into a Jacobian block component."""
    from gradcheck.report._model import Component

    shape = tuple(out_shape) + tuple(rows[0].shape)

    def block(attr: str) -> np.ndarray:
        return np.stack([getattr(r, attr) for r in rows]).reshape(shape)

    stacked = Component(  # the summary figures are filled in by recount
        name=name,
        shape=shape,
        relative_error=None,
        max_abs_error=0.0,
        worst_index=(),
        numeric=0.0,
        analytic=0.0,
        tolerance=0.0,
        checked=0,
        skipped=0,
        passed=None,
        unjudged=sum(r.unjudged for r in rows),  # what each row left unjudged, the block too
        eps=max(r.eps for r in rows),
        noise=max(r.noise for r in rows),
        dtype=rows[0].dtype,
        evaluated_dtype=rows[0].evaluated_dtype,
        value_array=np.broadcast_to(rows[0].value_array, shape).copy(),
        analytic_array=block("analytic_array"),
        bound_array=block("bound_array"),
    )
    return _adapters.recount(stacked, block("flags"), block("numeric_array"))


