"""Checking PyTorch modules and custom ``autograd.Function``s with the NumPy core.

Analytic gradients come from ``torch.autograd`` (so the user's custom backwards run); the
numeric ones from finite differences of ``J`` evaluated with ``torch.func.functional_call`` on
*copies* of the parameters, in float64 where the module computes in its parameters' dtype, and
in the module's own dtype (with the core's noise-aware tolerance) where a kernel exists only in
float32/float16. torch is imported inside the functions: ``import gradcheck`` stays light.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from gradcheck._errors import GradCheckError, OptionError, StochasticLossError
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
    problem = _ModuleProblem(module, inputs)
    if not problem.names:
        raise OptionError(
            f"check_module(): {type(module).__name__} has no parameter with requires_grad=True; "
            "there is nothing to check."
        )
    options.setdefault("layers", problem.names)
    with _untouched(module):
        objective = _objective(loss_fn, options.get("seed", 0))
        return _run(problem, {"output": objective}, options, precision, vectorize, "check_module")


def check_function(
    fn: Callable[..., Any],
    *inputs: Any,
    names: Sequence[str] | None = None,
    jacobian: bool = False,
    precision: Precision = "auto",
    vectorize: Vectorize = "auto",
    **options: Any,
) -> Report:
    """Checks the backward of ``fn`` (e.g. ``MyFunction.apply``) for its inputs with requires_grad.

    Each floating output gets its own random cotangent R (from ``seed``) and its own check, so a
    wrong entry is named by input and output: ``input1 (output 0)``.

    Args:
      fn: called as ``fn(*inputs)``; returns a tensor or a tuple of tensors.
      inputs: tensors (those with ``requires_grad`` are checked) and any other arguments.
      names: one name per input (default ``input0``, ``input1``, ...).
      jacobian: compare every entry of the Jacobian (one check per output entry; small inputs).
      precision, vectorize, options: as for ``check_module``.

    Returns:
      The ``Report``; with several outputs its components are ``"<input> (output k)"``.

    >>> import torch, gradcheck.torch
    >>> x = torch.randn(5, dtype=torch.float64, requires_grad=True)
    >>> gradcheck.torch.check_function(torch.sin, x).passed
    True
    """
    options = _adapters.check_options("check_function", options)
    problem = _FunctionProblem(fn, inputs, names)
    seed = options.get("seed", 0)
    with _rng_kept(_devices(inputs)):
        outputs = _probe_outputs(problem)
        if not jacobian:
            objectives = {k: _objective(None, seed, pick=i) for i, k in enumerate(outputs)}
            return _run(problem, objectives, options, precision, vectorize, "check_function")
        objectives, shapes = _jacobian_objectives(outputs, problem)
        rows = _run(problem, objectives, options, precision, vectorize, "check_function", raw=True)
    return _jacobian_report(rows, shapes)


# --- what is being checked ------------------------------------------------------------------


@dataclass
class _Problem:
    """Named tensors to check, and ``call(tensors) -> outputs`` with every other argument bound."""

    names: list[str]
    tensors: dict[str, Any]
    call: Callable[[dict[str, Any], Callable[[Any], Any]], Any] = field(repr=False)


class _ModuleProblem(_Problem):
    def __init__(self, module: Any, inputs: tuple[Any, ...]) -> None:
        params = {n: p for n, p in module.named_parameters() if p.requires_grad}
        frozen = {n: p for n, p in module.named_parameters() if not p.requires_grad}
        buffers = dict(module.named_buffers())

        def call(tensors: dict[str, Any], cast: Callable[[Any], Any]) -> Any:
            from torch.func import functional_call

            # Fresh buffer copies each call: train-mode BatchNorm updates its running stats
            # in place, and those updates must reach neither the module nor the next call.
            consts = {n: cast(b).clone() for n, b in {**frozen, **buffers}.items()}
            args = tuple(_cast_tree(x, cast) for x in inputs)
            return functional_call(module, {**tensors, **consts}, args)

        super().__init__(list(params), params, call)


class _FunctionProblem(_Problem):
    def __init__(self, fn: Callable, inputs: tuple[Any, ...], names: Sequence[str] | None) -> None:
        import torch

        labels = [f"input{i}" for i in range(len(inputs))] if names is None else list(names)
        if len(labels) != len(inputs):
            raise OptionError(
                f"check_function(names=...) has {len(labels)} names for {len(inputs)} inputs; "
                "give one name per input (non-tensor inputs included)."
            )
        checked = {
            i: labels[i]
            for i, x in enumerate(inputs)
            if isinstance(x, torch.Tensor) and x.requires_grad
        }
        if not checked:
            raise OptionError(
                "check_function(): no input has requires_grad=True, so there is nothing to "
                "check. Create the inputs to check with requires_grad=True."
            )
        for i, name in checked.items():
            if not inputs[i].is_floating_point():
                raise OptionError(f"check_function(): input {name} must be a floating tensor.")

        def call(tensors: dict[str, Any], cast: Callable[[Any], Any]) -> Any:
            args = [
                tensors[checked[i]] if i in checked else _cast_tree(x, cast)
                for i, x in enumerate(inputs)
            ]
            return fn(*args)

        super().__init__(list(checked.values()), {n: inputs[i] for i, n in checked.items()}, call)


def _cast_tree(x: Any, cast: Callable[[Any], Any]) -> Any:
    import torch

    if isinstance(x, torch.Tensor):
        return cast(x)
    if isinstance(x, list | tuple):
        return type(x)(_cast_tree(v, cast) for v in x)
    if isinstance(x, dict):
        return {k: _cast_tree(v, cast) for k, v in x.items()}
    return x


def _leaves(out: Any) -> list[Any]:
    """The floating tensors of an output (a tensor, or nested tuples/lists/dicts; None skipped)."""
    import torch

    if isinstance(out, torch.Tensor):
        return [out] if out.is_floating_point() else []
    if isinstance(out, list | tuple):
        return [t for v in out for t in _leaves(v)]
    if isinstance(out, dict):
        return [t for v in out.values() for t in _leaves(v)]
    return []


# --- the objective J ------------------------------------------------------------------------


class _Objective:
    """J from the outputs: ``loss_fn(out)``, or ⟨output, R⟩ with R drawn from the seed."""

    def __init__(
        self, loss_fn: Callable | None, seed: int, pick: int | None, entry: int | None = None
    ) -> None:
        self.loss_fn, self.seed, self.pick, self.entry = loss_fn, seed, pick, entry
        self.cotangents: list[Any] | None = None

    def __call__(self, out: Any) -> Any:
        if self.loss_fn is not None:
            return self.loss_fn(out)
        leaves = _leaves(out)
        if self.pick is not None:
            leaves = [leaves[self.pick]]
        if self.entry is not None:
            return leaves[0].reshape(-1)[self.entry]
        if self.cotangents is None:  # drawn once, from our own generator, in float64
            rng = np.random.default_rng([self.seed, self.pick or 0])
            self.cotangents = [rng.standard_normal(tuple(t.shape)) for t in leaves]
        return sum((t * _like(r, t)).sum() for t, r in zip(leaves, self.cotangents, strict=True))


def _objective(loss_fn: Callable | None, seed: int, pick: int | None = None) -> _Objective:
    return _Objective(loss_fn, seed, pick)


def _like(array: np.ndarray, t: Any) -> Any:
    import torch

    return torch.as_tensor(array, dtype=t.dtype, device=t.device)


def _probe_outputs(problem: _Problem) -> list[str]:
    """Labels of the floating outputs of ``fn`` (``output 0``, ``output 1``, ...)."""
    import torch

    with torch.no_grad():
        out = problem.call({n: t.detach() for n, t in problem.tensors.items()}, lambda x: x)
    n = len(_leaves(out))
    if n == 0:
        raise GradCheckError(
            "check_function(): fn returned no floating-point tensor, so there is no gradient "
            "to check. Return the tensor (or tuple of tensors) your backward differentiates."
        )
    return ["output"] if n == 1 else [f"output {k}" for k in range(n)]


def _jacobian_objectives(
    outputs: list[str], problem: _Problem
) -> tuple[dict[tuple[str, int], _Objective], dict[str, tuple[int, ...]]]:
    """One objective per output entry (J = out_k.flat[m]), and each output's shape."""
    import torch

    with torch.no_grad():
        out = problem.call({n: t.detach() for n, t in problem.tensors.items()}, lambda x: x)
    shapes = {label: tuple(t.shape) for label, t in zip(outputs, _leaves(out), strict=True)}
    n_in = sum(t.numel() for t in problem.tensors.values())
    total = n_in * sum(int(np.prod(s)) for s in shapes.values())
    if total > MAX_JACOBIAN:
        raise OptionError(
            f"check_function(jacobian=True) would compare {total:,} Jacobian entries (more than "
            f"{MAX_JACOBIAN:,}); use smaller inputs, or jacobian=False (random cotangents), "
            "which catches the same bugs."
        )
    objectives = {
        (label, m): _Objective(None, 0, pick=k, entry=m)
        for k, (label, shape) in enumerate(shapes.items())
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
    suspects = tuple(n for n, c in components.items() if not c.passed)
    numeric = np.concatenate([c.numeric_array[_checked(c.flags)] for c in components.values()])
    analytic = np.concatenate([c.analytic_array[_checked(c.flags)] for c in components.values()])
    from gradcheck.report._model import relative_error

    return Report(
        passed=not suspects,
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
        seconds=sum(r.seconds for r in rows.values()),
    )


def _checked(flags: np.ndarray) -> np.ndarray:
    from gradcheck.report._model import AGREES, MISMATCH

    return (flags == AGREES) | (flags == MISMATCH)


def _stack(name: str, rows: list[Any], out_shape: tuple[int, ...]) -> Any:
    """Per-output-entry components of one input stacked into a Jacobian block component."""
    from gradcheck.report._model import MISMATCH, Component, relative_error

    shape = tuple(out_shape) + tuple(rows[0].shape)

    def block(attr: str) -> np.ndarray:
        return np.stack([getattr(r, attr) for r in rows]).reshape(shape)

    n, g, bound, flags = (
        block(a) for a in ("numeric_array", "analytic_array", "bound_array", "flags")
    )
    checked = _checked(flags)
    diff = np.abs(n - g)
    excess = np.where(checked, diff / np.maximum(bound, np.finfo(np.float64).tiny), -1.0)
    worst = int(np.argmax(excess))
    mismatches = int(np.sum(flags == MISMATCH))
    return Component(
        name=name,
        shape=shape,
        relative_error=relative_error(n[checked], g[checked]),
        max_abs_error=float(diff[checked].max()) if checked.any() else 0.0,
        worst_index=tuple(int(i) for i in np.unravel_index(worst, shape)),
        numeric=float(n.flat[worst]),
        analytic=float(g.flat[worst]),
        tolerance=float(bound.flat[worst]),
        checked=int(checked.sum()),
        skipped=int(checked.size - checked.sum()),
        passed=mismatches == 0,
        eps=max(r.eps for r in rows),
        noise=max(r.noise for r in rows),
        dtype=rows[0].dtype,
        mismatches=mismatches,
        value_array=np.broadcast_to(rows[0].value_array, shape).copy(),
        numeric_array=n,
        analytic_array=g,
        bound_array=bound,
        flags=flags,
    )


# --- running the check ----------------------------------------------------------------------


def _run(
    problem: _Problem,
    objectives: dict[str, _Objective],
    options: dict[str, Any],
    precision: Any,
    vectorize: Any,
    api: str,
    raw: bool = False,
) -> Any:
    precision = _adapters.choose(api, "precision", precision, _adapters.PRECISIONS)
    vectorize = _adapters.choose(api, "vectorize", vectorize, _adapters.VECTORIZE)
    first = next(iter(objectives.values()))
    dtypes, precision_note = _precision(problem, first, precision, api)
    reports = {}
    for label, objective in objectives.items():
        reports[label] = _check_one(problem, objective, dtypes, options, vectorize, precision_note)
    if raw:
        return reports
    if len(reports) == 1:
        return next(iter(reports.values()))
    return _adapters.merge(reports, lambda name, key: f"{name} ({key})")


def _check_one(
    problem: _Problem,
    objective: _Objective,
    dtypes: dict[str, Any],
    options: dict[str, Any],
    vectorize: str,
    precision_note: str,
) -> Report:
    import torch

    device = next(iter(problem.tensors.values())).device
    params = {n: _to_numpy(problem.tensors[n], dtypes[n]) for n in problem.names}
    cast = _caster(dtypes)

    def tensors(p: dict[str, np.ndarray]) -> dict[str, Any]:
        return {n: torch.tensor(p[n], dtype=dtypes[n], device=device) for n in problem.names}

    def loss(p: dict[str, np.ndarray]) -> float:
        with torch.no_grad():
            return float(objective(problem.call(tensors(p), cast)))

    grads = _analytic(problem, objective, tensors(params), cast)
    batched, reason = _batched(problem, objective, params, dtypes, device, cast, loss, vectorize)
    notes = [precision_note, _adapters.evaluation_note(batched, reason, "torch.func.vmap")]
    try:
        return _adapters.run_check(loss, params, grads, options, batched, notes)
    except StochasticLossError as error:
        raise StochasticLossError(
            f"{error} For a torch module, call module.eval() (or set the dropout p=0) before "
            "checking; gradcheck restores the training mode it found."
        ) from error


def _analytic(problem: _Problem, objective: _Objective, leaves: dict, cast: Callable) -> dict:
    import torch

    for t in leaves.values():
        t.requires_grad_(True)
    with torch.enable_grad():
        j = objective(problem.call(leaves, cast))
        if not (isinstance(j, torch.Tensor) and j.numel() == 1):
            raise GradCheckError(
                "loss_fn(output) must return a scalar tensor J (a 0-d tensor or one element); "
                f"it returned {type(j).__name__}. Reduce it, e.g. with .mean()."
            )
        grads = torch.autograd.grad(j.reshape(()), list(leaves.values()), allow_unused=True)
    return {
        n: np.zeros(tuple(t.shape)) if g is None else g.detach().cpu().double().numpy()
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
        ok = all(t.dtype == torch.float64 for t in _leaves(out)) and j.dtype == torch.float64
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
    if vectorize == "loop":
        return None, "vectorize='loop' was asked for."
    if not _adapters.accepts_batched():
        return None, _adapters.NO_HOOK
    fn = _vmapped(problem, objective, params, dtypes, device, cast)
    theta = np.concatenate([params[n].reshape(-1).astype(np.float64) for n in problem.names])
    rows = np.stack([theta, theta])
    return _adapters.probe_batched(fn, rows, lambda: loss(params), vectorize, "torch.func.vmap")


def _vmapped(
    problem: _Problem,
    objective: _Objective,
    params: dict[str, np.ndarray],
    dtypes: dict[str, Any],
    device: Any,
    cast: Callable,
) -> Callable[[np.ndarray], np.ndarray]:
    import torch

    shapes = [params[n].shape for n in problem.names]
    sizes = [int(np.prod(s)) for s in shapes]

    def one(*flat: Any) -> Any:
        tensors = {n: f.reshape(s) for n, f, s in zip(problem.names, flat, shapes, strict=True)}
        return objective(problem.call(tensors, cast))

    batched = torch.func.vmap(one, chunk_size=CHUNK)

    def fn(thetas: np.ndarray) -> np.ndarray:
        # One tensor over the rows as they are (no copy on the CPU in float64), then views per
        # parameter: the columns are never copied out one by one.
        whole = torch.from_numpy(np.ascontiguousarray(thetas, dtype=np.float64))
        flat = [
            c.to(dtype=dtypes[n], device=device)
            for n, c in zip(problem.names, torch.split(whole, sizes, dim=1), strict=True)
        ]
        with torch.no_grad():
            return batched(*flat).detach().cpu().double().numpy().reshape(-1)

    return fn


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
