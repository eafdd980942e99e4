"""Checking PyTorch modules and custom ``autograd.Function``s with the NumPy core.

Analytic gradients come from ``torch.autograd`` (so the user's custom backwards run); the
numeric ones from finite differences of ``J`` evaluated with ``torch.func.functional_call`` on
*copies* of the parameters, in float64 where the module computes in its parameters' dtype, and
in the module's own dtype (with the core's noise-aware tolerance) where a kernel exists only in
float32/float16. torch is imported inside the functions: ``import gradcheck`` stays light.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal

from gradcheck._errors import OptionError
from gradcheck.frameworks import _higher
from gradcheck.frameworks import _shared as _adapters
from gradcheck.frameworks._torch_problem import (
    GRAD_INSIDE_NOTE,
    _FunctionProblem,
    _hook_notes,
    _ModuleProblem,
    _refuse_inplace,
    _refuse_parameter_writes,
    _refuse_unsupported_module,
    _with_grad_inside,
    _written_buffers_note,
)
from gradcheck.frameworks._torch_run import (  # noqa: F401 - _cast64: for tests
    _cast64,
    _devices,
    _rng_kept,
    _rows,
    _run,
    _untouched,
)
from gradcheck.frameworks._torch_views import (
    TORCH,
    _jacobian_objectives,
    _jacobian_report,
    _Objective,
    _objective,
    _present,
    _probe_outputs,
)
from gradcheck.frameworks._torch_vmap import _vmapped  # noqa: F401 - for tests
from gradcheck.report._sentences import Note, NoteCode

if TYPE_CHECKING:
    import torch

    from gradcheck.report._report import Report

Precision = Literal["auto", "float64", "native"]
Vectorize = Literal["auto", "vmap", "loop"]
# Rows of perturbed parameter vectors per torch.func.vmap chunk (bounds the activations'
# memory). 64 left the per-chunk dispatch dominant on small models; 256 measured fastest on
# the 64-32-10 MLP (BENCHMARKS.md, "vmap vs the loop").
CHUNK = 256
# Full Jacobians are compared entry by entry: a guard against asking for millions of checks.
MAX_JACOBIAN = 20_000


def check_module(
    module: torch.nn.Module,
    *inputs: Any,
    loss_fn: Callable[[Any], torch.Tensor] | None = None,
    precision: Precision = "auto",
    vectorize: Vectorize = "auto",
    order: int = 1,
    mode: Literal["reverse", "forward", "both"] = "reverse",
    **options: Any,
) -> Report:
    """Checks a module's backward (autograd, custom Functions included) against finite differences.

    Args:
      module: a ``torch.nn.Module``; its parameters with ``requires_grad`` are checked, named as
        in ``named_parameters()`` (``encoder.0.weight``). It comes back untouched: parameters and
        buffers bit for bit, ``requires_grad``, ``.grad``, ``training`` and the RNG states.
      inputs: the positional inputs of ``module(*inputs)``.
      loss_fn: ``J = loss_fn(module(*inputs))``; None uses J = ⟨output, R⟩ with a fixed random R
        drawn from ``seed`` (a plain sum would hide errors that cancel).
      precision: "auto" evaluates float64 copies when the module runs in float64, else the
        module's own dtype; "float64" insists on float64; "native" keeps the module's dtype.
      vectorize: "auto" batches perturbed losses with ``torch.func.vmap`` where the module allows
        it and loops otherwise; "loop" never batches; "vmap" raises if vmap fails.
      order: 1 checks the gradient; 2 also the backward's own derivatives (double backward,
        as ``gradgradcheck``), w.r.t. the parameters and the cotangent.
      mode: "reverse" (autograd backward), "forward" (forward-mode AD: a custom Function's
        ``jvp``) or "both" (the report names the mode that disagrees).
      options: keywords of ``gradcheck.check`` (``eps``, ``seed``, ``rtol``, ``coords``, ...).

    Returns:
      The ``Report`` of ``gradcheck.check``, with notes on precision and evaluation.

    >>> import torch, gradcheck.torch
    >>> _ = torch.manual_seed(0)
    >>> gradcheck.torch.check_module(torch.nn.Linear(3, 2), torch.randn(4, 3)).passed
    True
    """
    import torch

    if not isinstance(module, torch.nn.Module):
        raise OptionError(
            f"check_module() needs a torch.nn.Module, got {type(module).__name__}. For a plain "
            "function or MyFunction.apply, use gradcheck.torch.check_function(fn, *inputs)."
        )
    options = _adapters.check_options("check_module", options)
    higher = _higher.validate("check_module", order, mode)
    _refuse_unsupported_module(module)
    problem = _ModuleProblem(module, inputs)
    if not problem.names:
        raise OptionError(
            f"check_module(): {type(module).__name__} has no parameter with requires_grad=True; "
            "there is nothing to check."
        )
    raw = problem
    problem, _, notes = _present(problem)
    if not problem.names:
        return _adapters.nothing_checked(notes, options.get("scheme", "central"))
    options.setdefault("layers", problem.names)
    with _untouched(module):
        buffers, grad_inside = _refuse_parameter_writes(raw, type(module).__name__)
        if grad_inside:
            problem, notes = _with_grad_inside(problem), [*notes, GRAD_INSIDE_NOTE]
        objective = _objective(loss_fn, options.get("seed", 0))
        report = _run(
            problem, objective, options, precision, vectorize, "check_module", higher=higher
        )
    notes += _written_buffers_note(report, buffers) + _hook_notes(module)
    return _adapters.with_notes(report, notes)


def check_function(
    fn: Callable[..., Any],
    *inputs: Any,
    names: Sequence[str] | None = None,
    jacobian: bool = False,
    precision: Precision = "auto",
    vectorize: Vectorize = "auto",
    order: int = 1,
    mode: Literal["reverse", "forward", "both"] = "reverse",
    **options: Any,
) -> Report:
    """Checks the backward of ``fn`` (e.g. ``MyFunction.apply``) for its inputs with requires_grad.

    Each floating output gets its own random cotangent R (from ``seed``) and its own check, so a
    wrong entry is named by input and output: ``input1 (output 0)``.

    Args:
      fn: called as ``fn(*inputs)``; returns a tensor or a tuple of tensors.
      inputs: tensors (those with ``requires_grad`` are checked, also inside lists, tuples and
        dicts: ``input0.1``, ``input0.key``) and any other arguments.
      names: one name per input (default ``input0``, ``input1``, ...).
      jacobian: compare every entry of the Jacobian (one check per output entry; small inputs).
      precision, vectorize, order, mode, options: as for ``check_module``.

    Returns:
      The ``Report``; with several outputs its components are ``"<input> (output k)"``.

    >>> import torch, gradcheck.torch
    >>> x = torch.randn(5, dtype=torch.float64, requires_grad=True)
    >>> gradcheck.torch.check_function(torch.sin, x).passed
    True
    """
    _higher.keyword_of_fn(fn, options, "check_function")
    options = _adapters.check_options("check_function", options)
    higher = _higher.validate("check_function", order, mode, jacobian)
    problem, views, notes = _present(_FunctionProblem(fn, inputs, names))
    if not problem.names:
        return _adapters.nothing_checked(notes, options.get("scheme", "central"))
    if vectorize == "auto" and any(v.sparse for v in views):
        vectorize, notes = "loop", [*notes, Note(NoteCode.SPARSE_LOOP)]
    seed = options.get("seed", 0)
    with _rng_kept(_devices(inputs)):
        if _refuse_inplace(fn, inputs, names):
            problem = _with_grad_inside(problem)
            notes = [*notes, GRAD_INSIDE_NOTE]
        outputs, out_notes = _probe_outputs(problem)
        notes += out_notes
        if not jacobian:
            objective = _Objective(TORCH, seed, picks=list(outputs.values()))
            report = _run(
                problem, objective, options, precision, vectorize, "check_function",
                higher=higher, outputs=list(outputs.values()),
            )
            return _adapters.with_notes(report, notes)
        objectives, shapes = _jacobian_objectives(outputs, problem)
        rows = _rows(problem, objectives, options, precision, vectorize)
    return _adapters.with_notes(_jacobian_report(rows, shapes), notes)


