"""PyTorch adapter, part 3: running the check (the dtype policy, autograd's gradient, batched
evaluation through ``torch.func.vmap``) and leaving the module, the RNG and grad mode as found."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from gradcheck._errors import GradCheckError, LossRaisedError, StochasticLossError, short
from gradcheck.frameworks import _batching, _higher, _higher_torch, _protocol
from gradcheck.frameworks import _shared as _adapters
from gradcheck.frameworks._torch_problem import (
    _Layout,
    _leaves,
    _Problem,
)
from gradcheck.frameworks._torch_views import (
    _Objective,
)
from gradcheck.frameworks._torch_vmap import CHUNK, _batched

if TYPE_CHECKING:
    from gradcheck.report._report import Report

# --- running the check ----------------------------------------------------------------------


def _run(
    problem: _Problem,
    objective: _protocol.Objective,
    options: dict[str, Any],
    precision: Any,
    vectorize: Any,
    api: str,
    higher: tuple[int, str] = (1, "reverse"),
    outputs: Sequence[int] | None = None,
) -> Report:
    """The check of J (its outputs combined, by the protocol's rule), per output where it fails
    (``outputs``: the output leaves in J; None: every floating one, counted then), then the
    order-2 check if asked."""
    precision = _adapters.choose(api, "precision", precision, _adapters.PRECISIONS)
    vectorize = _adapters.choose(api, "vectorize", vectorize, _adapters.VECTORIZE)
    dtypes, precision_note = _precision(problem, objective, precision, api)
    placed = _placer(problem, dtypes)  # one for every check below (the arrays are only read)

    def first(obj: _protocol.Objective) -> Report:
        report = _check_one(problem, obj, dtypes, options, vectorize, precision_note, higher[1],
                            api, placed)
        report = _adapters.leave_unchecked(report, problem.unchecked)
        report = _adapters.complex_findings(report, problem.complex, _adapters.TORCH)
        conjugation = higher[1] == "reverse" and obj.loss_fn is None
        if conjugation and _adapters.wants_conjugation_probe(report, problem.complex):
            again = _check_one(problem, obj.probe(), dtypes, options, vectorize, precision_note,
                               higher[1], api, placed)
            again = _adapters.complex_findings(again, problem.complex, _adapters.TORCH)
            report = _adapters.conjugation_probe(report, again, problem.complex, _adapters.TORCH)
        return report

    def every_output() -> Sequence[int]:
        import torch

        if objective.loss_fn is not None:  # J is the user's loss: no outputs to tell apart
            return ()
        with torch.no_grad():
            tensors = {n: t.detach().clone() for n, t in problem.tensors.items()}
            return range(len(_leaves(problem.call(tensors, lambda t: t.detach()))))

    screen = None  # the linearity screen: reverse mode, outputs combined by the rule, real
    if higher[1] == "reverse" and objective.loss_fn is None and not problem.complex:
        screen = _adds_up(problem, objective, dtypes, placed)
    first_order = _protocol.by_output(
        first(objective), every_output if outputs is None else outputs,
        lambda k: first(objective.alone(k)), screen,
    )
    if higher[0] == 1:
        return first_order
    second = _higher_torch.torch_second(
        problem, objective, dtypes, _caster(dtypes), options, [precision_note], _leaves
    )
    return _higher.merge_orders(first_order, second)


def _rows(
    problem: _Problem,
    objectives: dict[tuple[str, int], _protocol.Objective],
    options: dict[str, Any],
    precision: Any,
    vectorize: Any,
) -> dict[tuple[str, int], Report]:
    """One report per Jacobian row (one note per row would drown the report: none here)."""
    api = "check_function"
    precision = _adapters.choose(api, "precision", precision, _adapters.PRECISIONS)
    vectorize = _adapters.choose(api, "vectorize", vectorize, _adapters.VECTORIZE)
    dtypes, note = _precision(problem, next(iter(objectives.values())), precision, api)
    placed = _placer(problem, dtypes)
    return {
        label: _adapters.leave_unchecked(
            _check_one(problem, obj, dtypes, options, vectorize, note, placed=placed),
            problem.unchecked,
        )
        for label, obj in objectives.items()
    }


def _check_one(
    problem: _Problem,
    objective: _Objective,
    dtypes: dict[str, Any],
    options: dict[str, Any],
    vectorize: str,
    precision_note: str,
    mode: str = "reverse",
    api: str = "check_function",
    placed: tuple[dict[str, np.ndarray], Callable] | None = None,
) -> Report:
    """One check of J (``placed``: ``_placer``'s arrays and tensors, when the caller has them)."""
    import torch

    device = next(iter(problem.tensors.values())).device
    params, tensors = _placer(problem, dtypes) if placed is None else placed
    cast = _caster(dtypes)
    native = {n: _adapters.dtype_name(t.dtype, n in problem.complex)  # the report's dtype
              for n, t in problem.tensors.items()}

    grad_enabled, set_grad = torch.is_grad_enabled, torch._C._set_grad_enabled
    lone = _lone_leaf(objective)

    def loss(p: dict[str, np.ndarray]) -> float:
        # torch.no_grad() by hand (what its __enter__/__exit__ do): a fifth of a small op's cost
        was = grad_enabled()
        set_grad(False)
        try:
            out = problem.call(tensors(p), cast)
            j = None if lone is None else lone(out)
            return float(objective(out)) if j is None else j
        finally:
            set_grad(was)

    tool = "torch.func.vmap"
    if (entries := _batching.small(params, vectorize)) is not None:  # every call by the loop
        batched, evaluation = None, _batching.small_note(tool, entries)
    else:
        batched, reason = _batched(problem, objective, params, dtypes, device, cast, loss,
                                   vectorize)
        batched = _batching.choose_path(batched, loss, params, CHUNK, tool, vectorize)
        evaluation = _batching.evaluation_note(batched, reason, tool)
    notes = [precision_note, evaluation]

    def run(grads: dict[str, np.ndarray], reduced: tuple | None = None) -> Report:
        fn, p, b = (loss, params, batched) if reduced is None else (*reduced, None)
        given: Any = grads
        if reduced is None and mode == "reverse":  # autograd again at a point off the kinks
            given = _higher.GradsAt(params, grads,
                                      lambda q: _analytic(problem, objective, tensors(q), cast))
        try:
            return _adapters.run_check(fn, p, given, options, b, notes, native)
        except StochasticLossError as error:
            raise StochasticLossError(
                f"{error} For a torch module, call module.eval() (or set the dropout p=0) "
                "before checking; gradcheck restores the training mode it found."
            ) from error

    return _higher.by_mode(
        mode, run, lambda: _analytic(problem, objective, tensors(params), cast),
        lambda: _higher.forward_gradient(
            _higher_torch.torch_jvps(problem, objective, tensors(params), cast, api),
            params, loss, options.get("seed", 0),
        ),
    )


def _lone_leaf(objective: _Objective) -> Callable[[Any], float | None] | None:
    """J of an output that is one real dense tensor, the common case, by the objective's own
    arithmetic without its walk over the output (one element: J itself, else ⟨out, R₀⟩ as
    ``(out * R₀).sum()``); None for any other output (the objective then walks it). None where
    the objective is not ⟨leaf, R⟩ of one leaf (a loss_fn, an entry, other picks)."""
    import torch

    if not objective.plain():
        return None
    tensor, strided = torch.Tensor, torch.strided

    def j(out: Any) -> float | None:
        if type(out) is not tensor or out.layout is not strided or not out.is_floating_point():
            return None
        if out.numel() == 1:
            return float(out)
        return float((out * objective.constant(0, out, False)).sum())

    return j


def _placer(
    problem: _Problem, dtypes: dict[str, Any]
) -> tuple[dict[str, np.ndarray], Callable[[dict[str, np.ndarray]], dict[str, Any]]]:
    """The checked tensors as NumPy arrays in their evaluated dtypes, and the function that
    turns such arrays back into tensors of that dtype, device and layout."""
    import torch

    device = next(iter(problem.tensors.values())).device
    params = {n: _to_numpy(problem.tensors[n], dtypes[n]) for n in problem.names}
    layouts = {n: _Layout.of(problem.tensors[n], lambda t, d=dtypes[n]: t.to(d)) for n in problem.names}
    # Per tensor, once: its name, dtype, layout, and the NumPy dtype torch.from_numpy reads as
    # that dtype (its params' own). torch.tensor(a, dtype) of a NumPy array on the CPU is
    # torch.from_numpy(a) copied by .to(dtype, copy=True): a fresh storage of torch's own,
    # NumPy's strides kept. So an array of that dtype (or float64, the engine's, cast by
    # .to(dtype)), C-contiguous and writeable (every engine call's), takes that path
    # directly, at a third less per call; anything else goes through torch.tensor.
    # The evaluator passes the same workspace arrays on every call (their values change in
    # place): the last array seen per tensor keeps its torch.from_numpy view, which reads the
    # array's current values, so a call makes only the copy.
    cpu, wide = device.type == "cpu", np.dtype(np.float64)
    plan = [(n, dtypes[n], layouts[n], params[n].dtype) for n in problem.names]
    seen: dict[str, tuple[np.ndarray, Any]] = {}

    def tensors(p: dict[str, np.ndarray]) -> dict[str, Any]:
        out = {}
        for n, dtype, layout, own in plan:
            a = p[n]
            last = seen.get(n)
            if last is not None and last[0] is a:
                view = last[1]
            elif cpu and type(a) is np.ndarray and (a.dtype == own or a.dtype == wide) \
                    and a.flags.c_contiguous and a.flags.writeable:
                view = torch.from_numpy(a)
                seen[n] = (a, view)
            else:
                view = None
            if view is not None:
                t = view.clone() if a.dtype == own else view.to(dtype)
            else:
                t = torch.tensor(a, dtype=dtype, device=device)
            out[n] = t if layout is None else layout.place(t)
        return out

    return params, tensors


def _adds_up(
    problem: _Problem, objective: _Objective, dtypes: dict[str, Any],
    placed: tuple[dict[str, np.ndarray], Callable],
) -> Callable[[], bool]:
    """The protocol's linearity screen of several outputs: autograd's gradient of each output
    alone against the combined one (one backward each, no loss call). The outputs are the
    leaves the check drew a cotangent for (none for a scalar J): no forward to count them.
    ``placed``: the check's own arrays and tensors (``_placer``)."""

    def screen() -> bool:
        import torch

        outputs = sorted(objective.cotangents)
        if len(outputs) < 2:
            return True
        params, tensors = placed
        cast = _caster(dtypes)
        combined = _analytic(problem, objective, tensors(params), cast)
        alone = [_analytic(problem, objective.alone(k), tensors(params), cast) for k in outputs]
        eps = max(torch.finfo(d).eps for d in dtypes.values())
        return _protocol.gradients_add_up(combined, alone, eps)

    return screen


def _analytic(problem: _Problem, objective: _Objective, leaves: dict, cast: Callable) -> dict:
    import torch

    for t in leaves.values():
        t.requires_grad_(True)
    with torch.enable_grad():
        try:
            out = problem.call(leaves, cast)
        except Exception as error:  # shape mismatch, .cuda() without CUDA, ...: the user's forward
            raise LossRaisedError(
                f"the forward raised {short(error)}. Fix the "
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
                    f"the backward raised {short(error)}. There is no analytic "
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
        ok, why = False, f"it raised in float64 ({short(error)})"
    if ok:
        return wide, _precision_note(native, wide)
    if precision == "float64":
        raise GradCheckError(
            f"{api}(precision='float64'): the computation cannot run on float64 copies "
            f"({why}). Use precision='auto' to check it in its own dtype."
        )
    _refuse_bfloat16(native, "native", api)
    return native, _precision_note(native, native, f"float64 copies were tried, but {why}")


def _refuse_bfloat16(native: dict[str, Any], precision: str, api: str) -> None:
    import torch

    if precision == "native" and torch.bfloat16 in native.values():
        name = next(n for n, d in native.items() if d == torch.bfloat16)
        raise GradCheckError(
            f"{api}(precision='native'): {name} is bfloat16, which NumPy cannot hold, so "
            "gradcheck cannot keep its finite-difference steps representable in it. Use "
            "precision='auto' (float64 copies), or check the kernel on float16/float32 inputs."
        )


def _precision_note(native: dict[str, Any], used: dict[str, Any], why: str = "") -> Any:
    """The dtype policy's note (``_protocol.precision_note``): which dtype was evaluated."""
    kinds = [str(d).replace("torch.", "") for d in native.values()]
    evaluated = "float64" if used != native else ", ".join(sorted(set(kinds)))
    return _protocol.precision_note(kinds, evaluated, "autograd", why)


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

