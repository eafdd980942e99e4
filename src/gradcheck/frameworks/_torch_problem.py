"""PyTorch adapter, part 1: what is checked (a module's parameters, a function's inputs with
requires_grad, nested in containers), called on fresh copies laid out as the user's tensors,
and the refusals (in-place writes, TorchScript, lazy modules)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from gradcheck._errors import GradCheckError, LossRaisedError, OptionError, short
from gradcheck.frameworks import _shared as _adapters
from gradcheck.report._sentences import Note, NoteCode

if TYPE_CHECKING:
    from gradcheck.report._report import Report


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
        # An input that is itself a checked tensor (the common case): its name, found once.
        direct = [by_path.get((i,)) for i in range(len(inputs))]
        every_direct = None not in direct

        def call(tensors: dict[str, Any], cast: Callable[[Any], Any]) -> Any:
            if every_direct:  # (the common case: fn(*tensors), nothing else to copy)
                return fn(*[tensors[name] for name in direct])  # type: ignore[index]

            def rebuild(x: Any, path: tuple[Any, ...]) -> Any:
                if path in by_path:
                    return tensors[by_path[path]]
                if _is_container(x) and any(p[: len(path)] == path for p in by_path):
                    return _map_container(x, lambda k, v: rebuild(v, (*path, k)))
                # fresh copies on every call: an in-place write never reaches the user's
                return _cast_tree(x, lambda t: _fresh(t, cast))

            return fn(*[rebuild(x, (i,)) if name is None else tensors[name]
                        for i, (x, name) in enumerate(zip(inputs, direct, strict=True))])

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
                    f"check_function: fn(*inputs) raised {short(error)}. Fix the "
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


GRAD_INSIDE_NOTE = Note(NoteCode.GRAD_INSIDE)


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


def _written_buffers_note(report: Report, buffers: list[str]) -> list[Note]:
    """Why a module that updates buffers in forward may fail: state computed without autograd."""
    if report.passed or not buffers:
        return []
    return [Note(NoteCode.WRITTEN_BUFFERS, None, {"buffers": tuple(buffers)})]


def _hook_notes(module: Any) -> list[str]:
    """Gradient hooks on parameters (``p.register_hook``) are not run by the check."""
    hooked = [n for n, p in module.named_parameters() if p.requires_grad and p._backward_hooks]
    if not hooked:
        return []
    return [Note(NoteCode.HOOKS, None, {"params": tuple(hooked)})]


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


