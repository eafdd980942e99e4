"""Checking PyTorch modules and custom ``autograd.Function``s with the NumPy core.

Analytic gradients come from ``torch.autograd`` (so the user's custom backwards run); the
numeric ones from finite differences of ``J`` evaluated with ``torch.func.functional_call`` on
*copies* of the parameters, in float64 where the module computes in its parameters' dtype, and
in the module's own dtype (with the core's noise-aware tolerance) where a kernel exists only in
float32/float16. torch is imported inside the functions: ``import gradcheck`` stays light.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from gradcheck._errors import GradCheckError, LossRaisedError, OptionError, StochasticLossError
from gradcheck.frameworks import _higher
from gradcheck.frameworks import _shared as _adapters

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
            problem, {"output": objective}, options, precision, vectorize, "check_module",
            higher=higher,
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
        vectorize, notes = "loop", [*notes, "Sparse inputs: perturbed losses evaluated one by one."]
    seed = options.get("seed", 0)
    with _rng_kept(_devices(inputs)):
        if _refuse_inplace(fn, inputs, names):
            problem = _with_grad_inside(problem)
            notes = [*notes, GRAD_INSIDE_NOTE]
        outputs, out_notes = _probe_outputs(problem)
        notes += out_notes
        if not jacobian:
            objectives = {k: _objective(None, seed, pick=i) for k, i in outputs.items()}
            report = _run(
                problem, objectives, options, precision, vectorize, "check_function",
                higher=higher,
            )
            return _adapters.with_notes(report, notes)
        objectives, shapes = _jacobian_objectives(outputs, problem)
        rows = _run(problem, objectives, options, precision, vectorize, "check_function", raw=True)
    return _adapters.with_notes(_jacobian_report(rows, shapes), notes)


# --- what is being checked ------------------------------------------------------------------


@dataclass
class _Problem:
    """Named tensors to check, and ``call(tensors) -> outputs`` with every other argument bound."""

    names: list[str]
    tensors: dict[str, Any]
    call: Callable[[dict[str, Any], Callable[[Any], Any]], Any] = field(repr=False)
    # Set by ``_present``: entries left unchecked (non-finite inputs), complex tensors' names.
    unchecked: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    complex: list[str] = field(default_factory=list, repr=False)


class _ModuleProblem(_Problem):
    def __init__(self, module: Any, inputs: tuple[Any, ...]) -> None:
        params = {n: p for n, p in module.named_parameters() if p.requires_grad}
        frozen = {n: p for n, p in module.named_parameters() if not p.requires_grad}
        buffers = dict(module.named_buffers())

        def call(tensors: dict[str, Any], cast: Callable[[Any], Any]) -> Any:
            from torch.func import functional_call

            # Fresh buffer copies each call: train-mode BatchNorm updates its running stats
            # in place, and those updates must reach neither the module nor the next call.
            consts = {n: _fresh(b, cast) for n, b in {**frozen, **buffers}.items()}
            args = tuple(_cast_tree(x, lambda t: _fresh(t, cast)) for x in inputs)
            return functional_call(module, {**tensors, **consts}, args)

        def writes() -> tuple[list[str], list[str]]:
            """The parameters and buffers one forward (on copies, no_grad) writes into."""
            import torch
            from torch.func import functional_call

            state = {n: _fresh(t) for n, t in {**params, **frozen, **buffers}.items()}
            args = tuple(_cast_tree(x, _fresh) for x in inputs)
            with torch.no_grad():
                functional_call(module, state, args)
            originals = {**params, **frozen, **buffers}
            changed = [n for n, t in state.items() if not _same_tree(originals[n], t)]
            return [n for n in changed if n in params], [n for n in changed if n in buffers]

        super().__init__(list(params), params, call)
        self.writes = writes


class _FunctionProblem(_Problem):
    def __init__(self, fn: Callable, inputs: tuple[Any, ...], names: Sequence[str] | None) -> None:
        labels = _adapters.input_labels(inputs, names)
        # Tensors with requires_grad, also inside lists, tuples and dicts (torch.cat([a, b])):
        # name -> path (input position, then keys), named input0, input0.1, input0.key.
        checked: dict[str, tuple[Any, ...]] = {}
        for i, x in enumerate(inputs):
            for path, t in _grad_leaves(x, (i,)):
                name = ".".join([labels[i], *(str(k) for k in path[1:])])
                if not (t.is_floating_point() or t.is_complex()):
                    raise OptionError(
                        f"check_function(): input {name} requires grad but is {t.dtype}; only "
                        "floating or complex tensors have gradients to check."
                    )
                checked[name] = path
        if not checked:
            raise OptionError(
                "check_function(): no input has requires_grad=True, so there is nothing to "
                "check. Create the inputs to check with requires_grad=True."
            )
        by_path = {path: name for name, path in checked.items()}

        def call(tensors: dict[str, Any], cast: Callable[[Any], Any]) -> Any:
            def rebuild(x: Any, path: tuple[Any, ...]) -> Any:
                if path in by_path:
                    return tensors[by_path[path]]
                if _is_container(x) and any(p[: len(path)] == path for p in by_path):
                    return _map_container(x, lambda k, v: rebuild(v, (*path, k)))
                # fresh copies on every call: an in-place write never reaches the user's
                return _cast_tree(x, lambda t: _fresh(t, cast))

            return fn(*(rebuild(x, (i,)) for i, x in enumerate(inputs)))

        tensors = {name: _at(inputs, path) for name, path in checked.items()}
        super().__init__(list(checked), tensors, call)


def _grad_leaves(x: Any, path: tuple[Any, ...]) -> Iterator[tuple[tuple[Any, ...], Any]]:
    """``(path, tensor)`` of each tensor with requires_grad in ``x`` (nested containers)."""
    import torch

    if isinstance(x, torch.Tensor):
        if x.requires_grad:
            yield path, x
    elif _is_container(x):
        items = x.items() if isinstance(x, dict) else enumerate(x)
        for k, v in items:
            yield from _grad_leaves(v, (*path, k))


def _at(inputs: Any, path: tuple[Any, ...]) -> Any:
    for k in path:
        inputs = inputs[k]
    return inputs


def _is_container(x: Any) -> bool:
    return isinstance(x, list | tuple | dict)


def _map_container(x: Any, f: Callable[[Any, Any], Any]) -> Any:
    """The same container type with ``f(key, value)`` for each item (NamedTuples included)."""
    if isinstance(x, dict):
        out = {k: f(k, v) for k, v in x.items()}
        try:  # OrderedDict and other dict types that take a mapping; else a plain dict
            return out if type(x) is dict else type(x)(out)
        except TypeError:
            return out
    values = [f(k, v) for k, v in enumerate(x)]
    if isinstance(x, tuple) and hasattr(x, "_fields"):  # NamedTuple
        return type(x)(*values)
    return type(x)(values)


def _refuse_inplace(fn: Callable, inputs: tuple[Any, ...], names: Sequence[str] | None) -> bool:
    """Calls ``fn`` once on copies of every input; a checked input it wrote into is an error.

    Returns whether ``fn`` runs only with gradients enabled (it differentiates inside).

    The check always works on copies, so the user's tensors are never modified; but a function
    that overwrites its input (``t.mul_(2)``, ``nn.ReLU(inplace=True)``) has no well-defined
    backward with respect to it, so no verdict would mean anything.
    """
    import torch

    labels = _adapters.input_labels(inputs, names)
    copies = [_cast_tree(x, _fresh) for x in inputs]
    grad_inside = False
    with torch.no_grad():
        try:
            fn(*copies)
        except Exception as error:
            # fn may differentiate inside (torch.autograd.grad of its own intermediate, a
            # gradient penalty): it runs only with grad enabled, on inputs that require grad.
            copies = [
                _cast_tree(x, lambda t: _fresh(t).requires_grad_(t.requires_grad)) for x in inputs
            ]
            try:
                with torch.enable_grad():
                    fn(*copies)
                grad_inside = True
            except Exception:
                raise LossRaisedError(
                    f"check_function: fn(*inputs) raised {_adapters.short(error)}. Fix the "
                    "forward (shapes, devices, dtypes) first; your tensors are untouched."
                ) from error
    for i, label in enumerate(labels):
        # Only a checked tensor (requires_grad) may not be overwritten: an argument that is not
        # differentiated (F.batch_norm's running statistics) gets fresh copies on every call.
        if any(not _same_tree(t, _at(copies, path)) for path, t in _grad_leaves(inputs[i], (i,))):
            raise GradCheckError(
                f"check_function: fn writes into {label} in place (its values changed during "
                "the call, e.g. t.mul_(2) or nn.ReLU(inplace=True)). gradcheck evaluated copies, "
                f"so your {label} is untouched, but the gradient with respect to an overwritten "
                "input is not well defined: use the out-of-place op (t.mul(2), "
                "inplace=False) or clone the input first inside fn."
            )
    return grad_inside


GRAD_INSIDE_NOTE = (
    "fn runs only with gradients enabled (it differentiates inside, e.g. torch.autograd.grad): "
    "each perturbed loss was evaluated with grad enabled, on inputs that require grad."
)


def _with_grad_inside(problem: _Problem) -> _Problem:
    """The problem with ``call`` evaluated under ``enable_grad`` where the caller disabled grad
    (the perturbed losses), on detached copies that require grad, the outputs detached."""
    import torch

    inner = problem.call

    def call(tensors: dict[str, Any], cast: Callable[[Any], Any]) -> Any:
        if torch.is_grad_enabled():  # the analytic pass: its own leaves, its own graph
            return inner(tensors, cast)
        with torch.enable_grad():
            leaves = {n: t.detach().requires_grad_(True) for n, t in tensors.items()}
            out = inner(leaves, cast)
        return _cast_tree(out, lambda t: t.detach())

    wrapped = _Problem(problem.names, problem.tensors, call)
    wrapped.unchecked, wrapped.complex = problem.unchecked, problem.complex
    return wrapped


def _refuse_unsupported_module(module: Any) -> None:
    """TorchScript modules and lazy modules before their first call cannot be checked."""
    import torch

    if isinstance(module, torch.jit.ScriptModule):
        raise OptionError(
            "check_module(): this is a TorchScript module (torch.jit.script/trace), whose "
            "parameters torch.func.functional_call cannot swap for gradcheck's copies. Check "
            "the eager module (before torch.jit.script), or wrap the scripted call in a "
            "function of tensors and use check_function."
        )
    lazy = [
        n for n, p in module.named_parameters()
        if isinstance(p, torch.nn.parameter.UninitializedParameter)
    ]
    if lazy:
        raise OptionError(
            f"check_module(): parameter {lazy[0]!r} is not initialized yet (a lazy module: "
            "nn.LazyLinear, ...). Call the module once on a batch (module(x)) so its shapes are "
            "set, then check it."
        )


def _refuse_parameter_writes(problem: _ModuleProblem, kind: str) -> tuple[list[str], bool]:
    """Runs the forward once on copies of the module's state; a parameter it wrote into is an
    error. Returns the buffers it wrote into (BatchNorm's running stats, spectral_norm's u, v).

    Buffers may change (each evaluation gets fresh copies), but a parameter overwritten inside
    forward (``Embedding(max_norm=...)`` renormalises its rows, a ``clamp_`` of a weight) makes
    the output depend on it in a way autograd does not follow. Also returns whether the forward
    runs only with grad enabled (it differentiates inside: a PINN's derivative w.r.t. x).
    """
    import torch

    try:
        params, buffers = problem.writes()
    except Exception:
        try:
            with torch.enable_grad():
                problem.call(
                    {n: _fresh(t).requires_grad_(True) for n, t in problem.tensors.items()},
                    lambda t: t.detach(),
                )
        except Exception:  # the check's own forward reports it, with its context
            return [], False
        return [], True
    if params:
        raise GradCheckError(
            f"check_module: {kind}'s forward writes into parameter {params[0]!r} in place "
            f"({len(params)} parameter(s) changed during one call: e.g. nn.Embedding(max_norm=...) "
            "renormalises the rows it looks up, or a clamp_/copy_ of a weight inside forward). "
            "gradcheck evaluated copies, so your module is untouched, but autograd does not "
            "differentiate through an in-place overwrite of a parameter, so its gradient is not "
            "the derivative of the forward and no verdict would mean anything. Move the write "
            "out of forward (renormalise or clip after optimizer.step()), or check the module "
            "without it (max_norm=None)."
        )
    return buffers, False


def _written_buffers_note(report: Report, buffers: list[str]) -> list[str]:
    """Why a module that updates buffers in forward may fail: state computed without autograd."""
    if report.passed or not buffers:
        return []
    shown = ", ".join(buffers[:4]) + (", ..." if len(buffers) > 4 else "")
    return [
        f"The forward writes into buffer(s) {shown} (each evaluation started from their "
        "original values). If the output depends on what it writes there through code autograd "
        "does not differentiate (spectral_norm's power iteration in train mode), autograd's "
        "gradient is not the derivative of the forward and this failure is expected: check "
        "such a module in eval mode (module.eval())."
    ]


def _hook_notes(module: Any) -> list[str]:
    """Gradient hooks on parameters (``p.register_hook``) are not run by the check."""
    hooked = [n for n, p in module.named_parameters() if p.requires_grad and p._backward_hooks]
    if not hooked:
        return []
    return [
        f"Parameter(s) {', '.join(hooked[:4])} have gradient hooks (register_hook), which the "
        "check does not run: it compares autograd's gradient of the forward, before any hook "
        "rescales or clips it, with finite differences."
    ]


class _Layout:
    """A tensor's memory layout, to give ``fn`` fresh tensors laid out as the user's: the same
    sizes, strides and storage offset, in a storage as large as theirs that holds their other
    entries. ``as_strided`` (whose storage offset counts from the storage's start) and kernels
    that read strides see what they would see on the user's tensor, as in torch's gradcheck,
    which perturbs the tensor in place. None (``of``) for a plain contiguous tensor, and for
    overlapping ones (expanded: their entries are checked as independent ones)."""

    def __init__(self, t: Any, store: Any) -> None:
        self.size, self.stride, self.offset = tuple(t.shape), t.stride(), t.storage_offset()
        self.store = store

    @staticmethod
    def of(t: Any, cast: Callable[[Any], Any]) -> _Layout | None:
        import torch

        if t.layout != torch.strided or t.numel() == 0:
            return None
        n = t.untyped_storage().nbytes() // t.element_size()
        if t.is_contiguous() and t.storage_offset() == 0 and n == t.numel():
            return None
        if torch._debug_has_internal_overlap(t) != 0:  # expanded / overlapping (or unknown)
            return None
        whole = torch.empty(0, dtype=t.dtype, device=t.device)
        whole.set_(t.untyped_storage(), 0, (n,), (1,))
        return _Layout(t, cast(whole.detach()).clone())

    def place(self, values: Any) -> Any:
        """A fresh tensor in this layout holding ``values`` (same shape)."""
        import torch

        store = self.store.clone()
        out = torch.empty(0, dtype=store.dtype, device=store.device)
        out.set_(store.untyped_storage(), self.offset, self.size, self.stride)
        with torch.no_grad():
            out.copy_(values.detach())
        return out


def _fresh(t: Any, cast: Callable[[Any], Any] = lambda t: t.detach()) -> Any:
    """A fresh copy of ``t`` (cast) for one call of ``fn``, laid out as ``t`` (``_Layout``)."""
    import torch

    layout = _Layout.of(t, cast) if isinstance(t, torch.Tensor) else None
    return cast(t).clone() if layout is None else layout.place(cast(t))


def _same_tree(a: Any, b: Any) -> bool:
    import torch

    if isinstance(a, torch.Tensor):
        if a.layout != torch.strided or b.layout != torch.strided:  # sparse: compare densely
            a, b = a.detach().to_dense(), b.detach().to_dense()
        return a.shape == b.shape and bool(torch.equal(a.detach(), b) or (
            a.is_floating_point() and torch.equal(a.detach().isnan(), b.isnan())
            and torch.equal(a.detach().nan_to_num(), b.nan_to_num())))
    if isinstance(a, list | tuple):
        return all(_same_tree(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return all(_same_tree(a[k], b[k]) for k in a)
    return True


def _cast_tree(x: Any, cast: Callable[[Any], Any]) -> Any:
    import torch

    if isinstance(x, torch.Tensor):
        return cast(x)
    if _is_container(x):
        return _map_container(x, lambda _k, v: _cast_tree(v, cast))
    return x


def _leaves(out: Any) -> list[Any]:
    """The floating and complex tensors of an output (a tensor, or nested tuples/lists/dicts;
    None and integer tensors skipped)."""
    import torch

    if isinstance(out, torch.Tensor):
        return [out] if out.is_floating_point() or out.is_complex() else []
    if isinstance(out, list | tuple):
        return [t for v in out for t in _leaves(v)]
    if isinstance(out, dict):
        return [t for v in out.values() for t in _leaves(v)]
    return []


# --- presenting tensors to the NumPy core: real, dense, finite, non-empty --------------------


TORCH_CONVENTION = (
    "PyTorch's convention: the gradient of a real J at complex z is ∂J/∂Re z + i·∂J/∂Im z "
    "(the conjugate Wirtinger derivative 2·∂J/∂z̄)"
)


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
            notes.append(
                f"{self.name} is sparse ({kind}, {self.real.shape[0]} stored entries of "
                f"{int(np.prod(self.size))}): checked through its stored values only (the "
                "component is indexed by stored entry); the other entries are not perturbed."
            )
        bad = 0 if self.fill is None else int((~self.finite).sum())
        return notes + _adapters.view_notes(self.name, self.complex, TORCH_CONVENTION, bad)


def _present(problem: _Problem) -> tuple[_Problem, list[_View], list[str]]:
    """The problem as the core sees it: complex, sparse and non-finite tensors as real dense
    ones, empty tensors left out (fixed at their values) with a note each."""
    views = {n: _View(n, problem.tensors[n]) for n in problem.names}
    notes = [
        f"{n} is empty (shape {tuple(problem.tensors[n].shape)}): nothing to check."
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


class _Objective:
    """J from the outputs: ``loss_fn(out)``, or ⟨output, R⟩ with R drawn from the seed."""

    def __init__(
        self, loss_fn: Callable | None, seed: int, pick: int | None, entry: int | None = None
    ) -> None:
        self.loss_fn, self.seed, self.pick, self.entry = loss_fn, seed, pick, entry
        self.cotangents: list[Any] | None = None
        self.as_tensors: dict[tuple[int, Any, Any], Any] = {}  # the cotangents as tensors
        self.real_cotangent = False  # complex outputs get a real R (the conjugation probe)

    def __call__(self, out: Any) -> Any:
        if self.loss_fn is not None:
            return self.loss_fn(out)
        leaves = _leaves(out)
        if self.pick is not None:
            leaves = [leaves[self.pick]]
        # A complex output enters J through its real and imaginary parts: J = Re⟨R, out⟩ with a
        # complex cotangent R (sparse outputs through their dense values).
        complex_out = [t.is_complex() for t in leaves]
        leaves = [_real_view(t) for t in leaves]
        if self.entry is not None:
            return leaves[0].reshape(-1)[self.entry]
        if self.cotangents is None:  # drawn once, from our own generator, in float64
            rng = np.random.default_rng([self.seed, self.pick or 0])
            self.cotangents = [rng.standard_normal(tuple(t.shape)) for t in leaves]
            for r, c in zip(self.cotangents, complex_out, strict=True):
                if c and self.real_cotangent:
                    r[..., 1] = 0.0
        return sum((t * self._tensor(k, r, t)).sum() for k, (t, r) in
                   enumerate(zip(leaves, self.cotangents, strict=True)))

    def _tensor(self, k: int, r: np.ndarray, t: Any) -> Any:
        """Cotangent k as a tensor of t's dtype and device, made once."""
        key = (k, t.dtype, t.device)
        if key not in self.as_tensors:
            self.as_tensors[key] = _like(r, t)
        return self.as_tensors[key]


def _real_view(t: Any) -> Any:
    """A dense real tensor with the output's values (complex: a last axis of 2)."""
    import torch

    if t.layout != torch.strided:
        t = t.to_dense()
    return torch.view_as_real(t.resolve_conj()) if t.is_complex() else t


def _objective(loss_fn: Callable | None, seed: int, pick: int | None = None) -> _Objective:
    return _Objective(loss_fn, seed, pick)


def _like(array: np.ndarray, t: Any) -> Any:
    import torch

    return torch.as_tensor(array, dtype=t.dtype, device=t.device)


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
        notes.append(
            f"{len(ints)} integer/bool output(s) ({', '.join(sorted(set(ints)))}) have no "
            "gradient and were left out."
        )
    if len(keep) < n:
        left = ", ".join(f"output {k}" for k in range(n) if k not in keep)
        notes.append(
            f"Floating output(s) without grad_fn left out ({left}: not differentiable, e.g. "
            "saved mean/rstd); outputs are numbered among the floating ones."
        )
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
        (label, m): _Objective(None, 0, pick=outputs[label], entry=m)
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
            "Full Jacobians compared (jacobian=True): one check per output entry; a component "
            "is indexed [output index..., input index...].",
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
        value_array=np.broadcast_to(rows[0].value_array, shape).copy(),
        analytic_array=block("analytic_array"),
        bound_array=block("bound_array"),
    )
    return _adapters.recount(stacked, block("flags"), block("numeric_array"))


# --- running the check ----------------------------------------------------------------------


def _run(
    problem: _Problem,
    objectives: dict[str, _Objective],
    options: dict[str, Any],
    precision: Any,
    vectorize: Any,
    api: str,
    raw: bool = False,
    higher: tuple[int, str] = (1, "reverse"),
) -> Any:
    precision = _adapters.choose(api, "precision", precision, _adapters.PRECISIONS)
    vectorize = _adapters.choose(api, "vectorize", vectorize, _adapters.VECTORIZE)
    first = next(iter(objectives.values()))
    dtypes, precision_note = _precision(problem, first, precision, api)
    reports = {}
    for label, objective in objectives.items():
        report = _check_one(
            problem, objective, dtypes, options, vectorize, precision_note, higher[1], api
        )
        report = _adapters.leave_unchecked(report, problem.unchecked)
        if raw:  # Jacobian rows: one note per row would drown the report
            reports[label] = report
            continue
        report = _adapters.complex_findings(report, problem.complex, _adapters.TORCH)
        conjugation = higher[1] == "reverse" and objective.loss_fn is None
        if conjugation and _adapters.wants_conjugation_probe(report, problem.complex):
            probe = _Objective(None, objective.seed, objective.pick, objective.entry)
            probe.real_cotangent = True
            again = _check_one(
                problem, probe, dtypes, options, vectorize, precision_note, higher[1], api
            )
            again = _adapters.complex_findings(again, problem.complex, _adapters.TORCH)
            report = _adapters.conjugation_probe(report, again, problem.complex, _adapters.TORCH)
        reports[label] = report
    if raw:
        return reports
    first_order = (
        next(iter(reports.values())) if len(reports) == 1
        else _adapters.merge(reports, lambda name, key: f"{name} ({key})")
    )
    if higher[0] == 1:
        return first_order
    second = _higher.torch_second(
        problem, first, dtypes, _caster(dtypes), options, [precision_note], _leaves
    )
    return _higher.merge_orders(first_order, second)


def _check_one(
    problem: _Problem,
    objective: _Objective,
    dtypes: dict[str, Any],
    options: dict[str, Any],
    vectorize: str,
    precision_note: str,
    mode: str = "reverse",
    api: str = "check_function",
) -> Report:
    import torch

    device = next(iter(problem.tensors.values())).device
    params = {n: _to_numpy(problem.tensors[n], dtypes[n]) for n in problem.names}
    cast = _caster(dtypes)

    layouts = {n: _Layout.of(problem.tensors[n], lambda t, d=dtypes[n]: t.to(d)) for n in problem.names}

    def tensors(p: dict[str, np.ndarray]) -> dict[str, Any]:
        out = {n: torch.tensor(p[n], dtype=dtypes[n], device=device) for n in problem.names}
        return {n: t if layouts[n] is None else layouts[n].place(t) for n, t in out.items()}

    def loss(p: dict[str, np.ndarray]) -> float:
        with torch.no_grad():
            return float(objective(problem.call(tensors(p), cast)))

    batched, reason = _batched(problem, objective, params, dtypes, device, cast, loss, vectorize)
    notes = [precision_note, _adapters.evaluation_note(batched, reason, "torch.func.vmap")]

    def run(grads: dict[str, np.ndarray], reduced: tuple | None = None) -> Report:
        fn, p, b = (loss, params, batched) if reduced is None else (*reduced, None)
        try:
            return _adapters.run_check(fn, p, grads, options, b, notes)
        except StochasticLossError as error:
            raise StochasticLossError(
                f"{error} For a torch module, call module.eval() (or set the dropout p=0) "
                "before checking; gradcheck restores the training mode it found."
            ) from error

    return _higher.by_mode(
        mode, run, lambda: _analytic(problem, objective, tensors(params), cast),
        lambda: _higher.forward_gradient(
            _higher.torch_jvps(problem, objective, tensors(params), cast, api),
            params, loss, options.get("seed", 0),
        ),
    )


def _analytic(problem: _Problem, objective: _Objective, leaves: dict, cast: Callable) -> dict:
    import torch

    for t in leaves.values():
        t.requires_grad_(True)
    with torch.enable_grad():
        try:
            out = problem.call(leaves, cast)
        except Exception as error:  # shape mismatch, .cuda() without CUDA, ...: the user's forward
            raise LossRaisedError(
                f"the forward raised {_adapters.short(error)}. Fix the "
                "forward (shapes, devices, dtypes) first; your tensors and module are untouched."
            ) from error
        j = objective(out)
        if not (isinstance(j, torch.Tensor) and j.numel() == 1):
            raise GradCheckError(
                "loss_fn(output) must return a scalar tensor J (a 0-d tensor or one element); "
                f"it returned {type(j).__name__}. Reduce it, e.g. with .mean()."
            )
        if j.requires_grad:
            try:
                grads = torch.autograd.grad(
                    j.reshape(()), list(leaves.values()), allow_unused=True
                )
            except Exception as error:  # a custom backward that raises, an op without one
                raise GradCheckError(
                    f"the backward raised {_adapters.short(error)}. There is no analytic "
                    "gradient to compare: fix the backward (or check a function autograd can "
                    "differentiate); your tensors and module are untouched."
                ) from error
        else:  # J does not depend on the inputs through autograd at all: every gradient is 0
            grads = (None,) * len(leaves)
    # An undefined gradient (None) and an efficient ZeroTensor (torch.sgn's) both mean zero.
    return {
        n: np.zeros(tuple(t.shape))
        if g is None or g._is_zerotensor()
        else g.detach().cpu().double().numpy()
        for (n, t), g in zip(leaves.items(), grads, strict=True)
    }


def _precision(
    problem: _Problem, objective: _Objective, precision: str, api: str
) -> tuple[dict[str, Any], str]:
    """float64 copies when the computation runs in float64, else each tensor's own dtype."""
    import torch

    native = {n: t.dtype for n, t in problem.tensors.items()}
    _refuse_bfloat16(native, precision, api)
    if precision == "native" or all(d == torch.float64 for d in native.values()):
        return native, _precision_note(native, native)
    wide = dict.fromkeys(native, torch.float64)
    try:
        with torch.no_grad():
            out = problem.call({n: _cast64(t) for n, t in problem.tensors.items()}, _cast64)
            j = objective(out)
        wide64 = (torch.float64, torch.complex128)
        ok = all(t.dtype in wide64 for t in _leaves(out)) and j.dtype == torch.float64
        why = "its output is not float64"
    except Exception as error:  # a kernel without a float64 version: evaluate in the real dtype
        ok, why = False, f"it raised in float64 ({_adapters.short(error)})"
    if ok:
        return wide, _precision_note(native, wide)
    if precision == "float64":
        raise GradCheckError(
            f"{api}(precision='float64'): the computation cannot run on float64 copies "
            f"({why}). Use precision='auto' to check it in its own dtype."
        )
    _refuse_bfloat16(native, "native", api)
    note = _precision_note(native, native)
    return native, f"{note} (float64 copies were tried, but {why}.)"


def _refuse_bfloat16(native: dict[str, Any], precision: str, api: str) -> None:
    import torch

    if precision == "native" and torch.bfloat16 in native.values():
        name = next(n for n, d in native.items() if d == torch.bfloat16)
        raise GradCheckError(
            f"{api}(precision='native'): {name} is bfloat16, which NumPy cannot hold, so "
            "gradcheck cannot keep its finite-difference steps representable in it. Use "
            "precision='auto' (float64 copies), or check the kernel on float16/float32 inputs."
        )


def _precision_note(native: dict[str, Any], used: dict[str, Any]) -> str:
    def word(d: Any) -> str:
        return str(d).replace("torch.", "")

    kinds = sorted({word(d) for d in native.values()})
    if used == native:
        return f"Evaluated in the tensors' own dtype ({', '.join(kinds)})."
    return (
        f"Evaluated on float64 copies of the {', '.join(kinds)} tensors (autograd in float64 "
        "too); the originals were not touched."
    )


def _cast64(t: Any) -> Any:
    import torch

    if t.is_complex():
        return t.detach().to(torch.complex128)
    return t.detach().to(torch.float64) if t.is_floating_point() else t


def _caster(dtypes: dict[str, Any]) -> Callable[[Any], Any]:
    """How constants (inputs, buffers, frozen params) are cast: to float64 in float64 mode."""
    import torch

    if dtypes and all(d == torch.float64 for d in dtypes.values()):
        return _cast64
    return lambda t: t.detach()


def _to_numpy(t: Any, dtype: Any) -> np.ndarray:
    return t.detach().to(device="cpu", dtype=dtype).numpy().copy()


# --- batched evaluation (torch.func.vmap) ---------------------------------------------------


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
    if (refused := _adapters.batched_refusal(vectorize)) is not None:
        return None, refused
    fn = _vmapped(problem, objective, params, dtypes, device, cast)
    rows = np.stack([fn.theta, fn.theta])
    return _adapters.probe_batched(fn, rows, lambda: loss(params), vectorize, "torch.func.vmap")


def _vmapped(
    problem: _Problem,
    objective: _Objective,
    params: dict[str, np.ndarray],
    dtypes: dict[str, Any],
    device: Any,
    cast: Callable,
) -> _adapters.Batched:
    """J of a stack of rows through ``torch.func.vmap``: full rows (every tensor batched), or
    ``by_tensor`` stacks that move one tensor, the others passed unbatched (``in_dims=None``):
    everything upstream of the moving tensor is computed once per chunk, and products with the
    fixed weights are plain matrix products instead of per-row ones."""
    import torch

    names = problem.names
    shapes = [params[n].shape for n in names]
    sizes = [int(np.prod(s)) for s in shapes]
    fixed = [
        torch.tensor(params[n].reshape(-1), dtype=dtypes[n], device=device) for n in names
    ]

    def one(*flat: Any) -> Any:
        tensors = {n: f.reshape(s) for n, f, s in zip(names, flat, shapes, strict=True)}
        return objective(problem.call(tensors, cast))

    # One vmap per in_dims pattern, and per whether the stack fits one chunk: a stack of up to
    # CHUNK rows is one chunk either way, and vmap without chunk_size runs it 4x faster (0.4 ms
    # against 1.7 ms for 3 rows of 25), with the same operations on the same rows.
    maps: dict[tuple[tuple[int | None, ...], bool], Callable] = {}

    def run(flat: list[Any], dims: tuple[int | None, ...]) -> np.ndarray:
        rows = max(f.shape[0] for f, d in zip(flat, dims, strict=True) if d == 0)
        key = (dims, rows <= CHUNK)
        if key not in maps:
            maps[key] = torch.func.vmap(one, in_dims=dims, chunk_size=None if key[1] else CHUNK)
        with torch.no_grad():
            return maps[key](*flat).detach().cpu().double().numpy().reshape(-1)

    def full(thetas: np.ndarray) -> np.ndarray:
        # One tensor over the rows as they are (no copy on the CPU in float64), then views per
        # parameter: the columns are never copied out one by one.
        whole = torch.from_numpy(np.ascontiguousarray(thetas, dtype=np.float64))
        flat = [
            c.to(dtype=dtypes[n], device=device)
            for n, c in zip(names, torch.split(whole, sizes, dim=1), strict=True)
        ]
        return run(flat, (0,) * len(names))

    def moving(t: int, rows: np.ndarray) -> np.ndarray:
        block = torch.from_numpy(np.ascontiguousarray(rows, dtype=np.float64))
        # Fresh copies of the fixed tensors on every call: a forward that writes into a
        # parameter must not reach the next stack.
        flat = [
            block.to(dtype=dtypes[n], device=device) if k == t else f.clone()
            for k, (n, f) in enumerate(zip(names, fixed, strict=True))
        ]
        return run(flat, tuple(0 if k == t else None for k in range(len(names))))

    theta = np.concatenate([params[n].reshape(-1).astype(np.float64) for n in names])
    return _adapters.Batched(full, moving, theta, sizes)


# --- leaving the module as it was -----------------------------------------------------------


def _devices(tensors: Sequence[Any]) -> list[int]:
    import torch

    return sorted(
        {x.device.index or 0 for x in tensors if isinstance(x, torch.Tensor) and x.is_cuda}
    )


@contextlib.contextmanager
def _rng_kept(cuda_devices: list[int]) -> Iterator[None]:
    """Global (and CUDA) RNG states restored on exit: dropout draws must not shift the user's."""
    import torch

    with torch.random.fork_rng(devices=cuda_devices):
        yield


@contextlib.contextmanager
def _untouched(module: Any) -> Iterator[None]:
    """Parameters, buffers, requires_grad, .grad, training flags and RNG states restored on exit.

    The check works on copies and should change nothing; this is the belt to those braces, and
    it holds when the user's forward or backward raises midway.
    """
    import torch

    tensors = dict(module.named_parameters()) | dict(module.named_buffers())
    saved = {n: t.detach().clone() for n, t in tensors.items()}
    flags = {n: p.requires_grad for n, p in module.named_parameters()}
    grads = {n: p.grad for n, p in module.named_parameters()}
    modes = {m: m.training for m in module.modules()}
    devices = _devices(list(tensors.values()))
    try:
        with _rng_kept(devices):
            yield
    finally:
        with torch.no_grad():
            for n, t in tensors.items():
                if not torch.equal(t, saved[n]):
                    t.copy_(saved[n])
        for n, p in module.named_parameters():
            p.requires_grad_(flags[n])
            p.grad = grads[n]
        for m, mode in modes.items():
            m.training = mode
